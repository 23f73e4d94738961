#!/usr/bin/env bash
# test-scenario-block-migration.sh - block migration of a generated disk: the VMI's only
# non-shared disk is an emptyDisk (KubeVirt creates it on the node; it is not shared), so
# the checks ask for block migration with copy_disks vda, and vmigrated copies the disk
# through the proxy's NBD channel into the empty volume of the target pod.
#
# Asserts: VMIM Succeeded with all phases, the VMI's migrationMethod BlockMigration, the
# target's disk image byte-identical to the source's, the guest on node-b only, continuing.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 64 --dirty 16 --disk-mb 16
vm_prepare_target node-b ns1 vm1
# One emptyDisk on the default (virtio) bus: KubeVirt names it vda, as the domain does.
vmi_apply ns1 vm1 node-a "  domain:
    cpu: {model: qemu64}
    devices:
      disks: [{name: scratch, disk: {bus: virtio}}]
      interfaces: [{name: default, masquerade: {}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]
  volumes: [{name: scratch, emptyDisk: {capacity: 16Mi}}]"
vmigrated_start node-a
vmigrated_start node-b
e2e_wait_for 20 "VMI condition LiveMigratable" scen_vmi_condition_is LiveMigratable True ||
    e2e_die "VMI has no LiveMigratable=True condition: $(kctl get vmi vm1 -n ns1 -o "jsonpath={.status.conditions}")"
method=$(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.migrationMethod}')
[[ $method == BlockMigration ]] || e2e_die "VMI migrationMethod '$method', want BlockMigration"
guest_wait_passes node-a ns1 vm1 1

last=$(guest_last node-a ns1 vm1)
t0=$(e2e_now_ms)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Succeeded 120 || e2e_die "mig1 did not succeed: $(vmim_reason ns1 mig1)"
t1=$(e2e_now_ms)
e2e_wait_for 30 "VMI nodeName node-b" scen_vmi_node_is node-b ||
    e2e_die "VMI nodeName is '$(vmi_node ns1 vm1)', want node-b"
scen_only_on node-b
scen_guest_continues node-b "$last"
phases=$(scen_phases mig1)
[[ $phases == "Pending Scheduling Scheduled PreparingTarget TargetReady Running Succeeded " ]] ||
    e2e_die "mig1 phases: $phases"
# the checks' copy_disks reached libvirt: exactly vda, through the NBD channel
grep -q 'virDomainMigrateToURI3 flags=.* migrate_disks=vda\( \|$\)' "$E2E_ROOT/logs/vmigrated-node-a.log" ||
    e2e_die "the migration call did not name migrate_disks=vda: $(grep 'virDomainMigrateToURI3 flags' "$E2E_ROOT/logs/vmigrated-node-a.log")"
img_s=$(pod_dir node-a ns1 vm1)/lib/images/ns1_vm1.img
img_d=$(pod_dir node-b ns1 vm1)/lib/images/ns1_vm1.img
cmp -s "$img_s" "$img_d" || e2e_die "disk image on node-b differs from node-a's"
e2e_log "PASS: block migration of an emptyDisk in $((t1 - t0)) ms (posted to Succeeded); $(kctl get vmim mig1 -n ns1 -o "jsonpath={.metadata.annotations.vmigrated\.kubevirt\.io/progress}")"
