#!/usr/bin/env bash
# ctl-check-libvirt.sh VMIGRATECTL - `vmigratectl check --target-libvirt` against a REAL
# libvirtd (QEMU driver, TCG; libvirt's test:///default driver implements neither
# virConnectGetDomainCapabilities nor virConnectCompareHypervisorCPU) started privately with
# tests/integration/lib-libvirtd.sh. The VMI comes from a file (offline mode), the guest from
# --domain-xml (tests/data/capability samples) or from --source-libvirt (a domain
# ns1_vm1 defined in the same daemon). Root only: exits 77 (skip) otherwise.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/lib-libvirtd.sh"
ctl=$1

missing=$(vmig_libvirtd_missing)
if [[ -n $missing ]]; then
    echo "SKIP: a private libvirtd needs: $missing(run as root after scripts/deps test)" >&2
    exit 77
fi
dir=$(mktemp -d /tmp/vchk.XXXXXX) # short: the socket path must stay under 108 bytes
cleanup() {
    vmig_libvirtd_stop
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
export VMIG_LIBVIRTD_CACHE=${VMIG_BUILD_ROOT:-$dir}/libvirtd-qemu-caps-cache
vmig_libvirtd_start "$dir" 22222222-bbbb-4bbb-8bbb-00000000000b node-a || exit 1
uri=$VMIG_LIBVIRTD_URI
vmi=$src/data/examples/vmi-masquerade-containerdisk.yaml # ns1/vm1 on node-a, migratable
caps=$src/tests/data/capability
fails=0

# check NAME WANT_STATUS ARGS... -- then lines that stdout+stderr must contain
check() {
    local name=$1 want=$2
    shift 2
    local args=()
    while [[ $1 != -- ]]; do
        args+=("$1")
        shift
    done
    shift
    local out status
    out=$("$ctl" check "${args[@]}" 2>&1)
    status=$?
    local ok=1 needle
    [[ $status == "$want" ]] || ok=0
    for needle in "$@"; do
        [[ $out == *"$needle"* ]] || { ok=0; echo "  missing: $needle" >&2; }
    done
    if ((ok)); then
        echo "ok - $name"
    else
        echo "not ok - $name (exit $status, want $want)" >&2
        printf '%s\n' "$out" >&2
        fails=$((fails + 1))
    fi
}

check "domain XML accepted by the target" 0 \
    -f "$vmi" --target-libvirt "$uri" --target-node node-b --domain-xml "$caps/tcg-domain-hostmodel-migratable.xml" -- \
    "verdict: migratable" \
    "source facts unknown (no --source-libvirt)" \
    "target verdict: eligible on node-b" \
    "machine type: pc-i440fx-7.2; target emulator: /usr/bin/qemu-system-x86_64" \
    "libvirt: source unknown, target 9."

check "machine type the target does not offer (B08)" 1 \
    -f "$vmi" --target-libvirt "$uri" --target-node node-b --domain-xml "$caps/b08-vm1-running.xml" -- \
    "verdict: migratable" \
    "target verdict: refused on node-b" \
    "pc-q35-rhel8.2.0"

check "target node is the VMI's node" 1 \
    -f "$vmi" --target-libvirt "$uri" --target-node node-a --domain-xml "$caps/tcg-domain-hostmodel-migratable.xml" -- \
    "target verdict: refused on node-a" \
    "target is the source: node name node-a is the source node"

# --source-libvirt: the guest XML and the source facts (versions, host UUID) come from libvirt.
sed -e 's|<name>capvm</name>|<name>ns1_vm1</name>|' -e '/<uuid>/d' \
    "$caps/tcg-domain-hostmodel-migratable.xml" >"$dir/ns1_vm1.xml"
virsh -q -c "$uri" define "$dir/ns1_vm1.xml" >/dev/null || exit 1
check "source facts from --source-libvirt (same host UUID)" 1 \
    -f "$vmi" --target-libvirt "$uri" --target-node node-b --source-libvirt "$uri" -- \
    "guest: running domain ns1_vm1 on $uri (source node-a: libvirt 9." \
    "target verdict: refused on node-b" \
    "node-b has the libvirt host UUID 22222222-bbbb-4bbb-8bbb-00000000000b of the source node node-a"

sed -e 's|name: vm1|name: vm2|' "$vmi" >"$dir/vm2.yaml"
check "no such domain on the source" 2 \
    -f "$dir/vm2.yaml" --target-libvirt "$uri" --target-node node-b --source-libvirt "$uri" -- \
    "target capability check for ns1/vm2:" "ns1_vm2"

check "unreachable target libvirt" 2 \
    -f "$vmi" --target-libvirt "qemu+unix:///system?socket=$dir/none" --domain-xml "$caps/tcg-domain-hostmodel-migratable.xml" -- \
    "target capability check for ns1/vm1:"

check "neither --source-libvirt nor --domain-xml" 2 \
    -f "$vmi" --target-libvirt "$uri" -- \
    "give --source-libvirt URI"

((fails == 0))
