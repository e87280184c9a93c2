#!/usr/bin/env bash
# Build the operator image `flink-operator:dev` locally, without Docker and without a
# registry: the same shape as the top-level Dockerfile produces.
#
#   images/operator.sh            # cargo build --release --locked in the Docker build context, then the image
#   OPERATOR_BIN=PATH images/operator.sh   # use this binary instead of building one
#
# Result: $CACHE_DIR/images/archives/operator.tar (docker-archive, `flink-operator:dev`),
# imported into the node by images/import.sh WORKDIR operator.
#
# Shape (Dockerfile: rust:1.95-bookworm builder, gcr.io/distroless/cc-debian12:nonroot):
#   layer 1  Debian bookworm's libc6 and libgcc-s1 (what `ldd` lists for the release binary:
#            libc, libm, libgcc_s, the loader), the CA bundle of `ca-certificates`,
#            /etc/passwd + /etc/group with root, nobody and nonroot (65532), /etc/nsswitch.conf,
#            /home/nonroot, /tmp: what distroless/cc-debian12 holds that matters to the binary
#   layer 2  /usr/local/bin/flink-operator (the release binary, root-owned, 0755)
#   config   USER 65532:65532, WORKDIR /home/nonroot, ENTRYPOINT the binary, ports 9443 8085
# The binary is dynamically linked against glibc (no musl target in the toolchain here),
# so the image ships the glibc it was linked against (bookworm, 2.36), as distroless/cc does.
#
# Cached by the hash of the binary, the package versions and this script (operator.tar.inputs):
# a second run with the same binary is a no-op. Network: Debian's mirror (apt-get download),
# only when the base layer has to be built.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=operator-image

REPO=$(cd "$ENV_DIR/../.." && pwd)
IMG_CACHE=$CACHE_DIR/images
ARCHIVES=$IMG_CACHE/archives
LAYOUT=$IMG_CACHE/oci-operator
DEBS=$IMG_CACHE/operator-debs
WORK=$IMG_CACHE/work
CONTEXT=$IMG_CACHE/docker-context
REF=flink-operator:dev
NONROOT=65532
# Runtime packages: glibc (libc, libm, loader) and libgcc_s (unwinding); CA certificates.
RUNTIME_PACKAGES=(libc6 libgcc-s1 ca-certificates)
BIN_PATH=/usr/local/bin/flink-operator

case ${1:-} in
"") ;;
*)
    print_header
    exit 2
    ;;
esac

[[ $(id -u) == 0 ]] || die "needs root (file ownership in the image)"
for tool in umoci skopeo dpkg-deb apt-get apt-cache sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found; run tests/env/install.sh --node"
done
mkdir -p "$ARCHIVES" "$DEBS" "$WORK"
exec 9>"$IMG_CACHE/.operator.lock"
flock 9

total=$(now)

# ----------------------------------------------------------------- the release binary

# docker_context DEST: the build context the Dockerfile's build stage sees (.dockerignore: `*`, then `!PATH`
# lines), copied to DEST with timestamps kept (cargo then rebuilds only what changed). The binary is built
# there exactly as the Dockerfile builds it, so a file the build needs but the context lacks fails here too.
docker_context() {
    local dest=$1 line path
    rm -rf "$dest"
    mkdir -p "$dest"
    while IFS= read -r line || [[ -n $line ]]; do
        case $line in
        '' | '#'* | '*') ;;
        '!'*)
            path=${line#!}
            path=${path%/}
            [[ $path != *'*'* && $path != *..* ]] || die ".dockerignore: unsupported pattern: $line"
            mkdir -p "$dest/$(dirname "$path")"
            cp -a "$REPO/$path" "$dest/$path"
            ;;
        *) die ".dockerignore: only '*' and '!PATH' lines are understood here: $line" ;;
        esac
    done <"$REPO/.dockerignore"
    [[ $(awk '!/^(#|$)/ { print; exit }' "$REPO/.dockerignore") == '*' ]] ||
        die ".dockerignore must start by excluding everything ('*')"
}

