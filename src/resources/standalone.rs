//! Standalone mode: the operator runs JobManager and TaskManager Deployments from Flink's docker entrypoint
//! (`standalone-job`, `jobmanager`, `taskmanager`), so Flink pods need no Kubernetes rights of their own.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Probe, Service, TCPSocketAction, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    BuildError, Cluster, ClusterObjects, Component, ENTRYPOINT, MAIN_CONTAINER, POD_IP_ENV, config_volume,
    config_volume_mount, container_port, deployment, finish_pod, flink_conf, jobmanager_ports, pod_ip_env,
    resource_requirements,
};
use crate::crd::FlinkVersion;
use crate::flink_config::{self, NUMBER_OF_TASK_SLOTS};

/// Where Flink's standalone entrypoint looks for user jars on its own.
const USRLIB: &str = "/opt/flink/usrlib/";

/// How the standalone JobManager finds the job jar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserJar {
    /// No jarURI: the entry class must be on the image's classpath (e.g. a jar in usrlib).
    None,
    /// Inside usrlib, which the entrypoint scans by itself.
    InUsrlib,
    /// A jar elsewhere in the image: put on the user classpath through `pipeline.classpaths` (works on every
    /// version, and TaskManagers of the same image load it from the same path).
    Classpath(String),
    /// A remote jar fetched by the JobManager with `--jars` (Flink 1.19+) and shipped to TaskManagers.
    Fetch(String),
}

pub fn user_jar(cluster: &Cluster) -> Result<UserJar, BuildError> {
    let Some(uri) = cluster.spec.job.as_ref().and_then(|j| j.jar_uri.as_deref()) else {
        return Ok(UserJar::None);
    };
    let field = "spec.job.jarURI";
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| BuildError::invalid(field, format!("'{uri}' is not a URI")))?;
    if scheme.eq_ignore_ascii_case("local") || scheme.eq_ignore_ascii_case("file") {
        if !rest.starts_with('/') {
            return Err(BuildError::invalid(
                field,
                format!("'{uri}' must name an absolute path, e.g. local:///opt/flink/usrlib/job.jar"),
            ));
        }
        return Ok(match rest.starts_with(USRLIB) {
            true => UserJar::InUsrlib,
            false => UserJar::Classpath(format!("file://{rest}")),
        });
    }
    if cluster.version >= FlinkVersion::V1_19 {
        return Ok(UserJar::Fetch(uri.to_string()));
    }
    Err(BuildError::invalid(
        field,
        format!(
            "standalone mode on Flink before 1.19 cannot fetch '{uri}': put the jar into the image and use \
             local://, or use Flink 1.19 or newer"
        ),
    ))
}

/// Arguments of the image entrypoint for the JobManager.
pub fn jobmanager_args(cluster: &Cluster) -> Result<Vec<String>, BuildError> {
    let Some(job) = &cluster.spec.job else {
        let mut args = vec!["jobmanager".to_string()];
        args.extend(ha_args(cluster));
        return Ok(args);
    };
    let mut args = vec!["standalone-job".to_string()];
    if let Some(class) = &job.entry_class {
        args.extend(["--job-classname".to_string(), class.clone()]);
    }
    if let UserJar::Fetch(uri) = user_jar(cluster)? {
        args.extend(["--jars".to_string(), uri]);
    }
    if let Some(path) = cluster.deploy.restore {
        args.extend(["--fromSavepoint".to_string(), path.to_string()]);
        if cluster.deploy.allow_non_restored_state {
            args.push("--allowNonRestoredState".to_string());
        }
    }
    args.extend(ha_args(cluster));
    args.extend(job.args.iter().flatten().cloned());
    Ok(args)
}

/// With HA, TaskManagers find the leader through HA services, so each JobManager must announce its own pod
/// IP rather than the shared Service name. `-D` and the value are separate words: Flink 1.x's
/// jobmanager.sh only passes on dynamic properties that start with a bare `-D`.
fn ha_args(cluster: &Cluster) -> Vec<String> {
    match cluster.ha_enabled() {
        true => vec!["-D".to_string(), format!("jobmanager.rpc.address=$({POD_IP_ENV})")],
        false => Vec::new(),
    }
}

