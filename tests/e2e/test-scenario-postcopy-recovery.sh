#!/usr/bin/env bash
# test-scenario-postcopy-recovery.sh [--restart-source|--restart-target|--delete-vmim|
#   --silent-outage] - the data path breaks during post-copy and comes back: the migration must
# be resumed, never lost (B14 with recovery).
#
# The guest dirties 25 MiB/s; node-a's link is shaped to 10 MB/s so pre-copy cannot
# converge and post-copy takes ~10 s; the KubeVirt CR allows post-copy with
# completionTimeoutPerGiB 3 (a 3 s deadline for this small guest), so the monitor switches
# early. Some 2 s into post-copy every TCP connection between node-a and node-b is killed
# (ss -K on both nodes: the proxy's libvirt and memory channels) and node-a's link stays down
# for 4 s. Both domains are then paused (post-copy failed); the source keeps the VMIM
# Running, retries the resume with backoff while the link is down, and resumes once it is up.
# With --delete-vmim the VMIM is deleted during the outage: the abort is refused, the recovery
# goes on, and the VMIM disappears after the success. With --silent-outage nothing is reset: the link goes down and stays down until libvirt and
# the proxies' TCP timeouts fail the post-copy on the source (≈ 26-30 s), and comes back at once,
# usually before the destination noticed (≈ 85 s in all: not in the default e2e list). With --restart-source vmigrated on node-a is SIGKILLed during the outage and started again
# after it: the new daemon finds the domain paused (post-copy failed) and takes over. With
# --restart-target the same happens to node-b's: it opens its listeners again on new ports and
# publishes them; the source's next attempt dials those.
#
# Asserts: the VMIM never Failed and ends Succeeded; the events PostCopyRecovering and
# PostCopyRecovered; the VMI's mode PostCopy and nodeName node-b; the guest runs on node-b only,
# continued with its boot id and clean memory checks; the source domain is shut off.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
restart=0
silent=0
delete=0
case ${1:-} in
--restart-source) restart=1; victim=node-a ;;
--restart-target) restart=1; victim=node-b ;;
--silent-outage) silent=1 ;;
--delete-vmim) delete=1 ;;
esac
e2e_begin

scen_cluster --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
scen_kubevirt_migrations '{allowPostCopy: true, completionTimeoutPerGiB: 3, progressTimeout: 300}'
node_exec node-a tc qdisc add dev "$(node_veth node-a)" root tbf rate 80mbit burst 64kb latency 50ms
vmigrated_start node-a
vmigrated_start node-b

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Running 60 || e2e_die "mig1 never ran: $(vmim_reason ns1 mig1)"
e2e_wait_for 30 "post-copy" scen_vmi_state_is mode PostCopy || e2e_die "no switch to post-copy"
sleep 2
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) 2 s into post-copy (too fast to cut)"

# the outage: every connection between the nodes reset, then no link for 4 s; or (silent) no
# reset at all: the link just goes away until libvirt and the proxies' TCP timeouts notice
t0=$(e2e_now_ms)
if ((!silent)); then
    node_exec node-a ss -K dst "$(node_addr node-b 4)" >/dev/null 2>&1 || true
    node_exec node-b ss -K dst "$(node_addr node-a 4)" >/dev/null 2>&1 || true
fi
node_exec node-a ip link set "$(node_veth node-a)" down
e2e_log "cut the data path 2 s into post-copy; link of node-a down"
e2e_wait_for $((silent ? 60 : 10)) "source paused (post-copy failed)" \
    bash -c "[[ \$(virsh -c '$(pod_uri node-a ns1 vm1)' domstate --reason ns1_vm1 | head -1) == 'paused (post-copy failed)' ]]" ||
    e2e_die "source is '$(vm_state node-a ns1 vm1)' after the cut"
((silent)) && e2e_log "source paused (post-copy failed) $(($(e2e_now_ms) - t0)) ms after the link went down"
if ((delete)); then
    kctl delete vmim mig1 -n ns1 --wait=false >/dev/null
    e2e_log "deleted mig1 during the outage"
