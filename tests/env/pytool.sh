#!/usr/bin/env bash
# A Python package from PyPI in a cached venv of its own, for tests that drive a real tool through Python
# (the Helm v4 SDK for the chart tests, BuildKit's Dockerfile parser for the Dockerfile test).
#
#   pytool.sh NAME MODULE REQUIREMENT...   # venv $CACHE_DIR/pypi/NAME (created once: pip install
#                                          # REQUIREMENT..., then `import MODULE`); prints its python
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=pytool

(($# >= 3)) || {
    print_header
    exit 2
}
name=$1 module=$2
shift 2
venv=$CACHE_DIR/pypi/$name

if [[ ! -f $venv/.complete ]]; then
    # Two installers at once (parallel tests, install.sh) must not build the venv twice.
    mkdir -p "$CACHE_DIR/pypi"
    exec 9>"$CACHE_DIR/pypi/.$name.lock"
    flock 9
    if [[ ! -f $venv/.complete ]]; then
        log "pip: $*"
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
        "$venv/bin/python" -c "import $module" >&2 || die "$module does not import"
        touch "$venv/.complete"
    fi
    exec 9>&-
fi
echo "$venv/bin/python"
