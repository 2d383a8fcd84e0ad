#!/usr/bin/env bash
# Builds the tools that render the examples (scripts/render-examples.sh) from
# the Go module proxy, pinned by the committed module beside this script
# (e2e/tools/go.mod, go.sum: helm.sh/helm/v4 as a Go tool):
#
#   e2e/tools/build.sh             # -> $CACHE/bin/helm-VERSION, and prints its path
#
# CACHE is $DRIFTPROBE_TOOLS_CACHE (default /var/cache/driftprobe-tools); Go's
# module and build caches live under $CACHE/go. Nothing is rebuilt when the
# binary is there. kustomize is not built here: `kubectl kustomize` of the
# node's kubectl (e2e/node/build.sh) is used, the kustomize that
# `kubectl apply -k` runs on that Kubernetes version.
#
# To move to another helm release: cd e2e/tools && go get -tool
# helm.sh/helm/v4/cmd/helm@vX.Y.Z && go mod tidy, and commit go.mod and go.sum.
# Needs: go >= 1.26 and the module proxy. Cold: about 3 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${DRIFTPROBE_TOOLS_CACHE:-/var/cache/driftprobe-tools}

VERSION=$(sed -n 's/^[[:space:]]*helm\.sh\/helm\/v4 \(v[0-9.]*\).*$/\1/p' "$here/go.mod" | head -n 1)
[ -n "$VERSION" ] || { echo "tools/build.sh: no helm.sh/helm/v4 version in $here/go.mod" >&2; exit 1; }
OUT=$CACHE/bin/helm-$VERSION
if [ -x "$OUT" ]; then
    echo "$OUT"
    exit 0
fi
command -v go >/dev/null 2>&1 || {
    echo "tools/build.sh: go is not installed (need Go >= 1.26 and the module proxy)" >&2
    exit 1
}
mkdir -p "$CACHE/bin" "$CACHE/go/mod" "$CACHE/go/build" "$CACHE/src"
exec 9>"$CACHE/build.lock"
flock 9
if [ -x "$OUT" ]; then
    echo "$OUT"
    exit 0
fi
export GOMODCACHE=$CACHE/go/mod
export GOCACHE=$CACHE/go/build
export GOFLAGS="-buildvcs=false -mod=readonly"
export CGO_ENABLED=0
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

src=$CACHE/src/helm-$VERSION
mkdir -p "$src"
cp "$here/go.mod" "$here/go.sum" "$src/"
cd "$src"
start=$SECONDS
echo "tools/build.sh: building helm $VERSION" >&2
# The version helm reports (`helm version`); upstream's Makefile sets the same.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$VERSION"
if ! go build -trimpath -ldflags "$ldflags" -o "$OUT.new" helm.sh/helm/v4/cmd/helm >build.log 2>&1; then
    echo "tools/build.sh: building helm failed; last lines of $src/build.log:" >&2
    tail -n 30 build.log >&2
    exit 1
fi
mv "$OUT.new" "$OUT"
echo "tools/build.sh: helm built in $((SECONDS - start))s" >&2
echo "$OUT"
