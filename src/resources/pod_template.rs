//! Pod template merging as upstream does it: generated pod < `spec.podTemplate` < the component's
//! `podTemplate`. Maps merge recursively; lists of named items merge by `name` (so a template can add env
//! or mounts to `flink-main-container` instead of replacing the container); other lists are replaced by
//! the more specific template. Works on JSON, then reads the result back as a typed `PodTemplateSpec`.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

use super::{BuildError, Component};
use crate::crd::FlinkDeploymentSpec;

/// Lists whose items are identified by their `name`.
const NAMED_LISTS: [&str; 6] = [
    "containers",
    "initContainers",
    "volumes",
    "volumeMounts",
    "env",
    "ports",
];

/// Merges `overlay` into `base`; the overlay wins for scalars and unnamed lists.
pub fn merge(base: &mut Value, overlay: &Value) {
    merge_at(base, overlay, None);
}

fn merge_at(base: &mut Value, overlay: &Value, key: Option<&str>) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => merge_maps(base, overlay),
        (Value::Array(base), Value::Array(overlay)) if key.is_some_and(|k| NAMED_LISTS.contains(&k)) => {
            merge_named(base, overlay)
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

fn merge_maps(base: &mut Map<String, Value>, overlay: &Map<String, Value>) {
    for (key, value) in overlay {
        match base.get_mut(key) {
            Some(existing) => merge_at(existing, value, Some(key)),
            None => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Items with a name already in `base` merge into it (once: a repeated name in the overlay, e.g. one
/// volume mounted twice, is added as a second item); everything else is appended in order.
fn merge_named(base: &mut Vec<Value>, overlay: &[Value]) {
    let mut merged_names: Vec<String> = Vec::new();
    for item in overlay {
        let name = item_name(item);
        let target = name
            .filter(|n| !merged_names.iter().any(|m| m == n))
            .and_then(|n| base.iter_mut().find(|b| item_name(b) == Some(n)));
        match target {
            Some(existing) => {
                merged_names.extend(name.map(str::to_string));
                merge(existing, item);
            }
            None => base.push(item.clone()),
        }
    }
}

fn item_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

/// `spec.podTemplate` merged with the component's template; `None` when neither is set.
pub fn user_template(spec: &FlinkDeploymentSpec, component: Component) -> Result<Option<Value>, BuildError> {
    let common = spec.pod_template.as_ref();
    let specific = match component {
        Component::JobManager => spec.job_manager.as_ref().and_then(|jm| jm.pod_template.as_ref()),
        Component::TaskManager => spec.task_manager.as_ref().and_then(|tm| tm.pod_template.as_ref()),
    };
    let common = common.map(|t| checked(t, "spec.podTemplate".to_string())).transpose()?;
    let specific = specific
        .map(|t| checked(t, format!("{}.podTemplate", component.field())))
        .transpose()?;
    Ok(match (common, specific) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one),
        (Some(mut common), Some(specific)) => {
            merge(&mut common, &specific);
            Some(common)
        }
    })
}

/// A template as a map without `apiVersion`/`kind` (a Pod's, which a PodTemplateSpec does not have),
/// rejected with its field name when it cannot be read as a pod template.
fn checked(template: &Value, field: String) -> Result<Value, BuildError> {
    let Value::Object(map) = template else {
        return Err(BuildError::invalid(field, "must be a Pod template object"));
    };
    let mut map = map.clone();
    map.remove("apiVersion");
    map.remove("kind");
    let value = Value::Object(map);
    serde_json::from_value::<PodTemplateSpec>(value.clone())
        .map_err(|why| BuildError::invalid(field, format!("is not a usable Pod template: {why}")))?;
    Ok(value)
}

/// The generated pod with the user's templates merged over it.
pub fn apply(
    generated: PodTemplateSpec,
    spec: &FlinkDeploymentSpec,
    component: Component,
) -> Result<PodTemplateSpec, BuildError> {
    let Some(user) = user_template(spec, component)? else {
        return Ok(generated);
    };
    let field = || format!("{}.podTemplate", component.field());
    let mut pod = serde_json::to_value(&generated).map_err(|why| BuildError::invalid(field(), why.to_string()))?;
    merge(&mut pod, &user);
    serde_json::from_value(pod)
        .map_err(|why| BuildError::invalid(field(), format!("merged Pod template is not usable: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_recursively_and_scalars_are_replaced() {
        let mut base = json!({"metadata": {"labels": {"a": "1", "b": "1"}}, "spec": {"hostNetwork": false}});
        merge(
            &mut base,
            &json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"hostNetwork": true}}),
        );
        assert_eq!(
            base,
            json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}, "spec": {"hostNetwork": true}})
        );
    }

    #[test]
    fn named_lists_merge_by_name_and_append_new_items() {
        let mut base = json!({"containers": [
            {"name": "flink-main-container", "image": "flink", "env": [{"name": "A", "value": "1"}]}
        ]});
        merge(
            &mut base,
            &json!({"containers": [
                {"name": "flink-main-container", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                {"name": "sidecar", "image": "busybox"}
            ]}),
        );
        assert_eq!(
            base,
            json!({"containers": [
                {"name": "flink-main-container", "image": "flink",
                 "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]},
                {"name": "sidecar", "image": "busybox"}
            ]})
        );
    }

    #[test]
    fn other_lists_are_replaced_and_repeated_names_kept() {
        let mut base = json!({"args": ["a", "b"], "volumeMounts": [{"name": "v", "mountPath": "/x"}]});
        merge(
            &mut base,
            &json!({"args": ["c"], "volumeMounts": [
                {"name": "v", "mountPath": "/y"}, {"name": "v", "mountPath": "/z"}, {"mountPath": "/unnamed"}
            ]}),
        );
        assert_eq!(
            base,
            json!({"args": ["c"], "volumeMounts": [
                {"name": "v", "mountPath": "/y"}, {"name": "v", "mountPath": "/z"}, {"mountPath": "/unnamed"}
            ]})
        );
    }

    #[test]
    fn component_template_wins_over_common() {
        let spec: FlinkDeploymentSpec = serde_json::from_value(json!({
            "podTemplate": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"x": "common", "y": "common"}}},
            "taskManager": {"podTemplate": {"metadata": {"labels": {"x": "tm"}}}}
        }))
        .unwrap();
        let tm = user_template(&spec, Component::TaskManager).unwrap().unwrap();
        assert_eq!(tm, json!({"metadata": {"labels": {"x": "tm", "y": "common"}}}));
        let jm = user_template(&spec, Component::JobManager).unwrap().unwrap();
        assert_eq!(jm, json!({"metadata": {"labels": {"x": "common", "y": "common"}}}));
        assert_eq!(
            user_template(&FlinkDeploymentSpec::default(), Component::JobManager).unwrap(),
            None
        );
    }

    #[test]
    fn unusable_templates_name_their_field() {
        let spec: FlinkDeploymentSpec = serde_json::from_value(json!({
            "jobManager": {"podTemplate": {"spec": {"containers": "not a list"}}}
        }))
        .unwrap();
        let err = user_template(&spec, Component::JobManager).unwrap_err();
        assert!(matches!(err, BuildError::Invalid { field, .. } if field == "spec.jobManager.podTemplate"));
        let spec: FlinkDeploymentSpec = serde_json::from_value(json!({"podTemplate": ["x"]})).unwrap();
        let err = user_template(&spec, Component::TaskManager).unwrap_err();
        assert!(matches!(err, BuildError::Invalid { field, .. } if field == "spec.podTemplate"));
    }
}
