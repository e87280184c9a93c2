//! Pure builders of the Kubernetes objects of a Flink cluster: functions of the FlinkDeployment and the
//! operator's default Flink configuration that return typed objects. They never call the API, so every
//! field can be asserted in unit tests for each mode and Flink version.

pub mod flink_conf;
pub mod ingress;
pub mod native;
pub mod pod_template;
pub mod standalone;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, KeyToPath,
    ObjectFieldSelector, PodTemplateSpec, ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use crate::crd::{FlinkConfiguration, FlinkDeployment, FlinkDeploymentSpec, FlinkVersion, KubernetesDeploymentMode};
use crate::flink_config;

/// Name Flink gives the container it runs in; pod templates address it by this name.
pub const MAIN_CONTAINER: &str = "flink-main-container";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "flink-operator";
/// Where Flink's scripts read the configuration; the ConfigMap is mounted here.
pub const FLINK_CONF_DIR: &str = "/opt/flink/conf";
/// Entrypoint of the Flink image (jobmanager, taskmanager, standalone-job, else `exec "$@"`).
pub const ENTRYPOINT: &str = "/docker-entrypoint.sh";
/// Fixed ports, so Services and container ports can name them.
pub const RPC_PORT: i32 = 6123;
pub const BLOB_PORT: i32 = 6124;
pub const TASKMANAGER_RPC_PORT: i32 = 6122;
pub const DEFAULT_REST_PORT: i32 = 8081;
/// Env var with the pod IP; Flink's Kubernetes integration reads it under this name.
pub const POD_IP_ENV: &str = "_POD_IP_ADDRESS";
const CONFIG_VOLUME: &str = "flink-config-volume";
const ARTIFACTS_VOLUME: &str = "flink-artifacts";
/// Flink's default `user.artifacts.base-dir`: where `--jars` downloads land.
const ARTIFACTS_DIR: &str = "/opt/flink/artifacts";
const MEBIBYTE: u64 = 1 << 20;

/// A spec the builders cannot turn into objects; names the field to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{field} is required to build the Flink cluster")]
    Missing { field: &'static str },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl BuildError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        BuildError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// How this deployment starts its job: the decide layer chooses, the builders only render it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deploy<'a> {
    /// Savepoint (or retained checkpoint) to start the job from.
    pub restore: Option<&'a str>,
    /// Skip state of operators no longer in the job when restoring.
    pub allow_non_restored_state: bool,
}

/// Everything one FlinkDeployment consists of in its mode.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterObjects {
    pub jobmanager: Deployment,
    /// Standalone mode only; in native mode the JobManager creates its TaskManager pods.
    pub taskmanager: Option<Deployment>,
    /// The internal (RPC/blob) Service first, then the REST Service.
    pub services: Vec<Service>,
    pub config_map: ConfigMap,
    pub ingress: Option<Ingress>,
}

/// JobManager or TaskManager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    JobManager,
    TaskManager,
}

impl Component {
    pub fn label(self) -> &'static str {
        match self {
            Component::JobManager => "jobmanager",
            Component::TaskManager => "taskmanager",
        }
    }

    /// Field prefix of the component in the spec, for error messages.
    pub fn field(self) -> &'static str {
        match self {
            Component::JobManager => "spec.jobManager",
            Component::TaskManager => "spec.taskManager",
        }
    }
}

/// CPU and memory of one component's container.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ComponentResources {
    /// Cores; `None` leaves Flink's default (1 for the JobManager, the slot count for TaskManagers).
    pub cpu: Option<f64>,
    pub memory_bytes: u64,
}

/// The checked, resolved view of a FlinkDeployment that every builder reads.
#[derive(Clone, Debug)]
pub struct Cluster<'a> {
    pub name: String,
    pub namespace: String,
    pub spec: &'a FlinkDeploymentSpec,
    pub version: FlinkVersion,
    pub mode: KubernetesDeploymentMode,
    pub owner: OwnerReference,
    pub deploy: Deploy<'a>,
    pub image: String,
    pub image_pull_policy: String,
    pub rest_port: i32,
    pub jobmanager: ComponentResources,
    pub taskmanager: ComponentResources,
    /// The configuration handed to Flink (see [`flink_conf::effective_conf`]).
    pub conf: FlinkConfiguration,
}

