# shellcheck shell=bash
# scripts/cluster.sh: the namespaces and the network. Sourced, never run.

# What a holder runs inside its fresh namespaces before it becomes `sleep infinity`:
# hostname, loopback, IPv6 off (Open MPI and Slurm then see the one IPv4 subnet only), the
# cluster's /etc/hosts and an empty resolv.conf bind-mounted (visible in this mount
# namespace only), a node-local directory at the same path on every node (Slurm's TmpFS),
# and in the switch namespace the bridge. Arguments: NAME HOSTNAME DIR BRIDGE.
# shellcheck disable=SC2016
CL_HOLDER_BODY='
echo $$ > "$3/ns/$1.pid"
set -e
hostname "$2"
ip link set lo up
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
mount --bind "$3/etc/hosts" /etc/hosts
mount --bind "$3/etc/resolv.conf" /etc/resolv.conf 2>/dev/null || true
if [ -d "$3/nodes/$1/local" ]; then mount --bind "$3/nodes/$1/local" "$3/local"; fi
if [ "$1" = sw ]; then
  ip link add "$4" type bridge forward_delay 0
  ip link set "$4" up
fi
: > "$3/ns/$1.ready"
exec -a "reel-cluster-holder $1 $3" sleep infinity
'

# Starts the holder of namespace NAME: a process in its own network, UTS and mount
# namespaces that keeps them alive. setsid and closed stdio: it must outlive this script
# and must not hold a caller's pipe open (ctest would wait for it).
cl_start_holder() {
  local name=$1 pid
  setsid unshare --net --uts --mount --propagation private \
    bash -c "$CL_HOLDER_BODY" holder "$name" "$(cl_hostname "$name")" "$CL_DIR" "$CL_BRIDGE" \
    < /dev/null >> "$CL_DIR/log/holder-$name.log" 2>&1 &
  for _ in $(seq 100); do
    if [ -f "$CL_DIR/ns/$name.ready" ] && pid=$(cl_holder "$name"); then
      cl_record_ids "$pid" "$name"
      return 0
    fi
    # Record what exists as soon as it exists, so a failed start is still torn down.
    if [ ! -f "$CL_DIR/ns/$name.id" ] && pid=$(cat "$CL_DIR/ns/$name.pid" 2>/dev/null) && [ -n "$pid" ]; then
      cl_record_ids "$pid" "$name" 2>/dev/null || true
    fi
    sleep 0.05
  done
  die "namespace '$name' did not start: $(tail -n 3 "$CL_DIR/log/holder-$name.log" 2>/dev/null)"
}

# A veth pair per namespace: one end (named after it) on the bridge in the switch
# namespace, the other moved straight into NAME's namespace as eth0 with its address.
# Both ends are created inside the switch namespace, so no link ever appears in the root one.
cl_link() {
  local name=$1 pid addr
  pid=$(cl_holder "$name") || die "namespace '$name' is gone"
  addr=$(cl_addr "$name")
  cl_in sw ip link add "$name" type veth peer name eth0 netns "$pid"
  cl_in sw ip link set "$name" master "$CL_BRIDGE" up
  cl_in "$name" ip addr add "$addr/24" dev eth0
  cl_in "$name" ip link set eth0 up
}

# The hosts file every namespace sees: the controller and every node (Slurm and Open MPI
# resolve node names; nothing here may fall through to the machine's resolver).
cl_write_hosts() {
  local n=$1 k
  {
    echo "127.0.0.1 localhost"
    echo "$(cl_addr ctl) rnctl"
    for k in $(seq "$n"); do echo "$(cl_addr "rn$k") rn$k"; done
  } > "$CL_DIR/etc/hosts"
  : > "$CL_DIR/etc/resolv.conf"
}

# The switch-side state of NAME's link: UP or DOWN (cut), or "-" when there is none.
cl_link_state() {
  local flags
  flags=$(cl_in sw ip -o link show dev "$1" 2>/dev/null) || { echo -; return; }
  if grep -Eq '[<,]UP[,>]' <<< "$flags"; then echo UP; else echo DOWN; fi
}

cl_set_link() {  # NAME up|down
  cl_in sw ip link set dev "$1" "$2"
}
