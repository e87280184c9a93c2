//! FlinkDeployments at scale against a real API server: creates N copies of an example as fast as the
//! API server takes them and records, per resource, when its create was sent and answered, when its
//! JobManager Deployment appeared on a watch and when its status (`jobManagerDeploymentStatus`) did.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Namespace to create the FlinkDeployments in (the operator watches it).
    #[arg(long)]
    pub namespace: String,
    /// How many FlinkDeployments.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The FlinkDeployment to copy (names become PREFIX-0000, PREFIX-0001, ...).
    #[arg(long)]
    pub example: PathBuf,
    /// Name prefix of the copies.
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Pause between creates, in milliseconds (with --concurrency 1: one resource at a time on a quiet
    /// operator, instead of all at once).
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Give up waiting for Deployments and status after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Where the results go (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

/// Time since the start of the run, per resource name.
type Seen = Arc<Mutex<HashMap<String, Duration>>>;

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await.context("set KUBECONFIG")?;
    let gvk = GroupVersionKind::gvk("flink.apache.org", "v1beta1", "FlinkDeployment");
    let resource = ApiResource::from_gvk(&gvk);
    let flinks: Api<DynamicObject> = Api::namespaced_with(client.clone(), &args.namespace, &resource);
    let deployments: Api<Deployment> = Api::namespaced(client, &args.namespace);
    let template = crate::yaml_file(&args.example)?;
    let epoch = Instant::now();

    let deployment_seen: Seen = Arc::default();
    let status_seen: Seen = Arc::default();
    let (deployments_synced, deployment_task) = watch(deployments, epoch, deployment_seen.clone(), |d: &Deployment| {
        // The JobManager Deployment is owned by its FlinkDeployment.
        d.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "FlinkDeployment")
            .map(|o| o.name.clone())
    });
    let (status_synced, status_task) = watch(flinks.clone(), epoch, status_seen.clone(), |f: &DynamicObject| {
        f.data
            .pointer("/status/jobManagerDeploymentStatus")
            .and_then(|_| f.metadata.name.clone())
    });
    deployments_synced.await.context("Deployment watch failed")?;
    status_synced.await.context("FlinkDeployment watch failed")?;

    let creates: Vec<(String, Duration, Duration)> = futures::stream::iter(0..args.count)
        .map(|i| {
            let name = format!("{}-{i:04}", args.prefix);
            let pause = Duration::from_millis(args.interval_ms * i as u64);
            let mut object = template.clone();
            object["metadata"] = json!({"name": name, "namespace": args.namespace});
            let flinks = flinks.clone();
            async move {
                let object: DynamicObject = serde_json::from_value(object)?;
                tokio::time::sleep_until((epoch + pause).into()).await;
                let sent = epoch.elapsed();
                flinks
                    .create(&PostParams::default(), &object)
                    .await
                    .with_context(|| format!("cannot create {name}"))?;
                anyhow::Ok((name, sent, epoch.elapsed()))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect()
        .await?;
    let created = epoch.elapsed();

    // Only the resources of this run count (the namespace may hold others from an earlier run).
    let names: HashSet<String> = creates.iter().map(|c| c.0.clone()).collect();
    let ours = |seen: &Seen| -> HashMap<String, Duration> {
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        seen.into_iter().filter(|(name, _)| names.contains(name)).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while (ours(&deployment_seen).len() < args.count || ours(&status_seen).len() < args.count)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    deployment_task.abort();
    status_task.abort();

    let first_sent = creates.iter().map(|c| c.1).min().unwrap_or_default();
    let deployments = ours(&deployment_seen);
    let statuses = ours(&status_seen);
    let mut from_response = Vec::new();
    let mut from_request = Vec::new();
    for (name, sent, answered) in &creates {
        if let Some(seen) = deployments.get(name) {
            from_response.push(ms(*seen) - ms(*answered));
            from_request.push(ms(*seen) - ms(*sent));
        }
    }
    let last = |seen: &HashMap<String, Duration>| seen.values().max().map(|d| ms(*d - first_sent) / 1000.0);
    let result = json!({
        "count": args.count,
        "concurrency": args.concurrency,
        "interval_ms": args.interval_ms,
        "create_seconds": ms(created - first_sent) / 1000.0,
        "deployments_seen": deployments.len(),
        "statuses_seen": statuses.len(),
        "all_deployments_seconds": last(&deployments),
        "all_statuses_seconds": last(&statuses),
        "create_to_deployment_ms": {
            "from_create_response": summary(from_response),
            "from_create_request": summary(from_request),
        },
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    anyhow::ensure!(
        deployments.len() == args.count && statuses.len() == args.count,
        "after {}s: {} of {} Deployments, {} of {} statuses",
        args.timeout,
        deployments.len(),
        args.count,
        statuses.len(),
        args.count
    );
    Ok(())
}

/// Watches `api` and records when `key` first names a resource. The receiver fires once the initial list is in.
fn watch<K, F>(
    api: Api<K>,
    epoch: Instant,
    seen: Seen,
    key: F,
) -> (tokio::sync::oneshot::Receiver<()>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    F: Fn(&K) -> Option<String> + Send + 'static,
{
    let (synced, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut synced = Some(synced);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let at = epoch.elapsed();
            match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    if let (Some(name), Ok(mut seen)) = (key(&object), seen.lock()) {
                        seen.entry(name).or_insert(at);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(synced) = synced.take() {
                        let _ = synced.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => eprintln!("watch error (retried): {e}"),
            }
        }
    });
    (ready, task)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median, p90, p99 and max of `values` (milliseconds).
fn summary(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let index = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        (values[index] * 10.0).round() / 10.0
    };
    json!({"n": values.len(), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)})
}
