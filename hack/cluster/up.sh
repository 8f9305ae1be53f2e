#!/usr/bin/env bash
# Start a real Kubernetes 1.20.2 control plane (etcd + kube-apiserver +
# kube-controller-manager) on loopback, with token users, RBAC and the Velero /
# CSI snapshot CRDs. See ../shared/docs/LOCAL-CLUSTER.md.
#
#   hack/cluster/up.sh [--no-crds] DIR   # then:  source DIR/env ; kubectl get ns
#   hack/cluster/down.sh DIR
#
# Writes into DIR:
#   kubeconfig                  admin (system:masters), CA-verified
#   kubeconfig-{alice,bob,mallory,velero}
#   env                         sourceable: KUBECONFIG, ports, PIDs, tokens, ...
#   pids                        "name pid" per line (read by down.sh)
#   logs/                       one log per process
#   ca.crt                      CA of the API server's serving certificate
#
# Users (token auth, tokens.csv):
#   admin    group system:masters
#   alice    group backup-operators   (operator)
#   bob      group backup-admins      (approver)
#   mallory  no groups; RBAC lets her get/list/watch/update/patch/delete backups
#   velero   ServiceAccount velero/velero, cluster-admin like `velero install`
#            (token from its auto-created token Secret)
#
# Environment:
#   LOAD_CRDS=1           load CRDs (default 1; 0 or --no-crds skips)
#   VELERO_CRDS_DIR       default: <repo>/tests/crds (our minimal CRDs)
#   SNAPSHOT_CRDS_DIR     default: <repo>/tests/crds
#   BG_CACHE              binaries cache root (see build.sh)
#   K8S_BIN_DIR           directory holding kube-apiserver/kube-controller-manager
#   KUBECTL               default /usr/bin/kubectl
#   BG_APISERVER_EXTRA_SANS  extra subjectAltNames for the serving cert,
#                            e.g. "IP:10.213.0.1,DNS:foo" (default none)
#   BG_BIND_ADDRESS       address kube-apiserver binds to (default 127.0.0.1;
#                         0.0.0.0 = all addresses, kubeconfigs still use 127.0.0.1)
#   BG_KEEP_ON_FAILURE=1  do not tear down when start-up fails
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() { echo "usage: $0 [--no-crds|--crds] DIR" >&2; exit 2; }
args=()
for a in "$@"; do
  case $a in
    --no-crds) LOAD_CRDS=0 ;;
    --crds) LOAD_CRDS=1 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) args+=("$a") ;;
  esac
