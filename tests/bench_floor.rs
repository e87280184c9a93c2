//! The benchmark's floor server (`examples/bench_helper/floor.rs`, see BENCHMARKS.md) answers an
//! AdmissionReview over TLS as a webhook must: allowed, with the request's uid. Nothing here is timed.

mod support;

#[path = "../examples/bench_helper/floor.rs"]
mod floor;

use support::{example, review, tls_client, write_certs};

#[tokio::test]
async fn floor_answers_a_review_over_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let config = floor::tls_config(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(floor::serve(listener, config));

    let client = tls_client(&std::fs::read(dir.path().join("ca.crt")).unwrap());
    let body = review("FlinkDeployment", "CREATE", example("basic.yaml"), None);
    for path in ["validate", "mutate"] {
        let answer: serde_json::Value = client
            .post(format!("https://127.0.0.1:{port}/{path}"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        assert_eq!(answer["response"]["uid"], body["request"]["uid"], "{answer}");
    }
}

/// The in-process answer the instruction count measures is the one the server sends.
#[test]
fn floor_answer_bytes_is_the_served_answer() {
    let body = review("FlinkDeployment", "CREATE", example("basic.yaml"), None);
    let answer: serde_json::Value =
        serde_json::from_slice(&floor::answer_bytes(&serde_json::to_vec(&body).unwrap())).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["uid"], body["request"]["uid"], "{answer}");
    assert_eq!(floor::answer_bytes(b"{not json"), b"not JSON");
}
