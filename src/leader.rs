//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go and controller-runtime do it: with
//! several replicas, only the holder of the lease runs the controllers; every replica serves the webhook.
//!
//! Every write is optimistic: a create, or a replace carrying the resourceVersion that was read, so of two
//! replicas writing at once one gets 409 and re-reads. Expiry is judged on the observer's own monotonic
//! clock, as client-go does: a lease held by someone else is expired when its record has not changed for
//! `leaseDurationSeconds` since this process saw it change, so clock skew between replicas does not matter.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::telemetry::health::Health;
use crate::telemetry::metrics::Metrics;

/// Default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "flink-operator-lease";

/// Where the lease is and how it is held.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub name: String,
    /// This process's identity, written as `holderIdentity`.
    pub identity: String,
    /// How long a standby waits, after the lease last changed, before it takes the lease over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// Pause between two attempts (renewals of the leader, checks of a standby).
    pub retry_period: Duration,
}

impl Settings {
    /// The leader must give up (renew deadline) before a standby may take over (lease duration), and must get
    /// at least one retry within its deadline; otherwise two replicas could reconcile at once.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |why: &str| Err(LeaderError::Settings(why.to_string()));
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return invalid("the lease name, its namespace and the identity must not be empty");
        }
        if self.lease_duration < Duration::from_secs(1) {
            return invalid("the lease duration must be at least 1s (the Lease counts whole seconds)");
        }
        if self.renew_deadline >= self.lease_duration {
            return invalid("the renew deadline must be shorter than the lease duration");
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return invalid("the retry period must be positive and shorter than the renew deadline");
        }
        Ok(())
    }

    /// `leaseDurationSeconds`: whole seconds, rounded up so a standby never waits less than configured.
    fn lease_seconds(&self) -> i32 {
        let secs = self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }
}

/// A default identity: the host (pod) name and a random suffix, so that a restarted process is a new
/// holder and never mistakes its predecessor's lease for its own.
pub fn default_identity(hostname: Option<&str>) -> String {
    use std::hash::BuildHasher;
    let host = hostname.filter(|h| !h.is_empty()).unwrap_or("flink-operator");
    // RandomState is seeded randomly per process: enough to tell two incarnations apart.
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{host}-{:06x}", random & 0xff_ffff)
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election settings: {0}")]
    Settings(String),
    #[error("lost the lease {lease}: {holder} holds it now")]
    Lost { lease: String, holder: String },
    #[error("could not renew the lease {lease} within the renew deadline ({deadline:?})")]
    RenewDeadline { lease: String, deadline: Duration },
    #[error("cannot read the lease {lease}: {source}")]
    ReadLease { lease: String, source: kube::Error },
    #[error("cannot create the lease {lease}: {source}")]
    CreateLease { lease: String, source: kube::Error },
    #[error("cannot replace the lease {lease}: {source}")]
    ReplaceLease { lease: String, source: kube::Error },
}

/// What to do with the lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is none: create it, held by us.
    Create,
    /// Free (released, or expired on our clock): write us in as the holder.
    TakeOver,
    /// Ours: write a new renewTime.
    Renew,
    /// Someone else holds it; it expires (on our clock) at this instant unless renewed.
    Wait(Instant),
    /// We were leading and someone else holds it now.
    Lost(String),
}

/// The lease as read, and since when (this process's clock) its spec has been unchanged.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub spec: &'a LeaseSpec,
    pub unchanged_since: Instant,
}

