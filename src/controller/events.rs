//! Kubernetes Events (events.k8s.io/v1) about the resources the operator reconciles.
//!
//! Our own recorder rather than kube-runtime's, for what users read in `kubectl describe`:
//! - an event repeats (becomes a series) only when its note is the same, as client-go's correlator does;
//!   kube-runtime's key leaves the note out, and its repeat patches the first event back, so a new error
//!   message with the same reason was counted on the old one and never shown;
//! - the key names the object by kind, namespace, name and uid alone (never a resourceVersion);
//! - repeats are a small merge patch of the series alone, and every answer is read as metadata only;
//! - old keys are pruned at most once a minute, not on every publish;
//! - a note is cut to what the API server accepts (1024 bytes, not characters), so a long message in a
//!   script of several bytes per character is shown shortened instead of refused and lost.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

pub use kube::runtime::events::EventType;

/// How long an event is counted on rather than created anew (kube-runtime's and client-go's window).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// How often the memory of recent events is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The longest note the API server takes, in bytes (`NoteLengthLimit` in its validation).
const NOTE_LIMIT: usize = 1024;
const CUT_MARK: &str = "...";

/// `note` as the API server accepts it: cut at a character boundary and marked when it is too long.
fn fit_note(note: &str) -> Cow<'_, str> {
    if note.len() <= NOTE_LIMIT {
        return Cow::Borrowed(note);
    }
    let mut end = NOTE_LIMIT - CUT_MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{CUT_MARK}", &note[..end]))
}

/// What one event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote<'a> {
    pub type_: EventType,
    /// Stable PascalCase reason.
    pub reason: &'a str,
    pub note: &'a str,
    /// What the operator was doing.
    pub action: &'a str,
}

/// What makes two events the same event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
    warning: bool,
    reason: String,
    note: String,
    action: String,
}

impl Key {
    fn of(event: &EventNote<'_>, regarding: &ObjectReference) -> Key {
        Key {
            regarding: (
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            warning: event.type_ == EventType::Warning,
            reason: event.reason.to_string(),
            note: event.note.to_string(),
            action: event.action.to_string(),
        }
    }
}

/// An event the API server has: its name and how often it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    name: String,
    count: i32,
    last: Instant,
}

/// The events published in the last `SERIES_WINDOW`.
#[derive(Debug)]
struct Recent {
    sent: HashMap<Key, Sent>,
    pruned: Instant,
}

impl Recent {
    fn new(now: Instant) -> Recent {
        Recent {
            sent: HashMap::new(),
            pruned: now,
        }
    }

    /// The event to count `key` on (its name and new count), if one was sent within the window.
    fn repeat_of(&mut self, key: &Key, now: Instant) -> Option<(String, i32)> {
        if now.duration_since(self.pruned) >= PRUNE_EVERY {
            self.sent.retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
            self.pruned = now;
        }
        self.sent
            .get(key)
            .filter(|s| now.duration_since(s.last) < SERIES_WINDOW)
            .map(|s| (s.name.clone(), s.count.saturating_add(1)))
    }

    fn record(&mut self, key: Key, name: String, count: i32, now: Instant) {
        self.sent.insert(key, Sent { name, count, last: now });
    }
}

