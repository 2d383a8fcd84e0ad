#!/usr/bin/env bash
# Stops the kubelet of the node e2e/node/up.sh DIR started, waits DOWNTIME
# seconds (default 0) and starts it again with the same settings; returns once
# its healthz answers. tests/realnode.rs uses it to restart the kubelet in the
# middle of a grace window.
#
#   e2e/node/restart-kubelet.sh DIR [DOWNTIME]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ $# -ge 1 ] || { echo "usage: e2e/node/restart-kubelet.sh DIR [DOWNTIME]" >&2; exit 2; }
DIR=$(cd "$1" && pwd)
. "$DIR/node.env"
stop_component kubelet 15
sleep "${2:-0}"
start_kubelet
