#!/usr/bin/env bash
# Prove the single-node cluster of WORKDIR (node/cluster.sh up WORKDIR, images imported
# with images/import.sh WORKDIR) with nothing but kubectl, curl and Flink itself:
#
#   node/smoke.sh WORKDIR
#
# (a) standalone session cluster (manifests/session-cluster.yaml, flink:1.20): JobManager +
#     TaskManager Deployments, ConfigMap conf, shared hostPath for savepoints. Checks: the
#     TaskManager resolves the JobManager Service by DNS name and registers; the test job
#     (jar taken from the image, uploaded through REST) reaches RUNNING with all vertices
#     RUNNING; a savepoint completes; the job is cancelled.
# (b) native Kubernetes mode: Flink's own CLI (from the cached PyPI distribution) deploys an
#     application cluster (service account `flink` + Role, manifests/native-rbac.yaml); its
#     JobManager creates its TaskManager pod through the API; the job reaches RUNNING.
# (c) (SMOKE_FLINK2=0 skips it) a Flink 2.3 application cluster (manifests/application-2.yaml,
#     flink:2.3, `standalone-job --job-classname ...` with the jar in usrlib/): job RUNNING.
# Everything runs in namespace flink-smoke, which is deleted at the end (also on failure).
# REST calls go through `kubectl port-forward` (loopback on the host).
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=smoke

