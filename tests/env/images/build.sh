#!/usr/bin/env bash
# Build the container images of the single-node test cluster locally, without
# Docker and without any registry: debootstrap/chroot + umoci + skopeo.
#
#   images/build.sh [pause|busybox|flink-1.20|flink-2|test-job|all]...   (default: all)
#
# Results (docker-archive files, imported by images/import.sh WORKDIR) in
# $CACHE_DIR/images/archives/ (CACHE_DIR defaults to /var/cache/flink-operator):
#   pause.tar       localhost/flink-operator/pause:1  static busybox `sleep 2147483647`
#   busybox.tar     busybox:1.36                      static busybox (Debian's) + applet links
#   flink-1.20.tar  flink:1.20                        Debian bookworm + OpenJDK 17 + Flink 1.20.5 (PyPI)
#   flink-2.tar     flink:2.3                         the same with Flink 2.3.0
# Both Flink images contain /opt/flink/usrlib/flink-test-job.jar (test-job:
# testjob/KeyedCounter.java compiled against that Flink version).
#
# Every archive records the hash of its inputs (this script, the entrypoint, the
# test job's source, versions, package lists) in NAME.tar.inputs; it is rebuilt
# only when that hash changes. The Debian base root filesystem (bookworm minbase +
# openjdk-17-jre-headless + user/group flink 9999) is one OCI layer shared by both
# Flink images (OCI layout $CACHE_DIR/images/oci, tags carry the input hash).
# Network: Debian's mirror (debootstrap, apt in the chroot) and PyPI (pip), only
# when something has to be built.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=images

IMAGES_DIR=$ENV_DIR/images
IMG_CACHE=$CACHE_DIR/images
ARCHIVES=$IMG_CACHE/archives
LAYOUT=$IMG_CACHE/oci
WORK=$IMG_CACHE/work
PYPI=$IMG_CACHE/pypi

FLINK_1_VERSION=1.20.5
FLINK_2_VERSION=2.3.0
BASE_PACKAGES=(openjdk-17-jre-headless)
BUSYBOX=/bin/busybox
PAUSE_REF=localhost/flink-operator/pause:1
BUSYBOX_REF=busybox:1.36
FLINK_UID=9999

usage() {
    print_header
    exit 2
}

targets=()
for arg in "$@"; do
    case $arg in
    pause | busybox | flink-1.20 | flink-2 | test-job) targets+=("$arg") ;;
    all) targets+=(pause busybox flink-1.20 flink-2) ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
