#!/usr/bin/env bash
# Shared by the multinode tests (sourced): whether this machine can host the emulated
# cluster (scripts/cluster.sh), and small polling helpers.

# A state directory of the tests' own: a cluster a developer brought up (the default
# /tmp/reel-cluster) is never taken down by a test run.
export REEL_CLUSTER_DIR=/tmp/reel-cluster-ctest

# True when the cluster can come up here; otherwise prints why (CTest shows it as the
# skip reason: the caller exits 77).
multinode_can_run() {
  if [ "$(id -u)" != 0 ]; then echo "skipped: the emulated cluster needs root (network namespaces, Slurm daemons)"; return 1; fi
  local tool
  for tool in unshare nsenter ip slurmctld slurmd munged srun sbatch; do
    command -v "$tool" > /dev/null || { echo "skipped: $tool is not installed (scripts/setup.sh installs Slurm and munge)"; return 1; }
  done
  unshare --net --uts true 2> /dev/null || { echo "skipped: this machine cannot create network namespaces (unshare --net failed)"; return 1; }
  return 0
}

# until_ok SECONDS COMMAND...: polls COMMAND every 0.5 s; false after SECONDS.
until_ok() {
  local limit=$1; shift
  local i
  for ((i = 0; i < limit * 2; i++)); do "$@" && return 0; sleep 0.5; done
  return 1
}

# multinode_up NAME NODES: a work directory ($work, removed at exit unless REEL_KEEP is
# set) and a cluster of NODES nodes, taken down at exit, also when the test fails; first
# takes down what a test killed at its timeout may have left. Needs $cluster.
multinode_up() {
  work=$(mktemp -d "/tmp/reel-$1.XXXXXX")
  chmod 755 "$work"
  trap '"${cluster[@]}" down > /dev/null 2>&1; [ -n "${REEL_KEEP:-}" ] || rm -rf "$work"' EXIT
  "${cluster[@]}" down > /dev/null 2>&1
  "${cluster[@]}" up "$2" > "$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
}

fail=0
bad() { echo "FAIL: $*"; fail=1; }
log_has() { grep -q -- "$2" "$1" 2> /dev/null; }
lines_at_least() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }
