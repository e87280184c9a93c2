#!/usr/bin/env bash
# Stops what dev-up.sh started: the node cluster (with the operator and Flink in it), or the local
# operator process and the control plane.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DEV_DIR=${FLINK_OPERATOR_DEV_DIR:-/tmp/flink-operator-dev}
if [[ -f $DEV_DIR/operator.pid ]]; then
    pid=$(cat "$DEV_DIR/operator.pid")
    if kill -TERM "$pid" 2>/dev/null; then
        deadline=$(($(date +%s) + 20))
        while kill -0 "$pid" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DEV_DIR/operator.pid"
fi
if [[ -d $DEV_DIR/cluster ]]; then
    bash "$ENV_DIR/controlplane.sh" down "$DEV_DIR/cluster"
fi
if [[ -f $DEV_DIR/node.dir ]]; then
    bash "$ENV_DIR/node/cluster.sh" down "$(cat "$DEV_DIR/node.dir")"
    rm -f "$DEV_DIR/node.dir"
fi
log "stopped (logs kept in $DEV_DIR)"
