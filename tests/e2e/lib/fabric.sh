# shellcheck shell=bash
# fabric.sh - the simulated cluster network: a control-plane namespace holding a bridge,
# and one namespace per node joined to it by a veth pair.
#
#   netns $E2E_PREFIX-cp        bridge <P>br, 10.77.0.254/24, fd00:77::fe/64 (API server)
#   netns $E2E_PREFIX-node-a    veth <P>a   10.77.0.1/24, fd00:77::1/64 ---- <P>a-br on the bridge
#   netns $E2E_PREFIX-node-b    veth <P>b   10.77.0.2/24, fd00:77::2/64 ---- <P>b-br
#   netns $E2E_PREFIX-node-c    veth <P>c   10.77.0.3/24, fd00:77::3/64 ---- <P>c-br
# (<P> = v$E2E_RUN; the veth ends are created directly inside their namespaces, so no
# interface of this run ever exists in the host namespace.) No namespace has a default
# route: traffic stays between these addresses.
#
# A node's "host side" (where vmigrated runs) is its network namespace with the host's
# mount namespace: node_exec NODE CMD... (ip netns exec). Node directories live under
# $E2E_ROOT/<node>/.

E2E_CP_ADDR4=10.77.0.254
E2E_CP_ADDR6=fd00:77::fe

# node_index node-a -> 1, node-b -> 2, ... (the last letter of the name).
node_index() {
    local n=$1 l
    [[ $n =~ ^node-([a-y])$ ]] || e2e_die "bad node name '$n' (want node-a .. node-y)"
    l=${BASH_REMATCH[1]}
    printf '%d\n' $(($(printf '%d' "'$l") - 96))
}
node_letter() { echo "${1#node-}"; }
node_netns() { echo "$E2E_PREFIX-$1"; }
node_dir() { echo "$E2E_ROOT/$1"; }
node_veth() { echo "v$E2E_RUN$(node_letter "$1")"; }
node_addr() { # NODE [4|6]
    local i
    i=$(node_index "$1")
    if [[ ${2:-4} == 6 ]]; then echo "fd00:77::$(printf '%x' "$i")"; else echo "10.77.0.$i"; fi
}
cp_netns() { echo "$E2E_PREFIX-cp"; }

# fabric_nodes: the nodes of this run, one per line.
fabric_nodes() { cat "$E2E_ROOT/nodes" 2>/dev/null || true; }

# node_exec NODE CMD...: run CMD on the node's host side (its netns, the host's mounts).
node_exec() {
    local n=$1
    shift
    ip netns exec "$(node_netns "$n")" "$@"
}
cp_exec() { ip netns exec "$(cp_netns)" "$@"; }

# fabric_up NODE...: the control plane and the given nodes (default node-a node-b).
fabric_up() {
    local nodes=("$@") n cp br
    ((${#nodes[@]})) || nodes=(node-a node-b)
    e2e_init
    pod_identity_files
    cp=$(cp_netns)
    br=v${E2E_RUN}br
    ip netns add "$cp"
    ip -n "$cp" link set lo up
    ip -n "$cp" link add "$br" type bridge
    # no STP, no forwarding delay: ports forward as soon as they are up
    ip -n "$cp" link set "$br" type bridge stp_state 0 forward_delay 0
    ip -n "$cp" addr add "$E2E_CP_ADDR4/24" dev "$br"
    ip -n "$cp" addr add "$E2E_CP_ADDR6/64" dev "$br" nodad
    ip -n "$cp" link set "$br" up
    for n in "${nodes[@]}"; do
        fabric_add_node "$n"
    done
}

# fabric_add_node NODE: one more node on the bridge (also after fabric_up).
fabric_add_node() {
    local n=$1 ns veth cp br
    ns=$(node_netns "$n")
    veth=$(node_veth "$n")
    cp=$(cp_netns)
    br=v${E2E_RUN}br
    mkdir -p "$(node_dir "$n")/pods"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "$veth" netns "$ns" type veth peer name "$veth-br" netns "$cp"
    ip -n "$cp" link set "$veth-br" master "$br"
    ip -n "$cp" link set "$veth-br" up
    ip -n "$ns" addr add "$(node_addr "$n" 4)/24" dev "$veth"
    ip -n "$ns" addr add "$(node_addr "$n" 6)/64" dev "$veth" nodad
    ip -n "$ns" link set "$veth" up
    echo "$n" >>"$E2E_ROOT/nodes"
}

# node_spawn NODE NAME COMM_REGEX CMD...: start a long-running process (vmigrated, a
# proxy) on the node's host side, tracked like every process of the run (e2e_spawn):
# log in $E2E_ROOT/logs/NAME.log, stopped by e2e_stop NAME or e2e_cleanup.
node_spawn() {
    local n=$1 name=$2 comm=$3
    shift 3
    e2e_spawn "$name" "$comm" ip netns exec "$(node_netns "$n")" "$@"
}

# node_tls NODE: a certificate for the node (CN and dNSName NODE, iPAddress its IPv4
# and IPv6 addresses) signed by the run's test CA, made once by scripts/gen-certs; prints
# the directory: ca.pem, NODE.pem, NODE-key.pem (mutual TLS between vmigrated peers).
node_tls() {
    local n=$1 d=$E2E_ROOT/tls
    if [[ ! -s $d/$n.pem ]]; then
        mkdir -p "$d"
        "$E2E_SOURCE_ROOT/scripts/gen-certs" "$d" "$n" "$(node_addr "$n" 4)" "$(node_addr "$n" 6)" >/dev/null
    fi
    echo "$d"
}

# veth_bytes NODE [tx|rx|sum]: bytes counted on the node's veth (default tx: what left
# the node). Read from the node namespace's own sysfs.
veth_bytes() {
    local n=$1 dir=${2:-tx} v tx rx
    v=$(node_veth "$n")
    read -r tx < <(node_exec "$n" cat "/sys/class/net/$v/statistics/tx_bytes")
    read -r rx < <(node_exec "$n" cat "/sys/class/net/$v/statistics/rx_bytes")
    case $dir in
    tx) echo "$tx" ;;
    rx) echo "$rx" ;;
    sum) echo $((tx + rx)) ;;
    *) e2e_die "veth_bytes: want tx, rx or sum, not '$dir'" ;;
    esac
}

