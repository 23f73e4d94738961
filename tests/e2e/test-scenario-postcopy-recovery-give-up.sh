#!/usr/bin/env bash
# test-scenario-postcopy-recovery-give-up.sh - the data path breaks during post-copy and stays
# broken longer than --postcopy-recovery-timeout-ms (6 s here): the VMIM fails, but the guest is
# not lost and the reason says so, and the operator's documented way out works.
#
# Same set-up as test-scenario-postcopy-recovery.sh (10 MB/s link, post-copy after a 3 s
# deadline, every connection cut 2 s into post-copy), but node-a's link stays down for 14 s.
#
# Asserts: the VMIM stays Running during the recovery window and is Failed after it, never
# before 6 s; its reason says the guest is paused on both nodes and names --postcopy-resume;
# both domains are paused (post-copy failed); at least two resume attempts were made. Then, as
# in docs/operations.md, with the link back and a plain proxy pair (socat) an operator's
# `virsh migrate --postcopy --postcopy-resume` finishes the migration: the guest runs on node-b
# only and continued with clean memory checks.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
scen_kubevirt_migrations '{allowPostCopy: true, completionTimeoutPerGiB: 3, progressTimeout: 300}'
node_exec node-a tc qdisc add dev "$(node_veth node-a)" root tbf rate 80mbit burst 64kb latency 50ms
vmigrated_start node-a --postcopy-recovery-timeout-ms 6000
vmigrated_start node-b

last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Running 60 || e2e_die "mig1 never ran: $(vmim_reason ns1 mig1)"
e2e_wait_for 30 "post-copy" scen_vmi_state_is mode PostCopy || e2e_die "no switch to post-copy"
sleep 2
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) 2 s into post-copy (too fast to cut)"

t0=$(e2e_now_ms)
node_exec node-a ss -K dst "$(node_addr node-b 4)" >/dev/null 2>&1 || true
node_exec node-b ss -K dst "$(node_addr node-a 4)" >/dev/null 2>&1 || true
node_exec node-a ip link set "$(node_veth node-a)" down
e2e_log "cut the data path 2 s into post-copy; link of node-a down for 14 s"
sleep 4
[[ $(vmim_phase ns1 mig1) == Running ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1) 4 s into a 6 s recovery window"
sleep 10
node_exec node-a ip link set "$(node_veth node-a)" up
e2e_log "link of node-a up again"
vmim_wait ns1 mig1 "Succeeded|Failed" 30 || e2e_die "mig1 still $(vmim_phase ns1 mig1) after the recovery window"
t1=$(e2e_now_ms)
[[ $(vmim_phase ns1 mig1) == Failed ]] || e2e_die "mig1 is $(vmim_phase ns1 mig1), want Failed (the link was down past the window)"
reason=$(vmim_reason ns1 mig1)
[[ $reason == *"paused on both node-a (source) and node-b (target)"* && $reason == *--postcopy-resume* ]] ||
    e2e_die "mig1's reason does not say where the guest is and how to resume it: $reason"
attempts=$(grep -c 'post-copy resume attempt [0-9]* (' "$E2E_ROOT/logs/vmigrated-node-a.log" || true)
((attempts >= 2)) || e2e_die "$attempts resume attempts in the 6 s window, want at least 2"
for n in node-a node-b; do
    s=$(pod_virsh $n ns1 vm1 domstate --reason ns1_vm1 2>&1 | head -1)
    [[ $s == *"(post-copy failed)"* ]] || e2e_die "domain on $n is '$s' after the give-up, want post-copy failed"
done
e2e_log "Failed $((t1 - t0)) ms after the cut ($attempts attempts): $reason"

# the operator's way out (docs/operations.md): a proxy pair, then resume from the source pod
socat_proxy_start node-a node-b ns1 vm1
vm_migrate_virsh node-a ns1 vm1 --timeout 60 -- --postcopy --postcopy-resume ||
    e2e_die "virsh migrate --postcopy-resume failed: $(tail -c 300 "$E2E_ROOT/logs/migrate-ns1_vm1.log")"
socat_proxy_stop ns1 vm1
[[ $(vm_state node-a ns1 vm1) == "shut off" ]] || e2e_die "source domain is '$(vm_state node-a ns1 vm1)' after the manual resume"
scen_only_on node-b
scen_guest_continues node-b "$last"
e2e_log "PASS: recovery gave up after the window with the guest paused on both nodes; the documented manual resume finished the migration on node-b"
