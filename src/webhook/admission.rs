//! Admission decisions for FlinkDeployment and FlinkSessionJob (pure: bytes in, review out).

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::mutation;
use crate::crd::{FlinkConfiguration, FlinkDeployment, FlinkSessionJob, GROUP};
use crate::validation;

/// The resources this webhook admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlinkKind {
    FlinkDeployment,
    FlinkSessionJob,
}

impl FlinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlinkKind::FlinkDeployment => "FlinkDeployment",
            FlinkKind::FlinkSessionJob => "FlinkSessionJob",
        }
    }
}

/// Which webhook endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// A request that is not an AdmissionReview at all: answered with HTTP 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedReview(pub String);

/// The answer to one admission request, with the labels metrics need.
pub struct Decision {
    pub review: AdmissionReview<DynamicObject>,
    /// The admitted kind, or "unknown" when the request named another resource.
    pub kind: &'static str,
    pub operation: &'static str,
    pub allowed: bool,
}

/// Decides one AdmissionReview for `endpoint`. `defaults` is the operator's default Flink configuration.
pub fn decide(endpoint: Endpoint, body: &[u8], defaults: &FlinkConfiguration) -> Result<Decision, MalformedReview> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| MalformedReview(format!("request body is not JSON: {e}")))?;
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(MalformedReview(format!(
            "expected an AdmissionReview of apiVersion admission.k8s.io/v1, got kind '{kind}' apiVersion '{api_version}'"
        )));
    }
    let review: AdmissionReview<DynamicObject> = serde_path_to_error::deserialize(value)
        .map_err(|e| MalformedReview(format!("not a valid AdmissionReview at {}: {}", e.path(), e.inner())))?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| MalformedReview("the AdmissionReview has no request".to_string()))?;

    let operation = operation_name(&request.operation);
    let allowed = AdmissionResponse::from(&request);
    let flink_kind = match (
        request.kind.group.as_str(),
        request.kind.version.as_str(),
        request.kind.kind.as_str(),
    ) {
        (GROUP, "v1beta1", "FlinkDeployment") => FlinkKind::FlinkDeployment,
        (GROUP, "v1beta1", "FlinkSessionJob") => FlinkKind::FlinkSessionJob,
        (group, version, kind) => {
            let response = allowed.deny(format!(
                "this webhook admits only FlinkDeployment and FlinkSessionJob ({GROUP}/v1beta1), not \
                 {kind} ({group}/{version}): check the webhook configuration's rules"
            ));
            return Ok(finish(response, "unknown", operation));
        }
    };
    let kind = flink_kind.as_str();
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Ok(finish(allowed, kind, operation));
    }
    let Some(object) = &request.object else {
        return Ok(finish(
            allowed.deny("request.object: missing; a CREATE or UPDATE review carries the object to admit"),
            kind,
            operation,
        ));
    };
    let object = serde_json::to_value(object).unwrap_or(Value::Null);

    let response = match endpoint {
        Endpoint::Mutate => {
            let old = request
                .old_object
                .as_ref()
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
            // Defaults come with a written spec. A metadata-only update (the operator adding its finalizer) of
            // an object stored while the webhook was off or outside its namespaces must not get them: the new
            // spec would then differ from the old one, validation would judge it, and an invalid object could
            // never be finalized or reported on.
            let patch = if old.is_some() && metadata_only(&object, old.as_ref()) {
                json_patch::Patch(Vec::new())
            } else {
                mutation::defaults_patch(flink_kind, &object)
            };
            if patch.0.is_empty() {
                allowed
            } else {
                match allowed.clone().with_patch(patch) {
                    Ok(response) => response,
                    Err(e) => allowed.deny(format!("cannot encode the defaulting patch: {e}")),
                }
            }
        }
        Endpoint::Validate => {
            let old = request
                .old_object
                .as_ref()
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
            match validate(flink_kind, &object, old.as_ref(), defaults) {
                Ok(()) => allowed,
                Err(message) => deny_invalid(allowed, message),
            }
        }
    };
    Ok(finish(response, kind, operation))
}

/// An UPDATE that leaves the spec as it was (finalizers, labels, annotations), or one of an object being deleted.
fn metadata_only(object: &Value, old: Option<&Value>) -> bool {
    let Some(old) = old else { return false };
    let being_deleted = object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    being_deleted || object.get("spec") == old.get("spec")
}

/// Runs the shared validation on the raw objects.
fn validate(kind: FlinkKind, object: &Value, old: Option<&Value>, defaults: &FlinkConfiguration) -> Result<(), String> {
    // Only a new spec can break a rule; metadata-only updates (finalizers, labels) and deletions in
    // progress must go through even for an object stored while the webhook was off.
    if metadata_only(object, old) {
        return Ok(());
    }
    match kind {
        FlinkKind::FlinkDeployment => {
            let new: FlinkDeployment = typed(object)?;
            let old: Option<FlinkDeployment> = old.map(typed).transpose().ok().flatten();
            validation::validate_deployment(&new, old.as_ref(), defaults).map_err(|v| v.to_string())
        }
        FlinkKind::FlinkSessionJob => {
            let new: FlinkSessionJob = typed(object)?;
            let old: Option<FlinkSessionJob> = old.map(typed).transpose().ok().flatten();
            validation::validate_session_job(&new, old.as_ref(), defaults).map_err(|v| v.to_string())
        }
    }
}

/// Reads a raw object as its typed resource; the error names the offending field.
fn typed<T: DeserializeOwned>(object: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(object).map_err(|e| field_error(&e.path().to_string(), &e.inner().to_string()))
}

/// A deserialization error as `field.path: what`. serde reports a missing field at its parent (`.` for the
/// object itself), which would name no field: the missing one is named instead.
fn field_error(path: &str, inner: &str) -> String {
    let missing = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(field)) => format!("{field}: is required ({inner})"),
        (parent, Some(field)) => format!("{parent}.{field}: is required ({inner})"),
        (path, None) => format!("{path}: {inner}"),
    }
}

fn deny_invalid(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let mut response = response.deny(&message);
    response.result = Status::failure(&message, "Invalid").with_code(422);
    response
}

fn finish(response: AdmissionResponse, kind: &'static str, operation: &'static str) -> Decision {
    let allowed = response.allowed;
    Decision {
        review: response.into_review(),
        kind,
        operation,
        allowed,
    }
}

fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::field_error;

    #[test]
    fn type_errors_start_with_the_field_path() {
        assert_eq!(
            field_error(".", "missing field `spec`"),
            "spec: is required (missing field `spec`)"
        );
        assert_eq!(
            field_error("spec.job", "missing field `jarURI`"),
            "spec.job.jarURI: is required (missing field `jarURI`)"
        );
        assert_eq!(
            field_error("spec.job.parallelism", "invalid type: string \"x\", expected i32"),
            "spec.job.parallelism: invalid type: string \"x\", expected i32"
        );
    }
}
