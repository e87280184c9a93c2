//! Pure job-lifecycle decisions for application clusters: spec-change classification, upgrades
//! (stateless / savepoint / last-state), suspend and resume, savepoints (manual, periodic, history).
//!
//! `decide` is a function of (desired spec, status, observed world, settings, time) and returns the next
//! status and the actions to carry out. The status is the operator's only memory: every irreversible
//! action (stopping or cancelling the job, deleting the cluster) is only ever planned in a pass whose
//! input status already records it as the next step, so a restarted operator that observes the same
//! world takes the same next step.

use std::time::Duration;

use crate::crd::{
    FlinkConfiguration, FlinkDeploymentSpec, FlinkDeploymentStatus, JobManagerDeploymentStatus, JobState, JobStatus,
    KubernetesDeploymentMode, ReconciliationState, Savepoint, SavepointInfo, SavepointTriggerType, UpgradeMode,
    UpgradeProgress, UpgradeStep,
};
use crate::flink_config;

/// How a spec change reaches the running job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecChange {
    /// Nothing changed.
    None,
    /// Only fields that change nothing running (savepoint nonce, upgrade mode, `kubernetes.operator.*`, ...).
    Ignore,
    /// Only the parallelism / TaskManager replicas of a standalone reactive application: scale the TaskManagers.
    Scale,
    /// Anything else: the job is stopped per its upgrade mode and deployed again.
    Upgrade,
}

const OPERATOR_KEY_PREFIX: &str = "kubernetes.operator.";
/// Job fields that change nothing running.
const IGNORED_JOB_FIELDS: [&str; 5] = [
    "savepointTriggerNonce",
    "checkpointTriggerNonce",
    "initialSavepointPath",
    "upgradeMode",
    "allowNonRestoredState",
];

/// Classifies the change from the deployed spec to the desired one; `job.state` is left out (suspend and
/// resume are decided separately).
pub fn classify(deployed: &FlinkDeploymentSpec, desired: &FlinkDeploymentSpec) -> SpecChange {
    let (old, new) = (comparable(deployed), comparable(desired));
    if serde_json::to_value(deployed).ok() == serde_json::to_value(desired).ok() {
        return SpecChange::None;
    }
    if old == new {
        return SpecChange::Ignore;
    }
    let conf = desired.flink_configuration.clone().unwrap_or_default();
    let reactive_standalone = desired.mode() == KubernetesDeploymentMode::Standalone
        && deployed.mode() == KubernetesDeploymentMode::Standalone
        && flink_config::is_reactive(&conf);
    if reactive_standalone && without_scale(old) == without_scale(new) {
        return SpecChange::Scale;
    }
    SpecChange::Upgrade
}

/// The spec as JSON without the fields that never need a redeploy.
fn comparable(spec: &FlinkDeploymentSpec) -> serde_json::Value {
    let mut value = serde_json::to_value(spec).unwrap_or_default();
    if let Some(job) = value.get_mut("job").and_then(|j| j.as_object_mut()) {
        for field in IGNORED_JOB_FIELDS.iter().chain(["state"].iter()) {
            job.remove(*field);
        }
    }
    if let Some(conf) = value.get_mut("flinkConfiguration").and_then(|c| c.as_object_mut()) {
        conf.retain(|key, _| !key.starts_with(OPERATOR_KEY_PREFIX));
        if conf.is_empty() {
            value.as_object_mut().map(|v| v.remove("flinkConfiguration"));
        }
    }
    value
}

fn without_scale(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(job) = value.get_mut("job").and_then(|j| j.as_object_mut()) {
        job.remove("parallelism");
    }
    if let Some(tm) = value.get_mut("taskManager").and_then(|t| t.as_object_mut()) {
        tm.remove("replicas");
    }
    if let Some(conf) = value.get_mut("flinkConfiguration").and_then(|c| c.as_object_mut()) {
        conf.remove("parallelism.default");
    }
    // `taskManager: {replicas: 3}` against no `taskManager` at all is still only a scale.
    if let Some(top) = value.as_object_mut() {
        top.retain(|_, v| !v.as_object().is_some_and(|o| o.is_empty()));
    }
    value
}

/// The job as Flink's REST API reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedJob {
    pub id: String,
    pub name: String,
    /// Flink's job state (RUNNING, FINISHED, FAILED, ...).
    pub state: String,
    pub start_time: Option<i64>,
    /// Every vertex is RUNNING or FINISHED (a RUNNING job may still be scheduling its tasks).
    pub vertices_running: bool,
    /// Why the job failed, if it did (already truncated).
    pub failure: Option<String>,
}

impl ObservedJob {
    /// Flink's globally terminal states: the job will not run again in this cluster.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "FINISHED" | "CANCELED" | "FAILED")
    }

    pub fn is_running(&self) -> bool {
        self.state == "RUNNING" && self.vertices_running
    }
}

