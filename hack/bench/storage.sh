#!/usr/bin/env bash
# Storage figures (benches/storage.rs) against s3s-fs; called by run.sh. Prints BENCH lines,
# or BENCH_SKIP when the S3 server is not installed (hack/storage/install.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "BENCH_SKIP s3_requests_per_backup s3s-fs not installed (run hack/storage/install.sh)"
  echo "BENCH_SKIP cleanup_10k_backups_s s3s-fs not installed (run hack/storage/install.sh)"
  exit 0
fi
# The full 10 000 backups (120 000 keys) by default; BENCH_CLEANUP_BACKUPS scales it.
BACKUPS=${BENCH_CLEANUP_BACKUPS:-10000}
[ -n "${BENCH_SMOKE:-}" ] && BACKUPS=200
BG_BENCH_BACKUPS=$BACKUPS "$CARGO" bench --locked --bench storage | grep --line-buffered '^BENCH' |
while read -r tag name value unit rest; do
  case "$tag $name" in
    "BENCH s3_requests_per_backup")
      echo "BENCH $name $value $unit"
      if [ "$value" -gt 2 ]; then echo "BENCH_MISS $name $value > 2"; fi ;;
    "BENCH cleanup_10k_backups_s")
      if [ "$BACKUPS" != 10000 ]; then
        echo "BENCH_INFO $name $value $unit (scaled: $BACKUPS backups, not 10000; not the figure)"
      else
        echo "BENCH $name $value $unit"
        if awk -v v="$value" 'BEGIN{exit !(v > 300)}'; then echo "BENCH_MISS $name $value > 300"; fi
      fi ;;
    *) echo "$tag $name $value $unit $rest" ;;
  esac
done
