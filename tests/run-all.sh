#!/usr/bin/env bash
# Runs every test: formatting and lint, unit tests, the webhook-over-TLS suite, the e2e suites on a real
# local control plane (etcd + kube-apiserver) with real kubectl and Prometheus, and the node suites
# (tests/e2e_node.rs: a one-node cluster whose pods run, the operator image deployed in it, Flink images).
# On a fresh machine it first installs what the tests need (tests/env/install.sh --node; cached afterwards).
#
# A machine that cannot run the node (no root, network namespaces, overlayfs or cgroups: see
# `tests/env/node/cluster.sh check`) fails the node suites, unless FLINK_OPERATOR_NO_NODE=1 says to skip them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build outputs live outside the checkout so fresh clones (CI) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/flink-operator/target}
mkdir -p "$CARGO_TARGET_DIR"

if [[ ${FLINK_OPERATOR_SKIP_E2E:-0} != 1 ]]; then
    if [[ ${FLINK_OPERATOR_NO_NODE:-0} == 1 ]]; then
        echo "FLINK_OPERATOR_NO_NODE=1: the node suites will be SKIPPED" >&2
        bash tests/env/install.sh
    elif bash tests/env/node/cluster.sh check; then
        bash tests/env/install.sh --node
    else
        echo "The node suites (tests/e2e_node.rs) will FAIL on this machine; set FLINK_OPERATOR_NO_NODE=1 to skip them." >&2
        bash tests/env/install.sh
    fi
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
