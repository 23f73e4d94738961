#!/usr/bin/env bash
# test-live-migration.sh - the main job, end to end: a user posts a
# VirtualMachineInstanceMigration with kubectl and the guest moves node-a -> node-b -> node-a,
# live, through vmigrated's proxy with mutual TLS, with the story in the objects.
#
# Asserts on the objects (phases in order, VMI nodeName, migrationState, events) and on the
# guest: it runs on exactly one node, its tick counter continues (no reboot), its memory
# checks are clean, and its memory crossed the veth between the nodes.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
e2e_begin

fabric_up node-a node-b
apiserver_start
cluster_nodes_apply node-a node-b
vmigrated_certs node-a node-b
pod_create node-a ns1 vm1
pod_create node-b ns1 vm1 # the target pod KubeVirt would create
vm_start node-a ns1 vm1 --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
vmigrated_start node-a
vmigrated_start node-b
guest_wait_passes node-a ns1 vm1 1
# what the guest keeps writing: every migration has to move at least this much
WRITTEN=$(guest_written_bytes node-a ns1 vm1) || e2e_die "no BOOT line from the guest"

migrate() { # SRC DST VMIM
    local src=$1 dst=$2 mig=$3 last boot tx0 tx1 t0 t1 phases
    last=$(guest_last "$src" ns1 vm1)
    boot=$(awk '{print $5}' <<<"$last")
    tx0=$(veth_bytes "$src" tx)
    t0=$(e2e_now_ms)
    vmim_create ns1 "$mig" vm1
    vmim_wait ns1 "$mig" Succeeded 180 || e2e_die "$mig did not succeed: $(vmim_reason ns1 "$mig")"
    t1=$(e2e_now_ms)
    e2e_wait_for 30 "VMI nodeName $dst" bash -c "[[ \$(ip netns exec $(cp_netns) kubectl --kubeconfig $E2E_KUBECONFIG get vmi vm1 -n ns1 -o 'jsonpath={.status.nodeName}') == $dst ]]" ||
        e2e_die "VMI ns1/vm1 nodeName is '$(vmi_node ns1 vm1)', want $dst"
    # the guest runs on exactly one node: the destination
    [[ $(vm_state "$dst" ns1 vm1) == running ]] || e2e_die "domain not running on $dst: $(vm_state "$dst" ns1 vm1)"
    case $(vm_state "$src" ns1 vm1) in "shut off" | absent) ;; *) e2e_die "domain still on $src: $(vm_state "$src" ns1 vm1)" ;; esac
    guest_check "$dst" ns1 vm1 --after "$(awk '{print $1}' <<<"$last")" --boot "$boot" >/dev/null ||
        e2e_die "guest did not continue on $dst"
    tx1=$(veth_bytes "$src" tx)
    ((tx1 - tx0 >= WRITTEN)) || e2e_die "only $((tx1 - tx0)) bytes left $src, the guest wrote $WRITTEN"
    # the phases in KubeVirt's order, each written once
    phases=$(kctl get vmim "$mig" -n ns1 -o 'jsonpath={range .status.phaseTransitionTimestamps[*]}{.phase} {end}')
    [[ $phases == "Pending Scheduling Scheduled PreparingTarget TargetReady Running Succeeded " ]] ||
        e2e_die "$mig phases: $phases"
    [[ $(kctl get vmim "$mig" -n ns1 -o 'jsonpath={.metadata.finalizers}') == "" ]] || e2e_die "$mig kept its finalizer"
    [[ $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.migrationState.completed}') == true ]] || e2e_die "migrationState.completed not set"
    [[ $(kctl get vmi vm1 -n ns1 -o 'jsonpath={.status.migrationState.targetNode}') == "$dst" ]] || e2e_die "migrationState.targetNode"
    kctl get events -n ns1 -o 'jsonpath={range .items[*]}{.reason} {end}' | grep -q SuccessfulMigration ||
        e2e_die "no SuccessfulMigration event"
    e2e_log "$mig: $src -> $dst in $((t1 - t0)) ms (posted to Succeeded), $(((tx1 - tx0) / 1048576)) MiB on the veth; $(kctl get vmim "$mig" -n ns1 -o "jsonpath={.metadata.annotations.vmigrated\.kubevirt\.io/progress}")"
}

migrate node-a node-b mig1
migrate node-b node-a mig2
e2e_log "PASS: live migration both ways through vmigrated"
