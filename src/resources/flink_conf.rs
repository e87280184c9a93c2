//! The Flink configuration handed to Flink: operator defaults overlaid by `spec.flinkConfiguration`,
//! without any `kubernetes.operator.*` key, plus the keys the operator owns; and the ConfigMap that
//! carries it with the log configuration (and, in native mode, the TaskManager pod template).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use super::{BLOB_PORT, BuildError, Cluster, Component, FLINK_CONF_DIR, RPC_PORT, TASKMANAGER_RPC_PORT, flink_memory};
use crate::crd::{FlinkConfiguration, FlinkDeploymentSpec, FlinkVersion, KubernetesDeploymentMode};
use crate::flink_config::{self, NUMBER_OF_TASK_SLOTS, OPERATOR_PREFIX};
use crate::validation::LOG_CONFIG_FILES;

pub const LOG4J_CONSOLE: &str = "log4j-console.properties";
/// ConfigMap key (and file name in the conf dir) of the native TaskManager pod template.
pub const TASKMANAGER_POD_TEMPLATE: &str = "taskmanager-pod-template.yaml";
pub const APPLICATION_ENTRYPOINT: &str =
    "org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint";
pub const SESSION_ENTRYPOINT: &str = "org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint";

/// Used when the spec brings no log4j configuration: everything to the console, where `kubectl logs`
/// finds it; noisy libraries held at WARN.
pub const DEFAULT_LOG4J_CONSOLE: &str = "\
monitorInterval = 30
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
logger.pekko.name = org.apache.pekko
logger.pekko.level = WARN
logger.akka.name = akka
logger.akka.level = WARN
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = WARN
logger.shaded_zookeeper.name = org.apache.flink.shaded.zookeeper3
logger.shaded_zookeeper.level = WARN
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
";

/// Operator defaults overlaid by the spec, without the keys that configure the operator (Flink must never
/// see them: they are not Flink options and may hold operator-only settings).
pub fn base(defaults: &FlinkConfiguration, spec: &FlinkDeploymentSpec) -> FlinkConfiguration {
    let mut conf = flink_config::effective(defaults, spec.flink_configuration.as_ref());
    conf.retain(|key, _| !key.starts_with(OPERATOR_PREFIX));
    conf
}

/// [`base`] plus the keys the operator owns.
pub fn effective_conf(cluster: &Cluster, base: FlinkConfiguration) -> Result<FlinkConfiguration, BuildError> {
    let mut conf = base;
    set_cluster_keys(cluster, &mut conf);
    set_resource_keys(cluster, &mut conf);
    set_job_keys(cluster, &mut conf);
    set_restore_keys(cluster, &mut conf);
    set_jvm_module_options(cluster, &mut conf);
    match cluster.mode {
        KubernetesDeploymentMode::Native => set_native_keys(cluster, &mut conf)?,
        KubernetesDeploymentMode::Standalone => set_standalone_keys(cluster, &mut conf)?,
    }
    Ok(conf)
}

fn set(conf: &mut FlinkConfiguration, key: &str, value: impl Into<String>) {
    conf.insert(key.to_string(), value.into());
}

fn set_default(conf: &mut FlinkConfiguration, key: &str, value: impl Into<String>) {
    conf.entry(key.to_string()).or_insert_with(|| value.into());
}

/// Identity and addresses: fixed ports so Services and container ports can name them.
fn set_cluster_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    set(conf, "kubernetes.cluster-id", cluster.name.clone());
    set(conf, "kubernetes.namespace", cluster.namespace.clone());
    let rpc_address = match cluster.mode {
        KubernetesDeploymentMode::Native => format!("{}.{}", cluster.name, cluster.namespace),
        KubernetesDeploymentMode::Standalone => cluster.name.clone(),
    };
    set(conf, "jobmanager.rpc.address", rpc_address);
    set(conf, "jobmanager.rpc.port", RPC_PORT.to_string());
    set(conf, "blob.server.port", BLOB_PORT.to_string());
    set(conf, "rest.port", cluster.rest_port.to_string());
    set_default(conf, "taskmanager.rpc.port", TASKMANAGER_RPC_PORT.to_string());
    set_default(conf, NUMBER_OF_TASK_SLOTS, "1");
    if flink_config::ha_enabled(conf) {
        set(conf, "high-availability.cluster-id", cluster.name.clone());
        // Without it the HA JobManager binds RPC to a random port.
        set_default(conf, "high-availability.jobmanager.port", RPC_PORT.to_string());
    }
}

