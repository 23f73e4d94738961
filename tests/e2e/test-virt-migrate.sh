#!/usr/bin/env bash
# test-virt-migrate.sh - real libvirt/QEMU migrations driven by the virt module
# (suite e2e, root only).
#
# Two simulated nodes with their own libvirtd come from the verified recipe's
# two-node.sh, used as an external tool (VMIG_E2E_RECIPE, default
# /work/shared/reference/e2e-recipe/two-node.sh; not part of this repository).
# The migrations use direct URIs (qemu+tcp:// control, tcp:// data over the veth):
# the point is the driver (call, monitor, outcome), not the proxy.
#
# Scenarios (each asserts the outcome AND the guest):
#   1 success a->b: outcome succeeded with completed-job figures; domain running on b,
#     shut off on a; the guest's tick counter continues (no reboot), memory checks clean
#   2 user abort b->a (2 MiB/s): outcome aborted, reason "aborted" (B12 run A); guest on b
#   3 completion timeout b->a (2 MiB/s, 5 s/GiB, action abort): reason "completion
#     timeout" (B13 S3); guest still running on b
#   4 stall b->a (destination QEMU stopped with SIGSTOP): reason "no progress" (B13 S1)
#   5 pause-and-complete b->a (2 MiB/s, 3 s/GiB, action pause, then max speed raised on
#     the running job): outcome succeeded with paused=1; guest ticking on a
#   6 post-copy a->b (B14 steps 1-2): switch at the deadline, an abort request right
#     after it is refused ("abort not possible during post-copy"), no abort issued,
#     outcome succeeded with postcopy=1, guest ticking on b
#   7 post-copy failure b->a (B14 run B): the veth goes down right after the switch;
#     outcome postcopy-failed, the source stays "paused (post-copy failed)" and the
#     driver refuses to resume it
#
# Usage: test-virt-migrate.sh PATH/TO/virt-migrate-tool
set -euo pipefail

TOOL=${1:?usage: $0 virt-migrate-tool}
RECIPE=${VMIG_E2E_RECIPE:-/work/shared/reference/e2e-recipe/two-node.sh}
export MIG_ROOT=${VMIG_E2E_MIG_ROOT:-/tmp/migv}
NS=e2e
NAME=vm1
DOM=${NS}_${NAME}
declare -A ADDR=([a]=10.77.0.1 [b]=10.77.0.2)

skip() { echo "SKIP: $*"; exit 77; }
log() { printf '[virt-e2e %(%H:%M:%S)T] %s\n' -1 "$*"; }
fail() { log "FAIL: $*"; exit 1; }

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, libvirtd)"
[[ -x $RECIPE || -f $RECIPE ]] || skip "two-node harness not found at $RECIPE (set VMIG_E2E_RECIPE)"
for t in libvirtd virsh qemu-system-x86_64 ip bc; do
    command -v "$t" >/dev/null || skip "$t not installed (scripts/deps e2e)"
done
if ip netns list 2>/dev/null | grep -qw mig-a; then
    skip "netns mig-a exists: another two-node harness is running on this machine"
fi

harness() { bash "$RECIPE" "$@"; }
uri() { echo "qemu+unix:///system?socket=$MIG_ROOT/$1/run/libvirt-sock"; }
vsh() { local n=$1; shift; virsh -q -c "$(uri "$n")" "$@"; }
state() { vsh "$1" domstate "$DOM" 2>/dev/null | head -1 || true; }
serial() { echo "$MIG_ROOT/$1/log/qemu/$DOM-serial.log"; }
last_tick() { grep -a '^T=' "$(serial "$1")" 2>/dev/null | tail -1 | sed 's/^T=\([0-9a-f]*\).*/\1/'; }
cleanup() {
    local rc=$?
    harness down >/dev/null 2>&1 || true
    exit $rc
}
trap cleanup EXIT INT TERM

log "bringing up two nodes (MIG_ROOT=$MIG_ROOT)"
harness up >/dev/null 2>&1 || fail "two-node.sh up failed"
harness start-vm --dirty 64 >/dev/null 2>&1 || fail "two-node.sh start-vm failed"

