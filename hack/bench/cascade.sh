#!/usr/bin/env bash
# ns_cascade_ratio (docs/performance.md); called by run.sh. The time the real kube-apiserver
# 1.20.2 + kube-controller-manager of hack/cluster take to delete a namespace holding N Velero
# Backups with the guard installed from the chart in **neuter** mode (every Backup DELETE of the
# cascade goes through its validating webhook and is allowed with a warning) ÷ the same with
# the webhook configurations removed. The guard process keeps running in both kinds of round
# (its watch feed sees every Backup come and go either way); only the API server's calls to it
# differ.
#
# Rounds go without / with / off (BENCH_CASCADE_ROUNDS of each, default 1: one set of 10k
# rounds takes about 7 min on the 2-core machine), each in a fresh namespace
# cascade-<round>-<kind>; ratio = mean(with) ÷ mean(without). The off round (webhooks
# registered, policy `mode: off`: the guard answers allow at once) prints the floor under the
# figure, `BENCH_INFO ns_cascade_ratio_off`: what the API server's calls alone cost. The Backups are created outside
# the timed part (python3 stdlib, a few keep-alive connections, no webhook in either kind of
# round); the timed part runs from the namespace DELETE until GET of the namespace answers 404,
# polled every 0.1 s from the same process. A "with" round must see one neutered webhook call
# per Backup, or the run fails. 10k Backups do not fit in one DeleteCollection (kube-apiserver
# gives it 34 s and deletes the items one at a time): the namespace controller retries until
# the namespace is empty, which is part of the time, as it is in a real cluster.
#
# Prints `BENCH ns_cascade_ratio R ratio` (+ BENCH_MISS above 1.10) and BENCH_INFO context;
# BENCH_SMOKE=1: N = 200, the ratio as BENCH_INFO only. BENCH_SKIP when the local control plane
# cannot be started here. Knobs: BENCH_CASCADE_BACKUPS (N), BENCH_CASCADE_ROUNDS (per kind),
# BENCH_GUARD (a built release binary; run.sh passes its own), BENCH_KEEP=1 (keep the work dir).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
SMOKE=${BENCH_SMOKE:-}
if [ -n "$SMOKE" ]; then
  N=${BENCH_CASCADE_BACKUPS:-200} ROUNDS=${BENCH_CASCADE_ROUNDS:-1}
else
  N=${BENCH_CASCADE_BACKUPS:-10000} ROUNDS=${BENCH_CASCADE_ROUNDS:-1}
fi
TARGET=1.10
CREATE_THREADS=4

# shellcheck source=hack/e2e/lib.sh
source "$ROOT/hack/e2e/lib.sh"
log() { printf '==> %s\n' "$*" >&2; }   # run.sh's style, for lib.sh's messages too
skip() { echo "BENCH_SKIP ns_cascade_ratio $*"; exit 0; }

# --- can the local control plane run here? ----------------------------------------------------
CACHE=${BG_CACHE:-$HOME/.cache/backup-guard}
if [ "$(id -u)" != 0 ]; then
  if [ ! -x "$CACHE/k8s-1.20.2/bin/kube-apiserver" ] || [ ! -x "$CACHE/k8s-1.20.2/bin/kube-controller-manager" ]; then
    skip "kube-apiserver 1.20.2 is not built and building it needs root (hack/cluster/build.sh)"
  fi
  command -v etcd >/dev/null || skip "etcd is not installed and installing it needs root (hack/cluster/build.sh)"
fi
for tool in python3 curl jq openssl "$KUBECTL"; do
  command -v "$tool" >/dev/null || skip "$tool not found"
done

# --- the guard: the release build (run.sh passes the one it built) -----------------------------
if [ -n "${BENCH_GUARD:-}" ]; then
  GUARD=$BENCH_GUARD
else
  log "building backup-guard (release)"
  "$CARGO" build --release --locked --bin backup-guard >&2
  GUARD="$("$CARGO" metadata --format-version 1 --no-deps | jq -r .target_directory)/release/backup-guard"
