# shellcheck shell=bash
# proxy-socat.sh - a TEMPORARY migration proxy made of socat processes, so the harness
# can be proven before vmigrated's own proxy (`vmigratectl proxy source|target`) exists;
# that proxy replaces it. It serves the same sockets and ports KubeVirt's virt-handler
# does (pkg/virt-handler/migration-proxy):
#
#   source node (node netns), in the source pod's /run/kubevirt/migrationproxy/:
#     <uid>-source.sock        libvirt control (dconnuri)  -> TCP <dst addr>:22222
#     <uid>-49152-source.sock  QEMU memory stream          -> TCP <dst addr>:49152
#     <uid>-49153-source.sock  NBD block stream (--disk)   -> TCP <dst addr>:49153
#   target node (node netns):
#     TCP :22222 -> the target pod's libvirt-sock
#     TCP :49152 -> the target pod's /run/kubevirt/migrationproxy/<uid>-49152-source.sock
#     TCP :49153 -> ...-49153-source.sock (both created by the destination QEMU)
# Plain TCP, no TLS. socat runs in the socket's directory and names it relative to it:
# the node-side path of a pod socket can exceed the 108-byte sun_path limit.

E2E_SOCAT_CTL_PORT=22222
E2E_SOCAT_MEM_PORT=49152
E2E_SOCAT_DISK_PORT=49153

socat_proxy_name() { echo "proxy-$1_$2-$3"; } # NS NAME ROLE

# socat_proxy_start SRC DST NS NAME [--disk]: the proxy pair for migrating NS/NAME from
# node SRC to node DST; returns when the source sockets exist and the target listens.
socat_proxy_start() {
    local src=$1 dst=$2 ns=$3 name=$4 disk=0 uid sdir ddir daddr kinds k port
    [[ ${5:-} == --disk ]] && disk=1
    uid=$(vm_uid "$ns" "$name")
    sdir=$(pod_dir "$src" "$ns" "$name")/share/migrationproxy
    ddir=$(pod_dir "$dst" "$ns" "$name")/share/migrationproxy
    daddr=$(node_addr "$dst" 4)
    [[ -d $sdir ]] || e2e_die "socat_proxy_start: no pod $ns/$name on $src"
    [[ -d $ddir ]] || e2e_die "socat_proxy_start: no target pod $ns/$name on $dst"
    kinds=(mem)
    ((disk)) && kinds+=(disk)
    # target side first: the source's libvirt connects as soon as the migration starts
    E2E_SPAWN_CWD=$(pod_dir "$dst" "$ns" "$name")/run/libvirt \
        e2e_spawn "$(socat_proxy_name "$ns" "$name" dst-ctl)" '^socat$' \
        ip netns exec "$(node_netns "$dst")" socat -d -d -b 262144 \
        "TCP-LISTEN:$E2E_SOCAT_CTL_PORT,bind=$daddr,reuseaddr,fork" UNIX-CONNECT:libvirt-sock
    for k in "${kinds[@]}"; do
        port=$([[ $k == mem ]] && echo $E2E_SOCAT_MEM_PORT || echo $E2E_SOCAT_DISK_PORT)
        # the destination QEMU creates this socket after Prepare; socat connects to it
        # only when the first TCP connection arrives
        E2E_SPAWN_CWD=$ddir e2e_spawn "$(socat_proxy_name "$ns" "$name" "dst-$k")" '^socat$' \
            ip netns exec "$(node_netns "$dst")" socat -d -d -b 262144 \
            "TCP-LISTEN:$port,bind=$daddr,reuseaddr,fork" "UNIX-CONNECT:$uid-$port-source.sock"
    done
    rm -f "$sdir/$uid-source.sock" "$sdir/$uid-$E2E_SOCAT_MEM_PORT-source.sock" "$sdir/$uid-$E2E_SOCAT_DISK_PORT-source.sock"
    E2E_SPAWN_CWD=$sdir e2e_spawn "$(socat_proxy_name "$ns" "$name" src-ctl)" '^socat$' \
        ip netns exec "$(node_netns "$src")" socat -d -d -b 262144 \
        "UNIX-LISTEN:$uid-source.sock,unlink-early,fork" "TCP:$daddr:$E2E_SOCAT_CTL_PORT"
    for k in "${kinds[@]}"; do
        port=$([[ $k == mem ]] && echo $E2E_SOCAT_MEM_PORT || echo $E2E_SOCAT_DISK_PORT)
        E2E_SPAWN_CWD=$sdir e2e_spawn "$(socat_proxy_name "$ns" "$name" "src-$k")" '^socat$' \
            ip netns exec "$(node_netns "$src")" socat -d -d -b 262144 \
            "UNIX-LISTEN:$uid-$port-source.sock,unlink-early,fork" "TCP:$daddr:$port"
    done
    e2e_wait_for 10 "socat proxies of $ns/$name" socat_proxy_up "$src" "$dst" "$ns" "$name" "${kinds[@]}" ||
        e2e_die "socat proxies for $ns/$name $src -> $dst did not come up"
}

socat_proxy_up() { # SRC DST NS NAME KIND...
    local src=$1 dst=$2 ns=$3 name=$4 uid sdir k listening
    shift 4
    uid=$(vm_uid "$ns" "$name")
    sdir=$(pod_dir "$src" "$ns" "$name")/share/migrationproxy
    [[ -S $sdir/$uid-source.sock ]] || return 1
    listening=$(node_exec "$dst" ss -Hltn 2>/dev/null)
    grep -q ":$E2E_SOCAT_CTL_PORT\b" <<<"$listening" || return 1
    for k in "$@"; do
        if [[ $k == mem ]]; then
            [[ -S $sdir/$uid-$E2E_SOCAT_MEM_PORT-source.sock ]] && grep -q ":$E2E_SOCAT_MEM_PORT\b" <<<"$listening" || return 1
        else
            [[ -S $sdir/$uid-$E2E_SOCAT_DISK_PORT-source.sock ]] && grep -q ":$E2E_SOCAT_DISK_PORT\b" <<<"$listening" || return 1
        fi
    done
}

# socat_proxy_stop NS NAME: stop the proxy pair of NS/NAME (as virt-handler does after
# the migration) and remove the source sockets.
socat_proxy_stop() {
    local ns=$1 name=$2 role f
    for role in src-ctl src-mem src-disk dst-ctl dst-mem dst-disk; do
        e2e_stop "$(socat_proxy_name "$ns" "$name" "$role")"
    done
    for f in "$E2E_ROOT"/node-*/pods/"$ns"_"$name"/share/migrationproxy/*-source.sock; do
        [[ -e $f ]] && rm -f "$f"
    done
    return 0
}
