#!/usr/bin/env bash
# Re-capture the real AdmissionReview fixtures in tests/fixtures/admission/
# and the object dumps in tests/fixtures/objects/ from a real kube-apiserver
# 1.20.2 (hack/cluster/up.sh) with the REAL Velero / CSI snapshot CRDs.
#
#   hack/cluster/capture-fixtures.sh [WORKDIR]
#
# WORKDIR (default: a fresh mktemp dir) holds the cluster state, logs and every
# raw recording (WORKDIR/recordings/all/). The cluster is stopped on exit
# (BG_KEEP_CLUSTER=1 keeps it running).
#
# Environment:
#   VELERO_CRDS_DIR    default <repo>/../shared/fixtures/velero-crds
#   SNAPSHOT_CRDS_DIR  default <repo>/../shared/fixtures/snapshot-crds
#   FIXTURES_OUT       default <repo>/tests/fixtures/admission
#   OBJECTS_OUT        default <repo>/tests/fixtures/objects
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export VELERO_CRDS_DIR=${VELERO_CRDS_DIR:-$REPO/../shared/fixtures/velero-crds}
export SNAPSHOT_CRDS_DIR=${SNAPSHOT_CRDS_DIR:-$REPO/../shared/fixtures/snapshot-crds}
export LOAD_CRDS=1
OUT=${FIXTURES_OUT:-$REPO/tests/fixtures/admission}
OBJ=${OBJECTS_OUT:-$REPO/tests/fixtures/objects}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
PY=$(command -v /usr/bin/python3 || command -v python3)

