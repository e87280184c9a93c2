//! e2e of the FlinkDeployment reconciler on a real control plane (no node: Deployments are stored, no pod
//! runs, so the test plays availability by writing the Deployment status subresource). The operator runs
//! under exactly its own RBAC: a missing permission fails these tests.
//!
//! Set `FLINK_OPERATOR_SKIP_E2E=1` to skip locally (CI never does).

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::OperatorEnv;
use support::flink::FlinkCluster;
use support::{eventually, skip_e2e};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

const WAIT: Duration = Duration::from_secs(30);

async fn status_field(env: &OperatorEnv, name: &str, pointer: &str, expected: &str) -> Value {
    eventually(&format!("{name} {pointer} == {expected}"), WAIT, || async {
        let d = env.get_json(&["get", "flinkdep", name]);
        (d.pointer(pointer).and_then(Value::as_str) == Some(expected)).then_some(d)
    })
    .await
}

fn owner_is(object: &Value, kind: &str, name: &str) {
    let owners = object["metadata"]["ownerReferences"]
        .as_array()
        .expect("ownerReferences");
    assert!(
        owners
            .iter()
            .any(|o| o["kind"] == kind && o["name"] == name && o["controller"] == true),
        "{} not owned by {kind}/{name}: {owners:?}",
        object["metadata"]["name"]
    );
}

