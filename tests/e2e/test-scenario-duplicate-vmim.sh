#!/usr/bin/env bash
# test-scenario-duplicate-vmim.sh - two VMIMs for the same VMI posted back to back (field
# case B19): the VMI's migrationState claim lets exactly one of them through.
#
# Asserts: one VMIM Succeeded, the other Failed with "another migration in progress for
# ns1/vm1"; only one virDomainMigrateToURI3 call in the daemons' logs; the guest on
# node-b only, continuing.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 64 --dirty 16
vmi_apply ns1 vm1 node-a
vmigrated_start node-a
vmigrated_start node-b
guest_wait_passes node-a ns1 vm1 1

last=$(guest_last node-a ns1 vm1)
kctl create -f - >/dev/null <<Y || e2e_die "cannot create the two VMIMs"
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: dup1, namespace: ns1}
spec: {vmiName: vm1}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: dup2, namespace: ns1}
spec: {vmiName: vm1}
Y
vmim_wait ns1 dup1 "Succeeded|Failed" 120 || e2e_die "dup1 did not end: $(vmim_phase ns1 dup1)"
vmim_wait ns1 dup2 "Succeeded|Failed" 120 || e2e_die "dup2 did not end: $(vmim_phase ns1 dup2)"
p1=$(vmim_phase ns1 dup1)
p2=$(vmim_phase ns1 dup2)
case "$p1 $p2" in
"Succeeded Failed") won=dup1 lost=dup2 ;;
"Failed Succeeded") won=dup2 lost=dup1 ;;
*) e2e_die "dup1 $p1 ($(vmim_reason ns1 dup1)), dup2 $p2 ($(vmim_reason ns1 dup2)): want one of each" ;;
esac
reason=$(vmim_reason ns1 "$lost")
[[ $reason == *"another migration in progress for ns1/vm1"* ]] || e2e_die "$lost failed for '$reason'"
calls=$(cat "$E2E_ROOT"/logs/vmigrated-node-*.log | grep -c 'virDomainMigrateToURI3 started' || true)
((calls == 1)) || e2e_die "$calls virDomainMigrateToURI3 calls, want 1"
# the loser never went past the claim
phases=$(scen_phases "$lost")
[[ $phases != *Scheduled* ]] || e2e_die "$lost reached Scheduled: $phases"
e2e_wait_for 30 "VMI nodeName node-b" scen_vmi_node_is node-b || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)', want node-b"
[[ $(scen_vmi_state migrationUid) == $(kctl get vmim "$won" -n ns1 -o 'jsonpath={.metadata.uid}') ]] ||
    e2e_die "VMI migrationState belongs to $(scen_vmi_state migrationUid), not $won"
scen_only_on node-b
scen_guest_continues node-b "$last"
e2e_log "PASS: duplicate VMIMs: $won Succeeded, $lost Failed ($reason), one migration call"
