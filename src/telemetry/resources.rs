//! Gauges of the managed resources, computed from the controllers' caches at scrape time (no API calls,
//! nothing to keep in sync).

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use crate::crd::{FlinkDeployment, FlinkSessionJob, JobManagerDeploymentStatus, ResourceLifecycleState};

/// `flink_operator_resources{kind,namespace,lifecycle_state}` and
/// `flink_operator_jobmanager_deployments{namespace,status}`.
pub struct ResourceCollector {
    deployments: Vec<Store<FlinkDeployment>>,
    session_jobs: Vec<Store<FlinkSessionJob>>,
    descs: Vec<Desc>,
}

fn resources_opts() -> Opts {
    Opts::new("resources", "Managed resources by kind, namespace and lifecycle state")
}

fn jobmanager_opts() -> Opts {
    Opts::new(
        "jobmanager_deployments",
        "FlinkDeployments by namespace and JobManager deployment status",
    )
}

impl ResourceCollector {
    pub fn new(deployments: Vec<Store<FlinkDeployment>>, session_jobs: Vec<Store<FlinkSessionJob>>) -> Self {
        let mut descs = Vec::new();
        for (opts, labels) in [
            (resources_opts(), &["kind", "namespace", "lifecycle_state"][..]),
            (jobmanager_opts(), &["namespace", "status"][..]),
        ] {
            if let Ok(gauge) = IntGaugeVec::new(opts, labels) {
                descs.extend(gauge.desc().into_iter().cloned());
            }
        }
        ResourceCollector {
            deployments,
            session_jobs,
            descs,
        }
    }
}

fn lifecycle_name(state: Option<ResourceLifecycleState>) -> String {
    state
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "CREATED".to_string())
}

fn jobmanager_name(status: Option<JobManagerDeploymentStatus>) -> String {
    serde_json::to_value(status.unwrap_or_default())
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Collector for ResourceCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        let mut jobmanagers: BTreeMap<(String, String), i64> = BTreeMap::new();
        for fd in self.deployments.iter().flat_map(Store::state) {
            let namespace = fd.namespace().unwrap_or_default();
            let status = fd.status.as_ref();
            let lifecycle = lifecycle_name(status.and_then(|s| s.lifecycle_state));
            *counts
                .entry(("FlinkDeployment".into(), namespace.clone(), lifecycle))
                .or_default() += 1;
            let jm = jobmanager_name(status.and_then(|s| s.job_manager_deployment_status));
            *jobmanagers.entry((namespace, jm)).or_default() += 1;
        }
        for job in self.session_jobs.iter().flat_map(Store::state) {
            let lifecycle = lifecycle_name(job.status.as_ref().and_then(|s| s.lifecycle_state));
            *counts
                .entry(("FlinkSessionJob".into(), job.namespace().unwrap_or_default(), lifecycle))
                .or_default() += 1;
        }
        let (Ok(resources), Ok(jm)) = (
            IntGaugeVec::new(resources_opts(), &["kind", "namespace", "lifecycle_state"]),
            IntGaugeVec::new(jobmanager_opts(), &["namespace", "status"]),
        ) else {
            return Vec::new();
        };
        for ((kind, namespace, lifecycle), n) in counts {
            resources.with_label_values(&[&kind, &namespace, &lifecycle]).set(n);
        }
        for ((namespace, status), n) in jobmanagers {
            jm.with_label_values(&[&namespace, &status]).set(n);
        }
        let mut families = resources.collect();
        families.extend(jm.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FlinkDeploymentSpec, FlinkDeploymentStatus};
    use kube::runtime::{reflector, watcher};

    fn deployment(ns: &str, name: &str, lifecycle: ResourceLifecycleState) -> FlinkDeployment {
        let mut fd = FlinkDeployment::new(name, FlinkDeploymentSpec::default());
        fd.metadata.namespace = Some(ns.into());
        fd.status = Some(FlinkDeploymentStatus {
            lifecycle_state: Some(lifecycle),
            job_manager_deployment_status: Some(JobManagerDeploymentStatus::Deploying),
            ..FlinkDeploymentStatus::default()
        });
        fd
    }

    #[test]
    fn counts_by_namespace_and_state() {
        let (reader, mut writer) = reflector::store::<FlinkDeployment>();
        for fd in [
            deployment("a", "x", ResourceLifecycleState::Deployed),
            deployment("a", "y", ResourceLifecycleState::Deployed),
            deployment("b", "z", ResourceLifecycleState::Stable),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(fd));
        }
        let (jobs, _) = reflector::store::<FlinkSessionJob>();
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(ResourceCollector::new(vec![reader], vec![jobs])))
            .unwrap();
        let mut text = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(r#"resources{kind="FlinkDeployment",lifecycle_state="DEPLOYED",namespace="a"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"resources{kind="FlinkDeployment",lifecycle_state="STABLE",namespace="b"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"jobmanager_deployments{namespace="a",status="DEPLOYING"} 2"#),
            "{text}"
        );
    }
}
