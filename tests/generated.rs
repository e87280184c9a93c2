//! Generated artifacts are committed; this fails when they drift from the code.
//! Regenerate with `UPDATE_GENERATED=1 cargo test --test generated`.

use std::path::Path;

fn check(relative: &str, generated: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is out of date with the code: run `UPDATE_GENERATED=1 cargo test --test generated` and commit"
    );
}

#[test]
fn crds_match_the_code() {
    check("manifests/crds.yaml", flink_operator::crd::crds_yaml().unwrap());
}

#[test]
fn operator_rbac_matches_the_code() {
    let yaml = serde_yaml::to_string(&flink_operator::rbac::cluster_role()).unwrap();
    check("manifests/rbac/operator-clusterrole.yaml", format!("---\n{yaml}"));
}

#[test]
fn leader_election_role_matches_the_code() {
    let role = flink_operator::rbac::leader_election_role(None, flink_operator::leader::DEFAULT_LEASE_NAME);
    let yaml = serde_yaml::to_string(&role).unwrap();
    check(
        "manifests/rbac/operator-leader-election-role.yaml",
        format!("---\n{yaml}"),
    );
}

#[test]
fn chart_rbac_rules_match_the_code() {
    check(
        "charts/flink-kubernetes-operator/templates/_rules.tpl",
        flink_operator::rbac::chart_rules_template().unwrap(),
    );
}

#[test]
fn chart_crds_match_the_code() {
    check(
        "charts/flink-kubernetes-operator/crds/flink-crds.yaml",
        flink_operator::crd::crds_yaml().unwrap(),
    );
}
