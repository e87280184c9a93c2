//! Flink's job and task states, and the checks the reconciler makes on them (pure).

use serde::Deserialize;

use super::types::JobDetails;

/// A job's state (`JobStatus` in Flink). Unknown future states decode as `Unknown` instead of failing.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Initializing,
    Created,
    Running,
    Failing,
    Failed,
    Cancelling,
    Canceled,
    Finished,
    Restarting,
    Suspended,
    Reconciling,
    #[serde(other)]
    Unknown,
}

impl JobState {
    /// Flink's own spelling (what upstream's `status.jobStatus.state` shows).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Initializing => "INITIALIZING",
            JobState::Created => "CREATED",
            JobState::Running => "RUNNING",
            JobState::Failing => "FAILING",
            JobState::Failed => "FAILED",
            JobState::Cancelling => "CANCELLING",
            JobState::Canceled => "CANCELED",
            JobState::Finished => "FINISHED",
            JobState::Restarting => "RESTARTING",
            JobState::Suspended => "SUSPENDED",
            JobState::Reconciling => "RECONCILING",
            JobState::Unknown => "UNKNOWN",
        }
    }

    /// The job is over for good: Flink will not run it again (FINISHED, FAILED, CANCELED).
    pub fn is_globally_terminal(self) -> bool {
        matches!(self, JobState::Finished | JobState::Failed | JobState::Canceled)
    }

    /// The job is over on this JobManager; SUSPENDED jobs resume from HA elsewhere.
    pub fn is_terminal(self) -> bool {
        self.is_globally_terminal() || self == JobState::Suspended
    }

    /// A failure happened or is being handled.
    pub fn is_failing(self) -> bool {
        matches!(self, JobState::Failing | JobState::Failed | JobState::Restarting)
    }

    /// What the reconciler does with it.
    pub fn phase(self) -> JobPhase {
        match self {
            JobState::Initializing | JobState::Created | JobState::Reconciling => JobPhase::Starting,
            JobState::Running => JobPhase::Running,
            JobState::Failing | JobState::Restarting => JobPhase::Recovering,
            JobState::Cancelling => JobPhase::Stopping,
            JobState::Finished => JobPhase::Finished,
            JobState::Failed => JobPhase::Failed,
            JobState::Canceled => JobPhase::Canceled,
            JobState::Suspended => JobPhase::Suspended,
            JobState::Unknown => JobPhase::Unknown,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Coarse job phases the reconciler decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobPhase {
    /// Submitted, not yet running (or being reconciled after a JobManager failover).
    Starting,
    /// Job state RUNNING (tasks may still be deploying: see [`is_job_running`]).
    Running,
    /// Failing or restarting: Flink's restart strategy is at work.
    Recovering,
    Stopping,
    Finished,
    Failed,
    Canceled,
    Suspended,
    Unknown,
}

/// A task's state (`ExecutionState` in Flink; note CANCELING with one L, unlike the job's CANCELLING).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionState {
    Created,
    Scheduled,
    Deploying,
    Running,
    Finished,
    Canceling,
    Canceled,
    Failed,
    Reconciling,
    Initializing,
    #[serde(other)]
    Unknown,
}

/// The job really runs: its state is RUNNING and so is every vertex (FINISHED counts too: a bounded source may be
/// done). Flink reports a job RUNNING while its tasks are still SCHEDULED or DEPLOYING, e.g. waiting for slots.
pub fn is_job_running(job: &JobDetails) -> bool {
    job.state == JobState::Running
        && !job.vertices.is_empty()
        && job
            .vertices
            .iter()
            .all(|v| matches!(v.status, ExecutionState::Running | ExecutionState::Finished))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, vertices: &[&str]) -> JobDetails {
        let vertices: Vec<_> = vertices
            .iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({"id": format!("v{i}"), "name": "op", "parallelism": 1, "status": s}))
            .collect();
        serde_json::from_value(serde_json::json!({"jid": "j", "state": state, "vertices": vertices})).unwrap()
    }

    #[test]
    fn running_means_job_and_all_vertices_running() {
        assert!(is_job_running(&job("RUNNING", &["RUNNING", "RUNNING"])));
        assert!(is_job_running(&job("RUNNING", &["FINISHED", "RUNNING"])));
        assert!(!is_job_running(&job("RUNNING", &["RUNNING", "SCHEDULED"])));
        assert!(!is_job_running(&job("RUNNING", &["DEPLOYING"])));
        assert!(!is_job_running(&job("RUNNING", &["INITIALIZING"])));
        assert!(!is_job_running(&job("RUNNING", &[])));
        assert!(!is_job_running(&job("RESTARTING", &["RUNNING"])));
        assert!(!is_job_running(&job("CREATED", &["CREATED"])));
    }

    #[test]
    fn states_decode_and_map() {
        let all = [
            ("INITIALIZING", JobPhase::Starting),
            ("CREATED", JobPhase::Starting),
            ("RECONCILING", JobPhase::Starting),
            ("RUNNING", JobPhase::Running),
            ("FAILING", JobPhase::Recovering),
            ("RESTARTING", JobPhase::Recovering),
            ("CANCELLING", JobPhase::Stopping),
            ("FINISHED", JobPhase::Finished),
            ("FAILED", JobPhase::Failed),
            ("CANCELED", JobPhase::Canceled),
            ("SUSPENDED", JobPhase::Suspended),
        ];
        for (name, phase) in all {
            let state: JobState = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(state.as_str(), name);
            assert_eq!(state.phase(), phase, "{name}");
        }
        let future: JobState = serde_json::from_value(serde_json::json!("SOMETHING_NEW")).unwrap();
        assert_eq!(future, JobState::Unknown);
        let task: ExecutionState = serde_json::from_value(serde_json::json!("SOMETHING_NEW")).unwrap();
        assert_eq!(task, ExecutionState::Unknown);
        assert!(JobState::Finished.is_globally_terminal() && JobState::Canceled.is_globally_terminal());
        assert!(!JobState::Suspended.is_globally_terminal() && JobState::Suspended.is_terminal());
        assert!(!JobState::Running.is_terminal() && !JobState::Restarting.is_terminal());
        assert!(JobState::Restarting.is_failing() && !JobState::Running.is_failing());
    }
}