/// State of the savepoint trigger recorded in `savepointInfo.triggerId`.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerState {
    InProgress,
    Completed {
        location: String,
    },
    Failed {
        cause: String,
    },
    /// The trigger could not be asked about (REST error, unknown trigger).
    Unknown {
        error: String,
    },
}

impl TriggerState {
    /// What Flink's savepoint status endpoint said (an error is an unknown state, judged by its age).
    pub fn from_rest(result: Result<crate::flink::OperationStatus, crate::flink::FlinkError>) -> TriggerState {
        use crate::flink::OperationStatus;
        match result {
            Ok(OperationStatus::InProgress) => TriggerState::InProgress,
            Ok(OperationStatus::Completed {
                location: Some(location),
            }) => TriggerState::Completed { location },
            Ok(OperationStatus::Completed { location: None }) => TriggerState::Failed {
                cause: "the savepoint completed without a location".into(),
            },
            Ok(OperationStatus::Failed { cause }) => TriggerState::Failed { cause },
            Err(e) => TriggerState::Unknown { error: e.to_string() },
        }
    }
}

/// What the reconciler observed of the cluster and its job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub jobmanager: JobManagerDeploymentStatus,
    /// A JobManager or TaskManager Deployment of the cluster exists, or (while an upgrade is in progress,
    /// the only time this is read) one of their pods is still there.
    pub cluster_present: bool,
    /// The job, when the REST endpoint answered and a job exists.
    pub job: Option<ObservedJob>,
    /// The state of the recorded savepoint trigger, when one is recorded and the endpoint answered.
    pub trigger: Option<TriggerState>,
    /// External path of the latest completed (retained) checkpoint.
    pub latest_checkpoint: Option<String>,
    /// External path of the latest savepoint in the job's checkpoint statistics.
    pub latest_savepoint: Option<String>,
}

/// Operator settings for one resource, from its effective configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    pub ha: bool,
    pub periodic_savepoint_interval: Option<Duration>,
    pub history_max_count: usize,
    pub history_max_age: Duration,
    /// How long a savepoint trigger may stay unobservable before it counts as failed.
    pub trigger_grace: Duration,
    /// How old Flink's REST answers on checkpoint statistics may be: it caches them (and the job's execution
    /// graph) for this long, so a read right after the job ended can name a checkpoint already subsumed.
    pub checkpoint_stats_max_age: Duration,
}

pub const HISTORY_MAX_COUNT: &str = "kubernetes.operator.savepoint.history.max.count";
pub const HISTORY_MAX_AGE: &str = "kubernetes.operator.savepoint.history.max.age";
pub const TRIGGER_GRACE: &str = "kubernetes.operator.savepoint.trigger.grace-period";
/// Flink's cache of checkpoint statistics; unset, it falls back to `web.refresh-interval`.
pub const CHECKPOINT_STATS_CACHE: &str = "rest.cache.checkpoint-statistics.timeout";
pub const WEB_REFRESH_INTERVAL: &str = "web.refresh-interval";
/// Flink's default for both.
const FLINK_REST_CACHE_DEFAULT: Duration = Duration::from_secs(3);
/// Slack on top of the cache's age: the JobManager's clock and the operator's are not the same clock.
const STATS_SETTLE_MARGIN: Duration = Duration::from_millis(500);

impl JobSettings {
    /// Reads the settings; a malformed value falls back to the default (validation reports it).
    pub fn from_conf(conf: &FlinkConfiguration) -> JobSettings {
        let duration = |key: &str| conf.get(key).and_then(|v| flink_config::parse_duration(v).ok());
        JobSettings {
            ha: flink_config::ha_enabled(conf),
            periodic_savepoint_interval: duration(flink_config::PERIODIC_SAVEPOINT_INTERVAL).filter(|d| !d.is_zero()),
            history_max_count: conf
                .get(HISTORY_MAX_COUNT)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(10)
                .max(1),
            history_max_age: duration(HISTORY_MAX_AGE).unwrap_or(Duration::from_secs(24 * 3600)),
            trigger_grace: duration(TRIGGER_GRACE).unwrap_or(Duration::from_secs(60)),
            // The execution graph is cached for web.refresh-interval, the statistics for their own timeout
            // (itself defaulting to web.refresh-interval): wait out the longer.
            checkpoint_stats_max_age: duration(CHECKPOINT_STATS_CACHE)
                .unwrap_or(FLINK_REST_CACHE_DEFAULT)
                .max(duration(WEB_REFRESH_INTERVAL).unwrap_or(FLINK_REST_CACHE_DEFAULT)),
        }
    }
}

