//! Controllers for FlinkDeployment and FlinkSessionJob.
//!
//! This first cut watches both kinds (readiness waits for every watch to sync) and runs the shared
//! validation, so that an invalid spec admitted while the webhook was off is reported in
//! `status.error` and as a Warning `ValidationError` event.

mod application;
pub mod cache;
mod decide;
mod deployment;
pub mod events;
pub mod job;
mod runner;
mod session_job;
pub mod slim;
pub mod status;
mod triggers;

pub use runner::Action;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, reflector::reflector as reflect, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};

use crate::crd::{FlinkConfiguration, FlinkDeployment, FlinkSessionJob};
use crate::flink::{JarFetcher, RestClient};
use crate::resources;
use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::resources::ResourceCollector;

/// Name this operator reports events and field ownership under.
pub const MANAGER: &str = "flink-operator";

/// What every reconciliation shares.
pub struct Context {
    pub client: Client,
    pub recorder: events::Recorder,
    pub defaults: FlinkConfiguration,
    pub metrics: Metrics,
    pub rest: RestClient,
    /// Fetches FlinkSessionJob jars for upload.
    pub jars: JarFetcher,
    /// REST address template of a cluster (see `flink::rest_url`).
    pub rest_url_template: String,
    /// How often a resource is looked at again without events (`kubernetes.operator.reconcile.interval`).
    pub resync: Duration,
    /// What the watches last saw of the FlinkDeployments and the objects the operator owns.
    pub cache: cache::Cache,
}

/// Operator settings the controllers need.
pub struct Settings {
    /// The operator's default Flink configuration.
    pub defaults: FlinkConfiguration,
    pub rest: RestClient,
    pub jars: JarFetcher,
    pub rest_url_template: String,
    pub resync: Duration,
    /// Reconciliations running at once per controller and watch scope (0: no limit).
    pub reconcile_parallelism: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("cannot publish event: {0}")]
    PublishEvent(#[source] kube::Error),
    #[error("object has no namespace")]
    NoNamespace,
}

/// Which namespaces to watch: all, or a list.
#[derive(Clone, Debug)]
pub enum Namespaces {
    All,
    Only(Vec<String>),
}

impl Namespaces {
    fn apis<K>(&self, client: &Client) -> Vec<(String, Api<K>)>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self {
            Namespaces::All => vec![("*".to_string(), Api::all(client.clone()))],
            Namespaces::Only(list) => list
                .iter()
                .map(|ns| (ns.clone(), Api::namespaced(client.clone(), ns)))
                .collect(),
        }
    }
}

/// Readiness gate names for the watches of `namespaces`.
pub fn watch_gates(namespaces: &Namespaces) -> Vec<String> {
    let scopes = match namespaces {
        Namespaces::All => vec!["*".to_string()],
        Namespaces::Only(list) => list.clone(),
    };
    let mut gates = vec!["crds".to_string()];
    for kind in [
        "flinkdeployments",
        "deployments",
        "services",
        "configmaps",
        "flinksessionjobs",
    ] {
        gates.extend(scopes.iter().map(|ns| format!("watch:{kind}:{ns}")));
    }
    gates
}

