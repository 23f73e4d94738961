#!/usr/bin/env bash
# test-scenario-source-restart.sh - the source daemon is SIGKILLed mid-migration and
# restarted: a MigrationPolicy limits the migration to 5 MiB/s so it is Running for many
# seconds; vmigrated on node-a dies (its proxy with it, so libvirt's job breaks) and comes
# back. The restarted daemon finds the VMIM Running without a call of its own and asks
# libvirt where the guest is (RECONCILE).
#
# Asserts: the VMIM reaches a final phase; the VMI's nodeName is the node where the
# domain runs; the guest runs on exactly one node and continued; no finalizer is left.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
kctl label vmi vm1 -n ns1 e2e/slow=yes >/dev/null
kctl apply -f - >/dev/null <<Y || e2e_die "cannot create the MigrationPolicy"
apiVersion: migrations.kubevirt.io/v1alpha1
kind: MigrationPolicy
metadata: {name: slow}
spec:
  bandwidthPerMigration: 5Mi
  selectors:
    virtualMachineInstanceSelector: {e2e/slow: "yes"}
Y
vmigrated_start node-a
vmigrated_start node-b

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Running 60 || e2e_die "mig1 never ran: $(vmim_reason ns1 mig1)"
sleep 2
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) after 2 s at 5 MiB/s"
vmigrated_kill node-a
e2e_log "killed vmigrated on node-a while mig1 ran"
sleep 1
mv "$E2E_ROOT/logs/vmigrated-node-a.log" "$E2E_ROOT/logs/vmigrated-node-a-killed.log"
t0=$(e2e_now_ms)
vmigrated_start node-a
vmim_wait ns1 mig1 "Succeeded|Failed" 60 || e2e_die "mig1 still $(vmim_phase ns1 mig1) 60 s after the restart"
t1=$(e2e_now_ms)
phase=$(vmim_phase ns1 mig1)
if [[ $phase == Succeeded ]]; then want=node-b; else want=node-a; fi
e2e_wait_for 30 "VMI nodeName $want" scen_vmi_node_is $want ||
    e2e_die "mig1 $phase but VMI nodeName is '$(vmi_node ns1 vm1)'"
scen_only_on $want
scen_guest_continues $want "$last"
e2e_wait_for 10 "finalizer of mig1 removed" scen_no_finalizer mig1 || e2e_die "mig1 kept its finalizer"
e2e_log "PASS: source restarted mid-migration: mig1 $phase ($(vmim_reason ns1 mig1)) $((t1 - t0)) ms after the restart, guest on $want"