/// What the reconciler does in this pass, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum JobAction {
    /// Apply the objects of the last reconciled spec, starting the job from `restore`.
    Apply { restore: Option<String> },
    /// Trigger a savepoint of the running job; record it with `record_trigger`.
    TriggerSavepoint {
        trigger_type: SavepointTriggerType,
        nonce: Option<i64>,
    },
    /// Stop the job with a savepoint; record the trigger with `record_trigger` (type UPGRADE).
    StopWithSavepoint { job_id: String },
    /// Cancel the job (its retained checkpoints stay).
    Cancel { job_id: String },
    /// Delete the cluster's Deployments; keep Flink's HA data when asked to.
    DeleteCluster { keep_ha: bool },
    /// Dispose savepoints dropped from the history.
    DisposeSavepoints { locations: Vec<String> },
}

impl JobAction {
    /// Whether carrying it out a second time would do harm: a second savepoint or stop whose trigger
    /// overwrites the first one's, a delete of a cluster just deployed again. Such an action is only taken
    /// on a current copy of the resource. Applying the same objects twice changes nothing.
    pub fn must_not_repeat(&self) -> bool {
        !matches!(self, JobAction::Apply { .. })
    }
}

/// An event worth telling the user.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

impl JobEvent {
    pub fn event_type(&self) -> kube::runtime::events::EventType {
        if self.warning {
            kube::runtime::events::EventType::Warning
        } else {
            kube::runtime::events::EventType::Normal
        }
    }
}

/// The outcome of `decide`: write `status` first, then carry out `actions`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    pub status: FlinkDeploymentStatus,
    pub actions: Vec<JobAction>,
    pub events: Vec<JobEvent>,
    /// Look again soon (something is in flight); otherwise the normal resync applies.
    pub requeue: Option<Duration>,
    /// Why the job cannot proceed, for `status.error`.
    pub error: Option<String>,
}

/// How soon to look again while something is in flight.
pub const IN_FLIGHT: Duration = Duration::from_secs(2);
/// How soon to look again right after a status step (the next step follows at once).
pub const NEXT_STEP: Duration = Duration::from_millis(200);
/// How soon to retry a failed step.
pub const RETRY: Duration = Duration::from_secs(10);
/// How soon to look again at a job on its way to running (tasks being scheduled, TaskManagers starting, a
/// restart): no Kubernetes event follows when it gets there, and a session job's TaskManagers are not even the
/// operator's objects, so without this its status would lag the job by up to a resync interval.
pub const STARTING: Duration = Duration::from_secs(4);

struct Planner<'a> {
    status: FlinkDeploymentStatus,
    observed: &'a Observed,
    settings: &'a JobSettings,
    now_ms: i64,
    actions: Vec<JobAction>,
    events: Vec<JobEvent>,
    requeue: Option<Duration>,
    error: Option<String>,
}

impl Planner<'_> {
    fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.events.push(JobEvent {
            warning,
            reason,
            message: message.into(),
        });
    }

    fn soon(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    fn savepoint_info(&mut self) -> &mut SavepointInfo {
        self.job_status()
            .savepoint_info
            .get_or_insert_with(SavepointInfo::default)
    }

    /// The savepoint info as recorded so far (empty when none is).
    fn recorded_savepoints(&self) -> SavepointInfo {
        self.status
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.clone())
            .unwrap_or_default()
    }

    /// A savepoint trigger is recorded and not yet resolved.
    fn trigger_pending(&self) -> bool {
        self.status
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.as_ref())
            .is_some_and(|s| s.trigger_id.is_some())
    }

    fn job_status(&mut self) -> &mut JobStatus {
        self.status.job_status.get_or_insert_with(JobStatus::default)
    }

    fn set_job_state(&mut self, state: &str) {
        let now = self.now_ms;
        let job = self.job_status();
        if job.state.as_deref() != Some(state) {
            job.state = Some(state.to_string());
            job.update_time = Some(now.to_string());
        }
    }

    fn reconciliation(&mut self) -> &mut crate::crd::ReconciliationStatus {
        self.status.reconciliation_status.get_or_insert_with(Default::default)
    }

    /// Records `spec` as the spec the operator now works towards.
    fn reconcile_to(&mut self, spec_json: String, state: ReconciliationState, generation: Option<i64>) {
        let now = self.now_ms;
        let reconciliation = self.reconciliation();
        if reconciliation.last_reconciled_spec.as_deref() != Some(spec_json.as_str()) {
            reconciliation.last_reconciled_spec = Some(spec_json);
            reconciliation.reconciliation_timestamp = Some(now);
        }
        reconciliation.state = Some(state);
        self.status.observed_generation = generation;
    }

    fn plan(self) -> JobPlan {
        JobPlan {
            status: self.status,
            actions: self.actions,
            events: self.events,
            requeue: self.requeue,
            error: self.error,
        }
    }
}

/// The desired spec, when it is valid.
pub struct Desired<'a> {
    pub spec: &'a FlinkDeploymentSpec,
    pub generation: Option<i64>,
}

