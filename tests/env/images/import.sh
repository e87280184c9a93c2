#!/usr/bin/env bash
# Import the locally built images (images/build.sh) into the containerd of the
# single-node cluster of WORKDIR (node/cluster.sh up WORKDIR).
#
#   images/import.sh WORKDIR [NAME...]     # NAME: pause busybox flink-1.20 flink-2 operator
#                                          # (default: the first four)
#
# Uses `ctr -a WORKDIR/containerd/containerd.sock -n k8s.io images import`. An
# archive is skipped when the same build (its NAME.tar.inputs) was already imported
# into this containerd root and its image is still listed. Missing or stale archives are
# built first (images/build.sh NAME; images/operator.sh for `operator`, which also runs
# `cargo build --release --locked`).
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=import

(($# >= 1)) || {
    print_header
    exit 2
}
W=$(realpath -m -- "$1")
shift
SOCK=$W/containerd/containerd.sock
MARKS=$W/containerd/root/.flink-operator-imported
ARCHIVES=$CACHE_DIR/images/archives
declare -A REFS=([pause]=localhost/flink-operator/pause:1 [busybox]=docker.io/library/busybox:1.36
    [flink-1.20]=docker.io/library/flink:1.20 [flink-2]=docker.io/library/flink:2.3
    [operator]=docker.io/library/flink-operator:dev)

names=("$@")
if ((${#names[@]} == 0)); then
    names=(pause busybox flink-1.20 flink-2)
fi
for n in "${names[@]}"; do
    [[ -n ${REFS[$n]:-} ]] || die "unknown image: $n (known: ${!REFS[*]})"
done

[[ -S $SOCK ]] || die "no containerd socket at $SOCK (is the node up? tests/env/node/cluster.sh up $W)"
ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }

# Build what is missing or stale (a no-op when everything is cached).
build_names=()
for n in "${names[@]}"; do
    if [[ $n == operator ]]; then
        "$ENV_DIR/images/operator.sh"
    else
        build_names+=("$n")
    fi
done
if ((${#build_names[@]})); then
    "$ENV_DIR/images/build.sh" "${build_names[@]}"
fi

start=$(now)
mkdir -p "$MARKS"
listed=$(ctr_ images ls -q)
for n in "${names[@]}"; do
    inputs=$(<"$ARCHIVES/$n.tar.inputs")
    if [[ -f $MARKS/$n && $(<"$MARKS/$n") == "$inputs" ]] && grep -qxF "${REFS[$n]}" <<<"$listed"; then
        log "$n: already imported (${REFS[$n]})"
        continue
    fi
    t=$(now)
    ctr_ images import "$ARCHIVES/$n.tar" >/dev/null
    grep -qxF "${REFS[$n]}" <<<"$(ctr_ images ls -q)" || die "$n: ${REFS[$n]} not listed after the import"
    echo "$inputs" >"$MARKS/$n"
    log "$n: imported ${REFS[$n]} in $(elapsed "$t")s"
done
log "done in $(elapsed "$start")s"
