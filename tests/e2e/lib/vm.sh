# shellcheck shell=bash
# vm.sh - the test guest inside a pod: build, define/start, state, serial-log checks.
#
# A VM NS/NAME is the libvirt domain <ns>_<name> (KubeVirt's domain name) in the pod
# NS/NAME of some node. Its facts (VMI UID, memory, dirty rate, disk) are kept in
# $E2E_ROOT/vms/<ns>_<name>.env, so every node sees the same ones.
# The guest (tests/e2e/guest/guest.S) prints once a second
#   T=<ticks> P=<passes> E=<errors> D=<pages/tick> B=<boot id> X=<last bad page>
# to COM1 = <pod_dir>/log/qemu/<ns>_<name>-serial.log.

E2E_GUEST_ELF=${E2E_GUEST_ELF:-}

# guest_build: assemble the guest into the build directory (tests/e2e/guest/ under
# $VMIG_BUILD_ROOT, as meson test sets it) or else $E2E_BASE/_guest, rebuilt when the
# source changes; sets E2E_GUEST_ELF. The path is the same in every pod (like a
# containerDisk): the destination QEMU opens it again at its own start.
guest_build() {
    local src=$E2E_DIR/guest out=$E2E_BASE/_guest tmp
    [[ -n $E2E_BUILD_ROOT && -d $E2E_BUILD_ROOT ]] && out=$E2E_BUILD_ROOT/tests/e2e/guest
    [[ -n $E2E_GUEST_ELF && -s $E2E_GUEST_ELF ]] && return 0
    mkdir -p "$out"
    if [[ ! -s $out/guest.elf || $src/guest.S -nt $out/guest.elf || $src/guest.ld -nt $out/guest.elf ]]; then
        tmp=$(mktemp -d "$out/.build.XXXXXX")
        as --32 -o "$tmp/guest.o" "$src/guest.S"
        ld -m elf_i386 --no-warn-rwx-segments -T "$src/guest.ld" -o "$tmp/guest.elf" "$tmp/guest.o"
        mv -f "$tmp/guest.elf" "$out/guest.elf"
        rm -rf "$tmp"
    fi
    E2E_GUEST_ELF=$out/guest.elf
}

vm_dom() { echo "$1_$2"; }
vm_env() { echo "$E2E_ROOT/vms/$1_$2.env"; }

# vm_get NS NAME KEY: UID, DOM_UUID, MEM (MiB), DIRTY (pages/tick), DISK_MB.
vm_get() {
    local f
    f=$(vm_env "$1" "$2")
    [[ -e $f ]] || e2e_die "vm $1/$2 was never started (vm_start)"
    sed -n "s/^$3=//p" "$f"
}
vm_uid() { vm_get "$1" "$2" UID; }
vm_serial() { echo "$(pod_dir "$1" "$2" "$3")/log/qemu/$2_$3-serial.log"; }

vm_xml() { # NS NAME
    local ns=$1 name=$2 disk=""
    if (($(vm_get "$ns" "$name" DISK_MB) > 0)); then
        disk="
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='/var/lib/libvirt/images/${ns}_${name}.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>"
    fi
    cat <<EOF
<domain type='qemu'>
  <name>$(vm_dom "$ns" "$name")</name>
  <uuid>$(vm_get "$ns" "$name" DOM_UUID)</uuid>
  <memory unit='MiB'>$(vm_get "$ns" "$name" MEM)</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$E2E_GUEST_ELF</kernel>
    <cmdline>dirty=$(vm_get "$ns" "$name" DIRTY)</cmdline>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>$disk
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/$(vm_dom "$ns" "$name")-serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# vm_start NODE NS NAME [--mem MiB] [--dirty PAGES_PER_TICK] [--disk-mb N] [--uid UUID]
# Define and start the guest in pod NS/NAME on NODE (the pod must exist) and wait for its
# first tick line. Defaults: 128 MiB, 64 pages/tick (25 MiB/s), no disk, a random VMI
# UID. --disk-mb N adds a node-local raw disk vda of N MiB random data (block migration).
vm_start() {
    local n=$1 ns=$2 name=$3 mem=128 dirty=64 disk_mb=0 uid="" d
    shift 3
    while (($#)); do
        case $1 in
        --mem) mem=$2; shift 2 ;;
        --dirty) dirty=$2; shift 2 ;;
        --disk-mb) disk_mb=$2; shift 2 ;;
        --uid) uid=$2; shift 2 ;;
        *) e2e_die "vm_start: unknown option '$1'" ;;
        esac
    done
    [[ $mem =~ ^[0-9]+$ && $mem -ge 16 ]] || e2e_die "vm_start $ns/$name: --mem '$mem' (want MiB >= 16)"
    [[ $dirty =~ ^[0-9]+$ ]] || e2e_die "vm_start $ns/$name: --dirty '$dirty' (want pages per tick)"
    [[ $disk_mb =~ ^[0-9]+$ ]] || e2e_die "vm_start $ns/$name: --disk-mb '$disk_mb' (want MiB)"
    d=$(pod_dir "$n" "$ns" "$name")
    [[ -e $d/pod.env ]] || e2e_die "vm_start: no pod $ns/$name on $n (pod_create first)"
    guest_build
    printf 'UID=%s\nDOM_UUID=%s\nMEM=%s\nDIRTY=%s\nDISK_MB=%s\n' \
        "${uid:-$(e2e_uuid)}" "$(e2e_uuid)" "$mem" "$dirty" "$disk_mb" >"$(vm_env "$ns" "$name")"
    if ((disk_mb > 0)); then
        head -c "$((disk_mb * 1048576))" /dev/urandom >"$d/lib/images/${ns}_$name.img"
    fi
    vm_xml "$ns" "$name" >"$d/domain.xml"
    pod_virsh "$n" "$ns" "$name" define "$d/domain.xml" >/dev/null
    pod_virsh "$n" "$ns" "$name" start "$(vm_dom "$ns" "$name")" >/dev/null
    e2e_wait_for 30 "first tick of $ns/$name on $n" guest_has_ticks "$n" "$ns" "$name" 1 ||
        e2e_die "vm_start: guest $ns/$name on $n printed no tick line"
}

