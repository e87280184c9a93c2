//! The Kubernetes permissions the operator itself needs: declared once here, printed by
//! `flink-operator rbac`, committed under `manifests/`, granted by the chart and by the test environment.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::ObjectMeta;

/// Name of the operator's ClusterRole.
pub const CLUSTER_ROLE: &str = "flink-operator";
/// Name of the Role for leader election (in the Lease's namespace).
pub const LEADER_ELECTION_ROLE: &str = "flink-operator-leader-election";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Every rule the operator uses, and why.
pub fn operator_rules() -> Vec<PolicyRule> {
    vec![
        // Watch the custom resources; patch adds and removes the finalizer.
        rule(
            "flink.apache.org",
            &["flinkdeployments", "flinksessionjobs"],
            &["get", "list", "watch", "patch"],
        ),
        // Report status.
        rule(
            "flink.apache.org",
            &["flinkdeployments/status", "flinksessionjobs/status"],
            &["get", "patch"],
        ),
        // Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
        rule(
            "flink.apache.org",
            &["flinkdeployments/finalizers", "flinksessionjobs/finalizers"],
            &["update"],
        ),
        // The Flink clusters: server-side apply (patch, and create when apply creates the object), watches
        // for JobManager status, delete on cleanup.
        rule(
            "apps",
            &["deployments"],
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "",
            &["services", "configmaps"],
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "networking.k8s.io",
            &["ingresses"],
            &["get", "create", "patch", "delete"],
        ),
        // A JobManager that is not available: tell crash loops and image pull failures from a slow start.
        rule("", &["pods"], &["list"]),
        // Events for users (kubectl describe); patch updates a repeated event's count.
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

fn named_rule(group: &str, resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(names.iter().map(|n| n.to_string()).collect()),
        ..rule(group, resources, verbs)
    }
}

/// Self-managed webhook certificates, in the Secret's namespace: read and renew that one Secret by name.
/// `create` cannot be limited by resourceNames (the name is not known when a create is authorized), so it
/// is a rule of its own, in that namespace only.
pub fn certificate_secret_rules(secret: &str) -> Vec<PolicyRule> {
    vec![
        named_rule("", &["secrets"], &["get", "update"], &[secret]),
        rule("", &["secrets"], &["create"]),
    ]
}

/// Self-managed webhook certificates, cluster-wide: read and patch the caBundle of the operator's own two
/// webhook configurations (named `configuration`), no others.
pub fn webhook_configuration_rules(configuration: &str) -> Vec<PolicyRule> {
    vec![named_rule(
        "admissionregistration.k8s.io",
        &["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        &["get", "patch"],
        &[configuration],
    )]
}

/// Leader election, only in the Lease's own namespace (not in the ClusterRole: least privilege): read and
/// renew that one Lease by name; `create` cannot be limited by name, so it is a rule of its own.
pub fn leader_election_rules(lease: &str) -> Vec<PolicyRule> {
    vec![
        named_rule("coordination.k8s.io", &["leases"], &["get", "update"], &[lease]),
        rule("coordination.k8s.io", &["leases"], &["create"]),
    ]
}

/// The Role for leader election with the Lease `lease`, in `namespace` (none: given at apply time).
pub fn leader_election_role(namespace: Option<&str>, lease: &str) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(LEADER_ELECTION_ROLE.to_string()),
            namespace: namespace.map(str::to_string),
            ..ObjectMeta::default()
        },
        rules: Some(leader_election_rules(lease)),
    }
}

/// Placeholders in `chart_rules_template` that become template expressions.
const SECRET_PLACEHOLDER: &str = "SELF-MANAGED-SECRET";
const CONFIGURATION_PLACEHOLDER: &str = "WEBHOOK-CONFIGURATION";
const LEASE_PLACEHOLDER: &str = "LEADER-ELECTION-LEASE";

/// `charts/flink-kubernetes-operator/templates/_rules.tpl`: the rules above as Helm named templates, so
/// that the chart grants exactly what the code declares (a drift test keeps the file current).
pub fn chart_rules_template() -> Result<String, serde_yaml::Error> {
    let yaml = |rules: Vec<PolicyRule>| -> Result<String, serde_yaml::Error> {
        Ok(serde_yaml::to_string(&rules)?
            .replace(
                SECRET_PLACEHOLDER,
                r#"{{ include "flink-operator.certificateSecret" . }}"#,
            )
            .replace(
                CONFIGURATION_PLACEHOLDER,
                r#"{{ include "flink-operator.fullname" . }}"#,
            )
            .replace(LEASE_PLACEHOLDER, r#"{{ .Values.leaderElection.leaseName }}"#))
    };
    Ok(format!(
        "{{{{- /* Generated from src/rbac.rs by `UPDATE_GENERATED=1 cargo test --test generated`; do not edit. */ -}}}}\n\
         {{{{- define \"flink-operator.operatorRules\" }}}}\n{}{{{{- end }}}}\n\
         {{{{- define \"flink-operator.certificateSecretRules\" }}}}\n{}{{{{- end }}}}\n\
         {{{{- define \"flink-operator.webhookConfigurationRules\" }}}}\n{}{{{{- end }}}}\n\
         {{{{- define \"flink-operator.leaderElectionRules\" }}}}\n{}{{{{- end }}}}\n",
        yaml(operator_rules())?,
        yaml(certificate_secret_rules(SECRET_PLACEHOLDER))?,
        yaml(webhook_configuration_rules(CONFIGURATION_PLACEHOLDER))?,
        yaml(leader_election_rules(LEASE_PLACEHOLDER))?,
    ))
}

/// The operator's ClusterRole.
pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(CLUSTER_ROLE.to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(operator_rules()),
        ..ClusterRole::default()
    }
}
