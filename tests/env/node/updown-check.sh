#!/usr/bin/env bash
# Brings the one-node cluster up and down twice in a row in WORKDIR and checks after each `down` that the host
# is exactly as before: no network namespace, link or bridge of ours, no iptables rule or chain added, no process
# or mount left from WORKDIR, the host sysctls the kubelet touches restored.
#
#   node/updown-check.sh WORKDIR
#
# Takes the machine's node lock (the one the Rust node harness uses), so it never runs beside another node.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=updown
W=$(realpath -m -- "${1:?usage: updown-check.sh WORKDIR}")
mkdir -p "$W"
LOCK=/run/flink-operator-node.lock
exec 9>"$LOCK"
flock -w 1800 9 || die "another node holds $LOCK"

SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables)

snapshot() {
    ip netns list | sort
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
    iptables-save 2>/dev/null | grep -vE '^#|^:.*\[[0-9]+:[0-9]+\]$' | sort || true
    local s
    for s in "${SYSCTLS[@]}"; do
        [[ -e /proc/sys/${s//.//} ]] && echo "$s=$(sysctl -n "$s")"
    done
}

leftovers() {
    local found=0 pid
    if grep -qF "$W/" /proc/mounts; then
        echo "mounts under $W:"; grep -F "$W/" /proc/mounts; found=1
    fi
    for pid in $(pgrep -f -- "$W/" || true); do
        [[ $pid == "$$" ]] && continue
        echo "process left: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"; found=1
    done
    return "$found"
}

host_before=$(snapshot)
for round in 1 2; do
    t=$(now)
    bash "$ENV_DIR/node/cluster.sh" up "$W/node" >"$W/up-$round.log" 2>&1 || { tail -30 "$W/up-$round.log"; die "up failed (round $round)"; }
    kubeconfig=$(sed -n 's/^ADMIN_KUBECONFIG=//p' "$W/node/env")
    kubectl --kubeconfig "$kubeconfig" get nodes -o name >/dev/null 2>&1 \
        || { bash "$ENV_DIR/node/cluster.sh" down "$W/node" >/dev/null 2>&1; die "the node answered nothing (round $round)"; }
    up=$(elapsed "$t")
    t=$(now)
    bash "$ENV_DIR/node/cluster.sh" down "$W/node" >"$W/down-$round.log" 2>&1 || { tail -30 "$W/down-$round.log"; die "down failed (round $round)"; }
    log "round $round: up ${up}s, down $(elapsed "$t")s"
    host_after=$(snapshot)
    if [[ $host_after != "$host_before" ]]; then
        diff <(echo "$host_before") <(echo "$host_after") >&2 || true
        die "round $round: the host differs from before (diff above: < before, > after)"
    fi
    leftovers >&2 || die "round $round: left behind (above)"
done
log "up/down twice: host unchanged, nothing left behind"
