#!/usr/bin/env bash
# test-scenario-bridge-refused.sh - a VMI bound to the pod network with a bridge interface
# cannot keep its address on another node; vmigrated refuses it before any target work.
#
# Asserts: the daemon writes LiveMigratable=False (InterfaceNotLiveMigratable) on the VMI;
# the VMIM Failed with InterfaceNotLiveMigratable; no Scheduled phase; no listener opened
# and no socket made on node-b; the guest untouched on node-a.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 64 --dirty 16
vmi_apply ns1 vm1 node-a "  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, bridge: {}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]"
vmigrated_start node-a
vmigrated_start node-b
listen_b=$(scen_listeners node-b)
e2e_wait_for 20 "VMI condition LiveMigratable=False" scen_vmi_condition_is LiveMigratable False ||
    e2e_die "no LiveMigratable=False condition: $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.conditions}')"
creason=$(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.conditions[?(@.type=="LiveMigratable")].reason}')
[[ $creason == InterfaceNotLiveMigratable ]] || e2e_die "LiveMigratable reason '$creason'"

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Failed 30 || e2e_die "mig1 did not fail: $(vmim_phase ns1 mig1)"
reason=$(vmim_reason ns1 mig1)
[[ $reason == *InterfaceNotLiveMigratable* ]] || e2e_die "mig1 failed for '$reason'"
phases=$(scen_phases mig1)
[[ $phases != *Scheduled* && $phases != *Scheduling* ]] || e2e_die "mig1 went on to target work: $phases"
[[ -z $(kctl get vmim mig1 -n ns1 -o 'jsonpath={.status.migrationState.targetNode}') ]] ||
    e2e_die "mig1 has a target node"
scen_clean node-b "$listen_b" || e2e_die "target work on $(scen_clean_why node-b "$listen_b")"
! grep -q 'target listening\|prepare-target' "$E2E_ROOT/logs/vmigrated-node-b.log" ||
    e2e_die "node-b prepared a target: $(grep 'target listening\|prepare-target' "$E2E_ROOT/logs/vmigrated-node-b.log")"
[[ $(vmi_node ns1 vm1) == node-a ]] || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)'"
scen_only_on node-a
guest_check node-a ns1 vm1 --after "$(awk '{print $1}' <<<"$last")" --boot "$(awk '{print $5}' <<<"$last")" --lines 2 >/dev/null ||
    e2e_die "guest not running on node-a"
e2e_log "PASS: bridge-bound VMI refused: $reason (phases: $phases)"