done
((${#targets[@]})) || targets=(pause busybox flink-1.20 flink-2)

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, file ownership)"
for tool in umoci skopeo debootstrap sha256sum javac jar python3; do
    command -v "$tool" >/dev/null || die "$tool not found; run tests/env/install.sh --node"
done
[[ -x $BUSYBOX ]] && file_is_static=$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)
[[ ${file_is_static:-} == *"not a dynamic executable"* ]] ||
    die "$BUSYBOX is not the static busybox (apt-get install busybox-static)"

mkdir -p "$ARCHIVES" "$WORK" "$PYPI"
# One build at a time per cache (the OCI layout and work dirs are shared).
exec 9>"$IMG_CACHE/.build.lock"
flock 9

# ----------------------------------------------------------------- helpers

BUILT=

SCRIPT_HASH=$(cat "${BASH_SOURCE[0]}" "$IMAGES_DIR/docker-entrypoint.sh" | sha256sum | cut -c1-16)

# inputs_hash WORDS...: hash of this script, the entrypoint and WORDS.
inputs_hash() { printf '%s\n' "$SCRIPT_HASH" "$@" | sha256sum | cut -c1-16; }

# up_to_date NAME HASH: the archive exists and was built from these inputs.
up_to_date() {
    [[ -s $ARCHIVES/$1.tar && -f $ARCHIVES/$1.tar.inputs && $(<"$ARCHIVES/$1.tar.inputs") == "$2" ]]
}

ensure_layout() {
    [[ -f $LAYOUT/index.json ]] || umoci init --layout "$LAYOUT"
}

have_tag() { umoci list --layout "$LAYOUT" 2>/dev/null | grep -qx "$1"; }

# export_archive NAME OCI_TAG REF HASH: skopeo copy to a docker-archive, atomically.
export_archive() {
    local name=$1 tag=$2 ref=$3 hash=$4 tmp
    tmp=$ARCHIVES/.$name.tar.tmp
    rm -f "$tmp"
    skopeo --insecure-policy copy --quiet "oci:$LAYOUT:$tag" "docker-archive:$tmp:$ref"
    mv -f "$tmp" "$ARCHIVES/$name.tar"
    BUILT=1
    echo "$hash" >"$ARCHIVES/$name.tar.inputs"
    log "$name: $ARCHIVES/$name.tar ($ref, $(du -m "$ARCHIVES/$name.tar" | cut -f1) MiB)"
}

# gc_layout: drop tags no archive refers to any more, then unreferenced blobs.
gc_layout() {
    local t keep=" " f
    for f in "$ARCHIVES"/*.tar.inputs; do
        [[ -f $f ]] && keep+="$(<"$f") "
    done
    keep+="${BASE_HASH:-} "
    while read -r t; do
        [[ -n $t && $keep != *" ${t##*-} "* ]] && umoci rm --image "$LAYOUT:$t"
    done < <(umoci list --layout "$LAYOUT" 2>/dev/null)
    umoci gc --layout "$LAYOUT"
}

# ----------------------------------------------------------------- busybox, pause

# busybox_rootfs DIR [links]: /bin/busybox (static), optionally every applet as a symlink.
busybox_rootfs() {
    local dir=$1 a
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
    chmod 1777 "$dir/tmp"
    cp "$BUSYBOX" "$dir/bin/busybox"
    if [[ ${2:-} == links ]]; then
        mkdir -p "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin"
        while read -r a; do
            a=${a#/}
            [[ -n $a && ! -e $dir/$a ]] && ln -s /bin/busybox "$dir/$a"
        done < <("$BUSYBOX" --list-full)
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
    fi
}

# build_busybox_image NAME REF links|"" entrypoint|cmd ARGV...: a one-layer image
# from a busybox rootfs, ARGV as its entrypoint or its cmd.
build_busybox_image() {
    local name=$1 ref=$2 links=$3 kind=$4 hash tag dir
    shift 4
    hash=$(inputs_hash "$name" "$ref" "$links" "$kind" "$*" "$(sha256sum <"$BUSYBOX")")
    if up_to_date "$name" "$hash"; then
        log "$name: up to date ($ARCHIVES/$name.tar)"
        return 0
    fi
    log "$name: building"
    ensure_layout
    tag=$name-$hash
    dir=$WORK/$name-rootfs
    busybox_rootfs "$dir" "$links"
    have_tag "$tag" && umoci rm --image "$LAYOUT:$tag"
    umoci new --image "$LAYOUT:$tag"
    umoci insert --image "$LAYOUT:$tag" --history.created_by "images/build.sh $name" "$dir" /
    local cfg=(--config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin)
    local e
    for e in "$@"; do
        cfg+=("--config.$kind" "$e")
    done
    umoci config --image "$LAYOUT:$tag" "${cfg[@]}" --architecture amd64 --os linux
    rm -rf "$dir"
    export_archive "$name" "$tag" "$ref" "$hash"
}

# ----------------------------------------------------------------- Flink distributions (PyPI)

# flink_home VERSION: path of the pyflink directory (a full FLINK_HOME) of VERSION, installed once from PyPI
# (shared with the loopback JobManager of tests/env/flink.sh).
flink_home() {
    "$IMAGES_DIR/../flink.sh" home "$1"
}

# ----------------------------------------------------------------- test job

# test_job_jar VERSION: testjob/KeyedCounter.java compiled against Flink VERSION (flink.sh test-jar: cached by
# source hash, shared with the loopback Flink tests).
test_job_jar() {
    "$IMAGES_DIR/../flink.sh" test-jar "$1"
}

# ----------------------------------------------------------------- Debian base

MIRROR=
debian_mirror() {
    if [[ -z $MIRROR ]]; then
        local uri _sb
        read -r uri _sb < <(_bookworm_deb_entry) || true
        MIRROR=${uri:-http://deb.debian.org/debian}
    fi
    echo "$MIRROR"
}

BASE_HASH=$(inputs_hash base bookworm minbase "${BASE_PACKAGES[*]}" "$FLINK_UID")
BASE_TAG=base-$BASE_HASH

CHROOT_PROC=
cleanup_chroot() {
    if [[ -n $CHROOT_PROC ]] && mountpoint -q "$CHROOT_PROC"; then
        umount -l "$CHROOT_PROC" || true
    fi
}
trap cleanup_chroot EXIT

# ensure_base: the OCI tag base-HASH (one layer: the Debian root filesystem).
ensure_base() {
    ensure_layout
    if have_tag "$BASE_TAG"; then
        return 0
    fi
    local start bundle rootfs mirror
    start=$(now)
    mirror=$(debian_mirror)
    bundle=$WORK/base-bundle
    rm -rf "$bundle"
    umoci new --image "$LAYOUT:$BASE_TAG.tmp"
    umoci unpack --image "$LAYOUT:$BASE_TAG.tmp" "$bundle" >&2
    rootfs=$bundle/rootfs
    log "base: debootstrap --variant=minbase bookworm ($mirror)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    # Never start services inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    CHROOT_PROC=$rootfs/proc
    mount -t proc proc "$CHROOT_PROC"
    log "base: apt-get install ${BASE_PACKAGES[*]}"
    chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get -q update && apt-get -q install -y --no-install-recommends "$@" && apt-get clean' \
        sh "${BASE_PACKAGES[@]}" >"$WORK/base-apt.log" 2>&1 ||
        { tail -n 30 "$WORK/base-apt.log" >&2; die "apt-get in the chroot failed (log: $WORK/base-apt.log)"; }
    chroot "$rootfs" groupadd --gid "$FLINK_UID" flink
    chroot "$rootfs" useradd --uid "$FLINK_UID" --gid flink --home-dir /opt/flink \
        --no-create-home --shell /bin/bash flink
    umount "$CHROOT_PROC"
    CHROOT_PROC=
    rm -f "$rootfs/usr/sbin/policy-rc.d"
    : >"$rootfs/etc/resolv.conf"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    umoci repack --image "$LAYOUT:$BASE_TAG.tmp" --history.created_by "images/build.sh base" "$bundle" >&2
    rm -rf "$bundle"
    have_tag "$BASE_TAG" && umoci rm --image "$LAYOUT:$BASE_TAG"
    # rename: tag the finished image, drop the temporary tag
    umoci config --image "$LAYOUT:$BASE_TAG.tmp" --tag "$BASE_TAG" --no-history
    umoci rm --image "$LAYOUT:$BASE_TAG.tmp"
    log "base: done in $(elapsed "$start")s"
}

# ----------------------------------------------------------------- Flink images

# flink_conf SRC_CONFIG_YAML: the image's default conf/config.yaml (flat keys),
# edited as the official image does (bind hosts and REST address 0.0.0.0),
# keeping the distribution's env.java.opts.all (JVM --add-opens flags).
flink_conf() {
    local opts
    opts=$(awk '/^env:/ { e = 1; next } e && /^  java:/ { j = 1; next } e && j && /^    opts:/ { o = 1; next }
                e && j && o && /^      all:/ { sub(/^      all: */, ""); print; exit }' "$1")
    [[ -n $opts ]] || die "env.java.opts.all not found in $1"
    cat <<EOF
