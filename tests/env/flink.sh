#!/usr/bin/env bash
# A real Apache Flink JobManager on loopback, from PyPI's apache-flink distribution (Java 17), for tests that
# need a real Flink REST endpoint without a node.
#
#   flink.sh home VERSION                  # print a FLINK_HOME of VERSION (installed once, cached)
#   flink.sh start-jobmanager WORKDIR [VERSION]   # writes WORKDIR/flink.env (REST_URL, PID); waits for REST
#   flink.sh stop WORKDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PYPI=$CACHE_DIR/images/pypi
DEFAULT_VERSION=1.20.5

# The same cached venv the image builds use (images/build.sh).
flink_home() {
    local v=$1 venv=$PYPI/flink-$1 d
    if [[ ! -f $venv/.complete ]]; then
        mkdir -p "$PYPI"
        log "pip: apache-flink==$v apache-flink-libraries==$v"
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
            "apache-flink==$v" "apache-flink-libraries==$v" >&2
        touch "$venv/.complete"
    fi
    d=$(echo "$venv"/lib/python3*/site-packages/pyflink)
    [[ -f $d/lib/flink-dist-$v.jar ]] || die "no flink-dist-$v.jar in $d"
    echo "$d"
}

start_jobmanager() {
    local work=$1 v=${2:-$DEFAULT_VERSION} src home rest rpc
    src=$(flink_home "$v")
    home=$work/flink
    mkdir -p "$home/conf" "$home/log"
    # bin/ is copied (config.sh resolves it with pwd -P); lib/ opt/ plugins/ are hard-linked real directories.
    cp -r "$src/bin" "$home/"
    for d in lib opt plugins; do cp -al "$src/$d" "$home/$d" 2>/dev/null || cp -r "$src/$d" "$home/$d"; done
    { read -r rest; read -r rpc; } < <(free_ports 2)
    local java_opts
    java_opts=$(grep -E '^\s*env\.java\.opts\.all' "$src/conf/config.yaml" || true)
    cat >"$home/conf/config.yaml" <<CONF
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $rpc
jobmanager.bind-host: 127.0.0.1
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $rest
jobmanager.memory.process.size: 1024m
$java_opts
CONF
    FLINK_CONF_DIR=$home/conf FLINK_LOG_DIR=$home/log "$home/bin/jobmanager.sh" start-foreground \
        >"$work/jobmanager.log" 2>&1 &
    local pid=$!
    printf 'REST_URL=http://127.0.0.1:%s\nPID=%s\nVERSION=%s\n' "$rest" "$pid" "$v" >"$work/flink.env"
    local deadline=$(($(date +%s) + 90))
    until curl -sf "http://127.0.0.1:$rest/config" >/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -30 "$work/jobmanager.log" >&2
            die "the JobManager exited"
        fi
        if (($(date +%s) > deadline)); then
            kill "$pid" 2>/dev/null || true
            tail -30 "$work/jobmanager.log" >&2
            die "the JobManager's REST endpoint did not answer within 90 s"
        fi
        sleep 0.2
    done
    log "Flink $v JobManager up: http://127.0.0.1:$rest (pid $pid)"
}

stop() {
    local work=$1 pid
    [[ -f $work/flink.env ]] || return 0
    pid=$(sed -n 's/^PID=//p' "$work/flink.env")
    if [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; then
        local deadline=$(($(date +%s) + 20))
        while kill -0 "$pid" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

case ${1:-} in
home) flink_home "${2:-$DEFAULT_VERSION}" ;;
start-jobmanager) start_jobmanager "${2:?WORKDIR}" "${3:-}" ;;
stop) stop "${2:?WORKDIR}" ;;
*) die "usage: flink.sh home VERSION | start-jobmanager WORKDIR [VERSION] | stop WORKDIR" ;;
esac
