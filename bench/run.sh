#!/usr/bin/env bash
# Benchmarks of the operator (method and figures: BENCHMARKS.md).
#
#   bench/run.sh [webhook|reconcile|startup|size|load|all]    # default: all
#
#   webhook    /validate and /mutate over TLS with keep-alive at 1 and 64 connections, the operator
#              (--no-controller) and a floor server (bare axum + rustls, examples/bench_helper/floor.rs)
#              alternated run by run; server on CPU 0, wrk on CPU 1
#   reconcile  a local control plane, BENCH_COUNT FlinkDeployments created at once; time to every JobManager
#              Deployment and status, create->Deployment latency, CPU of operator / kube-apiserver / etcd,
#              peak RSS, API writes per minute once steady
#   startup    (with reconcile's resources present) process start -> /readyz 200
#   instructions  instructions per admission answer in-process (callgrind; TLS and HTTP aside): the
#              operator's /validate and /mutate next to the floor's parse-and-answer
#   size       release binary (as built and stripped), the image of tests/env/images/operator.sh
#   load       the webhook at 64 connections for BENCH_SOAK_SECONDS: zero errors and flat RSS; the
#              controller's RSS with BENCH_COUNT FlinkDeployments during and after (runs reconcile)
#   all        all of the above (the control plane scenario once)
#
# Exit status: non-zero when a load check fails (errors, growing memory) or a step fails; budgets that
# are missed are reported (MISS) in the summary without failing the run.
#
# Environment: BENCH_OUT (results dir, default /tmp/flink-operator-bench-DATE), BENCH_RUNS (5),
# BENCH_DURATION (10 s per wrk run), BENCH_COUNT (1000), BENCH_CONCURRENCY (32 creates in flight),
# BENCH_SINGLES (20 creates one at a time after the burst),
# BENCH_STEADY_SECONDS (90), BENCH_STARTUPS (3), BENCH_SOAK_SECONDS (180), BENCH_FLAT_MB (5),
# BENCH_PROFILE=1 (perf record the operator over the burst: DIR/perf-report.txt; BENCH_PROFILE=graph adds
# call graphs, for a binary built with RUSTFLAGS="-C force-frame-pointers=yes" and
# CARGO_PROFILE_RELEASE_DEBUG=line-tables-only in CARGO_TARGET_DIR, with BENCH_NO_BUILD=1), BENCH_QUIET_WAIT (600 s to wait for no `rustc`/`e2e_node` process before each block), BENCH_NO_BUILD=1
# (use the binaries already built), CARGO_TARGET_DIR (default $CACHE_DIR/target),
# BENCH_BASELINE=REV (also build the operator of git revision REV, in its own target dir
# $CACHE_DIR/target-baseline, and measure it beside the current one in the same run: a third webhook server
# in the alternation, and the control plane scenario once for each).
# Needs root for apt-get (wrk) and for the image build (size).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/env/lib.sh
. "$REPO/tests/env/lib.sh"
export LOG_TAG=bench # read by lib.sh's log()

WHAT=${1:-all}
case $WHAT in
webhook | reconcile | startup | instructions | size | load | all) ;;
*)
    print_header
    exit 2
    ;;
esac

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}
OUT=${BENCH_OUT:-/tmp/flink-operator-bench-$(date +%Y%m%d-%H%M%S)}
BIN=$OUT/bin/flink-operator
BASELINE=${BENCH_BASELINE:-}
BASE_BIN=
[[ -n $BASELINE ]] && BASE_BIN=$OUT/bin/flink-operator-baseline
HELPER=$CARGO_TARGET_DIR/release/examples/bench_helper
RUNS=${BENCH_RUNS:-5}
DURATION=${BENCH_DURATION:-10}
COUNT=${BENCH_COUNT:-1000}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
STEADY=${BENCH_STEADY_SECONDS:-90}
STARTUPS=${BENCH_STARTUPS:-3}
SINGLES=${BENCH_SINGLES:-20}
SOAK=${BENCH_SOAK_SECONDS:-180}
FLAT_MB=${BENCH_FLAT_MB:-5}
QUIET_WAIT=${BENCH_QUIET_WAIT:-600}
NAMESPACE=bench
SERVER_CPU=0
CLIENT_CPU=1
SUMMARY=$OUT/summary.md
FAILED=()

mkdir -p "$OUT"
: >"$SUMMARY"

# ---------------------------------------------------------------- helpers

say() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
fail_check() {
    FAILED+=("$1")
    say "CHECK FAILED: $1"
}

# verdict OK: PASS or MISS
verdict() { if [[ $1 == 1 ]]; then echo PASS; else echo MISS; fi; }
# calc EXPR: awk arithmetic, printed with up to 3 decimals
calc() { awk "BEGIN { v = $1; printf \"%.3g\", v }"; }
# holds EXPR: exit 0 when the awk condition is true
holds() { awk "BEGIN { exit !($1) }"; }

