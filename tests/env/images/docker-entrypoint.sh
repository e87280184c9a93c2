#!/usr/bin/env bash
# Entrypoint of the locally built flink images (tests/env/images/build.sh), modelled
# on the official image's docker-entrypoint.sh:
#   jobmanager [ARGS]                 bin/jobmanager.sh start-foreground ARGS
#   standalone-job [ARGS]             bin/standalone-job.sh start-foreground ARGS
#   taskmanager [ARGS]                bin/taskmanager.sh start-foreground ARGS
#   history-server [ARGS]             bin/historyserver.sh start-foreground ARGS
#   help                              this text
#   anything else                     exec "$@" (e.g. Flink's native Kubernetes mode:
#                                     bash -c "kubernetes-jobmanager.sh kubernetes-application")
# Started as root, it drops to user flink (9999) with setpriv. The configuration
# (conf/config.yaml, or conf/flink-conf.yaml when present) is only edited when it is
# writable: a read-only conf mounted from a ConfigMap is used as it is.
# Environment (as in the official image): JOB_MANAGER_RPC_ADDRESS,
# TASK_MANAGER_NUMBER_OF_TASK_SLOTS, FLINK_PROPERTIES (appended to the conf).
set -e

FLINK_HOME=${FLINK_HOME:-/opt/flink}
CONF_DIR=${FLINK_CONF_DIR:-$FLINK_HOME/conf}
if [ -f "$CONF_DIR/flink-conf.yaml" ]; then
    CONF_FILE=$CONF_DIR/flink-conf.yaml
else
    CONF_FILE=$CONF_DIR/config.yaml
fi

drop_privs_cmd() {
    if [ "$(id -u)" != 0 ]; then
        echo
    else
        echo setpriv --reuid=flink --regid=flink --init-groups
    fi
}

conf_writable() {
    [ -w "$CONF_DIR" ] && { [ ! -e "$CONF_FILE" ] || [ -w "$CONF_FILE" ]; } &&
        ! grep -qs " $CONF_DIR ro[, ]\| $CONF_DIR [^ ]* ro[, ]" /proc/mounts
}

# set_config_option KEY VALUE: replace a flat `KEY: ...` line or append one.
set_config_option() {
    local option=$1 value=$2 escaped
    escaped=$(printf '%s' "$option" | sed -e 's/\./\\./g')
    if grep -qE "^${escaped}:" "$CONF_FILE" 2>/dev/null; then
        sed -i -e "s|^${escaped}:.*|${option}: ${value}|" "$CONF_FILE"
    else
        echo "${option}: ${value}" >>"$CONF_FILE"
    fi
}

prepare_configuration() {
    conf_writable || return 0
    set_config_option jobmanager.rpc.address "${JOB_MANAGER_RPC_ADDRESS:-$(hostname -f 2>/dev/null || hostname)}"
    set_config_option blob.server.port 6124
    set_config_option query.server.port 6125
    if [ -n "${TASK_MANAGER_NUMBER_OF_TASK_SLOTS:-}" ]; then
        set_config_option taskmanager.numberOfTaskSlots "$TASK_MANAGER_NUMBER_OF_TASK_SLOTS"
    fi
    if [ -n "${FLINK_PROPERTIES:-}" ]; then
        echo "$FLINK_PROPERTIES" >>"$CONF_FILE"
    fi
}

if [ "${1:-help}" = help ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

case "$1" in
jobmanager | standalone-job | taskmanager | history-server)
    prepare_configuration
    # The log directory must be writable by flink (it is when the image's own is used).
    ;;
esac

case "$1" in
jobmanager)
    shift
    echo "Starting Job Manager"
    # shellcheck disable=SC2046
    exec $(drop_privs_cmd) "$FLINK_HOME/bin/jobmanager.sh" start-foreground "$@"
    ;;
standalone-job)
    shift
    echo "Starting Job Manager (application mode)"
    # shellcheck disable=SC2046
    exec $(drop_privs_cmd) "$FLINK_HOME/bin/standalone-job.sh" start-foreground "$@"
    ;;
taskmanager)
    shift
    echo "Starting Task Manager"
    # shellcheck disable=SC2046
    exec $(drop_privs_cmd) "$FLINK_HOME/bin/taskmanager.sh" start-foreground "$@"
    ;;
history-server)
    shift
    echo "Starting History Server"
    # shellcheck disable=SC2046
    exec $(drop_privs_cmd) "$FLINK_HOME/bin/historyserver.sh" start-foreground "$@"
    ;;
esac

# Pass-through mode.
# shellcheck disable=SC2046
exec $(drop_privs_cmd) "$@"
