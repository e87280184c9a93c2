//! The HTTP client of Flink's REST API: one call per endpoint, a timeout on every call, bounded retries for reads.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{FlinkError, MAX_MESSAGE_CHARS, error_body_message, summarize_java_error, truncate_chars};
use super::types::*;

/// How often a read (GET) is tried when the connection fails or Flink answers 5xx. Writes are never repeated:
/// a POST that timed out or failed may still have been carried out (a second savepoint, a second job).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// Jar uploads get at least this long (a jar may be tens of MB), and so do jar runs: a run executes the job's main
/// method on the JobManager (class loading, building and submitting the job graph), which took over 5 s for the
/// first job of a fresh session cluster on a busy node.
const MIN_UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of Flink's REST API. Cheap to clone (shares its connection pool). Every method takes the cluster's
/// base URL (`http://host:port`), so one client serves all clusters.
#[derive(Clone)]
pub struct RestClient {
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    upload_timeout: Duration,
    retry: RetryPolicy,
}

impl RestClient {
    /// `timeout` bounds each attempt of each call: connecting, sending and reading the whole answer.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        RestClient {
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            upload_timeout: timeout.max(MIN_UPLOAD_TIMEOUT),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    // ------------------------------------------------------------------ cluster

    /// `GET /config`: answers once the JobManager's REST endpoint is up; gives version and revision.
    pub async fn cluster_info(&self, base: &str) -> Result<BTreeMap<String, String>, FlinkError> {
        let config: serde_json::Value = self.get(base, "/config").await?;
        Ok(cluster_info_of(&config))
    }

    /// `GET /overview`: TaskManagers, slots, job counts.
    pub async fn overview(&self, base: &str) -> Result<ClusterOverview, FlinkError> {
        self.get(base, "/overview").await
    }

    // ------------------------------------------------------------------ jobs

    /// `GET /jobs/overview`: every job the JobManager knows, running or ended.
    pub async fn jobs_overview(&self, base: &str) -> Result<Vec<JobSummary>, FlinkError> {
        let overview: JobsOverview = self.get(base, "/jobs/overview").await?;
        Ok(overview.jobs)
    }

    /// `GET /jobs/:jid`: state, times, vertices and their states.
    pub async fn job_details(&self, base: &str, job_id: &str) -> Result<JobDetails, FlinkError> {
        self.get(base, &format!("/jobs/{}", segment(job_id)?)).await
    }

    /// `GET /jobs/:jid/execution-result`: how the job ended (failure cause summarised and truncated).
    pub async fn job_result(&self, base: &str, job_id: &str) -> Result<JobResult, FlinkError> {
        let body: ExecutionResultBody = self
            .get(base, &format!("/jobs/{}/execution-result", segment(job_id)?))
            .await?;
        Ok(match body.result {
            Some(result) if body.status.id == "COMPLETED" => JobResult::Completed {
                application_status: result.application_status.unwrap_or_else(|| "UNKNOWN".to_string()),
                net_runtime_ms: result.net_runtime,
                failure_cause: result.failure_cause.map(|t| throwable_message(&t)),
            },
            _ => JobResult::InProgress,
        })
    }