# quiet_moment NAME: wait up to QUIET_WAIT s for no compiler or node suite, then record the machine's state.
quiet_moment() {
    local waited=0
    while pgrep -f 'e2e_node|rustc' >/dev/null && ((waited < QUIET_WAIT)); do
        ((waited == 0)) && log "waiting up to ${QUIET_WAIT}s for other jobs (rustc, e2e_node) to finish"
        sleep 10
        waited=$((waited + 10))
    done
    say ""
    say "### $1: machine state at $(date -u +%H:%M:%SZ)"
    if pgrep -f 'e2e_node|rustc' >/dev/null; then
        say "NOT QUIET: other jobs still running after waiting ${waited}s (measured anyway):"
        pgrep -af 'e2e_node|rustc' | cut -c1-120 | head -5 | sed 's/^/    /' | tee -a "$SUMMARY"
    else
        say "quiet (no rustc / e2e_node process; waited ${waited}s)"
    fi
    say '```'
    uptime | tee -a "$SUMMARY"
    # (head closing the pipe early would fail the pipeline under pipefail)
    ps aux --sort=-%cpu | awk 'NR <= 5 { print substr($0, 1, 150) }' | tee -a "$SUMMARY"
    say '```'
}

# cpu_ticks PID: utime + stime of the process, in clock ticks.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    local -a f
    read -ra f <<<"$stat"
    echo $((f[11] + f[12]))
}
CLK_TCK=$(getconf CLK_TCK)

# status_kb PID FIELD: VmRSS / VmHWM of the process in kB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# sample_rss PID FILE INTERVAL: "seconds rss_kb" lines until the process exits (run in the background).
sample_rss() {
    local pid=$1 file=$2 interval=$3 start rss
    start=$(date +%s%N)
    while rss=$(status_kb "$pid" VmRSS 2>/dev/null) && [[ -n $rss ]]; do
        echo "$((($(date +%s%N) - start) / 1000000000)) $rss" >>"$file"
        sleep "$interval"
    done
}

STARTED_PIDS=()
CONTROLPLANE_DIR=
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        stop_pid "$pid" "pid $pid" 10
    done
    if [[ -n $CONTROLPLANE_DIR ]]; then
        "$REPO/tests/env/controlplane.sh" down "$CONTROLPLANE_DIR" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# http_code URL [CURL ARGS...]
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" || true
}
is_ready() { [[ $(http_code "http://127.0.0.1:$1/readyz") == 200 ]]; }

prepare() {
    apt_ensure wrk util-linux jq curl
    if [[ ${BENCH_PROFILE:-0} != 0 ]]; then apt_ensure linux-perf; fi
    if [[ -z ${BENCH_NO_BUILD:-} ]]; then
        # Two builds: an example turns dev-dependencies on, whose features would change the operator's
        # build; the operator is measured exactly as `cargo build --release --locked` (the image) builds it.
        log "cargo build --release --locked; cargo build --release --locked --example bench_helper"
        (cd "$REPO" && cargo build --release --locked --quiet)
        mkdir -p "$OUT/bin"
        cp "$CARGO_TARGET_DIR/release/flink-operator" "$BIN"
        (cd "$REPO" && cargo build --release --locked --quiet --example bench_helper)
    else
        mkdir -p "$OUT/bin"
        cp "$CARGO_TARGET_DIR/release/flink-operator" "$BIN"
    fi
    [[ -x $BIN && -x $HELPER ]] || die "binaries missing: $BIN $HELPER"
    if [[ -n $BASELINE ]]; then
        local src=$CACHE_DIR/bench-baseline-src rev
        rev=$(git -C "$REPO" rev-parse --verify "$BASELINE^{commit}") || die "BENCH_BASELINE=$BASELINE is no commit"
        # The same revision's tree is kept (timestamps too), so cargo rebuilds nothing the second time.
        if [[ $(cat "$src/.rev" 2>/dev/null) != "$rev" ]]; then
            rm -rf "$src"
            mkdir -p "$src"
            git -C "$REPO" archive "$rev" | tar -x -C "$src"
            # git archive dates every file at the commit's time: a commit older than the last baseline build
            # would look built already to cargo, which then measured the previous baseline.
            find "$src" -type f -exec touch {} +
            echo "$rev" >"$src/.rev"
        fi
        log "cargo build --release --locked of the baseline $BASELINE (${rev:0:7})"
        (cd "$src" && CARGO_TARGET_DIR=$CACHE_DIR/target-baseline cargo build --release --locked --quiet)
        cp "$CACHE_DIR/target-baseline/release/flink-operator" "$BASE_BIN"
        BASELINE_DESC="$BASELINE (${rev:0:7})"
    fi
    say "# flink-operator benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
    say ""
    say "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
    say "- commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with local changes)')"
    [[ -n $BASELINE ]] && say "- baseline measured beside it: $BASELINE_DESC"
    say "- results: $OUT"
}

# ---------------------------------------------------------------- webhook

