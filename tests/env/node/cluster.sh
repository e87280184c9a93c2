#!/usr/bin/env bash
# A real single-node Kubernetes cluster (v1.20.2) whose pods actually run, in its own
# network namespace, with no registry and no traffic off this machine.
#
#   node/cluster.sh up WORKDIR       # start; returns once the node is Ready and cluster DNS answers
#   node/cluster.sh down WORKDIR     # stop everything, restore the host (idempotent); keeps logs/ and
#                                    # the containerd content store (imported images)
#   node/cluster.sh status WORKDIR   # exit 0 if every component runs and the node is Ready
#   node/cluster.sh check            # exit 0 if this machine can run the node at all (root, network
#                                    # namespaces, veth, overlayfs, cgroups); else prints why, exit 1
#
# Network: namespace $NODE_NETNS (default flink-node) with a veth pair, host end
# 10.233.255.1/30 (fo-host), node end 10.233.255.2/30 (fo-node); no default route inside,
# only a route for the service CIDR 10.96.0.0/24. Pods: bridge fo-cni0, 10.244.0.0/24,
# no masquerading. Everything below is started with `nsenter --net=/run/netns/$NODE_NETNS`:
# etcd (127.0.0.1 inside), kube-apiserver (NODE_IP:6443; Node,RBAC; NodeRestriction),
# kube-controller-manager, kube-scheduler, containerd (config/root/state/socket under
# WORKDIR/containerd), kubelet, kube-proxy (iptables) and dnsmasq (cluster DNS at
# NODE_IP:53, Service kube-system/kube-dns = 10.96.0.10) fed with the Services by a
# loop on the host (`cluster.sh _dns-feeder`).
#
# `up` writes WORKDIR/env (KEY=VALUE, written last): ADMIN_KUBECONFIG OPERATOR_KUBECONFIG
# APISERVER_URL ADMIN_TOKEN OPERATOR_TOKEN OPERATOR_USER CA_FILE NODE_IP NODE_NAME NETNS
# CONTAINERD_SOCKET CLUSTER_DNS SERVICE_CIDR POD_CIDR LOG_DIR, and WORKDIR/*.pid.
# The host's kubectl reaches the apiserver at https://NODE_IP:6443.
#
# One such cluster per machine (fixed host paths: /var/log/pods, the netns name,
# the kubepods cgroups). The kubelet changes host sysctls (kernel.panic,
# kernel.panic_on_oops, vm.overcommit_memory, ...): `up` saves them, `down` restores them.
# Images: tests/env/images/import.sh WORKDIR after `up` (kept across down/up).
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
LOG_TAG=node

NETNS=${NODE_NETNS:-flink-node}
NODE_NAME=${NODE_NAME:-flink-node}
HOST_IF=fo-host
NODE_IF=fo-node
HOST_IP=10.233.255.1
NODE_IP=10.233.255.2
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
CLUSTER_DNS=10.96.0.10
POD_CIDR=10.244.0.0/24
CNI_BRIDGE=fo-cni0
API_PORT=6443
PAUSE_IMAGE=localhost/flink-operator/pause:1
READY_TIMEOUT=${NODE_READY_TIMEOUT:-120}
STOP_TIMEOUT=${NODE_STOP_TIMEOUT:-20}
POD_DELETE_TIMEOUT=${NODE_POD_DELETE_TIMEOUT:-150}
# Grace period `down` gives the pods it deletes (nothing is preserved at teardown).
POD_GRACE=${NODE_POD_GRACE:-5}
SAVED_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
OWNER_FILE=/run/flink-operator-node.owner

usage() {
    print_header
    exit 2
}