    /// `PATCH /jobs/:jid?mode=cancel`: cancels the job (asynchronously; watch its state). A job that has reached
    /// another terminal state meanwhile (Flink answers 409 "Job cancellation failed because the job has already
    /// reached another terminal state (FINISHED)", e.g. right after a stop-with-savepoint) needs no cancelling:
    /// that is success too.
    pub async fn cancel_job(&self, base: &str, job_id: &str) -> Result<(), FlinkError> {
        let path = format!("/jobs/{}?mode=cancel", segment(job_id)?);
        match self.call(Method::PATCH, &url(base, &path), None, self.timeout).await {
            Err(e) if e.status() == Some(409) => {
                tracing::info!(job_id, error = %e, "the job ended before it was cancelled");
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// `GET /jobs/:jid/checkpoints`: counts and the latest completed, failed and restored checkpoints.
    pub async fn checkpoint_stats(&self, base: &str, job_id: &str) -> Result<CheckpointStats, FlinkError> {
        self.get(base, &format!("/jobs/{}/checkpoints", segment(job_id)?)).await
    }

    // ------------------------------------------------------------------ savepoints

    /// `POST /jobs/:jid/savepoints`: triggers a savepoint; returns the trigger id to poll with
    /// [`savepoint_status`](Self::savepoint_status).
    pub async fn trigger_savepoint(
        &self,
        base: &str,
        job_id: &str,
        request: &SavepointRequest,
    ) -> Result<String, FlinkError> {
        let path = format!("/jobs/{}/savepoints", segment(job_id)?);
        let trigger: TriggerResponse = self.post_json(base, &path, request, self.timeout).await?;
        Ok(trigger.request_id)
    }

    /// `POST /jobs/:jid/stop`: stop with a savepoint; the job ends FINISHED once the savepoint is done. The
    /// returned trigger id is polled with [`savepoint_status`](Self::savepoint_status).
    pub async fn stop_with_savepoint(
        &self,
        base: &str,
        job_id: &str,
        request: &StopRequest,
    ) -> Result<String, FlinkError> {
        let path = format!("/jobs/{}/stop", segment(job_id)?);
        let trigger: TriggerResponse = self.post_json(base, &path, request, self.timeout).await?;
        Ok(trigger.request_id)
    }

    /// `GET /jobs/:jid/savepoints/:triggerid`: progress of a savepoint or stop-with-savepoint.
    pub async fn savepoint_status(
        &self,
        base: &str,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<OperationStatus, FlinkError> {
        let path = format!("/jobs/{}/savepoints/{}", segment(job_id)?, segment(trigger_id)?);
        let body: AsyncOperationBody = self.get(base, &path).await?;
        Ok(operation_status(body))
    }

    /// `POST /savepoint-disposal`: deletes a savepoint's files; returns the trigger id to poll with
    /// [`disposal_status`](Self::disposal_status).
    pub async fn dispose_savepoint(&self, base: &str, savepoint_path: &str) -> Result<String, FlinkError> {
        #[derive(Serialize)]
        struct DisposalRequest<'a> {
            #[serde(rename = "savepoint-path")]
            savepoint_path: &'a str,
        }
        let trigger: TriggerResponse = self
            .post_json(
                base,
                "/savepoint-disposal",
                &DisposalRequest { savepoint_path },
                self.timeout,
            )
            .await?;
        Ok(trigger.request_id)
    }

    /// `GET /savepoint-disposal/:triggerid`.
    pub async fn disposal_status(&self, base: &str, trigger_id: &str) -> Result<OperationStatus, FlinkError> {
        let path = format!("/savepoint-disposal/{}", segment(trigger_id)?);
        let body: AsyncOperationBody = self.get(base, &path).await?;
        Ok(operation_status(body))
    }

    // ------------------------------------------------------------------ jars

    /// `POST /jars/upload` (multipart field `jarfile`); returns the jar id. `file_name` must end in `.jar`
    /// (Flink rejects other names).
    pub async fn upload_jar(&self, base: &str, file_name: &str, content: Bytes) -> Result<String, FlinkError> {
        let (content_type, body) = multipart_jar(file_name, &content);
        let target = url(base, "/jars/upload");
        let answer = self
            .call(Method::POST, &target, Some((content_type, body)), self.upload_timeout)
            .await?;
        let upload: JarUploadResponse = decode(&Method::POST, &target, &answer)?;
        // The id is the stored file's name (`<uuid>_<file name>`).
        Ok(upload.filename.rsplit('/').next().unwrap_or_default().to_string())
    }

    /// `POST /jars/:jarid/run`: runs the jar's main method, which submits the job; returns the job id.
    /// A main method that throws, or a job that cannot start (e.g. a missing savepoint), fails this call with
    /// Flink's message. Bounded like an upload (at least 60 s), not by the timeout of the other calls.
    pub async fn run_jar(&self, base: &str, jar_id: &str, request: &JarRunRequest) -> Result<String, FlinkError> {
        let path = format!("/jars/{}/run", segment(jar_id)?);
        let answer: JarRunResponse = self.post_json(base, &path, request, self.upload_timeout).await?;
        Ok(answer.jobid)
    }

    /// `DELETE /jars/:jarid`.
    pub async fn delete_jar(&self, base: &str, jar_id: &str) -> Result<(), FlinkError> {
        let path = format!("/jars/{}", segment(jar_id)?);
        self.call(Method::DELETE, &url(base, &path), None, self.timeout).await?;
        Ok(())
    }

    /// `GET /jars`.
    pub async fn list_jars(&self, base: &str) -> Result<Vec<JarFile>, FlinkError> {
        let list: JarList = self.get(base, "/jars").await?;
        Ok(list.files)
    }

    // ------------------------------------------------------------------ transport

    async fn get<T: DeserializeOwned>(&self, base: &str, path: &str) -> Result<T, FlinkError> {
        let target = url(base, path);
        let body = self.call(Method::GET, &target, None, self.timeout).await?;
        decode(&Method::GET, &target, &body)
    }

    async fn post_json<T: DeserializeOwned, B: Serialize>(
        &self,
        base: &str,
        path: &str,
        request: &B,
        timeout: Duration,
    ) -> Result<T, FlinkError> {
        let target = url(base, path);
        let json = serde_json::to_vec(request).map_err(|e| FlinkError::Decode {
            method: Method::POST.to_string(),
            url: target.clone(),
            reason: format!("request body: {e}"),
        })?;
        let content_type = header::HeaderValue::from_static("application/json");
        let body = self
            .call(Method::POST, &target, Some((content_type, Bytes::from(json))), timeout)
            .await?;
        decode(&Method::POST, &target, &body)
    }

    /// One call; GETs are retried (with backoff) on connection errors and 5xx answers.
    async fn call(
        &self,
        method: Method,
        target: &str,
        body: Option<(header::HeaderValue, Bytes)>,
        timeout: Duration,
    ) -> Result<Bytes, FlinkError> {
        let uri: hyper::Uri = target
            .parse()
            .map_err(|e: http::uri::InvalidUri| FlinkError::InvalidUrl {
                url: target.to_string(),
                reason: e.to_string(),
            })?;
        let attempts = if method == Method::GET {
            self.retry.attempts.max(1)
        } else {
            1
        };
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            // Boxed: a reconciliation holds this future only while it talks to Flink.
            let result = Box::pin(self.attempt(&method, target, &uri, body.clone(), timeout)).await;
            match result {
                Err(e) if attempt < attempts && is_retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "retrying Flink REST read");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        target: &str,
        uri: &hyper::Uri,
        body: Option<(header::HeaderValue, Bytes)>,
        timeout: Duration,
    ) -> Result<Bytes, FlinkError> {
        let request_error = |reason: String| FlinkError::Request {
            method: method.to_string(),
            url: target.to_string(),
            reason,
        };
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri.clone())
            .header(header::ACCEPT, "application/json");
        let payload = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| request_error(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| request_error(error_chain(&e)))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| request_error(format!("reading the answer: {e}")))?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(FlinkError::Status {
                    method: method.to_string(),
                    url: target.to_string(),
                    status: status.as_u16(),
                    message: error_body_message(&body),
                })
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FlinkError::Timeout {
                method: method.to_string(),
                url: target.to_string(),
                timeout,
            })?
    }
}

