//! Pure decisions of the FlinkDeployment reconciler: what the observed world means for the status.
//! No I/O here; every function is a function of (spec, status, observed state, time).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    FlinkDeploymentSpec, FlinkDeploymentStatus, JobManagerDeploymentStatus, JobState, ReconciliationState,
    ResourceLifecycleState, TaskManagerInfo,
};

/// What the reconciler learnt about the JobManager Deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentView {
    pub replicas: i32,
    pub available: i32,
    /// Pods the Deployment has (status.replicas): none until the ReplicaSet controller has created them.
    pub pods: i32,
    /// Why the Deployment cannot make progress (ReplicaFailure, FailedCreate, progress deadline), if so.
    pub failure: Option<String>,
}

impl DeploymentView {
    /// All wanted replicas are available and nothing failed.
    pub fn is_available(&self) -> bool {
        self.failure.is_none() && self.available >= self.replicas.max(1)
    }

    /// Pods exist but are not available, and the Deployment itself reports no failure: only the pods can
    /// tell whether they are starting or cannot start (CrashLoopBackOff does not change the Deployment's
    /// status, so nothing would wake the reconciler). Without pods there is nothing to look at: the
    /// Deployment's own status change when they are created wakes it through the watch.
    pub fn pods_to_watch(&self) -> bool {
        !self.is_available() && self.failure.is_none() && self.pods > 0
    }

    /// No pods yet and nothing failed: the Deployment was just created (or its ReplicaSet controller has not
    /// acted yet), and its own status changes when that happens.
    pub fn not_started(&self) -> bool {
        self.failure.is_none() && self.pods == 0 && self.available == 0
    }

    pub fn of(deployment: &Deployment) -> DeploymentView {
        let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = deployment.status.as_ref();
        let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
        let pods = status.and_then(|s| s.replicas).unwrap_or(0);
        let failure = status.and_then(|s| s.conditions.as_ref()).and_then(|conditions| {
            conditions.iter().find_map(|c| {
                let failed = (c.type_ == "ReplicaFailure" && c.status == "True")
                    || (c.type_ == "Progressing" && c.status == "False")
                    || c.reason.as_deref() == Some("FailedCreate");
                failed.then(|| {
                    format!(
                        "{}: {}",
                        c.reason.clone().unwrap_or_else(|| c.type_.clone()),
                        c.message.clone().unwrap_or_default()
                    )
                })
            })
        });
        DeploymentView {
            replicas,
            available,
            pods,
            failure,
        }
    }
}

/// Why a JobManager pod cannot run (a container in CrashLoopBackOff, or an image that cannot be pulled),
/// if one of `pods` is in that state.
pub fn jobmanager_pod_failure(pods: &[k8s_openapi::api::core::v1::Pod]) -> Option<String> {
    const FATAL: [&str; 4] = [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
    ];
    pods.iter().find_map(|pod| {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let statuses = pod.status.as_ref()?;
        let all = statuses
            .init_container_statuses
            .iter()
            .flatten()
            .chain(statuses.container_statuses.iter().flatten());
        all.filter_map(|s| s.state.as_ref()?.waiting.as_ref())
            .find(|w| w.reason.as_deref().is_some_and(|r| FATAL.contains(&r)))
            .map(|w| {
                format!(
                    "pod {name}: {}: {}",
                    w.reason.clone().unwrap_or_default(),
                    w.message.clone().unwrap_or_default()
                )
            })
    })
}

/// The JobManager deployment state machine: MISSING -> DEPLOYING -> DEPLOYED_NOT_READY -> READY, or ERROR.
/// `rest_ready` says whether the cluster's REST endpoint answered.
pub fn jobmanager_status(view: Option<&DeploymentView>, rest_ready: bool) -> JobManagerDeploymentStatus {
    match view {
        None => JobManagerDeploymentStatus::Missing,
        Some(v) if v.failure.is_some() => JobManagerDeploymentStatus::Error,
        Some(v) if v.is_available() => {
            if rest_ready {
                JobManagerDeploymentStatus::Ready
            } else {
                JobManagerDeploymentStatus::DeployedNotReady
            }
        }
        Some(_) => JobManagerDeploymentStatus::Deploying,
    }
}

