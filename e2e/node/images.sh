#!/usr/bin/env bash
# Builds the real-node suite's three images FROM scratch (nothing can be pulled
# here) and imports them into the node's containerd (namespace k8s.io):
#
#   e2e/node/images.sh DIR      # DIR of e2e/node/up.sh (run by it)
#
# - $PROBE_IMAGE: Dockerfile.static's `prebuilt` stage (the static driftprobe
#   of scripts/static-build.sh at /driftprobe, USER 65532), the image users run
#   as the init container that installs the probe;
# - $APP_IMAGE: the demo server (examples/demo_server.rs, static), plus
#   e2e/node/fetch (asks the server what it serves, from inside the pod) and
#   e2e/node/pause (here: a validator that never answers), and e2e/node/goapp
#   (a Go program, built with the machine's Go, no module needed), /tmp mode
#   1777, USER 65532;
# - $PAUSE_IMAGE: e2e/node/pause, the pods' sandbox.
# The tarballs are docker archives written by e2e/node/mkimage.py (no docker
# engine needed); a failed import fails with containerd's last log lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: e2e/node/images.sh DIR" >&2; exit 2; }
DIR=$(cd "$1" && pwd)
. "$DIR/node.env"

target_dir=${CARGO_TARGET_DIR:-$repo/target}
release=$target_dir/static/amd64
if [ ! -x "$release/driftprobe" ] || [ ! -x "$release/demo_server" ]; then
    "$repo/scripts/static-build.sh"
fi

out=$DIR/images
mkdir -p "$out/bin" "$out/probe-context/target/static/amd64"
cc -static -Os -o "$out/bin/pause" "$here/pause/pause.c"
cc -static -Os -o "$out/bin/fetch" "$here/fetch/fetch.c"
strip "$out/bin/pause" "$out/bin/fetch" 2>/dev/null || true
# The Go app: standard library only, so no module proxy; static (no cgo).
go=$(command -v go || echo /usr/local/go/bin/go)
(cd "$here/goapp" && CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-buildvcs=false \
    GOCACHE=${DRIFTPROBE_NODE_CACHE:-/var/cache/driftprobe-node}/go/build \
    "$go" build -o "$out/bin/goapp" .) || die "building e2e/node/goapp failed"

# The probe image: the prebuilt-amd64 stage, in a context holding just the binary.
cp "$release/driftprobe" "$out/probe-context/target/static/amd64/driftprobe"
python3 "$here/mkimage.py" "$out/probe.tar" "$PROBE_IMAGE" \
    --dockerfile "$repo/Dockerfile.static" --stage prebuilt-amd64 --context "$out/probe-context"
python3 "$here/mkimage.py" "$out/app.tar" "$APP_IMAGE" \
    --file "$release/demo_server:/demo_server" --file "$out/bin/fetch:/fetch" \
    --file "$out/bin/pause:/pause" --file "$out/bin/goapp:/goapp" \
    --dir /tmp:1777 --user 65532 --entrypoint /demo_server
python3 "$here/mkimage.py" "$out/pause.tar" "$PAUSE_IMAGE" \
    --file "$out/bin/pause:/pause" --user 65535 --entrypoint /pause

for image in probe app pause; do
    if ! ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$out/$image.tar" >"$out/import-$image.log" 2>&1; then
        cat "$out/import-$image.log" >&2
        die "ctr images import $out/$image.tar failed" containerd
    fi
done
listed=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q)
for ref in "$PROBE_IMAGE" "$APP_IMAGE" "$PAUSE_IMAGE"; do
    grep -qxF "$ref" <<<"$listed" || die "$ref is not in containerd after the import (have: $(echo $listed))" containerd
done
say "images imported: $PROBE_IMAGE $APP_IMAGE $PAUSE_IMAGE"
