#!/usr/bin/env bash
# One command to see the operator work locally: a real control plane on loopback (etcd + kube-apiserver),
# the CRDs, the operator (webhook + controllers) under its own RBAC identity, its webhook registered with the
# API server, and an example applied. Stop everything with tests/env/dev-down.sh.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
DEV_DIR=${FLINK_OPERATOR_DEV_DIR:-/tmp/flink-operator-dev}
EXAMPLE=${1:-$REPO/examples/basic.yaml}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}

if [[ -f $DEV_DIR/operator.pid ]] && kill -0 "$(cat "$DEV_DIR/operator.pid")" 2>/dev/null; then
    die "already running (state in $DEV_DIR); stop it with tests/env/dev-down.sh"
fi
rm -rf "$DEV_DIR"
mkdir -p "$DEV_DIR"

bash "$ENV_DIR/install.sh"
log "building the operator"
(cd "$REPO" && cargo build --release --locked --quiet)
BIN=$CARGO_TARGET_DIR/release/flink-operator

bash "$ENV_DIR/controlplane.sh" up "$DEV_DIR/cluster"
# shellcheck disable=SC1091
. "$DEV_DIR/cluster/env"
k() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

k apply -f "$REPO/manifests/crds.yaml" >/dev/null
k wait --for=condition=established --timeout=60s crd/flinkdeployments.flink.apache.org crd/flinksessionjobs.flink.apache.org >/dev/null
k apply -f "$REPO/manifests/rbac/operator-clusterrole.yaml" >/dev/null
k create clusterrolebinding flink-operator --clusterrole=flink-operator --user="$OPERATOR_USER" >/dev/null

"$BIN" certs --out "$DEV_DIR/certs" --dns localhost --ip 127.0.0.1
{ read -r WEBHOOK_PORT; read -r ADMIN_PORT; } < <(free_ports 2)
KUBECONFIG=$OPERATOR_KUBECONFIG nohup "$BIN" run \
    --webhook-addr "127.0.0.1:$WEBHOOK_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
    --tls-cert-file "$DEV_DIR/certs/tls.crt" --tls-key-file "$DEV_DIR/certs/tls.key" \
    >"$DEV_DIR/operator.log" 2>&1 &
echo $! >"$DEV_DIR/operator.pid"
echo "$ADMIN_PORT" >"$DEV_DIR/admin.port"

deadline=$(($(date +%s) + 60))
until curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; do
    kill -0 "$(cat "$DEV_DIR/operator.pid")" 2>/dev/null || { tail -20 "$DEV_DIR/operator.log"; die "operator exited"; }
    (($(date +%s) < deadline)) || { tail -20 "$DEV_DIR/operator.log"; die "operator not ready after 60 s"; }
    sleep 0.2
done
"$BIN" webhook-config --url "https://127.0.0.1:$WEBHOOK_PORT" --ca-file "$DEV_DIR/certs/ca.crt" | k apply -f - >/dev/null

# The API server picks up a new webhook configuration asynchronously: wait until it rejects a bad spec.
deadline=$(($(date +%s) + 30))
until ! k apply --dry-run=server -f "$REPO/examples/invalid/parallelism-zero.yaml" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || die "webhook not in effect after 30 s"
    sleep 0.2
done
k apply -f "$EXAMPLE"

cat <<INFO

The operator is running (pid $(cat "$DEV_DIR/operator.pid"), log $DEV_DIR/operator.log).
  export KUBECONFIG=$ADMIN_KUBECONFIG
  kubectl get flinkdep
  kubectl apply -f $REPO/examples/invalid/last-state-without-checkpoints.yaml   # rejected by the webhook
  curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep flink_operator_
Stop everything: tests/env/dev-down.sh
INFO
