//! Objects as the watches decode them: without `metadata.managedFields`, and Deployments without their pod
//! template.
//!
//! Every object the API server sends carries `managedFields`: one entry per writer, each with a tree of every
//! field that writer set (for a Deployment applied by the operator, every field of its pod template). The
//! operator never reads them, yet decoding them into `serde_json::Value` trees, to drop them right after
//! (`cache::slim`), was about 4 % of its CPU in the 1000-resource benchmark, and the pod templates the
//! Deployment store kept whole another share (BENCHMARKS.md). `Slim<K>` decodes `K` with those fields skipped
//! (serde passes over an unknown field without building anything); the watches decode `Slim<K>` and hand on
//! the `K` inside.

use std::borrow::Cow;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher::Event;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

use crate::crd::{FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus};

/// `K`, decoded without what the operator never reads (see the module's comment).
#[derive(Clone, Debug)]
pub struct Slim<K>(pub K);

/// A type that can be decoded slim.
pub trait SlimDecode: Sized {
    fn decode_slim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

impl<'de, K: SlimDecode> Deserialize<'de> for Slim<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::decode_slim(deserializer).map(Slim)
    }
}

/// The API of `Slim<K>` is that of `K` (same URLs, same metadata-only requests when `K` asks for them).
impl<K: Resource> Resource for Slim<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn api_version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::api_version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn metadata_api() -> bool {
        K::metadata_api()
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

/// A watch event of `Slim<K>` as the event of the `K` inside.
pub fn unwrap_event<K>(event: Event<Slim<K>>) -> Event<K> {
    match event {
        Event::Apply(Slim(object)) => Event::Apply(object),
        Event::Delete(Slim(object)) => Event::Delete(object),
        Event::Init => Event::Init,
        Event::InitApply(Slim(object)) => Event::InitApply(object),
        Event::InitDone => Event::InitDone,
    }
}

/// Sends `request` (a write to a `K`) asking for the metadata alone in the answer, decoded slim: the API
/// server spares encoding the whole object, the operator decoding it and its `managedFields`.
pub async fn metadata_answer<K: Resource + Clone>(
    api: &Api<K>,
    mut request: http::Request<Vec<u8>>,
) -> Result<ObjectMeta, kube::Error> {
    const METADATA_ONLY: http::HeaderValue =
        http::HeaderValue::from_static("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");
    request.headers_mut().insert(http::header::ACCEPT, METADATA_ONLY);
    // Boxed, as every API call of a reconciliation is (see `controller`'s task size test).
    let client = api.clone().into_client();
    let Slim(answer) = Box::pin(client.request::<Slim<PartialObjectMeta<K>>>(request)).await?;
    Ok(answer.metadata)
}

/// Patches the `K` named `name`, reading back its metadata alone (`metadata_answer`).
pub async fn patch_metadata<K: Resource + Clone, P: serde::Serialize + std::fmt::Debug>(
    api: &Api<K>,
    name: &str,
    params: &kube::api::PatchParams,
    patch: &kube::api::Patch<P>,
) -> Result<ObjectMeta, kube::Error> {
    let request = kube::core::Request::new(api.resource_url())
        .patch(name, params, patch)
        .map_err(kube::Error::BuildRequest)?;
    metadata_answer(api, request).await
}

/// `ObjectMeta` as it is decoded: every field but `managedFields` (skipped, being unknown here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaWire {
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default)]
    deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
    #[serde(default)]
    finalizers: Option<Vec<String>>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    self_link: Option<String>,
    #[serde(default)]
    uid: Option<String>,
}

impl From<MetaWire> for ObjectMeta {
    fn from(wire: MetaWire) -> ObjectMeta {
        ObjectMeta {
            annotations: wire.annotations,
            creation_timestamp: wire.creation_timestamp,
            deletion_grace_period_seconds: wire.deletion_grace_period_seconds,
            deletion_timestamp: wire.deletion_timestamp,
            finalizers: wire.finalizers,
            generate_name: wire.generate_name,
            generation: wire.generation,
            labels: wire.labels,
            managed_fields: None,
            name: wire.name,
            namespace: wire.namespace,
            owner_references: wire.owner_references,
            resource_version: wire.resource_version,
            self_link: wire.self_link,
            uid: wire.uid,
        }
    }
}

fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    MetaWire::deserialize(deserializer).map(ObjectMeta::from)
}

#[derive(Deserialize)]
struct FlinkDeploymentWire {
    #[serde(deserialize_with = "metadata")]
    metadata: ObjectMeta,
    spec: FlinkDeploymentSpec,
    #[serde(default)]
    status: Option<FlinkDeploymentStatus>,
}

impl SlimDecode for FlinkDeployment {
    fn decode_slim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = FlinkDeploymentWire::deserialize(deserializer)?;
        Ok(FlinkDeployment {
            metadata: wire.metadata,
            spec: wire.spec,
            status: wire.status,
        })
    }
}

/// What the operator reads of a Deployment's spec: its replicas (the pod template is never read back; what
/// was applied is known by its hash, `deployment::APPLIED_HASH`).
#[derive(Deserialize)]
struct DeploymentSpecWire {
    #[serde(default)]
    replicas: Option<i32>,
}

#[derive(Deserialize)]
struct DeploymentWire {
    #[serde(deserialize_with = "metadata")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<DeploymentSpecWire>,
    #[serde(default)]
    status: Option<DeploymentStatus>,
}

/// A Deployment with its metadata, `spec.replicas` and status; the rest of its spec is left at defaults.
impl SlimDecode for Deployment {
    fn decode_slim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = DeploymentWire::deserialize(deserializer)?;
        Ok(Deployment {
            metadata: wire.metadata,
            spec: wire.spec.map(|spec| DeploymentSpec {
                replicas: spec.replicas,
                ..DeploymentSpec::default()
            }),
            status: wire.status,
        })
    }
}

