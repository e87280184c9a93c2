//! The one-node cluster's hygiene: up and down twice in a row leave the host exactly as before (no network
//! namespace, link, iptables rule, process or mount of ours; sysctls restored). `tests/env/node/updown-check.sh`
//! does the checking; it takes the machine's node lock, so it never runs beside another node.
//!
//! `FLINK_OPERATOR_NO_NODE=1` skips it (printed); `FLINK_OPERATOR_SKIP_E2E=1` skips all e2e suites locally.

mod support;

use std::path::Path;

#[test]
fn node_up_and_down_twice_leaves_the_host_as_it_was() {
    if support::skip_e2e() || support::node::skip_node() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/env/node/updown-check.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "updown-check.sh failed:\n{stderr}");
    assert!(stderr.contains("up/down twice: host unchanged"), "{stderr}");
}
