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

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::watcher::Event;
use kube::{Resource, ResourceExt};

use super::deployment::{APPLIED_HASH, FINALIZER};
use crate::crd::FlinkDeployment;

/// The objects seen so far, by namespace and name, with the fingerprint each was last seen with.
///
/// A re-list's objects wake nothing until it is complete: the reflector swaps them into the store only at
/// `InitDone`, and a reconciliation started earlier would not find there an object created while the watch
/// was down (it would be skipped as deleted).
#[derive(Debug)]
pub struct Memo<K> {
    fingerprint: fn(&K) -> u64,
    seen: HashMap<(String, String), u64>,
    relist: Option<Relist<K>>,
}

/// A re-list in progress: the objects it brought that are to wake, and every key it listed.
#[derive(Debug)]
struct Relist<K> {
    wake: Vec<K>,
    listed: HashSet<(String, String)>,
}

fn key_of<K: Resource>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

impl<K: Resource> Memo<K> {
    pub fn new(fingerprint: fn(&K) -> u64) -> Self {
        Memo {
            fingerprint,
            seen: HashMap::new(),
            relist: None,
        }
    }

    /// Records `object`; says whether it was seen before, and with another fingerprint.
    fn record(&mut self, object: &K) -> Seen {
        let fingerprint = (self.fingerprint)(object);
        match self.seen.insert(key_of(object), fingerprint) {
            None => Seen::First,
            Some(before) if before == fingerprint => Seen::Same,
            Some(_) => Seen::Changed,
        }
    }

    fn forget(&mut self, object: &K) {
        self.seen.remove(&key_of(object));
    }

    /// The relisted `object`, to wake once the re-list is complete if `wake`.
    fn relisted(&mut self, object: K, wake: bool) -> Vec<K> {
        match &mut self.relist {
            Some(relist) => {
                relist.listed.insert(key_of(&object));
                if wake {
                    relist.wake.push(object);
                }
                Vec::new()
            }
            // An `InitApply` without `Init` before it: nothing to wait for.
            None if wake => vec![object],
            None => Vec::new(),
        }
    }

    fn relist_started(&mut self) -> Vec<K> {
        self.relist = Some(Relist {
            wake: Vec::new(),
            listed: HashSet::new(),
        });
        Vec::new()
    }

    /// The re-list is complete: what it brought wakes now; what it no longer listed is forgotten.
    fn relist_done(&mut self) -> Vec<K> {
        let Some(relist) = self.relist.take() else {
            return Vec::new();
        };
        self.seen.retain(|key, _| relist.listed.contains(key));
        relist.wake
    }

    /// An owned object's event: the objects whose owners should wake.
    pub fn owned(&mut self, event: Event<K>) -> Vec<K> {
        match event {
            Event::Apply(object) => match self.record(&object) {
                Seen::Changed => vec![object],
                _ => Vec::new(),
            },
            Event::InitApply(object) => {
                let changed = self.record(&object) == Seen::Changed;
                self.relisted(object, changed)
            }
            Event::Delete(object) => {
                self.forget(&object);
                vec![object]
            }
            Event::Init => self.relist_started(),
            Event::InitDone => self.relist_done(),
        }
    }

    /// A primary resource's event: the resources to reconcile.
    pub fn primary(&mut self, event: Event<K>, needs_look: fn(&K) -> bool) -> Vec<K> {
        match event {
            // A re-list follows a watch outage: whatever happened meanwhile is unknown.
            Event::InitApply(object) => {
                self.record(&object);
                self.relisted(object, true)
            }
            Event::Apply(object) => {
                let seen = self.record(&object);
                if seen != Seen::Same || needs_look(&object) {
                    vec![object]
                } else {
                    Vec::new()
                }
            }
            // Deletion is seen by its timestamp, while the finalizer holds the resource.
            Event::Delete(object) => {
                self.forget(&object);
                Vec::new()
            }
            Event::Init => self.relist_started(),
            Event::InitDone => self.relist_done(),
        }
    }

