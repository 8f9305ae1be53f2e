#!/usr/bin/env bash
# Fail when the committed manifests/ differ from what the chart renders now.
#   hack/render/check-drift.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export LOG_TAG=drift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$RENDER_DIR/update-manifests.sh" "$tmp" >/dev/null
rc=0
for f in backup-guard.yaml self-signed/backup-guard.yaml monitoring/monitoring.yaml; do
  if [[ ! -f $REPO/manifests/$f ]]; then
    log "manifests/$f is missing"; rc=1; continue
  fi
  if ! diff -u --label "manifests/$f (committed)" --label "manifests/$f (rendered now)" \
      "$REPO/manifests/$f" "$tmp/$f"; then
    rc=1
  fi
done
if ((rc)); then
  die "manifests/ drifted from charts/backup-guard: run hack/render/update-manifests.sh and commit the result"
fi
log "manifests/ match the chart"
