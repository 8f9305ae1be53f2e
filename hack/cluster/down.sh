#!/usr/bin/env bash
# Stop everything hack/cluster/up.sh (or capture-fixtures.sh) started in DIR,
# by PID from DIR/pids: SIGTERM, wait, then SIGKILL. Idempotent; safe when
# up.sh failed halfway or DIR does not exist. Keeps DIR/logs for inspection;
# --purge also removes DIR.
#
#   hack/cluster/down.sh DIR [--purge]
set -uo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 DIR [--purge]" >&2; exit 2; }
DIR=$1
PURGE=0
[[ ${2:-} == --purge ]] && PURGE=1

log() { printf '[down] %s\n' "$*" >&2; }

# Is PID still the process we started (guards against PID reuse)?
ours() { # pid name
  local pid=$1 name=$2 cmd
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$name"* ]]
}

stop() { # name pid
  local name=$1 pid=$2 i
  if ! kill -0 "$pid" 2>/dev/null || ! ours "$pid" "$name"; then
    log "$name ($pid) not running"
    return 0
  fi
  log "stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do   # up to 10 s
    kill -0 "$pid" 2>/dev/null || return 0
    # a zombie counts as gone
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.1
  done
  log "$name ($pid) ignored SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "WARNING: $name ($pid) still alive"
  return 1
}

rc=0
if [[ -f $DIR/pids ]]; then
  # reverse start order: controller-manager, apiserver, etcd (extras first)
  mapfile -t lines < <(tac "$DIR/pids")
  for line in "${lines[@]}"; do
    read -r name pid <<<"$line"
    [[ -n ${name:-} && ${pid:-} =~ ^[0-9]+$ ]] || continue
    stop "$name" "$pid" || rc=1
  done
  ((rc == 0)) && rm -f "$DIR/pids"
else
  log "no pid file in $DIR; nothing to stop"
fi

if ((PURGE && rc == 0)) && [[ -d $DIR ]]; then
  log "removing $DIR"
  rm -rf "$DIR"
fi
exit $rc
