#!/usr/bin/env bash
# test-limits.sh - the migration limits hold under races (issue 6 "Limits that hold under
# races"): two nodes, two guests on each, all four VMIMs posted at once (both nodes "drain"
# together), three times: limits cluster/outbound/inbound 2/2/1 (the cluster limit binds
# first, and must be shared: each node could take both slots), 4/1/1 back (outbound binds),
# 4/2/1 there again (inbound binds, at SCHEDULE).
# Sampled about every 100 ms from the API server: the VMIMs in Scheduling..Running never
# exceed the cluster limit, nor the outbound limit per source node, nor the inbound limit
# per target node; both nodes make progress; every migration succeeds; every slot Lease is
# released at the end; a held-back migration says why in an event. In the first round the
# cluster slots are shared fairly: no node runs 2 while the other runs none and has a
# migration waiting for longer than FAIR_WINDOW_MS; the idle time of a freed cluster slot
# (release -> the next take's write) is logged.
# Four TCG guests (eight libvirtd pods) keep the test near 50 s on a shared 2-core machine;
# the issue's six per node (limits 5/2/2) is the same logic with more waiting, not tried.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

VMS_A="vma1 vma2"
VMS_B="vmb1 vmb2"
fabric_up node-a node-b
apiserver_start
cluster_nodes_apply node-a node-b
vmigrated_certs node-a node-b
pods=()
for v in $VMS_A; do pods+=(node-a ns1 "$v" node-b ns1 "$v"); done
for v in $VMS_B; do pods+=(node-b ns1 "$v" node-a ns1 "$v"); done
pod_create "${pods[@]}"
for v in $VMS_A; do vm_start node-a ns1 "$v" --mem 64 --dirty 8; done
for v in $VMS_B; do vm_start node-b ns1 "$v" --mem 64 --dirty 8; done
spec="  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, masquerade: {}}]
    resources: {requests: {memory: 64Mi}}
  networks: [{name: default, pod: {}}]"
for v in $VMS_A; do vmi_apply ns1 "$v" node-a "$spec"; done
for v in $VMS_B; do vmi_apply ns1 "$v" node-b "$spec"; done
vmigrated_start node-a --inbound-migrations 1
vmigrated_start node-b --inbound-migrations 1

