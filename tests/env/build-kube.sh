#!/usr/bin/env bash
# Build Kubernetes v1.20.2 binaries from Debian's `kubernetes` source package and
# cache them in $CACHE_DIR/kubernetes-1.20.2/bin/ (CACHE_DIR defaults to
# /var/cache/flink-operator, override with FLINK_OPERATOR_CACHE).
#
#   build-kube.sh                     # kube-apiserver
#   build-kube.sh --all               # kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
#   build-kube.sh kube-apiserver kubelet
#   build-kube.sh --check [COMPONENT...|--all]   # exit 0 if nothing needs building, 1 otherwise
#
# Cached binaries are reused. A component whose override variable is set
# (KUBE_APISERVER_BIN, KUBE_CONTROLLER_MANAGER_BIN, ...) is not built.
# Concurrent callers serialise on a lock and build only once.
# Installs its build dependencies (golang-go, rsync, golang-github-modern-go-reflect2-dev,
# a deb-src entry) only when something actually has to be built.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    print_header
    exit 2
}

check_only=
components=()
while (($#)); do
    case $1 in
    --all) components+=("${KUBE_ALL_COMPONENTS[@]}") ;;
    --check) check_only=1 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
        [[ " ${KUBE_ALL_COMPONENTS[*]} kubectl " == *" $1 "* ]] || die "unknown component: $1"
        components+=("$1")
        ;;
    esac
    shift
done
((${#components[@]})) || components=(kube-apiserver)

# Overrides must point at executables.
for c in "${components[@]}"; do
    var=$(kube_bin_var "$c")
    if [[ -n ${!var:-} && ! -x ${!var} ]]; then
        die "$var=${!var} is not an executable file"
    fi
done

# missing_components: the requested components that are neither overridden nor cached.
missing_components() {
    local c var
    for c in "${components[@]}"; do
        var=$(kube_bin_var "$c")
        [[ -n ${!var:-} || -x $KUBE_BIN_DIR/$c ]] || echo "$c"
    done | sort -u
}

# describe_components: where each requested component comes from.
describe_components() {
    local c var desc=()
    for c in "${components[@]}"; do
        var=$(kube_bin_var "$c")
        if [[ -n ${!var:-} ]]; then
            desc+=("$c=\$$var")
        else
            desc+=("$c")
        fi
    done
    echo "${desc[*]} (cache: $KUBE_BIN_DIR)"
}

mapfile -t todo < <(missing_components)
if ((${#todo[@]} == 0)); then
    [[ -n $check_only ]] || log "nothing to build: $(describe_components)"
    exit 0
fi
if [[ -n $check_only ]]; then
    exit 1
fi

mkdir -p "$CACHE_DIR" "$KUBE_BIN_DIR" "$CACHE_DIR/src" "$CACHE_DIR/logs"
exec 9>"$CACHE_DIR/.build-kube.lock"
if ! flock -n 9; then
    log "another build-kube.sh holds $CACHE_DIR/.build-kube.lock; waiting (up to 60 min)"
    flock -w 3600 9 || die "timed out waiting for the build lock"
fi
# Someone else may have built them while we waited.
mapfile -t todo < <(missing_components)
if ((${#todo[@]} == 0)); then
    log "cached (built by a concurrent caller): ${components[*]}"
    exit 0
fi

start=$(now)
log "building: ${todo[*]}"

# ------------------------------------------------------------- dependencies
APT_ENSURE_NO_DAEMONS='' apt_ensure golang-go rsync golang-github-modern-go-reflect2-dev dpkg-dev make
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -d $REFLECT2_SRC ]] || die "$REFLECT2_SRC is missing (golang-github-modern-go-reflect2-dev)"

# ------------------------------------------------------------- source tree
SRC=$CACHE_DIR/src/kubernetes-$KUBE_VERSION
PATCHED_MARK=$SRC/.flink-operator-prepared
if [[ ! -f $PATCHED_MARK ]]; then
    rm -rf "$SRC"
    ensure_deb_src
    fetch=$(mktemp -d "$CACHE_DIR/src/fetch.XXXXXX")
    log "apt-get source kubernetes (into $fetch)"
    # apt-get source runs dpkg-source -x; as root the download cannot be sandboxed.
    (cd "$fetch" && _apt source kubernetes >&2) || die "apt-get source kubernetes failed"
    tree=
    for d in "$fetch"/kubernetes-*/; do
        [[ -f $d/Makefile && -d $d/vendor ]] && tree=${d%/}
    done
    [[ -n $tree ]] || die "no kubernetes source tree found in $fetch"
    [[ -f $tree/CHANGELOG/CHANGELOG-1.20.md ]] || warn "unexpected source tree layout in $tree"

    # REQUIRED: vendored reflect2 v1.0.1 crashes under Go >= 1.18 as soon as
    # custom resources are served to a watch. Replace it with Debian's 1.0.2.
    log "replacing vendor/github.com/modern-go/reflect2 with $REFLECT2_SRC"
    vend=$tree/vendor/github.com/modern-go/reflect2
    [[ -d $vend ]] || die "$vend not found"
    find "$vend" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    shopt -s nullglob
    files=("$REFLECT2_SRC"/*.go "$REFLECT2_SRC"/*.s)
    shopt -u nullglob
    ((${#files[@]})) || die "no *.go/*.s files in $REFLECT2_SRC"
    cp -L "${files[@]}" "$vend/"

    mkdir -p "$tree/.go/src/k8s.io"
    ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
    mv "$tree" "$SRC"
    rm -rf "$fetch"
    touch "$PATCHED_MARK"
fi

# ------------------------------------------------------------- build
# Version stamped into the binaries (/version): without it, a tarball build
# reports v0.0.0-master+..., which confuses clients that check the server version.
cat >"$SRC/.flink-operator-version" <<EOF
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v$KUBE_VERSION'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
EOF

whats=()
for c in "${todo[@]}"; do whats+=("cmd/$c"); done
build_log=$CACHE_DIR/logs/build-kube-$(date +%Y%m%d-%H%M%S).log
mkdir -p "$CACHE_DIR/home"
log "make WHAT='${whats[*]}' (log: $build_log; about 4-6 minutes on 2 cores for a first build)"
if ! (
    cd "$SRC"
    export GOPATH=$SRC/.go
    export HOME=$CACHE_DIR/home
    export CGO_ENABLED=0
    export GOFLAGS=
    export GO111MODULE=
    export KUBE_GIT_VERSION_FILE=$SRC/.flink-operator-version
    make WHAT="${whats[*]}"
) >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    # A failed build can leave half-written files in _output/ (e.g. when rsync
    # was missing): start the next attempt from scratch. (Kubernetes' build
    # keeps its Go build cache in _output/local/go/cache, so that goes too.)
    rm -rf "$SRC/_output"
    die "build failed after $(elapsed "$start")s; full log: $build_log"
fi

# ------------------------------------------------------------- install
for c in "${todo[@]}"; do
    out=$SRC/_output/bin/$c
    [[ -x $out ]] || die "build did not produce $out (log: $build_log)"
    tmp=$(mktemp "$KUBE_BIN_DIR/.$c.XXXXXX")
    cp "$out" "$tmp"
    chmod 755 "$tmp"
    mv -f "$tmp" "$KUBE_BIN_DIR/$c"
done
log "built ${todo[*]} in $(elapsed "$start")s -> $KUBE_BIN_DIR"
