#!/usr/bin/env bash
# A real Apache Flink on loopback, from PyPI's apache-flink distribution (Java 17), for tests that need a real
# Flink REST endpoint without a node.
#
#   flink.sh home VERSION                          # print a FLINK_HOME of VERSION (installed once, cached)
#   flink.sh test-jar VERSION                      # print the test job jar built for VERSION (cached)
#   flink.sh start-jobmanager WORKDIR [VERSION]    # a JobManager only; waits for REST
#   flink.sh start-session WORKDIR [VERSION]       # JobManager + one TaskManager (2 slots); waits for
#                                                  # GET /overview to show the TaskManager
#   flink.sh start-application WORKDIR VERSION REST_PORT CONF_FILE [ARGS...]
#                                                  # a standalone application cluster from an operator-rendered
#                                                  # configuration and JobManager args (see start_application)
#   flink.sh stop WORKDIR                          # stops the JVMs started in WORKDIR, by PID
#
# start-* write WORKDIR/flink.env: REST_URL, PID (JobManager), TM_PID (session only), VERSION, and for a session
# CHECKPOINT_DIR, SAVEPOINT_DIR (plain paths; Flink gets file:// URIs) and TM_LOG (the TaskManager's stdout,
# where the test job prints its counts).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PYPI=$CACHE_DIR/images/pypi
JARS=$CACHE_DIR/images/testjob
TESTJOB_SRC=$ENV_DIR/images/testjob/KeyedCounter.java
DEFAULT_VERSION=1.20.5
START_TIMEOUT=120

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

# test_job_jar VERSION: the test job (images/testjob/KeyedCounter.java) compiled against Flink VERSION, cached by
# the hash of its source and the version (shared with images/build.sh, which puts it into the images).
test_job_jar() {
    local v=$1 home hash jar tmp
    hash=$( (cat "$TESTJOB_SRC"; echo "$v") | sha256sum | cut -c1-16)
    jar=$JARS/flink-test-job-$v-$hash.jar
    if [[ ! -s $jar ]]; then
        home=$(flink_home "$v")
        mkdir -p "$JARS"
        tmp=$(mktemp -d "$JARS/.build.XXXXXX")
        javac --release 11 -Xlint:-options -cp "$home/lib/flink-dist-$v.jar" -d "$tmp/classes" "$TESTJOB_SRC" >&2
        jar --create --file "$tmp/job.jar" -C "$tmp/classes" . >&2
        mv -f "$tmp/job.jar" "$jar"
        rm -rf "$tmp"
        find "$JARS" -maxdepth 1 -name "flink-test-job-$v-*.jar" ! -name "${jar##*/}" -delete
        log "test job for Flink $v: $jar"
    fi
    echo "$jar"
}

# prepare_home WORKDIR VERSION: a FLINK_HOME in WORKDIR/flink (conf/ is written by the caller).
prepare_home() {
    local work=$1 v=$2 src home d
    src=$(flink_home "$v")
    home=$work/flink
    mkdir -p "$home/conf" "$home/log"
    # bin/ is copied (config.sh resolves it with pwd -P); lib/ opt/ plugins/ are hard-linked real directories.
    cp -r "$src/bin" "$home/"
    for d in lib opt plugins; do cp -al "$src/$d" "$home/$d" 2>/dev/null || cp -r "$src/$d" "$home/$d"; done
    java_opts_conf "$src/conf/config.yaml" >"$home/conf/java-opts.yaml"
}