# fabric_reachable DST_NODE 4|6 CMD-PREFIX...: can a TCP connection be opened from where
# CMD-PREFIX runs a program (e.g. `node_exec node-a`, `pod_exec node-a ns1 vm1`) to
# DST_NODE's address? A one-shot listener on DST_NODE makes "refused" impossible, so a
# failure means no route (or a filter).
fabric_reachable() {
    local dst=$1 fam=$2 addr port=9 l rc=0
    shift 2
    addr=$(node_addr "$dst" "$fam")
    [[ $fam == 6 ]] && addr="[$addr]"
    ip netns exec "$(node_netns "$dst")" timeout 10 socat -u "TCP$fam-LISTEN:$port,bind=$addr,reuseaddr" OPEN:/dev/null &
    l=$!
    e2e_wait_for 5 "probe listener on $dst" _fabric_listening "$dst" "$port" || rc=1
    if ((rc == 0)); then "$@" timeout 3 socat -u OPEN:/dev/null "TCP$fam:$addr:$port" 2>/dev/null || rc=1; fi
    kill "$l" 2>/dev/null || true
    wait "$l" 2>/dev/null || true
    return "$rc"
}
_fabric_listening() { grep -q ":$2\b" <<<"$(node_exec "$1" ss -Hltn 2>/dev/null)"; }

# e2e_netns_of_run: every network namespace of this run (control plane, nodes, pods).
e2e_netns_of_run() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$E2E_PREFIX-" || true
}

# e2e_cleanup: stop every process of this run and remove its namespaces; the run
# directory goes too unless KEEP_STATE=1 (then the logs stay for inspection).
# Idempotent, never fails, safe to call from a trap.
e2e_cleanup() {
    local f pid comm ns p pids=() round
    [[ -d $E2E_ROOT || -n $(e2e_netns_of_run) ]] || return 0
    # the domains first, politely, while the pod daemons still answer
    if declare -F pod_destroy_all >/dev/null; then pod_destroy_all 2>/dev/null || true; fi
    # everything started through e2e_spawn (proxies, daemons, API server, libvirtd)
    for f in "$E2E_ROOT"/pids/*.pid; do
        [[ -e $f ]] || continue
        read -r pid comm 2>/dev/null <"$f" || continue
        e2e_pid_is "$pid" "$comm" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid:$comm")
    done
    for p in "${pids[@]}"; do e2e_kill_pid "${p%%:*}" "${p#*:}" 30; done
    rm -f "$E2E_ROOT"/pids/*.pid
    # QEMU outlives its libvirtd: libvirt's pidfiles under each pod's /run
    for f in "$E2E_ROOT"/node-*/pods/*/run/libvirt/qemu/*.pid; do
        [[ -e $f ]] || continue
        e2e_kill_pid "$(cat "$f" 2>/dev/null)" '^qemu-system' 30
        rm -f "$f"
    done
    # anything still inside one of our namespaces was started by this run
    for round in 1 2; do
        for ns in $(e2e_netns_of_run); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill "-$([[ $round == 1 ]] && echo TERM || echo KILL)" "$pid" 2>/dev/null || true
            done
        done
        [[ $round == 1 ]] && sleep 0.5
    done
    for ns in $(e2e_netns_of_run); do
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ ${KEEP_STATE:-0} == 1 ]]; then
        # no owner any more, so later runs do not clean it up as stale (only --all does)
        [[ -e $E2E_ROOT/owner ]] && mv -f "$E2E_ROOT/owner" "$E2E_ROOT/kept"
        e2e_log "KEEP_STATE=1: state kept in $E2E_ROOT"
    elif [[ (-e $E2E_ROOT/owner || -e $E2E_ROOT/kept) && $E2E_ROOT == "$E2E_BASE"/?* ]]; then
        rm -rf "$E2E_ROOT"
    fi
    return 0
}

# e2e_cleanup_stale [--all]: clean up other runs under $E2E_BASE whose shell is gone;
# with --all also those kept with KEEP_STATE=1. A run is known by its directory
# $E2E_BASE/<run> with an owner file (kept runs: a "kept" file); namespaces named like
# ours but without such a directory belong to someone else's harness (another E2E_BASE)
# and are left alone, and so are runs whose shell still exists.
e2e_cleanup_stale() {
    local all=0 f run
    [[ ${1:-} == --all ]] && all=1
    for f in "$E2E_BASE"/*/owner "$E2E_BASE"/*/kept; do
        [[ -e $f ]] || continue
        [[ $f == */kept && $all == 0 ]] && continue
        run=$(basename "$(dirname "$f")")
        [[ $run == "$E2E_RUN" || ! $run =~ ^[A-Za-z0-9]{1,8}$ ]] && continue
        [[ $f == */owner ]] && e2e_run_alive "$run" && continue
        e2e_log "cleaning up stale run $run"
        (E2E_RUN=$run E2E_ROOT=$E2E_BASE/$run E2E_PREFIX=ve2e-$run KEEP_STATE=0 e2e_cleanup)
    done
    return 0
}
