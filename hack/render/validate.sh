#!/usr/bin/env bash
# Validate what we ship against a REAL API server with `kubectl apply
# --dry-run=server`: the chart rendered with several value sets (with the
# server's own .Capabilities, as `helm install` would discover them), and
# manifests/, manifests/self-signed/ (with freshly generated certificates)
# and manifests/monitoring/.
#
#   hack/render/validate.sh
#
# Cluster: $KUBECONFIG when set; otherwise a throw-away Kubernetes 1.20.2
# control plane from hack/cluster/up.sh in a temporary directory, stopped at
# the end. On a $KUBECONFIG cluster the script only creates the namespaces it
# needs that are missing (backup-guard, velero, ops; deleted again at the
# end); it installs hack/render/crds/ there only with
# BG_VALIDATE_INSTALL_CRDS=1, else objects of kinds the server does not serve
# are skipped (and listed); RBAC is applied for real only with
# BG_VALIDATE_APPLY=1.
#
# Environment:
#   VELERO_CRDS_DIR        Velero CRDs for the local cluster (read in place;
#                          default: the project's minimal CRDs in tests/crds)
#   SNAPSHOT_CRDS_DIR      CSI snapshot CRDs (default tests/crds)
#   BG_VALIDATE_INSTALL_CRDS  =1: install hack/render/crds/ on a $KUBECONFIG
#                          cluster too (always done on the local one)
#   BG_KEEP_CLUSTER        =1: leave the local cluster running (prints its dir)
#   KUBECTL                default /usr/bin/kubectl
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export LOG_TAG=validate
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
[[ -x $KUBECTL ]] || die "kubectl not found at $KUBECTL"
render_deps
command -v openssl >/dev/null || ensure_apt openssl

WORK=$(mktemp -d /tmp/bg-validate.XXXXXX)
CLUSTER_DIR=""
CREATED_NS=()
CREATED_CRDS=()
EXTERNAL=0

cleanup() {
  local rc=$?
  if ((EXTERNAL)); then
    local ns crd
    for ns in "${CREATED_NS[@]}"; do
      k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    done
    for crd in "${CREATED_CRDS[@]}"; do
      k delete crd "$crd" --wait=false >/dev/null 2>&1 || true
    done
  fi
  if [[ -n $CLUSTER_DIR ]]; then
    if [[ ${BG_KEEP_CLUSTER:-0} == 1 ]]; then
      log "cluster left running: source $CLUSTER_DIR/env; stop: hack/cluster/down.sh $CLUSTER_DIR"
    else
      "$REPO/hack/cluster/down.sh" "$CLUSTER_DIR" --purge >/dev/null 2>&1 || log "WARNING: down.sh $CLUSTER_DIR failed"
    fi
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

k() { "$KUBECTL" "$@"; }

# ------------------------------------------------------------------ cluster
if [[ -n ${KUBECONFIG:-} ]]; then
  EXTERNAL=1
  log "using the cluster of KUBECONFIG=$KUBECONFIG"
  k version >/dev/null 2>&1 || die "cannot reach the cluster of KUBECONFIG=$KUBECONFIG"
else
  [[ -x $REPO/hack/cluster/up.sh ]] || die "no KUBECONFIG and no hack/cluster/up.sh to start a local control plane"
  CLUSTER_DIR=$(mktemp -d /tmp/bg-validate-cluster.XXXXXX)
  log "starting a local control plane in $CLUSTER_DIR (hack/cluster/up.sh)"
  "$REPO/hack/cluster/up.sh" "$CLUSTER_DIR" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; die "hack/cluster/up.sh failed"; }
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/env"
  export KUBECONFIG
fi

server_json=$(k version -o json 2>/dev/null)
git_version=$(jq -r '.serverVersion.gitVersion' <<<"$server_json")
log "API server $git_version"

# .Capabilities as `helm install` discovers them: group/versions and
# group/version/Kind of everything the server serves.
discover_capabilities() {
  local gv path
  : >"$WORK/api-versions"
  for gv in $(k api-versions); do
    echo "$gv" >>"$WORK/api-versions"
    if [[ $gv == v1 ]]; then path=/api/v1; else path=/apis/$gv; fi
    k get --raw "$path" | jq -r --arg gv "$gv" '.resources[] | select(.name | contains("/") | not) | "\($gv)/\(.kind)"' \
      >>"$WORK/api-versions"
  done
  sort -u -o "$WORK/api-versions" "$WORK/api-versions"
}

