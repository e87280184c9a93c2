//! Which watch events wake a reconciliation.
//!
//! Most events a controller sees are the echoes of its own writes: the finalizer it added, the status it
//! wrote, the objects it created. Reconciling on each of them costs a trip through the queue and a look at
//! the cluster for nothing the reconciliation did not already know (3.5 reconciliations per new
//! FlinkDeployment where 2 do). So, like upstream's generation-aware event filtering:
//! - a FlinkDeployment wakes on what a reconciliation acts on: a new resource, its spec (generation),
//!   deletion, labels and annotations, and the operator's finalizer going missing; not on its status;
//! - an owned object wakes its FlinkDeployment when someone else changes what the reconciliation reads
//!   (`fingerprint`) or deletes it; not when it first appears (the reconciliation that created it knows).
//!
//! Every transition that waits for the operator's own write therefore asks for its next look itself
//! (`job::Plan::requeue`). A re-list wakes every FlinkDeployment again (what changed while the watch was
//! down is not known).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::watcher::Event;
use kube::{Resource, ResourceExt};

use super::deployment::{APPLIED_HASH, FINALIZER};
use crate::crd::FlinkDeployment;

/// The objects seen so far, by namespace and name, with the fingerprint each was last seen with.
#[derive(Debug)]
pub struct Memo<K> {
    fingerprint: fn(&K) -> u64,
    seen: HashMap<(String, String), u64>,
}

impl<K: Resource> Memo<K> {
    pub fn new(fingerprint: fn(&K) -> u64) -> Self {
        Memo {
            fingerprint,
            seen: HashMap::new(),
        }
    }

    /// Records `object`; says whether it was seen before, and with another fingerprint.
    fn record(&mut self, object: &K) -> Seen {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        let fingerprint = (self.fingerprint)(object);
        match self.seen.insert(key, fingerprint) {
            None => Seen::First,
            Some(before) if before == fingerprint => Seen::Same,
            Some(_) => Seen::Changed,
        }
    }

    fn forget(&mut self, object: &K) {
        self.seen
            .remove(&(object.namespace().unwrap_or_default(), object.name_any()));
    }

    /// An owned object's event: the object, when it should wake its owner.
    pub fn owned(&mut self, event: Event<K>) -> Option<K> {
        match event {
            Event::Apply(object) | Event::InitApply(object) => {
                (self.record(&object) == Seen::Changed).then_some(object)
            }
            Event::Delete(object) => {
                self.forget(&object);
                Some(object)
            }
            Event::Init | Event::InitDone => None,
        }
    }

