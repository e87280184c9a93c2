//! Spec types shared by FlinkDeployment and FlinkSessionJob, field-compatible with upstream v1beta1.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Flink configuration: option keys to their string values.
pub type FlinkConfiguration = BTreeMap<String, String>;

/// Reads `flinkConfiguration` as upstream accepts it: flat `a.b: "v"` keys or nested YAML maps
/// (`a: {b: v}`), with string, number or boolean values; lists become Flink's `x;y` syntax.
pub(crate) fn deserialize_flink_configuration<'de, D>(d: D) -> Result<Option<FlinkConfiguration>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(value) = Option::<serde_json::Value>::deserialize(d)? else {
        return Ok(None);
    };
    let mut out = FlinkConfiguration::new();
    flatten_into(&mut out, String::new(), value).map_err(serde::de::Error::custom)?;
    Ok(Some(out))
}

fn flatten_into(out: &mut FlinkConfiguration, prefix: String, value: serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (key, child) in map {
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(out, key, child)?;
            }
        }
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            let parts = parts.ok_or_else(|| format!("{prefix}: list items must be strings, numbers or booleans"))?;
            out.insert(prefix, parts.join(";"));
        }
        other => {
            if prefix.is_empty() {
                return Err("must be a map of configuration keys to values".to_string());
            }
            if let Some(text) = scalar(&other) {
                out.insert(prefix, text);
            }
        }
    }
    Ok(())
}

/// Flink versions the operator knows how to deploy.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlinkVersion {
    #[serde(rename = "v1_13")]
    V1_13,
    #[serde(rename = "v1_14")]
    V1_14,
    #[serde(rename = "v1_15")]
    V1_15,
    #[serde(rename = "v1_16")]
    V1_16,
    #[serde(rename = "v1_17")]
    V1_17,
    #[serde(rename = "v1_18")]
    V1_18,
    #[serde(rename = "v1_19")]
    V1_19,
    #[serde(rename = "v1_20")]
    V1_20,
    #[serde(rename = "v2_0")]
    V2_0,
    #[serde(rename = "v2_1")]
    V2_1,
    #[serde(rename = "v2_2")]
    V2_2,
    #[serde(rename = "v2_3")]
    V2_3,
}

impl FlinkVersion {
    /// Flink 2.x reads `config.yaml` and renamed several options.
    pub fn is_2x(self) -> bool {
        self >= FlinkVersion::V2_0
    }

    /// The file name Flink's scripts read the configuration from.
    pub fn config_file_name(self) -> &'static str {
        if self.is_2x() { "config.yaml" } else { "flink-conf.yaml" }
    }
}

/// How the Flink cluster is deployed on Kubernetes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesDeploymentMode {
    /// Flink's native Kubernetes integration: the JobManager creates its TaskManager pods.
    #[default]
    Native,
    /// The operator creates JobManager and TaskManager Deployments; Flink pods need no Kubernetes access.
    Standalone,
}

/// Desired state of a job.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Running,
    Suspended,
}

/// How a running job is stopped and restored when its spec changes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Stop with a savepoint and restore from it.
    Savepoint,
    /// Restore from the latest checkpoint (requires high availability).
    LastState,
    /// Cancel and start from an empty state.
    #[default]
    Stateless,
}

/// The job to run: for a FlinkDeployment this makes it an application cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// URI of the job jar: `local:///opt/flink/usrlib/job.jar` (inside the image), `file://`, `http(s)://`,
    /// or a Flink filesystem scheme. Optional: without it the entry class must be on the image's classpath.
    #[serde(rename = "jarURI", default, skip_serializing_if = "Option::is_none")]
    pub jar_uri: Option<String>,
    /// Parallelism of the job (default: `parallelism.default`, else 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// Fully qualified main class of the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    /// Arguments passed to the job's main method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Desired state of the job: `running` (default) or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JobState>,
    /// Change this to any new value to trigger a manual savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
    /// Savepoint to start the job from when it is first deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint_path: Option<String>,
    /// Change this to any new value to trigger a manual checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_trigger_nonce: Option<i64>,
    /// How the job is upgraded: `stateless` (default), `savepoint` or `last-state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_mode: Option<UpgradeMode>,
    /// Allow restoring from a savepoint that holds state for operators no longer in the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    /// Change this to any new value to redeploy the job from `initialSavepointPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_redeploy_nonce: Option<i64>,
}

impl JobSpec {
    pub fn upgrade_mode(&self) -> UpgradeMode {
        self.upgrade_mode.unwrap_or_default()
    }

    pub fn state(&self) -> JobState {
        self.state.unwrap_or_default()
    }
}

/// Resources of a JobManager or TaskManager container.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// CPU cores (fractions allowed, e.g. 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Total process memory in Flink's syntax (`2048m`, `2g`) or as a Kubernetes quantity (`2Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Ephemeral storage as a Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<String>,
}

/// JobManager settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobManagerSpec {
    /// Container resources of the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// Number of JobManager replicas (more than 1 needs high availability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pod template merged over `spec.podTemplate` for JobManager pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::pod_template")]
    pub pod_template: Option<serde_json::Value>,
}

/// TaskManager settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSpec {
    /// Container resources of each TaskManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// Number of TaskManager replicas (standalone mode). Scaled through the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pod template merged over `spec.podTemplate` for TaskManager pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::schema::pod_template")]
    pub pod_template: Option<serde_json::Value>,
}

/// Ingress for the Flink REST API and web UI.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host and/or path template, e.g. `flink.example.com/{{namespace}}/{{name}}(/|$)(.*)` or
    /// `{{name}}.{{namespace}}.flink.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Ingress class name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Annotations of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// TLS settings of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Vec<k8s_openapi::api::networking::v1::IngressTLS>>,
}