/// Runs every controller until `shutdown`; marks each watch's readiness gate once it has synced. Dropping the
/// future aborts every task it started (leader election relies on that to stop reconciling at once).
pub async fn run(
    client: Client,
    namespaces: Namespaces,
    settings: Settings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) {
    if !wait_for_crds(&client, &namespaces, &shutdown).await {
        return;
    }
    health.set_ready("crds", true);
    let mut tasks = tokio::task::JoinSet::new();
    let mut cache = cache::Cache::default();
    let mut deployment_controllers = Vec::new();
    for (ns, api) in namespaces.apis::<slim::Slim<FlinkDeployment>>(&client) {
        // Owned Deployments wake their FlinkDeployment when their status changes, owned Services and
        // ConfigMaps when someone changes or deletes them; each watch counts for readiness like the main one.
        // Reconciliations read these objects from the watches' stores (`cache`).
        let owned = OwnedWatch {
            client: &client,
            namespaces: &namespaces,
            ns: &ns,
            health: &health,
            shutdown: &shutdown,
        };
        let (owned_deployments, store) =
            owned.watch::<Deployment>("deployments", triggers::deployment_fingerprint, &mut tasks);
        cache.deployments.push(store);
        // Services and ConfigMaps are read for their applied hash only: their metadata is enough.
        let (owned_services, store) =
            owned.watch::<PartialObjectMeta<Service>>("services", triggers::applied_fingerprint, &mut tasks);
        cache.services.push(store);
        let (owned_configmaps, store) =
            owned.watch::<PartialObjectMeta<ConfigMap>>("configmaps", triggers::applied_fingerprint, &mut tasks);
        cache.config_maps.push(store);
        let (store, writer) = reflector::store::<FlinkDeployment>();
        // The store sees every event; only what a reconciliation acts on wakes one (see `triggers`).
        let mut memo = triggers::Memo::new(triggers::flink_deployment_fingerprint);
        let primary = reflect(
            writer,
            watcher(api, watcher::Config::default())
                .backoff(WatchBackoff::default())
                .map_ok(slim::unwrap_event)
                .modify(cache::slim),
        )
        .flat_map(move |event| {
            let due: Vec<ObjectRef<FlinkDeployment>> = match event {
                Ok(event) => memo
                    .primary(event, triggers::lacks_finalizer)
                    .iter()
                    .map(ObjectRef::from_obj)
                    .collect(),
                Err(e) => {
                    warn!(error = %e, "watch of FlinkDeployments failed; retrying");
                    Vec::new()
                }
            };
            futures::stream::iter(due)
        });
        let trigger = futures::stream::select_all([
            primary.boxed(),
            owners_of(owned_deployments),
            owners_of(owned_services),
            owners_of(owned_configmaps),
        ]);
        cache.flink_deployments.push(store.clone());
        tasks.spawn(mark_synced(
            store.clone(),
            health.clone(),
            format!("watch:flinkdeployments:{ns}"),
            shutdown.clone(),
        ));
        deployment_controllers.push((trigger, store));
    }
    let mut session_job_controllers = Vec::new();
    let mut session_job_stores = Vec::new();
    for (ns, api) in namespaces.apis::<FlinkSessionJob>(&client) {
        let (store, writer) = reflector::store::<FlinkSessionJob>();
        let mut memo = triggers::Memo::new(|_: &FlinkSessionJob| 0);
        let trigger = reflect(
            writer,
            watcher(api, watcher::Config::default()).backoff(WatchBackoff::default()),
        )
        .flat_map(move |event| {
            let due: Vec<ObjectRef<FlinkSessionJob>> = match event {
                Ok(event) => memo.touched(event).iter().map(ObjectRef::from_obj).collect(),
                Err(e) => {
                    warn!(error = %e, "watch of FlinkSessionJobs failed; retrying");
                    Vec::new()
                }
            };
            futures::stream::iter(due)
        });
        session_job_stores.push(store.clone());
        tasks.spawn(mark_synced(
            store.clone(),
            health.clone(),
            format!("watch:flinksessionjobs:{ns}"),
            shutdown.clone(),
        ));
        session_job_controllers.push((trigger, store));
    }
    let collector = ResourceCollector::new(cache.flink_deployments.clone(), session_job_stores);
    if let Err(e) = metrics.register(Box::new(collector)) {
        warn!(error = %e, "resource gauges unavailable");
    }

    let ctx = Arc::new(Context {
        recorder: events::Recorder::new(client.clone(), MANAGER, std::env::var("POD_NAME").ok()),
        client: client.clone(),
        defaults: settings.defaults,
        metrics,
        rest: settings.rest,
        jars: settings.jars,
        rest_url_template: settings.rest_url_template,
        resync: settings.resync,
        cache,
    });
    let parallelism = settings.reconcile_parallelism;
    for (trigger, store) in deployment_controllers {
        tasks.spawn(runner::run(
            trigger,
            store,
            parallelism,
            shutdown.clone(),
            deployment::reconcile,
            deployment::error_policy,
            ctx.clone(),
        ));
    }
    for (trigger, store) in session_job_controllers {
        tasks.spawn(runner::run(
            trigger,
            store,
            parallelism,
            shutdown.clone(),
            session_job::reconcile,
            session_job::error_policy,
            ctx.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// The FlinkDeployments that own the objects of `events` (by owner reference).
fn owners_of<K>(events: OwnedEvents<K>) -> futures::stream::BoxStream<'static, ObjectRef<FlinkDeployment>>
where
    K: Resource + Send + 'static,
{
    events
        .flat_map(|event| {
            let owners: Vec<ObjectRef<FlinkDeployment>> = match event {
                Ok(object) => {
                    let namespace = object.meta().namespace.clone();
                    object
                        .owner_references()
                        .iter()
                        .filter_map(|owner| ObjectRef::from_owner_ref(namespace.as_deref(), owner, ()))
                        .collect()
                }
                Err(_) => Vec::new(),
            };
            futures::stream::iter(owners)
        })
        .boxed()
}

type OwnedEvents<K> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<K, watcher::Error>> + Send>>;

/// Where the watches of owned objects of one namespace scope run.
struct OwnedWatch<'a> {
    client: &'a Client,
    namespaces: &'a Namespaces,
    ns: &'a str,
    health: &'a Health,
    shutdown: &'a CancellationToken,
}

impl OwnedWatch<'_> {
    /// A watch of the objects of `kind` the operator manages (by label) in `ns`, and the store it fills;
    /// the task that marks its readiness gate once it has synced joins `tasks`. An object wakes its owner
    /// when its `fingerprint` changes or it is deleted (see `triggers`).
    fn watch<K>(
        &self,
        kind: &str,
        fingerprint: fn(&K) -> u64,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> (OwnedEvents<K>, Store<K>)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + slim::SlimDecode
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let api: Api<slim::Slim<K>> = match self.namespaces {
            Namespaces::All => Api::all(self.client.clone()),
            Namespaces::Only(_) => Api::namespaced(self.client.clone(), self.ns),
        };
        let managed =
            watcher::Config::default().labels(&format!("{}={}", resources::MANAGED_BY_LABEL, resources::MANAGED_BY));
        let (store, writer) = reflector::store::<K>();
        // This watch retries on its own; its errors are logged here rather than passed to the controller,
        // whose one backoff all its watches share: every owned watch's error during an API server outage
        // would lengthen the wait of all of them (an 8 s outage cost 70 s before this).
        let mut memo = triggers::Memo::new(fingerprint);
        let events = reflect(
            writer,
            watcher(api, managed)
                .backoff(WatchBackoff::default())
                .map_ok(slim::unwrap_event)
                .modify(cache::slim),
        )
        .flat_map(move |event| {
            let woken: Vec<Result<K, watcher::Error>> = match event {
                Ok(event) => memo.owned(event).into_iter().map(Ok).collect(),
                Err(e) => {
                    warn!(error = %e, "watch of owned objects failed; retrying");
                    Vec::new()
                }
            };
            futures::stream::iter(woken)
        });
        tasks.spawn(mark_synced(
            store.clone(),
            self.health.clone(),
            format!("watch:{kind}:{}", self.ns),
            self.shutdown.clone(),
        ));
        (Box::pin(events), store)
    }
}

/// How the watches retry after an error: 0.5 s, doubled up to 8 s, back to 0.5 s once an event arrives.
/// kube-runtime's default (client-go's 0.8 s to 30 s) would leave the operator blind for up to 30 s after an
/// API server comes back; a relist every 8 s at most from one operator is no load for an API server.
#[derive(Clone, Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    pub const FIRST: Duration = Duration::from_millis(500);
    pub const MAX: Duration = Duration::from_secs(8);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

async fn mark_synced<K>(
    store: kube::runtime::reflector::Store<K>,
    health: Health,
    gate: String,
    shutdown: CancellationToken,
) where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // The store's readiness signal keeps one waker at a time and the controller waits on it too, so
    // re-poll it on a short interval rather than waiting once.
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ready = tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()) => {
                if let Ok(Ok(())) = ready {
                    info!(gate, "watch synced");
                    health.set_ready(&gate, true);
                    return;
                }
            }
        }
    }
}

