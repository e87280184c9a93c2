//! What can go wrong talking to Flink's REST API, and how Flink's Java error texts are shortened for users.

use std::time::Duration;

/// Longest Flink error text or failure cause kept (in status fields, events, logs).
pub const MAX_MESSAGE_CHARS: usize = 512;

/// One failed REST call. Every variant names the request (`method`, `url`).
#[derive(Debug, thiserror::Error)]
pub enum FlinkError {
    #[error("invalid Flink REST URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{method} {url} failed: {reason}")]
    Request {
        method: String,
        url: String,
        reason: String,
    },
    #[error("{method} {url} timed out after {timeout:?}")]
    Timeout {
        method: String,
        url: String,
        timeout: Duration,
    },
    #[error("{method} {url} answered {status}: {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        /// Flink's error (`{"errors":[...]}`) summarised and truncated, or an excerpt of the body.
        message: String,
    },
    #[error("{method} {url} returned an unexpected body: {reason}")]
    Decode {
        method: String,
        url: String,
        reason: String,
    },
}

impl FlinkError {
    /// The HTTP status when Flink answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            FlinkError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Flink's error body `{"errors":["...", ...]}` as one short line: for each Java exception text its first line and
/// root cause; plain "Internal server error." entries are dropped when a real one follows. Other bodies are
/// returned as an excerpt.
pub fn error_body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        errors: Vec<String>,
    }
    let text = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let specific: Vec<&String> = parsed
                .errors
                .iter()
                .filter(|e| e.trim() != "Internal server error.")
                .collect();
            let chosen = if specific.is_empty() {
                parsed.errors.iter().collect()
            } else {
                specific
            };
            chosen
                .into_iter()
                .map(|e| summarize_java_error(e))
                .collect::<Vec<_>>()
                .join("; ")
        }
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    truncate_chars(&text, MAX_MESSAGE_CHARS)
}

/// A Java exception text (stack trace) as one line: its first line, plus the innermost `Caused by:` (the root
/// cause), which is usually the part that says what to fix.
pub fn summarize_java_error(text: &str) -> String {
    let text = text.trim();
    let text = text
        .strip_prefix("<Exception on server side:")
        .map(|t| t.trim_end().trim_end_matches("End of exception on server side>"))
        .unwrap_or(text)
        .trim();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let root = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Caused by: "))
        .next_back();
    match root {
        Some(root) if root != first => format!("{first} (root cause: {root})"),
        _ => first.to_string(),
    }
}

/// `text` cut to at most `max` characters (never inside a UTF-8 character); a cut is marked with "...".
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(3);
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("short", 10), "short");
        assert_eq!(truncate_chars("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_chars("abcdefghijk", 10), "abcdefg...");
        // Multi-byte characters: counted as characters, never split.
        let cut = truncate_chars(&"é".repeat(600), MAX_MESSAGE_CHARS);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate_chars("ab", 0), "...");
    }

    #[test]
    fn java_errors_keep_first_line_and_root_cause() {
        let trace = "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n\
            \tat org.apache.flink.X.y(X.java:1)\n\
            Caused by: org.apache.flink.util.FlinkException: Failed to execute job 'KeyedCounter'.\n\
            \t... 3 more\n\
            Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory '/x'.\n\
            \tat a.b(C.java:2)\n";
        assert_eq!(
            summarize_java_error(trace),
            "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application. \
             (root cause: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory '/x'.)"
        );
        assert_eq!(summarize_java_error("Just a message"), "Just a message");
    }

    #[test]
    fn flink_error_bodies_are_summarised() {
        let body = serde_json::json!({"errors": [
            "Internal server error.",
            "<Exception on server side:\njava.util.concurrent.CompletionException: boom\n\tat x.y(Z.java:1)\n\
             Caused by: java.lang.ClassNotFoundException: org.example.Nope\n\nEnd of exception on server side>"
        ]});
        assert_eq!(
            error_body_message(body.to_string().as_bytes()),
            "java.util.concurrent.CompletionException: boom (root cause: java.lang.ClassNotFoundException: \
             org.example.Nope)"
        );
        let plain = serde_json::json!({"errors": ["Not found: /nope"]});
        assert_eq!(error_body_message(plain.to_string().as_bytes()), "Not found: /nope");
        assert_eq!(
            error_body_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(
            error_body_message("x".repeat(2000).as_bytes()).chars().count(),
            MAX_MESSAGE_CHARS
        );
    }
}