/// Worth another try for a read: the connection failed, or the server had a (possibly passing) problem.
/// Timeouts are not retried: the caller's time budget is already spent.
fn is_retryable(error: &FlinkError) -> bool {
    match error {
        FlinkError::Request { .. } => true,
        FlinkError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// An id used as a path segment: Flink's ids are hex, jar ids `<uuid>_<name>.jar`; anything else would change
/// the request's meaning.
fn segment(id: &str) -> Result<&str, FlinkError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id)
    } else {
        Err(FlinkError::InvalidUrl {
            url: id.to_string(),
            reason: "not a Flink id (letters, digits, '-', '_', '.')".to_string(),
        })
    }
}

fn decode<T: DeserializeOwned>(method: &Method, target: &str, body: &[u8]) -> Result<T, FlinkError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| FlinkError::Decode {
        method: method.to_string(),
        url: target.to_string(),
        reason: e.to_string(),
    })
}

/// hyper's error with its sources ("client error (Connect): tcp connect error: Connection refused").
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn throwable_message(throwable: &SerializedThrowable) -> String {
    let text = match (&throwable.stack_trace, &throwable.class) {
        (Some(trace), _) => summarize_java_error(trace),
        (None, Some(class)) => class.clone(),
        (None, None) => "unknown failure".to_string(),
    };
    truncate_chars(&text, MAX_MESSAGE_CHARS)
}

