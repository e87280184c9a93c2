//! A real Kubernetes control plane for e2e suites: the local etcd + kube-apiserver from `tests/env/`,
//! or, with `USE_EXISTING_CLUSTER=true`, whatever cluster `KUBECONFIG` points at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct ControlPlane {
    /// Admin credentials (kubectl for the test).
    pub admin_kubeconfig: PathBuf,
    /// The operator's own identity, with exactly the operator's RBAC.
    pub operator_kubeconfig: PathBuf,
    pub workdir: Option<tempfile::TempDir>,
    /// A namespace of this test's own (every kubectl call runs in it), so suites can share a cluster.
    pub namespace: String,
    local: bool,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl ControlPlane {
    /// Starts a fresh local control plane (or attaches to an existing cluster) and installs nothing yet.
    pub fn start() -> ControlPlane {
        if std::env::var("USE_EXISTING_CLUSTER").as_deref() == Ok("true") {
            let kubeconfig =
                PathBuf::from(std::env::var("KUBECONFIG").expect("USE_EXISTING_CLUSTER=true needs KUBECONFIG"));
            return ControlPlane {
                admin_kubeconfig: kubeconfig.clone(),
                operator_kubeconfig: kubeconfig,
                workdir: None,
                namespace: String::new(),
                local: false,
            }
            .with_namespace();
        }
        let workdir = tempfile::Builder::new().prefix("flink-op-e2e-").tempdir().unwrap();
        let script = repo().join("tests/env/controlplane.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg(workdir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "control plane did not start (run tests/env/install.sh first on a fresh machine):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = parse_env(&std::fs::read_to_string(workdir.path().join("env")).unwrap());
        ControlPlane {
            admin_kubeconfig: PathBuf::from(&env["ADMIN_KUBECONFIG"]),
            operator_kubeconfig: PathBuf::from(&env["OPERATOR_KUBECONFIG"]),
            workdir: Some(workdir),
            namespace: String::new(),
            local: true,
        }
        .with_namespace()
    }

    /// Whether this is the local control plane (not `USE_EXISTING_CLUSTER`).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Creates this test's namespace, labelled by name (API servers before 1.21 do not add that label)
    /// so that a webhook namespaceSelector can match it.
    fn with_namespace(mut self) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let namespace = format!("e2e-{:x}-{n}-{:x}", std::process::id(), nanos % 0xfffff);
        self.kubectl_ok(&["create", "namespace", &namespace]);
        self.kubectl_ok(&[
            "label",
            "namespace",
            &namespace,
            &format!("kubernetes.io/metadata.name={namespace}"),
            "--overwrite",
        ]);
        self.namespace = namespace;
        self
    }

    /// Runs kubectl as admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut command = Command::new("kubectl");
        command.arg("--kubeconfig").arg(&self.admin_kubeconfig);
        if !self.namespace.is_empty() {
            command.args(["--namespace", &self.namespace]);
        }
        command.args(args).output().unwrap()
    }

    /// Runs kubectl as admin and panics unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl apply with a manifest given on stdin.
    pub fn apply_stdin(&self, yaml: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .args([
                "--namespace",
                if self.namespace.is_empty() {
                    "default"
                } else {
                    &self.namespace
                },
            ])
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Installs the CRDs from `manifests/` and waits until they are established.
    pub fn install_crds(&self) {
        self.kubectl_ok(&["apply", "-f", repo().join("manifests/crds.yaml").to_str().unwrap()]);
        self.kubectl_ok(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/flinkdeployments.flink.apache.org",
            "crd/flinksessionjobs.flink.apache.org",
        ]);
    }

    /// Grants the operator identity exactly the operator's ClusterRole (from `manifests/`).
    pub fn grant_operator_rbac(&self) {
        if !self.local {
            return;
        }
        self.kubectl_ok(&[
            "apply",
            "-f",
            repo()
                .join("manifests/rbac/operator-clusterrole.yaml")
                .to_str()
                .unwrap(),
        ]);
        let binding = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: flink-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flink-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: flink-operator}]
"#;
        let out = self.apply_stdin(binding);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Grants the operator identity the leader election Role (from `manifests/`) in this test's namespace,
    /// where the tests keep the Lease.
    pub fn grant_leader_election_rbac(&self) {
        if !self.local {
            return;
        }
        self.kubectl_ok(&[
            "apply",
            "-f",
            repo()
                .join("manifests/rbac/operator-leader-election-role.yaml")
                .to_str()
                .unwrap(),
        ]);
        let binding = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: flink-operator-leader-election}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: flink-operator-leader-election}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: flink-operator}]
