//! The Helm chart with the real Helm v4 SDK (PyPI `helm-python-sdk`, installed by `tests/env/helm.sh`):
//! lint and render for several value sets with the rendered objects asserted, `manifests/flink-operator.yaml`
//! kept equal to the default rendering, and real `helm install` / `helm uninstall` on a real control plane.
//!
//! Regenerate the manifests with `UPDATE_GENERATED=1 cargo test --test chart`.

mod support;

use std::path::Path;

use flink_operator::rbac;
use flink_operator::webhook::configuration;
use serde_json::{Value, json};
use support::cluster::ControlPlane;
use support::helm::{chart, helm};
use support::skip_e2e;

const RELEASE: &str = "flink-operator";
const NAMESPACE: &str = "flink-operator";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn lint(values: &Value) {
    let report = helm(&["lint", chart().to_str().unwrap(), &values.to_string()]).unwrap();
    assert_eq!(report["errors"], json!([]), "lint {values}: {report}");
    let serious: Vec<_> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64().unwrap_or(0) > 1)
        .collect();
    assert!(serious.is_empty(), "lint {values}: {serious:?}");
}

/// Rendered manifests by template path (NOTES.txt left out).
fn render_files(values: &Value, namespace: &str) -> Result<Vec<(String, String)>, String> {
    let files = helm(&[
        "render",
        chart().to_str().unwrap(),
        &values.to_string(),
        RELEASE,
        namespace,
    ])?;
    let mut files: Vec<(String, String)> = files
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.ends_with(".yaml"))
        .map(|(path, text)| (path.clone(), text.as_str().unwrap().to_string()))
        .collect();
    files.sort();
    Ok(files)
}

fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .map(|doc| serde_json::to_value(doc).unwrap())
        .collect()
}

