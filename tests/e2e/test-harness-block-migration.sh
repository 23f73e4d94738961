#!/usr/bin/env bash
# test-harness-block-migration.sh - the harness with three nodes and a node-local disk:
# ns2/vmd (64 MiB, 16 MiB raw disk of random data) goes node-a -> node-c and back, with
# block migration through the third proxy socket (<uid>-49153-source.sock, KubeVirt's
# NBD port), through the temporary socat proxy; node-b stays out of it.
#
# Asserts after each hop: running on the destination, shut off on the source, absent on
# node-b; the destination's disk image is byte-identical to the source's; the guest
# continues (same boot id, later ticks, E=0). Root only (exit 77 otherwise).
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
e2e_begin

NS=ns2
NAME=vmd
fabric_up node-a node-b node-c
pod_create node-a "$NS" "$NAME" node-b "$NS" "$NAME" node-c "$NS" "$NAME"
vm_start node-a "$NS" "$NAME" --mem 64 --dirty 32 --disk-mb 16
guest_wait_passes node-a "$NS" "$NAME" 1 60 || e2e_die "guest on node-a did not finish a pass"

hop() { # SRC DST
    local src=$1 dst=$2 t0 t b img_s img_d
    vm_prepare_target "$dst" "$NS" "$NAME"
    socat_proxy_start "$src" "$dst" "$NS" "$NAME" --disk
    t0=$(e2e_now_ms)
    vm_migrate_virsh "$src" "$NS" "$NAME" --timeout 120 || e2e_die "block migration $src -> $dst failed"
    e2e_log "block migration $src -> $dst: $(($(e2e_now_ms) - t0)) ms"
    socat_proxy_stop "$NS" "$NAME"
    [[ $(vm_state "$dst" "$NS" "$NAME") == running ]] || e2e_die "not running on $dst after $src -> $dst"
    [[ $(vm_state "$src" "$NS" "$NAME") == "shut off" ]] || e2e_die "not shut off on $src after $src -> $dst"
    [[ $(vm_state node-b "$NS" "$NAME") == absent ]] || e2e_die "a domain appeared on node-b"
    img_s=$(pod_dir "$src" "$NS" "$NAME")/lib/images/${NS}_$NAME.img
    img_d=$(pod_dir "$dst" "$NS" "$NAME")/lib/images/${NS}_$NAME.img
    cmp -s "$img_s" "$img_d" || e2e_die "disk image on $dst differs from $src's"
    read -r t _ _ _ b _ <<<"$(guest_last "$src" "$NS" "$NAME")"
    guest_check "$dst" "$NS" "$NAME" --after "$t" --boot "$b" --lines 2 --timeout 30 >/dev/null ||
        e2e_die "guest did not continue on $dst"
}
hop node-a node-c
hop node-c node-a
echo "RESULT ok harness-block-migration hops=2 disk_mib=16"
