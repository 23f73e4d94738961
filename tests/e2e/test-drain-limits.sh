#!/usr/bin/env bash
# test-drain-limits.sh - issue 6, Tests: "six VMIs on each of two nodes drained at once with
# limits 5/2/2 -> sampled every 100 ms, no limit ever exceeded, both nodes make progress, all
# slots returned at the end".
#
# node-a and node-b hold six VMIs each (evictionStrategy LiveMigrate, real TCG guests);
# node-c and node-d are the only eligible targets (each has a target pod ready for every
# guest, as KubeVirt's target pod would be, because the daemons choose the target). Every
# daemon runs with parallelMigrationsPerCluster 5, parallelOutboundMigrationsPerNode 2 (the
# KubeVirt CR) and --inbound-migrations 2. Both nodes are cordoned in one kubectl call and
# the daemons create the twelve evacuation VMIMs themselves.
#
# The limits are checked three ways:
#   * after every VMIM watch event (curl watch on the API server, replayed afterwards): the
#     VMIMs in Scheduling..Running, in all (<= 5), per source node (<= 2) and per target
#     node (<= 2), at every state the API server ever had;
#   * after every slot Lease watch event: held Leases per kind (cluster <= 5, outbound per
#     node <= 2, inbound per node <= 2) and no slot index beyond a limit;
#   * sampled every 100 ms: two long-lived curl pollers per list, 50 ms apart (not kubectl:
#     one kubectl call costs more than the period; under load an answer can too).
# Then: both nodes have a migration in flight before the first one finishes and both keep
# going (neither finishes its six before the other has moved half of its own), all twelve
# guests run on node-c/node-d and continued (same boot, tick counter on, E=0), the domain is
# shut off everywhere else, every evacuation VMIM Succeeded (exactly one per VMI, at least
# 2 pre-copy iterations), every slot Lease is free, no VMI keeps status.evacuationNodeName.
# Figures (wall time, migrations, peak RSS of QEMU/libvirtd/vmigrated, load) go to the log.
#
# Sizing (E2E_MEM, E2E_DIRTY, E2E_VMS_PER_NODE override): 16 MiB guests (the smallest the
# harness boots) dirtying 8 pages per tick (3.2 MB/s), see docs/e2e.md for the measurements.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

MEM=${E2E_MEM:-16}
DIRTY=${E2E_DIRTY:-8}
PER_NODE=${E2E_VMS_PER_NODE:-6}
CL=5 OUT=2 IN=2
SOURCES="node-a node-b"
TARGETS="node-c node-d"
LIVE='["Scheduling","Scheduled","PreparingTarget","TargetReady","Running"]'

vms_of() { # SOURCE-NODE: its guests a1..aN / b1..bN (short: socket paths, docs/e2e.md)
    local i
    for ((i = 1; i <= PER_NODE; i++)); do echo "${1#node-}$i"; done
}
src_of() { echo "node-${1:0:1}"; }
ALL_VMS="$(vms_of node-a) $(vms_of node-b)"
N_VMS=$((2 * PER_NODE))

t0=$(e2e_now_ms)
fabric_up node-a node-b node-c node-d
apiserver_start
cluster_nodes_apply node-a node-b node-c node-d
vmigrated_certs node-a node-b node-c node-d
pods=()
for v in $ALL_VMS; do pods+=("$(src_of "$v")" ns1 "$v"); done
for v in $ALL_VMS; do for t in $TARGETS; do pods+=("$t" ns1 "$v"); done; done
pod_create "${pods[@]}"
t_pods=$(e2e_now_ms)

# the guests boot in parallel (each vm_start waits for its first tick)
guest_build
starters=()
for v in $ALL_VMS; do
    vm_start "$(src_of "$v")" ns1 "$v" --mem "$MEM" --dirty "$DIRTY" &
    starters+=($!)
done
for p in "${starters[@]}"; do wait "$p" || e2e_die "a guest did not start"; done
t_guests=$(e2e_now_ms)

