//! e2e of leader election on a real control plane (etcd + kube-apiserver): several operator processes with
//! `--leader-election` under the operator's own RBAC identity (ClusterRole plus the generated leader election
//! Role: a missing Lease permission fails this test). One holds the Lease and alone reconciles; every one is
//! Ready and answers the webhook; a SIGKILLed leader is replaced within the lease duration, a SIGTERMed one
//! releases the Lease so the standby takes over at once; a leader that sees another holder, or cannot renew
//! within its renew deadline, exits non-zero.
//!
//! Set `FLINK_OPERATOR_SKIP_E2E=1` to skip locally (CI never does).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::Value;
use support::cluster::ControlPlane;
use support::{Operator, eventually, example, review, skip_e2e, tls_client, write_certs};

const LEASE: &str = "flink-operator-lease";
/// Short timings keep the test fast: `--leader-election-lease-duration` etc.
const LEASE_DURATION: Duration = Duration::from_secs(4);
const RENEW_DEADLINE: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(30);

/// An operator replica with leader election on, watching (and keeping its Lease in) the test namespace.
fn start_replica(cluster: &ControlPlane, certs: &Path, identity: &str) -> Operator {
    let secs = |d: Duration| format!("{}s", d.as_secs());
    let cert = certs.join("tls.crt");
    let key = certs.join("tls.key");
    let args = [
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--watch-namespaces",
        &cluster.namespace,
        "--leader-election",
        "--leader-election-namespace",
        &cluster.namespace,
        "--leader-election-identity",
        identity,
        "--leader-election-lease-duration",
        &secs(LEASE_DURATION),
        "--leader-election-renew-deadline",
        &secs(RENEW_DEADLINE),
        "--leader-election-retry-period",
        &secs(RETRY_PERIOD),
    ];
    let kubeconfig = cluster.operator_kubeconfig.to_str().unwrap().to_string();
    Operator::start(
        &args,
        &[("KUBECONFIG", &kubeconfig)],
        certs.join(format!("operator-{identity}.log")),
    )
}

/// The Lease as the admin reads it (a Rust client: polled every 20 ms for the take-over measurements).
async fn leases(cluster: &ControlPlane) -> Api<Lease> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.admin_kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    Api::namespaced(kube::Client::try_from(config).unwrap(), &cluster.namespace)
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits until `identity` holds the Lease; returns how long that took from `since`.
async fn wait_for_holder(api: &Api<Lease>, identity: &str, since: Instant, deadline: Duration) -> Duration {
    loop {
        if holder(api).await.as_deref() == Some(identity) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < deadline,
            "{identity} did not take the lease within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn transitions(api: &Api<Lease>) -> i32 {
    api.get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.lease_transitions)
        .unwrap_or_default()
}

