//! e2e on a real control plane (etcd + kube-apiserver): the operator runs as a child process under its own
//! RBAC identity, its webhook is registered with the API server, and everything is driven with real kubectl.
//!
//! Set `FLINK_OPERATOR_SKIP_E2E=1` to skip locally (CI never does).

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::cluster::{ControlPlane, OperatorEnv};
use support::{Operator, eventually, skip_e2e, write_certs};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(cluster: &ControlPlane, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&cluster.kubectl_ok(&all)).unwrap()
}

#[tokio::test]
async fn kubectl_gets_immediate_admission_feedback() {
    if skip_e2e() {
        return;
    }
    let env = OperatorEnv::start(true).await;
    let cluster = &env.cluster;

    // Webhook registration takes effect asynchronously in the API server: wait for the first denial.
    let parallelism_zero = repo().join("examples/invalid/parallelism-zero.yaml");
    eventually("the webhook to be in effect", Duration::from_secs(30), || async {
        let out = cluster.kubectl(&["apply", "--dry-run=server", "-f", parallelism_zero.to_str().unwrap()]);
        (!out.status.success() && stderr(&out).contains("denied the request")).then_some(())
    })
    .await;

    // Every invalid example fails at once with our message naming the field.
    let mut invalid: Vec<_> = std::fs::read_dir(repo().join("examples/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    invalid.sort();
    for file in &invalid {
        let text = std::fs::read_to_string(file).unwrap();
        let field = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-error:"))
            .unwrap()
            .trim()
            .to_string();
        let out = cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
        assert!(!out.status.success(), "{} was accepted", file.display());
        let err = stderr(&out);
        assert!(
            err.contains(&field),
            "{}: stderr does not name {field}:\n{err}",
            file.display()
        );
    }

    // Every valid example passes the webhook (server-side dry run: validated, not stored).
    let mut valid: Vec<_> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    valid.sort();
    for file in &valid {
        let out = cluster.kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "{} rejected:\n{}", file.display(), stderr(&out));
    }
    let out = cluster.kubectl(&["get", "flinkdeployment", "basic-example"]);
    assert!(
        !out.status.success() && stderr(&out).contains("NotFound"),
        "dry run stored the object"
    );

    // A valid deployment without mode is stored with the defaults.
    cluster.kubectl_ok(&["apply", "-f", repo().join("examples/basic.yaml").to_str().unwrap()]);
    let stored = get_json(cluster, &["get", "flinkdep", "basic-example"]);
    assert_eq!(stored["spec"]["mode"], "native");
    assert_eq!(stored["spec"]["job"]["upgradeMode"], "stateless");
    assert_eq!(stored["spec"]["job"]["state"], "running");

    // A session job gets its target label.
    cluster.kubectl_ok(&[
        "apply",
        "-f",
        repo()
            .join("examples/basic-session-deployment-and-job.yaml")
            .to_str()
            .unwrap(),
    ]);
    let jobs = get_json(cluster, &["get", "sessionjob"]);
    let job = &jobs["items"][0];
    assert_eq!(
        job["metadata"]["labels"]["target.session"],
        job["spec"]["deploymentName"]
    );

    // Switching native -> standalone is refused with its message.
    let out = cluster.kubectl(&[
        "patch",
        "flinkdep",
        "basic-example",
        "--type=merge",
        "-p",
        r#"{"spec":{"mode":"standalone"}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("spec.mode: cannot change from native to standalone"),
        "{}",
        stderr(&out)
    );

    // kubectl scale goes through the scale subresource.
    cluster.kubectl_ok(&["scale", "flinkdeployment/basic-example", "--replicas=3"]);
    let scaled = get_json(cluster, &["get", "flinkdep", "basic-example"]);
    assert_eq!(scaled["spec"]["taskManager"]["replicas"], 3);

    // kubectl explain shows the schema's descriptions.
    let explain = cluster.kubectl_ok(&["explain", "flinkdeployment.spec.job"]);
    for needle in [
        "jarURI",
        "upgradeMode",
        "savepointTriggerNonce",
        "How a running job is stopped and restored",
    ] {
        assert!(explain.contains(needle), "explain lacks {needle}:\n{explain}");
    }

    // The controller, under its own RBAC identity, saw the resource.
    eventually(
        "the controller to record observedGeneration",
        Duration::from_secs(30),
        || async {
            let d = get_json(cluster, &["get", "flinkdep", "basic-example"]);
            (d["status"]["observedGeneration"] == d["metadata"]["generation"]).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn controller_reports_invalid_specs_when_the_webhook_is_off() {
    if skip_e2e() {
        return;
    }
    let env = OperatorEnv::start(false).await;
    let cluster = &env.cluster;
    let file = repo().join("examples/invalid/parallelism-zero.yaml");
    cluster.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let name = "invalid-parallelism-zero";
    let name = if cluster.kubectl(&["get", "flinkdep", name]).status.success() {
        name.to_string()
    } else {
        get_json(cluster, &["get", "flinkdep"])["items"][0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let error = eventually("status.error", Duration::from_secs(30), || async {
        let d = get_json(cluster, &["get", "flinkdep", &name]);
        d["status"]["error"].as_str().map(str::to_string)
    })
    .await;
    assert!(error.contains("spec.job.parallelism"), "{error}");
    eventually("a ValidationError event", Duration::from_secs(30), || async {
        env.events(&name, "ValidationError")
            .iter()
            .any(|e| e["type"] == "Warning")
            .then_some(())
    })
    .await;

    // Fixing the spec clears the error.
    cluster.kubectl_ok(&[
        "patch",
        "flinkdep",
        &name,
        "--type=merge",
        "-p",
        r#"{"spec":{"job":{"parallelism":1}}}"#,
    ]);
    eventually("status.error to clear", Duration::from_secs(30), || async {
        let d = get_json(cluster, &["get", "flinkdep", &name]);
        (d["status"].get("error").is_none() && d["status"]["observedGeneration"] == d["metadata"]["generation"])
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_waits_for_crds_and_watches() {
    if skip_e2e() {
        return;
    }
    // The operator starts before the CRDs exist: it stays unready and says why.
    let cluster = ControlPlane::start();
    if !cluster.is_local() {
        eprintln!("USE_EXISTING_CLUSTER: CRDs cannot be removed from a shared cluster; readiness-before-CRDs not run");
        return;
    }
    cluster.grant_operator_rbac();
    let certs = tempfile::tempdir().unwrap();
    write_certs(certs.path());
    let cert = certs.path().join("tls.crt");
    let key = certs.path().join("tls.key");
    let kubeconfig = cluster.operator_kubeconfig.to_str().unwrap().to_string();
    let operator = Operator::start(
        &[
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
        &[("KUBECONFIG", &kubeconfig)],
        certs.path().join("operator.log"),
    );
    let client = reqwest::Client::new();
    // Unready from its first answer on (the start-up gate, then the CRDs), and it names the CRDs.
    eventually("/readyz to name the missing CRDs", Duration::from_secs(20), || async {
        let resp = client.get(operator.admin_url("/readyz")).send().await.ok()?;
        assert_eq!(resp.status(), 503, "ready without CRDs");
        let body: Value = resp.json().await.ok()?;
        body["waiting_for"]
            .as_array()?
            .iter()
            .any(|g| g == "crds")
            .then_some(())
    })
    .await;
    eventually("the log to say what to do", Duration::from_secs(20), || async {
        operator.logs().contains("waiting for the CRDs").then_some(())
    })
    .await;
    // Liveness is unaffected: waiting is not dying.
    assert_eq!(
        client
            .get(operator.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    cluster.install_crds();
    eventually(
        "readiness after the CRDs appear and every watch syncs",
        Duration::from_secs(30),
        || async {
            let resp = client.get(operator.admin_url("/readyz")).send().await.ok()?;
            (resp.status() == 200).then_some(())
        },
    )
    .await;
    let logs = operator.logs();
    for gate in ["watch:flinkdeployments:*", "watch:flinksessionjobs:*"] {
        assert!(logs.contains(gate), "no sync logged for {gate}:\n{logs}");
    }
}

/// A real Prometheus on loopback, scraping `target` every second; killed by PID on drop.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n  - job_name: flink-operator\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = support::free_port();
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_string());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus not found: run tests/env/install.sh (Debian package prometheus)");
        Prometheus { child, port, _dir: dir }
    }

    async fn query(&self, query: &str) -> Option<Vec<Value>> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let resp = reqwest::Client::new()
            .get(url)
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let body: Value = resp.json().await.ok()?;
        body["data"]["result"].as_array().cloned()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_operator_metrics() {
    if skip_e2e() {
        return;
    }
    let env = OperatorEnv::start(true).await;
    let cluster = &env.cluster;
    let invalid = repo().join("examples/invalid/missing-flink-version.yaml");
    eventually("a denial through the API server", Duration::from_secs(30), || async {
        let out = cluster.kubectl(&["apply", "-f", invalid.to_str().unwrap()]);
        stderr(&out).contains("spec.flinkVersion").then_some(())
    })
    .await;
    cluster.kubectl_ok(&["apply", "-f", repo().join("examples/basic.yaml").to_str().unwrap()]);

    let prometheus = Prometheus::start(&format!("127.0.0.1:{}", env.operator.admin_port));
    let ns = &cluster.namespace;
    let series = eventually("flink_operator_ series in Prometheus", Duration::from_secs(60), || async {
        let result = prometheus
            .query(r#"flink_operator_webhook_requests_total{endpoint="validate",kind="FlinkDeployment",operation="CREATE"}"#)
            .await?;
        let has_denied = result.iter().any(|s| s["metric"]["allowed"] == "false");
        let has_allowed = result.iter().any(|s| s["metric"]["allowed"] == "true");
        (has_denied && has_allowed).then_some(result)
    })
    .await;
    for s in &series {
        assert_eq!(s["metric"]["job"], "flink-operator");
    }
    let reconciles = eventually("reconcile metrics", Duration::from_secs(30), || async {
        prometheus
            .query(r#"flink_operator_reconciliations_total{kind="FlinkDeployment",result="ok"}"#)
            .await
            .filter(|r| !r.is_empty())
    })
    .await;
    assert!(!reconciles.is_empty());
    // Resource gauges by kind, namespace and lifecycle state, and by JobManager deployment status.
    eventually("resource gauges", Duration::from_secs(30), || async {
        let deployed = prometheus
            .query(&format!(
                r#"flink_operator_resources{{kind="FlinkDeployment",namespace="{ns}",lifecycle_state="DEPLOYED"}}"#
            ))
            .await?;
        let deploying = prometheus
            .query(&format!(
                r#"flink_operator_jobmanager_deployments{{namespace="{ns}",status="DEPLOYING"}}"#
            ))
            .await?;
        (deployed.first()?["value"][1] == "1" && deploying.first()?["value"][1] == "1").then_some(())
    })
    .await;
    let up = prometheus.query(r#"up{job="flink-operator"}"#).await.unwrap();
    assert_eq!(up[0]["value"][1], "1");
}

/// The guard against acting on the watch's stale copy rests on the API server refusing a status merge patch
/// whose `metadata.resourceVersion` is not the resource's current one; checked here on the real one.
/// A control plane with the CRDs and `examples/basic.yaml`, and an admin client of it (for tests that call the
/// operator's library against the real API server).
async fn control_plane_with_basic_example() -> (ControlPlane, kube::Client) {
    let cluster = ControlPlane::start();
    cluster.install_crds();
    let basic = repo().join("examples/basic.yaml");
    cluster.kubectl_ok(&["create", "-f", basic.to_str().unwrap()]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.admin_kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    (cluster, kube::Client::try_from(config).unwrap())
}

#[tokio::test]
async fn a_status_computed_from_an_old_copy_is_refused_by_the_api_server() {
    use flink_operator::controller::status::{StatusWrite, write};
    use flink_operator::crd::{FlinkDeployment, FlinkDeploymentStatus};
    use kube::ResourceExt;

    if skip_e2e() {
        return;
    }
    let (cluster, client) = control_plane_with_basic_example().await;
    let api: kube::Api<FlinkDeployment> = kube::Api::namespaced(client, &cluster.namespace);

    let old_copy = api.get("basic-example").await.unwrap();
    let old_version = old_copy.resource_version();
    let empty = FlinkDeploymentStatus::default();
    let with_error = |e: &str| FlinkDeploymentStatus {
        error: Some(e.to_string()),
        ..FlinkDeploymentStatus::default()
    };
    let first = write(
        &api,
        "basic-example",
        &empty,
        &with_error("first"),
        old_version.as_deref(),
    )
    .await
    .unwrap();
    let StatusWrite::Written(Some(new_version)) = first else {
        panic!("the first write, on the current copy, must be written: {first:?}");
    };
    assert_ne!(Some(&new_version), old_version.as_ref());

    // The old copy again: refused, and the status is the first write's.
    let second = write(
        &api,
        "basic-example",
        &empty,
        &with_error("second"),
        old_version.as_deref(),
    )
    .await
    .unwrap();
    assert_eq!(second, StatusWrite::Stale);
    let live = api.get("basic-example").await.unwrap();
    assert_eq!(live.resource_version(), Some(new_version.clone()));
    assert_eq!(live.status.and_then(|s| s.error).as_deref(), Some("first"));

    // On the current version it is written; without a version it always is; an unchanged status costs nothing.
    let third = write(
        &api,
        "basic-example",
        &with_error("first"),
        &with_error("third"),
        Some(&new_version),
    )
    .await
    .unwrap();
    assert!(matches!(third, StatusWrite::Written(Some(_))), "{third:?}");
    let fourth = write(&api, "basic-example", &with_error("third"), &with_error("fourth"), None)
        .await
        .unwrap();
    assert!(matches!(fourth, StatusWrite::Written(Some(_))), "{fourth:?}");
    let same = write(
        &api,
        "basic-example",
        &with_error("fourth"),
        &with_error("fourth"),
        old_version.as_deref(),
    )
    .await
    .unwrap();
    assert_eq!(same, StatusWrite::Unchanged);
    let live = api.get("basic-example").await.unwrap();
    assert_eq!(live.status.and_then(|s| s.error).as_deref(), Some("fourth"));
}

#[tokio::test]
async fn events_repeat_as_a_series_and_another_note_is_another_event() {
    use flink_operator::controller::events::{EventNote, EventType, Recorder};
    use flink_operator::crd::FlinkDeployment;
    use kube::Resource;

    if skip_e2e() {
        return;
    }
    let (cluster, client) = control_plane_with_basic_example().await;
    let api: kube::Api<FlinkDeployment> = kube::Api::namespaced(client.clone(), &cluster.namespace);
    let recorder = Recorder::new(client, "flink-operator", Some("e2e".into()));
    let note = |text| EventNote {
        type_: EventType::Warning,
        reason: "ApplyService",
        note: text,
        action: "Reconcile",
    };
    let regarding = api.get("basic-example").await.unwrap().object_ref(&());
    recorder.publish(&note("quota exceeded"), &regarding).await.unwrap();
    recorder.publish(&note("quota exceeded"), &regarding).await.unwrap();
    recorder.publish(&note("quota exceeded"), &regarding).await.unwrap();
    recorder
        .publish(&note("the Service port is taken"), &regarding)
        .await
        .unwrap();

    let events = get_json(&cluster, &["get", "events.v1.events.k8s.io", "-n", &cluster.namespace]);
    let mut seen: Vec<(String, i64, String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "ApplyService")
        .map(|e| {
            (
                e["note"].as_str().unwrap_or_default().to_string(),
                e["series"]["count"].as_i64().unwrap_or(1),
                e["reportingInstance"].as_str().unwrap_or_default().to_string(),
                e["regarding"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    let expected = |note: &str, count| (note.to_string(), count, "e2e".to_string(), "basic-example".to_string());
    assert_eq!(
        seen,
        vec![expected("quota exceeded", 3), expected("the Service port is taken", 1)],
        "{events:#}"
    );

    // An event the API server no longer has (deleted here; expired in real life) starts anew.
    cluster.kubectl_ok(&["delete", "events.v1.events.k8s.io", "--all", "-n", &cluster.namespace]);
    recorder.publish(&note("quota exceeded"), &regarding).await.unwrap();
    let events = get_json(&cluster, &["get", "events.v1.events.k8s.io", "-n", &cluster.namespace]);
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{events:#}");
    assert_eq!(items[0]["note"], "quota exceeded");
    assert!(items[0]["series"].is_null(), "{events:#}");

    // A note over the API server's 1024 bytes (here 400 characters of 3 bytes) is refused there; the recorder
    // sends it cut to fit, so it is shown shortened rather than lost.
    let wide = "\u{8a8d}".repeat(400);
    let wide_note = EventNote {
        reason: "SubmitFailed",
        ..note(&wide)
    };
    recorder.publish(&wide_note, &regarding).await.unwrap();
    let events = get_json(&cluster, &["get", "events.v1.events.k8s.io", "-n", &cluster.namespace]);
    let stored = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "SubmitFailed")
        .and_then(|e| e["note"].as_str())
        .unwrap_or_else(|| panic!("no SubmitFailed event: {events:#}"));
    assert!(stored.len() <= 1024 && stored.len() > 1000, "{} bytes", stored.len());
    assert!(stored.ends_with("...") && wide.starts_with(stored.trim_end_matches("...")));
}
