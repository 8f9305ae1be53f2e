# shellcheck shell=bash
# Shared by run.sh (the e2e suite) and demo.sh: bring up a cluster (or use $KUBECONFIG),
# install and start the guard, tear everything down by PID. Source it; it defines functions only.
#
# Two ways to install the guard (E2E_INSTALL; chosen in cluster_up, recorded in DIR/install-mode):
#   chart  (default on the local control plane, needs root and iproute2) the rendered chart
#          (hack/e2e/values.yaml) is applied for real: namespace, ServiceAccount, RBAC, Secrets,
#          policy ConfigMap, Service, webhook configurations. No kubelet runs, so the guard runs
#          as a process with the Deployment's args and Secret volumes (hack/e2e/chart.py), under
#          the chart ServiceAccount's token, in a network namespace the Service's Endpoints
#          point at: the API server calls it through the Service, as in a cluster
#          (../shared/docs/LOCAL-CLUSTER.md, "Webhooks by Service reference").
#   url    (default for a $KUBECONFIG cluster, e.g. kind) the guard runs on this machine with
#          the admin kubeconfig; the chart's webhook configurations register it by URL
#          (hack/e2e/chart.py url).
# Environment: E2E_INSTALL=chart|url, E2E_CERTS=generate|provided (chart mode: the chart
# generates the serving certificate, or `backup-guard certs` does and the chart gets it as
# provided), E2E_CHART_COMMAND (default run), RUST_LOG, E2E_GUARD_HOST (url mode).

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
E2E_PY=${BG_PYTHON:-/usr/bin/python3}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# shellcheck source=hack/cluster/netns.sh
source "$E2E_ROOT/hack/cluster/netns.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# install_mode DIR: chart or url, as cluster_up chose.
install_mode() { cat "$1/install-mode" 2>/dev/null || echo url; }

# cluster_up DIR: sets KUBECONFIG; starts a local control plane unless KUBECONFIG was given.
cluster_up() {
  local dir=$1 mode
  mkdir -p "$dir"
  if [ -n "${KUBECONFIG:-}" ] && [ -z "${E2E_OWN_CLUSTER:-}" ]; then
    log "using the cluster of \$KUBECONFIG ($KUBECONFIG)"
    export E2E_EXTERNAL=1
    mode=${E2E_INSTALL:-url}
    if [ "$mode" != url ]; then
      echo "E2E_INSTALL=$mode needs the local control plane (the guard must be reachable through the Service); use E2E_INSTALL=url with \$KUBECONFIG" >&2
      return 1
    fi
    echo url > "$dir/install-mode"
    "$KUBECTL" apply -f "$E2E_ROOT/hack/e2e/rbac.yaml" >/dev/null
    for d in "${VELERO_CRDS_DIR:-$E2E_ROOT/tests/crds}" "${SNAPSHOT_CRDS_DIR:-$E2E_ROOT/tests/crds}"; do
      "$KUBECTL" apply --validate=false -f "$d" >/dev/null
    done
    "$KUBECTL" create namespace velero --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
    e2e_sweep
    return
  fi
  mode=${E2E_INSTALL:-}
  if [ -z "$mode" ]; then
    if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then mode=chart; else
      log "installing by URL: chart mode needs root and iproute2 (a network namespace)"; mode=url
    fi
  fi
  case $mode in
    chart|url) ;;
    *) echo "E2E_INSTALL must be chart or url, not $mode" >&2; return 1 ;;
  esac
  echo "$mode" > "$dir/install-mode"
  "$E2E_ROOT/hack/cluster/build.sh"
  if [ "$mode" = chart ]; then
    # The guard in the network namespace reaches the API server on the host end of the veth.
    netns_up "$dir" bge 10.213
    log "network namespace $NETNS: host $NETNS_HOST_IP <-> guard $NETNS_GUARD_IP"
    BG_BIND_ADDRESS=$NETNS_HOST_IP "$E2E_ROOT/hack/cluster/up.sh" "$dir/cluster"
  else
    "$E2E_ROOT/hack/cluster/up.sh" "$dir/cluster"
  fi
  # shellcheck disable=SC1091
  source "$dir/cluster/env"
  export KUBECONFIG E2E_OWN_CLUSTER=1
  "$KUBECTL" apply -f "$E2E_ROOT/hack/e2e/rbac.yaml" >/dev/null
}

