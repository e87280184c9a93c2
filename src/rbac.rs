//! The Kubernetes permissions the operator itself needs: declared once here, printed by
//! `flink-operator rbac`, committed under `manifests/`, granted by the chart and by the test environment.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::ObjectMeta;

/// Name of the operator's ClusterRole.
pub const CLUSTER_ROLE: &str = "flink-operator";

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
        rule("flink.apache.org", &["flinkdeployments/finalizers"], &["update"]),
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
            &["get", "list", "create", "patch", "delete"],
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
