#!/usr/bin/env bash
# capability-libvirt.sh TEST-BINARY - run the capability checks against a REAL libvirtd (QEMU
# driver, TCG) started privately for this test (tests/integration/lib-libvirtd.sh), then stop
# it. Root only: exits 77 (skip) with a message otherwise.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib-libvirtd.sh"

missing=$(vmig_libvirtd_missing)
if [[ -n $missing ]]; then
    echo "SKIP: a private libvirtd needs: $missing(run as root after scripts/deps test)" >&2
    exit 77
fi
dir=$(mktemp -d /tmp/vcap.XXXXXX) # short: the socket path must stay under 108 bytes
cleanup() {
    vmig_libvirtd_stop
    if [[ ${KEEP_STATE:-0} == 1 ]]; then echo "state kept in $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT # so that a meson timeout still stops the daemon
# QEMU capability cache kept in the build directory: the first run probes QEMU (~8 s), later
# runs start the daemon in well under a second.
export VMIG_LIBVIRTD_CACHE=${VMIG_BUILD_ROOT:-$dir}/libvirtd-qemu-caps-cache
t0=$(date +%s%N)
vmig_libvirtd_start "$dir" 11111111-aaaa-4aaa-8aaa-00000000000a node-a || exit 1
echo "libvirtd up in $((($(date +%s%N) - t0) / 1000000)) ms: $VMIG_LIBVIRTD_URI" >&2
VMIG_LIBVIRTD_HOST_UUID=11111111-aaaa-4aaa-8aaa-00000000000a "$1"