/// Decides the next step of an application cluster. `desired` is None while the spec is invalid: the
/// deployed spec then keeps running (and is still observed and savepointed).
pub fn decide(
    desired: Option<Desired<'_>>,
    status: &FlinkDeploymentStatus,
    observed: &Observed,
    settings: &JobSettings,
    now_ms: i64,
) -> JobPlan {
    let mut p = Planner {
        status: status.clone(),
        observed,
        settings,
        now_ms,
        actions: vec![],
        events: vec![],
        requeue: None,
        error: None,
    };
    observe_job(&mut p);
    let deployed = deployed_spec(status);

    // First deployment.
    let Some(deployed) = deployed else {
        if let Some(desired) = desired {
            first_deploy(&mut p, desired);
        }
        return p.plan();
    };

    if let Some(progress) = status.upgrade.clone() {
        upgrade_step(&mut p, &deployed, progress);
        return p.plan();
    }

    let suspended = deployed.job.as_ref().is_some_and(|j| j.state() == JobState::Suspended);
    poll_trigger(&mut p);
    let trigger_pending = p.trigger_pending();

    if let Some(desired) = desired {
        let wants_suspend = desired
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state() == JobState::Suspended);
        let change = classify(&deployed, desired.spec);
        let starts_upgrade = change == SpecChange::Upgrade || wants_suspend != suspended;
        if starts_upgrade && trigger_pending {
            // A savepoint in flight completes first: the upgrade may need it, and it must not be lost.
            p.soon(IN_FLIGHT);
        } else if starts_upgrade {
            if begin_upgrade(&mut p, &deployed, &desired, suspended, wants_suspend) {
                return p.plan();
            }
        } else if change == SpecChange::Scale {
            p.event(
                false,
                "Scaling",
                "rescaling the TaskManagers (reactive mode); the job keeps running",
            );
            let json = recorded_spec(desired.spec, &deployed, false);
            p.reconcile_to(json, ReconciliationState::Deployed, desired.generation);
        } else if change == SpecChange::Ignore {
            // The manual savepoint nonce is recorded only once the savepoint is triggered.
            let json = recorded_spec(desired.spec, &deployed, false);
            p.reconcile_to(json, ReconciliationState::Deployed, desired.generation);
        } else {
            p.status.observed_generation = desired.generation;
        }
        if !starts_upgrade && !suspended {
            schedule_savepoints(&mut p, desired.spec, &deployed, trigger_pending);
        }
    }

    if !suspended {
        let restore = p
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.clone());
        p.actions.insert(0, JobAction::Apply { restore });
        trim_history(&mut p);
    }
    mark_stable(&mut p);
    p.plan()
}

/// The spec last reconciled, if any.
pub fn deployed_spec(status: &FlinkDeploymentStatus) -> Option<FlinkDeploymentSpec> {
    let json = status.reconciliation_status.as_ref()?.last_reconciled_spec.as_deref()?;
    serde_json::from_str(json).ok()
}

/// The desired spec as it is recorded: the savepoint trigger nonce only moves when the savepoint was
/// triggered, so a nonce change is never lost.
fn recorded_spec(desired: &FlinkDeploymentSpec, deployed: &FlinkDeploymentSpec, nonce_triggered: bool) -> String {
    let mut spec = desired.clone();
    if !nonce_triggered && let Some(job) = spec.job.as_mut() {
        job.savepoint_trigger_nonce = deployed.job.as_ref().and_then(|j| j.savepoint_trigger_nonce);
    }
    serde_json::to_string(&spec).unwrap_or_default()
}

fn first_deploy(p: &mut Planner<'_>, desired: Desired<'_>) {
    let json = serde_json::to_string(desired.spec).unwrap_or_default();
    let job = desired.spec.job.clone().unwrap_or_default();
    p.reconcile_to(json, ReconciliationState::Deployed, desired.generation);
    p.job_status().upgrade_savepoint_path = job.initial_savepoint_path.clone();
    if job.state() == JobState::Suspended {
        p.set_job_state("SUSPENDED");
        return;
    }
    p.event(false, "Submit", "Starting deployment");
    p.set_job_state("RECONCILING");
    p.actions.push(JobAction::Apply {
        restore: job.initial_savepoint_path,
    });
    p.soon(IN_FLIGHT);
}

/// Updates `jobStatus` from Flink's report.
fn observe_job(p: &mut Planner<'_>) {
    let Some(job) = p.observed.job.clone() else { return };
    let shown = if job.state == "RUNNING" && !job.vertices_running {
        // Flink says RUNNING while tasks are still being scheduled: not running yet.
        "CREATED"
    } else {
        job.state.as_str()
    };
    let status = p.job_status();
    status.job_id = Some(job.id.clone());
    status.job_name = Some(job.name.clone());
    status.start_time = job.start_time.map(|t| t.to_string());
    p.set_job_state(shown);
    if !job.is_running() && !job.is_terminal() {
        p.soon(STARTING);
    }
    if job.state == "FAILED" {
        let cause = job.failure.clone().unwrap_or_else(|| "unknown cause".into());
        p.error = Some(format!("the job failed: {cause}"));
    }
}

