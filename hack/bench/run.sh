#!/usr/bin/env bash
# `make bench`: every figure of docs/performance.md as `BENCH <name> <value> <unit>`; a missed
# target adds `BENCH_MISS <name> <value> <op> <target>`, a figure not measured `BENCH_SKIP <name> <why>`.
# BENCH_SMOKE=1: the same steps, seconds instead of minutes (CI keeps the harness working with it;
# its figures are not the record).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
SMOKE=${BENCH_SMOKE:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench.XXXXXX")
PIDS=()
# Set by start_server (printf -v).
ADDR_real='' ADDR_null='' ADDR_big='' PID_big=''

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '==> %s\n' "$*" >&2; }

# figure NAME VALUE UNIT OP TARGET: prints the figure, and by how much it misses its target.
figure() {
  local name=$1 value=$2 unit=$3 op=$4 target=$5
  echo "BENCH $name $value $unit"
  if ! awk -v v="$value" -v t="$target" -v op="$op" \
    'BEGIN { exit !((op == "<=" && v <= t) || (op == ">=" && v >= t)) }'; then
    local miss='>'; [ "$op" = '>=' ] && miss='<'
    echo "BENCH_MISS $name $value $miss $target"
  fi
}

# field LINE KEY: the value of key=value in a bg-bench output line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

if [ -n "$SMOKE" ]; then
  ROUNDS=1 SECONDS_PER=1 WARMUP=0.3 P99_SECONDS=1 BACKUPS=10000
  CRITERION=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
else
  ROUNDS=3 SECONDS_PER=5 WARMUP=1 P99_SECONDS=10 BACKUPS=100000
  CRITERION=(--warm-up-time 2 --measurement-time 5)
fi

log "building (release)"
"$CARGO" build --release --locked --bin bg-bench --bin backup-guard >&2
TARGET=$("$CARGO" metadata --format-version 1 --no-deps | jq -r .target_directory)
BENCH="$TARGET/release/bg-bench"
GUARD="$TARGET/release/backup-guard"

# --- decision_ns: criterion on the captured review -------------------------------------------
log "criterion: decision"
"$CARGO" bench --locked --bench decision -- "${CRITERION[@]}" '^decision$' >&2
ns=$(jq -r '.median.point_estimate' "$TARGET/criterion/decision/new/estimates.json")
figure decision_ns "$(printf '%.0f' "$ns")" ns '<=' 2000

# --- the servers: real router and null webhook, same TLS stack, processes of their own -----
"$GUARD" certs --out "$WORK/certs" --host 127.0.0.1 >/dev/null

# start_server NAME ARGS…: starts `bg-bench serve`, sets ADDR_<NAME> and PID_<NAME>.
start_server() {
  local name=$1 line pid
  shift
  "$BENCH" serve --tls-dir "$WORK/certs" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do
    line=$(head -n1 "$WORK/$name.out" 2>/dev/null || true)
    if [ -n "$line" ]; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log" >&2; echo "bg-bench serve $name exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$line" ] || { echo "bg-bench serve $name never listened" >&2; exit 1; }
  printf -v "ADDR_$name" '%s' "$(awk '{print $2}' <<<"$line")"
  printf -v "PID_$name" '%s' "$pid"
}

load() { "$BENCH" load --ca "$WORK/certs/ca.crt" "$@"; }

start_server real --mode real
start_server null --mode null

# --- tls_throughput_ratio / tls_reviews_per_s: alternating rounds, 64 keep-alive connections -
# Beside the rounds' throughput, the CPU each side spent per review (server: /proc/<pid>/stat;
# load generator: bash's `time`; both over the whole round, warm-up included, divided by the
# reviews of the round at its measured rate): what the two cores allow, steadier than the
# wall clock on a shared machine.
TICK=$(getconf CLK_TCK) TIMEFORMAT='%U %S'
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
real_total=0 null_total=0
declare -A cpu_server=([real]=0 [null]=0) cpu_client=([real]=0 [null]=0)
for round in $(seq 1 "$ROUNDS"); do
  for which in null real; do
    addr_var="ADDR_$which" pid_var="PID_$which"
    before=$(cpu_ticks "${!pid_var}")
    { time out=$(load --addr "${!addr_var}" --connections 64 --seconds "$SECONDS_PER" --warmup "$WARMUP"); } 2>"$WORK/time"
    after=$(cpu_ticks "${!pid_var}")
    log "round $round $which: $out"
    [ "$(field "$out" errors)" = 0 ] || { echo "errors against the $which webhook: $out" >&2; exit 1; }
    rps=$(field "$out" rps)
    if [ "$which" = real ]; then real_total=$(awk -v a="$real_total" -v b="$rps" 'BEGIN{print a+b}')
    else null_total=$(awk -v a="$null_total" -v b="$rps" 'BEGIN{print a+b}'); fi
    reviews=$(awk -v r="$rps" -v s="$SECONDS_PER" -v w="$WARMUP" 'BEGIN{print r * (s + w)}')
    cpu_server[$which]=$(awk -v t="${cpu_server[$which]}" -v a="$before" -v b="$after" -v hz="$TICK" -v n="$reviews" \
      'BEGIN{print t + (b - a) / hz * 1e6 / n}')
    cpu_client[$which]=$(awk -v t="${cpu_client[$which]}" -v n="$reviews" '{print t + ($1 + $2) * 1e6 / n}' "$WORK/time")
  done
