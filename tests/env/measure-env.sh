#!/usr/bin/env bash
# Time the test environment from nothing, then again from its caches: the figures behind the README's
# "first run" and "cached re-run" claims (issue: local Kubernetes part 2, budget 25 min / 2 min).
#
#   measure-env.sh DIR     # DIR must not exist: it becomes FLINK_OPERATOR_CACHE and CARGO_TARGET_DIR's parent
#
# Fresh pass, every step from an empty cache:
#   apt       download (only) of every Debian package install.sh --node needs, with its dependencies, into
#             DIR/apt (this machine already has them installed; unpacking is not timed)
#   install   install.sh --node: kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy built from
#             Debian's source package (Go toolchain included), Flink 1.20.5 + 2.3.0 from PyPI, test jars, Helm SDK
#   images    images/build.sh all (Debian rootfs by debootstrap, OpenJDK, both Flink images, pause, busybox)
#   operator  images/operator.sh: cold `cargo build --release --locked` + the image
#   up        node/cluster.sh up (a one-node cluster in its own network namespace)
#   import    images/import.sh of all five images
#   down      node/cluster.sh down
# Cached pass: install, images, operator, up, import, down again with the caches of the fresh pass.
# Takes the node, like the node suites: do not run them at the same time.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=measure

(($# == 1)) || {
    print_header
    exit 2
}
DIR=$(realpath -m -- "$1")
[[ ! -e $DIR ]] || die "$DIR exists: give a path that does not (the point is an empty cache)"
mkdir -p "$DIR/apt/partial"
export FLINK_OPERATOR_CACHE=$DIR
export CARGO_TARGET_DIR=$DIR/target
WORK=$DIR/node
results=()

step() {
    local pass=$1 name=$2 t
    shift 2
    t=$(now)
    "$@" >>"$DIR/measure.log" 2>&1 || die "$pass/$name failed: see $DIR/measure.log"
    results+=("$pass $name $(elapsed "$t")")
    log "$pass $name: $(elapsed "$t") s"
}

apt_download() {
    local pkgs=(openssl jq curl etcd-server prometheus containerd runc containernetworking-plugins iptables
        conntrack dnsmasq-base debootstrap busybox-static umoci skopeo socat iproute2 util-linux)
    _apt -o Dir::Cache::archives="$DIR/apt" --reinstall --download-only -y install "${pkgs[@]}"
    _apt -o Dir::Cache::archives="$DIR/apt" --reinstall --download-only -y --no-install-recommends \
        install "${pkgs[@]}"
}

node_cycle() {
    local pass=$1
    step "$pass" up "$ENV_DIR/node/cluster.sh" up "$WORK"
    step "$pass" import "$ENV_DIR/images/import.sh" "$WORK" pause busybox flink-1.20 flink-2 operator
    step "$pass" down "$ENV_DIR/node/cluster.sh" down "$WORK"
}

total=$(now)
step fresh apt apt_download
step fresh install "$ENV_DIR/install.sh" --node
step fresh images "$ENV_DIR/images/build.sh" all
step fresh operator "$ENV_DIR/images/operator.sh"
node_cycle fresh
fresh_total=$(elapsed "$total")

total=$(now)
step cached install "$ENV_DIR/install.sh" --node
step cached images "$ENV_DIR/images/build.sh" all
step cached operator "$ENV_DIR/images/operator.sh"
node_cycle cached
cached_total=$(elapsed "$total")

printf '%-7s %-9s %9s\n' pass step seconds
for r in "${results[@]}"; do
    # shellcheck disable=SC2086 # "pass step seconds", split on purpose
    printf '%-7s %-9s %9s\n' $r
done
printf '%-7s %-9s %9s\n' fresh TOTAL "$fresh_total" cached TOTAL "$cached_total"