DIR=${1:-$(mktemp -d /tmp/bg-capture.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
REC=$DIR/recordings
STAGE=$DIR/staged

log() { printf '[capture %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[capture] ERROR: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [[ ${BG_KEEP_CLUSTER:-0} == 1 ]]; then
    log "cluster kept running in $DIR (stop: hack/cluster/down.sh $DIR)"
  else
    "$HERE/down.sh" "$DIR" || true
  fi
  ((rc == 0)) || log "FAILED (exit $rc); logs in $DIR/logs, raw recordings in $REC/all"
}
trap cleanup EXIT

"$HERE/up.sh" "$DIR"
# shellcheck disable=SC1091
source "$DIR/env"

as() { local who=$1; shift; "$KUBECTL" --kubeconfig "$DIR/kubeconfig${who:+-$who}" "$@"; }
admin() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

# ------------------------------------------------------------ recorder
log "starting the recording webhook"
PKI=$DIR/recorder-pki
mkdir -p "$PKI" "$REC/all" "$STAGE"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bg-recorder-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$PKI/tls.key" -out "$PKI/tls.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$PKI/ext"
openssl x509 -req -in "$PKI/tls.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 3650 -extfile "$PKI/ext" -out "$PKI/tls.crt" 2>/dev/null

rm -f "$DIR/recorder.port"
setsid "$PY" "$HERE/recorder.py" --cert "$PKI/tls.crt" --key "$PKI/tls.key" --port 0 \
  --out "$REC" --port-file "$DIR/recorder.port" </dev/null >"$DIR/logs/recorder.log" 2>&1 &
echo "recorder.py $!" >>"$DIR/pids"
for _ in $(seq 50); do [[ -s $DIR/recorder.port ]] && break; sleep 0.1; done
[[ -s $DIR/recorder.port ]] || die "recorder did not start (see $DIR/logs/recorder.log)"
RPORT=$(cat "$DIR/recorder.port")
CA_B64=$(base64 -w0 <"$PKI/ca.crt")
log "recorder on https://127.0.0.1:$RPORT"

rules() {
  cat <<'EOF'
  rules:
  - apiGroups: ["velero.io"]
    apiVersions: ["*"]
    resources: ["backups", "deletebackuprequests", "backupstoragelocations"]
    operations: ["CREATE", "UPDATE", "DELETE"]
    scope: "*"
  - apiGroups: ["snapshot.storage.k8s.io"]
    apiVersions: ["*"]
    resources: ["volumesnapshots", "volumesnapshotcontents"]
    operations: ["CREATE", "UPDATE", "DELETE"]
    scope: "*"
  - apiGroups: ["apiextensions.k8s.io"]
    apiVersions: ["*"]
    resources: ["customresourcedefinitions"]
    operations: ["CREATE", "UPDATE", "DELETE"]
    scope: "*"
  - apiGroups: [""]
    apiVersions: ["*"]
    resources: ["namespaces"]
    operations: ["CREATE", "UPDATE", "DELETE"]
    scope: "*"
EOF
}
admin apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: bg-recorder
webhooks:
- name: validate.recorder.backup-guard.io
  clientConfig:
    url: https://127.0.0.1:$RPORT/validate
    caBundle: $CA_B64
$(rules)
  sideEffects: None
  admissionReviewVersions: ["v1"]
  failurePolicy: Fail
  timeoutSeconds: 10
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: bg-recorder
webhooks:
- name: mutate.recorder.backup-guard.io
  clientConfig:
    url: https://127.0.0.1:$RPORT/mutate
    caBundle: $CA_B64
$(rules)
  sideEffects: None
  admissionReviewVersions: ["v1"]
  failurePolicy: Fail
  timeoutSeconds: 10
  reinvocationPolicy: Never
EOF

# The API server picks webhook configurations up asynchronously: probe with a
# server-side dry-run namespace create until both webhooks were called.
probe_ok() {
  admin create namespace bg-probe --dry-run=server >/dev/null 2>&1 || return 1
  compgen -G "$REC/*-validate-CREATE-namespaces-bg-probe.json" >/dev/null &&
    compgen -G "$REC/*-mutate-CREATE-namespaces-bg-probe.json" >/dev/null
}
for i in $(seq 60); do probe_ok && break; sleep 0.5; done
probe_ok || die "webhooks never called (see $DIR/logs/recorder.log)"
log "webhooks active"

# ------------------------------------------------------------ helpers
# clear: move everything recorded so far to all/ (kept for inspection)
clear_rec() { find "$REC" -maxdepth 1 -name '*.json' -exec mv -t "$REC/all/" {} + ; }

# grab GLOB DEST [TIMEOUT]: wait for a recording matching GLOB (first in order)
grab() {
  local glob=$1 dest=$2 timeout=${3:-20} f="" i
  for ((i = 0; i < timeout * 10; i++)); do
    f=$(compgen -G "$REC/$glob" | sort | head -n1 || true)
    [[ -n $f ]] && break
    sleep 0.1
  done
  [[ -n $f ]] || die "no recording matching $glob for $dest (have: $(cd "$REC" && compgen -G '*.json' | tr '\n' ' '))"
  cp "$f" "$STAGE/$dest"
  log "  -> $dest  ($(basename "$f"))"
}

ts() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

# backup NAME START(relative date) [extra labels yaml lines...]
backup_yaml() {
  local name=$1 start=$2 extra_labels=${3:-} extra_meta=${4:-}
  local e st ct ex
  e=$(date -u -d "$start" +%s)
  st=$(ts "@$e"); ct=$(ts "@$((e + 83))"); ex=$(ts "@$((e + 720 * 3600))")
  cat <<EOF
apiVersion: velero.io/v1
kind: Backup
metadata:
  name: $name
  namespace: velero
  labels:
    velero.io/storage-location: default
$extra_labels
  annotations:
    velero.io/resource-timeout: 10m0s
    velero.io/source-cluster-k8s-gitversion: v1.20.2
    velero.io/source-cluster-k8s-major-version: "1"
    velero.io/source-cluster-k8s-minor-version: "20"
$extra_meta
spec:
  csiSnapshotTimeout: 10m0s
  defaultVolumesToFsBackup: false
  hooks: {}
  includedNamespaces:
  - '*'
  itemOperationTimeout: 4h0m0s
  metadata: {}
  snapshotMoveData: false
  storageLocation: default
  ttl: 720h0m0s
  volumeSnapshotLocations:
  - default
status:
  completionTimestamp: "$ct"
  expiration: "$ex"
  formatVersion: 1.1.0
  hookStatus: {}
  phase: Completed
  progress:
    itemsBackedUp: 214
    totalItems: 214
  startTimestamp: "$st"
  version: 1
  volumeSnapshotsAttempted: 2
  volumeSnapshotsCompleted: 2
EOF
}

# ------------------------------------------------------------ objects
log "creating BackupStorageLocation default, Schedule nightly and Backups (as the velero service account)"
as velero create --field-manager=velero-server -f - >/dev/null <<EOF
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata:
  name: default
  namespace: velero
spec:
  provider: aws
  default: true
  accessMode: ReadWrite
  objectStorage:
    bucket: velero-backups
    prefix: cluster-a
  config:
    region: us-east-1
    s3Url: https://s3.us-east-1.amazonaws.com
    s3ForcePathStyle: "true"
status:
  phase: Available
  lastValidationTime: "$(ts '-30 seconds')"
---
apiVersion: velero.io/v1
kind: Schedule
metadata:
  name: nightly
  namespace: velero
spec:
  schedule: 0 1 * * *
  useOwnerReferencesInBackup: true
  template:
    includedNamespaces:
    - '*'
    storageLocation: default
    ttl: 720h0m0s
status:
  phase: Enabled
  lastBackup: "$(ts 'today 01:00')"
EOF
SCHEDULE_UID=$(admin -n velero get schedule nightly -o jsonpath='{.metadata.uid}')
NIGHTLY=nightly-$(date -u -d 'today 01:00' +%Y%m%d%H%M%S)

{
  backup_yaml daily-1 "-3 days 02:00"; echo "---"
  backup_yaml daily-2 "-2 days 02:00"; echo "---"
  backup_yaml daily-3 "-1 days 02:00"; echo "---"
  backup_yaml weekly-1 "-14 days 03:00"; echo "---"
  backup_yaml weekly-2 "-7 days 03:00"; echo "---"
  backup_yaml weekly-3 "-21 days 03:00" "    backup-guard.io/hold: \"true\""; echo "---"
  backup_yaml monthly-1 "-20 days 04:00"; echo "---"
  backup_yaml "$NIGHTLY" "today 01:00" "    velero.io/schedule-name: nightly" \
"  ownerReferences:
  - apiVersion: velero.io/v1
    kind: Schedule
    name: nightly
    uid: $SCHEDULE_UID
    controller: true
    blockOwnerDeletion: true"
} | as velero create --field-manager=velero-server -f - >/dev/null

log "creating namespace app with a VolumeSnapshot (admin)"
admin create namespace app >/dev/null
admin apply -f - >/dev/null <<EOF
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: csi-aws-vsc
  labels:
    velero.io/csi-volumesnapshot-class: "true"
driver: ebs.csi.aws.com
deletionPolicy: Delete
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: velero-data-postgres-0-x7k2p
  namespace: app
  labels:
    velero.io/backup-name: daily-2
spec:
  volumeSnapshotClassName: csi-aws-vsc
  source:
    persistentVolumeClaimName: data-postgres-0
EOF

mkdir -p "$OBJ"
log "saving object dumps"
admin get backups,backupstoragelocations -n velero -o yaml >"$STAGE/velero-namespace.yaml"
# Backups have no status subresource on the real CRD: status is part of the main resource.
admin get crd backups.velero.io -o jsonpath='{.spec.versions[*].subresources}' >"$DIR/backups-subresources.txt" || true

clear_rec

# ------------------------------------------------------------ 2 + 1
log "2. alice: kubectl -n velero delete backup daily-1 --dry-run=server"
as alice -n velero delete backup daily-1 --dry-run=server >&2
grab '*-validate-DELETE-backups-daily-1.json' delete-backup-dry-run.json
clear_rec

log "1. alice: kubectl -n velero delete backup daily-1"
as alice -n velero delete backup daily-1 >&2
grab '*-validate-DELETE-backups-daily-1.json' delete-backup-by-user.json
clear_rec

# ------------------------------------------------------------ 6
log "6. alice annotates daily-2 backup-guard.io/delete-request; bob approves"
as alice -n velero annotate backup daily-2 'backup-guard.io/delete-request=no longer needed' >&2
grab '*-mutate-UPDATE-backups-daily-2.json' update-backup-delete-request.json
clear_rec
as bob -n velero annotate backup daily-2 backup-guard.io/delete-approval=ok >&2
grab '*-mutate-UPDATE-backups-daily-2.json' update-backup-delete-approval.json
clear_rec

# ------------------------------------------------------------ 7
log "7. mallory forges backup-guard.io/delete-requested-by=admin on daily-3"
as mallory -n velero annotate backup daily-3 backup-guard.io/delete-requested-by=admin >&2
grab '*-validate-UPDATE-backups-daily-3.json' update-backup-forged-stamp.json
clear_rec

# ------------------------------------------------------------ 8
log "8. alice shortens weekly-1's ttl; moves weekly-2's status.expiration earlier"
as alice -n velero patch backup weekly-1 --type merge -p '{"spec":{"ttl":"1h0m0s"}}' >&2
grab '*-validate-UPDATE-backups-weekly-1.json' update-backup-shorten-ttl.json
clear_rec
as alice -n velero patch backup weekly-2 --type merge \
  -p "{\"status\":{\"expiration\":\"$(ts '+1 hour')\"}}" >&2
grab '*-validate-UPDATE-backups-weekly-2.json' update-backup-expiration-earlier.json
clear_rec
# And --subresource=status (what kubectl would use for a status subresource):
if as alice -n velero patch backup weekly-2 --subresource=status --type merge \
     -p '{"status":{"phase":"Deleting"}}' >"$DIR/status-subresource-patch.txt" 2>&1; then
  log "   (note: status subresource patch unexpectedly succeeded)"
else
  log "   (status subresource patch refused: $(tr '\n' ' ' <"$DIR/status-subresource-patch.txt"))"
fi
clear_rec

# ------------------------------------------------------------ 9
log "9. mallory removes label backup-guard.io/hold from weekly-3"
as mallory -n velero label backup weekly-3 backup-guard.io/hold- >&2
grab '*-validate-UPDATE-backups-weekly-3.json' update-backup-remove-hold.json
clear_rec

# ------------------------------------------------------------ 4
MONTHLY_UID=$(admin -n velero get backup monthly-1 -o jsonpath='{.metadata.uid}')
dbr_yaml() {
  cat <<EOF
apiVersion: velero.io/v1
kind: DeleteBackupRequest
metadata:
  generateName: monthly-1-
  namespace: velero
  labels:
    velero.io/backup-name: monthly-1
    velero.io/backup-uid: $MONTHLY_UID
spec:
  backupName: monthly-1
EOF
}
log "4. DeleteBackupRequest for monthly-1 by alice (as 'velero backup delete') and by the velero service account"
dbr_yaml | as alice create --field-manager=velero -f - >&2
grab '*-validate-CREATE-deletebackuprequests-monthly-1-*.json' create-dbr-by-user.json
clear_rec
dbr_yaml | as velero create --field-manager=velero-server -f - >&2
grab '*-validate-CREATE-deletebackuprequests-monthly-1-*.json' create-dbr-by-velero.json
clear_rec

# ------------------------------------------------------------ 10
log "10. alice deletes BackupStorageLocation default"
as alice -n velero delete backupstoragelocation default >&2
grab '*-validate-DELETE-backupstoragelocations-default.json' delete-bsl-default.json
clear_rec

# ------------------------------------------------------------ 11
log "11. VolumeSnapshotContent with deletionPolicy Delete (velero SA), delete it and a VolumeSnapshot (alice)"
VS_UID=$(admin -n app get volumesnapshot velero-data-postgres-0-x7k2p -o jsonpath='{.metadata.uid}')
as velero create --field-manager=velero-server -f - >&2 <<EOF
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotContent
metadata:
  name: snapcontent-$VS_UID
  labels:
    velero.io/backup-name: daily-2
spec:
  deletionPolicy: Delete
  driver: ebs.csi.aws.com
  source:
    snapshotHandle: snap-0a1b2c3d4e5f67890
  volumeSnapshotClassName: csi-aws-vsc
  volumeSnapshotRef:
    apiVersion: snapshot.storage.k8s.io/v1
    kind: VolumeSnapshot
    name: velero-data-postgres-0-x7k2p
    namespace: app
    uid: $VS_UID
EOF
grab '*-mutate-CREATE-volumesnapshotcontents-snapcontent-*.json' create-vsc-delete-policy.json
clear_rec
as alice delete volumesnapshotcontent "snapcontent-$VS_UID" >&2
grab '*-validate-DELETE-volumesnapshotcontents-snapcontent-*.json' delete-vsc.json
clear_rec
as alice -n app delete volumesnapshot velero-data-postgres-0-x7k2p >&2
grab '*-validate-DELETE-volumesnapshots-velero-data-postgres-0-x7k2p.json' delete-vs.json
clear_rec

# ------------------------------------------------------------ 12
log "12. alice deletes Schedule nightly (default propagation); the garbage collector deletes $NIGHTLY"
as alice -n velero delete schedule nightly >&2
grab "*-validate-DELETE-backups-$NIGHTLY.json" delete-backup-garbage-collector.json 180
clear_rec

# ------------------------------------------------------------ 3
log "3. alice: kubectl delete ns velero (namespace controller deletes the remaining backups)"
as alice delete namespace velero --timeout=180s >&2
grab '*-validate-DELETE-namespaces-velero.json' delete-namespace-velero.json
grab '*-validate-DELETE-backups.json' delete-backup-namespace-cascade.json
clear_rec

# ------------------------------------------------------------ 5
# The real backups CRD is third-party data (Velero, Apache-2.0) that must not be
# copied into the project, and a CRD DELETE carries the whole CRD as oldObject.
# So the CRD fixtures are taken from our own minimal CRD (tests/crds/), created
# with `kubectl create` as `velero install` creates CRDs (no last-applied
# annotation); the AdmissionReview shape is the same.
log "5. swap in our minimal backups CRD, dump it, then admin deletes CRD backups.velero.io"
admin delete crd backups.velero.io --timeout=120s >/dev/null
admin create -f "$REPO/tests/crds/velero.io_backups.yaml" >/dev/null
admin wait --for condition=Established --timeout=60s crd/backups.velero.io >/dev/null
admin get crd backups.velero.io -o yaml >"$STAGE/crd-backups.yaml"
clear_rec
admin delete crd backups.velero.io --timeout=120s >&2
grab '*-validate-DELETE-customresourcedefinitions-backups.velero.io.json' delete-crd-backups.json
clear_rec

# ------------------------------------------------------------ checks + install
log "checking that no token leaked into the fixtures"
for t in "$BG_ADMIN_TOKEN" "$BG_ALICE_TOKEN" "$BG_BOB_TOKEN" "$BG_MALLORY_TOKEN" "$BG_VELERO_SA_TOKEN"; do
  if grep -rlF -- "$t" "$STAGE" >/dev/null; then
    die "a token appears in $(grep -rlF -- "$t" "$STAGE" | tr '\n' ' ')"
  fi
  # also the base64 of the token (Secrets)
  if grep -rlF -- "$(printf %s "$t" | base64 -w0)" "$STAGE" >/dev/null; then
    die "a base64 token appears in the fixtures"
  fi
done
for f in "$STAGE"/*.json; do "$PY" -m json.tool "$f" >/dev/null || die "$f is not valid JSON"; done

mkdir -p "$OUT" "$OBJ"
mv "$STAGE/velero-namespace.yaml" "$STAGE/crd-backups.yaml" "$OBJ/"
mv "$STAGE"/*.json "$OUT/"
log "fixtures written: $(compgen -G "$OUT/*.json" | wc -l) JSON in $OUT, objects in $OBJ"
log "raw recordings: $REC/all"
