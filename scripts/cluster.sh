#!/usr/bin/env bash
# An emulated multi-node Slurm cluster on this one machine, built from Linux namespaces:
#
#   scripts/cluster.sh up N           # N nodes rn1..rnN (1..8) plus a controller, all idle
#   scripts/cluster.sh down           # tear everything down (idempotent; also after a failed up)
#   scripts/cluster.sh status         # nodes, addresses, links, Slurm's view (sinfo)
#   scripts/cluster.sh exec NODE CMD  # run CMD inside NODE (a node name, or ctl: the
#                                     # controller, where sbatch/srun/squeue/scontrol run)
#   scripts/cluster.sh env            # the environment jobs need (eval it)
#   scripts/cluster.sh cut NODE       # take NODE's link down (a partition; processes live on)
#   scripts/cluster.sh heal NODE      # bring the link back (and resume the node in Slurm)
#   scripts/cluster.sh kill NODE      # kill -9 everything in NODE (a crash; the node can revive)
#   scripts/cluster.sh revive NODE    # restart NODE's slurmd after a kill
#
# Each node is a network + UTS + mount namespace with its own hostname, address, /etc/hosts
# and slurmd; the controller namespace (ctl, hostname rnctl) runs slurmctld; a switch
# namespace holds the bridge joining them. The subnet 10.213.7.0/24 exists only inside
# those namespaces: the root namespace gets no address, link, bridge or mount. One munged
# runs in the root namespace (its socket file reaches every namespace).
# Environment: REEL_CLUSTER_DIR (state, default /tmp/reel-cluster), REEL_CLUSTER_CPUS
# (CPUs each node declares, default 2), REEL_CLUSTER_SLURMD_TIMEOUT (Slurm's SlurmdTimeout
# in seconds, default 10). docs/multinode.md has the details.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin  # slurmd, slurmctld, munged, ip live there; ctest may not have it
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cluster/common.sh"
source "$here/cluster/netns.sh"
source "$here/cluster/slurm.sh"

