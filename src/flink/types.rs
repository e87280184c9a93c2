//! Request and response bodies of the Flink REST endpoints the operator uses.
//!
//! Checked against real Flink 1.20.5 and 2.3.0 (tests/flink_rest.rs). The shapes used here are the same in both;
//! what differs is only added in 2.x and therefore optional here: `jobType`, `schedulerType` and
//! `pending-operators` in `/jobs/overview`; `application-id`, `schedulerType`, `pending-operators` in
//! `/jobs/:jid`; `applicationId` in the jar run answer; `name`, `application-id`, `start-time`, `end-time` in the
//! execution result. Unknown fields are ignored and absent ones default, so either version decodes.
//! (The checkpoint and savepoint directory option names changed in 2.0, see `flink_config`; the REST bodies did
//! not.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::job_state::{ExecutionState, JobState};

/// `GET /overview`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case")]
pub struct ClusterOverview {
    pub taskmanagers: u32,
    pub slots_total: u32,
    pub slots_available: u32,
    pub jobs_running: u32,
    pub jobs_finished: u32,
    pub jobs_cancelled: u32,
    pub jobs_failed: u32,
    pub flink_version: Option<String>,
}

/// `GET /jobs/overview`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JobsOverview {
    pub jobs: Vec<JobSummary>,
}

/// One job of `GET /jobs/overview`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobSummary {
    pub jid: String,
    #[serde(default)]
    pub name: String,
    pub state: JobState,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub start_time: i64,
    /// -1 while the job runs.
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub last_modification: i64,
}

/// `GET /jobs/:jid` (the parts the operator reads).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobDetails {
    pub jid: String,
    #[serde(default)]
    pub name: String,
    pub state: JobState,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub duration: i64,
    /// STREAMING or BATCH.
    #[serde(default)]
    pub job_type: Option<String>,
    #[serde(default)]
    pub vertices: Vec<JobVertex>,
    /// Number of vertices per execution state.
    #[serde(default)]
    pub status_counts: BTreeMap<String, u32>,
}

/// One vertex (chained operators) of a job.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobVertex {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub parallelism: u32,
    pub status: ExecutionState,
    #[serde(default)]
    pub start_time: i64,
}

/// Progress of an asynchronous operation (`{"status":{"id":"IN_PROGRESS"|"COMPLETED"}}`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct QueueStatus {
    pub id: String,
}

/// A thrown Java exception as Flink serialises it (`failure-cause`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct SerializedThrowable {
    #[serde(default)]
    pub class: Option<String>,
    #[serde(rename = "stack-trace", default)]
    pub stack_trace: Option<String>,
}

/// `GET /jobs/:jid/execution-result` as sent.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ExecutionResultBody {
    pub status: QueueStatus,
    #[serde(rename = "job-execution-result", default)]
    pub result: Option<ExecutionResultInner>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct ExecutionResultInner {
    #[serde(default)]
    pub application_status: Option<String>,
    #[serde(default)]
    pub net_runtime: Option<i64>,
    #[serde(default)]
    pub failure_cause: Option<SerializedThrowable>,
}

/// The outcome of a job, once it is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobResult {
    /// The job has not ended yet.
    InProgress,
    Completed {
        /// SUCCEEDED, FAILED, CANCELED or UNKNOWN.
        application_status: String,
        net_runtime_ms: Option<i64>,
        /// The failure summarised (first line and root cause) and truncated.
        failure_cause: Option<String>,
    },
}

/// `POST /jobs/:jid/savepoints` body.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SavepointRequest {
    /// None: the cluster's configured savepoint directory.
    #[serde(rename = "target-directory", skip_serializing_if = "Option::is_none")]
    pub target_directory: Option<String>,
    #[serde(rename = "cancel-job")]
    pub cancel_job: bool,
    #[serde(rename = "formatType", skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormat>,
}

/// `POST /jobs/:jid/stop` body (stop with a savepoint).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_directory: Option<String>,
    /// true: emit MAX_WATERMARK before stopping (drain the pipeline).
    pub drain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SavepointFormat {
    Canonical,
    Native,
}

/// `{"request-id": "..."}`: the id to poll an asynchronous operation with.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TriggerResponse {
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// `GET /jobs/:jid/savepoints/:triggerid` and `GET /savepoint-disposal/:triggerid` as sent.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct AsyncOperationBody {
    pub status: QueueStatus,
    #[serde(default)]
    pub operation: Option<AsyncOperationResult>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct AsyncOperationResult {
    pub location: Option<String>,
    pub failure_cause: Option<SerializedThrowable>,
}

/// State of a savepoint (also stop-with-savepoint) or savepoint disposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationStatus {
    InProgress,
    /// Done; a savepoint's `location` (a URI such as `file:/path/savepoint-...`). Disposal has none.
    Completed {
        location: Option<String>,
    },
    /// Failed; the cause summarised and truncated.
    Failed {
        cause: String,
    },
}

