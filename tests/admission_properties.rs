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
                let response = &decision.review.response;
                if !response.allowed {
                    let message = &response.status.message;
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

// ---------------------------------------------------------------------------------------------------------
// The same and harsher input through the webhook's axum Router (body limit, timeout, JSON errors included).

/// One hostile request: the endpoint path, the body, and which family of input it is (for the figures).
#[derive(Clone)]
struct Hostile {
    path: &'static str,
    body: Vec<u8>,
    family: &'static str,
    /// The review's kind is a Flink kind: a denial must then start with a field path.
    flink_kind: bool,
    /// The request's uid as generated (null where there is none): an answer must carry it. Taken before
    /// encoding, since a body nested deeper than serde_json's limit cannot be decoded again here.
    uid: Value,
}

impl std::fmt::Debug for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.body);
        let shown: String = text.chars().take(3000).collect();
        write!(f, "{} {} ({} bytes): {shown}", self.family, self.path, self.body.len())
    }
}

/// `depth` levels of nested arrays or objects around `inner`.
fn nested(depth: usize, objects: bool, inner: Value) -> Value {
    (0..depth).fold(inner, |v, _| if objects { json!({ "a": v }) } else { json!([v]) })
}

/// Values a spec field should never hold: huge strings, deep nesting, wrong types.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any_json(),
        1 => (1_000usize..200_000, any::<char>()).prop_map(|(n, c)| Value::String(c.to_string().repeat(n))),
        1 => (1usize..200, any::<bool>()).prop_map(|(depth, objects)| nested(depth, objects, json!("x"))),
        1 => prop_oneof![
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1e308)),
            Just(json!("")),
            Just(json!("\u{0}\u{202e}\u{fffd}")),
            Just(json!([])),
            Just(json!({})),
        ],
    ]
}

fn endpoint_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("/validate"), Just("/mutate")]
}

/// Reviews of the examples with edits, and reviews whose envelope itself is wrong, and bytes.
fn hostile_request() -> impl Strategy<Value = Hostile> {
    let edited = (
        0usize..64,
        prop::collection::vec((any_path(), hostile_value()), 1..4),
        any::<bool>(),
        endpoint_path(),
    )
        .prop_map(|(example, edits, update, path)| {
            let all = examples();
            let original = all[example % all.len()].clone();
            let mut object = original.clone();
            for (at, value) in edits {
                put(&mut object, &at, value);
            }
            let (operation, old) = if update {
                ("UPDATE", Some(original))
            } else {
                ("CREATE", None)
            };
            let review = review(object, old, operation);
            Hostile {
                path,
                uid: review["request"]["uid"].clone(),
                body: serde_json::to_vec(&review).unwrap(),
                family: if update {
                    "example edited, UPDATE"
                } else {
                    "example edited, CREATE"
                },
                flink_kind: true,
            }
        });
    // The envelope: a request field replaced by something of the wrong type or value.
    let envelope = (
        0usize..64,
        prop_oneof![
            Just("/request/object"),
            Just("/request/oldObject"),
            Just("/request/operation"),
            Just("/request/uid"),
            Just("/request/kind"),
            Just("/request/kind/kind"),
            Just("/request/object/metadata"),
            Just("/request/object/spec"),
            Just("/request"),
            Just("/apiVersion"),
        ],
        hostile_value(),
        endpoint_path(),
    )
        .prop_map(|(example, pointer, value, path)| {
            let all = examples();
            let mut body = review(all[example % all.len()].clone(), None, "CREATE");
            if let Some(slot) = body.pointer_mut(pointer) {
                *slot = value;
            }
            let kind = body.pointer("/request/kind/kind").and_then(Value::as_str);
            let flink_kind = matches!(kind, Some("FlinkDeployment" | "FlinkSessionJob"));
            Hostile {
                path,
                uid: body.pointer("/request/uid").cloned().unwrap_or(Value::Null),
                body: serde_json::to_vec(&body).unwrap(),
                family: "envelope field of a wrong type",
                flink_kind,
            }
        });
    // Bytes: garbage, truncated reviews, JSON nested deeper than any parser limit.
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(|b| (b, "random bytes")),
        (0usize..64, 0.0f64..1.0).prop_map(|(example, cut)| {
            let all = examples();
            let full = serde_json::to_vec(&review(all[example % all.len()].clone(), None, "CREATE")).unwrap();
            let at = (full.len() as f64 * cut) as usize;
            (full[..at].to_vec(), "truncated review")
        }),
        (100usize..100_000).prop_map(|depth| {
            let mut b = Vec::with_capacity(depth * 2);
            b.extend(std::iter::repeat_n(b'[', depth));
            b.extend(std::iter::repeat_n(b']', depth));
            (b, "nesting 100-100k deep")
        }),
    ];
    let raw = (bytes, endpoint_path()).prop_map(|((body, family), path)| Hostile {
        path,
        body,
        family,
        flink_kind: false,
        uid: Value::Null,
    });
    prop_oneof![5 => edited, 2 => envelope, 2 => raw]
}