done
real_rps=$(awk -v t="$real_total" -v n="$ROUNDS" 'BEGIN{printf "%.0f", t/n}')
null_rps=$(awk -v t="$null_total" -v n="$ROUNDS" 'BEGIN{printf "%.0f", t/n}')
ratio=$(awk -v r="$real_rps" -v n="$null_rps" 'BEGIN{printf "%.3f", r/n}')
figure tls_throughput_ratio "$ratio" ratio '>=' 0.70
figure tls_reviews_per_s "$real_rps" reviews/s '>=' 20000
echo "BENCH_INFO null_reviews_per_s $null_rps reviews/s"
us() { awk -v t="$1" -v n="$ROUNDS" 'BEGIN{printf "%.1f", t/n}'; }
echo "BENCH_INFO tls_cpu_us_per_review real $(us "${cpu_server[real]}") + $(us "${cpu_client[real]}"), null $(us "${cpu_server[null]}") + $(us "${cpu_client[null]}") µs (server + load generator, user + system)"
echo "BENCH_INFO tls_cpu_ratio $(awk -v rs="${cpu_server[real]}" -v rc="${cpu_client[real]}" -v ns="${cpu_server[null]}" -v nc="${cpu_client[null]}" \
  'BEGIN{printf "%.3f", (ns + nc) / (rs + rc)}') ratio (null ÷ real CPU per review, server + load generator: the ratio the two cores allow)"

# --- p99_ms_500_conns: 500 connections at a fixed offered rate (half the throughput target) --
out=$(load --addr "$ADDR_real" --connections 500 --rate 10000 --seconds "$P99_SECONDS" --warmup "$WARMUP")
log "500 connections at 10000 reviews/s: $out"
[ "$(field "$out" errors)" = 0 ] || { echo "errors at 500 connections: $out" >&2; exit 1; }
figure p99_ms_500_conns "$(field "$out" p99_ms)" ms '<=' 5
echo "BENCH_INFO p50_ms_500_conns $(field "$out" p50_ms) ms"
# The same load on the null webhook: the tail that the machine and the load generator alone give.
out=$(load --addr "$ADDR_null" --connections 500 --rate 10000 --seconds "$P99_SECONDS" --warmup "$WARMUP")
log "null webhook, 500 connections at 10000 reviews/s: $out"
echo "BENCH_INFO p99_ms_500_conns_null $(field "$out" p99_ms) ms (p50 $(field "$out" p50_ms) ms; the null webhook under the same load)"
out=$(load --addr "$ADDR_real" --connections 500 --seconds "$SECONDS_PER" --warmup "$WARMUP")
log "500 connections closed-loop (saturated): $out"
echo "BENCH_INFO p99_ms_500_conns_saturated $(field "$out" p99_ms) ms at $(field "$out" rps) reviews/s"

# --- rss_mib_100k_backups: the real router's process holding the Backups, after serving ------
start_server big --mode real --synthetic-backups "$BACKUPS"
out=$(load --addr "$ADDR_big" --connections 64 --seconds 1 --warmup 0.2)
log "serving with $BACKUPS backups: $out"
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID_big/status")
rss=$(awk -v k="$rss_kib" 'BEGIN{printf "%.1f", k/1024}')
if [ -n "$SMOKE" ]; then
  echo "BENCH_INFO rss_mib_100k_backups $rss MiB (smoke: $BACKUPS backups, not the figure)"
else
  figure rss_mib_100k_backups "$rss" MiB '<=' 64
fi
log "$(head -n1 "$WORK/big.out")"

# --- figures that need the local control plane or the S3 server -----------------------------
# Each prints BENCH_SKIP and succeeds when its server or control plane cannot run here; any other
# failure fails the bench (and CI's smoke), loudly.
"$ROOT/hack/bench/storage.sh"
BENCH_GUARD="$GUARD" "$ROOT/hack/bench/cascade.sh"
