//! Flink REST client: typed calls for the job lifecycle (submit, observe, savepoint, stop, cancel), with a timeout
//! on every call and bounded retries for reads; pure helpers the reconciler decides with.

mod client;
mod error;
mod jar;
mod job_state;
mod types;

pub use client::{RestClient, RetryPolicy, cluster_info_of};
pub use error::{FlinkError, MAX_MESSAGE_CHARS, error_body_message, summarize_java_error, truncate_chars};
pub use jar::{Jar, JarError, JarFetcher, MAX_JAR_BYTES};
pub use job_state::{ExecutionState, JobPhase, JobState, is_job_running};
pub use types::{
    CheckpointCounts, CheckpointStats, ClusterOverview, CompletedCheckpoint, FailedCheckpoint, JarFile, JarRunRequest,
    JobDetails, JobResult, JobSummary, JobVertex, LatestCheckpoints, OperationStatus, RestoredCheckpoint,
    SavepointFormat, SavepointRequest, StopRequest,
};

/// The REST base URL of a cluster from a template with `{name}`, `{namespace}` and `{port}`.
pub fn rest_url(template: &str, name: &str, namespace: &str, port: i32) -> String {
    template
        .replace("{name}", name)
        .replace("{namespace}", namespace)
        .replace("{port}", &port.to_string())
}

/// In-cluster address of a cluster's REST Service.
pub const DEFAULT_REST_URL_TEMPLATE: &str = "http://{name}-rest.{namespace}.svc:{port}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_template() {
        assert_eq!(
            rest_url(DEFAULT_REST_URL_TEMPLATE, "job", "ns", 8081),
            "http://job-rest.ns.svc:8081"
        );
        assert_eq!(
            rest_url("http://127.0.0.1:9000", "job", "ns", 8081),
            "http://127.0.0.1:9000"
        );
    }
}
