//! Application clusters (a FlinkDeployment with `job`): observe the cluster and the job through Kubernetes
//! and Flink's REST API, let `job::decide` choose the next step, then act on it.
//!
//! The decided status is written before any action runs, and what an action returns (a savepoint trigger
//! id) is written right after it: the status is the only memory a restarted operator has.

use std::time::Duration;

use super::Action;
use super::events::EventType;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use tracing::{info, warn};

use super::Context;
use super::cache::cached_or_get;
use super::decide::{self, DeploymentView, StatusInputs};
use super::deployment::{
    Error, apply_objects, jobmanager_pod_failure, publish, rest_cluster_info, write_status, write_status_based_on,
};
use super::job::{self, Desired, JobAction, JobSettings, Observed, ObservedJob, TriggerState};
use super::status::{self, StatusWrite};
use crate::crd::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, KubernetesDeploymentMode, SavepointTriggerType,
};
use crate::flink::{self, JobResult, SavepointRequest, StopRequest};
use crate::flink_config;
use crate::resources::{self, Deploy};

/// How long a failure cause may be in the status.
const MAX_CAUSE: usize = 1000;

/// Reconciles an application cluster; `validation` is the desired spec's verdict.
pub async fn reconcile(
    fd: &FlinkDeployment,
    ctx: &Context,
    namespace: &str,
    validation: Result<(), String>,
) -> Result<Action, Error> {
    let name = fd.name_any();
    let previous = fd.status.clone().unwrap_or_default();
    let deployed = job::deployed_spec(&previous);
    // Settings follow the desired spec when it is valid, else what runs.
    let settings_spec = match (&validation, &deployed) {
        (Err(_), Some(deployed)) => deployed,
        _ => &fd.spec,
    };
    let conf = flink_config::effective(&ctx.defaults, settings_spec.flink_configuration.as_ref());
    let settings = JobSettings::from_conf(&conf);
    if let Err(error) = &validation
        && previous.error.as_deref() != Some(error.as_str())
    {
        publish(ctx, fd, EventType::Warning, "ValidationError", error, "Validate").await;
    }

    // Nothing deployed yet: an object the (synced) watches have not seen is not there.
    let fresh = deployed.is_none();
    // Observing and applying are boxed: a look holds their futures only while it does either (see the task
    // size test in `controller`).
    let observed = Box::pin(observe(
        fd,
        ctx,
        namespace,
        deployed.as_ref().unwrap_or(&fd.spec),
        &previous,
        fresh,
    ))
    .await;
    let desired = validation.is_ok().then_some(Desired {
        spec: &fd.spec,
        generation: fd.metadata.generation,
    });
    let now = k8s_openapi::jiff::Timestamp::now();
    let plan = job::decide(desired, &previous, &observed.world, &settings, now.as_millisecond());
    let invalid_spec = validation.is_err();
    let applying = plan.actions.iter().any(|a| matches!(a, JobAction::Apply { .. }));
    let status = with_cluster_fields(
        fd,
        &previous,
        plan.status.clone(),
        &observed,
        decide::jobmanager_status_recorded(observed.world.jobmanager, applying),
        validation.err().or(plan.error.clone()),
        invalid_spec,
        now,
    );
    // Nothing is done on a copy older than the API server's (see `status`): the write that records this
    // decision is conditional on the copy's version, and a decision that changes no status but does something
    // that must not happen twice checks the version first.
    let based_on = fd.metadata.resource_version.as_deref();
    let written_now = write_status_based_on(ctx, namespace, &name, &previous, &status, based_on).await?;
    let stale = match written_now {
        StatusWrite::Stale => true,
        StatusWrite::Unchanged if plan.actions.iter().any(JobAction::must_not_repeat) => {
            let api: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), namespace);
            !status::is_current(&api, fd).await.map_err(Error::ReadFlinkDeployment)?
        }
        StatusWrite::Unchanged | StatusWrite::Written(_) => false,
    };
    if stale {
        info!(name, "the watch's copy is behind the API server; looking again shortly");
        return Ok(Action::requeue(STALE_RETRY));
    }
    for event in &plan.events {
        publish(ctx, fd, event.event_type(), event.reason, &event.message, "Reconcile").await;
    }

    let mut written = status;
    let mut requeue = plan.requeue.unwrap_or(ctx.resync).min(ctx.resync);
    // The echo of a status write wakes no reconciliation (see `triggers`): a look that moved the status
    // looks again right after it, so no step ever waits for the resync because it waited for that echo...
    let mut next_step = matches!(written_now, StatusWrite::Written(_));
    let base = observed.rest_base.clone();
    // A JobManager created by a planned deployment is not news; one created in steady state replaces a lost one.
    let deploying = plan.events.iter().any(|e| matches!(e.reason, "Deploy" | "Submit"));
    for action in plan.actions {
        match action {
            JobAction::Apply { restore } => {
                let (jobmanager, created) =
                    Box::pin(apply_deployed(fd, ctx, namespace, &written, restore.as_deref(), fresh)).await?;
                if created && observed.had_jobmanager && !deploying {
                    let note = "the JobManager Deployment was gone; deployed it again";
                    publish(ctx, fd, EventType::Warning, "Missing", note, "Observe").await;
                }
                // Look again soon while pods are starting (a crash loop shows only in the pods) or while
                // the cluster is up but the job has not shown up on its REST API yet.
                let view = DeploymentView::of(&jobmanager);
                if view.pods_to_watch() || (view.is_available() && observed.world.job.is_none()) {
                    requeue = requeue.min(SETTLING);
                } else if view.not_started() {
                    // ...unless what comes next is the cluster's: until its pods exist nothing can be observed
                    // of it, and the status change of its Deployment when they are created wakes the next look
                    // (`triggers`). A look before then would find what this one left (half the looks of a new
                    // resource).
                    next_step = false;
                    requeue = ctx.resync;
                }
            }
            JobAction::TriggerSavepoint { trigger_type, nonce } => {
                let Some(job_id) = observed.world.job.as_ref().map(|j| j.id.clone()) else {
                    continue;
                };
                let request = SavepointRequest::default();
                let trigger = ctx
                    .rest
                    .trigger_savepoint(&base, &job_id, &request)
                    .await
                    .map_err(Error::TriggerSavepoint)?;
                info!(name, trigger, ?trigger_type, "savepoint triggered");
                let mut next = written.clone();
                job::record_trigger(&mut next, trigger, trigger_type, nonce, now.as_millisecond());
                write_status(ctx, namespace, &name, &written, &next).await?;
                written = next;
            }
            JobAction::StopWithSavepoint { job_id } => {
                let request = StopRequest::default();
                let trigger = ctx
                    .rest
                    .stop_with_savepoint(&base, &job_id, &request)
                    .await
                    .map_err(Error::StopJob)?;
                info!(name, trigger, "stop-with-savepoint triggered");
                let mut next = written.clone();
                job::record_trigger(
                    &mut next,
                    trigger,
                    SavepointTriggerType::Upgrade,
                    None,
                    now.as_millisecond(),
                );
                write_status(ctx, namespace, &name, &written, &next).await?;
                written = next;
            }
            JobAction::Cancel { job_id } => {
                ctx.rest.cancel_job(&base, &job_id).await.map_err(Error::CancelJob)?;
                info!(name, job_id, "job cancelled");
            }
            JobAction::DeleteCluster { keep_ha } => {
                delete_cluster(ctx, namespace, &name, keep_ha).await?;
            }
            JobAction::DisposeSavepoints { locations } => {
                for location in locations {
                    // Best effort: a savepoint that cannot be disposed is only left behind.
                    match ctx.rest.dispose_savepoint(&base, &location).await {
                        Ok(_) => info!(name, location, "savepoint disposed"),
                        Err(e) => warn!(name, location, error = %e, "cannot dispose savepoint"),
                    }
                }
            }
        }
    }
    if next_step {
        requeue = requeue.min(job::NEXT_STEP);
    }
    Ok(Action::requeue(requeue))
}

