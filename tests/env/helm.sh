#!/usr/bin/env bash
# The real Helm v4 SDK (PyPI `helm-python-sdk`, which bundles libhelm over Helm's Go code; no helm binary)
# in a cached venv, for the chart tests (tests/chart.rs drives tests/chart/helm_driver.py with it).
#
#   helm.sh python     # install once (cached), print the venv's python interpreter
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HELM_SDK_VERSION=${HELM_SDK_VERSION:-0.2.2}

case ${1:-} in
python) exec "$ENV_DIR/pytool.sh" "helm-$HELM_SDK_VERSION" helm_python "helm-python-sdk==$HELM_SDK_VERSION" ;;
*) die "usage: helm.sh python" ;;
esac
