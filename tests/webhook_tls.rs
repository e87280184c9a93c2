//! The webhook over real TLS: the operator binary serving `/validate` and `/mutate`, reached by clients
//! that trust only the generated CA; malformed and hostile requests; certificate rotation without restart.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Operator, eventually, example, review, tls_client, write_certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Webhook {
    operator: Operator,
    client: reqwest::Client,
    ca: Vec<u8>,
    _dir: tempfile::TempDir,
}

async fn start_webhook(extra: &[&str]) -> Webhook {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let mut args = vec![
        "--no-controller",
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut operator = Operator::start(&args, &[], dir.path().join("operator.log"));
    operator.wait_ready(Duration::from_secs(20)).await;
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    Webhook {
        client: tls_client(&ca),
        operator,
        ca,
        _dir: dir,
    }
}

impl Webhook {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.operator.webhook_url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

fn response(review: &Value) -> &Value {
    &review["response"]
}

/// The review denies the request with a message containing `needle`.
fn assert_denied(review: &Value, needle: &str) {
    assert_eq!(response(review)["allowed"], false, "{review}");
    let message = response(review)["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "denial does not mention {needle}: {review}");
}

#[tokio::test]
async fn validates_and_mutates_over_tls() {
    let hook = start_webhook(&[]).await;

    // A valid example is allowed, and the uid is echoed.
    let (status, body) = hook
        .post(
            "/validate",
            &review("FlinkDeployment", "CREATE", example("basic.yaml"), None),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(response(&body)["allowed"], true, "{body}");
    assert_eq!(response(&body)["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");

    // An invalid one is denied with a message naming the field.
    let (status, body) = hook
        .post(
            "/validate",
            &review(
                "FlinkDeployment",
                "CREATE",
                example("invalid/parallelism-zero.yaml"),
                None,
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_denied(&body, "spec.job.parallelism");
    assert_eq!(response(&body)["status"]["code"], 422);

    // Switching native -> standalone on UPDATE is refused.
    let old = example("basic.yaml");
    let mut new = old.clone();
    new["spec"]["mode"] = json!("standalone");
    let (_, body) = hook
        .post(
            "/validate",
            &review("FlinkDeployment", "UPDATE", new, Some(old.clone())),
        )
        .await;
    assert_denied(&body, "spec.mode");

    // A metadata-only update of an invalid stored object (e.g. removing a finalizer) goes through.
    let invalid = example("invalid/parallelism-zero.yaml");
    let mut relabelled = invalid.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    let (_, body) = hook
        .post(
            "/validate",
            &review("FlinkDeployment", "UPDATE", relabelled.clone(), Some(invalid.clone())),
        )
        .await;
    assert_eq!(response(&body)["allowed"], true, "{body}");
    // ... and is not defaulted either: the operator adding its finalizer to an object stored without the
    // webhook must not change its spec (validation would then judge, and refuse, the finalizer).
    let mut finalized = invalid.clone();
    finalized["metadata"]["finalizers"] = json!(["flinkdeployments.flink.apache.org/finalizer"]);
    let (_, body) = hook
        .post(
            "/mutate",
            &review("FlinkDeployment", "UPDATE", finalized, Some(invalid.clone())),
        )
        .await;
    assert_eq!(response(&body)["allowed"], true, "{body}");
    assert!(response(&body)["patch"].is_null(), "{body}");
    // A spec change on UPDATE is still defaulted.
    let mut changed = invalid.clone();
    changed["spec"]["job"]["parallelism"] = json!(1);
    let (_, body) = hook
        .post("/mutate", &review("FlinkDeployment", "UPDATE", changed, Some(invalid)))
        .await;
    assert!(response(&body)["patch"].is_string(), "{body}");

    // A field of the wrong type is named in the denial.
    let mut wrong_type = example("basic.yaml");
    wrong_type["spec"]["job"]["parallelism"] = json!("two");
    let (_, body) = hook
        .post("/validate", &review("FlinkDeployment", "CREATE", wrong_type, None))
        .await;
    assert_denied(&body, "spec.job.parallelism");

    // Session jobs.
    let (_, body) = hook
        .post(
            "/validate",
            &review(
                "FlinkSessionJob",
                "CREATE",
                example("basic-session-job-only.yaml"),
                None,
            ),
        )
        .await;
    assert_eq!(response(&body)["allowed"], true, "{body}");
    let (_, body) = hook
        .post(
            "/validate",
            &review(
                "FlinkSessionJob",
                "CREATE",
                example("invalid/session-job-last-state.yaml"),
                None,
            ),
        )
        .await;
    assert_eq!(response(&body)["allowed"], false);

    // Mutation returns a JSON patch with the defaults.
    let (status, body) = hook
        .post(
            "/mutate",
            &review("FlinkDeployment", "CREATE", example("basic.yaml"), None),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(response(&body)["allowed"], true);
    assert_eq!(response(&body)["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response(&body)["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/mode" && op["value"] == "native"),
        "{patch}"
    );
    let (_, body) = hook
        .post(
            "/mutate",
            &review(
                "FlinkSessionJob",
                "CREATE",
                example("basic-session-job-only.yaml"),
                None,
            ),
        )
        .await;
    let patch = response(&body)["patch"]
        .as_str()
        .unwrap_or_else(|| panic!("no patch: {body}"));
    let patch = base64::engine::general_purpose::STANDARD.decode(patch).unwrap();
    assert!(String::from_utf8(patch).unwrap().contains("target.session"));

    // Another resource kind is denied with a reason; DELETE is allowed.
    let (_, body) = hook
        .post(
            "/validate",
            &review("Pod", "CREATE", json!({"metadata": {"name": "p"}}), None),
        )
        .await;
    assert_denied(&body, "only FlinkDeployment");
    let (_, body) = hook
        .post(
            "/validate",
            &review("FlinkDeployment", "DELETE", Value::Null, Some(example("basic.yaml"))),
        )
        .await;
    assert_eq!(response(&body)["allowed"], true);

    // Requests are counted by endpoint, operation, kind and outcome.
    let metrics = reqwest::get(hook.operator.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"flink_operator_webhook_requests_total{allowed="false",endpoint="validate",kind="FlinkDeployment",operation="CREATE"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("flink_operator_webhook_request_duration_seconds_bucket"));
    assert!(metrics.contains("process_resident_memory_bytes"));
}

/// The async runtime's worker threads of process `pid`: tokio names them `tokio-rt-worker`. Its blocking-pool
/// threads have that name too, but a webhook-only process starts none.
fn runtime_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "tokio-rt-worker")
        .count()
}

#[tokio::test]
async fn the_runtime_runs_as_many_workers_as_asked_one_by_default() {
    for (extra, workers) in [(&[][..], 1), (&["--worker-threads=3"][..], 3)] {
        let hook = start_webhook(extra).await;
        assert_eq!(runtime_workers(hook.operator.child.id()), workers, "{extra:?}");
        let (status, body) = hook
            .post(
                "/validate",
                &review("FlinkDeployment", "CREATE", example("basic.yaml"), None),
            )
            .await;
        assert_eq!((status, &response(&body)["allowed"]), (200, &json!(true)), "{body}");
    }
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let hook = start_webhook(&["--webhook-body-limit", "65536"]).await;
    let url = hook.operator.webhook_url("/validate");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"{{{".to_vec(), 400),
        ("empty body", Vec::new(), 400),
        ("wrong kind", br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(), 400),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            400,
        ),
        (
            "request of wrong shape",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#.to_vec(),
            400,
        ),
        ("oversized body", vec![b' '; 100_000], 413),
    ];
    for (what, body, expected) in cases {
        let resp = hook.client.post(&url).body(body).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{what}");
        let json: Value = resp.json().await.unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert!(json["error"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {json}");
    }
    let resp = hook.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let resp = hook
        .client
        .post(hook.operator.webhook_url("/validate/extra"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // The apiserver appends a query string: the path still matches.
    let body = review("FlinkDeployment", "CREATE", example("basic.yaml"), None);
    let resp = hook
        .client
        .post(format!("{url}?timeout=10s"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Still healthy after all that.
    assert_eq!(
        reqwest::get(hook.operator.admin_url("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

fn tls_connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn hostile_clients_are_refused_without_hurting_others() {
    let hook = start_webhook(&["--webhook-request-timeout", "1s"]).await;
    let addr = format!("127.0.0.1:{}", hook.operator.webhook_port);

    // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "plain-HTTP connection was not closed");
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "answered plain HTTP"
    );

    // Slow-loris: a TLS client that never finishes its headers, and one that never handshakes.
    let connector = tls_connector(&hook.ca);
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut slow = connector.connect(server_name, tcp).await.unwrap();
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();

    // Meanwhile a valid request is answered promptly.
    let started = Instant::now();
    let (status, _) = hook
        .post(
            "/validate",
            &review("FlinkDeployment", "CREATE", example("basic.yaml"), None),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "valid request took {:?}",
        started.elapsed()
    );

    // The slow client is cut off by the header-read timeout.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "slow-loris connection was kept open");
    drop(silent);
}

/// Lays out `dir` like a Kubernetes Secret volume: files are symlinks through `..data`, which is swapped
/// atomically to a new timestamped directory on update.
fn secret_volume_update(dir: &std::path::Path, generation: u32, certs_from: &std::path::Path) {
    let versioned = dir.join(format!("..v{generation}"));
    std::fs::create_dir_all(&versioned).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::copy(certs_from.join(file), versioned.join(file)).unwrap();
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(format!("..v{generation}"), &tmp_link).unwrap();
    std::fs::rename(&tmp_link, dir.join("..data")).unwrap();
}

#[tokio::test]
async fn certificate_rotation_without_restart() {
    let work = tempfile::tempdir().unwrap();
    let (first, second, volume) = (
        work.path().join("first"),
        work.path().join("second"),
        work.path().join("volume"),
    );
    write_certs(&first);
    write_certs(&second);
    std::fs::create_dir_all(&volume).unwrap();
    secret_volume_update(&volume, 1, &first);

    let cert = volume.join("tls.crt");
    let key = volume.join("tls.key");
    let mut operator = Operator::start(
        &[
            "--no-controller",
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--tls-reload-interval",
            "100ms",
        ],
        &[],
        work.path().join("operator.log"),
    );
    operator.wait_ready(Duration::from_secs(20)).await;
    let pid = operator.child.id();
    let old_ca_client = tls_client(&std::fs::read(first.join("ca.crt")).unwrap());
    let new_ca_client = tls_client(&std::fs::read(second.join("ca.crt")).unwrap());
    let body = review("FlinkDeployment", "CREATE", example("basic.yaml"), None);
    let url = operator.webhook_url("/validate");
    assert_eq!(old_ca_client.post(&url).json(&body).send().await.unwrap().status(), 200);
    assert!(
        new_ca_client.post(&url).json(&body).send().await.is_err(),
        "new CA trusted before rotation"
    );

    secret_volume_update(&volume, 2, &second);
    eventually(
        "the rotated certificate to be served",
        Duration::from_secs(10),
        || async {
            // A fresh client each time: a pooled connection would keep the old session.
            let client = tls_client(&std::fs::read(second.join("ca.crt")).unwrap());
            client
                .post(&url)
                .json(&body)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        },
    )
    .await;
    let fresh_old = tls_client(&std::fs::read(first.join("ca.crt")).unwrap());
    assert!(
        fresh_old.post(&url).json(&body).send().await.is_err(),
        "old certificate still served"
    );
    assert_eq!(operator.child.id(), pid);
    assert!(operator.child.try_wait().unwrap().is_none(), "operator restarted");
    assert!(operator.logs().contains("serving certificate reloaded"));

    // A broken update (key from another pair) is skipped; the current certificate keeps serving.
    std::fs::copy(first.join("tls.key"), volume.join("..v2/tls.key")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = tls_client(&std::fs::read(second.join("ca.crt")).unwrap());
    assert_eq!(client.post(&url).json(&body).send().await.unwrap().status(), 200);
    eventually("the mismatch to be reported", Duration::from_secs(5), || async {
        operator.logs().contains("not usable yet").then_some(())
    })
    .await;
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let mut hook = start_webhook(&[]).await;
    let status = hook.operator.terminate();
    assert!(
        status.success(),
        "exit status {status}; logs:\n{}",
        hook.operator.logs()
    );
    assert!(hook.operator.logs().contains("shutting down"));
}

#[tokio::test]
async fn unready_during_drain_while_a_request_is_in_flight() {
    let mut hook = start_webhook(&["--webhook-request-timeout", "3s", "--shutdown-timeout", "5s"]).await;
    let addr = format!("127.0.0.1:{}", hook.operator.webhook_port);
    // A request whose body is still arriving keeps the webhook draining after SIGTERM.
    let connector = tls_connector(&hook.ca);
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut slow = connector.connect(server_name, tcp).await.unwrap();
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = hook.operator.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let client = reqwest::Client::new();
    let body: Value = eventually(
        "readiness to turn 503 during the drain",
        Duration::from_secs(5),
        || async {
            let resp = client.get(hook.operator.admin_url("/readyz")).send().await.ok()?;
            (resp.status() == 503).then_some(())?;
            resp.json().await.ok()
        },
    )
    .await;
    assert_eq!(body["shutting_down"], true, "{body}");
    // Liveness still answers while draining.
    assert_eq!(
        client
            .get(hook.operator.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The in-flight request times out (3 s), the drain ends, the process exits cleanly.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = hook.operator.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    drop(slow);
}

#[tokio::test]
async fn operator_defaults_from_config_file_and_json_logs() {
    // Default Flink configuration from --config counts for validation, as upstream's defaults do:
    // a savepoint-mode job without its own directories is fine when the operator provides them.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "kubernetes.operator.reconcile.interval: 60 s\n\
         state.checkpoints.dir: file:///flink-data/checkpoints\n\
         state.savepoints.dir: file:///flink-data/savepoints\n",
    )
    .unwrap();
    let with_defaults = start_webhook(&["--config", config.path().to_str().unwrap(), "--log-format", "json"]).await;
    let without = start_webhook(&[]).await;
    let mut job = example("basic.yaml");
    job["spec"]["job"]["upgradeMode"] = json!("savepoint");
    let request = review("FlinkDeployment", "CREATE", job, None);

    let (_, body) = with_defaults.post("/validate", &request).await;
    assert_eq!(response(&body)["allowed"], true, "{body}");
    let (_, body) = without.post("/validate", &request).await;
    assert_eq!(response(&body)["allowed"], false, "{body}");

    // Every log line is a JSON object.
    let logs = with_defaults.operator.logs();
    assert!(!logs.trim().is_empty());
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["message"].is_string(), "{line}");
    }

    // A broken config file stops the process at start with a message naming it.
    std::fs::write(config.path(), "state.savepoints.dir: [not, a, scalar]\n").unwrap();
    let out = std::process::Command::new(support::operator_bin())
        .args([
            "run",
            "--no-controller",
            "--no-webhook",
            "--admin-addr",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(config.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("state.savepoints.dir") && stderr.contains(config.path().to_str().unwrap()),
        "{stderr}"
    );
}

/// Reads an HTTP/1.1 answer until the connection closes or `deadline`; returns (status, body, time taken).
async fn read_answer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, deadline: Duration) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(deadline.saturating_sub(started.elapsed()), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                // An answer with a Content-Length is complete once its body is in.
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .and_then(|l| l.trim().parse::<usize>().ok());
                    if length.is_some_and(|l| body.len() >= l) {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, started.elapsed())
}

#[tokio::test]
async fn many_hostile_clients_at_once_do_not_slow_a_valid_request() {
    let hook = start_webhook(&["--webhook-request-timeout", "2s", "--webhook-body-limit", "65536"]).await;
    let addr = format!("127.0.0.1:{}", hook.operator.webhook_port);
    let connector = tls_connector(&hook.ca);
    let name = || rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();

    // 30 connections that never handshake, 30 TLS clients that never finish their headers.
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut loris = Vec::new();
    for _ in 0..30 {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut tls = connector.connect(name(), tcp).await.unwrap();
        tls.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        tls.flush().await.unwrap();
        loris.push(tls);
    }
    // A body that trickles (headers complete, 1 of 1000 bytes sent), and one that claims 1 GiB.
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut trickle = connector.connect(name(), tcp).await.unwrap();
    trickle
        .write_all(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    trickle.flush().await.unwrap();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut huge = connector.connect(name(), tcp).await.unwrap();
    huge.write_all(
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{",
    )
    .await
    .unwrap();
    huge.flush().await.unwrap();

    // Meanwhile valid requests are answered promptly.
    let body = review("FlinkDeployment", "CREATE", example("basic.yaml"), None);
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let (status, answer) = hook.post("/validate", &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("10 valid requests beside 62 hostile connections: slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "a valid request took {slowest:?}");

    // The 1 GiB claim holds its connection no longer than the request timeout (2 s), then gets a JSON error.
    let (status, answer, took) = read_answer(&mut huge, Duration::from_secs(10)).await;
    eprintln!("declared 1 GiB body, 1 byte sent: {status} after {took:?}: {answer}");
    assert_eq!(status, 408, "{answer}");
    let json: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    assert!(json["error"].as_str().is_some_and(|m| !m.is_empty()), "{json}");

    // The trickling body runs into the request timeout (2 s): 408 with a JSON error.
    let (status, answer, took) = read_answer(&mut trickle, Duration::from_secs(10)).await;
    eprintln!("trickling body: {status} after {took:?}: {answer}");
    assert_eq!(status, 408, "{answer}");
    assert!(
        serde_json::from_str::<Value>(&answer).is_ok_and(|j| j["error"].is_string()),
        "{answer}"
    );

    // Every slow-loris connection is closed by the header timeout (2 s), without an answer.
    let started = Instant::now();
    for tls in loris.iter_mut() {
        let (status, _, _) = read_answer(tls, Duration::from_secs(10)).await;
        assert_ne!(status, 200);
    }
    let loris_closed = started.elapsed();
    eprintln!("30 slow-loris connections all closed {loris_closed:?} after the valid requests");
    assert!(loris_closed < Duration::from_secs(8), "{loris_closed:?}");
    // And the connections that never handshake (handshake timeout 5 s).
    let started = Instant::now();
    for tcp in silent.iter_mut() {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a connection that never handshakes was kept open");
    }
    eprintln!("30 silent connections all closed {:?} later", started.elapsed());
    assert_eq!(
        reqwest::get(hook.operator.admin_url("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_with_forward_secret_aead_suites() {
    let hook = start_webhook(&[]).await;
    let addr = format!("127.0.0.1:{}", hook.operator.webhook_port);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &hook.ca[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap_or_else(|e| panic!("{:?} handshake failed: {e}", version.version));
        let (_, conn) = tls.get_ref();
        let suite = format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite());
        eprintln!("{:?}: {suite}", conn.protocol_version().unwrap());
        assert_eq!(conn.protocol_version(), Some(version.version));
        assert!(suite.contains("GCM") || suite.contains("CHACHA20"), "{suite}");
        if version.version == rustls::ProtocolVersion::TLSv1_2 {
            assert!(suite.contains("ECDHE"), "{suite}");
        }
    }
    // TLS 1.1 and 1.0 (OpenSSL's client, with its own floor lifted) are refused by the server.
    for flag in ["-tls1_1", "-tls1"] {
        let out = std::process::Command::new("openssl")
            .args(["s_client", flag, "-cipher", "DEFAULT@SECLEVEL=0", "-connect", &addr])
            .env("OPENSSL_CONF", "/dev/null")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{flag} was accepted:\n{text}");
        eprintln!(
            "{flag}: {}",
            text.lines()
                .find(|l| l.contains("alert") || l.contains("error"))
                .unwrap_or("refused")
        );
        // "SSL alert number N" is an alert received from the server (rustls answers handshake_failure).
        assert!(
            text.contains("SSL alert number"),
            "{flag}: not refused by the server:\n{text}"
        );
    }
}