# ---- observers (stopped by the test, and by e2e_cleanup on failure) ----
OBS=$E2E_ROOT/obs
mkdir -p "$OBS"
# resources every second: RSS of this run's QEMU, libvirtd and vmigrated processes
# (VmRSS summed, VmHWM per process, CPU ticks summed), load average, machine CPU busy
# shellcheck disable=SC2016
e2e_spawn obs-res '^bash$' bash -c '
    root=$1
    while :; do
        declare -A sum=() cnt=() hwm=() cpu=()
        declare -A pids=()
        # (the qemu/ directory also holds driver.pid, the pod libvirtd: each PID once)
        for f in "$root"/pids/*.pid "$root"/node-*/pods/*/run/libvirt/qemu/*.pid; do
            p=""
            read -r p _ 2>/dev/null <"$f" # (libvirt writes no newline)
            [[ -n $p ]] && pids[$p]=1
        done
        for p in "${!pids[@]}"; do
            c="" r=0 h=0
            while read -r k v _; do
                case $k in Name:) c=$v ;; VmRSS:) r=$v ;; VmHWM:) h=$v ;; esac
            done 2>/dev/null <"/proc/$p/status" || continue
            case $c in qemu-system-*) c=qemu ;; libvirtd | vmigrated | vmig-test-apise) ;; *) continue ;; esac
            read -r -a st 2>/dev/null <"/proc/$p/stat" || continue
            sum[$c]=$((${sum[$c]:-0} + r)); cnt[$c]=$((${cnt[$c]:-0} + 1))
            cpu[$c]=$((${cpu[$c]:-0} + st[13] + st[14]))
            ((h > ${hwm[$c]:-0})) && hwm[$c]=$h
        done
        read -r l1 _ </proc/loadavg
        read -r _ u n s i w x y z _ </proc/stat
        line="t=$EPOCHREALTIME load=$l1 cpu=$((u + n + s + x + y + z)),$((u + n + s + i + w + x + y + z))"
        for c in qemu libvirtd vmigrated vmig-test-apise; do
            line+=" $c=${cnt[$c]:-0}:${sum[$c]:-0}:${hwm[$c]:-0}:${cpu[$c]:-0}"
        done
        echo "$line"
        unset sum cnt hwm cpu pids
        sleep 1
    done >"$2/res.txt"' res "$E2E_ROOT" "$OBS"

spec="  evictionStrategy: LiveMigrate
  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, masquerade: {}}]
    resources: {requests: {memory: ${MEM}Mi}}
  networks: [{name: default, pod: {}}]"
for v in $ALL_VMS; do vmi_apply ns1 "$v" "$(src_of "$v")" "$spec"; done
scen_kubevirt_migrations "{parallelMigrationsPerCluster: $CL, parallelOutboundMigrationsPerNode: $OUT}"
for n in $SOURCES $TARGETS; do vmigrated_start "$n" --inbound-migrations "$IN"; done
t_daemons=$(e2e_now_ms)

# every guest has written all of its memory once: a migration moves all of it
for v in $ALL_VMS; do guest_wait_passes "$(src_of "$v")" ns1 "$v" 2 90 || e2e_die "guest $v never finished its first pass"; done
declare -A LAST
for v in $ALL_VMS; do LAST[$v]=$(guest_last "$(src_of "$v")" ns1 "$v"); done

# the watches and pollers, in the control plane
API=https://$E2E_CP_ADDR4:$E2E_API_PORT
CA=$E2E_ROOT/cp/tls/ca.pem
TOKEN=$(cat "$E2E_ROOT/cp/token")
VMIM_URL=$API/apis/kubevirt.io/v1/namespaces/ns1/virtualmachineinstancemigrations
LEASE_URL=$API/apis/coordination.k8s.io/v1/namespaces/vmigrated/leases

# observer NAME URL: every event of a watch on URL, one JSON line each with the local
# receive time: {"t":<epoch s>,"e":<watch event>}.
# shellcheck disable=SC2016 # expanded by the observer's shell
observer() {
    e2e_spawn "obs-$1" '^bash$' ip netns exec "$(cp_netns)" bash -c '
        export LC_ALL=C
        curl -sSN --cacert "$1" -H "Authorization: Bearer $2" "$3?watch=1&allowWatchBookmarks=true&sendInitialEvents=true" |
            while IFS= read -r l; do printf "{\"t\":%s,\"e\":%s}\n" "$EPOCHREALTIME" "$l"; done >"$4"
    ' obs "$CA" "$TOKEN" "$2" "$OBS/$1.jsonl"
}
observer vmim "$VMIM_URL"
observer lease "$LEASE_URL"
# pollers: each list every 100 ms by a long-lived curl (--rate 10/s over a URL sequence,
# one kept-alive connection: no process start per sample), two per list started 50 ms
# apart (an answer can take longer than the period on this loaded machine); one line per
# answer with its receive time and curl's time_total: {"t":<epoch s>,"rt":<s>,"l":<List>}
# shellcheck disable=SC2016
poller() { # KIND URL N
    e2e_spawn "obs-poll-$1-$3" '^bash$' ip netns exec "$(cp_netns)" bash -c '
        export LC_ALL=C
        curl -sSN --rate 10/s -w " %{time_total}\n" --cacert "$1" -H "Authorization: Bearer $2" "$3?sample=[1-100000]" |
            while IFS= read -r l; do
                [[ $l == "{"* ]] && printf "{\"t\":%s,\"rt\":%s,\"l\":%s}\n" "$EPOCHREALTIME" "${l##* }" "${l% *}"
            done >"$4"
    ' poll "$CA" "$TOKEN" "$2" "$OBS/poll-$1-$3.jsonl"
}
for i in 1 2; do
    poller vmim "$VMIM_URL" "$i"
    poller lease "$LEASE_URL" "$i"
    sleep 0.05
done
obs_started() {
    grep -q '"BOOKMARK"' "$OBS/vmim.jsonl" 2>/dev/null && grep -q '"BOOKMARK"' "$OBS/lease.jsonl" 2>/dev/null &&
        [[ -s $OBS/poll-vmim-1.jsonl && -s $OBS/poll-lease-1.jsonl && -s $OBS/poll-vmim-2.jsonl && -s $OBS/poll-lease-2.jsonl && -s $OBS/res.txt ]]
}
e2e_wait_for 20 "the watches, the poller and the resource monitor" obs_started || e2e_die "observers did not start"

kctl get vmim -n ns1 -o name | grep -q . && e2e_die "VMIMs before the drain: $(kctl get vmim -n ns1 -o name)"

# ---- the drain: both nodes in one kubectl call ----
e2e_log "cordon node-a and node-b at once ($N_VMS guests of $MEM MiB, dirty $DIRTY pages/tick; limits $CL/$OUT/$IN)"
t_drain=$(e2e_now_ms)
kctl cordon node-a node-b >/dev/null

# all VMIs on the targets and every evacuation final
all_moved() {
    local out
    out=$(kctl get vmim -n ns1 -o json | jq -r '.items[] | .status.phase // "-"')
    grep -q Failed <<<"$out" && { e2e_log "an evacuation failed: $(vmims_summary)"; return 2; }
    (($(grep -c '^Succeeded$' <<<"$out") == N_VMS)) || return 1
    [[ -z $(kctl get vmi -n ns1 -o json | jq -r '.items[] | select(.status.nodeName != "node-c" and .status.nodeName != "node-d") | .metadata.name') ]]
}
vmims_summary() {
    kctl get vmim -n ns1 -o json | jq -r '[.items[] | "\(.spec.vmiName)=\(.status.phase // "-")@\(.status.migrationState.targetNode // "?")"] | sort | join(" ")'
}
e2e_wait_for 420 "$N_VMS evacuations" all_moved || e2e_die "evacuations did not all succeed: $(vmims_summary)"
t_done=$(e2e_now_ms)
e2e_log "all $N_VMS moved in $((t_done - t_drain)) ms: $(vmims_summary)"

# every slot returned (the release follows the final phase, within the 5 s pass)
slots_held() {
    kctl get lease -n vmigrated -o json | jq -r '[.items[] | select(.metadata.name | startswith("vmigrated-slot-"))
        | select((.spec.holderIdentity // "") != "") | "\(.metadata.name)=\(.spec.holderIdentity)"] | join(" ")'
}
slots_free() { [[ -z $(slots_held) ]]; }
e2e_wait_for 20 "every slot Lease released" slots_free ||
    e2e_die "slot Leases still held: $(slots_held)"
t_free=$(e2e_now_ms)
# the watches have everything up to now once a BOOKMARK at this resourceVersion (one
# counter for all resources) or later arrived: the streams are in order
rv_now=$(kctl get --raw /apis/coordination.k8s.io/v1/namespaces/vmigrated/leases | jq -r .metadata.resourceVersion)
[[ $rv_now =~ ^[0-9]+$ ]] || e2e_die "no resourceVersion from the Lease list: '$rv_now'"
caught_up() {
    local f
    for f in "$OBS/vmim.jsonl" "$OBS/lease.jsonl"; do
        jq -e --argjson rv "$rv_now" 'select(.e.type == "BOOKMARK" and (.e.object.metadata.resourceVersion | tonumber) >= $rv)' \
            "$f" >/dev/null 2>&1 || return 1
    done
}
e2e_wait_for 20 "the watches at resourceVersion $rv_now" caught_up || e2e_die "the watches fell behind"
e2e_stop obs-vmim
e2e_stop obs-lease
for k in vmim lease; do for i in 1 2; do e2e_stop "obs-poll-$k-$i"; done; done
e2e_stop obs-res

# ---- the objects ----
vmims=$(kctl get vmim -n ns1 -o json)
bad=$(jq -r --arg n "$N_VMS" '
    [.items[] | select((.metadata.name | startswith("kubevirt-evacuation-") | not)
        or .status.phase != "Succeeded"
        or (.metadata.annotations["kubevirt.io/evacuationMigration"] // "") != ("node-" + .spec.vmiName[0:1]))
        | "\(.metadata.name) vmi=\(.spec.vmiName) phase=\(.status.phase) ann=\(.metadata.annotations["kubevirt.io/evacuationMigration"])"]
    + (if (.items | length) != ($n | tonumber) then ["\(.items | length) VMIMs, want \($n)"] else [] end)
    + (if ([.items[].spec.vmiName] | unique | length) != ($n | tonumber) then ["not exactly one VMIM per VMI"] else [] end)
    | join("; ")' <<<"$vmims")
[[ -z $bad ]] || e2e_die "evacuation VMIMs: $bad"
vmis=$(kctl get vmi -n ns1 -o json)
bad=$(jq -r '[.items[] | select((.status.nodeName | IN("node-c", "node-d") | not) or (.status.evacuationNodeName // "") != "")
    | "\(.metadata.name) on \(.status.nodeName) evacuationNodeName=\(.status.evacuationNodeName)"] | join("; ")' <<<"$vmis")
[[ -z $bad ]] || e2e_die "VMIs: $bad"

# ---- the guests: running on their target only, continued without loss ----
declare -A ON
for v in $ALL_VMS; do ON[$v]=$(jq -r --arg v "$v" '.items[] | select(.metadata.name == $v) | .status.nodeName' <<<"$vmis"); done
for v in $ALL_VMS; do
    t=${ON[$v]}
    [[ $(vm_state "$t" ns1 "$v") == running ]] || e2e_die "guest $v is '$(vm_state "$t" ns1 "$v")' on $t"
    for o in "$(src_of "$v")" $TARGETS; do
        [[ $o == "$t" ]] && continue
        case $(vm_state "$o" ns1 "$v") in "shut off" | absent) ;; *) e2e_die "guest $v also '$(vm_state "$o" ns1 "$v")' on $o" ;; esac
    done
    read -r lt _ _ _ lb _ <<<"${LAST[$v]}"
    guest_check "$t" ns1 "$v" --after "$lt" --boot "$lb" --resumed >/dev/null ||
        e2e_die "guest $v did not continue on $t (last on $(src_of "$v"): ${LAST[$v]})"
done

# ---- the limits at every observed instant ----
# each line: "<t> cluster=N out:<node>=N in:<node>=N ... done=N" (VMIMs), or the same
# keys for held slot Leases; check_limits prints the offending lines
check_limits() {
    awk -v cl="$CL" -v out="$OUT" -v in_="$IN" '{
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "cluster" && kv[2] > cl) { print "cluster: " $0; next }
            if (kv[1] ~ /^out:/ && kv[2] > out) { print "outbound: " $0; next }
            if (kv[1] ~ /^in:/ && kv[2] > in_) { print "inbound: " $0; next }
            if (kv[1] == "beyond") { print "slot index beyond its limit: " $0; next }
        }
    }' "$1"
}
# the VMIMs in Scheduling..Running of one state (.o: name -> object)
# shellcheck disable=SC2016
VMIM_COUNTS='
    def counts($o): [$o[] | select(.status.phase as $p | '"$LIVE"' | index($p))] as $live
        | "cluster=\($live | length)"
          + ([$live[] | "out:" + (.status.migrationState.sourceNode // .metadata.annotations["kubevirt.io/evacuationMigration"] // "?")]
             | group_by(.) | map(" \(.[0])=\(length)") | join(""))
          + ([$live[] | select(.status.migrationState.targetNode) | "in:" + .status.migrationState.targetNode]
             | group_by(.) | map(" \(.[0])=\(length)") | join(""))
          + " done=\([$o[] | select(.status.phase == "Succeeded" or .status.phase == "Failed")] | length)";'
# shellcheck disable=SC2016
LEASE_COUNTS='
    def counts($o): [$o[] | select(.metadata.name | startswith("vmigrated-slot-"))
            | select((.spec.holderIdentity // "") != "") | .metadata.name
            | capture("^vmigrated-slot-(?<k>cluster|out-.*|in-.*)-(?<i>[0-9]+)$")
            | {k: (.k | sub("^out-"; "out:") | sub("^in-"; "in:")), i: (.i | tonumber)}] as $h
        | ([$h[] | .k] | group_by(.) | map("\(.[0])=\(length)") | join(" "))
          + ([$h[] | select((.k == "cluster" and .i >= '"$CL"') or (.k | startswith("out:")) and .i >= '"$OUT"'
                 or (.k | startswith("in:")) and .i >= '"$IN"')] | if length > 0 then " beyond=\(length)" else "" end);'
replay() { # COUNTS-DEF WATCH-FILE: one line per watch event, the state after it
    jq -n -r "$1"'
        foreach (inputs | select(.e.type != "BOOKMARK")) as $x ({};
            if $x.e.type == "DELETED" then del(.[$x.e.object.metadata.name])
            else .[$x.e.object.metadata.name] = $x.e.object end;
            "\($x.t) \(counts(.) | if . == "" then "none" else . end)")' "$2"
}
replay "$VMIM_COUNTS" "$OBS/vmim.jsonl" >"$OBS/vmim-states.txt"
replay "$LEASE_COUNTS" "$OBS/lease.jsonl" >"$OBS/lease-states.txt"
# polls
for k in vmim lease; do
    c=VMIM_COUNTS
    [[ $k == lease ]] && c=LEASE_COUNTS
    cat "$OBS/poll-$k-1.jsonl" "$OBS/poll-$k-2.jsonl" |
        jq -r "${!c}"' "\(.t) \(counts([.l.items[] | {key: .metadata.name, value: .}] | from_entries) | if . == "" then "none" else . end)"' |
        sort -n >"$OBS/poll-$k.txt"
done
for f in vmim-states lease-states poll-vmim poll-lease; do
    (($(wc -l <"$OBS/$f.txt") >= 10)) || e2e_die "$f: only $(wc -l <"$OBS/$f.txt") observations"
    bad=$(check_limits "$OBS/$f.txt")
    [[ -z $bad ]] || e2e_die "a limit was exceeded ($f): $(head -n 3 <<<"$bad")"
done
# every VMIM reached Running (the watch saw the live phases), none was ever Failed
grep -q 'done=0' "$OBS/vmim-states.txt" || e2e_die "the VMIM watch missed the start"
tail -n 1 "$OBS/vmim-states.txt" | grep -q "done=$N_VMS\$" || e2e_die "the VMIM watch did not see the end: $(tail -n 1 "$OBS/vmim-states.txt")"
tail -n 1 "$OBS/lease-states.txt" | grep -q ' none$' || e2e_die "the Lease watch ends with slots held: $(tail -n 1 "$OBS/lease-states.txt")"

# ---- both nodes make progress ----
# first in-flight time per source node, first completion, and the completions over time
first_live() { awk -v k="out:$1=" 'index($0, k) {print $1; exit}' "$OBS/vmim-states.txt"; }
fa=$(first_live node-a)
fb=$(first_live node-b)
fd=$(awk '!/ done=0$/ {print $1; exit}' "$OBS/vmim-states.txt")
[[ -n $fa && -n $fb && -n $fd ]] || e2e_die "no migration in flight on node-a ($fa) or node-b ($fb), or none finished ($fd)"
awk -v a="$fa" -v b="$fb" -v d="$fd" 'BEGIN {exit !(a < d && b < d)}' ||
    e2e_die "one node started only after the first migration ended: node-a $fa, node-b $fb, first end $fd"
# completions per source node in the order they happened (from the final phases' order)
order=$(jq -n -r 'foreach (inputs | select(.e.type != "BOOKMARK") | .e.object
        | select(.status.phase == "Succeeded")) as $o ({}; .[$o.metadata.name] += 1;
        if .[$o.metadata.name] == 1 then $o.spec.vmiName[0:1] else empty end)' "$OBS/vmim.jsonl" | tr -d '\n')
# when the first node has moved all its guests, the other has moved at least half of its own
half=$((PER_NODE / 2))
awk -v s="$order" -v n="$PER_NODE" -v h="$half" 'BEGIN {
        for (i = 1; i <= length(s); i++) {
            c[substr(s, i, 1)]++
            if (c["a"] == n && c["b"] < h || c["b"] == n && c["a"] < h) exit 1
        }
    }' || e2e_die "one node went first and the other after it: completion order $order"

# ---- figures ----
max_live=$(sed -E 's/^[^ ]* cluster=([0-9]+).*/\1/' "$OBS/vmim-states.txt" | sort -n | tail -n 1)
n_ev=$(wc -l <"$OBS/vmim-states.txt")
n_lev=$(wc -l <"$OBS/lease-states.txt")
answer_ms() { # KIND: mean and max time_total of the polls of the drain
    cat "$OBS/poll-$1-1.jsonl" "$OBS/poll-$1-2.jsonl" | jq -r --arg t0 "$t_drain" --arg t1 "$t_done" '
        select(.t * 1000 >= ($t0 | tonumber) and .t * 1000 <= ($t1 | tonumber)) | .rt' |
        awk '{s += $1; if ($1 > m) m = $1; n++} END {printf "answers in %.0f ms on average, %.0f ms at most", 1000 * s / n, 1000 * m}'
}
gaps() {
    awk -v t0="$t_drain" -v t1="$t_done" '$1 * 1000 >= t0 && $1 * 1000 <= t1 {if (n++) {d = ($1 - p) * 1000; if (d > m) m = d; s += d; if (d > 150) l++}; p = $1}
        END {printf "%d in the drain, every %.0f ms on average, longest gap %.0f ms, %d gaps > 150 ms", n, s / (n - 1), m, l}' "$1"
}
figs=$(jq -r '[.items[] | .metadata.annotations["vmigrated.kubevirt.io/progress"] | fromjson] |
    "iterations \(map(.iteration) | min)-\(map(.iteration) | max), downtime \(map(.downtimeMs) | min)-\(map(.downtimeMs) | max) ms, job \(map(.elapsedMs) | min)-\(map(.elapsedMs) | max) ms, \(map(.processedBytes) | min / 1048576 * 10 | floor / 10)-\(map(.processedBytes) | max / 1048576 * 10 | floor / 10) MiB"' <<<"$vmims")
min_it=$(jq -r '[.items[] | .metadata.annotations["vmigrated.kubevirt.io/progress"] | fromjson | .iteration] | min' <<<"$vmims")
((min_it >= 2)) || e2e_die "a migration took $min_it pre-copy iteration(s): not a live migration with dirty pages ($figs)"
res=$(awk -v t0="$t_drain" -v t1="$t_done" -v hz="$(getconf CLK_TCK)" '
    function peak(f, k,   a) {
        split(f, a, ":")
        if (a[2] > rss[k]) { rss[k] = a[2]; num[k] = a[1] }
        if (a[3] > hwm[k]) hwm[k] = a[3]
        if (t < t0 && k == "qemu") { if (!qt0) { qt0 = t; qc0 = a[4] } qt1 = t; qc1 = a[4] }
        if (t >= t0 && !(k in c0)) c0[k] = a[4]
        if (t <= t1) c1[k] = a[4]
    }
    {
        for (i = 1; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "t") t = kv[2] * 1000
            else if (kv[1] == "load") { if (kv[2] > load) load = kv[2] }
            else if (kv[1] == "cpu") { split(kv[2], c, ","); if (t >= t0 && !b0) { b0 = c[1]; a0 = c[2] } if (t <= t1) { b1 = c[1]; a1 = c[2] } }
            else if (kv[1] != "") peak(kv[2], kv[1])
        }
    }
    END {
        printf "peak RSS sum: qemu %.0f MiB (%d procs), libvirtd %.0f MiB (%d), vmigrated %.0f MiB (%d); ",
            rss["qemu"] / 1024, num["qemu"], rss["libvirtd"] / 1024, num["libvirtd"], rss["vmigrated"] / 1024, num["vmigrated"]
        printf "peak RSS per process: qemu %.0f, libvirtd %.0f, vmigrated %.0f, apiserver %.0f MiB; ",
            hwm["qemu"] / 1024, hwm["libvirtd"] / 1024, hwm["vmigrated"] / 1024, hwm["vmig-test-apise"] / 1024
        printf "CPU in the drain: 4 vmigrated %.1f s, API server %.1f s; ", (c1["vmigrated"] - c0["vmigrated"]) / hz,
            (c1["vmig-test-apise"] - c0["vmig-test-apise"]) / hz
        printf "the idle guests before the drain %.0f %% of one CPU; ", (qt1 > qt0 ? 100 * (qc1 - qc0) / hz / ((qt1 - qt0) / 1000) : 0)
        printf "load max %s, machine CPU busy in the drain %.0f %%", load, (a1 > a0 ? 100 * (b1 - b0) / (a1 - a0) : 0)
    }' "$OBS/res.txt")
e2e_log "setup: pods $((t_pods - t0)) ms (${#pods[@]} / 3 libvirtd), guests $((t_guests - t_pods)) ms, daemons $((t_daemons - t_guests)) ms"
e2e_log "drain: $N_VMS migrations in $((t_done - t_drain)) ms, slots free $((t_free - t_done)) ms later; $figs"
e2e_log "observed: $n_ev VMIM events, $n_lev Lease events, polls of the VMIMs: $(gaps "$OBS/poll-vmim.txt") ($(answer_ms vmim)), of the Leases: $(gaps "$OBS/poll-lease.txt") ($(answer_ms lease)); at most $max_live in flight; node-a first in flight $(awk -v a="$fa" -v t="$t_drain" 'BEGIN {printf "%.1f", a - t / 1000}') s, node-b $(awk -v a="$fb" -v t="$t_drain" 'BEGIN {printf "%.1f", a - t / 1000}') s, first end $(awk -v a="$fd" -v t="$t_drain" 'BEGIN {printf "%.1f", a - t / 1000}') s after the cordon; completion order $order"
e2e_log "resources: $res"
e2e_log "PASS: $N_VMS guests evacuated from two nodes at once; limits $CL/$OUT/$IN held at every VMIM and Lease event and every 100 ms poll; all slots free"
