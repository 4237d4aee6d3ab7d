# shellcheck shell=bash
# scripts/cluster.sh: munge and Slurm. Sourced, never run.

# One munged in the root namespace with a key of its own; every namespace reaches it
# through its socket file (a unix socket at a path works across network namespaces).
# munged insists on: a key owned by its user and private; every directory above the
# socket searchable (hence the 755 chain) and not writable by others.
cl_start_munged() {
  local d=$CL_DIR
  mkdir -p "$d/munge" "$d/mkey"
  chmod 755 "$d" "$d/munge"; chmod 700 "$d/mkey"
  (umask 077; dd if=/dev/urandom of="$d/mkey/munge.key" bs=1024 count=1 status=none)
  munged --key-file="$d/mkey/munge.key" --socket="$d/munge/munge.socket.2" \
    --pid-file="$d/mkey/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/mkey/munged.seed" \
    || die "munged did not start: $(tail -n 3 "$d/log/munged.log" 2>/dev/null)"
}

# The munged of this cluster (its command line names our socket), or nothing.
cl_munged_pid() {
  local pid
  pid=$(cat "$CL_DIR/mkey/munged.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--socket=$CL_DIR/munge/munge.socket.2" || return 1
  echo "$pid"
}

cl_stop_munged() {
  local pid
  pid=$(cl_munged_pid) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # Gone once its command line is (an exited munged stays a zombie until init reaps it).
  for _ in $(seq 50); do cl_munged_pid > /dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# slurm.conf. Settings that matter here (all Slurm's own; see docs/multinode.md):
#  - proctrack/linuxproc, task/none, no cgroup plugins: several slurmds on one kernel
#    would fight over one cgroup tree;
#  - config_overrides: every node may declare REEL_CLUSTER_CPUS CPUs whatever the machine has;
#  - SlurmdTimeout: how long a silent node stays up before Slurm marks it DOWN (real
#    clusters use ~300 s; short here so tests see node failures quickly);
#  - cred_expire=10: a requeued job becomes eligible ~11 s after the requeue, not ~2 min;
#  - per-node spool, pid and log files through %n; TmpFS at a path each node mounts its own
#    directory on.
cl_write_conf() {
  local n=$1 cpus=$2 timeout=$3 d=$CL_DIR k
  cat > "$d/etc/slurm.conf" <<CONF
ClusterName=reelcluster
SlurmctldHost=rnctl($(cl_addr ctl))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket.2,cred_expire=10
CredType=cred/munge
StateSaveLocation=$d/ctld
SlurmdSpoolDir=$d/nodes/%n/spool
SlurmctldPidFile=$d/ctld/slurmctld.pid
SlurmdPidFile=$d/nodes/%n/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-%n.log
SlurmctldPort=$CL_CTLD_PORT
SlurmdPort=$CL_SLURMD_PORT
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=$timeout
MessageTimeout=5
InactiveLimit=0
KillWait=5
MinJobAge=300
JobRequeue=1
EnforcePartLimits=ALL
MailProg=/bin/true
TmpFS=$d/local
CONF
  for k in $(seq "$n"); do
    echo "NodeName=rn$k NodeAddr=$(cl_addr "rn$k") NodeHostname=rn$k CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN"
  done >> "$d/etc/slurm.conf"
  echo "PartitionName=reel Nodes=rn[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES" >> "$d/etc/slurm.conf"
}

# The environment for jobs, printed by `env` and set by `exec`: Open MPI's byte transfer
# layers (shared memory within a node, TCP between nodes) and its out-of-band channel kept
# on the cluster's subnet, and root allowed (containers).
cl_write_env() {
  cat > "$CL_DIR/etc/env.sh" <<ENV
export SLURM_CONF=$CL_DIR/etc/slurm.conf
export REEL_CLUSTER_DIR=$CL_DIR
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=$CL_CIDR
export OMPI_MCA_oob_tcp_if_include=$CL_CIDR
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ENV
}

cl_start_slurmd() {  # NODE
  cl_in "$1" slurmd -f "$CL_DIR/etc/slurm.conf" -N "$1" ||
    die "slurmd on $1 did not start: $(tail -n 3 "$CL_DIR/log/slurmd-$1.log" 2>/dev/null)"
}

# The Slurm state of each node: "rn1 idle" lines (sinfo's long state names).
cl_node_states() { cl_slurm sinfo -h -N -o '%N %T' 2>/dev/null | sort -u; }

# Waits up to SECONDS until every node named is idle; otherwise prints what it saw.
cl_wait_idle() {
  local limit=$1 states; shift
  for _ in $(seq $((limit * 5))); do
    states=$(cl_node_states || true)
    local all=1 node
    for node in "$@"; do grep -qx "$node idle" <<< "$states" || all=0; done
    [ $all -eq 1 ] && return 0
    sleep 0.2
  done
  echo "cluster.sh: after ${limit} s the nodes are: $(tr '\n' ' ' <<< "${states:-no answer from slurmctld}")" >&2
  return 1
}

cl_show_logs() {
  local f
  for f in "$CL_DIR"/log/*.log; do
    [ -s "$f" ] || continue
    echo "== $f (last lines)" >&2
    tail -n 5 "$f" >&2
  done
}