/// What a reconciliation under a finalizer is to do: deploy, or clean up before the resource may go.
pub(crate) enum Finalizer<K> {
    Apply(Arc<K>),
    Cleanup(Arc<K>),
}

/// Runs `reconcile` under `finalizer`: adds the finalizer first, so that a new resource is deployed in the same
/// reconciliation (`ensure_finalizer`); on deletion runs the cleanup and then removes the finalizer, so that the
/// resource goes only once its cleanup succeeded. `error` wraps a failure to add or remove the finalizer.
pub(crate) async fn with_finalizer<K, E, Fut>(
    api: &Api<K>,
    finalizer: &str,
    object: Arc<K>,
    reconcile: impl FnOnce(Finalizer<K>) -> Fut,
    error: fn(String) -> E,
) -> Result<Action, E>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    Fut: std::future::Future<Output = Result<Action, E>>,
{
    let object = ensure_finalizer(api, object, finalizer)
        .await
        .map_err(|e| error(format!("cannot add the finalizer: {e}")))?;
    let index = object.finalizers().iter().position(|f| f == finalizer);
    match (object.meta().deletion_timestamp.is_some(), index) {
        (false, Some(_)) => reconcile(Finalizer::Apply(object)).await,
        (true, Some(index)) => {
            let action = reconcile(Finalizer::Cleanup(object.clone())).await?;
            let removed = remove_finalizer(api, &object, finalizer, index).await;
            removal_outcome(removed).map_err(|e| error(format!("cannot remove the finalizer: {e}")))?;
            Ok(action)
        }
        // Being deleted and not ours (any more), or nameless: nothing to do.
        _ => Ok(Action::await_change()),
    }
}

