#!/usr/bin/env bash
# Everything CI checks about how backup-guard is installed and operated:
#
#   1. deps       Debian packages (idempotent): Go + sprig + yaml.v2 for the
#                 renderer, python3-yaml/-jsonschema, prometheus (promtool)
#   2. renderer   go test of hack/render (Helm fidelity of the renderer)
#   3. render     the chart with defaults and every variant in
#                 hack/render/values/, each: values.schema.json, then
#                 check_render.py (contract names, flags, webhook paths and
#                 failure policies, hardening, RBAC, certificates), and the
#                 rendered policy through `backup-guard policy check` when a
#                 built binary is at hand
#   4. schema     invalid values are refused (by values.schema.json, or by the
#                 templates: e.g. installing into Velero's namespace)
#   5. drift      manifests/ equal the chart rendered now
#   6. alerts     promtool check + unit tests of the PrometheusRule
#   7. server     hack/render/validate.sh: kubectl apply --dry-run=server on a
#                 real API server + RBAC can-i matrix — when $KUBECONFIG is set
#                 or the local control plane binaries are cached (or
#                 BG_CLUSTER=build: build them, ~5 min); BG_CLUSTER=skip skips,
#                 BG_CLUSTER=require fails when no cluster can be had.
#
#   hack/render/test.sh
#
# Ends with "render-tests: N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export LOG_TAG=test
START=$SECONDS
PASSED=0
FAILED=0
SKIPPED=()

