//! The FlinkSessionJob custom resource: a job submitted to a session cluster.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{FlinkConfiguration, JobSpec};
use super::status::FlinkSessionJobStatus;

/// A job that runs on a session cluster (a FlinkDeployment without `job`).
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkSessionJob",
    namespaced,
    status = "FlinkSessionJobStatus",
    shortname = "sessionjob",
    doc = "A Flink job submitted to a session cluster (a FlinkDeployment without spec.job) in the same namespace.",
    printcolumn = r#"{"name":"Job Status", "type":"string", "jsonPath":".status.jobStatus.state", "description":"Last observed state of the job"}"#,
    printcolumn = r#"{"name":"Lifecycle State", "type":"string", "jsonPath":".status.lifecycleState", "description":"Lifecycle state of the resource"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkSessionJobSpec {
    /// Name of the session cluster (FlinkDeployment) in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    /// The job to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// Change this to any new value to restart the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// Job-level Flink configuration; `kubernetes.operator.*` keys configure the operator.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::crd::common::deserialize_flink_configuration"
    )]
    #[schemars(schema_with = "crate::crd::schema::flink_configuration")]
    pub flink_configuration: Option<FlinkConfiguration>,
}