# guard_up DIR BINARY: the guard, ready and called by the API server (install mode of cluster_up).
# Exports E2E_METRICS_URL.
guard_up() {
  local dir=$1 bin=$2
  mkdir -p "$dir"
  case $(install_mode "$dir") in
    chart) guard_up_chart "$dir" "$bin" ;;
    *) guard_up_url "$dir" "$bin" ;;
  esac
}

# wait_ready DIR PID: the guard's /readyz at $E2E_METRICS_URL.
wait_ready() {
  local dir=$1 pid=$2
  for _ in $(seq 1 150); do
    if curl -fsS "$E2E_METRICS_URL/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$dir/guard.log" >&2; echo "backup-guard exited during start-up" >&2; return 1
    fi
    sleep 0.2
  done
  cat "$dir/guard.log" >&2; echo "backup-guard never became ready ($E2E_METRICS_URL/readyz)" >&2; return 1
}

# guard_up_url DIR BINARY: certificates, signing key, policy ConfigMap, the guard as a local
# process with the admin kubeconfig, webhooks by URL.
guard_up_url() {
  local dir=$1 bin=$2
  local host=${E2E_GUARD_HOST:-127.0.0.1}
  "$bin" certs --out "$dir/certs" --host "$host" >/dev/null
  head -c 32 /dev/urandom > "$dir/signing-key"
  "$KUBECTL" create namespace backup-guard --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  "$KUBECTL" -n backup-guard create configmap backup-guard-policy --from-literal=policy.yaml="mode: enforce" \
    --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  GUARD_PORT=$(free_port); METRICS_PORT=$(free_port)
  export GUARD_PORT METRICS_PORT
  export E2E_METRICS_URL="http://127.0.0.1:$METRICS_PORT"
  log "starting $bin run on $host:$GUARD_PORT (metrics $E2E_METRICS_URL)"
  RUST_LOG=${RUST_LOG:-info,kube=warn} "$bin" run --kubeconfig "$KUBECONFIG" \
    --listen "$host:$GUARD_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --tls-dir "$dir/certs" --signing-key "$dir/signing-key" \
    --policy-configmap backup-guard/backup-guard-policy --shutdown-delay-seconds 0 \
    > "$dir/guard.log" 2>&1 &
  GUARD_PID=$!
  echo "$GUARD_PID" > "$dir/guard.pid"
  wait_ready "$dir" "$GUARD_PID"
  webhooks_register "$dir" "https://$host:$GUARD_PORT"
}