# KubeVirt names domains <namespace>_<name>: re-create the recipe's guest under that name.
xml=$MIG_ROOT/$DOM.xml
vsh a dumpxml --inactive migvm | sed -e "s|<name>migvm</name>|<name>$DOM</name>|" \
    -e "s|migvm-serial.log|$DOM-serial.log|" -e '/<uuid>/d' >"$xml"
vsh a destroy migvm >/dev/null
vsh a undefine migvm >/dev/null
vsh a define "$xml" >/dev/null
vsh a start "$DOM" >/dev/null
for _ in $(seq 100); do [[ -n $(last_tick a) ]] && break; sleep 0.1; done
[[ -n $(last_tick a) ]] || fail "guest $DOM printed no tick on node a"
log "guest $DOM running on node a"

# migrate SRC DST [tool options...] -> prints the OUTCOME line, returns the tool's status
migrate() {
    local src=$1 dst=$2; shift 2
    "$TOOL" --src-uri "$(uri "$src")" --namespace "$NS" --name "$NAME" \
        --dconnuri "qemu+tcp://${ADDR[$dst]}/system" --migrate-uri "tcp://${ADDR[$dst]}:49252" \
        --poll-ms 200 "$@" 2>"$MIG_ROOT/tool-$src$dst.log" | tee "$MIG_ROOT/outcome"
}
field() { grep '^OUTCOME' "$MIG_ROOT/outcome" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

lines() { wc -l <"$(serial "$1")" 2>/dev/null || echo 0; }
mark() { # node -> "last_tick_anywhere lines_on_node" before a migration
    local t; t=$(last_tick "$SRC"); echo "${t:-0} $(lines "$1")"
}
guest_continues() { # node "before_tick line_count" (from mark, taken before the migration)
    local n=$1 before=${2% *} from=${2#* } after new
    sleep 1.5
    new=$(tail -n +"$((from + 1))" "$(serial "$n")")
    after=$(last_tick "$n")
    [[ -n $after ]] || fail "no tick on node $n"
    ((16#$after > 16#$before)) || fail "guest tick did not advance on $n ($before -> $after)"
    grep -aq '^BOOT' <<<"$new" && fail "guest rebooted on $n"
    grep -a '^T=' <<<"$new" | grep -qv 'E=00000000' && fail "guest memory errors on $n"
    log "  guest on $n: tick $before -> $after, no reboot, E=00000000"
}

# 1 ------------------------------------------------------------------ success
SRC=a; m=$(mark b)
log "1: success a -> b"
migrate a b --expect succeeded || fail "1: outcome $(cat "$MIG_ROOT/outcome")"
[[ $(state b) == running ]] || fail "1: domain on b is '$(state b)'"
[[ $(state a) == "shut off" ]] || fail "1: domain on a is '$(state a)'"
[[ $(field has_stats) == 1 ]] || fail "1: no completed-job stats"
(($(field data_processed) > 1048576)) || fail "1: data_processed $(field data_processed) too small"
(($(field iterations) >= 1)) || fail "1: iterations $(field iterations)"
(($(field polls) >= 1)) || fail "1: monitor never polled"
[[ $(field event) == 1 ]] || fail "1: no job-completed event (B12 run B)"
guest_continues b "$m"

# 2 ------------------------------------------------------------------ user abort
SRC=b; m=$(mark b)
log "2: user abort b -> a"
migrate b a --bandwidth 2 --abort-after-ms 3000 --expect aborted --expect-reason aborted ||
    fail "2: outcome $(cat "$MIG_ROOT/outcome")"
[[ $(state b) == running ]] || fail "2: domain on b is '$(state b)' after abort"
guest_continues b "$m"

# 3 ------------------------------------------------------------------ completion timeout
m=$(mark b)
log "3: completion timeout b -> a"
migrate b a --bandwidth 2 --completion-per-gib 5 --timeout-action abort \
    --expect aborted --expect-reason "completion timeout" ||
    fail "3: outcome $(cat "$MIG_ROOT/outcome")"
[[ $(state b) == running ]] || fail "3: domain on b is '$(state b)'"
guest_continues b "$m"

# 4 ------------------------------------------------------------------ stall
m=$(mark b)
log "4: stalled stream b -> a (destination QEMU stopped)"
(
    # stop the destination QEMU as soon as it exists: the stream stalls, nothing progresses
    for _ in $(seq 200); do
        p=$(cat "$MIG_ROOT/a/run/qemu/$DOM.pid" 2>/dev/null || true)
        if [[ -n $p ]] && kill -STOP "$p" 2>/dev/null; then
            sleep 15
            kill -CONT "$p" 2>/dev/null || true
            exit 0
        fi
        sleep 0.05
    done
) &
stopper=$!
migrate b a --bandwidth 50 --progress-timeout 4 --completion-per-gib 0 \
    --expect aborted --expect-reason "no progress" || {
    kill "$stopper" 2>/dev/null || true
    fail "4: outcome $(cat "$MIG_ROOT/outcome")"
}
wait "$stopper" || true
[[ $(state b) == running ]] || fail "4: domain on b is '$(state b)'"
guest_continues b "$m"

# 5 ------------------------------------------------------------------ pause-and-complete
log "5: pause-and-complete b -> a"
m=$(mark a)
migrate b a --bandwidth 2 --completion-per-gib 3 --timeout-action pause \
    --speed-after-ms 4500 --speed 0 --expect succeeded ||
    fail "5: outcome $(cat "$MIG_ROOT/outcome")"
[[ $(field paused) == 1 ]] || fail "5: pause not recorded"
[[ $(state b) == "shut off" ]] || fail "5: domain on b is '$(state b)'"
dst_state=$(state a)
log "  destination state after pause-and-complete: $dst_state"
if [[ $dst_state == paused ]]; then
    vsh a resume "$DOM" >/dev/null # libvirt keeps the source's paused state
fi
guest_continues a "$m"

# 6 ------------------------------------------------------------------ post-copy (B14 1-2)
SRC=a; m=$(mark b)
log "6: post-copy switch at the deadline a -> b, abort refused"
migrate a b --postcopy --timeout-action postcopy --bandwidth 2 --completion-per-gib 3 \
    --abort-on-postcopy --expect succeeded || fail "6: outcome $(cat "$MIG_ROOT/outcome")"
grep -q '^ACTION start-postcopy ok=1' "$MIG_ROOT/outcome" || fail "6: no post-copy switch"
grep -q '^ABORT_REFUSED postcopy=1 message="abort not possible during post-copy"' \
    "$MIG_ROOT/outcome" || fail "6: abort during post-copy was not refused"
grep -q '^ACTION abort' "$MIG_ROOT/outcome" && fail "6: an abort was issued during post-copy"
[[ $(field postcopy) == 1 ]] || fail "6: post-copy not recorded"
[[ $(state b) == running ]] || fail "6: domain on b is '$(state b)'"
guest_continues b "$m"

# 7 ------------------------------------------------------------------ post-copy failure (B14 run B)
# The link breaks right after the switch: the migration fails in post-copy, the source
# stays paused (post-copy failed) and must never be resumed. The guest is lost: last.
SRC=b
log "7: link broken during post-copy b -> a"
migrate b a --postcopy --timeout-action postcopy --bandwidth 2 --completion-per-gib 3 \
    --on-postcopy-cmd "ip -n mig-b link set veth-mig-b down" --check-resume-refused \
    --expect postcopy-failed --expect-reason "post-copy failed" ||
    fail "7: outcome $(cat "$MIG_ROOT/outcome")"
grep -q '^RESUME_REFUSED state=1' "$MIG_ROOT/outcome" || fail "7: the driver resumed the source"
reason=$(vsh b domstate --reason "$DOM" 2>/dev/null | head -1)
[[ $reason == "paused (post-copy failed)" ]] || fail "7: source is '$reason'"
log "  source after the failure: $reason (not resumed)"

log "PASS: 7 scenarios"