(($# == 1)) || {
    print_header
    exit 2
}
W=$(realpath -m -- "$1")
[[ -f $W/env ]] || die "no $W/env: start the node first (tests/env/node/cluster.sh up $W)"
ADMIN_KUBECONFIG=$(sed -n 's/^ADMIN_KUBECONFIG=//p' "$W/env")
NS=flink-smoke
MANIFESTS=$ENV_DIR/node/manifests
DATA_DIR=$W/smoke-data
TMP=$W/smoke-tmp
ENTRY=org.apache.flink.operator.testjob.KeyedCounter
NATIVE_ID=smoke-native
FLINK_VERSION=1.20.5

k() { kubectl --kubeconfig="$ADMIN_KUBECONFIG" --request-timeout=20s -n "$NS" "$@"; }

PF_PID=
stop_port_forward() {
    if [[ -n $PF_PID ]]; then
        kill "$PF_PID" 2>/dev/null || true
        wait "$PF_PID" 2>/dev/null || true
        PF_PID=
    fi
}

# port_forward TARGET REMOTE_PORT: sets REST=http://127.0.0.1:LOCAL.
port_forward() {
    stop_port_forward
    local port
    port=$(free_port)
    kubectl --kubeconfig="$ADMIN_KUBECONFIG" -n "$NS" port-forward "$1" "$port:$2" \
        </dev/null >"$TMP/port-forward.log" 2>&1 &
    PF_PID=$!
    REST=http://127.0.0.1:$port
    wait_until 30 "port-forward to $1" curl -fs -o /dev/null --max-time 2 "$REST/config" ||
        { cat "$TMP/port-forward.log" >&2; return 1; }
}

rest() { curl -fsS --max-time 10 "$@"; }

cleanup_ns() {
    local t
    t=$(now)
    # Workloads first, or their controllers re-create the pods.
    k delete deployments --all --wait=false >/dev/null 2>&1 || true
    kubectl --kubeconfig="$ADMIN_KUBECONFIG" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
    wait_until 180 "namespace $NS deleted" ns_gone || true
    log "namespace $NS deleted in $(elapsed "$t")s"
}
ns_gone() { ! kubectl --kubeconfig="$ADMIN_KUBECONFIG" get namespace "$NS" -o name >/dev/null 2>&1; }

smoke_ok=
on_exit() {
    local rc=$?
    stop_port_forward
    if [[ -z $smoke_ok ]]; then
        warn "smoke failed (exit $rc); state of namespace $NS:"
        k get all -o wide >&2 2>/dev/null || true
        local p
        for p in $(k get pods -o name 2>/dev/null); do
            printf -- '----- %s (last 20 lines)\n' "$p" >&2
            k logs "$p" --all-containers --tail=20 >&2 2>/dev/null || true
        done
    fi
    cleanup_ns
    rm -rf "$DATA_DIR" "$TMP"
}

taskmanagers_registered() {
    [[ $(rest "$REST/overview" 2>/dev/null | jq -r '.taskmanagers') -ge "$1" ]]
}

# job_fully_running JID: job RUNNING and every vertex RUNNING.
job_fully_running() {
    rest "$REST/jobs/$1" 2>/dev/null |
        jq -e '.state == "RUNNING" and ([.vertices[].status] | all(. == "RUNNING"))' >/dev/null
}

first_job_id() { rest "$REST/jobs/overview" 2>/dev/null | jq -r '.jobs[0].jid // empty'; }

savepoint_done() {
    local st
    st=$(rest "$REST/jobs/$1/savepoints/$2" 2>/dev/null | jq -r '.status.id // empty')
    [[ $st == COMPLETED ]]
}

# ------------------------------------------------------------------- (a) session cluster
session_cluster() {
    local t t0 jm tm ip jar_id jid trig loc
    t0=$(now)
    sed "s|@DATA_DIR@|$DATA_DIR|g" "$MANIFESTS/session-cluster.yaml" | k apply -f - >/dev/null
    k rollout status deployment/flink-jobmanager --timeout=120s >/dev/null
    log "(a) JobManager ready after $(elapsed "$t0")s"
    port_forward svc/flink-jobmanager 8081
    wait_until 120 "TaskManager registered" taskmanagers_registered 1
    log "(a) TaskManager registered after $(elapsed "$t0")s"

    # The TaskManager found the JobManager by its Service's DNS name.
    tm=$(k get pods -l component=taskmanager -o jsonpath='{.items[0].metadata.name}')
    ip=$(k get svc flink-jobmanager -o jsonpath='{.spec.clusterIP}')
    # (Outputs are captured first: `| grep -q` would fail the pipeline under pipefail.)
    local out
    out=$(k exec "$tm" -- getent hosts flink-jobmanager)
    [[ $out == "$ip "* ]] || die "flink-jobmanager does not resolve to $ip in $tm: $out"
    out=$(k exec "$tm" -- getent hosts "flink-jobmanager.$NS.svc.cluster.local")
    [[ $out == "$ip "* ]] || die "flink-jobmanager.$NS.svc.cluster.local does not resolve to $ip in $tm: $out"
    out=$(k logs "$tm")
    [[ $out == *"Successful registration at resource manager pekko.tcp://flink@flink-jobmanager:6123"* ]] ||
        die "the TaskManager did not register at flink-jobmanager:6123 (by name)"
    log "(a) TaskManager resolves flink-jobmanager -> $ip"

    # The test job: the jar from the image itself, uploaded through REST.
    jm=$(k get pods -l component=jobmanager -o jsonpath='{.items[0].metadata.name}')
    k exec "$jm" -c jobmanager -- cat /opt/flink/usrlib/flink-test-job.jar >"$TMP/flink-test-job.jar"
    jar_id=$(rest -X POST -F "jarfile=@$TMP/flink-test-job.jar" "$REST/jars/upload" | jq -r '.filename' | sed 's|.*/||')
    [[ -n $jar_id ]] || die "jar upload failed"
    t=$(now)
    jid=$(rest -X POST -H 'Content-Type: application/json' \
        -d "{\"entryClass\":\"$ENTRY\",\"parallelism\":1,\"programArgs\":\"--checkpoint-interval 2000\"}" \
        "$REST/jars/$jar_id/run" | jq -r '.jobid')
    [[ -n $jid && $jid != null ]] || die "job submission failed"
    wait_until 90 "job $jid RUNNING (all vertices)" job_fully_running "$jid"
    log "(a) test job $jid RUNNING $(elapsed "$t")s after submission"

    t=$(now)
    trig=$(rest -X POST -H 'Content-Type: application/json' \
        -d '{"target-directory":"file:///flink-data/savepoints","cancel-job":false}' \
        "$REST/jobs/$jid/savepoints" | jq -r '.["request-id"]')
    wait_until 60 "savepoint $trig" savepoint_done "$jid" "$trig"
    loc=$(rest "$REST/jobs/$jid/savepoints/$trig" | jq -r '.operation.location')
    [[ $loc == file:/flink-data/savepoints/* || $loc == file:///flink-data/savepoints/* ]] ||
        die "unexpected savepoint location: $loc"
    [[ -f $DATA_DIR/savepoints/${loc##*/}/_metadata ]] || die "savepoint metadata not in $DATA_DIR"
    log "(a) savepoint completed in $(elapsed "$t")s: $loc"
    out=$(k logs "$tm")
    [[ $out =~ $'\n'\([0-9]+,[0-9]+\) ]] || warn "(a) no counts in the TaskManager's stdout yet"

    rest -X PATCH "$REST/jobs/$jid?mode=cancel" >/dev/null
    stop_port_forward
    t=$(now)
    k delete deployment flink-taskmanager flink-jobmanager --wait=false >/dev/null
    k delete service flink-jobmanager >/dev/null
    k delete configmap flink-config >/dev/null
    wait_until 120 "session cluster pods gone" no_pods_with app=flink-smoke
    log "(a) session cluster deleted in $(elapsed "$t")s; (a) took $(elapsed "$t0")s"
}
no_pods_with() { [[ -z $(k get pods -l "$1" -o name 2>/dev/null) ]]; }