fn set_resource_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    set(
        conf,
        "jobmanager.memory.process.size",
        flink_memory(cluster.jobmanager.memory_bytes),
    );
    set(
        conf,
        "taskmanager.memory.process.size",
        flink_memory(cluster.taskmanager.memory_bytes),
    );
}

fn set_job_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    let Some(job) = &cluster.spec.job else { return };
    if let Some(parallelism) = job.parallelism {
        set(conf, "parallelism.default", parallelism.to_string());
    }
    // The JobManager must outlive a finished or stopped job so the operator can observe its final state;
    // otherwise the Deployment would restart it and run the job again.
    set(conf, "execution.shutdown-on-application-finish", "false");
    // A cancelled job keeps its latest checkpoint: last-state upgrades without HA restore from it.
    set_default(
        conf,
        "execution.checkpointing.externalized-checkpoint-retention",
        "RETAIN_ON_CANCELLATION",
    );
    if flink_config::ha_enabled(conf) {
        set_default(conf, "execution.submit-failed-job-on-application-error", "true");
    }
}

/// The JDK module options Flink's own configuration file carries since 1.18 (Flink needs them on Java 17).
/// The operator's ConfigMap replaces that file, so without these a JobManager dies with
/// `InaccessibleObjectException` at start.
pub const JVM_MODULE_OPTIONS: &str = "--add-exports=java.base/sun.net.util=ALL-UNNAMED \
--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED \
--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED \
--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED \
--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED \
--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED \
--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
--add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.text=ALL-UNNAMED \
--add-opens=java.base/java.time=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED \
--add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED \
--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED";

/// From 1.19 `env.java.default-opts.all` is prepended to the user's `env.java.opts.all`, so users keep
/// theirs; 1.18 only has `env.java.opts.all`. Older Flink may run on Java 8, which rejects these options.
fn set_jvm_module_options(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    if cluster.version >= FlinkVersion::V1_19 {
        set_default(conf, "env.java.default-opts.all", JVM_MODULE_OPTIONS);
    } else if cluster.version == FlinkVersion::V1_18 {
        set_default(conf, "env.java.opts.all", JVM_MODULE_OPTIONS);
    }
}

/// Savepoint keys: Flink 2 renamed them (the 1.x names remain deprecated fallbacks).
fn set_restore_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    let Some(path) = cluster.deploy.restore else { return };
    let (path_key, ignore_key) = if cluster.version.is_2x() {
        (
            "execution.state-recovery.path",
            "execution.state-recovery.ignore-unclaimed-state",
        )
    } else {
        ("execution.savepoint.path", "execution.savepoint.ignore-unclaimed-state")
    };
    set(conf, path_key, path);
    set(conf, ignore_key, cluster.deploy.allow_non_restored_state.to_string());
}

/// What Flink's native client would have written for `flink run-application` / `kubernetes-session.sh`.
fn set_native_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) -> Result<(), BuildError> {
    let (target, entrypoint) = match cluster.is_application() {
        true => ("kubernetes-application", APPLICATION_ENTRYPOINT),
        false => ("kubernetes-session", SESSION_ENTRYPOINT),
    };
    set(conf, "execution.target", target);
    set(conf, "kubernetes.internal.jobmanager.entrypoint.class", entrypoint);
    set(conf, image_key(cluster.version), cluster.image.clone());
    set(
        conf,
        "kubernetes.container.image.pull-policy",
        cluster.image_pull_policy.clone(),
    );
    if let Some(account) = cluster.service_account() {
        set(conf, "kubernetes.service-account", account);
    }
    if let Some(cpu) = cluster.jobmanager.cpu {
        set(conf, "kubernetes.jobmanager.cpu", cpu.to_string());
    }
    if let Some(cpu) = cluster.taskmanager.cpu {
        set(conf, "kubernetes.taskmanager.cpu", cpu.to_string());
    }
    if super::pod_template::user_template(cluster.spec, Component::TaskManager)?.is_some() {
        set(
            conf,
            "kubernetes.pod-template-file.taskmanager",
            format!("{FLINK_CONF_DIR}/{TASKMANAGER_POD_TEMPLATE}"),
        );
    }
    set_native_application_keys(cluster, conf);
    Ok(())
}

/// Flink 1.17 renamed the image option; older versions only know the old name.
fn image_key(version: FlinkVersion) -> &'static str {
    if version >= FlinkVersion::V1_17 {
        "kubernetes.container.image.ref"
    } else {
        "kubernetes.container.image"
    }
}