done
[[ ${#args[@]} -eq 1 ]] || usage
set -- "${args[@]}"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)

CACHE=${BG_CACHE:-$HOME/.cache/backup-guard}
BIN=${K8S_BIN_DIR:-$CACHE/k8s-1.20.2/bin}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
LOAD_CRDS=${LOAD_CRDS:-1}
VELERO_CRDS_DIR=${VELERO_CRDS_DIR:-$REPO/tests/crds}
SNAPSHOT_CRDS_DIR=${SNAPSHOT_CRDS_DIR:-$REPO/tests/crds}
BIND_ADDRESS=${BG_BIND_ADDRESS:-127.0.0.1}
PY=$(command -v /usr/bin/python3 || command -v python3)

log() { printf '[up %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[up] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------ preconditions
if [[ -s $DIR/pids ]]; then
  alive=0
  while read -r name pid; do
    [[ -n ${pid:-} ]] && kill -0 "$pid" 2>/dev/null && alive=1
  done <"$DIR/pids"
  if ((alive)); then
    die "a cluster is already running in $DIR (run hack/cluster/down.sh $DIR first)"
  fi
  log "stale pid file in $DIR (processes gone); starting fresh"
fi

if [[ ! -x $BIN/kube-apiserver || ! -x $BIN/kube-controller-manager ]]; then
  if [[ -n ${K8S_BIN_DIR:-} ]]; then
    die "no kube-apiserver/kube-controller-manager in K8S_BIN_DIR=$BIN"
  fi
  log "binaries not cached yet; running build.sh (takes ~5 min)"
  "$HERE/build.sh"
fi
command -v etcd >/dev/null || "$HERE/build.sh"   # installs etcd-server
command -v etcd >/dev/null || die "etcd not installed"
[[ -x $KUBECTL ]] || die "kubectl not found at $KUBECTL"
command -v openssl >/dev/null || die "openssl missing"
command -v curl >/dev/null || die "curl missing"

# Clean previous state (keep nothing but the directory itself).
rm -rf "$DIR/etcd" "$DIR/certs" "$DIR/logs" "$DIR/pki" "$DIR"/kubeconfig* \
       "$DIR/env" "$DIR/pids" "$DIR/tokens.csv" "$DIR/ca.crt"
mkdir -p "$DIR/logs" "$DIR/pki" "$DIR/certs"
: >"$DIR/pids"

started_ok=0
on_exit() {
  local rc=$?
  if ((rc != 0 && started_ok == 0)); then
    printf '[up] start-up failed (exit %s); last log lines:\n' "$rc" >&2
    local f
    for f in "$DIR"/logs/*.log; do
      [[ -f $f ]] || continue
      printf -- '--- %s\n' "$f" >&2
      tail -n 15 "$f" >&2
    done
    if [[ ${BG_KEEP_ON_FAILURE:-0} != 1 ]]; then
      printf '[up] tearing down what was started (BG_KEEP_ON_FAILURE=1 keeps it)\n' >&2
      "$HERE/down.sh" "$DIR" >&2 || true
    fi
  fi
}
trap on_exit EXIT

# -------------------------------------------------------------- free ports
# All sockets are bound at once so the four ports are distinct.
read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT < <("$PY" - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)
log "ports: etcd=$ETCD_PORT etcd-peer=$ETCD_PEER_PORT apiserver=$API_PORT controller-manager=$KCM_PORT"

# -------------------------------------------------------------- pki, tokens
PKI=$DIR/pki
log "generating CA, serving certificate, service-account key"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=backup-guard-test-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
SANS="IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1"
[[ $BIND_ADDRESS != 127.0.0.1 && $BIND_ADDRESS != 0.0.0.0 ]] && SANS="$SANS,IP:$BIND_ADDRESS"
[[ -n ${BG_APISERVER_EXTRA_SANS:-} ]] && SANS="$SANS,$BG_APISERVER_EXTRA_SANS"
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$SANS" \
  >"$PKI/apiserver.ext"
openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
cp "$PKI/ca.crt" "$DIR/ca.crt"

tok() { openssl rand -hex 16; }
ADMIN_TOKEN=$(tok); ALICE_TOKEN=$(tok); BOB_TOKEN=$(tok); MALLORY_TOKEN=$(tok)
umask 077
cat >"$DIR/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,"system:masters"
$ALICE_TOKEN,alice,alice,"backup-operators"
$BOB_TOKEN,bob,bob,"backup-admins"
$MALLORY_TOKEN,mallory,mallory
EOF
umask 022

# ---------------------------------------------------------------- helpers
API_HOST=127.0.0.1
[[ $BIND_ADDRESS != 0.0.0.0 ]] && API_HOST=$BIND_ADDRESS
SERVER=https://$API_HOST:$API_PORT

start() { # name logfile cmd...
  local name=$1 logf=$2; shift 2
  setsid "$@" </dev/null >"$logf" 2>&1 &
  local pid=$!
  echo "$name $pid" >>"$DIR/pids"
  printf '%s' "$pid"
}

write_kubeconfig() { # file user token
  local ca_b64
  ca_b64=$(base64 -w0 <"$DIR/ca.crt")
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: backup-guard-test
  cluster:
    server: $SERVER
    certificate-authority-data: $ca_b64
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@backup-guard-test
  context:
    cluster: backup-guard-test
    user: $2
current-context: $2@backup-guard-test
EOF
  chmod 600 "$1"
}

wait_for() { # description timeout-seconds pid-to-watch command...
  local what=$1 timeout=$2 pid=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      die "$what: process $pid exited"
    fi
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

k() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

# -------------------------------------------------------------------- etcd
log "starting etcd $(etcd --version | head -n1 | awk '{print $3}')"
ETCD_PID=$(start etcd "$DIR/logs/etcd.log" etcd \
  --name default \
  --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT")
wait_for "etcd health" 30 "$ETCD_PID" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# ---------------------------------------------------------- kube-apiserver
log "starting kube-apiserver ($("$BIN/kube-apiserver" --version))"
write_kubeconfig "$DIR/kubeconfig" admin "$ADMIN_TOKEN"
APISERVER_PID=$(start kube-apiserver "$DIR/logs/kube-apiserver.log" "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$BIND_ADDRESS" \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --insecure-port=0 \
  --cert-dir="$DIR/certs" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --token-auth-file="$DIR/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.0.0.0/24 \
  --enable-aggregator-routing=true \
  --enable-admission-plugins=NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook)
wait_for "kube-apiserver /readyz" 90 "$APISERVER_PID" \
  curl -fsS --cacert "$DIR/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVER/readyz"
log "kube-apiserver ready at $SERVER"

# ------------------------------------------------- kube-controller-manager
log "starting kube-controller-manager (namespace, garbagecollector, serviceaccount-token)"
KCM_PID=$(start kube-controller-manager "$DIR/logs/kube-controller-manager.log" "$BIN/kube-controller-manager" \
  --kubeconfig="$DIR/kubeconfig" \
  --authentication-kubeconfig="$DIR/kubeconfig" \
  --authorization-kubeconfig="$DIR/kubeconfig" \
  --authentication-skip-lookup=true \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --port=0 \
  --cert-dir="$DIR/certs/kcm" \
  --controllers=namespace,garbagecollector,serviceaccount-token \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --leader-elect=false)
wait_for "kube-controller-manager /healthz" 60 "$KCM_PID" \
  curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"

# -------------------------------------------------------------------- RBAC
log "applying RBAC for alice/bob (groups backup-operators/backup-admins) and mallory"
k apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: backup-guard-test:backup-operator
rules:
- apiGroups: ["velero.io", "snapshot.storage.k8s.io"]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: backup-guard-test:backup-operator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: backup-guard-test:backup-operator
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: backup-operators
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: backup-admins
---
# mallory may change and delete backups as far as RBAC is concerned: only the
# webhook stands in her way.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: backup-guard-test:backup-outsider
rules:
- apiGroups: ["velero.io"]
  resources: ["backups"]
  verbs: ["get", "list", "watch", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: backup-guard-test:backup-outsider
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: backup-guard-test:backup-outsider
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: mallory
EOF

# -------------------------------------------------------------------- CRDs
if [[ $LOAD_CRDS == 1 ]]; then
  crd_dirs=("$VELERO_CRDS_DIR")
  [[ $SNAPSHOT_CRDS_DIR != "$VELERO_CRDS_DIR" ]] && crd_dirs+=("$SNAPSHOT_CRDS_DIR")
  crd_names=()
  for d in "${crd_dirs[@]}"; do
    [[ -d $d ]] || die "CRD directory $d does not exist"
    log "applying CRDs from $d"
    while read -r n; do [[ -n $n ]] && crd_names+=("$n"); done < <(k apply --validate=false -o name -f "$d")
  done
  log "waiting for ${#crd_names[@]} CRDs to be Established"
  k wait --for condition=Established --timeout=60s "${crd_names[@]}" >/dev/null
fi

# ---------------------------------------------- namespace + service account
log "creating namespace velero and service account velero"
k create namespace velero >/dev/null
k -n velero create serviceaccount velero >/dev/null
# Like `velero install`, the velero service account is cluster-admin.
k create clusterrolebinding velero --clusterrole=cluster-admin --serviceaccount=velero:velero >/dev/null
# Token controller creates the token Secret (still automatic on 1.20).
sa_secret() { k -n velero get serviceaccount velero -o jsonpath='{.secrets[0].name}' 2>/dev/null; }
has_sa_secret() { [[ -n $(sa_secret) ]]; }
wait_for "service-account token Secret for velero/velero" 60 "$KCM_PID" has_sa_secret
VELERO_SECRET=$(sa_secret)
has_sa_token() { [[ -n $(k -n velero get secret "$VELERO_SECRET" -o jsonpath='{.data.token}' 2>/dev/null) ]]; }
wait_for "token in Secret $VELERO_SECRET" 30 "$KCM_PID" has_sa_token
VELERO_SA_TOKEN=$(k -n velero get secret "$VELERO_SECRET" -o jsonpath='{.data.token}' | base64 -d)
[[ -n $VELERO_SA_TOKEN ]] || die "empty token for velero service account"

write_kubeconfig "$DIR/kubeconfig-alice" alice "$ALICE_TOKEN"
write_kubeconfig "$DIR/kubeconfig-bob" bob "$BOB_TOKEN"
write_kubeconfig "$DIR/kubeconfig-mallory" mallory "$MALLORY_TOKEN"
write_kubeconfig "$DIR/kubeconfig-velero" velero "$VELERO_SA_TOKEN"

# --------------------------------------------------------------------- env
umask 077
cat >"$DIR/env" <<EOF
# generated by hack/cluster/up.sh — source it
export BG_CLUSTER_DIR='$DIR'
export KUBECONFIG='$DIR/kubeconfig'
export BG_KUBECTL='$KUBECTL'
export BG_API_SERVER='$SERVER'
export BG_API_PORT=$API_PORT
export BG_CA_FILE='$DIR/ca.crt'
export BG_ETCD_PORT=$ETCD_PORT
export BG_KCM_PORT=$KCM_PORT
export BG_ETCD_PID=$ETCD_PID
export BG_APISERVER_PID=$APISERVER_PID
export BG_KCM_PID=$KCM_PID
export BG_ADMIN_TOKEN=$ADMIN_TOKEN
export BG_ALICE_TOKEN=$ALICE_TOKEN
export BG_BOB_TOKEN=$BOB_TOKEN
export BG_MALLORY_TOKEN=$MALLORY_TOKEN
export BG_VELERO_SA_TOKEN=$VELERO_SA_TOKEN
export BG_KUBECONFIG_ADMIN='$DIR/kubeconfig'
export BG_KUBECONFIG_ALICE='$DIR/kubeconfig-alice'
export BG_KUBECONFIG_BOB='$DIR/kubeconfig-bob'
export BG_KUBECONFIG_MALLORY='$DIR/kubeconfig-mallory'
export BG_KUBECONFIG_VELERO='$DIR/kubeconfig-velero'
EOF
umask 022

started_ok=1
log "cluster up in $DIR (source $DIR/env; stop with hack/cluster/down.sh $DIR)"