# ------------------------------------------------------------------- (b) native mode
native_mode() {
    local t0 home tm jid
    t0=$(now)
    home=$(echo "$CACHE_DIR"/images/pypi/flink-$FLINK_VERSION/lib/python3*/site-packages/pyflink)
    [[ -x $home/bin/flink ]] || die "no Flink $FLINK_VERSION distribution in $home (run tests/env/images/build.sh flink-1.20)"
    k apply -f "$MANIFESTS/native-rbac.yaml" >/dev/null
    # The client's own log/conf stay under TMP (the cached distribution is not written to).
    mkdir -p "$TMP/flink-conf" "$TMP/flink-log"
    cp "$home/conf/config.yaml" "$home/conf/log4j-cli.properties" "$TMP/flink-conf/"
    FLINK_CONF_DIR=$TMP/flink-conf FLINK_LOG_DIR=$TMP/flink-log \
        "$home/bin/flink" run-application --target kubernetes-application \
        -Dkubernetes.config.file="$ADMIN_KUBECONFIG" \
        -Dkubernetes.namespace="$NS" \
        -Dkubernetes.cluster-id="$NATIVE_ID" \
        -Dkubernetes.container.image.ref=flink:1.20 \
        -Dkubernetes.container.image.pull-policy=Never \
        -Dkubernetes.service-account=flink \
        -Dkubernetes.rest-service.exposed.type=ClusterIP \
        -Dkubernetes.jobmanager.cpu=0.5 -Dkubernetes.taskmanager.cpu=0.5 \
        -Djobmanager.memory.process.size=768m -Dtaskmanager.memory.process.size=1024m \
        -Dtaskmanager.numberOfTaskSlots=1 \
        -Dexecution.checkpointing.interval=2s \
        -Dstate.checkpoints.dir=file:///tmp/checkpoints \
        -c "$ENTRY" local:///opt/flink/usrlib/flink-test-job.jar >"$TMP/native-cli.log" 2>&1 ||
        { tail -n 30 "$TMP/native-cli.log" >&2; die "flink run-application failed"; }
    log "(b) flink run-application returned after $(elapsed "$t0")s"
    k rollout status "deployment/$NATIVE_ID" --timeout=120s >/dev/null
    wait_until 120 "TaskManager pod created by the JobManager" tm_pod_running
    tm=$(k get pods -l "app=$NATIVE_ID,component=taskmanager" -o jsonpath='{.items[0].metadata.name}')
    log "(b) JobManager created TaskManager pod $tm; running after $(elapsed "$t0")s"
    port_forward "svc/$NATIVE_ID-rest" 8081
    wait_until 60 "a job" first_job_id >/dev/null
    jid=$(first_job_id)
    wait_until 90 "native job RUNNING (all vertices)" job_fully_running "$jid"
    log "(b) application job $jid RUNNING $(elapsed "$t0")s after the CLI call"
    stop_port_forward
    local t
    t=$(now)
    k delete deployment "$NATIVE_ID" >/dev/null
    wait_until 120 "native cluster pods gone" no_pods_with "app=$NATIVE_ID"
    log "(b) native cluster deleted (owner references) in $(elapsed "$t")s; (b) took $(elapsed "$t0")s"
}
tm_pod_running() {
    [[ $(k get pods -l "app=$NATIVE_ID,component=taskmanager" -o jsonpath='{.items[*].status.phase}' 2>/dev/null) == *Running* ]]
}

# ------------------------------------------------------------------- (c) Flink 2.3 application cluster
application_2() {
    local t0 jid t
    t0=$(now)
    sed "s|@DATA_DIR@|$DATA_DIR|g" "$MANIFESTS/application-2.yaml" | k apply -f - >/dev/null
    k rollout status deployment/flink2-jobmanager --timeout=120s >/dev/null
    port_forward svc/flink2-jobmanager 8081
    wait_until 60 "a job" first_job_id >/dev/null
    jid=$(first_job_id)
    wait_until 120 "Flink 2.3 job RUNNING (all vertices)" job_fully_running "$jid"
    log "(c) Flink 2.3 application job $jid RUNNING $(elapsed "$t0")s after apply"
    stop_port_forward
    t=$(now)
    k delete deployment flink2-taskmanager flink2-jobmanager --wait=false >/dev/null
    k delete service flink2-jobmanager >/dev/null
    k delete configmap flink2-config >/dev/null
    wait_until 120 "Flink 2.3 pods gone" no_pods_with app=flink2-smoke
    log "(c) deleted in $(elapsed "$t")s; (c) took $(elapsed "$t0")s"
}

# ------------------------------------------------------------------- main
start=$(now)
rm -rf "$TMP" "$DATA_DIR"
mkdir -p "$TMP"
trap on_exit EXIT
if ! ns_gone; then
    warn "namespace $NS exists (an earlier run?); deleting it first"
    cleanup_ns
fi
kubectl --kubeconfig="$ADMIN_KUBECONFIG" create namespace "$NS" >/dev/null
wait_until 30 "default service account in $NS" k get serviceaccount default -o name >/dev/null
session_cluster
native_mode
if [[ ${SMOKE_FLINK2:-1} == 1 ]]; then
    application_2
fi
smoke_ok=1
log "smoke passed in $(elapsed "$start")s"
