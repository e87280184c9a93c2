//! The controller loop: which resource to reconcile when, at most `parallelism` at once and never one resource
//! twice at once.
//!
//! kube-runtime's `Controller` keeps its reconciliations in flight in a map that it polls whole each time any
//! one of them wakes it: with upstream's 200 in flight that was the operator's one named hot spot in the
//! 1000-resource benchmark (`CancelableJoinHandle::poll` 7 % self time, BENCHMARKS.md). Here the schedule is a
//! plain data structure (`Queue`, pure, unit-tested) and the reconciliations run as tasks of a `JoinSet`, which
//! hands back only the ones that finished.
//!
//! Semantics kept from kube-runtime: a resource asked for while it is being reconciled runs again right after;
//! of two requests for one resource the earlier wins; nothing starts before the resource store has synced; on
//! shutdown nothing new starts and the running reconciliations finish; dropping the loop aborts them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// What a reconciliation asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Look again after `duration`, or earlier if an event asks for it.
    pub const fn requeue(duration: Duration) -> Self {
        Action {
            requeue_after: Some(duration),
        }
    }

    /// Look again only when an event asks for it.
    pub const fn await_change() -> Self {
        Action { requeue_after: None }
    }

    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// How long a reconciliation that panicked waits before it is tried again.
const AFTER_PANIC: Duration = Duration::from_secs(10);

/// How often readiness of the store is checked while it has not synced (its signal keeps one waker only, which
/// the readiness gate's task also uses).
const STORE_READY_POLL: Duration = Duration::from_millis(200);

/// The schedule of one controller: when each resource is due, which are due but wait for a free slot, and which
/// are running (with any request that arrived meanwhile).
#[derive(Debug)]
pub struct Queue<T> {
    /// Reconciliations at once; 0: no limit.
    limit: usize,
    /// Requests not yet due, by time and then arrival.
    timers: BTreeMap<(Instant, u64), T>,
    deadline_of: HashMap<T, (Instant, u64)>,
    arrivals: u64,
    /// Due, in the order they became due, waiting for a slot.
    ready: VecDeque<T>,
    ready_set: HashSet<T>,
    /// Running, each with the earliest request that arrived while it ran.
    running: HashMap<T, Option<Instant>>,
}

impl<T: Hash + Eq + Clone> Queue<T> {
    pub fn new(limit: u16) -> Self {
        Queue {
            limit: usize::from(limit),
            timers: BTreeMap::new(),
            deadline_of: HashMap::new(),
            arrivals: 0,
            ready: VecDeque::new(),
            ready_set: HashSet::new(),
            running: HashMap::new(),
        }
    }

    /// Asks for `key` to be reconciled at `at`; an earlier request for it stands.
    pub fn request(&mut self, key: T, at: Instant) {
        if let Some(rerun) = self.running.get_mut(&key) {
            *rerun = Some(rerun.map_or(at, |earlier| earlier.min(at)));
            return;
        }
        if self.ready_set.contains(&key) {
            return;
        }
        if let Some(&(deadline, arrival)) = self.deadline_of.get(&key) {
            if deadline <= at {
                return;
            }
            self.timers.remove(&(deadline, arrival));
        }
        self.arrivals += 1;
        self.timers.insert((at, self.arrivals), key.clone());
        self.deadline_of.insert(key, (at, self.arrivals));
    }

    /// When the next request not yet due falls due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The resources to start now, marked running: the due ones, oldest first, as many as slots are free.
    pub fn start_due(&mut self, now: Instant) -> Vec<T> {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.deadline_of.remove(&key);
            self.ready_set.insert(key.clone());
            self.ready.push_back(key);
        }
        let mut started = Vec::new();
        while self.limit == 0 || self.running.len() < self.limit {
            let Some(key) = self.ready.pop_front() else { break };
            self.ready_set.remove(&key);
            self.running.insert(key.clone(), None);
            started.push(key);
        }
        started
    }

    /// `key`'s reconciliation ended and asked to run again at `next`, if at all; a request that arrived while it
    /// ran stands too.
    pub fn finished(&mut self, key: &T, next: Option<Instant>) {
        let rerun = self.running.remove(key).flatten();
        let at = match (rerun, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = at {
            self.request(key.clone(), at);
        }
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.running.len()
    }
}

