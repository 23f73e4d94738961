#!/usr/bin/env bash
# kubectl-roundtrip.sh VMIG_TEST_APISERVER - the real kubectl against the test API server:
# create/apply a VMI and a VMIM, get (table, -o json, jsonpath), get -w in the background,
# merge and JSON patch (incl. /status), a failing JSON-patch test, delete with --wait.
# Exit 77 (skip) when kubectl is not installed. Every process started here is stopped by the
# EXIT trap.
set -euo pipefail
server_bin=${1:?usage: $0 path/to/vmig-test-apiserver}
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }

. "$(dirname "$0")/lib-apiserver.sh"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    vmig_apiserver_stop
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

vmig_apiserver_start "$server_bin" "$work" --port 0 --tls-dir "$work/tls" --token "rt-$$"
export KUBECONFIG=$work/kubeconfig
k() { kubectl --request-timeout=20s "$@"; }

cat >"$work/vmi.yaml" <<'Y'
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: vm1
  labels: {app: roundtrip}
spec:
  domain:
    devices: {}
    resources: {requests: {memory: 64Mi}}
Y
cat >"$work/vmim.yaml" <<'Y'
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata:
  name: mig1
spec:
  vmiName: vm1
Y

# Watch first, so the events of everything below are seen.
k get vmim -w -o json >"$work/watch.json" 2>"$work/watch.err" &
pids+=($!)
k get vmi -w >"$work/watch.txt" 2>&1 &
pids+=($!)
sleep 1

k create -f "$work/vmi.yaml" | grep -qx 'virtualmachineinstance.kubevirt.io/vm1 created' ||
    fail "create vmi"
k apply -f "$work/vmim.yaml" | grep -qx 'virtualmachineinstancemigration.kubevirt.io/mig1 created' ||
    fail "apply vmim"
sed 's/64Mi/128Mi/' "$work/vmi.yaml" | k apply -f - 2>/dev/null |
    grep -qx 'virtualmachineinstance.kubevirt.io/vm1 configured' || fail "apply vmi change"
[[ $(k get vmi vm1 -o jsonpath='{.spec.domain.resources.requests.memory} {.metadata.generation}') == "128Mi 2" ]] ||
    fail "apply did not update spec/generation"
k apply -f "$work/vmim.yaml" | grep -qx 'virtualmachineinstancemigration.kubevirt.io/mig1 unchanged' ||
    fail "re-apply not unchanged"

k get vmi | grep -Eq '^vm1 ' || fail "get vmi table"
k get vmis -A | grep -Eq '^default +vm1 ' || fail "get -A"
k get vmi -l app=roundtrip -o name | grep -qx 'virtualmachineinstance.kubevirt.io/vm1' ||
    fail "label selector"
[[ -z $(k get vmi -l app=other -o name 2>/dev/null) ]] || fail "label selector matched"
k get vmim mig1 -o json >"$work/mig.json"
python3 - "$work/mig.json" <<'P' || fail "get -o json content"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["kind"] == "VirtualMachineInstanceMigration", o
assert o["spec"]["vmiName"] == "vm1"
assert o["metadata"]["uid"] and int(o["metadata"]["resourceVersion"]) > 0
P
if k get vmi --field-selector status.phase=Running 2>"$work/fs.err"; then fail "CR field selector accepted"; fi
grep -q 'field label not supported: status.phase' "$work/fs.err" || fail "field selector error text"

k patch vmim mig1 --type merge -p '{"metadata":{"labels":{"step":"merge"}}}' >/dev/null
k patch vmim mig1 --type json -p '[{"op":"add","path":"/metadata/annotations","value":{"step":"json"}}]' >/dev/null
k patch vmim mig1 --subresource status --type merge -p '{"status":{"phase":"Running"}}' >/dev/null
[[ $(k get vmim mig1 -o jsonpath='{.metadata.labels.step} {.metadata.annotations.step} {.status.phase}') == "merge json Running" ]] ||
    fail "patches not applied"
if k patch vmim mig1 --type json -p '[{"op":"test","path":"/status/phase","value":"Pending"}]' 2>"$work/p.err"; then
    fail "failing JSON-patch test accepted"
fi
grep -q 'test failed' "$work/p.err" || fail "JSON-patch test failure text"
k get vmim | grep -Eq '^mig1 +Running ' || fail "PHASE column"

k delete vmim mig1 | grep -qx 'virtualmachineinstancemigration.kubevirt.io "mig1" deleted' ||
    fail "delete vmim"
k delete -f "$work/vmi.yaml" >/dev/null
if k get vmim mig1 2>"$work/nf.err"; then fail "deleted vmim still there"; fi
grep -q 'NotFound' "$work/nf.err" || fail "NotFound text"

sleep 1.5
# The JSON watch saw mig1 created, labelled, annotated, its phase set and its deletion.
python3 - "$work/watch.json" <<'P' || { cat "$work/watch.err" >&2; fail "watch -o json events"; }
import json, sys
text = open(sys.argv[1]).read()
dec, objs, i = json.JSONDecoder(), [], 0
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    o, i = dec.raw_decode(text, i)
    objs.append(o)
names = {o["metadata"]["name"] for o in objs}
assert names == {"mig1"}, names
assert len(objs) >= 5, len(objs)
assert any(o.get("status", {}).get("phase") == "Running" for o in objs)
rvs = [int(o["metadata"]["resourceVersion"]) for o in objs]
assert rvs == sorted(rvs), rvs
P
grep -Eq '^vm1 ' "$work/watch.txt" || fail "get -w table rows"
[[ $(grep -c '^NAME' "$work/watch.txt") == 1 ]] || fail "get -w header once"
echo "kubectl round trip OK"