(($# == 2)) || [[ $# == 3 && $1 == _dns-feeder ]] || [[ $# == 1 && $1 == check ]] || usage
cmd=$1
W=$(realpath -m -- "${2:-/nonexistent}")
LOG_DIR=$W/logs
PKI=$W/pki
KC=$W/kubeconfigs
CTRD=$W/containerd
SOCK=$CTRD/containerd.sock
DNS_DIR=$W/dns
NS_PATH=/run/netns/$NETNS
IN_NS=(nsenter "--net=$NS_PATH" --)

# component table: NAME PIDFILE-BASENAME IDENTIFYING-ARG (an argument only that process has)
# Start order; `down` stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy dnsmasq dns-feeder)
comp_arg() {
    case $1 in
    etcd) echo "--data-dir=$W/etcd-data" ;;
    kube-apiserver) echo "--token-auth-file=$W/tokens.csv" ;;
    kube-controller-manager) echo "--kubeconfig=$KC/controller-manager.kubeconfig" ;;
    kube-scheduler) echo "--kubeconfig=$KC/scheduler.kubeconfig" ;;
    containerd) echo "--config=$CTRD/config.toml" ;;
    kubelet) echo "--config=$W/kubelet/config.yaml" ;;
    kube-proxy) echo "--config=$W/kube-proxy.yaml" ;;
    dnsmasq) echo "--addn-hosts=$DNS_DIR/hosts" ;;
    dns-feeder) echo "$DNS_DIR" ;;
    esac
}

read_pid() {
    if [[ -f $1 ]]; then
        tr -dc '0-9' <"$1"
    fi
}

comp_pids() {
    local name=$1 arg pid
    arg=$(comp_arg "$name")
    pid=$(read_pid "$W/$name.pid")
    if [[ -n $pid ]] && pid_has_arg "$pid" "$arg"; then
        echo "$pid"
    fi
    pids_with_arg "$arg" | { grep -vx "${pid:-none}" || true; }
}

stop_comp() {
    local name=$1 timeout=${2:-$STOP_TIMEOUT} pid pids
    mapfile -t pids < <(comp_pids "$name")
    for pid in "${pids[@]}"; do
        log "stopping $name (pid $pid)"
        stop_pid "$pid" "$name" "$timeout"
    done
    rm -f "$W/$name.pid"
}

STARTED=()
# start_comp NAME CMD...: start CMD inside the netns, detached from our stdio.
start_comp() {
    local name=$1 pid
    shift
    "${IN_NS[@]}" "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
    pid=$!
    echo "$pid" >"$W/$name.pid"
    STARTED+=("$name")
    log "started $name (pid $pid)"
}

k() { kubectl --kubeconfig="$KC/admin.kubeconfig" --request-timeout=10s "$@"; }

# --------------------------------------------------------------------- pki, tokens, kubeconfigs

