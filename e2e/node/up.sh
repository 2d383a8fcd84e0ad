#!/usr/bin/env bash
# Brings up a real single-node Kubernetes for the real-node suite (tests/realnode.rs):
#
#   e2e/node/up.sh DIR          # then: DRIFTPROBE_REALNODE=DIR cargo test --test realnode
#   e2e/node/down.sh DIR        # stops it and puts the host back
#
# etcd, kube-apiserver, containerd (its CRI plugin, runc) and the kubelet, all
# on loopback, everything they write under DIR (which must be new or empty):
# no scheduler and no controller-manager (pods set spec.nodeName). Needs root.
#
# - Binaries: $DRIFTPROBE_NODE_CACHE/bin/VERSION (default cache
#   /var/cache/driftprobe-node), built when missing: e2e/node/build.sh (the
#   module proxy) for DRIFTPROBE_K8S_VERSION (default v1.35.4), or
#   e2e/node/build-debian.sh for v1.20.2.
# - containerd: Debian's, with its own root, state and socket under DIR (never
#   the one dockerd uses), CRI with restrict_oom_score_adj (root here lacks
#   CAP_SYS_RESOURCE), our pause image as sandbox_image, cgroupfs, a CNI bridge
#   with host-local IPAM and no masquerade.
# - kubelet: bound to 127.0.0.1, the node's InternalIP the machine's own
#   address (the kubelet refuses a loopback node IP), fast settings: sync,
#   file check and status every 5s, ConfigMap/Secret changes by Watch, image GC
#   off (the imported images cannot be pulled again).
# - Images (e2e/node/images.sh): probe, demo app and pause, FROM scratch,
#   imported into containerd's k8s.io namespace.
#
# Writes DIR/node.env (what the suite reads: versions, kubectl, kubeconfig,
# images, the kubelet settings) and fails fast with the last log lines of the
# component at fault: a component that exits, a node not Ready in time, an
# image that does not import.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: e2e/node/up.sh DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "up.sh: needs root (cgroups, mounts, netns)" >&2; exit 1; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
if [ -n "$(ls -A "$DIR")" ]; then
    echo "up.sh: $DIR is not empty (a node already up there? e2e/node/down.sh $DIR first)" >&2
    exit 2
fi

# A failed bring-up stops whatever it started (the logs stay in DIR/logs).
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        say "up failed: stopping what was started (logs kept in $DIR/logs; e2e/node/down.sh $DIR removes them)"
        "$here/down.sh" "$DIR" --keep >&2 || true
    fi
}
trap on_exit EXIT

K8S_VERSION=${DRIFTPROBE_K8S_VERSION:-v1.35.4}
CACHE=${DRIFTPROBE_NODE_CACHE:-/var/cache/driftprobe-node}
BIN=$CACHE/bin/$K8S_VERSION
ETCD_PORT=${DRIFTPROBE_ETCD_PORT:-23790}
API_PORT=${DRIFTPROBE_API_PORT:-16443}
KUBELET_PORT=${DRIFTPROBE_KUBELET_PORT:-20250}
KUBELET_HEALTHZ_PORT=${DRIFTPROBE_KUBELET_HEALTHZ_PORT:-20248}
CONTAINERD_SOCK=$DIR/containerd/containerd.sock
NODE_NAME=$(hostname | tr 'A-Z' 'a-z')
SYNC_FREQUENCY=5s

for tool in containerd containerd-shim-runc-v2 runc ctr openssl curl cc python3 ip; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "up.sh: $tool is missing (Debian: containerd runc containernetworking-plugins openssl curl gcc python3 iproute2)" >&2
        exit 1
    }
done
CNI_BIN=${DRIFTPROBE_CNI_BIN:-/usr/lib/cni}
[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] || {
    echo "up.sh: CNI plugins missing in $CNI_BIN (Debian: containernetworking-plugins)" >&2
    exit 1
}
for port in $ETCD_PORT $((ETCD_PORT + 10)) $API_PORT $KUBELET_PORT $KUBELET_HEALTHZ_PORT; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "up.sh: port $port is in use (another node up? set DRIFTPROBE_*_PORT)" >&2
        exit 1
    fi
done
if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    echo "up.sh: the bridge $NODE_BRIDGE exists already (another node up? e2e/node/down.sh its DIR)" >&2
    exit 1
fi
# The kubelet refuses a loopback node IP: the address of the default route.
NODE_IP=${DRIFTPROBE_NODE_IP:-$(ip -4 route get 192.0.2.255 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)}
[ -n "$NODE_IP" ] || NODE_IP=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)
[ -n "$NODE_IP" ] || { echo "up.sh: no non-loopback IPv4 address for the node" >&2; exit 1; }
if ! getent hosts "$NODE_NAME" >/dev/null; then
    echo "up.sh: the hostname $NODE_NAME does not resolve (kube-apiserver reaches the kubelet by it)" >&2
    exit 1
fi