/// The JobManager state to record for a look that observed `observed` and is about to apply the cluster's
/// objects (`applying`): a missing JobManager is being deployed (as upstream records it), which spares the
/// next look a status write of its own for what the apply is known to do.
pub fn jobmanager_status_recorded(observed: JobManagerDeploymentStatus, applying: bool) -> JobManagerDeploymentStatus {
    match observed {
        JobManagerDeploymentStatus::Missing if applying => JobManagerDeploymentStatus::Deploying,
        other => other,
    }
}

/// The lifecycle state shown to users, derived from the status alone (as upstream does).
pub fn lifecycle_state(status: &FlinkDeploymentStatus, deleting: bool) -> ResourceLifecycleState {
    if deleting {
        return ResourceLifecycleState::Deleting;
    }
    let reconciliation = status.reconciliation_status.as_ref();
    let Some(last) = reconciliation.and_then(|r| r.last_reconciled_spec.as_deref()) else {
        return ResourceLifecycleState::Created;
    };
    match reconciliation.and_then(|r| r.state) {
        Some(ReconciliationState::Upgrading) => return ResourceLifecycleState::Upgrading,
        Some(ReconciliationState::RollingBack) => return ResourceLifecycleState::RollingBack,
        Some(ReconciliationState::RolledBack) => return ResourceLifecycleState::RolledBack,
        _ => {}
    }
    let suspended = serde_json::from_str::<FlinkDeploymentSpec>(last)
        .ok()
        .and_then(|spec| spec.job)
        .is_some_and(|job| job.state() == JobState::Suspended);
    if suspended {
        return ResourceLifecycleState::Suspended;
    }
    let job_failed = status.job_status.as_ref().and_then(|j| j.state.as_deref()) == Some("FAILED");
    if job_failed || status.job_manager_deployment_status == Some(JobManagerDeploymentStatus::Error) {
        return ResourceLifecycleState::Failed;
    }
    if reconciliation.and_then(|r| r.last_stable_spec.as_deref()) == Some(last) {
        ResourceLifecycleState::Stable
    } else {
        ResourceLifecycleState::Deployed
    }
}

/// Everything `next_status` needs to know.
pub struct StatusInputs<'a> {
    pub generation: Option<i64>,
    pub previous: &'a FlinkDeploymentStatus,
    /// The spec as deployed now (JSON), when the spec is valid and its objects were applied.
    pub deployed_spec: Option<String>,
    pub error: Option<String>,
    pub jobmanager: JobManagerDeploymentStatus,
    /// What the cluster's REST endpoint said about itself (version, revision), when it answered.
    pub cluster_info: Option<BTreeMap<String, String>>,
    pub taskmanager_selector: String,
    pub taskmanager_replicas: i32,
    /// Application clusters: the job's state as reported in `jobStatus` (Ready needs RUNNING).
    /// None for session clusters.
    pub job_state: Option<String>,
    /// `error` comes from the spec (InvalidSpec), not from the job.
    pub invalid_spec: bool,
    /// Why the cluster's REST endpoint did not answer, when it was asked and failed (shown in the Ready
    /// condition: "does not answer" alone does not tell a refused connection from a timeout).
    pub rest_error: Option<String>,
    pub now_millis: i64,
    pub now: Time,
}

/// The next status. Unchanged inputs give an identical status (no timestamps move), so the
/// reconciler writes nothing in steady state.
pub fn next_status(inputs: StatusInputs<'_>) -> FlinkDeploymentStatus {
    let previous = inputs.previous;
    let mut status = previous.clone();
    status.error = inputs.error.clone();
    status.job_manager_deployment_status = Some(inputs.jobmanager);
    if let Some(info) = inputs.cluster_info {
        status.cluster_info = Some(info);
    }
    status.task_manager = Some(TaskManagerInfo {
        label_selector: Some(inputs.taskmanager_selector),
        replicas: Some(inputs.taskmanager_replicas),
    });
    if let Some(deployed) = inputs.deployed_spec {
        let mut reconciliation = previous.reconciliation_status.clone().unwrap_or_default();
        if reconciliation.last_reconciled_spec.as_deref() != Some(deployed.as_str()) {
            reconciliation.last_reconciled_spec = Some(deployed.clone());
            reconciliation.reconciliation_timestamp = Some(inputs.now_millis);
        }
        reconciliation.state = Some(ReconciliationState::Deployed);
        if inputs.jobmanager == JobManagerDeploymentStatus::Ready {
            reconciliation.last_stable_spec = Some(deployed);
        }
        status.reconciliation_status = Some(reconciliation);
        status.observed_generation = inputs.generation;
    }
    status.lifecycle_state = Some(lifecycle_state(&status, false));
    let readiness = Readiness {
        job_state: inputs.job_state.as_deref(),
        invalid_spec: inputs.invalid_spec,
        rest_error: inputs.rest_error.as_deref(),
    };
    status.conditions = Some(ready_condition(
        &status,
        previous,
        readiness,
        inputs.generation,
        inputs.now,
    ));
    status
}

