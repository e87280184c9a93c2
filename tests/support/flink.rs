//! Real Apache Flink on loopback for the e2e suites (`tests/env/flink.sh`: PyPI distribution, Java 17).
//! Every cluster's JVMs are stopped by PID when it is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const ENTRY_CLASS: &str = "org.apache.flink.operator.testjob.KeyedCounter";

pub fn flink_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/flink.sh")
}

/// A Flink cluster started by flink.sh in its own work directory.
pub struct FlinkCluster {
    pub rest_url: String,
    /// The TaskManager's stdout, where the test job prints its `(key,count)` lines.
    pub taskmanager_log: PathBuf,
    pub env: BTreeMap<String, String>,
    pub work: tempfile::TempDir,
}

impl FlinkCluster {
    /// JobManager + one TaskManager (2 slots), checkpoint and savepoint directories in the work dir.
    pub fn session(version: &str) -> FlinkCluster {
        Self::run(&["start-session", "{work}", version], &[])
    }

    /// A standalone application cluster as an operator-made JobManager Deployment describes it:
    /// `conf` is the configuration the operator rendered, `args` the JobManager's arguments after
    /// `standalone-job`; REST on the fixed `rest_port`.
    pub fn application(version: &str, rest_port: u16, conf: &Path, args: &[String], slots: u32) -> FlinkCluster {
        let port = rest_port.to_string();
        let mut all = vec!["start-application", "{work}", version, &port, conf.to_str().unwrap()];
        all.extend(args.iter().map(String::as_str));
        Self::run(&all, &[("SLOTS", &slots.to_string())])
    }

    fn run(args: &[&str], envs: &[(&str, &str)]) -> FlinkCluster {
        let work = tempfile::tempdir().unwrap();
        let path = work.path().to_str().unwrap().to_string();
        let args: Vec<String> = args.iter().map(|a| a.replace("{work}", &path)).collect();
        let out = std::process::Command::new("bash")
            .arg(flink_sh())
            .args(&args)
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "flink.sh {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: BTreeMap<String, String> = std::fs::read_to_string(work.path().join("flink.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FlinkCluster {
            rest_url: env["REST_URL"].clone(),
            taskmanager_log: PathBuf::from(&env["TM_LOG"]),
            env,
            work,
        }
    }

    /// The `(key, count)` lines the test job has printed so far.
    pub fn printed_counts(&self) -> Vec<(u64, u64)> {
        printed_counts(&std::fs::read_to_string(&self.taskmanager_log).unwrap_or_default())
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(flink_sh())
            .arg("stop")
            .arg(self.work.path())
            .output();
    }
}

/// The test job jar compiled for `version` (cached by flink.sh).
pub fn test_jar(version: &str) -> PathBuf {
    let out = std::process::Command::new("bash")
        .arg(flink_sh())
        .args(["test-jar", version])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A `file:` URI from Flink as a local path.
pub fn local_path(uri: &str) -> PathBuf {
    PathBuf::from(
        uri.strip_prefix("file://")
            .or_else(|| uri.strip_prefix("file:"))
            .unwrap_or(uri),
    )
}

/// `(key, count)` lines the test job prints (`(k,c)`, prefixed with `N> ` when the sink runs in parallel).
pub fn printed_counts(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.split_once("> ").map_or(line, |(_, rest)| rest);
            let (key, count) = line.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
            Some((key.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}