/// Polls the recorded (manual or periodic) savepoint trigger.
fn poll_trigger(p: &mut Planner<'_>) {
    let info = p.recorded_savepoints();
    if info.trigger_id.is_none() {
        return;
    }
    match p.observed.trigger.clone() {
        Some(TriggerState::Completed { location }) => {
            let trigger_type = info.trigger_type.unwrap_or_default();
            record_completed(p, location, trigger_type);
        }
        Some(TriggerState::Failed { cause }) => {
            p.event(true, "SavepointError", format!("savepoint failed: {cause}"));
            clear_trigger(p);
        }
        Some(TriggerState::Unknown { error }) => {
            let age = p.now_ms - info.trigger_timestamp.unwrap_or(p.now_ms);
            if age >= p.settings.trigger_grace.as_millis() as i64 {
                p.event(
                    true,
                    "SavepointError",
                    format!(
                        "savepoint {} not confirmed within the grace period: {error}",
                        info.trigger_id.unwrap_or_default()
                    ),
                );
                clear_trigger(p);
            } else {
                p.soon(IN_FLIGHT);
            }
        }
        Some(TriggerState::InProgress) | None => p.soon(IN_FLIGHT),
    }
}

fn clear_trigger(p: &mut Planner<'_>) {
    let info = p.savepoint_info();
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

fn record_completed(p: &mut Planner<'_>, location: String, trigger_type: SavepointTriggerType) {
    let now = p.now_ms;
    // A manual savepoint carries the nonce that was recorded when it was triggered.
    let nonce = (trigger_type == SavepointTriggerType::Manual)
        .then(|| {
            deployed_spec(&p.status)
                .and_then(|s| s.job)
                .and_then(|j| j.savepoint_trigger_nonce)
        })
        .flatten();
    let savepoint = Savepoint {
        time_stamp: now,
        location: location.clone(),
        trigger_type: Some(trigger_type),
        format_type: None,
        trigger_nonce: nonce,
    };
    clear_trigger(p);
    let info = p.savepoint_info();
    info.last_savepoint = Some(savepoint.clone());
    if !info.savepoint_history.iter().any(|s| s.location == location) {
        info.savepoint_history.push(savepoint);
    }
    p.event(false, "SavepointCompleted", format!("savepoint completed: {location}"));
}

/// Records a savepoint trigger the reconciler has just started (pure; used by the act layer).
pub fn record_trigger(
    status: &mut FlinkDeploymentStatus,
    trigger_id: String,
    trigger_type: SavepointTriggerType,
    nonce: Option<i64>,
    now_ms: i64,
) {
    let job = status.job_status.get_or_insert_with(JobStatus::default);
    let info = job.savepoint_info.get_or_insert_with(SavepointInfo::default);
    info.trigger_id = Some(trigger_id);
    info.trigger_timestamp = Some(now_ms);
    info.trigger_type = Some(trigger_type);
    if trigger_type == SavepointTriggerType::Periodic {
        info.last_periodic_savepoint_timestamp = Some(now_ms);
    }
    if let Some(nonce) = nonce
        && let Some(reconciliation) = status.reconciliation_status.as_mut()
        && let Some(json) = reconciliation.last_reconciled_spec.as_deref()
        && let Ok(mut spec) = serde_json::from_str::<FlinkDeploymentSpec>(json)
        && let Some(job) = spec.job.as_mut()
    {
        job.savepoint_trigger_nonce = Some(nonce);
        reconciliation.last_reconciled_spec = serde_json::to_string(&spec).ok();
    }
}

/// Manual (nonce) and periodic savepoints of a running job.
fn schedule_savepoints(
    p: &mut Planner<'_>,
    desired: &FlinkDeploymentSpec,
    deployed: &FlinkDeploymentSpec,
    pending: bool,
) {
    let running = p.observed.job.as_ref().is_some_and(ObservedJob::is_running);
    if pending || !running {
        return;
    }
    let desired_nonce = desired.job.as_ref().and_then(|j| j.savepoint_trigger_nonce);
    let deployed_nonce = deployed.job.as_ref().and_then(|j| j.savepoint_trigger_nonce);
    if desired_nonce.is_some() && desired_nonce != deployed_nonce {
        p.actions.push(JobAction::TriggerSavepoint {
            trigger_type: SavepointTriggerType::Manual,
            nonce: desired_nonce,
        });
        p.soon(IN_FLIGHT);
        return;
    }
    let Some(interval) = p.settings.periodic_savepoint_interval else {
        return;
    };
    let info = p.status.job_status.as_ref().and_then(|j| j.savepoint_info.as_ref());
    let started = p.observed.job.as_ref().and_then(|j| j.start_time).unwrap_or(p.now_ms);
    // Counted from the last periodic savepoint, or from the job's start (never at once on start).
    let since = info
        .and_then(|i| i.last_periodic_savepoint_timestamp)
        .unwrap_or(started)
        .max(started);
    let due = since + interval.as_millis() as i64;
    if p.now_ms >= due {
        p.actions.push(JobAction::TriggerSavepoint {
            trigger_type: SavepointTriggerType::Periodic,
            nonce: None,
        });
        p.soon(IN_FLIGHT);
    } else {
        p.soon(Duration::from_millis((due - p.now_ms) as u64));
    }
}

/// Drops savepoints beyond the history's count and age limits and disposes them. The last savepoint and
/// the one the job restores from are always kept.
fn trim_history(p: &mut Planner<'_>) {
    let keep_restore = p
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.upgrade_savepoint_path.clone());
    let reachable = p.observed.jobmanager == JobManagerDeploymentStatus::Ready;
    let (max_count, max_age) = (
        p.settings.history_max_count,
        p.settings.history_max_age.as_millis() as i64,
    );
    let now = p.now_ms;
    let Some(info) = p.status.job_status.as_mut().and_then(|j| j.savepoint_info.as_mut()) else {
        return;
    };
    let last = info.last_savepoint.as_ref().map(|s| s.location.clone());
    let protected = |s: &Savepoint| Some(&s.location) == last.as_ref() || Some(&s.location) == keep_restore.as_ref();
    let mut dropped = vec![];
    let mut kept: Vec<Savepoint> = vec![];
    let total = info.savepoint_history.len();
    for (index, savepoint) in info.savepoint_history.iter().enumerate() {
        let too_many = total - index > max_count;
        let too_old = now - savepoint.time_stamp > max_age;
        if (too_many || too_old) && !protected(savepoint) {
            dropped.push(savepoint.location.clone());
        } else {
            kept.push(savepoint.clone());
        }
    }
    // Disposal needs the cluster; without it the history waits.
    if dropped.is_empty() || !reachable {
        return;
    }
    info.savepoint_history = kept;
    p.actions.push(JobAction::DisposeSavepoints { locations: dropped });
}

