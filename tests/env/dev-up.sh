#!/usr/bin/env bash
# One command to see the operator work locally.
#
#   tests/env/dev-up.sh [EXAMPLE.yaml]     # default examples/basic.yaml; stop with tests/env/dev-down.sh
#
# Where this machine can run the one-node cluster (tests/env/node/cluster.sh check: root, network
# namespaces, overlayfs, cgroups) and FLINK_OPERATOR_NO_NODE is not 1: the node (pods really run), the
# operator deployed in it from its image (node/deploy-operator.sh: release build, image flink-operator:dev,
# plain manifests, webhook through its Service), the service account `flink` in namespace default, the
# example applied there, and the Flink JobManager pod it leads to.
# Otherwise: a real control plane on loopback (etcd + kube-apiserver; no pods run), the CRDs, the operator
# as a local process under its own RBAC identity, its webhook registered with the API server, the example.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
DEV_DIR=${FLINK_OPERATOR_DEV_DIR:-/tmp/flink-operator-dev}
# The node's WORKDIR outside DEV_DIR: its containerd keeps the imported images across runs.
NODE_DIR=${FLINK_OPERATOR_DEV_NODE_DIR:-$CACHE_DIR/node-dev}
EXAMPLE=${1:-$REPO/examples/basic.yaml}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}

if [[ -f $DEV_DIR/node.dir && -f $(cat "$DEV_DIR/node.dir")/env ]]; then
    die "already running (state in $DEV_DIR); stop it with tests/env/dev-down.sh"
fi
if [[ -f $DEV_DIR/operator.pid ]] && kill -0 "$(cat "$DEV_DIR/operator.pid")" 2>/dev/null; then
    die "already running (state in $DEV_DIR); stop it with tests/env/dev-down.sh"
fi
rm -rf "$DEV_DIR"
mkdir -p "$DEV_DIR"

# ------------------------------------------------------------------ with the node: everything in-cluster
# jobmanager_running NAME: a JobManager pod of the Flink cluster NAME is running (k: kubectl as admin).
jobmanager_running() {
    [[ $(k -n default get pods -l "app=$1,component=jobmanager" -o 'jsonpath={.items[*].status.phase}' 2>/dev/null) == *Running* ]]
}

node_up() {
    local start
    start=$(now)
    bash "$ENV_DIR/install.sh" --node
    if [[ -f /run/flink-operator-node.owner ]]; then
        die "a node cluster from $(cat /run/flink-operator-node.owner) runs on this machine and only one can" \
            "(a test run? stop it with tests/env/node/cluster.sh down DIR)"
    fi
    echo "$NODE_DIR" >"$DEV_DIR/node.dir"
    trap 'warn "dev-up.sh failed; tests/env/dev-down.sh stops what it started"' EXIT
    bash "$ENV_DIR/node/cluster.sh" up "$NODE_DIR"
    # shellcheck disable=SC1091
    . "$NODE_DIR/env"
    k() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
    bash "$ENV_DIR/images/import.sh" "$NODE_DIR"
    bash "$ENV_DIR/node/deploy-operator.sh" "$NODE_DIR"
    # What a native-mode cluster's JobManager needs (the examples use service account `flink`).
    k -n default apply -f "$ENV_DIR/node/manifests/native-rbac.yaml" >/dev/null
    k -n default apply -f "$EXAMPLE"
    local name
    name=$(k -n default create --dry-run=client -o jsonpath='{.metadata.name}' -f "$EXAMPLE")
    log "waiting for the operator to start the Flink cluster $name (its JobManager pod)"
    if wait_until 120 "a running JobManager pod of $name" jobmanager_running "$name"; then
        log "JobManager of $name running ($(elapsed "$start")s after start)"
    else
        warn "no running JobManager pod of $name after 120 s; see kubectl get flinkdep,pods and the operator's log"
    fi
    k -n default get flinkdeployments,deployments,pods
    trap - EXIT
    cat <<INFO

The node cluster runs (WORKDIR $NODE_DIR); the operator runs in it (namespace flink-operator).
  export KUBECONFIG=$ADMIN_KUBECONFIG
  kubectl get flinkdep,pods
  kubectl -n flink-operator logs deploy/flink-operator
  kubectl apply -f $REPO/examples/invalid/last-state-without-ha.yaml   # rejected by the webhook
  kubectl get --raw "/api/v1/namespaces/flink-operator/pods/\$(kubectl -n flink-operator get pods -o name | cut -d/ -f2):8085/proxy/metrics" | grep flink_operator_
Stop everything: tests/env/dev-down.sh
INFO
}

if [[ ${FLINK_OPERATOR_NO_NODE:-0} != 1 ]] && node_check=$(bash "$ENV_DIR/node/cluster.sh" check 2>&1); then
    node_up
    exit 0
fi
if [[ ${FLINK_OPERATOR_NO_NODE:-0} == 1 ]]; then
    log "FLINK_OPERATOR_NO_NODE=1: control plane only (no pods run; the operator runs as a local process)"
else
    warn "${node_check:-node check failed}"
    warn "falling back to the control plane only: no pods run, the operator runs as a local process"
fi

# ------------------------------------------------------------------ without the node: control plane on loopback
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