# webhooks_register DIR URL: the chart's webhook configurations (same entries, rules, selectors
# and failure policies as an installed release), calling URL instead of the Service.
webhooks_register() {
  local dir=$1 url=$2 version
  # python, not jq: a $KUBECONFIG cluster skips hack/cluster/build.sh, which installs jq.
  version=$("$KUBECTL" version -o json 2>/dev/null |
    "$E2E_PY" -c 'import json, sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
  "$E2E_ROOT/hack/render/render.sh" "$E2E_ROOT/hack/e2e/values.yaml" --kube-version "$version" \
    > "$dir/render.yaml"
  "$E2E_PY" "$E2E_ROOT/hack/e2e/chart.py" url "$dir/render.yaml" "$url" "$dir/certs/ca.crt" "$dir"
  "$KUBECTL" apply -f "$dir/webhooks.yaml" >/dev/null
  log "webhooks registered at $url (the chart's entries, by URL)"
}

# guard_up_chart DIR BINARY: the rendered chart applied, the guard started from its Deployment
# in the network namespace under the chart's ServiceAccount, then the chart's webhook
# configurations, waited for until the API server calls the guard through the Service.
guard_up_chart() {
  local dir=$1 bin=$2 cdir=$1/chart version sets=() secret token deadline before
  # shellcheck disable=SC1091
  source "$dir/netns.env"
  mkdir -p "$cdir"
  version=$("$KUBECTL" version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)
  sets=(--set "command=${E2E_CHART_COMMAND:-run}")
  [ -n "${RUST_LOG:-}" ] && sets+=(--set-string "logLevel=$RUST_LOG")
  if [ "${E2E_CERTS:-generate}" = provided ]; then
    # The release's Service host: backup-guard.backup-guard.svc (release backup-guard).
    "$bin" certs --out "$dir/certs" --host backup-guard.backup-guard.svc >/dev/null
    sets+=(--set certs.mode=provided --set certs.provided.secretName=backup-guard-e2e-tls
      --set-string "certs.provided.caBundle=$(base64 -w0 < "$dir/certs/ca.crt")")
  fi
  log "rendering the chart (hack/e2e/values.yaml ${sets[*]//caBundle=*/caBundle=<ca.crt>} --kube-version $version)"
  "$E2E_ROOT/hack/render/render.sh" "$E2E_ROOT/hack/e2e/values.yaml" "${sets[@]}" \
    --kube-version "$version" > "$cdir/render.yaml"
  "$E2E_PY" "$E2E_ROOT/hack/e2e/chart.py" plan "$cdir/render.yaml" "$cdir" "$NETNS_GUARD_IP"
  # shellcheck disable=SC1091
  source "$cdir/plan.env"
  cp "$cdir/webhook-configs" "$dir/webhook-configs"

  log "applying the rendered chart (webhook configurations last), Endpoints -> $NETNS_GUARD_IP"
  "$KUBECTL" apply -f "$cdir/objects.yaml" >/dev/null
  # The suite signs stamps of its own in some scenarios: it reads the chart's key from here.
  "$KUBECTL" -n "$CHART_NAMESPACE" get secret backup-guard-signing-key -o jsonpath='{.data.key}' \
    | base64 -d > "$dir/signing-key"
  if [ "${E2E_CERTS:-generate}" = provided ]; then
    "$KUBECTL" -n "$CHART_NAMESPACE" create secret generic backup-guard-e2e-tls --type=kubernetes.io/tls \
      --from-file="$dir/certs/ca.crt" --from-file="$dir/certs/tls.crt" --from-file="$dir/certs/tls.key" \
      --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  fi

  # The token controller fills the ServiceAccount's token Secret (automatic on 1.20).
  deadline=$((SECONDS + 60))
  until secret=$("$KUBECTL" -n "$CHART_NAMESPACE" get serviceaccount "$CHART_SERVICE_ACCOUNT" \
      -o jsonpath='{.secrets[0].name}' 2>/dev/null) && [ -n "$secret" ] &&
    token=$("$KUBECTL" -n "$CHART_NAMESPACE" get secret "$secret" -o jsonpath='{.data.token}' 2>/dev/null) &&
    [ -n "$token" ]; do
    [ $SECONDS -lt $deadline ] || { echo "no token for ServiceAccount $CHART_NAMESPACE/$CHART_SERVICE_ACCOUNT within 60s" >&2; return 1; }
    sleep 0.5
  done
  ( umask 077; cat > "$cdir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://$NETNS_HOST_IP:$BG_API_PORT
    certificate-authority-data: $(base64 -w0 < "$BG_CA_FILE")
users:
- name: $CHART_SERVICE_ACCOUNT
  user:
    token: $(printf '%s' "$token" | base64 -d)
contexts:
- name: e2e
  context: {cluster: e2e, user: $CHART_SERVICE_ACCOUNT, namespace: $CHART_NAMESPACE}
current-context: e2e
EOF
  )
  # The guard runs as that ServiceAccount, with the chart's RBAC and nothing more.
  if "$KUBECTL" --kubeconfig "$cdir/kubeconfig" auth can-i '*' '*' -A >/dev/null 2>&1; then
    echo "the chart's ServiceAccount is cluster-admin: the e2e would not test the chart's RBAC" >&2
    return 1
  fi

  # The pod, as the kubelet would start it: Secret volumes, args, env.
  "$E2E_PY" "$E2E_ROOT/hack/e2e/chart.py" mount "$cdir/render.yaml" "$cdir/pod"
  local args=() env=()
  mapfile -d '' args < "$cdir/pod/args"
  mapfile -d '' env < "$cdir/pod/env"
  export E2E_METRICS_URL="http://$NETNS_GUARD_IP:$CHART_METRICS_PORT"
  log "starting $bin ${args[*]} in $NETNS as system:serviceaccount:$CHART_NAMESPACE:$CHART_SERVICE_ACCOUNT (metrics $E2E_METRICS_URL)"
  ip netns exec "$NETNS" env -i PATH="$PATH" HOME="$HOME" KUBECONFIG="$cdir/kubeconfig" "${env[@]}" \
    "$bin" "${args[@]}" > "$dir/guard.log" 2>&1 &
  GUARD_PID=$!
  echo "$GUARD_PID" > "$dir/guard.pid"
  wait_ready "$dir" "$GUARD_PID"

  "$KUBECTL" apply -f "$cdir/webhooks.yaml" >/dev/null
  # The API server picks up webhook configurations asynchronously: wait until a dry-run
  # Backup creation reaches the guard through the Service.
  before=$(admission_requests)
  deadline=$((SECONDS + 60))
  while :; do
    "$KUBECTL" create --dry-run=server -f - >/dev/null 2>&1 <<'EOF' || true
apiVersion: velero.io/v1
kind: Backup
metadata: {name: e2e-wiring-probe, namespace: velero}
EOF
    [ "$(admission_requests)" -gt "$before" ] && break
    [ $SECONDS -lt $deadline ] || { tail -20 "$dir/guard.log" >&2; echo "the API server never called the guard through Service $CHART_NAMESPACE/$CHART_SERVICE within 60s" >&2; return 1; }
    sleep 0.5
  done
  log "webhooks ($(paste -sd' ' "$dir/webhook-configs")) call the guard via https://$CHART_SERVICE_HOST -> $NETNS_GUARD_IP:$CHART_WEBHOOK_PORT"
}

# admission_requests: the guard's backup_guard_admission_requests_total, summed over its series.
admission_requests() {
  curl -fsS "$E2E_METRICS_URL/metrics" 2>/dev/null |
    awk '/^backup_guard_admission_requests_total/ {s += $NF} END {printf "%d\n", s}'
}

# webhooks_unregister [DIR]: delete the webhook configurations guard_up registered.
webhooks_unregister() {
  local dir=${1:-} c
  local configs=(validatingwebhookconfiguration/backup-guard mutatingwebhookconfiguration/backup-guard)
  if [ -n "$dir" ] && [ -s "$dir/webhook-configs" ]; then mapfile -t configs < "$dir/webhook-configs"; fi
  for c in "${configs[@]}"; do
    "$KUBECTL" delete "$c" --ignore-not-found >/dev/null
  done
}

# The label on everything the suite creates in a $KUBECONFIG cluster (tests/e2e/main.rs SUITE).
E2E_SUITE_LABEL=e2e.backup-guard.io/suite=true

# e2e_sweep: removes what a run of the suite made in a $KUBECONFIG cluster, so that the next run
# starts clean: before a run (what a run that died left) and after one. The guard's webhooks
# are unregistered first (its Backups are protected, and a dead guard would fail every call
# closed), and finalizers stripped (no controller is left to remove backup-guard.io/cleanup, nor
# Velero's from the Restores). Only objects carrying the label, and everything in the namespaces
# that carry it; never run against the local control plane (a new one each run).
e2e_sweep() {
  local kinds=backups.velero.io,restores.velero.io,deletebackuprequests.velero.io ns obj
  webhooks_unregister
  for ns in $("$KUBECTL" get namespaces -l "$E2E_SUITE_LABEL" -o name | cut -d/ -f2); do
    for obj in $("$KUBECTL" -n "$ns" get "$kinds" -o name); do
      "$KUBECTL" -n "$ns" patch "$obj" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
    done
  done
  # Each resource by its full name: other operators (Longhorn, K8up, …) have kinds Backup too.
  local resource
  for resource in ${kinds//,/ } backupstoragelocations.velero.io podvolumebackups.velero.io \
    volumesnapshots.snapshot.storage.k8s.io; do
    "$KUBECTL" get "$resource" -A -l "$E2E_SUITE_LABEL" \
      -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' |
      while read -r ns obj; do
        "$KUBECTL" -n "$ns" patch "$resource" "$obj" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null
        "$KUBECTL" -n "$ns" delete "$resource" "$obj" --ignore-not-found --wait=false >/dev/null
      done
  done
  "$KUBECTL" delete volumesnapshotcontents.snapshot.storage.k8s.io -l "$E2E_SUITE_LABEL" --ignore-not-found >/dev/null
  # Waits for the namespaces to go: a namespace still terminating refuses the next run's objects.
  "$KUBECTL" delete namespaces -l "$E2E_SUITE_LABEL" --ignore-not-found --timeout=180s >/dev/null
}

# teardown DIR: the guard by PID, then the cluster we started (never an external one), then
# the network namespace.
teardown() {
  local dir=$1
  if [ -f "$dir/guard.pid" ]; then
    local pid; pid=$(cat "$dir/guard.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/guard.pid"
  fi
  if [ -n "${E2E_OWN_CLUSTER:-}" ] && [ -d "$dir/cluster" ]; then
    "$E2E_ROOT/hack/cluster/down.sh" "$dir/cluster" >/dev/null 2>&1 || true
  elif [ -n "${E2E_EXTERNAL:-}" ]; then
    webhooks_unregister "$dir" || true
    e2e_sweep || log "could not remove everything the suite made (label $E2E_SUITE_LABEL)"
  fi
  netns_down "$dir"
}
