//! The single-node cluster of `tests/env/node/` (pods really run) for the node suites.
//!
//! One node per machine (fixed network namespace), so one per test binary: the tests of a binary share it
//! (`node_test()` hands out an `Arc` of it) and run one at a time (a guard serialises them); the last one to
//! drop it tears it down with `cluster.sh down`. A test run with `--test-threads=1` gets a fresh node per test.
//! Across processes a lock file keeps two test binaries (or two checkouts) from fighting over the node.
//!
//! `FLINK_OPERATOR_NO_NODE=1` skips the node suites (printed); without it a machine that cannot run the node
//! fails them, with the reason from `cluster.sh check`. `FLINK_OPERATOR_SKIP_E2E=1` skips them like every e2e suite.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A file of this repository, as a path string for kubectl.
pub fn repo_file(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

/// Who holds the node on this machine (cluster.sh writes its WORKDIR there on `up`).
const OWNER_FILE: &str = "/run/flink-operator-node.owner";
/// Held by the test process that owns the node.
const MACHINE_LOCK: &str = "/run/flink-operator-node.lock";
/// How long a test waits for another process's node tests to finish.
const MACHINE_LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn env_script(relative: &str) -> PathBuf {
    repo().join("tests/env").join(relative)
}

/// Cargo's target directory of this build (the scripts build the release binary there too).
fn cargo_target_dir() -> PathBuf {
    // .../target/debug/flink-operator
    Path::new(super::operator_bin())
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    PathBuf::from(std::env::var("FLINK_OPERATOR_CACHE").unwrap_or_else(|_| "/var/cache/flink-operator".into()))
}

/// `FLINK_OPERATOR_NO_NODE=1`: this machine cannot run containers and the caller said so explicitly.
pub fn skip_node() -> bool {
    let skip = std::env::var("FLINK_OPERATOR_NO_NODE").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("FLINK_OPERATOR_NO_NODE=1: node suite SKIPPED (pods, the operator image and Flink images untested)");
    }
    skip
}

