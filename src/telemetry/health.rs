//! Liveness and readiness as shared state, set by the parts of the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Health of the process: which parts must be ready, which are, and whether one died.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Readiness gates: name -> ready.
    gates: BTreeMap<String, bool>,
    shutting_down: bool,
    /// Parts that stopped unexpectedly, with why.
    dead: BTreeMap<String, String>,
    /// With leader election: whether this replica holds the lease.
    leader: Option<bool>,
}

/// A snapshot for the probes.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub ready: bool,
    pub live: bool,
    pub shutting_down: bool,
    pub waiting_for: Vec<String>,
    pub dead: BTreeMap<String, String>,
    /// With leader election only: whether this replica leads (runs the controllers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock only means another thread panicked while holding it; the flags stay usable.
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    /// Declares a gate that must open before the process is ready.
    pub fn register(&self, gate: &str) {
        self.with(|s| {
            s.gates.entry(gate.to_string()).or_insert(false);
        });
    }

    pub fn set_ready(&self, gate: &str, ready: bool) {
        self.with(|s| {
            s.gates.insert(gate.to_string(), ready);
        });
    }

    /// Shutdown began: unready from now on, so no new traffic is routed here.
    pub fn begin_shutdown(&self) {
        self.with(|s| s.shutting_down = true);
    }

    /// A part of the process stopped unexpectedly: liveness fails.
    pub fn mark_dead(&self, part: &str, why: &str) {
        self.with(|s| {
            s.dead.insert(part.to_string(), why.to_string());
        });
    }

    /// With leader election: whether this replica holds the lease (shown by `/readyz`, not a gate).
    pub fn set_leader(&self, leader: Option<bool>) {
        self.with(|s| s.leader = leader);
    }

    pub fn report(&self) -> Report {
        self.with(|s| {
            let waiting_for: Vec<String> = s
                .gates
                .iter()
                .filter(|(_, ready)| !**ready)
                .map(|(g, _)| g.clone())
                .collect();
            Report {
                ready: waiting_for.is_empty() && !s.shutting_down && s.dead.is_empty(),
                live: s.dead.is_empty(),
                shutting_down: s.shutting_down,
                waiting_for,
                dead: s.dead.clone(),
                leader: s.leader,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_gate_is_open_and_not_shutting_down() {
        let health = Health::new();
        health.register("webhook");
        health.register("watch:flinkdeployments");
        assert!(!health.report().ready);
        health.set_ready("webhook", true);
        let report = health.report();
        assert!(!report.ready);
        assert_eq!(report.waiting_for, vec!["watch:flinkdeployments"]);
        health.set_ready("watch:flinkdeployments", true);
        assert!(health.report().ready);
        health.begin_shutdown();
        assert!(!health.report().ready);
        assert!(health.report().live);
    }

    #[test]
    fn leadership_is_reported_but_is_no_gate() {
        let health = Health::new();
        assert_eq!(health.report().leader, None);
        health.set_leader(Some(false));
        let report = health.report();
        assert!(report.ready, "a standby is ready");
        assert_eq!(report.leader, Some(false));
        assert!(serde_json::to_string(&report).unwrap().contains(r#""leader":false"#));
    }

    #[test]
    fn a_dead_part_fails_liveness() {
        let health = Health::new();
        health.mark_dead("controller", "watch stream ended");
        let report = health.report();
        assert!(!report.live && !report.ready);
    }
}
