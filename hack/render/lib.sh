# Shared helpers for hack/render/*.sh and hack/promtool/*.sh. Source it.
# shellcheck shell=bash

RENDER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$RENDER_DIR/../.." && pwd)
CHART=$REPO/charts/backup-guard
BG_CACHE=${BG_CACHE:-$HOME/.cache/backup-guard}
# Debian's own python (python3-jsonschema, python3-yaml), not a pyenv shim.
PY=${BG_PYTHON:-/usr/bin/python3}

die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-render}" "$*" >&2; exit 1; }
log() { printf '[%s] %s\n' "${LOG_TAG:-render}" "$*" >&2; }

# ensure_apt PKG... : install Debian packages that are missing (idempotent).
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]} (apt)"
  if [[ $(id -u) != 0 ]]; then
    die "missing Debian packages ${missing[*]} and not root; install them: apt-get install -y ${missing[*]}"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
    die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

render_deps() {
  ensure_apt golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev \
    python3 python3-yaml python3-jsonschema
}

# build_renderer: prints the path of a renderer binary built from main.go,
# cached by the source's hash. GOPATH mode against Debian's packaged Go
# sources (/usr/share/gocode): no module proxy, no network.
build_renderer() {
  local sum bin
  sum=$(sha256sum <"$RENDER_DIR/main.go" | cut -c1-16)
  bin=$BG_CACHE/render/render-$sum
  if [[ ! -x $bin ]]; then
    mkdir -p "$BG_CACHE/render"
    (cd "$RENDER_DIR" &&
      GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS="" CGO_ENABLED=0 \
        GOCACHE=${GOCACHE:-$BG_CACHE/go-build} \
        go build -o "$bin.tmp" .) >&2 || die "building hack/render/main.go failed"
    mv "$bin.tmp" "$bin"
  fi
  printf '%s\n' "$bin"
}

# render_chart ARGS... : values schema check, then render to stdout. ARGS are
# the renderer's flags (-f, --set, --namespace, --kube-version, ...).
render_chart() {
  local bin tmp
  bin=$(build_renderer)
  tmp=$(mktemp)
  if ! "$bin" --print-values "$@" "$CHART" >"$tmp"; then
    rm -f "$tmp"; die "coalescing values failed"
  fi
  if ! "$PY" "$RENDER_DIR/validate_values.py" "$CHART/values.schema.json" "$tmp"; then
    rm -f "$tmp"; die "values do not match charts/backup-guard/values.schema.json"
  fi
  rm -f "$tmp"
  "$bin" "$@" "$CHART"
}
