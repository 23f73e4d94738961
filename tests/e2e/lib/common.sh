# shellcheck shell=bash
# common.sh - run identity, paths, logging and process bookkeeping for the e2e harness.
#
# Every name this harness creates carries the run id, so two runs (or a stale one) never
# collide:
#   E2E_RUN     run id, default the test shell's PID ($$) in base 36
#   E2E_BASE    parent of all run directories, default /tmp/ve (kept short: unix socket
#               paths must fit in 108 bytes, see docs/e2e.md)
#   E2E_ROOT    this run's directory, $E2E_BASE/$E2E_RUN
#   E2E_PREFIX  prefix of network namespace names, ve2e-$E2E_RUN
# Every background process is started through e2e_spawn, which records its PID and the
# expected command name in $E2E_ROOT/pids/; e2e_cleanup stops exactly those (and anything
# left inside this run's network namespaces).

# e2e_base36 N: N in base 36 (lower case); keeps the default run id at 3 characters for
# PIDs up to 46655, so the longest node-side socket path fits sun_path (see docs/e2e.md).
e2e_base36() {
    local n=$1 digits=0123456789abcdefghijklmnopqrstuvwxyz out=""
    while :; do
        out=${digits:n % 36:1}$out
        n=$((n / 36))
        ((n > 0)) || break
    done
    echo "$out"
}

E2E_RUN=${E2E_RUN:-$(e2e_base36 $$)}
[[ $E2E_RUN =~ ^[A-Za-z0-9]{1,8}$ ]] || { echo "e2e: E2E_RUN must be 1-8 letters/digits" >&2; exit 2; }
E2E_BASE=${E2E_BASE:-/tmp/ve}
E2E_ROOT=$E2E_BASE/$E2E_RUN
E2E_PREFIX=ve2e-$E2E_RUN
E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(dirname "$E2E_LIB_DIR")
E2E_SOURCE_ROOT=${VMIG_SOURCE_ROOT:-$(cd "$E2E_DIR/../.." && pwd)}
E2E_BUILD_ROOT=${VMIG_BUILD_ROOT:-}

e2e_log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
e2e_die() {
    e2e_log "FAIL: $*"
    exit 1
}

# e2e_require_root: end the test with status 77 (meson's "skipped") unless we are root
# and the tools are present.
e2e_require_root() {
    if [[ $(id -u) != 0 ]]; then
        echo "SKIP: end-to-end tests need root (network and mount namespaces, libvirtd); run scripts/test as root" >&2
        exit 77
    fi
    local t missing=()
    for t in ip unshare nsenter libvirtd virsh qemu-system-x86_64 socat as ld; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    if ((${#missing[@]})); then
        echo "SKIP: missing tools: ${missing[*]} (run scripts/deps test)" >&2
        exit 77
    fi
}

e2e_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# e2e_init: create this run's directory and mark it as owned by this shell (PID and
# start time, so a reused PID is not mistaken for a live owner).
e2e_init() {
    # state an earlier run of the same id kept (KEEP_STATE=1) would mix with ours
    if [[ -e $E2E_ROOT/kept && ! -e $E2E_ROOT/owner ]]; then rm -rf "$E2E_ROOT"; fi
    mkdir -p "$E2E_ROOT"/{pids,logs,vms}
    if [[ ! -e $E2E_ROOT/owner ]]; then
        echo "$$ $(e2e_proc_start $$)" >"$E2E_ROOT/owner"
    fi
}

e2e_proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# e2e_run_alive RUN: true while the shell that created run RUN still exists.
e2e_run_alive() {
    local pid start
    read -r pid start 2>/dev/null <"$E2E_BASE/$1/owner" || return 1
    [[ -n $pid && $(e2e_proc_start "$pid") == "$start" ]]
}

# e2e_spawn NAME COMM_REGEX CMD...: run CMD in the background, output in
# $E2E_ROOT/logs/NAME.log, PID in $E2E_ROOT/pids/NAME.pid (with COMM_REGEX, the name the
# process has once it has exec'd, checked before it is ever signalled). CMD runs in
# $E2E_SPAWN_CWD when set. Call it from the test's own shell, not from a subshell, so the
# process stays a child the test shell reaps.
e2e_spawn() {
    local name=$1 comm=$2
    shift 2
    (
        if [[ -n ${E2E_SPAWN_CWD:-} ]]; then cd "$E2E_SPAWN_CWD" || exit 1; fi
        exec "$@"
    ) >>"$E2E_ROOT/logs/$name.log" 2>&1 </dev/null &
    echo "$! $comm" >"$E2E_ROOT/pids/$name.pid"
}

e2e_pid() { # NAME -> PID (empty if unknown)
    local pid comm
    read -r pid comm 2>/dev/null <"$E2E_ROOT/pids/$1.pid" || return 0
    echo "$pid"
}

# e2e_pid_is PID COMM_REGEX: PID is alive (not a zombie waiting for a reaper) and
# named as expected.
e2e_pid_is() {
    local stat
    [[ -n $1 ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]] && [[ $(cat "/proc/$1/comm" 2>/dev/null) =~ $2 ]]
}

# e2e_kill_pid PID COMM_REGEX [GRACE_TENTHS]: SIGTERM, wait, SIGKILL; only if the PID
# still is the process we started.
e2e_kill_pid() {
    local pid=$1 comm=$2 grace=${3:-50} i
    e2e_pid_is "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace; i++)); do
        e2e_pid_is "$pid" "$comm" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# e2e_stop NAME: stop the process recorded under NAME and forget it.
e2e_stop() {
    local f=$E2E_ROOT/pids/$1.pid pid comm
    read -r pid comm 2>/dev/null <"$f" || return 0
    e2e_kill_pid "$pid" "$comm"
    rm -f "$f"
}

# e2e_wait_for TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.1 s until it succeeds;
# give up at once when CMD returns 2 (it knows waiting is pointless).
e2e_wait_for() {
    local t=$1 what=$2 i rc
    shift 2
    for ((i = 0; i < t * 10; i++)); do
        rc=0
        "$@" || rc=$?
        ((rc == 0)) && return 0
        ((rc == 2)) && return 1
        sleep 0.1
    done
    e2e_log "timed out after ${t}s waiting for $what"
    return 1
}

# e2e_uuid: a random RFC 4122 UUID.
e2e_uuid() { cat /proc/sys/kernel/random/uuid; }
