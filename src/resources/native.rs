//! Native mode: exactly the objects Flink's own Kubernetes client creates (`flink run-application
//! --target kubernetes-application`, `kubernetes-session.sh`); the JobManager then creates and owns its
//! TaskManager pods itself.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    BuildError, Cluster, ClusterObjects, Component, ENTRYPOINT, MAIN_CONTAINER, artifacts_volume, config_volume,
    config_volume_mount, deployment, finish_pod, flink_conf, jobmanager_ports, pod_ip_env, resource_requirements,
};

/// `bash -c` as Flink's client does: the image's PATH finds the script.
pub fn jobmanager_args(cluster: &Cluster) -> Vec<String> {
    let target = match cluster.is_application() {
        true => "kubernetes-application",
        false => "kubernetes-session",
    };
    vec![
        "bash".to_string(),
        "-c".to_string(),
        format!("kubernetes-jobmanager.sh {target}"),
    ]
}

fn jobmanager_container(cluster: &Cluster) -> Container {
    let (_, artifacts_mount) = artifacts_volume();
    Container {
        name: MAIN_CONTAINER.into(),
        image: Some(cluster.image.clone()),
        image_pull_policy: Some(cluster.image_pull_policy.clone()),
        command: Some(vec![ENTRYPOINT.into()]),
        args: Some(jobmanager_args(cluster)),
        env: Some(vec![pod_ip_env()]),
        ports: Some(jobmanager_ports(cluster)),
        resources: Some(resource_requirements(&cluster.jobmanager, 1.0)),
        volume_mounts: Some(vec![artifacts_mount, config_volume_mount()]),
        ..Container::default()
    }
}

fn jobmanager_pod(cluster: &Cluster) -> Result<PodTemplateSpec, BuildError> {
    let files: Vec<String> = flink_conf::config_files(cluster)?.into_keys().collect();
    let (artifacts, _) = artifacts_volume();
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(cluster.labels(Some(Component::JobManager))),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![jobmanager_container(cluster)],
            volumes: Some(vec![artifacts, config_volume(cluster, &files)]),
            service_account_name: cluster.service_account(),
            ..PodSpec::default()
        }),
    })
}

/// JobManager Deployment `<name>`; TaskManager pods are owned by it. `Recreate`: two JobManagers of one
/// cluster must never run at once.
pub fn jobmanager_deployment(cluster: &Cluster) -> Result<Deployment, BuildError> {
    let pod = finish_pod(cluster, jobmanager_pod(cluster)?, Component::JobManager)?;
    Ok(deployment(
        cluster,
        cluster.name.clone(),
        Component::JobManager,
        cluster.jobmanager_replicas(),
        pod,
        Some("Recreate"),
    ))
}

/// Headless Service `<name>` (RPC, blob; TaskManagers resolve `<name>.<namespace>` to the JobManager pod)
/// and REST Service `<name>-rest`.
pub fn services(cluster: &Cluster) -> Vec<Service> {
    vec![super::internal_service(cluster, true), super::rest_service(cluster)]
}