/// What besides the JobManager decides the Ready condition.
struct Readiness<'a> {
    job_state: Option<&'a str>,
    invalid_spec: bool,
    rest_error: Option<&'a str>,
}

/// The `Ready` condition; its transition time moves only when its status does.
fn ready_condition(
    status: &FlinkDeploymentStatus,
    previous: &FlinkDeploymentStatus,
    readiness: Readiness<'_>,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let jm = status.job_manager_deployment_status.unwrap_or_default();
    let (state, reason, message) = match (&status.error, jm) {
        (Some(error), _) if readiness.invalid_spec => ("False", "InvalidSpec", error.clone()),
        (Some(error), _) => ("False", "JobError", error.clone()),
        (None, JobManagerDeploymentStatus::Ready) => match readiness.job_state {
            None => ("True", "Ready", "the Flink cluster is ready".to_string()),
            Some("RUNNING") => ("True", "Ready", "the job is running".to_string()),
            Some(job) => ("False", "JobNotRunning", format!("the job is {job}")),
        },
        (None, JobManagerDeploymentStatus::Error) => {
            ("False", "JobManagerError", "the JobManager cannot start".to_string())
        }
        (None, JobManagerDeploymentStatus::Missing) => ("False", "Missing", "no JobManager Deployment".to_string()),
        (None, JobManagerDeploymentStatus::Deploying) => (
            "False",
            "Deploying",
            "the JobManager Deployment is not available yet".to_string(),
        ),
        (None, JobManagerDeploymentStatus::DeployedNotReady) => (
            "False",
            "RestNotReady",
            match readiness.rest_error {
                Some(why) => format!("the JobManager runs; its REST endpoint does not answer: {why}"),
                None => "the JobManager runs; its REST endpoint does not answer yet".to_string(),
            },
        ),
    };
    let old = previous.conditions.iter().flatten().find(|c| c.type_ == "Ready");
    let last_transition_time = match old {
        Some(old) if old.status == state => old.last_transition_time.clone(),
        _ => now,
    };
    vec![Condition {
        type_: "Ready".into(),
        status: state.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }]
}

