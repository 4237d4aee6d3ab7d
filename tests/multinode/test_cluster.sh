#!/usr/bin/env bash
# scripts/cluster.sh: an emulated 2-node Slurm cluster on this machine (Linux namespaces).
#   1. srun -N2 -n4 places 2 tasks on each node, with distinct hostnames;
#   2. reel smoke under srun --mpi=pmix -N2 -n4: one 4-rank world, every collective right;
#      Open MPI uses vader (shared memory) within a node and tcp between nodes;
#   3. cut: the node is unreachable, srun to it fails, Slurm marks it DOWN; heal: it
#      works again;
#   4. kill (a node crash): Slurm marks it DOWN; revive: idle again, srun works;
#   5. down leaves nothing: no namespace, link, daemon or state directory of the cluster,
#      and the root namespace's links and addresses are as before.
# Exit 77 (a skip) without root, Slurm or namespaces.
# Usage: test_cluster.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
cluster=$root/scripts/cluster.sh
PATH=$PATH:/usr/sbin:/sbin
skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, Slurm's daemons)"
for t in slurmctld slurmd munged srun; do
  command -v "$t" > /dev/null || skip "$t not installed (scripts/setup.sh installs Slurm and munge)"
done
unshare --net --uts --mount true 2> /dev/null || skip "cannot create network namespaces here (unshare --net failed)"

