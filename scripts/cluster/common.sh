# shellcheck shell=bash
# scripts/cluster.sh helpers: constants, messages, finding the cluster's namespaces and the
# processes inside them. Sourced, never run.
#
# Nothing here puts an address, link or mount in the root namespaces: the cluster's network
# exists only inside namespaces this script creates (a "switch" namespace holding the
# bridge, one namespace per node, one for the controller), so the machine's own networking
# is never touched and `down` has only processes to end.

# shellcheck disable=SC2034  # (the constants are used by the files sourcing this one)
CL_DIR=${REEL_CLUSTER_DIR:-/tmp/reel-cluster}
CL_DIR=${CL_DIR%/}
case $CL_DIR in /*) ;; *) CL_DIR=$PWD/$CL_DIR ;; esac  # slurm.conf and the holders need it absolute
CL_NET=10.213.7            # the cluster's private /24; exists only inside its namespaces
CL_CIDR=$CL_NET.0/24
CL_BRIDGE=reelbr0          # lives in the switch namespace
CL_CTLD_PORT=6917          # not 6817/6818: the single-host test Slurm may run beside it
CL_SLURMD_PORT=6918        # shared by every slurmd: each listens in its own network namespace
CL_MAX_NODES=8
CL_MARK=reel-cluster-holder  # argv[0] of every holder: identifies ours in `ps`

cl_since() { local ms=$(($(date +%s%3N) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }  # seconds since a date +%s%3N
die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*"; }

# The address of a namespace: ctl .1, rnK .(10+K). The switch has none.
cl_addr() {
  case $1 in
    ctl) echo "$CL_NET.1" ;;
    rn[0-9]*) echo "$CL_NET.$((10 + ${1#rn}))" ;;
    *) return 1 ;;
  esac
}
cl_hostname() { case $1 in ctl) echo rnctl ;; sw) echo rnswitch ;; *) echo "$1" ;; esac; }
cl_nodes() { cat "$CL_DIR/nodelist" 2>/dev/null || true; }

# The live holder of namespace NAME, or nothing. A pid file can outlive its process (and
# the pid be reused), so the process must still carry our holder's argv[0] for this dir.
cl_holder() {
  local pid
  pid=$(cat "$CL_DIR/ns/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
    grep -qxF "$CL_MARK $1 $CL_DIR infinity " || return 1
  echo "$pid"
}

# Runs a command inside namespace NAME (network, hostname, mounts), in the caller's
# working directory. Entering through the holder's pid works from anywhere (entering by a
# namespace file would need a mount the other namespaces cannot see).
cl_in() {
  local name=$1 pid; shift
  pid=$(cl_holder "$name") || die "namespace '$name' is not running (scripts/cluster.sh status)"
  nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}
cl_slurm() { cl_in ctl env SLURM_CONF="$CL_DIR/etc/slurm.conf" timeout 10 "$@"; }

# Records the identity (network and UTS namespace inodes) of NAME's namespaces so `down`
# and `kill` find every process inside them even after the holder is gone.
cl_record_ids() {
  local pid=$1 name=$2
  echo "$(stat -L -c %i "/proc/$pid/ns/net") $(stat -L -c %i "/proc/$pid/ns/uts")" > "$CL_DIR/ns/$name.id"
}

# Every process inside NAME's namespaces (both inodes must match: one inode alone could
# in principle be reused by an unrelated namespace after ours is gone).
cl_pids_in() {
  local ids net uts
  ids=$(cat "$CL_DIR/ns/$1.id" 2>/dev/null) || return 0
  read -r net uts <<< "$ids"
  # One stat over all processes (a fork per pid would take ~0.5 s on a busy machine).
  stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null | awk -v n="$net" '$1 == n { split($2, p, "/"); print p[3] }' |
    while read -r pid; do
      [ "$(stat -L -c %i "/proc/$pid/ns/uts" 2>/dev/null)" = "$uts" ] && echo "$pid"
    done
  return 0
}

# kill -9 every process in the namespaces named (a space-separated list), holders too
# unless KEEP is a pid to spare; repeats until none is left (a dying slurmd may still
# fork). Returns 1 if some survive.
cl_kill_in() {
  local names=$1 keep=${2:-none} pids name
  for _ in $(seq 50); do
    pids=$(for name in $names; do cl_pids_in "$name"; done | grep -vx "$keep" || true)
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  return 1
}

# NAME must be a node of the running cluster (or ctl where ALLOW_CTL).
cl_check_node() {
  local name=$1 allow_ctl=${2:-}
  [ -f "$CL_DIR/nodelist" ] || die "the cluster is not up ($CL_DIR): scripts/cluster.sh up N"
  [ -n "$allow_ctl" ] && [ "$name" = ctl ] && return 0
  cl_nodes | grep -qxF -- "$name" ||
    die "no node '$name'; the nodes are: $(cl_nodes | tr '\n' ' ')${allow_ctl:+(and ctl)}"
}