/// A field path at the start of a message: `spec.job.parallelism: ...`, `metadata.name: ...`.
fn starts_with_field_path(message: &str) -> bool {
    let Some((path, rest)) = message.split_once(": ") else {
        return false;
    };
    let roots = ["spec", "metadata", "apiVersion", "kind", "status", "request"];
    !rest.is_empty()
        && roots
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}.")) || path.starts_with(&format!("{r}[")))
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '-' | '_' | '/'))
}

#[test]
fn router_answers_a_hostile_corpus_with_reviews_or_json_errors() {
    use axum::body::Body;
    use flink_operator::webhook::{DEFAULT_BODY_LIMIT, WebhookState, router};
    use http_body_util::BodyExt;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use tower::ServiceExt;

    const CASES: u32 = 6000;
    let state = WebhookState {
        defaults: FlinkConfiguration::new(),
        metrics: flink_operator::telemetry::metrics::Metrics::new().unwrap(),
    };
    let app = router(
        std::sync::Arc::new(state),
        DEFAULT_BODY_LIMIT,
        std::time::Duration::from_secs(10),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // (family, outcome) -> count
    let figures: Mutex<BTreeMap<(String, String), usize>> = Mutex::new(BTreeMap::new());
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&hostile_request(), |case| {
        let request = axum::http::Request::post(case.path)
            .header("content-type", "application/json")
            .body(Body::from(case.body.clone()))
            .unwrap();
        let response = rt.block_on(app.clone().oneshot(request)).unwrap();
        let status = response.status();
        let bytes = rt.block_on(response.into_body().collect()).unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            TestCaseError::fail(format!(
                "{status}: body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        let outcome = if status == 200 {
            let response = &body["response"];
            // The answer names the request it answers.
            prop_assert_eq!(&response["uid"], &case.uid, "{}", body);
            if response["allowed"] == true {
                "allowed".to_string()
            } else {
                let message = response["status"]["message"].as_str().unwrap_or_default();
                prop_assert!(!message.is_empty(), "a denial without a message: {}", body);
                if case.flink_kind {
                    prop_assert!(
                        starts_with_field_path(message),
                        "denial does not start with a field path: {}",
                        message
                    );
                }
                "denied".to_string()
            }
        } else {
            prop_assert!(status.is_client_error(), "status {} for {}", status, case.family);
            let error = body["error"].as_str().unwrap_or_default();
            prop_assert!(!error.is_empty(), "an error without a message: {}", body);
            prop_assert_eq!(&body["code"], &json!(status.as_u16()));
            status.as_u16().to_string()
        };
        *figures
            .lock()
            .unwrap()
            .entry((case.family.to_string(), outcome))
            .or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let figures = figures.into_inner().unwrap();
    let total: usize = figures.values().sum();
    eprintln!(
        "{total} generated requests through the webhook router in {:.1}s:",
        started.elapsed().as_secs_f64()
    );
    for ((family, outcome), n) in &figures {
        eprintln!("  {family:<32} {outcome:<8} {n}");
    }
    assert!(total >= CASES as usize, "{total} cases");
    for family in [
        "example edited, CREATE",
        "example edited, UPDATE",
        "envelope field of a wrong type",
    ] {
        for outcome in ["allowed", "denied"] {
            let n = figures
                .get(&(family.to_string(), outcome.to_string()))
                .copied()
                .unwrap_or(0);
            assert!(
                n > 0,
                "no {outcome} case among {family}: the generators lost their reach"
            );
        }
    }
}