/// What `observe` found, beyond the decision inputs.
struct Observation {
    world: Observed,
    rest_base: String,
    cluster_info: Option<std::collections::BTreeMap<String, String>>,
    /// Why the REST endpoint did not answer, when it was asked.
    rest_error: Option<String>,
    taskmanager_replicas: i32,
    had_jobmanager: bool,
}

async fn observe(
    fd: &FlinkDeployment,
    ctx: &Context,
    namespace: &str,
    running_spec: &FlinkDeploymentSpec,
    previous: &FlinkDeploymentStatus,
    fresh: bool,
) -> Observation {
    let name = fd.name_any();
    let cached = |name: &str| ctx.cache.deployment(namespace, name);
    let lookup = |name: String| async move {
        match fresh {
            true => cached(&name).map(|d| d.as_ref().clone()),
            false => cached_or_get(cached(&name), &ctx.client, namespace, &name)
                .await
                .ok()
                .flatten(),
        }
    };
    let jobmanager = lookup(name.clone()).await;
    // Only a standalone cluster has a TaskManager Deployment: for a native one the (synced) watch's word that
    // there is none is enough, without asking the API server on every look.
    let taskmanager_name = format!("{name}-taskmanager");
    let taskmanager = match running_spec.mode() {
        KubernetesDeploymentMode::Standalone => lookup(taskmanager_name.clone()).await,
        KubernetesDeploymentMode::Native => cached(&taskmanager_name).map(|d| d.as_ref().clone()),
    };
    let mut view = jobmanager.as_ref().map(DeploymentView::of);
    if let Some(v) = view.as_mut().filter(|v| v.pods_to_watch()) {
        v.failure = jobmanager_pod_failure(ctx, namespace, &name).await;
    }
    let running_fd = with_spec(fd, running_spec.clone());
    let cluster = resources::Cluster::new(&running_fd, &ctx.defaults, Deploy::default()).ok();
    let rest_port = cluster.as_ref().map_or(resources::DEFAULT_REST_PORT, |c| c.rest_port);
    let taskmanager_replicas = cluster
        .as_ref()
        .and_then(|c| resources::standalone::taskmanager_replicas(c).ok())
        .unwrap_or(0);
    let rest_base = flink::rest_url(&ctx.rest_url_template, &name, namespace, rest_port);
    let available = view.as_ref().is_some_and(DeploymentView::is_available);
    let (cluster_info, rest_error) = if available {
        match rest_cluster_info(fd, ctx, namespace, rest_port).await {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let jobmanager_status = decide::jobmanager_status(view.as_ref(), cluster_info.is_some());
    // Pods outlive their Deployment for a while: the cluster is gone only when they are too. Only an
    // upgrade waits for that, so only then are the pods asked about (a suspended job's cluster is gone
    // for good, and a new resource has none: no list on each of their looks).
    let cluster_present = jobmanager.is_some()
        || taskmanager.is_some()
        || (previous.upgrade.is_some() && cluster_pods_exist(ctx, namespace, &name).await);
    let mut world = Observed {
        jobmanager: jobmanager_status,
        cluster_present,
        ..Observed::default()
    };
    let info = previous.job_status.as_ref().and_then(|j| j.savepoint_info.as_ref());
    let trigger_id = info.and_then(|i| i.trigger_id.clone());
    if cluster_info.is_some() {
        world.job = observe_job(ctx, &rest_base).await;
        let busy = previous.upgrade.is_some() || job::deployed_spec(previous).as_ref() != Some(&fd.spec);
        if let Some(job) = world.job.as_ref().filter(|_| busy) {
            match ctx.rest.checkpoint_stats(&rest_base, &job.id).await {
                Ok(stats) => {
                    world.latest_checkpoint = stats.latest.completed.and_then(|c| c.external_path);
                    world.latest_savepoint = stats.latest.savepoint.and_then(|c| c.external_path);
                }
                Err(e) => info!(name, error = %e, "no checkpoint statistics"),
            }
        }
    }
    if let Some(trigger_id) = trigger_id {
        let job_id = previous.job_status.as_ref().and_then(|j| j.job_id.clone());
        world.trigger = Some(match (cluster_info.is_some(), job_id) {
            (true, Some(job_id)) => {
                TriggerState::from_rest(ctx.rest.savepoint_status(&rest_base, &job_id, &trigger_id).await)
            }
            (_, None) => TriggerState::Unknown {
                error: "no job id recorded for the trigger".into(),
            },
            (false, _) => TriggerState::Unknown {
                error: format!(
                    "the REST endpoint does not answer: {}",
                    rest_error.as_deref().unwrap_or("the JobManager is not available")
                ),
            },
        });
    }
    Observation {
        world,
        rest_base,
        cluster_info,
        rest_error,
        taskmanager_replicas,
        had_jobmanager: previous
            .job_manager_deployment_status
            .is_some_and(|s| s != crate::crd::JobManagerDeploymentStatus::Missing),
    }
}

/// Whether any JobManager or TaskManager pod of the cluster is left (a failed lookup counts as yes).
async fn cluster_pods_exist(ctx: &Context, namespace: &str, name: &str) -> bool {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("app={name},component in (jobmanager,taskmanager)");
    match pods
        .list_metadata(&ListParams::default().labels(&selector).limit(1).match_any())
        .await
    {
        Ok(list) => !list.items.is_empty(),
        Err(e) => {
            warn!(error = %e, "cannot list the cluster's pods");
            true
        }
    }
}

/// The cluster's job: the live one if any, else the most recently started.
async fn observe_job(ctx: &Context, base: &str) -> Option<ObservedJob> {
    let jobs = match ctx.rest.jobs_overview(base).await {
        Ok(jobs) => jobs,
        Err(e) => {
            info!(base, error = %e, "cannot list jobs");
            return None;
        }
    };
    let summary = jobs
        .iter()
        .filter(|j| !j.state.is_globally_terminal())
        .max_by_key(|j| j.start_time)
        .or_else(|| jobs.iter().max_by_key(|j| j.start_time))?
        .clone();
    let vertices_running = match ctx.rest.job_details(base, &summary.jid).await {
        Ok(details) => flink::is_job_running(&details),
        Err(e) => {
            info!(base, error = %e, "cannot read job details");
            false
        }
    };
    let failure = if summary.state == flink::JobState::Failed {
        match ctx.rest.job_result(base, &summary.jid).await {
            Ok(JobResult::Completed { failure_cause, .. }) => {
                failure_cause.map(|c| flink::truncate_chars(&c, MAX_CAUSE))
            }
            Ok(JobResult::InProgress) => None,
            Err(e) => Some(format!("(cause unavailable: {e})")),
        }
    } else {
        None
    };
    Some(ObservedJob {
        id: summary.jid.clone(),
        name: summary.name.clone(),
        state: summary.state.as_str().to_string(),
        start_time: (summary.start_time > 0).then_some(summary.start_time),
        vertices_running,
        failure,
    })
}

fn with_spec(fd: &FlinkDeployment, spec: FlinkDeploymentSpec) -> FlinkDeployment {
    let mut copy = fd.clone();
    copy.spec = spec;
    copy
}

/// How soon a reconciliation that found the watch's copy behind looks again (the watch event is on its way).
const STALE_RETRY: Duration = Duration::from_millis(500);

/// Applies the objects of the spec recorded as deployed, starting the job from `restore`.
async fn apply_deployed(
    fd: &FlinkDeployment,
    ctx: &Context,
    namespace: &str,
    status: &FlinkDeploymentStatus,
    restore: Option<&str>,
    fresh: bool,
) -> Result<(Deployment, bool), Error> {
    let spec = job::deployed_spec(status).ok_or_else(|| Error::BuildDeployedSpec("no deployed spec".into()))?;
    let allow_non_restored_state = spec
        .job
        .as_ref()
        .and_then(|j| j.allow_non_restored_state)
        .unwrap_or(false);
    let deployed = with_spec(fd, spec);
    let deploy = Deploy {
        restore,
        allow_non_restored_state,
    };
    let cluster = resources::Cluster::new(&deployed, &ctx.defaults, deploy)
        .map_err(|e| Error::BuildDeployedSpec(e.to_string()))?;
    let objects = resources::build_cluster(&cluster).map_err(|e| Error::BuildDeployedSpec(e.to_string()))?;
    apply_objects(ctx, namespace, objects, fresh).await
}

/// Deletes the cluster's Deployments, and Flink's HA data unless kept. Their pods go asynchronously; the
/// next deployment waits until they are gone (`cluster_pods_exist`).
async fn delete_cluster(ctx: &Context, namespace: &str, name: &str, keep_ha: bool) -> Result<(), Error> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    for deployment in [format!("{name}-taskmanager"), name.to_string()] {
        match deployments.delete(&deployment, &DeleteParams::background()).await {
            Ok(_) => info!(name = deployment, namespace, "deleting for the upgrade"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::DeleteObject {
                    what: format!("Deployment {namespace}/{deployment}"),
                    source,
                });
            }
        }
    }
    if !keep_ha {
        super::deployment::delete_ha_data(&ctx.client, namespace, name).await?;
    }
    Ok(())
}

