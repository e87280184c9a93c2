#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver v1.20.2) on 127.0.0.1,
# one per WORKDIR, on free ports, so that several test suites can run side by side.
#
#   controlplane.sh up WORKDIR       # start; returns once the API is ready
#   controlplane.sh down WORKDIR     # stop (idempotent); keeps WORKDIR/logs
#   controlplane.sh status WORKDIR   # exit 0 if running and ready
#   controlplane.sh stop-apiserver WORKDIR     # SIGKILL kube-apiserver only (a crash; etcd keeps
#                                              # running); its command line is kept for start-apiserver
#   controlplane.sh start-apiserver WORKDIR    # start it again with the same flags and port; returns
#                                              # once /readyz answers 200
#   controlplane.sh restart-apiserver WORKDIR  # both
#
# `up` writes into WORKDIR:
#   env                    KEY=VALUE lines: APISERVER_URL ADMIN_KUBECONFIG OPERATOR_KUBECONFIG
#                          OPERATOR_USER ADMIN_TOKEN OPERATOR_TOKEN CA_FILE ETCD_PID
#                          APISERVER_PID LOG_DIR (written last, once everything is ready)
#   admin.kubeconfig       user `admin`, group system:masters
#   operator.kubeconfig    user `flink-operator` (uid flink-operator, group flink-operators),
#                          no permissions beyond the apiserver's defaults for authenticated users
#   pki/                   ca.crt/ca.key, apiserver.crt/.key (SANs 127.0.0.1, localhost, 10.0.0.1,
#                          kubernetes[.default[.svc[.cluster.local]]]), sa.key/sa.pub
#   tokens.csv, etcd.pid, apiserver.pid, logs/{etcd,kube-apiserver}.log, etcd-data/
#   apiserver.cmdline      (stop-apiserver) the stopped apiserver's arguments, NUL-separated
#
# Binaries: $ETCD_BIN (default: etcd on PATH) and $KUBE_APISERVER_BIN (default:
# $CACHE_DIR/kubernetes-1.20.2/bin/kube-apiserver, built by install.sh / build-kube.sh).
#
# The servers run in the caller's process group (Ctrl-C on a test run stops them
# too); their stdin/stdout/stderr are not the caller's, so a harness that captures
# the output of `up` does not hang on them.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=controlplane

READY_TIMEOUT=${CONTROLPLANE_READY_TIMEOUT:-60}
STOP_TIMEOUT=${CONTROLPLANE_STOP_TIMEOUT:-20}
# Room for thousands of Services (a FlinkDeployment has two, one with a ClusterIP): the scale benchmark
# creates 1000. No traffic goes to these addresses; no kube-proxy runs on this tier.
SERVICE_CIDR=10.0.0.0/20
SERVICE_IP=10.0.0.1

usage() {
    print_header
    exit 2
}

