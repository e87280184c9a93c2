//! FlinkDeployment rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::{JobOf, Report, Violations, check_cluster_id, check_forbidden_keys, check_job};
use crate::crd::{
    FlinkConfiguration, FlinkDeployment, FlinkDeploymentSpec, KubernetesDeploymentMode, Resource, UpgradeMode,
};
use crate::flink_config::{self, ROLLBACK_ENABLED};

/// Log configuration files Flink's scripts pick up.
pub const LOG_CONFIG_FILES: [&str; 2] = ["log4j-console.properties", "logback-console.xml"];

/// Validates a FlinkDeployment; `old` is the stored object on UPDATE.
/// `defaults` is the operator's default Flink configuration, which the spec overrides.
pub fn validate_deployment(
    new: &FlinkDeployment,
    old: Option<&FlinkDeployment>,
    defaults: &FlinkConfiguration,
) -> Result<(), Violations> {
    let mut report = Report::default();
    let spec = &new.spec;
    let conf = flink_config::effective(defaults, spec.flink_configuration.as_ref());
    let ha = flink_config::ha_enabled(&conf);

    if let Some(name) = &new.metadata.name {
        check_cluster_id(&mut report, "metadata.name", name);
    }
    if spec.flink_version.is_none() {
        report.add(
            "spec.flinkVersion",
            "is required: set the Flink version of the image, e.g. v1_20 or v2_3",
        );
    }
    if spec.service_account.as_deref().is_none_or(|s| s.trim().is_empty()) {
        report.add(
            "spec.serviceAccount",
            "is required: name the service account of the Flink pods (native mode gives it rights on pods \
             and configmaps; e.g. flink)",
        );
    }
    check_forbidden_keys(&mut report, spec.flink_configuration.as_ref());
    if flink_config::is_true(&conf, ROLLBACK_ENABLED) && !ha {
        report.add(
            "spec.flinkConfiguration",
            format!("{ROLLBACK_ENABLED} needs high availability: set high-availability.type: kubernetes"),
        );
    }
    check_log_configuration(&mut report, spec.log_configuration.as_ref());
    check_ingress(&mut report, spec);
    check_pod_template(&mut report, "spec.podTemplate", spec.pod_template.as_ref());
    check_job_manager(&mut report, spec, ha);
    check_task_manager(&mut report, spec);

    if let Some(job) = &spec.job {
        let old_job = old.and_then(|o| o.spec.job.as_ref());
        check_job(&mut report, job, old_job, &conf, JobOf::Deployment);
        // Without HA a last-state upgrade restores the latest retained checkpoint, which needs a directory.
        let checkpoint_dir = flink_config::first_set(&conf, &["state.checkpoints.dir", "execution.checkpointing.dir"]);
        if job.upgrade_mode() == UpgradeMode::LastState && !ha && checkpoint_dir.is_none() {
            report.add(
                "spec.job.upgradeMode",
                "last-state needs checkpoints to restore from: set state.checkpoints.dir \
                 (execution.checkpointing.dir on Flink 2), or high-availability.type: kubernetes with \
                 high-availability.storageDir, or use savepoint",
            );
        }
    }
    if flink_config::is_reactive(&conf) {
        if spec.mode() == KubernetesDeploymentMode::Native {
            report.add(
                "spec.flinkConfiguration",
                "scheduler-mode: reactive needs mode: standalone (reactive mode scales the job by the number of \
                 TaskManagers, which only the operator controls in standalone mode)",
            );
        } else if spec.job.is_none() {
            report.add(
                "spec.flinkConfiguration",
                "scheduler-mode: reactive only works for application clusters (set spec.job); a session \
                 cluster cannot run in reactive mode",
            );
        }
    }
    if let Some(old) = old {
        check_immutable(&mut report, spec, &old.spec);
    }
    report.finish()
}

fn check_immutable(report: &mut Report, new: &FlinkDeploymentSpec, old: &FlinkDeploymentSpec) {
    if new.job.is_some() != old.job.is_some() {
        let (from, to) = if old.job.is_some() {
            ("application", "session")
        } else {
            ("session", "application")
        };
        report.add(
            "spec.job",
            format!(
                "cannot turn a {from} cluster into a {to} cluster: delete the FlinkDeployment and create a new one"
            ),
        );
    }
    if new.mode() != old.mode() {
        let name = |m: KubernetesDeploymentMode| match m {
            KubernetesDeploymentMode::Native => "native",
            KubernetesDeploymentMode::Standalone => "standalone",
        };
        report.add(
            "spec.mode",
            format!(
                "cannot change from {} to {}: the mode is fixed at creation; delete the FlinkDeployment and \
                 create a new one",
                name(old.mode()),
                name(new.mode())
            ),
        );
    }
}

