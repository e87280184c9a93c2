//! The FlinkDeployment reconciler: observe -> decide (pure, in `decide`) -> act.
//!
//! Objects are applied with server-side apply under one field manager, and only when the built object
//! differs from what was last applied (a hash annotation), so a steady state makes no API writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Action;
use super::Finalizer;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use super::cache::{Seen, cached_or_get};
use super::decide::{self, DeploymentView, StatusInputs};
use super::events::{EventNote, EventType};
use super::slim::{Slim, SlimDecode};
use super::status::StatusWrite;
use super::{Context, MANAGER};
use crate::crd::{FlinkDeployment, FlinkDeploymentStatus, FlinkSessionJob, JobManagerDeploymentStatus, UpgradeMode};
use crate::flink;
use crate::resources::{self, ClusterObjects, Deploy};
use crate::validation;

/// Finalizer that keeps a FlinkDeployment until its cluster is cleaned up (upstream's name).
pub const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";
/// Hash of the object as last applied; equal hash = nothing to apply.
pub const APPLIED_HASH: &str = "flink.apache.org/applied-hash";
/// How soon to ask a starting JobManager's REST endpoint again.
const REST_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot apply the JobManager Deployment: {0}")]
    ApplyJobManagerDeployment(#[source] kube::Error),
    #[error("cannot apply the TaskManager Deployment: {0}")]
    ApplyTaskManagerDeployment(#[source] kube::Error),
    #[error("cannot apply Service: {0}")]
    ApplyService(#[source] kube::Error),
    #[error("cannot apply the Flink configuration ConfigMap: {0}")]
    ApplyConfigMap(#[source] kube::Error),
    #[error("cannot apply the Ingress: {0}")]
    ApplyIngress(#[source] kube::Error),
    #[error("cannot write status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("cannot read the FlinkDeployment: {0}")]
    ReadFlinkDeployment(#[source] kube::Error),
    #[error("cannot delete {what}: {source}")]
    DeleteObject { what: String, source: kube::Error },
    #[error("cannot list the FlinkSessionJobs of the session cluster: {0}")]
    ListSessionJobs(#[source] kube::Error),
    #[error("session jobs still run on this cluster: {0}; delete them first")]
    SessionJobsRemain(String),
    #[error("the cluster's objects are still being deleted")]
    CleanupPending,
    #[error("cannot trigger a savepoint: {0}")]
    TriggerSavepoint(#[source] crate::flink::FlinkError),
    #[error("cannot stop the job with a savepoint: {0}")]
    StopJob(#[source] crate::flink::FlinkError),
    #[error("cannot cancel the job: {0}")]
    CancelJob(#[source] crate::flink::FlinkError),
    #[error("cannot build the deployed spec's objects: {0}")]
    BuildDeployedSpec(String),
    #[error("object has no namespace")]
    NoNamespace,
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// Stable PascalCase reason for events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ApplyJobManagerDeployment(_) => "ApplyJobManagerDeployment",
            Error::ApplyTaskManagerDeployment(_) => "ApplyTaskManagerDeployment",
            Error::ApplyService(_) => "ApplyService",
            Error::ApplyConfigMap(_) => "ApplyConfigMap",
            Error::ApplyIngress(_) => "ApplyIngress",
            Error::WriteStatus(_) => "WriteStatus",
            Error::ReadFlinkDeployment(_) => "ReadFlinkDeployment",
            Error::DeleteObject { .. } | Error::SessionJobsRemain(_) | Error::ListSessionJobs(_) => "CleanupFailed",
            Error::CleanupPending => "CleanupPending",
            Error::TriggerSavepoint(_) => "TriggerSavepoint",
            Error::StopJob(_) => "StopJob",
            Error::CancelJob(_) => "CancelJob",
            Error::BuildDeployedSpec(_) => "BuildDeployedSpec",
            Error::NoNamespace => "NoNamespace",
            Error::Finalizer(_) => "Finalizer",
        }
    }
}

pub async fn reconcile(fd: Arc<FlinkDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = fd.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = super::with_finalizer(
        &api,
        FINALIZER,
        fd.clone(),
        |event| async {
            match event {
                Finalizer::Apply(fd) => apply(&fd, &ctx, &namespace).await,
                Finalizer::Cleanup(fd) => cleanup(&fd, &ctx, &namespace).await,
            }
        },
        Error::Finalizer,
    )
    .await;
    ctx.metrics.reconciled("FlinkDeployment", result.is_ok(), started);
    if let Err(e) = &result
        && !matches!(e, Error::CleanupPending)
    {
        publish(
            &ctx,
            fd.as_ref(),
            EventType::Warning,
            e.reason(),
            &e.to_string(),
            "Reconcile",
        )
        .await;
    }
    result
}

pub fn error_policy(_: Arc<FlinkDeployment>, error: &Error, _: Arc<Context>) -> Action {
    match error {
        Error::CleanupPending => Action::requeue(Duration::from_secs(2)),
        _ => {
            warn!(%error, "reconcile failed; retrying");
            Action::requeue(Duration::from_secs(10))
        }
    }
}

async fn apply(fd: &FlinkDeployment, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    // A spec that breaks a rule is reported; the last valid spec keeps running untouched.
    let cluster = validation::validate_deployment(fd, None, &ctx.defaults)
        .map_err(|v| v.to_string())
        .and_then(|()| resources::Cluster::new(fd, &ctx.defaults, Deploy::default()).map_err(|e| e.to_string()));
    let checked = cluster
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|c| resources::build_cluster(c).map_err(|e| e.to_string()));
    // Each kind of cluster is its own boxed future: the reconciliation task holds only the one it needs
    // (a task's future is moved into place at every spawn; see the test in `controller`).
    if fd.spec.is_application() {
        Box::pin(super::application::reconcile(fd, ctx, namespace, checked.map(|_| ()))).await
    } else {
        Box::pin(session_cluster(fd, ctx, namespace, &cluster, checked)).await
    }
}

/// A session cluster: its objects applied, its JobManager and REST endpoint observed, its status written.
async fn session_cluster(
    fd: &FlinkDeployment,
    ctx: &Context,
    namespace: &str,
    cluster: &Result<resources::Cluster<'_>, String>,
    checked: Result<ClusterObjects, String>,
) -> Result<Action, Error> {
    let previous = fd.status.clone().unwrap_or_default();
    let taskmanager_replicas = cluster
        .as_ref()
        .ok()
        .and_then(|c| resources::standalone::taskmanager_replicas(c).ok())
        .unwrap_or(0);
    let rest_port = cluster
        .as_ref()
        .map(|c| c.rest_port)
        .unwrap_or(resources::DEFAULT_REST_PORT);
    let had_jobmanager = previous
        .job_manager_deployment_status
        .is_some_and(|s| s != JobManagerDeploymentStatus::Missing);
    let (error, deployed_spec, jobmanager) = match checked {
        Err(error) => {
            if previous.error.as_deref() != Some(error.as_str()) {
                publish(ctx, fd, EventType::Warning, "ValidationError", &error, "Validate").await;
            }
            let name = fd.name_any();
            let cached = ctx.cache.deployment(namespace, &name);
            let jobmanager = cached_or_get(cached, &ctx.client, namespace, &name)
                .await
                .ok()
                .flatten();
            if jobmanager.is_none() && had_jobmanager {
                publish(
                    ctx,
                    fd,
                    EventType::Warning,
                    "Missing",
                    "the JobManager Deployment is gone",
                    "Observe",
                )
                .await;
            }
            (Some(error), None, jobmanager)
        }
        Ok(objects) => {
            let spec_json = serde_json::to_string(&fd.spec).unwrap_or_default();
            for (reason, note) in decide::spec_events(&previous, Some(&spec_json)) {
                publish(ctx, fd, EventType::Normal, reason, &note, "Deploy").await;
            }
            let fresh = previous
                .reconciliation_status
                .as_ref()
                .and_then(|r| r.last_reconciled_spec.as_ref())
                .is_none();
            let (jobmanager, created) = apply_objects(ctx, namespace, objects, fresh).await?;
            if created && had_jobmanager {
                let note = "the JobManager Deployment was gone; deployed it again";
                publish(ctx, fd, EventType::Warning, "Missing", note, "Observe").await;
            }
            (None, Some(spec_json), Some(jobmanager))
        }
    };
    let mut view = jobmanager.as_ref().map(DeploymentView::of);
    if let Some(v) = view.as_mut().filter(|v| v.pods_to_watch()) {
        // Not available yet: is it starting, or can it not start at all?
        v.failure = jobmanager_pod_failure(ctx, namespace, &fd.name_any()).await;
    }
    let name = fd.name_any();
    // The REST endpoint is asked only once the JobManager Deployment is available.
    let available = view.as_ref().is_some_and(DeploymentView::is_available);
    let (cluster_info, rest_error) = if available {
        match rest_cluster_info(fd, ctx, namespace, rest_port).await {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let rest_ready = cluster_info.is_some();
    let now = k8s_openapi::jiff::Timestamp::now();
    let status = decide::next_status(StatusInputs {
        generation: fd.metadata.generation,
        previous: &previous,
        deployed_spec,
        error,
        jobmanager: decide::jobmanager_status(view.as_ref(), rest_ready),
        cluster_info,
        taskmanager_selector: format!("app={name},component=taskmanager"),
        taskmanager_replicas,
        job_state: None,
        invalid_spec: true,
        rest_error,
        now_millis: now.as_millisecond(),
        now: Time(now),
    });
    write_status(ctx, namespace, &name, &previous, &status).await?;
    // Until the REST endpoint answers nothing else will wake us: look again soon.
    let settling = available && !rest_ready;
    Ok(Action::requeue(if settling {
        REST_RETRY.min(ctx.resync)
    } else {
        ctx.resync
    }))
}

/// Why the JobManager's pods cannot run, if so (a failed lookup counts as no news).
pub(super) async fn jobmanager_pod_failure(ctx: &Context, namespace: &str, name: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("app={name},component=jobmanager");
    // From the API server's watch cache (resourceVersion 0): a moment's staleness is fine for a diagnosis,
    // and it spares etcd a read for every JobManager that is not available yet.
    match Box::pin(pods.list(&ListParams::default().labels(&selector).match_any())).await {
        Ok(list) => decide::jobmanager_pod_failure(&list.items),
        Err(e) => {
            warn!(error = %e, "cannot list JobManager pods");
            None
        }
    }
}

/// `clusterInfo` from the cluster's REST endpoint, or why it does not answer (for the Ready condition).
pub(super) async fn rest_cluster_info(
    fd: &FlinkDeployment,
    ctx: &Context,
    namespace: &str,
    port: i32,
) -> Result<BTreeMap<String, String>, String> {
    let url = flink::rest_url(&ctx.rest_url_template, &fd.name_any(), namespace, port);
    ctx.rest.cluster_info(&url).await.map_err(|e| {
        info!(error = %e, "Flink REST endpoint not ready");
        flink::truncate_chars(&e.to_string(), 500)
    })
}

/// Applies every object of the cluster that changed; returns the JobManager Deployment as it is now and
/// whether it had to be created. `fresh`: nothing was ever deployed for this resource, so an object the
/// watch has not seen is taken as absent without asking the API server (four GETs less per new resource).
pub(super) async fn apply_objects(
    ctx: &Context,
    namespace: &str,
    objects: ClusterObjects,
    fresh: bool,
) -> Result<(Deployment, bool), Error> {
    let client = &ctx.client;
    let cache = &ctx.cache;
    let mut applied = Vec::new();
    let seen = cache
        .config_map_seen(namespace, &objects.config_map.name_any())
        .given_fresh(fresh);
    apply_unread_if_changed(
        client,
        namespace,
        objects.config_map,
        seen,
        Error::ApplyConfigMap,
        &mut applied,
    )
    .await?;
    for service in objects.services {
        let seen = cache.service_seen(namespace, &service.name_any()).given_fresh(fresh);
        apply_unread_if_changed::<Service>(client, namespace, service, seen, Error::ApplyService, &mut applied).await?;
    }
    let cached = cache.deployment(namespace, &objects.jobmanager.name_any());
    let seen = super::cache::seen(cached.as_deref()).given_fresh(fresh);
    let jobmanager = match apply_if_changed(
        client,
        namespace,
        objects.jobmanager,
        seen,
        Error::ApplyJobManagerDeployment,
        &mut applied,
    )
    .await?
    {
        Some(applied) => applied,
        // Unchanged, as the watch's copy says: that copy is the live object (`seen` came from it, so it is
        // there).
        None => (cached.map(|c| c.as_ref().clone()).unwrap_or_default(), false),
    };
    if let Some(taskmanager) = objects.taskmanager {
        let seen = cache
            .deployment_seen(namespace, &taskmanager.name_any())
            .given_fresh(fresh);
        apply_unread_if_changed(
            client,
            namespace,
            taskmanager,
            seen,
            Error::ApplyTaskManagerDeployment,
            &mut applied,
        )
        .await?;
    }
    if let Some(ingress) = objects.ingress {
        // Ingresses are not watched (rare, and never read back): the API server is asked.
        let seen = Seen::Unknown.given_fresh(fresh);
        apply_unread_if_changed::<Ingress>(client, namespace, ingress, seen, Error::ApplyIngress, &mut applied).await?;
    }
    // One line per cluster that changed rather than one per object (each line is a write to the log).
    if !applied.is_empty() {
        info!(namespace, objects = applied.join(", "), "applied");
    }
    Ok(jobmanager)
}

/// The applied hash of `object`: the first 12 bytes of the SHA-256 of its JSON, in hex. The JSON is streamed
/// into the digest rather than built first (one allocation and copy of every object fewer per apply).
fn hash_of<K: Serialize>(object: &K) -> String {
    let mut digest = DigestWriter(Sha256::new());
    // Writing into a digest cannot fail; a type that cannot be serialized hashes as what it wrote so far,
    // as `to_vec(..).unwrap_or_default()` did with nothing.
    let _ = serde_json::to_writer(&mut digest, object);
    let mut hex = String::with_capacity(24);
    for byte in digest.0.finalize().iter().take(12) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

struct DigestWriter(Sha256);

impl std::io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Server-side applies `object` unless the live object carries the same applied hash. `seen` is what the
/// watch last saw of it: a hit with the same hash costs no API call at all, a miss asks the API server.
/// Returns the object as it is now and whether it had to be created, or None when the watch's copy was
/// current and nothing was sent.
async fn apply_if_changed<K>(
    client: &kube::Client,
    namespace: &str,
    mut object: K,
    seen: Seen,
    error: fn(kube::Error) -> Error,
    applied: &mut Vec<String>,
) -> Result<Option<(K, bool)>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Serialize + SlimDecode + std::fmt::Debug,
{
    // Read back as the watch's copies are (`slim`): the answer is observed like them.
    let api: Api<Slim<K>> = Api::namespaced(client.clone(), namespace);
    let name = object.name_any();
    let hash = hash_of(&object);
    let created = match seen {
        Seen::Present(live) if live.as_deref() == Some(hash.as_str()) => return Ok(None),
        Seen::Present(_) => false,
        Seen::Absent => true,
        Seen::Unknown => match Box::pin(api.get_opt(&name)).await.map_err(error)? {
            Some(Slim(live)) if live.annotations().get(APPLIED_HASH) == Some(&hash) => {
                return Ok(Some((live, false)));
            }
            live => live.is_none(),
        },
    };
    object.annotations_mut().insert(APPLIED_HASH.to_string(), hash);
    debug!(kind = K::kind(&()).as_ref(), name, namespace, "applying");
    let params = PatchParams::apply(MANAGER).force();
    let Slim(live) = Box::pin(api.patch(&name, &params, &Patch::Apply(&object)))
        .await
        .map_err(error)?;
    applied.push(format!("{} {name}", K::kind(&())));
    Ok(Some((live, created)))
}

/// `apply_if_changed` for an object whose answer nobody reads (all but the JobManager Deployment): the API
/// server is asked for metadata only, in the lookup on a watch miss and in the apply's answer, which spares
/// it encoding, and the operator decoding, the whole object (a ConfigMap carries the Flink configuration).
async fn apply_unread_if_changed<K>(
    client: &kube::Client,
    namespace: &str,
    mut object: K,
    seen: Seen,
    error: fn(kube::Error) -> Error,
    applied: &mut Vec<String>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.name_any();
    let hash = hash_of(&object);
    let live_hash = match seen {
        Seen::Present(live) => live,
        Seen::Absent => None,
        Seen::Unknown => Box::pin(api.get_metadata_opt(&name))
            .await
            .map_err(error)?
            .and_then(|live| live.annotations().get(APPLIED_HASH).cloned()),
    };
    if live_hash.as_deref() == Some(hash.as_str()) {
        return Ok(());
    }
    object.annotations_mut().insert(APPLIED_HASH.to_string(), hash);
    debug!(kind = K::kind(&()).as_ref(), name, namespace, "applying");
    super::slim::patch_metadata(
        &api,
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map_err(error)?;
    applied.push(format!("{} {name}", K::kind(&())));
    Ok(())
}

pub(super) async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    previous: &FlinkDeploymentStatus,
    status: &FlinkDeploymentStatus,
) -> Result<(), Error> {
    write_status_based_on(ctx, namespace, name, previous, status, None)
        .await
        .map(|_| ())
}

/// `write_status`, conditional on the resource still being at `based_on` (see `status`) when given.
pub(super) async fn write_status_based_on(
    ctx: &Context,
    namespace: &str,
    name: &str,
    previous: &FlinkDeploymentStatus,
    status: &FlinkDeploymentStatus,
    based_on: Option<&str>,
) -> Result<StatusWrite, Error> {
    let state = status.lifecycle_state.and_then(|l| serde_json::to_value(l).ok());
    ctx.metrics.lifecycle(
        "FlinkDeployment",
        &format!("{namespace}/{name}"),
        state.as_ref().and_then(|v| v.as_str()),
    );
    let api: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), namespace);
    super::status::write(&api, name, previous, status, based_on)
        .await
        .map_err(Error::WriteStatus)
}

/// Deletes the cluster: TaskManagers, then the JobManager, then Services, configuration, Ingress, and for
/// stateless jobs the HA data. A session cluster waits until no session job uses it.
async fn cleanup(fd: &FlinkDeployment, ctx: &Context, namespace: &str) -> Result<Action, Error> {
    let name = fd.name_any();
    if fd.spec.job.is_none() {
        let jobs: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), namespace);
        let users: Vec<String> = jobs
            .list(&ListParams::default())
            .await
            .map_err(Error::ListSessionJobs)?
            .items
            .into_iter()
            .filter(|j| j.spec.deployment_name.as_deref() == Some(name.as_str()))
            .map(|j| j.name_any())
            .collect();
        if !users.is_empty() {
            return Err(Error::SessionJobsRemain(users.join(", ")));
        }
    }
    let previous = fd.status.clone().unwrap_or_default();
    if previous.lifecycle_state != Some(crate::crd::ResourceLifecycleState::Deleting) {
        let mut deleting = previous.clone();
        deleting.lifecycle_state = Some(crate::crd::ResourceLifecycleState::Deleting);
        write_status(ctx, namespace, &name, &previous, &deleting).await?;
    }

    let client = &ctx.client;
    let taskmanager = format!("{name}-taskmanager");
    delete::<Deployment>(client, namespace, &taskmanager).await?;
    delete::<Deployment>(client, namespace, &name).await?;
    delete::<Service>(client, namespace, &name).await?;
    delete::<Service>(client, namespace, &format!("{name}-rest")).await?;
    delete::<ConfigMap>(client, namespace, &format!("flink-config-{name}")).await?;
    delete::<Ingress>(client, namespace, &name).await?;
    let stateless = fd
        .spec
        .job
        .as_ref()
        .is_none_or(|j| j.upgrade_mode() == UpgradeMode::Stateless);
    if stateless {
        delete_ha_data(client, namespace, &name).await?;
    }
    // Done only when the JobManager and TaskManagers are really gone (deletion can be asynchronous).
    for deployment in [&name, &taskmanager] {
        let cached = ctx.cache.deployment(namespace, deployment);
        let live = cached_or_get::<Deployment>(cached, client, namespace, deployment)
            .await
            .map_err(|source| Error::DeleteObject {
                what: format!("Deployment {namespace}/{deployment}"),
                source,
            })?;
        if live.is_some() {
            return Err(Error::CleanupPending);
        }
    }
    publish(
        ctx,
        fd,
        EventType::Normal,
        "Cleanup",
        "the Flink cluster was deleted",
        "Delete",
    )
    .await;
    ctx.metrics
        .lifecycle("FlinkDeployment", &format!("{namespace}/{name}"), None);
    Ok(Action::await_change())
}

/// Deletes Flink's Kubernetes HA data of cluster `name`: its leader and checkpoint pointers live in labelled
/// ConfigMaps.
pub(super) async fn delete_ha_data(client: &kube::Client, namespace: &str, name: &str) -> Result<(), Error> {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let selector = format!("app={name},configmap-type=high-availability");
    let ha = configmaps
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::DeleteObject {
            what: "HA ConfigMaps".into(),
            source,
        })?;
    for cm in ha.items {
        delete::<ConfigMap>(client, namespace, &cm.name_any()).await?;
    }
    Ok(())
}

/// Deletes one object (absent is fine).
pub(super) async fn delete<K>(client: &kube::Client, namespace: &str, name: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let what = || format!("{} {namespace}/{name}", K::kind(&()));
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteObject { what: what(), source }),
    }
}

pub(super) async fn publish(
    ctx: &Context,
    fd: &FlinkDeployment,
    type_: EventType,
    reason: &str,
    note: &str,
    action: &str,
) {
    let event = EventNote {
        type_,
        reason,
        note,
        action,
    };
    if let Err(e) = ctx.recorder.publish(&event, &fd.object_ref(&())).await {
        warn!(error = %e, reason, "event lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applied_hash_is_the_sha256_of_the_objects_json_as_before_streaming() {
        let mut config = ConfigMap::default();
        config.metadata.name = Some("flink-config-fd".into());
        config.data = Some(BTreeMap::from([(
            "config.yaml".to_string(),
            "taskmanager.numberOfTaskSlots: 2\n\"quoted\": é\n".repeat(200),
        )]));
        // What the annotations of running clusters carry: hex of the first 12 bytes of SHA-256 of `to_vec`.
        let digest = Sha256::digest(serde_json::to_vec(&config).unwrap());
        let before: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash_of(&config), before);
        assert_eq!(before.len(), 24);
        config.data = None;
        assert_ne!(hash_of(&config), before, "another object, another hash");
    }
}
