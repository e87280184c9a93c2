//! The `flink.apache.org/v1beta1` API: FlinkDeployment and FlinkSessionJob.

pub mod common;
pub mod deployment;
pub(crate) mod schema;
pub mod session_job;
pub mod status;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use deployment::{FlinkDeployment, FlinkDeploymentSpec};
pub use session_job::{FlinkSessionJob, FlinkSessionJobSpec};
pub use status::*;

pub const GROUP: &str = "flink.apache.org";

/// Both CRDs, as installed into a cluster.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![FlinkDeployment::crd(), FlinkSessionJob::crd()]
}

/// Both CRDs as one multi-document YAML stream (what `flink-operator crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
