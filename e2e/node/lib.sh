# Shared by e2e/node/*.sh (sourced, not run): starting and stopping the node's
# components, waiting with deadlines, failing with the component's last log lines.

# The host state the kubelet, containerd and the CNI plugins change, saved by
# up.sh and put back by down.sh.
NODE_SYSCTLS="kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"
NODE_BRIDGE=dpbr0
NODE_CNI_NETWORK=driftprobe-realnode
NODE_CGROUP=kubepods

say() { echo "node: $*" >&2; }

# Prints the last lines of every component log under $DIR (or of the named ones).
show_logs() { # [NAME...]
    local names=("$@") name log
    [ "${#names[@]}" -gt 0 ] || names=(etcd kube-apiserver containerd kubelet)
    for name in "${names[@]}"; do
        log=$DIR/logs/$name.log
        [ -s "$log" ] || continue
        echo "----- last lines of $log" >&2
        tail -n "${NODE_LOG_LINES:-25}" "$log" >&2
    done
}

die() { # MESSAGE [COMPONENT...]
    local msg=$1
    shift
    say "FAILED: $msg"
    show_logs "$@"
    exit 1
}

# Starts a component in its own session, stdout+stderr to $DIR/logs/NAME.log,
# its pid in $DIR/run/NAME.pid, the command line in $DIR/run/NAME.cmd (so it
# can be started again: restart-kubelet.sh).
start_component() { # NAME CMD...
    local name=$1
    shift
    mkdir -p "$DIR/logs" "$DIR/run"
    printf '%q ' "$@" >"$DIR/run/$name.cmd"
    setsid "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
    say "started $name (pid $!)"
}

component_pid() { # NAME -> pid, if it is running
    local pid
    pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# SIGTERM, then SIGKILL after TIMEOUT seconds (default 10).
stop_component() { # NAME [TIMEOUT]
    local name=$1 timeout=${2:-10} pid i
    pid=$(component_pid "$name") || { rm -f "$DIR/run/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) did not stop in ${timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$DIR/run/$name.pid"
    say "stopped $name"
}

# Runs CHECK every 0.5s until it succeeds; fails after TIMEOUT seconds, or at
# once when COMPONENT died, with that component's last log lines.
wait_for() { # WHAT TIMEOUT COMPONENT CHECK...
    local what=$1 timeout=$2 component=$3 deadline
    shift 3
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! component_pid "$component" >/dev/null; then
            die "$component exited while waiting for $what" "$component"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "no $what after ${timeout}s" "$component"
        fi
        sleep 0.5
    done
    say "$what"
}

kubectl_node() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

node_ready() {
    [ "$(kubectl_node get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

start_kubelet() {
    local args=(--config "$DIR/kubelet/config.yaml" --kubeconfig "$DIR/kubeconfig"
        --root-dir "$DIR/kubelet/root" --cert-dir "$DIR/kubelet/pki"
        --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --v "${DRIFTPROBE_KUBELET_V:-1}")
    case "$K8S_VERSION" in
        v1.1* | v1.20.* | v1.21.* | v1.22.* | v1.23.*)
            args+=(--container-runtime remote --container-runtime-endpoint "unix://$CONTAINERD_SOCK"
                --image-service-endpoint "unix://$CONTAINERD_SOCK") ;;
    esac
    start_component kubelet "$BIN/kubelet" "${args[@]}"
    wait_for "kubelet healthz" 60 kubelet curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"
}

# Lists "TOOL TABLE CHAIN" for every KUBE-* chain (iptables and ip6tables).
# The kubelet runs with makeIPTablesUtilChains: false, but kube-proxy-less
# kubelets of other releases (and earlier runs) may leave these behind.
kube_iptables_chains() {
    local tool table
    for tool in iptables ip6tables; do
        command -v "$tool" >/dev/null 2>&1 || continue
        for table in filter nat mangle; do
            "$tool" -w -t "$table" -S 2>/dev/null | awk -v t="$tool $table" '$1 == "-N" && $2 ~ /^KUBE-/ { print t, $2 }'
        done
    done
}

# Removes the KUBE-* chains not listed in SAVED (and the rules jumping to them).
remove_new_kube_iptables() { # SAVED
    local tool table chain rule
    kube_iptables_chains | grep -vxF -f "$1" | while read -r tool table chain; do
        "$tool" -w -t "$table" -S | grep -- "-j $chain\$\|-j $chain " | grep '^-A' | while read -r rule; do
            eval "$tool -w -t $table -D ${rule#-A }" 2>/dev/null
        done
        "$tool" -w -t "$table" -F "$chain" 2>/dev/null
        "$tool" -w -t "$table" -X "$chain" 2>/dev/null && say "removed $tool -t $table chain $chain"
    done
}