usage() { sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

check_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it creates namespaces and starts Slurm's daemons)"; }

check_tools() {
  local t
  for t in unshare nsenter setsid ip sysctl munged slurmctld slurmd sinfo scontrol srun sbatch; do
    command -v "$t" > /dev/null || die "'$t' not found (scripts/setup.sh installs Slurm and munge; ip is iproute2, the others util-linux/procps)"
  done
  unshare --net --uts --mount true 2> /dev/null ||
    die "cannot create namespaces here (unshare --net --uts --mount failed: a container without CAP_SYS_ADMIN?)"
}

# munged refuses a socket whose directories others cannot search: check the chain above.
check_dir_chain() {
  local p
  p=$(dirname "$CL_DIR")
  while [ "$p" != / ]; do
    if [ -d "$p" ] && [ -z "$(find "$p" -maxdepth 0 -perm -o+x)" ]; then
      die "$p is not searchable by others, which munged needs; choose another REEL_CLUSTER_DIR"
    fi
    p=$(dirname "$p")
  done
}

# Something of this cluster still alive: a holder, a process in its namespaces, munged.
cl_alive() {
  local f name
  cl_munged_pid > /dev/null && return 0
  for f in "$CL_DIR"/ns/*.pid "$CL_DIR"/ns/*.id; do
    [ -e "$f" ] || continue
    name=$(basename "${f%.*}")
    cl_holder "$name" > /dev/null && return 0
    [ -n "$(cl_pids_in "$name")" ] && return 0
  done
  return 1
}

# Claims the state directory: refuses a live cluster or a directory that is not ours.
claim_dir() {
  if [ -d "$CL_DIR" ]; then
    if [ -f "$CL_DIR/.reel-cluster" ]; then
      cl_alive && die "already up ($CL_DIR); scripts/cluster.sh down first"
      rm -rf "$CL_DIR"  # the remains of a cluster whose processes are all gone
    elif [ -n "$(ls -A "$CL_DIR")" ]; then
      die "$CL_DIR exists and is not a reel cluster's state directory; set REEL_CLUSTER_DIR elsewhere"
    fi
  fi
  mkdir -p "$CL_DIR"
  : > "$CL_DIR/.reel-cluster"
  chmod 755 "$CL_DIR"
  mkdir -p "$CL_DIR"/{etc,log,ns,ctld,local}
}

up_failed() {
  cl_show_logs
  echo "cluster.sh: bring-up failed; tearing down what it made" >&2
  cmd_down > /dev/null 2>&1 || echo "cluster.sh: the tear-down failed too: run scripts/cluster.sh down" >&2
}

cmd_up() {
  local n=${1:-} cpus=${REEL_CLUSTER_CPUS:-2} timeout=${REEL_CLUSTER_SLURMD_TIMEOUT:-10} k start
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt "$CL_MAX_NODES" ]; then
    die "usage: up N, with 1 <= N <= $CL_MAX_NODES"
  fi
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "REEL_CLUSTER_CPUS must be a positive integer, got '$cpus'"
  # Slurm takes any SlurmdTimeout (0: never mark a node down); below 3 s a busy machine's
  # slow answers could mark healthy nodes down.
  if ! [[ $timeout =~ ^[0-9]+$ ]] || [ "$timeout" -lt 3 ]; then
    die "REEL_CLUSTER_SLURMD_TIMEOUT must be an integer >= 3 (seconds), got '$timeout'"
  fi
  check_root; check_tools; check_dir_chain
  start=$(date +%s%3N)
  claim_dir
  trap '[ $? -eq 0 ] || up_failed' EXIT
  for k in $(seq "$n"); do
    echo "rn$k"
    mkdir -p "$CL_DIR/nodes/rn$k/spool" "$CL_DIR/nodes/rn$k/local"
  done > "$CL_DIR/nodelist"
  cl_write_hosts "$n"
  cl_write_conf "$n" "$cpus" "$timeout"
  cl_write_env
  for k in sw ctl $(cl_nodes); do cl_start_holder "$k"; done
  for k in ctl $(cl_nodes); do cl_link "$k"; done
  cl_start_munged
  cl_in ctl slurmctld -f "$CL_DIR/etc/slurm.conf" ||
    die "slurmctld did not start: $(tail -n 3 "$CL_DIR/log/slurmctld.log" 2>/dev/null)"
  for k in $(cl_nodes); do cl_start_slurmd "$k"; done
  # shellcheck disable=SC2046
  cl_wait_idle 30 $(cl_nodes) || die "the nodes did not all become idle"
  trap - EXIT
  say "$n node(s) idle in $(cl_since "$start") s (state in $CL_DIR, subnet $CL_CIDR)"
  cat <<USE
  $0 exec ctl sinfo                      # Slurm's commands run in the controller namespace
  $0 exec ctl srun -N $n -n $((n * 2)) hostname
  $0 exec ctl srun --mpi=pmix -N $n -n $((n * 2)) build/launch/reel smoke --mib 1
  $0 exec rn1 bash                       # a shell on node rn1
  $0 down                                # when done
USE
}

# Ends every process in the cluster's namespaces (nodes, controller, switch: the veths
# and the bridge die with the switch namespace, the bind mounts with the mount namespaces),
# stops munged and removes the state directory. Touches nothing that is not recorded here.
cmd_down() {
  local f name pid left=""
  [ -d "$CL_DIR" ] || { say "nothing to tear down ($CL_DIR does not exist)"; return 0; }
  [ -f "$CL_DIR/.reel-cluster" ] || die "$CL_DIR is not a reel cluster's state directory; not touching it"
  check_root
  # A holder that started but whose namespaces were not recorded yet (a bring-up cut short).
  for f in "$CL_DIR"/ns/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "${f%.pid}")
    [ -f "$CL_DIR/ns/$name.id" ] && continue
    for _ in $(seq 10); do pid=$(cl_holder "$name") && break; sleep 0.1; done  # may be still setting up
    [ -z "$pid" ] || cl_record_ids "$pid" "$name"
  done
  local names=""
  for f in "$CL_DIR"/ns/*.id; do [ -e "$f" ] && names="$names $(basename "${f%.id}")"; done
  cl_kill_in "$names" || left=yes
  cl_stop_munged
  [ -z "$left" ] || die "some processes in the cluster's namespaces survive kill -9 (state kept in $CL_DIR; run down again)"
  rm -rf "$CL_DIR"
  say "down: nothing of the cluster is left"
}

cmd_status() {
  local name pid procs
  [ -f "$CL_DIR/nodelist" ] || { say "not up ($CL_DIR has no cluster)"; return 3; }
  echo "state $CL_DIR, subnet $CL_CIDR, munged $(cl_munged_pid || echo 'NOT RUNNING')"
  printf '%-6s %-9s %-12s %-8s %-5s %s\n' name hostname address holder link processes
  for name in ctl $(cl_nodes); do
    pid=$(cl_holder "$name" || echo gone)
    # The processes besides the holder: Slurm's daemons by name, the rest (steps' tasks,
    # shells) counted.
    procs=$(for p in $(cl_pids_in "$name"); do [ "$p" = "$pid" ] || cat "/proc/$p/comm" 2> /dev/null; done |
      awk '/^slurm[a-z]*$/ { n[$0]++; next } { other++ }
           END { for (k in n) { printf "%s%s(%d)", s, k, n[k]; s = " " } if (other) printf "%sother(%d)", s, other }' || true)
    printf '%-6s %-9s %-12s %-8s %-5s %s\n' "$name" "$(cl_hostname "$name")" "$(cl_addr "$name")" "$pid" \
      "$(cl_link_state "$name" 2> /dev/null || echo -)" "${procs:-none}"
  done
  echo "Slurm (sinfo in ctl):"
  cl_slurm sinfo -N -o '%N %T %c %O %E' 2>&1 | sed 's/^/  /' || echo "  slurmctld does not answer"
}

# Runs a command (default: a shell) inside NODE with the cluster's environment, replacing
# this script so that its exit status and signals are the command's own.
cmd_exec() {
  local name=${1:-} pid
  [ -n "$name" ] || die "usage: exec NODE|ctl CMD..."
  shift
  check_root
  cl_check_node "$name" ctl
  pid=$(cl_holder "$name") || die "node '$name' has no namespace holder (status shows what is left)"
  set -a; source "$CL_DIR/etc/env.sh"; set +a
  if [ $# -eq 0 ]; then
    if [ -t 0 ]; then set -- bash -i; else set -- bash; fi
  fi
  exec nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}

cmd_env() {
  [ -f "$CL_DIR/etc/env.sh" ] || die "the cluster is not up: scripts/cluster.sh up N"
  cat "$CL_DIR/etc/env.sh"
}

# Slurm's state of one node, e.g. "idle", "down*" (nothing when slurmctld does not answer).
node_state() { cl_node_states | awk -v n="$1" '$1 == n { print $2 }'; }

# A node Slurm marked DOWN returns to service only when told (or when its slurmd registers
# afresh, which a node that was merely unreachable does not do).
resume_if_down() {
  local state
  state=$(node_state "$1")
  case $state in
    down*|drain*|fail*)
      cl_slurm scontrol update NodeName="$1" State=RESUME
      say "$1 was '$state' in Slurm: scontrol update NodeName=$1 State=RESUME" ;;
  esac
}

cmd_node() {  # cut|heal|kill|revive NODE
  local action=$1 name=${2:-} holder
  [ -n "$name" ] || die "usage: $action NODE"
  check_root
  cl_check_node "$name"
  holder=$(cl_holder "$name") || die "$name has no namespace holder: the cluster is broken; down and up again"
  case $action in
    cut)
      cl_set_link "$name" down
      say "$name cut off (its link is down; its processes keep running). Slurm marks it DOWN after about SlurmdTimeout" ;;
    heal)
      cl_set_link "$name" up
      say "$name's link is up"
      resume_if_down "$name" ;;
    kill)
      local n; n=$(cl_pids_in "$name" | grep -cvx "$holder" || true)
      cl_kill_in "$name" "$holder" || die "some processes in $name survived kill -9"
      say "$name crashed: killed $n process(es) (slurmd, steps, tasks); revive brings it back" ;;
    revive)
      if cl_pids_in "$name" | grep -qvx "$holder"; then
        cl_pids_in "$name" | while read -r p; do cat "/proc/$p/comm" 2> /dev/null; done | grep -qx slurmd &&
          die "$name's slurmd is running already (kill it first, or heal a cut node)"
      fi
      [ "$(cl_link_state "$name")" = UP ] || say "warning: $name's link is cut: it stays unreachable until heal"
      cl_start_slurmd "$name"
      sleep 0.5  # slurmd registers within a fraction of a second
      resume_if_down "$name"
      cl_wait_idle 30 "$name" || die "$name did not become idle"
      say "$name is idle" ;;
  esac
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    exec) cmd_exec "$@" ;;
    env) cmd_env ;;
    cut|heal|kill|revive) cmd_node "$cmd" "$@" ;;
    -h|--help|help) usage ;;
    *) echo "cluster.sh: unknown command '$cmd'" >&2; usage ;;
  esac
}
main "$@"
