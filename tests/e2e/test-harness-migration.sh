#!/usr/bin/env bash
# test-harness-migration.sh - the harness proves itself: a real libvirt + QEMU (TCG) live
# migration of ns1/vm1 from node-a to node-b, KubeVirt style (peer to peer, control
# connection and memory stream through per-migration proxies between pod sockets),
# with the temporary socat proxy (lib/proxy-socat.sh) and no vmigrated yet.
#
# Asserts: the pods have no route anywhere and the nodes no default route; after
# `virsh migrate --live --p2p --persistent` the domain runs on node-b and is shut off on
# node-a; the guest's tick counter continues on node-b with the same boot id and no
# memory-check error; the bytes that left node-a's veth are at least the guest's data
# (its RAM but the 2 MiB below its test region, ~98 % of it) and at least the bytes
# libvirt reports as sent (data_processed).
# Prints setup and migration times (docs/e2e.md). Root only (exit 77 otherwise).
# Environment: E2E_MEM (MiB, default 128), E2E_DIRTY (pages/tick, default 64),
# KEEP_STATE=1 keeps $E2E_ROOT (logs, serial consoles) after the run.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
e2e_begin

NS=ns1
NAME=vm1
MEM=${E2E_MEM:-128}
DIRTY=${E2E_DIRTY:-64}

t_start=$(e2e_now_ms)
fabric_up node-a node-b
t_fabric=$(e2e_now_ms)
# the source pod (virt-launcher's) and the target pod (what KubeVirt creates on the
# target node for the migration), both made by the test, started together
pod_create node-a "$NS" "$NAME" node-b "$NS" "$NAME"
t_pods=$(e2e_now_ms)
vm_start node-a "$NS" "$NAME" --mem "$MEM" --dirty "$DIRTY"
t_vm=$(e2e_now_ms)
e2e_log "setup: fabric $((t_fabric - t_start)) ms, pods $((t_pods - t_fabric)) ms, vm $((t_vm - t_pods)) ms"

# topology: nothing can leave a pod but through its sockets, no node has a way out
for n in node-a node-b; do
    routes=$(pod_exec "$n" "$NS" "$NAME" ip route show) || e2e_die "cannot enter pod $NS/$NAME on $n"
    routes+=$(pod_exec "$n" "$NS" "$NAME" ip -6 route show) || e2e_die "cannot enter pod $NS/$NAME on $n"
    [[ -z $routes ]] || e2e_die "pod $NS/$NAME on $n has routes: $routes"
    routes=$(node_exec "$n" ip route show) || e2e_die "cannot enter $n"
    grep -q '^default' <<<"$routes" && e2e_die "$n has a default route"
    [[ $(pod_exec "$n" "$NS" "$NAME" hostname) == "$NAME" ]] || e2e_die "pod on $n has not its own UTS namespace"
done
fabric_reachable node-b 4 node_exec node-a || e2e_die "node-a cannot reach node-b"
fabric_reachable node-b 6 node_exec node-a || e2e_die "node-a cannot reach node-b over IPv6"
fabric_reachable node-b 4 pod_exec node-a "$NS" "$NAME" && e2e_die "pod $NS/$NAME on node-a reaches node-b"
[[ $(vm_state node-a "$NS" "$NAME") == running ]] || e2e_die "vm not running on node-a"
[[ $(vm_state node-b "$NS" "$NAME") == absent ]] || e2e_die "vm already defined on node-b"

# one full pass over the guest's memory first: every page then holds data (no zero
# pages), so the migration has to move at least the guest's memory over the veth
if ((DIRTY > 0)); then
    guest_wait_passes node-a "$NS" "$NAME" 1 90 || e2e_die "guest on node-a did not finish a pass over its memory"
fi
guest_check node-a "$NS" "$NAME" >/dev/null || e2e_die "guest on node-a unhealthy before the migration"
t_ready=$(e2e_now_ms)

vm_prepare_target node-b "$NS" "$NAME"
socat_proxy_start node-a node-b "$NS" "$NAME"
tx0=$(veth_bytes node-a tx)
t_mig=$(e2e_now_ms)
vm_migrate_virsh node-a "$NS" "$NAME" --timeout 120 || e2e_die "virsh migrate failed (status $?)"
t_done=$(e2e_now_ms)
tx1=$(veth_bytes node-a tx)
socat_proxy_stop "$NS" "$NAME"

dst_state=$(vm_state node-b "$NS" "$NAME")
src_state=$(vm_state node-a "$NS" "$NAME")
[[ $dst_state == running ]] || e2e_die "after migration: domain on node-b is '$dst_state', not running"
[[ $src_state == "shut off" ]] || e2e_die "after migration: domain on node-a is '$src_state', not shut off"

read -r src_t _ src_e _ src_b _ <<<"$(guest_last node-a "$NS" "$NAME")"
[[ $src_e == 0 ]] || e2e_die "guest reported $src_e memory errors on node-a"
cont=$(guest_check node-b "$NS" "$NAME" --after "$src_t" --boot "$src_b" --lines 3 --timeout 30 --resumed) ||
    e2e_die "guest did not continue on node-b"

# the memory crossed the fabric: at least every byte the guest wrote (all of its RAM but
# the 2 MiB under its region and zero pages), and at least what libvirt says it sent
jobinfo=$(vm_jobinfo node-a "$NS" "$NAME")
jstat() { awk -F': *' -v k="$1" '$1 == k {print $2}' <<<"$jobinfo" | tr -d ' '; }
bytes=$((tx1 - tx0))
written=$(guest_written_bytes node-a "$NS" "$NAME") || e2e_die "no BOOT line from the guest on node-a"
((DIRTY > 0)) || written=0 # an idle guest (E2E_DIRTY=0) writes nothing: zero pages only
processed=$(jstat data_processed)
((bytes >= written)) || e2e_die "only $bytes bytes left node-a's veth during the migration; the guest holds $written bytes of data"
[[ -n $processed ]] || e2e_die "no completed job statistics on node-a"
((bytes >= processed)) || e2e_die "$bytes bytes left node-a's veth, fewer than the $processed bytes libvirt sent: the stream bypassed the fabric"
printf 'RESULT ok harness-migration mem_mib=%s dirty=%s setup_ms=%s (fabric %s, pods %s, vm %s) wall_ms=%s job_ms=%s downtime_ms=%s iterations=%s data_processed=%s veth_tx_bytes=%s src_last_tick=%s dst %s\n' \
    "$MEM" "$DIRTY" "$((t_vm - t_start))" "$((t_fabric - t_start))" "$((t_pods - t_fabric))" \
    "$((t_vm - t_pods))" "$((t_done - t_mig))" "$(jstat time_elapsed)" "$(jstat downtime)" \
    "$(jstat memory_iteration)" "$processed" "$bytes" "$src_t" "$cont"
e2e_log "guest warm-up $((t_mig - t_ready)) ms; total $(($(e2e_now_ms) - t_start)) ms before cleanup"
