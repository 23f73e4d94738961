#!/usr/bin/env bash
# test-metrics.sh - vmigrated's /metrics during and after a real live migration (node-a ->
# node-b): the source exposes KubeVirt's progress gauges while the job runs, counts the
# start and the success, the VMIM as succeeded; both proxies count the bytes they relayed;
# /healthz and /readyz answer. Logs each agent's resident set size (sizing of the DaemonSet).
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/vmigrated.sh"
e2e_begin

fabric_up node-a node-b
apiserver_start
cluster_nodes_apply node-a node-b
vmigrated_certs node-a node-b
pod_create node-a ns1 vm1
pod_create node-b ns1 vm1
vm_start node-a ns1 vm1 --mem 128 --dirty 64
vmi_apply ns1 vm1 node-a
vmigrated_start node-a --http-address "$(node_addr node-a 4):0"
vmigrated_start node-b --http-address "[$(node_addr node-b 6)]:0"
guest_wait_passes node-a ns1 vm1 1

url() { # NODE PATH
    local port
    port=$(grep -o 'serving /healthz /readyz /metrics on .* (port [0-9]*)' \
        "$E2E_ROOT/logs/vmigrated-$1.log" | grep -o 'port [0-9]*' | tail -1 | cut -d' ' -f2)
    [[ -n $port ]] || e2e_die "vmigrated on $1 did not say its HTTP port"
    if [[ $1 == node-a ]]; then echo "http://$(node_addr "$1" 4):$port$2"; else echo "http://[$(node_addr "$1" 6)]:$port$2"; fi
}
get() { ip netns exec "$(node_netns "$1")" curl -sf "$(url "$1" "$2")"; }
metric() { # NODE LINE-PREFIX: the value of the first sample line starting with it
    get "$1" /metrics | awk -v p="$2" 'index($0, p) == 1 { print $NF; exit }'
}

for n in node-a node-b; do
    [[ $(get "$n" /healthz) == ok ]] || e2e_die "/healthz on $n"
    e2e_wait_for 30 "/readyz on $n" get "$n" /readyz || e2e_die "/readyz on $n"
done

vmim_create ns1 mig1 vm1
# while it runs, the source shows the libvirt job's figures under KubeVirt's names
seen=
for _ in $(seq 600); do
    v=$(metric node-a 'kubevirt_vmi_migration_data_processed_bytes{namespace="ns1",name="vm1",node="node-a"} ')
    if [[ -n $v && $v != 0 ]]; then seen=$v; break; fi
    [[ $(kctl get vmim mig1 -n ns1 -o 'jsonpath={.status.phase}') == Succeeded ]] && break
    sleep 0.1
done
[[ -n $seen ]] || e2e_die "no kubevirt_vmi_migration_data_processed_bytes while mig1 ran"
e2e_log "mid-migration on node-a: processed $seen bytes; running gauge $(metric node-a 'kubevirt_vmi_migrations_in_running_phase ')"
vmim_wait ns1 mig1 Succeeded 180 || e2e_die "mig1 did not succeed: $(vmim_reason ns1 mig1)"
sleep 1.5 # the phase gauges are recounted at most once a second

m=$(get node-a /metrics)
grep -qx 'vmigrated_migrations_started_total 1' <<<"$m" || e2e_die "started_total: $(grep started <<<"$m")"
grep -qx 'vmigrated_migrations_completed_total{result="Succeeded"} 1' <<<"$m" || e2e_die "completed_total"
grep -qx 'kubevirt_vmi_migration_succeeded{vmi="vm1",vmim="mig1",namespace="ns1"} 1' <<<"$m" || e2e_die "succeeded gauge"
grep -q '^kubevirt_vmi_migration_data_processed_bytes' <<<"$m" && e2e_die "progress gauges outlived the migration"
grep -qx 'kubevirt_vmi_migrations_in_running_phase 0' <<<"$m" || e2e_die "running gauge"
for n in node-a node-b; do
    b=$(metric "$n" 'vmigrated_proxy_bytes_total{channel="memory",direction="forward"} ')
    ((${b:-0} > 1048576)) || e2e_die "$n relayed ${b:-0} memory bytes"
    e2e_log "$n: memory channel $((b / 1048576)) MiB forward; RSS $(ps -o rss= -p "$(e2e_pid "vmigrated-$n")") KiB"
done
if command -v promtool >/dev/null; then
    promtool check metrics <<<"$m" || e2e_die "promtool rejects node-a's /metrics"
fi
e2e_log "PASS: metrics follow a live migration"