/// A JSON merge patch (RFC 7386) turning `old` into `new`: changed keys, and null for removed ones.
pub fn merge_patch(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) if previous.is_object() && value.is_object() => {
                        patch.insert(key.clone(), merge_patch(previous, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// Events worth telling the user about a reconciliation.
pub fn spec_events(previous: &FlinkDeploymentStatus, deployed_spec: Option<&str>) -> Vec<(&'static str, String)> {
    let last = previous
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.as_deref());
    match (last, deployed_spec) {
        (None, Some(_)) => vec![("Submit", "Starting deployment".to_string())],
        (Some(last), Some(new)) if last != new => {
            vec![("SpecChanged", "Detected spec change, applying it".to_string())]
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ReconciliationStatus;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
    use serde_json::json;

    fn view(replicas: i32, available: i32) -> DeploymentView {
        DeploymentView {
            replicas,
            available,
            pods: available,
            failure: None,
        }
    }

    #[test]
    fn jobmanager_state_machine() {
        use JobManagerDeploymentStatus::*;
        assert_eq!(jobmanager_status(None, false), Missing);
        assert_eq!(jobmanager_status(Some(&view(1, 0)), false), Deploying);
        assert_eq!(jobmanager_status(Some(&view(1, 1)), false), DeployedNotReady);
        assert_eq!(jobmanager_status(Some(&view(1, 1)), true), Ready);
        assert_eq!(jobmanager_status(Some(&view(2, 1)), true), Deploying);
        let failed = DeploymentView {
            failure: Some("FailedCreate: quota".into()),
            ..view(1, 1)
        };
        assert_eq!(jobmanager_status(Some(&failed), true), Error);
        assert_eq!(jobmanager_status_recorded(Missing, true), Deploying);
        assert_eq!(jobmanager_status_recorded(Missing, false), Missing);
        assert_eq!(jobmanager_status_recorded(Ready, true), Ready);
        assert_eq!(jobmanager_status_recorded(Error, true), Error);
    }

    #[test]
    fn only_existing_unavailable_pods_are_watched() {
        // Created, but the ReplicaSet controller has not made pods yet: its status change will wake us.
        assert!(!view(1, 0).pods_to_watch());
        let starting = DeploymentView { pods: 1, ..view(1, 0) };
        assert!(starting.pods_to_watch());
        assert!(!view(1, 1).pods_to_watch());
        let failed = DeploymentView {
            failure: Some("ProgressDeadlineExceeded: no progress".into()),
            ..starting
        };
        assert!(!failed.pods_to_watch());
    }

    #[test]
    fn a_deployment_without_pods_or_failure_has_not_started() {
        assert!(view(1, 0).not_started());
        assert!(!DeploymentView { pods: 1, ..view(1, 0) }.not_started());
        assert!(!view(1, 1).not_started());
        let failed = DeploymentView {
            failure: Some("ReplicaFailure: exceeded quota".into()),
            ..view(1, 0)
        };
        assert!(
            !failed.not_started(),
            "a failure is news to report, not a start to wait for"
        );
    }

    #[test]
    fn crash_looping_pods_are_failures() {
        use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodStatus};
        let pod = |reason: &str| Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("jm-1".into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "flink-main-container".into(),
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.into()),
                            message: Some("back-off".into()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(jobmanager_pod_failure(&[pod("ContainerCreating")]), None);
        let failure = jobmanager_pod_failure(&[pod("ContainerCreating"), pod("CrashLoopBackOff")]).unwrap();
        assert!(failure.starts_with("pod jm-1: CrashLoopBackOff"), "{failure}");
        assert_eq!(jobmanager_pod_failure(&[]), None);
    }

    #[test]
    fn deployment_view_reads_failure_conditions() {
        let deployment = Deployment {
            status: Some(DeploymentStatus {
                available_replicas: Some(0),
                conditions: Some(vec![DeploymentCondition {
                    type_: "ReplicaFailure".into(),
                    status: "True".into(),
                    reason: Some("FailedCreate".into()),
                    message: Some("pods \"x\" is forbidden".into()),
                    ..DeploymentCondition::default()
                }]),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        let v = DeploymentView::of(&deployment);
        assert_eq!(v.replicas, 1);
        assert!(v.failure.unwrap().starts_with("FailedCreate"));
    }

    fn status_with(last: Option<&str>, stable: Option<&str>, jm: JobManagerDeploymentStatus) -> FlinkDeploymentStatus {
        FlinkDeploymentStatus {
            job_manager_deployment_status: Some(jm),
            reconciliation_status: Some(ReconciliationStatus {
                last_reconciled_spec: last.map(str::to_string),
                last_stable_spec: stable.map(str::to_string),
                state: Some(ReconciliationState::Deployed),
                reconciliation_timestamp: Some(1),
            }),
            ..FlinkDeploymentStatus::default()
        }
    }

    #[test]
    fn lifecycle_states() {
        use JobManagerDeploymentStatus as Jm;
        use ResourceLifecycleState::*;
        assert_eq!(lifecycle_state(&FlinkDeploymentStatus::default(), false), Created);
        assert_eq!(lifecycle_state(&FlinkDeploymentStatus::default(), true), Deleting);
        assert_eq!(
            lifecycle_state(&status_with(Some("{}"), None, Jm::Deploying), false),
            Deployed
        );
        assert_eq!(
            lifecycle_state(&status_with(Some("{}"), Some("{}"), Jm::Ready), false),
            Stable
        );
        assert_eq!(
            lifecycle_state(&status_with(Some("{}"), None, Jm::Error), false),
            Failed
        );
        let suspended = r#"{"job":{"state":"suspended"}}"#;
        assert_eq!(
            lifecycle_state(&status_with(Some(suspended), None, Jm::Missing), false),
            Suspended
        );
        let mut upgrading = status_with(Some("{}"), None, Jm::Deploying);
        upgrading.reconciliation_status.as_mut().unwrap().state = Some(ReconciliationState::Upgrading);
        assert_eq!(lifecycle_state(&upgrading, false), Upgrading);
    }

    fn inputs<'a>(
        previous: &'a FlinkDeploymentStatus,
        jm: JobManagerDeploymentStatus,
        now_millis: i64,
    ) -> StatusInputs<'a> {
        StatusInputs {
            generation: Some(1),
            previous,
            deployed_spec: Some("{\"a\":1}".into()),
            error: None,
            jobmanager: jm,
            cluster_info: None,
            taskmanager_selector: "app=x,component=taskmanager".into(),
            taskmanager_replicas: 2,
            job_state: None,
            invalid_spec: false,
            rest_error: None,
            now_millis,
            now: Time(k8s_openapi::jiff::Timestamp::from_millisecond(now_millis).unwrap()),
        }
    }

    #[test]
    fn status_is_stable_when_nothing_changes() {
        let first = next_status(inputs(
            &FlinkDeploymentStatus::default(),
            JobManagerDeploymentStatus::Deploying,
            1_000,
        ));
        assert_eq!(first.lifecycle_state, Some(ResourceLifecycleState::Deployed));
        assert_eq!(first.observed_generation, Some(1));
        assert_eq!(first.task_manager.as_ref().unwrap().replicas, Some(2));
        // Later reconciliations with the same world produce the same status: no timestamps move.
        let again = next_status(inputs(&first, JobManagerDeploymentStatus::Deploying, 9_000));
        assert_eq!(again, first);
        // READY makes the deployed spec the stable one.
        let ready = next_status(inputs(&first, JobManagerDeploymentStatus::Ready, 10_000));
        assert_eq!(ready.lifecycle_state, Some(ResourceLifecycleState::Stable));
        let condition = &ready.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "Ready")
        );
        assert_ne!(
            condition.last_transition_time,
            first.conditions.as_ref().unwrap()[0].last_transition_time
        );
    }

    #[test]
    fn rest_not_ready_says_why() {
        let none = FlinkDeploymentStatus::default();
        let mut failing = inputs(&none, JobManagerDeploymentStatus::DeployedNotReady, 1);
        failing.rest_error = Some("GET http://x:8081/config timed out after 3s".into());
        let status = next_status(failing);
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(condition.reason, "RestNotReady");
        assert!(
            condition
                .message
                .ends_with("does not answer: GET http://x:8081/config timed out after 3s"),
            "{}",
            condition.message
        );
        // The same failure again writes nothing new.
        let mut again = inputs(&status, JobManagerDeploymentStatus::DeployedNotReady, 2);
        again.rest_error = Some("GET http://x:8081/config timed out after 3s".into());
        assert_eq!(next_status(again), status);
    }

    #[test]
    fn invalid_spec_keeps_the_last_deployed_spec() {
        let deployed = next_status(inputs(
            &FlinkDeploymentStatus::default(),
            JobManagerDeploymentStatus::Deploying,
            1,
        ));
        let mut bad = inputs(&deployed, JobManagerDeploymentStatus::Deploying, 2);
        bad.deployed_spec = None;
        bad.error = Some("spec.job.parallelism: must be at least 1".into());
        bad.invalid_spec = true;
        bad.generation = Some(2);
        let status = next_status(bad);
        assert_eq!(
            status.observed_generation,
            Some(1),
            "the invalid generation is not marked observed"
        );
        assert_eq!(status.reconciliation_status, deployed.reconciliation_status);
        assert_eq!(status.conditions.as_ref().unwrap()[0].reason, "InvalidSpec");
    }

    #[test]
    fn merge_patch_sets_changes_and_nulls_removals() {
        let old = json!({"error": "x", "a": {"b": 1, "c": 2}, "same": 1});
        let new = json!({"a": {"b": 1, "c": 3}, "same": 1, "d": [1]});
        assert_eq!(merge_patch(&old, &new), json!({"error": null, "a": {"c": 3}, "d": [1]}));
        assert_eq!(merge_patch(&new, &new), json!({}));
    }

    #[test]
    fn spec_events_name_submit_and_change() {
        let none = FlinkDeploymentStatus::default();
        assert_eq!(spec_events(&none, Some("{}"))[0].0, "Submit");
        let deployed = status_with(Some("{}"), None, JobManagerDeploymentStatus::Deploying);
        assert!(spec_events(&deployed, Some("{}")).is_empty());
        assert_eq!(spec_events(&deployed, Some("{\"x\":1}"))[0].0, "SpecChanged");
        assert!(spec_events(&deployed, None).is_empty());
    }
}
