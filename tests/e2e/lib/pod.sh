# shellcheck shell=bash
# pod.sh - VM pods: what virt-launcher's pod is to KubeVirt.
#
# A pod NS/NAME on NODE is
#   * its own network namespace $E2E_PREFIX-<node>-<ns>_<name> with only `lo` (no route to
#     anything: migration bytes can leave only through unix sockets, as in KubeVirt);
#   * its own mount + UTS namespace (unshare --mount --uts --propagation private) in which
#     /run, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt are the
#     pod's own directories, /etc/passwd and /etc/group carry a libvirt-qemu entry, and
#     /run/kubevirt is the pod's share directory;
#   * its own libvirtd (system mode, own host_uuid) whose first process is the pod's
#     "init": pod_pid; /proc/<pod_pid>/root/run/kubevirt is the share directory seen
#     through the pod, exactly as virt-handler reaches a virt-launcher pod.
# Node-side paths (pod_dir = $E2E_ROOT/<node>/pods/<ns>_<name>):
#   <pod_dir>/run/libvirt/libvirt-sock         the pod's libvirt socket (pod_uri)
#   <pod_dir>/share/migrationproxy/            the pod's /run/kubevirt/migrationproxy/
#   <pod_dir>/log/qemu/<ns>_<name>-serial.log  the guest's COM1
#   <pod_dir>/log/libvirtd.log, <pod_dir>/log/qemu/<ns>_<name>.log
# With E2E_POD_HOST_NETWORK=1 at pod_create, the pod is a "hostNetwork" variant: no netns of
# its own (libvirtd and QEMU run in the node's), and its libvirtd also listens on TCP at the
# node's address (port E2E_POD_TCP_PORT, 16509, no auth): the baseline for migrations that
# bypass any proxy (qemu+tcp:// dconnuri, tcp:// migrate_uri; bench/bench-migration). The
# unix sockets are the same, so every other migration path still works with such pods.
# The source pod of a VM is made by the test before vm_start; the target pod is made by
# the test too, on the target node, before the migration (KubeVirt's controller creates it
# from the VMIM; here the test plays that part).

pod_check_names() { # NS NAME
    local re='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
    [[ $1 =~ $re ]] || e2e_die "bad namespace '$1' (want a DNS-1123 label)"
    [[ $2 =~ $re ]] || e2e_die "bad name '$2' (want a DNS-1123 label)"
}
pod_dir() { echo "$E2E_ROOT/$1/pods/$2_$3"; }
pod_netns() { echo "$E2E_PREFIX-$1-$2_$3"; }
pod_proc() { echo "libvirtd-$1-$2_$3"; }
pod_sock() { echo "$(pod_dir "$@")/run/libvirt/libvirt-sock"; }
pod_uri() { echo "qemu+unix:///system?socket=$(pod_sock "$@")"; }
pod_pid() { e2e_pid "$(pod_proc "$@")"; }

# pod_path_template NODE [dir|share|libvirt-sock]: the node-side path of any pod's
# directory, share directory (its /run/kubevirt) or libvirt socket, with vmigrated's
# placeholders {namespace} and {name}, for the daemon's "find the VMI's pod" option.
pod_path_template() {
    local base="$E2E_ROOT/$1/pods/{namespace}_{name}"
    case ${2:-dir} in
    dir) echo "$base" ;;
    share) echo "$base/share" ;;
    libvirt-sock) echo "$base/run/libvirt/libvirt-sock" ;;
    *) e2e_die "pod_path_template: want dir, share or libvirt-sock, not '$2'" ;;
    esac
}

# pod_virsh NODE NS NAME VIRSH-ARGS...: virsh against the pod's libvirtd.
pod_virsh() {
    local n=$1 ns=$2 name=$3
    shift 3
    virsh -q -c "$(pod_uri "$n" "$ns" "$name")" "$@"
}

# pod_exec NODE NS NAME CMD...: run CMD inside the pod (its mount, UTS and net namespaces).
pod_exec() {
    local pid
    pid=$(pod_pid "$1" "$2" "$3")
    shift 3
    nsenter -t "$pid" -m -u -n "$@"
}

# The libvirt-qemu user: libvirtd (system mode) resolves its built-in default QEMU user
# before it reads qemu.conf, and only libvirt-daemon-system (not installed) creates it.
pod_identity_files() {
    local tmp
    [[ -s $E2E_ROOT/etc/group ]] && return 0
    mkdir -p "$E2E_ROOT/etc"
    tmp=$(mktemp -d "$E2E_ROOT/etc/.tmp.XXXXXX")
    cp /etc/passwd "$tmp/passwd"
    cp /etc/group "$tmp/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$tmp/passwd"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$tmp/group"
    # passwd before group: group is what says "done" (pods may be created in parallel)
    mv -f "$tmp/passwd" "$E2E_ROOT/etc/passwd"
    mv -f "$tmp/group" "$E2E_ROOT/etc/group"
    rmdir "$tmp"
}

