#!/usr/bin/env bash
# make demo: the seed scenario end to end, on a local control plane and local storage.
#   hack/e2e/demo.sh        bring everything up and walk through the scenario (leaves it running)
#   hack/e2e/demo.sh stop   stop the guard and the control plane
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/e2e/lib.sh
source "$here/lib.sh"
dir=${DEMO_DIR:-$E2E_ROOT/.demo}
export E2E_OWN_CLUSTER=1

if [ "${1:-}" = stop ]; then
  teardown "$dir"; echo "demo stopped"; exit 0
fi
if [ -f "$dir/guard.pid" ]; then teardown "$dir"; fi
rm -rf "$dir"; mkdir -p "$dir"
trap 'echo "demo failed; cleaning up" >&2; teardown "$dir"' ERR

show() { printf '\n\033[1;34m$ %s\033[0m\n' "$*"; }
as_alice() { show "kubectl $* (as alice)"; "$KUBECTL" --as=alice --as-group=backup-operators "$@" 2>&1 || true; }
velero_apply() { "$KUBECTL" --as=system:serviceaccount:velero:velero apply -f - >/dev/null; }

log "building backup-guard"
cargo build --locked --bin backup-guard
unset KUBECONFIG
cluster_up "$dir"
guard_up "$dir" "$E2E_ROOT/target/debug/backup-guard"

log "a local backup store in Velero's layout: $dir/storage"
store="$dir/storage/velero-backups/cluster-a"
for b in daily-1 daily-2 weekly-1; do
  mkdir -p "$store/backups/$b"
  for f in velero-backup.json "$b.tar.gz" "$b-logs.gz" "$b-results.gz" "$b-volumesnapshots.json.gz" "$b-resource-list.json.gz"; do
    head -c 512 /dev/urandom > "$store/backups/$b/$f"
  done
done
mkdir -p "$store/kopia/default" && head -c 1024 /dev/urandom > "$store/kopia/default/p0001"
(cd "$dir/storage" && find . -type f -exec sha256sum {} + | sort -k2) > "$dir/storage.before"

velero_apply <<YAML
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec: {provider: file, objectStorage: {bucket: velero-backups, prefix: cluster-a}, config: {root: "$dir/storage"}, default: true}
YAML
for b in daily-1 daily-2 weekly-1; do
  velero_apply <<YAML
apiVersion: velero.io/v1
kind: Backup
metadata: {name: $b, namespace: velero, labels: {velero.io/storage-location: default}}
spec: {storageLocation: default, ttl: 720h0m0s}
status: {phase: Completed, expiration: "2099-01-01T00:00:00Z"}
YAML
done
sleep 2
show "kubectl -n velero get backups"; "$KUBECTL" -n velero get backups

log "1. The incident: someone deletes the Velero namespace to test disaster recovery (mode enforce)"
as_alice delete namespace velero
show "kubectl get namespace velero"; "$KUBECTL" get namespace velero

log "2. kubectl delete backup, and velero backup delete (a DeleteBackupRequest)"
as_alice -n velero delete backup daily-1
show "velero backup delete daily-1   (creates a DeleteBackupRequest, as alice)"
"$KUBECTL" --as=alice --as-group=backup-operators create -f - 2>&1 <<YAML || true
apiVersion: velero.io/v1
kind: DeleteBackupRequest
metadata: {generateName: daily-1-, namespace: velero, labels: {velero.io/backup-name: daily-1}}
spec: {backupName: daily-1}
YAML

log "3. The same in neuter mode: the shadow may go, the record stays"
"$KUBECTL" -n backup-guard create configmap backup-guard-policy --from-literal=policy.yaml="mode: neuter" \
  --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
sleep 3
as_alice delete namespace velero --wait=true --timeout=60s
show "kubectl get namespace velero"; "$KUBECTL" get namespace velero 2>&1 || true
(cd "$dir/storage" && find . -type f -exec sha256sum {} + | sort -k2) > "$dir/storage.after"
show "diff storage.before storage.after   (every file, by SHA-256)"
if diff "$dir/storage.before" "$dir/storage.after"; then
  echo "identical: $(wc -l < "$dir/storage.after") files, nothing was cleaned"
else
  echo "STORAGE CHANGED" >&2; exit 1
fi

cat <<EOF

The guard is still running. Look around:
  curl -s $E2E_METRICS_URL/metrics | grep backup_guard_
  KUBECONFIG=$KUBECONFIG kubectl get events -A --field-selector reason=DeletionBlocked
  tail -f $dir/guard.log
Stop everything with:
  hack/e2e/demo.sh stop
EOF
trap - ERR
