# shellcheck shell=bash
# Shared helpers for the scripts in tests/env/. Source it; do not execute it.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything here binds or talks to 127.0.0.1 only. The only network access
# outside loopback is apt (Debian mirrors) in apt_ensure / ensure_deb_src.

if [[ -n ${_FLINK_OPERATOR_ENV_LIB:-} ]]; then
    return 0
fi
_FLINK_OPERATOR_ENV_LIB=1

# shellcheck disable=SC2034 # used by the scripts that source this file
ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${FLINK_OPERATOR_CACHE:-/var/cache/flink-operator}
KUBE_VERSION=1.20.2
KUBE_BIN_DIR=$CACHE_DIR/kubernetes-$KUBE_VERSION/bin
# Components build-kube.sh knows about (--all).
# shellcheck disable=SC2034
KUBE_ALL_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# ---------------------------------------------------------------- logging

_log_prefix() { printf '[%s %s]' "$(date +%H:%M:%S)" "${LOG_TAG:-$(basename "$0" .sh)}"; }
log() { printf '%s %s\n' "$(_log_prefix)" "$*" >&2; }
warn() { printf '%s WARNING: %s\n' "$(_log_prefix)" "$*" >&2; }
die() {
    printf '%s ERROR: %s\n' "$(_log_prefix)" "$*" >&2
    exit 1
}

# Seconds since the epoch with sub-second precision, for deadlines and timings.
now() { date +%s.%N; }
# elapsed START -> "12.3" (seconds since START, one decimal)
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# print_header: the comment block at the top of the running script (its usage).
print_header() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
}

# ---------------------------------------------------------------- ports

# free_port: print a TCP port on 127.0.0.1 that was free a moment ago (the kernel
# picks it by binding port 0). Someone else may grab it before we bind it;
# controlplane.sh retries on "address already in use".
free_port() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null; then
            return 0
        fi
    done
    # Fallback without python: a random port that nothing listens on right now.
    local port tries=0
    while ((tries++ < 100)); do
        port=$((20000 + RANDOM % 30000))
        if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    die "could not find a free port"
}

