//! The real Helm v4 SDK (PyPI `helm-python-sdk`, installed by `tests/env/helm.sh`) through
//! `tests/chart/helm_driver.py`: lint, render, install, upgrade, uninstall.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chart in this repository.
pub fn chart() -> PathBuf {
    repo().join("charts/flink-kubernetes-operator")
}

/// The venv's python with helm-python-sdk (installed once, cached).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("tests/env/helm.sh"))
            .arg("python")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// Runs the driver; Ok(JSON) on success, Err(message) when Helm reported an error.
pub fn helm(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(python())
        .arg(repo().join("tests/chart/helm_driver.py"))
        .args(args)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if out.status.success() {
        Ok(json)
    } else {
        Err(json["error"].as_str().unwrap_or_default().to_string())
    }
}
