//! The Helm chart installed for real on the one-node cluster (tests/env/node/) with the locally built operator
//! image: the operator pod Ready under the kubelet's probes, admission through the chart's own webhook
//! configurations, Service and self-managed certificates, a native example running under the chart's RBAC,
//! `helm upgrade` with changed values taking effect, and `helm uninstall` leaving only what docs/chart.md says
//! it keeps. Then the same with `webhook.create=false`: no webhook objects, validation in the controller.
//!
//! `FLINK_OPERATOR_NO_NODE=1` skips these tests on a machine that cannot run containers (they fail otherwise).

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support::helm::{chart, helm};
use support::node::{Node, node_test, poll_until, repo_file};

const RELEASE: &str = "flink-operator";
const RELEASE_NS: &str = "flink-operator";
/// The Secret the operator keeps its self-managed certificates in (`<fullname>-webhook-certs`).
const CERTS_SECRET: &str = "flink-operator-webhook-certs";
const INVALID: &str = "examples/invalid/parallelism-zero.yaml";
const INVALID_NAME: &str = "invalid-parallelism-zero";

fn kubeconfig(node: &Node) -> String {
    node.admin_kubeconfig.to_str().unwrap().to_string()
}

fn helm_ok(args: &[&str]) -> Value {
    helm(args).unwrap_or_else(|e| panic!("helm {}: {e}", args[0]))
}

