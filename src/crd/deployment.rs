//! The FlinkDeployment custom resource: one Flink cluster (application or session).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    FlinkConfiguration, FlinkVersion, IngressSpec, JobManagerSpec, JobSpec, KubernetesDeploymentMode, TaskManagerSpec,
};
use super::status::FlinkDeploymentStatus;

/// A Flink cluster: an application cluster when `job` is set, else a session cluster.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkDeployment",
    namespaced,
    status = "FlinkDeploymentStatus",
    shortname = "flinkdep",
    doc = "A Flink cluster managed by the operator: an application cluster when spec.job is set, else a session cluster.",
    printcolumn = r#"{"name":"Job Status", "type":"string", "jsonPath":".status.jobStatus.state", "description":"Last observed state of the job"}"#,
    printcolumn = r#"{"name":"Lifecycle State", "type":"string", "jsonPath":".status.lifecycleState", "description":"Lifecycle state of the resource"}"#,
    scale(
        spec_replicas_path = ".spec.taskManager.replicas",
        status_replicas_path = ".status.taskManager.replicas",
        label_selector_path = ".status.taskManager.labelSelector"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentSpec {
    /// Container image of the Flink pods, e.g. `flink:1.20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image pull policy of the Flink pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Service account of the Flink pods (native mode: needs rights on pods and configmaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Flink version of the image (v1_13 ... v2_3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink_version: Option<FlinkVersion>,
    /// Ingress for the REST API and web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// Pod template for all Flink pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::pod_template")]
    pub pod_template: Option<serde_json::Value>,
    /// JobManager settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<JobManagerSpec>,
    /// TaskManager settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerSpec>,
    /// The job of an application cluster; absent for a session cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// Change this to any new value to restart the cluster and job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// Flink configuration; `kubernetes.operator.*` keys configure the operator and are not passed to Flink.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::crd::common::deserialize_flink_configuration"
    )]
    #[schemars(schema_with = "crate::crd::schema::flink_configuration")]
    pub flink_configuration: Option<FlinkConfiguration>,
    /// Logging configuration files: `log4j-console.properties` and/or `logback-console.xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<BTreeMap<String, String>>,
    /// Deployment mode: `native` (default) or `standalone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<KubernetesDeploymentMode>,
}

impl FlinkDeploymentSpec {
    pub fn mode(&self) -> KubernetesDeploymentMode {
        self.mode.unwrap_or_default()
    }

    pub fn is_application(&self) -> bool {
        self.job.is_some()
    }
}