(($# == 2)) || usage
cmd=$1
W=$(realpath -m -- "$2")

ETCD_PIDFILE=$W/etcd.pid
APISERVER_PIDFILE=$W/apiserver.pid
LOG_DIR=$W/logs
PKI=$W/pki
ETCD_DATA=$W/etcd-data

# --------------------------------------------------------------------- helpers

read_pid() {
    if [[ -f $1 ]]; then
        tr -dc '0-9' <"$1"
    fi
}

# Each server has an argument naming this WORKDIR. A pid only counts as ours
# while that is still true (pids get reused), and the same argument finds the
# servers when the pid files are gone (e.g. WORKDIR was emptied while they ran).
ETCD_ARG="--data-dir=$ETCD_DATA"
APISERVER_ARG="--cert-dir=$PKI"

# component_pids PIDFILE ARG: the running process(es) of one server of this WORKDIR.
component_pids() {
    local pid
    pid=$(read_pid "$1")
    if [[ -n $pid ]] && pid_has_arg "$pid" "$2"; then
        echo "$pid"
    fi
    pids_with_arg "$2" | { grep -vx "${pid:-none}" || true; }
}

# stop_component PIDFILE NAME ARG [TIMEOUT]
stop_component() {
    local pidfile=$1 name=$2 arg=$3 timeout=${4:-$STOP_TIMEOUT} pid pids
    mapfile -t pids < <(component_pids "$pidfile" "$arg")
    for pid in "${pids[@]}"; do
        log "stopping $name (pid $pid)"
        stop_pid "$pid" "$name" "$timeout"
    done
    rm -f "$pidfile"
}

# --------------------------------------------------------------------- pki

gen_pki() {
    pki_init "$PKI" flink-operator-test-ca apiserver sa
    pki_sign "$PKI" apiserver "/CN=kube-apiserver" serverAuth \
        "IP:127.0.0.1,DNS:localhost,IP:$SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    # service-account token signing key pair
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# --------------------------------------------------------------------- kubeconfigs

write_kubeconfig() { # FILE USER TOKEN
    local f=$1 user=$2 token=$3 kc
    rm -f "$f"
    kc=(kubectl config --kubeconfig="$f")
    "${kc[@]}" set-cluster local --server="$APISERVER_URL" --certificate-authority="$PKI/ca.crt" >/dev/null
    "${kc[@]}" set-credentials "$user" --token="$token" >/dev/null
    "${kc[@]}" set-context "$user" --cluster=local --user="$user" --namespace=default >/dev/null
    "${kc[@]}" use-context "$user" >/dev/null
    chmod 600 "$f"
}

write_kubeconfigs() {
    write_kubeconfig "$W/admin.kubeconfig" admin "$ADMIN_TOKEN"
    write_kubeconfig "$W/operator.kubeconfig" flink-operator "$OPERATOR_TOKEN"
}

# --------------------------------------------------------------------- up

STARTED=()
up_ok=
on_up_exit() {
    local rc=$?
    [[ -n $up_ok ]] && return 0
    if ((${#STARTED[@]})); then
        print_logs
        # Short grace period: an apiserver that is still starting up only
        # honours SIGTERM once it gave up on etcd.
        stop_component "$APISERVER_PIDFILE" kube-apiserver "$APISERVER_ARG" 3
        stop_component "$ETCD_PIDFILE" etcd "$ETCD_ARG" 3
        rm -rf "$ETCD_DATA"
    fi
    rm -f "$W/env"
    warn "controlplane up failed (exit $rc); logs are in $LOG_DIR"
}

print_logs() {
    local f
    for f in "$LOG_DIR/etcd.log" "$LOG_DIR/kube-apiserver.log"; do
        [[ -f $f ]] || continue
        printf '\n----- last 30 lines of %s -----\n' "$f" >&2
        tail -n 30 "$f" >&2
    done
    printf -- '-----\n' >&2
}

# start_bg NAME PIDFILE LOGFILE CMD...: start CMD in the background, detached
# from our stdio; record its pid.
start_bg() {
    local name=$1 pidfile=$2 logfile=$3 pid
    shift 3
    "$@" </dev/null >>"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    STARTED+=("$pid")
    log "started $name (pid $pid), log $logfile"
}

# Returns 0 when ready, 2 when a server lost a race for its port (retry with
# other ports), 1 on any other failure.
start_servers() {
    local etcd_port etcd_peer_port api_port
    { read -r etcd_port; read -r etcd_peer_port; read -r api_port; } < <(free_ports 3)
    APISERVER_URL=https://127.0.0.1:$api_port

    rm -rf "$ETCD_DATA"
    start_bg etcd "$ETCD_PIDFILE" "$LOG_DIR/etcd.log" \
        "$ETCD" --name=controlplane --data-dir="$ETCD_DATA" \
        --listen-client-urls="http://127.0.0.1:$etcd_port" \
        --advertise-client-urls="http://127.0.0.1:$etcd_port" \
        --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster="controlplane=http://127.0.0.1:$etcd_peer_port" \
        --heartbeat-interval=50 --election-timeout=500 \
        --logger=zap --log-outputs=stderr
    ETCD_PID=$(read_pid "$ETCD_PIDFILE")

    # While etcd elects itself leader: the kubeconfigs (they only need the URL
    # and the CA path) and the certificates. The kubeconfigs are written before
    # the apiserver starts on purpose: the kubectl on these machines (Google
    # Cloud SDK's version dispatcher) asks the server in the kubeconfig for its
    # version on every call, even `kubectl config ...`. A closed port answers at
    # once; an apiserver that has opened its port but is not serving yet makes
    # every such call wait 5 s.
    local kc_pid
    write_kubeconfigs &
    kc_pid=$!
    if [[ -z $pki_done ]]; then
        gen_pki
        pki_done=1
    fi
    wait "$kc_pid" || { warn "writing the kubeconfigs failed"; return 1; }

    # The apiserver retries its etcd connection itself: start it right away.
    start_bg kube-apiserver "$APISERVER_PIDFILE" "$LOG_DIR/kube-apiserver.log" \
        "$APISERVER" \
        --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 --secure-port="$api_port" --advertise-address=127.0.0.1 \
        --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --token-auth-file="$W/tokens.csv" --authorization-mode=RBAC \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --endpoint-reconciler-type=none \
        --allow-privileged=true --profiling=false
    APISERVER_PID=$(read_pid "$APISERVER_PIDFILE")

    local deadline code
    deadline=$(($(date +%s%N) + READY_TIMEOUT * 1000000000))
    while :; do
        if ! pid_alive "$ETCD_PID" || ! pid_alive "$APISERVER_PID"; then
            if grep -qs 'address already in use' "$LOG_DIR/etcd.log" "$LOG_DIR/kube-apiserver.log"; then
                warn "a port was taken before we could bind it; retrying with other ports"
                return 2
            fi
            pid_alive "$ETCD_PID" || warn "etcd exited during start-up"
            pid_alive "$APISERVER_PID" || warn "kube-apiserver exited during start-up"
            return 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$PKI/ca.crt" \
            -H "Authorization: Bearer $ADMIN_TOKEN" "$APISERVER_URL/readyz" || true)
        [[ $code == 200 ]] && return 0
        if (($(date +%s%N) >= deadline)); then
            warn "kube-apiserver not ready after ${READY_TIMEOUT}s (last GET /readyz: HTTP ${code:-none})"
            curl -s --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
                "$APISERVER_URL/readyz?verbose" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

# After /readyz: the bootstrap controller creates `default` asynchronously;
# also check both kubeconfigs work (TLS verification with ca.crt, token auth).
bootstrap_done() {
    kubectl --kubeconfig="$W/admin.kubeconfig" get namespace default -o name >/dev/null 2>&1 &&
        kubectl --kubeconfig="$W/admin.kubeconfig" get clusterrole cluster-admin -o name >/dev/null 2>&1 &&
        kubectl --kubeconfig="$W/operator.kubeconfig" get --raw /apis >/dev/null 2>&1
}

cmd_up() {
    local start
    start=$(now)
    ETCD=$(etcd_bin)
    APISERVER=$(kube_bin kube-apiserver)
    [[ -x $ETCD ]] || die "etcd not found ($ETCD); run tests/env/install.sh or set ETCD_BIN"
    [[ -x $APISERVER ]] || die "kube-apiserver not found ($APISERVER); run tests/env/install.sh or set KUBE_APISERVER_BIN"
    local tool
    for tool in kubectl openssl curl; do
        command -v "$tool" >/dev/null || die "$tool not found; run tests/env/install.sh"
    done

    mkdir -p "$W" "$LOG_DIR"
    if [[ -n $(component_pids "$ETCD_PIDFILE" "$ETCD_ARG") || -n $(component_pids "$APISERVER_PIDFILE" "$APISERVER_ARG") ]]; then
        die "a control plane is already running in $W (run: $0 down $W)"
    fi
    rm -f "$W/env" "$ETCD_PIDFILE" "$APISERVER_PIDFILE"
    trap on_up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    rm -rf "$PKI"
    pki_done=
    ADMIN_TOKEN=$(openssl rand -hex 32)
    OPERATOR_TOKEN=$(openssl rand -hex 32)
    (
        umask 077
        {
            printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN"
            printf '%s,flink-operator,flink-operator,"flink-operators"\n' "$OPERATOR_TOKEN"
        } >"$W/tokens.csv"
    )

    : >"$LOG_DIR/etcd.log"
    : >"$LOG_DIR/kube-apiserver.log"
    local attempt rc
    for attempt in 1 2 3; do
        rc=0
        start_servers || rc=$?
        ((rc == 0)) && break
        if ((rc == 2 && attempt < 3)); then
            stop_component "$APISERVER_PIDFILE" kube-apiserver "$APISERVER_ARG" 3
            stop_component "$ETCD_PIDFILE" etcd "$ETCD_ARG" 3
            local f
            for f in "$LOG_DIR/etcd.log" "$LOG_DIR/kube-apiserver.log"; do
                printf '===== controlplane.sh: retry %d with other ports =====\n' "$attempt" >>"$f"
            done
            continue
        fi
        exit 1
    done
    log "kube-apiserver ready at $APISERVER_URL after $(elapsed "$start")s"
    wait_until 30 "namespace default, clusterrole cluster-admin and working kubeconfigs" bootstrap_done ||
        exit 1

    {
        echo "APISERVER_URL=$APISERVER_URL"
        echo "ADMIN_KUBECONFIG=$W/admin.kubeconfig"
        echo "OPERATOR_KUBECONFIG=$W/operator.kubeconfig"
        echo "OPERATOR_USER=flink-operator"
        echo "ADMIN_TOKEN=$ADMIN_TOKEN"
        echo "OPERATOR_TOKEN=$OPERATOR_TOKEN"
        echo "CA_FILE=$PKI/ca.crt"
        echo "ETCD_PID=$ETCD_PID"
        echo "APISERVER_PID=$APISERVER_PID"
        echo "LOG_DIR=$LOG_DIR"
    } >"$W/env.tmp"
    chmod 600 "$W/env.tmp"
    mv -f "$W/env.tmp" "$W/env"
    up_ok=1
    log "control plane up in $(elapsed "$start")s: $APISERVER_URL (env: $W/env; export KUBECONFIG=$W/admin.kubeconfig)"
}

# --------------------------------------------------------------------- down

cmd_down() {
    # (Also when WORKDIR no longer exists: stop_component finds servers by argument.)
    # Apiserver first, so it does not spin on a vanished etcd.
    stop_component "$APISERVER_PIDFILE" kube-apiserver "$APISERVER_ARG"
    stop_component "$ETCD_PIDFILE" etcd "$ETCD_ARG"
    rm -rf "$ETCD_DATA"
    rm -f "$W/env" "$W/env.tmp"
    if [[ -d $W ]]; then
        log "control plane in $W is down (logs kept in $LOG_DIR)"
    else
        log "control plane in $W is down ($W does not exist)"
    fi
}

# --------------------------------------------------------------------- status

cmd_status() {
    local etcd_pid api_pid url token code
    etcd_pid=$(component_pids "$ETCD_PIDFILE" "$ETCD_ARG" | tr '\n' ' ')
    api_pid=$(component_pids "$APISERVER_PIDFILE" "$APISERVER_ARG" | tr '\n' ' ')
    etcd_pid=${etcd_pid% }
    api_pid=${api_pid% }
    describe() { if [[ -n $1 ]]; then echo "running (pid $1)"; else echo "not running"; fi; }
    echo "etcd:           $(describe "$etcd_pid")"
    echo "kube-apiserver: $(describe "$api_pid")"
    [[ -n $etcd_pid && -n $api_pid && -f $W/env ]] || return 1
    url=$(sed -n 's/^APISERVER_URL=//p' "$W/env")
    token=$(sed -n 's/^ADMIN_TOKEN=//p' "$W/env")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $token" "$url/readyz" || true)
    echo "readyz:         HTTP ${code:-none} ($url)"
    [[ $code == 200 ]]
}

# --------------------------------------------------------------------- apiserver faults

# env_value KEY: a value from WORKDIR/env.
env_value() {
    sed -n "s/^$1=//p" "$W/env"
}

apiserver_ready() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(env_value ADMIN_TOKEN)" "$(env_value APISERVER_URL)/readyz" || true)
    [[ $code == 200 ]]
}

cmd_stop_apiserver() {
    [[ -f $W/env ]] || die "no control plane is up in $W"
    local pid
    pid=$(read_pid "$APISERVER_PIDFILE")
    if [[ -z $pid ]] || ! pid_has_arg "$pid" "$APISERVER_ARG"; then
        die "kube-apiserver of $W is not running"
    fi
    # The exact arguments, so that start-apiserver brings back the same server (port, certificates, etcd).
    cp "/proc/$pid/cmdline" "$W/apiserver.cmdline"
    log "killing kube-apiserver (pid $pid, SIGKILL)"
    kill -KILL "$pid"
    wait_until 10 "kube-apiserver (pid $pid) to die" _pid_gone "$pid" || die "kube-apiserver (pid $pid) survived SIGKILL"
    rm -f "$APISERVER_PIDFILE"
}

cmd_start_apiserver() {
    [[ -f $W/apiserver.cmdline ]] || die "no stopped kube-apiserver to start in $W (run stop-apiserver first)"
    [[ -z $(component_pids "$APISERVER_PIDFILE" "$APISERVER_ARG") ]] || die "kube-apiserver of $W is already running"
    local start pid
    local -a args=()
    start=$(now)
    mapfile -d '' -t args <"$W/apiserver.cmdline"
    printf '===== controlplane.sh: start-apiserver =====\n' >>"$LOG_DIR/kube-apiserver.log"
    start_bg kube-apiserver "$APISERVER_PIDFILE" "$LOG_DIR/kube-apiserver.log" "${args[@]}"
    pid=$(read_pid "$APISERVER_PIDFILE")
    sed -i "s/^APISERVER_PID=.*/APISERVER_PID=$pid/" "$W/env"
    # The port was ours a moment ago; a server that cannot bind it again fails here instead of hanging.
    wait_until "$READY_TIMEOUT" "kube-apiserver /readyz after the restart" apiserver_ready_or_dead "$pid" ||
        die "kube-apiserver did not become ready again (log: $LOG_DIR/kube-apiserver.log)"
    pid_alive "$pid" || die "kube-apiserver exited during start-up (log: $LOG_DIR/kube-apiserver.log)"
    rm -f "$W/apiserver.cmdline"
    log "kube-apiserver (pid $pid) ready again after $(elapsed "$start")s"
}

# True once the apiserver is ready, or once it died (the caller tells the two apart).
apiserver_ready_or_dead() {
    ! pid_alive "$1" || apiserver_ready
}

case $cmd in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
stop-apiserver) cmd_stop_apiserver ;;
start-apiserver) cmd_start_apiserver ;;
restart-apiserver)
    cmd_stop_apiserver
    cmd_start_apiserver
    ;;
*) usage ;;
esac