/// `taskManager.replicas`, else enough TaskManagers for the job's parallelism.
pub fn taskmanager_replicas(cluster: &Cluster) -> Result<i32, BuildError> {
    if let Some(replicas) = cluster.spec.task_manager.as_ref().and_then(|tm| tm.replicas) {
        if replicas < 0 {
            return Err(BuildError::invalid(
                "spec.taskManager.replicas",
                format!("must not be negative, got {replicas}"),
            ));
        }
        return Ok(replicas);
    }
    let slots = positive_conf(cluster, NUMBER_OF_TASK_SLOTS)?.unwrap_or(1);
    let parallelism = match cluster.spec.job.as_ref().and_then(|j| j.parallelism) {
        Some(parallelism) => parallelism,
        None => positive_conf(cluster, "parallelism.default")?.unwrap_or(1),
    };
    Ok(((parallelism + slots - 1) / slots).max(1))
}

fn positive_conf(cluster: &Cluster, key: &str) -> Result<Option<i32>, BuildError> {
    let Some(text) = flink_config::first_set(&cluster.conf, &[key]) else {
        return Ok(None);
    };
    match text.parse::<i32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(BuildError::invalid(
            "spec.flinkConfiguration",
            format!("{key} must be a positive integer, got '{text}'"),
        )),
    }
}

fn tcp_probe(cluster: &Cluster, initial_delay: i32, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(cluster.rest_port),
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn main_container(cluster: &Cluster, args: Vec<String>) -> Container {
    Container {
        name: MAIN_CONTAINER.into(),
        image: Some(cluster.image.clone()),
        image_pull_policy: Some(cluster.image_pull_policy.clone()),
        command: Some(vec![ENTRYPOINT.into()]),
        args: Some(args),
        env: Some(vec![pod_ip_env()]),
        volume_mounts: Some(vec![config_volume_mount()]),
        ..Container::default()
    }
}

fn config_file_names(cluster: &Cluster) -> Result<Vec<String>, BuildError> {
    Ok(flink_conf::config_files(cluster)?.into_keys().collect())
}

/// JobManager Deployment `<name>`. `Recreate`: two JobManagers of one cluster must never run at once.
pub fn jobmanager_deployment(cluster: &Cluster) -> Result<Deployment, BuildError> {
    let mut container = main_container(cluster, jobmanager_args(cluster)?);
    container.ports = Some(jobmanager_ports(cluster));
    container.resources = Some(resource_requirements(&cluster.jobmanager, 1.0));
    container.liveness_probe = Some(tcp_probe(cluster, 30, 10));
    container.readiness_probe = Some(tcp_probe(cluster, 5, 5));
    let mut volumes = vec![config_volume(cluster, &config_file_names(cluster)?)];
    if cluster.is_application() {
        let (volume, mount) = super::artifacts_volume();
        volumes.push(volume);
        container.volume_mounts.get_or_insert_with(Vec::new).push(mount);
    }
    let generated = pod_template(cluster, Component::JobManager, container, volumes);
    let pod = finish_pod(cluster, generated, Component::JobManager)?;
    Ok(deployment(
        cluster,
        cluster.name.clone(),
        Component::JobManager,
        cluster.jobmanager_replicas(),
        pod,
        Some("Recreate"),
    ))
}

/// TaskManager Deployment `<name>-taskmanager`.
pub fn taskmanager_deployment(cluster: &Cluster) -> Result<Deployment, BuildError> {
    let mut container = main_container(cluster, vec!["taskmanager".to_string()]);
    let slots = positive_conf(cluster, NUMBER_OF_TASK_SLOTS)?.unwrap_or(1);
    container.resources = Some(resource_requirements(&cluster.taskmanager, f64::from(slots)));
    let rpc_port = flink_config::first_set(&cluster.conf, &["taskmanager.rpc.port"]).and_then(|p| p.parse().ok());
    container.ports = rpc_port.map(|port| vec![container_port("taskmanager-rpc", port)]);
    let volumes = vec![config_volume(cluster, &config_file_names(cluster)?)];
    let generated = pod_template(cluster, Component::TaskManager, container, volumes);
    let pod = finish_pod(cluster, generated, Component::TaskManager)?;
    Ok(deployment(
        cluster,
        format!("{}-taskmanager", cluster.name),
        Component::TaskManager,
        taskmanager_replicas(cluster)?,
        pod,
        None,
    ))
}

/// Pod shared by both components. The service-account token is only mounted for Kubernetes HA, whose
/// leader election and job metadata live in ConfigMaps that Flink reads and writes itself; otherwise Flink
/// pods get no Kubernetes access at all.
fn pod_template(
    cluster: &Cluster,
    component: Component,
    container: Container,
    volumes: Vec<Volume>,
) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(cluster.labels(Some(component))),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            service_account_name: cluster.service_account(),
            automount_service_account_token: Some(cluster.kubernetes_ha()),
            ..PodSpec::default()
        }),
    }
}