/// Removes `finalizer`, at `index` of the finalizers; the patch fails, and the cleanup is run again, if the
/// finalizers changed meanwhile (it never removes someone else's).
async fn remove_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str, index: usize) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{PatchOperation, RemoveOperation, TestOperation};
    let Some(name) = object.meta().name.clone() else {
        return Ok(());
    };
    let at = PointerBuf::from_tokens(["metadata".to_string(), "finalizers".to_string(), index.to_string()]);
    let patch = json_patch::Patch(vec![
        PatchOperation::Test(TestOperation {
            path: at.clone(),
            value: serde_json::json!(finalizer),
        }),
        PatchOperation::Remove(RemoveOperation { path: at }),
    ]);
    slim::patch_metadata(
        api,
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Json::<()>(patch),
    )
    .await
    .map(|_| ())
}

/// A finalizer removed from a resource that is gone already is a finished cleanup: a second cleanup, started
/// from a cache that still showed the resource, found the deletion done (seen when a session cluster was
/// deleted on the node: a Warning event on the deleted resource and a failed reconcile).
fn removal_outcome(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

/// Adds `finalizer` to an object that lacks it and is not being deleted, and returns the object as patched, so
/// that the same reconciliation goes on to deploy. kube's `finalizer` adds it and stops, leaving the work to
/// the reconciliation its patch triggers: a round trip through the watch and the queue for every new resource.
/// The patch is kube's own: it fails, and the reconciliation is retried, if the finalizers changed meanwhile.
async fn ensure_finalizer<K>(api: &Api<K>, object: Arc<K>, finalizer: &str) -> Result<Arc<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, PatchOperation, TestOperation};
    let finalizers = object.finalizers();
    if object.meta().deletion_timestamp.is_some() || finalizers.iter().any(|f| f == finalizer) {
        return Ok(object);
    }
    let Some(name) = object.meta().name.clone() else {
        return Ok(object);
    };
    let (expected, add, value) = if finalizers.is_empty() {
        (
            serde_json::Value::Null,
            PointerBuf::from_tokens(["metadata", "finalizers"]),
            serde_json::json!([finalizer]),
        )
    } else {
        (
            serde_json::json!(finalizers),
            PointerBuf::from_tokens(["metadata", "finalizers", "-"]),
            serde_json::json!(finalizer),
        )
    };
    let patch = json_patch::Patch(vec![
        PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["metadata", "finalizers"]),
            value: expected,
        }),
        PatchOperation::Add(AddOperation { path: add, value }),
    ]);
    // A finalizer patch changes metadata only: the API server answers with that (less to encode and decode
    // than the whole resource), laid over the watch's copy.
    let patched = slim::patch_metadata(
        api,
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Json::<()>(patch),
    )
    .await?;
    let mut object = (*object).clone();
    *object.meta_mut() = patched;
    cache::slim(&mut object);
    Ok(Arc::new(object))
}

