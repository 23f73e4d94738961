# lib-apiserver.sh - start the in-memory test API server (tests/apiserver) for a script test.
#
# Source this file, then:
#   vmig_apiserver_start BIN DIR [ARGS...]  -> the server runs with --write-kubeconfig
#       DIR/kubeconfig --ready-file DIR/ready and ARGS, its log in DIR/server.log; sets
#       VMIG_APISERVER_PID and VMIG_APISERVER_KUBECONFIG; exits the script (status 1, log
#       shown) when it is not ready within 10 s
#   vmig_apiserver_stop                      (idempotent; call it from an EXIT trap)
# Traffic stays on loopback (the server binds 127.0.0.1).

VMIG_APISERVER_PID=
VMIG_APISERVER_KUBECONFIG=

vmig_apiserver_start() {
    local bin=$1 dir=$2
    shift 2
    "$bin" --write-kubeconfig "$dir/kubeconfig" --ready-file "$dir/ready" "$@" \
        2>"$dir/server.log" &
    VMIG_APISERVER_PID=$!
    VMIG_APISERVER_KUBECONFIG=$dir/kubeconfig
    for _ in $(seq 100); do [[ -s $dir/ready ]] && return 0; sleep 0.1; done
    cat "$dir/server.log" >&2
    echo "FAIL: the test API server did not become ready" >&2
    exit 1
}

vmig_apiserver_stop() {
    [[ -n $VMIG_APISERVER_PID ]] || return 0
    kill "$VMIG_APISERVER_PID" 2>/dev/null || true
    wait "$VMIG_APISERVER_PID" 2>/dev/null || true
    VMIG_APISERVER_PID=
}
