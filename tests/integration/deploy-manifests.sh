#!/usr/bin/env bash
# deploy-manifests.sh APISERVER VMIGRATED - data/crds and data/deploy apply with kubectl
# (client-side validation against the test API server's discovery and OpenAPI), so a
# mistyped kind, apiVersion or YAML fails the build; the fields that matter are read back;
# the ConfigMap equals what scripts/gen-configmap makes from this vmigrated; the Secret made
# by scripts/gen-node-certs applies and has the layout the DaemonSet mounts.
set -euo pipefail
apiserver=$1 vmigrated=$2
src=${VMIG_SOURCE_ROOT:?}
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }
tmp=$(mktemp -d)
pid=
cleanup() {
    local rc=$?
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
ASAN_OPTIONS=detect_leaks=0 "$apiserver" --write-kubeconfig "$tmp/kc" --ready-file "$tmp/ready" \
    2>"$tmp/apiserver.log" &
pid=$!
for _ in $(seq 100); do [[ -s $tmp/ready ]] && break; sleep 0.05; done
[[ -s $tmp/ready ]] || { echo "FAIL: test API server did not start"; cat "$tmp/apiserver.log"; exit 1; }
k() { kubectl --kubeconfig "$tmp/kc" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
expect() { # expect WHAT GOT WANT
    [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
    echo "ok: $1 = $3"
}

k apply -f "$src/data/crds/"
k apply -f "$src/data/deploy/"
"$src/scripts/gen-node-certs" "$tmp/pki" node-a node-b >"$tmp/secret.yaml"
k apply -f "$tmp/secret.yaml"
k apply --dry-run=client -f "$src/data/deploy/tls-secret.yaml.example" >/dev/null

# CRDs: names, scope, status subresource, printer columns
expect "VMIM CRD columns" "$(k get crd virtualmachineinstancemigrations.kubevirt.io \
    -o jsonpath='{.spec.versions[0].additionalPrinterColumns[*].name}')" "Phase VMI Age"
expect "VMIM CRD status subresource" "$(k get crd virtualmachineinstancemigrations.kubevirt.io \
    -o jsonpath='{.spec.versions[0].subresources.status}')" "{}"
expect "VMI short names" "$(k get crd virtualmachineinstances.kubevirt.io \
    -o jsonpath='{.spec.names.shortNames[*]}')" "vmi vmis"
expect "MigrationPolicy scope" "$(k get crd migrationpolicies.migrations.kubevirt.io \
    -o jsonpath='{.spec.scope}')" "Cluster"

# DaemonSet: host network, Downward API, probes on the HTTP address, mounts
ds() { k -n vmigrated get daemonset vmigrated -o jsonpath="$1"; }
expect "hostNetwork" "$(ds '{.spec.template.spec.hostNetwork}')" "true"
expect "serviceAccount" "$(ds '{.spec.template.spec.serviceAccountName}')" "vmigrated"
expect "NODE_NAME source" "$(ds '{.spec.template.spec.containers[0].env[?(@.name=="NODE_NAME")].valueFrom.fieldRef.fieldPath}')" "spec.nodeName"
expect "POD_NAMESPACE source" "$(ds '{.spec.template.spec.containers[0].env[?(@.name=="POD_NAMESPACE")].valueFrom.fieldRef.fieldPath}')" "metadata.namespace"
expect "liveness" "$(ds '{.spec.template.spec.containers[0].livenessProbe.httpGet.path}:{.spec.template.spec.containers[0].livenessProbe.httpGet.port}')" "/healthz:8186"
expect "readiness" "$(ds '{.spec.template.spec.containers[0].readinessProbe.httpGet.path}:{.spec.template.spec.containers[0].readinessProbe.httpGet.port}')" "/readyz:8186"
expect "http address" "$(ds '{.spec.template.spec.containers[0].env[?(@.name=="VMIGRATED_HTTP_ADDRESS")].value}')" ":8186"
expect "mounts" "$(ds '{.spec.template.spec.containers[0].volumeMounts[*].mountPath}')" \
    "/etc/vmigrated/config /etc/vmigrated/tls /var/run/kubevirt-pods"
expect "TLS secret" "$(ds '{.spec.template.spec.volumes[?(@.name=="tls")].secret.secretName}')" "vmigrated-tls"
expect "config map" "$(ds '{.spec.template.spec.volumes[?(@.name=="config")].configMap.name}')" "vmigrated-config"
expect "memory request" "$(ds '{.spec.template.spec.containers[0].resources.requests.memory}')" "96Mi"

# every option the daemon reads from the environment exists (a typo would be ignored there)
opts=$(env -i PATH="$PATH" "$vmigrated" --print-config --node-name n | sed -n 's/^#\{0,1\}\([a-z-]*\)=.*/\1/p')
for e in $(ds '{.spec.template.spec.containers[0].env[*].name}'); do
    case $e in NODE_NAME | POD_NAMESPACE) continue ;; esac
    o=$(tr 'A-Z_' 'a-z-' <<<"${e#VMIGRATED_}")
    grep -qx -- "$o" <<<"$opts" || fail "DaemonSet env $e names no option of vmigrated"
done
echo "ok: DaemonSet environment names real options"

# the certificate paths the DaemonSet gives exist in the generated Secret
keys=$(k -n vmigrated get secret vmigrated-tls -o jsonpath='{.data}')
for f in ca.crt node-a.crt node-a.key node-b.crt node-b.key; do
    grep -q "\"$f\"" <<<"$keys" || fail "Secret vmigrated-tls lacks $f"
done
echo "ok: Secret layout ca.crt, <node>.crt, <node>.key"

# RBAC: exactly the verbs the daemon uses
rules=$(k get clusterrole vmigrated -o jsonpath='{range .rules[*]}{.resources}={.verbs};{end}')
for want in '["virtualmachineinstances"]=["get","list","watch","update"]' \
    '["virtualmachineinstancemigrations"]=["get","list","watch","update","create","delete"]' \
    '["virtualmachineinstances/status","virtualmachineinstancemigrations/status"]=["get","update"]' \
    '["events"]=["create","patch"]'; do
    grep -qF -- "$want" <<<"$rules" || fail "ClusterRole lacks $want (has $rules)"
done
expect "Lease role" "$(k -n vmigrated get role vmigrated -o jsonpath='{.rules[0].resources}={.rules[0].verbs}')" \
    '["leases"]=["get","list","watch","create","update"]'

# the ConfigMap cannot drift from the code
"$src/scripts/gen-configmap" "$vmigrated" | diff -u "$src/data/deploy/20-configmap.yaml" - \
    || fail "data/deploy/20-configmap.yaml is stale: run scripts/gen-configmap"
echo "ok: ConfigMap = scripts/gen-configmap output"

# and a typo does fail
sed 's/^kind: DaemonSet$/kind: DaemonSett/' "$src/data/deploy/40-daemonset.yaml" >"$tmp/typo.yaml"
if k apply -f "$tmp/typo.yaml" >/dev/null 2>&1; then fail "a mistyped kind was accepted"; fi
echo "ok: a mistyped kind is refused"