/// Decides, from the lease as read, what this process (`me`, leading or not) does at `now`. A lease without
/// `leaseDurationSeconds` (or a non-positive one) counts with `default_duration`; one without a holder is free.
/// It is expired only when `unchanged_since + duration < now`: at the boundary it is still valid.
pub fn decide(
    observed: Option<Observed<'_>>,
    me: &str,
    leading: bool,
    now: Instant,
    default_duration: Duration,
) -> Decision {
    let Some(observed) = observed else {
        return Decision::Create;
    };
    let holder = observed.spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    match holder {
        Some(holder) if holder == me => Decision::Renew,
        None => Decision::TakeOver,
        Some(holder) if leading => Decision::Lost(holder.to_string()),
        Some(_) => {
            let duration = observed
                .spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(default_duration, Duration::from_secs);
            let expires = observed.unchanged_since + duration;
            if now > expires {
                Decision::TakeOver
            } else {
                Decision::Wait(expires)
            }
        }
    }
}

/// Whether the leader has gone without a successful renewal for longer than its deadline.
pub fn renew_overdue(last_renewed: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now.saturating_duration_since(last_renewed) > renew_deadline
}

/// The outcome of one read-decide-write round.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Holding,
    Waiting {
        holder: String,
        until: Instant,
    },
    Lost(String),
    /// Our write raced another one (409): re-read.
    Conflict,
}

/// One process's side of the election.
pub struct Elector {
    api: Api<Lease>,
    settings: Settings,
    metrics: Metrics,
    /// The lease as last read or written, and since when its spec has been unchanged.
    observed: Option<(Lease, Instant)>,
    leading: bool,
    last_renewed: Instant,
}

