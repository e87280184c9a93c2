//! What the watches last saw of the objects the operator owns, so that a reconciliation reads the cluster
//! from memory instead of asking the API server again.
//!
//! A steady FlinkDeployment is looked at every resync interval; with a GET for each of its objects, 1000 of
//! them cost the API server 4000 reads a minute for nothing. The stores hold Deployments with their metadata,
//! replicas and status (what is observed; not their pod templates, see `slim`) and Services and ConfigMaps as
//! metadata only (the applied-hash annotation is all that is read), all without `managedFields`. A store can
//! lag a write by a moment; a miss therefore falls back to a GET, and a stale hit at worst re-applies an
//! object (server-side apply of the same object changes nothing) or waits for the next event.

use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::deployment::APPLIED_HASH;
use super::slim::{Slim, SlimDecode};
use crate::crd::FlinkDeployment;

/// The stores of every watch scope (one per watched namespace, or one for all).
#[derive(Clone, Default)]
pub struct Cache {
    pub flink_deployments: Vec<Store<FlinkDeployment>>,
    pub deployments: Vec<Store<Deployment>>,
    pub services: Vec<Store<PartialObjectMeta<Service>>>,
    pub config_maps: Vec<Store<PartialObjectMeta<ConfigMap>>>,
}

/// What the watch last saw of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Present, with this applied hash (None: not applied by this operator).
    Present(Option<String>),
    /// Not in the store: absent, or too new for the watch; ask the API server.
    Unknown,
    /// Known not to exist: nothing was ever deployed for this resource, so there is nothing to ask about.
    Absent,
}

impl Seen {
    /// What a store miss means for a resource that has never been deployed (`fresh`): the object is not
    /// there yet. A stale orphan left by an earlier resource of the same name is overwritten by the apply
    /// all the same, so the GET that would find it is not needed.
    pub fn given_fresh(self, fresh: bool) -> Seen {
        match self {
            Seen::Unknown if fresh => Seen::Absent,
            seen => seen,
        }
    }
}

impl Cache {
    /// The JobManager or TaskManager Deployment as last seen.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        find(&self.deployments, namespace, name)
    }

    pub fn flink_deployment(&self, namespace: &str, name: &str) -> Option<Arc<FlinkDeployment>> {
        find(&self.flink_deployments, namespace, name)
    }

    pub fn deployment_seen(&self, namespace: &str, name: &str) -> Seen {
        seen(self.deployment(namespace, name).as_deref())
    }

    pub fn service_seen(&self, namespace: &str, name: &str) -> Seen {
        seen(find(&self.services, namespace, name).as_deref())
    }

    pub fn config_map_seen(&self, namespace: &str, name: &str) -> Seen {
        seen(find(&self.config_maps, namespace, name).as_deref())
    }
}

/// What a store's copy (or its absence) says of an object.
pub fn seen<K: Resource>(object: Option<&K>) -> Seen {
    match object {
        Some(object) => Seen::Present(object.annotations().get(APPLIED_HASH).cloned()),
        None => Seen::Unknown,
    }
}

fn find<K>(stores: &[Store<K>], namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let key = ObjectRef::new(name).within(namespace);
    stores.iter().find_map(|store| store.get(&key))
}

/// The object from the store, else from the API server (a store miss may only mean the watch is behind),
/// decoded as slim as the store's copies are (`slim`).
pub async fn cached_or_get<K>(
    cached: Option<Arc<K>>,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + SlimDecode + std::fmt::Debug,
{
    match cached {
        Some(object) => Ok(Some(object.as_ref().clone())),
        None => Ok(Api::<Slim<K>>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|Slim(object)| object)),
    }
}

/// What a store needs to keep of a watched object: no `managedFields` (often the larger part of a small
/// object; the watches' slim decoding already skips them, this keeps any other copy free of them too) and no
/// client-side-apply copy of the object.
pub fn slim<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    object
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn deployment(name: &str, namespace: &str, hash: Option<&str>) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some(name.into());
        d.metadata.namespace = Some(namespace.into());
        if let Some(hash) = hash {
            d.annotations_mut().insert(APPLIED_HASH.into(), hash.into());
        }
        d
    }

    #[test]
    fn lookups_span_every_scope_and_report_the_applied_hash() {
        let (a, mut wa) = reflector::store::<Deployment>();
        let (b, mut wb) = reflector::store::<Deployment>();
        wa.apply_watcher_event(&Event::Apply(deployment("x", "one", Some("h1"))));
        wb.apply_watcher_event(&Event::Apply(deployment("y", "two", None)));
        let cache = Cache {
            deployments: vec![a, b],
            ..Cache::default()
        };
        assert_eq!(cache.deployment_seen("one", "x"), Seen::Present(Some("h1".into())));
        assert_eq!(cache.deployment_seen("two", "y"), Seen::Present(None));
        // Same name, other namespace: not the same object.
        assert_eq!(cache.deployment_seen("two", "x"), Seen::Unknown);
        assert_eq!(cache.service_seen("one", "x"), Seen::Unknown);
    }

    #[test]
    fn a_miss_is_absent_only_before_the_first_deployment() {
        assert_eq!(Seen::Unknown.given_fresh(true), Seen::Absent);
        assert_eq!(Seen::Unknown.given_fresh(false), Seen::Unknown);
        // What the watch saw stands either way.
        let hit = Seen::Present(Some("h".into()));
        assert_eq!(hit.clone().given_fresh(true), hit);
        assert_eq!(hit.clone().given_fresh(false), hit);
    }

    #[test]
    fn slim_drops_managed_fields_and_the_last_applied_copy_only() {
        let mut d = deployment("x", "one", Some("h"));
        d.metadata.managed_fields = Some(vec![Default::default()]);
        d.annotations_mut()
            .insert("kubectl.kubernetes.io/last-applied-configuration".into(), "{}".into());
        slim(&mut d);
        assert!(d.managed_fields().is_empty());
        assert_eq!(d.annotations().len(), 1);
        assert_eq!(seen(Some(&d)), Seen::Present(Some("h".into())));
    }
}