/// The spec is stable once the job really runs.
fn mark_stable(p: &mut Planner<'_>) {
    let running = p.observed.job.as_ref().is_some_and(ObservedJob::is_running);
    if running && p.observed.jobmanager == JobManagerDeploymentStatus::Ready {
        let reconciliation = p.reconciliation();
        if reconciliation.state == Some(ReconciliationState::Deployed) {
            reconciliation.last_stable_spec = reconciliation.last_reconciled_spec.clone();
        }
    }
}

/// Starts an upgrade, suspend or resume towards `desired`; false when it is refused (the job keeps
/// running the deployed spec and `error` says why).
fn begin_upgrade(
    p: &mut Planner<'_>,
    deployed: &FlinkDeploymentSpec,
    desired: &Desired<'_>,
    suspended: bool,
    wants_suspend: bool,
) -> bool {
    let mode = desired.spec.job.as_ref().map(|j| j.upgrade_mode()).unwrap_or_default();
    let json = recorded_spec(desired.spec, deployed, false);
    let previous_restore = p
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.upgrade_savepoint_path.clone());
    let progress = if suspended {
        // Resume: nothing runs; restore from what the suspension recorded (HA data wins where present).
        let restore = if mode == UpgradeMode::Stateless {
            None
        } else {
            previous_restore
        };
        p.event(false, "Resume", "resuming the job");
        UpgradeProgress {
            mode,
            step: UpgradeStep::Deleting,
            restore_path: restore,
            started: p.now_ms,
            job_ended_seen: None,
        }
    } else {
        if mode == UpgradeMode::LastState && !p.settings.ha {
            let job_running = p.observed.job.as_ref().is_some_and(|j| !j.is_terminal());
            let has_point = p.observed.latest_checkpoint.is_some()
                || p.observed.latest_savepoint.is_some()
                || last_savepoint(&p.status).is_some();
            if job_running && !has_point {
                p.error = Some(
                    "last-state upgrade refused: high availability is off and the job has no completed checkpoint \
                     or savepoint to restore from; wait for a checkpoint, enable high availability, or use \
                     upgradeMode savepoint or stateless"
                        .into(),
                );
                p.event(true, "UpgradeRefused", p.error.clone().unwrap_or_default());
                p.soon(RETRY);
                return false;
            }
        }
        let (reason, what) = if wants_suspend {
            ("Suspend", "suspending the job")
        } else {
            ("SpecChanged", "Detected spec change, upgrading the job")
        };
        p.event(false, reason, format!("{what} (upgrade mode {})", mode_name(mode)));
        UpgradeProgress {
            mode,
            step: UpgradeStep::Stopping,
            restore_path: None,
            started: p.now_ms,
            job_ended_seen: None,
        }
    };
    p.status.upgrade = Some(progress);
    p.reconcile_to(json, ReconciliationState::Upgrading, desired.generation);
    p.soon(NEXT_STEP);
    true
}

