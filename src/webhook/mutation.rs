//! Defaulting: what the mutating webhook adds to an object (pure).

use serde_json::{Value, json};

use super::admission::FlinkKind;

/// Label on a FlinkSessionJob naming its session cluster, so clusters can find their jobs.
pub const TARGET_SESSION_LABEL: &str = "target.session";

/// Returns `object` with the defaults filled in; present values are kept.
pub fn with_defaults(kind: FlinkKind, object: &Value) -> Value {
    let mut object = object.clone();
    match kind {
        FlinkKind::FlinkDeployment => {
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                if spec.get("mode").is_none_or(Value::is_null) {
                    spec.insert("mode".into(), json!("native"));
                }
                default_job(spec.get_mut("job"));
            }
        }
        FlinkKind::FlinkSessionJob => {
            let deployment_name = object
                .pointer("/spec/deploymentName")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                default_job(spec.get_mut("job"));
            }
            if let Some(name) = deployment_name
                && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
            {
                let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                if labels.is_null() {
                    *labels = json!({});
                }
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert(TARGET_SESSION_LABEL.into(), Value::String(name));
                }
            }
        }
    }
    object
}

fn default_job(job: Option<&mut Value>) {
    let Some(job) = job.and_then(Value::as_object_mut) else {
        return;
    };
    if job.get("upgradeMode").is_none_or(Value::is_null) {
        job.insert("upgradeMode".into(), json!("stateless"));
    }
    if job.get("state").is_none_or(Value::is_null) {
        job.insert("state".into(), json!("running"));
    }
}

/// The RFC 6902 patch that applies the defaults to `object` (empty when nothing is missing).
pub fn defaults_patch(kind: FlinkKind, object: &Value) -> json_patch::Patch {
    json_patch::diff(object, &with_defaults(kind, object))
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