/// Sum of every sample of the metric `name` (all label sets) on `operator`'s /metrics.
async fn metric(operator: &Operator, name: &str) -> f64 {
    let text = reqwest::get(operator.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn readyz(operator: &Operator) -> (u16, Value) {
    let resp = reqwest::get(operator.admin_url("/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Creates a FlinkDeployment `name` (examples/basic.yaml renamed) and waits for its JobManager Deployment.
async fn deploy_and_wait(cluster: &ControlPlane, name: &str) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic.yaml"))
        .unwrap()
        .replace("name: basic-example", &format!("name: {name}"));
    let out = cluster.apply_stdin(&text);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(&format!("the JobManager Deployment of {name}"), WAIT, || async {
        cluster
            .kubectl(&["get", "deployment", name])
            .status
            .success()
            .then_some(())
    })
    .await;
}

/// Both replicas admit a valid FlinkDeployment over TLS on their own webhook port.
async fn webhook_allows(operator: &Operator, ca: &[u8]) {
    let body: Value = tls_client(ca)
        .post(operator.webhook_url("/validate"))
        .json(&review("FlinkDeployment", "CREATE", example("basic.yaml"), None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["response"]["allowed"], true, "{body}");
}

#[tokio::test]
async fn one_leader_reconciles_and_a_standby_takes_over() {
    if skip_e2e() {
        return;
    }
    let cluster = ControlPlane::start();
    cluster.install_crds();
    cluster.grant_operator_rbac();
    cluster.grant_leader_election_rbac();
    let certs = tempfile::tempdir().unwrap();
    write_certs(certs.path());
    let ca = std::fs::read(certs.path().join("ca.crt")).unwrap();
    let api = leases(&cluster).await;
    let _logs = Logs(
        ["op-a", "op-b", "op-c", "op-d"]
            .iter()
            .map(|id| certs.path().join(format!("operator-{id}.log")))
            .collect(),
    );

    // The first replica creates the Lease and leads; the second stands by, Ready.
    let mut a = start_replica(&cluster, certs.path(), "op-a");
    wait_for_holder(&api, "op-a", Instant::now(), WAIT).await;
    a.wait_ready(WAIT).await;
    let mut b = start_replica(&cluster, certs.path(), "op-b");
    b.wait_ready(WAIT).await;
    assert_eq!(holder(&api).await.as_deref(), Some("op-a"));
    assert_eq!(transitions(&api).await, 0);
    assert_eq!(metric(&a, "flink_operator_leader").await, 1.0);
    assert_eq!(metric(&a, "flink_operator_leader_acquisitions_total").await, 1.0);
    assert_eq!(metric(&b, "flink_operator_leader").await, 0.0);
    assert_eq!(metric(&b, "flink_operator_leader_acquisitions_total").await, 0.0);
    let (status, body) = readyz(&a).await;
    assert_eq!((status, &body["leader"]), (200, &Value::Bool(true)), "{body}");
    let (status, body) = readyz(&b).await;
    assert_eq!((status, &body["leader"]), (200, &Value::Bool(false)), "{body}");
    // Every replica serves admission.
    webhook_allows(&a, &ca).await;
    webhook_allows(&b, &ca).await;

    // Only the leader reconciles: its writes grow, the standby's stay 0.
    deploy_and_wait(&cluster, "first").await;
    let a_writes = metric(&a, "flink_operator_api_writes_total").await;
    assert!(a_writes > 0.0, "the leader wrote nothing");
    assert!(metric(&a, "flink_operator_reconciliations_total").await > 0.0);
    assert_eq!(metric(&b, "flink_operator_api_writes_total").await, 0.0);
    assert_eq!(metric(&b, "flink_operator_reconciliations_total").await, 0.0);
    println!("writes while op-a leads: op-a {a_writes}, op-b 0");

    // SIGKILL the leader: the standby takes over once the Lease expires on its clock.
    let killed = Instant::now();
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let took = wait_for_holder(&api, "op-b", killed, LEASE_DURATION * 3).await;
    println!(
        "take-over after SIGKILL of the leader: {:.2}s (lease duration {LEASE_DURATION:?}, retry period {RETRY_PERIOD:?})",
        took.as_secs_f64()
    );
    assert!(
        took <= LEASE_DURATION + RETRY_PERIOD,
        "take-over took {took:?}, more than the lease duration plus a retry period"
    );
    assert_eq!(transitions(&api).await, 1);
    // The new leader reconciles a change.
    deploy_and_wait(&cluster, "second").await;
    b.wait_ready(WAIT).await;
    assert!(metric(&b, "flink_operator_api_writes_total").await > 0.0);
    assert_eq!(metric(&b, "flink_operator_leader").await, 1.0);
    assert_eq!(metric(&b, "flink_operator_leader_acquisitions_total").await, 1.0);

    // A graceful stop (SIGTERM) of the leader releases the Lease: the standby takes over well within the
    // lease duration.
    let mut c = start_replica(&cluster, certs.path(), "op-c");
    c.wait_ready(WAIT).await;
    assert_eq!(metric(&c, "flink_operator_leader").await, 0.0);
    let terminated = Instant::now();
    let status = b.terminate();
    let exited = terminated.elapsed();
    assert!(status.success(), "the leader exited with {status} on SIGTERM");
    assert!(b.logs().contains("released the lease"), "{}", b.logs());
    let took = wait_for_holder(&api, "op-c", terminated, LEASE_DURATION).await;
    println!(
        "take-over after SIGTERM of the leader (released lease): {:.2}s, the old leader exited after {:.2}s \
         (lease duration {LEASE_DURATION:?}, retry period {RETRY_PERIOD:?})",
        took.as_secs_f64(),
        exited.as_secs_f64()
    );
    assert!(took < LEASE_DURATION / 2, "take-over after a release took {took:?}");
    assert_eq!(transitions(&api).await, 2);
    deploy_and_wait(&cluster, "third").await;
    assert!(metric(&c, "flink_operator_api_writes_total").await > 0.0);

    // A leader that finds someone else in the Lease stops at once and exits non-zero (to be restarted).
    cluster.kubectl_ok(&[
        "patch",
        "lease",
        LEASE,
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":"intruder"}}"#,
    ]);
    let patched = Instant::now();
    let exit = wait_for_exit(&mut c, patched).await;
    println!(
        "a leader that lost its lease exited {:.2}s after the lease changed",
        patched.elapsed().as_secs_f64()
    );
    assert!(!exit.success(), "exited with {exit} after losing the lease");
    assert!(c.logs().contains("lost the lease"), "{}", c.logs());

    // A leader that cannot renew within the renew deadline (here: its Lease permission revoked) stops and
    // exits non-zero before a standby could take over (renew deadline < lease duration).
    let mut d = start_replica(&cluster, certs.path(), "op-d");
    wait_for_holder(&api, "op-d", Instant::now(), WAIT).await;
    d.wait_ready(WAIT).await;
    cluster.kubectl_ok(&["delete", "rolebinding", "flink-operator-leader-election"]);
    let revoked = Instant::now();
    let exit = wait_for_exit(&mut d, revoked).await;
    let stopped = revoked.elapsed();
    println!(
        "a leader without Lease access exited {:.2}s after the revocation (renew deadline {RENEW_DEADLINE:?})",
        stopped.as_secs_f64()
    );
    assert!(!exit.success(), "exited with {exit} after missing the renew deadline");
    assert!(d.logs().contains("within the renew deadline"), "{}", d.logs());
    assert!(
        stopped < RENEW_DEADLINE + RETRY_PERIOD * 2,
        "the leader kept going for {stopped:?} without renewing"
    );
}

async fn wait_for_exit(operator: &mut Operator, since: Instant) -> std::process::ExitStatus {
    loop {
        if let Ok(Some(status)) = operator.child.try_wait() {
            return status;
        }
        assert!(since.elapsed() < WAIT, "the operator did not exit within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints the operators' logs when the test fails.
struct Logs(Vec<std::path::PathBuf>);

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in &self.0 {
                eprintln!(
                    "{}:\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }
}
