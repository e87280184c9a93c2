"""Drives the real Helm v4 SDK (PyPI helm-python-sdk) for tests/chart.rs; prints one JSON document.

    helm_driver.py lint CHART VALUES_JSON
    helm_driver.py render CHART VALUES_JSON RELEASE NAMESPACE
    helm_driver.py install|upgrade KUBECONFIG CHART VALUES_JSON RELEASE NAMESPACE
    helm_driver.py uninstall KUBECONFIG RELEASE NAMESPACE

Helm errors are printed as {"error": ...} with exit status 1.
"""

import json
import sys

import helm_python as helm


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "lint":
        chart, values = args
        return helm.lint(chart, json.loads(values), strict=True)
    if command == "render":
        chart, values, release, namespace = args
        with helm.Chart.load(chart) as loaded:
            return loaded.render(json.loads(values), name=release, namespace=namespace, is_install=True)
    if command in ("install", "upgrade"):
        kubeconfig, chart, values, release, namespace = args
        with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace) as config:
            action = config.install if command == "install" else config.upgrade
            return action(chart, release, json.loads(values), timeout=120)
    if command == "uninstall":
        kubeconfig, release, namespace = args
        with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace) as config:
            return config.uninstall(release, timeout=120)
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    try:
        result = main(sys.argv)
    except helm.HelmError as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    print(json.dumps(result, default=str))