ensure_ns() {
  local ns=$1
  if ! k get namespace "$ns" >/dev/null 2>&1; then
    k create namespace "$ns" >/dev/null
    CREATED_NS+=("$ns")
  fi
}

install_validation_crds() {
  if ((EXTERNAL)) && [[ ${BG_VALIDATE_INSTALL_CRDS:-0} != 1 ]]; then
    log "not installing validation CRDs on the KUBECONFIG cluster (BG_VALIDATE_INSTALL_CRDS=1 does)"
    return
  fi
  local f name
  for f in "$RENDER_DIR"/crds/*.yaml; do
    while read -r name; do
      [[ -n $name ]] || continue
      if k get crd "$name" >/dev/null 2>&1; then
        if [[ -z $(k get crd "$name" -o jsonpath='{.metadata.labels.backup-guard\.io/validation-crd}') ]]; then
          log "CRD $name exists already (the real one?): validating against it"
          continue
        fi
      else
        CREATED_CRDS+=("$name")
      fi
      "$PY" - "$f" "$name" >"$WORK/crd.yaml" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["metadata"]["name"] == sys.argv[2]:
        yaml.safe_dump(d, sys.stdout)
EOF
      k apply -f "$WORK/crd.yaml" >/dev/null
    done < <(grep -oP '^  name: \K\S+' "$f")
  done
  k wait --for condition=Established --timeout=60s \
    crd/certificates.cert-manager.io crd/issuers.cert-manager.io \
    crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null
  # Discovery (and kubectl's OpenAPI cache) must see the new kinds.
  sleep 2
}

# gen_certs DIR HOST: a CA and a serving certificate for HOST (with SAN), as
# `backup-guard certs` writes them (ca.crt, tls.crt, tls.key).
gen_certs() {
  local dir=$1 host=$2
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=backup-guard-validate-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host" >"$dir/ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext" -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/ca.key" "$dir/tls.csr" "$dir/ext" "$dir/ca.srl"
}

# dry_run NAME FILE [--check-cabundle CA_FILE]: server-side dry-run of every
# object in FILE; fails on any rejection. Prints one line per object kind.
FAILED=0
PASSED=0
dry_run() {
  local name=$1 file=$2 ca=${4:-}
  local out="$WORK/$name.out.json" err="$WORK/$name.err" served="$WORK/$name.served.yaml" skipped
  skipped=$("$PY" - "$file" "$WORK/api-versions" "$served" <<'EOF'
import collections, sys, yaml
served = set(open(sys.argv[2]).read().split())
keep, skip = [], collections.Counter()
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d:
        continue
    if f"{d['apiVersion']}/{d['kind']}" in served:
        keep.append(d)
    else:
        skip[f"{d['apiVersion']} {d['kind']}"] += 1
yaml.safe_dump_all(keep, open(sys.argv[3], "w"), sort_keys=False)
print(", ".join(f"{v} {k}" for k, v in sorted(skip.items())))
EOF
)
  if [[ -n $skipped ]]; then
    log "note: $name: not served by $git_version, so not validated: $skipped"
  fi
  if ! grep -q '^kind:' "$served"; then
    log "note: $name: nothing left to validate on this server"
    return
  fi
  if k apply --dry-run=server --validate=strict -o json -f "$served" >"$out" 2>"$err"; then
    local summary
    summary=$("$PY" - "$out" "$ca" <<'EOF'
import base64, collections, json, sys
data = json.load(open(sys.argv[1]))
items = data.get("items", [data]) if data.get("kind") == "List" else [data]
kinds = collections.Counter(i["kind"] for i in items)
ca = sys.argv[2]
if ca:
    want = open(ca, "rb").read().strip()
    n = 0
    for i in items:
        if i["kind"].endswith("WebhookConfiguration"):
            for w in i["webhooks"]:
                got = base64.b64decode(w["clientConfig"].get("caBundle", "")).strip()
                if got != want:
                    sys.exit(f"{i['kind']} {w['name']}: caBundle is not the CA ({got[:40]!r}...)")
                n += 1
    if n == 0:
        sys.exit("no webhook caBundle to check")
print(", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
EOF
) || { log "FAIL $name: $summary"; FAILED=$((FAILED + 1)); return; }
    log "ok   $name: $summary"
    PASSED=$((PASSED + 1))
  else
    log "FAIL $name:"
    sed 's/^/       /' "$err" >&2
    FAILED=$((FAILED + 1))
  fi
}

# render_for_server NAME RENDER_ARGS...: render the chart with the server's
# capabilities into $WORK/NAME.yaml.
render_for_server() {
  local name=$1; shift
  local caps=()
  local v
  while read -r v; do caps+=(--api-versions "$v"); done <"$WORK/api-versions"
  render_chart --kube-version "$git_version" --no-default-api-versions "${caps[@]}" "$@" >"$WORK/$name.yaml"
}

has_api() { grep -qx "$1" "$WORK/api-versions"; }

# --------------------------------------------------------------- preparing
install_validation_crds
discover_capabilities
ensure_ns backup-guard
ensure_ns velero
ensure_ns ops

# The validator must actually validate: a misspelt field and a value outside
# a CRD enum have to be refused, or every "ok" below means nothing.
cat >"$WORK/typo.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: typo, namespace: backup-guard}
data: {a: b}
bogusField: true
EOF
cat >"$WORK/enum.yaml" <<'EOF'
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: enum, namespace: backup-guard}
spec:
  secretName: x
  issuerRef: {name: x}
  privateKey: {algorithm: DSA}
EOF
selftests=(typo)
has_api cert-manager.io/v1/Certificate && selftests+=(enum)
for f in "${selftests[@]}"; do
  if k apply --dry-run=server --validate=strict -f "$WORK/$f.yaml" >/dev/null 2>&1; then
    die "self-test: the server accepted $f.yaml; validation is not effective here"
  fi
done
log "self-test: refused as they must be: ${selftests[*]}"

# ----------------------------------------------------------- chart variants
gen_certs "$WORK/certs" backup-guard.backup-guard.svc
CA_B64=$(base64 -w0 <"$WORK/certs/ca.crt")
k -n backup-guard create secret tls my-webhook-tls --cert "$WORK/certs/tls.crt" --key "$WORK/certs/tls.key" \
  --dry-run=client -o yaml >"$WORK/provided-secret.yaml"

render_for_server chart-default
dry_run chart-default "$WORK/chart-default.yaml"
render_for_server chart-cert-manager --set certs.mode=certManager
dry_run chart-cert-manager "$WORK/chart-cert-manager.yaml"
render_for_server chart-cert-manager-issuer --set certs.mode=certManager \
  --set certs.certManager.issuerRef.name=corp-ca --set certs.certManager.issuerRef.kind=ClusterIssuer
dry_run chart-cert-manager-issuer "$WORK/chart-cert-manager-issuer.yaml"
render_for_server chart-provided -f "$RENDER_DIR/values/provided-certs.yaml" --set certs.provided.caBundle="$CA_B64"
{ echo "---"; cat "$WORK/provided-secret.yaml"; } >>"$WORK/chart-provided.yaml"
dry_run chart-provided "$WORK/chart-provided.yaml" --check-cabundle "$WORK/certs/ca.crt"
render_for_server chart-webhook-only -f "$RENDER_DIR/values/webhook-only.yaml"
dry_run chart-webhook-only "$WORK/chart-webhook-only.yaml"
render_for_server chart-controller-only --name guard --namespace ops -f "$RENDER_DIR/values/controller-only.yaml"
dry_run chart-controller-only "$WORK/chart-controller-only.yaml"
render_for_server chart-monitoring -f "$RENDER_DIR/values/monitoring.yaml"
dry_run chart-monitoring "$WORK/chart-monitoring.yaml"

# --------------------------------------------------------------- manifests/
# manifests/ targets Kubernetes >= 1.21 (policy/v1 PodDisruptionBudget): on
# an older server that object is reported as not served, and skipped.
k kustomize "$REPO/manifests" >"$WORK/manifests.yaml"
dry_run manifests "$WORK/manifests.yaml"

# manifests/self-signed reads certs/ next to its kustomization: use a copy.
cp -r "$REPO/manifests" "$WORK/manifests-copy"
mkdir -p "$WORK/manifests-copy/self-signed/certs"
cp "$WORK/certs/"{ca.crt,tls.crt,tls.key} "$WORK/manifests-copy/self-signed/certs/"
k kustomize "$WORK/manifests-copy/self-signed" >"$WORK/self-signed.yaml"
if grep -q UkVQTEFDRUQtQlktS1VTVE9NSVpF "$WORK/self-signed.yaml"; then
  die "manifests/self-signed: the caBundle placeholder survived kustomize"
fi
dry_run manifests-self-signed "$WORK/self-signed.yaml" --check-cabundle "$WORK/certs/ca.crt"

k kustomize "$REPO/manifests/monitoring" >"$WORK/monitoring.yaml"
dry_run manifests-monitoring "$WORK/monitoring.yaml"

log "server dry-run: $PASSED passed, $FAILED failed"
((FAILED == 0)) || die "some manifests were refused by the API server"

# ------------------------------------------------------------ live wiring
# On the throw-away cluster only: the chart's Service and webhook
# configurations applied for real, called by the API server (wiring.sh).
if [[ -n $CLUSTER_DIR ]]; then
  set +e
  BG_THROWAWAY_CLUSTER=1 "$RENDER_DIR/wiring.sh" "$WORK/certs"
  wrc=$?
  set -e
  case $wrc in
    0) ;;
    3) log "note: live webhook wiring not checked (needs root and iproute2)" ;;
    *) die "live webhook wiring failed" ;;
  esac
else
  log "note: live webhook wiring is only checked on the local throw-away cluster"
fi

# ------------------------------------------------------------------- RBAC
# Least privilege, checked by the API server's own authorizer: apply the
# default chart's RBAC, then the webhook-only chart's, for real (only on the
# throw-away cluster, or with BG_VALIDATE_APPLY=1) and ask `kubectl auth
# can-i` as its ServiceAccount what it may and may not do.
if [[ -n $CLUSTER_DIR || ${BG_VALIDATE_APPLY:-0} == 1 ]]; then
  rbac_of() { # RENDERED: the RBAC objects in it
    "$PY" - "$1" <<'EOF'
import sys, yaml
keep = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] in keep]
yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
EOF
  }
  rbac_of "$WORK/chart-default.yaml" >"$WORK/rbac.yaml"
  k apply -f "$WORK/rbac.yaml" >/dev/null
  SA=system:serviceaccount:backup-guard:backup-guard
  RBAC_FAILED=0
  RBAC_PASSED=0
  can() { # yes|no VERB RESOURCE [NAMESPACE]
    local want=$1 verb=$2 res=$3 ns=${4:-} got args=()
    if [[ -n $ns ]]; then args=(-n "$ns"); else args=(--all-namespaces); fi
    if k auth can-i "$verb" "$res" --as "$SA" "${args[@]}" >/dev/null 2>&1; then got=yes; else got=no; fi
    if [[ $got == "$want" ]]; then
      RBAC_PASSED=$((RBAC_PASSED + 1))
    else
      log "FAIL rbac: can-i $verb $res ${ns:+-n $ns} = $got, want $want"
      RBAC_FAILED=$((RBAC_FAILED + 1))
    fi
  }
  # The webhook's index (watchers: list + watch) and Events (events.k8s.io).
  for r in backups.velero.io backupstoragelocations.velero.io deletebackuprequests.velero.io \
           volumesnapshotcontents.snapshot.storage.k8s.io; do
    for v in list watch; do can yes "$v" "$r"; done
  done
  for v in create patch; do can yes "$v" events.events.k8s.io velero; can yes "$v" events.events.k8s.io backup-guard; done
  for v in list watch; do can yes "$v" configmaps/backup-guard-policy backup-guard; done
  can no get configmaps/other backup-guard
  # ... and the real request the guard makes: a list with that field selector.
  if k -n backup-guard get configmaps --field-selector metadata.name=backup-guard-policy --as "$SA" >/dev/null 2>&1; then
    RBAC_PASSED=$((RBAC_PASSED + 1))
  else
    log "FAIL rbac: listing configmaps with --field-selector metadata.name=backup-guard-policy is refused"
    RBAC_FAILED=$((RBAC_FAILED + 1))
  fi
  can yes create leases.coordination.k8s.io backup-guard
  can yes update leases.coordination.k8s.io/backup-guard-controller backup-guard
  can yes get leases.coordination.k8s.io/backup-guard-controller backup-guard
  # The cleanup controller.
  for v in get patch delete; do can yes "$v" backups.velero.io velero; done
  can yes get backupstoragelocations.velero.io velero
  for v in get list patch delete; do can yes "$v" restores.velero.io velero; done
  for v in list delete; do can yes "$v" podvolumebackups.velero.io velero; done
  for v in create delete; do can yes "$v" deletebackuprequests.velero.io velero; done
  for v in list delete; do can yes "$v" volumesnapshots.snapshot.storage.k8s.io; done
  for v in patch delete; do can yes "$v" volumesnapshotcontents.snapshot.storage.k8s.io; done
  can yes get secrets velero
  # ... and nothing else.
  can no get secrets backup-guard
  can no get secrets kube-system
  can no list secrets velero
  can no get configmaps kube-system
  can no update leases.coordination.k8s.io/someone-else backup-guard
  can no delete leases.coordination.k8s.io/backup-guard-controller backup-guard
  can no create backups.velero.io velero
  can no delete namespaces
  can no delete customresourcedefinitions.apiextensions.k8s.io
  can no update backupstoragelocations.velero.io velero
  can no delete backupstoragelocations.velero.io velero
  can no create volumesnapshotcontents.snapshot.storage.k8s.io
  can no update validatingwebhookconfigurations.admissionregistration.k8s.io
  can no create pods backup-guard
  can no impersonate users
  can no escalate clusterroles.rbac.authorization.k8s.io
  # ... nor what the code never calls (no get/watch of VolumeSnapshots, no
  # CRD reads, no update where it patches, no core v1 Events, no get where a
  # watcher lists).
  for v in get list watch; do can no "$v" customresourcedefinitions.apiextensions.k8s.io; done
  for v in get watch; do can no "$v" volumesnapshots.snapshot.storage.k8s.io; done
  can no update backups.velero.io velero
  for v in watch update; do can no "$v" restores.velero.io velero; done
  for v in get update; do can no "$v" volumesnapshotcontents.snapshot.storage.k8s.io; done
  can no get deletebackuprequests.velero.io velero
  for v in create patch; do can no "$v" events velero; done
  can no get configmaps/backup-guard-policy backup-guard
  # command: webhook gets the index, Events and the policy ConfigMap only: no
  # controller rules, no Lease (same names as the default: replace its RBAC).
  k delete -f "$WORK/rbac.yaml" --wait >/dev/null
  rbac_of "$WORK/chart-webhook-only.yaml" >"$WORK/rbac-webhook-only.yaml"
  k apply -f "$WORK/rbac-webhook-only.yaml" >/dev/null
  for v in list watch; do can yes "$v" backups.velero.io; can yes "$v" volumesnapshotcontents.snapshot.storage.k8s.io; done
  can yes create events.events.k8s.io velero
  can yes watch configmaps/backup-guard-policy backup-guard
  for v in get patch delete; do can no "$v" backups.velero.io velero; done
  can no get backupstoragelocations.velero.io velero
  can no list restores.velero.io velero
  can no create deletebackuprequests.velero.io velero
  can no get secrets velero
  can no create leases.coordination.k8s.io backup-guard
  can no get leases.coordination.k8s.io/backup-guard-controller backup-guard
  log "rbac: $RBAC_PASSED passed, $RBAC_FAILED failed"
  ((RBAC_FAILED == 0)) || die "the chart's RBAC grants too much or too little"
  # No wildcard anywhere in our rules.
  "$PY" - "$WORK/rbac.yaml" "$WORK/rbac-webhook-only.yaml" <<'EOF' || die "RBAC rules use a wildcard"
import sys, yaml
bad = [(d["kind"], d["metadata"]["name"], r) for f in sys.argv[1:] for d in yaml.safe_load_all(open(f))
       if d and "rules" in d for r in d["rules"]
       if any("*" in r.get(k, []) for k in ("verbs", "resources", "apiGroups", "resourceNames"))]
for b in bad:
    print("wildcard in", *b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
fi
