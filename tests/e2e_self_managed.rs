//! e2e on a real control plane: self-managed webhook certificates. The operator runs under its own identity
//! with exactly the rules `flink_operator::rbac` declares for this mode (the chart's come from the same code),
//! creates its Secret, writes the caBundle into webhook configurations that start without one, and the API
//! server then calls the webhook over TLS with that bundle. A second operator reuses the Secret; a Secret
//! whose certificate is about to expire is renewed, at start and while running.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use flink_operator::certs;
use flink_operator::rbac;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::ObjectMeta;
use serde_json::Value;
use support::cluster::ControlPlane;
use support::{Operator, eventually, skip_e2e};

const SECRET: &str = "webhook-certs";
const CONFIGURATION: &str = "flink-operator-self-managed";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn apply(cluster: &ControlPlane, object: &impl serde::Serialize) {
    let out = cluster.apply_stdin(&serde_yaml::to_string(object).unwrap());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The operator identity gets the operator's ClusterRole plus exactly the self-managed certificate rules.
fn grant_self_managed_rbac(cluster: &ControlPlane) {
    cluster.grant_operator_rbac();
    apply(
        cluster,
        &Role {
            metadata: ObjectMeta {
                name: Some("flink-operator-certs".into()),
                namespace: Some(cluster.namespace.clone()),
                ..ObjectMeta::default()
            },
            rules: Some(rbac::certificate_secret_rules(SECRET)),
        },
    );
    apply(
        cluster,
        &ClusterRole {
            metadata: ObjectMeta {
                name: Some("flink-operator-webhook-configurations".into()),
                ..ObjectMeta::default()
            },
            rules: Some(rbac::webhook_configuration_rules(CONFIGURATION)),
            ..ClusterRole::default()
        },
    );
    let bindings = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: flink-operator-certs, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: flink-operator-certs}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: flink-operator}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: flink-operator-webhook-configurations}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flink-operator-webhook-configurations}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: flink-operator}}]
"#,
        ns = cluster.namespace
    );
    let out = cluster.apply_stdin(&bindings);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Webhook configurations at the operator's loopback URL with an EMPTY caBundle: only the operator's
/// patch can make the API server trust the webhook.
fn register_without_ca(cluster: &ControlPlane, port: u16, dir: &Path) {
    let empty = dir.join("empty-ca.pem");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(support::operator_bin())
        .args([
            "webhook-config",
            "--url",
            &format!("https://127.0.0.1:{port}"),
            "--ca-file",
        ])
        .arg(&empty)
        .args(["--timeout-seconds", "5", "--namespaces", &cluster.namespace])
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout).replace(
        &format!("name: {}\n", flink_operator::webhook::configuration::NAME),
        &format!("name: {CONFIGURATION}\n"),
    );
    let applied = cluster.apply_stdin(&yaml);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
}

fn start_operator(cluster: &ControlPlane, dir: &Path, tag: &str) -> Operator {
    let certs_dir = dir.join(tag);
    std::fs::create_dir_all(&certs_dir).unwrap();
    let cert = certs_dir.join("tls.crt");
    let key = certs_dir.join("tls.key");
    let kubeconfig = cluster.operator_kubeconfig.to_str().unwrap().to_string();
    let args = [
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-reload-interval",
        "200ms",
        "--watch-namespaces",
        &cluster.namespace,
        "--self-managed-certs-secret",
        SECRET,
        "--self-managed-certs-namespace",
        &cluster.namespace,
        "--webhook-dns-names",
        "127.0.0.1,localhost",
        "--webhook-configuration",
        CONFIGURATION,
        "--cert-check-interval",
        "1s",
    ];
    Operator::start(&args, &[("KUBECONFIG", &kubeconfig)], dir.join(format!("{tag}.log")))
}

fn secret(cluster: &ControlPlane) -> Value {
    serde_json::from_str(&cluster.kubectl_ok(&["get", "secret", SECRET, "-o", "json"])).unwrap()
}