impl<'a> Cluster<'a> {
    pub fn new(fd: &'a FlinkDeployment, defaults: &FlinkConfiguration, deploy: Deploy<'a>) -> Result<Self, BuildError> {
        let spec = &fd.spec;
        let base = flink_conf::base(defaults, spec);
        let mut cluster = Cluster {
            name: required(fd.metadata.name.as_deref(), "metadata.name")?,
            namespace: required(fd.metadata.namespace.as_deref(), "metadata.namespace")?,
            spec,
            version: spec.flink_version.ok_or(BuildError::Missing {
                field: "spec.flinkVersion",
            })?,
            mode: spec.mode(),
            owner: owner_reference(fd)?,
            deploy,
            image: image(spec, &base)?,
            image_pull_policy: image_pull_policy(spec, &base),
            rest_port: rest_port(&base)?,
            jobmanager: component_resources(spec, Component::JobManager)?,
            taskmanager: component_resources(spec, Component::TaskManager)?,
            conf: FlinkConfiguration::new(),
        };
        cluster.conf = flink_conf::effective_conf(&cluster, base)?;
        Ok(cluster)
    }

    pub fn is_application(&self) -> bool {
        self.spec.job.is_some()
    }

    fn type_label(&self) -> &'static str {
        match self.mode {
            KubernetesDeploymentMode::Native => "flink-native-kubernetes",
            KubernetesDeploymentMode::Standalone => "flink-standalone-kubernetes",
        }
    }

    /// Labels that select a component's pods; also what Deployments and Services select by.
    pub fn selector(&self, component: Component) -> BTreeMap<String, String> {
        let mut labels = self.common_selector();
        labels.insert("component".into(), component.label().into());
        labels
    }

    fn common_selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_string(), self.name.clone()),
            ("type".to_string(), self.type_label().to_string()),
        ])
    }

    /// Labels of an object: the selector labels plus the managed-by marker.
    pub fn labels(&self, component: Option<Component>) -> BTreeMap<String, String> {
        let mut labels = match component {
            Some(component) => self.selector(component),
            None => self.common_selector(),
        };
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels
    }

    /// Metadata of an owned object: name, namespace, labels and the controller owner reference.
    pub fn metadata(&self, name: String, component: Option<Component>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    pub fn ha_enabled(&self) -> bool {
        flink_config::ha_enabled(&self.conf)
    }

    /// Kubernetes HA stores leader data in ConfigMaps, so it is the one case Flink pods need API access.
    pub fn kubernetes_ha(&self) -> bool {
        flink_config::first_set(&self.conf, &flink_config::HA_KEYS)
            .is_some_and(|v| v.eq_ignore_ascii_case("kubernetes") || v.ends_with("KubernetesHaServicesFactory"))
    }

    pub fn rest_service_name(&self) -> String {
        format!("{}-rest", self.name)
    }

    pub fn config_map_name(&self) -> String {
        format!("flink-config-{}", self.name)
    }

    pub fn jobmanager_replicas(&self) -> i32 {
        self.spec.job_manager.as_ref().and_then(|jm| jm.replicas).unwrap_or(1)
    }

    pub fn service_account(&self) -> Option<String> {
        self.spec
            .service_account
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// Builds every object of the FlinkDeployment for its mode.
pub fn build(
    fd: &FlinkDeployment,
    defaults: &FlinkConfiguration,
    deploy: Deploy<'_>,
) -> Result<ClusterObjects, BuildError> {
    build_cluster(&Cluster::new(fd, defaults, deploy)?)
}

/// Every object of an already resolved cluster.
pub fn build_cluster(cluster: &Cluster) -> Result<ClusterObjects, BuildError> {
    let mut objects = match cluster.mode {
        KubernetesDeploymentMode::Native => native::build(cluster)?,
        KubernetesDeploymentMode::Standalone => standalone::build(cluster)?,
    };
    objects.ingress = ingress::ingress(cluster)?;
    Ok(objects)
}

fn required(value: Option<&str>, field: &'static str) -> Result<String, BuildError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string)
        .ok_or(BuildError::Missing { field })
}

/// Controller reference that also blocks the FlinkDeployment's foreground deletion until the object is
/// gone (kube only sets `controller`).
fn owner_reference(fd: &FlinkDeployment) -> Result<OwnerReference, BuildError> {
    // controller_owner_ref needs name and uid; name is checked separately, so a miss here is the uid.
    let owner = fd
        .controller_owner_ref(&())
        .ok_or(BuildError::Missing { field: "metadata.uid" })?;
    Ok(OwnerReference {
        block_owner_deletion: Some(true),
        ..owner
    })
}

/// The image from the spec, else from the Flink option users may set instead.
fn image(spec: &FlinkDeploymentSpec, conf: &FlinkConfiguration) -> Result<String, BuildError> {
    let from_conf = || flink_config::first_set(conf, &["kubernetes.container.image.ref", "kubernetes.container.image"]);
    spec.image
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .or_else(from_conf)
        .map(str::to_string)
        .ok_or(BuildError::Missing { field: "spec.image" })
}

fn image_pull_policy(spec: &FlinkDeploymentSpec, conf: &FlinkConfiguration) -> String {
    spec.image_pull_policy
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .or_else(|| flink_config::first_set(conf, &["kubernetes.container.image.pull-policy"]))
        .unwrap_or("IfNotPresent")
        .to_string()
}

/// A user's `rest.port` is kept (and exposed by the REST Service); Flink's default otherwise.
fn rest_port(conf: &FlinkConfiguration) -> Result<i32, BuildError> {
    let Some(text) = flink_config::first_set(conf, &["rest.port"]) else {
        return Ok(DEFAULT_REST_PORT);
    };
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(i32::from(port)),
        _ => Err(BuildError::invalid(
            "spec.flinkConfiguration",
            format!("rest.port must be a single port number, got '{text}'"),
        )),
    }
}

fn component_resources(spec: &FlinkDeploymentSpec, component: Component) -> Result<ComponentResources, BuildError> {
    let resource = match component {
        Component::JobManager => spec.job_manager.as_ref().and_then(|jm| jm.resource.as_ref()),
        Component::TaskManager => spec.task_manager.as_ref().and_then(|tm| tm.resource.as_ref()),
    };
    let memory = resource.and_then(|r| r.memory.as_deref()).ok_or(BuildError::Missing {
        field: match component {
            Component::JobManager => "spec.jobManager.resource.memory",
            Component::TaskManager => "spec.taskManager.resource.memory",
        },
    })?;
    let memory_bytes = flink_config::parse_memory_size(memory)
        .map_err(|why| BuildError::invalid(format!("{}.resource.memory", component.field()), why))?;
    let cpu = resource.and_then(|r| r.cpu);
    if let Some(cpu) = cpu
        && !(cpu.is_finite() && cpu > 0.0)
    {
        return Err(BuildError::invalid(
            format!("{}.resource.cpu", component.field()),
            format!("must be a positive number of cores, got {cpu}"),
        ));
    }
    Ok(ComponentResources { cpu, memory_bytes })
}

/// Memory in Flink's syntax (`m` is mebibytes); Flink does not read Kubernetes suffixes such as `Gi`.
pub fn flink_memory(bytes: u64) -> String {
    if bytes.is_multiple_of(MEBIBYTE) {
        format!("{}m", bytes / MEBIBYTE)
    } else {
        format!("{bytes}b")
    }
}

pub fn memory_quantity(bytes: u64) -> Quantity {
    if bytes.is_multiple_of(MEBIBYTE) {
        Quantity(format!("{}Mi", bytes / MEBIBYTE))
    } else {
        Quantity(bytes.to_string())
    }
}

pub fn cpu_quantity(cpu: f64) -> Quantity {
    let millis = cpu * 1000.0;
    if (millis - millis.round()).abs() > 1e-6 {
        return Quantity(cpu.to_string());
    }
    let millis = millis.round() as i64;
    if millis % 1000 == 0 {
        Quantity((millis / 1000).to_string())
    } else {
        Quantity(format!("{millis}m"))
    }
}

/// Requests equal limits, so the pod gets exactly what Flink sizes its memory pools for.
pub fn resource_requirements(resources: &ComponentResources, default_cpu: f64) -> ResourceRequirements {
    let amounts = BTreeMap::from([
        ("cpu".to_string(), cpu_quantity(resources.cpu.unwrap_or(default_cpu))),
        ("memory".to_string(), memory_quantity(resources.memory_bytes)),
    ]);
    ResourceRequirements {
        limits: Some(amounts.clone()),
        requests: Some(amounts),
        ..ResourceRequirements::default()
    }
}

pub fn pod_ip_env() -> EnvVar {
    EnvVar {
        name: POD_IP_ENV.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: "status.podIP".into(),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

pub fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// The JobManager's ports: REST, RPC and blob server.
pub fn jobmanager_ports(cluster: &Cluster) -> Vec<ContainerPort> {
    vec![
        container_port("rest", cluster.rest_port),
        container_port("jobmanager-rpc", RPC_PORT),
        container_port("blobserver", BLOB_PORT),
    ]
}

pub fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// Scratch space for jars the JobManager fetches (native `pipeline.jars`, standalone `--jars`).
pub fn artifacts_volume() -> (Volume, VolumeMount) {
    let volume = Volume {
        name: ARTIFACTS_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: ARTIFACTS_VOLUME.into(),
        mount_path: ARTIFACTS_DIR.into(),
        ..VolumeMount::default()
    };
    (volume, mount)
}

/// REST Service `<name>-rest` in front of the JobManager (what the operator and the Ingress talk to).
/// The internal Service `<name>` for RPC and blob traffic to the JobManager; headless in native mode
/// (as Flink's client creates it), a ClusterIP in standalone mode.
pub fn internal_service(cluster: &Cluster, headless: bool) -> Service {
    let (cluster_ip, type_) = if headless {
        (Some("None".to_string()), None)
    } else {
        (None, Some("ClusterIP".to_string()))
    };
    Service {
        metadata: cluster.metadata(cluster.name.clone(), None),
        spec: Some(ServiceSpec {
            cluster_ip,
            type_,
            selector: Some(cluster.selector(Component::JobManager)),
            ports: Some(vec![
                service_port("jobmanager-rpc", RPC_PORT),
                service_port("blobserver", BLOB_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn rest_service(cluster: &Cluster) -> Service {
    Service {
        metadata: cluster.metadata(cluster.rest_service_name(), None),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(cluster.selector(Component::JobManager)),
            ports: Some(vec![service_port("rest", cluster.rest_port)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The ConfigMap volume with one item per file, so exactly these files appear in the conf dir.
pub fn config_volume(cluster: &Cluster, files: &[String]) -> Volume {
    let items = files
        .iter()
        .map(|file| KeyToPath {
            key: file.clone(),
            path: file.clone(),
            ..KeyToPath::default()
        })
        .collect();
    Volume {
        name: CONFIG_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: cluster.config_map_name(),
            items: Some(items),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

pub fn config_volume_mount() -> VolumeMount {
    VolumeMount {
        name: CONFIG_VOLUME.into(),
        mount_path: FLINK_CONF_DIR.into(),
        ..VolumeMount::default()
    }
}

/// Merges the user's pod templates over the generated pod, then restores the labels the Deployment and
/// Services select by (a template must not be able to orphan the pods).
pub fn finish_pod(
    cluster: &Cluster,
    generated: PodTemplateSpec,
    component: Component,
) -> Result<PodTemplateSpec, BuildError> {
    let mut pod = pod_template::apply(generated, cluster.spec, component)?;
    let metadata = pod.metadata.get_or_insert_with(ObjectMeta::default);
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(cluster.labels(Some(component)));
    Ok(pod)
}

/// A Deployment of one component's pods.
pub fn deployment(
    cluster: &Cluster,
    name: String,
    component: Component,
    replicas: i32,
    pod: PodTemplateSpec,
    strategy: Option<&str>,
) -> Deployment {
    Deployment {
        metadata: cluster.metadata(name, Some(component)),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(cluster.selector(component)),
                ..LabelSelector::default()
            },
            strategy: strategy.map(|kind| DeploymentStrategy {
                type_: Some(kind.into()),
                ..DeploymentStrategy::default()
            }),
            template: pod,
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub const NAMESPACE: &str = "flink-ns";
    pub const UID: &str = "0f6c3f0e-1111-2222-3333-444455556666";

    /// A FlinkDeployment from YAML, placed in a namespace with a uid as the API server would store it.
    pub fn from_yaml(yaml: &str) -> FlinkDeployment {
        let mut fd: FlinkDeployment = serde_yaml::from_str(yaml).expect("example parses");
        fd.metadata.namespace = Some(NAMESPACE.into());
        fd.metadata.uid = Some(UID.into());
        fd
    }

    pub fn example(name: &str) -> FlinkDeployment {
        let yaml = match name {
            "basic" => include_str!("../../examples/basic.yaml"),
            "basic-checkpoint-ha" => include_str!("../../examples/basic-checkpoint-ha.yaml"),
            "basic-ingress" => include_str!("../../examples/basic-ingress.yaml"),
            "basic-reactive" => include_str!("../../examples/basic-reactive.yaml"),
            "basic-session-deployment-only" => include_str!("../../examples/basic-session-deployment-only.yaml"),
            "custom-logging" => include_str!("../../examples/custom-logging.yaml"),
            "flink-2" => include_str!("../../examples/flink-2.yaml"),
            "pod-template" => include_str!("../../examples/pod-template.yaml"),
            "standalone-application" => include_str!("../../examples/standalone-application.yaml"),
            other => panic!("no example {other}"),
        };
        from_yaml(yaml)
    }

    pub fn build_example(name: &str) -> ClusterObjects {
        build(&example(name), &FlinkConfiguration::new(), Deploy::default()).expect("example builds")
    }

    pub fn set_conf(fd: &mut FlinkDeployment, key: &str, value: &str) {
        fd.spec
            .flink_configuration
            .get_or_insert_with(FlinkConfiguration::new)
            .insert(key.into(), value.into());
    }

    pub fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    pub fn flink_container(deployment: &Deployment) -> &k8s_openapi::api::core::v1::Container {
        pod_spec(deployment)
            .containers
            .iter()
            .find(|c| c.name == MAIN_CONTAINER)
            .expect("main container")
    }

    /// (name, port) of every container port.
    pub fn container_ports(container: &k8s_openapi::api::core::v1::Container) -> Vec<(&str, i32)> {
        container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref().unwrap_or(""), p.container_port))
            .collect()
    }

    /// (name, port) of every Service port.
    pub fn service_ports(service: &Service) -> Vec<(&str, i32)> {
        let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
        ports
            .into_iter()
            .flatten()
            .map(|p| (p.name.as_deref().unwrap_or(""), p.port))
            .collect()
    }

    pub fn pod_spec(deployment: &Deployment) -> &k8s_openapi::api::core::v1::PodSpec {
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn quantities_are_exact() {
        assert_eq!(cpu_quantity(0.5), Quantity("500m".into()));
        assert_eq!(cpu_quantity(2.0), Quantity("2".into()));
        assert_eq!(cpu_quantity(0.25), Quantity("250m".into()));
        assert_eq!(cpu_quantity(0.0005), Quantity("0.0005".into()));
        assert_eq!(memory_quantity(1024 << 20), Quantity("1024Mi".into()));
        assert_eq!(memory_quantity(1_500_000), Quantity("1500000".into()));
        assert_eq!(flink_memory(2 << 30), "2048m");
        assert_eq!(flink_memory(1_500_000), "1500000b");
    }

    #[test]
    fn labels_selector_and_owner() {
        let fd = example("basic");
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert_eq!(
            cluster.selector(Component::JobManager),
            string_map(&[
                ("app", "basic-example"),
                ("component", "jobmanager"),
                ("type", "flink-native-kubernetes")
            ])
        );
        let meta = cluster.metadata("x".into(), None);
        assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(
            meta.labels,
            Some(string_map(&[
                ("app", "basic-example"),
                ("type", "flink-native-kubernetes"),
                (MANAGED_BY_LABEL, MANAGED_BY)
            ]))
        );
        let owner = &meta.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "FlinkDeployment");
        assert_eq!(owner.api_version, "flink.apache.org/v1beta1");
        assert_eq!(owner.name, "basic-example");
        assert_eq!(owner.uid, UID);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));

        let standalone = example("standalone-application");
        let cluster = Cluster::new(&standalone, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert_eq!(
            cluster.selector(Component::TaskManager).get("type").map(String::as_str),
            Some("flink-standalone-kubernetes")
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let build_err = |fd: &FlinkDeployment| build(fd, &FlinkConfiguration::new(), Deploy::default()).unwrap_err();
        let mut fd = example("basic");
        fd.metadata.namespace = None;
        assert_eq!(
            build_err(&fd),
            BuildError::Missing {
                field: "metadata.namespace"
            }
        );
        let mut fd = example("basic");
        fd.metadata.uid = None;
        assert_eq!(build_err(&fd), BuildError::Missing { field: "metadata.uid" });
        let mut fd = example("basic");
        fd.spec.flink_version = None;
        assert_eq!(
            build_err(&fd),
            BuildError::Missing {
                field: "spec.flinkVersion"
            }
        );
        let mut fd = example("basic");
        fd.spec.image = None;
        assert_eq!(build_err(&fd), BuildError::Missing { field: "spec.image" });
        let mut fd = example("basic");
        fd.spec.task_manager.as_mut().unwrap().resource.as_mut().unwrap().memory = None;
        assert_eq!(
            build_err(&fd),
            BuildError::Missing {
                field: "spec.taskManager.resource.memory"
            }
        );
        let mut fd = example("basic");
        fd.spec.job_manager.as_mut().unwrap().resource.as_mut().unwrap().memory = Some("lots".into());
        assert!(
            matches!(build_err(&fd), BuildError::Invalid { field, .. } if field == "spec.jobManager.resource.memory")
        );
        let mut fd = example("basic");
        set_conf(&mut fd, "rest.port", "8000-8100");
        assert!(matches!(build_err(&fd), BuildError::Invalid { field, .. } if field == "spec.flinkConfiguration"));
    }

    #[test]
    fn image_may_come_from_the_configuration() {
        let mut fd = example("basic");
        fd.spec.image = None;
        fd.spec.image_pull_policy = None;
        set_conf(&mut fd, "kubernetes.container.image.ref", "registry/flink:1.20");
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert_eq!(cluster.image, "registry/flink:1.20");
        assert_eq!(cluster.image_pull_policy, "IfNotPresent");
    }

    #[test]
    fn build_gives_each_mode_its_objects() {
        let native = build_example("basic");
        assert!(native.taskmanager.is_none());
        assert_eq!(native.services.len(), 2);
        assert!(native.ingress.is_none());
        let standalone = build_example("standalone-application");
        assert!(standalone.taskmanager.is_some());
        assert_eq!(standalone.services.len(), 2);
        assert!(build_example("basic-ingress").ingress.is_some());
    }
}
