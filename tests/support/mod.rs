//! Shared helpers for the integration suites: free ports, the operator as a child process, polling.
#![allow(dead_code)]

pub mod cluster;
pub mod flink;
pub mod helm;
pub mod jar_server;
pub mod node;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `FLINK_OPERATOR_SKIP_E2E=1` skips the e2e suites locally (CI never sets it).
pub fn skip_e2e() -> bool {
    let skip = std::env::var("FLINK_OPERATOR_SKIP_E2E").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("FLINK_OPERATOR_SKIP_E2E=1: e2e skipped");
    }
    skip
}

/// A port nobody listens on right now (bound and released).
/// A loopback port free now and not handed out before in this process: the kernel may give a port just
/// released again, and two picks for one operator (admin and webhook) then collide.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

pub fn operator_bin() -> &'static str {
    env!("CARGO_BIN_EXE_flink-operator")
}

/// Polls `check` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes a fresh CA and serving certificate for 127.0.0.1/localhost into `dir` with `flink-operator certs`.
pub fn write_certs(dir: &Path) {
    let status = Command::new(operator_bin())
        .args(["certs", "--out"])
        .arg(dir)
        .args(["--dns", "localhost", "--ip", "127.0.0.1"])
        .status()
        .unwrap();
    assert!(status.success(), "flink-operator certs failed");
}

/// The operator running as a child process; killed (by PID) when dropped.
pub struct Operator {
    pub child: Child,
    pub webhook_port: u16,
    pub admin_port: u16,
    pub log: PathBuf,
}

impl Operator {
    /// Starts `flink-operator run` with free ports plus `args`, logging to `log`.
    pub fn start(args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Operator {
        let webhook_port = free_port();
        let admin_port = free_port();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(operator_bin())
            .arg("run")
            .args(["--webhook-addr", &format!("127.0.0.1:{webhook_port}")])
            .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")])
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info,flink_operator=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Operator {
            child,
            webhook_port,
            admin_port,
            log,
        }
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn webhook_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.webhook_port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, deadline: Duration) {
        let url = self.admin_url("/readyz");
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("operator exited with {status}; logs:\n{}", self.logs());
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status() == 200
            {
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "operator not ready after {deadline:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "operator ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS client that trusts only the CA in `ca_pem`.
pub fn tls_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An AdmissionReview (admission.k8s.io/v1) for `object`.
pub fn review(
    kind: &str,
    operation: &str,
    object: serde_json::Value,
    old: Option<serde_json::Value>,
) -> serde_json::Value {
    let resource = match kind {
        "FlinkDeployment" => "flinkdeployments",
        "FlinkSessionJob" => "flinksessionjobs",
        _ => "others",
    };
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": kind},
            "resource": {"group": "flink.apache.org", "version": "v1beta1", "resource": resource},
            "name": if object.is_null() { old.as_ref().map(|o| o["metadata"]["name"].clone()) } else { Some(object["metadata"]["name"].clone()) },
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// An example from `examples/` as JSON.
pub fn example(relative: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap()
}