E2E_POD_TCP_PORT=16509

pod_write_config() { # POD_DIR HOST_UUID [TCP_LISTEN_ADDR]
    local d=$1 tcp="listen_tcp = 0"
    [[ -n ${3:-} ]] && tcp="listen_tcp = 1
listen_addr = \"$3\"
tcp_port = \"$E2E_POD_TCP_PORT\"
auth_tcp = \"none\""
    cat >"$d/etc/libvirtd.conf" <<EOF
# pod-private libvirtd: unix socket only, no auth (the socket is reachable only
# through the pod's directories); host_uuid differs per pod, otherwise libvirt refuses
# "Attempt to migrate guest to the same host".
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
$tcp
host_uuid = "$2"
log_outputs = "${LIBVIRT_LOG_LEVEL:-3}:file:/var/log/libvirt/libvirtd.log"
keepalive_interval = 5
keepalive_count = 5
EOF
    # QEMU as root without relabelling, security driver, cgroups or private /dev;
    # stdio to files (no virtlogd here: nothing would start it).
    cat >"$d/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
}

# The first libvirtd of a machine spends ~4.5 s probing QEMU's capabilities. The result is
# the same for every pod (same binaries, same host), so it is kept in $E2E_BASE/qemu-caps
# and given to each new pod; libvirt re-probes anyway when it finds the cache stale.
E2E_CAPS_CACHE=${E2E_CAPS_CACHE:-$E2E_BASE/_qemu-caps}