if [[ -n ${OPERATOR_BIN:-} ]]; then
    BIN=$OPERATOR_BIN
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}
    t=$(now)
    docker_context "$CONTEXT"
    log "cargo build --release --locked (in the Docker build context $CONTEXT)"
    (cd "$CONTEXT" && cargo build --release --locked --quiet)
    BIN=$CARGO_TARGET_DIR/release/flink-operator
    log "release binary ready in $(elapsed "$t")s"
fi
[[ -x $BIN ]] || die "no operator binary at $BIN"

# Every library the binary needs must come from the runtime packages (checked again below by
# running the binary inside the finished root filesystem).
needed=$(LC_ALL=C ldd "$BIN" 2>&1 || true)
if [[ $needed == *"not found"* ]]; then
    die "unresolved libraries in $BIN: $needed"
fi
while read -r lib; do
    case $lib in
    linux-vdso.so.* | libc.so.* | libm.so.* | libgcc_s.so.* | ld-linux-x86-64.so.* | libpthread.so.* | libdl.so.* | librt.so.*) ;;
    *) die "$BIN needs $lib, which the image does not ship (add its package to RUNTIME_PACKAGES)" ;;
    esac
done < <(awk '{ n = $1; sub(/^.*\//, "", n); print n }' <<<"$needed")

# ----------------------------------------------------------------- base layer

# candidate_versions: "pkg=version" for the runtime packages (offline: apt's lists).
candidate_versions() {
    local p v
    for p in "${RUNTIME_PACKAGES[@]}"; do
        v=$(apt-cache policy "$p" | awk '/Candidate:/ { print $2 }')
        [[ -n $v && $v != "(none)" ]] || return 1
        echo "$p=$v"
    done
}
if ! pins=$(candidate_versions); then
    apt_update
    pins=$(candidate_versions) || die "no install candidate for ${RUNTIME_PACKAGES[*]}"
fi

SCRIPT_HASH=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)
BASE_HASH=$(printf '%s\n' "$SCRIPT_HASH" base "$pins" | sha256sum | cut -c1-16)
BASE_TAG=base-$BASE_HASH
BIN_SHA=$(sha256sum <"$BIN" | cut -d' ' -f1)
HASH=$(printf '%s\n' "$SCRIPT_HASH" "$BASE_HASH" "$BIN_SHA" "$REF" | sha256sum | cut -c1-16)
TAG=operator-$HASH

if [[ -s $ARCHIVES/operator.tar && -f $ARCHIVES/operator.tar.inputs && $(<"$ARCHIVES/operator.tar.inputs") == "$HASH" ]]; then
    log "operator: up to date ($ARCHIVES/operator.tar, $REF, binary sha256 ${BIN_SHA:0:16}) in $(elapsed "$total")s"
    exit 0
fi

[[ -f $LAYOUT/index.json ]] || umoci init --layout "$LAYOUT"
have_tag() { umoci list --layout "$LAYOUT" 2>/dev/null | grep -qx "$1"; }

