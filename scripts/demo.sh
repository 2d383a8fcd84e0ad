#!/usr/bin/env bash
# The main job, end to end on this machine: build driftprobe, lay out a
# ConfigMap volume the way the kubelet does (..data -> ..<timestamp>, one
# symlink per key), record the baseline, probe, update the ConfigMap with an
# atomic ..data swap, and watch readiness, liveness and status react.
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
probe=$PWD/target/release/driftprobe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vol=$work/config
state=$work/state
mkdir -p "$vol"

# One kubelet-style write: new timestamped dir, ..data_tmp, rename over ..data.
publish() {
    local ts
    ts="..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM"
    mkdir "$vol/$ts"
    printf '%s' "$1" >"$vol/$ts/app.yaml"
    printf '%s' "$2" >"$vol/$ts/log_level"
    local old
    old=$(readlink "$vol/..data" 2>/dev/null || true)
    ln -s "$ts" "$vol/..data_tmp"
    mv -T "$vol/..data_tmp" "$vol/..data"
    for key in app.yaml log_level; do
        [ -L "$vol/$key" ] || ln -s "..data/$key" "$vol/$key"
    done
    if [ -n "$old" ]; then rm -rf "${vol:?}/$old"; fi
}

run() {
    echo "\$ driftprobe $*"
    local rc=0
    "$probe" "$@" || rc=$?
    echo "  (exit $rc)"
}

publish $'replicas: 3\ngreeting: hello\n' info
run init --state-dir "$state" "$vol"
run liveness --state-dir "$state" --grace 5m "$vol"
run readiness --state-dir "$state" "$vol"

echo
echo "# kubectl edit configmap ... (the kubelet swaps ..data a minute later)"
publish $'replicas: 3\ngreeting: bonjour\n' debug
run readiness --state-dir "$state" "$vol"
run liveness --state-dir "$state" --grace 5m "$vol"
run liveness --state-dir "$state" --grace 0s "$vol"
run status --state-dir "$state" "$vol"

echo
echo "# the edit is reverted: drift clears"
publish $'replicas: 3\ngreeting: hello\n' info
run readiness --state-dir "$state" "$vol"