#[tokio::test]
async fn native_application_objects_status_walk_and_cleanup() {
    if skip_e2e() {
        return;
    }
    let env = OperatorEnv::start(false).await;
    let name = "basic-example";
    env.cluster.kubectl_ok(&["apply", "-f", &example("basic.yaml")]);

    // The objects Flink's native client would create, owned by the FlinkDeployment.
    let jm = eventually("the JobManager Deployment", WAIT, || async {
        env.exists(&["deployment", name])
            .then(|| env.get_json(&["get", "deployment", name]))
    })
    .await;
    owner_is(&jm, "FlinkDeployment", name);
    assert_eq!(jm["metadata"]["labels"]["type"], "flink-native-kubernetes");
    assert_eq!(jm["spec"]["selector"]["matchLabels"]["component"], "jobmanager");
    let container = &jm["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "flink-main-container");
    assert!(
        container["args"].to_string().contains("kubernetes-application"),
        "{container}"
    );
    assert_eq!(jm["spec"]["template"]["spec"]["serviceAccountName"], "flink");
    let cm = env.get_json(&["get", "configmap", &format!("flink-config-{name}")]);
    owner_is(&cm, "FlinkDeployment", name);
    let conf = cm["data"]["flink-conf.yaml"]
        .as_str()
        .or(cm["data"]["config.yaml"].as_str())
        .expect("config file");
    assert!(conf.contains("kubernetes.cluster-id: basic-example"), "{conf}");
    assert!(
        !conf.contains("kubernetes.operator."),
        "operator keys passed to Flink:\n{conf}"
    );
    for service in [name.to_string(), format!("{name}-rest")] {
        owner_is(&env.get_json(&["get", "service", &service]), "FlinkDeployment", name);
    }
    assert!(
        !env.exists(&["deployment", &format!("{name}-taskmanager")]),
        "native mode got a TaskManager Deployment"
    );

    // Status walks DEPLOYING -> DEPLOYED_NOT_READY as the Deployment becomes available.
    let d = status_field(&env, name, "/status/jobManagerDeploymentStatus", "DEPLOYING").await;
    assert_eq!(d["status"]["lifecycleState"], "DEPLOYED");
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);
    assert!(
        d["metadata"]["finalizers"]
            .to_string()
            .contains("flinkdeployments.flink.apache.org/finalizer")
    );
    assert_eq!(
        d["status"]["taskManager"]["labelSelector"],
        "app=basic-example,component=taskmanager"
    );
    assert!(
        d["status"]["reconciliationStatus"]["lastReconciledSpec"]
            .as_str()
            .unwrap()
            .contains("KeyedCounter")
    );
    assert!(!env.events(name, "Submit").is_empty());
    env.set_deployment_status(
        name,
        json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}),
    );
    let d = status_field(&env, name, "/status/jobManagerDeploymentStatus", "DEPLOYED_NOT_READY").await;
    let ready = &d["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("False"))
    );

    // Quiet when nothing changes: a reconcile of an unchanged resource writes nothing.
    let versions = |env: &OperatorEnv| -> Vec<String> {
        ["deployment", "service", "configmap"]
            .iter()
            .flat_map(|kind| {
                env.get_json(&["get", kind, "-l", "app=basic-example"])["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| format!("{}/{}", o["metadata"]["name"], o["metadata"]["resourceVersion"]))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let before = versions(&env);
    let status_before = env.get_json(&["get", "flinkdep", name])["status"].clone();
    let reconciles = || async {
        let text = reqwest::get(env.operator.admin_url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find(|l| l.starts_with(r#"flink_operator_reconciliations_total{kind="FlinkDeployment",result="ok"}"#))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let count = reconciles().await.unwrap();
    // An annotation change triggers a reconcile without changing the spec.
    env.cluster.kubectl_ok(&["annotate", "flinkdep", name, "touched=1"]);
    eventually("a reconcile after the annotation", WAIT, || async {
        reconciles().await.filter(|n| *n > count)
    })
    .await;
    assert_eq!(versions(&env), before, "owned objects were rewritten in steady state");
    assert_eq!(
        env.get_json(&["get", "flinkdep", name])["status"],
        status_before,
        "status rewritten in steady state"
    );

    // A failing JobManager Deployment is an ERROR and the lifecycle FAILED.
    env.set_deployment_status(
        name,
        json!({"replicas": 1, "availableReplicas": 0, "conditions": [{"type": "ReplicaFailure", "status": "True",
               "reason": "FailedCreate", "message": "pods \"x\" is forbidden: exceeded quota"}]}),
    );
    let d = status_field(&env, name, "/status/jobManagerDeploymentStatus", "ERROR").await;
    assert_eq!(d["status"]["lifecycleState"], "FAILED");

    // A vanished JobManager Deployment is reported and deployed again.
    env.cluster.kubectl_ok(&["delete", "deployment", name]);
    eventually("a Missing event", WAIT, || async {
        (!env.events(name, "Missing").is_empty()).then_some(())
    })
    .await;
    status_field(&env, name, "/status/jobManagerDeploymentStatus", "DEPLOYING").await;

    // Owned Services and ConfigMaps are watched: a deleted one is put back at once, not at the next resync
    // (60 s here).
    for object in [
        vec!["service", "basic-example-rest"],
        vec!["configmap", "flink-config-basic-example"],
    ] {
        let uid = env.get_json(&["get", object[0], object[1]])["metadata"]["uid"].clone();
        env.cluster.kubectl_ok(&["delete", object[0], object[1]]);
        eventually(&format!("{object:?} put back"), Duration::from_secs(15), || async {
            let again = env.try_get_json(&["get", object[0], object[1]])?;
            (again["metadata"]["uid"] != uid).then_some(())
        })
        .await;
    }

    // A spec change is applied (the config changes) and announced.
    env.cluster.kubectl_ok(&[
        "patch",
        "flinkdep",
        name,
        "--type=merge",
        "-p",
        r#"{"spec":{"flinkConfiguration":{"pipeline.name":"renamed"}}}"#,
    ]);
    eventually("the new configuration", WAIT, || async {
        let cm = env.get_json(&["get", "configmap", &format!("flink-config-{name}")]);
        cm["data"].to_string().contains("pipeline.name: renamed").then_some(())
    })
    .await;
    eventually("a SpecChanged event", WAIT, || async {
        (!env.events(name, "SpecChanged").is_empty()).then_some(())
    })
    .await;

    // Deletion removes everything, then the resource itself.
    env.cluster.kubectl_ok(&["delete", "flinkdep", name, "--timeout=60s"]);
    for object in [
        vec!["deployment", name],
        vec!["service", name],
        vec!["service", "basic-example-rest"],
        vec!["configmap", "flink-config-basic-example"],
    ] {
        assert!(!env.exists(&object), "{object:?} left behind");
    }
    assert!(!env.events(name, "Cleanup").is_empty() || !env.exists(&["flinkdep", name]));
}

#[tokio::test]
async fn standalone_application_objects_and_session_cluster_cleanup_order() {
    if skip_e2e() {
        return;
    }
    let env = OperatorEnv::start(false).await;
    let name = "standalone-application-example";
    env.cluster
        .kubectl_ok(&["apply", "-f", &example("standalone-application.yaml")]);
    let tm = eventually("the TaskManager Deployment", WAIT, || async {
        let tm = format!("{name}-taskmanager");
        env.exists(&["deployment", &tm])
            .then(|| env.get_json(&["get", "deployment", &tm]))
    })
    .await;
    owner_is(&tm, "FlinkDeployment", name);
    assert_eq!(tm["spec"]["replicas"], 1);
    let jm = env.get_json(&["get", "deployment", name]);
    for pod in [&jm, &tm] {
        // The standalone promise: Flink pods get no Kubernetes credentials.
        assert_eq!(pod["spec"]["template"]["spec"]["automountServiceAccountToken"], false);
    }
    let args = jm["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("standalone-job") && args.contains("--job-classname"),
        "{args}"
    );
    assert_eq!(jm["metadata"]["labels"]["type"], "flink-standalone-kubernetes");

    // A session cluster is not deleted while a session job points at it.
    env.cluster
        .kubectl_ok(&["apply", "-f", &example("basic-session-deployment-only.yaml")]);
    env.cluster
        .kubectl_ok(&["apply", "-f", &example("basic-session-job-only.yaml")]);
    let session = "basic-session-cluster";
    eventually("the session JobManager", WAIT, || async {
        env.exists(&["deployment", session]).then_some(())
    })
    .await;
    env.cluster.kubectl_ok(&["delete", "flinkdep", session, "--wait=false"]);
    let event = eventually("a CleanupFailed event naming the job", WAIT, || async {
        env.events(session, "CleanupFailed").into_iter().next()
    })
    .await;
    assert!(event.to_string().contains("basic-session-job-example"), "{event}");
    assert!(env.exists(&["flinkdep", session]) && env.exists(&["deployment", session]));
    env.cluster
        .kubectl_ok(&["delete", "sessionjob", "basic-session-job-example"]);
    eventually("the session cluster to be deleted", Duration::from_secs(60), || async {
        (!env.exists(&["flinkdep", session]) && !env.exists(&["deployment", session])).then_some(())
    })
    .await;

    env.cluster.kubectl_ok(&["delete", "flinkdep", name, "--timeout=60s"]);
    assert!(!env.exists(&["deployment", name]) && !env.exists(&["deployment", &format!("{name}-taskmanager")]));
}

#[tokio::test]
async fn cluster_turns_ready_and_stable_when_its_flink_rest_endpoint_answers() {
    if skip_e2e() {
        return;
    }
    // The operator runs outside any pod network here, so its REST address template points at a real
    // Flink cluster on loopback (the documented --flink-rest-url override), running the test job.
    let flink = tokio::task::spawn_blocking(|| FlinkCluster::session("1.20.5"))
        .await
        .unwrap();
    let client = flink_operator::flink::RestClient::new(Duration::from_secs(30));
    let jar = tokio::fs::read(support::flink::test_jar("1.20.5")).await.unwrap();
    let jar_id = client
        .upload_jar(&flink.rest_url, "flink-test-job.jar", jar.into())
        .await
        .unwrap();
    let run = flink_operator::flink::JarRunRequest {
        entry_class: Some(support::flink::ENTRY_CLASS.to_string()),
        ..Default::default()
    };
    let job_id = client.run_jar(&flink.rest_url, &jar_id, &run).await.unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "kubernetes.operator.reconcile.interval: 2s\n").unwrap();
    let config_path = config.path().to_str().unwrap();
    let env = OperatorEnv::start_with(false, &["--flink-rest-url", &flink.rest_url, "--config", config_path]).await;
    let name = "basic-example";
    env.cluster.kubectl_ok(&["apply", "-f", &example("basic.yaml")]);
    status_field(&env, name, "/status/jobManagerDeploymentStatus", "DEPLOYING").await;
    env.set_deployment_status(
        name,
        json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}),
    );
    let d = status_field(&env, name, "/status/jobManagerDeploymentStatus", "READY").await;
    assert_eq!(d["status"]["clusterInfo"]["flink-version"], "1.20.5", "{}", d["status"]);
    let d = status_field(&env, name, "/status/lifecycleState", "STABLE").await;
    let ready = &d["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True"))
    );
    assert_eq!(
        d["status"]["reconciliationStatus"]["lastStableSpec"],
        d["status"]["reconciliationStatus"]["lastReconciledSpec"]
    );
    assert_eq!(d["status"]["jobStatus"]["jobId"], job_id.as_str());
    assert_eq!(d["status"]["jobStatus"]["state"], "RUNNING");
    assert_eq!(d["status"]["jobStatus"]["jobName"], "KeyedCounter");

    // The endpoint going away turns the cluster not ready again.
    // The next periodic reconcile (every 2 s here) notices it.
    tokio::task::spawn_blocking(move || drop(flink)).await.unwrap();
    eventually("DEPLOYED_NOT_READY after Flink stopped", WAIT, || async {
        let d = env.get_json(&["get", "flinkdep", name]);
        (d["status"]["jobManagerDeploymentStatus"] == "DEPLOYED_NOT_READY").then_some(())
    })
    .await;
}

#[tokio::test]
async fn crash_looping_jobmanager_pod_is_an_error() {
    if skip_e2e() {
        return;
    }
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "kubernetes.operator.reconcile.interval: 2s\n").unwrap();
    let env = OperatorEnv::start_with(false, &["--config", config.path().to_str().unwrap()]).await;
    let name = "basic-example";
    env.cluster.kubectl_ok(&["apply", "-f", &example("basic.yaml")]);
    status_field(&env, name, "/status/jobManagerDeploymentStatus", "DEPLOYING").await;

    // Play the kubelet: a JobManager pod whose container keeps crashing. (No controller-manager runs here to
    // create the namespace's default service account, which pod admission wants.)
    env.cluster.kubectl_ok(&["create", "serviceaccount", "default"]);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "basic-example-jm-1", "labels": {"app": name, "component": "jobmanager"}},
        "spec": {"automountServiceAccountToken": false,
                 "containers": [{"name": "flink-main-container", "image": "flink:1.20"}]}
    });
    let out = env.cluster.apply_stdin(&pod.to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut stored = env.get_json(&["get", "pod", "basic-example-jm-1"]);
    stored["status"] = json!({"phase": "Running", "containerStatuses": [{
        "name": "flink-main-container", "image": "flink:1.20", "imageID": "", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}
    }]});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, stored.to_string()).unwrap();
    env.cluster
        .kubectl_ok(&["replace", "--subresource=status", "-f", file.to_str().unwrap()]);
    // And the Deployment controller: the Deployment now has a pod, not available. Only then are its pods
    // worth a look.
    env.set_deployment_status(
        name,
        json!({"replicas": 1, "unavailableReplicas": 1, "updatedReplicas": 1}),
    );

    let d = status_field(&env, name, "/status/jobManagerDeploymentStatus", "ERROR").await;
    assert_eq!(d["status"]["lifecycleState"], "FAILED");
    let ready = &d["status"]["conditions"][0];
    assert_eq!(ready["reason"], "JobManagerError", "{ready}");
}