# 1. Binaries (cached).
if [ ! -x "$BIN/kubelet" ] || [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kubectl" ] || [ ! -x "$BIN/etcd" ]; then
    if [ "$K8S_VERSION" = v1.20.2 ]; then
        "$here/build-debian.sh"
    else
        DRIFTPROBE_K8S_VERSION=$K8S_VERSION "$here/build.sh"
    fi
fi
KUBECTL=$BIN/kubectl

# 2. What the host looks like before: down.sh puts back exactly this.
mkdir -p "$DIR/host" "$DIR/logs" "$DIR/run"
for s in $NODE_SYSCTLS; do
    v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
done >"$DIR/host/sysctls"
for d in /var/log/pods /var/log/containers /run/netns /var/lib/cni /var/lib/cni/results; do
    printf '%s %s\n' "$d" "$([ -e "$d" ] && echo present || echo absent)"
done >"$DIR/host/dirs"
ls -A /var/log/pods 2>/dev/null >"$DIR/host/log-pods" || true
ls -A /var/log/containers 2>/dev/null >"$DIR/host/log-containers" || true
ls -A /run/netns 2>/dev/null >"$DIR/host/netns" || true
ls -A /var/lib/cni/results 2>/dev/null >"$DIR/host/cni-results" || true
kube_iptables_chains >"$DIR/host/iptables-chains"
ls -d /sys/fs/cgroup/*/"$NODE_CGROUP" /sys/fs/cgroup/"$NODE_CGROUP" 2>/dev/null >"$DIR/host/cgroups" || true

cat >"$DIR/node.env" <<EOF
# Written by e2e/node/up.sh; read by down.sh, images.sh, restart-kubelet.sh and tests/realnode.rs.
K8S_VERSION=$K8S_VERSION
BIN=$BIN
KUBECTL=$KUBECTL
KUBECONFIG=$DIR/kubeconfig
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
CONTAINERD_SOCK=$CONTAINERD_SOCK
KUBELET_HEALTHZ_PORT=$KUBELET_HEALTHZ_PORT
SYNC_FREQUENCY=$SYNC_FREQUENCY
PROBE_IMAGE=driftprobe.local/driftprobe:realnode
APP_IMAGE=driftprobe.local/demo-app:realnode
PAUSE_IMAGE=driftprobe.local/pause:realnode
EOF
. "$DIR/node.env"

# 3. etcd.
start_component etcd "$BIN/etcd" --name node --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "node=http://127.0.0.1:$((ETCD_PORT + 10))" --listen-metrics-urls "" \
    --quota-backend-bytes 1073741824 --log-level warn
wait_for "etcd healthy" 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# 4. kube-apiserver: a token for kubectl and the kubelet (system:masters),
# AlwaysAllow, no ServiceAccount admission (no controller to create accounts).
mkdir -p "$DIR/apiserver"
openssl genrsa -out "$DIR/apiserver/sa.key" 2048 2>/dev/null
openssl rsa -in "$DIR/apiserver/sa.key" -pubout -out "$DIR/apiserver/sa.pub" 2>/dev/null
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" >"$DIR/apiserver/tokens.csv"
chmod 600 "$DIR/apiserver/tokens.csv" "$DIR/apiserver/sa.key"
start_component kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
    --cert-dir "$DIR/apiserver/certs" --token-auth-file "$DIR/apiserver/tokens.csv" \
    --authorization-mode AlwaysAllow --allow-privileged=true \
    --service-account-key-file "$DIR/apiserver/sa.pub" \
    --service-account-signing-key-file "$DIR/apiserver/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --disable-admission-plugins ServiceAccount \
    --kubelet-preferred-address-types Hostname,InternalIP \
    --endpoint-reconciler-type none --profiling=false
umask 077
cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: node
    cluster:
      server: https://127.0.0.1:$API_PORT
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: $token
contexts:
  - name: node
    context: { cluster: node, user: admin }
current-context: node
EOF
umask 022
wait_for "kube-apiserver ready" 90 kube-apiserver kubectl_node get --raw /readyz

# 5. containerd with its own root, state and socket.
mkdir -p "$DIR/containerd" "$DIR/cni/net.d"
cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1
EOF
cat >"$DIR/cni/net.d/10-driftprobe.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$NODE_CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{ "subnet": "10.244.77.0/24" }]]
      }
    },
    { "type": "loopback" }
  ]
}
EOF
start_component containerd containerd --config "$DIR/containerd/config.toml"
wait_for "containerd serving" 30 containerd ctr --address "$CONTAINERD_SOCK" version

# 6. Images (before the kubelet, so its first sandbox finds the pause image).
"$here/images.sh" "$DIR" || die "importing the images failed" containerd

# 7. The kubelet.
mkdir -p "$DIR/kubelet/root" "$DIR/kubelet/pki"
{
    cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: { enabled: true }
  webhook: { enabled: false }
authorization: { mode: AlwaysAllow }
cgroupDriver: cgroupfs
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
syncFrequency: $SYNC_FREQUENCY
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
nodeStatusReportFrequency: 5s
configMapAndSecretChangeDetectionStrategy: Watch
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%" }
serializeImagePulls: false
resolvConf: /etc/resolv.conf
# No KUBE-FIREWALL & co. on the host (nothing here needs them; down.sh removes any).
makeIPTablesUtilChains: false
EOF
    case "$K8S_VERSION" in
        v1.20.*) ;;
        *)
            echo "containerRuntimeEndpoint: unix://$CONTAINERD_SOCK"
            echo "imageServiceEndpoint: unix://$CONTAINERD_SOCK"
            # v1.35 refuses cgroup v1 unless told otherwise; these machines have a v1 (hybrid) layout.
            echo "failCgroupV1: false" ;;
    esac
} >"$DIR/kubelet/config.yaml"
start_kubelet
wait_for "node $NODE_NAME Ready" 120 kubelet node_ready
say "up: Kubernetes $K8S_VERSION, node $NODE_NAME ($NODE_IP); KUBECONFIG=$DIR/kubeconfig; DRIFTPROBE_REALNODE=$DIR"
