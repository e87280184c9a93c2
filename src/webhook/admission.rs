//! Admission decisions for FlinkDeployment and FlinkSessionJob (pure: bytes in, review out).

use kube::core::Status;
use kube::core::admission::Operation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

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
    pub review: ReviewResponse,
    /// The admitted kind, or "unknown" when the request named another resource.
    pub kind: &'static str,
    pub operation: &'static str,
    pub allowed: bool,
}

const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";
const REVIEW_KIND: &str = "AdmissionReview";

/// An incoming AdmissionReview. The objects stay raw JSON, borrowed from the body: each is decoded once,
/// into exactly what its endpoint needs (typed for validation, a JSON tree for defaulting). Decoding them
/// as `DynamicObject`s and converting them again cost a third of a request.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewRequest<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(borrow)]
    request: Option<RequestEnvelope<'a>>,
}

/// The fields of `request` this webhook reads or the API requires.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestEnvelope<'a> {
    uid: String,
    kind: kube::core::GroupVersionKind,
    #[allow(dead_code)] // required by the API; read only to reject reviews without it
    resource: kube::core::GroupVersionResource,
    operation: Operation,
    #[allow(dead_code)] // required by the API; read only to reject reviews without it
    user_info: k8s_openapi::api::authentication::v1::UserInfo,
    #[serde(borrow)]
    object: Option<&'a RawValue>,
    #[serde(borrow)]
    old_object: Option<&'a RawValue>,
}

/// The AdmissionReview answered, as the API defines it on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

/// `response` of an AdmissionReview.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    pub status: Status,
    /// The RFC 6902 patch, base64-encoded as the API requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
}

impl AdmissionResponse {
    fn allow(uid: &str) -> Self {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: true,
            status: Status::default(),
            patch: None,
            patch_type: None,
        }
    }

    fn deny(mut self, message: impl Into<String>) -> Self {
        self.allowed = false;
        self.status.message = message.into();
        self
    }

    fn with_patch(mut self, patch: &json_patch::Patch) -> Self {
        use base64::Engine as _;
        match serde_json::to_vec(patch) {
            Ok(bytes) => {
                self.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                self.patch_type = Some("JSONPatch");
                self
            }
            Err(e) => self.deny(format!("cannot encode the defaulting patch: {e}")),
        }
    }
}

/// Decides one AdmissionReview for `endpoint`. `defaults` is the operator's default Flink configuration.
pub fn decide(endpoint: Endpoint, body: &[u8], defaults: &FlinkConfiguration) -> Result<Decision, MalformedReview> {
    let review: ReviewRequest = serde_json::from_slice(body).map_err(|e| malformed(body, e))?;
    if review.api_version != REVIEW_API_VERSION || review.kind != REVIEW_KIND {
        return Err(wrong_envelope(&review.kind, &review.api_version));
    }
    let request = review
        .request
        .ok_or_else(|| MalformedReview("the AdmissionReview has no request".to_string()))?;

    let operation = operation_name(&request.operation);
    let allowed = AdmissionResponse::allow(&request.uid);
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
    let Some(object) = request.object.filter(|o| o.get() != "null") else {
        return Ok(finish(
            allowed.deny("request.object: missing; a CREATE or UPDATE review carries the object to admit"),
            kind,
            operation,
        ));
    };
    if !object.get().trim_start().starts_with('{') {
        return Ok(finish(
            allowed.deny("request.object: must be a JSON object (the resource to admit)"),
            kind,
            operation,
        ));
    }
    let old = request.old_object.filter(|o| o.get() != "null");
    // Only a new spec can break a rule or need defaults. A metadata-only update (the operator adding its
    // finalizer) of an object stored while the webhook was off or outside its namespaces must go through
    // untouched: defaults would make the new spec differ from the old one, validation would judge it, and
    // an invalid object could never be finalized or reported on.
    let unchanged_spec = old.is_some_and(|old| metadata_only(object, old));

    let response = match endpoint {
        Endpoint::Mutate if unchanged_spec => allowed,
        Endpoint::Mutate => match serde_json::from_str::<Value>(object.get()) {
            Ok(object) => {
                let patch = mutation::defaults_patch(flink_kind, &object);
                if patch.0.is_empty() {
                    allowed
                } else {
                    allowed.with_patch(&patch)
                }
            }
            Err(e) => allowed.deny(format!("request.object: not a JSON object: {e}")),
        },
        Endpoint::Validate if unchanged_spec => allowed,
        Endpoint::Validate => match validate(flink_kind, object, old, defaults) {
            Ok(()) => allowed,
            Err(message) => deny_invalid(allowed, message),
        },
    };
    Ok(finish(response, kind, operation))
}