/// Runs a script from `tests/env/` with the cargo target dir of this build; returns its output.
pub fn run_script(relative: &str, args: &[&Path]) -> Output {
    Command::new("bash")
        .arg(env_script(relative))
        .args(args)
        .env("CARGO_TARGET_DIR", cargo_target_dir())
        .output()
        .unwrap()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics with the script's output unless it succeeded.
fn script_ok(relative: &str, args: &[&Path]) -> Output {
    let out = run_script(relative, args);
    assert!(
        out.status.success(),
        "tests/env/{relative} failed ({}):\n{}",
        out.status,
        output_text(&out)
    );
    out
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `deadline` naming `what`.
pub fn poll_until<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running node cluster.
pub struct Node {
    pub workdir: PathBuf,
    pub admin_kubeconfig: PathBuf,
    pub env: HashMap<String, String>,
    /// Whether this process has deployed the operator into the node yet.
    operator_deployed: Mutex<bool>,
    _machine_lock: File,
}

/// A node test's handle: the shared node, and the guard that lets one test at a time use it.
/// (Fields drop in order: the node reference first, then the guard.)
pub struct NodeTest {
    pub node: Arc<Node>,
    _serial: MutexGuard<'static, ()>,
}

static SHARED: Mutex<Weak<Node>> = Mutex::new(Weak::new());
static SERIAL: Mutex<()> = Mutex::new(());

/// The node for one test, or `None` when the node suites are skipped explicitly.
pub fn node_test() -> Option<NodeTest> {
    if super::skip_e2e() || skip_node() {
        return None;
    }
    // Take a reference first (so a test waiting for its turn keeps the node up), then wait for the turn.
    let node = shared();
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    Some(NodeTest { node, _serial: serial })
}

fn shared() -> Arc<Node> {
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(node) = slot.upgrade() {
        return node;
    }
    let node = Arc::new(Node::start());
    *slot = Arc::downgrade(&node);
    node
}

impl Node {
    /// Installs what is missing (cached), checks the machine, takes the node, starts it and imports the images.
    fn start() -> Node {
        let started = Instant::now();
        script_ok("install.sh", &[Path::new("--node")]);
        let check = run_script("node/cluster.sh", &[Path::new("check")]);
        assert!(
            check.status.success(),
            "the node suites cannot run here: {}\nThey need root, network namespaces, overlayfs and cgroups. \
             Set FLINK_OPERATOR_NO_NODE=1 to skip them explicitly (CI must not).",
            output_text(&check).trim()
        );
        let machine_lock = take_machine_lock();
        let workdir = cache_dir().join("node-e2e");
        free_node(&workdir);
        script_ok("node/cluster.sh", &[Path::new("up"), &workdir]);
        // From here on, a failure must still tear the node down.
        let mut down_on_panic = DownOnPanic(Some(workdir.clone()));
        // Images: the Flink ones for the suites (the operator image comes with deploy_operator).
        script_ok("images/import.sh", &[&workdir]);
        down_on_panic.0 = None;
        let env = parse_env(&std::fs::read_to_string(workdir.join("env")).unwrap());
        eprintln!(
            "node cluster up in {:.1}s ({})",
            started.elapsed().as_secs_f64(),
            workdir.display()
        );
        Node {
            admin_kubeconfig: PathBuf::from(&env["ADMIN_KUBECONFIG"]),
            workdir,
            env,
            operator_deployed: Mutex::new(false),
            _machine_lock: machine_lock,
        }
    }

    /// kubectl as admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .arg("--request-timeout=30s")
            .args(args)
            .output()
            .unwrap()
    }

    /// kubectl as admin; panics unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed:\n{}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).unwrap()
    }

    /// `kubectl apply -f -` of `object` in `namespace`, as admin.
    pub fn apply_json(&self, namespace: &str, object: &serde_json::Value) -> Output {
        self.kubectl_stdin(&["-n", namespace, "apply", "-f", "-"], &object.to_string())
    }

    /// kubectl as admin with `input` on its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .arg("--request-timeout=30s")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// A fresh namespace labelled by name (API servers before 1.21 do not add the label).
    pub fn create_namespace(&self, prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let namespace = format!("{prefix}-{:x}", nanos % 0xfffff);
        self.kubectl_ok(&["create", "namespace", &namespace]);
        self.kubectl_ok(&[
            "label",
            "namespace",
            &namespace,
            &format!("kubernetes.io/metadata.name={namespace}"),
        ]);
        namespace
    }

    /// Runs a `tests/env/` script with this node's WORKDIR as its argument; panics with its output on failure.
    pub fn run_env_script(&self, relative: &str) -> Output {
        script_ok(relative, &[&self.workdir])
    }

    /// Imports locally built images into the node (`images/import.sh WORKDIR NAME...`; builds what is missing).
    pub fn import_images(&self, names: &[&str]) {
        let mut args = vec![self.workdir.as_path()];
        args.extend(names.iter().map(Path::new));
        script_ok("images/import.sh", &args);
    }

    /// Deploys the operator in-cluster (`node/deploy-operator.sh`): release build, image, manifests, webhook.
    pub fn deploy_operator(&self) {
        self.run_env_script("node/deploy-operator.sh");
        *self.operator_deployed.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Deploys the operator unless a test of this process already did.
    pub fn ensure_operator(&self) {
        let deployed = *self.operator_deployed.lock().unwrap_or_else(PoisonError::into_inner);
        if !deployed {
            self.deploy_operator();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("node logs in {}", self.workdir.join("logs").display());
        }
        cluster_down(&self.workdir);
    }
}

/// Tears the node down if `up` succeeded but a later step of `start` panicked.
struct DownOnPanic(Option<PathBuf>);

impl Drop for DownOnPanic {
    fn drop(&mut self) {
        if let Some(workdir) = self.0.take() {
            cluster_down(&workdir);
        }
    }
}

fn cluster_down(workdir: &Path) {
    let started = Instant::now();
    let out = run_script("node/cluster.sh", &[Path::new("down"), workdir]);
    if out.status.success() {
        eprintln!("node cluster down in {:.1}s", started.elapsed().as_secs_f64());
    } else {
        eprintln!(
            "node/cluster.sh down {} failed:\n{}",
            workdir.display(),
            output_text(&out)
        );
    }
}

/// Waits (up to `MACHINE_LOCK_WAIT`) until no other process runs node tests on this machine.
fn take_machine_lock() -> File {
    let file = File::create(MACHINE_LOCK).unwrap();
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return file,
            Err(std::fs::TryLockError::WouldBlock) => {
                if !told {
                    eprintln!("another process runs the node tests on this machine; waiting for it ({MACHINE_LOCK})");
                    told = true;
                }
                assert!(
                    start.elapsed() < MACHINE_LOCK_WAIT,
                    "the node is still held by another process after {MACHINE_LOCK_WAIT:?} ({MACHINE_LOCK})"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(std::fs::TryLockError::Error(e)) => panic!("cannot lock {MACHINE_LOCK}: {e}"),
        }
    }
}

/// With the machine lock held: a node left behind by an earlier test process that was killed is torn down,
/// and so is any node none of whose processes is alive (its owner was killed with its process group, leaving
/// the network namespace, mounts and owner file behind); a live one started by someone else (dev-up.sh, a
/// shell) is not ours to stop.
fn free_node(workdir: &Path) {
    let Ok(owner) = std::fs::read_to_string(OWNER_FILE) else {
        return;
    };
    let owner = Path::new(owner.trim());
    if owner == workdir {
        eprintln!(
            "tearing down a node left behind by an earlier test run ({})",
            owner.display()
        );
        cluster_down(workdir);
    } else if live_node_processes(owner).is_empty() {
        eprintln!(
            "tearing down a node none of whose processes runs any more ({})",
            owner.display()
        );
        cluster_down(owner);
    } else {
        panic!(
            "a node cluster from {owner} runs on this machine and only one can: stop it first \
             (tests/env/dev-down.sh for dev-up's, or tests/env/node/cluster.sh down {owner})",
            owner = owner.display()
        );
    }
}

/// The PIDs of a node's `*.pid` files (cluster.sh writes one per component) that name a running process.
fn live_node_processes(workdir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(workdir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u32>().ok())
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect()
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