impl Elector {
    pub fn new(client: kube::Client, settings: Settings, metrics: Metrics) -> Result<Self, LeaderError> {
        settings.validate()?;
        Ok(Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            metrics,
            observed: None,
            leading: false,
            last_renewed: Instant::now(),
        })
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.settings.namespace, self.settings.name)
    }

    /// Remembers what was read or written; a changed spec restarts the expiry clock.
    fn observe(&mut self, lease: Option<Lease>, now: Instant) {
        self.observed = match (lease, self.observed.take()) {
            (None, _) => None,
            (Some(lease), Some((old, since))) if old.spec == lease.spec => Some((lease, since)),
            (Some(lease), _) => Some((lease, now)),
        };
    }

    /// Reads the lease, decides, writes.
    async fn round(&mut self) -> Result<Round, LeaderError> {
        let read = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|source| LeaderError::ReadLease {
                lease: self.lease(),
                source,
            })?;
        let now = Instant::now();
        self.observe(read, now);
        let empty = LeaseSpec::default();
        let observed = self.observed.as_ref().map(|(lease, since)| Observed {
            spec: lease.spec.as_ref().unwrap_or(&empty),
            unchanged_since: *since,
        });
        let decision = decide(
            observed,
            &self.settings.identity,
            self.leading,
            now,
            self.settings.lease_duration,
        );
        let wall = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let me = self.settings.identity.clone();
        let seconds = self.settings.lease_seconds();
        let read = self.observed.as_ref().map(|(lease, _)| lease.clone());
        let mut lease = match (&decision, read) {
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(wall.clone()),
                        renew_time: Some(wall),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        self.observe(Some(created), Instant::now());
                        Ok(Round::Holding)
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Conflict),
                    Err(source) => Err(LeaderError::CreateLease {
                        lease: self.lease(),
                        source,
                    }),
                };
            }
            (Decision::Wait(until), Some(lease)) => {
                let holder = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                return Ok(Round::Waiting { holder, until: *until });
            }
            (Decision::Lost(holder), _) => return Ok(Round::Lost(holder.clone())),
            (_, Some(lease)) => lease,
            // Wait, TakeOver and Renew are only decided on a lease that was read.
            (_, None) => return Ok(Round::Conflict),
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if decision == Decision::TakeOver {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            spec.acquire_time = Some(wall.clone());
        }
        spec.acquire_time.get_or_insert_with(|| wall.clone());
        spec.holder_identity = Some(me);
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(wall);
        // The resourceVersion read makes the replace fail (409) if anyone wrote in between.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(replaced) => {
                self.observe(Some(replaced), Instant::now());
                Ok(Round::Holding)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Conflict),
            Err(source) => Err(LeaderError::ReplaceLease {
                lease: self.lease(),
                source,
            }),
        }
    }

    /// Waits until this process holds the lease: true, or false when `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        let retry = self.settings.retry_period;
        let mut standing_by_for = None;
        let mut conflicts = 0u32;
        loop {
            let pause = match self.round().await {
                Ok(Round::Holding) => {
                    self.leading = true;
                    self.last_renewed = Instant::now();
                    self.metrics.leader.set(1);
                    self.metrics.leader_acquisitions.inc();
                    info!(
                        lease = self.lease(),
                        identity = self.settings.identity,
                        "became the leader"
                    );
                    return true;
                }
                Ok(Round::Waiting { holder, until }) => {
                    conflicts = 0;
                    if standing_by_for.as_ref() != Some(&holder) {
                        info!(lease = self.lease(), holder, "another replica leads; standing by");
                        standing_by_for = Some(holder);
                    }
                    // Look again when it would expire, so a dead leader is replaced without delay.
                    until.saturating_duration_since(Instant::now()).min(retry) + Duration::from_millis(1)
                }
                // Someone else won the write: re-read at once, but do not spin on repeated conflicts.
                Ok(Round::Conflict) if conflicts == 0 => {
                    conflicts += 1;
                    Duration::ZERO
                }
                Ok(_) => retry,
                Err(e) => {
                    warn!(error = %e, "leader election: will retry");
                    retry
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Renews the lease every retry period; returns only when leadership ends: another holder, or no
    /// successful renewal within the renew deadline.
    pub async fn hold(&mut self) -> LeaderError {
        let deadline = self.settings.renew_deadline;
        let mut pause = self.settings.retry_period;
        loop {
            tokio::time::sleep(pause).await;
            pause = self.settings.retry_period;
            let give_up_at = tokio::time::Instant::from_std(self.last_renewed + deadline);
            let error = match tokio::time::timeout_at(give_up_at, self.round()).await {
                Ok(Ok(Round::Holding)) => {
                    self.last_renewed = Instant::now();
                    debug!(lease = self.lease(), "renewed the lease");
                    continue;
                }
                Ok(Ok(Round::Lost(holder) | Round::Waiting { holder, .. })) => LeaderError::Lost {
                    lease: self.lease(),
                    holder,
                },
                Ok(Ok(Round::Conflict)) => {
                    // The lease changed under us (or our last write's answer was lost): re-read now.
                    pause = Duration::ZERO;
                    if !renew_overdue(self.last_renewed, Instant::now(), deadline) {
                        continue;
                    }
                    self.deadline_missed()
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot renew the lease; retrying within the renew deadline");
                    if !renew_overdue(self.last_renewed, Instant::now(), deadline) {
                        continue;
                    }
                    self.deadline_missed()
                }
                Err(_elapsed) => self.deadline_missed(),
            };
            self.leading = false;
            self.metrics.leader.set(0);
            return error;
        }
    }

    fn deadline_missed(&self) -> LeaderError {
        LeaderError::RenewDeadline {
            lease: self.lease(),
            deadline: self.settings.renew_deadline,
        }
    }

    /// Gives the lease up so that a standby takes over at once (as client-go's ReleaseOnCancel): no holder,
    /// a 1 s duration. Only a lease still ours is touched; failures are logged (it then expires normally).
    pub async fn release(&mut self) {
        if !self.leading {
            return;
        }
        self.leading = false;
        self.metrics.leader.set(0);
        let limit = self.settings.renew_deadline;
        match tokio::time::timeout(limit, self.try_release()).await {
            Ok(Ok(true)) => info!(lease = self.lease(), "released the lease"),
            Ok(Ok(false)) => info!(lease = self.lease(), "the lease is no longer ours; nothing to release"),
            Ok(Err(e)) => warn!(error = %e, "cannot release the lease; it expires on its own"),
            Err(_) => warn!(
                lease = self.lease(),
                "releasing the lease timed out; it expires on its own"
            ),
        }
    }

    async fn try_release(&mut self) -> Result<bool, LeaderError> {
        // Our last write's resourceVersion first; after a conflict, what is there now.
        for _ in 0..2 {
            let Some((mut lease, _)) = self.observed.clone() else {
                return Ok(false);
            };
            let Some(spec) = lease.spec.as_mut() else {
                return Ok(false);
            };
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
            match self
                .api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let read =
                        self.api
                            .get_opt(&self.settings.name)
                            .await
                            .map_err(|source| LeaderError::ReadLease {
                                lease: self.lease(),
                                source,
                            })?;
                    self.observe(read, Instant::now());
                }
                Err(source) => {
                    return Err(LeaderError::ReplaceLease {
                        lease: self.lease(),
                        source,
                    });
                }
            }
        }
        Ok(false)
    }
}