fi
[ -x "$GUARD" ] || { echo "no guard binary at $GUARD" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bg-cascade.XXXXXX")
STAGE=start
cleanup() {
  local rc=$?
  teardown "$WORK" >&2 2>&1 || true
  if [ "$rc" != 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    log "work directory kept: $WORK (guard.log, cluster/logs/)"
  else
    rm -rf "$WORK"
  fi
  if [ "$rc" != 0 ] && [ "$STAGE" = cluster ]; then
    echo "BENCH_SKIP ns_cascade_ratio the local control plane did not start (see above)"
    exit 0
  fi
}
trap cleanup EXIT

# --- the API server helper: create N Backups; time one namespace cascade ------------------------
# python3 stdlib, admin token of hack/cluster (BG_API_SERVER, BG_CA_FILE, BG_ADMIN_TOKEN).
cat > "$WORK/api.py" <<'EOF'
import http.client, json, os, ssl, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

URL = urllib.parse.urlsplit(os.environ["BG_API_SERVER"])
TLS = ssl.create_default_context(cafile=os.environ["BG_CA_FILE"])
HEADERS = {"Authorization": "Bearer " + os.environ["BG_ADMIN_TOKEN"],
           "Content-Type": "application/json", "Accept": "application/json"}
local = threading.local()

def call(method, path, body=None, retries=5):
    """One request on this thread's keep-alive connection; retried on 429/5xx and broken connections."""
    for attempt in range(retries + 1):
        try:
            if getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPSConnection(URL.hostname, URL.port, context=TLS, timeout=60)
            local.conn.request(method, path, None if body is None else json.dumps(body), HEADERS)
            r = local.conn.getresponse()
            data = r.read()
            if r.status not in (429, 500, 503, 504) or attempt == retries:
                return r.status, data
        except (OSError, http.client.HTTPException):
            local.conn = None
            if attempt == retries:
                raise
        time.sleep(0.2 * (attempt + 1))

def backup(ns, i):
    return {"apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": "cascade-%05d" % i, "namespace": ns,
                         "labels": {"velero.io/storage-location": "default"}},
            "spec": {"storageLocation": "default", "ttl": "720h0m0s", "includedNamespaces": ["*"]}}

def create(ns, n, threads):
    status, data = call("POST", "/api/v1/namespaces",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    if status != 201:
        sys.exit("create namespace %s: %d %s" % (ns, status, data[:300]))
    def one(i):
        status, data = call("POST", "/apis/velero.io/v1/namespaces/%s/backups" % ns, backup(ns, i))
        # 409: a retried POST whose first attempt went through.
        if status not in (201, 409):
            raise RuntimeError("create backup %d: %d %s" % (i, status, data[:300]))
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n), chunksize=64))
    print("%.3f" % (time.monotonic() - started))

def cascade(ns, timeout):
    path = "/api/v1/namespaces/" + ns
    call("GET", path)                       # the connection is open before the clock starts
    started = time.monotonic()
    status, data = call("DELETE", path, retries=0)
    if status not in (200, 202):
        sys.exit("delete namespace %s: %d %s" % (ns, status, data[:300]))
    last_report = started
    while True:
        status, data = call("GET", path)
        now = time.monotonic()
        if status == 404:
            print("%.3f" % (now - started))
            return
        if now - started > timeout:
            sys.exit("namespace %s still there after %ds: %s" % (ns, timeout, data[:1000]))
        if now - last_report > 30:          # a stuck cascade says why (status.conditions)
            last_report = now
            conds = json.loads(data).get("status", {}).get("conditions", [])
            print("  %s after %.0fs: %s" % (ns, now - started,
                  "; ".join("%s=%s" % (c["type"], c["status"]) for c in conds)), file=sys.stderr)
        time.sleep(0.1)

