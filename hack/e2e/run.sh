#!/usr/bin/env bash
# make e2e: the scenario suite against a real kube-apiserver, with the real kubectl.
# Uses $KUBECONFIG when set (guard registered by URL), else brings up the local control plane
# (hack/cluster) and installs the guard from the rendered chart (see lib.sh; E2E_INSTALL=url
# for the by-URL install there too).
# Afterwards it proves the suite can fail: without the webhook registered, the core scenarios must fail.
# E2E_GUARD_BIN: the guard binary to run (default the debug build; make static passes the musl one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/e2e/lib.sh
source "$here/lib.sh"
dir=${E2E_DIR:-$E2E_ROOT/.e2e}
rm -rf "$dir"; mkdir -p "$dir"
trap 'teardown "$dir"' EXIT
command -v curl >/dev/null || apt-get install -y curl >/dev/null

log "building backup-guard and the e2e suite"
cargo build --locked --bin backup-guard
cargo test --locked --features e2e --test e2e --test controller_cluster --no-run
cluster_up "$dir"
log "controller against the real API server and real storage (before the guard: it signs with its own key)"
cargo test --locked --features e2e --test controller_cluster
guard_up "$dir" "${E2E_GUARD_BIN:-$E2E_ROOT/target/debug/backup-guard}"

log "running the scenarios"
export E2E_GUARD_LOG="$dir/guard.log"
if ! cargo test --locked --features e2e --test e2e -- --test-threads=1; then
  echo "--- guard log (tail) ---"; tail -50 "$dir/guard.log"; exit 1
fi

log "proof: without the webhook configurations ($(paste -sd' ' "$dir/webhook-configs")), the guard's scenarios must fail"
webhooks_unregister "$dir"
if E2E_EXPECT_UNGUARDED=1 cargo test --locked --features e2e --test e2e -- --test-threads=1 seed_ kubectl_delete_backup_ velero_backup_delete_ >"$dir/unguarded.log" 2>&1; then
  cat "$dir/unguarded.log"; echo "the scenarios passed without the webhook: they prove nothing" >&2; exit 1
fi
grep -E "^test .* FAILED$" "$dir/unguarded.log" || true
log "e2e ($(install_mode "$dir") install): passed, and fails without the guard as it must (${SECONDS}s)"
