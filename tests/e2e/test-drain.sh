#!/usr/bin/env bash
# test-drain.sh - node drain (field case B17): cordon node-a holding
#   vm1  evictionStrategy LiveMigrate, migratable             -> exactly one evacuation, moves
#   vm2  LiveMigrateIfPossible, bridge on the pod network      -> nothing, no warning
#   vm3  None                                                  -> nothing
#   vm4  LiveMigrate, bridge on the pod network                -> no VMIM, EvacuationBlocked
# then uncordon: nothing further happens.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
e2e_begin

fabric_up node-a node-b
apiserver_start
cluster_nodes_apply node-a node-b
vmigrated_certs node-a node-b
pod_create node-a ns1 vm1 node-b ns1 vm1
vm_start node-a ns1 vm1 --mem 64 --dirty 16
bridge="  domain:
    devices:
      interfaces: [{name: default, bridge: {}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]"
masq="  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, masquerade: {}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]"
vmi_apply ns1 vm1 node-a "  evictionStrategy: LiveMigrate
$masq"
vmi_apply ns1 vm2 node-a "  evictionStrategy: LiveMigrateIfPossible
$bridge"
vmi_apply ns1 vm3 node-a "  evictionStrategy: None
$masq"
vmi_apply ns1 vm4 node-a "  evictionStrategy: LiveMigrate
$bridge"
vmigrated_start node-a
vmigrated_start node-b
last=$(guest_last node-a ns1 vm1)

vmims() { kctl get vmim -n ns1 -o 'jsonpath={range .items[*]}{.spec.vmiName}={.status.phase} {end}'; }
[[ -z $(vmims) ]] || e2e_die "VMIMs before the drain: $(vmims)"

e2e_log "cordon node-a"
kctl cordon node-a >/dev/null
e2e_wait_for 60 "vm1 evacuated to node-b" bash -c "[[ \$(ip netns exec $(cp_netns) kubectl --kubeconfig $E2E_KUBECONFIG get vmi vm1 -n ns1 -o 'jsonpath={.status.nodeName}') == node-b ]]" ||
    e2e_die "vm1 not evacuated; VMIMs: $(vmims)"
list=$(vmims)
[[ $list == "vm1=Succeeded " ]] || e2e_die "expected exactly one evacuation (vm1), got: $list"
name=$(kctl get vmim -n ns1 -o 'jsonpath={.items[0].metadata.name}')
[[ $name == kubevirt-evacuation-* ]] || e2e_die "evacuation VMIM name $name"
[[ $(kctl get vmim "$name" -n ns1 -o 'jsonpath={.metadata.annotations.kubevirt\.io/evacuationMigration}') == node-a ]] ||
    e2e_die "evacuation annotation missing"
guest_check node-b ns1 vm1 --after "$(awk '{print $1}' <<<"$last")" --boot "$(awk '{print $5}' <<<"$last")" >/dev/null ||
    e2e_die "vm1's guest did not continue on node-b"
e2e_wait_for 20 "the EvacuationBlocked event for vm4" bash -c "ip netns exec $(cp_netns) kubectl --kubeconfig $E2E_KUBECONFIG get events -n ns1 -o 'jsonpath={range .items[*]}{.involvedObject.name}:{.reason} {end}' | grep -q 'vm4:EvacuationBlocked'" ||
    e2e_die "no EvacuationBlocked event for vm4"
events=$(kctl get events -n ns1 -o 'jsonpath={range .items[*]}{.involvedObject.name}:{.reason}:{.count} {end}')
grep -q 'vm2:Evacuation' <<<"$events" && e2e_die "vm2 (LiveMigrateIfPossible) got a warning: $events"
grep -q 'vm3:Evacuation' <<<"$events" && e2e_die "vm3 (None) got an evacuation event: $events"

e2e_log "uncordon node-a; nothing more may happen"
kctl uncordon node-a >/dev/null
sleep 8
[[ $(vmims) == "vm1=Succeeded " ]] || e2e_die "VMIMs after uncordon: $(vmims)"
[[ -z $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.evacuationNodeName}') ]] ||
    e2e_die "vm1 kept evacuationNodeName"
e2e_log "PASS: drain moved exactly vm1, refused vm4 visibly, left vm2 and vm3, and stopped on uncordon"
