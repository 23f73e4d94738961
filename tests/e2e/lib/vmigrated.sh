# shellcheck shell=bash
# vmigrated.sh - the daemon under test in the e2e harness: per-node certificates, one
# vmigrated per node (in the node's network namespace, the host's mount namespace, so it
# reaches each pod's directory as a hostPath), and the Kubernetes objects a KubeVirt cluster
# would hold (Nodes, VMIs). Sourced by harness.sh.

vmigrated_bin() {
    local b
    for b in "${E2E_VMIGRATED:-}" "$E2E_BUILD_ROOT/src/programs/vmigrated"; do
        [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

# cluster_nodes_apply NODE...: Node objects with their InternalIP and hostname label.
cluster_nodes_apply() {
    local n
    for n in "$@"; do
        kctl apply -f - >/dev/null <<Y || e2e_die "cannot create Node $n"
apiVersion: v1
kind: Node
metadata:
  name: $n
  labels: {kubernetes.io/hostname: $n}
status:
  addresses: [{type: InternalIP, address: "$(node_addr "$n" 4)"}, {type: Hostname, address: $n}]
Y
    done
}

# vmigrated_certs NODE...: a test CA (once) and a certificate per node (SAN: name, addresses).
vmigrated_certs() {
    local n
    mkdir -p "$E2E_ROOT/tls"
    for n in "$@"; do
        "$E2E_SOURCE_ROOT/scripts/gen-certs" "$E2E_ROOT/tls" "$n" "$(node_addr "$n" 4)" \
            "$(node_addr "$n" 6)" >/dev/null || e2e_die "gen-certs $n"
    done
}

# vmigrated_start NODE [EXTRA-OPTIONS...]: the agent of NODE; waits until its heartbeat Lease
# exists (it is then synced and eligible as a target).
#
# E2E_VALGRIND=PATH runs every agent under valgrind memcheck: PATH is a vmigrated built
# without sanitizers (scripts/test makes build/plain/src/programs/vmigrated). The agent
# then also serves /readyz on the node's loopback and start waits for it (valgrind's
# agents sync seconds later than their Lease appears). At the end of a passing test
# vmigrated_valgrind_finish stops them and fails the test on any valgrind error. By hand.
vmigrated_start() {
    local n=$1 bin comm='^vmigrated$' wrap=() extra=()
    shift
    bin=$(vmigrated_bin) || e2e_die "vmigrated not built (set E2E_VMIGRATED or VMIG_BUILD_ROOT)"
    if [[ -n ${E2E_VALGRIND:-} ]]; then
        bin=$E2E_VALGRIND
        # valgrind's process is named after its tool; G_SLICE set, or vmigrated re-execs
        # itself through /proc/self/exe and leaves valgrind
        comm='^(vmigrated|memcheck-amd64-)$'
        # shellcheck disable=SC2054 # the commas are valgrind's list syntax
        wrap=(env G_SLICE=always-malloc G_DEBUG=gc-friendly valgrind --leak-check=full
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
            --error-exitcode=42 --num-callers=40
            --suppressions="$E2E_SOURCE_ROOT/tests/valgrind.supp"
            --log-file="$E2E_ROOT/logs/valgrind-$n.%p.log")
        extra=(--http-address 127.0.0.1:0)
    fi
    e2e_spawn "vmigrated-$n" "$comm" ip netns exec "$(node_netns "$n")" "${wrap[@]}" "$bin" \
        --node-name "$n" --kubeconfig "$E2E_KUBECONFIG" --lease-namespace vmigrated \
        --migration-address "$(node_addr "$n" 4)" \
        --tls-cert "$E2E_ROOT/tls/$n.pem" --tls-key "$E2E_ROOT/tls/$n-key.pem" \
        --tls-ca "$E2E_ROOT/tls/ca.pem" \
        --pod-share-dir "$E2E_ROOT/$n/pods/{namespace}_{name}/share" \
        --pod-share-path /run/kubevirt \
        --libvirt-socket "$E2E_ROOT/$n/pods/{namespace}_{name}/run/libvirt/libvirt-sock" \
        --target-ready-timeout-ms "${E2E_TARGET_READY_MS:-60000}" \
        --job-poll-interval-ms 200 --status-interval-ms 500 --shutdown-grace-ms 5000 \
        --verbose "${extra[@]}" ${E2E_VMIGRATED_ARGS:-} "$@"
    e2e_wait_for "${E2E_AGENT_START_S:-90}" "the heartbeat Lease of $n" _vmigrated_leased "$n" ||
        { tail -n 30 "$E2E_ROOT/logs/vmigrated-$n.log" >&2; e2e_die "vmigrated on $n did not start"; }
    if [[ -n ${E2E_VALGRIND:-} ]]; then
        e2e_wait_for 180 "/readyz of vmigrated on $n" _vmigrated_ready "$n" ||
            e2e_die "vmigrated on $n (valgrind) did not become ready"
    fi
}

_vmigrated_ready() {
    local port
    port=$(sed -n 's/.*serving .* (port \([0-9]*\)).*/\1/p' "$E2E_ROOT/logs/vmigrated-$1.log" | tail -1)
    [[ -n $port ]] && ip netns exec "$(node_netns "$1")" curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"
}

_vmigrated_leased() {
    local pid
    pid=$(e2e_pid "vmigrated-$1")
    kill -0 "$pid" 2>/dev/null || { e2e_log "vmigrated on $1 exited"; return 2; }
    kctl get lease -n vmigrated "vmigrated-$1" >/dev/null 2>&1
}

vmigrated_stop() {
    if [[ -n ${E2E_VALGRIND:-} ]]; then
        # valgrind needs time for its leak check after the daemon's own shutdown
        local f=$E2E_ROOT/pids/vmigrated-$1.pid pid comm
        read -r pid comm 2>/dev/null <"$f" || return 0
        e2e_kill_pid "$pid" "$comm" 600
        rm -f "$f"
        return 0
    fi
    e2e_stop "vmigrated-$1"
}

# vmigrated_valgrind_finish: with E2E_VALGRIND, stop every agent still running (SIGTERM,
# up to 60 s each) and judge every valgrind log of the run: returns 1 when one reports an
# error (invalid access, definite or indirect leak) or has no summary (killed before its
# leak check). Without E2E_VALGRIND it does nothing.
vmigrated_valgrind_finish() {
    [[ -n ${E2E_VALGRIND:-} ]] || return 0
    local f n bad=0
    for f in "$E2E_ROOT"/pids/vmigrated-*.pid; do
        [[ -e $f ]] || continue
        n=${f##*/vmigrated-}
        vmigrated_stop "${n%.pid}"
    done
    for f in "$E2E_ROOT"/logs/valgrind-*.log; do
        [[ -e $f ]] || continue
        e2e_log "valgrind ${f##*/}: $(grep -E 'definitely lost:|indirectly lost:|ERROR SUMMARY:|no leaks are possible' "$f" |
            sed 's/^==[0-9]*== *//' | tr -s ' ' | paste -sd ';')"
        grep -q 'ERROR SUMMARY: 0 errors' "$f" || { bad=1; e2e_log "valgrind found errors: $f"; }
    done
    return "$bad"
}

# vmigrated_kill NODE: SIGKILL, no grace (a crash).
vmigrated_kill() {
    local pid
    pid=$(e2e_pid "vmigrated-$1")
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    rm -f "$E2E_ROOT/pids/vmigrated-$1.pid"
    # a killed agent's valgrind log has no leak check: set aside, not judged
    if [[ -n ${E2E_VALGRIND:-} && -e $E2E_ROOT/logs/valgrind-$1.$pid.log ]]; then
        mv "$E2E_ROOT/logs/valgrind-$1.$pid.log" "$E2E_ROOT/logs/valgrind-$1.$pid.killed"
    fi
}

# vmi_apply NS NAME NODE [YAML-SPEC-LINES]: the VMI object of a guest running on NODE (status
# phase Running, nodeName). The default spec is migratable: masquerade on the pod network,
# a named CPU model (TCG guests have no host-model to guarantee), a containerDisk.
vmi_apply() {
    local ns=$1 name=$2 n=$3 spec=${4:-}
    [[ -n $spec ]] || spec="  domain:
    cpu: {model: qemu64}
    devices:
      interfaces: [{name: default, masquerade: {}}]
    resources: {requests: {memory: 128Mi}}
  networks: [{name: default, pod: {}}]"
    kctl get namespace "$ns" >/dev/null 2>&1 || kctl create namespace "$ns" >/dev/null
    kctl apply -f - >/dev/null <<Y || e2e_die "cannot create VMI $ns/$name"
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: $name
  namespace: $ns
  labels: {kubevirt.io/nodeName: $n}
spec:
$spec
Y
    kctl patch vmi "$name" -n "$ns" --subresource=status --type=merge \
        -p "{\"status\":{\"phase\":\"Running\",\"nodeName\":\"$n\"}}" >/dev/null ||
        e2e_die "cannot set the status of VMI $ns/$name"
}

# vmim_create NS NAME VMI: post a migration (as a user would, with kubectl).
vmim_create() {
    kctl create -f - >/dev/null <<Y || e2e_die "cannot create VMIM $1/$2"
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: $2, namespace: $1}
spec: {vmiName: $3}
Y
}

vmim_phase() { kctl get vmim "$2" -n "$1" -o 'jsonpath={.status.phase}' 2>/dev/null; }

# vmim_wait NS NAME PHASE[|PHASE...] TIMEOUT_S: wait for one of the phases; a final phase
# other than the wanted ones ends the wait early.
vmim_wait() {
    e2e_wait_for "$4" "VMIM $1/$2 in $3" _vmim_in "$1" "$2" "$3"
}
_vmim_in() {
    local p
    p=$(vmim_phase "$1" "$2")
    [[ -n $p && "|$3|" == *"|$p|"* ]] && return 0
    [[ $p == Succeeded || $p == Failed ]] && { e2e_log "VMIM $1/$2 ended $p: $(vmim_reason "$1" "$2")"; return 2; }
    return 1
}

vmim_reason() { kctl get vmim "$2" -n "$1" -o 'jsonpath={.status.migrationState.failureReason}' 2>/dev/null; }
vmi_node() { kctl get vmi "$2" -n "$1" -o 'jsonpath={.status.nodeName}' 2>/dev/null; }
