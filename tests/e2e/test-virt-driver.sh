#!/usr/bin/env bash
# test-virt-driver.sh - the virt module drives real migrations of ns1/vm1 between two
# simulated nodes (lib/: fabric, VM pods with their own libvirtd, the test guest), KubeVirt
# style: peer to peer, dconnuri and migrate_uri are the pod's migration-proxy sockets
# (served here by lib/proxy-socat.sh), the call is virDomainMigrateToURI3 made by
# vmig_virt_migration_start() through tests/e2e/virt-migrate-tool.
#
# Scenarios, each asserting the outcome the driver derived AND the guest:
#   1 success node-a -> node-b (bandwidth "unlimited", sent as libvirt's maximum, B21): outcome
#     succeeded with completed-job figures and the job-completed event (B12 run B); the
#     domain runs on node-b only; the guest continues (same boot id, no memory error);
#     the bytes crossed node-a's veth (>= data_processed)
#   2 user abort node-b -> node-a (2 MiB/s): outcome aborted, reason "aborted" (B12 run
#     A); the guest keeps running on node-b
#   3 completion timeout node-b -> node-a (2 MiB/s, 5 s/GiB, action abort): reason
#     "completion timeout" (B13 S3); the guest keeps running on node-b
#   4 post-copy node-b -> node-a (B14 steps 1-2): switch at the deadline, an abort
#     request right after it is refused, no abort issued; outcome succeeded, post-copy
#   5 stall node-a -> node-b (the destination QEMU stopped with SIGSTOP, B13 S1): reason
#     "no progress", one abort even though its bounded wait runs out; guest on node-a
#   6 pause-and-complete node-a -> node-b (2 MiB/s, 3 s/GiB, action pause), then
#     vmig_virt_domain_set_max_speed raises the limit on the running job: outcome
#     succeeded with paused=1; the guest continues on node-b
#   7 post-copy failure node-b -> node-a (B14 run B): node-b's link goes down right after
#     the switch: outcome postcopy-failed, the source stays "paused (post-copy failed)"
#     and the driver refuses to resume it (the guest is lost, as post-copy implies: last)
# Root only (exit 77 otherwise). Usage: test-virt-driver.sh PATH/TO/virt-migrate-tool
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
TOOL=${1:?usage: $0 virt-migrate-tool}
e2e_begin

NS=ns1
NAME=vm1
MP=/run/kubevirt/migrationproxy

fabric_up node-a node-b
pod_create node-a "$NS" "$NAME" node-b "$NS" "$NAME"
vm_start node-a "$NS" "$NAME" --mem 128 --dirty 64
guest_wait_passes node-a "$NS" "$NAME" 1 90 || e2e_die "guest on node-a did not finish a pass"
UID_=$(vm_uid "$NS" "$NAME")
OUT=$E2E_ROOT/logs/virt-outcome

