#!/usr/bin/env bash
# test-disable-tls.sh - KubeVirt's spec.configuration.migrations.disableTLS, honoured per
# migration. Both agents have TLS credentials; the KubeVirt CR decides:
#   mig1 node-a -> node-b with disableTLS: true  -> succeeds over plain TCP;
#   mig2 node-b -> node-a with disableTLS: false -> succeeds over mutual TLS (the CR change
#        is picked up without restarting anything);
#   mig3 node-a -> node-b with disableTLS: false but node-b's agent restarted with
#        --disable-tls (no credentials) -> Failed with a reason naming TLS, never downgraded;
#        the guest keeps running on node-a.
# Evidence of the transport: on the wire, node-b's interfaces carry QEMU's migration stream
# header ("QEVM", version 3) in clear during mig1 and never during mig2 (a packet socket in
# node-b's namespace); the source's decision in the VMIM's source annotation; each agent's
# vmigrated_proxy_connections_total{transport=...} and its per-migration log line.
# A plain target refuses a TLS handshake and a TLS target refuses plain bytes (unit tests of
# the proxy), so a migration that succeeds had both ends on the transport they report.
set -euo pipefail
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/lib/scenario.sh"
e2e_begin

scen_cluster --mem 64 --dirty 16
vmi_apply ns1 vm1 node-a
scen_kubevirt_migrations '{disableTLS: true}'
vmigrated_start node-a --http-address "$(node_addr node-a 4):0"
vmigrated_start node-b --http-address "$(node_addr node-b 4):0"
guest_wait_passes node-a ns1 vm1 1

url() { # NODE PATH
    local port
    port=$(grep -o 'serving /healthz /readyz /metrics on .* (port [0-9]*)' \
        "$E2E_ROOT/logs/vmigrated-$1.log" | grep -o 'port [0-9]*' | tail -1 | cut -d' ' -f2)
    [[ -n $port ]] || e2e_die "vmigrated on $1 did not say its HTTP port"
    echo "http://$(node_addr "$1" 4):$port$2"
}
metrics() { ip netns exec "$(node_netns "$1")" curl -sf "$(url "$1" /metrics)"; }
# conns NODE TRANSPORT: finished memory-channel proxy connections with that transport
conns() {
    metrics "$1" | awk -v p="vmigrated_proxy_connections_total{channel=\"memory\",result=\"ok\",transport=\"$2\"} " \
        'index($0, p) == 1 { print $NF; exit }'
}
source_ann() { kctl get vmim "$1" -n ns1 -o 'jsonpath={.metadata.annotations.vmigrated\.kubevirt\.io/source}'; }
uid_of() { kctl get vmim "$1" -n ns1 -o 'jsonpath={.metadata.uid}'; }
# expect_transport VMIM SRC DST TRANSPORT DISABLE-TLS-JSON: what both nodes report
expect_transport() {
    local mig=$1 src=$2 dst=$3 want=$4 ann=$5 n v uid
    uid=$(uid_of "$mig")
    [[ $(source_ann "$mig") == *"\"disableTLS\":$ann"* ]] ||
        e2e_die "$mig: source annotation lacks \"disableTLS\":$ann"
    for n in "$src" "$dst"; do
        e2e_wait_for 10 "$want memory connections on $n" bash -c "(( \$(ip netns exec $(node_netns "$n") curl -sf $(url "$n" /metrics) | grep -c 'vmigrated_proxy_connections_total{channel=\"memory\",result=\"ok\",transport=\"$want\"}') > 0 ))" ||
            e2e_die "$n counted no $want memory connection for $mig: $(metrics "$n" | grep proxy_connections_total)"
        v=$(conns "$n" "$want")
        if grep -q "migration $uid: disableTLS is set" "$E2E_ROOT/logs/vmigrated-$n.log"; then
            [[ $want == plain ]] || e2e_die "$n warned of plain TCP for the TLS migration $mig"
        else
            [[ $want == tls ]] || e2e_die "$n did not warn that $mig runs in plain TCP"
        fi
        e2e_log "$mig on $n: $v memory connection(s) over $want"
    done
}

