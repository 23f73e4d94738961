#!/usr/bin/env bash
# daemon-leaks.sh APISERVER [VMIGRATED] - vmigrated under valgrind memcheck against the
# in-memory test API server: sync, churn (VMIs and VMIMs created, changed and deleted,
# watches cut and expired so every informer relists, write failures, /metrics scrapes, a
# cordon so the drain code creates evacuations, an uncordon so it deletes them), SIGTERM.
# Passes when the daemon exits 0 with no memory errors (invalid reads/writes, uses of
# uninitialised values, bad frees) and nothing definitely or indirectly lost. Third-party
# one-time leaks are suppressed by tests/valgrind.supp (one reason per entry); ours never.
#
# VMIGRATED must be a build without sanitizers (ASan and valgrind do not mix); default
# $VMIG_VALGRIND_VMIGRATED. APISERVER may be the ASan one (it runs natively, not under
# valgrind). Everything listens on 127.0.0.1, kernel-chosen ports. Takes 20-40 s.
# Environment: VMIG_VALGRIND_KEEP=1 keeps the work directory (logs) after a pass;
# VMIG_VALGRIND_TLS=1 talks HTTPS to the API server (slow under valgrind: ~55 s).
set -euo pipefail
apiserver=$1 vmigrated=${2:-${VMIG_VALGRIND_VMIGRATED:-}}
if [[ -z $vmigrated ]]; then
    echo "SKIP: needs a vmigrated built without sanitizers: pass it or set VMIG_VALGRIND_VMIGRATED"
    echo "      (scripts/test builds build/plain for this)"
    exit 77
fi
[[ -x $vmigrated ]] || { echo "FAIL: $vmigrated is not an executable"; exit 1; }
if nm -D "$vmigrated" 2>/dev/null | grep -q ' __asan_init'; then
    echo "FAIL: $vmigrated is built with AddressSanitizer; valgrind needs a plain build"; exit 1
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed"; exit 77; }
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

