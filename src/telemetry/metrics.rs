//! The operator's Prometheus registry: one per process, shared through the context.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric the operator exports (names prefixed `flink_operator_`).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Admission requests by endpoint, operation, kind and outcome.
    pub webhook_requests: IntCounterVec,
    /// Admission handling time by endpoint and kind.
    pub webhook_duration: HistogramVec,
    /// Requests that were not AdmissionReviews (HTTP 400), by endpoint.
    pub webhook_malformed: IntCounterVec,
    /// Reconciliations by kind and result (ok, error).
    pub reconciliations: IntCounterVec,
    /// Reconciliation time by kind.
    pub reconcile_duration: HistogramVec,
    /// Lifecycle state changes, by kind and the states left and entered.
    pub lifecycle_transitions: IntCounterVec,
    /// Time a resource spent in a lifecycle state before leaving it, by kind and state.
    pub lifecycle_state_seconds: HistogramVec,
    /// Writes (create, update, patch, delete) the controllers sent to the API server, by verb; lease
    /// renewals are not counted.
    pub api_writes: IntCounterVec,
    /// With leader election: 1 while this replica holds the lease, 0 on a standby.
    pub leader: IntGauge,
    /// Times this replica acquired the lease.
    pub leader_acquisitions: IntCounter,
    /// Each resource's current lifecycle state and since when (this process's view).
    lifecycle_clock: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>>,
    /// Process metrics (process_* names are conventional and stay unprefixed for standard dashboards).
    process: Registry,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("flink_operator".to_string()), None)?;
        let webhook_requests = IntCounterVec::new(
            Opts::new(
                "webhook_requests_total",
                "Admission requests answered, by endpoint, operation, kind and outcome",
            ),
            &["endpoint", "operation", "kind", "allowed"],
        )?;
        let webhook_duration = HistogramVec::new(
            HistogramOpts::new(
                "webhook_request_duration_seconds",
                "Time to decide an admission request",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1,
            ]),
            &["endpoint", "kind"],
        )?;
        let webhook_malformed = IntCounterVec::new(
            Opts::new(
                "webhook_malformed_requests_total",
                "Requests that were not valid AdmissionReviews",
            ),
            &["endpoint"],
        )?;
        let reconciliations = IntCounterVec::new(
            Opts::new("reconciliations_total", "Reconciliations, by kind and result"),
            &["kind", "result"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Time of one reconciliation")
                .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]),
            &["kind"],
        )?;
        let lifecycle_transitions = IntCounterVec::new(
            Opts::new(
                "lifecycle_transitions_total",
                "Lifecycle state changes of FlinkDeployments and FlinkSessionJobs",
            ),
            &["kind", "from", "to"],
        )?;
        let lifecycle_state_seconds = HistogramVec::new(
            HistogramOpts::new(
                "lifecycle_state_seconds",
                "Time spent in a lifecycle state before leaving it (e.g. UPGRADING: how long upgrades take)",
            )
            .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]),
            &["kind", "state"],
        )?;
        let api_writes = IntCounterVec::new(
            Opts::new(
                "api_writes_total",
                "Writes the controllers sent to the Kubernetes API server, by verb",
            ),
            &["verb"],
        )?;
        let leader = IntGauge::new("leader", "1 while this replica holds the leader lease, 0 on a standby")?;
        let leader_acquisitions = IntCounter::new(
            "leader_acquisitions_total",
            "Times this replica acquired the leader lease",
        )?;
        registry.register(Box::new(api_writes.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(leader_acquisitions.clone()))?;
        registry.register(Box::new(lifecycle_transitions.clone()))?;
        registry.register(Box::new(lifecycle_state_seconds.clone()))?;
        registry.register(Box::new(webhook_requests.clone()))?;
        registry.register(Box::new(webhook_duration.clone()))?;
        registry.register(Box::new(webhook_malformed.clone()))?;
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        // CPU, memory, file descriptors and start time of this process.
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        process.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics {
            registry,
            webhook_requests,
            webhook_duration,
            webhook_malformed,
            reconciliations,
            reconcile_duration,
            lifecycle_transitions,
            lifecycle_state_seconds,
            api_writes,
            leader,
            leader_acquisitions,
            lifecycle_clock: Default::default(),
            process,
        })
    }

    /// Counts one reconciliation of `kind` and its duration since `started`.
    pub fn reconciled(&self, kind: &str, ok: bool, started: std::time::Instant) {
        let outcome = if ok { "ok" } else { "error" };
        self.reconciliations.with_label_values(&[kind, outcome]).inc();
        self.reconcile_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts one request to the API server if it writes (by HTTP method: POST create, PUT update/replace,
    /// PATCH patch and server-side apply, DELETE delete).
    pub fn api_request(&self, method: &http::Method) {
        let verb = match *method {
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => return,
        };
        self.api_writes.with_label_values(&[verb]).inc();
    }

    /// Records that the resource `key` of `kind` is in lifecycle `state` now: a change counts as a
    /// transition and observes the time spent in the state left. `None` forgets the resource (deleted).
    pub fn lifecycle(&self, kind: &str, key: &str, state: Option<&str>) {
        let Ok(mut clock) = self.lifecycle_clock.lock() else {
            return;
        };
        let Some(state) = state else {
            clock.remove(key);
            return;
        };
        match clock.get(key) {
            Some((current, _)) if current == state => return,
            Some((previous, since)) => {
                self.lifecycle_transitions
                    .with_label_values(&[kind, previous, state])
                    .inc();
                self.lifecycle_state_seconds
                    .with_label_values(&[kind, previous])
                    .observe(since.elapsed().as_secs_f64());
            }
            None => {}
        }
        clock.insert(key.to_string(), (state.to_string(), std::time::Instant::now()));
    }

    /// Adds a collector that computes its metrics at scrape time.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_count_as_api_writes() {
        let metrics = Metrics::new().unwrap();
        for method in [
            http::Method::GET,
            http::Method::PATCH,
            http::Method::PATCH,
            http::Method::DELETE,
        ] {
            metrics.api_request(&method);
        }
        let count = |verb: &str| metrics.api_writes.with_label_values(&[verb]).get();
        assert_eq!((count("patch"), count("delete"), count("create")), (2, 1, 0));
        let text = metrics.render().unwrap();
        assert!(text.contains("flink_operator_leader 0"), "{text}");
        assert!(text.contains("flink_operator_leader_acquisitions_total 0"), "{text}");
    }

    #[test]
    fn lifecycle_changes_are_counted_and_timed() {
        let metrics = Metrics::new().unwrap();
        let count = |from: &str, to: &str| {
            metrics
                .lifecycle_transitions
                .with_label_values(&["FlinkDeployment", from, to])
                .get()
        };
        metrics.lifecycle("FlinkDeployment", "ns/a", Some("DEPLOYED"));
        metrics.lifecycle("FlinkDeployment", "ns/a", Some("DEPLOYED"));
        assert_eq!(count("DEPLOYED", "STABLE"), 0);
        metrics.lifecycle("FlinkDeployment", "ns/a", Some("STABLE"));
        metrics.lifecycle("FlinkDeployment", "ns/a", Some("STABLE"));
        assert_eq!(count("DEPLOYED", "STABLE"), 1, "a repeated state is not a transition");
        let timed = metrics
            .lifecycle_state_seconds
            .with_label_values(&["FlinkDeployment", "DEPLOYED"])
            .get_sample_count();
        assert_eq!(timed, 1);
        // A forgotten (deleted) resource starts afresh.
        metrics.lifecycle("FlinkDeployment", "ns/a", None);
        metrics.lifecycle("FlinkDeployment", "ns/a", Some("UPGRADING"));
        assert_eq!(count("STABLE", "UPGRADING"), 0);
    }
}