/// Lints and renders; returns every object.
fn render(values: Value) -> Vec<Value> {
    lint(&values);
    render_files(&values, NAMESPACE)
        .unwrap()
        .iter()
        .flat_map(|(_, text)| documents(text))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, namespace: Option<&str>, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name} in {:#?}", kinds(objects)))
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = objects
        .iter()
        .map(|o| {
            let ns = o["metadata"]["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{} {ns}{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    all.sort();
    all
}

fn rules(rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>) -> Value {
    serde_json::to_value(rules).unwrap()
}

fn container(objects: &[Value]) -> &Value {
    let deployment = find(objects, "Deployment", Some(NAMESPACE), RELEASE);
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args(objects: &[Value]) -> Vec<String> {
    container(objects)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// What a native JobManager needs (see the comments in templates/rbac.yaml).
fn job_rules() -> Value {
    json!([
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"],
         "verbs": ["get", "list", "watch", "create", "update", "delete", "deletecollection"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments/finalizers"], "verbs": ["update"]},
    ])
}

/// The chart's webhook entries equal what `src/webhook/configuration.rs` renders, except where the
/// client config points (a Service here).
fn assert_webhooks_match_the_code(objects: &[Value], namespaces: &[&str]) {
    let settings = configuration::Settings {
        target: configuration::Target::Service {
            namespace: NAMESPACE.into(),
            name: format!("{RELEASE}-webhook"),
            port: 443,
        },
        ca_bundle: Vec::new(),
        failure_policy: "Fail".into(),
        timeout_seconds: 10,
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
    };
    let strip = |mut hook: Value| {
        hook["clientConfig"]["caBundle"] = Value::Null;
        hook
    };
    let code = serde_json::to_value(configuration::validating(&settings)).unwrap();
    let chart = find(objects, "ValidatingWebhookConfiguration", None, RELEASE);
    assert_eq!(strip(chart["webhooks"][0].clone()), strip(code["webhooks"][0].clone()));
    let code = serde_json::to_value(configuration::mutating(&settings)).unwrap();
    let chart = find(objects, "MutatingWebhookConfiguration", None, RELEASE);
    assert_eq!(strip(chart["webhooks"][0].clone()), strip(code["webhooks"][0].clone()));
}

#[test]
fn defaults_self_managed_webhook() {
    let objects = render(json!({}));
    let ns = Some(NAMESPACE);
    assert_eq!(
        kinds(&objects),
        vec![
            "ClusterRole flink-operator",
            "ClusterRole flink-operator-webhook-configurations",
            "ClusterRoleBinding flink-operator",
            "ClusterRoleBinding flink-operator-webhook-configurations",
            "ConfigMap flink-operator/flink-operator-config",
            "Deployment flink-operator/flink-operator",
            "MutatingWebhookConfiguration flink-operator",
            "Role flink-operator/flink-operator-job",
            "Role flink-operator/flink-operator-webhook-certs",
            "RoleBinding flink-operator/flink-operator-job",
            "RoleBinding flink-operator/flink-operator-webhook-certs",
            "Service flink-operator/flink-operator-webhook",
            "ServiceAccount flink-operator/flink",
            "ServiceAccount flink-operator/flink-operator",
            "ValidatingWebhookConfiguration flink-operator",
        ]
    );
    // RBAC: exactly the code's rules, plus the self-managed certificate rules by name.
    assert_eq!(
        find(&objects, "ClusterRole", None, RELEASE)["rules"],
        rules(rbac::operator_rules())
    );
    assert_eq!(
        find(&objects, "Role", ns, "flink-operator-webhook-certs")["rules"],
        rules(rbac::certificate_secret_rules("flink-operator-webhook-certs"))
    );
    assert_eq!(
        find(&objects, "ClusterRole", None, "flink-operator-webhook-configurations")["rules"],
        rules(rbac::webhook_configuration_rules(RELEASE))
    );
    assert_eq!(find(&objects, "Role", ns, "flink-operator-job")["rules"], job_rules());
    let binding = find(&objects, "RoleBinding", ns, "flink-operator-job");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "flink", "namespace": NAMESPACE}])
    );
    let binding = find(&objects, "ClusterRoleBinding", None, RELEASE);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );

    // The operator: self-managed certificates for the Service's names, probes on the admin port.
    let service_names = "flink-operator-webhook,flink-operator-webhook.flink-operator,\
        flink-operator-webhook.flink-operator.svc,flink-operator-webhook.flink-operator.svc.cluster.local";
    assert_eq!(
        args(&objects),
        vec![
            "run".to_string(),
            "--admin-addr=0.0.0.0:8085".into(),
            "--config=/etc/flink-operator/config.yaml".into(),
            "--log-format=text".into(),
            "--worker-threads=1".into(),
            "--webhook-addr=0.0.0.0:9443".into(),
            "--tls-cert-file=/etc/flink-operator/certs/tls.crt".into(),
            "--tls-key-file=/etc/flink-operator/certs/tls.key".into(),
            "--self-managed-certs-secret=flink-operator-webhook-certs".into(),
            "--self-managed-certs-namespace=flink-operator".into(),
            format!("--webhook-dns-names={service_names}"),
            "--webhook-configuration=flink-operator".into(),
            "--cert-validity=365d".into(),
            "--cert-renew-before=30d".into(),
            "--cert-check-interval=1m".into(),
        ]
    );
    let more_workers = render(json!({"workerThreads": 4}));
    assert!(args(&more_workers).contains(&"--worker-threads=4".to_string()));
    let c = container(&objects);
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(c[probe]["httpGet"], json!({"path": path, "port": "admin"}), "{probe}");
    }
    assert_eq!(
        c["ports"][0],
        json!({"name": "admin", "containerPort": 8085, "protocol": "TCP"})
    );
    assert_eq!(
        c["securityContext"],
        json!({
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    let pod = &find(&objects, "Deployment", ns, RELEASE)["spec"]["template"];
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["spec"]["serviceAccountName"], RELEASE);
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/scrape"], "true");
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"], "8085");
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/path"], "/metrics");
    // The certificate files are written by the operator into a writable in-memory volume.
    assert_eq!(pod["spec"]["volumes"][1]["emptyDir"]["medium"], "Memory");

    // --config gets exactly the default configuration, in the format src/config.rs reads.
    let config = find(&objects, "ConfigMap", ns, "flink-operator-config")["data"]["config.yaml"]
        .as_str()
        .unwrap();
    let parsed = flink_operator::config::OperatorConfig::parse(config, "chart").unwrap();
    assert_eq!(parsed.get("kubernetes.operator.reconcile.interval"), Some("60s"));
    assert_eq!(parsed.entries.len(), 1);

    // Webhooks: as the code renders them, without caBundle (the operator writes it), for all namespaces.
    assert_webhooks_match_the_code(&objects, &[]);
    let hook = &find(&objects, "ValidatingWebhookConfiguration", None, RELEASE)["webhooks"][0];
    assert!(hook["clientConfig"].get("caBundle").is_none());
    assert!(hook.get("namespaceSelector").is_none());
    let service = find(&objects, "Service", ns, "flink-operator-webhook");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}])
    );
}

