#!/usr/bin/env bash
# test-scenario-abort-delete.sh - abort by deleting the VMIM mid-run: a MigrationPolicy
# matching the VMI's labels limits the migration to 5 MiB/s, so it stays Running for many
# seconds; `kubectl delete vmim` then aborts it.
#
# Asserts: the VMIM goes away (finalizer removed) within a bound; the VMI's migrationState
# says abortRequested, abortStatus Succeeded, failed; the guest still runs on node-a only
# and continues; no socket left in either pod's migrationproxy/ and no listener left on
# node-b; a following migration succeeds.
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
listen_a=$(scen_listeners node-a)
listen_b=$(scen_listeners node-b)

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Running 60 || e2e_die "mig1 never ran: $(vmim_reason ns1 mig1)"
sleep 3
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) after 3 s at 5 MiB/s"
t0=$(e2e_now_ms)
kctl delete vmim mig1 -n ns1 --wait=false >/dev/null
e2e_wait_for 20 "VMIM mig1 gone" scen_vmim_gone mig1 ||
    e2e_die "mig1 still there 20 s after the delete: phase $(vmim_phase ns1 mig1), finalizers $(kctl get vmim mig1 -n ns1 -o 'jsonpath={.metadata.finalizers}')"
t1=$(e2e_now_ms)
e2e_wait_for 10 "VMI migrationState.completed" scen_vmi_state_is completed true ||
    e2e_die "VMI migrationState not completed: $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.migrationState}')"
[[ $(scen_vmi_state abortRequested) == true ]] || e2e_die "abortRequested not set: $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.migrationState}')"
[[ $(scen_vmi_state abortStatus) == Succeeded ]] || e2e_die "abortStatus '$(scen_vmi_state abortStatus)', want Succeeded"
[[ $(scen_vmi_state failed) == true ]] || e2e_die "migrationState.failed not set"
[[ $(vmi_node ns1 vm1) == node-a ]] || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)', want node-a"
scen_only_on node-a
scen_guest_continues node-a "$last"
e2e_wait_for 10 "node-a clean" scen_clean node-a "$listen_a" || e2e_die "left behind on $(scen_clean_why node-a "$listen_a")"
e2e_wait_for 10 "node-b clean" scen_clean node-b "$listen_b" target || e2e_die "left behind on $(scen_clean_why node-b "$listen_b")"
kctl get events -n ns1 -o 'jsonpath={range .items[*]}{.reason} {end}' | grep -q SuccessfulAbortMigration ||
    e2e_die "no SuccessfulAbortMigration event"
e2e_log "mig1 deleted while Running: gone after $((t1 - t0)) ms, guest on node-a"

# the next migration (no bandwidth limit) goes through
kctl delete migrationpolicy slow >/dev/null
last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig2 vm1
vmim_wait ns1 mig2 Succeeded 120 || e2e_die "mig2 did not succeed: $(vmim_reason ns1 mig2)"
e2e_wait_for 30 "VMI nodeName node-b" scen_vmi_node_is node-b ||
    e2e_die "VMI nodeName is '$(vmi_node ns1 vm1)', want node-b"
scen_only_on node-b
scen_guest_continues node-b "$last"
e2e_log "PASS: abort by deleting the VMIM, then a migration that succeeds"