fn set_native_application_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) {
    let Some(job) = &cluster.spec.job else { return };
    if let Some(jar) = &job.jar_uri {
        set(
            conf,
            "pipeline.jars",
            list_value(cluster.version, std::slice::from_ref(jar)),
        );
    }
    if let Some(class) = &job.entry_class {
        set(conf, "$internal.application.main", class.clone());
    }
    if let Some(args) = job.args.as_ref().filter(|a| !a.is_empty()) {
        set(
            conf,
            "$internal.application.program-args",
            list_value(cluster.version, args),
        );
    }
}

fn set_standalone_keys(cluster: &Cluster, conf: &mut FlinkConfiguration) -> Result<(), BuildError> {
    if let super::standalone::UserJar::Classpath(url) = super::standalone::user_jar(cluster)? {
        set(conf, "pipeline.classpaths", list_value(cluster.version, &[url]));
    }
    Ok(())
}

/// A list option's value. Flink 1.x reads `a;b` with items quoted in `'...'` when they hold `;` or `'`;
/// Flink 2 parses the value as YAML first, so a flow sequence keeps every item exactly.
pub fn list_value(version: FlinkVersion, items: &[String]) -> String {
    if version.is_2x() {
        // Serializing a slice of strings cannot fail.
        serde_json::to_string(items).unwrap_or_default()
    } else {
        items
            .iter()
            .map(|item| escape_list_item(item))
            .collect::<Vec<_>>()
            .join(";")
    }
}

fn escape_list_item(item: &str) -> String {
    if item.contains(';') || item.contains('\'') || item.contains('"') {
        format!("'{}'", item.replace('\'', "''"))
    } else {
        item.to_string()
    }
}

/// The configuration file: Flink 1.x's line parser reads `key: value` literally (no YAML quoting, `#`
/// starts a comment), Flink 2's `config.yaml` is real YAML, so its values are YAML-quoted.
pub fn render(conf: &FlinkConfiguration, version: FlinkVersion) -> Result<String, BuildError> {
    if version.is_2x() {
        serde_yaml::to_string(conf).map_err(|why| BuildError::invalid("spec.flinkConfiguration", why.to_string()))
    } else {
        render_legacy(conf)
    }
}