# vm_prepare_target NODE NS NAME: what KubeVirt's target pod brings for the VM: an empty
# volume of the same size for each node-local disk (block migration fills it).
vm_prepare_target() {
    local n=$1 ns=$2 name=$3 mb
    mb=$(vm_get "$ns" "$name" DISK_MB)
    ((mb > 0)) || return 0
    truncate -s "${mb}M" "$(pod_dir "$n" "$ns" "$name")/lib/images/${ns}_$name.img"
}

# vm_state NODE NS NAME: libvirt's state of the domain in that pod: running, paused,
# shut off, ... or "absent" (no such domain, or the pod's libvirtd is gone).
vm_state() {
    local s
    s=$(timeout 20 virsh -q -c "$(pod_uri "$1" "$2" "$3")" domstate "$(vm_dom "$2" "$3")" 2>/dev/null | head -1) || true
    echo "${s:-absent}"
}

# vm_jobinfo NODE NS NAME: the completed job's statistics (virsh domjobinfo --completed
# --keep-completed --rawstats), "key: value" per line.
vm_jobinfo() {
    pod_virsh "$1" "$2" "$3" domjobinfo "$(vm_dom "$2" "$3")" --completed --keep-completed --rawstats 2>/dev/null || true
}

# guest_ticks NODE NS NAME: the tick lines of the guest's serial log on that node, one
# per line as "T P E D B X" (decimal T P E D, hex B X).
guest_ticks() {
    local f
    f=$(vm_serial "$1" "$2" "$3")
    [[ -e $f ]] || return 0
    tr -d '\r' <"$f" | sed -n 's/^T=\([0-9]*\) P=\([0-9]*\) E=\([0-9]*\) D=\([0-9]*\) B=\([0-9a-f]*\) X=\([0-9a-f]*\)$/\1 \2 \3 \4 \5 \6/p'
}

guest_has_ticks() { # NODE NS NAME N: at least N tick lines
    (($(guest_ticks "$1" "$2" "$3" | wc -l) >= $4))
}

# guest_last NODE NS NAME: the last tick line ("T P E D B X"), empty if none.
guest_last() { guest_ticks "$1" "$2" "$3" | tail -n 1; }