pub fn build(cluster: &Cluster) -> Result<ClusterObjects, BuildError> {
    Ok(ClusterObjects {
        jobmanager: jobmanager_deployment(cluster)?,
        taskmanager: None,
        services: services(cluster),
        config_map: flink_conf::config_map(cluster)?,
        ingress: None,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::super::test_support::*;
    use super::super::{Deploy, MANAGED_BY_LABEL, build as build_all};
    use crate::crd::FlinkConfiguration;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn jobmanager_deployment_matches_flinks_client() {
        let objects = build_example("basic");
        let jm = &objects.jobmanager;
        assert_eq!(jm.metadata.name.as_deref(), Some("basic-example"));
        assert_eq!(jm.metadata.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(jm.metadata.owner_references.as_ref().unwrap()[0].name, "basic-example");
        let selector = string_map(&[
            ("app", "basic-example"),
            ("component", "jobmanager"),
            ("type", "flink-native-kubernetes"),
        ]);
        let spec = jm.spec.as_ref().unwrap();
        assert_eq!(spec.selector.match_labels.as_ref(), Some(&selector));
        assert_eq!(spec.replicas, Some(1));
        let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert_eq!(pod_labels[MANAGED_BY_LABEL], "flink-operator");
        assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));

        let container = flink_container(jm);
        assert_eq!(container.image.as_deref(), Some("flink:1.20"));
        assert_eq!(container.command, Some(strings(&["/docker-entrypoint.sh"])));
        assert_eq!(
            container.args,
            Some(strings(&[
                "bash",
                "-c",
                "kubernetes-jobmanager.sh kubernetes-application"
            ]))
        );
        let env = &container.env.as_ref().unwrap()[0];
        assert_eq!(env.name, "_POD_IP_ADDRESS");
        let field = env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
        assert_eq!(field.field_path, "status.podIP");
        let ports = container_ports(container);
        assert_eq!(ports, [("rest", 8081), ("jobmanager-rpc", 6123), ("blobserver", 6124)]);
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(resources.requests, resources.limits);
        assert_eq!(resources.limits.as_ref().unwrap()["cpu"], Quantity("500m".into()));
        assert_eq!(resources.limits.as_ref().unwrap()["memory"], Quantity("1024Mi".into()));
        let mounts: Vec<_> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("flink-artifacts", "/opt/flink/artifacts"),
                ("flink-config-volume", "/opt/flink/conf")
            ]
        );
        assert_eq!(container.liveness_probe, None);

        let pod = pod_spec(jm);
        assert_eq!(pod.service_account_name.as_deref(), Some("flink"));
        assert_eq!(
            pod.automount_service_account_token, None,
            "native Flink needs API access"
        );
        let volumes = pod.volumes.as_ref().unwrap();
        assert!(volumes[0].empty_dir.is_some());
        let config = volumes[1].config_map.as_ref().unwrap();
        assert_eq!(config.name, "flink-config-basic-example");
        let items: Vec<_> = config
            .items
            .iter()
            .flatten()
            .map(|i| (i.key.as_str(), i.path.as_str()))
            .collect();
        assert_eq!(
            items,
            [
                ("flink-conf.yaml", "flink-conf.yaml"),
                ("log4j-console.properties", "log4j-console.properties")
            ]
        );
        assert!(objects.taskmanager.is_none());
    }

    #[test]
    fn session_cluster_args() {
        let objects = build_example("basic-session-deployment-only");
        assert_eq!(
            flink_container(&objects.jobmanager).args,
            Some(strings(&["bash", "-c", "kubernetes-jobmanager.sh kubernetes-session"]))
        );
        let data = objects.config_map.data.unwrap();
        assert!(data["flink-conf.yaml"].contains("execution.target: kubernetes-session\n"));
    }

    #[test]
    fn headless_internal_and_rest_services() {
        let objects = build_example("basic");
        let [internal, rest] = &objects.services[..] else {
            panic!("two services expected");
        };
        assert_eq!(internal.metadata.name.as_deref(), Some("basic-example"));
        assert_eq!(internal.metadata.namespace.as_deref(), Some(NAMESPACE));
        assert_eq!(
            internal.metadata.labels,
            Some(string_map(&[
                ("app", "basic-example"),
                ("type", "flink-native-kubernetes"),
                (MANAGED_BY_LABEL, "flink-operator")
            ]))
        );
        let spec = internal.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector.as_ref().unwrap()["component"], "jobmanager");
        let ports = service_ports(internal);
        assert_eq!(ports, [("jobmanager-rpc", 6123), ("blobserver", 6124)]);
        assert_eq!(rest.metadata.name.as_deref(), Some("basic-example-rest"));
        let spec = rest.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        let ports = service_ports(rest);
        assert_eq!(ports, [("rest", 8081)]);
        assert_eq!(rest.metadata.owner_references.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn flink_2_uses_config_yaml_and_a_taskmanager_template() {
        let objects = build_example("flink-2");
        let pod = pod_spec(&objects.jobmanager);
        let config = pod
            .volumes
            .iter()
            .flatten()
            .find_map(|v| v.config_map.as_ref())
            .unwrap();
        let items: Vec<_> = config.items.iter().flatten().map(|i| i.key.as_str()).collect();
        assert_eq!(
            items,
            [
                "config.yaml",
                "log4j-console.properties",
                "taskmanager-pod-template.yaml"
            ]
        );
        let data = objects.config_map.data.as_ref().unwrap();
        let conf: std::collections::BTreeMap<String, String> = serde_yaml::from_str(&data["config.yaml"]).unwrap();
        assert_eq!(conf["jobmanager.rpc.address"], "flink-2-example.flink-ns");
        assert_eq!(conf["kubernetes.container.image.ref"], "flink:2.3");
        // spec.podTemplate reaches the JobManager pod too.
        let init: Vec<_> = pod.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(init, ["prepare-flink-data"]);
        let mounts: Vec<_> = flink_container(&objects.jobmanager)
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, ["/opt/flink/artifacts", "/opt/flink/conf", "/flink-data"]);
    }

    #[test]
    fn pod_template_example() {
        let objects = build_all(&example("pod-template"), &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let jm = &objects.jobmanager;
        let pod = pod_spec(jm);
        let containers: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(containers, ["flink-main-container", "log-follower"]);
        let init: Vec<_> = pod.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(init, ["say-hello"]);
        let volumes: Vec<_> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["flink-artifacts", "flink-config-volume", "flink-logs"]);

        let data = objects.config_map.data.unwrap();
        let template: serde_json::Value = serde_yaml::from_str(&data["taskmanager-pod-template.yaml"]).unwrap();
        assert_eq!(template["metadata"]["labels"]["example-role"], "taskmanager");
        let main = &template["spec"]["containers"][0];
        assert_eq!(main["name"], "flink-main-container");
        assert_eq!(main["env"][0]["name"], "EXAMPLE_POD_ROLE");
        assert_eq!(main["volumeMounts"][0]["mountPath"], "/opt/flink/log");
        assert_eq!(template["spec"]["containers"][1]["name"], "log-follower");
        assert!(template["spec"].get("initContainers").is_none());
    }
}
