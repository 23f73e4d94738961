# lib-libvirtd.sh - start one private libvirtd (system mode, QEMU driver, TCG) for a test.
#
# Source this file, then:
#   vmig_libvirtd_start DIR [HOST_UUID] [HOSTNAME]  -> sets VMIG_LIBVIRTD_URI, VMIG_LIBVIRTD_PID
#   vmig_libvirtd_stop                                 (idempotent; call it from an EXIT trap)
#
# The daemon runs the way ../shared/reference/e2e-recipe/two-node.sh runs a node: in its own
# network namespace (created here, `ip netns exec` also gives it a fresh /sys without cgroup
# mounts, so libvirt creates no cgroups) and a private mount + UTS namespace in which /run,
# /var/{lib,cache,log}/libvirt and /etc/libvirt point into DIR and /etc/passwd, /etc/group carry a
# libvirt-qemu entry (system-mode libvirtd resolves that user before it reads qemu.conf). Its
# config has a host_uuid, stdio_handler=file (no virtlogd), QEMU as root without security driver
# or cgroups. Nothing is written outside DIR; the socket is DIR/run/libvirt-sock (keep DIR short:
# unix socket paths are limited to 108 bytes). Requires root, ip, unshare, libvirtd, virsh.
#
# VMIG_LIBVIRTD_CACHE (optional): a directory kept between runs for libvirt's QEMU capability
# cache (/var/cache/libvirt/qemu/capabilities). The first connection to a fresh daemon probes
# QEMU for ~4.5-8 s; with a warm cache the daemon is ready in ~0.3 s. libvirt validates every
# entry (QEMU binary, libvirt version, kernel, microcode) and re-probes a stale one, so sharing
# it is safe; files are copied back with an atomic rename, so parallel runs never read half a file.

vmig_libvirtd_log() { printf '[lib-libvirtd %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# vmig_libvirtd_missing: prints what is missing to run a daemon (empty when all is there).
vmig_libvirtd_missing() {
    local t out=""
    [[ $(id -u) == 0 ]] || out+="root "
    for t in ip unshare libvirtd virsh qemu-system-x86_64; do
        command -v "$t" >/dev/null 2>&1 || out+="$t "
    done
    printf '%s' "$out"
}

vmig_libvirtd_start() { # DIR [HOST_UUID] [HOSTNAME]
    local R=$1 uuid=${2:-$(cat /proc/sys/kernel/random/uuid)} host=${3:-vmig-test-node} i
    VMIG_LIBVIRTD_DIR=$R
    VMIG_LIBVIRTD_NETNS=vmig-lv-$$-$RANDOM
    mkdir -p "$R"/{run,lib,cache/qemu/capabilities,log/qemu,etc}
    if [[ -n ${VMIG_LIBVIRTD_CACHE:-} && -d $VMIG_LIBVIRTD_CACHE ]]; then
        cp "$VMIG_LIBVIRTD_CACHE"/*.xml "$R/cache/qemu/capabilities/" 2>/dev/null
    fi
    cp /etc/passwd "$R/passwd"
    cp /etc/group "$R/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$R/passwd"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$R/group"
    cat >"$R/etc/libvirtd.conf" <<CONF
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "$uuid"
log_outputs = "${LIBVIRT_LOG_LEVEL:-3}:file:/var/log/libvirt/libvirtd.log"
CONF
    cat >"$R/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
    ip netns add "$VMIG_LIBVIRTD_NETNS" || return 1
    ip -n "$VMIG_LIBVIRTD_NETNS" link set lo up
    (
        exec ip netns exec "$VMIG_LIBVIRTD_NETNS" unshare --mount --uts --propagation private -- bash -c '
            set -e
            R=$1; hostname "$2"
            mount -t tmpfs -o mode=0755 tmpfs /run
            mkdir -p /run/libvirt
            mount --bind "$R/run" /run/libvirt
            for d in lib cache log; do
                mount -t tmpfs -o mode=0755 tmpfs "/var/$d"
                mkdir -p "/var/$d/libvirt"
                mount --bind "$R/$d" "/var/$d/libvirt"
            done
            mount --bind "$R/etc" /etc/libvirt
            mount --bind "$R/passwd" /etc/passwd
            mount --bind "$R/group" /etc/group
            exec libvirtd
        ' vmig-libvirtd "$R" "$host"
    ) >"$R/libvirtd.stdout" 2>&1 &
    VMIG_LIBVIRTD_PID=$!
    VMIG_LIBVIRTD_URI="qemu+unix:///system?socket=$R/run/libvirt-sock"
    export VMIG_LIBVIRTD_URI VMIG_LIBVIRTD_PID
    # The PID is ip/unshare/bash for a moment before it execs libvirtd: check existence only.
    for ((i = 0; i < 300; i++)); do
        if [[ -S $R/run/libvirt-sock ]] && virsh -q -c "$VMIG_LIBVIRTD_URI" version >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$VMIG_LIBVIRTD_PID" 2>/dev/null; then
            vmig_libvirtd_log "libvirtd died:"
            tail -n 20 "$R/libvirtd.stdout" "$R/log/libvirtd.log" >&2 2>/dev/null
            return 1
        fi
        sleep 0.1
    done
    vmig_libvirtd_log "libvirtd not ready after 30 s"
    return 1
}

vmig_libvirtd_stop() {
    local R=${VMIG_LIBVIRTD_DIR:-} pid=${VMIG_LIBVIRTD_PID:-} f qpid i d
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        for d in $(timeout 10 virsh -q -c "$VMIG_LIBVIRTD_URI" list --name 2>/dev/null); do
            timeout 10 virsh -q -c "$VMIG_LIBVIRTD_URI" destroy "$d" >/dev/null 2>&1 || true
        done
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    # QEMU outlives its libvirtd: kill any left by libvirt's pidfiles (checking the command).
    if [[ -n $R ]]; then
        for f in "$R"/run/qemu/*.pid; do
            [[ -f $f ]] || continue
            qpid=$(cat "$f" 2>/dev/null)
            [[ -n $qpid && $(cat "/proc/$qpid/comm" 2>/dev/null) == qemu-system-* ]] && kill -KILL "$qpid" 2>/dev/null
        done
    fi
    [[ -n ${VMIG_LIBVIRTD_NETNS:-} ]] && ip netns delete "$VMIG_LIBVIRTD_NETNS" 2>/dev/null
    if [[ -n $R && -n ${VMIG_LIBVIRTD_CACHE:-} ]] && mkdir -p "$VMIG_LIBVIRTD_CACHE" 2>/dev/null; then
        for f in "$R"/cache/qemu/capabilities/*.xml; do
            [[ -f $f ]] || continue
            cp "$f" "$VMIG_LIBVIRTD_CACHE/.${f##*/}.$$" &&
                mv -f "$VMIG_LIBVIRTD_CACHE/.${f##*/}.$$" "$VMIG_LIBVIRTD_CACHE/${f##*/}"
        done
    fi
    VMIG_LIBVIRTD_PID=
    VMIG_LIBVIRTD_NETNS=
    return 0
}