fn mode_name(mode: UpgradeMode) -> &'static str {
    match mode {
        UpgradeMode::Savepoint => "savepoint",
        UpgradeMode::LastState => "last-state",
        UpgradeMode::Stateless => "stateless",
    }
}

fn last_savepoint(status: &FlinkDeploymentStatus) -> Option<String> {
    status
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .and_then(|s| s.last_savepoint.as_ref())
        .map(|s| s.location.clone())
}

/// One step of an upgrade in progress towards the (already recorded) target spec.
fn upgrade_step(p: &mut Planner<'_>, target: &FlinkDeploymentSpec, progress: UpgradeProgress) {
    let keep_ha = progress.mode == UpgradeMode::LastState && p.settings.ha;
    match progress.step {
        UpgradeStep::Stopping => stop_step(p, progress, keep_ha),
        UpgradeStep::Deleting if p.observed.cluster_present => {
            p.actions.push(JobAction::DeleteCluster { keep_ha });
            p.soon(IN_FLIGHT);
        }
        UpgradeStep::Deleting => finish_upgrade(p, target, progress),
    }
}

/// Settles where the next deployment restores from; the cluster is deleted in a later pass.
fn settle(p: &mut Planner<'_>, mut progress: UpgradeProgress, restore: Option<String>) {
    progress.step = UpgradeStep::Deleting;
    progress.restore_path = restore;
    p.status.upgrade = Some(progress);
    p.soon(NEXT_STEP);
}

/// The old job has ended: true once its statistics (latest checkpoint and savepoint) can be trusted to be
/// final. Flink's REST serves them from a cache, so until the cache's age has passed since the operator first saw
/// the job ended they may predate the end and name a checkpoint the job has since subsumed and deleted; restoring
/// from that fails the new job. Until then the pass records when the end was first seen and looks again then.
fn statistics_settled(p: &mut Planner<'_>, progress: &mut UpgradeProgress) -> bool {
    let seen = *progress.job_ended_seen.get_or_insert(p.now_ms);
    let wait = p.settings.checkpoint_stats_max_age + STATS_SETTLE_MARGIN;
    let due = seen.saturating_add(wait.as_millis() as i64);
    if p.now_ms >= due {
        return true;
    }
    p.status.upgrade = Some(progress.clone());
    p.soon(Duration::from_millis((due - p.now_ms) as u64));
    false
}

fn stop_step(p: &mut Planner<'_>, progress: UpgradeProgress, keep_ha: bool) {
    let observed = p.observed;
    let previous_restore = p
        .status
        .job_status
        .as_ref()
        .and_then(|j| j.upgrade_savepoint_path.clone());
    let best_known = last_savepoint(&p.status).or(previous_restore);
    let trigger_pending = p.trigger_pending();
    // A stop-with-savepoint in flight is followed to its end first: the job it stopped is gone by then.
    if progress.mode == UpgradeMode::Savepoint && trigger_pending {
        stop_with_savepoint(p, progress, best_known);
        return;
    }
    if !observed.cluster_present {
        if progress.mode != UpgradeMode::Stateless && !keep_ha {
            p.event(
                true,
                "Missing",
                "the cluster vanished during the upgrade; restoring from the last known savepoint",
            );
        }
        let restore = if progress.mode == UpgradeMode::Stateless {
            None
        } else {
            best_known
        };
        settle(p, progress, restore);
        return;
    }
    match progress.mode {
        // Nothing to save: the cluster goes (stateless), or Flink's HA data carries the latest checkpoint.
        UpgradeMode::Stateless => settle(p, progress, None),
        UpgradeMode::LastState if keep_ha => settle(p, progress, None),
        UpgradeMode::Savepoint => stop_with_savepoint(p, progress, best_known),
        UpgradeMode::LastState => cancel_keeping_checkpoint(p, progress, best_known),
    }
}

