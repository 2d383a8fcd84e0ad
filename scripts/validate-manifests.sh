#!/usr/bin/env bash
# Validates every Kubernetes manifest in examples/ offline, with strict schema
# checks (misspelled or misplaced fields fail). Needs `pip install kubernetes-validate`.
#   scripts/validate-manifests.sh [FILE...]
# Without arguments: examples/*.yaml, and the manifests rendered from the kustomize
# component and the helm snippet (examples/*/rendered.yaml), after checking with
# scripts/render-examples.py that those are still what their sources render to.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    python3 scripts/render-examples.py
    set -- examples/*.yaml examples/*/rendered.yaml
fi
kubernetes-validate --strict "$@"
