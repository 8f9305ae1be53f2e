#!/usr/bin/env bash
# make static: the binary the container image ships — static musl, mimalloc, aws-lc — built here
# as the Dockerfile builds it on Alpine (cargo build --release --locked for
# x86_64-unknown-linux-musl), refused if it needs a dynamic loader, then put through the tests
# that drive the real process (TLS serving, HTTP/1.1 only, graceful shutdown) and the whole e2e
# suite against the real API server. The image itself is not built: no container engine here.
#
# Installs what it needs: Debian's musl-tools (root) and rustup's musl target.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=x86_64-unknown-linux-musl
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'static: %s\n' "$*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "this check builds for $TARGET; the machine is $(uname -m)"
if ! command -v musl-gcc >/dev/null; then
  [ "$(id -u)" = 0 ] || die "musl-gcc not found and installing it needs root: apt-get install -y musl-tools"
  log "installing musl-tools (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null; } ||
    die "apt-get install musl-tools failed"
fi
command -v rustup >/dev/null ||
  die "rustup not found: the $TARGET standard library comes from rustup (rustup target add $TARGET)"
if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "adding the $TARGET target (rustup)"
  rustup target add "$TARGET" >&2 || die "rustup target add $TARGET failed"
fi

log "building backup-guard for $TARGET (release)"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$TARGET" --bin backup-guard
BIN=$ROOT/target/$TARGET/release/backup-guard
if readelf -l "$BIN" | grep -q 'Requesting program interpreter'; then
  die "$BIN is dynamically linked: distroless/static has no loader"
fi
"$BIN" --version >/dev/null || die "$BIN --version failed"
log "$BIN: static ($(du -h "$BIN" | cut -f1)), $("$BIN" --version)"

log "the real process tests with the static binary"
BG_TEST_BIN=$BIN cargo test --locked --test shutdown --test webhook_http1

log "the e2e suite with the static binary"
E2E_GUARD_BIN=$BIN E2E_DIR=$ROOT/.e2e-static hack/e2e/run.sh
log "static: the image's binary passed"
