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

    nothing_left(node, &ns, "basic-example");

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
    nothing_left(node, &ns, name);
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

/// After a delete: no pod, Service, ConfigMap or Deployment of the Flink cluster `name` is left.
fn nothing_left(node: &support::node::Node, namespace: &str, name: &str) {
    let selector = format!("app={name}");
    for kind in ["deployments", "services", "configmaps", "pods"] {
        poll_until(&format!("{kind} of {name} gone"), Duration::from_secs(120), || {
            let left = node.get_json(&["-n", namespace, "get", kind, "-l", &selector]);
            left["items"]
                .as_array()
                .is_some_and(|items| items.is_empty())
                .then_some(())
        });
    }
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

/// The container logs of the TaskManagers of `name`, whole (`extra`: more `kubectl logs` flags).
fn taskmanager_logs(node: &support::node::Node, namespace: &str, name: &str, extra: &[&str]) -> String {
    let selector = format!("app={name},component=taskmanager");
    let mut args = vec![
        "-n",
        namespace,
        "logs",
        "-l",
        &selector,
        "--tail=-1",
        "--max-log-requests=10",
    ];
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&node.kubectl(&args).stdout).into_owned()
}

/// The last `(key, count)` printed for each key by the TaskManagers of `name` (their container logs).
fn counts_in_logs(node: &support::node::Node, namespace: &str, name: &str) -> Vec<(u64, u64)> {
    support::flink::printed_counts(&taskmanager_logs(node, namespace, name, &[]))
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

/// `(milliseconds, key, count)` of every count the TaskManagers of `name` printed, timed by the container runtime's
/// log timestamps, in time order.
fn timed_counts_in_logs(node: &support::node::Node, namespace: &str, name: &str) -> Vec<(i64, u64, u64)> {
    let mut counts: Vec<(i64, u64, u64)> = taskmanager_logs(node, namespace, name, &["--timestamps"])
        .lines()
        .filter_map(|line| {
            let (time, rest) = line.split_once(' ')?;
            let time: k8s_openapi::jiff::Timestamp = time.parse().ok()?;
            let &[(key, count)] = support::flink::printed_counts(rest).as_slice() else {
                return None;
            };
            Some((time.as_millisecond(), key, count))
        })
        .collect();
    counts.sort_unstable();
    counts
}

/// The Flink release of an image tag of these suites (the test job jar is compiled against it).
fn flink_release(version: &str) -> &'static str {
    if version == "1.20" { "1.20.5" } else { "2.3.0" }
}

/// The test job jar served inside the cluster by `examples/support/test-job-jar-server.yaml` in `namespace` (busybox
/// httpd; its init container copies the jar out of the Flink image of `version`, whose jar is compiled for that
/// version); returns the jar's URL once the server is Ready and serves exactly that version's jar.
fn serve_test_jar(node: &support::node::Node, namespace: &str, version: &str) -> String {
    let text = std::fs::read_to_string(repo_file("examples/support/test-job-jar-server.yaml")).unwrap();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut object =
            serde_json::to_value(<serde_yaml::Value as serde::Deserialize>::deserialize(doc).unwrap()).unwrap();
        if object["kind"] == "Deployment" {
            let pod = &mut object["spec"]["template"]["spec"];
            pod["initContainers"][0]["image"] = format!("flink:{version}").into();
            // No registry here: only the images imported into the node.
            pod["initContainers"][0]["imagePullPolicy"] = "Never".into();
            pod["containers"][0]["imagePullPolicy"] = "Never".into();
        }
        let applied = node.apply_json(namespace, &object);
        assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    }
    let server = "flink-test-job-jar";
    poll_until("the jar server Ready", Duration::from_secs(120), || {
        let d = node.get_json(&["-n", namespace, "get", "deployment", server]);
        (d["status"]["readyReplicas"] == 1).then_some(())
    });
    // Through its Service (the API server's proxy): the jar of this Flink version, byte for byte.
    let served = node.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{namespace}/services/{server}:8080/proxy/flink-test-job.jar"),
    ]);
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    let expected = std::fs::read(support::flink::test_jar(flink_release(version))).unwrap();
    assert!(
        served.stdout == expected,
        "the served jar ({} bytes) is not the {version} test job jar ({} bytes)",
        served.stdout.len(),
        expected.len()
    );
    format!("http://{server}.{namespace}.svc:8080/flink-test-job.jar")
}