# guest_check NODE NS NAME [--after T] [--boot B] [--lines N] [--timeout S] [--resumed]
# The guest runs healthily on NODE: within S s (default 20) at least N (default 2) tick
# lines with a tick > T appear (T default: the last tick now), every one of them carries
# boot id B (default: that of the last line) and E=0, the log holds no FAULT and no
# BOOT line of another boot, and its tick counter never goes back within a boot
# (--resumed: the log is a migration destination's, every tick in it must be > T).
# Prints "ticks <first>..<last> boot <B>"; returns 1 with the reason on stderr otherwise. After a migration: T and B are the source's last values, N
# lines on the destination then prove the guest continued (no reboot, no lost page).
guest_check() {
    local n=$1 ns=$2 name=$3 after="" boot="" lines=2 timeout=20 resumed=0 last i new f boots back
    shift 3
    while (($#)); do
        case $1 in
        --after) after=$2; shift 2 ;;
        --boot) boot=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --resumed) resumed=1; shift ;;
        *) e2e_die "guest_check: unknown option '$1'" ;;
        esac
    done
    last=$(guest_last "$n" "$ns" "$name")
    [[ -n $after ]] || after=$(awk '{print $1}' <<<"${last:-0}")
    [[ -n $boot ]] || boot=$(awk '{print $5}' <<<"$last")
    for ((i = 0; i < timeout * 10; i++)); do
        new=$(guest_ticks "$n" "$ns" "$name" | awk -v a="$after" '$1 > a')
        (($(grep -c . <<<"$new") >= lines)) && break
        sleep 0.1
    done
    f=$(vm_serial "$n" "$ns" "$name")
    if (($(grep -c . <<<"$new") < lines)); then
        e2e_log "guest $ns/$name on $n: fewer than $lines tick lines after T=$after within ${timeout}s (last: ${last:-none})"
        return 1
    fi
    if [[ -n $boot ]] && awk -v b="$boot" '$5 != b {bad=1} END {exit !bad}' <<<"$new"; then
        e2e_log "guest $ns/$name on $n: boot id changed from $boot (rebooted): $(tail -n 1 <<<"$new")"
        return 1
    fi
    # the tick counter lives in guest RAM: if it goes back within one boot, or a resumed
    # guest starts at or below T, a page of its state arrived stale (docs/e2e.md, "QEMU
    # 7.2 TCG loses dirty pages")
    back=$(tr -d '\r' <"$f" | awk -v a="$after" -v r="$resumed" '/^BOOT/ {prev = -1; next}
        /^T=/ {t = substr($1, 3) + 0
               if (r && t <= a) {print "T=" t " after T=" a; exit}
               if (prev >= 0 && t <= prev) {print "T=" prev " then T=" t; exit}
               prev = t}')
    if [[ -n $back ]]; then
        e2e_log "guest $ns/$name on $n: tick counter went back ($back): its state lost memory"
        return 1
    fi
    if awk '$3 != 0 {bad=1} END {exit !bad}' <<<"$new"; then
        e2e_log "guest $ns/$name on $n: memory check errors: $(awk '$3 != 0' <<<"$new" | tail -n 1)"
        return 1
    fi
    boots=$(tr -d '\r' <"$f" | grep -a '^BOOT' || true)
    if grep -a -q FAULT "$f" || { [[ -n $boot && -n $boots ]] && grep -qv "B=$boot " <<<"$boots"; }; then
        e2e_log "guest $ns/$name on $n: FAULT or foreign BOOT line in $f"
        return 1
    fi
    echo "ticks $(head -n 1 <<<"$new" | awk '{print $1}')..$(tail -n 1 <<<"$new" | awk '{print $1}') boot $boot"
}

# vm_migrate_virsh SRC NS NAME [--timeout S] [-- VIRSH-MIGRATE-OPTIONS...]
# Live-migrate NS/NAME from node SRC the way virt-launcher does, through whatever proxy
# serves the pod's migration sockets: `virsh migrate --live --p2p --persistent` with
#   dconnuri   qemu+unix:///system?socket=/run/kubevirt/migrationproxy/<uid>-source.sock
#   migrateuri unix:///run/kubevirt/migrationproxy/<uid>-49152-source.sock
# (paths inside the source pod), plus block migration of vda through <uid>-49153 when
# the VM has a disk. Output goes to $E2E_ROOT/logs/migrate-<ns>_<name>.log; status is
# virsh's (124 when the outer timeout, default 120 s, hit).
vm_migrate_virsh() {
    local src=$1 ns=$2 name=$3 timeout=120 uid mp=/run/kubevirt/migrationproxy extra=()
    shift 3
    while (($#)); do
        case $1 in
        --timeout) timeout=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) e2e_die "vm_migrate_virsh: unknown option '$1'" ;;
        esac
    done
    uid=$(vm_uid "$ns" "$name")
    if (($(vm_get "$ns" "$name" DISK_MB) > 0)); then
        extra=(--copy-storage-inc --migrate-disks vda --disks-uri "unix://$mp/$uid-49153-source.sock" "${extra[@]}")
    fi
    timeout "$timeout" virsh -c "$(pod_uri "$src" "$ns" "$name")" migrate --live --p2p --persistent \
        "$(vm_dom "$ns" "$name")" "qemu+unix:///system?socket=$mp/$uid-source.sock" \
        --migrateuri "unix://$mp/$uid-49152-source.sock" "${extra[@]}" \
        >>"$E2E_ROOT/logs/migrate-${ns}_$name.log" 2>&1
}

# guest_wait_passes NODE NS NAME N [TIMEOUT_S]: wait until the guest has walked its
# memory N times (P >= N; after one pass every page of the region holds data).
guest_wait_passes() {
    e2e_wait_for "${5:-60}" "pass $4 of guest $2/$3 on $1" _guest_passes_ge "$1" "$2" "$3" "$4"
}
_guest_passes_ge() {
    local p
    p=$(guest_last "$1" "$2" "$3" | awk '{print $2}')
    [[ -n $p ]] && ((p >= $4))
}

# guest_written_bytes NODE NS NAME: the size of the memory region the guest keeps
# writing (from its BOOT line: region end M minus the 2 MiB below it). Once the guest
# has finished a pass, every one of these bytes is data a migration has to move (the
# rest of RAM is mostly zero pages, which QEMU sends as a flag).
guest_written_bytes() {
    local m
    m=$(tr -d '\r' <"$(vm_serial "$1" "$2" "$3")" | sed -n 's/^BOOT B=[0-9a-f]* M=\([0-9a-f]*\) .*/\1/p' | tail -n 1)
    [[ -n $m ]] || return 1
    echo $((16#$m - 0x200000))
}