step() { printf '\n[test] === %s\n' "$*" >&2; }
pass() { PASSED=$((PASSED + 1)); log "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ----------------------------------------------------------------- 1. deps
step "1/7 deps"
render_deps
ensure_apt prometheus openssl jq
pass "apt dependencies present"

# ------------------------------------------------------------- 2. renderer
step "2/7 renderer unit tests (go test)"
if (cd "$RENDER_DIR" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS="" \
      GOCACHE=${GOCACHE:-$BG_CACHE/go-build} go test -count=1 .) >&2; then
  pass "hack/render go test"
else
  fail "hack/render go test"
fi
build_renderer >/dev/null

# --------------------------------------------------------------- 3. render
step "3/7 render variants + schema + structural checks"
BG_BIN=${BACKUP_GUARD_BIN:-}
if [[ -z $BG_BIN ]]; then
  for c in "$REPO/target/debug/backup-guard" "$REPO/target/release/backup-guard"; do
    [[ -x $c ]] && { BG_BIN=$c; break; }
  done
fi
if [[ -n $BG_BIN ]] && ! "$BG_BIN" policy check --help >/dev/null 2>&1; then
  BG_BIN=""
fi
[[ -n $BG_BIN ]] || SKIPPED+=("policy check of rendered policies (no built backup-guard binary; set BACKUP_GUARD_BIN)")

policy_check() { # rendered.yaml label
  [[ -n $BG_BIN ]] || return 0
  local f
  f=$(mktemp "$tmp/policy.XXXX.yaml")
  "$PY" - "$1" >"$f" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "backup-guard-policy":
        print(d["data"]["policy.yaml"])
EOF
  if "$BG_BIN" policy check "$f" >/dev/null 2>"$tmp/policy.err"; then
    pass "$2: rendered policy passes backup-guard policy check"
  else
    fail "$2: rendered policy refused by backup-guard policy check: $(cat "$tmp/policy.err")"
  fi
}

# variant NAME "RENDER ARGS" "CHECK ARGS"
variant() {
  local name=$1 rargs=$2 cargs=$3 out=$tmp/$1.yaml
  # shellcheck disable=SC2086
  if ! (render_chart $rargs >"$out") 2>"$tmp/$name.err"; then
    fail "$name: render: $(tail -n 3 "$tmp/$name.err")"
    return
  fi
  # shellcheck disable=SC2086
  if "$PY" "$RENDER_DIR/check_render.py" "$out" $cargs 2>"$tmp/$name.err"; then
    pass "$name: $(grep -c '^kind:' "$out") objects, structure as promised"
  else
    fail "$name:"; cat "$tmp/$name.err" >&2
  fi
  if grep -q 'kind: ConfigMap' "$out" && grep -q 'backup-guard-policy' "$out"; then
    policy_check "$out" "$name"
  fi
}

V=$RENDER_DIR/values
variant default "" ""
variant kube-1.20 "--kube-version v1.20.2" "--pdb policy/v1beta1"
variant cert-manager "--set certs.mode=certManager" "--certs certManager"
variant provided-certs "-f $V/provided-certs.yaml" "--certs provided"
variant webhook-only "-f $V/webhook-only.yaml" "--command webhook --pdb none --failure-policy /namespaces/DELETE=Ignore"
variant controller-only "-f $V/controller-only.yaml --name guard --namespace ops" \
  "--command controller --namespace ops --fullname guard-backup-guard --ambient-credentials"
variant monitoring "-f $V/monitoring.yaml" ""
variant manifests "-f $V/manifests.yaml --release-service kubectl" "--certs certManager --signing-key external"
variant self-signed "-f $V/self-signed.yaml --release-service kubectl" "--certs provided --signing-key external"

# NOTES.txt (what helm install prints) says what this install does.
# notes NAME "RENDER ARGS" "MUST CONTAIN" "MUST NOT CONTAIN"
notes() {
  local name=$1 rargs=$2 want=$3 unwanted=$4 out
  # shellcheck disable=SC2086
  if ! out=$(render_chart --notes $rargs 2>"$tmp/notes.err"); then
    fail "NOTES.txt $name: $(tail -n 3 "$tmp/notes.err")"
  elif [[ $out != *"$want"* ]]; then
    fail "NOTES.txt $name: lacks \"$want\""
  elif [[ -n $unwanted && $out == *"$unwanted"* ]]; then
    fail "NOTES.txt $name: says \"$unwanted\""
  else
    pass "NOTES.txt $name"
  fi
}
notes default "" "guarded operations (backup deletion and updates" ""
notes controller-only "-f $V/controller-only.yaml --namespace ops" \
  "installs no webhook configurations" "guarded operations (backup deletion"
notes own-configmap "--set policyConfigMap.create=false --set policy.mode=audit" \
  "managed by you" "Policy mode: audit"

# Generated material is random per render, but consistent within one.
if cmp -s <(render_chart 2>/dev/null | grep 'caBundle' | sort -u) \
          <(render_chart 2>/dev/null | grep 'caBundle' | sort -u); then
  fail "certs.mode generate: two renders produced the same CA (not random?)"
else
  pass "certs.mode generate: a fresh CA per install, one CA per render"
fi

# Upgrades keep generated material: render an install, then an upgrade that
# finds the install's Secrets through lookup (as `helm upgrade` does).
"$PY" - "$tmp/default.yaml" >"$tmp/cluster-secrets.yaml" <<'EOF'
import sys, yaml
yaml.safe_dump_all([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Secret"], sys.stdout)
EOF
if (render_chart --is-upgrade --lookup-objects "$tmp/cluster-secrets.yaml" >"$tmp/upgrade.yaml") 2>"$tmp/upgrade.err" &&
   "$PY" - "$tmp/default.yaml" "$tmp/upgrade.yaml" <<'EOF'
import sys, yaml
def pick(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    out = {}
    for d in docs:
        if d["kind"] == "Secret":
            out["secret/" + d["metadata"]["name"]] = d["data"]
        if d["kind"].endswith("WebhookConfiguration"):
            out[d["kind"]] = sorted({w["clientConfig"]["caBundle"] for w in d["webhooks"]})
        if d["kind"] == "Deployment":
            out["checksum"] = d["spec"]["template"]["metadata"]["annotations"]["checksum/signing-key"]
    return out
a, b = pick(sys.argv[1]), pick(sys.argv[2])
assert set(a) == {"secret/backup-guard-tls", "secret/backup-guard-signing-key", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "checksum"}, sorted(a)
for k in a:
    assert a[k] == b[k], f"{k} changed on upgrade"
assert len(a["ValidatingWebhookConfiguration"]) == 1, "one CA for every webhook"
EOF
then
  pass "helm upgrade (lookup finds the Secrets): certificates, CA bundle, signing key and pod checksum unchanged"
else
  fail "upgrade keeps generated material: $(cat "$tmp/upgrade.err")"
fi

# Monitoring objects: dashboard JSON parses and uses only contract metrics.
if "$PY" - "$tmp/monitoring.yaml" <<'EOF'
import json, re, sys, yaml
contract = {
    "backup_guard_admission_requests_total", "backup_guard_blocked_deletions_total",
    "backup_guard_admission_duration_seconds", "backup_guard_protected_objects",
    "backup_guard_policy_reloads_total", "backup_guard_policy_last_reload_success_timestamp_seconds",
    "backup_guard_cleanups_total", "backup_guard_cleanup_objects_deleted_total",
    "backup_guard_cleanup_duration_seconds", "backup_guard_certificate_expiry_timestamp_seconds",
}
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dash = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
assert len(dash) == 1, "one dashboard ConfigMap"
board = json.loads(dash[0]["data"]["backup-guard.json"])
text = json.dumps(board) + json.dumps([d for d in docs if d["kind"] == "PrometheusRule"])
used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"backup_guard_[a-z_]+", text)}
unknown = used - contract
assert not unknown, f"metrics not in the contract: {unknown}"
missing = contract - used
assert not missing, f"contract metrics neither on the dashboard nor in an alert: {missing}"
sm = [d for d in docs if d["kind"] == "ServiceMonitor"]
assert sm and sm[0]["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor scrapes the metrics port"
EOF
then
  pass "dashboard + alerts use exactly the contract's metrics; ServiceMonitor scrapes port metrics"
else
  fail "monitoring objects"
fi

# The dashboard's $job defaults to the job the PrometheusRule alerts on (the
# full name, or prometheusRule.job), and its variables come from a metric every
# mode exports (the policy timestamp gauge: controller-only installs answer no
# admission requests).
for margs in "" "--name other" "--set prometheusRule.job=custom-job"; do
  # shellcheck disable=SC2086
  if (render_chart -f "$V/monitoring.yaml" $margs >"$tmp/mon-job.yaml") 2>"$tmp/mon-job.err" &&
     "$PY" - "$tmp/mon-job.yaml" 2>"$tmp/mon-job.err" <<'EOF'
import json, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
board = json.loads(next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))["data"]["backup-guard.json"])
rule = next(d for d in docs if d["kind"] == "PrometheusRule")
absent = next(r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "BackupGuardAbsent")
rule_job = re.search(r'job="([^"]+)"', absent["expr"]).group(1)
var = {v["name"]: v for v in board["templating"]["list"]}
assert var["job"]["type"] == "query", "$job is a query variable, not a fixed value"
assert var["job"]["current"] == {"text": rule_job, "value": rule_job}, f"$job defaults to {var['job']['current']}, the rule uses {rule_job}"
for name in ("namespace", "job"):
    q = var[name]["query"]["query"]
    assert "backup_guard_policy_last_reload_success_timestamp_seconds" in q, f"${name} from {q}"
exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
prot = [e for e in exprs if "backup_guard_protected_objects" in e]
assert prot and all(e.startswith("max by (resource)") for e in prot), f"protected objects: {prot}"
for e in exprs:
    for sel in re.findall(r"(?:backup_guard_[a-z_]+|up)\{([^}]*)\}", e):
        assert 'job=~"$job"' in sel, f"selector without $job: {e}"
EOF
  then
    pass "dashboard ${margs:-(defaults)}: \$job defaults to the PrometheusRule's job; variables from an always-exported metric; protected objects max by resource"
  else
    fail "dashboard ${margs:-(defaults)}: $(cat "$tmp/mon-job.err")"
  fi
done

# ---------------------------------------------------------------- 4. schema
step "4/7 values.schema.json refuses bad values"
bad_values=(
  "--set policy.mode=strict"
  "--set policy.request.ttl=1day"
  "--set policy.velero.serviceAccount=velero"
  "--set policy.rules[0].mode=audit"
  "--set policy.approval.required=true --set policy.approval.approvers.groups=null"
  "--set certs.mode=selfsigned"
  "--set certs.mode=provided"
  "--set webhooks.failurePolicy.backupDeletions=Maybe"
  "--set webhooks.timeoutSeconds=60"
  "--set replicaCount=0"
  "--set command=serve"
  "--set logFormat=xml"
  "--set unknownTopLevelKey=1"
  "--set image.digest=latest"
  "--set rbac.leaseName=other"
  "--set prometheusRule.admissionLatencyThresholdMs=1000"
  "--set prometheusRule.admissionErrorWindow=ten"
  "--set policy.cleanup.engine=kopia"
)
for b in "${bad_values[@]}"; do
  # shellcheck disable=SC2086
  if (render_chart $b >/dev/null 2>&1); then
    fail "schema accepted bad values: $b"
  else
    pass "schema refuses: $b"
  fi
done

# Templates refuse what the schema cannot see (it knows no release namespace):
# ARGS | what the error must say, or "ok" when the render must succeed.
refusals=(
  "--namespace velero|must not be installed in Velero's namespace \"velero\""
  "--namespace ops --set policy.velero.namespace=ops|must not be installed in Velero's namespace \"ops\""
  "-f $V/controller-only.yaml --namespace velero|must not be installed in Velero's namespace"
  "--namespace velero --set policy.velero.namespace=velero-system|ok"
  "--set policy.cleanup.engine=auto|ok"
)
for r in "${refusals[@]}"; do
  args=${r%%|*} want=${r#*|}
  # shellcheck disable=SC2086
  if (render_chart $args >/dev/null 2>"$tmp/refuse.err"); then
    if [[ $want == ok ]]; then pass "renders: $args"; else fail "rendered, should refuse: $args"; fi
  elif [[ $want != ok ]] && grep -qF -- "$want" "$tmp/refuse.err"; then
    pass "chart refuses: $args"
  else
    fail "$args: $(tail -c 400 "$tmp/refuse.err")"
  fi
done

# ----------------------------------------------------------------- 5. drift
step "5/7 manifests/ drift"
if "$RENDER_DIR/check-drift.sh"; then pass "manifests/ up to date"; else fail "manifests/ drift"; fi
if /usr/bin/kubectl kustomize "$REPO/manifests" >/dev/null 2>"$tmp/k.err" &&
   /usr/bin/kubectl kustomize "$REPO/manifests/monitoring" >/dev/null 2>>"$tmp/k.err"; then
  pass "kustomize builds manifests/ and manifests/monitoring/"
else
  fail "kustomize build: $(cat "$tmp/k.err")"
fi

# ---------------------------------------------------------------- 6. alerts
step "6/7 alerts (promtool)"
if "$REPO/hack/promtool/test-alerts.sh"; then pass "promtool check + test rules"; else fail "promtool"; fi

# -------------------------------------------------------------- Dockerfile
# Cannot be built here (no container engine); check what can be checked.
if "$PY" - "$REPO" <<'EOF'
import os, re, sys
repo = sys.argv[1]
text = open(os.path.join(repo, "Dockerfile")).read()
lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
froms = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
assert len(froms) >= 2, "multi-stage: at least a build and a runtime stage"
final = lines[froms[-1]:]
assert "distroless/static" in final[0], f"runtime stage must be distroless/static, is {final[0]}"
users = [l for l in final if l.upper().startswith("USER ")]
assert users and users[-1].split()[1].split(":")[0] not in ("0", "root"), "runtime stage must run as non-root"
assert any("--locked" in l for l in lines), "cargo build --locked"
copied = []
for l in lines[:froms[-1]]:
    if l.upper().startswith("COPY ") and "--from" not in l:
        copied += l.split()[1:-1]
for c in copied:
    assert os.path.exists(os.path.join(repo, c)), f"Dockerfile copies {c}, which does not exist"
if os.path.exists(os.path.join(repo, "build.rs")):
    assert "build.rs" in copied, "build.rs exists but the Dockerfile does not copy it"
cargo = open(os.path.join(repo, "Cargo.toml")).read()
assert not re.search(r"^members\s*=", cargo, re.M), "a Cargo workspace with members: copy the member crates too"
ignore = [l.strip() for l in open(os.path.join(repo, ".dockerignore")) if l.strip() and not l.startswith("#")]
assert ignore[0] == "*", ".dockerignore must start by excluding everything"
allowed = {l[1:].rstrip("/") for l in ignore if l.startswith("!")}
assert allowed == set(c.rstrip("/").lstrip("./") for c in copied), f".dockerignore allows {allowed}, Dockerfile copies {copied}"
EOF
then
  pass "Dockerfile: multi-stage, distroless/static, non-root, --locked, copies exist, minimal context"
else
  fail "Dockerfile static checks"
fi
SKIPPED+=("docker build (no container engine on this machine)")

# ---------------------------------------------------------------- 7. server
step "7/7 real API server (dry-run + RBAC)"
mode=${BG_CLUSTER:-auto}
cached=$BG_CACHE/k8s-1.20.2/bin/kube-apiserver
run_server=0
case $mode in
  skip) SKIPPED+=("server dry-run (BG_CLUSTER=skip)") ;;
  build | require) run_server=1 ;;
  auto)
    if [[ -n ${KUBECONFIG:-} || -x $cached ]]; then
      run_server=1
    else
      SKIPPED+=("server dry-run: no KUBECONFIG and no cached control plane ($cached); BG_CLUSTER=build builds it (~5 min)")
    fi ;;
  *) die "BG_CLUSTER must be auto, build, require or skip" ;;
esac
if ((run_server)); then
  if [[ $mode == require && -z ${KUBECONFIG:-} && ! -x $cached ]]; then
    fail "BG_CLUSTER=require but no KUBECONFIG and no cached control plane"
  elif "$RENDER_DIR/validate.sh"; then
    pass "server dry-run of chart variants and manifests/, RBAC can-i matrix"
  else
    fail "server validation"
  fi
fi

# --------------------------------------------------------------- summary
echo >&2
for s in "${SKIPPED[@]}"; do log "SKIPPED: $s"; done
log "took $((SECONDS - START))s"
echo "render-tests: $PASSED passed, $FAILED failed"
((FAILED == 0))