# java_opts_conf CONFIG_YAML: the distribution's env.java.opts.all (JVM --add-opens flags; without them a job's
# main() fails on Java 17) as a flat key. The distribution's config.yaml nests it (env: java: opts: all:).
java_opts_conf() {
    local opts
    opts=$(awk '/^env:/ { e = 1; next } e && /^  java:/ { j = 1; next } e && j && /^    opts:/ { o = 1; next }
                e && j && o && /^      all:/ { sub(/^      all: */, ""); print; exit }' "$1")
    [[ -n $opts ]] || die "env.java.opts.all not found in $1"
    echo "env.java.opts.all: $opts"
}

# base_conf WORKDIR REST_PORT RPC_PORT: loopback JobManager configuration (flat keys); temporary files (uploaded
# jars, blobs) stay in WORKDIR.
base_conf() {
    mkdir -p "$1/tmp"
    cat <<CONF
io.tmp.dirs: $1/tmp
web.tmpdir: $1/tmp
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $3
jobmanager.bind-host: 127.0.0.1
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $2
jobmanager.memory.process.size: 1024m
CONF
}

# state_dirs_conf VERSION CHECKPOINT_DIR SAVEPOINT_DIR: the keys changed name in Flink 2.0.
state_dirs_conf() {
    if [[ $1 == 1.* ]]; then
        printf 'state.checkpoints.dir: file://%s\nstate.savepoints.dir: file://%s\n' "$2" "$3"
    else
        printf 'execution.checkpointing.dir: file://%s\nexecution.checkpointing.savepoint-dir: file://%s\n' "$2" "$3"
    fi
}

# start_jvm WORKDIR NAME SCRIPT [ARGS...]: SCRIPT start-foreground execs the JVM, so $! is its PID. Prints the PID.
start_jvm() {
    local work=$1 name=$2 script=$3 home=$1/flink
    shift 3
    FLINK_CONF_DIR=$home/conf FLINK_LOG_DIR=$home/log "$home/bin/$script" start-foreground "$@" \
        >"$work/$name.log" 2>&1 </dev/null &
    echo $!
}

# await_rest WORKDIR PATH PATTERN PID...: poll REST PATH until its body matches PATTERN; fail early when a JVM exits.
await_rest() {
    local work=$1 path=$2 pattern=$3 url pid body
    shift 3
    url=$(sed -n 's/^REST_URL=//p' "$work/flink.env")
    local deadline=$(($(date +%s) + START_TIMEOUT))
    while :; do
        body=$(curl -sf "$url$path" 2>/dev/null || true)
        [[ $body =~ $pattern ]] && return 0
        for pid in "$@"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                tail -30 "$work"/*.log >&2
                stop "$work"
                die "a Flink JVM (pid $pid) exited during start"
            fi
        done
        if (($(date +%s) > deadline)); then
            tail -30 "$work"/*.log >&2
            stop "$work"
            die "Flink did not answer $path with /$pattern/ within ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

start_jobmanager() {
    local work=$1 v=${2:-$DEFAULT_VERSION} rest rpc pid home=$1/flink
    prepare_home "$work" "$v"
    { read -r rest; read -r rpc; } < <(free_ports 2)
    { base_conf "$work" "$rest" "$rpc"; cat "$home/conf/java-opts.yaml"; } >"$home/conf/config.yaml"
    pid=$(start_jvm "$work" jobmanager jobmanager.sh)
    printf 'REST_URL=http://127.0.0.1:%s\nPID=%s\nVERSION=%s\n' "$rest" "$pid" "$v" >"$work/flink.env"
    await_rest "$work" /config '"flink-version"' "$pid"
    log "Flink $v JobManager up: http://127.0.0.1:$rest (pid $pid)"
}

start_session() {
    local work=$1 v=${2:-$DEFAULT_VERSION} rest rpc jm tm start home=$1/flink
    start=$(now)
    prepare_home "$work" "$v"
    mkdir -p "$work/checkpoints" "$work/savepoints"
    { read -r rest; read -r rpc; } < <(free_ports 2)
    {
        base_conf "$work" "$rest" "$rpc"
        cat <<CONF
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: 2
taskmanager.memory.process.size: 1024m
CONF
        state_dirs_conf "$v" "$work/checkpoints" "$work/savepoints"
        cat "$home/conf/java-opts.yaml"
    } >"$home/conf/config.yaml"
    jm=$(start_jvm "$work" jobmanager jobmanager.sh)
    tm=$(start_jvm "$work" taskmanager taskmanager.sh)
    cat >"$work/flink.env" <<ENV
REST_URL=http://127.0.0.1:$rest
PID=$jm
TM_PID=$tm
VERSION=$v
CHECKPOINT_DIR=$work/checkpoints
SAVEPOINT_DIR=$work/savepoints
TM_LOG=$work/taskmanager.log
ENV
    await_rest "$work" /overview '"taskmanagers":1[,}]' "$jm" "$tm"
    log "Flink $v session cluster up in $(elapsed "$start")s: http://127.0.0.1:$rest (JobManager $jm, TaskManager $tm)"
}

# Keys of an operator-rendered configuration that only make sense inside a pod network (or would clash with
# the loopback ones): replaced by start-application.
POD_ONLY_KEYS='jobmanager\.rpc\.(address|port)|jobmanager\.bind-host|rest\.(address|bind-address|port)|taskmanager\.(host|bind-host|rpc\.port|data\.port)|blob\.server\.port|io\.tmp\.dirs|web\.tmpdir|env\.java\.opts\.all|(jobmanager|taskmanager)\.memory\.process\.size|taskmanager\.numberOfTaskSlots|kubernetes\.[a-z.-]+'

# start-application WORKDIR VERSION REST_PORT CONF_FILE [ARGS...]: an application cluster the way the operator's
# standalone JobManager Deployment describes it, on loopback: CONF_FILE is the configuration the operator rendered
# into its ConfigMap (pod-network keys replaced), ARGS the JobManager container's arguments after `standalone-job`
# (--job-classname, --fromSavepoint, job args), the test job jar in usrlib/, and one TaskManager with SLOTS (env,
# default 2) slots. REST_PORT is fixed so that an operator's --flink-rest-url keeps pointing at it across restarts.
start_application() {
    local work=$1 v=$2 rest=$3 conf=$4 rpc jm tm start home=$1/flink
    shift 4
    [[ -f $conf ]] || die "no configuration file $conf"
    start=$(now)
    prepare_home "$work" "$v"
    mkdir -p "$home/usrlib"
    cp "$(test_job_jar "$v")" "$home/usrlib/flink-test-job.jar"
    rpc=$(free_port)
    {
        grep -vE "^($POD_ONLY_KEYS):" "$conf" || true
        base_conf "$work" "$rest" "$rpc"
        cat <<CONF
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.numberOfTaskSlots: ${SLOTS:-2}
taskmanager.memory.process.size: 1024m
CONF
        cat "$home/conf/java-opts.yaml"
    } >"$home/conf/config.yaml"
    jm=$(start_jvm "$work" jobmanager standalone-job.sh "$@")
    tm=$(start_jvm "$work" taskmanager taskmanager.sh)
    cat >"$work/flink.env" <<ENV
REST_URL=http://127.0.0.1:$rest
PID=$jm
TM_PID=$tm
VERSION=$v
TM_LOG=$work/taskmanager.log
ENV
    await_rest "$work" /overview '"taskmanagers":1[,}]' "$jm" "$tm"
    log "Flink $v application cluster up in $(elapsed "$start")s: http://127.0.0.1:$rest (JobManager $jm, TaskManager $tm)"
}

# stop WORKDIR: SIGTERM (SIGKILL after 20 s) to the JVMs recorded in flink.env, TaskManager first.
stop() {
    local work=$1 pid
    [[ -f $work/flink.env ]] || return 0
    for pid in $(sed -n 's/^TM_PID=//p; s/^PID=//p' "$work/flink.env" | tac); do
        # Only our JVM: the PID must still belong to a process started from this FLINK_HOME.
        if pid_alive "$pid" && grep -qF "$work/flink" "/proc/$pid/cmdline" 2>/dev/null; then
            stop_pid "$pid" "Flink JVM"
        fi
    done
}

case ${1:-} in
home) flink_home "${2:-$DEFAULT_VERSION}" ;;
test-jar) test_job_jar "${2:-$DEFAULT_VERSION}" ;;
start-jobmanager) start_jobmanager "${2:?WORKDIR}" "${3:-}" ;;
start-session) start_session "${2:?WORKDIR}" "${3:-}" ;;
start-application) start_application "${2:?WORKDIR}" "${3:?VERSION}" "${4:?REST_PORT}" "${5:?CONF_FILE}" "${@:6}" ;;
stop) stop "${2:?WORKDIR}" ;;
*) die "usage: flink.sh home VERSION | test-jar VERSION | start-jobmanager|start-session WORKDIR [VERSION] |
    start-application WORKDIR VERSION REST_PORT CONF_FILE [ARGS...] | stop WORKDIR" ;;
esac