samples=$E2E_ROOT/samples.txt
# one line per sample: "T cluster=N out:node-a=N in:node-b=N ... done=N run:SRC=N wait:SRC=N"
# (T = ms when the answer arrived; run/wait count the VMIMs in flight/Pending by the node
# their guest leaves, known from the guest's name: $SRC_A for vma*, $SRC_B for vmb*)
sample() {
    local s
    s=$(kctl get vmim -n ns1 -o json 2>/dev/null | jq -r --arg sa "$SRC_A" --arg sb "$SRC_B" '
        def live: .status.phase as $p | ["Scheduling","Scheduled","PreparingTarget",
          "TargetReady","Running"] | index($p);
        def src: if (.spec.vmiName | startswith("vma")) then $sa else $sb end;
        [.items[] | select(live)] as $live
        | [.items[] | select((.status.phase // "Pending") == "Pending")] as $wait
        | "cluster=\($live | length)"
          + ([$live[] | "out:" + (.status.migrationState.sourceNode // "?")] | group_by(.)
             | map(" \(.[0])=\(length)") | join(""))
          + ([$live[] | select(.status.migrationState.targetNode) | "in:" + .status.migrationState.targetNode]
             | group_by(.) | map(" \(.[0])=\(length)") | join(""))
          + " done=\([.items[] | select(.status.phase == "Succeeded" or .status.phase == "Failed")] | length)"
          + " run:\($sa)=\([$live[] | select(src == $sa)] | length)"
          + " run:\($sb)=\([$live[] | select(src == $sb)] | length)"
          + " wait:\($sa)=\([$wait[] | select(src == $sa)] | length)"
          + " wait:\($sb)=\([$wait[] | select(src == $sb)] | length)"') || return 1
    echo "$(e2e_now_ms) $s"
}
sampler() {
    while :; do
        sample >>"$samples" || true
        sleep 0.1
    done
}

# slot_idle T0 T1: for every cluster slot Lease released and then taken again between T0 and
# T1 (ms since the epoch), the gap between its release and the start of the write that took
# it ("taking" in the taker's log: the write's answer may come much later on a busy machine),
# from both agents' logs; prints "n=N mean=MS max=MS" (a take that starts before the release
# - the taker saw the holder final first - counts 0).
slot_idle() {
    local day0
    day0=$(($(date -u -d "$(date -u +%F)" +%s) * 1000))
    cat "$E2E_ROOT"/logs/vmigrated-*.log |
        grep -E '(releasing|taking|took) slot Lease vmigrated-slot-cluster-' |
        awk -v t0=$(($1 - day0)) -v t1=$(($2 - day0)) '{
            split(substr($1, 12, 12), h, ":")
            ms = (h[1] * 3600 + h[2] * 60) * 1000 + h[3] * 1000
            if (ms < t0 || ms > t1) next
            for (i = 1; i <= NF; i++) if ($i ~ /^vmigrated-slot-cluster-/) lease = $i
            for (i = 1; i <= NF; i++) if ($i ~ /^ns1\//) vmim = $i
            print ms, ($0 ~ /releasing/ ? "R" : $0 ~ /taking/ ? "S" : "T"), lease, vmim
        }' | sort -n -s -k1,1 | awk '
        $2 == "R" { rel[$3] = $1; next }
        $2 == "S" { start[$3 " " $4] = $1; next }
        $2 == "T" && ($3 in rel) {
            s = ($3 " " $4) in start ? start[$3 " " $4] : $1
            d = s - rel[$3]; if (d < 0) d = 0; n++; sum += d; if (d > max) max = d; delete rel[$3]
        }
        END { printf "n=%d mean=%d max=%d\n", n, n ? sum / n : 0, max }'
}

# round TAG CLUSTER-LIMIT OUTBOUND-LIMIT DEST-OF-A DEST-OF-B [fair]: post one VMIM per guest
# at once, wait for all, check every sample against the limits (inbound is 1); with "fair",
# also that the cluster slots were shared: no node ran 2 while the other ran none and had a
# migration waiting, for longer than FAIR_WINDOW_MS.
# Nothing is preempted: when a node's cache shows the other node's VMIMs only after it took
# both cluster slots (a CI run under load: 1.9 s), the other waits for a migration to end.
# 2.5 s still fails the old behaviour (3.2 s and 5.9 s in its two runs).
FAIR_WINDOW_MS=2500
round() {
    local tag=$1 cl=$2 out=$3 da=$4 db=$5 fair=${6:-} t0 t1 n bad max v p posters=() events unfair idle
    SRC_A=$db SRC_B=$da # the guests of A leave the node B's guests go to, and back
    scen_kubevirt_migrations "{parallelMigrationsPerCluster: $cl, parallelOutboundMigrationsPerNode: $out}"
    sleep 1 # the agents' KubeVirt informers
    : >"$samples"
    # two samplers 100 ms apart: one kubectl call takes longer than the sampling period
    sampler &
    SAMPLER=$!
    sleep 0.1
    sampler &
    SAMPLER="$SAMPLER $!"
    # tracked like every process of the run, so e2e_cleanup stops them if this round fails
    # (replacing the harness's EXIT trap here left the whole cluster running after the test)
    for p in $SAMPLER; do echo "$p ^$(cat "/proc/$p/comm")\$" >"$E2E_ROOT/pids/sampler-$p.pid"; done
    t0=$(e2e_now_ms)
    for v in $VMS_A $VMS_B; do
        vmim_create ns1 "$tag-$v" "$v" &
        posters+=($!)
    done
    for p in "${posters[@]}"; do wait "$p" || e2e_die "a VMIM could not be posted"; done
    for v in $VMS_A $VMS_B; do
        vmim_wait ns1 "$tag-$v" Succeeded 150 || e2e_die "$tag-$v did not succeed: $(vmim_reason ns1 "$tag-$v")"
    done
    t1=$(e2e_now_ms)
    # E2E_SAVE_LOGS=DIR keeps the agents' logs of each round (the run's state goes at exit)
    if [[ -n ${E2E_SAVE_LOGS:-} ]]; then
        mkdir -p "$E2E_SAVE_LOGS/$tag"
        cp "$E2E_ROOT"/logs/vmigrated-*.log "$E2E_SAVE_LOGS/$tag/"
    fi
    sleep 0.3
    for p in $SAMPLER; do e2e_stop "sampler-$p"; done
    wait $SAMPLER 2>/dev/null || true

    n=$(wc -l <"$samples")
    ((n >= 20)) || e2e_die "$tag: only $n samples"
    bad=$(awk -v cl="$cl" -v out="$out" '{
        for (i = 1; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "cluster" && kv[2] > cl) print "cluster: " $0
            if (kv[1] ~ /^out:/ && kv[2] > out) print "outbound: " $0
            if (kv[1] ~ /^in:/ && kv[2] > 1) print "inbound: " $0
        }
    }' "$samples")
    [[ -z $bad ]] || e2e_die "$tag: a limit was exceeded: $(head -n 3 <<<"$bad")"
    # both nodes made progress
    grep -q 'out:node-a=' "$samples" || e2e_die "$tag: node-a never migrated"
    grep -q 'out:node-b=' "$samples" || e2e_die "$tag: node-b never migrated"
    max=$(sed -E 's/^[0-9]+ cluster=([0-9]+).*/\1/' "$samples" | sort -n | tail -n 1)
    # fairness: the longest stretch where one node ran >= 2 while the other ran 0 with a
    # migration waiting (samples sorted by time: the two samplers interleave)
    unfair=$(sort -n -k1,1 "$samples" | awk -v sa="$SRC_A" -v sb="$SRC_B" -v cl="$cl" -v out="$out" '{
            delete v
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            ra = v["run:" sa] + 0; rb = v["run:" sb] + 0; wa = v["wait:" sa] + 0; wb = v["wait:" sb] + 0
            if ((ra >= 2 && rb == 0 && wb > 0) || (rb >= 2 && ra == 0 && wa > 0)) {
                if (!since) since = $1
                if ($1 - since > worst) worst = $1 - since
            } else since = 0
            if (ra + rb > 0) { both += (ra > 0 && rb > 0); busy++ }
            # a cluster slot free while a node below its outbound limit has a migration
            # waiting, after the first completion (before it, the round is starting up)
            if (v["done"] > 0 && v["cluster"] < cl && ((wa > 0 && ra < out) || (wb > 0 && rb < out))) {
                if (!isince) isince = $1
                if ($1 - isince > iworst) iworst = $1 - isince
            } else isince = 0
        } END { printf "%d %d %d %d\n", worst, both, busy, iworst }')
    idle=n/a
    [[ -z $fair ]] || idle=$(slot_idle "$t0" "$t1")
    for v in $VMS_A; do [[ $(vmi_node ns1 "$v") == "$da" ]] || e2e_die "$tag: $v not on $da"; done
    for v in $VMS_B; do [[ $(vmi_node ns1 "$v") == "$db" ]] || e2e_die "$tag: $v not on $db"; done
    # a held-back migration said why (captured first: grep -q closing the pipe early would
    # fail the pipeline under pipefail)
    events=$(kctl get events -n ns1 -o 'jsonpath={range .items[*]}{.involvedObject.name}:{.reason}:{.message}{"\n"}{end}')
    grep -q "^$tag-.*:MigrationPending:waiting: .* limit" <<<"$events" || {
        grep -h "waiting\|slot" "$E2E_ROOT"/logs/vmigrated-*.log | tail -n 20 >&2
        e2e_die "$tag: no 'waiting: ... limit' event; events: $events"
    }
    # all slots returned: no slot Lease has a holder (the release follows the final phase)
    e2e_wait_for 20 "every slot Lease released" bash -c "[[ \$(ip netns exec $(cp_netns) kubectl --kubeconfig $E2E_KUBECONFIG get lease -n vmigrated -o json | jq '[.items[] | select(.metadata.name | startswith(\"vmigrated-slot-\")) | select((.spec.holderIdentity // \"\") != \"\")] | length') == 0 ]]" ||
        e2e_die "$tag: slot Leases still held: $(kctl get lease -n vmigrated -o 'jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity} {end}')"
    e2e_log "$tag: 4 migrations in $((t1 - t0)) ms, $n samples, at most $max at once, limits $cl/$out/1 held; waits: $(grep -o "^$tag-[^:]*:MigrationPending:waiting: [a-z]* limit[^:]*" <<<"$events" | sed 's/.*waiting: //;s/ [0-9]*\/[0-9]*//' | sort | uniq -c | tr -s ' \n' ' ')"
    read -r worst both busy iworst <<<"$unfair"
    e2e_log "$tag: fairness: longest one-sided stretch ${worst} ms (one node 2+, the other 0 and waiting), both nodes in flight in $both of $busy busy samples; freed cluster slot idle: release -> next take (logs) $idle, longest free-slot-with-waiter stretch (samples) ${iworst} ms"
    if [[ -n $fair ]] && ((worst > FAIR_WINDOW_MS)); then
        sort -n -k1,1 "$samples" >&2
        e2e_die "$tag: one node held both cluster slots for $worst ms while the other had a migration waiting"
    fi
}

round there 2 2 node-b node-a fair # the cluster limit binds first, shared fairly
round back 4 1 node-a node-b  # the outbound limit binds
round again 4 2 node-b node-a # the inbound limit binds (waits in Scheduling)
e2e_log "PASS: limits hold under races; $(kctl get lease -n vmigrated -o name | grep -c slot) slot Leases, all free"
