# shellcheck shell=bash
# scenario.sh - shared steps of the vmigrated scenario tests (test-scenario-*.sh): a
# two-node cluster with the guest ns1/vm1 on node-a, cluster-wide migration settings, and
# the assertions every scenario makes on the guest. Source after harness.sh.

# scen_cluster [vm_start options...]: fabric, API server, Nodes, certificates, the source
# pod with the guest on node-a and the (empty) target pod on node-b. The VMI object and the
# daemons are left to the scenario (its spec and options differ).
scen_cluster() {
    fabric_up node-a node-b
    apiserver_start
    cluster_nodes_apply node-a node-b
    vmigrated_certs node-a node-b
    pod_create node-a ns1 vm1 node-b ns1 vm1 # node-b's: the target pod KubeVirt would create
    vm_start node-a ns1 vm1 "$@"
}

# scen_kubevirt_migrations YAML-FLOW-MAP: the KubeVirt CR with spec.configuration.migrations
# set to the given map, e.g. '{bandwidthPerMigration: 5Mi}'.
scen_kubevirt_migrations() {
    kctl get namespace kubevirt >/dev/null 2>&1 || kctl create namespace kubevirt >/dev/null
    kctl apply -f - >/dev/null <<Y || e2e_die "cannot apply the KubeVirt CR"
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata: {name: kubevirt, namespace: kubevirt}
spec:
  configuration:
    migrations: $1
Y
}

# scen_only_on NODE: the domain runs on NODE and on no other node of the fabric.
scen_only_on() {
    local n=$1 o s
    s=$(vm_state "$n" ns1 vm1)
    [[ $s == running ]] || e2e_die "domain ns1_vm1 is '$s' on $n, want running"
    for o in $(fabric_nodes); do
        [[ $o == "$n" ]] && continue
        [[ -e $(pod_dir "$o" ns1 vm1)/pod.env ]] || continue
        s=$(vm_state "$o" ns1 vm1)
        case $s in "shut off" | absent) ;; *) e2e_die "domain ns1_vm1 is '$s' on $o as well as on $n" ;; esac
    done
}

# scen_guest_continues NODE LAST-LINE: the guest on NODE went on from LAST-LINE (a
# guest_last line taken before) without a reboot and with clean memory checks (E=0).
scen_guest_continues() {
    local t b
    t=$(awk '{print $1}' <<<"$2")
    b=$(awk '{print $5}' <<<"$2")
    guest_check "$1" ns1 vm1 --after "$t" --boot "$b" >/dev/null ||
        e2e_die "guest did not continue on $1 after '$2': $(guest_last "$1" ns1 vm1)"
}

# scen_phases VMIM: the phases the VMIM went through, space-separated.
scen_phases() {
    kctl get vmim "$1" -n ns1 -o 'jsonpath={range .status.phaseTransitionTimestamps[*]}{.phase} {end}'
}

# scen_vmi_state FIELD: a field of the VMI's status.migrationState.
scen_vmi_state() { kctl get vmi vm1 -n ns1 -o "jsonpath={.status.migrationState.$1}"; }

# scen_no_sockets NODE: no socket left in the pod's migrationproxy/ directory.
scen_no_sockets() {
    local d left
    d=$(pod_dir "$1" ns1 vm1)/share/migrationproxy
    left=$(ls -A "$d" 2>/dev/null || true)
    [[ -z $left ]] || e2e_die "sockets left in $1's migrationproxy/: $left"
}

# scen_listeners NODE: TCP listeners of the node's host side (one "addr:port" a line). The
# proxy's ports are kernel-chosen, so a test compares this with a snapshot from before.
scen_listeners() { node_exec "$1" ss -Hltn | awk '{print $4}' | sort; }

# scen_count_log NODE STRING: how many lines of NODE's vmigrated log contain STRING.
scen_count_log() { grep -c -- "$2" "$E2E_ROOT/logs/vmigrated-$1.log" 2>/dev/null || true; }

# Conditions for e2e_wait_for.
scen_vmim_gone() { ! kctl get vmim "$1" -n ns1 >/dev/null 2>&1; }
scen_vmi_node_is() { [[ $(vmi_node ns1 vm1) == "$1" ]]; }
scen_vmi_state_is() { [[ $(scen_vmi_state "$1") == "$2" ]]; }
# scen_clean NODE LISTENERS-BEFORE [target]: the same TCP listeners as before the migration, and
# nothing in the pod's migrationproxy/ that still accepts connections. On the target the
# destination QEMU leaves the unix socket file of its incoming migration behind when it
# is killed (KubeVirt deletes that pod; QEMU unlinks the path before its next bind), so
# with "target" a dead socket file is allowed; vmigrated's own (the source's) it unlinks.
scen_clean() {
    local f
    [[ $(scen_listeners "$1") == "$2" ]] || return 1
    for f in "$(pod_dir "$1" ns1 vm1)"/share/migrationproxy/*; do
        [[ -e $f ]] || continue
        [[ ${3:-} == target ]] || return 1
        socat -u OPEN:/dev/null "UNIX-CONNECT:$f" 2>/dev/null && return 1
    done
    return 0
}
scen_clean_why() {
    echo "$1: sockets [$(ls -A "$(pod_dir "$1" ns1 vm1)/share/migrationproxy" 2>/dev/null | tr '\n' ' ')]," \
        "listeners [$(scen_listeners "$1" | tr '\n' ' ')], before [$(tr '\n' ' ' <<<"$2")]"
}
scen_vmi_condition_is() {
    [[ $(kctl get vmi vm1 -n ns1 -o "jsonpath={.status.conditions[?(@.type==\"$1\")].status}") == "$2" ]]
}
scen_no_finalizer() { [[ -z $(kctl get vmim "$1" -n ns1 -o 'jsonpath={.metadata.finalizers}') ]]; }
