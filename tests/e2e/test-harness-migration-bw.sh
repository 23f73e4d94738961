#!/usr/bin/env bash
# test-harness-migration-bw.sh - a long pre-copy: `virsh migrate --bandwidth 32` (MiB/s)
# of a 128 MiB guest dirtying 25 MiB/s through the socat proxy needs many iterations
# (about 20 here), each ending in a dirty-bitmap sync. QEMU 7.2's TCG loses dirty pages
# across such syncs unless the guest flushes its TLB (guest.S, FLUSH_TLB; docs/e2e.md,
# "QEMU 7.2 TCG loses dirty pages"); this test keeps the guest honest about it.
#
# Asserts: the migration took at least 6 memory iterations; on node-b the guest continues
# where it stopped on node-a (its first tick there is later than the last one on node-a:
# no part of its state went back in time) with the same boot id, and its memory check
# finds no error, i.e. no page of the region arrived stale.
# Root only (exit 77 otherwise). Environment: E2E_BW (MiB/s, default 32), KEEP_STATE=1.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
e2e_begin

NS=ns1
NAME=vm1
BW=${E2E_BW:-32}
MIN_ITERATIONS=6

fabric_up node-a node-b
pod_create node-a "$NS" "$NAME" node-b "$NS" "$NAME"
vm_start node-a "$NS" "$NAME" --mem 128 --dirty 64
guest_wait_passes node-a "$NS" "$NAME" 1 90 || e2e_die "guest on node-a did not finish a pass over its memory"
guest_check node-a "$NS" "$NAME" >/dev/null || e2e_die "guest on node-a unhealthy before the migration"

vm_prepare_target node-b "$NS" "$NAME"
socat_proxy_start node-a node-b "$NS" "$NAME"
t_mig=$(e2e_now_ms)
vm_migrate_virsh node-a "$NS" "$NAME" --timeout 180 -- --bandwidth "$BW" ||
    e2e_die "virsh migrate --bandwidth $BW failed (status $?)"
t_done=$(e2e_now_ms)
socat_proxy_stop "$NS" "$NAME"
[[ $(vm_state node-b "$NS" "$NAME") == running ]] || e2e_die "after migration: domain not running on node-b"

jobinfo=$(vm_jobinfo node-a "$NS" "$NAME")
jstat() { awk -F': *' -v k="$1" '$1 == k {print $2}' <<<"$jobinfo" | tr -d ' '; }
iterations=$(jstat memory_iteration)
[[ -n $iterations ]] || e2e_die "no completed job statistics on node-a"
((iterations >= MIN_ITERATIONS)) ||
    e2e_die "the migration took $iterations memory iterations, the test needs >= $MIN_ITERATIONS (lower E2E_BW)"

read -r src_t _ src_e _ src_b _ <<<"$(guest_last node-a "$NS" "$NAME")"
[[ $src_e == 0 ]] || e2e_die "guest reported $src_e memory errors on node-a"
cont=$(guest_check node-b "$NS" "$NAME" --after "$src_t" --boot "$src_b" --lines 7 --timeout 30 --resumed) ||
    e2e_die "guest did not continue cleanly on node-b after $iterations iterations"
printf 'RESULT ok harness-migration-bw bandwidth_mib_s=%s wall_ms=%s iterations=%s downtime_ms=%s data_processed=%s src_last_tick=%s dst %s\n' \
    "$BW" "$((t_done - t_mig))" "$iterations" "$(jstat downtime)" "$(jstat data_processed)" "$src_t" "$cont"