# Default configuration of the locally built image (tests/env/images/build.sh):
# the distribution's defaults, edited as the official flink image does.
env.java.opts.all: $opts
jobmanager.rpc.address: localhost
jobmanager.rpc.port: 6123
jobmanager.bind-host: 0.0.0.0
jobmanager.memory.process.size: 1600m
jobmanager.execution.failover-strategy: region
taskmanager.bind-host: 0.0.0.0
taskmanager.numberOfTaskSlots: 1
taskmanager.memory.process.size: 1728m
parallelism.default: 1
rest.address: 0.0.0.0
rest.bind-address: 0.0.0.0
blob.server.port: 6124
query.server.port: 6125
EOF
}

# build_flink NAME VERSION REF
build_flink() {
    local name=$1 v=$2 ref=$3 jar hash tag stage home start
    jar=$(test_job_jar "$v")
    hash=$(inputs_hash "$name" "$v" "$ref" "$BASE_HASH" "$(sha256sum <"$jar")")
    if up_to_date "$name" "$hash"; then
        log "$name: up to date ($ARCHIVES/$name.tar)"
        return 0
    fi
    start=$(now)
    log "$name: building (Flink $v)"
    ensure_base
    home=$(flink_home "$v")
    tag=$name-$hash
    stage=$WORK/$name-flink
    rm -rf "$stage"
    mkdir -p "$stage"
    # Copied (not linked): bin/ is resolved with `pwd -P`, lib/ is searched with find.
    local d
    for d in bin conf lib opt plugins examples licenses; do
        [[ -d $home/$d ]] && cp -r "$home/$d" "$stage/$d"
    done
    mkdir -p "$stage/log" "$stage/usrlib"
    flink_conf "$home/conf/config.yaml" >"$stage/conf/config.yaml"
    cp "$jar" "$stage/usrlib/flink-test-job.jar"
    chmod -R u+rwX,go+rX,go-w "$stage"
    chmod 755 "$stage"/bin/*
    chown -R "$FLINK_UID:$FLINK_UID" "$stage"
    local ep=$WORK/$name-entrypoint.sh
    install -m 755 -o 0 -g 0 "$IMAGES_DIR/docker-entrypoint.sh" "$ep"

    have_tag "$tag" && umoci rm --image "$LAYOUT:$tag"
    umoci insert --image "$LAYOUT:$BASE_TAG" --tag "$tag" --history.created_by "images/build.sh $name: /opt/flink" \
        "$stage" /opt/flink
    umoci insert --image "$LAYOUT:$tag" --history.created_by "images/build.sh $name: entrypoint" \
        "$ep" /docker-entrypoint.sh
    umoci config --image "$LAYOUT:$tag" --architecture amd64 --os linux \
        --config.env PATH=/opt/flink/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.env FLINK_HOME=/opt/flink \
        --config.env JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
        --config.env LANG=C.UTF-8 \
        --config.workingdir /opt/flink \
        --config.entrypoint /docker-entrypoint.sh \
        --config.cmd help \
        --config.exposedports 6123/tcp --config.exposedports 8081/tcp
    rm -rf "$stage" "$ep"
    export_archive "$name" "$tag" "$ref" "$hash"
    log "$name: built in $(elapsed "$start")s"
}

# ----------------------------------------------------------------- main

total=$(now)
for t in "${targets[@]}"; do
    case $t in
    pause) build_busybox_image pause "$PAUSE_REF" "" entrypoint /bin/busybox sleep 2147483647 ;;
    busybox) build_busybox_image busybox "$BUSYBOX_REF" links cmd sh ;;
    flink-1.20) build_flink flink-1.20 "$FLINK_1_VERSION" flink:1.20 ;;
    flink-2) build_flink flink-2 "$FLINK_2_VERSION" flink:2.3 ;;
    test-job)
        test_job_jar "$FLINK_1_VERSION" >/dev/null
        test_job_jar "$FLINK_2_VERSION" >/dev/null
        ;;
    esac
done
if [[ -n $BUILT && -f $LAYOUT/index.json ]]; then
    gc_layout
fi
log "done in $(elapsed "$total")s"