# wrk_run URL CONNECTIONS SECONDS OUTFILE [SERVER_PID]: one wrk run on CLIENT_CPU; its JSON line goes to
# OUTFILE, with the server's CPU time per request (user + system) when SERVER_PID is given: unlike
# throughput, that hardly depends on what else the machine runs.
wrk_run() {
    local ticks0=0 ticks1=0
    [[ -n ${5:-} ]] && ticks0=$(cpu_ticks "$5")
    BENCH_BODY=$OUT/review.json taskset -c "$CLIENT_CPU" wrk -t1 -c"$2" -d"$3s" --latency \
        -s "$REPO/bench/post.lua" "$1" | tail -n1 >"$4.tmp"
    [[ -n ${5:-} ]] && ticks1=$(cpu_ticks "$5")
    jq -e --argjson ticks "$((ticks1 - ticks0))" --argjson hz "$CLK_TCK" \
        '. + {cpu_us_per_request: (if .requests > 0 then ($ticks / $hz * 1e6 / .requests * 10 | round / 10) else null end)}' \
        "$4.tmp" >"$4" || die "wrk gave no result for $1 (see $4.tmp)"
    rm -f "$4.tmp"
}

# median FILES... FIELD
median() {
    local field=${*: -1}
    jq -s "map(.$field) | sort | .[(length - 1) / 2 | floor]" "${@:1:$#-1}"
}

# start_webhook BINARY PORT ADMIN_PORT LOG: an operator binary serving only its webhook on SERVER_CPU, in the
# background; prints its PID.
start_webhook() {
    local certs=$OUT/certs
    taskset -c "$SERVER_CPU" "$1" run --no-controller \
        --tls-cert-file "$certs/tls.crt" --tls-key-file "$certs/tls.key" \
        --webhook-addr "127.0.0.1:$2" --admin-addr "127.0.0.1:$3" >"$4" 2>&1 &
    echo "$!"
}

# start_servers: the operator (webhook only) and the floor, both on SERVER_CPU, answering a review.
start_webhook_servers() {
    local certs=$OUT/certs
    if [[ ! -f $certs/tls.crt ]]; then
        "$BIN" certs --out "$certs" --dns localhost --ip 127.0.0.1 >/dev/null
        "$HELPER" review "$REPO/examples/basic.yaml" >"$OUT/review.json"
    fi
    read -r OP_PORT OP_ADMIN FLOOR_PORT BASE_PORT BASE_ADMIN < <(free_ports 5 | paste -sd' ')
    OP_PID=$(start_webhook "$BIN" "$OP_PORT" "$OP_ADMIN" "$OUT/operator-webhook.log")
    STARTED_PIDS+=("$OP_PID")
    WEBHOOK_PORTS=("$FLOOR_PORT" "$OP_PORT")
    BASE_PID=
    if [[ -n $BASE_BIN ]]; then
        BASE_PID=$(start_webhook "$BASE_BIN" "$BASE_PORT" "$BASE_ADMIN" "$OUT/baseline-webhook.log")
        STARTED_PIDS+=("$BASE_PID")
        wait_until 20 "baseline webhook ready" is_ready "$BASE_ADMIN" || die "baseline not ready: $OUT/baseline-webhook.log"
        WEBHOOK_PORTS+=("$BASE_PORT")
    fi
    taskset -c "$SERVER_CPU" "$HELPER" floor --addr "127.0.0.1:$FLOOR_PORT" \
        --tls-cert-file "$certs/tls.crt" --tls-key-file "$certs/tls.key" >"$OUT/floor.log" 2>&1 &
    FLOOR_PID=$!
    STARTED_PIDS+=("$FLOOR_PID")
    wait_until 20 "operator webhook ready" is_ready "$OP_ADMIN" || die "operator not ready: $OUT/operator-webhook.log"
    local port path answer
    for port in "${WEBHOOK_PORTS[@]}"; do
        for path in validate mutate; do
            wait_until 10 "https://127.0.0.1:$port/$path" curl -sf -o /dev/null --cacert "$certs/ca.crt" \
                -H 'Content-Type: application/json' --data-binary @"$OUT/review.json" \
                "https://127.0.0.1:$port/$path" || die "no answer from https://127.0.0.1:$port/$path"
            answer=$(curl -sf --cacert "$certs/ca.crt" -H 'Content-Type: application/json' \
                --data-binary @"$OUT/review.json" "https://127.0.0.1:$port/$path")
            jq -e '.response.allowed == true' <<<"$answer" >/dev/null ||
                die "https://127.0.0.1:$port/$path did not allow the review: $answer"
        done
    done
    log "operator webhook :$OP_PORT (pid $OP_PID), floor :$FLOOR_PORT (pid $FLOOR_PID), both on CPU $SERVER_CPU"
}

stop_webhook_servers() {
    stop_pid "$OP_PID" operator
    stop_pid "$FLOOR_PID" floor
    [[ -z $BASE_PID ]] || stop_pid "$BASE_PID" baseline
}

