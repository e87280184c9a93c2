//! FlinkSessionJob rules.

use super::{JobOf, Report, Violations, check_cluster_id, check_forbidden_keys, check_job};
use crate::crd::{FlinkConfiguration, FlinkSessionJob, UpgradeMode};
use crate::flink_config;

/// Validates a FlinkSessionJob; `old` is the stored object on UPDATE.
pub fn validate_session_job(
    new: &FlinkSessionJob,
    old: Option<&FlinkSessionJob>,
    defaults: &FlinkConfiguration,
) -> Result<(), Violations> {
    let mut report = Report::default();
    let spec = &new.spec;
    let conf = flink_config::effective(defaults, spec.flink_configuration.as_ref());

    match spec.deployment_name.as_deref() {
        None | Some("") => report.add(
            "spec.deploymentName",
            "is required: name the session cluster (a FlinkDeployment without spec.job) to run the job on",
        ),
        Some(name) => check_cluster_id(&mut report, "spec.deploymentName", name),
    }
    if let Some(old_name) = old.and_then(|o| o.spec.deployment_name.as_deref())
        && spec.deployment_name.as_deref() != Some(old_name)
    {
        report.add(
            "spec.deploymentName",
            format!(
                "cannot change from '{old_name}': a session job stays on its cluster; create a new FlinkSessionJob"
            ),
        );
    }
    check_forbidden_keys(&mut report, spec.flink_configuration.as_ref());
    match &spec.job {
        None => report.add(
            "spec.job",
            "is required: describe the job to run (jarURI and/or entryClass, parallelism, upgradeMode)",
        ),
        Some(job) => {
            if job.jar_uri.is_none() && job.entry_class.is_none() {
                report.add(
                    "spec.job",
                    "is empty: give a jarURI, an entryClass on the cluster's classpath, or both",
                );
            }
            if job.upgrade_mode() == UpgradeMode::LastState {
                report.add(
                    "spec.job.upgradeMode",
                    "last-state is not supported for session jobs (their checkpoints live in a shared cluster): \
                     use savepoint or stateless",
                );
            }
            check_job(
                &mut report,
                job,
                old.and_then(|o| o.spec.job.as_ref()),
                &conf,
                JobOf::SessionJob,
            );
        }
    }
    report.finish()
}