# A state directory of its own: a cluster a user brought up may be running beside it.
export REEL_CLUSTER_DIR
REEL_CLUSTER_DIR=$(mktemp -u /tmp/reel-cluster-test.XXXXXX)
work=$(mktemp -d /tmp/reel-multinode.XXXXXX)
fail=0
bad() { echo "FAIL: $*"; fail=1; }
finish() {
  # shellcheck disable=SC2317  # (run by the trap)
  if [ "$fail" -ne 0 ] && [ -d "$REEL_CLUSTER_DIR/log" ]; then
    for f in "$REEL_CLUSTER_DIR"/log/*.log; do echo "== $f"; tail -n 15 "$f"; done
  fi
  timeout 60 "$cluster" down > /dev/null 2>&1 || echo "FAIL: scripts/cluster.sh down failed"
  rm -rf "$work"
}
trap finish EXIT
ctl() { local t=$1; shift; timeout "$t" "$cluster" exec ctl "$@"; }
state() { ctl 15 sinfo -h -n "$1" -o %T 2> /dev/null; }
# until SECONDS COMMAND...: polls COMMAND every 0.5 s; false after SECONDS.
until_ok() {
  local limit=$1; shift
  for _ in $(seq $((limit * 2))); do "$@" && return 0; sleep 0.5; done
  return 1
}
is_down() { [[ $(state "$1") == down* ]]; }
is_idle() { [ "$(state "$1")" = idle ]; }
reachable() { ctl 10 timeout 3 bash -c "echo > /dev/tcp/$1/6918" 2> /dev/null; }
root_net() { ip -o link | awk '{print $2}'; ip -o addr | awk '{print $2, $4}'; ip netns list; }
root_net > "$work/net.before"

start=$(date +%s%N)
timeout 60 "$cluster" up 2 > "$work/up.log" 2>&1 || { cat "$work/up.log"; bad "up 2 failed"; exit 1; }
echo "up 2: $(( ($(date +%s%N) - start) / 1000000 )) ms"
root_net | diff "$work/net.before" - > /dev/null || bad "up changed the root namespace's links, addresses or named namespaces"
cat "$REEL_CLUSTER_DIR"/ns/*.id > "$work/ns.ids"

# 1. Placement.
hosts=$(ctl 30 srun -N2 -n4 hostname | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
[ "$hosts" = "rn1=2 rn2=2 " ] || bad "srun -N2 -n4 hostname gave '$hosts', not 2 tasks on each of rn1 and rn2"

# 2. One MPI world across the nodes: vader inside a node, tcp between them.
start=$(date +%s)
ctl 300 env OMPI_MCA_btl_base_verbose=100 srun --mpi=pmix -N2 -n4 "$reel" smoke --mib 1 --parallel.sp 2 \
  --dist.threads 1 > "$work/smoke.log" 2>&1 || bad "reel smoke under srun --mpi=pmix -N2 -n4 failed"
grep -q "4 rank(s) via srun" "$work/smoke.log" || bad "reel smoke did not form one 4-rank world"
grep -q "all collectives correct" "$work/smoke.log" || bad "reel smoke: collectives wrong or missing"
# "[rn1:123] mca: bml: Using tcp btl for send to [[j,s],2] on node rn2"
sed -n 's/^\[\(rn[0-9]*\):[0-9]*\] mca: bml: Using \([a-z]*\) btl for send to .* on node \(rn[0-9]*\)$/\1 \2 \3/p' \
  "$work/smoke.log" | sort -u > "$work/btl.txt"
grep -q " tcp " "$work/btl.txt" || bad "no tcp btl between the nodes"
grep -q " vader " "$work/btl.txt" || bad "no vader btl within a node"
wrong=$(awk '$2 == "vader" && $1 != $3 || $2 == "tcp" && $1 == $3' "$work/btl.txt")
[ -z "$wrong" ] || bad "wrong btl (from, btl, to): $wrong"
echo "reel smoke on 2 nodes x 2 ranks: $(( $(date +%s) - start )) s"
echo "btl: $(awk '$2 != "self" {print $1 "->" $3 ":" $2}' "$work/btl.txt" | tr '\n' ' ')"

# 3. A partition: rn2's link down. Unreachable, srun to it fails, Slurm marks it DOWN.
rn2=$(awk '$2 == "rn2" { print $1 }' "$REEL_CLUSTER_DIR/etc/hosts")
reachable "$rn2" || bad "rn2's slurmd port is not reachable before the cut"
start=$(date +%s)
"$cluster" cut rn2 > /dev/null || bad "cut rn2 failed"
reachable "$rn2" && bad "rn2 is still reachable after cut"
ctl 20 srun -w rn2 -N1 -n1 hostname > /dev/null 2>&1 && bad "srun on a cut-off node succeeded"
until_ok 60 is_down rn2 || bad "Slurm did not mark the cut-off rn2 DOWN within 60 s"
echo "cut -> DOWN: $(( $(date +%s) - start )) s"
"$cluster" heal rn2 > /dev/null || bad "heal rn2 failed"
until_ok 30 is_idle rn2 || bad "rn2 did not return to idle after heal (state: $(state rn2))"
[ "$(ctl 30 srun -w rn2 -N1 -n1 hostname 2>&1)" = rn2 ] || bad "srun on rn2 after heal failed"

# 4. A crash: every process of rn2 killed; revive brings it back.
start=$(date +%s)
"$cluster" kill rn2 > /dev/null || bad "kill rn2 failed"
read -r net _ < "$REEL_CLUSTER_DIR/ns/rn2.id"
holder=$(cat "$REEL_CLUSTER_DIR/ns/rn2.pid")
left=$(stat -L -c '%i %n' /proc/[0-9]*/ns/net 2> /dev/null | awk -v n="$net" -v h="/proc/$holder/ns/net" '$1 == n && $2 != h')
[ -z "$left" ] || bad "processes left in rn2 after kill: $left"
status=$("$cluster" status)
grep -q "^rn2 .* none$" <<< "$status" || bad "status does not show rn2 empty: $(grep '^rn2' <<< "$status")"
until_ok 60 is_down rn2 || bad "Slurm did not mark the killed rn2 DOWN within 60 s"
echo "kill -> DOWN: $(( $(date +%s) - start )) s"
timeout 60 "$cluster" revive rn2 > /dev/null || bad "revive rn2 failed"
is_idle rn2 || bad "rn2 is not idle after revive (state: $(state rn2))"
hosts=$(ctl 30 srun -N2 -n2 hostname | sort | tr '\n' ' ')
[ "$hosts" = "rn1 rn2 " ] || bad "srun -N2 after revive gave '$hosts'"

# 5. Nothing left.
start=$(date +%s%N)
timeout 60 "$cluster" down > /dev/null || bad "down failed"
echo "down: $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ -e "$REEL_CLUSTER_DIR" ] && bad "the state directory $REEL_CLUSTER_DIR is still there"
# A process of the cluster: one inside its namespaces, or one naming its directory (an
# exited process is a zombie until init reaps it: no namespaces, no command line).
left=$(while read -r net _; do stat -L -c '%i %n' /proc/[0-9]*/ns/net 2> /dev/null | awk -v n="$net" '$1 == n'; done < "$work/ns.ids")
[ -z "$left" ] || bad "processes left in the cluster's namespaces: $left"
pgrep -af -- "$REEL_CLUSTER_DIR" && bad "processes naming $REEL_CLUSTER_DIR are left"
root_net | diff "$work/net.before" - || bad "the root namespace's links, addresses or named namespaces changed"

[ $fail -eq 0 ] && echo "emulated multi-node cluster: ok"
exit $fail