pod_caps_seed() { # POD_DIR
    if compgen -G "$E2E_CAPS_CACHE/*.xml" >/dev/null; then
        mkdir -p "$1/cache/qemu/capabilities"
        cp "$E2E_CAPS_CACHE"/*.xml "$1/cache/qemu/capabilities/"
    fi
}

pod_caps_save() { # POD_DIR
    local src=$1/cache/qemu/capabilities tmp
    compgen -G "$E2E_CAPS_CACHE/*.xml" >/dev/null && return 0
    compgen -G "$src/*.xml" >/dev/null || return 0
    mkdir -p "$E2E_BASE"
    tmp=$(mktemp -d "$E2E_BASE/.caps.XXXXXX")
    cp "$src"/*.xml "$tmp/"
    mv -T "$tmp" "$E2E_CAPS_CACHE" 2>/dev/null || rm -rf "$tmp"
}

# pod_create NODE NS NAME [NODE NS NAME ...]: make the pod(s) and start their libvirtd
# (all at once), return when every one answers (a few seconds the first time on a
# machine, well under one with a warm capabilities cache).
pod_create() {
    local i
    (($# % 3 == 0 && $# > 0)) || e2e_die "pod_create: want NODE NS NAME triples, got '$*'"
    for ((i = 1; i <= $#; i += 3)); do
        _pod_start "${@:i:3}"
    done
    for ((i = 1; i <= $#; i += 3)); do
        _pod_wait "${@:i:3}"
    done
}

_pod_start() {
    local n=$1 ns=$2 name=$3 d netns proc
    pod_check_names "$ns" "$name"
    [[ -d $(node_dir "$n") ]] || e2e_die "pod_create: node $n does not exist (fabric_up first)"
    d=$(pod_dir "$n" "$ns" "$name")
    netns=$(pod_netns "$n" "$ns" "$name")
    proc=$(pod_proc "$n" "$ns" "$name")
    if e2e_pid_is "$(e2e_pid "$proc")" '^libvirtd$'; then e2e_die "pod_create: pod $ns/$name already runs on $n"; fi
    mkdir -p "$d"/{run/libvirt,run/kubevirt,share/migrationproxy,lib/images,cache,log/qemu,etc}
    pod_identity_files
    [[ -s $d/host_uuid ]] || e2e_uuid >"$d/host_uuid"
    local hostnet=${E2E_POD_HOST_NETWORK:-0} listen=()
    if ((hostnet)); then
        netns=$(node_netns "$n")
        listen=(--listen)
        pod_write_config "$d" "$(cat "$d/host_uuid")" "$(node_addr "$n" 4)"
    else
        pod_write_config "$d" "$(cat "$d/host_uuid")"
    fi
    pod_caps_seed "$d"
    if ! ((hostnet)); then
        grep -qxF "$netns" <<<"$(ip netns list | awk '{print $1}')" || ip netns add "$netns"
        ip -n "$netns" link set lo up
    fi
    # shellcheck disable=SC2016 # expanded by the pod's shell
    e2e_spawn "$proc" '^libvirtd$' ip netns exec "$netns" \
        unshare --mount --uts --propagation private -- bash -c '
            set -e
            d=$1 host=$2 etc=$3
            hostname "$host"
            mount --bind "$d/run" /run
            mount --bind "$d/share" /run/kubevirt
            for v in lib cache log; do
                # /var/{lib,cache,log}/libvirt need not exist on the host: put a tmpfs
                # over the parent inside the pod and the pod directory on top of it
                mount -t tmpfs -o mode=0755 tmpfs "/var/$v"
                mkdir -p "/var/$v/libvirt"
                mount --bind "$d/$v" "/var/$v/libvirt"
            done
            mount --bind "$d/etc" /etc/libvirt
            mount --bind "$etc/passwd" /etc/passwd
            mount --bind "$etc/group" /etc/group
            exec libvirtd "${@:4}"
        ' pod "$d" "$name" "$E2E_ROOT/etc" "${listen[@]}"
    printf 'NODE=%s\nNS=%s\nNAME=%s\nHOST_NETWORK=%s\n' "$n" "$ns" "$name" "$hostnet" >"$d/pod.env"
    local longest=$d/share/migrationproxy/00000000-0000-0000-0000-000000000000-49152-source.sock
    if ((${#longest} > 107)); then
        e2e_log "note: node-side migration socket paths of pod $ns/$name are ${#longest} bytes (> 107):" \
            "bind/connect them relative to their directory or via /proc/$(pod_pid "$n" "$ns" "$name")/root/run/kubevirt"
    fi
}

_pod_wait() {
    local n=$1 ns=$2 name=$3 d
    d=$(pod_dir "$n" "$ns" "$name")
    if ! e2e_wait_for 90 "libvirtd of pod $ns/$name on $n" pod_ready "$n" "$ns" "$name"; then
        tail -n 20 "$E2E_ROOT/logs/$(pod_proc "$n" "$ns" "$name").log" "$d/log/libvirtd.log" >&2 2>/dev/null || true
        e2e_die "pod $ns/$name on $n: libvirtd did not come up"
    fi
    pod_caps_save "$d"
}

pod_ready() { # NODE NS NAME: the socket answers (and the process we started is alive)
    local pid
    pid=$(pod_pid "$1" "$2" "$3")
    # (the PID is ip/unshare/bash for a moment before it becomes libvirtd: existence only)
    e2e_pid_is "$pid" . || { e2e_log "libvirtd of pod $2/$3 on $1 exited"; return 2; }
    [[ -S $(pod_sock "$@") ]] && pod_virsh "$@" version >/dev/null 2>&1
}

# pod_destroy NODE NS NAME: stop the pod's domains, libvirtd and QEMU, remove its netns.
# Its directory stays (logs) until e2e_cleanup.
pod_destroy() {
    local n=$1 ns=$2 name=$3 d dom f
    d=$(pod_dir "$n" "$ns" "$name")
    if [[ -S $d/run/libvirt/libvirt-sock ]]; then
        for dom in $(timeout 10 virsh -q -c "$(pod_uri "$n" "$ns" "$name")" list --name 2>/dev/null); do
            timeout 10 virsh -q -c "$(pod_uri "$n" "$ns" "$name")" destroy "$dom" >/dev/null 2>&1 || true
        done
    fi
    e2e_stop "$(pod_proc "$n" "$ns" "$name")"
    for f in "$d"/run/libvirt/qemu/*.pid; do
        [[ -e $f ]] || continue
        e2e_kill_pid "$(cat "$f" 2>/dev/null)" '^qemu-system' 30
        rm -f "$f"
    done
    # (a hostNetwork pod has no netns of its own: never delete the node's)
    grep -qx 'HOST_NETWORK=1' "$d/pod.env" 2>/dev/null ||
        ip netns del "$(pod_netns "$n" "$ns" "$name")" 2>/dev/null || true
}

# pod_destroy_all: destroy the domains of every pod of this run (in parallel; the
# processes themselves are stopped by e2e_cleanup).
pod_destroy_all() {
    local env uri dom pids=() p
    for env in "$E2E_ROOT"/node-*/pods/*/pod.env; do
        [[ -e $env ]] || continue
        uri="qemu+unix:///system?socket=$(dirname "$env")/run/libvirt/libvirt-sock"
        [[ -S ${uri#*socket=} ]] || continue
        (
            for dom in $(timeout 10 virsh -q -c "$uri" list --name 2>/dev/null); do
                timeout 10 virsh -q -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
            done
        ) &
        pids+=($!)
    done
    # only these: the daemons are children of this shell too
    for p in "${pids[@]}"; do wait "$p" || true; done
}
