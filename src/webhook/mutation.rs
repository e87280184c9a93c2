//! Defaulting: what the mutating webhook adds to an object (pure).

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Value, json};

use super::admission::FlinkKind;

/// Label on a FlinkSessionJob naming its session cluster, so clusters can find their jobs.
pub const TARGET_SESSION_LABEL: &str = "target.session";

/// Returns `object` with the defaults filled in; present values are kept.
pub fn with_defaults(kind: FlinkKind, object: &Value) -> Value {
    let patch = defaults_patch(kind, object);
    let mut defaulted = object.clone();
    // The patch only adds members to objects it has just seen, so applying it cannot fail.
    let _ = json_patch::patch(&mut defaulted, &patch);
    defaulted
}

/// The RFC 6902 patch that applies the defaults to `object` (empty when nothing is missing). Built directly
/// from what is missing: diffing the whole object against a defaulted copy cost more than the rest of a
/// mutating request.
pub fn defaults_patch(kind: FlinkKind, object: &Value) -> json_patch::Patch {
    let mut patch = Vec::new();
    let spec = object.get("spec").and_then(Value::as_object);
    match kind {
        FlinkKind::FlinkDeployment => {
            if let Some(spec) = spec {
                if missing(spec.get("mode")) {
                    add(&mut patch, &["spec", "mode"], json!("native"));
                }
                default_job(&mut patch, spec.get("job"));
            }
        }
        FlinkKind::FlinkSessionJob => {
            if let Some(spec) = spec {
                default_job(&mut patch, spec.get("job"));
            }
            let deployment_name = spec.and_then(|s| s.get("deploymentName")).and_then(Value::as_str);
            let metadata = object.get("metadata").and_then(Value::as_object);
            if let (Some(name), Some(metadata)) = (deployment_name, metadata) {
                match metadata.get("labels") {
                    None | Some(Value::Null) => {
                        add(
                            &mut patch,
                            &["metadata", "labels"],
                            json!({ TARGET_SESSION_LABEL: name }),
                        );
                    }
                    Some(Value::Object(labels))
                        if labels.get(TARGET_SESSION_LABEL).and_then(Value::as_str) != Some(name) =>
                    {
                        add(&mut patch, &["metadata", "labels", TARGET_SESSION_LABEL], json!(name));
                    }
                    // Labels that are not an object are the API server's to refuse.
                    Some(_) => {}
                }
            }
        }
    }
    json_patch::Patch(patch)
}

fn missing(value: Option<&Value>) -> bool {
    value.is_none_or(Value::is_null)
}

fn default_job(patch: &mut Vec<PatchOperation>, job: Option<&Value>) {
    let Some(job) = job.and_then(Value::as_object) else {
        return;
    };
    if missing(job.get("upgradeMode")) {
        add(patch, &["spec", "job", "upgradeMode"], json!("stateless"));
    }
    if missing(job.get("state")) {
        add(patch, &["spec", "job", "state"], json!("running"));
    }
}

/// An `add`, which also replaces a member that is there (as null).
fn add(patch: &mut Vec<PatchOperation>, path: &[&str], value: Value) {
    patch.push(PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(object: &Value, patch: &json_patch::Patch) -> Value {
        let mut out = object.clone();
        json_patch::patch(&mut out, patch).unwrap();
        out
    }

    #[test]
    fn deployment_defaults_only_what_is_missing() {
        let object = json!({"metadata": {"name": "a"}, "spec": {"job": {"jarURI": "local:///j.jar"}}});
        let patch = defaults_patch(FlinkKind::FlinkDeployment, &object);
        let out = apply(&object, &patch);
        assert_eq!(out["spec"]["mode"], "native");
        assert_eq!(out["spec"]["job"]["upgradeMode"], "stateless");
        assert_eq!(out["spec"]["job"]["state"], "running");
        assert_eq!(out["spec"]["job"]["jarURI"], "local:///j.jar");
        // Idempotent: mutating the output again changes nothing.
        assert!(defaults_patch(FlinkKind::FlinkDeployment, &out).0.is_empty());
    }

    #[test]
    fn present_values_are_kept() {
        let object = json!({"spec": {"mode": "standalone", "job": {"upgradeMode": "savepoint", "state": "suspended"}}});
        assert!(defaults_patch(FlinkKind::FlinkDeployment, &object).0.is_empty());
    }

    #[test]
    fn session_cluster_gets_no_job() {
        let object = json!({"spec": {}});
        let out = apply(&object, &defaults_patch(FlinkKind::FlinkDeployment, &object));
        assert_eq!(out, json!({"spec": {"mode": "native"}}));
    }

    #[test]
    fn session_job_gets_target_label_and_job_defaults() {
        let object = json!({"metadata": {"name": "j"}, "spec": {"deploymentName": "session", "job": {}}});
        let out = apply(&object, &defaults_patch(FlinkKind::FlinkSessionJob, &object));
        assert_eq!(out["metadata"]["labels"]["target.session"], "session");
        assert_eq!(out["spec"]["job"]["upgradeMode"], "stateless");
        assert!(out["spec"].get("mode").is_none(), "session jobs have no mode");
        assert!(defaults_patch(FlinkKind::FlinkSessionJob, &out).0.is_empty());

        let existing = json!({"metadata": {"labels": {"team": "a", "target.session": "old"}}, "spec": {"deploymentName": "session"}});
        let out = apply(&existing, &defaults_patch(FlinkKind::FlinkSessionJob, &existing));
        assert_eq!(
            out["metadata"]["labels"],
            json!({"team": "a", "target.session": "session"})
        );
    }

    #[test]
    fn null_members_count_as_missing() {
        let object = json!({"spec": {"mode": null, "job": {"upgradeMode": null, "state": "suspended"}}});
        let out = with_defaults(FlinkKind::FlinkDeployment, &object);
        assert_eq!(
            out,
            json!({"spec": {"mode": "native", "job": {"upgradeMode": "stateless", "state": "suspended"}}})
        );
        let job = json!({"metadata": {"labels": null}, "spec": {"deploymentName": "s"}});
        let out = with_defaults(FlinkKind::FlinkSessionJob, &job);
        assert_eq!(out["metadata"]["labels"], json!({"target.session": "s"}));
        let numbered = json!({"metadata": {"labels": {"target.session": 1}}, "spec": {"deploymentName": "s"}});
        let out = with_defaults(FlinkKind::FlinkSessionJob, &numbered);
        assert_eq!(out["metadata"]["labels"], json!({"target.session": "s"}));
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for object in [
            json!(null),
            json!([]),
            json!({"spec": 3}),
            json!({"spec": {"job": "x"}}),
            json!({"metadata": null, "spec": {"deploymentName": "s"}}),
        ] {
            for kind in [FlinkKind::FlinkDeployment, FlinkKind::FlinkSessionJob] {
                let patch = defaults_patch(kind, &object);
                let _ = apply(&object, &patch);
            }
        }
    }
}