pub struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Recorder {
    /// `instance` (the pod's name when known) defaults to the controller's name, as kube-runtime's does.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Recorder {
        Recorder {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Mutex::new(Recent::new(Instant::now())),
        }
    }

    /// Publishes `event` about `regarding`: a new Event, or one more in the series of the same event. Its API
    /// calls are boxed (`slim::metadata_answer`), so callers need not box this future.
    pub async fn publish(&self, event: &EventNote<'_>, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let note = fit_note(event.note);
        let event = &EventNote {
            note: &note,
            ..event.clone()
        };
        let key = Key::of(event, regarding);
        let now = Instant::now();
        let repeat = self.lock().repeat_of(&key, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let timestamp = MicroTime(k8s_openapi::jiff::Timestamp::now());
        if let Some((name, count)) = repeat {
            let patch = series_patch(count, &timestamp);
            let params = PatchParams::default();
            match super::slim::patch_metadata(&api, &name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.lock().record(key, name, count, now);
                    return Ok(());
                }
                // Gone from the API server (events expire there): this one starts anew.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let new = self.new_event(event, regarding, timestamp);
        let name = new.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_vec(&new).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(api.resource_url())
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        super::slim::metadata_answer(&api, request).await?;
        self.lock().record(key, name, 1, now);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        // A panic while holding the lock leaves the map as it was: still usable.
        self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn new_event(&self, event: &EventNote<'_>, regarding: &ObjectReference, now: MicroTime) -> Event {
        let base = regarding.name.as_deref().unwrap_or(&self.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:x}", now.0.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(event.action.to_string()),
            reason: Some(event.reason.to_string()),
            note: Some(event.note.to_string()),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            event_time: Some(now),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// The merge patch that counts one more occurrence of an event.
fn series_patch(count: i32, now: &MicroTime) -> serde_json::Value {
    serde_json::json!({ "series": { "count": count, "lastObservedTime": now } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str, resource_version: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("FlinkDeployment".into()),
            namespace: Some("ns".into()),
            name: Some("job".into()),
            uid: Some(uid.into()),
            resource_version: Some(resource_version.into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn a_note_is_cut_to_the_api_servers_limit_in_bytes_at_a_character_boundary() {
        assert_eq!(fit_note("short"), "short");
        let exact = "a".repeat(NOTE_LIMIT);
        assert!(matches!(fit_note(&exact), Cow::Borrowed(_)));
        // 400 characters of three bytes each: 1200 bytes, over the limit though far under 1024 characters.
        let wide = "\u{8a8d}".repeat(400);
        let fitted = fit_note(&wide);
        assert!(fitted.len() <= NOTE_LIMIT, "{} bytes", fitted.len());
        assert!(fitted.len() > NOTE_LIMIT - 3 - CUT_MARK.len());
        assert!(fitted.ends_with(CUT_MARK));
        assert!(wide.starts_with(fitted.trim_end_matches(CUT_MARK)));
        let long = "x".repeat(5000);
        assert_eq!(fit_note(&long).len(), NOTE_LIMIT);
    }

    fn note(text: &str) -> EventNote<'_> {
        EventNote {
            type_: EventType::Warning,
            reason: "ValidationError",
            note: text,
            action: "Validate",
        }
    }

    #[test]
    fn the_same_note_about_the_same_object_is_counted_whatever_its_resource_version() {
        let start = Instant::now();
        let mut recent = Recent::new(start);
        let first = Key::of(&note("bad memory"), &reference("u1", "1"));
        assert_eq!(recent.repeat_of(&first, start), None);
        recent.record(first, "job.1".into(), 1, start);
        let later = Key::of(&note("bad memory"), &reference("u1", "7"));
        assert_eq!(
            recent.repeat_of(&later, start + Duration::from_secs(10)),
            Some(("job.1".to_string(), 2))
        );
    }

    #[test]
    fn another_note_another_object_or_another_type_is_another_event() {
        let start = Instant::now();
        let mut recent = Recent::new(start);
        recent.record(
            Key::of(&note("bad memory"), &reference("u1", "1")),
            "job.1".into(),
            1,
            start,
        );
        let soon = start + Duration::from_secs(1);
        assert_eq!(
            recent.repeat_of(&Key::of(&note("bad cpu"), &reference("u1", "1")), soon),
            None
        );
        // The same name and namespace, but a new object (deleted and created again).
        assert_eq!(
            recent.repeat_of(&Key::of(&note("bad memory"), &reference("u2", "1")), soon),
            None
        );
        let normal = EventNote {
            type_: EventType::Normal,
            ..note("bad memory")
        };
        assert_eq!(recent.repeat_of(&Key::of(&normal, &reference("u1", "1")), soon), None);
    }

    #[test]
    fn an_event_older_than_the_window_starts_anew_and_old_ones_are_pruned() {
        let start = Instant::now();
        let mut recent = Recent::new(start);
        let key = Key::of(&note("bad memory"), &reference("u1", "1"));
        recent.record(key.clone(), "job.1".into(), 3, start);
        let other = Key::of(&note("other"), &reference("u1", "1"));
        let late = start + SERIES_WINDOW + Duration::from_secs(1);
        assert_eq!(recent.repeat_of(&key, late), None);
        assert!(recent.sent.is_empty(), "pruned: {:?}", recent.sent);
        recent.record(other.clone(), "job.2".into(), 1, late);
        // Within a minute of the last prune, nothing is swept, but an expired entry still does not count.
        assert_eq!(
            recent.repeat_of(&other, late + Duration::from_secs(30)),
            Some(("job.2".to_string(), 2))
        );
    }

    #[test]
    fn a_repeat_patches_the_series_alone() {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("a valid time"));
        assert_eq!(
            series_patch(4, &now),
            serde_json::json!({ "series": { "count": 4, "lastObservedTime": "2023-11-14T22:13:20.000000Z" } })
        );
    }
}
