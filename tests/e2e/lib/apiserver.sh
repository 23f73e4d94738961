# shellcheck shell=bash
# apiserver.sh - the project's test API server (tests/apiserver, vmig-test-apiserver)
# inside the control-plane namespace, and kubectl against it.
#
# The server listens on the bridge address $E2E_CP_ADDR4 (10.77.0.254), so vmigrated in
# every node namespace reaches it over the fabric, and writes a kubeconfig for it:
# $E2E_KUBECONFIG. kctl runs kubectl inside the control-plane namespace with it.

E2E_KUBECONFIG=$E2E_ROOT/cp/kubeconfig
E2E_API_PORT=${E2E_API_PORT:-6443}

apiserver_bin() {
    local b
    for b in "${E2E_APISERVER:-}" "$E2E_BUILD_ROOT/tests/apiserver/vmig-test-apiserver"; do
        [[ -n $b && -x $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

# apiserver_start [--token T]: certificates (scripts/gen-certs: a test CA and a server
# certificate for 10.77.0.254, fd00:77::fe, localhost), then the server in the control
# plane; returns when it wrote its ready file. The port is fixed (the namespace is ours).
apiserver_start() {
    local token=${E2E_API_TOKEN:-e2e-$E2E_RUN-token} bin d=$E2E_ROOT/cp
    [[ ${1:-} == --token ]] && token=$2
    bin=$(apiserver_bin) || e2e_die "vmig-test-apiserver not built (set E2E_APISERVER or VMIG_BUILD_ROOT)"
    mkdir -p "$d/tls"
    "$E2E_SOURCE_ROOT/scripts/gen-certs" "$d/tls" apiserver "$E2E_CP_ADDR4" "$E2E_CP_ADDR6" localhost 127.0.0.1 >/dev/null
    rm -f "$d/ready"
    echo "$token" >"$d/token"
    e2e_spawn apiserver '^vmig-test-apise' ip netns exec "$(cp_netns)" "$bin" \
        --listen "$E2E_CP_ADDR4" --port "$E2E_API_PORT" --tls-dir "$d/tls" --token "$token" \
        --write-kubeconfig "$E2E_KUBECONFIG" --ready-file "$d/ready"
    e2e_wait_for 30 "the API server's ready file" apiserver_ready || {
        tail -n 20 "$E2E_ROOT/logs/apiserver.log" >&2 || true
        e2e_die "the API server did not come up"
    }
}

apiserver_ready() {
    local pid
    pid=$(e2e_pid apiserver)
    kill -0 "$pid" 2>/dev/null || { e2e_log "the API server exited"; return 2; }
    [[ -e $E2E_ROOT/cp/ready && -s $E2E_KUBECONFIG ]]
}

apiserver_stop() { e2e_stop apiserver; }

# kctl KUBECTL-ARGS...: kubectl in the control-plane namespace against the test server.
kctl() { ip netns exec "$(cp_netns)" kubectl --kubeconfig "$E2E_KUBECONFIG" "$@"; }