    /// A primary resource's event: the resource, when it should be reconciled.
    pub fn primary(&mut self, event: Event<K>, needs_look: fn(&K) -> bool) -> Option<K> {
        match event {
            // A re-list follows a watch outage: whatever happened meanwhile is unknown.
            Event::InitApply(object) => {
                self.record(&object);
                Some(object)
            }
            Event::Apply(object) => {
                let seen = self.record(&object);
                (seen != Seen::Same || needs_look(&object)).then_some(object)
            }
            // Deletion is seen by its timestamp, while the finalizer holds the resource.
            Event::Delete(object) => {
                self.forget(&object);
                None
            }
            Event::Init | Event::InitDone => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    First,
    Same,
    Changed,
}

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What a FlinkDeployment's reconciliation acts on besides its status.
pub fn flink_deployment_fingerprint(fd: &FlinkDeployment) -> u64 {
    let meta = &fd.metadata;
    hash_of((
        &meta.uid,
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.labels,
        &meta.annotations,
    ))
}

/// A live FlinkDeployment without the operator's finalizer is looked at whatever changed (the finalizer
/// is added by a reconciliation).
pub fn lacks_finalizer(fd: &FlinkDeployment) -> bool {
    fd.metadata.deletion_timestamp.is_none() && !fd.finalizers().iter().any(|f| f == FINALIZER)
}

/// What a reconciliation reads of an owned Deployment: which one it is, its spec's generation and its
/// status (pods starting, available, failing).
pub fn deployment_fingerprint(deployment: &Deployment) -> u64 {
    let meta = &deployment.metadata;
    let status = serde_json::to_string(&deployment.status).unwrap_or_default();
    hash_of((&meta.uid, meta.generation, meta.deletion_timestamp.is_some(), status))
}

/// What a reconciliation reads of an owned Service or ConfigMap: which one it is and the hash of the object
/// as the operator last applied it.
pub fn applied_fingerprint<K: Resource>(object: &K) -> u64 {
    let meta = object.meta();
    let applied = meta.annotations.as_ref().and_then(|a| a.get(APPLIED_HASH));
    hash_of((&meta.uid, meta.deletion_timestamp.is_some(), applied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn deployment(name: &str, available: Option<i32>) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some(name.into());
        d.metadata.namespace = Some("ns".into());
        d.metadata.uid = Some(format!("uid-{name}"));
        d.metadata.generation = Some(1);
        d.status = available.map(|n| DeploymentStatus {
            available_replicas: Some(n),
            ..DeploymentStatus::default()
        });
        d
    }

    fn flink_deployment(generation: i64, finalizer: bool) -> FlinkDeployment {
        let mut fd = FlinkDeployment::new("fd", Default::default());
        fd.metadata.namespace = Some("ns".into());
        fd.metadata.uid = Some("uid-fd".into());
        fd.metadata.generation = Some(generation);
        if finalizer {
            fd.metadata.finalizers = Some(vec![FINALIZER.into()]);
        }
        fd
    }

    fn woke<K>(woken: &[Option<K>]) -> Vec<bool> {
        woken.iter().map(Option::is_some).collect()
    }

    #[test]
    fn an_owned_deployment_wakes_on_status_changes_and_deletion_not_on_its_creation() {
        let mut memo = Memo::new(deployment_fingerprint);
        let woken = vec![
            memo.owned(Event::Apply(deployment("jm", None))), // created by the reconciliation
            memo.owned(Event::Apply(deployment("jm", None))), // e.g. only its resourceVersion moved
            memo.owned(Event::Apply(deployment("jm", Some(0)))), // the Deployment controller reports
            memo.owned(Event::Apply(deployment("jm", Some(1)))), // a pod became available
            memo.owned(Event::Delete(deployment("jm", Some(1)))),
        ];
        assert_eq!(woke(&woken), [false, false, true, true, true]);
        assert_eq!(memo.len(), 0, "a deleted object is forgotten");
        // Created again (by someone else or by the reconciliation the deletion woke): first sight again.
        assert!(memo.owned(Event::Apply(deployment("jm", None))).is_none());
    }

    #[test]
    fn an_owned_deployment_replaced_under_the_same_name_wakes_its_owner() {
        let mut memo = Memo::new(deployment_fingerprint);
        assert!(memo.owned(Event::Apply(deployment("jm", Some(1)))).is_none());
        let mut replaced = deployment("jm", Some(1));
        replaced.metadata.uid = Some("another".into());
        assert!(memo.owned(Event::Apply(replaced)).is_some());
        let mut deleting = deployment("jm", Some(1));
        deleting.metadata.uid = Some("another".into());
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(memo.owned(Event::Apply(deleting)).is_some());
    }

    #[test]
    fn a_relist_wakes_an_owner_only_for_what_changed_meanwhile() {
        let mut memo = Memo::new(deployment_fingerprint);
        memo.owned(Event::Apply(deployment("a", Some(1))));
        memo.owned(Event::Apply(deployment("b", Some(1))));
        let woken = vec![
            memo.owned(Event::Init),
            memo.owned(Event::InitApply(deployment("a", Some(1)))),
            memo.owned(Event::InitApply(deployment("b", Some(0)))),
            memo.owned(Event::InitApply(deployment("c", None))), // at start-up: the owner's own watch wakes it
            memo.owned(Event::InitDone),
        ];
        assert_eq!(woke(&woken), [false, false, true, false, false]);
    }

    #[test]
    fn a_configmap_wakes_only_when_its_applied_hash_changes_or_it_goes() {
        let mut memo = Memo::new(applied_fingerprint::<ConfigMap>);
        let config = |hash: &str, label: &str| {
            let mut c = ConfigMap::default();
            c.metadata.name = Some("flink-config-fd".into());
            c.metadata.namespace = Some("ns".into());
            c.metadata.uid = Some("uid-c".into());
            c.annotations_mut().insert(APPLIED_HASH.into(), hash.into());
            c.labels_mut().insert("x".into(), label.into());
            c
        };
        let woken = vec![
            memo.owned(Event::Apply(config("h1", "a"))),
            memo.owned(Event::Apply(config("h1", "b"))), // nothing the reconciliation reads
            memo.owned(Event::Apply(config("h2", "b"))), // someone else applied it
            memo.owned(Event::Delete(config("h2", "b"))),
        ];
        assert_eq!(woke(&woken), [false, false, true, true]);
    }

    #[test]
    fn a_flink_deployment_wakes_for_its_spec_and_deletion_not_for_the_echo_of_its_status_or_finalizer() {
        let mut memo = Memo::new(flink_deployment_fingerprint);
        let look = |memo: &mut Memo<FlinkDeployment>, fd: FlinkDeployment| {
            memo.primary(Event::Apply(fd), lacks_finalizer).is_some()
        };
        assert!(look(&mut memo, flink_deployment(1, false)), "a new resource");
        assert!(
            look(&mut memo, flink_deployment(1, false)),
            "still without its finalizer"
        );
        assert!(
            !look(&mut memo, flink_deployment(1, true)),
            "the finalizer the reconciliation added"
        );
        let mut with_status = flink_deployment(1, true);
        with_status.status = Some(Default::default());
        assert!(!look(&mut memo, with_status), "the status the reconciliation wrote");
        assert!(look(&mut memo, flink_deployment(2, true)), "a new spec");
        let mut annotated = flink_deployment(2, true);
        annotated.annotations_mut().insert("team".into(), "a".into());
        assert!(look(&mut memo, annotated.clone()), "an annotation");
        annotated.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(look(&mut memo, annotated.clone()), "deletion");
        annotated.metadata.finalizers = None;
        assert!(
            !look(&mut memo, annotated.clone()),
            "the finalizer removed by the cleanup"
        );
        assert!(memo.primary(Event::Delete(annotated), lacks_finalizer).is_none());
        assert_eq!(memo.len(), 0);
    }

    #[test]
    fn a_relisted_flink_deployment_is_always_looked_at() {
        let mut memo = Memo::new(flink_deployment_fingerprint);
        assert!(
            memo.primary(Event::Apply(flink_deployment(1, true)), lacks_finalizer)
                .is_some()
        );
        assert!(memo.primary(Event::Init, lacks_finalizer).is_none());
        assert!(
            memo.primary(Event::InitApply(flink_deployment(1, true)), lacks_finalizer)
                .is_some()
        );
        assert!(memo.primary(Event::InitDone, lacks_finalizer).is_none());
    }
}