/// A FlinkSessionJob through the in-cluster operator on a native session cluster in pods: the session cluster
/// (`examples/basic-session-deployment-only.yaml` at `version`, state on the node's shared hostPath) becomes READY;
/// the job's jar is fetched by the operator's pod over HTTP from a server in the cluster
/// (`examples/support/test-job-jar-server.yaml`) and uploaded (a `file://` URI of the Flink image's jar is refused:
/// the operator's container does not have it); the job (`examples/basic-session-job-only.yaml`,
/// savepoint upgrades) runs and counts in the TaskManager pods Flink creates for it; a parallelism change is a
/// savepoint upgrade (the new job, under a new id, restores from the UPGRADE savepoint in status, as Flink's
/// checkpoint statistics say, and every key's count goes on from where the old job stopped); deleting the
/// FlinkSessionJob cancels the job on the session cluster, and deleting the FlinkDeployment leaves nothing.
fn session_job_in_pods(version: &str) {
    let Some(test) = node_test() else { return };
    let node = &test.node;
    let started = Instant::now();
    node.ensure_operator();
    let ns = node.create_namespace("e2e-session");
    let name = format!("session-{}", version.replace('.', "-"));
    let job_name = format!("{name}-job");
    let secs = |since: Instant| since.elapsed().as_secs_f64();
    // The session cluster's JobManager creates TaskManager pods: the `flink` ServiceAccount and its Role.
    node.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "-f",
        &repo_file("tests/env/node/manifests/native-rbac.yaml"),
    ]);
    let step = Instant::now();
    let jar_url = serve_test_jar(node, &ns, version);
    eprintln!("{name}: jar server Ready in {:.1}s: {jar_url}", secs(step));

    // 1. The session cluster: a FlinkDeployment without a job, the state directories on the shared hostPath
    // (mounted as examples/flink-2.yaml does).
    let step = Instant::now();
    let mut session = example_at_version("examples/basic-session-deployment-only.yaml", &name, version);
    let flink_2: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_file("examples/flink-2.yaml")).unwrap()).unwrap();
    session["spec"]["podTemplate"] = flink_2["spec"]["podTemplate"].clone();
    assert!(session["spec"]["job"].is_null());
    let applied = node.apply_json(&ns, &session);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let fd = poll_until(
        &format!("{name}: the session cluster READY"),
        Duration::from_secs(300),
        || {
            let fd = node.get_json(&["-n", &ns, "get", "flinkdeployment", &name]);
            (fd["status"]["jobManagerDeploymentStatus"] == "READY").then_some(fd)
        },
    );
    eprintln!(
        "{name}: session cluster READY in {:.1}s (lifecycle {}, Flink {})",
        secs(step),
        fd["status"]["lifecycleState"],
        fd["status"]["clusterInfo"]["flink-version"]
    );
    assert_eq!(
        fd["status"]["clusterInfo"]["flink-version"],
        flink_release(version),
        "{:#}",
        fd["status"]
    );

    let example_job: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_file("examples/basic-session-job-only.yaml")).unwrap())
            .unwrap();
    // A file:// jarURI is read from the operator's container, whose image holds only the binary: the jar of the
    // Flink image is not there, and the status says so (why the examples serve the jar over HTTP).
    let file_job = format!("{name}-file-jar");
    let mut unreadable = example_job.clone();
    unreadable["metadata"]["name"] = file_job.as_str().into();
    unreadable["spec"]["deploymentName"] = name.as_str().into();
    unreadable["spec"]["job"]["jarURI"] = "file:///opt/flink/usrlib/flink-test-job.jar".into();
    let applied = node.apply_json(&ns, &unreadable);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let refused = poll_until(
        &format!("{file_job}: the jar refused in status.error"),
        Duration::from_secs(60),
        || {
            let sj = node.get_json(&["-n", &ns, "get", "flinksessionjob", &file_job]);
            let error = sj["status"]["error"].as_str()?.to_string();
            error.contains("cannot fetch the job jar").then_some(error)
        },
    );
    eprintln!("{file_job}: {refused}");
    assert!(refused.contains("No such file or directory"), "{refused}");
    node.kubectl_ok(&["-n", &ns, "delete", "flinksessionjob", &file_job, "--timeout=60s"]);

    // 2. The session job, its jar over HTTP from inside the cluster.
    let step = Instant::now();
    let mut sj = example_job.clone();
    sj["metadata"]["name"] = job_name.as_str().into();
    sj["spec"]["deploymentName"] = name.as_str().into();
    sj["spec"]["job"]["jarURI"] = jar_url.as_str().into();
    sj["spec"]["job"]["upgradeMode"] = "savepoint".into();
    let now_ms = || k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let applied_at = now_ms();
    let applied = node.apply_json(&ns, &sj);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let get = || node.get_json(&["-n", &ns, "get", "flinksessionjob", &job_name]);
    // RUNNING and STABLE in status, and every vertex of the job running in Flink.
    let running = |what: &str, check: &dyn Fn(&serde_json::Value) -> bool| {
        poll_until(&format!("{job_name}: {what}"), Duration::from_secs(300), || {
            let sj = get();
            let s = &sj["status"];
            if !(s["jobStatus"]["state"] == "RUNNING" && s["lifecycleState"] == "STABLE" && check(&sj)) {
                return None;
            }
            let id = s["jobStatus"]["jobId"].as_str()?;
            let job = flink_rest(node, &ns, &name, &format!("/jobs/{id}"))?;
            let vertices = job["vertices"].as_array()?;
            (job["state"] == "RUNNING" && vertices.iter().all(|v| v["status"] == "RUNNING")).then_some(sj)
        })
    };
    let first = running("job RUNNING, lifecycle STABLE", &|_| true);
    let first_seen_at = now_ms();
    let old_job = first["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    eprintln!(
        "{job_name}: job {old_job} RUNNING/STABLE {:.1}s after apply",
        secs(step)
    );
    let ms_after = |t: i64, since: i64| format!("{:.1}s", (t - since) as f64 / 1000.0);
    // The status follows the job within a few seconds, not at the next resync (60 s): the operator looks again
    // soon while a job is on its way to running.
    let status_followed = |what: &str, counting_at: i64, seen_at: i64| {
        assert!(
            seen_at - counting_at < 30_000,
            "{what}: its status said RUNNING/STABLE only {} after its first count",
            ms_after(seen_at, counting_at)
        );
    };

    // 3. The keyed counts, printed by the TaskManager pod Flink created for the job: every key counted a few times.
    let last_per_key = |counts: &[(u64, u64)]| counts.iter().copied().collect::<std::collections::BTreeMap<u64, u64>>();
    let before = poll_until(
        "the job to count every key a few times",
        Duration::from_secs(120),
        || {
            let last = last_per_key(&counts_in_logs(node, &ns, &name));
            (last.len() == 4 && last.values().all(|&c| c >= 3)).then_some(last)
        },
    );
    let first_count_at = timed_counts_in_logs(node, &ns, &name)
        .first()
        .expect("counts with log timestamps")
        .0;
    eprintln!(
        "{job_name}: counted {before:?}; first count printed {} after apply, status RUNNING/STABLE seen {} after apply",
        ms_after(first_count_at, applied_at),
        ms_after(first_seen_at, applied_at)
    );
    status_followed("the first job", first_count_at, first_seen_at);

    // 4. A savepoint upgrade: parallelism 1 -> 2 (the TaskManager has 2 slots).
    let step = Instant::now();
    let patched_at = now_ms();
    let patch = serde_json::json!({"spec": {"job": {"parallelism": 2}}}).to_string();
    node.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "flinksessionjob",
        &job_name,
        "--type=merge",
        "-p",
        &patch,
    ]);
    let upgraded = running("the upgraded job RUNNING, lifecycle STABLE", &|sj| {
        let s = &sj["status"];
        s["jobStatus"]["jobId"].as_str().is_some_and(|id| id != old_job)
            && s["observedGeneration"] == sj["metadata"]["generation"]
    });
    let upgraded_seen_at = now_ms();
    let new_job = upgraded["status"]["jobStatus"]["jobId"].as_str().unwrap().to_string();
    let savepoint = upgraded["status"]["jobStatus"]["savepointInfo"]["lastSavepoint"].clone();
    assert_eq!(savepoint["triggerType"], "UPGRADE", "{:#}", upgraded["status"]);
    let location = savepoint["location"].as_str().unwrap().to_string();
    eprintln!(
        "{job_name}: upgraded in {:.1}s: job {new_job} from savepoint {location}",
        secs(step)
    );
    let job_details = |id: &str| flink_rest(node, &ns, &name, &format!("/jobs/{id}"));
    // The old job was stopped with that savepoint (FINISHED, not cancelled or failed).
    let old = poll_until("the old job FINISHED in Flink", Duration::from_secs(60), || {
        job_details(&old_job).filter(|j| j["state"] == "FINISHED")
    });
    let new = job_details(&new_job).unwrap();
    assert_eq!(
        new["vertices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["parallelism"].as_i64().unwrap())
            .max(),
        Some(2),
        "{new:#}"
    );
    // Flink says where the new job's state came from: the savepoint the operator recorded.
    let restored = latest_checkpoint_path(
        node,
        &ns,
        &name,
        &new_job,
        "restored",
        "the restore in Flink's checkpoint statistics",
        Duration::from_secs(60),
    );
    eprintln!("{job_name}: Flink reports job {new_job} restored from {restored}");
    assert_eq!(
        support::flink::local_path(&restored),
        support::flink::local_path(&location),
        "restored from {restored}, savepoint {location}"
    );
    // The counts go on: every key's first count in the new job follows the old job's last one (a restart would
    // print 1 again; a lost or repeated record would show as a gap or a repeat).
    let old_end = old["end-time"].as_i64().unwrap();
    let new_start = new["start-time"].as_i64().unwrap();
    let (old_last, new_first, new_first_at) =
        poll_until("the upgraded job to count every key", Duration::from_secs(120), || {
            let timed = timed_counts_in_logs(node, &ns, &name);
            let old_last: std::collections::BTreeMap<u64, u64> = timed
                .iter()
                .filter(|&&(t, _, _)| t <= old_end)
                .map(|&(_, k, c)| (k, c))
                .collect();
            let mut new_first = std::collections::BTreeMap::new();
            let after: Vec<_> = timed.iter().filter(|&&(t, _, _)| t >= new_start).collect();
            for &&(_, k, c) in &after {
                new_first.entry(k).or_insert(c);
            }
            let first_at = after.first()?.0;
            (new_first.len() == before.len()).then_some((old_last, new_first, first_at))
        });
    eprintln!(
        "{job_name}: last counts of the old job {old_last:?}, first of the new one {new_first:?} (printed {} after \
         the patch, status RUNNING/STABLE seen {} after the patch)",
        ms_after(new_first_at, patched_at),
        ms_after(upgraded_seen_at, patched_at)
    );
    status_followed("the upgraded job", new_first_at, upgraded_seen_at);
    for (key, &count_before) in &before {
        assert!(
            new_first[key] > count_before,
            "key {key} restarted: {count_before} before the upgrade, {} after",
            new_first[key]
        );
    }
    // The old job's TaskManager keeps its log unless Flink released it before the new job came.
    if old_last.len() == before.len() {
        for (key, &last) in &old_last {
            assert_eq!(
                new_first[key],
                last + 1,
                "key {key}: the old job stopped at {last}, the new one went on with {}",
                new_first[key]
            );
        }
    } else {
        eprintln!("{job_name}: the old job's TaskManager log is gone (released); exact continuation not checked");
    }

    // 5. Deleting the FlinkSessionJob cancels its job; the session cluster stays.
    let step = Instant::now();
    node.kubectl_ok(&["-n", &ns, "delete", "flinksessionjob", &job_name, "--timeout=120s"]);
    poll_until(
        "the session job's Flink job CANCELED, none RUNNING",
        Duration::from_secs(60),
        || {
            let canceled = job_details(&new_job)?["state"] == "CANCELED";
            let overview = flink_rest(node, &ns, &name, "/jobs/overview")?;
            let none_running = overview["jobs"].as_array()?.iter().all(|j| j["state"] != "RUNNING");
            (canceled && none_running).then_some(())
        },
    );
    eprintln!("{job_name}: deleted, job cancelled in {:.1}s", secs(step));
    let events = node.get_json(&[
        "-n",
        &ns,
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={job_name}"),
    ]);
    let text = |e: &serde_json::Value, key: &str| e[key].as_str().unwrap_or_default().to_string();
    let events = events["items"].as_array().unwrap();
    let reasons: Vec<(String, String)> = events.iter().map(|e| (text(e, "type"), text(e, "reason"))).collect();
    eprintln!("{job_name}: events {reasons:?}");
    // Nothing failed on the way (a submission timing out, a cancel refused: Warning events with the error).
    let warnings: Vec<String> = events
        .iter()
        .filter(|e| e["type"] != "Normal")
        .map(|e| format!("{}: {}", text(e, "reason"), text(e, "message")))
        .collect();
    assert!(
        warnings.is_empty(),
        "warnings among the session job's events: {warnings:#?}"
    );
    assert!(
        node.kubectl(&["-n", &ns, "get", "deployment", &name]).status.success(),
        "the session cluster went with its job"
    );
    node.kubectl_ok(&["-n", &ns, "delete", "flinkdeployment", &name, "--timeout=120s"]);
    nothing_left(node, &ns, &name);
    node.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
    eprintln!("{name}: session job test done in {:.1}s", secs(started));
}

#[test]
fn session_job_on_flink_1_20_in_pods_with_its_jar_served_in_the_cluster_upgraded_and_cancelled() {
    session_job_in_pods("1.20");
}

#[test]
fn session_job_on_flink_2_in_pods_with_its_jar_served_in_the_cluster_upgraded_and_cancelled() {
    session_job_in_pods("2.3");
}