tmp=$(mktemp -d)
api_pid='' vg_pid=''
start=$SECONDS
cleanup() {
    local rc=$?
    for p in $vg_pid $api_pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if ((rc != 0)); then
        echo "--- daemon log (last 30 lines)"; tail -30 "$tmp/vmigrated.log" 2>/dev/null || true
        echo "--- valgrind's findings (full log kept: $tmp/valgrind.log)"
        # each error or loss record up to its closing blank line, without the suppression
        # templates (--gen-suppressions) in between
        awk '/(Invalid|uninitialised|Mismatched|Syscall param|Source and destination|definitely lost in loss|indirectly lost in loss)/ {on = 1}
             on && /^==[0-9]+== $/ {on = 0; print ""; n++}
             on {print}
             n >= 8 {exit}' "$tmp/valgrind.log" 2>/dev/null || true
    elif [[ -n ${VMIG_VALGRIND_KEEP:-} ]]; then
        echo "logs kept in $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
log() { printf '[%3ds] %s\n' $((SECONDS - start)) "$*"; }

# wait_for SECONDS WHAT COMMAND... - poll every 0.2 s
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$((SECONDS + secs))
    while ((SECONDS < end)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$vg_pid" 2>/dev/null || fail "vmigrated died while waiting for $what"
        sleep 0.2
    done
    fail "timed out after ${secs}s waiting for $what"
}

# --- the API server: plain HTTP by default. Under valgrind every TLS handshake costs
# seconds of CPU: over HTTPS the run takes ~55 s on an idle machine, and on a loaded one
# (load 14 on two cores) the daemon's requests timed out before it synced. GnuTLS is not
# ours; VMIG_VALGRIND_TLS=1 runs over HTTPS all the same (by hand). kubectl sends no token
# over HTTP, so none is required ----------------------------------------------------------
tls=()
[[ -n ${VMIG_VALGRIND_TLS:-} ]] && tls=(--tls-dir "$tmp/tls")
ASAN_OPTIONS=detect_leaks=0:intercept_tls_get_addr=0 "$apiserver" "${tls[@]}" \
    --write-kubeconfig "$tmp/kc" --ready-file "$tmp/ready" --bookmark-interval 600000 \
    2>"$tmp/apiserver.log" &
api_pid=$!
for _ in $(seq 200); do [[ -s $tmp/ready ]] && break; sleep 0.05; done
[[ -s $tmp/ready ]] || { cat "$tmp/apiserver.log"; fail "test API server did not start"; }
api=$(cat "$tmp/ready")
k() { kubectl --kubeconfig "$tmp/kc" "$@"; }
# raw(METHOD PATH [BODY]) - the API server's /_test/ endpoints
raw() {
    local ca=()
    [[ -n ${VMIG_VALGRIND_TLS:-} ]] && ca=(--cacert "$tmp/tls/ca.pem")
    curl -sS --fail "${ca[@]}" -H 'Content-Type: application/yaml' -X "$1" "$api$2" \
        ${3:+--data-binary "$3"}
}

k apply -f "$src/data/crds/" >/dev/null
k apply -f "$src/data/examples/kubevirt-migrations.yaml" >/dev/null

node() { # node NAME IP
    printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {kubernetes.io/hostname: %s}}\n' "$1" "$1"
    printf 'status:\n  addresses: [{type: InternalIP, address: "%s"}]\n' "$2"
    printf '  conditions: [{type: Ready, status: "True"}]\n---\n'
}
# vmi NS NAME NODE EVICTION BINDING - a Running VMI with status (seeded, not created)
vmi() {
    cat <<Y
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: $2, namespace: $1, labels: {app: web}}
spec:
  evictionStrategy: $4
  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, $5: {}}]
      disks: [{name: root, disk: {bus: virtio}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]
  volumes: [{name: root, containerDisk: {image: example/disk}}]
status:
  phase: Running
  nodeName: $3
  migrationMethod: BlockMigration
  conditions: [{type: Ready, status: "True"}, {type: LiveMigratable, status: "True"}]
---
Y
}
# heartbeat Leases of the other nodes' agents, fresh now: they make node-b and node-c
# eligible migration targets (no agent answers there, so migrations fail later, at libvirt)
leases() {
    local now
    now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
    for n in node-b node-c; do
        printf 'apiVersion: coordination.k8s.io/v1\nkind: Lease\n'
        printf 'metadata: {name: vmigrated-%s, namespace: vmigrated}\n' "$n"
        printf 'spec: {holderIdentity: %s, renewTime: "%s", leaseDurationSeconds: 40}\n---\n' "$n" "$now"
    done
}
vmim() { # vmim NS NAME VMI
    printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\n'
    printf 'metadata: {name: %s, namespace: %s}\nspec: {vmiName: %s}\n---\n' "$2" "$1" "$3"
}
{
    node node-a 127.0.0.1
    node node-b 127.0.0.2
    node node-c 127.0.0.3
    leases
    printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns2}\n---\n'
    vmi ns1 vm1 node-a LiveMigrate masquerade
    vmi ns1 vm2 node-a LiveMigrate bridge # not migratable: EvacuationBlocked on drain
    vmi ns1 vm3 node-b LiveMigrate masquerade
    vmi ns2 vm4 node-a None masquerade
    vmi ns2 vm5 node-c LiveMigrateIfPossible masquerade
    # a finished migration of vm1 and one of another node's VMI
    cat <<Y
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: mig-old, namespace: ns1}
spec: {vmiName: vm1}
status:
  phase: Succeeded
  migrationState: {sourceNode: node-a, targetNode: node-b, completed: true}
---
Y
    vmim ns1 mig-b vm3
    # node-b's agent has claimed a migration of vm8 to this node: we are its target (and
    # fail at preparing it, as vm8's target pod does not exist either)
    vmi ns1 vm8 node-b LiveMigrate masquerade | sed '/^---$/d'
    cat <<Y
  migrationState:
    migrationUid: 7c1e0a52-5d0b-4c1e-9a4e-2f6a1b3c4d5e
    sourceNode: node-b
    targetNode: node-a
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: mig-t, namespace: ns1, uid: 7c1e0a52-5d0b-4c1e-9a4e-2f6a1b3c4d5e}
spec: {vmiName: vm8}
status: {phase: Scheduled}
---
Y
} >"$tmp/seed.yaml"
raw POST /_test/objects "$(cat "$tmp/seed.yaml")" >/dev/null

