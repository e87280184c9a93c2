//! Spec validation: pure rules shared by the admission webhook and the controller.
//!
//! Every violation names the field, says what is wrong and what to do about it.

mod deployment;
mod session_job;

use std::fmt;

pub use deployment::{LOG_CONFIG_FILES, ingress_host_and_path, validate_deployment};
pub use session_job::validate_session_job;

use crate::crd::{FlinkConfiguration, JobSpec, UpgradeMode};
use crate::flink_config::{self, CHECKPOINT_DIR_KEYS, SAVEPOINT_DIR_KEYS};

/// One broken rule, tied to the field that breaks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Path of the offending field, e.g. `spec.job.parallelism`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All violations of one object; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for violation in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Collects violations while rules run.
#[derive(Default)]
pub(crate) struct Report(Vec<Violation>);

impl Report {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), Violations> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Violations(self.0))
        }
    }
}

/// Longest cluster id Flink's Kubernetes integration accepts (it derives Service names from it).
pub const MAX_CLUSTER_ID_LEN: usize = 45;

/// Whether `name` can be a Flink cluster id: a DNS-1035 label of at most 45 characters.
pub fn is_valid_cluster_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CLUSTER_ID_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

pub(crate) fn check_cluster_id(report: &mut Report, field: &str, name: &str) {
    if !is_valid_cluster_id(name) {
        report.add(
            field,
            format!(
                "'{name}' is not a valid Flink cluster id: use lower-case letters, digits and '-', \
                 start with a letter, do not end with '-', at most {MAX_CLUSTER_ID_LEN} characters"
            ),
        );
    }
}

/// URI schemes Flink inside the pods can fetch a FlinkDeployment's job jar from.
pub const JAR_URI_SCHEMES: [&str; 14] = [
    "local", "file", "http", "https", "s3", "s3a", "s3p", "gs", "hdfs", "abfs", "abfss", "wasb", "wasbs", "oss",
];

/// URI schemes the operator fetches a FlinkSessionJob's jar from before uploading it (`flink::JarFetcher`).
pub const SESSION_JOB_JAR_URI_SCHEMES: [&str; 3] = ["file", "http", "https"];

pub(crate) fn check_jar_uri(report: &mut Report, uri: &str, schemes: &[&str]) {
    let field = "spec.job.jarURI";
    let Some((scheme, rest)) = uri.split_once("://") else {
        report.add(
            field,
            format!(
                "'{uri}' is not a URI: give a scheme, e.g. local:///opt/flink/usrlib/job.jar for a jar in the \
                 image, or https://host/job.jar"
            ),
        );
        return;
    };
    if !schemes.contains(&scheme.to_ascii_lowercase().as_str()) {
        report.add(
            field,
            format!("scheme '{scheme}' is not supported: use one of {}", schemes.join(", ")),
        );
    } else if rest.is_empty() || rest.contains(char::is_whitespace) {
        report.add(field, format!("'{uri}' has no usable path"));
    }
}

/// Whose job spec `check_job` checks.
#[derive(Clone, Copy)]
pub(crate) enum JobOf {
    /// An application FlinkDeployment's: Flink fetches the jar; state directories must be configured.
    Deployment,
    /// A FlinkSessionJob's: the operator fetches the jar; directories come from the session cluster.
    SessionJob,
}

