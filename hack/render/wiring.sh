#!/usr/bin/env bash
# Does the API server really call the webhooks the way the chart registers
# them? Applies the chart's Service and webhook configurations FOR REAL on a
# throw-away cluster, points the Service at a stub webhook (stub_webhook.py)
# in a network namespace (as ../shared/docs/LOCAL-CLUSTER.md describes:
# kube-apiserver --enable-aggregator-routing resolves Service -> Endpoints),
# and checks:
#   - routing: each guarded operation reaches /validate or /mutate through
#     Service port 443 -> named targetPort https, with the chart's caBundle;
#     the deny message names the chart's webhook entry; dry-run is flagged;
#   - selectors: non-Velero snapshots never reach the guard;
#   - failure policies with the webhook gone: data paths refused (Fail),
#     backup creation and CRD updates let through (Ignore), others untouched.
#
#   BG_THROWAWAY_CLUSTER=1 hack/render/wiring.sh CERT_DIR
#
# CERT_DIR holds ca.crt, tls.crt, tls.key for backup-guard.backup-guard.svc.
# Called by hack/render/validate.sh on its own local cluster. Needs root (ip
# netns). Exit 3: cannot run here (no root / no ip), nothing done.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export LOG_TAG=wiring
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
[[ $# -eq 1 ]] || die "usage: BG_THROWAWAY_CLUSTER=1 $0 CERT_DIR"
CERTS=$(cd "$1" && pwd)
[[ ${BG_THROWAWAY_CLUSTER:-0} == 1 ]] ||
  die "refusing: this applies webhooks with failurePolicy Fail for real; set BG_THROWAWAY_CLUSTER=1 only for a cluster you will throw away"
if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null; then
  log "cannot run: needs root and iproute2 (network namespace)"
  exit 3
fi

k() { "$KUBECTL" "$@"; }
# shellcheck source=hack/cluster/netns.sh
source "$RENDER_DIR/../cluster/netns.sh"
WORK=$(mktemp -d /tmp/bg-wiring.XXXXXX)
STUB_PID=""

cleanup() {
  local rc=$?
  [[ -n $STUB_PID ]] && kill "$STUB_PID" 2>/dev/null || true
  k delete validatingwebhookconfiguration,mutatingwebhookconfiguration backup-guard --ignore-not-found >/dev/null 2>&1 || true
  netns_down "$WORK"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

# ------------------------------------------------------------ stub webhook
netns_up "$WORK" bgw 10.214

start_stub() {
  : >"$WORK/stub.out"
  ip netns exec "$NETNS" "$PY" "$RENDER_DIR/stub_webhook.py" "$NETNS_GUARD_IP" 8443 \
    "$CERTS/tls.crt" "$CERTS/tls.key" "$WORK/requests.jsonl" >"$WORK/stub.out" 2>&1 &
  STUB_PID=$!
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q ready "$WORK/stub.out" && return 0
    kill -0 "$STUB_PID" 2>/dev/null || { cat "$WORK/stub.out" >&2; die "stub webhook exited"; }
    sleep 0.1
  done
  die "stub webhook did not start"
}
stop_stub() {
  kill "$STUB_PID" 2>/dev/null || true
  wait "$STUB_PID" 2>/dev/null || true
  STUB_PID=""
}
start_stub

# ------------------------------------------- the chart's wiring, for real
git_version=$(k version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)
render_chart --kube-version "$git_version" --set certs.mode=provided \
  --set certs.provided.secretName=backup-guard-tls \
  --set certs.provided.caBundle="$(base64 -w0 <"$CERTS/ca.crt")" >"$WORK/chart.yaml"
"$PY" - "$WORK/chart.yaml" >"$WORK/wiring.yaml" <<'EOF'
import sys, yaml
keep = {"Service", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
yaml.safe_dump_all([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] in keep],
                   sys.stdout, sort_keys=False)
EOF
k get namespace backup-guard >/dev/null 2>&1 || k create namespace backup-guard >/dev/null
# No endpoints controller runs on the local control plane: the Endpoints of
# the chart's Service point at the stub, port named like the Service's
# targetPort.
cat >>"$WORK/wiring.yaml" <<EOF
---
apiVersion: v1
kind: Endpoints
metadata: {name: backup-guard, namespace: backup-guard}
subsets:
  - addresses: [{ip: "$NETNS_GUARD_IP"}]
    ports: [{name: https, port: 8443, protocol: TCP}]
EOF

# Objects created while the webhooks are not there yet.
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: bg-wiring-b}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: wirings.test.backup-guard.io}
spec:
  group: test.backup-guard.io
  scope: Namespaced
  names: {kind: Wiring, plural: wirings, singular: wiring}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
k apply -f "$WORK/wiring.yaml" >/dev/null

# The API server picks up new webhook configurations asynchronously: wait
# until a dry-run Backup creation reaches both /mutate and /validate.
: >"$WORK/requests.jsonl"
deadline=$((SECONDS + 60))
until jq -e -s '([.[] | select(.name == "wiring-probe" and .path == "/mutate")] | length > 0) and
                ([.[] | select(.name == "wiring-probe" and .path == "/validate")] | length > 0)'         "$WORK/requests.jsonl" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || die "the webhooks never reached the stub within 60s: $(cat "$WORK/requests.jsonl")"
  k create --dry-run=server -f - >/dev/null 2>&1 <<'EOF' || true
apiVersion: velero.io/v1
kind: Backup
metadata: {name: wiring-probe, namespace: velero}
EOF
  sleep 0.5
done
log "webhooks active after $((SECONDS - deadline + 60))s"

PASSED=0
FAILED=0
expect_ok() { # description command...
  local what=$1; shift
  if "$@" >"$WORK/out" 2>&1; then
    PASSED=$((PASSED + 1)); log "ok   $what"
  else
    FAILED=$((FAILED + 1)); log "FAIL $what: $(tr '\n' ' ' <"$WORK/out")"
  fi
}
expect_refused() { # description pattern command...
  local what=$1 pattern=$2; shift 2
  if "$@" >"$WORK/out" 2>&1; then
    FAILED=$((FAILED + 1)); log "FAIL $what: was allowed"
  elif grep -qE "$pattern" "$WORK/out"; then
    PASSED=$((PASSED + 1)); log "ok   $what"
  else
    FAILED=$((FAILED + 1)); log "FAIL $what: refused, but not as expected ($pattern): $(tr '\n' ' ' <"$WORK/out")"
  fi
}
seen() { # description jq-filter: the stub recorded a matching request
  local what=$1 filter=$2
  if jq -e -s "[.[] | select($filter)] | length > 0" "$WORK/requests.jsonl" >/dev/null 2>&1; then
    PASSED=$((PASSED + 1)); log "ok   $what"
  else
    FAILED=$((FAILED + 1)); log "FAIL $what: no such request reached the webhook"
  fi
}
unseen() {
  local what=$1 filter=$2
  if jq -e -s "[.[] | select($filter)] | length == 0" "$WORK/requests.jsonl" >/dev/null 2>&1; then
    PASSED=$((PASSED + 1)); log "ok   $what"
  else
    FAILED=$((FAILED + 1)); log "FAIL $what: it reached the webhook"
  fi
}

backup() { # name
  k create -f - <<EOF
apiVersion: velero.io/v1
kind: Backup
metadata: {name: $1, namespace: velero}
spec: {ttl: 720h0m0s}
EOF
}
snapshot() { # name label(yes|no)
  local labels="{}"
  [[ $2 == yes ]] && labels='{velero.io/backup-name: wiring-1}'
  k create -f - <<EOF
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: $1, namespace: velero, labels: $labels}
spec: {source: {persistentVolumeClaimName: data}}
EOF
}

