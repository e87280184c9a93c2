//! Hand-written schema fragments for fields the derive cannot describe.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A Kubernetes Pod (template) kept as-is: the API server must not prune its fields.
pub fn pod_template(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "A Pod template (apiVersion/kind/metadata/spec) merged into the generated pods; \
                        the main container is named flink-main-container.",
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true
    })
}

/// Flink configuration: flat `key: value` pairs or nested maps, as upstream accepts.
pub fn flink_configuration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Flink configuration (flat keys like state.savepoints.dir: file:///s, or nested YAML). \
                        kubernetes.operator.* keys configure the operator and are not passed to Flink.",
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true
    })
}