"#;
        let out = self.apply_stdin(binding);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs a `controlplane.sh` subcommand on this control plane's work directory; panics if it fails.
    fn controlplane(&self, command: &str) {
        let workdir = self
            .workdir
            .as_ref()
            .expect("only the local control plane can be stopped and started");
        let out = Command::new("bash")
            .arg(repo().join("tests/env/controlplane.sh"))
            .arg(command)
            .arg(workdir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "controlplane.sh {command} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILLs kube-apiserver (etcd keeps running): every watch and request in flight breaks at once.
    pub fn stop_apiserver(&self) {
        self.controlplane("stop-apiserver");
    }

    /// Starts kube-apiserver again with the same flags and port; returns once its /readyz answers 200.
    pub fn start_apiserver(&self) {
        self.controlplane("start-apiserver");
    }

    /// Registers the operator's webhook (at `https://127.0.0.1:port`) with the API server.
    pub fn register_webhook(&self, port: u16, ca_file: &Path) {
        let out = Command::new(super::operator_bin())
            .args([
                "webhook-config",
                "--url",
                &format!("https://127.0.0.1:{port}"),
                "--ca-file",
            ])
            .arg(ca_file)
            .args(["--timeout-seconds", "5", "--namespaces", &self.namespace])
            .output()
            .unwrap();
        assert!(out.status.success());
        let applied = self.apply_stdin(&String::from_utf8_lossy(&out.stdout));
        assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let Some(workdir) = self.workdir.take() else {
            // A shared cluster: leave nothing behind but what other suites need too (the CRDs).
            let _ = self.kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
            return;
        };
        let script = repo().join("tests/env/controlplane.sh");
        let _ = Command::new("bash")
            .arg(&script)
            .arg("down")
            .arg(workdir.path())
            .output();
        if std::thread::panicking() {
            // Keep the logs of a failed run.
            let kept = workdir.keep();
            eprintln!("control plane logs kept in {}", kept.join("logs").display());
        }
    }
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A control plane with the CRDs, the operator's RBAC, the operator itself (under its own identity) and,
/// optionally, its webhook registered with the API server.
pub struct OperatorEnv {
    pub operator: super::Operator,
    pub cluster: ControlPlane,
    pub certs: tempfile::TempDir,
    /// The `run` arguments, for `restart_operator`.
    args: Vec<String>,
}

impl OperatorEnv {
    pub async fn start(with_webhook: bool) -> OperatorEnv {
        Self::start_with(with_webhook, &[]).await
    }

    /// Like `start`, with extra `flink-operator run` arguments.
    pub async fn start_with(with_webhook: bool, extra: &[&str]) -> OperatorEnv {
        let cluster = ControlPlane::start();
        cluster.install_crds();
        cluster.grant_operator_rbac();
        let certs = tempfile::tempdir().unwrap();
        super::write_certs(certs.path());
        let cert = certs.path().join("tls.crt");
        let key = certs.path().join("tls.key");
        let namespace = cluster.namespace.clone();
        let mut args = vec![
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
            "--watch-namespaces",
            &namespace,
        ];
        if !with_webhook {
            args.push("--no-webhook");
        }
        args.extend_from_slice(extra);
        let kubeconfig = cluster.operator_kubeconfig.to_str().unwrap().to_string();
        let mut operator =
            super::Operator::start(&args, &[("KUBECONFIG", &kubeconfig)], certs.path().join("operator.log"));
        operator.wait_ready(std::time::Duration::from_secs(60)).await;
        if with_webhook {
            cluster.register_webhook(operator.webhook_port, &certs.path().join("ca.crt"));
        }
        OperatorEnv {
            operator,
            cluster,
            certs,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// SIGKILLs the operator (no shutdown of any kind) and starts a fresh process with the same arguments;
    /// returns once the new one is ready. The old process's log is kept as `operator.log.N`.
    pub async fn restart_operator(&mut self) {
        self.kill_operator();
        self.start_operator().await;
    }

    /// SIGKILLs the operator and reaps it; `start_operator` starts the next one.
    pub fn kill_operator(&mut self) {
        let pid = self.operator.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
        let _ = self.operator.child.wait();
    }

    /// Starts a fresh operator process with the same arguments (after `kill_operator`); returns once it is
    /// ready. The previous process's log is kept as `operator.log.N`.
    pub async fn start_operator(&mut self) {
        let n = std::fs::read_dir(self.certs.path()).map(|d| d.count()).unwrap_or(0);
        let log = self.certs.path().join("operator.log");
        let _ = std::fs::rename(&log, self.certs.path().join(format!("operator.log.{n}")));
        let kubeconfig = self.cluster.operator_kubeconfig.to_str().unwrap().to_string();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.operator = super::Operator::start(&args, &[("KUBECONFIG", &kubeconfig)], log);
        self.operator.wait_ready(std::time::Duration::from_secs(60)).await;
    }

    /// kubectl get ... -o json as admin.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.cluster.kubectl_ok(&all)).unwrap()
    }

    /// kubectl get ... -o json as admin, or None when the object does not exist (any more).
    pub fn try_get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.cluster.kubectl(&all);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Events about the object `name` with `reason`.
    pub fn events(&self, name: &str, reason: &str) -> Vec<serde_json::Value> {
        let selector = format!("involvedObject.name={name}");
        let events = self.get_json(&["get", "events", "--field-selector", &selector]);
        events["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .collect()
    }

    /// Plays the Deployment controller: writes `status` into the Deployment's status subresource (e.g. to
    /// mark it available), since no controller-manager runs on this tier.
    pub fn set_deployment_status(&self, name: &str, status: serde_json::Value) {
        let mut deployment = self.get_json(&["get", "deployment", name]);
        deployment["status"] = status;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.json");
        std::fs::write(&file, serde_json::to_string(&deployment).unwrap()).unwrap();
        self.cluster
            .kubectl_ok(&["replace", "--subresource=status", "-f", file.to_str().unwrap()]);
    }

    /// Whether `kubectl get` finds the object.
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        self.cluster.kubectl(&all).status.success()
    }
}

impl Drop for OperatorEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("operator logs:\n{}", self.operator.logs());
        }
        if !self.cluster.is_local() {
            // On a shared cluster, let the operator remove its finalizers before it stops.
            let _ = self
                .cluster
                .kubectl(&["delete", "flinksessionjobs,flinkdeployments", "--all", "--timeout=60s"]);
        }
    }
}