gen_pki() {
    rm -rf "$PKI"
    pki_init "$PKI" flink-operator-node-ca apiserver sa kubelet-client
    pki_sign "$PKI" apiserver "/CN=kube-apiserver" serverAuth \
        "IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster,DNS:kubernetes.default.svc.cluster.local"
    # The apiserver's client certificate towards the kubelet (logs, exec, port-forward).
    pki_sign "$PKI" kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth ""
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

declare -A TOKENS
gen_tokens() {
    local u
    for u in admin operator node proxy cm sched; do
        TOKENS[$u]=$(openssl rand -hex 32)
    done
    (
        umask 077
        {
            printf '%s,admin,admin,"system:masters"\n' "${TOKENS[admin]}"
            printf '%s,flink-operator,flink-operator,"flink-operators"\n' "${TOKENS[operator]}"
            printf '%s,system:node:%s,node:%s,"system:nodes"\n' "${TOKENS[node]}" "$NODE_NAME" "$NODE_NAME"
            printf '%s,system:kube-proxy,kube-proxy\n' "${TOKENS[proxy]}"
            # Both run with cluster-admin rights (they use one identity for all controllers).
            printf '%s,system:kube-controller-manager,kube-controller-manager,"system:masters"\n' "${TOKENS[cm]}"
            printf '%s,system:kube-scheduler,kube-scheduler,"system:masters"\n' "${TOKENS[sched]}"
        } >"$W/tokens.csv"
    )
}

# write_kubeconfig FILE USER TOKEN SERVER
write_kubeconfig() {
    local f=$1 user=$2 token=$3 server=$4
    umask 077
    cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $server
    certificate-authority: $PKI/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user
  context:
    cluster: local
    user: $user
    namespace: default
current-context: $user
EOF
    umask 022
}

write_kubeconfigs() {
    mkdir -p "$KC"
    local url=https://$NODE_IP:$API_PORT local_url=https://127.0.0.1:$API_PORT
    write_kubeconfig "$KC/admin.kubeconfig" admin "${TOKENS[admin]}" "$url"
    write_kubeconfig "$KC/operator.kubeconfig" flink-operator "${TOKENS[operator]}" "$url"
    write_kubeconfig "$KC/kubelet.kubeconfig" "system:node:$NODE_NAME" "${TOKENS[node]}" "$local_url"
    write_kubeconfig "$KC/kube-proxy.kubeconfig" system:kube-proxy "${TOKENS[proxy]}" "$local_url"
    write_kubeconfig "$KC/controller-manager.kubeconfig" system:kube-controller-manager "${TOKENS[cm]}" "$local_url"
    write_kubeconfig "$KC/scheduler.kubeconfig" system:kube-scheduler "${TOKENS[sched]}" "$local_url"
}

# --------------------------------------------------------------------- host state

save_host_state() {
    local s
    if [[ ! -f $W/host-state/sysctl.saved ]]; then
        mkdir -p "$W/host-state"
        for s in "${SAVED_SYSCTLS[@]}"; do
            if [[ -e /proc/sys/${s//.//} ]]; then
                echo "$s=$(sysctl -n "$s")"
            fi
        done >"$W/host-state/sysctl.saved.tmp"
        mv -f "$W/host-state/sysctl.saved.tmp" "$W/host-state/sysctl.saved"
        # Host paths that appear because of us; removed on `down` if they did not exist.
        local p
        for p in /run/netns /var/log/pods /var/log/containers /run/containerd /var/lib/cni; do
            [[ -e $p ]] && echo "$p"
        done >"$W/host-state/existing-paths"
        ls /run/netns 2>/dev/null >"$W/host-state/existing-netns" || true
        if mountpoint -q /run/netns 2>/dev/null; then
            echo yes >"$W/host-state/run-netns-was-mount"
        else
            echo no >"$W/host-state/run-netns-was-mount"
        fi
    fi
}

restore_host_state() {
    local f=$W/host-state/sysctl.saved line key val cur
    if [[ -f $f ]]; then
        while IFS= read -r line; do
            key=${line%%=*}
            val=${line#*=}
            cur=$(sysctl -n "$key" 2>/dev/null || true)
            if [[ $cur != "$val" ]]; then
                sysctl -q -w "$key=$val" >/dev/null && log "restored sysctl $key=$val (was $cur)"
            fi
        done <"$f"
    fi
}

# --------------------------------------------------------------------- network

setup_netns() {
    ip netns add "$NETNS"
    ip link add "$HOST_IF" type veth peer name "$NODE_IF"
    ip link set "$NODE_IF" netns "$NETNS"
    ip addr add "$HOST_IP/30" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    "${IN_NS[@]}" ip link set lo up
    "${IN_NS[@]}" ip addr add "$NODE_IP/30" dev "$NODE_IF"
    "${IN_NS[@]}" ip link set "$NODE_IF" up
    # No default route: nothing inside can reach beyond this machine. Node processes
    # reach ClusterIPs through this route (kube-proxy DNATs them in OUTPUT).
    "${IN_NS[@]}" ip route add "$SERVICE_CIDR" dev "$NODE_IF" src "$NODE_IP"
    # Namespaced sysctls (they only affect the node's namespace).
    "${IN_NS[@]}" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
    if "${IN_NS[@]}" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
        "${IN_NS[@]}" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 >/dev/null
    fi
}

teardown_netns() {
    # Pod network namespaces that containerd's CRI created in /run/netns (cni-*) and
    # that a pod teardown left behind (none after a clean pod deletion).
    local n
    for n in /run/netns/cni-*; do
        [[ -e $n ]] || continue
        if [[ -f $W/host-state/existing-netns ]] && grep -qxF "${n##*/}" "$W/host-state/existing-netns"; then
            continue
        fi
        ip netns delete "${n##*/}" 2>/dev/null || { umount "$n" 2>/dev/null; rm -f "$n"; }
        log "deleted leftover pod network namespace ${n##*/}"
    done
    if [[ -e $NS_PATH ]]; then
        ip netns delete "$NETNS" 2>/dev/null || { umount "$NS_PATH" 2>/dev/null; rm -f "$NS_PATH"; }
        log "deleted network namespace $NETNS"
    fi
    ip link delete "$HOST_IF" 2>/dev/null || true
    # `ip netns add` turned /run/netns into a bind mount; undo that when it was not one before.
    if [[ -f $W/host-state/run-netns-was-mount && $(<"$W/host-state/run-netns-was-mount") == no ]] &&
        mountpoint -q /run/netns && [[ -z $(ls -A /run/netns 2>/dev/null) ]]; then
        umount /run/netns 2>/dev/null || umount -l /run/netns || true
    fi
    if [[ -f $W/host-state/existing-paths ]] && ! grep -qx /run/netns "$W/host-state/existing-paths" &&
        ! mountpoint -q /run/netns; then
        rmdir /run/netns 2>/dev/null || true
    fi
}

# --------------------------------------------------------------------- configs

write_configs() {
    mkdir -p "$CTRD/root" "$CTRD/state" "$CTRD/opt" "$W/cni/net.d" "$W/cni/ipam" "$W/kubelet" "$DNS_DIR"
    cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$CTRD/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni/net.d"
    max_conf_num = 1
EOF
    cat >"$W/cni/net.d/10-flink-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "flink-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$W/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    echo "nameserver $NODE_IP" >"$W/resolv.conf"
    cat >"$W/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
resolvConf: $W/resolv.conf
# Local images can never be pulled back: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
rotateCertificates: false
serializeImagePulls: false
maxPods: 60
EOF
    cat >"$W/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: $KC/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
oomScoreAdj: 0
# No global conntrack sysctls from inside a network namespace.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  syncPeriod: 10s
  minSyncPeriod: 0s
EOF
    : >"$DNS_DIR/hosts"
}

# --------------------------------------------------------------------- DNS feeder

# _dns-feeder WORKDIR DNS_DIR: every second, the Services/Endpoints as a hosts file for
# dnsmasq; SIGHUP on change. Runs on the host (kubectl to NODE_IP).
dns_feeder() {
    local hosts=$DNS_DIR/hosts new pid
    # shellcheck disable=SC2016 # a jq program, not shell
    local jq_prog='
      (.items | map(select(.kind == "Endpoints")) | map({key: "\(.metadata.namespace)/\(.metadata.name)", value: .}) | from_entries) as $eps
      | .items[] | select(.kind == "Service") | .metadata as $m
      | ("\($m.name).\($m.namespace).svc.cluster.local \($m.name).\($m.namespace).svc \($m.name).\($m.namespace)") as $names
      | if (.spec.clusterIP // "None") != "None" then "\(.spec.clusterIP) \($names)"
        else ($eps["\($m.namespace)/\($m.name)"].subsets // [])[] | (.addresses // [])[]
             | "\(.ip) \($names)", (if .hostname then "\(.ip) \(.hostname).\($m.name).\($m.namespace).svc.cluster.local \(.hostname).\($m.name).\($m.namespace).svc" else empty end)
        end'
    while :; do
        if new=$(kubectl --kubeconfig="$KC/admin.kubeconfig" --request-timeout=5s get services,endpoints -A -o json 2>/dev/null |
            jq -r "$jq_prog" 2>/dev/null | sort -u) && [[ -n $new ]]; then
            if [[ $new != "$(<"$hosts")" ]]; then
                printf '%s\n' "$new" >"$hosts.tmp"
                mv -f "$hosts.tmp" "$hosts"
                pid=$(read_pid "$W/dnsmasq.pid")
                [[ -n $pid ]] && kill -HUP "$pid" 2>/dev/null
            fi
        fi
        sleep 1
    done
}

# --------------------------------------------------------------------- up

up_ok=
on_up_exit() {
    local rc=$?
    [[ -n $up_ok ]] && return 0
    local f
    for f in "$LOG_DIR"/*.log; do
        [[ -s $f ]] || continue
        printf '\n----- last 15 lines of %s -----\n' "$f" >&2
        tail -n 15 "$f" >&2
    done
    warn "node up failed (exit $rc); tearing down; logs are in $LOG_DIR"
    cmd_down_impl quick || true
}

node_ready() {
    [[ $(k get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# dns_answers NAME IP: the cluster DNS (through its ClusterIP, i.e. kube-proxy) resolves NAME to IP.
dns_answers() {
    local out
    out=$("${IN_NS[@]}" busybox nslookup "$1" "$CLUSTER_DNS" 2>/dev/null) || return 1
    [[ $out == *"Address: $2"* || $out == *"Address 1: $2"* ]]
}

all_alive() {
    local c pid
    for c in "${STARTED[@]}"; do
        pid=$(read_pid "$W/$c.pid")
        if ! pid_alive "$pid"; then
            warn "$c exited during start-up (log: $LOG_DIR/$c.log)"
            return 1
        fi
    done
}

# wait_for TIMEOUT WHAT CMD...: like wait_until, but fails fast when a component died.
wait_for() {
    local timeout=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s%N) + timeout * 1000000000))
    while :; do
        "$@" && return 0
        all_alive || return 1
        if (($(date +%s%N) >= deadline)); then
            warn "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        sleep 0.3
    done
}

api_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer ${TOKENS[admin]}" "https://$NODE_IP:$API_PORT/readyz" 2>/dev/null) == 200 ]]
}

cmd_up() {
    local start tool c
    start=$(now)
    [[ $(id -u) == 0 ]] || die "needs root (network namespace, containerd, kubelet)"
    for tool in kubectl openssl curl jq nsenter containerd runc ctr iptables dnsmasq busybox; do
        command -v "$tool" >/dev/null || die "$tool not found; run tests/env/install.sh --node"
    done
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] ||
        die "CNI plugins missing in /usr/lib/cni; run tests/env/install.sh --node"
    ETCD=$(etcd_bin)
    for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
        [[ -x $(kube_bin "$c") ]] || die "$c not found ($(kube_bin "$c")); run tests/env/install.sh --node"
    done

    mkdir -p "$W" "$LOG_DIR"
    for c in "${COMPONENTS[@]}"; do
        [[ -z $(comp_pids "$c") ]] || die "$c of $W is still running (run: $0 down $W)"
    done
    if [[ -e $NS_PATH ]]; then
        die "network namespace $NETNS exists: another node cluster runs on this machine ($(cat "$OWNER_FILE" 2>/dev/null || echo unknown owner)); only one at a time"
    fi
    echo "$W" >"$OWNER_FILE"
    rm -f "$W/env"
    trap on_up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    local f
    for f in "$LOG_DIR"/*.log; do
        [[ -f $f ]] && : >"$f"
    done
    save_host_state
    gen_tokens
    write_kubeconfigs
    gen_pki
    write_configs
    setup_netns
    rm -rf "$W/etcd-data"

    start_comp etcd "$ETCD" --name=node --data-dir="$W/etcd-data" \
        --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=node=http://127.0.0.1:2380 --listen-metrics-urls= \
        --heartbeat-interval=50 --election-timeout=500 --logger=zap --log-outputs=stderr
    start_comp kube-apiserver "$(kube_bin kube-apiserver)" \
        --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
        --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" --token-auth-file="$W/tokens.csv" \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --allow-privileged=true --profiling=false
    # containerd needs no apiserver: start it meanwhile.
    start_comp containerd containerd --config="$CTRD/config.toml"
    start_comp dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --user=nobody --group=nogroup \
        --listen-address="$NODE_IP" --bind-interfaces --port=53 --no-resolv --no-poll --no-hosts \
        --addn-hosts="$DNS_DIR/hosts" --local=/cluster.local/ --local=/in-addr.arpa/ --local=/#/ --domain-needed \
        --bogus-priv --local-ttl=5 --log-facility=-
    wait_for 60 "kube-apiserver /readyz" api_ready || exit 1
    log "kube-apiserver ready after $(elapsed "$start")s"

    start_comp kube-controller-manager "$(kube_bin kube-controller-manager)" \
        --kubeconfig="$KC/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$KC/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$KC/controller-manager.kubeconfig" \
        --leader-elect=false --port=0 --bind-address=127.0.0.1 --secure-port=10257 \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --use-service-account-credentials=false --allocate-node-cidrs=false --profiling=false
    start_comp kube-scheduler "$(kube_bin kube-scheduler)" \
        --kubeconfig="$KC/scheduler.kubeconfig" \
        --authentication-kubeconfig="$KC/scheduler.kubeconfig" \
        --authorization-kubeconfig="$KC/scheduler.kubeconfig" \
        --leader-elect=false --port=0 --bind-address=127.0.0.1 --secure-port=10259 --profiling=false
    wait_for 30 "containerd socket" test -S "$SOCK" || exit 1
    start_comp kubelet "$(kube_bin kubelet)" \
        --config="$W/kubelet/config.yaml" --kubeconfig="$KC/kubelet.kubeconfig" \
        --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
        --pod-infra-container-image="$PAUSE_IMAGE" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
        --root-dir="$W/kubelet" --cert-dir="$W/kubelet/pki" \
        --volume-plugin-dir="$W/kubelet/volume-plugins" \
        --runtime-request-timeout=5m
    start_comp kube-proxy "$(kube_bin kube-proxy)" --config="$W/kube-proxy.yaml"

    # The pause image must be there before the first pod sandbox.
    "$ENV_DIR/images/import.sh" "$W" pause >>"$LOG_DIR/import.log" 2>&1 ||
        { tail -n 20 "$LOG_DIR/import.log" >&2; die "importing the pause image failed"; }

    # Cluster DNS: Service kube-system/kube-dns at the clusterDNS IP -> dnsmasq on the node IP.
    # --local=/cluster.local/ is required (unknown cluster names answer NXDOMAIN, not REFUSED,
    # so glibc keeps walking the search list); --local=/#/ does the same for every other name
    # (no upstream exists: `name.ns` AAAA queries and external names get NODATA/NXDOMAIN).
    wait_for 30 "namespace kube-system" k get namespace kube-system -o name >/dev/null 2>&1 || exit 1
    k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $CLUSTER_DNS
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
    "$0" _dns-feeder "$W" "$DNS_DIR" </dev/null >>"$LOG_DIR/dns-feeder.log" 2>&1 &
    echo "$!" >"$W/dns-feeder.pid"
    STARTED+=(dns-feeder)

    wait_for "$READY_TIMEOUT" "node $NODE_NAME Ready" node_ready || exit 1
    log "node $NODE_NAME Ready after $(elapsed "$start")s"
    wait_for 60 "cluster DNS: kubernetes.default.svc.cluster.local -> $SERVICE_IP" \
        dns_answers kubernetes.default.svc.cluster.local "$SERVICE_IP" || exit 1
    wait_for 60 "default service account" k get serviceaccount default -o name >/dev/null 2>&1 || exit 1

    {
        echo "APISERVER_URL=https://$NODE_IP:$API_PORT"
        echo "ADMIN_KUBECONFIG=$KC/admin.kubeconfig"
        echo "OPERATOR_KUBECONFIG=$KC/operator.kubeconfig"
        echo "OPERATOR_USER=flink-operator"
        echo "ADMIN_TOKEN=${TOKENS[admin]}"
        echo "OPERATOR_TOKEN=${TOKENS[operator]}"
        echo "CA_FILE=$PKI/ca.crt"
        echo "NODE_NAME=$NODE_NAME"
        echo "NODE_IP=$NODE_IP"
        echo "NETNS=$NETNS"
        echo "CONTAINERD_SOCKET=$SOCK"
        echo "CLUSTER_DNS=$CLUSTER_DNS"
        echo "SERVICE_CIDR=$SERVICE_CIDR"
        echo "POD_CIDR=$POD_CIDR"
        echo "LOG_DIR=$LOG_DIR"
    } >"$W/env.tmp"
    chmod 600 "$W/env.tmp"
    mv -f "$W/env.tmp" "$W/env"
    up_ok=1
    log "node cluster up in $(elapsed "$start")s (env: $W/env; export KUBECONFIG=$KC/admin.kubeconfig)"
}

# --------------------------------------------------------------------- down

# delete_workloads: controllers first (else they re-create pods), then pods; wait for them.
# An in-cluster operator may re-create workloads while its own pod terminates (a FlinkDeployment's
# JobManager Deployment): the deletes are repeated every few seconds until no pod is left.
WORKLOAD_KINDS=deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps,jobs.batch,cronjobs.batch
delete_workloads() {
    api_ready_any || return 0
    local t n
    t=$(now)
    n=$(k get pods -A -o name 2>/dev/null | wc -l)
    ((n > 0)) || return 0
    log "deleting workloads and $n pod(s) (grace ${POD_GRACE}s)"
    NEXT_DELETE=0
    if ! wait_until "$POD_DELETE_TIMEOUT" "all pods deleted" pods_gone_deleting_again; then
        warn "force-deleting the remaining pods"
        k delete pods --all --all-namespaces --force --grace-period=0 >/dev/null 2>&1 || true
    fi
    log "pods deleted after $(elapsed "$t")s"
}
pods_gone_deleting_again() {
    no_pods && return 0
    if (($(date +%s) >= NEXT_DELETE)); then
        k delete "$WORKLOAD_KINDS" --all --all-namespaces --wait=false >/dev/null 2>&1 || true
        k delete pods --all --all-namespaces --grace-period="$POD_GRACE" --wait=false >/dev/null 2>&1 || true
        NEXT_DELETE=$(($(date +%s) + 5))
    fi
    return 1
}
no_pods() { [[ -z $(k get pods -A -o name 2>/dev/null) ]]; }
api_ready_any() {
    [[ -f $KC/admin.kubeconfig && -e $NS_PATH ]] || return 1
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(awk '/token:/ {print $2}' "$KC/admin.kubeconfig")" \
        "https://$NODE_IP:$API_PORT/readyz" 2>/dev/null) == 200 ]] && [[ -n $(comp_pids kubelet) ]]
}

# kill_containers: what containerd's shims of this WORKDIR still run (containers and shims).
kill_containers() {
    local shim pids=() child
    mapfile -t pids < <(pids_with_arg "$SOCK")
    for shim in "${pids[@]}"; do
        for child in $(pgrep -P "$shim" 2>/dev/null); do
            kill -KILL "$child" 2>/dev/null || true
        done
    done
    for shim in "${pids[@]}"; do
        stop_pid "$shim" containerd-shim 5
    done
}

unmount_under() {
    local m tries
    for tries in 1 2 3; do
        mapfile -t mounts < <(awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
        ((${#mounts[@]})) || return 0
        for m in "${mounts[@]}"; do
            m=$(printf '%b' "$m")
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    done
}

remove_kubepods_cgroups() {
    local d
    for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

cmd_down_impl() {
    local quick=${1:-} start c
    start=$(now)
    [[ -n $quick ]] || delete_workloads
    for c in dns-feeder kube-proxy kubelet kube-scheduler kube-controller-manager; do
        stop_comp "$c"
    done
    kill_containers
    stop_comp containerd
    kill_containers
    for c in dnsmasq kube-apiserver etcd; do
        stop_comp "$c"
    done
    unmount_under "$W"
    remove_kubepods_cgroups
    restore_host_state
    teardown_netns
    # Host paths that only exist because of this cluster.
    local p existing=
    [[ -f $W/host-state/existing-paths ]] && existing=$(<"$W/host-state/existing-paths")
    for p in /var/log/pods /var/log/containers /run/containerd /var/lib/cni; do
        if [[ -e $p && $'\n'$existing$'\n' != *$'\n'$p$'\n'* && -f $W/host-state/existing-paths ]]; then
            rm -rf "$p"
        fi
    done
    rm -rf "$W/etcd-data" "$W/kubelet" "$CTRD/state" "$CTRD/runc" "$W/cni/ipam" "$W/host-state"
    rm -f "$W/env" "$W/env.tmp"
    if [[ -f $OWNER_FILE && $(<"$OWNER_FILE") == "$W" ]]; then
        rm -f "$OWNER_FILE"
    fi
    log "node cluster in $W is down in $(elapsed "$start")s (logs kept in $LOG_DIR)"
}

cmd_down() {
    [[ $(id -u) == 0 ]] || die "needs root"
    cmd_down_impl
}

# --------------------------------------------------------------------- status

cmd_status() {
    local c pid rc=0
    for c in "${COMPONENTS[@]}"; do
        pid=$(comp_pids "$c" | tr '\n' ' ')
        if [[ -n $pid ]]; then
            printf '%-24s running (pid %s)\n' "$c:" "${pid% }"
        else
            printf '%-24s not running\n' "$c:"
            rc=1
        fi
    done
    if [[ -e $NS_PATH ]]; then echo "netns:                   $NETNS"; else echo "netns:                   absent"; rc=1; fi
    if [[ -f $W/env ]] && node_ready; then
        echo "node:                    $NODE_NAME Ready"
    else
        echo "node:                    not ready"
        rc=1
    fi
    return "$rc"
}

# --------------------------------------------------------------------- check

# What the node needs from the kernel and the privileges of this machine, probed without leaving
# anything behind (throw-away namespaces). Packages and binaries are install.sh --node's business.
check_fail() {
    echo "node cluster cannot run on this machine: $*" >&2
    exit 1
}
cmd_check() {
    local probe
    [[ $(id -u) == 0 ]] || check_fail "needs root (network namespaces, mounts, cgroups)"
    command -v unshare >/dev/null || check_fail "unshare (util-linux) not found"
    unshare --net true 2>/dev/null || check_fail "cannot create a network namespace (unshare --net failed)"
    if command -v ip >/dev/null; then
        unshare --net ip link add fo-probe0 type veth peer name fo-probe1 2>/dev/null ||
            check_fail "cannot create a veth pair in a network namespace"
    fi
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
    grep -qw overlay /proc/filesystems || check_fail "no overlayfs in this kernel (containerd's snapshotter)"
    probe=$(mktemp -d)
    mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    # shellcheck disable=SC2016 # $1 expands in the inner shell
    if ! unshare --mount sh -c 'mount -t overlay overlay -o "lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work" "$1/merged"' \
        sh "$probe" 2>/dev/null; then
        rm -rf "$probe"
        check_fail "cannot mount overlayfs"
    fi
    rm -rf "$probe"
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        probe=/sys/fs/cgroup/flink-node-probe.$$
    else
        probe=/sys/fs/cgroup/memory/flink-node-probe.$$
    fi
    mkdir "$probe" 2>/dev/null || check_fail "cannot create cgroups ($probe)"
    rmdir "$probe"
    echo "node cluster can run on this machine (root, netns, veth, overlayfs, cgroups)"
}

case $cmd in
check) cmd_check ;;
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
_dns-feeder) dns_feeder ;;
*) usage ;;
esac
