#!/usr/bin/env bash
# The real Helm v4 SDK (PyPI `helm-python-sdk`, which bundles libhelm over Helm's Go code; no helm binary)
# in a cached venv, for the chart tests (tests/chart.rs drives tests/chart/helm_driver.py with it).
#
#   helm.sh python     # install once (cached), print the venv's python interpreter
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HELM_SDK_VERSION=${HELM_SDK_VERSION:-0.2.2}
VENV=$CACHE_DIR/pypi/helm-$HELM_SDK_VERSION

helm_python() {
    if [[ ! -f $VENV/.complete ]]; then
        # Two installers at once (parallel tests, install.sh) must not build the venv twice.
        mkdir -p "$CACHE_DIR/pypi"
        exec 9>"$CACHE_DIR/pypi/.helm.lock"
        flock 9
        if [[ ! -f $VENV/.complete ]]; then
            log "pip: helm-python-sdk==$HELM_SDK_VERSION"
            rm -rf "$VENV"
            python3 -m venv "$VENV" >&2
            "$VENV/bin/pip" install --quiet --disable-pip-version-check "helm-python-sdk==$HELM_SDK_VERSION" >&2
            "$VENV/bin/python" -c 'import helm_python' >&2 || die "helm_python does not import"
            touch "$VENV/.complete"
        fi
        exec 9>&-
    fi
    echo "$VENV/bin/python"
}

case ${1:-} in
python) helm_python ;;
*) die "usage: helm.sh python" ;;
esac