# free_ports N: print N distinct free ports, one per line.
free_ports() {
    local n=$1 p
    local -A seen=()
    while ((${#seen[@]} < n)); do
        p=$(free_port)
        if [[ -z ${seen[$p]:-} ]]; then
            seen[$p]=1
            echo "$p"
        fi
    done
}

# ---------------------------------------------------------------- polling

# wait_until TIMEOUT_SECONDS DESCRIPTION CMD [ARGS...]
# Runs CMD every 0.2 s until it succeeds or the deadline passes (returns 1).
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline
    deadline=$(($(date +%s%N) + timeout * 1000000000))
    while :; do
        if "$@"; then
            return 0
        fi
        if (($(date +%s%N) >= deadline)); then
            warn "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------- processes

# pid_alive PID: the process exists and is not a zombie (a child that exited
# but was not reaped yet still answers kill -0).
pid_alive() {
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    { read -r stat 2>/dev/null <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# pid_has_arg PID ARG: the process is alive and ARG is one of its arguments
# (guards against signalling an unrelated process that reused a PID).
pid_has_arg() {
    local pid=$1 want=$2 a
    local -a args=()
    pid_alive "$pid" || return 1
    { mapfile -d '' -t args <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
    for a in "${args[@]:1}"; do
        [[ $a == "$want" ]] && return 0
    done
    return 1
}

# pids_with_arg ARG: the live processes that have ARG among their arguments.
pids_with_arg() {
    local f pid
    for f in /proc/[0-9]*; do
        pid=${f#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        if pid_has_arg "$pid" "$1"; then
            echo "$pid"
        fi
    done
}

# stop_pid PID NAME [TIMEOUT]: SIGTERM, wait up to TIMEOUT (default 20 s), SIGKILL.
stop_pid() {
    local pid=$1 name=$2 timeout=${3:-20}
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    if wait_until "$timeout" "$name (pid $pid) to exit" _pid_gone "$pid"; then
        return 0
    fi
    warn "$name (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 "$name (pid $pid) to die" _pid_gone "$pid" || true
}
_pid_gone() { ! pid_alive "$1"; }

# ---------------------------------------------------------------- binaries

# kube_bin COMPONENT: path of a Kubernetes binary. The environment variable
# named after the component (kube-apiserver -> KUBE_APISERVER_BIN,
# kube-controller-manager -> KUBE_CONTROLLER_MANAGER_BIN, ...) overrides the cache.
kube_bin_var() {
    local v=${1//-/_}
    echo "${v^^}_BIN"
}
kube_bin() {
    local var
    var=$(kube_bin_var "$1")
    if [[ -n ${!var:-} ]]; then
        echo "${!var}"
    else
        echo "$KUBE_BIN_DIR/$1"
    fi
}

# etcd_bin: $ETCD_BIN, else etcd on PATH, else /usr/bin/etcd.
etcd_bin() {
    if [[ -n ${ETCD_BIN:-} ]]; then
        echo "$ETCD_BIN"
    else
        command -v etcd 2>/dev/null || echo /usr/bin/etcd
    fi
}

# ---------------------------------------------------------------- apt

_apt() {
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

# pkgs_missing PKG...: print the packages that are not installed.
pkgs_missing() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [[ $status == installed ]] || echo "$p"
    done
}

_apt_lists_fresh=
# apt_update_if_needed [PKG...]: run apt-get update when there are no package
# lists, or when one of PKG has no install candidate.
apt_update_if_needed() {
    local need='' p
    if [[ -n $_apt_lists_fresh ]]; then
        return 0
    fi
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        need=1
    fi
    for p in "$@"; do
        # (no `| grep -q`: with pipefail, grep exiting early fails the pipeline)
        if [[ -z $need && $(apt-cache policy "$p" 2>/dev/null) != *"Candidate: "[0-9]* ]]; then
            need=1
        fi
    done
    if [[ -n $need ]]; then
        apt_update
    fi
}
apt_update() {
    log "apt-get update"
    _apt update >&2
    _apt_lists_fresh=1
}

# apt_ensure [--no-install-recommends] PKG...: install the missing packages.
# Services are never started by the installation (policy-rc.d). As a second
# line of defence, APT_ENSURE_NO_DAEMONS="NAME:USER ..." names service processes
# (process NAME running as the package's service USER) that are stopped again
# if they appeared during the installation.
apt_ensure() {
    local opts=()
    if [[ ${1:-} == --no-install-recommends ]]; then
        opts+=(--no-install-recommends)
        shift
    fi
    local missing
    mapfile -t missing < <(pkgs_missing "$@")
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "need root to install: ${missing[*]}"
    apt_update_if_needed "${missing[@]}"

    local policy=/usr/sbin/policy-rc.d own_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, written by tests/env (flink-operator)\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    local daemon before=()
    for daemon in ${APT_ENSURE_NO_DAEMONS:-}; do
        mapfile -t -O "${#before[@]}" before < <(_daemon_pids "$daemon")
    done

    log "apt-get install ${opts[*]} ${missing[*]}"
    local rc=0
    _apt install -y "${opts[@]}" "${missing[@]}" >&2 || rc=$?
    if ((rc != 0)) && [[ -z $_apt_lists_fresh ]]; then
        # Stale lists (404 on a superseded .deb): refresh once and retry.
        apt_update
        rc=0
        _apt install -y "${opts[@]}" "${missing[@]}" >&2 || rc=$?
    fi
    if [[ -n $own_policy ]]; then
        rm -f "$policy"
    fi

    local pid
    for daemon in ${APT_ENSURE_NO_DAEMONS:-}; do
        for pid in $(_daemon_pids "$daemon"); do
            if [[ " ${before[*]} " != *" $pid "* ]]; then
                warn "the package installation started ${daemon%%:*} (pid $pid); stopping it"
                stop_pid "$pid" "${daemon%%:*}" 10
            fi
        done
    done
    ((rc == 0)) || die "apt-get install failed: ${missing[*]}"
}

# _daemon_pids NAME:USER
_daemon_pids() {
    id -u "${1#*:}" >/dev/null 2>&1 || return 0
    pgrep -x -u "${1#*:}" "${1%%:*}" || true
}

# ensure_deb_src: a deb-src entry for bookworm main, derived from the existing
# bookworm (deb) entry (URI and Signed-By), as described in /work/shared/testenv.md.
DEB_SRC_FILE=/etc/apt/sources.list.d/flink-operator-deb-src.sources
ensure_deb_src() {
    if [[ -e $DEB_SRC_FILE ]] || _deb_src_present; then
        _deb_src_lists_present || apt_update
        return 0
    fi
    local uri signed_by
    read -r uri signed_by < <(_bookworm_deb_entry) || true
    [[ -n ${uri:-} ]] || die "no bookworm 'deb' entry found in /etc/apt/sources.list{,.d/*}"
    log "adding deb-src entry $DEB_SRC_FILE ($uri bookworm main)"
    {
        echo "# Added by tests/env/install.sh (flink-operator): source of kube-apiserver."
        echo "Types: deb-src"
        echo "URIs: $uri"
        echo "Suites: bookworm"
        echo "Components: main"
        if [[ -n $signed_by && $signed_by != - ]]; then
            echo "Signed-By: $signed_by"
        fi
    } >"$DEB_SRC_FILE.tmp"
    mv -f "$DEB_SRC_FILE.tmp" "$DEB_SRC_FILE"
    apt_update
}

# Is there already a deb-src line/stanza for bookworm (e.g. the admin added one)?
_deb_src_present() {
    local f
    if [[ -f /etc/apt/sources.list ]] &&
        grep -Eq '^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]].*\bmain\b' /etc/apt/sources.list; then
        return 0
    fi
    for f in /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        grep -Eq '^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]].*\bmain\b' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        _parse_sources "$f" | awk '$1 ~ /deb-src/ && $3 ~ /(^|,)bookworm(,|$)/ && $4 ~ /(^|,)main(,|$)/ {found=1} END {exit !found}' && return 0
    done
    return 1
}

_deb_src_lists_present() {
    compgen -G '/var/lib/apt/lists/*_dists_bookworm_main_source_Sources*' >/dev/null
}

# _parse_sources FILE: one line per deb822 stanza:
#   TYPES URIS SUITES COMPONENTS SIGNED-BY (lists comma-separated, '-' when absent)
_parse_sources() {
    awk '
        function flush() {
            if (types != "") print types, (uris == "" ? "-" : uris), (suites == "" ? "-" : suites), (comps == "" ? "-" : comps), (sb == "" ? "-" : sb)
            types = uris = suites = comps = sb = ""; enabled = 1
        }
        BEGIN { enabled = 1 }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        {
            key = $1; sub(/:$/, "", key); $1 = ""; sub(/^[[:space:]]+/, ""); val = $0
            gsub(/[[:space:]]+/, ",", val)
            k = tolower(key)
            if (k == "types") types = val
            else if (k == "uris") uris = val
            else if (k == "suites") suites = val
            else if (k == "components") comps = val
            else if (k == "signed-by") sb = val
            else if (k == "enabled" && tolower(val) == "no") enabled = 0
        }
        END { flush() }
    ' "$1"
}

# _bookworm_deb_entry: "URI SIGNED-BY" of the first deb entry for suite bookworm.
_bookworm_deb_entry() {
    local f line
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        line=$(_parse_sources "$f" | awk '$1 ~ /(^|,)deb(,|$)/ && $3 ~ /(^|,)bookworm(,|$)/ { split($2, u, ","); print u[1], $5; exit }')
        if [[ -n $line ]]; then
            echo "$line"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        line=$(awk '
            $1 == "deb" {
                sb = "-"; i = 2
                if ($2 ~ /^\[/) {
                    opts = ""
                    for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } }
                    if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
                }
                if ($(i + 1) == "bookworm") { print $i, sb; exit }
            }' "$f")
        if [[ -n $line ]]; then
            echo "$line"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------- pki

# pki_init DIR CA_CN KEY...: a fresh CA (DIR/ca.key, DIR/ca.crt) and RSA keys DIR/KEY.key, generated in parallel
# (key generation dominates).
pki_init() {
    local dir=$1 cn=$2 key pids=()
    shift 2
    mkdir -p "$dir"
    chmod 700 "$dir"
    for key in ca "$@"; do
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/$key.key" 2>/dev/null &
        pids+=($!)
    done
    for key in "${pids[@]}"; do
        wait "$key" || die "openssl genpkey failed"
    done
    chmod 600 "$dir"/*.key
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -out "$dir/ca.crt" \
        -subj "/CN=$cn" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
}

# pki_sign DIR NAME SUBJECT EKU SANS: DIR/NAME.crt for DIR/NAME.key, signed by the CA in DIR.
pki_sign() {
    local dir=$1 name=$2 subj=$3 eku=$4 sans=$5
    openssl req -new -key "$dir/$name.key" -sha256 -out "$dir/$name.csr" -subj "$subj" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid,issuer"
        [[ -z $sans ]] || echo "subjectAltName=$sans"
    } >"$dir/$name.ext"
    openssl x509 -req -sha256 -days 3650 -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    openssl verify -CAfile "$dir/ca.crt" "$dir/$name.crt" >/dev/null ||
        die "generated certificate $dir/$name.crt does not verify against ca.crt"
}
