#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kubelet and kubectl of a current Kubernetes
# release from the Go module proxy, into the node cache:
#
#   e2e/node/build.sh [VERSION]        # default $DRIFTPROBE_K8S_VERSION or v1.35.4
#
# Output: $CACHE/bin/VERSION/{etcd,kube-apiserver,kubelet,kubectl}, where CACHE
# is $DRIFTPROBE_NODE_CACHE (default /var/cache/driftprobe-node). Nothing is
# rebuilt when all four are there. Go's module and build caches live under
# $CACHE/go, so a second version or a rebuild downloads and compiles little.
#
# How: k8s.io/kubernetes is served as a module, but its go.mod points every
# staging module (k8s.io/api, k8s.io/client-go, …) at ./staging with a replace
# that only works inside its own tree. So the binaries are built from a module
# of our own that requires k8s.io/kubernetes VERSION, etcd's server module, and
# repeats that replace block with each staging module at its published v0.x.
# For a version with a committed module (e2e/node/modules/VERSION: go.mod,
# go.sum) that one is used as is, so the build is
# pinned by go.sum; for any other version (or with DRIFTPROBE_K8S_GENERATE=1)
# it is generated (go mod tidy).
#
# Needs: go (1.26.8 here; GOTOOLCHAIN=go1.27.3 where a module asks for newer)
# and the module proxy. Cold: about 4 minutes on 2 cores, ~3.5 GB of caches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

VERSION=${1:-${DRIFTPROBE_K8S_VERSION:-v1.35.4}}
ETCD_VERSION=${DRIFTPROBE_ETCD_VERSION:-v3.6.5}
CACHE=${DRIFTPROBE_NODE_CACHE:-/var/cache/driftprobe-node}
OUT=$CACHE/bin/$VERSION
SRC=$CACHE/src/$VERSION

case "$VERSION" in
    v1.[0-9].* | v1.[0-2][0-9].* | v1.3[0-3].*)
        echo "build.sh: $VERSION is older than v1.34, which the module route does not build; use e2e/node/build-debian.sh (v1.20.2)" >&2
        exit 2 ;;
    v1.*) ;;
    *)
        echo "build.sh: not a Kubernetes version: $VERSION (e.g. v1.35.4)" >&2
        exit 2 ;;
esac

have_all() {
    local b
    for b in etcd kube-apiserver kubelet kubectl; do
        [ -x "$OUT/$b" ] || return 1
    done
}
if have_all; then
    echo "build.sh: $VERSION already built in $OUT"
    exit 0
fi

command -v go >/dev/null 2>&1 || {
    echo "build.sh: go is not installed (need Go >= 1.25 and the module proxy)" >&2
    exit 1
}
mkdir -p "$CACHE" "$OUT" "$CACHE/go/mod" "$CACHE/go/build"
exec 9>"$CACHE/build.lock"
flock 9
if have_all; then
    echo "build.sh: $VERSION was built by another run meanwhile"
    exit 0
fi

export GOMODCACHE=$CACHE/go/mod
export GOCACHE=$CACHE/go/build
export GOFLAGS=-buildvcs=false
export CGO_ENABLED=0
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

mkdir -p "$SRC"
cd "$SRC"
if [ -f "$here/modules/$VERSION/go.mod" ] && [ "${DRIFTPROBE_K8S_GENERATE:-0}" != 1 ]; then
    echo "build.sh: using the committed module e2e/node/modules/$VERSION"
    cp "$here/modules/$VERSION/go.mod" "$here/modules/$VERSION/go.sum" "$SRC/"
    mkdir -p etcd
    cp "$here/modules/etcd-main.go" etcd/main.go
else
    echo "build.sh: generating a module for k8s.io/kubernetes $VERSION"
    minor=${VERSION#v1.}
    staging=v0.$minor
    rm -f go.mod go.sum
    go mod init driftprobe.local/node >/dev/null 2>&1
    # Upstream's own go.mod holds the list of staging modules (its replace block).
    upstream=$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [ -f "$upstream" ] || { echo "build.sh: cannot download k8s.io/kubernetes@$VERSION" >&2; exit 1; }
    {
        echo
        echo "replace ("
        sed -n '/^replace (/,/^)/p' "$upstream" | sed -n 's/^[[:space:]]*\(k8s.io\/[a-z0-9-]*\) => .*/\t\1 => \1 '"$staging"'/p'
        echo ")"
    } >>go.mod
    mkdir -p etcd
    cp "$here/modules/etcd-main.go" etcd/main.go
    # Every package at VERSION (an unversioned `go get -tool` would take the newest release).
    {
        go get -tool "k8s.io/kubernetes/cmd/kubelet@$VERSION" "k8s.io/kubernetes/cmd/kube-apiserver@$VERSION" \
            "k8s.io/kubernetes/cmd/kubectl@$VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
            go mod tidy
    } >tidy.log 2>&1 || { echo "build.sh: generating the module failed; last lines of $SRC/tidy.log:" >&2; tail -n 20 tidy.log >&2; exit 1; }
fi

# The version the binaries report (`kubelet --version`, the node's kubeletVersion).
minor=${VERSION#v1.}
minor=${minor%%.*}
ver_pkg=k8s.io/component-base/version
client_pkg=k8s.io/client-go/pkg/version
ldflags="-s -w"
for pkg in $ver_pkg $client_pkg; do
    ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build() { # NAME PACKAGE
    local name=$1 pkg=$2 start=$SECONDS
    echo "build.sh: building $name ($pkg)"
    if ! go build -trimpath -ldflags "$ldflags" -o "$OUT/$name.new" "$pkg" >"build-$name.log" 2>&1; then
        echo "build.sh: building $name failed; last lines of $SRC/build-$name.log:" >&2
        tail -n 30 "build-$name.log" >&2
        exit 1
    fi
    mv "$OUT/$name.new" "$OUT/$name"
    echo "build.sh: $name built in $((SECONDS - start))s"
}
[ -x "$OUT/etcd" ] || build etcd ./etcd
[ -x "$OUT/kube-apiserver" ] || build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
[ -x "$OUT/kubelet" ] || build kubelet k8s.io/kubernetes/cmd/kubelet
[ -x "$OUT/kubectl" ] || build kubectl k8s.io/kubernetes/cmd/kubectl
"$OUT/kubelet" --version
