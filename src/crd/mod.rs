//! The `flink.apache.org/v1beta1` API: FlinkDeployment and FlinkSessionJob.

pub mod common;
pub mod deployment;
pub(crate) mod schema;
pub mod session_job;
pub mod status;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use deployment::{FlinkDeployment, FlinkDeploymentSpec};
pub use session_job::{FlinkSessionJob, FlinkSessionJobSpec};
pub use status::*;

pub const GROUP: &str = "flink.apache.org";

/// Both CRDs, as installed into a cluster.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![FlinkDeployment::crd(), FlinkSessionJob::crd()]
        .into_iter()
        .map(without_null_enum_values)
        .collect()
}

/// Makes the derived schema what API servers from 1.20 on handle well:
/// - no `null` among enum values and no `default`s taken from `Default` impls (rejected: "unknown object
///   type nil", "default ... must be of type string"; defaulting is the mutating webhook's job);
/// - no `nullable: true`: the OpenAPI v2 that older API servers publish drops the type and properties of
///   nullable fields, which leaves `kubectl explain` empty. Explicit nulls in user YAML are pruned by the
///   API server for non-nullable fields, as with upstream's CRDs.
fn without_null_enum_values(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                // Only as a schema keyword (next to type/description), never a property named "default".
                if map.contains_key("type") || map.contains_key("description") {
                    map.remove("default");
                    map.remove("nullable");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    for version in &mut crd.spec.versions {
        let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.take()) else {
            continue;
        };
        let Ok(mut value) = serde_json::to_value(&schema) else {
            continue;
        };
        strip(&mut value);
        let cleaned = serde_json::from_value(value).unwrap_or(schema);
        if let Some(s) = version.schema.as_mut() {
            s.open_api_v3_schema = Some(cleaned);
        }
    }
    crd
}

/// Both CRDs as one multi-document YAML stream (what `flink-operator crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn enums_list_no_null() {
        let yaml = super::crds_yaml().unwrap();
        assert!(!yaml.contains("- null"), "enum with null left in the CRDs");
        assert!(
            !yaml.lines().any(|l| l.trim_start().starts_with("default:")),
            "schema defaults left in the CRDs"
        );
        assert!(!yaml.contains("nullable:"), "nullable left in the CRDs");
        assert!(yaml.contains("- last-state") && yaml.contains("- v1_20"));
    }
}