#[tokio::test]
async fn ingress_is_created_updated_and_deleted_with_its_cluster() {
    if skip_e2e() {
        return;
    }
    // Proves the operator's ingress rules (get, create, patch, delete) under its own RBAC.
    let env = OperatorEnv::start(false).await;
    let name = "basic-ingress-example";
    env.cluster.kubectl_ok(&["apply", "-f", &example("basic-ingress.yaml")]);
    let ingress = eventually("the Ingress", WAIT, || async {
        env.try_get_json(&["get", "ingress", name])
    })
    .await;
    owner_is(&ingress, "FlinkDeployment", name);
    let rule = &ingress["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(rule["backend"]["service"]["name"], format!("{name}-rest"), "{ingress}");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");

    // A changed template is applied to the live Ingress.
    env.cluster.kubectl_ok(&[
        "patch",
        "flinkdep",
        name,
        "--type=merge",
        "-p",
        r#"{"spec":{"ingress":{"annotations":{"example.com/changed":"yes"}}}}"#,
    ]);
    eventually("the Ingress updated", WAIT, || async {
        let ingress = env.try_get_json(&["get", "ingress", name])?;
        (ingress["metadata"]["annotations"]["example.com/changed"] == "yes").then_some(())
    })
    .await;

    // Deleting the FlinkDeployment deletes the Ingress (the operator's cleanup, not garbage collection: no
    // controller-manager runs on this tier).
    env.cluster.kubectl_ok(&["delete", "flinkdep", name, "--timeout=60s"]);
    assert!(!env.exists(&["ingress", name]), "Ingress left behind");
}