bench_webhook() {
    quiet_moment webhook
    start_webhook_servers
    local dir=$OUT/webhook conns path run server url
    mkdir -p "$dir"
    # Warm-up (TLS sessions, allocator, page cache), not recorded.
    for server in "${WEBHOOK_PORTS[@]}"; do
        wrk_run "https://127.0.0.1:$server/validate" 64 2 "$dir/warmup.json"
    done
    for conns in 1 64; do
        for path in validate mutate; do
            for run in $(seq "$RUNS"); do
                wrk_run "https://127.0.0.1:$FLOOR_PORT/$path" "$conns" "$DURATION" "$dir/$path-c$conns-floor-$run.json" "$FLOOR_PID"
                wrk_run "https://127.0.0.1:$OP_PORT/$path" "$conns" "$DURATION" "$dir/$path-c$conns-operator-$run.json" "$OP_PID"
                if [[ -n $BASE_PID ]]; then
                    wrk_run "https://127.0.0.1:$BASE_PORT/$path" "$conns" "$DURATION" "$dir/$path-c$conns-baseline-$run.json" "$BASE_PID"
                fi
            done
            log "$path c=$conns: floor $(median "$dir/$path-c$conns-floor-"*.json rps) req/s," \
                "operator $(median "$dir/$path-c$conns-operator-"*.json rps) req/s"
        done
    done
    stop_webhook_servers

    say ""
    say "### webhook: $RUNS alternating runs of ${DURATION}s per row, medians (wrk -t1 on CPU $CLIENT_CPU, server on CPU $SERVER_CPU, TLS, keep-alive)"
    say ""
    say "| endpoint | conns | floor req/s | operator req/s | ratio (>= 0.8) | floor p50 ms | operator p50 ms | floor p99 ms | operator p99 ms | p99 ratio (<= 1.25) | budget | floor CPU µs/req | operator CPU µs/req | CPU ratio |"
    say "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local f o fr or fp50 op50 fp99 op99 rr pr ok errors fc oc
    for conns in 1 64; do
        for path in validate mutate; do
            f=("$dir/$path-c$conns-floor-"*.json)
            o=("$dir/$path-c$conns-operator-"*.json)
            fr=$(median "${f[@]}" rps) or=$(median "${o[@]}" rps)
            fp50=$(median "${f[@]}" p50_ms) op50=$(median "${o[@]}" p50_ms)
            fp99=$(median "${f[@]}" p99_ms) op99=$(median "${o[@]}" p99_ms)
            rr=$(calc "$or / $fr") pr=$(calc "$op99 / $fp99")
            ok=0
            holds "$or >= 0.8 * $fr && $op99 <= 1.25 * $fp99" && ok=1
            fc=$(median "${f[@]}" cpu_us_per_request) oc=$(median "${o[@]}" cpu_us_per_request)
            say "| /$path | $conns | $fr | $or | $rr | $fp50 | $op50 | $fp99 | $op99 | $pr | $(verdict $ok) | $fc | $oc | $(calc "$oc / $fc") |"
            errors=$(jq -s 'map(.non_2xx + .connect_errors + .read_errors + .write_errors + .timeouts) | add' "${f[@]}" "${o[@]}")
            ((errors == 0)) || say "(errors in these runs: $errors)"
        done
    done
    [[ -n $BASE_PID ]] || return 0
    say ""
    say "Baseline $BASELINE_DESC in the same alternation (medians):"
    say ""
    say "| endpoint | conns | baseline req/s | baseline / floor | operator / floor | baseline p99 ms | baseline CPU µs/req | operator CPU µs/req | operator / baseline CPU |"
    say "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    local b br bc
    for conns in 1 64; do
        for path in validate mutate; do
            f=("$dir/$path-c$conns-floor-"*.json)
            o=("$dir/$path-c$conns-operator-"*.json)
            b=("$dir/$path-c$conns-baseline-"*.json)
            fr=$(median "${f[@]}" rps) or=$(median "${o[@]}" rps) br=$(median "${b[@]}" rps)
            oc=$(median "${o[@]}" cpu_us_per_request) bc=$(median "${b[@]}" cpu_us_per_request)
            say "| /$path | $conns | $br | $(calc "$br / $fr") | $(calc "$or / $fr") | $(median "${b[@]}" p99_ms) | $bc | $oc | $(calc "$oc / $bc") |"
        done
    done
}

# ---------------------------------------------------------------- control plane scenario

kubectl_admin() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

controlplane_down() {
    [[ -n $CONTROLPLANE_DIR ]] || return 0
    "$REPO/tests/env/controlplane.sh" down "$CONTROLPLANE_DIR" >/dev/null 2>&1 || true
    CONTROLPLANE_DIR=
}

# controlplane_up DIR: a fresh etcd + kube-apiserver in DIR (the previous one, if any, is stopped first).
controlplane_up() {
    controlplane_down
    CONTROLPLANE_DIR=$1
    "$REPO/tests/env/controlplane.sh" up "$CONTROLPLANE_DIR" >"$CONTROLPLANE_DIR.up.log" 2>&1 ||
        die "control plane did not start (tests/env/install.sh first?): $CONTROLPLANE_DIR.up.log"
    local env=$CONTROLPLANE_DIR/env
    ADMIN_KUBECONFIG=$(sed -n 's/^ADMIN_KUBECONFIG=//p' "$env")
    OPERATOR_KUBECONFIG=$(sed -n 's/^OPERATOR_KUBECONFIG=//p' "$env")
    APISERVER_PID=$(sed -n 's/^APISERVER_PID=//p' "$env")
    ETCD_PID=$(sed -n 's/^ETCD_PID=//p' "$env")
    kubectl_admin apply -f "$REPO/manifests/crds.yaml" >/dev/null
    kubectl_admin wait --for=condition=established --timeout=60s \
        crd/flinkdeployments.flink.apache.org crd/flinksessionjobs.flink.apache.org >/dev/null
    # The operator runs as its own identity with exactly its ClusterRole, as in tests/support/cluster.rs.
    kubectl_admin apply -f "$REPO/manifests/rbac/operator-clusterrole.yaml" >/dev/null
    kubectl_admin apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: flink-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flink-operator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: flink-operator}]