# download_debs: the pinned runtime packages into $DEBS (kept: a rebuild needs no network).
download_debs() {
    local pin p v f
    for pin in $pins; do
        p=${pin%%=*}
        v=${pin#*=}
        f=$(compgen -G "$DEBS/${p}_${v//:/%3a}_*.deb" | head -n1 || true)
        if [[ -z $f ]]; then
            log "apt-get download $pin"
            (cd "$DEBS" && apt-get -q -o APT::Sandbox::User=root download "$pin" >&2) ||
                { apt_update && (cd "$DEBS" && apt-get -q -o APT::Sandbox::User=root download "$pin" >&2); } ||
                die "apt-get download $pin failed"
        fi
    done
}

ensure_base() {
    have_tag "$BASE_TAG" && return 0
    local t bundle rootfs pin p v extra
    t=$(now)
    download_debs
    bundle=$WORK/operator-base-bundle
    rm -rf "$bundle"
    umoci new --image "$LAYOUT:$BASE_TAG.tmp"
    umoci unpack --image "$LAYOUT:$BASE_TAG.tmp" "$bundle" >&2
    rootfs=$bundle/rootfs
    for pin in $pins; do
        p=${pin%%=*}
        v=${pin#*=}
        [[ $p == ca-certificates ]] && continue
        dpkg-deb -x "$(compgen -G "$DEBS/${p}_${v//:/%3a}_*.deb" | head -n1)" "$rootfs"
    done
    # ca-certificates ships the certificates; the bundle is what its postinst (update-ca-certificates)
    # would write.
    extra=$WORK/operator-ca
    rm -rf "$extra"
    v=$(sed -n 's/^ca-certificates=//p' <<<"$pins")
    dpkg-deb -x "$(compgen -G "$DEBS/ca-certificates_${v//:/%3a}_*.deb" | head -n1)" "$extra"
    mkdir -p "$rootfs/etc/ssl/certs"
    find "$extra/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z |
        xargs -0 cat >"$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$extra"
    rm -rf "$rootfs/usr/share/doc" "$rootfs/usr/share/lintian" "$rootfs/usr/share/man" "$rootfs/usr/share/info"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
        "$NONROOT" "$NONROOT" >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\nnonroot:x:%s:\n' "$NONROOT" >"$rootfs/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    mkdir -p "$rootfs/home/nonroot" "$rootfs/tmp" "$rootfs/root" "$rootfs/usr/local/bin"
    chown "$NONROOT:$NONROOT" "$rootfs/home/nonroot"
    chmod 700 "$rootfs/home/nonroot" "$rootfs/root"
    chmod 1777 "$rootfs/tmp"
    umoci repack --image "$LAYOUT:$BASE_TAG.tmp" --history.created_by "images/operator.sh base: ${pins//$'\n'/ }" \
        "$bundle" >&2
    rm -rf "$bundle"
    umoci config --image "$LAYOUT:$BASE_TAG.tmp" --tag "$BASE_TAG" --no-history
    umoci rm --image "$LAYOUT:$BASE_TAG.tmp"
    log "base: ${pins//$'\n'/ } in $(elapsed "$t")s"
}

# ----------------------------------------------------------------- image

t=$(now)
ensure_base
stage=$WORK/operator-bin
rm -rf "$stage"
mkdir -p "$stage"
install -m 755 -o 0 -g 0 "$BIN" "$stage/flink-operator"
have_tag "$TAG" && umoci rm --image "$LAYOUT:$TAG"
umoci insert --image "$LAYOUT:$BASE_TAG" --tag "$TAG" --history.created_by "images/operator.sh: $BIN_PATH" \
    "$stage/flink-operator" "$BIN_PATH"
rm -rf "$stage"
umoci config --image "$LAYOUT:$TAG" --architecture amd64 --os linux \
    --config.user "$NONROOT:$NONROOT" \
    --config.workingdir /home/nonroot \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.entrypoint "$BIN_PATH" \
    --config.exposedports 9443/tcp --config.exposedports 8085/tcp

# The finished root filesystem must run the binary (every library resolves there).
check=$WORK/operator-check
rm -rf "$check"
umoci unpack --image "$LAYOUT:$TAG" "$check" >&2
chroot --userspec="$NONROOT:$NONROOT" "$check/rootfs" "$BIN_PATH" --version >/dev/null ||
    die "the binary does not run inside the image's root filesystem"
rm -rf "$check"

tmp=$ARCHIVES/.operator.tar.tmp
rm -f "$tmp"
skopeo --insecure-policy copy --quiet "oci:$LAYOUT:$TAG" "docker-archive:$tmp:$REF"
mv -f "$tmp" "$ARCHIVES/operator.tar"
echo "$HASH" >"$ARCHIVES/operator.tar.inputs"
# Keep only the current image and its base.
while read -r old; do
    [[ -n $old && $old != "$TAG" && $old != "$BASE_TAG" ]] && umoci rm --image "$LAYOUT:$old"
done < <(umoci list --layout "$LAYOUT" 2>/dev/null)
umoci gc --layout "$LAYOUT"
log "operator: $ARCHIVES/operator.tar ($REF, $(du -m "$ARCHIVES/operator.tar" | cut -f1) MiB) built in $(elapsed "$t")s; total $(elapsed "$total")s"
