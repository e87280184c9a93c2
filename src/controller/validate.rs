//! FlinkSessionJob reconcile, first cut: run the shared validation and report its outcome in status and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use super::{Context, Error, MANAGER};
use crate::crd::FlinkSessionJob;
use crate::validation;

/// Event notes are limited to 1 kB by the API.
const MAX_NOTE: usize = 1000;

pub async fn reconcile_session_job(job: Arc<FlinkSessionJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let error = validation::validate_session_job(&job, None, &ctx.defaults)
        .err()
        .map(|v| v.to_string());
    let status = job.status.as_ref();
    let result = report(
        job.as_ref(),
        status.and_then(|s| s.error.as_deref()),
        status.and_then(|s| s.observed_generation),
        error,
        &ctx,
    )
    .await;
    observe(&ctx, "FlinkSessionJob", started, &result);
    result
}

pub fn error_policy<K>(_: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    warn!(%error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

fn observe(ctx: &Context, kind: &str, started: Instant, result: &Result<Action, Error>) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics.reconciliations.with_label_values(&[kind, outcome]).inc();
    ctx.metrics
        .reconcile_duration
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
}

/// Writes `status.error` and `status.observedGeneration` only when they change (quiet in steady state),
/// and publishes a Warning `ValidationError` event when a new error appears.
async fn report<K>(
    object: &K,
    current_error: Option<&str>,
    current_generation: Option<i64>,
    error: Option<String>,
    ctx: &Context,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let generation = object.meta().generation;
    let error_changed = current_error != error.as_deref();
    if error_changed || current_generation != generation {
        let namespace = object.namespace().ok_or(Error::NoNamespace)?;
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({"status": {"error": error, "observedGeneration": generation}});
        api.patch_status(
            &object.name_any(),
            &PatchParams {
                field_manager: Some(MANAGER.to_string()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::WriteStatus)?;
    }
    if error_changed && let Some(message) = &error {
        let event = Event {
            type_: EventType::Warning,
            reason: "ValidationError".to_string(),
            note: Some(truncate(message, MAX_NOTE)),
            action: "Validate".to_string(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
            warn!(error = %Error::PublishEvent(e), "event lost");
        }
    }
    Ok(Action::await_change())
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