fn render_legacy(conf: &FlinkConfiguration) -> Result<String, BuildError> {
    let mut out = String::new();
    for (key, value) in conf {
        let value = value.trim();
        if value.is_empty() {
            // Flink's 1.x parser skips empty values too.
            continue;
        }
        if let Some(reason) = legacy_unrepresentable(key, value) {
            return Err(BuildError::invalid(
                "spec.flinkConfiguration",
                format!("{key}: {reason} (Flink 1.x reads flink-conf.yaml line by line)"),
            ));
        }
        out.push_str(key);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

fn legacy_unrepresentable(key: &str, value: &str) -> Option<&'static str> {
    if key.contains(['#', '\n', '\r']) || key.contains(": ") || key.trim() != key {
        Some("the key cannot be written to flink-conf.yaml")
    } else if value.contains('#') {
        Some("a value cannot contain '#', which starts a comment")
    } else if value.contains(['\n', '\r']) {
        Some("a value cannot span several lines")
    } else {
        None
    }
}

/// Log configuration files: the default console log4j file overlaid by `spec.logConfiguration`.
pub fn log_files(cluster: &Cluster) -> Result<BTreeMap<String, String>, BuildError> {
    let mut files = BTreeMap::from([(LOG4J_CONSOLE.to_string(), DEFAULT_LOG4J_CONSOLE.to_string())]);
    for (name, content) in cluster.spec.log_configuration.iter().flatten() {
        if !LOG_CONFIG_FILES.contains(&name.as_str()) {
            return Err(BuildError::invalid(
                "spec.logConfiguration",
                format!("'{name}' is not one of {}", LOG_CONFIG_FILES.join(", ")),
            ));
        }
        files.insert(name.clone(), content.clone());
    }
    Ok(files)
}

/// The native TaskManager pod template file, read by the JobManager when it creates TaskManager pods.
pub fn taskmanager_pod_template(cluster: &Cluster) -> Result<Option<String>, BuildError> {
    if cluster.mode != KubernetesDeploymentMode::Native {
        return Ok(None);
    }
    let Some(Value::Object(mut template)) = super::pod_template::user_template(cluster.spec, Component::TaskManager)?
    else {
        return Ok(None);
    };
    template.insert("apiVersion".into(), Value::from("v1"));
    template.insert("kind".into(), Value::from("Pod"));
    serde_yaml::to_string(&template)
        .map(Some)
        .map_err(|why| BuildError::invalid("spec.taskManager.podTemplate", why.to_string()))
}

/// Files of the ConfigMap, by name.
pub fn config_files(cluster: &Cluster) -> Result<BTreeMap<String, String>, BuildError> {
    let mut files = log_files(cluster)?;
    files.insert(
        cluster.version.config_file_name().to_string(),
        render(&cluster.conf, cluster.version)?,
    );
    if let Some(template) = taskmanager_pod_template(cluster)? {
        files.insert(TASKMANAGER_POD_TEMPLATE.to_string(), template);
    }
    Ok(files)
}

/// ConfigMap `flink-config-<name>`, mounted at /opt/flink/conf by every Flink pod.
pub fn config_map(cluster: &Cluster) -> Result<ConfigMap, BuildError> {
    Ok(ConfigMap {
        metadata: cluster.metadata(cluster.config_map_name(), None),
        data: Some(config_files(cluster)?),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Cluster, Deploy};
    use super::*;

    fn conf_of(fd: &crate::crd::FlinkDeployment, deploy: Deploy<'_>) -> FlinkConfiguration {
        Cluster::new(fd, &FlinkConfiguration::new(), deploy).unwrap().conf
    }

    fn get<'a>(conf: &'a FlinkConfiguration, key: &str) -> Option<&'a str> {
        conf.get(key).map(String::as_str)
    }

    #[test]
    fn native_application_1x_keys() {
        let mut fd = example("basic");
        fd.spec.job.as_mut().unwrap().args = Some(vec!["--a".into(), "x;y".into()]);
        set_conf(&mut fd, "kubernetes.operator.periodic.savepoint.interval", "6h");
        set_conf(&mut fd, "state.savepoints.dir", "file:///s");
        let defaults = string_map(&[
            ("kubernetes.operator.reconcile.interval", "60 s"),
            ("taskmanager.numberOfTaskSlots", "4"),
            ("metrics.reporters", "prom"),
        ]);
        let conf = Cluster::new(&fd, &defaults, Deploy::default()).unwrap().conf;
        assert!(conf.keys().all(|k| !k.starts_with("kubernetes.operator.")), "{conf:?}");
        let expected = [
            ("kubernetes.cluster-id", "basic-example"),
            ("kubernetes.namespace", NAMESPACE),
            ("jobmanager.rpc.address", "basic-example.flink-ns"),
            ("jobmanager.rpc.port", "6123"),
            ("blob.server.port", "6124"),
            ("rest.port", "8081"),
            ("jobmanager.memory.process.size", "1024m"),
            ("taskmanager.memory.process.size", "1024m"),
            ("kubernetes.jobmanager.cpu", "0.5"),
            ("kubernetes.taskmanager.cpu", "0.5"),
            ("parallelism.default", "1"),
            ("taskmanager.numberOfTaskSlots", "1"),
            ("execution.target", "kubernetes-application"),
            (
                "kubernetes.internal.jobmanager.entrypoint.class",
                APPLICATION_ENTRYPOINT,
            ),
            ("pipeline.jars", "local:///opt/flink/usrlib/flink-test-job.jar"),
            (
                "$internal.application.main",
                "org.apache.flink.operator.testjob.KeyedCounter",
            ),
            ("$internal.application.program-args", "--a;'x;y'"),
            ("kubernetes.container.image.ref", "flink:1.20"),
            ("kubernetes.container.image.pull-policy", "IfNotPresent"),
            ("kubernetes.service-account", "flink"),
            ("execution.shutdown-on-application-finish", "false"),
            ("state.savepoints.dir", "file:///s"),
            ("metrics.reporters", "prom"),
        ];
        for (key, value) in expected {
            assert_eq!(get(&conf, key), Some(value), "{key}");
        }
        for absent in [
            "high-availability.cluster-id",
            "execution.savepoint.path",
            "kubernetes.pod-template-file.taskmanager",
            "pipeline.classpaths",
        ] {
            assert_eq!(get(&conf, absent), None, "{absent}");
        }
    }

    #[test]
    fn native_session_keys() {
        let conf = conf_of(&example("basic-session-deployment-only"), Deploy::default());
        assert_eq!(get(&conf, "execution.target"), Some("kubernetes-session"));
        assert_eq!(
            get(&conf, "kubernetes.internal.jobmanager.entrypoint.class"),
            Some(SESSION_ENTRYPOINT)
        );
        assert_eq!(get(&conf, "taskmanager.numberOfTaskSlots"), Some("2"));
        for absent in [
            "pipeline.jars",
            "$internal.application.main",
            "parallelism.default",
            "execution.shutdown-on-application-finish",
        ] {
            assert_eq!(get(&conf, absent), None, "{absent}");
        }
    }

    #[test]
    fn flink_2_keys_and_lists() {
        let mut fd = example("flink-2");
        fd.spec.job.as_mut().unwrap().args = Some(vec!["--a".into(), "x;y".into()]);
        let conf = conf_of(
            &fd,
            Deploy {
                restore: Some("file:///flink-data/sp-1"),
                allow_non_restored_state: true,
            },
        );
        assert_eq!(
            get(&conf, "pipeline.jars"),
            Some(r#"["local:///opt/flink/usrlib/flink-test-job.jar"]"#)
        );
        assert_eq!(
            get(&conf, "$internal.application.program-args"),
            Some(r#"["--a","x;y"]"#)
        );
        assert_eq!(
            get(&conf, "execution.state-recovery.path"),
            Some("file:///flink-data/sp-1")
        );
        assert_eq!(
            get(&conf, "execution.state-recovery.ignore-unclaimed-state"),
            Some("true")
        );
        assert_eq!(get(&conf, "execution.savepoint.path"), None);
        assert_eq!(
            get(&conf, "execution.checkpointing.savepoint-dir"),
            Some("file:///flink-data/flink-2/savepoints")
        );
        // flink-2.yaml sets spec.podTemplate: the JobManager reads it for the TaskManagers it creates.
        assert_eq!(
            get(&conf, "kubernetes.pod-template-file.taskmanager"),
            Some("/opt/flink/conf/taskmanager-pod-template.yaml")
        );
    }

    #[test]
    fn jvm_module_options_survive_the_replaced_config_file() {
        let module = "--add-opens=java.base/java.util=ALL-UNNAMED";
        let mut fd = example("basic");
        let conf = conf_of(&fd, Deploy::default());
        assert!(get(&conf, "env.java.default-opts.all").is_some_and(|v| v.contains(module)));
        assert_eq!(
            get(&conf, "env.java.opts.all"),
            None,
            "the user's own JVM options stay free"
        );
        fd.spec.flink_version = Some(FlinkVersion::V1_18);
        let conf = conf_of(&fd, Deploy::default());
        assert!(get(&conf, "env.java.opts.all").is_some_and(|v| v.contains(module)));
        // Older Flink may run on Java 8, which refuses these options.
        fd.spec.flink_version = Some(FlinkVersion::V1_17);
        let conf = conf_of(&fd, Deploy::default());
        assert_eq!(get(&conf, "env.java.opts.all"), None);
        assert_eq!(get(&conf, "env.java.default-opts.all"), None);
    }

    #[test]
    fn restore_keys_on_1x() {
        let conf = conf_of(
            &example("basic"),
            Deploy {
                restore: Some("file:///sp/1"),
                allow_non_restored_state: false,
            },
        );
        assert_eq!(get(&conf, "execution.savepoint.path"), Some("file:///sp/1"));
        assert_eq!(get(&conf, "execution.savepoint.ignore-unclaimed-state"), Some("false"));
    }

    #[test]
    fn ha_keys() {
        let conf = conf_of(&example("basic-checkpoint-ha"), Deploy::default());
        assert_eq!(
            get(&conf, "high-availability.cluster-id"),
            Some("basic-checkpoint-ha-example")
        );
        assert_eq!(get(&conf, "high-availability.jobmanager.port"), Some("6123"));
        assert_eq!(
            get(&conf, "execution.submit-failed-job-on-application-error"),
            Some("true")
        );
        assert_eq!(get(&conf, "kubernetes.operator.periodic.savepoint.interval"), None);
    }

    #[test]
    fn user_rest_port_and_old_image_key() {
        let mut fd = example("basic");
        fd.spec.flink_version = Some(FlinkVersion::V1_16);
        set_conf(&mut fd, "rest.port", "9091");
        set_conf(&mut fd, "jobmanager.rpc.port", "7000");
        let conf = conf_of(&fd, Deploy::default());
        assert_eq!(get(&conf, "rest.port"), Some("9091"));
        assert_eq!(get(&conf, "jobmanager.rpc.port"), Some("6123"));
        assert_eq!(get(&conf, "kubernetes.container.image"), Some("flink:1.20"));
        assert_eq!(get(&conf, "kubernetes.container.image.ref"), None);
    }

    #[test]
    fn standalone_keys() {
        let mut fd = example("standalone-application");
        let conf = conf_of(&fd, Deploy::default());
        assert_eq!(
            get(&conf, "jobmanager.rpc.address"),
            Some("standalone-application-example")
        );
        for absent in [
            "execution.target",
            "kubernetes.internal.jobmanager.entrypoint.class",
            "kubernetes.jobmanager.cpu",
            "kubernetes.service-account",
            "pipeline.jars",
            // The jar is in usrlib, which Flink scans anyway.
            "pipeline.classpaths",
        ] {
            assert_eq!(get(&conf, absent), None, "{absent}");
        }
        fd.spec.job.as_mut().unwrap().jar_uri = Some("local:///opt/jobs/job.jar".into());
        let conf = conf_of(&fd, Deploy::default());
        assert_eq!(get(&conf, "pipeline.classpaths"), Some("file:///opt/jobs/job.jar"));
    }

    #[test]
    fn legacy_file_is_literal_lines() {
        let conf = string_map(&[("a.b", "true"), ("c", " 1 "), ("empty", ""), ("list", "x;'y;z'")]);
        assert_eq!(
            render(&conf, FlinkVersion::V1_20).unwrap(),
            "a.b: true\nc: 1\nlist: x;'y;z'\n"
        );
        let bad = string_map(&[("k", "secret#1")]);
        let err = render(&bad, FlinkVersion::V1_20).unwrap_err();
        assert!(
            matches!(err, BuildError::Invalid { field, reason } if field == "spec.flinkConfiguration" && reason.starts_with("k:"))
        );
        assert!(render(&string_map(&[("k", "a\nb")]), FlinkVersion::V1_18).is_err());
    }

    #[test]
    fn yaml_file_quotes_values_that_need_it() {
        let conf = string_map(&[
            ("$internal.application.program-args", r#"["--a","x;y"]"#),
            ("a.b", "true"),
            ("c", "1"),
            ("d", "secret#1"),
            ("e", "1024m"),
        ]);
        let text = render(&conf, FlinkVersion::V2_2).unwrap();
        let back: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text).unwrap();
        for (key, value) in &conf {
            assert_eq!(
                back.get(key),
                Some(&serde_yaml::Value::String(value.clone())),
                "{key} in\n{text}"
            );
        }
        assert!(text.contains("e: 1024m\n"), "{text}");
    }

    #[test]
    fn config_map_files_by_version() {
        let fd = example("basic");
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let cm = config_map(&cluster).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("flink-config-basic-example"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some(NAMESPACE));
        let data = cm.data.unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["flink-conf.yaml", "log4j-console.properties"]
        );
        assert!(data["flink-conf.yaml"].contains("kubernetes.cluster-id: basic-example\n"));
        assert_eq!(data["log4j-console.properties"], DEFAULT_LOG4J_CONSOLE);

        let fd = example("flink-2");
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let data = config_map(&cluster).unwrap().data.unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["config.yaml", "log4j-console.properties", TASKMANAGER_POD_TEMPLATE]
        );
        let parsed: BTreeMap<String, String> = serde_yaml::from_str(&data["config.yaml"]).unwrap();
        assert_eq!(parsed, cluster.conf);
        let template: serde_json::Value = serde_yaml::from_str(&data[TASKMANAGER_POD_TEMPLATE]).unwrap();
        assert_eq!(template["kind"], "Pod");
        assert_eq!(template["spec"]["volumes"][0]["name"], "flink-data");
    }

    #[test]
    fn custom_logging_replaces_the_default() {
        let fd = example("custom-logging");
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let files = log_files(&cluster).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[LOG4J_CONSOLE].contains("logger.testjob.level = DEBUG"));

        let mut fd = example("basic");
        fd.spec.log_configuration = Some(string_map(&[("logback-console.xml", "<configuration/>")]));
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        let files = log_files(&cluster).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), [LOG4J_CONSOLE, "logback-console.xml"]);

        fd.spec.log_configuration = Some(string_map(&[("log4j.properties", "x")]));
        let cluster = Cluster::new(&fd, &FlinkConfiguration::new(), Deploy::default()).unwrap();
        assert!(log_files(&cluster).is_err());
    }
}
