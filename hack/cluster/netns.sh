# shellcheck shell=bash
# A network namespace joined to the host by a veth pair, for a webhook the API server must reach
# at a Service's Endpoints address (../shared/docs/LOCAL-CLUSTER.md, "Webhooks by Service
# reference"). Used by hack/e2e/lib.sh (the guard) and hack/render/wiring.sh (a stub). Needs root
# and iproute2. Source it; it defines functions only.

# netns_up DIR TAG NET: namespace TAG<n> and veth TAG<n>-h (host, NET.<n>.1) <-> TAG<n>-g (inside,
# NET.<n>.2), NET being the first two octets, with an n no namespace, interface or address on this
# machine uses. Recorded in DIR/netns.env (NETNS, NETNS_HOST_IF, NETNS_GUARD_IF, NETNS_HOST_IP,
# NETNS_GUARD_IP) before anything is made, so that netns_down removes whatever part exists.
netns_up() {
  local dir=$1 tag=$2 net=$3 n i
  n=$(($$ % 200 + 20))
  for ((i = 0; i < 200; i++)); do
    if ! ip netns list | grep -qw "$tag$n" && ! ip -o addr | grep -qF " $net.$n." &&
      ! ip link show "$tag$n-h" >/dev/null 2>&1; then break; fi
    n=$(((n - 20 + 1) % 200 + 20))
  done
  cat > "$dir/netns.env" <<ENV
NETNS=$tag$n
NETNS_HOST_IF=$tag$n-h
NETNS_GUARD_IF=$tag$n-g
NETNS_HOST_IP=$net.$n.1
NETNS_GUARD_IP=$net.$n.2
ENV
  # shellcheck disable=SC1091
  source "$dir/netns.env"
  ip netns add "$NETNS"
  ip link add "$NETNS_HOST_IF" type veth peer name "$NETNS_GUARD_IF" netns "$NETNS"
  ip addr add "$NETNS_HOST_IP/24" dev "$NETNS_HOST_IF"
  ip link set "$NETNS_HOST_IF" up
  ip netns exec "$NETNS" ip addr add "$NETNS_GUARD_IP/24" dev "$NETNS_GUARD_IF"
  ip netns exec "$NETNS" ip link set "$NETNS_GUARD_IF" up
  ip netns exec "$NETNS" ip link set lo up
}

# netns_down DIR: what netns_up made, and any process left inside it.
netns_down() {
  local dir=$1 pid
  [ -f "$dir/netns.env" ] || return 0
  # shellcheck disable=SC1091
  source "$dir/netns.env"
  if ip netns list | grep -qw "$NETNS"; then
    for pid in $(ip netns pids "$NETNS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NETNS" 2>/dev/null || true
  fi
  ip link del "$NETNS_HOST_IF" 2>/dev/null || true
  rm -f "$dir/netns.env"
}
