//! Accept and reject cases for every rule, on whole objects as users write them.

use super::*;
use crate::crd::{FlinkDeployment, FlinkSessionJob};

const BASE: &str = r#"
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: basic-example}
spec:
  image: flink:1.20
  flinkVersion: v1_20
  serviceAccount: flink
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
  jobManager: {resource: {memory: 1024m, cpu: 0.5}}
  taskManager: {resource: {memory: 1024m, cpu: 0.5}}
  job:
    jarURI: local:///opt/flink/usrlib/job.jar
    parallelism: 2
    upgradeMode: stateless
"#;

const HA_DIRS: &[(&str, &str)] = &[
    ("high-availability.type", "kubernetes"),
    ("high-availability.storageDir", "file:///flink-data/ha"),
    ("state.checkpoints.dir", "file:///flink-data/checkpoints"),
    ("state.savepoints.dir", "file:///flink-data/savepoints"),
];

/// The base deployment with `edit` applied to its JSON form.
fn deployment(edit: impl FnOnce(&mut serde_json::Value)) -> FlinkDeployment {
    let mut value: serde_json::Value = serde_yaml::from_str(BASE).unwrap();
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

fn set(value: &mut serde_json::Value, pointer: &str, new: serde_json::Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no parent {parent}"));
    parent.as_object_mut().unwrap().insert(key.to_string(), new);
}

fn remove(value: &mut serde_json::Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
}

fn conf(value: &mut serde_json::Value, entries: &[(&str, &str)]) {
    for (k, v) in entries {
        value["spec"]["flinkConfiguration"][*k] = serde_json::Value::String((*v).to_string());
    }
}

fn fields(result: Result<(), Violations>) -> Vec<String> {
    match result {
        Ok(()) => vec![],
        Err(v) => v.0.into_iter().map(|v| v.field).collect(),
    }
}

fn check(d: &FlinkDeployment) -> Vec<String> {
    fields(validate_deployment(d, None, &FlinkConfiguration::new()))
}

fn rejected_at(d: &FlinkDeployment, field: &str) -> String {
    let err = validate_deployment(d, None, &FlinkConfiguration::new()).expect_err("should be rejected");
    let hit = err.0.iter().find(|v| v.field == field);
    assert!(hit.is_some(), "expected a violation at {field}, got {err}");
    err.to_string()
}

#[test]
fn base_application_and_session_clusters_are_valid() {
    assert_eq!(check(&deployment(|_| {})), Vec::<String>::new());
    assert_eq!(check(&deployment(|v| remove(v, "/spec/job"))), Vec::<String>::new());
    // jarURI is optional: the entry class may be on the image's classpath.
    assert_eq!(
        check(&deployment(|v| {
            remove(v, "/spec/job/jarURI");
            set(v, "/spec/job/entryClass", "org.example.Job".into());
        })),
        Vec::<String>::new()
    );
}

#[test]
fn name_must_be_a_cluster_id() {
    let msg = rejected_at(
        &deployment(|v| set(v, "/metadata/name", "Basic_Example".into())),
        "metadata.name",
    );
    assert!(msg.contains("lower-case"), "{msg}");
    rejected_at(
        &deployment(|v| set(v, "/metadata/name", "a".repeat(46).into())),
        "metadata.name",
    );
}

#[test]
fn flink_version_and_service_account_are_required() {
    let msg = rejected_at(&deployment(|v| remove(v, "/spec/flinkVersion")), "spec.flinkVersion");
    assert!(msg.contains("v1_20"), "{msg}");
    rejected_at(
        &deployment(|v| remove(v, "/spec/serviceAccount")),
        "spec.serviceAccount",
    );
    rejected_at(
        &deployment(|v| set(v, "/spec/serviceAccount", " ".into())),
        "spec.serviceAccount",
    );
}

#[test]
fn operator_owned_keys_are_forbidden() {
    for key in [
        "kubernetes.namespace",
        "kubernetes.cluster-id",
        "high-availability.cluster-id",
    ] {
        let msg = rejected_at(&deployment(|v| conf(v, &[(key, "x")])), "spec.flinkConfiguration");
        assert!(msg.contains(key), "{msg}");
    }
}

#[test]
fn rollback_needs_ha() {
    let rollback = [("kubernetes.operator.deployment.rollback.enabled", "true")];
    rejected_at(&deployment(|v| conf(v, &rollback)), "spec.flinkConfiguration");
    assert!(
        check(&deployment(|v| {
            conf(v, &rollback);
            conf(v, HA_DIRS)
        }))
        .is_empty()
    );
}

#[test]
fn ingress_needs_a_usable_template() {
    rejected_at(
        &deployment(|v| set(v, "/spec/ingress", serde_json::json!({"className": "nginx"}))),
        "spec.ingress.template",
    );
    for bad in [
        "http://flink.example.com/x",
        "Flink.Example.com/{{name}}",
        "/{{cluster}}/x",
        "a b/c",
    ] {
        rejected_at(
            &deployment(|v| set(v, "/spec/ingress", serde_json::json!({"template": bad}))),
            "spec.ingress.template",
        );
    }
    for good in [
        "/{{namespace}}/{{name}}(/|$)(.*)",
        "{{name}}.{{namespace}}.flink.example.com",
        "flink.example.com/{{name}}",
    ] {
        assert!(
            check(&deployment(|v| set(
                v,
                "/spec/ingress",
                serde_json::json!({"template": good})
            )))
            .is_empty(),
            "{good}"
        );
    }
}

#[test]
fn ingress_template_renders_host_and_path() {
    use super::deployment::ingress_host_and_path;
    assert_eq!(
        ingress_host_and_path("{{name}}.{{namespace}}.example.com", "job", "ns"),
        Ok((Some("job.ns.example.com".into()), "/".into()))
    );
    assert_eq!(
        ingress_host_and_path("/{{namespace}}/{{name}}(/|$)(.*)", "job", "ns"),
        Ok((None, "/ns/job(/|$)(.*)".into()))
    );
}

#[test]
fn only_known_log_configuration_files() {
    let msg = rejected_at(
        &deployment(|v| {
            set(
                v,
                "/spec/logConfiguration",
                serde_json::json!({"log4j.properties": "x"}),
            )
        }),
        "spec.logConfiguration",
    );
    assert!(msg.contains("log4j-console.properties"), "{msg}");
    assert!(
        check(&deployment(|v| set(
            v,
            "/spec/logConfiguration",
            serde_json::json!({"log4j-console.properties": "x", "logback-console.xml": "y"})
        )))
        .is_empty()
    );
}

#[test]
fn last_state_needs_ha_or_a_checkpoint_dir() {
    let msg = rejected_at(
        &deployment(|v| {
            set(v, "/spec/job/upgradeMode", "last-state".into());
        }),
        "spec.job.upgradeMode",
    );
    assert!(msg.contains("state.checkpoints.dir"), "{msg}");
    // Without HA the latest retained checkpoint is the restore point (under either version's key).
    for key in ["state.checkpoints.dir", "execution.checkpointing.dir"] {
        assert!(
            check(&deployment(|v| {
                set(v, "/spec/job/upgradeMode", "last-state".into());
                conf(v, &[(key, "file:///c")]);
            }))
            .is_empty(),
            "{key}"
        );
    }
    rejected_at(
        &deployment(|v| {
            set(v, "/spec/job/upgradeMode", "last-state".into());
            conf(v, &[("high-availability.type", "kubernetes")]);
        }),
        "spec.flinkConfiguration",
    );
    assert!(
        check(&deployment(|v| {
            set(v, "/spec/job/upgradeMode", "last-state".into());
            conf(v, HA_DIRS);
        }))
        .is_empty()
    );
}

#[test]
fn savepoint_features_need_a_savepoint_dir_under_either_name() {
    let msg = rejected_at(
        &deployment(|v| {
            set(v, "/spec/job/upgradeMode", "savepoint".into());
            conf(v, &[("state.checkpoints.dir", "file:///c")]);
        }),
        "spec.flinkConfiguration",
    );
    assert!(
        msg.contains("state.savepoints.dir") && msg.contains("execution.checkpointing.savepoint-dir"),
        "{msg}"
    );
    rejected_at(
        &deployment(|v| set(v, "/spec/job/savepointTriggerNonce", 1.into())),
        "spec.job.savepointTriggerNonce",
    );
    rejected_at(
        &deployment(|v| conf(v, &[("kubernetes.operator.periodic.savepoint.interval", "6h")])),
        "spec.flinkConfiguration",
    );
    // Flink 2.x key names count too.
    assert!(
        check(&deployment(|v| {
            set(v, "/spec/flinkVersion", "v2_3".into());
            set(v, "/spec/job/upgradeMode", "savepoint".into());
            set(v, "/spec/job/savepointTriggerNonce", 1.into());
            conf(
                v,
                &[
                    ("execution.checkpointing.dir", "file:///c"),
                    ("execution.checkpointing.savepoint-dir", "file:///s"),
                    ("kubernetes.operator.periodic.savepoint.interval", "6h"),
                ],
            );
        }))
        .is_empty()
    );
    // An operator default directory counts as well.
    let defaults = FlinkConfiguration::from([
        ("state.checkpoints.dir".to_string(), "file:///c".to_string()),
        ("state.savepoints.dir".to_string(), "file:///s".to_string()),
    ]);
    let d = deployment(|v| set(v, "/spec/job/upgradeMode", "savepoint".into()));
    assert_eq!(validate_deployment(&d, None, &defaults), Ok(()));
}

#[test]
fn unchanged_savepoint_nonce_is_not_rechecked_on_update() {
    let d = deployment(|v| set(v, "/spec/job/savepointTriggerNonce", 1.into()));
    assert_eq!(validate_deployment(&d, Some(&d), &FlinkConfiguration::new()), Ok(()));
}

#[test]
fn periodic_savepoint_interval_must_parse() {
    rejected_at(
        &deployment(|v| {
            conf(
                v,
                &[
                    ("kubernetes.operator.periodic.savepoint.interval", "often"),
                    ("state.savepoints.dir", "file:///s"),
                ],
            )
        }),
        "spec.flinkConfiguration",
    );
}

#[test]
fn replicas_and_parallelism_must_be_positive() {
    rejected_at(
        &deployment(|v| set(v, "/spec/job/parallelism", 0.into())),
        "spec.job.parallelism",
    );
    rejected_at(
        &deployment(|v| set(v, "/spec/taskManager/replicas", 0.into())),
        "spec.taskManager.replicas",
    );
    rejected_at(
        &deployment(|v| set(v, "/spec/jobManager/replicas", 0.into())),
        "spec.jobManager.replicas",
    );
    let msg = rejected_at(
        &deployment(|v| set(v, "/spec/jobManager/replicas", 2.into())),
        "spec.jobManager.replicas",
    );
    assert!(msg.contains("high availability"), "{msg}");
    assert!(
        check(&deployment(|v| {
            set(v, "/spec/jobManager/replicas", 2.into());
            conf(v, HA_DIRS);
        }))
        .is_empty()
    );
}

#[test]
fn memory_is_required_and_must_parse() {
    rejected_at(
        &deployment(|v| remove(v, "/spec/jobManager/resource/memory")),
        "spec.jobManager.resource.memory",
    );
    rejected_at(
        &deployment(|v| remove(v, "/spec/jobManager")),
        "spec.jobManager.resource.memory",
    );
    let msg = rejected_at(
        &deployment(|v| set(v, "/spec/taskManager/resource/memory", "lots".into())),
        "spec.taskManager.resource.memory",
    );
    assert!(msg.contains("lots"), "{msg}");
    rejected_at(
        &deployment(|v| set(v, "/spec/taskManager/resource/cpu", (-1.0).into())),
        "spec.taskManager.resource.cpu",
    );
    assert!(
        check(&deployment(|v| set(
            v,
            "/spec/taskManager/resource/memory",
            "2Gi".into()
        )))
        .is_empty()
    );
}

#[test]
fn pod_templates_must_be_pods() {
    rejected_at(
        &deployment(|v| {
            set(
                v,
                "/spec/podTemplate",
                serde_json::json!({"spec": {"containers": "not-a-list"}}),
            )
        }),
        "spec.podTemplate",
    );
    assert!(check(&deployment(|v| set(
        v,
        "/spec/taskManager/podTemplate",
        serde_json::json!({"spec": {"containers": [{"name": "flink-main-container", "env": [{"name": "A", "value": "1"}]}]}})
    )))
    .is_empty());
}

#[test]
fn jar_uri_must_be_usable() {
    rejected_at(
        &deployment(|v| set(v, "/spec/job/jarURI", "job.jar".into())),
        "spec.job.jarURI",
    );
    rejected_at(
        &deployment(|v| set(v, "/spec/job/jarURI", "ftp2://host/job.jar".into())),
        "spec.job.jarURI",
    );
}

#[test]
fn reactive_only_for_standalone_application_clusters() {
    let reactive = [("scheduler-mode", "reactive")];
    let msg = rejected_at(&deployment(|v| conf(v, &reactive)), "spec.flinkConfiguration");
    assert!(msg.contains("standalone"), "{msg}");
    let msg = rejected_at(
        &deployment(|v| {
            conf(v, &reactive);
            set(v, "/spec/mode", "standalone".into());
            remove(v, "/spec/job");
        }),
        "spec.flinkConfiguration",
    );
    assert!(msg.contains("application"), "{msg}");
    assert!(
        check(&deployment(|v| {
            conf(v, &reactive);
            set(v, "/spec/mode", "standalone".into());
        }))
        .is_empty()
    );
}

#[test]
fn update_cannot_switch_cluster_type_or_mode() {
    let old = deployment(|_| {});
    let to_standalone = deployment(|v| set(v, "/spec/mode", "standalone".into()));
    let err = validate_deployment(&to_standalone, Some(&old), &FlinkConfiguration::new()).unwrap_err();
    assert_eq!(err.0[0].field, "spec.mode");
    assert!(err.to_string().contains("from native to standalone"), "{err}");
    let to_session = deployment(|v| remove(v, "/spec/job"));
    let err = validate_deployment(&to_session, Some(&old), &FlinkConfiguration::new()).unwrap_err();
    assert!(
        err.to_string().contains("application cluster into a session cluster"),
        "{err}"
    );
    // An explicit native equals the default.
    let explicit_native = deployment(|v| set(v, "/spec/mode", "native".into()));
    assert_eq!(
        validate_deployment(&explicit_native, Some(&old), &FlinkConfiguration::new()),
        Ok(())
    );
}

#[test]
fn all_violations_are_reported_together() {
    let d = deployment(|v| {
        remove(v, "/spec/flinkVersion");
        set(v, "/spec/job/parallelism", 0.into());
    });
    let mut got = check(&d);
    got.sort();
    assert_eq!(got, vec!["spec.flinkVersion", "spec.job.parallelism"]);
}

const SESSION_JOB: &str = r#"
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata: {name: basic-session-job}
spec:
  deploymentName: basic-session-cluster
  job:
    jarURI: https://repo.example/job.jar
    parallelism: 1
    upgradeMode: stateless
"#;

fn session_job(edit: impl FnOnce(&mut serde_json::Value)) -> FlinkSessionJob {
    let mut value: serde_json::Value = serde_yaml::from_str(SESSION_JOB).unwrap();
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

fn check_job(j: &FlinkSessionJob, old: Option<&FlinkSessionJob>) -> Vec<String> {
    fields(validate_session_job(j, old, &FlinkConfiguration::new()))
}

#[test]
fn session_job_rules() {
    assert!(check_job(&session_job(|_| {}), None).is_empty());
    assert_eq!(
        check_job(&session_job(|v| remove(v, "/spec/job")), None),
        vec!["spec.job"]
    );
    assert_eq!(
        check_job(&session_job(|v| set(v, "/spec/job", serde_json::json!({}))), None),
        vec!["spec.job"]
    );
    assert_eq!(
        check_job(
            &session_job(|v| set(v, "/spec/job/upgradeMode", "last-state".into())),
            None
        ),
        vec!["spec.job.upgradeMode"]
    );
    assert_eq!(
        check_job(
            &session_job(|v| set(v, "/spec/deploymentName", "Bad_Name".into())),
            None
        ),
        vec!["spec.deploymentName"]
    );
    assert_eq!(
        check_job(&session_job(|v| remove(v, "/spec/deploymentName")), None),
        vec!["spec.deploymentName"]
    );
    let old = session_job(|_| {});
    assert_eq!(
        check_job(
            &session_job(|v| set(v, "/spec/deploymentName", "other-cluster".into())),
            Some(&old)
        ),
        vec!["spec.deploymentName"]
    );
    assert_eq!(
        check_job(&session_job(|v| conf(v, &[("kubernetes.cluster-id", "x")])), None),
        vec!["spec.flinkConfiguration"]
    );
    assert_eq!(
        check_job(&session_job(|v| set(v, "/spec/job/parallelism", (-1).into())), None),
        vec!["spec.job.parallelism"]
    );
    // The operator fetches a session job's jar itself: file, http and https only (Flink's file systems and
    // `local://` inside the image are a FlinkDeployment's).
    for scheme in ["file:///jobs/job.jar", "http://repo/job.jar", "https://repo/job.jar"] {
        assert!(
            check_job(&session_job(|v| set(v, "/spec/job/jarURI", scheme.into())), None).is_empty(),
            "{scheme}"
        );
    }
    for scheme in ["local:///opt/flink/usrlib/job.jar", "s3://bucket/job.jar"] {
        assert_eq!(
            check_job(&session_job(|v| set(v, "/spec/job/jarURI", scheme.into())), None),
            vec!["spec.job.jarURI"],
            "{scheme}"
        );
    }
}

#[test]
fn nested_and_typed_flink_configuration_is_read_like_upstream() {
    let d = deployment(|v| {
        v["spec"]["flinkConfiguration"] = serde_json::json!({
            "taskmanager.numberOfTaskSlots": 2,
            "state": {"savepoints": {"dir": "file:///s"}, "checkpoints.dir": "file:///c"},
            "execution.checkpointing.unaligned": true,
            "pipeline.classpaths": ["a", "b"]
        });
        set(v, "/spec/job/upgradeMode", "savepoint".into());
    });
    let conf = d.spec.flink_configuration.clone().unwrap();
    assert_eq!(conf.get("taskmanager.numberOfTaskSlots").map(String::as_str), Some("2"));
    assert_eq!(conf.get("state.savepoints.dir").map(String::as_str), Some("file:///s"));
    assert_eq!(conf.get("state.checkpoints.dir").map(String::as_str), Some("file:///c"));
    assert_eq!(
        conf.get("execution.checkpointing.unaligned").map(String::as_str),
        Some("true")
    );
    assert_eq!(conf.get("pipeline.classpaths").map(String::as_str), Some("a;b"));
    assert!(check(&d).is_empty());
    let bad = serde_json::json!({"spec": {"flinkConfiguration": "not a map"}});
    assert!(serde_json::from_value::<crate::crd::FlinkDeploymentSpec>(bad["spec"].clone()).is_err());
}