# ------------------------------------------------------- webhook answering
: >"$WORK/requests.jsonl"
expect_ok "CREATE backup passes both webhooks" backup wiring-1
seen "  ... reached /mutate" '.path == "/mutate" and .operation == "CREATE" and .resource == "backups"'
seen "  ... reached /validate" '.path == "/validate" and .operation == "CREATE" and .resource == "backups"'
expect_refused "DELETE backup is answered by entry backup-deletions.backup-guard.io" \
  'admission webhook "backup-deletions.backup-guard.io" denied the request: stub denies DELETE backups wiring-1' \
  k -n velero delete backup wiring-1
expect_refused "DELETE backup --dry-run=server gets the same verdict" 'stub denies DELETE backups' \
  k -n velero delete backup wiring-1 --dry-run=server
seen "  ... flagged dryRun" '.operation == "DELETE" and .resource == "backups" and .dryRun == true'
expect_ok "UPDATE backup is answered" k -n velero annotate backup wiring-1 wiring=1
seen "  ... at /mutate and /validate" '.operation == "UPDATE" and .resource == "backups" and .path == "/validate"'
expect_ok "namespace deletion is answered" k delete namespace bg-wiring-b --wait=false
seen "  ... DELETE namespaces reached /validate" '.operation == "DELETE" and .resource == "namespaces" and .name == "bg-wiring-b"'
expect_ok "Velero-labelled VolumeSnapshot creation" snapshot vs-velero yes
seen "  ... reached /mutate" '.resource == "volumesnapshots" and .name == "vs-velero" and .path == "/mutate"'
expect_ok "other VolumeSnapshot creation" snapshot vs-other no
unseen "  ... never reached the guard (objectSelector)" '.resource == "volumesnapshots" and .name == "vs-other"'
expect_ok "ConfigMap creation (not guarded)" k -n velero create configmap wiring-cm
unseen "  ... never reached the guard" '.resource == "configmaps"'