/// Rules on the job spec shared by FlinkDeployment and FlinkSessionJob.
pub(crate) fn check_job(
    report: &mut Report,
    job: &JobSpec,
    old_job: Option<&JobSpec>,
    conf: &FlinkConfiguration,
    kind: JobOf,
) {
    let (jar_schemes, require_dirs) = match kind {
        JobOf::Deployment => (&JAR_URI_SCHEMES[..], true),
        // A session job inherits its directories from the session cluster, which is checked there.
        JobOf::SessionJob => (&SESSION_JOB_JAR_URI_SCHEMES[..], false),
    };
    if let Some(uri) = &job.jar_uri {
        check_jar_uri(report, uri, jar_schemes);
    }
    if let Some(parallelism) = job.parallelism
        && parallelism < 1
    {
        report.add("spec.job.parallelism", format!("must be at least 1, got {parallelism}"));
    }
    let upgrade_mode = job.upgrade_mode();
    let has_checkpoint_dir = !require_dirs || flink_config::first_set(conf, &CHECKPOINT_DIR_KEYS).is_some();
    let has_savepoint_dir = !require_dirs || flink_config::first_set(conf, &SAVEPOINT_DIR_KEYS).is_some();
    if upgrade_mode != UpgradeMode::Stateless && !has_checkpoint_dir {
        report.add(
            "spec.flinkConfiguration",
            format!(
                "upgradeMode {} needs a checkpoint directory: set state.checkpoints.dir (Flink 1.x) or \
                 execution.checkpointing.dir (Flink 2.x)",
                upgrade_mode_name(upgrade_mode)
            ),
        );
    }
    if !has_savepoint_dir {
        let savepoint_dir_hint =
            "set state.savepoints.dir (Flink 1.x) or execution.checkpointing.savepoint-dir (Flink 2.x)";
        if upgrade_mode == UpgradeMode::Savepoint {
            report.add(
                "spec.flinkConfiguration",
                format!("upgradeMode savepoint needs a savepoint directory: {savepoint_dir_hint}"),
            );
        }
        let nonce_changed = job.savepoint_trigger_nonce.is_some()
            && old_job.is_none_or(|old| old.savepoint_trigger_nonce != job.savepoint_trigger_nonce);
        if nonce_changed {
            report.add(
                "spec.job.savepointTriggerNonce",
                format!("a manual savepoint needs a savepoint directory: {savepoint_dir_hint}"),
            );
        }
        if let Some(interval) = conf.get(flink_config::PERIODIC_SAVEPOINT_INTERVAL)
            && flink_config::parse_duration(interval).is_ok_and(|d| !d.is_zero())
        {
            report.add(
                "spec.flinkConfiguration",
                format!(
                    "{} needs a savepoint directory: {savepoint_dir_hint}",
                    flink_config::PERIODIC_SAVEPOINT_INTERVAL
                ),
            );
        }
    }
    if let Some(interval) = conf.get(flink_config::PERIODIC_SAVEPOINT_INTERVAL)
        && let Err(why) = flink_config::parse_duration(interval)
    {
        report.add(
            "spec.flinkConfiguration",
            format!("{}: {why}", flink_config::PERIODIC_SAVEPOINT_INTERVAL),
        );
    }
}

pub(crate) fn check_forbidden_keys(report: &mut Report, spec_conf: Option<&FlinkConfiguration>) {
    let Some(conf) = spec_conf else { return };
    for key in flink_config::FORBIDDEN_KEYS {
        if conf.contains_key(key) {
            report.add(
                "spec.flinkConfiguration",
                format!("{key} is set by the operator from the resource's name and namespace; remove it"),
            );
        }
    }
}

pub(crate) fn upgrade_mode_name(mode: UpgradeMode) -> &'static str {
    match mode {
        UpgradeMode::Savepoint => "savepoint",
        UpgradeMode::LastState => "last-state",
        UpgradeMode::Stateless => "stateless",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids() {
        for ok in ["a", "basic-example", "x1", &"a".repeat(45)] {
            assert!(is_valid_cluster_id(ok), "{ok}");
        }
        for bad in ["", "1abc", "Basic", "a_b", "a.b", "abc-", "-abc", &"a".repeat(46)] {
            assert!(!is_valid_cluster_id(bad), "{bad}");
        }
    }

    #[test]
    fn jar_uris() {
        let check = |uri: &str| {
            let mut report = Report::default();
            check_jar_uri(&mut report, uri, &JAR_URI_SCHEMES);
            report.finish()
        };
        for ok in [
            "local:///opt/flink/usrlib/job.jar",
            "file:///tmp/job.jar",
            "https://repo.example/job.jar",
            "s3://bucket/job.jar",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "job.jar",
            "/opt/flink/job.jar",
            "ftp2://x/job.jar",
            "local://",
            "http://a b",
        ] {
            let err = check(bad).expect_err(bad);
            assert_eq!(err.0[0].field, "spec.job.jarURI");
        }
    }

    #[test]
    fn violations_display_names_every_field() {
        let v = Violations(vec![
            Violation {
                field: "a.b".into(),
                message: "bad".into(),
            },
            Violation {
                field: "c".into(),
                message: "worse".into(),
            },
        ]);
        assert_eq!(v.to_string(), "a.b: bad; c: worse");
    }
}

#[cfg(test)]
mod rule_tests;