/// Adds what the reconciler knows about the cluster (JobManager state, TaskManagers, conditions).
#[allow(clippy::too_many_arguments)]
fn with_cluster_fields(
    fd: &FlinkDeployment,
    previous: &FlinkDeploymentStatus,
    planned: FlinkDeploymentStatus,
    observed: &Observation,
    jobmanager: crate::crd::JobManagerDeploymentStatus,
    error: Option<String>,
    invalid_spec: bool,
    now: k8s_openapi::jiff::Timestamp,
) -> FlinkDeploymentStatus {
    let name = fd.name_any();
    let job_state = planned
        .job_status
        .as_ref()
        .and_then(|j| j.state.clone())
        .unwrap_or_default();
    let mut status = decide::next_status(StatusInputs {
        generation: fd.metadata.generation,
        previous: &planned,
        deployed_spec: None,
        error,
        jobmanager,
        cluster_info: observed.cluster_info.clone(),
        taskmanager_selector: format!("app={name},component=taskmanager"),
        taskmanager_replicas: observed.taskmanager_replicas,
        job_state: Some(job_state),
        invalid_spec,
        rest_error: observed.rest_error.clone(),
        now_millis: now.as_millisecond(),
        now: Time(now),
    });
    // The Ready condition's transition time is judged against what was stored, not the plan.
    if let (Some(old), Some(new)) = (previous.conditions.as_ref(), status.conditions.as_mut()) {
        for condition in new.iter_mut() {
            if let Some(before) = old
                .iter()
                .find(|c| c.type_ == condition.type_ && c.status == condition.status)
            {
                condition.last_transition_time = before.last_transition_time.clone();
            }
        }
    }
    status
}

/// How soon a cluster whose job is not observed yet is looked at again.
pub const SETTLING: Duration = Duration::from_secs(4);