/// `GET /jobs/:jid/checkpoints` (the parts the operator reads).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CheckpointStats {
    pub counts: CheckpointCounts,
    pub latest: LatestCheckpoints,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CheckpointCounts {
    pub restored: u64,
    pub total: u64,
    pub in_progress: u64,
    pub completed: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LatestCheckpoints {
    pub completed: Option<CompletedCheckpoint>,
    pub savepoint: Option<CompletedCheckpoint>,
    pub failed: Option<FailedCheckpoint>,
    pub restored: Option<RestoredCheckpoint>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CompletedCheckpoint {
    pub id: u64,
    #[serde(default)]
    pub external_path: Option<String>,
    #[serde(default)]
    pub trigger_timestamp: i64,
    #[serde(default)]
    pub is_savepoint: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FailedCheckpoint {
    pub id: u64,
    #[serde(default)]
    pub failure_timestamp: i64,
    #[serde(default)]
    pub failure_message: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RestoredCheckpoint {
    pub id: u64,
    #[serde(default)]
    pub external_path: Option<String>,
    #[serde(default)]
    pub restore_timestamp: i64,
    #[serde(default)]
    pub is_savepoint: bool,
}

/// `POST /jars/:jarid/run` body.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JarRunRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Sent as `programArgsList` (the single-string `programArgs` is deprecated).
    #[serde(rename = "programArgsList", skip_serializing_if = "Vec::is_empty")]
    pub program_args: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    /// A fixed job id (32 hex characters) instead of a random one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct JarRunResponse {
    pub jobid: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct JarUploadResponse {
    /// Server-side path; its file name is the jar id.
    pub filename: String,
}

/// `GET /jars`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JarList {
    pub files: Vec<JarFile>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct JarFile {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uploaded: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_use_flinks_field_names() {
        let savepoint = SavepointRequest {
            target_directory: Some("file:///sp".into()),
            cancel_job: false,
            format_type: Some(SavepointFormat::Canonical),
        };
        assert_eq!(
            serde_json::to_value(&savepoint).unwrap(),
            serde_json::json!({"target-directory": "file:///sp", "cancel-job": false, "formatType": "CANONICAL"})
        );
        assert_eq!(
            serde_json::to_value(SavepointRequest::default()).unwrap(),
            serde_json::json!({"cancel-job": false})
        );
        let stop = StopRequest {
            target_directory: Some("/sp".into()),
            drain: false,
            format_type: None,
        };
        assert_eq!(
            serde_json::to_value(&stop).unwrap(),
            serde_json::json!({"targetDirectory": "/sp", "drain": false})
        );
        let run = JarRunRequest {
            entry_class: Some("a.B".into()),
            parallelism: Some(2),
            program_args: vec!["--x".into(), "1".into()],
            savepoint_path: Some("/sp".into()),
            allow_non_restored_state: Some(false),
            job_id: None,
        };
        assert_eq!(
            serde_json::to_value(&run).unwrap(),
            serde_json::json!({"entryClass": "a.B", "parallelism": 2, "programArgsList": ["--x", "1"],
                               "savepointPath": "/sp", "allowNonRestoredState": false})
        );
    }

    #[test]
    fn both_versions_decode() {
        // Flink 2.3 adds fields; 1.20 lacks them. Both decode to the same values.
        let v1 = serde_json::json!({"jobs": [{"jid": "a", "name": "J", "start-time": 1, "end-time": -1,
            "duration": 5, "state": "RUNNING", "last-modification": 2, "tasks": {"running": 3}}]});
        let v2 = serde_json::json!({"jobs": [{"jid": "a", "name": "J", "jobType": "STREAMING",
            "schedulerType": "Default", "start-time": 1, "end-time": -1, "duration": 5, "state": "RUNNING",
            "last-modification": 2, "tasks": {"running": 3}, "pending-operators": 0}]});
        for body in [v1, v2] {
            let overview: JobsOverview = serde_json::from_value(body).unwrap();
            assert_eq!(overview.jobs[0].state, JobState::Running);
            assert_eq!(overview.jobs[0].end_time, -1);
        }
        let stats: CheckpointStats = serde_json::from_value(serde_json::json!({
            "counts": {"restored": 1, "total": 3, "in_progress": 0, "completed": 3, "failed": 0},
            "latest": {"completed": {"id": 5, "external_path": "file:/c/chk-5", "is_savepoint": false,
                                     "trigger_timestamp": 9},
                       "savepoint": null, "failed": null,
                       "restored": {"id": 2, "restore_timestamp": 7, "is_savepoint": true,
                                    "external_path": "file:/s/savepoint-1"}}}))
        .unwrap();
        assert_eq!(stats.counts.restored, 1);
        assert_eq!(
            stats.latest.completed.unwrap().external_path.as_deref(),
            Some("file:/c/chk-5")
        );
        assert!(stats.latest.restored.unwrap().is_savepoint);
    }
}