    /// Any event: the resources it touched, a re-list's once it is complete (no fingerprints kept).
    pub fn touched(&mut self, event: Event<K>) -> Vec<K> {
        match event {
            Event::Apply(object) | Event::Delete(object) => vec![object],
            Event::InitApply(object) => self.relisted(object, true),
            Event::Init => self.relist_started(),
            Event::InitDone => self.relist_done(),
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

    fn woke<K>(woken: &[Vec<K>]) -> Vec<bool> {
        woken.iter().map(|objects| !objects.is_empty()).collect()
    }

    fn names<K: Resource>(objects: &[K]) -> Vec<String> {
        objects.iter().map(ResourceExt::name_any).collect()
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
        assert!(memo.owned(Event::Apply(deployment("jm", None))).is_empty());
    }

    #[test]
    fn an_owned_deployment_replaced_under_the_same_name_wakes_its_owner() {
        let mut memo = Memo::new(deployment_fingerprint);
        assert!(memo.owned(Event::Apply(deployment("jm", Some(1)))).is_empty());
        let mut replaced = deployment("jm", Some(1));
        replaced.metadata.uid = Some("another".into());
        assert_eq!(memo.owned(Event::Apply(replaced)).len(), 1);
        let mut deleting = deployment("jm", Some(1));
        deleting.metadata.uid = Some("another".into());
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_eq!(memo.owned(Event::Apply(deleting)).len(), 1);
    }

    #[test]
    fn a_relist_wakes_an_owner_only_for_what_changed_meanwhile_and_only_once_complete() {
        let mut memo = Memo::new(deployment_fingerprint);
        memo.owned(Event::Apply(deployment("a", Some(1))));
        memo.owned(Event::Apply(deployment("b", Some(1))));
        memo.owned(Event::Apply(deployment("gone", Some(1))));
        let woken = vec![
            memo.owned(Event::Init),
            memo.owned(Event::InitApply(deployment("a", Some(1)))),
            memo.owned(Event::InitApply(deployment("b", Some(0)))),
            memo.owned(Event::InitApply(deployment("c", None))), // at start-up: the owner's own watch wakes it
        ];
        assert_eq!(woke(&woken), [false; 4], "nothing before the store has the re-list");
        assert_eq!(names(&memo.owned(Event::InitDone)), ["b"]);
        // Deleted while the watch was down: forgotten with the re-list.
        assert_eq!(memo.len(), 3);
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
            !memo.primary(Event::Apply(fd), lacks_finalizer).is_empty()
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
        assert!(memo.primary(Event::Delete(annotated), lacks_finalizer).is_empty());
        assert_eq!(memo.len(), 0);
    }

    #[test]
    fn a_relisted_flink_deployment_is_always_looked_at_once_the_relist_is_complete() {
        let mut memo = Memo::new(flink_deployment_fingerprint);
        let known = flink_deployment(1, true);
        assert_eq!(memo.primary(Event::Apply(known.clone()), lacks_finalizer).len(), 1);
        assert!(memo.primary(Event::Init, lacks_finalizer).is_empty());
        assert!(memo.primary(Event::InitApply(known), lacks_finalizer).is_empty());
        let mut created_meanwhile = flink_deployment(1, false);
        created_meanwhile.metadata.name = Some("new".into());
        assert!(
            memo.primary(Event::InitApply(created_meanwhile), lacks_finalizer)
                .is_empty()
        );
        assert_eq!(names(&memo.primary(Event::InitDone, lacks_finalizer)), ["fd", "new"]);
        // The next re-list starts afresh.
        assert!(memo.primary(Event::Init, lacks_finalizer).is_empty());
        assert!(memo.primary(Event::InitDone, lacks_finalizer).is_empty());
        assert_eq!(memo.len(), 0, "nothing listed: nothing remembered");
    }

    #[test]
    fn touched_passes_every_change_and_holds_a_relist_until_complete() {
        let mut memo = Memo::new(|_: &FlinkDeployment| 0);
        assert_eq!(memo.touched(Event::Apply(flink_deployment(1, true))).len(), 1);
        assert_eq!(
            memo.touched(Event::Apply(flink_deployment(1, true))).len(),
            1,
            "echoes too"
        );
        assert_eq!(memo.touched(Event::Delete(flink_deployment(1, true))).len(), 1);
        assert!(memo.touched(Event::Init).is_empty());
        assert!(memo.touched(Event::InitApply(flink_deployment(2, true))).is_empty());
        assert_eq!(memo.touched(Event::InitDone).len(), 1);
        assert_eq!(
            memo.touched(Event::InitApply(flink_deployment(3, true))).len(),
            1,
            "no re-list in progress: nothing to wait for"
        );
    }
}
