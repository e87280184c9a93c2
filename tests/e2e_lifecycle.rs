//! e2e of the job lifecycle through the operator, against real Flink and a real API server.
//!
//! No node runs pods on this tier, so the test plays the kubelet for the one standalone application it
//! creates: when the operator creates the JobManager Deployment, the test starts a real Flink application
//! cluster on loopback exactly as that Deployment says (the operator's rendered configuration from its
//! ConfigMap, the container's `standalone-job` arguments including `--fromSavepoint`), and when the operator
//! deletes the Deployment the test stops those JVMs. Everything the operator does to the job goes through
//! Flink's REST API (`--flink-rest-url` points at the fixed loopback port).
//!
//! Set `FLINK_OPERATOR_SKIP_E2E=1` to skip locally (CI never does).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::OperatorEnv;
use support::flink::{ENTRY_CLASS, FlinkCluster, local_path};
use support::jar_server::JarServer;
use support::proxy::{Mode, Proxy};
use support::{eventually, free_port, skip_e2e};

const NAME: &str = "lifecycle";
/// Flink start-up on a busy 2-core machine, plus a savepoint.
const WAIT: Duration = Duration::from_secs(180);

/// The kubelet for one standalone application cluster.
struct Kubelet {
    version: &'static str,
    rest_port: u16,
    running: Option<(String, FlinkCluster)>,
    confs: tempfile::TempDir,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        // A failed test shows what Flink said.
        if std::thread::panicking()
            && let Some((_, cluster)) = &self.running
        {
            for log in ["jobmanager.log", "taskmanager.log"] {
                let text = std::fs::read_to_string(cluster.work.path().join(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {log} (last 40 lines)");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Kubelet {
    fn new(version: &'static str, rest_port: u16) -> Self {
        Kubelet {
            version,
            rest_port,
            running: None,
            confs: tempfile::tempdir().unwrap(),
        }
    }

    /// Waits for a new JobManager Deployment, runs it, marks it available; returns its job arguments.
    async fn run_next(&mut self, env: &OperatorEnv) -> Vec<String> {
        let previous = self.running.as_ref().map(|(uid, _)| uid.clone());
        let deployment = eventually("a new JobManager Deployment", WAIT, || async {
            let d = env.try_get_json(&["get", "deployment", NAME])?;
            let uid = d["metadata"]["uid"].as_str().map(str::to_string);
            (uid != previous).then_some(d)
        })
        .await;
        self.running = None;
        let uid = deployment["metadata"]["uid"].as_str().unwrap().to_string();
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let mut args: Vec<String> = serde_json::from_value(container["args"].clone()).unwrap();
        assert_eq!(args.first().map(String::as_str), Some("standalone-job"), "{args:?}");
        args.remove(0);
        let cm = env.get_json(&["get", "configmap", &format!("flink-config-{NAME}")]);
        let key = if self.version.starts_with("1.") {
            "flink-conf.yaml"
        } else {
            "config.yaml"
        };
        let conf = cm["data"][key].as_str().unwrap_or_else(|| panic!("no {key} in {cm}"));
        let conf_file = self.confs.path().join(format!("{uid}.yaml"));
        std::fs::write(&conf_file, conf).unwrap();
        let (version, port, job_args) = (self.version, self.rest_port, args.clone());
        let cluster =
            tokio::task::spawn_blocking(move || FlinkCluster::application(version, port, &conf_file, &job_args, 2))
                .await
                .unwrap();
        env.set_deployment_status(
            NAME,
            json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}),
        );
        self.running = Some((uid, cluster));
        args
    }

    /// Waits until the operator deleted the running JobManager Deployment (it may already have created the
    /// next one: no pods have to terminate on this tier), then stops its Flink processes.
    async fn await_deletion(&mut self, env: &OperatorEnv) {
        let running = self.running.as_ref().map(|(uid, _)| uid.clone());
        eventually("the JobManager Deployment deleted", WAIT, || async {
            let d = env.try_get_json(&["get", "deployment", NAME]);
            let uid = d
                .as_ref()
                .and_then(|d| d["metadata"]["uid"].as_str().map(str::to_string));
            (uid.is_none() || uid != running).then_some(())
        })
        .await;
        if let Some((_, cluster)) = self.running.take() {
            tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();
        }
    }

    fn cluster(&self) -> &FlinkCluster {
        &self.running.as_ref().expect("a running cluster").1
    }
}

fn deployment_yaml(version: &str, state_dir: &std::path::Path, upgrade_mode: &str) -> String {
    let (flink_version, image, dirs) = if version.starts_with("1.") {
        ("v1_20", "flink:1.20", ["state.checkpoints.dir", "state.savepoints.dir"])
    } else {
        (
            "v2_3",
            "flink:2.3",
            ["execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"],
        )
    };
    let state = state_dir.display();
    format!(
        r#"apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: {NAME}
spec:
  image: {image}
  flinkVersion: {flink_version}
  mode: standalone
  serviceAccount: flink
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    {}: file://{state}/checkpoints
    {}: file://{state}/savepoints
  jobManager:
    resource: {{memory: "1024m", cpu: 0.5}}
  taskManager:
    replicas: 1
    resource: {{memory: "1024m", cpu: 0.5}}
  job:
    jarURI: local:///opt/flink/usrlib/flink-test-job.jar
    entryClass: {ENTRY_CLASS}
    args: ["--checkpoint-interval", "1000", "--records-per-second", "20"]
    parallelism: 1
    upgradeMode: {upgrade_mode}
"#,
        dirs[0], dirs[1]
    )
}

/// One lifecycle test at a time: each runs two Flink JVMs, and two tests side by side on two cores make
/// Flink's start-up times, not the operator, the thing under test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(version: &'static str, upgrade_mode: &str) -> (OperatorEnv, u16, tempfile::TempDir) {
    start_named(version, upgrade_mode).await
}

async fn start_named(version: &'static str, upgrade_mode: &str) -> (OperatorEnv, u16, tempfile::TempDir) {
    let rest_port = free_port();
    let (env, state) = start_reaching(version, upgrade_mode, &format!("http://127.0.0.1:{rest_port}")).await;
    (env, rest_port, state)
}

/// The operator, reaching Flink's REST API at `rest_url`, and the FlinkDeployment.
async fn start_reaching(version: &'static str, upgrade_mode: &str, rest_url: &str) -> (OperatorEnv, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("operator.yaml");
    std::fs::write(&config, "kubernetes.operator.reconcile.interval: 2s\n").unwrap();
    let env = OperatorEnv::start_with(
        false,
        &["--flink-rest-url", rest_url, "--config", config.to_str().unwrap()],
    )
    .await;
    let out = env
        .cluster
        .apply_stdin(&deployment_yaml(version, state.path(), upgrade_mode));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (env, state)
}

/// Waits until the FlinkDeployment satisfies `check`; on timeout the panic shows its last status.
async fn wait_for(env: &OperatorEnv, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let d = env.get_json(&["get", "flinkdep", NAME]);
        if check(&d) {
            return d;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}; last status:\n{:#}",
            d["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn running_and_stable(env: &OperatorEnv) -> Value {
    wait_for(env, "job RUNNING and lifecycle STABLE", |d| {
        d["status"]["jobStatus"]["state"] == "RUNNING" && d["status"]["lifecycleState"] == "STABLE"
    })
    .await
}

fn patch(env: &OperatorEnv, body: Value) {
    env.cluster
        .kubectl_ok(&["patch", "flinkdep", NAME, "--type=merge", "-p", &body.to_string()]);
}

fn arg_after(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The first count the job printed for each key: 1 for a fresh start, more when the state was restored.
async fn first_counts(cluster: &FlinkCluster) -> Vec<(u64, u64)> {
    eventually("the job to print counts for every key", WAIT, || async {
        let counts = cluster.printed_counts();
        let mut first: Vec<(u64, u64)> = vec![];
        for (key, count) in counts {
            if !first.iter().any(|(k, _)| *k == key) {
                first.push((key, count));
            }
        }
        (first.len() >= 4).then_some(first)
    })
    .await
}

async fn restored_from(rest_url: &str) -> Option<String> {
    let client = flink_operator::flink::RestClient::new(Duration::from_secs(5));
    let jobs = client.jobs_overview(rest_url).await.ok()?;
    let job = jobs
        .iter()
        .find(|j| j.state == flink_operator::flink::JobState::Running)?;
    let stats = client.checkpoint_stats(rest_url, &job.jid).await.ok()?;
    stats.latest.restored.and_then(|r| r.external_path)
}

#[tokio::test]
async fn savepoints_upgrade_suspend_and_resume_on_flink_1_20() {
    savepoints_upgrade_suspend_and_resume("1.20.5").await;
}

#[tokio::test]
async fn savepoints_upgrade_suspend_and_resume_on_flink_2_3() {
    savepoints_upgrade_suspend_and_resume("2.3.0").await;
}

async fn savepoints_upgrade_suspend_and_resume(version: &'static str) {
    if skip_e2e() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (env, rest_port, _state) = start(version, "savepoint").await;
    let mut kubelet = Kubelet::new(version, rest_port);

    // First deployment: a fresh start.
    let args = kubelet.run_next(&env).await;
    assert_eq!(arg_after(&args, "--job-classname").as_deref(), Some(ENTRY_CLASS));
    assert!(!args.contains(&"--fromSavepoint".to_string()), "{args:?}");
    let d = running_and_stable(&env).await;
    let first_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    let jm_uid = env.get_json(&["get", "deployment", NAME])["metadata"]["uid"].clone();
    assert!(
        first_counts(kubelet.cluster()).await.iter().all(|(_, c)| *c == 1),
        "a fresh job counts from 1"
    );

    // A manual savepoint: recorded in status, on disk, and the job keeps running.
    patch(&env, json!({"spec": {"job": {"savepointTriggerNonce": 1}}}));
    let d = wait_for(&env, "a manual savepoint in status", |d| {
        d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["triggerType"] == "MANUAL"
    })
    .await;
    let manual = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(local_path(&manual).exists(), "savepoint {manual} not on disk");
    assert_eq!(
        d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["triggerNonce"],
        1
    );
    assert_eq!(d["status"]["jobStatus"]["jobId"], first_job.as_str());

    // An operator-only change (IGNORE): recorded, no restart, no new savepoint, Deployment untouched.
    let rv = env.get_json(&["get", "deployment", NAME])["metadata"]["resourceVersion"].clone();
    patch(
        &env,
        json!({"spec": {"flinkConfiguration": {"kubernetes.operator.savepoint.history.max.count": "5"}}}),
    );
    let d = wait_for(&env, "the operator-only change observed", |d| {
        d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["reconciliationStatus"]["lastReconciledSpec"]
                .as_str()
                .is_some_and(|s| s.contains("history.max.count"))
    })
    .await;
    assert_eq!(d["status"]["jobStatus"]["jobId"], first_job.as_str());
    assert_eq!(d["status"]["lifecycleState"], "STABLE");
    assert_eq!(
        d["status"]["jobStatus"]["savepointInfo"]["savepointHistory"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let deployment = env.get_json(&["get", "deployment", NAME]);
    assert_eq!(
        deployment["metadata"]["resourceVersion"], rv,
        "the JobManager Deployment was rewritten"
    );
    assert_eq!(deployment["metadata"]["uid"], jm_uid);

    // A savepoint upgrade (parallelism 1 -> 2): stop-with-savepoint, recorded, redeployed from it.
    patch(&env, json!({"spec": {"job": {"parallelism": 2}}}));
    wait_for(&env, "lifecycle UPGRADING", |d| {
        d["status"]["lifecycleState"] == "UPGRADING"
    })
    .await;
    kubelet.await_deletion(&env).await;
    let d = env.get_json(&["get", "flinkdep", NAME]);
    let upgrade_sp = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(upgrade_sp["triggerType"], "UPGRADE", "{}", d["status"]);
    let upgrade_sp = upgrade_sp["location"].as_str().unwrap().to_string();
    assert_ne!(upgrade_sp, manual);
    let args = kubelet.run_next(&env).await;
    assert_eq!(
        arg_after(&args, "--fromSavepoint").as_deref(),
        Some(upgrade_sp.as_str())
    );
    let d = running_and_stable(&env).await;
    let second_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert_ne!(second_job, first_job);
    assert!(!env.events(NAME, "SpecChanged").is_empty());
    let rest = kubelet.cluster().rest_url.clone();
    let restored = eventually("the job restored from the upgrade savepoint", WAIT, || async {
        restored_from(&rest).await
    })
    .await;
    assert_eq!(local_path(&restored), local_path(&upgrade_sp));
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(
        resumed.iter().all(|(_, c)| *c > 1),
        "counts restarted instead of resuming: {resumed:?}"
    );
    // The upgrade shows in the lifecycle metrics: its duration as time spent UPGRADING.
    let metrics = reqwest::get(env.operator.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("flink_operator_lifecycle_state_seconds_count") && l.contains(r#"state="UPGRADING""#)
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flink_operator_lifecycle_transitions_total")
                && l.contains(r#"from="STABLE""#)
                && l.contains(r#"to="UPGRADING""#)),
        "{metrics}"
    );

    // Suspend: stopped with a savepoint, nothing left running.
    patch(&env, json!({"spec": {"job": {"state": "suspended"}}}));
    kubelet.await_deletion(&env).await;
    let d = wait_for(&env, "lifecycle SUSPENDED", |d| {
        d["status"]["lifecycleState"] == "SUSPENDED"
    })
    .await;
    assert_eq!(d["status"]["jobStatus"]["state"], "SUSPENDED");
    let suspend_sp = d["status"]["jobStatus"]["upgradeSavepointPath"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"],
        suspend_sp.as_str()
    );
    assert!(!env.exists(&["deployment", &format!("{NAME}-taskmanager")]));

    // Resume: from the suspend savepoint.
    patch(&env, json!({"spec": {"job": {"state": "running"}}}));
    let args = kubelet.run_next(&env).await;
    assert_eq!(
        arg_after(&args, "--fromSavepoint").as_deref(),
        Some(suspend_sp.as_str())
    );
    running_and_stable(&env).await;

    // Delete: the cluster goes, then the resource.
    env.cluster.kubectl_ok(&["delete", "flinkdep", NAME, "--timeout=120s"]);
    kubelet.await_deletion(&env).await;
}

#[tokio::test]
async fn last_state_upgrade_without_ha_restores_the_latest_checkpoint_on_flink_1_20() {
    periodic_savepoints_and_last_state_upgrade("1.20.5").await;
}

#[tokio::test]
async fn last_state_upgrade_without_ha_restores_the_latest_checkpoint_on_flink_2_3() {
    periodic_savepoints_and_last_state_upgrade("2.3.0").await;
}

async fn periodic_savepoints_and_last_state_upgrade(version: &'static str) {
    if skip_e2e() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (env, rest_port, _state) = start(version, "last-state").await;
    let mut kubelet = Kubelet::new(version, rest_port);
    kubelet.run_next(&env).await;
    let d = running_and_stable(&env).await;
    let first_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert_eq!(d["status"]["clusterInfo"]["flink-version"], version);
    // Wait for a completed checkpoint to exist (the job checkpoints every second).
    let rest = kubelet.cluster().rest_url.clone();
    eventually("a completed checkpoint", WAIT, || async {
        let client = flink_operator::flink::RestClient::new(Duration::from_secs(5));
        let stats = client.checkpoint_stats(&rest, &first_job).await.ok()?;
        stats.latest.completed.and_then(|c| c.external_path)
    })
    .await;

    // Periodic savepoints (an operator-only change: no restart), recorded in status.
    patch(
        &env,
        json!({"spec": {"flinkConfiguration": {"kubernetes.operator.periodic.savepoint.interval": "3s"}}}),
    );
    let d = wait_for(&env, "a periodic savepoint in status", |d| {
        d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["triggerType"] == "PERIODIC"
    })
    .await;
    assert_eq!(
        d["status"]["jobStatus"]["jobId"],
        first_job.as_str(),
        "the job was restarted"
    );
    assert!(d["status"]["jobStatus"]["savepointInfo"]["lastPeriodicSavepointTimestamp"].is_number());
    let periodic = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(local_path(&periodic).exists(), "{periodic} not on disk");
    patch(
        &env,
        json!({"spec": {"flinkConfiguration": {"kubernetes.operator.periodic.savepoint.interval": null}}}),
    );

    patch(&env, json!({"spec": {"job": {"parallelism": 2}}}));
    kubelet.await_deletion(&env).await;
    let args = kubelet.run_next(&env).await;
    let from = arg_after(&args, "--fromSavepoint").expect("restores from the retained checkpoint");
    assert!(from.contains("chk-"), "not a checkpoint: {from}");
    let d = running_and_stable(&env).await;
    assert_ne!(d["status"]["jobStatus"]["jobId"], first_job.as_str());
    assert_ne!(
        d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["triggerType"], "UPGRADE",
        "last-state took a savepoint"
    );
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(
        resumed.iter().all(|(_, c)| *c > 1),
        "counts restarted instead of resuming: {resumed:?}"
    );
}

// Multi-threaded: the test's own servers (jars, REST proxy) keep answering while a blocking kubectl call waits
// on the operator (on one thread, a `kubectl delete` waiting for a finalizer starved the jar server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_job_submitted_upgraded_with_a_savepoint_and_cancelled_on_flink_1_20() {
    session_job_submitted_upgraded_and_cancelled("1.20.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_job_submitted_upgraded_with_a_savepoint_and_cancelled_on_flink_2_3() {
    session_job_submitted_upgraded_and_cancelled("2.3.0").await;
}

async fn session_job_submitted_upgraded_and_cancelled(version: &'static str) {
    if skip_e2e() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    // The session cluster's JobManager is a real Flink session cluster on loopback (the test plays the
    // kubelet by marking the operator's JobManager Deployment available).
    let flink = tokio::task::spawn_blocking(move || FlinkCluster::session(version))
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("operator.yaml");
    std::fs::write(&config, "kubernetes.operator.reconcile.interval: 2s\n").unwrap();
    // The jar comes over HTTPS (a certificate of a private CA, trusted through --jar-ca-file), then over HTTP.
    let jar = std::fs::read(support::flink::test_jar(version)).unwrap();
    let jar_certs = tempfile::tempdir().unwrap();
    support::write_certs(jar_certs.path());
    let https = JarServer::start(jar.clone(), Some(jar_certs.path())).await;
    let http = JarServer::start(jar, None).await;
    let jar_ca = jar_certs.path().join("ca.crt");
    let env = OperatorEnv::start_with(
        false,
        &[
            "--flink-rest-url",
            &flink.rest_url,
            "--config",
            config.to_str().unwrap(),
            "--jar-ca-file",
            jar_ca.to_str().unwrap(),
        ],
    )
    .await;
    let session = "basic-session-cluster";
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic-session-deployment-only.yaml");
    let mut session_yaml = std::fs::read_to_string(example).unwrap();
    if version.starts_with("2.") {
        session_yaml = session_yaml
            .replace("image: flink:1.20", "image: flink:2.3")
            .replace("flinkVersion: v1_20", "flinkVersion: v2_2");
    }
    let out = env.cluster.apply_stdin(&session_yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually("the session JobManager Deployment", WAIT, || async {
        env.exists(&["deployment", session]).then_some(())
    })
    .await;
    env.set_deployment_status(
        session,
        json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}),
    );

    let job = |parallelism: u32, jar_uri: &str| {
        format!(
            r#"apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: session-job
spec:
  deploymentName: {session}
  job:
    jarURI: {jar_uri}
    entryClass: {ENTRY_CLASS}
    args: ["--checkpoint-interval", "1000", "--records-per-second", "20"]
    parallelism: {parallelism}
    upgradeMode: savepoint
"#
        )
    };
    let out = env
        .cluster
        .apply_stdin(&job(1, &format!("{}/jobs/flink-test-job.jar", https.base)));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j = eventually("the session job RUNNING and STABLE", WAIT, || async {
        let j = env.get_json(&["get", "flinksessionjob", "session-job"]);
        (j["status"]["jobStatus"]["state"] == "RUNNING" && j["status"]["lifecycleState"] == "STABLE").then_some(j)
    })
    .await;
    let first = j["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert!(!env.events("session-job", "Submit").is_empty());

    // A savepoint upgrade: the running job stops with a savepoint; a new job starts from it.
    assert_eq!(https.requests(), 1, "the jar fetched once over HTTPS");
    // A server whose CA the operator does not trust: the submission fails, and says why.
    let other_certs = tempfile::tempdir().unwrap();
    support::write_certs(other_certs.path());
    let untrusted = JarServer::start(b"never fetched".to_vec(), Some(other_certs.path())).await;
    let out = env.cluster.apply_stdin(
        &job(1, &format!("{}/jobs/flink-test-job.jar", untrusted.base))
            .replace("name: session-job", "name: untrusted-job"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = eventually("the untrusted jar refused", WAIT, || async {
        let j = env.get_json(&["get", "flinksessionjob", "untrusted-job"]);
        let error = j["status"]["error"].as_str()?.to_string();
        error.contains("cannot fetch the job jar").then_some(error)
    })
    .await;
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert_eq!(untrusted.requests(), 0);
    env.cluster
        .kubectl_ok(&["delete", "flinksessionjob", "untrusted-job", "--timeout=60s"]);
    let out = env
        .cluster
        .apply_stdin(&job(2, &format!("{}/jobs/flink-test-job.jar", http.base)));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j = eventually("the upgraded session job RUNNING", WAIT, || async {
        let j = env.get_json(&["get", "flinksessionjob", "session-job"]);
        let id = j["status"]["jobStatus"]["jobId"].as_str().map(str::to_string);
        (j["status"]["jobStatus"]["state"] == "RUNNING" && id.is_some() && id != Some(first.clone())).then_some(j)
    })
    .await;
    let second = j["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert_eq!(http.requests(), 1, "the upgraded job's jar fetched once over HTTP");
    let savepoint = j["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(savepoint["triggerType"], "UPGRADE", "{}", j["status"]);
    let client = flink_operator::flink::RestClient::new(Duration::from_secs(10));
    let old = client.job_details(&flink.rest_url, &first).await.unwrap();
    assert_eq!(
        old.state,
        flink_operator::flink::JobState::Finished,
        "stopped with a savepoint"
    );
    let restored = eventually("the new job restored from the savepoint", WAIT, || async {
        let stats = client.checkpoint_stats(&flink.rest_url, &second).await.ok()?;
        stats.latest.restored.and_then(|r| r.external_path)
    })
    .await;
    assert_eq!(
        local_path(&restored),
        local_path(savepoint["location"].as_str().unwrap())
    );

    // Deleting the session job cancels its job; the session cluster stays.
    env.cluster
        .kubectl_ok(&["delete", "flinksessionjob", "session-job", "--timeout=60s"]);
    // Cancellation is asynchronous in Flink: CANCELLING, then CANCELED.
    eventually("the session job's Flink job CANCELED", WAIT, || async {
        let state = client.job_details(&flink.rest_url, &second).await.ok()?.state;
        (state == flink_operator::flink::JobState::Canceled).then_some(())
    })
    .await;
    assert!(env.exists(&["deployment", session]));
    tokio::task::spawn_blocking(move || drop(flink)).await.unwrap();
}

#[tokio::test]
async fn operator_killed_during_a_savepoint_upgrade_never_loses_the_savepoint() {
    if skip_e2e() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let (mut env, rest_port, _state) = start("1.20.5", "savepoint").await;
    let mut kubelet = Kubelet::new("1.20.5", rest_port);
    kubelet.run_next(&env).await;
    let d = running_and_stable(&env).await;
    let first_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();

    // Kill -9 right after the stop-with-savepoint was triggered and recorded.
    patch(&env, json!({"spec": {"job": {"parallelism": 2}}}));
    let d = wait_for(&env, "the upgrade's stop-with-savepoint recorded", |d| {
        d["status"]["jobStatus"]["savepointInfo"]["triggerType"] == "UPGRADE"
            && d["status"]["jobStatus"]["savepointInfo"]["triggerId"].is_string()
    })
    .await;
    let trigger = d["status"]["jobStatus"]["savepointInfo"]["triggerId"].clone();
    env.restart_operator().await;

    // The new process follows the recorded trigger: no second stop, the same savepoint restored.
    kubelet.await_deletion(&env).await;
    let d = env.get_json(&["get", "flinkdep", NAME]);
    let savepoint = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(savepoint["triggerType"], "UPGRADE", "{}", d["status"]);
    let location = savepoint["location"].as_str().unwrap().to_string();
    let args = kubelet.run_next(&env).await;
    assert_eq!(arg_after(&args, "--fromSavepoint").as_deref(), Some(location.as_str()));
    let d = running_and_stable(&env).await;
    assert_ne!(d["status"]["jobStatus"]["jobId"], first_job.as_str());
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(resumed.iter().all(|(_, c)| *c > 1), "state lost: {resumed:?}");
    assert!(!trigger.is_null());

    // Kill -9 once the restore point is settled (step DELETING), before the old cluster is deleted.
    let second_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    let kubelet_before = env.get_json(&["get", "deployment", NAME])["metadata"]["uid"].clone();
    patch(&env, json!({"spec": {"job": {"parallelism": 1}}}));
    let d = wait_for(&env, "the upgrade settled on its restore point", |d| {
        d["status"]["upgrade"]["step"] == "DELETING"
            || d["status"]["upgrade"].is_null() && d["status"]["lifecycleState"] != "STABLE"
    })
    .await;
    env.restart_operator().await;
    kubelet.await_deletion(&env).await;
    let args = kubelet.run_next(&env).await;
    let d2 = env.get_json(&["get", "flinkdep", NAME]);
    let location = d2["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        arg_after(&args, "--fromSavepoint").as_deref(),
        Some(location.as_str()),
        "{}",
        d["status"]
    );
    let d = running_and_stable(&env).await;
    assert_ne!(d["status"]["jobStatus"]["jobId"], second_job.as_str());
    assert_ne!(
        env.get_json(&["get", "deployment", NAME])["metadata"]["uid"],
        kubelet_before
    );
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(resumed.iter().all(|(_, c)| *c > 1), "state lost: {resumed:?}");
}

// Multi-threaded: the test's own servers (jars, REST proxy) keep answering while a blocking kubectl call waits
// on the operator (on one thread, a `kubectl delete` waiting for a finalizer starved the jar server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_before_the_stop_and_between_delete_and_deploy_never_loses_the_savepoint() {
    if skip_e2e() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    // The operator reaches Flink through a proxy the test switches off, to hold the upgrade before its stop.
    let rest_port = free_port();
    let flink_addr: std::net::SocketAddr = format!("127.0.0.1:{rest_port}").parse().unwrap();
    let mut proxy = Proxy::start(Mode::Forward(flink_addr)).await;
    let (mut env, _state) = start_reaching("1.20.5", "savepoint", &proxy.url()).await;
    let mut kubelet = Kubelet::new("1.20.5", rest_port);
    kubelet.run_next(&env).await;
    let d = running_and_stable(&env).await;
    let first_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert!(first_counts(kubelet.cluster()).await.iter().all(|(_, c)| *c == 1));

    // Kill 1: the new spec is recorded (UPGRADING, step STOPPING) but the stop was never sent: Flink's REST
    // endpoint is unreachable, so the operator cannot have sent it.
    proxy.set_mode(Mode::Closed).await;
    wait_for(&env, "the REST endpoint seen as unreachable", |d| {
        d["status"]["jobManagerDeploymentStatus"] == "DEPLOYED_NOT_READY"
    })
    .await;
    patch(&env, json!({"spec": {"job": {"parallelism": 2}}}));
    let d = wait_for(&env, "UPGRADING, step STOPPING, no stop trigger", |d| {
        d["status"]["lifecycleState"] == "UPGRADING"
            && d["status"]["upgrade"]["step"] == "STOPPING"
            && d["status"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("REST endpoint"))
    })
    .await;
    assert!(
        d["status"]["jobStatus"]["savepointInfo"]["triggerId"].is_null(),
        "{}",
        d["status"]
    );
    env.kill_operator();
    proxy.set_mode(Mode::Forward(flink_addr)).await;
    env.start_operator().await;
    // The new process stops the job with a savepoint, then deploys from it.
    kubelet.await_deletion(&env).await;
    let d = env.get_json(&["get", "flinkdep", NAME]);
    let savepoint = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(savepoint["triggerType"], "UPGRADE", "{}", d["status"]);
    let location = savepoint["location"].as_str().unwrap().to_string();
    assert!(local_path(&location).exists(), "{location} not on disk");
    let args = kubelet.run_next(&env).await;
    assert_eq!(arg_after(&args, "--fromSavepoint").as_deref(), Some(location.as_str()));
    let d = running_and_stable(&env).await;
    assert_ne!(d["status"]["jobStatus"]["jobId"], first_job.as_str());
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(resumed.iter().all(|(_, c)| *c > 1), "state lost: {resumed:?}");
    eprintln!("kill before the stop: resumed from {location} with counts {resumed:?}");

    // Kill 2: the old cluster is deleted but the new one not yet applied. A finalizer of the test's holds
    // the deleted JobManager Deployment until the operator is dead; then it goes.
    let second_job = d["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    env.cluster.kubectl_ok(&[
        "patch",
        "deployment",
        NAME,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["e2e.flink.apache.org/hold"]}}"#,
    ]);
    patch(&env, json!({"spec": {"job": {"parallelism": 1}}}));
    eventually("the old JobManager Deployment deleted (held)", WAIT, || async {
        let deployment = env.get_json(&["get", "deployment", NAME]);
        let d = env.get_json(&["get", "flinkdep", NAME]);
        (deployment["metadata"]["deletionTimestamp"].is_string() && d["status"]["upgrade"]["step"] == "DELETING")
            .then_some(())
    })
    .await;
    let d = env.get_json(&["get", "flinkdep", NAME]);
    let location = d["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        d["status"]["upgrade"]["restorePath"],
        location.as_str(),
        "{}",
        d["status"]
    );
    env.kill_operator();
    env.cluster.kubectl_ok(&[
        "patch",
        "deployment",
        NAME,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    kubelet.await_deletion(&env).await;
    assert!(
        !env.exists(&["deployment", NAME]),
        "the old JobManager Deployment is gone"
    );
    env.start_operator().await;
    let args = kubelet.run_next(&env).await;
    assert_eq!(
        arg_after(&args, "--fromSavepoint").as_deref(),
        Some(location.as_str()),
        "the new process deployed from the recorded savepoint"
    );
    let d = running_and_stable(&env).await;
    assert_ne!(d["status"]["jobStatus"]["jobId"], second_job.as_str());
    let resumed = first_counts(kubelet.cluster()).await;
    assert!(resumed.iter().all(|(_, c)| *c > 1), "state lost: {resumed:?}");
    eprintln!("kill between delete and deploy: resumed from {location} with counts {resumed:?}");
}
