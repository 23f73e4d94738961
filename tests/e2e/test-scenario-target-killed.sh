#!/usr/bin/env bash
# test-scenario-target-killed.sh - the target daemon dies before TargetReady (field case
# B15 run C): vmigrated on node-b is SIGKILLed while its heartbeat Lease is still fresh,
# so node-b is still chosen as the target, but nobody prepares it. The source's deadline
# (--target-ready-timeout-ms 5000) fires from its wake-up timer, without any watch event.
#
# The deadline counts from the Scheduled entry of phaseTransitionTimestamps, which has
# whole seconds (as KubeVirt's), so it may fire up to 1 s before READY_MS after posting.
#
# Asserts: VMIM Failed with a reason naming node-b within the deadline + slack; it never
# reached TargetReady or Running; the guest untouched on node-a (running, continuing).
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

READY_MS=5000
scen_cluster --mem 64 --dirty 16
vmi_apply ns1 vm1 node-a
E2E_TARGET_READY_MS=$READY_MS vmigrated_start node-a
E2E_TARGET_READY_MS=$READY_MS vmigrated_start node-b
vmigrated_kill node-b

last=$(guest_last node-a ns1 vm1)
t0=$(e2e_now_ms)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Failed $((READY_MS / 1000 + 15)) || e2e_die "mig1 is $(vmim_phase ns1 mig1), not Failed"
t1=$(e2e_now_ms)
reason=$(vmim_reason ns1 mig1)
[[ $reason == *node-b* ]] || e2e_die "mig1 failed for '$reason', which does not name node-b"
((t1 - t0 >= READY_MS)) || e2e_die "mig1 failed after $((t1 - t0)) ms, before the ${READY_MS} ms deadline: $reason"
((t1 - t0 <= READY_MS + 8000)) || e2e_die "mig1 failed only after $((t1 - t0)) ms (deadline ${READY_MS} ms)"
phases=$(scen_phases mig1)
[[ $phases == *Scheduled* && $phases != *TargetReady* && $phases != *Running* ]] || e2e_die "mig1 phases: $phases"
[[ $(vmi_node ns1 vm1) == node-a ]] || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)'"
[[ $(scen_vmi_state failed) == true ]] || e2e_die "VMI migrationState.failed not set"
scen_only_on node-a
scen_guest_continues node-a "$last"
scen_no_sockets node-a
n=$(scen_count_log node-a 'virDomainMigrateToURI3 started')
((n == 0)) || e2e_die "$n migration calls on node-a"
e2e_log "PASS: target daemon dead: Failed after $((t1 - t0)) ms: $reason"