EOF
    kubectl_admin create namespace "$NAMESPACE" >/dev/null
    log "control plane up: kube-apiserver pid $APISERVER_PID, etcd pid $ETCD_PID"
}

# start_controller LOG: the release operator CTL_BIN (controllers only) watching NAMESPACE; sets CTL_PID,
# CTL_ADMIN.
start_controller() {
    CTL_ADMIN=$(free_port)
    # No Flink runs here: its REST API is a closed port on loopback (as for a JobManager not up yet).
    KUBECONFIG=$OPERATOR_KUBECONFIG "$CTL_BIN" run --no-webhook --watch-namespaces "$NAMESPACE" \
        --admin-addr "127.0.0.1:$CTL_ADMIN" --flink-rest-url 'http://127.0.0.1:9/{namespace}/{name}' \
        >>"$1" 2>&1 &
    CTL_PID=$!
    STARTED_PIDS+=("$CTL_PID")
}

# api_requests: the API server's request counters, summed by verb, resource and subresource, one
# "verb resource[/subresource] count" line each (watch requests are counted once, when they start).
api_requests() {
    kubectl_admin get --raw /metrics | awk '
        /^apiserver_request_total\{/ {
            verb = ""; res = ""; sub_ = ""
            if (match($0, /verb="[^"]*"/)) verb = substr($0, RSTART + 6, RLENGTH - 7)
            if (match($0, /resource="[^"]*"/)) res = substr($0, RSTART + 10, RLENGTH - 11)
            if (match($0, /subresource="[^"]*"/)) sub_ = substr($0, RSTART + 13, RLENGTH - 14)
            key = verb " " res (sub_ == "" ? "" : "/" sub_)
            n[key] += $NF
        }
        END { for (k in n) print k, n[k] }' | sort
}

# api_requests_delta BEFORE AFTER: "count verb resource" of each counter that grew, largest first.
api_requests_delta() {
    awk 'NR == FNR { before[$1 " " $2] = $3; next }
        { d = $3 - before[$1 " " $2]; if (d > 0) print d, $1, $2 }' "$1" "$2" | sort -rn
}

reconciliations_total() {
    curl -sf "http://127.0.0.1:$CTL_ADMIN/metrics" |
        awk '/^flink_operator_reconciliations_total/ { s += $2 } END { printf "%d", s }'
}

writes_total() {
    curl -sf "http://127.0.0.1:$CTL_ADMIN/metrics" |
        awk '/^flink_operator_api_writes_total/ { s += $2 } END { printf "%d", s }'
}

SCENARIO_DONE=
bench_reconcile() {
    [[ -n $SCENARIO_DONE ]] && return 0
    SCENARIO_DONE=1
    # The baseline first, so the current operator's figures (kept for the load checks) come last.
    if [[ -n $BASE_BIN ]]; then
        reconcile_scenario "$BASE_BIN" "baseline $BASELINE_DESC" "$OUT/reconcile-baseline"
    fi
    reconcile_scenario "$BIN" "operator" "$OUT/reconcile"
}

# reconcile_scenario BINARY LABEL DIR: the control plane scenario with one operator binary.
reconcile_scenario() {
    CTL_BIN=$1
    local label=$2 dir=$3
    quiet_moment "reconcile ($COUNT FlinkDeployments, $label)"
    mkdir -p "$dir"
    controlplane_up "$dir/controlplane"
    start_controller "$dir/operator.log"
    wait_until 30 "operator ready" is_ready "$CTL_ADMIN" || die "operator not ready: $dir/operator.log"
    sample_rss "$CTL_PID" "$dir/rss.tsv" 2 &
    STARTED_PIDS+=("$!")

    local op0 api0 etcd0 op1 api1 etcd1 t0 t1
    local perf_pid=
    if [[ ${BENCH_PROFILE:-0} != 0 ]]; then
        # Where the operator's CPU goes in the burst: no hardware counters on these VMs, so the
        # cpu-clock software event, sampled at 999 Hz. Release builds keep no frame pointers, so symbols
        # only, unless BENCH_PROFILE=graph and the binary was built with them (see the header).
        local graph=()
        [[ $BENCH_PROFILE == graph ]] && graph=(--call-graph fp)
        perf record -q -e cpu-clock -F 999 "${graph[@]}" -p "$CTL_PID" -o "$dir/perf.data" >"$dir/perf.log" 2>&1 &
        perf_pid=$!
    fi
    api_requests >"$dir/api-requests.before"
    local rec0 rec1
    rec0=$(reconciliations_total)
    op0=$(cpu_ticks "$CTL_PID") api0=$(cpu_ticks "$APISERVER_PID") etcd0=$(cpu_ticks "$ETCD_PID") t0=$(now)
    KUBECONFIG=$ADMIN_KUBECONFIG "$HELPER" scale --namespace "$NAMESPACE" --count "$COUNT" \
        --concurrency "$CONCURRENCY" --example "$REPO/examples/basic.yaml" --out "$dir/scale.json" \
        >"$dir/scale.log" 2>&1 || die "scale run failed: $dir/scale.log"
    op1=$(cpu_ticks "$CTL_PID") api1=$(cpu_ticks "$APISERVER_PID") etcd1=$(cpu_ticks "$ETCD_PID") t1=$(now)
    rec1=$(reconciliations_total)
    api_requests >"$dir/api-requests.after"
    api_requests_delta "$dir/api-requests.before" "$dir/api-requests.after" >"$dir/api-requests.txt"
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" && wait "$perf_pid" || true
        if [[ $BENCH_PROFILE == graph ]]; then
            perf report -i "$dir/perf.data" --stdio --children --sort symbol --percent-limit 1 \
                -g caller,0.5,callee >"$dir/perf-report.txt" 2>/dev/null || true
        else
            perf report -i "$dir/perf.data" --stdio --sort dso,symbol --percent-limit 0.5 >"$dir/perf-report.txt" 2>/dev/null || true
        fi
        log "profile of the burst: $dir/perf-report.txt"
    fi

    # Steady state: let the last reconciles finish, then count writes over a window that includes a resync.
    sleep 10
    local w0 w1 s_op0 s_api0 s_op1 s_api1 rss_settled rss_end
    rss_settled=$(status_kb "$CTL_PID" VmRSS)
    w0=$(writes_total) s_op0=$(cpu_ticks "$CTL_PID") s_api0=$(cpu_ticks "$APISERVER_PID")
    log "steady window: ${STEADY}s"
    sleep "$STEADY"
    w1=$(writes_total) s_op1=$(cpu_ticks "$CTL_PID") s_api1=$(cpu_ticks "$APISERVER_PID")
    rss_end=$(status_kb "$CTL_PID" VmRSS)
    local hwm
    hwm=$(status_kb "$CTL_PID" VmHWM)
    # One apply at a time on the settled operator with all of them present: what a user's `kubectl apply`
    # waits for (the burst above measures the queue instead).
    KUBECONFIG=$ADMIN_KUBECONFIG "$HELPER" scale --namespace "$NAMESPACE" --count "$SINGLES" \
        --concurrency 1 --interval-ms 500 --prefix single --example "$REPO/examples/basic.yaml" \
        --out "$dir/single.json" >"$dir/single.log" 2>&1 || die "single creates failed: $dir/single.log"

    local op api etcd wall wpm lat_resp lat_req all_dep all_status ok
    op=$(calc "($op1 - $op0) / $CLK_TCK") api=$(calc "($api1 - $api0) / $CLK_TCK")
    etcd=$(calc "($etcd1 - $etcd0) / $CLK_TCK") wall=$(calc "$t1 - $t0")
    wpm=$(calc "($w1 - $w0) * 60 / $STEADY")
    all_dep=$(jq .all_deployments_seconds "$dir/scale.json")
    all_status=$(jq .all_statuses_seconds "$dir/scale.json")
    lat_resp=$(jq -c .create_to_deployment_ms.from_create_response "$dir/scale.json")
    lat_req=$(jq -c .create_to_deployment_ms.from_create_request "$dir/scale.json")
    say ""
    say "### reconcile ($label): $COUNT FlinkDeployments (examples/basic.yaml), $CONCURRENCY creates in flight, operator under its ClusterRole, watching namespace $NAMESPACE"
    say ""
    say "| figure | value | budget | |"
    say "| --- | --- | --- | --- |"
    say "| creates sent and answered | $(jq .create_seconds "$dir/scale.json") s | | |"
    say "| all JobManager Deployments exist | $all_dep s after the first create | | |"
    say "| all statuses set | $all_status s after the first create | | |"
    say "| burst: create answered -> JM Deployment seen (ms) | $lat_resp | | |"
    say "| burst: create sent -> JM Deployment seen (ms) | $lat_req | | |"
    ok=0
    holds "$(jq .create_to_deployment_ms.from_create_response.p50 "$dir/single.json") < 100" && ok=1
    say "| one create at a time ($SINGLES, 0.5 s apart, $COUNT present, after the steady window): create answered -> JM Deployment seen (ms) | $(jq -c .create_to_deployment_ms.from_create_response "$dir/single.json") | median < 100 ms | $(verdict $ok) |"
    say "| window (first create until all seen) | $wall s | | |"
    ok=0
    holds "$op < 0.1 * $api" && ok=1
    say "| CPU in that window: operator / kube-apiserver / etcd | $op s / $api s / $etcd s (operator = $(calc "100 * $op / $api") % of the API server) | operator < 10 % of API server | $(verdict $ok) |"
    ok=0
    ((hwm < 100 * 1024)) && ok=1
    # The helper's own requests (the creates, its watches) are in these counts too.
    local requests
    requests=$(awk -v n="$COUNT" '{ printf "%s%s %s %.1f", sep, $2, $3, $1 / n; sep = ", " }' "$dir/api-requests.txt")
    say "| API requests in that window per FlinkDeployment (all clients) | $requests | | |"
    say "| reconciliations in that window per FlinkDeployment | $(calc "($rec1 - $rec0) / $COUNT") | | |"
    say "| operator peak RSS (VmHWM) | $((hwm / 1024)) MB | < 100 MB | $(verdict $ok) |"
    ok=0
    ((w1 == w0)) && ok=1
    say "| API writes once steady (${STEADY}s window from 10 s after the last status) | $((w1 - w0)) = $wpm /min | 0 | $(verdict $ok) |"
    say "| CPU in the steady window: operator / kube-apiserver | $(calc "($s_op1 - $s_op0) / $CLK_TCK") s / $(calc "($s_api1 - $s_api0) / $CLK_TCK") s | | |"
    say "| operator RSS: settled / end of steady window | $((rss_settled / 1024)) MB / $((rss_end / 1024)) MB | | |"
    CTL_RSS_SETTLED=$rss_settled CTL_RSS_END=$rss_end CTL_HWM=$hwm
    bench_startup "$dir"
    controlplane_down
}

# bench_startup DIR: start-up of CTL_BIN with the scenario's resources present (its control plane still up).
bench_startup() {
    local dir=$1 times=() i start ms
    stop_pid "$CTL_PID" operator
    for i in $(seq "$STARTUPS"); do
        start=$(date +%s%N)
        start_controller "$dir/operator-startup.log"
        while ! is_ready "$CTL_ADMIN"; do
            pid_alive "$CTL_PID" || die "operator exited during start-up: $dir/operator-startup.log"
            sleep 0.01
        done
        ms=$((($(date +%s%N) - start) / 1000000))
        times+=("$ms")
        stop_pid "$CTL_PID" operator
    done
    local sorted median ok=0
    mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
    median=${sorted[$(((${#sorted[@]} - 1) / 2))]}
    ((median < 2000)) && ok=1
    say "| start-up with $COUNT FlinkDeployments: process start -> /readyz 200 ($STARTUPS starts) | median $median ms (all: ${times[*]} ms) | < 2 s | $(verdict $ok) |"
}

# ---------------------------------------------------------------- instructions

# callgrind_ir ARGS...: instructions (Ir) of one bench_helper run under callgrind.
callgrind_ir() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$HELPER" "$@" >/dev/null 2>&1 ||
        die "callgrind of bench_helper $* failed"
    awk '/^summary:/ { print $2 }' "$out"
    rm -f "$out"
}

bench_instructions() {
    command -v valgrind >/dev/null || apt_ensure valgrind
    local dir=$OUT/instructions n=2000 what base full per floor
    mkdir -p "$dir"
    [[ -f $OUT/review.json ]] || "$HELPER" review "$REPO/examples/basic.yaml" >"$OUT/review.json"
    say ""
    say "### instructions per admission answer (callgrind, in-process, review of examples/basic.yaml; (Ir at $n answers - Ir at 0) / $n)"
    say ""
    say "| answer | instructions | / floor |"
    say "| --- | --- | --- |"
    for what in floor validate mutate; do
        base=$(callgrind_ir decide "$what" "$OUT/review.json" --count 0)
        full=$(callgrind_ir decide "$what" "$OUT/review.json" --count "$n")
        per=$(((full - base) / n))
        [[ $what == floor ]] && floor=$per
        say "| $what | $per | $(calc "$per / $floor") |"
    done
}

# ---------------------------------------------------------------- size

bench_size() {
    quiet_moment size
    local dir=$OUT/size
    mkdir -p "$dir"
    strip -o "$dir/flink-operator.stripped" "$BIN"
    say ""
    say "### size"
    say ""
    say "- release binary (\`cargo build --release --locked\`, default release profile: debug info stripped by cargo, symbols kept): $(stat -c %s "$BIN") bytes ($(calc "$(stat -c %s "$BIN") / 1048576") MiB)"
    say "- the same, stripped (strip): $(stat -c %s "$dir/flink-operator.stripped") bytes ($(calc "$(stat -c %s "$dir/flink-operator.stripped") / 1048576") MiB)"
    # A cache of its own, so the image the node suites import ($CACHE_DIR/images) is not replaced; the
    # runtime packages already downloaded there are reused.
    local cache=$CACHE_DIR/bench
    mkdir -p "$cache/images/operator-debs"
    if compgen -G "$CACHE_DIR/images/operator-debs/*.deb" >/dev/null; then
        cp -n "$CACHE_DIR"/images/operator-debs/*.deb "$cache/images/operator-debs/"
    fi
    FLINK_OPERATOR_CACHE=$cache OPERATOR_BIN=$BIN "$REPO/tests/env/images/operator.sh" >"$dir/image.log" 2>&1 ||
        die "image build failed: $dir/image.log"
    local archive=$cache/images/archives/operator.tar layers layer total=0 size i=0
    mapfile -t layers < <(tar -xOf "$archive" manifest.json | jq -r '.[0].Layers[]')
    say "- image flink-operator:dev (tests/env/images/operator.sh, the Dockerfile's shape), uncompressed layers:"
    for layer in "${layers[@]}"; do
        i=$((i + 1))
        size=$(tar -tvf "$archive" "$layer" | awk '{ print $3 }')
        total=$((total + size))
        say "  - layer $i: $size bytes ($(calc "$size / 1048576") MiB)"
    done
    say "  - total: $total bytes ($(calc "$total / 1048576") MiB); docker-archive file $(stat -c %s "$archive") bytes"
}

# ---------------------------------------------------------------- load

bench_load() {
    quiet_moment "load (webhook ${SOAK}s at 64 connections)"
    start_webhook_servers
    stop_pid "$FLOOR_PID" floor
    local dir=$OUT/load
    mkdir -p "$dir"
    sample_rss "$OP_PID" "$dir/webhook-rss.tsv" 5 &
    STARTED_PIDS+=("$!")
    BENCH_ALTERNATE=1 wrk_run "https://127.0.0.1:$OP_PORT/validate" 64 "$SOAK" "$dir/soak.json"
    sleep 1
    stop_pid "$OP_PID" operator

    local errors first last max first_min last_min rps
    errors=$(jq '.non_2xx + .connect_errors + .read_errors + .write_errors + .timeouts' "$dir/soak.json")
    rps=$(jq .rps "$dir/soak.json")
    first=$(awk 'NR == 1 { print int($2 / 1024) }' "$dir/webhook-rss.tsv")
    last=$(awk 'END { print int($2 / 1024) }' "$dir/webhook-rss.tsv")
    max=$(awk '$2 > m { m = $2 } END { print int(m / 1024) }' "$dir/webhook-rss.tsv")
    # Flat: the mean RSS of the last minute against that of the first minute after a 30 s warm-up.
    first_min=$(awk '$1 >= 30 && $1 < 90 { s += $2; n++ } END { if (n) printf "%.1f", s / n / 1024 }' "$dir/webhook-rss.tsv")
    last_min=$(awk -v end="$SOAK" '$1 >= end - 60 && $1 <= end { s += $2; n++ } END { if (n) printf "%.1f", s / n / 1024 }' "$dir/webhook-rss.tsv")
    say ""
    say "### load: webhook ${SOAK}s at 64 connections, /validate and /mutate alternating (operator on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
    say ""
    say "- requests: $(jq .requests "$dir/soak.json") ($rps req/s, p50 $(jq .p50_ms "$dir/soak.json") ms, p99 $(jq .p99_ms "$dir/soak.json") ms, max $(jq .max_ms "$dir/soak.json") ms)"
    say "- errors (non-2xx, connect, read, write, timeouts): $errors"
    say "- operator RSS (every 5 s): first $first MB, last $last MB, max $max MB; mean of the first minute after 30 s warm-up ${first_min:-?} MB, of the last minute ${last_min:-?} MB"
    ((errors == 0)) || fail_check "the webhook answered $errors requests with errors under sustained load ($dir/soak.json)"
    if [[ -z $first_min || -z $last_min ]]; then
        fail_check "too few RSS samples to judge flat memory (BENCH_SOAK_SECONDS=$SOAK needs >= 150)"
    elif ! holds "$last_min - $first_min <= $FLAT_MB"; then
        fail_check "webhook memory grew: last minute ${last_min} MB vs first minute ${first_min} MB (allowed +$FLAT_MB MB)"
    else
        say "- flat memory: PASS (last minute within +$FLAT_MB MB of the first); zero errors: PASS"
    fi

    bench_reconcile
    local rdir=$OUT/reconcile during_max
    during_max=$(awk '$2 > m { m = $2 } END { print int(m / 1024) }' "$rdir/rss.tsv")
    say ""
    say "### load: controller with $COUNT FlinkDeployments"
    say ""
    say "- RSS sampled every 2 s from start through creation and the ${STEADY}s steady window: max $during_max MB; VmHWM $((CTL_HWM / 1024)) MB; settled $((CTL_RSS_SETTLED / 1024)) MB; end $((CTL_RSS_END / 1024)) MB"
    if ((CTL_HWM >= 100 * 1024)); then
        fail_check "controller peak RSS $((CTL_HWM / 1024)) MB with $COUNT FlinkDeployments (bound: 100 MB)"
    elif ((CTL_RSS_END - CTL_RSS_SETTLED > FLAT_MB * 1024)); then
        fail_check "controller RSS grew while idle: $((CTL_RSS_SETTLED / 1024)) -> $((CTL_RSS_END / 1024)) MB (allowed +$FLAT_MB MB)"
    else
        say "- bounded: PASS (peak < 100 MB, no growth beyond +$FLAT_MB MB over the steady window)"
    fi
}

# ---------------------------------------------------------------- main

prepare
case $WHAT in
webhook) bench_webhook ;;
instructions) bench_instructions ;;
reconcile | startup) bench_reconcile ;;
size) bench_size ;;
load) bench_load ;;
all)
    bench_webhook
    bench_instructions
    bench_reconcile
    bench_load
    bench_size
    ;;
esac

log "summary: $SUMMARY"
cat "$SUMMARY" >&2
if ((${#FAILED[@]})); then
    die "${#FAILED[@]} check(s) failed: ${FAILED[*]}"
fi
