#!/usr/bin/env bash
# test-scenario-no-convergence.sh - a migration that cannot converge: the KubeVirt CR
# limits every migration to 2 MiB/s while the guest dirties 25 MiB/s, and
# completionTimeoutPerGiB 12 (a guest this small counts as one GiB: a 12 s deadline). No
# post-copy, so the timeout action is to abort: the guest stays on the source.
#
# Asserts: VMIM Failed with "completion timeout" in its reason within the deadline +
# slack, exactly one abort in the source's log, abortStatus not Failed, the guest running
# on node-a only and continuing, no socket left.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
scen_kubevirt_migrations '{bandwidthPerMigration: 2Mi, completionTimeoutPerGiB: 12, progressTimeout: 300, allowPostCopy: false}'
vmigrated_start node-a
vmigrated_start node-b
listen_b=$(scen_listeners node-b)

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Running 60 || e2e_die "mig1 never ran: $(vmim_reason ns1 mig1)"
t0=$(e2e_now_ms)
vmim_wait ns1 mig1 Failed 40 || e2e_die "mig1 is $(vmim_phase ns1 mig1) 40 s into a 12 s completion deadline"
t1=$(e2e_now_ms)
reason=$(vmim_reason ns1 mig1)
[[ $reason == *"completion timeout"* ]] || e2e_die "mig1 failed for '$reason', want a completion timeout"
((t1 - t0 >= 10000)) || e2e_die "mig1 failed after only $((t1 - t0)) ms, before its 12 s deadline"
n=$(scen_count_log node-a 'aborting the migration job')
((n == 1)) || { grep -i abort "$E2E_ROOT/logs/vmigrated-node-a.log" >&2; e2e_die "$n aborts in node-a's log, want exactly 1"; }
[[ $(vmi_node ns1 vm1) == node-a ]] || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)', want node-a"
[[ $(scen_vmi_state failed) == true ]] || e2e_die "VMI migrationState.failed not set"
scen_only_on node-a
scen_guest_continues node-a "$last"
e2e_wait_for 10 "node-b clean" scen_clean node-b "$listen_b" target || e2e_die "left behind on $(scen_clean_why node-b "$listen_b")"
scen_no_sockets node-a
# the final progress summary keeps what the cancelled job moved (libvirt keeps no
# completed-job stats for it: the last sample stands in)
prog=$(kctl get vmim mig1 -n ns1 -o 'jsonpath={.metadata.annotations.vmigrated\.kubevirt\.io/progress}')
moved=$(jq -r '.processedBytes // 0' <<<"$prog")
((moved > 1048576)) || e2e_die "the final progress of the aborted migration says $moved bytes moved: $prog"
e2e_log "PASS: no convergence at 2 MiB/s: Failed after $((t1 - t0)) ms Running ($((moved / 1048576)) MiB moved): $reason"
