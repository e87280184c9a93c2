//! Property test over the admission decision: thousands of generated AdmissionReviews, made by putting
//! arbitrary JSON values at arbitrary places of real examples. The webhook never panics, always answers
//! with a review or a JSON error, and every denial of a FlinkDeployment or FlinkSessionJob names a field.

use std::path::Path;

use flink_operator::crd::FlinkConfiguration;
use flink_operator::webhook::admission::{Endpoint, decide};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Every document of every example, read once.
fn examples() -> &'static [Value] {
    static EXAMPLES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(read_examples)
}

fn read_examples() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
                out.push(serde_json::to_value(value).unwrap());
            }
        }
    }
    out
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9:/._{}() -]{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("local:///x.jar"),
            Just("savepoint"),
            Just("last-state"),
            Just("standalone"),
            Just("2g")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths to put values at: real spec fields and some that do not exist.
fn any_path() -> impl Strategy<Value = Vec<String>> {
    let segment = prop_oneof![
        Just("spec"),
        Just("job"),
        Just("parallelism"),
        Just("jarURI"),
        Just("upgradeMode"),
        Just("state"),
        Just("flinkConfiguration"),
        Just("jobManager"),
        Just("taskManager"),
        Just("resource"),
        Just("memory"),
        Just("cpu"),
        Just("replicas"),
        Just("podTemplate"),
        Just("ingress"),
        Just("template"),
        Just("mode"),
        Just("flinkVersion"),
        Just("logConfiguration"),
        Just("deploymentName"),
        Just("metadata"),
        Just("name"),
        Just("labels"),
        Just("unknownField"),
    ]
    .prop_map(str::to_string);
    prop::collection::vec(segment, 1..5)
}

fn put(target: &mut Value, path: &[String], value: Value) {
    let mut current = target;
    for (i, key) in path.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else { return };
        if i + 1 == path.len() {
            map.insert(key.clone(), value);
            return;
        }
        current = map.entry(key.clone()).or_insert_with(|| json!({}));
    }
}

fn review(object: Value, old: Option<Value>, operation: &str) -> Value {
    let kind = object["kind"].as_str().unwrap_or("FlinkDeployment").to_string();
    let resource = if kind == "FlinkSessionJob" {
        "flinksessionjobs"
    } else {
        "flinkdeployments"
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u", "operation": operation, "userInfo": {},
            "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": kind},
            "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": resource},
            "namespace": "default", "object": object, "oldObject": old,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn admission_never_panics_and_denials_name_a_field(
        example in 0usize..64,
        edits in prop::collection::vec((any_path(), any_json()), 1..4),
        update in any::<bool>(),
        endpoint in prop_oneof![Just(Endpoint::Validate), Just(Endpoint::Mutate)],
    ) {
        let all = examples();
        let original = all[example % all.len()].clone();
        let mut object = original.clone();
        for (path, value) in edits {
            put(&mut object, &path, value);
        }
        let (operation, old) = if update { ("UPDATE", Some(original)) } else { ("CREATE", None) };
        let body = serde_json::to_vec(&review(object, old, operation)).unwrap();
        match decide(endpoint, &body, &FlinkConfiguration::new()) {
            Err(malformed) => prop_assert!(!malformed.0.is_empty()),
            Ok(decision) => {
                let response = decision.review.response.as_ref().expect("a review carries a response");
                if !response.allowed {
                    let message = &response.result.message;
                    let names_field = message.contains("spec") || message.contains("metadata")
                        || message.contains("object") || message.contains("kind") || message.contains("apiVersion");
                    prop_assert!(names_field, "denial names no field: {message}");
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let _ = decide(endpoint, &bytes, &FlinkConfiguration::new());
        }
    }
}