fi
if ((restart)); then
    vmigrated_kill $victim
    mv "$E2E_ROOT/logs/vmigrated-$victim.log" "$E2E_ROOT/logs/vmigrated-$victim-killed.log"
    e2e_log "killed vmigrated on $victim during the outage"
fi
# silent: the link returns as soon as the source noticed, typically before the destination
# did (the resume then races the destination's own failure detection)
((silent)) || sleep 4
node_exec node-a ip link set "$(node_veth node-a)" up
e2e_log "link of node-a up again; target is '$(pod_virsh node-b ns1 vm1 domstate --reason ns1_vm1 2>&1 | head -1)'"
((restart)) && vmigrated_start $victim
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) during the recovery: $(vmim_reason ns1 mig1)"

if ((delete)); then
    # deleting cannot bring the guest back: the abort is refused, the recovery goes on, the
    # migration completes and only then does the VMIM go away
    e2e_wait_for 60 "VMI nodeName node-b" scen_vmi_node_is node-b ||
        e2e_die "VMI nodeName '$(vmi_node ns1 vm1)' 60 s after the link came back (mig1: $(vmim_phase ns1 mig1))"
    t1=$(e2e_now_ms)
    e2e_wait_for 30 "mig1 gone" scen_vmim_gone mig1 || e2e_die "mig1 still there: $(vmim_phase ns1 mig1)"
    [[ $(scen_vmi_state failed) != true ]] || e2e_die "VMI migrationState.failed set: $(scen_vmi_state failureReason)"
else
    vmim_wait ns1 mig1 "Succeeded|Failed" 60 || e2e_die "mig1 still $(vmim_phase ns1 mig1) 60 s after the link came back"
    t1=$(e2e_now_ms)
    [[ $(vmim_phase ns1 mig1) == Succeeded ]] || e2e_die "mig1 Failed: $(vmim_reason ns1 mig1)"
    [[ $(scen_phases mig1) != *Failed* ]] || e2e_die "mig1 went through Failed: $(scen_phases mig1)"
fi
events=$(kctl get events -n ns1 -o 'jsonpath={range .items[*]}{.involvedObject.name}:{.reason} {end}')
if ((delete)); then
    [[ $events == *mig1:FailedAbortMigration* ]] || e2e_die "no FailedAbortMigration event on mig1: $events"
fi
[[ $events == *mig1:PostCopyRecovering* ]] || e2e_die "no PostCopyRecovering event on mig1: $events"
[[ $events == *mig1:PostCopyRecovered* ]] || e2e_die "no PostCopyRecovered event on mig1: $events"
[[ $(scen_vmi_state mode) == PostCopy ]] || e2e_die "VMI mode '$(scen_vmi_state mode)', want PostCopy"
attempts=$(grep -c 'post-copy resume attempt [0-9]* (' "$E2E_ROOT/logs/vmigrated-node-a.log" || true)
e2e_wait_for 30 "VMI nodeName node-b" scen_vmi_node_is node-b || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)'"
[[ $(vm_state node-a ns1 vm1) == "shut off" ]] || e2e_die "source domain is '$(vm_state node-a ns1 vm1)'"
scen_only_on node-b
scen_guest_continues node-b "$last"
recovered=$(grep -o 'resumed and completed: [^"]*' "$E2E_ROOT/logs/vmigrated-node-a.log" | tail -1)
if [[ ${victim:-} == node-b ]]; then
    [[ $events == *mig1:PostCopyTargetReopened* ]] || e2e_die "node-b did not reopen its listeners: $events"
fi
e2e_log "PASS: post-copy recovered$( ((restart)) && echo " across a restart of $victim's daemon")$( ((delete)) && echo " with the VMIM deleted"): Succeeded $((t1 - t0)) ms after the cut ($attempts resume attempt(s) started; $recovered)"