/// Why `body` is not an AdmissionReview (only on the error path: it decodes the body again to say where).
fn malformed(body: &[u8], error: serde_json::Error) -> MalformedReview {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return MalformedReview(format!("request body is not JSON: {e}")),
    };
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api_version != REVIEW_API_VERSION || kind != REVIEW_KIND {
        return wrong_envelope(kind, api_version);
    }
    match serde_path_to_error::deserialize::<_, kube::core::admission::AdmissionReview<kube::core::DynamicObject>>(
        &value,
    ) {
        Err(e) => MalformedReview(format!("not a valid AdmissionReview at {}: {}", e.path(), e.inner())),
        // kube's review requires what ours does, so this is not expected; say what ours said.
        Ok(_) => MalformedReview(format!("not a valid AdmissionReview: {error}")),
    }
}

fn wrong_envelope(kind: &str, api_version: &str) -> MalformedReview {
    MalformedReview(format!(
        "expected an AdmissionReview of apiVersion {REVIEW_API_VERSION}, got kind '{kind}' apiVersion '{api_version}'"
    ))
}

/// An UPDATE that leaves the spec as it was (finalizers, labels, annotations), or one of an object being deleted.
fn metadata_only(object: &RawValue, old: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        spec: Option<&'a RawValue>,
        #[serde(borrow, default)]
        metadata: Option<Metadata<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata<'a> {
        #[serde(borrow, default)]
        deletion_timestamp: Option<&'a RawValue>,
    }
    let (Ok(new), Ok(old)) = (
        serde_json::from_str::<Parts>(object.get()),
        serde_json::from_str::<Parts>(old.get()),
    ) else {
        return false;
    };
    let being_deleted = new
        .metadata
        .as_ref()
        .and_then(|m| m.deletion_timestamp)
        .is_some_and(|t| t.get() != "null");
    let (new_spec, old_spec) = (new.spec.map(RawValue::get), old.spec.map(RawValue::get));
    // The API server encodes both objects alike, so equal text is the common case; a different text can
    // still be the same spec (key order, number forms).
    being_deleted
        || new_spec == old_spec
        || match (new_spec, old_spec) {
            (Some(a), Some(b)) => {
                let parse = |text| serde_json::from_str::<Value>(text).ok();
                parse(a).is_some_and(|a| parse(b) == Some(a))
            }
            _ => false,
        }
}

/// Runs the shared validation on the raw objects.
fn validate(
    kind: FlinkKind,
    object: &RawValue,
    old: Option<&RawValue>,
    defaults: &FlinkConfiguration,
) -> Result<(), String> {
    match kind {
        FlinkKind::FlinkDeployment => {
            let new: FlinkDeployment = typed(object)?;
            let old: Option<FlinkDeployment> = old.and_then(|o| typed(o).ok());
            validation::validate_deployment(&new, old.as_ref(), defaults).map_err(|v| v.to_string())
        }
        FlinkKind::FlinkSessionJob => {
            let new: FlinkSessionJob = typed(object)?;
            let old: Option<FlinkSessionJob> = old.and_then(|o| typed(o).ok());
            validation::validate_session_job(&new, old.as_ref(), defaults).map_err(|v| v.to_string())
        }
    }
}

