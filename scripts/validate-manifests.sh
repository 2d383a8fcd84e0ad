#!/usr/bin/env bash
# Validates every Kubernetes manifest in examples/ offline, with strict schema
# checks (misspelled or misplaced fields fail). Needs `pip install kubernetes-validate`.
#   scripts/validate-manifests.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
    set -- examples/*.yaml
fi
kubernetes-validate --strict "$@"