#[derive(Deserialize)]
struct MetadataWire {
    #[serde(default, deserialize_with = "metadata")]
    metadata: ObjectMeta,
}

impl<K> SlimDecode for PartialObjectMeta<K> {
    fn decode_slim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = MetadataWire::deserialize(deserializer)?;
        Ok(PartialObjectMeta {
            types: None,
            metadata: wire.metadata,
            _phantom: std::marker::PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    fn managed_fields() -> serde_json::Value {
        json!([{
            "manager": "flink-operator", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2026-12-07T10:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}
        }])
    }

    fn full_metadata() -> serde_json::Value {
        json!({
            "name": "fd", "namespace": "ns", "uid": "u-1", "resourceVersion": "42", "generation": 3,
            "generateName": "f", "selfLink": "/x", "deletionGracePeriodSeconds": 30,
            "creationTimestamp": "2026-12-07T10:00:00Z", "deletionTimestamp": "2026-12-07T10:01:00Z",
            "labels": {"app": "fd"}, "annotations": {"a": "b"}, "finalizers": ["f/x"],
            "ownerReferences": [{"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "name": "fd", "uid": "u-0", "controller": true}],
            "managedFields": managed_fields()
        })
    }

    #[test]
    fn metadata_is_decoded_whole_but_for_managed_fields() {
        let raw = json!({"metadata": full_metadata()});
        let slim: Slim<PartialObjectMeta<ConfigMap>> = serde_json::from_value(raw.clone()).unwrap();
        let full: PartialObjectMeta<ConfigMap> = serde_json::from_value(raw).unwrap();
        assert!(
            full.metadata.managed_fields.is_some(),
            "the fixture carries managedFields"
        );
        let expected = ObjectMeta {
            managed_fields: None,
            ..full.metadata
        };
        assert_eq!(slim.0.metadata, expected);
    }

    #[test]
    fn a_flink_deployment_is_decoded_as_the_full_type_is_but_for_managed_fields() {
        let raw = json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": full_metadata(),
            "spec": {"image": "flink:1.20", "flinkVersion": "v1_20", "serviceAccount": "flink",
                "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
                "jobManager": {"resource": {"memory": "2048m", "cpu": 1}},
                "taskManager": {"resource": {"memory": "2048m", "cpu": 1}},
                "job": {"jarURI": "local:///opt/flink/examples/streaming/StateMachineExample.jar",
                    "parallelism": 2, "upgradeMode": "stateless"}},
            "status": {"jobManagerDeploymentStatus": "DEPLOYING", "observedGeneration": 3}
        });
        let Slim(slim): Slim<FlinkDeployment> = serde_json::from_value(raw.clone()).unwrap();
        let mut full: FlinkDeployment = serde_json::from_value(raw).unwrap();
        full.metadata.managed_fields = None;
        assert_eq!(serde_json::to_value(slim).unwrap(), serde_json::to_value(full).unwrap());
        // Without a status (a new resource).
        let raw = json!({"metadata": {"name": "fd"}, "spec": {}});
        let Slim(slim): Slim<FlinkDeployment> = serde_json::from_value(raw.clone()).unwrap();
        let full: FlinkDeployment = serde_json::from_value(raw).unwrap();
        assert_eq!(serde_json::to_value(slim).unwrap(), serde_json::to_value(full).unwrap());
    }

    #[test]
    fn a_deployment_keeps_its_replicas_and_status_not_its_pod_template() {
        let raw = json!({
            "metadata": full_metadata(),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "fd"}},
                "template": {"metadata": {"labels": {"app": "fd"}},
                    "spec": {"containers": [{"name": "flink-main-container", "image": "flink:1.20"}]}}},
            "status": {"replicas": 2, "availableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
        });
        let Slim(slim): Slim<Deployment> = serde_json::from_value(raw.clone()).unwrap();
        let full: Deployment = serde_json::from_value(raw).unwrap();
        assert_eq!(slim.spec.as_ref().and_then(|s| s.replicas), Some(2));
        assert_eq!(slim.spec.as_ref().map(|s| s.template.clone()), Some(Default::default()));
        assert_eq!(slim.status, full.status);
        assert_eq!(slim.metadata.managed_fields, None);
        assert_eq!(slim.metadata.owner_references, full.metadata.owner_references);
        // A Deployment without a spec or status decodes too.
        let Slim(bare): Slim<Deployment> = serde_json::from_value(json!({"metadata": {"name": "d"}})).unwrap();
        assert_eq!((bare.spec, bare.status), (None, None));
    }

    #[test]
    fn slim_types_keep_the_urls_and_request_kind_of_the_type_inside() {
        assert_eq!(
            Slim::<Deployment>::url_path(&(), Some("ns")),
            Deployment::url_path(&(), Some("ns"))
        );
        assert_eq!(
            Slim::<FlinkDeployment>::url_path(&(), None),
            FlinkDeployment::url_path(&(), None)
        );
        assert!(Slim::<PartialObjectMeta<ConfigMap>>::metadata_api());
        assert!(!Slim::<Deployment>::metadata_api());
    }

    #[test]
    fn a_malformed_object_is_an_error_not_a_panic() {
        assert!(serde_json::from_value::<Slim<Deployment>>(json!({"metadata": 3})).is_err());
        assert!(serde_json::from_value::<Slim<FlinkDeployment>>(json!({"metadata": {}, "spec": 3})).is_err());
        assert!(serde_json::from_value::<Slim<FlinkDeployment>>(json!({"metadata": {"name": 3}, "spec": {}})).is_err());
        assert!(serde_json::from_value::<Slim<PartialObjectMeta<ConfigMap>>>(json!("x")).is_err());
    }
}
