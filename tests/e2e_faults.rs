//! Faults around the operator, on a real control plane: the API server killed mid-reconcile, and a Flink REST
//! endpoint that refuses, never answers, then answers (real Flink behind a switchable proxy).
//!
//! Each test prints its figures (`eprintln!`, shown with `--nocapture`). Set `FLINK_OPERATOR_SKIP_E2E=1` to
//! skip locally (CI never does).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::OperatorEnv;
use support::flink::FlinkCluster;
use support::proxy::{Mode, Proxy};
use support::{eventually, skip_e2e};

/// A native session cluster (no job): JobManager Deployment, headless and REST Services, ConfigMap.
fn session_yaml(name: &str) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic-session-deployment-only.yaml"),
    )
    .unwrap();
    text.replace("name: basic-session-cluster", &format!("name: {name}"))
}

fn apply(env: &OperatorEnv, yaml: &str) {
    let out = env.cluster.apply_stdin(yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Owned objects of kind `kind` per owner name (from their controller owner reference).
fn owned(env: &OperatorEnv, kind: &str) -> BTreeMap<String, Vec<String>> {
    let list = env.get_json(&["get", kind]);
    let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in list["items"].as_array().cloned().unwrap_or_default() {
        let refs = item["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let controllers: Vec<&Value> = refs.iter().filter(|r| r["controller"] == true).collect();
        if refs.iter().any(|r| r["kind"] == "FlinkDeployment") {
            assert_eq!(controllers.len(), 1, "one controller owner: {}", item["metadata"]);
            by_owner
                .entry(controllers[0]["name"].as_str().unwrap().to_string())
                .or_default()
                .push(item["metadata"]["name"].as_str().unwrap().to_string());
        }
    }
    by_owner
}

/// Whether the JobManager Deployment, the REST Service and the ConfigMap of `name` exist.
fn has_objects(env: &OperatorEnv, name: &str) -> bool {
    env.exists(&["deployment", name])
        && env.exists(&["service", &format!("{name}-rest")])
        && env.exists(&["configmap", &format!("flink-config-{name}")])
}

async fn ready_status(env: &OperatorEnv) -> u16 {
    match reqwest::get(env.operator.admin_url("/readyz")).await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn apiserver_killed_mid_reconcile_watches_resume_without_duplicates() {
    if skip_e2e() {
        return;
    }
    let mut env = OperatorEnv::start(false).await;
    if !env.cluster.is_local() {
        eprintln!("USE_EXISTING_CLUSTER: the API server cannot be restarted from here; skipped");
        return;
    }
    const BATCH: usize = 6;
    let names: Vec<String> = (0..BATCH).map(|i| format!("batch-{i}")).collect();
    let batch: Vec<String> = names.iter().map(|n| session_yaml(n)).collect();
    apply(&env, &batch.join("\n---\n"));
    // Killed while the operator works through the batch (it saw the creations a few ms ago).
    let killed = Instant::now();
    env.cluster.stop_apiserver();
    // How far the operator got: clusters whose objects were all applied before the kill.
    let applied_at_kill = env.operator.logs().matches(" applied ").count();
    eprintln!(
        "apiserver killed {:?} after the batch was created; {applied_at_kill} of {BATCH} clusters applied by then",
        killed.elapsed(),
    );
    // Down long enough for every watch to fail and back off.
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let healthz_during = reqwest::get(env.operator.admin_url("/healthz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    let readyz_during = ready_status(&env).await;
    env.cluster.start_apiserver();
    let back = Instant::now();
    eprintln!(
        "apiserver down for {:.1}s; during the outage /healthz {healthz_during}, /readyz {readyz_during}",
        down.elapsed().as_secs_f64()
    );
    let readyz = eventually("/readyz 200 after the restart", Duration::from_secs(60), || async {
        (ready_status(&env).await == 200).then_some(back.elapsed())
    })
    .await;
    eprintln!("/readyz 200 {:.2}s after the apiserver was back", readyz.as_secs_f64());
    assert!(
        env.operator.child.try_wait().unwrap().is_none(),
        "the operator exited when the API server went away:\n{}",
        env.operator.logs()
    );
    let present_after_restart = names.iter().filter(|n| has_objects(&env, n)).count();
    eprintln!("batch FlinkDeployments with all their objects right after the restart: {present_after_restart}/{BATCH}");

    // Watches resume: a FlinkDeployment created after the restart gets its cluster...
    apply(&env, &session_yaml("after-restart"));
    let created = Instant::now();
    eventually(
        "the post-restart FlinkDeployment's objects",
        Duration::from_secs(90),
        || async { has_objects(&env, "after-restart").then_some(()) },
    )
    .await;
    let first_reconcile = back.elapsed();
    // The watches retry every 8 s at most (WatchBackoff): one retry, a relist and a reconcile, with slack.
    assert!(
        first_reconcile < Duration::from_secs(20),
        "the operator took {first_reconcile:?} to reconcile after the API server came back"
    );
    eprintln!(
        "post-restart FlinkDeployment reconciled {:.1}s after it was created, {:.1}s after the apiserver was back",
        created.elapsed().as_secs_f64(),
        first_reconcile.as_secs_f64()
    );
    // ... and the whole batch is finished.
    eventually(
        "every batch FlinkDeployment's objects",
        Duration::from_secs(90),
        || async { names.iter().all(|n| has_objects(&env, n)).then_some(()) },
    )
    .await;
    eprintln!(
        "whole batch complete {:.1}s after the restart",
        back.elapsed().as_secs_f64()
    );
    // ... and a deleted owned Service comes back (the owned-object watches resumed too).
    let rest = "batch-0-rest";
    let old_uid = env.get_json(&["get", "service", rest])["metadata"]["uid"].clone();
    env.cluster.kubectl_ok(&["delete", "service", rest]);
    let deleted = Instant::now();
    eventually(
        "the deleted REST Service re-created",
        Duration::from_secs(60),
        || async {
            let uid = env.try_get_json(&["get", "service", rest])?["metadata"]["uid"].clone();
            (uid != old_uid).then_some(())
        },
    )
    .await;
    eprintln!(
        "deleted REST Service re-created after {:.2}s",
        deleted.elapsed().as_secs_f64()
    );

    // Exactly one of each object per FlinkDeployment: the interrupted applies were not doubled.
    let all: Vec<String> = names.iter().cloned().chain(["after-restart".to_string()]).collect();
    let deployments = owned(&env, "deployments");
    let services = owned(&env, "services");
    let configmaps = owned(&env, "configmaps");
    for name in &all {
        assert_eq!(deployments.get(name), Some(&vec![name.clone()]), "{deployments:?}");
        let mut expected = vec![name.clone(), format!("{name}-rest")];
        expected.sort();
        let mut got = services.get(name).cloned().unwrap_or_default();
        got.sort();
        assert_eq!(got, expected, "one headless and one REST Service");
        assert_eq!(
            configmaps.get(name),
            Some(&vec![format!("flink-config-{name}")]),
            "{configmaps:?}"
        );
        let d = env.get_json(&["get", "flinkdep", name]);
        assert_eq!(
            d["status"]["jobManagerDeploymentStatus"], "DEPLOYING",
            "{}",
            d["status"]
        );
        assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);
    }
    assert_eq!(deployments.len(), all.len(), "{deployments:?}");
    assert!(
        env.operator.child.try_wait().unwrap().is_none(),
        "the operator exited:\n{}",
        env.operator.logs()
    );
    let listening = env.operator.logs().matches("admin server listening").count();
    assert_eq!(listening, 1, "one process start in the operator log");
    eprintln!("operator process: never exited, started once");
}

/// Sum of `flink_operator_reconciliations_total{kind="FlinkDeployment"}`.
async fn reconciliations(env: &OperatorEnv) -> f64 {
    let text = reqwest::get(env.operator.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("flink_operator_reconciliations_total") && l.contains(r#"kind="FlinkDeployment""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn ready_condition(d: &Value) -> (String, String) {
    let c = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or_default();
    (
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits until the FlinkDeployment's Ready condition message contains `needle`; returns the message.
async fn condition_saying(env: &OperatorEnv, name: &str, needle: &str, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        let d = env.get_json(&["get", "flinkdep", name]);
        let (reason, message) = ready_condition(&d);
        if message.to_lowercase().contains(needle) {
            assert_eq!(reason, "RestNotReady", "{}", d["status"]);
            assert_eq!(d["status"]["jobManagerDeploymentStatus"], "DEPLOYED_NOT_READY");
            return message;
        }
        assert!(
            start.elapsed() < deadline,
            "no Ready condition mentioning {needle:?} after {deadline:?}; status:\n{:#}",
            d["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// Multi-threaded: the proxy keeps accepting while the test body blocks in kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_rest_refused_then_blackholed_then_answering() {
    if skip_e2e() {
        return;
    }
    // Real Flink starts in the background meanwhile (the slowest part on two cores).
    let flink = tokio::task::spawn_blocking(|| FlinkCluster::session("1.20.5"));
    let mut proxy = Proxy::start(Mode::Closed).await;
    // The default REST timeout: a blackholed call hangs this long.
    const TIMEOUT: Duration = Duration::from_secs(5);
    const INTERVAL: Duration = Duration::from_secs(2);
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("operator.yaml");
    std::fs::write(&config, "kubernetes.operator.reconcile.interval: 2s\n").unwrap();
    let mut env = OperatorEnv::start_with(
        false,
        &[
            "--flink-rest-url",
            &proxy.url(),
            "--flink-rest-timeout",
            "5s",
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .await;
    apply(&env, &session_yaml("slow-rest"));
    eventually("the JobManager Deployment", Duration::from_secs(60), || async {
        env.exists(&["deployment", "slow-rest"]).then_some(())
    })
    .await;
    // Playing the Deployment controller: the JobManager is up, so the operator asks its REST endpoint.
    env.set_deployment_status(
        "slow-rest",
        json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}),
    );

    // (a) Nothing listens: the status says the connection is refused; reconciles follow the requeue interval.
    let message = condition_saying(&env, "slow-rest", "refused", Duration::from_secs(60)).await;
    eprintln!("closed port: Ready condition: {message}");
    let window = Duration::from_secs(12);
    let before = reconciliations(&env).await;
    tokio::time::sleep(window).await;
    let refused_reconciles = reconciliations(&env).await - before;
    // One reconcile per interval (each tries GET /config 3 times, 0.6 s of backoff), plus one for slack.
    let bound = (window.as_secs_f64() / INTERVAL.as_secs_f64()).ceil() + 1.0;
    eprintln!("closed port: {refused_reconciles} reconciles in {window:?} (bound {bound}: requeue {INTERVAL:?})");
    assert!(refused_reconciles >= 1.0, "the operator stopped looking");
    assert!(
        refused_reconciles <= bound,
        "{refused_reconciles} reconciles in {window:?}"
    );

    // (b) A blackhole: connections accepted, never answered. Calls end at the REST timeout; other
    // resources are reconciled meanwhile.
    proxy.set_mode(Mode::Blackhole).await;
    let message = condition_saying(&env, "slow-rest", "timed out", Duration::from_secs(60)).await;
    eprintln!("blackhole: Ready condition: {message}");
    assert!(message.contains("after 5s"), "{message}");
    let accepted_before = proxy.accepted();
    let window_start = Instant::now();
    // Right when a call starts hanging, so a reconciler that waited for it would be late by seconds.
    eventually("a blackholed connection", Duration::from_secs(30), || async {
        (proxy.accepted() > accepted_before).then_some(())
    })
    .await;
    apply(&env, &session_yaml("meanwhile"));
    let created = Instant::now();
    eventually(
        "the second FlinkDeployment's objects during the blackhole",
        Duration::from_secs(60),
        || async { has_objects(&env, "meanwhile").then_some(()) },
    )
    .await;
    let meanwhile = created.elapsed();
    eprintln!(
        "blackhole: a FlinkDeployment created meanwhile got its objects after {:.2}s",
        meanwhile.as_secs_f64()
    );
    // Sooner than the hanging call ends: its reconcile did not wait behind it.
    assert!(meanwhile < TIMEOUT - Duration::from_secs(1), "{meanwhile:?}");
    let window = Duration::from_secs(21);
    tokio::time::sleep(window.saturating_sub(window_start.elapsed())).await;
    let attempts = proxy.accepted() - accepted_before;
    // A timed-out GET is not retried; each reconcile holds one connection for the timeout, then requeues
    // (plus slack for the window's edges).
    let bound = (window.as_secs_f64() / (TIMEOUT + INTERVAL).as_secs_f64()).ceil() as usize + 2;
    eprintln!(
        "blackhole: {attempts} connection attempts in {window:?} (bound {bound}: timeout {TIMEOUT:?}, requeue {INTERVAL:?})"
    );
    assert!(attempts >= 1, "the operator stopped trying");
    assert!(attempts <= bound, "{attempts} connections in {window:?}");
    assert!(env.operator.child.try_wait().unwrap().is_none(), "the operator exited");

    // (c) Real Flink behind the proxy: READY with the cluster's version, the condition True.
    let flink = flink.await.unwrap();
    let target: std::net::SocketAddr = flink
        .rest_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    proxy.set_mode(Mode::Forward(target)).await;
    let switched = Instant::now();
    let d = eventually("READY once Flink answers", Duration::from_secs(60), || async {
        let d = env.get_json(&["get", "flinkdep", "slow-rest"]);
        (d["status"]["jobManagerDeploymentStatus"] == "READY").then_some(d)
    })
    .await;
    let recovered = switched.elapsed();
    eprintln!(
        "forward: READY {:.2}s after Flink became reachable",
        recovered.as_secs_f64()
    );
    assert!(
        recovered < TIMEOUT + INTERVAL + Duration::from_secs(10),
        "{recovered:?}"
    );
    assert_eq!(d["status"]["clusterInfo"]["flink-version"], "1.20.5");
    let (reason, _) = ready_condition(&d);
    assert_eq!(reason, "Ready", "{}", d["status"]);
    assert_eq!(d["status"]["lifecycleState"], "STABLE");
    tokio::task::spawn_blocking(move || drop(flink)).await.unwrap();
}
