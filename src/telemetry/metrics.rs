//! The operator's Prometheus registry: one per process, shared through the context.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

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
            process,
        })
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
