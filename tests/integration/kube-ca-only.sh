#!/usr/bin/env bash
# kube-ca-only.sh VMIGRATECTL VMIG_TEST_APISERVER - with a kubeconfig naming a
# certificate-authority, the kube client trusts that CA and nothing else: it must not load
# the system CA directory (/etc/ssl/certs) on a connection. libcurl-gnutls loads its
# built-in CApath in addition to CURLOPT_CAINFO, parsing ~140 PEM files on the main loop
# for every new connection: with a burst of requests on a loaded machine (the e2e
# drain-limits test) that blocked a daemon for 10 s, until "SSL connection timeout"; and a
# server certificate from any public CA would have been accepted for the cluster.
# Checked with strace (exit 77 = skip when it is missing): `vmigratectl get` opens the
# kubeconfig's CA file and no file under /etc/ssl/certs. Every process started here is
# stopped by the EXIT trap.
set -euo pipefail
ctl=${1:?usage: $0 vmigratectl vmig-test-apiserver}
server_bin=${2:?usage: $0 vmigratectl vmig-test-apiserver}
command -v strace >/dev/null || { echo "SKIP: strace not installed"; exit 77; }
strace -f -qq -e trace=none true 2>/dev/null || { echo "SKIP: strace cannot trace here (ptrace refused)"; exit 77; }

. "$(dirname "$0")/lib-apiserver.sh"
work=$(mktemp -d)
cleanup() {
    vmig_apiserver_stop
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

vmig_apiserver_start "$server_bin" "$work" --port 0 --tls-dir "$work/tls" --token "ca-$$"
grep -q 'certificate-authority' "$work/kubeconfig" || fail "the kubeconfig names no CA"

# (LeakSanitizer cannot stop the world under ptrace: no leak check in this one run)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=open,openat -o "$work/trace" \
    "$ctl" get namespaces --kubeconfig "$work/kubeconfig" >"$work/out" 2>"$work/err" ||
    { cat "$work/err" >&2; fail "vmigratectl get failed"; }
opened=$(grep -o 'open[a-z]*([^"]*"[^"]*"' "$work/trace" | sed 's/.*"\(.*\)"/\1/' | sort -u)
grep -q -e '/tls/ca.pem$' -e '/ca.crt$' <<<"$opened" || fail "the kubeconfig's CA was never opened: $opened"
sys=$(grep -c '^/etc/ssl/certs/' <<<"$opened" || true)
((sys == 0)) || fail "the system CA directory was loaded ($sys files under /etc/ssl/certs, e.g. $(grep -m 1 '^/etc/ssl/certs/' <<<"$opened"))"
echo "PASS: one connection with the kubeconfig's CA only ($(grep -c . <<<"$opened") files opened, none under /etc/ssl/certs)"