# migrate SRC DST [tool options...]: proxies up, one migration through the driver, proxies
# down; the tool's stdout (ACTION/ABORT/OUTCOME lines) is kept in $OUT
migrate() {
    local src=$1 dst=$2 rc=0
    shift 2
    vm_prepare_target "$dst" "$NS" "$NAME"
    socat_proxy_start "$src" "$dst" "$NS" "$NAME"
    "$TOOL" --src-uri "$(pod_uri "$src" "$NS" "$NAME")" --namespace "$NS" --name "$NAME" \
        --dconnuri "qemu+unix:///system?socket=$MP/$UID_-source.sock" \
        --migrate-uri "unix://$MP/$UID_-49152-source.sock" --poll-ms 200 "$@" \
        >"$OUT" 2>>"$E2E_ROOT/logs/virt-tool.log" || rc=$?
    socat_proxy_stop "$NS" "$NAME"
    cat "$OUT"
    return $rc
}
field() { grep '^OUTCOME' "$OUT" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
last_tb() { local t b; read -r t _ _ _ b _ <<<"$(guest_last "$1" "$NS" "$NAME")"; echo "$t $b"; }
continues() { # NODE "T B" (the last tick and boot id before the migration)
    guest_check "$1" "$NS" "$NAME" --after "${2% *}" --boot "${2#* }" --lines 2 --timeout 30 \
        >/dev/null || e2e_die "the guest did not continue on $1"
}

# 1 ------------------------------------------------------------------ success
e2e_log "1: success node-a -> node-b through the proxies"
tx0=$(veth_bytes node-a tx)
# (no rate limit here: when a limit makes pre-copy take 6 or more iterations (32 or
# 64 MiB/s for this 25 MiB/s guest), this harness's guest finds lost pages on the
# destination, with a plain `virsh migrate --bandwidth N` as well, so it is not the
# driver's doing; 128 MiB/s, 4 iterations, was clean. Reported to the harness owner.)
migrate node-a node-b --bandwidth 0 --expect succeeded || e2e_die "1: $(cat "$OUT")"
tx1=$(veth_bytes node-a tx)
[[ $(vm_state node-b "$NS" "$NAME") == running ]] || e2e_die "1: not running on node-b"
[[ $(vm_state node-a "$NS" "$NAME") == "shut off" ]] || e2e_die "1: not shut off on node-a"
[[ $(field has_stats) == 1 ]] || e2e_die "1: no completed-job stats"
[[ $(field event) == 1 ]] || e2e_die "1: no job-completed event"
processed=$(field data_processed)
((processed > 64 * 1048576)) || e2e_die "1: data_processed $processed"
((tx1 - tx0 >= processed)) || e2e_die "1: only $((tx1 - tx0)) bytes crossed the veth, libvirt sent $processed"
read -r src_t _ _ _ src_b _ <<<"$(guest_last node-a "$NS" "$NAME")"
continues node-b "$src_t $src_b"

# 2 ------------------------------------------------------------------ user abort
e2e_log "2: user abort node-b -> node-a"
before=$(last_tb node-b)
migrate node-b node-a --bandwidth 2 --abort-after-ms 3000 --expect aborted --expect-reason aborted ||
    e2e_die "2: $(cat "$OUT")"
[[ $(vm_state node-b "$NS" "$NAME") == running ]] || e2e_die "2: not running on node-b"
continues node-b "$before"

# 3 ------------------------------------------------------------------ completion timeout
e2e_log "3: completion timeout node-b -> node-a"
before=$(last_tb node-b)
migrate node-b node-a --bandwidth 2 --completion-per-gib 5 --timeout-action abort \
    --expect aborted --expect-reason "completion timeout" || e2e_die "3: $(cat "$OUT")"
[[ $(vm_state node-b "$NS" "$NAME") == running ]] || e2e_die "3: not running on node-b"
continues node-b "$before"

# 4 ------------------------------------------------------------------ post-copy
e2e_log "4: post-copy node-b -> node-a, abort refused"
before=$(last_tb node-b)
migrate node-b node-a --postcopy --timeout-action postcopy --bandwidth 2 --completion-per-gib 3 \
    --abort-on-postcopy --expect succeeded || e2e_die "4: $(cat "$OUT")"
grep -q '^ABORT_REFUSED postcopy=1 message="abort not possible during post-copy"' "$OUT" ||
    e2e_die "4: the abort during post-copy was not refused"
grep -q '^ACTION abort' "$OUT" && e2e_die "4: an abort was issued during post-copy"
[[ $(field postcopy) == 1 ]] || e2e_die "4: post-copy not recorded"
[[ $(vm_state node-a "$NS" "$NAME") == running ]] || e2e_die "4: not running on node-a"
continues node-a "$before"

# 5 ------------------------------------------------------------------ stall
e2e_log "5: stalled stream node-a -> node-b (destination QEMU stopped)"
before=$(last_tb node-a)
qpid=$(pod_dir node-b "$NS" "$NAME")/run/libvirt/qemu/${NS}_$NAME.pid
(
    for _ in $(seq 200); do
        p=$(cat "$qpid" 2>/dev/null || true)
        if [[ -n $p ]] && kill -STOP "$p" 2>/dev/null; then
            sleep 15
            kill -CONT "$p" 2>/dev/null || true
            exit 0
        fi
        sleep 0.05
    done
) &
stopper=$!
migrate node-a node-b --bandwidth 50 --progress-timeout 4 --completion-per-gib 0 \
    --expect aborted --expect-reason "no progress" || {
    kill "$stopper" 2>/dev/null || true
    e2e_die "5: $(cat "$OUT")"
}
wait "$stopper" || true
[[ $(grep -c '^ACTION abort' "$OUT") == 1 ]] || e2e_die "5: not exactly one abort"
[[ $(vm_state node-a "$NS" "$NAME") == running ]] || e2e_die "5: not running on node-a"
continues node-a "$before"

# 6 ------------------------------------------------------------------ pause-and-complete
e2e_log "6: pause-and-complete node-a -> node-b, max speed raised on the running job"
read -r src_t _ _ _ src_b _ <<<"$(guest_last node-a "$NS" "$NAME")"
migrate node-a node-b --bandwidth 2 --completion-per-gib 3 --timeout-action pause \
    --speed-after-ms 4500 --speed 0 --expect succeeded || e2e_die "6: $(cat "$OUT")"
grep -q '^ACTION suspend ok=1' "$OUT" || e2e_die "6: no suspend"
[[ $(field paused) == 1 ]] || e2e_die "6: pause not recorded"
[[ $(vm_state node-a "$NS" "$NAME") == "shut off" ]] || e2e_die "6: not shut off on node-a"
dst=$(vm_state node-b "$NS" "$NAME")
[[ $dst == running ]] || e2e_die "6: '$dst' on node-b"
continues node-b "$src_t $src_b"

# 7 ------------------------------------------------------------------ post-copy failure
e2e_log "7: link down during post-copy node-b -> node-a"
migrate node-b node-a --postcopy --timeout-action postcopy --bandwidth 2 --completion-per-gib 3 \
    --on-postcopy-cmd "ip netns exec $(node_netns node-b) ip link set $(node_veth node-b) down" \
    --check-resume-refused --expect postcopy-failed --expect-reason "post-copy failed" ||
    e2e_die "7: $(cat "$OUT")"
grep -q '^RESUME_REFUSED state=1' "$OUT" || e2e_die "7: the driver resumed the source"
reason=$(pod_virsh node-b "$NS" "$NAME" domstate --reason "${NS}_$NAME" 2>/dev/null | head -1)
[[ $reason == "paused (post-copy failed)" ]] || e2e_die "7: source is '$reason'"
e2e_log "  source after the failure: $reason (not resumed)"

e2e_log "PASS: 7 scenarios through the proxies"