fn check_log_configuration(report: &mut Report, logs: Option<&BTreeMap<String, String>>) {
    for key in logs.into_iter().flat_map(BTreeMap::keys) {
        if !LOG_CONFIG_FILES.contains(&key.as_str()) {
            report.add(
                "spec.logConfiguration",
                format!(
                    "'{key}' is not a log configuration file Flink reads: use {}",
                    LOG_CONFIG_FILES.join(" or ")
                ),
            );
        }
    }
}

fn check_ingress(report: &mut Report, spec: &FlinkDeploymentSpec) {
    let Some(ingress) = &spec.ingress else { return };
    let Some(template) = ingress.template.as_deref().filter(|t| !t.trim().is_empty()) else {
        report.add(
            "spec.ingress.template",
            "is required: give a host and/or path, e.g. flink.example.com/{{namespace}}/{{name}}(/|$)(.*)",
        );
        return;
    };
    if let Err(why) = ingress_host_and_path(template, "name", "namespace") {
        report.add("spec.ingress.template", why);
    }
}

/// Splits an ingress template into host and path after substituting `{{name}}` and `{{namespace}}`.
pub fn ingress_host_and_path(template: &str, name: &str, namespace: &str) -> Result<(Option<String>, String), String> {
    let rendered = template.replace("{{name}}", name).replace("{{namespace}}", namespace);
    if rendered.contains("{{") || rendered.contains("}}") {
        return Err(format!(
            "'{template}' uses an unknown placeholder: only {{{{name}}}} and {{{{namespace}}}} exist"
        ));
    }
    if rendered.contains("://") {
        return Err(format!(
            "'{template}' must not have a scheme: give host and/or path only"
        ));
    }
    if rendered.contains(char::is_whitespace) {
        return Err(format!("'{template}' must not contain spaces"));
    }
    let (host, path) = match rendered.find('/') {
        Some(0) => (None, rendered.clone()),
        Some(i) => (Some(rendered[..i].to_string()), rendered[i..].to_string()),
        None => (Some(rendered.clone()), "/".to_string()),
    };
    if let Some(host) = &host {
        let host_ok = host.split('.').enumerate().all(|(i, label)| {
            (i == 0 && label == "*")
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        });
        if !host_ok || host.len() > 253 {
            return Err(format!(
                "host '{host}' from template '{template}' is not a valid DNS name"
            ));
        }
    }
    Ok((host, path))
}

fn check_pod_template(report: &mut Report, field: &str, template: Option<&serde_json::Value>) {
    let Some(template) = template else { return };
    if let Err(why) = serde_json::from_value::<Pod>(template.clone()) {
        report.add(field, format!("is not a usable Pod template: {why}"));
    }
}

fn check_resource(report: &mut Report, component: &str, resource: Option<&Resource>) {
    let field = format!("spec.{component}.resource.memory");
    match resource.and_then(|r| r.memory.as_deref()) {
        None => report.add(field, "is required: set the total process memory, e.g. 1024m or 2g"),
        Some(memory) => {
            if let Err(why) = flink_config::parse_memory_size(memory) {
                report.add(field, why);
            }
        }
    }
    if let Some(cpu) = resource.and_then(|r| r.cpu)
        && !(cpu.is_finite() && cpu > 0.0)
    {
        report.add(
            format!("spec.{component}.resource.cpu"),
            format!("must be a positive number of cores, got {cpu}"),
        );
    }
}

fn check_job_manager(report: &mut Report, spec: &FlinkDeploymentSpec, ha: bool) {
    let jm = spec.job_manager.as_ref();
    check_resource(report, "jobManager", jm.and_then(|jm| jm.resource.as_ref()));
    check_pod_template(
        report,
        "spec.jobManager.podTemplate",
        jm.and_then(|jm| jm.pod_template.as_ref()),
    );
    match jm.and_then(|jm| jm.replicas) {
        Some(replicas) if replicas < 1 => {
            report.add(
                "spec.jobManager.replicas",
                format!("must be at least 1, got {replicas}"),
            );
        }
        Some(replicas) if replicas > 1 && !ha => report.add(
            "spec.jobManager.replicas",
            format!(
                "{replicas} JobManagers need high availability for leader election: set \
                 high-availability.type: kubernetes, or use 1 replica"
            ),
        ),
        _ => {}
    }
}

fn check_task_manager(report: &mut Report, spec: &FlinkDeploymentSpec) {
    let tm = spec.task_manager.as_ref();
    check_resource(report, "taskManager", tm.and_then(|tm| tm.resource.as_ref()));
    check_pod_template(
        report,
        "spec.taskManager.podTemplate",
        tm.and_then(|tm| tm.pod_template.as_ref()),
    );
    if let Some(replicas) = tm.and_then(|tm| tm.replicas)
        && replicas < 1
    {
        report.add(
            "spec.taskManager.replicas",
            format!("must be at least 1, got {replicas}"),
        );
    }
}
