//! The FlinkSessionJob reconciler: submits a job to its session cluster through Flink's REST API (jar
//! upload + run) and carries it through upgrades, savepoints and suspend/resume.
//!
//! The decisions are the application clusters' (`job::decide`): a session job is a job whose "cluster" is
//! its one Flink job. Deploying means submitting under a job id recorded in status first (so a restarted
//! operator finds the job instead of submitting it twice); deleting means cancelling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Action;
use super::Finalizer;
use super::events::{EventNote, EventType};
use kube::api::Api;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::Context;
use super::job::{self, Desired, JobAction, JobSettings, Observed, ObservedJob, TriggerState};
use super::status::StatusWrite;
use crate::crd::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkSessionJob, FlinkSessionJobStatus,
    JobManagerDeploymentStatus, SavepointTriggerType,
};
use crate::flink::{self, FlinkError, JarRunRequest, SavepointRequest, StopRequest};
use crate::{flink_config, resources, validation};

pub const FINALIZER: &str = "flinksessionjobs.flink.apache.org/finalizer";
/// How soon a reconciliation that found the watch's copy behind looks again (the watch event is on its way).
const STALE_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the session cluster {name}: {source}")]
    ReadSessionCluster { name: String, source: kube::Error },
    #[error("cannot fetch the job jar {uri}: {reason}")]
    FetchJar { uri: String, reason: String },
    #[error("cannot submit the job: {0}")]
    SubmitJob(#[source] FlinkError),
    #[error("cannot trigger a savepoint: {0}")]
    TriggerSavepoint(#[source] FlinkError),
    #[error("cannot stop the job with a savepoint: {0}")]
    StopJob(#[source] FlinkError),
    #[error("cannot cancel the job: {0}")]
    CancelJob(#[source] FlinkError),
    #[error("cannot write status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("cannot read the FlinkSessionJob: {0}")]
    ReadSessionJob(#[source] kube::Error),
    #[error("object has no namespace")]
    NoNamespace,
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// Stable PascalCase reason for events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadSessionCluster { .. } => "ReadSessionCluster",
            Error::FetchJar { .. } => "FetchJar",
            Error::SubmitJob(_) => "SubmitJob",
            Error::TriggerSavepoint(_) => "TriggerSavepoint",
            Error::StopJob(_) => "StopJob",
            Error::CancelJob(_) => "CancelJob",
            Error::WriteStatus(_) => "WriteStatus",
            Error::ReadSessionJob(_) => "ReadSessionJob",
            Error::NoNamespace => "NoNamespace",
            Error::Finalizer(_) => "Finalizer",
        }
    }
}

pub async fn reconcile(sj: Arc<FlinkSessionJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = sj.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = super::with_finalizer(
        &api,
        FINALIZER,
        sj.clone(),
        |event| async {
            match event {
                Finalizer::Apply(sj) => apply(&sj, &ctx, &namespace).await,
                Finalizer::Cleanup(sj) => cleanup(&sj, &ctx, &namespace).await,
            }
        },
        Error::Finalizer,
    )
    .await;
    ctx.metrics.reconciled("FlinkSessionJob", result.is_ok(), started);
    if let Err(e) = &result {
        publish(&ctx, sj.as_ref(), EventType::Warning, e.reason(), &e.to_string()).await;
    }
    result
}

pub fn error_policy(_: Arc<FlinkSessionJob>, error: &Error, _: Arc<Context>) -> Action {
    warn!(%error, "session job reconcile failed; retrying");
    Action::requeue(Duration::from_secs(10))
}

/// The session job seen as an application cluster's spec, so `job::decide` applies unchanged.
fn as_deployment_spec(sj: &FlinkSessionJob) -> FlinkDeploymentSpec {
    FlinkDeploymentSpec {
        job: sj.spec.job.clone(),
        restart_nonce: sj.spec.restart_nonce,
        flink_configuration: sj.spec.flink_configuration.clone(),
        ..FlinkDeploymentSpec::default()
    }
}

fn to_deployment_status(status: &FlinkSessionJobStatus) -> FlinkDeploymentStatus {
    FlinkDeploymentStatus {
        job_status: status.job_status.clone(),
        error: status.error.clone(),
        observed_generation: status.observed_generation,
        lifecycle_state: status.lifecycle_state,
        reconciliation_status: status.reconciliation_status.clone(),
        upgrade: status.upgrade.clone(),
        conditions: status.conditions.clone(),
        ..FlinkDeploymentStatus::default()
    }
}

fn to_session_status(status: FlinkDeploymentStatus) -> FlinkSessionJobStatus {
    FlinkSessionJobStatus {
        job_status: status.job_status,
        error: status.error,
        observed_generation: status.observed_generation,
        lifecycle_state: status.lifecycle_state,
        reconciliation_status: status.reconciliation_status,
        upgrade: status.upgrade,
        conditions: status.conditions,
    }
}

/// Where the session cluster stands, and its REST address.
struct Session {
    jobmanager: JobManagerDeploymentStatus,
    rest_base: String,
}

async fn session_cluster(sj: &FlinkSessionJob, ctx: &Context, namespace: &str) -> Result<Option<Session>, Error> {
    let Some(name) = sj.spec.deployment_name.clone() else {
        return Ok(None);
    };
    let cached = ctx.cache.flink_deployment(namespace, &name);
    let Some(fd) = super::cache::cached_or_get::<FlinkDeployment>(cached, &ctx.client, namespace, &name)
        .await
        .map_err(|source| Error::ReadSessionCluster {
            name: name.clone(),
            source,
        })?
    else {
        return Ok(None);
    };
    let port = resources::Cluster::new(&fd, &ctx.defaults, resources::Deploy::default())
        .map_or(resources::DEFAULT_REST_PORT, |c| c.rest_port);
    Ok(Some(Session {
        jobmanager: fd
            .status
            .as_ref()
            .and_then(|s| s.job_manager_deployment_status)
            .unwrap_or_default(),
        rest_base: flink::rest_url(&ctx.rest_url_template, &name, namespace, port),
    }))
}

async fn apply(sj: &FlinkSessionJob, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let name = sj.name_any();
    let previous_session = sj.status.clone().unwrap_or_default();
    let previous = to_deployment_status(&previous_session);
    let validation = validation::validate_session_job(sj, None, &ctx.defaults).map_err(|v| v.to_string());
    if let Err(error) = &validation
        && previous.error.as_deref() != Some(error.as_str())
    {
        publish(ctx, sj, EventType::Warning, "ValidationError", error).await;
    }
    let session = session_cluster(sj, ctx, namespace).await?;
    let ready = session
        .as_ref()
        .is_some_and(|s| s.jobmanager == JobManagerDeploymentStatus::Ready);
    let rest_base = session.as_ref().map(|s| s.rest_base.clone()).unwrap_or_default();

    // Observe the recorded job by its id.
    let recorded_id = previous.job_status.as_ref().and_then(|j| j.job_id.clone());
    let mut world = Observed {
        jobmanager: session
            .as_ref()
            .map_or(JobManagerDeploymentStatus::Missing, |s| s.jobmanager),
        ..Observed::default()
    };
    let mut job_known_absent = false;
    if ready && let Some(id) = recorded_id.as_deref() {
        match observe_job(ctx, &rest_base, id).await {
            Ok(job) => world.job = job,
            Err(e) if e.is_not_found() => job_known_absent = true,
            Err(e) => info!(name, error = %e, "cannot read the session job"),
        }
    }
    // The "cluster" of a session job is its job while it still runs.
    // While the session cluster does not answer, the job counts as still there.
    world.cluster_present = !ready || world.job.as_ref().is_some_and(|j| !j.is_terminal());
    let info = previous.job_status.as_ref().and_then(|j| j.savepoint_info.as_ref());
    if let (true, Some(trigger), Some(id)) = (ready, info.and_then(|i| i.trigger_id.clone()), recorded_id.as_deref()) {
        world.trigger = Some(TriggerState::from_rest(
            ctx.rest.savepoint_status(&rest_base, id, &trigger).await,
        ));
    }
    let busy = previous.upgrade.is_some() || job::deployed_spec(&previous).as_ref() != Some(&as_deployment_spec(sj));
    if busy
        && let Some(job) = world.job.as_ref()
        && let Ok(stats) = ctx.rest.checkpoint_stats(&rest_base, &job.id).await
    {
        world.latest_checkpoint = stats.latest.completed.and_then(|c| c.external_path);
        world.latest_savepoint = stats.latest.savepoint.and_then(|c| c.external_path);
    }

    let conf = flink_config::effective(&ctx.defaults, sj.spec.flink_configuration.as_ref());
    // HA belongs to the session cluster; a session job restores from its own checkpoints or savepoints.
    let settings = JobSettings {
        ha: false,
        ..JobSettings::from_conf(&conf)
    };
    let desired_spec = as_deployment_spec(sj);
    let desired = validation.is_ok().then_some(Desired {
        spec: &desired_spec,
        generation: sj.metadata.generation,
    });
    let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let plan = job::decide(desired, &previous, &world, &settings, now);
    let mut status = plan.status.clone();
    // The error of a failed action (e.g. a jar that cannot be fetched) stays until the action is retried and
    // succeeds, so the status does not flap between the error and none on every retry.
    let failed_action = previous
        .error
        .clone()
        .filter(|_| ready && validation.is_ok() && !plan.actions.is_empty());
    status.error = validation
        .err()
        .or(plan.error.clone())
        .or_else(|| (!ready && session.is_some()).then(|| "waiting for the session cluster to be READY".to_string()))
        .or(failed_action.clone());
    if session.is_none() {
        status.error = Some(format!(
            "session cluster {} not found",
            sj.spec.deployment_name.clone().unwrap_or_default()
        ));
    }
    status.lifecycle_state = Some(super::decide::lifecycle_state(&status, false));
    // Nothing is done on a copy older than the API server's (see `status`): the write that records this
    // decision is conditional on the copy's version, as is the write of a new job id before a submission.
    let new_status = to_session_status(status.clone());
    let based_on = sj.metadata.resource_version.as_deref();
    // The version the actions are based on; none when the copy is behind.
    let current_version =
        match write_status_based_on(ctx, namespace, &name, &previous_session, &new_status, based_on).await? {
            StatusWrite::Stale => None,
            StatusWrite::Unchanged if plan.actions.iter().any(JobAction::must_not_repeat) => {
                let api: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), namespace);
                let current = super::status::is_current(&api, sj)
                    .await
                    .map_err(Error::ReadSessionJob)?;
                current.then(|| based_on.map(str::to_string))
            }
            StatusWrite::Unchanged => Some(based_on.map(str::to_string)),
            StatusWrite::Written(version) => Some(version),
        };
    let Some(mut version) = current_version else {
        info!(name, "the watch's copy is behind the API server; looking again shortly");
        return Ok(Action::requeue(STALE_RETRY));
    };
    for event in &plan.events {
        publish(ctx, sj, event.event_type(), event.reason, &event.message).await;
    }

    let mut written = status;
    let mut requeue = plan.requeue.unwrap_or(ctx.resync).min(ctx.resync);
    if !ready {
        return Ok(Action::requeue(requeue.min(Duration::from_secs(5))));
    }
    let mut stale = false;
    let acted = async {
        for action in plan.actions {
            let job_id = written.job_status.as_ref().and_then(|j| j.job_id.clone());
            match action {
                JobAction::Apply { restore } => {
                    // A new job id for a new run: none recorded yet, or the recorded one belongs to the run that
                    // an upgrade just ended. Otherwise the recorded id is submitted only when Flink has no such job.
                    let finished_run = previous.upgrade.is_some() && written.upgrade.is_none();
                    let id = match job_id {
                        Some(id) if !finished_run => id,
                        _ => {
                            let mut next = written.clone();
                            let id = new_job_id(sj, now);
                            next.job_status.get_or_insert_with(Default::default).job_id = Some(id.clone());
                            let (old, new) = (to_session_status(written.clone()), to_session_status(next.clone()));
                            // Recorded before the submission, on the version this decision was made on:
                            // a stale copy must not submit a second job.
                            match write_status_based_on(ctx, namespace, &name, &old, &new, version.as_deref()).await? {
                                StatusWrite::Stale => {
                                    stale = true;
                                    return Ok(());
                                }
                                StatusWrite::Written(v) => version = v,
                                StatusWrite::Unchanged => {}
                            }
                            written = next;
                            job_known_absent = true;
                            id
                        }
                    };
                    if job_known_absent {
                        submit(sj, ctx, &rest_base, &id, restore.as_deref()).await?;
                        publish(ctx, sj, EventType::Normal, "Submit", &format!("submitted job {id}")).await;
                        requeue = requeue.min(job::IN_FLIGHT);
                    }
                }
                JobAction::TriggerSavepoint { trigger_type, nonce } => {
                    let Some(id) = job_id else { continue };
                    let trigger = ctx
                        .rest
                        .trigger_savepoint(&rest_base, &id, &SavepointRequest::default())
                        .await
                        .map_err(Error::TriggerSavepoint)?;
                    let mut next = written.clone();
                    job::record_trigger(&mut next, trigger, trigger_type, nonce, now);
                    let (old, new) = (to_session_status(written.clone()), to_session_status(next.clone()));
                    write_status(ctx, namespace, &name, &old, &new).await?;
                    written = next;
                }
                JobAction::StopWithSavepoint { job_id } => {
                    let trigger = ctx
                        .rest
                        .stop_with_savepoint(&rest_base, &job_id, &StopRequest::default())
                        .await
                        .map_err(Error::StopJob)?;
                    let mut next = written.clone();
                    job::record_trigger(&mut next, trigger, SavepointTriggerType::Upgrade, None, now);
                    let (old, new) = (to_session_status(written.clone()), to_session_status(next.clone()));
                    write_status(ctx, namespace, &name, &old, &new).await?;
                    written = next;
                }
                JobAction::Cancel { job_id } => {
                    ctx.rest
                        .cancel_job(&rest_base, &job_id)
                        .await
                        .map_err(Error::CancelJob)?;
                }
                // The session job's "cluster" is its job: cancel it if it still runs.
                JobAction::DeleteCluster { .. } => {
                    if let Some(job) = world.job.as_ref().filter(|j| !j.is_terminal()) {
                        ctx.rest
                            .cancel_job(&rest_base, &job.id)
                            .await
                            .map_err(Error::CancelJob)?;
                    }
                }
                JobAction::DisposeSavepoints { locations } => {
                    for location in locations {
                        if let Err(e) = ctx.rest.dispose_savepoint(&rest_base, &location).await {
                            warn!(name, location, error = %e, "cannot dispose savepoint");
                        }
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if stale {
        info!(
            name,
            "the session job changed before its job id was recorded; looking again shortly"
        );
        return Ok(Action::requeue(STALE_RETRY));
    }
    // The status says why the job is not where the spec wants it, and stops saying so once it is.
    let error = acted.as_ref().err().map(ToString::to_string);
    if written.error != error && (error.is_some() || written.error == failed_action) {
        let mut next = written.clone();
        next.error = error;
        write_status(
            ctx,
            namespace,
            &name,
            &to_session_status(written),
            &to_session_status(next),
        )
        .await?;
    }
    acted?;
    Ok(Action::requeue(requeue))
}

/// A fresh Flink job id (32 hex digits), unique per resource and time.
fn new_job_id(sj: &FlinkSessionJob, now_ms: i64) -> String {
    use sha2::{Digest, Sha256};
    let uid = sj.metadata.uid.clone().unwrap_or_default();
    let digest = Sha256::digest(format!("{uid}/{now_ms}/{}", std::process::id()).as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

async fn observe_job(ctx: &Context, base: &str, id: &str) -> Result<Option<ObservedJob>, FlinkError> {
    let details = ctx.rest.job_details(base, id).await?;
    let failure = if details.state == flink::JobState::Failed {
        match ctx.rest.job_result(base, id).await {
            Ok(flink::JobResult::Completed { failure_cause, .. }) => failure_cause,
            _ => None,
        }
    } else {
        None
    };
    Ok(Some(ObservedJob {
        id: details.jid.clone(),
        name: details.name.clone(),
        state: details.state.as_str().to_string(),
        start_time: (details.start_time > 0).then_some(details.start_time),
        vertices_running: flink::is_job_running(&details),
        failure,
    }))
}

async fn submit(
    sj: &FlinkSessionJob,
    ctx: &Context,
    base: &str,
    job_id: &str,
    restore: Option<&str>,
) -> Result<(), Error> {
    let job = sj.spec.job.clone().unwrap_or_default();
    let jar = ctx
        .jars
        .fetch(job.jar_uri.as_deref())
        .await
        .map_err(|reason| Error::FetchJar {
            uri: job.jar_uri.clone().unwrap_or_default(),
            reason,
        })?;
    let jar_id = ctx
        .rest
        .upload_jar(base, &jar.file_name, jar.content)
        .await
        .map_err(Error::SubmitJob)?;
    let request = JarRunRequest {
        entry_class: job.entry_class.clone(),
        parallelism: job.parallelism.and_then(|p| u32::try_from(p).ok()),
        program_args: job.args.clone().unwrap_or_default(),
        savepoint_path: restore.map(str::to_string),
        allow_non_restored_state: job.allow_non_restored_state,
        job_id: Some(job_id.to_string()),
    };
    let run = ctx.rest.run_jar(base, &jar_id, &request).await;
    // The uploaded jar is only needed for the submission.
    if let Err(e) = ctx.rest.delete_jar(base, &jar_id).await {
        warn!(jar_id, error = %e, "cannot delete the uploaded jar");
    }
    run.map_err(Error::SubmitJob)?;
    info!(job_id, restore, "session job submitted");
    Ok(())
}

/// Cancels the job when the resource goes (a session cluster that is gone has nothing left to cancel).
async fn cleanup(sj: &FlinkSessionJob, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let session = session_cluster(sj, ctx, namespace).await?;
    let id = sj
        .status
        .as_ref()
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.job_id.clone());
    if let (Some(session), Some(id)) = (session, id) {
        match ctx.rest.job_details(&session.rest_base, &id).await {
            Ok(details) if !details.state.is_globally_terminal() => {
                ctx.rest
                    .cancel_job(&session.rest_base, &id)
                    .await
                    .map_err(Error::CancelJob)?;
                publish(ctx, sj, EventType::Normal, "Cleanup", &format!("cancelled job {id}")).await;
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(id, error = %e, "cannot check the job before deletion; leaving it"),
        }
    }
    ctx.metrics
        .lifecycle("FlinkSessionJob", &format!("{namespace}/{}", sj.name_any()), None);
    Ok(Action::await_change())
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    previous: &FlinkSessionJobStatus,
    status: &FlinkSessionJobStatus,
) -> Result<(), Error> {
    write_status_based_on(ctx, namespace, name, previous, status, None)
        .await
        .map(|_| ())
}

/// `write_status`, conditional on the resource still being at `based_on` (see `status`) when given.
async fn write_status_based_on(
    ctx: &Context,
    namespace: &str,
    name: &str,
    previous: &FlinkSessionJobStatus,
    status: &FlinkSessionJobStatus,
    based_on: Option<&str>,
) -> Result<StatusWrite, Error> {
    let state = status.lifecycle_state.and_then(|l| serde_json::to_value(l).ok());
    ctx.metrics.lifecycle(
        "FlinkSessionJob",
        &format!("{namespace}/{name}"),
        state.as_ref().and_then(|v| v.as_str()),
    );
    let api: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), namespace);
    super::status::write(&api, name, previous, status, based_on)
        .await
        .map_err(Error::WriteStatus)
}

async fn publish(ctx: &Context, sj: &FlinkSessionJob, type_: EventType, reason: &str, note: &str) {
    let event = EventNote {
        type_,
        reason,
        note,
        action: "Reconcile",
    };
    if let Err(e) = ctx.recorder.publish(&event, &sj.object_ref(&())).await {
        warn!(error = %e, reason, "event lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_job_maps_onto_the_job_lifecycle_and_back() {
        let status = FlinkSessionJobStatus {
            error: Some("x".into()),
            observed_generation: Some(3),
            upgrade: Some(crate::crd::UpgradeProgress::default()),
            ..FlinkSessionJobStatus::default()
        };
        assert_eq!(to_session_status(to_deployment_status(&status)), status);
    }

    #[test]
    fn job_ids_are_flink_job_ids() {
        let sj = FlinkSessionJob::new("a", Default::default());
        let id = new_job_id(&sj, 1);
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_job_id(&sj, 2));
    }
}
