#!/usr/bin/env bash
# Build a real kube-apiserver + kube-controller-manager v1.20.2 from Debian's
# source package with Go 1.15 (see ../shared/docs/LOCAL-CLUSTER.md) and cache
# the binaries under ${BG_CACHE:-$HOME/.cache/backup-guard}/k8s-1.20.2/bin/.
#
# Idempotent: if the cached binaries exist (and etcd is installed) it does
# nothing. Needs root (apt) on Debian bookworm.
#
# Environment:
#   BG_CACHE        cache root (default $HOME/.cache/backup-guard)
#   BG_BUILD_FORCE  =1 rebuilds even when the binaries are cached
set -euo pipefail

K8S_VERSION=1.20.2
CACHE=${BG_CACHE:-$HOME/.cache/backup-guard}
K8S_DIR=$CACHE/k8s-$K8S_VERSION
BIN_DIR=$K8S_DIR/bin
GO_DIR=$CACHE/go-1.15
SRC_DIR=$CACHE/src
BINARIES=(kube-apiserver kube-controller-manager)

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

have_binaries() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x $BIN_DIR/$b ]] || return 1
  done
}

need_root() { [[ $(id -u) -eq 0 ]] || die "apt steps need root (run as root or install deps yourself)"; }

# ---------------------------------------------------------------- apt deps
install_deps() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v rsync >/dev/null || missing+=(rsync)
  command -v jq >/dev/null || missing+=(jq)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v make >/dev/null || missing+=(make)
  if ((${#missing[@]})); then
    need_root
    log "installing apt packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "apt deps present (etcd rsync jq openssl make)"
  fi
}

# A private apt configuration (own sources list + own lists dir) so that the
# temporary deb-src / bullseye entries never touch the system's apt state and
# are gone when the script exits, whatever happens.
APT_TMP=""
cleanup() { [[ -n $APT_TMP ]] && rm -rf "$APT_TMP"; return 0; }
trap cleanup EXIT

private_apt() { # $1 = sources list content; sets APT_OPTS
  APT_TMP=$(mktemp -d /tmp/bg-apt.XXXXXX)
  mkdir -p "$APT_TMP/lists/partial" "$APT_TMP/archives/partial"
  printf '%s\n' "$1" >"$APT_TMP/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_TMP/sources.list"
            -o "Dir::Etc::SourceParts=$APT_TMP/none"
            -o "Dir::State::Lists=$APT_TMP/lists"
            -o "Dir::Cache::Archives=$APT_TMP/archives"
            -o "APT::Sandbox::User=root"
            -o "Acquire::Languages=none")
  apt-get "${APT_OPTS[@]}" update -qq
}

fetch_source() {
  local tarball
  mkdir -p "$SRC_DIR"
  tarball=$(compgen -G "$SRC_DIR/kubernetes_*really${K8S_VERSION}.orig.tar.gz" | head -n1 || true)
  if [[ -n $tarball ]]; then
    log "kubernetes source already downloaded: $tarball"
  else
    need_root
    log "downloading kubernetes source package (deb-src bookworm main, ~34 MB)"
    private_apt "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main"
    (cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" source --download-only -qq kubernetes >/dev/null)
    cleanup; APT_TMP=""
    tarball=$(compgen -G "$SRC_DIR/kubernetes_*really${K8S_VERSION}.orig.tar.gz" | head -n1 || true)
    [[ -n $tarball ]] || die "no kubernetes_*really${K8S_VERSION}.orig.tar.gz after apt-get source (got: $(compgen -G "$SRC_DIR/*" | tr '\n' ' '))"
  fi
  SRC_TARBALL=$tarball
}

fetch_go() {
  if [[ -x $GO_DIR/usr/lib/go-1.15/bin/go ]]; then
    log "Go 1.15 already cached in $GO_DIR"
    return
  fi
  need_root
  log "downloading Go 1.15 from bullseye main (temporary private source entry)"
  private_apt "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main"
  local dl; dl=$(mktemp -d /tmp/bg-go.XXXXXX)
  (cd "$dl" && apt-get "${APT_OPTS[@]}" download -qq golang-1.15-go golang-1.15-src >/dev/null)
  cleanup; APT_TMP=""   # the bullseye entry is gone again
  rm -rf "$GO_DIR.tmp"; mkdir -p "$GO_DIR.tmp"
  local deb
  for deb in "$dl"/*.deb; do
    log "  extracting $(basename "$deb")"
    dpkg -x "$deb" "$GO_DIR.tmp"
  done
  rm -rf "$dl"
  [[ -x $GO_DIR.tmp/usr/lib/go-1.15/bin/go ]] || die "Go 1.15 not found after dpkg -x"
  rm -rf "$GO_DIR"; mv "$GO_DIR.tmp" "$GO_DIR"
}

build() {
  local work=$K8S_DIR/build
  local tree=$work/kubernetes-$K8S_VERSION
  if [[ ! -f $tree/.bg-unpacked ]]; then
    log "unpacking $(basename "$SRC_TARBALL")"
    rm -rf "$work"; mkdir -p "$work"
    tar -C "$work" -xzf "$SRC_TARBALL"
    [[ -d $tree ]] || die "expected $tree after unpacking"
    touch "$tree/.bg-unpacked"
  fi
  export GOROOT=$GO_DIR/usr/lib/go-1.15
  export PATH=$GOROOT/bin:$PATH
  export GOPATH=$tree/.go CGO_ENABLED=0 GOFLAGS='' GO111MODULE=''
  export GOCACHE=$K8S_DIR/gocache
  mkdir -p "$tree/.go/src/k8s.io"
  [[ -L $tree/.go/src/k8s.io/kubernetes ]] || ln -s ../../.. "$tree/.go/src/k8s.io/kubernetes"
  log "go: $(go version)"
  log "building ${BINARIES[*]} (takes ~4-5 min on 2 cores)"
  local start=$SECONDS
  (cd "$tree" && make WHAT="cmd/kube-apiserver cmd/kube-controller-manager") >"$K8S_DIR/build.log" 2>&1 \
    || { tail -n 40 "$K8S_DIR/build.log" >&2; die "make failed (full log: $K8S_DIR/build.log)"; }
  log "build finished in $((SECONDS - start))s"
  mkdir -p "$BIN_DIR"
  local b
  for b in "${BINARIES[@]}"; do
    local out
    out=$(find "$tree/_output" -type f -name "$b" -perm -u+x | head -n1)
    [[ -n $out ]] || die "$b not found under $tree/_output"
    install -m 0755 "$out" "$BIN_DIR/$b.tmp" && mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
  done
  "$BIN_DIR/kube-apiserver" --version >&2
  log "removing build tree (keeping source tarball and Go)"
  rm -rf "$work" "$GOCACHE"
}

main() {
  install_deps
  if [[ ${BG_BUILD_FORCE:-0} != 1 ]] && have_binaries; then
    log "cached binaries present in $BIN_DIR — nothing to do"
    exit 0
  fi
  fetch_source
  fetch_go
  build
  log "done: binaries in $BIN_DIR"
}
main "$@"