/// Runs `reconcile` for the resources `triggers` names (and for those it asks to see again) until `shutdown`,
/// then lets the running reconciliations finish. A failed reconciliation is logged and retried as
/// `error_policy` says.
#[allow(clippy::too_many_arguments)]
pub async fn run<K, C, E, Rec, Fut, Pol>(
    triggers: impl Stream<Item = ObjectRef<K>> + Send,
    store: Store<K>,
    parallelism: u16,
    shutdown: CancellationToken,
    reconcile: Rec,
    error_policy: Pol,
    ctx: Arc<C>,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    Rec: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + Copy + 'static,
{
    let mut triggers = std::pin::pin!(triggers.fuse());
    let mut queue = Queue::new(parallelism);
    let mut tasks = tokio::task::JoinSet::new();
    let mut running_keys: HashMap<tokio::task::Id, ObjectRef<K>> = HashMap::new();
    let reconcile = Arc::new(reconcile);
    let mut synced = false;
    let mut stopping = false;
    loop {
        if !synced {
            synced = matches!(store.wait_until_ready().now_or_never(), Some(Ok(())));
        }
        if synced && !stopping {
            let now = Instant::now();
            for key in queue.start_due(now) {
                // Deleted since it was asked for: nothing to do (a deletion the operator must act on keeps the
                // resource, under its finalizer, until the cleanup removes that).
                let Some(object) = store.get(&key) else {
                    queue.finished(&key, None);
                    continue;
                };
                let reconcile = reconcile.clone();
                let ctx = ctx.clone();
                let handle = tasks.spawn(async move {
                    match reconcile(object.clone(), ctx.clone()).await {
                        Ok(action) => action,
                        Err(e) => {
                            warn!(error = %e, "reconcile failed");
                            error_policy(object, &e, ctx)
                        }
                    }
                });
                running_keys.insert(handle.id(), key);
            }
        }
        if stopping && tasks.is_empty() {
            return;
        }
        let deadline = queue.next_deadline();
        tokio::select! {
            _ = shutdown.cancelled(), if !stopping => stopping = true,
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, next) = match done {
                    Ok((id, action)) => (id, action.requeue_after().map(|after| Instant::now() + after)),
                    Err(e) => {
                        if e.is_panic() {
                            error!(error = %e, "reconcile panicked; retrying");
                        }
                        (e.id(), Some(Instant::now() + AFTER_PANIC))
                    }
                };
                if let Some(key) = running_keys.remove(&id) {
                    debug!(object = %key, "reconciled");
                    queue.finished(&key, next);
                }
            }
            next = triggers.next(), if !stopping => match next {
                Some(key) => queue.request(key, Instant::now()),
                // The watches retry forever; their end is the end of the process.
                None => stopping = true,
            },
            _ = sleep_until(deadline), if synced && !stopping && deadline.is_some() => {}
            _ = tokio::time::sleep(STORE_READY_POLL), if !synced && !stopping => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_request_falls_due_at_its_time_and_not_before() {
        let base = Instant::now();
        let mut queue = Queue::new(0);
        queue.request("a", at(base, 100));
        assert_eq!(queue.next_deadline(), Some(at(base, 100)));
        assert!(queue.start_due(at(base, 99)).is_empty());
        assert_eq!(queue.start_due(at(base, 100)), ["a"]);
        assert_eq!(queue.next_deadline(), None);
        assert_eq!(queue.running(), 1);
    }

    #[test]
    fn of_two_requests_for_one_resource_the_earlier_wins() {
        let base = Instant::now();
        let mut queue = Queue::new(0);
        queue.request("a", at(base, 500));
        queue.request("a", at(base, 100));
        queue.request("a", at(base, 900));
        assert_eq!(queue.next_deadline(), Some(at(base, 100)));
        assert_eq!(queue.start_due(at(base, 100)), ["a"]);
        // The later requests went with it: nothing is left to run.
        assert!(queue.start_due(at(base, 1000)).is_empty());
    }

    #[test]
    fn a_request_while_running_reruns_right_after_and_never_alongside() {
        let base = Instant::now();
        let mut queue = Queue::new(0);
        queue.request("a", base);
        assert_eq!(queue.start_due(base), ["a"]);
        queue.request("a", at(base, 10));
        assert!(queue.start_due(at(base, 20)).is_empty(), "must not run twice at once");
        // It asked for 60 s, but an event came in while it ran: the event wins.
        queue.finished(&"a", Some(at(base, 60_000)));
        assert_eq!(queue.start_due(at(base, 20)), ["a"]);
    }

    #[test]
    fn an_ended_reconciliation_runs_again_when_it_asked_to_or_not_at_all() {
        let base = Instant::now();
        let mut queue = Queue::new(0);
        queue.request("a", base);
        queue.request("b", base);
        assert_eq!(queue.start_due(base).len(), 2);
        queue.finished(&"a", Some(at(base, 4000)));
        queue.finished(&"b", None);
        assert_eq!(queue.next_deadline(), Some(at(base, 4000)));
        assert_eq!(queue.start_due(at(base, 4000)), ["a"]);
        assert!(queue.start_due(at(base, 100_000)).is_empty());
    }

    #[test]
    fn no_more_than_the_limit_run_and_the_due_ones_wait_in_order() {
        let base = Instant::now();
        let mut queue = Queue::new(2);
        for (key, ms) in [("c", 3), ("a", 1), ("b", 2), ("d", 4)] {
            queue.request(key, at(base, ms));
        }
        assert_eq!(queue.start_due(at(base, 10)), ["a", "b"]);
        // Asking again for one that waits for a slot keeps its place.
        queue.request("d", at(base, 10));
        assert!(queue.start_due(at(base, 10)).is_empty());
        queue.finished(&"a", None);
        assert_eq!(queue.start_due(at(base, 10)), ["c"]);
        queue.finished(&"b", None);
        queue.finished(&"c", None);
        assert_eq!(queue.start_due(at(base, 10)), ["d"]);
        assert_eq!(queue.running(), 1);
    }

    #[test]
    fn requeue_keeps_its_limit_of_one_entry_per_resource_under_churn() {
        let base = Instant::now();
        let mut queue = Queue::new(0);
        for i in 0..1000u64 {
            queue.request(i % 10, at(base, 1000 - i));
        }
        assert_eq!(queue.timers.len(), 10);
        assert_eq!(queue.deadline_of.len(), 10);
        let mut started = queue.start_due(at(base, 1000));
        started.sort_unstable();
        assert_eq!(started, (0..10).collect::<Vec<_>>());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("failed")]
    struct Failed;

    fn config_map(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
        let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
        cm.metadata.name = Some(name.to_string());
        cm.metadata.namespace = Some("ns".to_string());
        cm
    }

    /// What the test's reconciliations saw.
    #[derive(Default)]
    struct Probe {
        /// The names reconciled, in order.
        calls: std::sync::Mutex<Vec<String>>,
        /// The names being reconciled now.
        running: std::sync::Mutex<HashSet<String>>,
        /// A name was reconciled twice at once.
        overlapped: std::sync::atomic::AtomicBool,
    }

    impl Probe {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }
    }

    /// The first reconciliation of each resource fails, the later ones succeed; each takes 100 ms, long enough for
    /// the triggers the test sends meanwhile to arrive while it runs.
    async fn reconcile_probe(
        cm: Arc<k8s_openapi::api::core::v1::ConfigMap>,
        probe: Arc<Probe>,
    ) -> Result<Action, Failed> {
        let name = cm.metadata.name.clone().unwrap_or_default();
        let first_at_once = probe.running.lock().map_err(|_| Failed)?.insert(name.clone());
        if !first_at_once {
            probe.overlapped.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let attempt = {
            let mut calls = probe.calls.lock().map_err(|_| Failed)?;
            calls.push(name.clone());
            calls.iter().filter(|n| **n == name).count()
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        probe.running.lock().map_err(|_| Failed)?.remove(&name);
        if attempt == 1 {
            Err(Failed)
        } else {
            Ok(Action::await_change())
        }
    }

    async fn wait_for(probe: &Probe, calls: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe.calls().len() < calls {
            assert!(Instant::now() < deadline, "reconciliations seen: {:?}", probe.calls());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The loop end to end on a real store and a trigger channel: nothing before the store synced, the error
    /// policy's retry, triggers for a running resource folded into one rerun, never one resource twice at once,
    /// a resource gone from the store skipped, and shutdown waiting for the running reconciliation.
    #[tokio::test]
    async fn the_loop_reconciles_retries_and_stops_gracefully() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::runtime::watcher::Event;
        use std::sync::atomic::Ordering::SeqCst;
        let (store, mut writer) = kube::runtime::reflector::store::<ConfigMap>();
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let probe = Arc::new(Probe::default());
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn(run(
            rx,
            store,
            4,
            shutdown.clone(),
            reconcile_probe,
            |_, _: &Failed, _| Action::requeue(Duration::from_millis(50)),
            probe.clone(),
        ));
        let send = |name: &str| {
            let key = ObjectRef::<ConfigMap>::new(name).within("ns");
            assert!(tx.unbounded_send(key).is_ok());
        };
        send("a");
        // Absence can only be waited for: a loop that did not wait for the store would start within a few ms.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(probe.calls().is_empty(), "started before the store synced");
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(config_map("a")));
        writer.apply_watcher_event(&Event::InitApply(config_map("b")));
        writer.apply_watcher_event(&Event::InitDone);
        // "a" fails once and is retried by the error policy alone.
        wait_for(&probe, 2).await;
        assert_eq!(probe.calls(), ["a", "a"]);
        // "b" fails, and three more triggers arrive while it runs: one rerun follows, never a second at once.
        send("b");
        wait_for(&probe, 3).await;
        for name in ["b", "gone", "b", "b"] {
            send(name);
        }
        wait_for(&probe, 4).await;
        assert_eq!(probe.calls(), ["a", "a", "b", "b"]);
        send("a");
        wait_for(&probe, 5).await;
        shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), loop_task).await;
        assert!(matches!(stopped, Ok(Ok(()))), "the loop did not stop cleanly");
        let still_running = probe.running.lock().map(|r| r.len()).unwrap_or(usize::MAX);
        assert_eq!(still_running, 0, "shutdown waited for the running ones");
        assert!(
            !probe.overlapped.load(SeqCst),
            "a resource was reconciled twice at once"
        );
        assert_eq!(probe.calls(), ["a", "a", "b", "b", "a"]);
    }
}
