# Shared by run.sh (the e2e suite) and demo.sh: bring up a cluster (or use $KUBECONFIG),
# start the guard as a process, register its webhooks, tear everything down by PID.
# Source it; it defines functions only.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KUBECTL=${KUBECTL:-/usr/bin/kubectl}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cluster_up DIR: sets KUBECONFIG; starts a local control plane unless KUBECONFIG was given.
cluster_up() {
  local dir=$1
  if [ -n "${KUBECONFIG:-}" ] && [ -z "${E2E_OWN_CLUSTER:-}" ]; then
    log "using the cluster of \$KUBECONFIG ($KUBECONFIG)"
    export E2E_EXTERNAL=1
    "$KUBECTL" apply -f "$E2E_ROOT/hack/e2e/rbac.yaml" >/dev/null
    for d in "${VELERO_CRDS_DIR:-$E2E_ROOT/tests/crds}" "${SNAPSHOT_CRDS_DIR:-$E2E_ROOT/tests/crds}"; do
      "$KUBECTL" apply --validate=false -f "$d" >/dev/null
    done
    "$KUBECTL" create namespace velero --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
    return
  fi
  "$E2E_ROOT/hack/cluster/build.sh"
  "$E2E_ROOT/hack/cluster/up.sh" "$dir/cluster"
  # shellcheck disable=SC1091
  source "$dir/cluster/env"
  export KUBECONFIG E2E_OWN_CLUSTER=1
  "$KUBECTL" apply -f "$E2E_ROOT/hack/e2e/rbac.yaml" >/dev/null
}

# guard_up DIR BINARY: certificates, signing key, policy ConfigMap, the guard process, webhooks.
guard_up() {
  local dir=$1 bin=$2
  local host=${E2E_GUARD_HOST:-127.0.0.1}
  mkdir -p "$dir"
  "$bin" certs --out "$dir/certs" --host "$host" >/dev/null
  head -c 32 /dev/urandom > "$dir/signing-key"
  "$KUBECTL" create namespace backup-guard --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  "$KUBECTL" -n backup-guard create configmap backup-guard-policy --from-literal=policy.yaml="mode: enforce" \
    --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  GUARD_PORT=$(free_port); METRICS_PORT=$(free_port)
  export GUARD_PORT METRICS_PORT
  export E2E_METRICS_URL="http://127.0.0.1:$METRICS_PORT"
  log "starting backup-guard webhook on $host:$GUARD_PORT (metrics $E2E_METRICS_URL)"
  RUST_LOG=${RUST_LOG:-info,kube=warn} "$bin" webhook --kubeconfig "$KUBECONFIG" \
    --listen "$host:$GUARD_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --tls-dir "$dir/certs" --signing-key "$dir/signing-key" \
    --policy-configmap backup-guard/backup-guard-policy --shutdown-delay-seconds 0 \
    > "$dir/guard.log" 2>&1 &
  GUARD_PID=$!
  echo "$GUARD_PID" > "$dir/guard.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "$E2E_METRICS_URL/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$GUARD_PID" 2>/dev/null; then
      cat "$dir/guard.log" >&2; echo "backup-guard exited during start-up" >&2; return 1
    fi
    sleep 0.2
  done
  curl -fsS "$E2E_METRICS_URL/readyz" >/dev/null || { cat "$dir/guard.log" >&2; echo "backup-guard never became ready" >&2; return 1; }
  webhooks_register "$dir" "https://$host:$GUARD_PORT"
}

# webhooks_register DIR URL: one entry per guarded path, failurePolicy Fail.
webhooks_register() {
  local dir=$1 url=$2 ca
  ca=$(base64 -w0 < "$dir/certs/ca.crt")
  sed -e "s|@URL@|$url|g" -e "s|@CA@|$ca|g" "$E2E_ROOT/hack/e2e/webhooks.yaml" > "$dir/webhooks.yaml"
  "$KUBECTL" apply -f "$dir/webhooks.yaml" >/dev/null
  log "webhooks registered at $url"
}

webhooks_unregister() {
  "$KUBECTL" delete validatingwebhookconfiguration backup-guard --ignore-not-found >/dev/null
  "$KUBECTL" delete mutatingwebhookconfiguration backup-guard --ignore-not-found >/dev/null
}

# teardown DIR: the guard by PID, then the cluster we started (never an external one).
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
    webhooks_unregister || true
  fi
}