/// Internal Service `<name>` (RPC, blob) and REST Service `<name>-rest`.
///
/// The internal Service is a normal ClusterIP rather than headless (as native mode uses): TaskManagers
/// reach the JobManager by this name, and a stable virtual IP survives JobManager restarts without the
/// JVM's DNS cache holding a dead pod IP. With HA the leader is found through HA services instead.
pub fn services(cluster: &Cluster) -> Vec<Service> {
    vec![super::internal_service(cluster, false), super::rest_service(cluster)]
}

pub fn build(cluster: &Cluster) -> Result<ClusterObjects, BuildError> {
    Ok(ClusterObjects {
        jobmanager: jobmanager_deployment(cluster)?,
        taskmanager: Some(taskmanager_deployment(cluster)?),
        services: services(cluster),
        config_map: flink_conf::config_map(cluster)?,
        ingress: None,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::EnvVar;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::super::test_support::*;
    use super::super::{Deploy, build as build_all};
    use super::*;
    use crate::crd::{FlinkConfiguration, FlinkDeployment, KubernetesDeploymentMode};

    fn cluster_of<'a>(fd: &'a FlinkDeployment, deploy: Deploy<'a>) -> Cluster<'a> {
        Cluster::new(fd, &FlinkConfiguration::new(), deploy).unwrap()
    }

    fn standalone(name: &str) -> FlinkDeployment {
        let mut fd = example(name);
        fd.spec.mode = Some(KubernetesDeploymentMode::Standalone);
        fd
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn env_names(container: &Container) -> Vec<&str> {
        container
            .env
            .iter()
            .flatten()
            .map(|e: &EnvVar| e.name.as_str())
            .collect()
    }

    #[test]
    fn jobmanager_deployment_of_application() {
        let objects = build_example("standalone-application");
        let jm = &objects.jobmanager;
        assert_eq!(jm.metadata.name.as_deref(), Some("standalone-application-example"));
        assert_eq!(jm.metadata.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(jm.metadata.owner_references.as_ref().unwrap()[0].uid, UID);
        let selector = string_map(&[
            ("app", "standalone-application-example"),
            ("component", "jobmanager"),
            ("type", "flink-standalone-kubernetes"),
        ]);
        let mut labels = selector.clone();
        labels.insert(super::super::MANAGED_BY_LABEL.into(), "flink-operator".into());
        assert_eq!(jm.metadata.labels.as_ref(), Some(&labels));
        let spec = jm.spec.as_ref().unwrap();
        assert_eq!(spec.selector.match_labels.as_ref(), Some(&selector));
        assert_eq!(spec.template.metadata.as_ref().unwrap().labels.as_ref(), Some(&labels));
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.as_ref().unwrap().type_.as_deref(), Some("Recreate"));

        let container = flink_container(jm);
        assert_eq!(container.image.as_deref(), Some("flink:1.20"));
        assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(container.command, Some(strings(&["/docker-entrypoint.sh"])));
        assert_eq!(
            container.args,
            Some(strings(&[
                "standalone-job",
                "--job-classname",
                "org.apache.flink.operator.testjob.KeyedCounter"
            ]))
        );
        assert_eq!(env_names(container), ["_POD_IP_ADDRESS"]);
        let ports = container_ports(container);
        assert_eq!(ports, [("rest", 8081), ("jobmanager-rpc", 6123), ("blobserver", 6124)]);
        let resources = container.resources.as_ref().unwrap();
        let expected = [
            ("cpu".to_string(), Quantity("500m".into())),
            ("memory".to_string(), Quantity("1024Mi".into())),
        ]
        .into();
        assert_eq!(resources.requests.as_ref(), Some(&expected));
        assert_eq!(resources.limits.as_ref(), Some(&expected));
        for probe in [&container.liveness_probe, &container.readiness_probe] {
            let tcp = probe.as_ref().unwrap().tcp_socket.as_ref().unwrap();
            assert_eq!(tcp.port, IntOrString::Int(8081));
        }
        let mounts: Vec<_> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("flink-config-volume", "/opt/flink/conf"),
                ("flink-artifacts", "/opt/flink/artifacts")
            ]
        );

        let pod = pod_spec(jm);
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name.as_deref(), Some("flink"));
        let config = pod.volumes.as_ref().unwrap()[0].config_map.as_ref().unwrap();
        assert_eq!(config.name, "flink-config-standalone-application-example");
        let items: Vec<_> = config.items.iter().flatten().map(|i| i.key.as_str()).collect();
        assert_eq!(items, ["flink-conf.yaml", "log4j-console.properties"]);
    }

    #[test]
    fn taskmanager_deployment() {
        let objects = build_example("standalone-application");
        let tm = objects.taskmanager.as_ref().unwrap();
        assert_eq!(
            tm.metadata.name.as_deref(),
            Some("standalone-application-example-taskmanager")
        );
        let spec = tm.spec.as_ref().unwrap();
        assert_eq!(spec.selector.match_labels.as_ref().unwrap()["component"], "taskmanager");
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy, None);
        let container = flink_container(tm);
        assert_eq!(container.args, Some(strings(&["taskmanager"])));
        assert_eq!(container.command, Some(strings(&["/docker-entrypoint.sh"])));
        assert_eq!(env_names(container), ["_POD_IP_ADDRESS"]);
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 6122);
        assert_eq!(container.liveness_probe, None);
        let limits = container.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["cpu"], Quantity("500m".into()));
        assert_eq!(limits["memory"], Quantity("1024Mi".into()));
        assert_eq!(pod_spec(tm).automount_service_account_token, Some(false));
        assert_eq!(pod_spec(tm).volumes.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn taskmanager_replicas_cover_the_parallelism() {
        let replicas = |parallelism: Option<i32>, slots: &str, replicas: Option<i32>| {
            let mut fd = standalone("standalone-application");
            fd.spec.job.as_mut().unwrap().parallelism = parallelism;
            fd.spec.task_manager.as_mut().unwrap().replicas = replicas;
            set_conf(&mut fd, "taskmanager.numberOfTaskSlots", slots);
            taskmanager_replicas(&cluster_of(&fd, Deploy::default()))
        };
        assert_eq!(replicas(Some(5), "2", None), Ok(3));
        assert_eq!(replicas(Some(4), "2", None), Ok(2));
        assert_eq!(replicas(Some(1), "4", None), Ok(1));
        assert_eq!(replicas(None, "1", None), Ok(1));
        assert_eq!(replicas(Some(8), "1", Some(2)), Ok(2));
        assert!(replicas(Some(2), "none", None).is_err());

        let mut fd = standalone("standalone-application");
        fd.spec.job.as_mut().unwrap().parallelism = None;
        fd.spec.task_manager.as_mut().unwrap().replicas = None;
        set_conf(&mut fd, "parallelism.default", "3");
        assert_eq!(taskmanager_replicas(&cluster_of(&fd, Deploy::default())), Ok(3));

        let objects = build_example("basic-reactive");
        let tm = objects.taskmanager.unwrap();
        assert_eq!(tm.spec.unwrap().replicas, Some(2));
    }

    #[test]
    fn restore_args_come_before_job_args() {
        let mut fd = standalone("standalone-application");
        fd.spec.job.as_mut().unwrap().args = Some(strings(&["--input", "x"]));
        let deploy = Deploy {
            restore: Some("file:///sp/savepoint-1"),
            allow_non_restored_state: true,
        };
        assert_eq!(
            jobmanager_args(&cluster_of(&fd, deploy)),
            Ok(strings(&[
                "standalone-job",
                "--job-classname",
                "org.apache.flink.operator.testjob.KeyedCounter",
                "--fromSavepoint",
                "file:///sp/savepoint-1",
                "--allowNonRestoredState",
                "--input",
                "x",
            ]))
        );
        let deploy = Deploy {
            restore: Some("file:///sp/savepoint-1"),
            allow_non_restored_state: false,
        };
        let args = jobmanager_args(&cluster_of(&fd, deploy)).unwrap();
        assert!(!args.contains(&"--allowNonRestoredState".to_string()));
    }

    #[test]
    fn session_args_and_ha() {
        let fd = standalone("basic-session-deployment-only");
        assert_eq!(
            jobmanager_args(&cluster_of(&fd, Deploy::default())),
            Ok(strings(&["jobmanager"]))
        );
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let mounts = flink_container(&objects.jobmanager).volume_mounts.clone().unwrap();
        assert_eq!(mounts.len(), 1, "no artifacts dir for a session cluster");

        let mut fd = standalone("basic-session-deployment-only");
        set_conf(&mut fd, "high-availability.type", "kubernetes");
        set_conf(&mut fd, "high-availability.storageDir", "file:///ha");
        assert_eq!(
            jobmanager_args(&cluster_of(&fd, Deploy::default())),
            Ok(strings(&[
                "jobmanager",
                "-D",
                "jobmanager.rpc.address=$(_POD_IP_ADDRESS)"
            ]))
        );
    }

    #[test]
    fn service_account_token_only_for_kubernetes_ha() {
        let fd = standalone("basic-checkpoint-ha");
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert_eq!(
            pod_spec(&objects.jobmanager).automount_service_account_token,
            Some(true)
        );
        let tm = objects.taskmanager.as_ref().unwrap();
        assert_eq!(pod_spec(tm).automount_service_account_token, Some(true));
        let args = flink_container(&objects.jobmanager).args.clone().unwrap();
        assert_eq!(
            args[args.len() - 2..],
            strings(&["-D", "jobmanager.rpc.address=$(_POD_IP_ADDRESS)"])
        );

        let mut fd = standalone("basic-checkpoint-ha");
        set_conf(&mut fd, "high-availability.type", "zookeeper");
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert_eq!(
            pod_spec(&objects.jobmanager).automount_service_account_token,
            Some(false)
        );
    }

    #[test]
    fn jars_outside_usrlib() {
        let jar = |uri: &str, version| {
            let mut fd = standalone("standalone-application");
            fd.spec.flink_version = Some(version);
            fd.spec.job.as_mut().unwrap().jar_uri = Some(uri.into());
            let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default())?;
            Ok::<_, BuildError>((user_jar(&cluster)?, jobmanager_args(&cluster)?))
        };
        let (placement, args) = jar("local:///opt/jobs/job.jar", FlinkVersion::V1_20).unwrap();
        assert_eq!(placement, UserJar::Classpath("file:///opt/jobs/job.jar".into()));
        assert!(!args.contains(&"--jars".to_string()));
        let (placement, _) = jar("local:///opt/flink/usrlib/sub/job.jar", FlinkVersion::V1_16).unwrap();
        assert_eq!(placement, UserJar::InUsrlib);
        let (placement, args) = jar("https://repo.example/job.jar", FlinkVersion::V1_20).unwrap();
        assert_eq!(placement, UserJar::Fetch("https://repo.example/job.jar".into()));
        assert_eq!(args[3..5], strings(&["--jars", "https://repo.example/job.jar"]));
        let err = jar("s3://bucket/job.jar", FlinkVersion::V1_18).unwrap_err();
        assert!(matches!(err, BuildError::Invalid { field, .. } if field == "spec.job.jarURI"));
        assert!(jar("local://relative/job.jar", FlinkVersion::V1_20).is_err());
    }

    #[test]
    fn flink_2_reads_config_yaml() {
        let fd = standalone("flink-2");
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let data = objects.config_map.data.as_ref().unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["config.yaml", "log4j-console.properties"]
        );
        for dep in [&objects.jobmanager, objects.taskmanager.as_ref().unwrap()] {
            let volumes = pod_spec(dep).volumes.clone().unwrap();
            let config = volumes
                .iter()
                .find_map(|v| v.config_map.as_ref())
                .expect("config volume");
            let items: Vec<_> = config.items.iter().flatten().map(|i| i.key.as_str()).collect();
            assert_eq!(items, ["config.yaml", "log4j-console.properties"]);
        }
        assert_eq!(
            flink_container(&objects.jobmanager).args.as_ref().unwrap()[0],
            "standalone-job"
        );
    }

    #[test]
    fn services_reach_the_jobmanager() {
        let objects = build_example("standalone-application");
        let [internal, rest] = &objects.services[..] else {
            panic!("two services expected");
        };
        assert_eq!(
            internal.metadata.name.as_deref(),
            Some("standalone-application-example")
        );
        let spec = internal.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.cluster_ip, None);
        assert_eq!(spec.selector.as_ref().unwrap()["component"], "jobmanager");
        let ports = service_ports(internal);
        assert_eq!(ports, [("jobmanager-rpc", 6123), ("blobserver", 6124)]);
        assert_eq!(
            rest.metadata.name.as_deref(),
            Some("standalone-application-example-rest")
        );
        let spec = rest.spec.as_ref().unwrap();
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 8081);
        assert_eq!(spec.selector.as_ref().unwrap()["type"], "flink-standalone-kubernetes");
        assert_eq!(
            objects.config_map.metadata.name.as_deref(),
            Some("flink-config-standalone-application-example")
        );
    }

    #[test]
    fn pod_templates_merge_into_both_components() {
        let fd = standalone("pod-template");
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let tm = objects.taskmanager.as_ref().unwrap();
        let tm_pod = pod_spec(tm);
        let names: Vec<_> = tm_pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["flink-main-container", "log-follower"]);
        assert_eq!(env_names(flink_container(tm)), ["_POD_IP_ADDRESS", "EXAMPLE_POD_ROLE"]);
        assert_eq!(flink_container(tm).args, Some(strings(&["taskmanager"])));
        let volumes: Vec<_> = tm_pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["flink-config-volume", "flink-logs"]);
        let mounts: Vec<_> = flink_container(tm)
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/opt/flink/conf", "/opt/flink/log"]);
        assert_eq!(tm_pod.init_containers, None);
        let tm_labels = tm
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        assert_eq!(tm_labels["example"], "pod-template");
        assert_eq!(tm_labels["example-role"], "taskmanager");
        assert_eq!(tm_labels["component"], "taskmanager");

        let jm = &objects.jobmanager;
        let jm_pod = pod_spec(jm);
        let init: Vec<_> = jm_pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(init, ["say-hello"]);
        assert_eq!(env_names(flink_container(jm)), ["_POD_IP_ADDRESS"]);
        let annotations = jm
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .clone();
        assert_eq!(annotations.unwrap()["example.flink.apache.org/role"], "jobmanager");
    }

    #[test]
    fn templates_cannot_change_selector_labels() {
        let mut fd = standalone("standalone-application");
        fd.spec.pod_template = Some(serde_json::json!({"metadata": {"labels": {"app": "other", "extra": "x"}}}));
        let objects = build_all(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let labels = objects
            .jobmanager
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels["app"], "standalone-application-example");
        assert_eq!(labels["extra"], "x");
    }
}