/// Reads a raw object as its typed resource; the error names the offending field. The path is tracked only
/// when the plain decoding failed: tracking it costs every request, and most requests are valid.
fn typed<T: DeserializeOwned>(object: &RawValue) -> Result<T, String> {
    serde_json::from_str(object.get()).map_err(|plain| {
        let value: Value = match serde_json::from_str(object.get()) {
            Ok(value) => value,
            Err(_) => return format!("request.object: {plain}"),
        };
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Err(e) => field_error(&e.path().to_string(), &e.inner().to_string()),
            // The JSON tree decodes where the text did not (a number form serde_json reads differently).
            Ok(_) => format!("request.object: {plain}"),
        }
    })
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
        (".", None) => format!("request.object: {inner}"),
        (path, None) => format!("{path}: {inner}"),
    }
}

fn deny_invalid(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let mut response = response.deny(message.clone());
    response.status = Status::failure(&message, "Invalid").with_code(422);
    response
}

fn finish(response: AdmissionResponse, kind: &'static str, operation: &'static str) -> Decision {
    let allowed = response.allowed;
    Decision {
        review: ReviewResponse {
            api_version: REVIEW_API_VERSION,
            kind: REVIEW_KIND,
            response,
        },
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
    use super::*;

    /// A review of a FlinkDeployment whose `request.object` is `object` (raw JSON text).
    fn review_with_object(object: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u",
            "kind":{{"group":"flink.apache.org","version":"v1beta1","kind":"FlinkDeployment"}},
            "resource":{{"group":"flink.apache.org","version":"v1beta1","resource":"flinkdeployments"}},
            "operation":"CREATE","userInfo":{{}},"object":{object}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn an_object_nested_far_beyond_the_parser_limit_is_denied_not_a_crash() {
        // The envelope keeps the object as raw text; every later decoding of it must stop at serde_json's
        // depth limit instead of recursing until the stack is gone.
        for depth in [200, 100_000] {
            let object = format!(r#"{{"spec":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                let decision = decide(endpoint, &review_with_object(&object), &FlinkConfiguration::new()).unwrap();
                assert!(!decision.allowed, "depth {depth}");
                let message = &decision.review.response.status.message;
                assert!(message.starts_with("request.object: "), "{message}");
            }
        }
    }

    #[test]
    fn a_valid_review_is_answered_with_its_uid_and_the_wire_fields() {
        let object = r#"{"apiVersion":"flink.apache.org/v1beta1","kind":"FlinkDeployment",
            "metadata":{"name":"a","namespace":"n"},"spec":{"image":"flink:1.20","flinkVersion":"v1_20",
            "serviceAccount":"flink","jobManager":{"resource":{"memory":"1024m","cpu":0.5}},
            "taskManager":{"resource":{"memory":"1024m","cpu":0.5}}}}"#;
        let body = review_with_object(object);
        let decision = decide(Endpoint::Validate, &body, &FlinkConfiguration::new()).unwrap();
        let wire = serde_json::to_value(&decision.review).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": "u", "allowed": true, "status": {}}})
        );
        let decision = decide(Endpoint::Mutate, &body, &FlinkConfiguration::new()).unwrap();
        let wire = serde_json::to_value(&decision.review).unwrap();
        assert_eq!(wire["response"]["patchType"], "JSONPatch");
        use base64::Engine as _;
        let patch = base64::engine::general_purpose::STANDARD
            .decode(wire["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([{"op": "add", "path": "/spec/mode", "value": "native"}])
        );
    }

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
            field_error(".", "invalid type: boolean `false`, expected struct FlinkDeployment"),
            "request.object: invalid type: boolean `false`, expected struct FlinkDeployment"
        );
        assert_eq!(
            field_error("spec.job.parallelism", "invalid type: string \"x\", expected i32"),
            "spec.job.parallelism: invalid type: string \"x\", expected i32"
        );
    }
}
