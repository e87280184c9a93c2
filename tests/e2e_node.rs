//! The node tier: a real one-node cluster whose pods run (tests/env/node/), the operator deployed in it from
//! its image (built from the release binary, tests/env/images/operator.sh) with plain manifests, and the
//! locally built Flink images proven by node/smoke.sh.
//!
//! `FLINK_OPERATOR_NO_NODE=1` skips these tests on a machine that cannot run containers (they fail otherwise).

mod support;

use std::time::{Duration, Instant};

use support::node::{node_test, poll_until, repo_file};

const OPERATOR_NS: &str = "flink-operator";

/// The operator's pods (node/deploy-operator.sh's Deployment), as `kubectl get -o json` lists them.
fn operator_pods(node: &support::node::Node) -> serde_json::Value {
    node.get_json(&[
        "-n",
        OPERATOR_NS,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=flink-operator",
    ])
}

#[test]
fn operator_deployment_becomes_ready_under_kubelet_probes_and_serves_admission_through_its_service() {
    let Some(test) = node_test() else { return };
    let node = &test.node;
    let started = Instant::now();
    node.deploy_operator();
    eprintln!("operator deployed in {:.1}s", started.elapsed().as_secs_f64());

    // The kubelet ran the startup, liveness and readiness probes against the admin server: Ready, no restart.
    // (When another test of this process deployed the operator first, deploy_operator rolled it: the old pod
    // may still be terminating for a few seconds.)
    let pod = poll_until("a single operator pod, Ready", Duration::from_secs(120), || {
        let pods = operator_pods(node)["items"].as_array()?.clone();
        (pods.len() == 1 && pods[0]["status"]["containerStatuses"][0]["ready"] == true).then(|| pods[0].clone())
    });
    let pod = &pod;
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True", "{:#?}", pod["status"]);
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["ready"], true);
    assert_eq!(container["restartCount"], 0, "{container:#?}");
    assert!(container["state"]["running"].is_object(), "{container:#?}");
    assert!(
        container["image"].as_str().unwrap().ends_with("flink-operator:dev"),
        "{container:#?}"
    );
    // It runs as the image's non-root user, with the hardening of the manifest accepted by the kubelet.
    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsUser"], 65532);
    assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);

    // The admin endpoints answer on the pod's admin port (through the API server's pod proxy).
    let proxy = |path: &str| format!("/api/v1/namespaces/{OPERATOR_NS}/pods/{pod_name}:8085/proxy{path}");
    let readyz: serde_json::Value =
        serde_json::from_str(&node.kubectl_ok(&["get", "--raw", &proxy("/readyz")])).unwrap();
    assert_eq!(readyz["ready"], true, "{readyz}");
    let healthz: serde_json::Value =
        serde_json::from_str(&node.kubectl_ok(&["get", "--raw", &proxy("/healthz")])).unwrap();
    assert_eq!(healthz["live"], true, "{healthz}");

    // The API server reaches the webhook through its Service: a bad spec is rejected at apply, naming the field.
    let ns = node.create_namespace("e2e-node");
    let rejected = node.kubectl(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("examples/invalid/parallelism-zero.yaml"),
    ]);
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(!rejected.status.success(), "the invalid example was accepted");
    assert!(
        stderr.contains("denied the request") && stderr.contains("spec.job.parallelism"),
        "{stderr}"
    );
    assert!(
        !node
            .kubectl(&["-n", &ns, "get", "flinkdeployment", "invalid-parallelism-zero"])
            .status
            .success(),
        "the rejected resource was stored"
    );

    // A valid example is accepted and defaulted by the mutating webhook.
    node.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("tests/env/node/manifests/native-rbac.yaml"),
    ]);
    node.kubectl_ok(&["-n", &ns, "apply", "-f", &repo_file("examples/basic.yaml")]);
    let stored = node.get_json(&["-n", &ns, "get", "flinkdeployment", "basic-example"]);
    assert_eq!(stored["spec"]["mode"], "native", "{:#?}", stored["spec"]);
    assert_eq!(stored["spec"]["job"]["state"], "running", "{:#?}", stored["spec"]);

    // The webhook counted both requests.
    let metrics = node.kubectl_ok(&["get", "--raw", &proxy("/metrics")]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flink_operator_webhook_requests_total") && l.contains("allowed=\"false\"")),
        "{metrics}"
    );

    // The in-cluster controller (service-account token, the generated ClusterRole) reconciles it:
    // the JobManager Deployment appears and the status reports it.
    let deployment_status = poll_until(
        "the operator to create the JobManager Deployment",
        Duration::from_secs(60),
        || {
            let fd = node.get_json(&["-n", &ns, "get", "flinkdeployment", "basic-example"]);
            let status = fd["status"]["jobManagerDeploymentStatus"].as_str()?.to_string();
            node.kubectl(&["-n", &ns, "get", "deployment", "basic-example"])
                .status
                .success()
                .then_some(status)
        },
    );
    assert_ne!(deployment_status, "MISSING");

    // Real pods: the JobManager starts, Flink creates its TaskManager pod, the job runs, and the
    // operator reads all that from Flink's REST API through the cluster's Service name.
    let flinkdep = |name: &str| node.get_json(&["-n", &ns, "get", "flinkdeployment", name]);
    let stable = |name: &str| {
        poll_until(
            &format!("{name}: job RUNNING, JobManager READY, lifecycle STABLE"),
            Duration::from_secs(300),
            || {
                let fd = flinkdep(name);
                let s = &fd["status"];
                (s["jobStatus"]["state"] == "RUNNING"
                    && s["jobManagerDeploymentStatus"] == "READY"
                    && s["lifecycleState"] == "STABLE")
                    .then_some(fd)
            },
        )
    };
    // After a delete: no pod, Service, ConfigMap or Deployment of the cluster is left.
    let nothing_left = |name: &str| {
        let selector = format!("app={name}");
        for kind in ["deployments", "services", "configmaps", "pods"] {
            poll_until(&format!("{kind} of {name} gone"), Duration::from_secs(120), || {
                let left = node.get_json(&["-n", &ns, "get", kind, "-l", &selector]);
                left["items"]
                    .as_array()
                    .is_some_and(|items| items.is_empty())
                    .then_some(())
            });
        }
    };
    let fd = stable("basic-example");
    assert_eq!(
        fd["status"]["clusterInfo"]["flink-version"], "1.20.5",
        "{:#}",
        fd["status"]
    );
    let taskmanagers = node.get_json(&[
        "-n",
        &ns,
        "get",
        "pods",
        "-l",
        "app=basic-example,component=taskmanager",
    ]);
    assert!(
        !taskmanagers["items"].as_array().unwrap().is_empty(),
        "Flink created no TaskManager pod"
    );

    // Deleting it: the operator's finalizer cleans up and lets go.
    node.kubectl_ok(&[
        "-n",
        &ns,
        "delete",
        "flinkdeployment",
        "basic-example",
        "--timeout=120s",
    ]);
    poll_until(
        "the JobManager Deployment to be deleted",
        Duration::from_secs(60),
        || {
            (!node
                .kubectl(&["-n", &ns, "get", "deployment", "basic-example"])
                .status
                .success())
            .then_some(())
        },
    );

    nothing_left("basic-example");

    // Standalone mode: the operator creates JobManager and TaskManager Deployments; the Flink pods get no
    // Kubernetes credentials at all (no token in the running container), and the job still runs.
    node.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("examples/standalone-application.yaml"),
    ]);
    let name = "standalone-application-example";
    stable(name);
    let pods = node.get_json(&["-n", &ns, "get", "pods", "-l", &format!("app={name}")]);
    let pods = pods["items"].as_array().unwrap().clone();
    assert_eq!(pods.len(), 2, "one JobManager and one TaskManager pod");
    for pod in &pods {
        let pod_name = pod["metadata"]["name"].as_str().unwrap();
        assert_eq!(pod["spec"]["automountServiceAccountToken"], false, "{pod_name}");
        let out = node.kubectl(&[
            "-n",
            &ns,
            "exec",
            pod_name,
            "--",
            "ls",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ]);
        assert!(!out.status.success(), "{pod_name} has a service-account token");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No such file"),
            "exec did not run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    node.kubectl_ok(&["-n", &ns, "delete", "flinkdeployment", name, "--timeout=120s"]);
    nothing_left(name);
    node.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);

    // Still the same container: the probes never failed it.
    let restarts = node.kubectl_ok(&[
        "-n",
        OPERATOR_NS,
        "get",
        "pod",
        &pod_name,
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(restarts.trim(), "0");
}

#[test]
fn flink_images_run_session_native_and_flink_2_clusters_on_the_node() {
    let Some(test) = node_test() else { return };
    let started = Instant::now();
    // (a) session cluster + REST submit + savepoint, (b) native application mode creating TaskManager pods,
    // (c) a Flink 2.3 application cluster; the script fails on the first check that does not hold.
    test.node.run_env_script("node/smoke.sh");
    eprintln!("node/smoke.sh passed in {:.1}s", started.elapsed().as_secs_f64());
}

/// Flink's REST API of a cluster in the node, through the API server's Service proxy.
fn flink_rest(node: &support::node::Node, namespace: &str, name: &str, path: &str) -> Option<serde_json::Value> {
    let url = format!("/api/v1/namespaces/{namespace}/services/{name}-rest:8081/proxy{path}");
    let out = node.kubectl(&["get", "--raw", &url]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn standalone_reactive_job_on_flink_1_20_rescales_by_taskmanager_replicas_without_a_restart() {
    reactive_rescale("1.20");
}

#[test]
fn standalone_reactive_job_on_flink_2_rescales_by_taskmanager_replicas_without_a_restart() {
    reactive_rescale("2.3");
}

fn reactive_rescale(version: &str) {
    let Some(test) = node_test() else { return };
    let node = &test.node;
    node.ensure_operator();
    let ns = node.create_namespace("e2e-reactive");
    let name = &format!("reactive-{}", version.replace('.', "-"));
    // The example names the `flink` ServiceAccount (standalone pods mount no token from it).
    node.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("tests/env/node/manifests/native-rbac.yaml"),
    ]);
    let applied = node.apply_json(&ns, &example_at_version("examples/basic-reactive.yaml", name, version));
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let get = || node.get_json(&["-n", &ns, "get", "flinkdeployment", name]);

    // Every TaskManager's slot in use: the job's vertices run with parallelism = TaskManagers (1 slot each).
    let running_with = |taskmanagers: i64| {
        poll_until(
            &format!("{name}: STABLE, job RUNNING on {taskmanagers} TaskManagers"),
            Duration::from_secs(300),
            || {
                let fd = get();
                let s = &fd["status"];
                if !(s["jobStatus"]["state"] == "RUNNING" && s["lifecycleState"] == "STABLE") {
                    return None;
                }
                let job_id = s["jobStatus"]["jobId"].as_str()?.to_string();
                let job = flink_rest(node, &ns, name, &format!("/jobs/{job_id}"))?;
                let vertices = job["vertices"].as_array()?;
                let all_running = vertices
                    .iter()
                    .all(|v| v["status"] == "RUNNING" && v["parallelism"] == taskmanagers);
                let overview = flink_rest(node, &ns, name, "/overview")?;
                (job["state"] == "RUNNING" && all_running && overview["taskmanagers"] == taskmanagers)
                    .then_some((fd, job_id))
            },
        )
    };
    let jobmanager_pod = || {
        let pods = node.get_json(&[
            "-n",
            &ns,
            "get",
            "pods",
            "-l",
            &format!("app={name},component=jobmanager"),
        ]);
        let pods = pods["items"].as_array().unwrap().clone();
        assert_eq!(pods.len(), 1, "{pods:#?}");
        (
            pods[0]["metadata"]["uid"].as_str().unwrap().to_string(),
            pods[0]["status"]["containerStatuses"][0]["restartCount"].clone(),
        )
    };
    let (before, job_id) = running_with(2);
    let jobmanager = jobmanager_pod();
    let reconciled_before = before["status"]["reconciliationStatus"]["lastReconciledSpec"].clone();

    // Scale up, then down: only the TaskManager Deployment changes; same JobManager pod, same job, no savepoint.
    for replicas in [3, 1] {
        let patch = serde_json::json!({"spec": {"taskManager": {"replicas": replicas}}}).to_string();
        node.kubectl_ok(&[
            "-n",
            &ns,
            "patch",
            "flinkdeployment",
            name,
            "--type=merge",
            "-p",
            &patch,
        ]);
        poll_until(
            &format!("the TaskManager Deployment scaled to {replicas}"),
            Duration::from_secs(60),
            || {
                let d = node.get_json(&["-n", &ns, "get", "deployment", &format!("{name}-taskmanager")]);
                (d["spec"]["replicas"] == replicas).then_some(())
            },
        );
        let (after, same_job) = running_with(replicas);
        assert_eq!(same_job, job_id, "the job was resubmitted");
        assert_eq!(
            jobmanager_pod(),
            jobmanager,
            "the JobManager pod was replaced or restarted"
        );
        assert_eq!(
            after["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"],
            before["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"],
            "a savepoint was taken for a scale"
        );
        assert!(after["status"]["upgrade"].is_null(), "{:#}", after["status"]);
        assert_ne!(
            after["status"]["reconciliationStatus"]["lastReconciledSpec"], reconciled_before,
            "the new replicas must be recorded as reconciled"
        );
        let scaled = node.get_json(&[
            "-n",
            &ns,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
        ]);
        eprintln!(
            "scaled to {replicas}: events {:?}",
            scaled["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        );
    }
    node.kubectl_ok(&["-n", &ns, "delete", "flinkdeployment", name, "--timeout=120s"]);
    node.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

/// Polls Flink's checkpoint statistics of `job` until `latest.<kind>` (`restored` or `completed`) has a path.
fn latest_checkpoint_path(
    node: &support::node::Node,
    namespace: &str,
    name: &str,
    job: &str,
    kind: &str,
    what: &str,
    deadline: Duration,
) -> String {
    poll_until(what, deadline, || {
        let stats = flink_rest(node, namespace, name, &format!("/jobs/{job}/checkpoints"))?;
        stats["latest"][kind]["external_path"].as_str().map(str::to_string)
    })
}

/// An example FlinkDeployment for Flink `version` ("1.20" or "2.3"): its image and `flinkVersion`, and the state
/// directory keys of that major (1.x `state.checkpoints.dir` / `state.savepoints.dir`, 2.x
/// `execution.checkpointing.dir` / `execution.checkpointing.savepoint-dir`), named `name`, state under
/// `/flink-data/<name>` on the node's shared hostPath.
fn example_at_version(example: &str, name: &str, version: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_file(example)).unwrap();
    let mut fd: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    fd["metadata"]["name"] = name.into();
    let (image, api, checkpoints, savepoints) = if version == "1.20" {
        ("flink:1.20", "v1_20", "state.checkpoints.dir", "state.savepoints.dir")
    } else {
        // The newest 2.x API level the CRD knows (see examples/flink-2.yaml).
        (
            "flink:2.3",
            "v2_2",
            "execution.checkpointing.dir",
            "execution.checkpointing.savepoint-dir",
        )
    };
    fd["spec"]["image"] = image.into();
    fd["spec"]["flinkVersion"] = api.into();
    let conf = fd["spec"]["flinkConfiguration"].as_object_mut().unwrap();
    for key in [
        "state.checkpoints.dir",
        "state.savepoints.dir",
        "execution.checkpointing.dir",
        "execution.checkpointing.savepoint-dir",
    ] {
        conf.remove(key);
    }
    conf.insert(
        checkpoints.into(),
        format!("file:///flink-data/{name}/checkpoints").into(),
    );
    conf.insert(
        savepoints.into(),
        format!("file:///flink-data/{name}/savepoints").into(),
    );
    fd
}

/// `examples/flink-2.yaml` at `version`, checkpointing every 2 s: savepoint upgrades.
fn savepoint_deployment(name: &str, version: &str) -> serde_json::Value {
    let mut fd = example_at_version("examples/flink-2.yaml", name, version);
    fd["spec"]["flinkConfiguration"]["execution.checkpointing.interval"] = "2s".into();
    fd
}

/// The last `(key, count)` printed for each key by the TaskManagers of `name` (their container logs).
fn counts_in_logs(node: &support::node::Node, namespace: &str, name: &str) -> Vec<(u64, u64)> {
    let out = node.kubectl(&[
        "-n",
        namespace,
        "logs",
        "-l",
        &format!("app={name},component=taskmanager"),
        "--tail=-1",
        "--max-log-requests=10",
    ]);
    support::flink::printed_counts(&String::from_utf8_lossy(&out.stdout))
}

/// The job lifecycle on the node through the in-cluster operator, one FlinkDeployment through all of it: a manual
/// savepoint; periodic savepoints switched on and off (IGNORE: no restart, JobManager Deployment untouched); a
/// savepoint upgrade with the operator's pod killed right after it recorded and sent the stop-with-savepoint (the
/// replacement pod follows the savepoint to its end, and the upgraded job restores from it, as Flink's own
/// checkpoint statistics say, with its keyed counts continuing); suspend and resume from the suspend savepoint; a
/// last-state upgrade from the latest checkpoint.
fn job_lifecycle_in_pods(version: &str) {
    let Some(test) = node_test() else { return };
    let node = &test.node;
    node.ensure_operator();
    let ns = node.create_namespace("e2e-upgrade");
    let name = format!("upgrade-{}", version.replace('.', "-"));
    node.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("tests/env/node/manifests/native-rbac.yaml"),
    ]);
    let fd = savepoint_deployment(&name, version);
    let applied = node.apply_json(&ns, &fd);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let get = || node.get_json(&["-n", &ns, "get", "flinkdeployment", &name]);
    let stable = || {
        poll_until(
            &format!("{name}: job RUNNING, lifecycle STABLE"),
            Duration::from_secs(300),
            || {
                let fd = get();
                (fd["status"]["jobStatus"]["state"] == "RUNNING" && fd["status"]["lifecycleState"] == "STABLE")
                    .then_some(fd)
            },
        )
    };
    let before = stable();
    let old_job = before["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    // Some state worth keeping: counts above 3 for some key, and a completed checkpoint.
    let counted = poll_until("the job to count", Duration::from_secs(120), || {
        let counts = counts_in_logs(node, &ns, &name);
        counts.iter().any(|&(_, c)| c >= 3).then_some(counts)
    });
    let highest_before = counted.iter().map(|&(_, c)| c).max().unwrap();
    let patch_spec = |spec: serde_json::Value| {
        let patch = serde_json::json!({ "spec": spec }).to_string();
        node.kubectl_ok(&[
            "-n",
            &ns,
            "patch",
            "flinkdeployment",
            &name,
            "--type=merge",
            "-p",
            &patch,
        ]);
    };
    let wait_for = |what: &str, check: &dyn Fn(&serde_json::Value) -> bool| {
        poll_until(&format!("{name}: {what}"), Duration::from_secs(180), || {
            let fd = get();
            check(&fd).then_some(fd)
        })
    };
    let last_savepoint = |fd: &serde_json::Value| fd["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();

    // A manual savepoint, recorded in status; the job keeps running.
    patch_spec(serde_json::json!({"job": {"savepointTriggerNonce": 1}}));
    let manual = wait_for("a manual savepoint in status", &|fd| {
        last_savepoint(fd)["triggerType"] == "MANUAL"
    });
    assert_eq!(manual["status"]["jobStatus"]["jobId"], old_job.as_str());

    // Periodic savepoints: an operator-only (IGNORE) change, no restart, the JobManager Deployment untouched.
    let jobmanager_version =
        || node.get_json(&["-n", &ns, "get", "deployment", &name])["metadata"]["resourceVersion"].clone();
    let version_before = jobmanager_version();
    patch_spec(serde_json::json!({"flinkConfiguration": {"kubernetes.operator.periodic.savepoint.interval": "5s"}}));
    let periodic = wait_for("a periodic savepoint in status", &|fd| {
        last_savepoint(fd)["triggerType"] == "PERIODIC"
    });
    assert_eq!(periodic["status"]["jobStatus"]["jobId"], old_job.as_str(), "restarted");
    assert_eq!(periodic["status"]["lifecycleState"], "STABLE");
    patch_spec(serde_json::json!({"flinkConfiguration": {"kubernetes.operator.periodic.savepoint.interval": null}}));
    wait_for("the interval removal reconciled", &|fd| {
        fd["status"]["observedGeneration"] == fd["metadata"]["generation"]
    });
    assert_eq!(
        jobmanager_version(),
        version_before,
        "the JobManager Deployment was rewritten"
    );

    // The upgrade: more slots and parallelism (not an IGNORE change, not a reactive scale).
    patch_spec(serde_json::json!({
        "job": {"parallelism": 2},
        "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
    }));
    // Kill the operator as soon as it has recorded the stop-with-savepoint it sends.
    let recorded = poll_until(
        "the operator to record the stop-with-savepoint",
        Duration::from_secs(60),
        || {
            let fd = get();
            let s = &fd["status"];
            (s["upgrade"]["step"] == "STOPPING"
                && s["jobStatus"]["savepointInfo"]["triggerId"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()))
            .then_some(fd)
        },
    );
    let killed = operator_pods(node)["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    node.kubectl_ok(&[
        "-n",
        OPERATOR_NS,
        "delete",
        "pod",
        &killed,
        "--grace-period=0",
        "--force",
    ]);
    eprintln!(
        "{name}: operator pod {killed} killed with trigger {} recorded",
        recorded["status"]["jobStatus"]["savepointInfo"]["triggerId"]
    );
    poll_until("a replacement operator pod Ready", Duration::from_secs(120), || {
        let pods = operator_pods(node);
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] != killed.as_str() && p["status"]["containerStatuses"][0]["ready"] == true)
            .map(|_| ())
    });

    let after = stable();
    let new_job = after["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    assert_ne!(new_job, old_job, "the job was not redeployed");
    let savepoint = after["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(savepoint["triggerType"], "UPGRADE", "{:#}", after["status"]);
    let location = savepoint["location"].as_str().unwrap().to_string();
    // Flink says where the new job's state came from.
    let restored = latest_checkpoint_path(
        node,
        &ns,
        &name,
        &new_job,
        "restored",
        "the restore in Flink's checkpoint statistics",
        Duration::from_secs(60),
    );
    let tail = |path: &str| {
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        tail(&restored),
        tail(&location),
        "restored from {restored}, savepoint {location}"
    );
    // The counts go on from where they were, not from 1.
    let resumed = poll_until("the upgraded job to print counts", Duration::from_secs(120), || {
        let counts = counts_in_logs(node, &ns, &name);
        (!counts.is_empty()).then_some(counts)
    });
    let first_after = resumed.iter().map(|&(_, c)| c).min().unwrap();
    assert!(
        first_after > 1 && resumed.iter().map(|&(_, c)| c).max().unwrap() >= highest_before,
        "counts restarted: before up to {highest_before}, after {resumed:?}"
    );

    // Suspend: stopped with a savepoint, no pod left; resume: from that savepoint.
    patch_spec(serde_json::json!({"job": {"state": "suspended"}}));
    let suspended = wait_for("lifecycle SUSPENDED", &|fd| {
        fd["status"]["lifecycleState"] == "SUSPENDED"
    });
    let suspend_savepoint = suspended["status"]["jobStatus"]["upgradeSavepointPath"]
        .as_str()
        .unwrap()
        .to_string();
    poll_until("no pod of the suspended cluster", Duration::from_secs(120), || {
        let pods = node.get_json(&["-n", &ns, "get", "pods", "-l", &format!("app={name}")]);
        pods["items"].as_array().is_some_and(|p| p.is_empty()).then_some(())
    });
    patch_spec(serde_json::json!({"job": {"state": "running"}}));
    let resumed_fd = stable();
    let resumed_job = resumed_fd["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    let restored = latest_checkpoint_path(
        node,
        &ns,
        &name,
        &resumed_job,
        "restored",
        "the resume's restore in Flink's statistics",
        Duration::from_secs(60),
    );
    assert_eq!(tail(&restored), tail(&suspend_savepoint), "resumed from {restored}");

    // last-state (switching the mode is itself IGNORE) with a parallelism change: no savepoint is taken, the
    // new job restores from the latest checkpoint.
    latest_checkpoint_path(
        node,
        &ns,
        &name,
        &resumed_job,
        "completed",
        "a completed checkpoint of the resumed job",
        Duration::from_secs(120),
    );
    let history = |fd: &serde_json::Value| {
        fd["status"]["jobStatus"]["savepointInfo"]["savepointHistory"]
            .as_array()
            .map(Vec::len)
    };
    let history_before = history(&resumed_fd);
    patch_spec(serde_json::json!({"job": {"upgradeMode": "last-state", "parallelism": 1}}));
    let last_state = wait_for("the last-state upgrade done", &|fd| {
        fd["status"]["jobStatus"]["jobId"] != resumed_job.as_str()
            && fd["status"]["jobStatus"]["state"] == "RUNNING"
            && fd["status"]["lifecycleState"] == "STABLE"
    });
    assert_eq!(history(&last_state), history_before, "last-state took a savepoint");
    let last_job = last_state["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    let restored = latest_checkpoint_path(
        node,
        &ns,
        &name,
        &last_job,
        "restored",
        "the last-state restore in Flink's statistics",
        Duration::from_secs(60),
    );
    assert!(restored.contains("chk-"), "not restored from a checkpoint: {restored}");

    node.kubectl_ok(&["-n", &ns, "delete", "flinkdeployment", &name, "--timeout=120s"]);
    node.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
fn job_lifecycle_on_flink_1_20_in_pods_with_the_operator_pod_killed_mid_upgrade() {
    job_lifecycle_in_pods("1.20");
}

#[test]
fn job_lifecycle_on_flink_2_in_pods_with_the_operator_pod_killed_mid_upgrade() {
    job_lifecycle_in_pods("2.3");
}
