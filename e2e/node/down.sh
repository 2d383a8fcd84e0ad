#!/usr/bin/env bash
# Stops the node e2e/node/up.sh DIR started and puts the host back:
#
#   e2e/node/down.sh DIR [--keep]     # --keep: leave DIR (logs) in place
#
# In order: deletes every pod (so the kubelet tears down sandboxes, netns and
# CNI addresses itself), stops the kubelet, kills what containers remain and
# their shims (only those of this containerd: found by its socket), stops
# containerd, kube-apiserver and etcd, unmounts everything under DIR, removes
# the netns files, CNI cache entries, /var/log/pods and /var/log/containers
# entries and cgroups that appeared while the node ran, deletes the bridge
# and restores the sysctls the kubelet set. Safe to run twice, or on a node
# that never came up.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -ge 1 ] || { echo "usage: e2e/node/down.sh DIR [--keep]" >&2; exit 2; }
[ -d "$1" ] || { echo "down.sh: no such dir: $1" >&2; exit 0; }
DIR=$(cd "$1" && pwd)
keep=${2:-}
[ -f "$DIR/node.env" ] && . "$DIR/node.env"
CONTAINERD_SOCK=${CONTAINERD_SOCK:-$DIR/containerd/containerd.sock}

ctr_node() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# 1. Pods away while the kubelet still runs: it cleans up what it made.
if component_pid kube-apiserver >/dev/null && component_pid kubelet >/dev/null; then
    kubectl_node delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1
    for _ in $(seq 1 60); do
        [ -z "$(ctr_node tasks ls -q 2>/dev/null)" ] && break
        sleep 0.5
    done
fi
stop_component kubelet 15

# 2. Whatever containers remain, then the shims of this containerd.
if component_pid containerd >/dev/null; then
    for id in $(ctr_node tasks ls -q 2>/dev/null); do
        ctr_node tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    sleep 1
    for id in $(ctr_node tasks ls -q 2>/dev/null); do
        ctr_node tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $(ctr_node containers ls -q 2>/dev/null); do
        ctr_node containers delete "$id" >/dev/null 2>&1
    done
fi
stop_component containerd 15
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do
    say "killing leftover shim $pid"
    kill -KILL "$pid" 2>/dev/null
done
stop_component kube-apiserver 15
stop_component etcd 15

# 3. Mounts under DIR (container rootfs, shm, Secret tmpfs), deepest first.
awk -v d="$DIR/" '{ if (index($5, d) == 1) print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done

# 4. Host leftovers that were not there before.
new_entries() { # LISTING_FILE DIR
    [ -d "$2" ] || return 0
    ls -A "$2" | grep -vxF -f "$1"
}
if [ -d "$DIR/host" ]; then
    for ns in $(new_entries "$DIR/host/netns" /run/netns); do
        umount "/run/netns/$ns" 2>/dev/null
        rm -f "/run/netns/$ns"
        say "removed netns $ns"
    done
    for f in $(new_entries "$DIR/host/cni-results" /var/lib/cni/results); do
        case "$f" in "$NODE_CNI_NETWORK"-* | cni-loopback-*) rm -f "/var/lib/cni/results/$f" ;; esac
    done
    for f in $(new_entries "$DIR/host/log-pods" /var/log/pods); do
        rm -rf "/var/log/pods/$f"
    done
    for f in $(new_entries "$DIR/host/log-containers" /var/log/containers); do
        rm -f "/var/log/containers/$f"
    done
    while read -r d state; do
        if [ "$state" = absent ] && [ -d "$d" ] && [ -z "$(ls -A "$d")" ]; then
            rmdir "$d" 2>/dev/null
        fi
    done < <(sort -r "$DIR/host/dirs")
    # cgroups the kubelet made (kubepods and below, in every hierarchy).
    for cg in /sys/fs/cgroup/*/"$NODE_CGROUP" /sys/fs/cgroup/"$NODE_CGROUP"; do
        [ -d "$cg" ] || continue
        grep -qxF "$cg" "$DIR/host/cgroups" && continue
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ -d "$cg" ] && say "could not remove cgroup $cg (processes left in it?)"
    done
    [ -f "$DIR/host/iptables-chains" ] && remove_new_kube_iptables "$DIR/host/iptables-chains"
    if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
        ip link delete "$NODE_BRIDGE" && say "removed bridge $NODE_BRIDGE"
    fi
    if [ -f "$DIR/host/sysctls" ]; then
        while IFS='=' read -r key value; do
            [ "$(sysctl -n "$key" 2>/dev/null)" = "$value" ] && continue
            sysctl -q -w "$key=$value" >/dev/null && say "restored $key=$value"
        done <"$DIR/host/sysctls"
    fi
fi

if [ "$keep" = --keep ]; then
    say "down; logs kept in $DIR/logs"
else
    # Nothing may still be mounted below DIR before it goes.
    if awk -v d="$DIR/" '{ if (index($5, d) == 1) found = 1 } END { exit !found }' /proc/self/mountinfo; then
        say "still mounted under $DIR: leaving it"
        exit 1
    fi
    rm -rf "$DIR"
    say "down; removed $DIR"
fi