/// The operator pod of the current rollout, once it is Ready (and the only one left).
fn ready_operator_pod(node: &Node, generation_at_least: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(pod) = rolled_out_pod(node, generation_at_least) {
            return pod;
        }
        if Instant::now() > deadline {
            let describe = node.kubectl(&["-n", RELEASE_NS, "describe", "pods"]);
            let logs = node.kubectl(&[
                "-n",
                RELEASE_NS,
                "logs",
                "-l",
                "app.kubernetes.io/instance=flink-operator",
                "--tail=40",
                "--all-containers",
            ]);
            panic!(
                "the operator Deployment did not roll out within 180 s:\n{}\n--- logs ---\n{}{}",
                String::from_utf8_lossy(&describe.stdout),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The operator pod once the rollout to `generation_at_least` is complete and its pod Ready (the only one left).
fn rolled_out_pod(node: &Node, generation_at_least: i64) -> Option<Value> {
    let deployment = node.get_json(&["-n", RELEASE_NS, "get", "deployment", RELEASE]);
    let status = &deployment["status"];
    let rolled_out = status["observedGeneration"].as_i64()? >= generation_at_least
        && status["updatedReplicas"] == 1
        && status["readyReplicas"] == 1
        && status["replicas"] == 1;
    if !rolled_out {
        return None;
    }
    let pods = node.get_json(&[
        "-n",
        RELEASE_NS,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=flink-operator",
    ]);
    let pods = pods["items"].as_array()?;
    // The old pod of a rolling update must be gone too.
    (pods.len() == 1 && pods[0]["metadata"]["deletionTimestamp"].is_null()).then(|| pods[0].clone())
}

fn assert_ready_without_restarts(pod: &Value) {
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["ready"], true, "{container:#}");
    assert_eq!(container["restartCount"], 0, "{container:#}");
    assert!(
        container["image"]
            .as_str()
            .unwrap_or_default()
            .ends_with("flink-operator:dev"),
        "{container:#}"
    );
}

fn webhook_configuration(node: &Node, kind: &str) -> Option<Value> {
    let out = node.kubectl(&["get", kind, RELEASE, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn ca_bundle(configuration: &Value) -> String {
    let b64 = configuration["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .unwrap_or_default();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

/// `kubectl create --dry-run=server` of the invalid example (under a name of its own, so it is a CREATE even
/// where the example is stored) in `namespace`: Ok(stderr) when the webhook denied it naming the field,
/// Err(what happened) otherwise.
fn denied_by_webhook(node: &Node, namespace: &str) -> Result<String, String> {
    let example = std::fs::read_to_string(repo_file(INVALID)).unwrap();
    let probe = example.replace(&format!("name: {INVALID_NAME}"), &format!("name: {INVALID_NAME}-probe"));
    assert_ne!(probe, example);
    let out = node.kubectl_stdin(&["-n", namespace, "create", "--dry-run=server", "-f", "-"], &probe);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() && stderr.contains("denied the request") && stderr.contains("spec.job.parallelism") {
        Ok(stderr)
    } else if out.status.success() {
        Err("accepted".into())
    } else {
        Err(stderr)
    }
}

/// The operator reports the invalid example's error in its status (validation in the controller).
fn status_names_the_field(node: &Node, namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fd = node.get_json(&["-n", namespace, "get", "flinkdeployment", INVALID_NAME]);
        if fd["status"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("spec.job.parallelism"))
        {
            return;
        }
        if Instant::now() > deadline {
            let events = node.kubectl(&["-n", namespace, "get", "events"]);
            panic!(
                "the controller did not report the invalid spec in status.error within 60 s:\n{fd:#}\n{}",
                String::from_utf8_lossy(&events.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn delete_and_wait(node: &Node, namespace: &str, name: &str) {
    node.kubectl_ok(&["-n", namespace, "delete", "flinkdeployment", name, "--timeout=180s"]);
    let selector = format!("app={name}");
    for kind in ["deployments", "services", "configmaps", "pods"] {
        poll_until(&format!("{kind} of {name} gone"), Duration::from_secs(120), || {
            let left = node.get_json(&["-n", namespace, "get", kind, "-l", &selector]);
            left["items"].as_array().is_some_and(|i| i.is_empty()).then_some(())
        });
    }
}

/// After `helm uninstall`: nothing of the release is left but the CRDs and (self-managed mode) the
/// certificate Secret, as docs/chart.md says.
fn nothing_left_but_crds(node: &Node, job_namespaces: &[&str]) {
    poll_until("the operator pod to be gone", Duration::from_secs(120), || {
        let pods = node.get_json(&["-n", RELEASE_NS, "get", "pods"]);
        pods["items"].as_array().is_some_and(|i| i.is_empty()).then_some(())
    });
    for kind in [
        "deployments",
        "services",
        "configmaps",
        "serviceaccounts",
        "roles",
        "rolebindings",
    ] {
        let left = node.get_json(&[
            "-n",
            RELEASE_NS,
            "get",
            kind,
            "-l",
            "app.kubernetes.io/instance=flink-operator",
        ]);
        assert_eq!(left["items"], json!([]), "{kind} left in {RELEASE_NS}");
    }
    for namespace in job_namespaces {
        for (kind, name) in [
            ("serviceaccount", "flink"),
            ("role", "flink-operator-job"),
            ("role", "flink-operator"),
        ] {
            assert!(
                !node.kubectl(&["-n", namespace, "get", kind, name]).status.success(),
                "{kind} {namespace}/{name} left"
            );
        }
    }
    for kind in [
        "clusterroles",
        "clusterrolebindings",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    ] {
        let names = node.kubectl_ok(&["get", kind, "-o", "name"]);
        assert!(
            !names.lines().any(|l| l.contains("flink-operator")),
            "{kind} left: {names}"
        );
    }
    for crd in ["flinkdeployments.flink.apache.org", "flinksessionjobs.flink.apache.org"] {
        node.kubectl_ok(&["get", "crd", crd]);
    }
}

#[test]
fn helm_chart_on_the_node_with_and_without_webhook() {
    let Some(test) = node_test() else { return };
    let node = &test.node;
    let started = Instant::now();
    node.import_images(&["operator"]);
    eprintln!("operator image imported in {:.1}s", started.elapsed().as_secs_f64());
    let config = kubeconfig(node);
    let chart = chart();
    let chart = chart.to_str().unwrap();
    node.kubectl_ok(&["create", "namespace", RELEASE_NS]);
    let jobs = node.create_namespace("jobs");
    let later = node.create_namespace("later");

    // ---- webhook.create=true (self-managed certificates), watching one namespace.
    let values = json!({"image": {"tag": "dev"}, "watchNamespaces": [jobs]});
    let installed = Instant::now();
    let release = helm_ok(&["install", &config, chart, &values.to_string(), RELEASE, RELEASE_NS]);
    assert_eq!(release["status"], "deployed", "{release}");
    let pod = ready_operator_pod(node, 1);
    assert_ready_without_restarts(&pod);
    eprintln!(
        "helm install -> operator Ready in {:.1}s",
        installed.elapsed().as_secs_f64()
    );

    // The operator created its certificate Secret and wrote its CA into both of the chart's configurations.
    let secret = node.get_json(&["-n", RELEASE_NS, "get", "secret", CERTS_SECRET]);
    let ca = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["ca.crt"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    for kind in ["validatingwebhookconfiguration", "mutatingwebhookconfiguration"] {
        let configuration = poll_until(&format!("the caBundle of the {kind}"), Duration::from_secs(60), || {
            webhook_configuration(node, kind).filter(|c| ca_bundle(c).starts_with(&ca))
        });
        let hook = &configuration["webhooks"][0];
        assert_eq!(hook["clientConfig"]["service"]["namespace"], RELEASE_NS);
        assert_eq!(
            hook["namespaceSelector"]["matchExpressions"][0]["values"],
            json!([jobs])
        );
    }

    // The API server calls the webhook through the chart's Service with that bundle: a bad spec is rejected.
    poll_until(
        "the webhook to deny the invalid example",
        Duration::from_secs(60),
        || denied_by_webhook(node, &jobs).ok(),
    );
    let rejected = node.kubectl(&["-n", &jobs, "apply", "-f", &repo_file(INVALID)]);
    assert!(!rejected.status.success(), "the invalid example was stored");
    // Outside the watched namespaces the webhook is not called at all (namespaceSelector).
    assert_eq!(denied_by_webhook(node, &later), Err("accepted".into()));
    node.kubectl_ok(&["-n", &later, "apply", "-f", &repo_file(INVALID)]);

    // A native example runs under the chart's RBAC: the operator's Role in the watched namespace, and the job
    // ServiceAccount `flink` with which the JobManager creates its TaskManager pod.
    node.kubectl_ok(&["-n", &jobs, "apply", "-f", &repo_file("examples/basic.yaml")]);
    let running = poll_until(
        "basic-example: job RUNNING, JobManager READY, lifecycle STABLE",
        Duration::from_secs(300),
        || {
            let fd = node.get_json(&["-n", &jobs, "get", "flinkdeployment", "basic-example"]);
            let s = &fd["status"];
            (s["jobStatus"]["state"] == "RUNNING"
                && s["jobManagerDeploymentStatus"] == "READY"
                && s["lifecycleState"] == "STABLE")
                .then_some(fd)
        },
    );
    assert_eq!(running["spec"]["mode"], "native", "defaulted by the mutating webhook");
    let taskmanagers = node.get_json(&[
        "-n",
        &jobs,
        "get",
        "pods",
        "-l",
        "app=basic-example,component=taskmanager",
    ]);
    assert!(
        !taskmanagers["items"].as_array().unwrap().is_empty(),
        "no TaskManager pod"
    );

    // ---- helm upgrade: a second watched namespace and a shorter webhook timeout take effect.
    let generation = node.get_json(&["-n", RELEASE_NS, "get", "deployment", RELEASE])["metadata"]["generation"]
        .as_i64()
        .unwrap();
    let values = json!({
        "image": {"tag": "dev"},
        "watchNamespaces": [jobs, later],
        "webhook": {"timeoutSeconds": 5},
    });
    let upgraded = Instant::now();
    let release = helm_ok(&["upgrade", &config, chart, &values.to_string(), RELEASE, RELEASE_NS]);
    assert_eq!(release["status"], "deployed", "{release}");
    // The caBundle the operator wrote survives the upgrade (Helm does not own it): admission keeps working.
    for kind in ["validatingwebhookconfiguration", "mutatingwebhookconfiguration"] {
        let configuration = webhook_configuration(node, kind).unwrap();
        assert!(
            ca_bundle(&configuration).starts_with(&ca),
            "{kind} lost its caBundle on upgrade"
        );
        assert_eq!(configuration["webhooks"][0]["timeoutSeconds"], 5, "{kind}");
    }
    let pod = ready_operator_pod(node, generation + 1);
    assert_ready_without_restarts(&pod);
    eprintln!(
        "helm upgrade -> new operator pod Ready in {:.1}s",
        upgraded.elapsed().as_secs_f64()
    );
    // The new pod watches the second namespace: the invalid spec stored there before is now reported.
    status_names_the_field(node, &later);
    // And the webhook now covers it.
    poll_until(
        "the webhook to cover the new namespace",
        Duration::from_secs(60),
        || denied_by_webhook(node, &later).ok(),
    );
    // The running job was not touched by the operator's restart.
    let after = node.get_json(&["-n", &jobs, "get", "flinkdeployment", "basic-example"]);
    assert_eq!(
        after["status"]["jobStatus"]["jobId"], running["status"]["jobStatus"]["jobId"],
        "the job was restarted"
    );

    // ---- helm uninstall (resources deleted first, while the operator can still finalize them).
    delete_and_wait(node, &jobs, "basic-example");
    node.kubectl_ok(&["-n", &later, "delete", "flinkdeployment", INVALID_NAME, "--timeout=60s"]);
    let uninstalled = helm_ok(&["uninstall", &config, RELEASE, RELEASE_NS]);
    assert!(uninstalled["release"].is_object(), "{uninstalled}");
    nothing_left_but_crds(node, &[&jobs, &later]);
    // Kept on purpose (docs/chart.md): the operator's certificate Secret, which it created, not Helm.
    node.kubectl_ok(&["-n", RELEASE_NS, "get", "secret", CERTS_SECRET]);

    // ---- webhook.create=false: no webhook objects; the controller validates.
    let values = json!({"image": {"tag": "dev"}, "watchNamespaces": [jobs], "webhook": {"create": false}});
    let release = helm_ok(&["install", &config, chart, &values.to_string(), RELEASE, RELEASE_NS]);
    assert_eq!(release["status"], "deployed", "{release}");
    let pod = ready_operator_pod(node, 1);
    assert_ready_without_restarts(&pod);
    assert!(webhook_configuration(node, "validatingwebhookconfiguration").is_none());
    assert!(webhook_configuration(node, "mutatingwebhookconfiguration").is_none());
    assert!(
        !node
            .kubectl(&["-n", RELEASE_NS, "get", "service", "flink-operator-webhook"])
            .status
            .success()
    );
    node.kubectl_ok(&["-n", &jobs, "apply", "-f", &repo_file(INVALID)]);
    status_names_the_field(node, &jobs);
    let events = node.get_json(&[
        "-n",
        &jobs,
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={INVALID_NAME},reason=ValidationError"),
    ]);
    assert!(
        !events["items"].as_array().unwrap().is_empty(),
        "no ValidationError event"
    );
    node.kubectl_ok(&["-n", &jobs, "delete", "flinkdeployment", INVALID_NAME, "--timeout=60s"]);
    helm_ok(&["uninstall", &config, RELEASE, RELEASE_NS]);
    nothing_left_but_crds(node, &[&jobs]);
    node.kubectl_ok(&["delete", "namespace", &jobs, &later, RELEASE_NS, "--wait=false"]);
}