# A namespace cascade: the namespace controller deletes the Backups inside
# (DELETE without a name); refused, the namespace stays Terminating with the
# webhook's message.
k create namespace bg-wiring-d >/dev/null
k create -f - >/dev/null <<'EOF'
apiVersion: velero.io/v1
kind: Backup
metadata: {name: cascade-1, namespace: bg-wiring-d}
spec: {ttl: 720h0m0s}
EOF
expect_ok "deleting a namespace that holds a Backup starts the cascade" k delete namespace bg-wiring-d --wait=false
cascade_blocked() {
  local i
  for ((i = 0; i < 60; i++)); do
    k get namespace bg-wiring-d -o json |
      jq -e '.status.conditions[]? | select(.type == "NamespaceDeletionContentFailure" and (.message | contains("stub denies DELETE backups")))'       >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
expect_ok "  ... the cascade's Backup DELETE is refused: namespace Terminating, NamespaceDeletionContentFailure" cascade_blocked
seen "  ... sent by the namespace controller" \
  '.operation == "DELETE" and .resource == "backups" and .namespace == "bg-wiring-d" and (.user | endswith(":namespace-controller"))'

# ----------------------------------------------------------- webhook gone
k create namespace bg-wiring-c >/dev/null
stop_stub
log "stub stopped: failure policies"
expect_refused "UPDATE backup refused (Fail)" 'failed calling webhook "backup-updates' \
  k -n velero annotate backup wiring-1 wiring=2 --overwrite
expect_refused "DELETE backup refused (Fail)" 'failed calling webhook "backup-deletions.backup-guard.io"' \
  k -n velero delete backup wiring-1
expect_ok "CREATE backup still allowed (Ignore)" backup wiring-2
expect_refused "CREATE DeleteBackupRequest refused (Fail)" 'failed calling webhook "deletebackuprequests.backup-guard.io"' \
  k create -f - <<'EOF'
apiVersion: velero.io/v1
kind: DeleteBackupRequest
metadata: {name: wiring-dbr, namespace: velero}
spec: {backupName: wiring-1}
EOF
expect_refused "namespace deletion refused (Fail)" 'failed calling webhook "namespace-deletions.backup-guard.io"' \
  k delete namespace bg-wiring-c --wait=false
expect_refused "Velero-labelled VolumeSnapshot deletion refused (Fail)" 'failed calling webhook "snapshots' \
  k -n velero delete volumesnapshot vs-velero
expect_ok "other VolumeSnapshot deletion unaffected" k -n velero delete volumesnapshot vs-other
expect_refused "CRD deletion refused (Fail)" 'failed calling webhook "crd-deletions.backup-guard.io"' \
  k delete crd wirings.test.backup-guard.io
expect_ok "CRD update allowed (Ignore)" k label crd wirings.test.backup-guard.io wiring=1 --overwrite
expect_ok "ConfigMap deletion unaffected" k -n velero delete configmap wiring-cm
# The namespace exclusions match kubernetes.io/metadata.name, which the API
# server sets by itself from 1.21; on this 1.20 server it is set by hand.
k label namespace kube-node-lease kubernetes.io/metadata.name=kube-node-lease --overwrite >/dev/null
expect_ok "deleting an excluded namespace (kube-node-lease) does not depend on the guard" \
  k delete namespace kube-node-lease --wait=false

log "webhook wiring: $PASSED passed, $FAILED failed"
((FAILED == 0)) || die "the chart's webhook wiring does not behave as documented"