# --- vmigrated under valgrind -----------------------------------------------------------------
# G_SLICE in the environment: without it vmigrated re-execs itself (/proc/self/exe) before
# anything else, which would leave valgrind behind; gc-friendly zeroes freed GLib memory so
# stale pointers do not keep blocks "reachable"; a g_critical() (a broken invariant) aborts.
mkdir -p "$tmp/pods"
G_SLICE=always-malloc G_DEBUG=gc-friendly,fatal-criticals valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=42 --num-callers=40 --gen-suppressions=all \
    --suppressions="$src/tests/valgrind.supp" --log-file="$tmp/valgrind.log" \
    "$vmigrated" --node-name node-a --kubeconfig "$tmp/kc" --lease-namespace vmigrated \
    --http-address 127.0.0.1:0 --disable-tls --verbose \
    --pod-share-dir "$tmp/pods/{namespace}_{name}" \
    --libvirt-socket "$tmp/pods/{namespace}_{name}/libvirt-sock" \
    --shutdown-grace-ms 3000 --abort-wait-ms 1000 --target-ready-timeout-ms 3000 \
    --status-interval-ms 200 2>"$tmp/vmigrated.log" &
vg_pid=$!

port_of() { sed -n 's/.*serving .* (port \([0-9]*\)).*/\1/p' "$tmp/vmigrated.log" | head -1; }
wait_for 60 "the HTTP endpoint" bash -c "grep -q 'serving .*(port [0-9]' '$tmp/vmigrated.log'"
port=$(port_of)
get() { curl -sS --fail --max-time 20 "http://127.0.0.1:$port$1"; }
wait_for 90 "/readyz (informers synced)" get /readyz
log "synced; churn"

scrape() {
    get /metrics >"$tmp/metrics" || fail "GET /metrics"
    grep -q '^vmigrated_ready 1$' "$tmp/metrics" || fail "/metrics: vmigrated_ready is not 1"
    get /healthz >/dev/null || fail "GET /healthz"
}

raw POST /_test/objects "$(leases)" >/dev/null
# 1. a migration from this node: the VMI's pod (libvirt socket) does not exist, so it fails
k apply -f - <<<"$(vmim ns1 mig-a vm1)" >/dev/null
failed() { [[ $(k get vmim -n "$1" "$2" -o 'jsonpath={.status.phase}') == Failed ]]; }
wait_for 60 "ns1/mig-a to fail (no libvirt for vm1)" failed ns1 mig-a
wait_for 60 "ns1/mig-t to fail (we are its target; no libvirt for vm8)" failed ns1 mig-t
scrape

# 2. VMIs come, change and go; a VMIM for a VMI that does not exist
raw POST /_test/objects "$(vmi ns2 vm6 node-a LiveMigrate masquerade; vmi ns2 vm7 node-b LiveMigrate masquerade)" >/dev/null
k apply -f - <<<"$(vmim ns2 mig-ghost nosuchvm)" >/dev/null
k label vmi -n ns2 vm6 tier=db >/dev/null
k patch vmi -n ns2 vm7 --type merge -p '{"metadata":{"annotations":{"x":"y"}}}' >/dev/null
k delete vmi -n ns2 vm6 --wait=false >/dev/null
sleep 1

