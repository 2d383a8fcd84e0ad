#!/usr/bin/env bash
# Builds kube-apiserver, kubelet and kubectl v1.20.2 from Debian bookworm's
# source package `kubernetes` (1.20.5+really1.20.2) with Debian's Go 1.19, the
# oldest Kubernetes the real-node suite is run against:
#
#   e2e/node/build-debian.sh
#
# Output: $CACHE/bin/v1.20.2/{etcd,kube-apiserver,kubelet,kubectl} (CACHE is
# $DRIFTPROBE_NODE_CACHE, default /var/cache/driftprobe-node). etcd is the one
# e2e/node/build.sh builds from the module proxy (Debian's etcd-server 3.4 also
# works, but one etcd for both versions is one thing less to differ).
#
# The facts this relies on (../shared/realnode.md of the project's notes):
# - the source package is fetched with `apt-get source` through a private apt
#   config adding a deb-src line for the mirror the machine already uses;
# - it is built in GOPATH mode (GO111MODULE=off), as Debian's rules do: module
#   mode with Go 1.19 stops at "updates to go.mod needed";
# - the vendored github.com/modern-go/reflect2 1.0.1 breaks with Go >= 1.18:
#   the whole directory is replaced by Debian's 1.0.2;
# - pkg/generated/openapi/zz_generated.openapi.go is not in the tarball: it is
#   generated with the vendored openapi-gen over the packages tagged
#   +k8s:openapi-gen=.
# Cold: about 4 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

VERSION=v1.20.2
PKG_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE=${DRIFTPROBE_NODE_CACHE:-/var/cache/driftprobe-node}
OUT=$CACHE/bin/$VERSION
DEB=$CACHE/debian
GOPATH_DIR=$DEB/gopath
TREE=$GOPATH_DIR/src/k8s.io/kubernetes
GO=/usr/lib/go-1.19/bin/go

have_all() {
    local b
    for b in etcd kube-apiserver kubelet kubectl; do
        [ -x "$OUT/$b" ] || return 1
    done
}
if have_all; then
    echo "build-debian.sh: $VERSION already built in $OUT"
    exit 0
fi
mkdir -p "$OUT" "$DEB"

# etcd: the module build's (its own lock; builds only etcd if that is missing).
etcd_src=$CACHE/bin/${DRIFTPROBE_K8S_VERSION:-v1.35.4}/etcd
if [ ! -x "$OUT/etcd" ]; then
    if [ ! -x "$etcd_src" ]; then
        "$here/build.sh"
    fi
    cp "$etcd_src" "$OUT/etcd"
fi

exec 9>"$CACHE/build.lock"
flock 9

# 1. Debian's Go 1.19 and reflect2 1.0.2.
if [ ! -x "$GO" ] || [ ! -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]; then
    echo "build-debian.sh: installing golang-1.19-go and golang-github-modern-go-reflect2-dev"
    apt-get install -y -q --no-install-recommends golang-1.19-go golang-github-modern-go-reflect2-dev >"$DEB/install.log" 2>&1 || {
        tail -n 20 "$DEB/install.log" >&2
        exit 1
    }
fi

# 2. The source package, through a private apt config (deb-src of the same mirror).
if [ ! -d "$TREE/cmd/kubelet" ]; then
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
    mirror=${mirror:-http://deb.debian.org/debian}
    apt_dir=$DEB/apt
    mkdir -p "$apt_dir/lists/partial" "$DEB/src"
    echo "deb-src $mirror bookworm main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$apt_dir/lists")
    echo "build-debian.sh: apt-get source kubernetes=$PKG_VERSION (from $mirror)"
    {
        apt-get "${apt_opts[@]}" update -q
        (cd "$DEB/src" && apt-get "${apt_opts[@]}" source --download-only "kubernetes=$PKG_VERSION")
    } >"$DEB/fetch.log" 2>&1 || {
        tail -n 20 "$DEB/fetch.log" >&2
        exit 1
    }
    rm -rf "$DEB/src/x" "$TREE"
    mkdir -p "$DEB/src/x" "$(dirname "$TREE")"
    # The orig tarball is the complete upstream tree with vendor/ (no need for dpkg-source).
    tar -xzf "$DEB/src/kubernetes_${PKG_VERSION%%-*}.orig.tar.gz" -C "$DEB/src/x"
    top=$(find "$DEB/src/x" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    mv "$top" "$TREE"
fi

# 3. reflect2: replace the whole directory (copying over it leaves a file behind).
r2=$TREE/vendor/github.com/modern-go/reflect2
if [ ! -f "$r2/.debian-1.0.2" ]; then
    rm -rf "$r2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$r2"
    touch "$r2/.debian-1.0.2"
fi

export GOPATH=$GOPATH_DIR
export GO111MODULE=off
export GOCACHE=$DEB/gocache
export CGO_ENABLED=0
export GOFLAGS=
cd "$TREE"

# 4. The generated OpenAPI definitions.
openapi=pkg/generated/openapi/zz_generated.openapi.go
if [ ! -s "$openapi" ]; then
    echo "build-debian.sh: generating $openapi"
    "$GO" build -o "$GOPATH_DIR/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
    # Every package with a file carrying the +k8s:openapi-gen= tag (on the
    # package in doc.go, or on one type, as resource.Quantity), named by
    # import path, as Kubernetes' Makefile.generated_files finds them.
    # vendor/k8s.io/* are symlinks into staging/: named on the command line
    # so that grep -r follows them (it does not below it).
    dirs=$(grep -rl --include='*.go' --exclude='*_test.go' '+k8s:openapi-gen=' pkg vendor/k8s.io/* 2>/dev/null |
        xargs -n1 dirname | sort -u |
        sed -e 's#^vendor/##' -e 's#^pkg/#k8s.io/kubernetes/pkg/#' | paste -sd, -)
    "$GOPATH_DIR/bin/openapi-gen" \
        --input-dirs "$dirs" \
        --output-package k8s.io/kubernetes/pkg/generated/openapi \
        --output-file-base zz_generated.openapi \
        --go-header-file hack/boilerplate/boilerplate.generatego.txt \
        --report-filename "$DEB/openapi-violations.report" >"$DEB/openapi-gen.log" 2>&1 || {
        tail -n 20 "$DEB/openapi-gen.log" >&2
        exit 1
    }
fi

# 5. The binaries, in GOPATH mode; the version package is the vendored one.
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
done
for name in kube-apiserver kubelet kubectl; do
    [ -x "$OUT/$name" ] && continue
    start=$SECONDS
    echo "build-debian.sh: building $name"
    if ! "$GO" build -ldflags "$ldflags" -o "$OUT/$name.new" "./cmd/$name" >"$DEB/build-$name.log" 2>&1; then
        echo "build-debian.sh: building $name failed; last lines of $DEB/build-$name.log:" >&2
        tail -n 30 "$DEB/build-$name.log" >&2
        exit 1
    fi
    mv "$OUT/$name.new" "$OUT/$name"
    echo "build-debian.sh: $name built in $((SECONDS - start))s"
done
"$OUT/kubelet" --version