if __name__ == "__main__":
    if sys.argv[1] == "create":
        create(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        cascade(sys.argv[2], int(sys.argv[3]))
EOF

# --- the control plane, the guard from the chart, neuter mode ----------------------------------
unset KUBECONFIG
export E2E_OWN_CLUSTER=1
# The real Velero CRDs (and the snapshot CRDs beside them) when the shared fixtures are there.
SHARED_FIXTURES=$ROOT/../shared/fixtures
if [ -d "$SHARED_FIXTURES/velero-crds" ] && [ -d "$SHARED_FIXTURES/snapshot-crds" ]; then
  export VELERO_CRDS_DIR=${VELERO_CRDS_DIR:-$SHARED_FIXTURES/velero-crds}
  export SNAPSHOT_CRDS_DIR=${SNAPSHOT_CRDS_DIR:-$SHARED_FIXTURES/snapshot-crds}
fi
STAGE=cluster
cluster_up "$WORK" >&2
STAGE=guard
guard_up "$WORK" "$GUARD" >&2
if [ "$(install_mode "$WORK")" = chart ]; then
  # shellcheck disable=SC1091
  source "$WORK/chart/plan.env"
  WEBHOOKS="$WORK/chart/webhooks.yaml" POLICY_NS=$CHART_NAMESPACE
else
  WEBHOOKS="$WORK/webhooks.yaml" POLICY_NS=backup-guard
fi

# series_sum NAME [LABEL="VALUE"]...: from Prometheus text on stdin, the sum of the series
# NAME{…} (or NAME alone) carrying every label given.
series_sum() {
  awk -v name="$1" -v labels="${*:2}" '
    BEGIN { n = split(labels, want, " ") }
    index($0, name "{") == 1 || index($0, name " ") == 1 {
      for (i = 1; i <= n; i++) if (!index($0, want[i])) next
      s += $NF }
    END { printf "%.10g\n", s }'
}
metric() { curl -fsS "$E2E_METRICS_URL/metrics" | series_sum "$@"; }
# snap NAME: the guard's and the API server's metrics, into $WORK/NAME.{guard,api}.
snap() {
  curl -fsS "$E2E_METRICS_URL/metrics" > "$WORK/$1.guard"
  "$KUBECTL" get --raw /metrics > "$WORK/$1.api"
}
# delta guard|api SERIES…: how much a series grew from snap before to snap after.
delta() {
  local a b
  a=$(series_sum "${@:2}" < "$WORK/before.$1") b=$(series_sum "${@:2}" < "$WORK/after.$1")
  awk -v a="$a" -v b="$b" 'BEGIN { printf "%.10g\n", b - a }'
}
# mean_ms guard|api HISTOGRAM LABEL…: the mean of its observations between the two snaps, in ms.
mean_ms() {
  local c s
  c=$(delta "$1" "${2}_count" "${@:3}") s=$(delta "$1" "${2}_sum" "${@:3}")
  awk -v c="$c" -v s="$s" 'BEGIN { printf "%.3f\n", (c > 0 ? s * 1000 / c : 0) }'
}

# set_mode MODE: the policy's mode, once the guard has reloaded it.
set_mode() {
  local reloads deadline
  reloads=$(metric backup_guard_policy_reloads_total 'result="success"')
  "$KUBECTL" -n "$POLICY_NS" create configmap backup-guard-policy --from-literal=policy.yaml="mode: $1" \
    --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  deadline=$((SECONDS + 60))
  until [ "$(metric backup_guard_policy_reloads_total 'result="success"')" -gt "$reloads" ]; do
    [ $SECONDS -lt $deadline ] || { tail -20 "$WORK/guard.log" >&2; echo "the guard never reloaded the $1 policy" >&2; exit 1; }
    sleep 0.3
  done
  log "policy: mode $1"
}
set_mode neuter

# probe_called: does a dry-run Backup creation reach the guard now?
probe_called() {
  local before
  before=$(admission_requests)
  "$KUBECTL" create --dry-run=server -f - >/dev/null 2>&1 <<'EOF' || true
apiVersion: velero.io/v1
kind: Backup
metadata: {name: cascade-probe, namespace: velero}
EOF
  [ "$(admission_requests)" -gt "$before" ]
}

# webhooks on|off: register or remove the webhook configurations, and wait until the API server
# (which picks them up asynchronously) calls the guard, or no longer does.
webhooks() {
  local deadline=$((SECONDS + 60))
  if [ "$1" = on ]; then "$KUBECTL" apply -f "$WEBHOOKS" >/dev/null; else webhooks_unregister "$WORK"; fi
  while :; do
    if probe_called; then [ "$1" = on ] && return 0; else [ "$1" = off ] && return 0; fi
    [ $SECONDS -lt $deadline ] || { echo "the API server did not switch the webhooks $1 within 60s" >&2; return 1; }
    sleep 0.3
  done
}

# The series that prove the webhook was on the path, and what it cost.
DELETES=(backup_guard_admission_requests_total 'webhook="validate"' 'operation="DELETE"' 'resource="backups"')
GUARD_HIST=(backup_guard_admission_duration_seconds 'webhook="validate"')
# Every validating webhook on DELETE (the chart names them; in a with-round: the Backups' and the
# namespace's own).
API_HIST=(apiserver_admission_webhook_admission_duration_seconds 'type="validating"' 'operation="DELETE"')
# The guard's Events on the neutered DELETEs (posted off the request path, into the namespace
# being deleted).
EVENT_POSTS=(apiserver_request_total 'resource="events"' 'verb="POST"')

# --- rounds: without, with, without, with, … --------------------------------------------------
STAGE=rounds
with_times=() without_times=() off_times=() create_times=() calls_seen=()
api_n=0 api_s=0 guard_n=0 guard_s=0 events=0 refused=0
# add VAR DELTA: VAR += DELTA (floating point).
add() { printf -v "$1" '%s' "$(awk -v a="${!1}" -v b="$2" 'BEGIN { printf "%.10g", a + b }')"; }
# mean LIST…: the arithmetic mean.
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
for round in $(seq 1 "$ROUNDS"); do
  # off: the webhook registered, the guard answering allow and recording nothing — the cost of
  # the API server's calls alone, the floor under the figure on this machine.
  for kind in without with off; do
    ns="cascade-$round-$kind"
    # The same start for both kinds: the Backups are created without the webhook (faster; the
    # guard's index is fed by its watch either way), and the index has seen every one of them.
    webhooks off
    indexed=$(metric backup_guard_protected_objects 'resource="backups"')
    created=$("$E2E_PY" "$WORK/api.py" create "$ns" "$N" "$CREATE_THREADS")
    create_times+=("$created")
    deadline=$((SECONDS + 300))
    until [ "$(metric backup_guard_protected_objects 'resource="backups"')" -ge $((indexed + N)) ]; do
      [ $SECONDS -lt $deadline ] || { echo "the guard's index never saw the $N Backups of $ns" >&2; exit 1; }
      sleep 0.2
    done
    if [ "$kind" != without ]; then webhooks on; fi
    # After the webhooks are on: the probe that waits for them counts the guard's own metric,
    # which mode off does not record.
    if [ "$kind" = off ]; then set_mode off; fi
    sleep 2   # the two cores settle
    snap before
    secs=$("$E2E_PY" "$WORK/api.py" cascade "$ns" 1800)
    snap after

    calls=$(delta guard "${DELETES[@]}")
    if [ "$kind" = without ]; then
      [ "$calls" = 0 ] || { echo "round $round without: the guard reviewed $calls Backup DELETEs" >&2; exit 1; }
      without_times+=("$secs")
      log "round $round without: ${secs}s for $N backups (creation ${created}s)"
      continue
    fi
    if [ "$kind" = off ]; then
      set_mode neuter
      called=$(delta api "${API_HIST[0]}_count" "${API_HIST[@]:1}")
      [ "${called%.*}" -ge "$N" ] || { echo "round $round off: the API server called the webhooks $called times, not $N" >&2; exit 1; }
      off_times+=("$secs")
      log "round $round off: ${secs}s for $N backups (creation ${created}s); webhook calls seen by the API server $called, $(mean_ms api "${API_HIST[@]}") ms mean"
      continue
    fi
    neutered=$(delta guard "${DELETES[@]}" 'decision="neutered"')
    if [ "$calls" -lt "$N" ] || [ "$neutered" -lt "$N" ]; then
      echo "round $round with: the guard reviewed $calls Backup DELETEs ($neutered neutered), not $N: the webhook was not on the path" >&2
      exit 1
    fi
    with_times+=("$secs") calls_seen+=("$calls")
    add api_n "$(delta api "${API_HIST[0]}_count" "${API_HIST[@]:1}")"
    add api_s "$(delta api "${API_HIST[0]}_sum" "${API_HIST[@]:1}")"
    add guard_n "$(delta guard "${GUARD_HIST[0]}_count" "${GUARD_HIST[@]:1}")"
    add guard_s "$(delta guard "${GUARD_HIST[0]}_sum" "${GUARD_HIST[@]:1}")"
    add events "$(delta api "${EVENT_POSTS[@]}")"
    add refused "$(delta api "${EVENT_POSTS[@]}" 'code="403"')"
    log "round $round with: ${secs}s for $N backups (creation ${created}s); the guard reviewed $calls Backup DELETEs ($neutered neutered); webhook latency seen by the API server $(mean_ms api "${API_HIST[@]}") ms mean, the guard's handling $(mean_ms guard "${GUARD_HIST[@]}") ms mean; Event POSTs $(delta api "${EVENT_POSTS[@]}") ($(delta api "${EVENT_POSTS[@]}" 'code="403"') refused)"
  done
done

with_s=$(mean "${with_times[@]}") without_s=$(mean "${without_times[@]}")
ratio=$(awk -v a="$with_s" -v b="$without_s" 'BEGIN { printf "%.3f", a / b }')
if [ -n "$SMOKE" ]; then
  echo "BENCH_INFO ns_cascade_ratio $ratio ratio (smoke: $N backups, not the figure)"
else
  echo "BENCH ns_cascade_ratio $ratio ratio"
  if awk -v v="$ratio" -v t="$TARGET" 'BEGIN { exit !(v > t) }'; then
    echo "BENCH_MISS ns_cascade_ratio $ratio > $TARGET"
  fi
fi
off_s=$(mean "${off_times[@]}")
echo "BENCH_INFO ns_cascade_ratio_off $(awk -v a="$off_s" -v b="$without_s" 'BEGIN { printf "%.3f", a / b }') ratio (mode off ÷ without: the API server calling a webhook that only answers allow; ${off_s}s, rounds: ${off_times[*]})"
echo "BENCH_INFO ns_cascade_with_s $with_s s (neuter, $N backups; rounds: ${with_times[*]})"
echo "BENCH_INFO ns_cascade_without_s $without_s s (webhook configurations removed, $N backups; rounds: ${without_times[*]})"
echo "BENCH_INFO ns_cascade_webhook_calls ${calls_seen[*]} (Backup DELETEs the guard reviewed per with-round, for $N backups; Event POSTs $events, $refused refused)"
echo "BENCH_INFO ns_cascade_webhook_ms $(awk -v n="$api_n" -v s="$api_s" 'BEGIN { printf "%.3f", s * 1000 / n }') ms (mean webhook call seen by the API server; the guard's own handling $(awk -v n="$guard_n" -v s="$guard_s" 'BEGIN { printf "%.3f", s * 1000 / n }') ms)"
echo "BENCH_INFO ns_cascade_create_s $(mean "${create_times[@]}") s (creating the $N backups, $CREATE_THREADS connections, no webhook; not timed)"
STAGE=finished