#[test]
fn webhook_disabled_renders_no_webhook_objects() {
    let objects = render(json!({"webhook": {"create": false}}));
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "Service",
        "Secret",
    ] {
        assert!(objects.iter().all(|o| o["kind"] != kind), "{kind} rendered");
    }
    assert!(
        kinds(&objects).iter().all(|k| !k.contains("webhook")),
        "{:#?}",
        kinds(&objects)
    );
    let args = args(&objects);
    assert!(args.contains(&"--no-webhook".to_string()), "{args:?}");
    assert!(
        args.iter()
            .all(|a| !a.starts_with("--tls-") && !a.starts_with("--webhook") && !a.contains("certs")),
        "{args:?}"
    );
    let c = container(&objects);
    assert_eq!(c["ports"].as_array().unwrap().len(), 1);
    assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 1);
}

#[test]
fn watch_namespaces_get_roles_and_a_namespace_selector() {
    let objects = render(json!({"watchNamespaces": ["a", "b"]}));
    assert!(
        objects
            .iter()
            .all(|o| !(o["kind"] == "ClusterRole" && o["metadata"]["name"] == RELEASE)),
        "no operator ClusterRole when namespaces are given"
    );
    for ns in ["a", "b"] {
        assert_eq!(
            find(&objects, "Role", Some(ns), RELEASE)["rules"],
            rules(rbac::operator_rules())
        );
        let binding = find(&objects, "RoleBinding", Some(ns), RELEASE);
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        assert_eq!(
            find(&objects, "Role", Some(ns), "flink-operator-job")["rules"],
            job_rules()
        );
        find(&objects, "ServiceAccount", Some(ns), "flink");
        find(&objects, "RoleBinding", Some(ns), "flink-operator-job");
    }
    // No job service account in the release namespace when it is not watched.
    assert!(objects.iter().all(|o| !(o["kind"] == "ServiceAccount"
        && o["metadata"]["name"] == "flink"
        && o["metadata"]["namespace"] == NAMESPACE)));
    assert!(args(&objects).contains(&"--watch-namespaces=a,b".to_string()));
    assert_webhooks_match_the_code(&objects, &["a", "b"]);
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        assert_eq!(
            find(&objects, kind, None, RELEASE)["webhooks"][0]["namespaceSelector"],
            json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}]})
        );
    }
}

fn leader_election_args(objects: &[Value]) -> Vec<String> {
    args(objects)
        .into_iter()
        .filter(|a| a.starts_with("--leader-election"))
        .collect()
}

