#!/usr/bin/env bash
# Runs every test: formatting and lint, unit tests, the webhook-over-TLS suite and the e2e suites on a real
# local control plane (etcd + kube-apiserver) with real kubectl and Prometheus.
# On a fresh machine it first installs what the tests need (tests/env/install.sh; cached afterwards).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build outputs live outside the checkout so fresh clones (CI) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/flink-operator/target}
mkdir -p "$CARGO_TARGET_DIR"

if [[ ${FLINK_OPERATOR_SKIP_E2E:-0} != 1 ]]; then
    bash tests/env/install.sh
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