/// Waits until both CRDs are served; returns false if shutdown came first. The operator stays unready
/// meanwhile and says what to do.
async fn wait_for_crds(client: &Client, namespaces: &Namespaces, shutdown: &CancellationToken) -> bool {
    let mut logged = false;
    loop {
        let deployments = first_api::<FlinkDeployment>(client, namespaces);
        let jobs = first_api::<FlinkSessionJob>(client, namespaces);
        let probe = ListParams::default().limit(1);
        match (
            deployments.list_metadata(&probe).await,
            jobs.list_metadata(&probe).await,
        ) {
            (Ok(_), Ok(_)) => return true,
            (a, b) => {
                let why = a.err().or(b.err()).map(|e| e.to_string()).unwrap_or_default();
                if !logged {
                    warn!(
                        error = %why,
                        "waiting for the CRDs flinkdeployments.flink.apache.org and flinksessionjobs.flink.apache.org \
                         (install them with: flink-operator crds | kubectl apply -f -)"
                    );
                    logged = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

fn first_api<K>(client: &Client, namespaces: &Namespaces) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match namespaces {
        Namespaces::Only(list) if !list.is_empty() => Api::namespaced(client.clone(), &list[0]),
        _ => Api::all(client.clone()),
    }
}

/// A Context whose client points at a closed port: for tests that build reconciliation futures without
/// running them.
#[cfg(test)]
pub(crate) fn test_context() -> Arc<Context> {
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a literal URL"));
    let client = Client::try_from(config).expect("a client from a plain config");
    let timeout = Duration::from_secs(1);
    Arc::new(Context {
        recorder: events::Recorder::new(client.clone(), MANAGER, None),
        client,
        defaults: FlinkConfiguration::new(),
        metrics: Metrics::new().expect("fresh metrics register"),
        rest: RestClient::new(timeout),
        jars: JarFetcher::new(None, timeout).expect("a fetcher without extra CAs"),
        rest_url_template: String::new(),
        resync: Duration::from_secs(60),
        cache: cache::Cache::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff;

    /// Every reconciliation is a task whose future is moved into place at spawn: a large one costs a copy
    /// and fresh pages each time (seen in the profile as memmove and page faults). The parts of a
    /// reconciliation that are rarely all needed at once are boxed, so the task stays small.
    #[tokio::test]
    async fn a_reconciliation_task_stays_small_and_no_part_needs_a_large_allocation() {
        let ctx = test_context();
        let fd: crate::crd::FlinkDeployment = serde_yaml::from_str(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: a, namespace: b}\n\
             spec: {image: flink, flinkVersion: v1_16, jobManager: {resource: {memory: 1g, cpu: 1}}, \
             taskManager: {resource: {memory: 1g, cpu: 1}}}\n",
        )
        .expect("a literal FlinkDeployment");
        let sj: crate::crd::FlinkSessionJob = serde_yaml::from_str(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: a, namespace: b}\n\
             spec: {deploymentName: s, job: {jarURI: 'http://x/a.jar'}}\n",
        )
        .expect("a literal FlinkSessionJob");
        let sizes = [
            (
                "deployment::reconcile",
                std::mem::size_of_val(&deployment::reconcile(Arc::new(fd.clone()), ctx.clone())),
            ),
            (
                "session_job::reconcile",
                std::mem::size_of_val(&session_job::reconcile(Arc::new(sj), ctx.clone())),
            ),
            (
                "application::reconcile",
                std::mem::size_of_val(&application::reconcile(&fd, &ctx, "b", Ok(()))),
            ),
        ];
        // Unboxed, these were 40.6, 10.1 and 30.6 KB (debug build); the bounds leave room for growth but not
        // for an unboxed cluster build or API call.
        let bounds = [8 * 1024, 12 * 1024, 12 * 1024];
        for ((name, size), bound) in sizes.into_iter().zip(bounds) {
            assert!(
                size <= bound,
                "{name}'s future is {size} bytes, over {bound}: box the part that grew"
            );
        }
    }

    #[test]
    fn a_finalizer_removed_from_an_object_already_gone_is_a_finished_cleanup() {
        let api_error = |code| {
            kube::Error::Api(
                kube::core::Status {
                    code,
                    ..Default::default()
                }
                .boxed(),
            )
        };
        assert!(removal_outcome(Err(api_error(404))).is_ok());
        // A conflict (the finalizers changed meanwhile) or any other failure is retried.
        assert!(removal_outcome(Err(api_error(409))).is_err());
        assert!(removal_outcome(Err(api_error(422))).is_err());
        assert!(removal_outcome(Ok(())).is_ok());
    }

    #[test]
    fn watch_backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u64> = backoff.by_ref().take(7).map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(WatchBackoff::FIRST));
    }
}