fn env_names(objects: &[Value]) -> Vec<String> {
    container(objects)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn leader_election_is_on_with_several_replicas_and_off_with_one() {
    // replicas: 2 turns it on: flags, the pod's namespace and name from the downward API, a Role for the Lease.
    let objects = render(json!({"replicas": 2}));
    let ns = Some(NAMESPACE);
    assert_eq!(find(&objects, "Deployment", ns, RELEASE)["spec"]["replicas"], 2);
    assert_eq!(
        leader_election_args(&objects),
        vec![
            "--leader-election",
            "--leader-election-namespace=$(POD_NAMESPACE)",
            "--leader-election-identity=$(POD_NAME)",
            "--leader-election-lease-name=flink-operator-lease",
            "--leader-election-lease-duration=15s",
            "--leader-election-renew-deadline=10s",
            "--leader-election-retry-period=2s",
        ]
    );
    let env = &container(&objects)["env"];
    assert!(
        env.as_array().unwrap().contains(
            &json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}})
        )
    );
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}))
    );
    let role = find(&objects, "Role", ns, "flink-operator-leader-election");
    assert_eq!(
        role["rules"],
        rules(rbac::leader_election_rules("flink-operator-lease"))
    );
    let binding = find(&objects, "RoleBinding", ns, "flink-operator-leader-election");
    assert_eq!(binding["roleRef"]["name"], "flink-operator-leader-election");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}])
    );
    // Leases stay out of the ClusterRole (least privilege: the release namespace only).
    assert_eq!(
        find(&objects, "ClusterRole", None, RELEASE)["rules"],
        rules(rbac::operator_rules())
    );

    // The default (one replica) renders none of it.
    let objects = render(json!({}));
    assert!(leader_election_args(&objects).is_empty());
    assert_eq!(env_names(&objects), vec!["RUST_LOG"]);
    assert!(kinds(&objects).iter().all(|k| !k.contains("leader-election")));

    // Explicit values win over the replica count.
    let objects = render(json!({"replicas": 3, "leaderElection": {"enabled": false}}));
    assert!(leader_election_args(&objects).is_empty());
    assert!(kinds(&objects).iter().all(|k| !k.contains("leader-election")));
    let objects = render(json!({"leaderElection": {"enabled": true, "leaseName": "my-lease", "leaseDuration": "30s"}}));
    let args = leader_election_args(&objects);
    assert!(
        args.contains(&"--leader-election-lease-name=my-lease".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--leader-election-lease-duration=30s".to_string()),
        "{args:?}"
    );
    assert_eq!(
        find(&objects, "Role", ns, "flink-operator-leader-election")["rules"],
        rules(rbac::leader_election_rules("my-lease"))
    );
    // With namespaced RBAC too, the Lease Role is in the release namespace.
    let objects = render(json!({"replicas": 2, "watchNamespaces": ["a"]}));
    find(&objects, "Role", ns, "flink-operator-leader-election");

    let err = render_files(&json!({"leaderElection": {"enabled": "yes"}}), NAMESPACE).unwrap_err();
    assert!(err.contains("leaderElection.enabled"), "{err}");
}

#[test]
fn cert_manager_mode() {
    let objects = render(json!({"webhook": {"certificates": {"mode": "cert-manager"}}}));
    let ns = Some(NAMESPACE);
    assert_eq!(
        find(&objects, "Issuer", ns, "flink-operator-webhook")["spec"],
        json!({"selfSigned": {}})
    );
    let certificate = find(&objects, "Certificate", ns, "flink-operator-webhook");
    assert_eq!(certificate["spec"]["secretName"], "flink-operator-webhook-cert-manager");
    assert_eq!(
        certificate["spec"]["dnsNames"][2],
        "flink-operator-webhook.flink-operator.svc"
    );
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        let config = find(&objects, kind, None, RELEASE);
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "flink-operator/flink-operator-webhook"
        );
        assert!(config["webhooks"][0]["clientConfig"].get("caBundle").is_none());
    }
    let pod = &find(&objects, "Deployment", ns, RELEASE)["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][1]["secret"]["secretName"],
        "flink-operator-webhook-cert-manager"
    );
    assert!(args(&objects).iter().all(|a| !a.contains("self-managed")));
    // No self-managed certificate rules in this mode.
    assert!(
        kinds(&objects)
            .iter()
            .all(|k| !k.contains("webhook-certs") && !k.contains("webhook-configurations"))
    );
}

#[test]
fn existing_secret_mode() {
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let objects = render(json!({
        "webhook": {"certificates": {"mode": "existing-secret", "secretName": "my-certs", "caBundle": ca}}
    }));
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(ca);
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        let config = find(&objects, kind, None, RELEASE);
        assert_eq!(config["webhooks"][0]["clientConfig"]["caBundle"], expected.as_str());
    }
    let pod = &find(&objects, "Deployment", Some(NAMESPACE), RELEASE)["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][1]["secret"]["secretName"], "my-certs");
    assert!(args(&objects).iter().all(|a| !a.contains("self-managed")));
    assert!(kinds(&objects).iter().all(|k| !k.contains("webhook-certs")));
    // Without its CA or its name, the mode cannot work: rendering fails with a message.
    let err = render_files(
        &json!({"webhook": {"certificates": {"mode": "existing-secret", "secretName": "x"}}}),
        NAMESPACE,
    )
    .unwrap_err();
    assert!(err.contains("caBundle"), "{err}");
    let err = render_files(&json!({"webhook": {"certificates": {"mode": "vault"}}}), NAMESPACE).unwrap_err();
    assert!(err.contains("webhook.certificates.mode"), "{err}");
}