/// Waits for the lease, then runs `control` (the controllers) while holding it. Readiness: the controller's
/// watch `gates` are registered only once this replica leads, so a standby is ready (it serves the webhook)
/// and the leader is ready once its watches synced. Returns Ok when `control` ends (on shutdown, after
/// releasing the lease) or when shutdown comes before leadership; Err when leadership is lost: `control` is
/// dropped then, which aborts its tasks, so reconciling stops at once.
pub async fn lead<F, Fut>(
    mut elector: Elector,
    gates: Vec<String>,
    health: Health,
    shutdown: CancellationToken,
    control: F,
) -> Result<(), LeaderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    health.set_leader(Some(false));
    elector.metrics.leader.set(0);
    if !elector.acquire(&shutdown).await {
        return Ok(());
    }
    health.set_leader(Some(true));
    for gate in &gates {
        health.register(gate);
    }
    let controller = control();
    tokio::pin!(controller);
    tokio::select! {
        () = &mut controller => {
            elector.release().await;
            health.set_leader(Some(false));
            Ok(())
        }
        lost = elector.hold() => {
            health.set_leader(Some(false));
            Err(lost)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(15);

    fn spec(holder: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    fn at(spec: &LeaseSpec, since: Instant) -> Option<Observed<'_>> {
        Some(Observed {
            spec,
            unchanged_since: since,
        })
    }

    #[test]
    fn a_missing_lease_is_created() {
        let now = Instant::now();
        assert_eq!(decide(None, "me", false, now, DEFAULT), Decision::Create);
        assert_eq!(decide(None, "me", true, now, DEFAULT), Decision::Create);
    }

    #[test]
    fn my_own_lease_is_renewed() {
        let t0 = Instant::now();
        let mine = spec(Some("me"), Some(15));
        assert_eq!(decide(at(&mine, t0), "me", true, t0, DEFAULT), Decision::Renew);
        // Even long after it expired on our clock: nobody else took it.
        let late = t0 + Duration::from_secs(60);
        assert_eq!(decide(at(&mine, t0), "me", true, late, DEFAULT), Decision::Renew);
    }

    #[test]
    fn someone_elses_valid_lease_is_waited_for_until_it_expires() {
        let t0 = Instant::now();
        let theirs = spec(Some("other"), Some(15));
        let now = t0 + Duration::from_secs(5);
        assert_eq!(
            decide(at(&theirs, t0), "me", false, now, DEFAULT),
            Decision::Wait(t0 + Duration::from_secs(15))
        );
    }

    #[test]
    fn someone_elses_expired_lease_is_taken_over() {
        let t0 = Instant::now();
        let theirs = spec(Some("other"), Some(15));
        let now = t0 + Duration::from_secs(16);
        assert_eq!(decide(at(&theirs, t0), "me", false, now, DEFAULT), Decision::TakeOver);
    }

    #[test]
    fn at_the_boundary_the_lease_is_still_valid() {
        let t0 = Instant::now();
        let theirs = spec(Some("other"), Some(15));
        let expiry = t0 + Duration::from_secs(15);
        assert_eq!(
            decide(at(&theirs, t0), "me", false, expiry, DEFAULT),
            Decision::Wait(expiry)
        );
        let just_after = expiry + Duration::from_nanos(1);
        assert_eq!(
            decide(at(&theirs, t0), "me", false, just_after, DEFAULT),
            Decision::TakeOver
        );
    }

    #[test]
    fn a_leader_that_sees_another_holder_has_lost_even_before_expiry() {
        let t0 = Instant::now();
        let theirs = spec(Some("other"), Some(15));
        assert_eq!(
            decide(at(&theirs, t0), "me", true, t0, DEFAULT),
            Decision::Lost("other".into())
        );
    }

    #[test]
    fn a_lease_without_holder_is_free() {
        let t0 = Instant::now();
        for holder in [None, Some("")] {
            let released = spec(holder, Some(1));
            assert_eq!(decide(at(&released, t0), "me", false, t0, DEFAULT), Decision::TakeOver);
        }
        let empty = LeaseSpec::default();
        assert_eq!(decide(at(&empty, t0), "me", false, t0, DEFAULT), Decision::TakeOver);
    }

    #[test]
    fn a_missing_or_nonsense_duration_counts_as_the_default() {
        let t0 = Instant::now();
        for seconds in [None, Some(0), Some(-3)] {
            let theirs = spec(Some("other"), seconds);
            assert_eq!(
                decide(at(&theirs, t0), "me", false, t0 + Duration::from_secs(14), DEFAULT),
                Decision::Wait(t0 + DEFAULT),
                "{seconds:?}"
            );
            assert_eq!(
                decide(at(&theirs, t0), "me", false, t0 + Duration::from_secs(16), DEFAULT),
                Decision::TakeOver,
                "{seconds:?}"
            );
        }
    }

    #[test]
    fn renewal_is_overdue_only_after_the_deadline() {
        let t0 = Instant::now();
        let deadline = Duration::from_secs(10);
        assert!(!renew_overdue(t0, t0 + deadline, deadline));
        assert!(renew_overdue(t0, t0 + deadline + Duration::from_millis(1), deadline));
        // A clock reading before the last renewal is not overdue.
        assert!(!renew_overdue(t0 + deadline, t0, deadline));
    }

    fn settings(lease: u64, renew: u64, retry: u64) -> Settings {
        Settings {
            namespace: "ns".into(),
            name: DEFAULT_LEASE_NAME.into(),
            identity: "me".into(),
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew),
            retry_period: Duration::from_millis(retry),
        }
    }

    #[test]
    fn timings_must_let_the_leader_give_up_before_a_standby_takes_over() {
        assert!(settings(15_000, 10_000, 2_000).validate().is_ok());
        assert!(settings(4_000, 3_000, 1_000).validate().is_ok());
        assert!(settings(10_000, 10_000, 2_000).validate().is_err());
        assert!(settings(15_000, 10_000, 10_000).validate().is_err());
        assert!(settings(15_000, 10_000, 0).validate().is_err());
        assert!(settings(900, 500, 100).validate().is_err());
        let mut unnamed = settings(15_000, 10_000, 2_000);
        unnamed.namespace.clear();
        assert!(unnamed.validate().is_err());
    }

    #[test]
    fn lease_seconds_round_up() {
        assert_eq!(settings(15_000, 10_000, 2_000).lease_seconds(), 15);
        assert_eq!(settings(4_500, 3_000, 1_000).lease_seconds(), 5);
    }

    #[test]
    fn default_identities_differ_per_process_start() {
        let a = default_identity(Some("op-7d9f"));
        assert!(a.starts_with("op-7d9f-") && a.len() == "op-7d9f-".len() + 6, "{a}");
        assert!(default_identity(None).starts_with("flink-operator-"));
        assert!(default_identity(Some("")).starts_with("flink-operator-"));
        // Random per call (per process in practice): two in a row collide with probability 2^-24.
        assert_ne!(default_identity(Some("h")), default_identity(Some("h")));
    }
}
