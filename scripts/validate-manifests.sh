#!/usr/bin/env bash
# Validates every Kubernetes manifest in examples/ offline, with strict schema
# checks (misspelled or misplaced fields fail). Needs `pip install kubernetes-validate`.
#   scripts/validate-manifests.sh [FILE...]
# Without arguments: examples/*.yaml, and the manifests that the real helm and
# kustomize render from the chart and the component (examples/*/rendered.yaml;
# scripts/render-examples.sh checks that those are still what their sources
# render to: CI runs it first).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    set -- examples/*.yaml examples/*/rendered.yaml
fi
kubernetes-validate --strict "$@"