/// `manifests/flink-operator.yaml`: a Namespace, then the chart rendered with defaults (CRDs are in
/// `manifests/crds.yaml`), so that `kubectl apply -f manifests/` installs the operator.
#[test]
fn manifests_are_the_rendered_chart() {
    let mut text = format!(
        "# Generated: the chart (charts/flink-kubernetes-operator) rendered with its defaults, release \
         {RELEASE}, namespace {NAMESPACE}.\n# Regenerate with `UPDATE_GENERATED=1 cargo test --test chart`.\n\
         ---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
    );
    for (path, manifest) in render_files(&json!({}), NAMESPACE).unwrap() {
        text.push_str(&format!("# Source: {path}\n{}\n", manifest.trim()));
    }
    let path = repo().join("manifests/flink-operator.yaml");
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "manifests/flink-operator.yaml is out of date with the chart: run `UPDATE_GENERATED=1 cargo test --test chart`"
    );
}

fn exists(cluster: &ControlPlane, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    cluster.kubectl(&all).status.success()
}

fn install_and_uninstall(webhook: bool) {
    let cluster = ControlPlane::start();
    let ns = cluster.namespace.clone();
    let kubeconfig = cluster.admin_kubeconfig.to_str().unwrap().to_string();
    let values = json!({"webhook": {"create": webhook}}).to_string();
    let release = helm(&["install", &kubeconfig, chart().to_str().unwrap(), &values, RELEASE, &ns]).unwrap();
    assert_eq!(release["status"], "deployed", "{release}");

    // What the chart created, as the API server has it (no pods run on this tier).
    let deployment: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "deployment", RELEASE, "-o", "json"])).unwrap();
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert_eq!(
        args.as_array().unwrap().contains(&json!("--no-webhook")),
        !webhook,
        "{args}"
    );
    let role: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "clusterrole", RELEASE, "-o", "json"])).unwrap();
    assert_eq!(role["rules"], rules(rbac::operator_rules()));
    for object in [
        vec!["serviceaccount", RELEASE],
        vec!["serviceaccount", "flink"],
        vec!["role", "flink-operator-job"],
        vec!["rolebinding", "flink-operator-job"],
        vec!["clusterrolebinding", RELEASE],
        vec!["configmap", "flink-operator-config"],
        vec!["crd", "flinkdeployments.flink.apache.org"],
        vec!["crd", "flinksessionjobs.flink.apache.org"],
    ] {
        assert!(exists(&cluster, &object), "{object:?} missing");
    }
    let webhook_objects = [
        vec!["validatingwebhookconfiguration", RELEASE],
        vec!["mutatingwebhookconfiguration", RELEASE],
        vec!["service", "flink-operator-webhook"],
        vec!["role", "flink-operator-webhook-certs"],
        vec!["clusterrole", "flink-operator-webhook-configurations"],
    ];
    for object in &webhook_objects {
        assert_eq!(exists(&cluster, object), webhook, "{object:?}");
    }
    if webhook {
        let hook: Value = serde_json::from_str(&cluster.kubectl_ok(&[
            "get",
            "validatingwebhookconfiguration",
            RELEASE,
            "-o",
            "json",
        ]))
        .unwrap();
        assert_eq!(hook["webhooks"][0]["clientConfig"]["service"]["namespace"], ns.as_str());
        assert_eq!(hook["webhooks"][0]["sideEffects"], "None");
    }

    let uninstalled = helm(&["uninstall", &kubeconfig, RELEASE, &ns]).unwrap();
    assert!(uninstalled["release"].is_object(), "{uninstalled}");
    for object in webhook_objects.iter().chain(&[
        vec!["deployment", RELEASE],
        vec!["clusterrole", RELEASE],
        vec!["clusterrolebinding", RELEASE],
        vec!["serviceaccount", "flink"],
        vec!["configmap", "flink-operator-config"],
    ]) {
        assert!(!exists(&cluster, object), "{object:?} left after uninstall");
    }
    // CRDs stay (Helm never deletes crds/): documented in docs/chart.md.
    assert!(exists(&cluster, &["crd", "flinkdeployments.flink.apache.org"]));
}

#[test]
fn helm_install_and_uninstall_with_webhook() {
    if skip_e2e() {
        return;
    }
    install_and_uninstall(true);
}

#[test]
fn helm_install_and_uninstall_without_webhook() {
    if skip_e2e() {
        return;
    }
    install_and_uninstall(false);
}