# wire_start NAME: count packets on node-b's interfaces that carry QEMU's migration stream
# header in clear (8 bytes: a chance match in ciphertext is ~2^-64 per position).
cat >"$E2E_ROOT/wire.py" <<'PY'
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
print("ready", flush=True)
n = 0
while True:
    if b"QEVM\x00\x00\x00\x03" in s.recv(262144):
        n += 1
        print("match", n, flush=True)
PY
wire_start() {
    e2e_spawn "wire-$1" 'python3' ip netns exec "$(node_netns node-b)" python3 "$E2E_ROOT/wire.py"
    e2e_wait_for 10 "the packet socket of $1" _wire_ready "$1" ||
        e2e_die "wire sniffer $1 did not start: $(cat "$E2E_ROOT/logs/wire-$1.log")"
}
_wire_ready() { grep -qs ready "$E2E_ROOT/logs/wire-$1.log" || return 1; } # 2 would end the wait
wire_matches() { grep -c '^match' "$E2E_ROOT/logs/wire-$1.log" || true; }

# mig1: plain TCP, as the CR says
wire_start mig1
last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig1 vm1
vmim_wait ns1 mig1 Succeeded 180 || e2e_die "mig1 did not succeed: $(vmim_reason ns1 mig1)"
e2e_wait_for 30 "VMI nodeName node-b" scen_vmi_node_is node-b || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)'"
scen_only_on node-b
scen_guest_continues node-b "$last"
expect_transport mig1 node-a node-b plain true
e2e_stop wire-mig1
(($(wire_matches mig1) > 0)) || e2e_die "mig1: no QEMU stream header in clear on node-b's wire"
e2e_log "mig1: QEMU stream header seen in clear on the wire ($(wire_matches mig1) packet(s))"
for n in node-a node-b; do
    [[ -z $(conns "$n" tls) ]] || e2e_die "$n counted TLS memory connections during mig1"
done

# mig2: the CR now asks for TLS; the agents follow without a restart
scen_kubevirt_migrations '{disableTLS: false}'
sleep 2 # the KubeVirt informers of both agents see the change
wire_start mig2
last=$(guest_last node-b ns1 vm1)
vmim_create ns1 mig2 vm1
vmim_wait ns1 mig2 Succeeded 180 || e2e_die "mig2 did not succeed: $(vmim_reason ns1 mig2)"
e2e_wait_for 30 "VMI nodeName node-a" scen_vmi_node_is node-a || e2e_die "VMI nodeName '$(vmi_node ns1 vm1)'"
scen_only_on node-a
scen_guest_continues node-a "$last"
expect_transport mig2 node-b node-a tls false
e2e_stop wire-mig2
(($(wire_matches mig2) == 0)) || e2e_die "mig2: QEMU stream header in clear on the wire, want TLS"
e2e_log "mig2: no QEMU stream header in clear on the wire"

# mig3: the target cannot do TLS (--disable-tls): the migration fails, it is not downgraded
vmigrated_stop node-b
vmigrated_start node-b --disable-tls
last=$(guest_last node-a ns1 vm1)
vmim_create ns1 mig3 vm1
vmim_wait ns1 mig3 Failed 120 || e2e_die "mig3 did not fail: $(vmim_phase ns1 mig3)"
reason=$(vmim_reason ns1 mig3)
[[ $reason == *"TLS is required"* ]] || e2e_die "mig3 failed for '$reason', want the TLS mismatch"
[[ $(source_ann mig3) == *'"disableTLS":false'* ]] || e2e_die "mig3: source annotation lacks \"disableTLS\":false"
scen_only_on node-a
scen_guest_continues node-a "$last"
e2e_log "mig3 failed as it should: $reason"
e2e_log "PASS: disableTLS in the KubeVirt CR decides each migration's transport, never downgraded"