fn secret_text(secret: &Value, key: &str) -> String {
    let b64 = secret["data"][key].as_str().unwrap_or_default();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

/// caBundles of both configurations (PEM text; empty when unset).
fn ca_bundles(cluster: &ControlPlane) -> Vec<String> {
    ["validatingwebhookconfiguration", "mutatingwebhookconfiguration"]
        .iter()
        .map(|kind| {
            let json: Value =
                serde_json::from_str(&cluster.kubectl_ok(&["get", kind, CONFIGURATION, "-o", "json"])).unwrap();
            let b64 = json["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or_default();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
        })
        .collect()
}

/// The certificate the webhook at `port` serves, verified against `ca_pem` (fails if the CA did not sign it).
async fn served_by(port: u16, ca_pem: &str) -> bool {
    support::tls_client(ca_pem.as_bytes())
        .get(format!("https://127.0.0.1:{port}/validate"))
        .send()
        .await
        .is_ok()
}

/// `kubectl apply` of an invalid FlinkDeployment is denied by the webhook (not by an unreachable one).
fn rejected_through_webhook(cluster: &ControlPlane) -> Result<(), String> {
    rejected_through_webhook_as(&cluster.admin_kubeconfig, &cluster.namespace)
}

fn rejected_through_webhook_as(kubeconfig: &Path, namespace: &str) -> Result<(), String> {
    let file = repo().join("examples/invalid/parallelism-zero.yaml");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", namespace, "apply", "--dry-run=server", "-f"])
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() && stderr.contains("denied the request") && stderr.contains("parallelism") {
        Ok(())
    } else {
        Err(stderr)
    }
}

#[tokio::test]
async fn self_managed_certificates_on_a_real_api_server() {
    if skip_e2e() {
        return;
    }
    let cluster = ControlPlane::start();
    cluster.install_crds();
    grant_self_managed_rbac(&cluster);
    let dir = tempfile::tempdir().unwrap();

    // 1. Operator A creates the Secret before its webhook serves, and patches the caBundle.
    let mut a = start_operator(&cluster, dir.path(), "a");
    a.wait_ready(Duration::from_secs(60)).await;
    let created = secret(&cluster);
    let ca = secret_text(&created, "ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{created}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a/tls.crt")).unwrap(),
        secret_text(&created, "tls.crt")
    );
    register_without_ca(&cluster, a.webhook_port, dir.path());
    eventually(
        "the operator to write the caBundle",
        Duration::from_secs(30),
        || async { (ca_bundles(&cluster) == vec![ca.clone(), ca.clone()]).then_some(()) },
    )
    .await;
    eventually(
        "the webhook to reject an invalid spec",
        Duration::from_secs(30),
        || async { rejected_through_webhook(&cluster).ok() },
    )
    .await;

    // 2. Operator B with the same Secret reuses it: same CA, same serving certificate, Secret not rewritten.
    let mut b = start_operator(&cluster, dir.path(), "b");
    b.wait_ready(Duration::from_secs(60)).await;
    let after_b = secret(&cluster);
    assert_eq!(
        after_b["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"],
        "operator B rewrote the Secret"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("b/tls.crt")).unwrap(),
        secret_text(&created, "tls.crt")
    );
    assert!(
        served_by(b.webhook_port, &ca).await,
        "B does not serve a certificate of the Secret's CA"
    );
    assert!(!b.logs().contains("webhook certificates written"), "{}", b.logs());

    // 3. Someone resets the caBundle (as a chart upgrade might): it is written back.
    register_without_ca(&cluster, a.webhook_port, dir.path());
    eventually("the caBundle to be restored", Duration::from_secs(30), || async {
        (ca_bundles(&cluster) == vec![ca.clone(), ca.clone()]).then_some(())
    })
    .await;

    // 4. Rotation while both run and the API server keeps calling the webhook: the Secret's serving certificate
    // is replaced by one of the same CA that expires within --cert-renew-before. It is renewed and served by both,
    // and not one admission request fails in between (each is denied by the webhook, naming the field).
    let ca_now = certs::Ca {
        cert_pem: ca.clone(),
        key_pem: secret_text(&created, "ca.key"),
    };
    let (due_cert, due_key) =
        certs::issue_serving(&ca_now, &["localhost".into()], &["127.0.0.1".parse().unwrap()], 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let denied = Arc::new(AtomicU32::new(0));
    let prober = {
        let (stop, denied, admin) = (stop.clone(), denied.clone(), cluster.admin_kubeconfig.clone());
        let namespace = cluster.namespace.clone();
        std::thread::spawn(move || {
            let mut failed = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match rejected_through_webhook_as(&admin, &namespace) {
                    Ok(()) => _ = denied.fetch_add(1, Ordering::SeqCst),
                    Err(e) => failed.push(e),
                }
            }
            failed
        })
    };
    let patch = serde_json::json!({
        "data": {
            "tls.crt": base64::engine::general_purpose::STANDARD.encode(&due_cert),
            "tls.key": base64::engine::general_purpose::STANDARD.encode(&due_key),
        }
    });
    cluster.kubectl_ok(&["patch", "secret", SECRET, "--type=merge", "-p", &patch.to_string()]);
    let rotated = eventually("the due certificate to be renewed", Duration::from_secs(30), || async {
        let cert = secret_text(&secret(&cluster), "tls.crt");
        (cert != due_cert && cert != secret_text(&created, "tls.crt")).then_some(cert)
    })
    .await;
    for tag in ["a", "b"] {
        eventually("the rotated certificate on disk", Duration::from_secs(30), || async {
            (std::fs::read_to_string(dir.path().join(tag).join("tls.crt")).unwrap_or_default() == rotated).then_some(())
        })
        .await;
    }
    // A few more requests once both have it on disk (the reloader picks files up within 200 ms).
    let at_rotation = denied.load(Ordering::SeqCst);
    eventually(
        "admission requests after the rotation",
        Duration::from_secs(30),
        || async { (denied.load(Ordering::SeqCst) >= at_rotation + 5).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let failed = prober.join().unwrap();
    let denied = denied.load(Ordering::SeqCst);
    eprintln!(
        "rotation: {denied} admission requests denied by the webhook as expected, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "admission failed during the rotation: {failed:#?}");
    assert_eq!(
        ca_bundles(&cluster),
        vec![ca.clone(), ca.clone()],
        "same CA: the bundle must not change"
    );

    // 5. While both run, the Secret is replaced by certificates that expire tomorrow (new CA, 1-day serving
    // certificate): within a check interval they are renewed, both operators serve the renewed certificate,
    // the caBundle trusts it, and admission keeps working.
    let expiring = certs::generate(&["localhost".into()], &["127.0.0.1".parse().unwrap()], 1).unwrap();
    let ca_key_of_expiring = "not used: the operator starts over when the CA is about to expire";
    let patch = serde_json::json!({
        "data": {
            "ca.crt": base64::engine::general_purpose::STANDARD.encode(&expiring.ca_pem),
            "ca.key": base64::engine::general_purpose::STANDARD.encode(ca_key_of_expiring),
            "tls.crt": base64::engine::general_purpose::STANDARD.encode(&expiring.cert_pem),
            "tls.key": base64::engine::general_purpose::STANDARD.encode(&expiring.key_pem),
        }
    });
    cluster.kubectl_ok(&["patch", "secret", SECRET, "--type=merge", "-p", &patch.to_string()]);
    let renewed = eventually(
        "the expiring certificate to be renewed",
        Duration::from_secs(30),
        || async {
            let s = secret(&cluster);
            let cert = secret_text(&s, "tls.crt");
            (cert != expiring.cert_pem && cert != secret_text(&created, "tls.crt")).then_some(s)
        },
    )
    .await;
    let new_ca = secret_text(&renewed, "ca.crt");
    let new_cert = secret_text(&renewed, "tls.crt");
    assert_ne!(new_ca, expiring.ca_pem);
    let not_after = certs::not_after(&new_cert).unwrap();
    assert!(
        not_after > time::OffsetDateTime::now_utc() + time::Duration::days(300),
        "renewed certificate expires at {not_after}"
    );
    for (op, tag) in [(&a, "a"), (&b, "b")] {
        eventually(
            "the renewed certificate on disk and served",
            Duration::from_secs(30),
            || async {
                let on_disk = std::fs::read_to_string(dir.path().join(tag).join("tls.crt")).unwrap_or_default();
                (on_disk == new_cert && served_by(op.webhook_port, &new_ca).await).then_some(())
            },
        )
        .await;
    }
    eventually("the caBundle to trust the new CA", Duration::from_secs(30), || async {
        ca_bundles(&cluster)
            .iter()
            .all(|bundle| bundle.starts_with(&new_ca))
            .then_some(())
    })
    .await;
    rejected_through_webhook(&cluster).unwrap();

    // 6. A restart with a Secret whose serving certificate expires within --cert-renew-before (same, valid CA):
    // the new process renews it before serving and keeps the CA.
    b.terminate();
    a.terminate();
    let ca_now = certs::Ca {
        cert_pem: new_ca.clone(),
        key_pem: secret_text(&renewed, "ca.key"),
    };
    let (short_cert, short_key) =
        certs::issue_serving(&ca_now, &["localhost".into()], &["127.0.0.1".parse().unwrap()], 2).unwrap();
    let patch = serde_json::json!({
        "data": {
            "tls.crt": base64::engine::general_purpose::STANDARD.encode(&short_cert),
            "tls.key": base64::engine::general_purpose::STANDARD.encode(&short_key),
        }
    });
    cluster.kubectl_ok(&["patch", "secret", SECRET, "--type=merge", "-p", &patch.to_string()]);
    let mut c = start_operator(&cluster, dir.path(), "c");
    c.wait_ready(Duration::from_secs(60)).await;
    let restarted = secret(&cluster);
    assert_eq!(secret_text(&restarted, "ca.crt"), new_ca, "the CA must be kept");
    let served = secret_text(&restarted, "tls.crt");
    assert_ne!(served, short_cert);
    assert_eq!(std::fs::read_to_string(dir.path().join("c/tls.crt")).unwrap(), served);
    drop(c);
}