fn stop_with_savepoint(p: &mut Planner<'_>, mut progress: UpgradeProgress, best_known: Option<String>) {
    let observed = p.observed;
    let info = p.recorded_savepoints();
    if info.trigger_id.is_some() {
        match observed.trigger.clone() {
            Some(TriggerState::Completed { location }) => {
                record_completed(p, location.clone(), SavepointTriggerType::Upgrade);
                settle(p, progress, Some(location));
            }
            Some(TriggerState::Failed { cause }) => {
                p.event(
                    true,
                    "SavepointError",
                    format!("stop-with-savepoint failed: {cause}; retrying"),
                );
                p.error = Some(format!("stop-with-savepoint failed: {cause}"));
                clear_trigger(p);
                p.soon(RETRY);
            }
            Some(TriggerState::Unknown { error }) => {
                // The job may have stopped with the savepoint all the same: the statistics tell.
                let stopped = observed.job.as_ref().is_some_and(|j| j.state == "FINISHED");
                if stopped && !statistics_settled(p, &mut progress) {
                    // Looked at again once the statistics are final.
                } else if stopped && let Some(location) = observed.latest_savepoint.clone() {
                    record_completed(p, location.clone(), SavepointTriggerType::Upgrade);
                    settle(p, progress, Some(location));
                } else if !observed.cluster_present {
                    p.event(
                        true,
                        "SavepointError",
                        format!("the cluster vanished during stop-with-savepoint: {error}"),
                    );
                    clear_trigger(p);
                    settle(p, progress, best_known);
                } else {
                    p.error = Some(format!("cannot read the upgrade savepoint's state: {error}"));
                    p.soon(IN_FLIGHT);
                }
            }
            Some(TriggerState::InProgress) | None => p.soon(IN_FLIGHT),
        }
        return;
    }
    match observed.job.clone() {
        Some(job) if !job.is_terminal() => {
            if job.state == "RUNNING" {
                p.actions.push(JobAction::StopWithSavepoint { job_id: job.id });
                p.soon(IN_FLIGHT);
            } else {
                // RESTARTING, CREATED...: a savepoint needs a running job; wait for it.
                p.error = Some(format!(
                    "waiting for the job to run before stopping it with a savepoint (it is {})",
                    job.state
                ));
                p.soon(RETRY);
            }
        }
        Some(job) if job.is_terminal() && !statistics_settled(p, &mut progress) => {}
        Some(job) if job.state == "FINISHED" && observed.latest_savepoint.is_some() => {
            // Stopped with a savepoint whose trigger was never recorded (the operator died in between).
            let location = observed.latest_savepoint.clone();
            if let Some(location) = location.clone() {
                record_completed(p, location, SavepointTriggerType::Upgrade);
            }
            settle(p, progress, location);
        }
        Some(job) => {
            // Failed or cancelled: no savepoint can be taken; the freshest state is the latest checkpoint.
            let restore = observed
                .latest_checkpoint
                .clone()
                .or(observed.latest_savepoint.clone())
                .or(best_known);
            p.event(
                true,
                "RestoreFromLatest",
                format!(
                    "the job is {}; restoring from {}",
                    job.state,
                    restore.as_deref().unwrap_or("nothing (fresh start)")
                ),
            );
            settle(p, progress, restore);
        }
        None if p.observed.jobmanager == JobManagerDeploymentStatus::Error => {
            // The JobManager cannot start at all (bad image, crash loop): keep the last known savepoint.
            settle(p, progress, best_known);
        }
        None => {
            p.error = Some("waiting for the JobManager's REST endpoint to stop the job with a savepoint".into());
            p.soon(RETRY);
        }
    }
}

/// last-state without HA: cancel the job (its latest checkpoint is retained), then restore from that.
fn cancel_keeping_checkpoint(p: &mut Planner<'_>, mut progress: UpgradeProgress, best_known: Option<String>) {
    let observed = p.observed;
    match observed.job.clone() {
        Some(job) if !job.is_terminal() => {
            p.actions.push(JobAction::Cancel { job_id: job.id });
            p.soon(IN_FLIGHT);
        }
        Some(_) if !statistics_settled(p, &mut progress) => {}
        Some(_) => {
            let restore = observed
                .latest_checkpoint
                .clone()
                .or(observed.latest_savepoint.clone())
                .or(best_known);
            settle(p, progress, restore);
        }
        None if p.observed.jobmanager == JobManagerDeploymentStatus::Error => settle(p, progress, best_known),
        None => {
            p.error = Some("waiting for the JobManager's REST endpoint to cancel the job".into());
            p.soon(RETRY);
        }
    }
}

/// The old cluster is gone: deploy the target, or stay suspended.
fn finish_upgrade(p: &mut Planner<'_>, target: &FlinkDeploymentSpec, progress: UpgradeProgress) {
    p.status.upgrade = None;
    p.reconciliation().state = Some(ReconciliationState::Deployed);
    p.job_status().upgrade_savepoint_path = progress.restore_path.clone();
    let suspended = target.job.as_ref().is_some_and(|j| j.state() == JobState::Suspended);
    if suspended {
        p.set_job_state("SUSPENDED");
        p.event(false, "Suspended", "the job is suspended");
        return;
    }
    p.set_job_state("RECONCILING");
    let from = progress
        .restore_path
        .as_deref()
        .map_or_else(|| "an empty state".to_string(), |r| r.to_string());
    p.event(false, "Deploy", format!("deploying the job from {from}"));
    p.actions.push(JobAction::Apply {
        restore: progress.restore_path,
    });
    p.soon(IN_FLIGHT);
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