fn operation_status(body: AsyncOperationBody) -> OperationStatus {
    if body.status.id != "COMPLETED" {
        return OperationStatus::InProgress;
    }
    let operation = body.operation.unwrap_or_default();
    match operation.failure_cause {
        Some(cause) => OperationStatus::Failed {
            cause: throwable_message(&cause),
        },
        None => OperationStatus::Completed {
            location: operation.location,
        },
    }
}

/// A `multipart/form-data` body with the jar in the field `jarfile`.
fn multipart_jar(file_name: &str, content: &[u8]) -> (header::HeaderValue, Bytes) {
    let mut boundary = String::from("flink-operator-jar-upload-7f3a9c1e5b");
    // The boundary must not occur in the content; lengthen it until it does not.
    while content.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
        boundary.push('x');
    }
    let safe_name: String = file_name
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut body = Vec::with_capacity(content.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"{safe_name}\"\r\n\
             Content-Type: application/x-java-archive\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = header::HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .unwrap_or_else(|_| header::HeaderValue::from_static("multipart/form-data"));
    (content_type, Bytes::from(body))
}

/// The `clusterInfo` status entries from Flink's `/config` answer.
pub fn cluster_info_of(config: &serde_json::Value) -> BTreeMap<String, String> {
    ["flink-version", "flink-revision"]
        .into_iter()
        .filter_map(|key| {
            config
                .get(key)
                .and_then(|v| v.as_str())
                .map(|v| (key.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_plain_path_segments() {
        assert!(segment("0123abcdef").is_ok());
        assert!(segment("6641f622-371b-4a5b-8e14-fa80eb50d719_flink-test-job-1.20.5.jar").is_ok());
        for bad in ["", ".", "..", "a/b", "a?mode=cancel", "a b", "ä"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_only_connection_errors_and_server_errors() {
        let request = FlinkError::Request {
            method: "GET".into(),
            url: "u".into(),
            reason: "refused".into(),
        };
        let status = |status| FlinkError::Status {
            method: "GET".into(),
            url: "u".into(),
            status,
            message: String::new(),
        };
        let timeout = FlinkError::Timeout {
            method: "GET".into(),
            url: "u".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(is_retryable(&request) && is_retryable(&status(503)) && is_retryable(&status(500)));
        assert!(!is_retryable(&status(404)) && !is_retryable(&status(400)) && !is_retryable(&timeout));
    }

    /// A server on 127.0.0.1 that answers every request with `status` and `body` after `delay`.
    async fn slow_server(delay: Duration, status: u16, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    // The whole request: headers, then Content-Length bytes of body.
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        request.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&request).to_lowercase();
                        let complete = text.split_once("\r\n\r\n").is_some_and(|(head, rest)| {
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            rest.len() >= length
                        });
                        if n == 0 || complete {
                            break;
                        }
                    }
                    tokio::time::sleep(delay).await;
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        base
    }

    #[tokio::test]
    async fn a_jar_run_gets_the_upload_time_limit_not_the_short_one() {
        // A run executes the job's main method on the JobManager: slower than the short limit of other calls.
        let base = slow_server(Duration::from_millis(600), 200, r#"{"jobid":"0123abcdef"}"#).await;
        let client = RestClient::new(Duration::from_millis(200)).with_upload_timeout(Duration::from_secs(10));
        let job = client.run_jar(&base, "x.jar", &JarRunRequest::default()).await.unwrap();
        assert_eq!(job, "0123abcdef");
        // Other writes keep the short limit.
        let err = client
            .trigger_savepoint(&base, "0123abcdef", &SavepointRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, FlinkError::Timeout { .. }), "{err}");
        // By default the upload limit is at least a minute, whatever the short one.
        assert_eq!(
            RestClient::new(Duration::from_secs(5)).upload_timeout,
            MIN_UPLOAD_TIMEOUT
        );
    }

    #[tokio::test]
    async fn cancelling_a_job_that_ended_otherwise_is_done() {
        // What Flink 1.20 and 2.3 answer when the job finished (a stop-with-savepoint) before the cancel.
        let ended = r#"{"errors":["org.apache.flink.runtime.rest.handler.RestHandlerException: Job cancellation failed because the job has already reached another terminal state (FINISHED)."]}"#;
        let client = RestClient::new(Duration::from_secs(5));
        let base = slow_server(Duration::ZERO, 409, ended).await;
        client.cancel_job(&base, "0123abcdef").await.unwrap();
        // Other refusals stay errors.
        for status in [404, 500] {
            let base = slow_server(Duration::ZERO, status, r#"{"errors":["no"]}"#).await;
            let err = client.cancel_job(&base, "0123abcdef").await.unwrap_err();
            assert_eq!(err.status(), Some(status), "{err}");
        }
    }

    #[test]
    fn multipart_body_carries_the_jar() {
        let (content_type, body) = multipart_jar("job \"x\".jar", b"PK\x03\x04jar-bytes");
        let content_type = content_type.to_str().unwrap().to_string();
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"jarfile\"; filename=\"job _x_.jar\""));
        assert!(text.contains("\r\n\r\nPK\u{3}\u{4}jar-bytes\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        // Content that contains the boundary gets a longer one.
        let (content_type, _) = multipart_jar("a.jar", b"--flink-operator-jar-upload-7f3a9c1e5b");
        assert!(content_type.to_str().unwrap().ends_with("5bx"));
    }

    #[test]
    fn async_operations_map_to_status() {
        let body = |v: serde_json::Value| serde_json::from_value::<AsyncOperationBody>(v).unwrap();
        assert_eq!(
            operation_status(body(serde_json::json!({"status": {"id": "IN_PROGRESS"}}))),
            OperationStatus::InProgress
        );
        assert_eq!(
            operation_status(body(
                serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/savepoint-1"}})
            )),
            OperationStatus::Completed {
                location: Some("file:/sp/savepoint-1".into())
            }
        );
        assert_eq!(
            operation_status(body(
                serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {}})
            )),
            OperationStatus::Completed { location: None }
        );
        let failed = operation_status(body(serde_json::json!({"status": {"id": "COMPLETED"}, "operation": {
            "failure-cause": {"class": "org.apache.flink.util.FlinkException",
                              "stack-trace": "org.apache.flink.util.FlinkException: Could not dispose savepoint /x.\n\
                                              \tat a.b(C.java:1)\nCaused by: java.io.FileNotFoundException: /x"}}})));
        assert_eq!(
            failed,
            OperationStatus::Failed {
                cause: "org.apache.flink.util.FlinkException: Could not dispose savepoint /x. \
                        (root cause: java.io.FileNotFoundException: /x)"
                    .into()
            }
        );
    }

    #[test]
    fn cluster_info_keeps_version_and_revision() {
        let info = cluster_info_of(&serde_json::json!({"flink-version": "1.20.5", "flink-revision": "abc", "x": 1}));
        assert_eq!(info.get("flink-version").map(String::as_str), Some("1.20.5"));
        assert_eq!(info.len(), 2);
    }
}