# 3. watches break: aborted mid-stream (plain reconnect), closed with a few reconnects
# refused by an ERROR event 410, and then, after a write no informer sees (a Pod) and a
# compaction, every informer (nine) is behind the compacted resourceVersion: all reconnects
# get HTTP 410 and each informer relists. Watch bytes arrive in 1-7 byte pieces meanwhile,
# and some of the daemon's writes fail (resource-scoped: kubectl's must not). Bookmarks
# come only when asked for (--bookmark-interval), else they would move the informers on.
fault() { raw POST /_test/faults "$1" >/dev/null; }
fault '{"action":"bookmark"}'
fault '{"action":"cut-watches","mode":"abort"}'
sleep 1
fault '{"action":"expire-next-watch","shape":"stream","count":3}'
fault '{"action":"cut-watches","mode":"close"}'
k apply -f - <<<"$(vmim ns1 mig-b2 vm3)" >/dev/null
sleep 1.5
raw POST /_test/objects 'apiVersion: v1
kind: Pod
metadata: {name: unrelated, namespace: ns1}
spec: {containers: [{name: c, image: example/c}]}' >/dev/null
fault '{"action":"split-writes","min":1,"max":7}'
fault '{"action":"compact"}'
fault '{"action":"cut-watches","mode":"abort"}'
k apply -f - <<<"$(vmim ns2 mig-c vm4)" >/dev/null
fault '{"action":"fail-writes","count":2,"code":500,"resource":"leases"}'
fault '{"action":"fail-writes","count":1,"code":409,"resource":"virtualmachineinstancemigrations/status"}'
scrape
sleep 2
fault '{"action":"split-writes","min":0,"max":0}'
# each informer reconnects after its own backoff (seconds); /readyz stays 200 meanwhile
relisted() {
    get /metrics | grep '^vmigrated_informer_lists_total{' >"$tmp/lists"
    (($(wc -l <"$tmp/lists") == 9)) && awk '$2 < 2 {bad = 1} END {exit bad}' "$tmp/lists"
}
wait_for 60 "every informer to relist (last counts in $tmp/lists)" relisted
wait_for 90 "/readyz after the relists" get /readyz
scrape

# 4. drain: cordon node-a -> an evacuation VMIM for vm1 (and EvacuationBlocked for vm2);
# uncordon -> the daemon deletes the evacuation again
raw POST /_test/objects "$(leases)" >/dev/null
k cordon node-a >/dev/null
evac() { k get vmim -n ns1 -o 'jsonpath={range .items[*]}{.metadata.name} {end}' | grep -q kubevirt-evacuation-; }
wait_for 60 "an evacuation VMIM for vm1 after the cordon" evac
k uncordon node-a >/dev/null
sleep 2
scrape

# 5. cleanup churn: VMIMs and VMIs deleted
k delete vmim -n ns1 --all --wait=false >/dev/null
k delete vmim -n ns2 --all --wait=false >/dev/null
k delete vmi -n ns2 vm7 --wait=false >/dev/null
sleep 2
scrape
log "churn done; SIGTERM"

# --- stop and judge -------------------------------------------------------------------------
kill -TERM "$vg_pid"
rc=0
for _ in $(seq 600); do kill -0 "$vg_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$vg_pid" 2>/dev/null && fail "vmigrated did not stop within 60 s of SIGTERM"
wait "$vg_pid" || rc=$?
vg_pid=
vlog=$tmp/valgrind.log
log "vmigrated exited with status $rc"
grep -E 'definitely lost:|indirectly lost:|possibly lost:|still reachable:|suppressed:|ERROR SUMMARY:|no leaks are possible' "$vlog" | sed 's/^==[0-9]*== */  /'
((rc == 42)) && fail "valgrind found errors (see $vlog)"
((rc == 0)) || fail "vmigrated exited with status $rc"
grep -q 'ERROR SUMMARY: 0 errors' "$vlog" || fail "valgrind reported errors (see $vlog)"
if ! grep -q 'no leaks are possible' "$vlog"; then
    grep -q 'definitely lost: 0 bytes in 0 blocks' "$vlog" || fail "memory definitely lost (see $vlog)"
    grep -q 'indirectly lost: 0 bytes in 0 blocks' "$vlog" || fail "memory indirectly lost (see $vlog)"
fi
grep -q 'Invalid \(read\|write\|free\)' "$vlog" && fail "invalid memory access (see $vlog)"
log "ok: vmigrated is leak-free and clean under valgrind"
