#!/usr/bin/env bash
# Deploy the operator into the single-node cluster of WORKDIR (node/cluster.sh up WORKDIR) the way
# a user would: its image, plain manifests, a Secret with the webhook certificate, webhook
# configurations pointing at its Service.
#
#   node/deploy-operator.sh WORKDIR
#
# 1. images/import.sh WORKDIR operator: `cargo build --release --locked`, the image
#    flink-operator:dev (images/operator.sh; both cached), imported into the node's containerd;
# 2. the CRDs (manifests/crds.yaml) and the operator's ClusterRole (manifests/rbac/operator-clusterrole.yaml);
# 3. `flink-operator certs` for flink-operator-webhook.flink-operator.svc -> Secret
#    flink-operator/flink-operator-webhook-cert (tls.crt, tls.key, ca.crt; files kept in WORKDIR/operator-certs);
# 4. node/manifests/operator/: Namespace, ServiceAccount + ClusterRoleBinding, Deployment, Service;
#    waits for the rollout (the kubelet's startup and readiness probes);
# 5. `flink-operator webhook-config --service flink-operator/flink-operator-webhook:443` applied, and
#    waits until the API server rejects examples/invalid/parallelism-zero.yaml through it (dry run).
# Re-running it on a running node rolls the Deployment (the image may have changed).
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=deploy-operator

(($# == 1)) || {
    print_header
    exit 2
}
W=$(realpath -m -- "$1")
[[ -f $W/env ]] || die "no $W/env: start the node first (tests/env/node/cluster.sh up $W)"
ADMIN_KUBECONFIG=$(sed -n 's/^ADMIN_KUBECONFIG=//p' "$W/env")
REPO=$(cd "$ENV_DIR/../.." && pwd)
NS=flink-operator
SERVICE=flink-operator-webhook
SECRET=flink-operator-webhook-cert
CERTS=$W/operator-certs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}
BIN=${OPERATOR_BIN:-$CARGO_TARGET_DIR/release/flink-operator}

k() { kubectl --kubeconfig="$ADMIN_KUBECONFIG" --request-timeout=20s "$@"; }

start=$(now)
"$ENV_DIR/images/import.sh" "$W" operator

k apply -f "$REPO/manifests/crds.yaml" >/dev/null
k wait --for=condition=established --timeout=60s \
    crd/flinkdeployments.flink.apache.org crd/flinksessionjobs.flink.apache.org >/dev/null
k apply -f "$REPO/manifests/rbac/operator-clusterrole.yaml" >/dev/null

rm -rf "$CERTS"
"$BIN" certs --out "$CERTS" --dns "$SERVICE.$NS.svc" --dns "$SERVICE.$NS.svc.cluster.local" \
    --dns "$SERVICE.$NS" --dns "$SERVICE" >/dev/null
existed=
k -n "$NS" get deployment flink-operator -o name >/dev/null 2>&1 && existed=1
k apply -f "$ENV_DIR/node/manifests/operator/00-namespace.yaml" >/dev/null
k -n "$NS" create secret generic "$SECRET" --from-file="$CERTS/tls.crt" --from-file="$CERTS/tls.key" \
    --from-file="$CERTS/ca.crt" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f "$ENV_DIR/node/manifests/operator/" >/dev/null
if [[ -n $existed ]]; then
    k -n "$NS" rollout restart deployment/flink-operator >/dev/null
fi
log "waiting for the operator Deployment (startup and readiness probes)"
if ! k -n "$NS" rollout status deployment/flink-operator --timeout=180s >&2; then
    k -n "$NS" get pods -o wide >&2 || true
    k -n "$NS" describe pods >&2 || true
    k -n "$NS" logs deployment/flink-operator --tail=50 >&2 || true
    die "the operator did not become ready"
fi

"$BIN" webhook-config --service "$NS/$SERVICE:443" --ca-file "$CERTS/ca.crt" | k apply -f - >/dev/null
# The API server picks up webhook configurations asynchronously: wait until it rejects a bad spec.
webhook_rejects() {
    local out
    out=$(k -n default apply --dry-run=server -f "$REPO/examples/invalid/parallelism-zero.yaml" 2>&1) && return 1
    [[ $out == *"denied the request"*"spec.job.parallelism"* ]]
}
wait_until 60 "the webhook to reject examples/invalid/parallelism-zero.yaml" webhook_rejects ||
    die "webhook not in effect after 60 s"
log "operator deployed in $(elapsed "$start")s (namespace $NS, webhook through Service $NS/$SERVICE)"
