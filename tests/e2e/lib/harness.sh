# shellcheck shell=bash
# harness.sh - source this from an end-to-end test: the whole harness, plus
# e2e_begin, which checks root (exit 77 otherwise), cleans up stale runs and installs the
# trap that stops every process and removes every namespace of this run, also on failure
# or Ctrl-C. See docs/e2e.md.
#
#   . "$(dirname "$0")/lib/harness.sh"
#   e2e_begin
#   fabric_up node-a node-b
#   pod_create node-a ns1 vm1 ...

_e2e_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_e2e_lib/common.sh"
. "$_e2e_lib/fabric.sh"
. "$_e2e_lib/pod.sh"
. "$_e2e_lib/vm.sh"
. "$_e2e_lib/apiserver.sh"
. "$_e2e_lib/proxy-socat.sh"
. "$_e2e_lib/vmigrated.sh"

# e2e_diagnose: what a failed run leaves in the test log.
e2e_diagnose() {
    local f
    e2e_log "---- diagnostics (run $E2E_RUN, state in $E2E_ROOT) ----"
    for f in "$E2E_ROOT"/logs/vmigrated-*.log "$E2E_ROOT"/logs/apiserver.log; do
        [[ -s $f ]] || continue
        echo "== ${f#"$E2E_ROOT"/} (last 40 lines without request traces)" >&2
        grep -v 'debug vmig-kube: \(GET\|PUT\|POST\|PATCH\|DELETE\) ' "$f" | tail -n 40 >&2
    done
    for f in "$E2E_ROOT"/logs/migrate-*.log "$E2E_ROOT"/node-*/pods/*/log/libvirtd.log \
        "$E2E_ROOT"/node-*/pods/*/log/qemu/*[^l].log "$E2E_ROOT"/node-*/pods/*/log/qemu/*-serial.log; do
        [[ -s $f ]] || continue
        echo "== ${f#"$E2E_ROOT"/} (last 15 lines)" >&2
        tail -n 15 "$f" | tr -d '\r' >&2
    done
}

_e2e_on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    # E2E_VALGRIND: the agents stop gracefully first, so valgrind can write its leak check
    if ((rc == 0)) && declare -F vmigrated_valgrind_finish >/dev/null; then
        vmigrated_valgrind_finish || rc=1
    fi
    if ((rc == 130 || rc == 143)); then
        echo >&2
        e2e_log "interrupted; cleaning up"
    elif ((rc != 0 && rc != 77)); then
        e2e_diagnose
    fi
    e2e_cleanup
    exit "$rc"
}

e2e_begin() {
    e2e_require_root
    [[ ${E2E_CLEAN_STALE:-1} == 1 ]] && e2e_cleanup_stale
    e2e_init
    trap _e2e_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    e2e_log "run $E2E_RUN: state in $E2E_ROOT, namespaces $E2E_PREFIX-*"
}
