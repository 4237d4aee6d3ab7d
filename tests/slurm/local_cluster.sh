#!/usr/bin/env bash
# A private single-node Slurm cluster on localhost for tests (slurmctld + slurmd + munged,
# all state in one temporary directory). Source it, then:
#   slurm_start      # starts the daemons; exports SLURM_CONF; waits for the node
#   slurm_stop       # stops them and removes the directory (also on EXIT)
# Ports 6817/6818 are fixed: one cluster per machine at a time (the CTest entries that
# use it share a RESOURCE_LOCK).
slurm_start() {
  SLURM_TEST_DIR=$(mktemp -d /tmp/reel-slurm.XXXXXX)
  local S=$SLURM_TEST_DIR
  chmod 755 "$S"  # munged needs every directory above its socket searchable by all
  mkdir -p "$S"/{etc,munge,mkey,ctld,d,log}
  chmod 755 "$S/munge"; chmod 700 "$S/mkey"
  if [ ! -f /etc/munge/munge.key ]; then
    echo "no /etc/munge/munge.key: install the munge package" >&2; return 1
  fi
  # munged refuses a key not owned by the user running it.
  install -m0600 -o "$(id -u)" -g "$(id -g)" /etc/munge/munge.key "$S/mkey/munge.key"
  munged --key-file="$S/mkey/munge.key" --socket="$S/munge/munge.socket.2" \
    --pid-file="$S/mkey/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/mkey/munged.seed"
  local cpus; cpus=$(nproc)
  cat > "$S/etc/slurm.conf" <<CONF
ClusterName=reeltest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/d
SlurmctldPidFile=$S/ctld/slurmctld.pid
SlurmdPidFile=$S/d/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
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
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
JobRequeue=1
EnforcePartLimits=ALL
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$S/etc/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF" -N localhost
  trap slurm_stop EXIT
  for _ in $(seq 50); do
    timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed" && return 0
    sleep 0.2
  done
  echo "the local Slurm node did not come up; last log lines:" >&2
  tail -n 5 "$S"/log/*.log >&2
  return 1
}

slurm_stop() {
  local S=${SLURM_TEST_DIR:-}
  [ -n "$S" ] && [ -d "$S" ] || return 0
  for pidfile in "$S/d/slurmd.pid" "$S/ctld/slurmctld.pid"; do
    [ -f "$pidfile" ] && kill -TERM "$(cat "$pidfile")" 2>/dev/null
  done
  sleep 0.5
  munged -s --socket="$S/munge/munge.socket.2" 2>/dev/null || true
  [ -f "$S/mkey/munged.pid" ] && kill "$(cat "$S/mkey/munged.pid")" 2>/dev/null
  rm -rf "$S"
  SLURM_TEST_DIR=
}
