#!/usr/bin/env bash
# The CPU peak MFU divides by is the host's, recorded once: two runs of one configuration
# print the same peak, the first measured and recorded, the second read from the cache;
# each rank's share is the host's peak / the ranks on its node (2 ranks on one host: half;
# the same 2 ranks as two emulated nodes, REEL_NODE_NAME: each the whole host's; bound to a
# core each: still the whole host's).
# Usage: test_cpu_peak.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 REEL_CPU_PEAK_CACHE=$work/cache/cpu_peak.ini
"$reel" data --out "$work/world.h5" --clips 40 --seed 4 > /dev/null || exit 1
args=(train --config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.eval_clips 8 --data.global_batch 8
      --run.steps 2 --run.eval_every 0 --run.log_every 100 --dist.threads 1)
mpi=(timeout 200 mpirun --oversubscribe --bind-to none -x REEL_CPU_PEAK_CACHE)
for run in first second; do
  "${mpi[@]}" -np 2 "$reel" "${args[@]}" --run.dir "$work/$run" > "$work/$run.log" 2>&1 || { tail "$work/$run.log"; exit 1; }
done
"${mpi[@]}" -np 1 -x REEL_NODE_NAME=nodeA "$reel" "${args[@]}" --run.dir "$work/nodes" \
  : -np 1 -x REEL_NODE_NAME=nodeB "$reel" "${args[@]}" --run.dir "$work/nodes" > "$work/nodes.log" 2>&1 ||
  { tail "$work/nodes.log"; exit 1; }
# Ranks bound to one core each (Open MPI's default at 2 ranks, Slurm's task/affinity): the
# host's cores are the union of their masks, so the same key and the same peak.
timeout 200 mpirun --oversubscribe --bind-to core -x REEL_CPU_PEAK_CACHE -np 2 "$reel" "${args[@]}" \
  --run.dir "$work/bound" > "$work/bound.log" 2>&1 || { tail "$work/bound.log"; exit 1; }
python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
line = re.compile(r"peak ([0-9.]+) GFLOP/s per rank \(host ([0-9.]+) GFLOP/s over (\d) ranks?, (.*)\); MFU")
def peak(run):
    found = [m for m in map(line.search, open(f"{work}/{run}.log")) if m]
    assert len(found) == 1, f"{run}: no single peak line in its log"
    m = found[0]
    return float(m[1]), float(m[2]), int(m[3]), m[4]
cache = f"{work}/cache/cpu_peak.ini"
first, second, nodes, bound = peak("first"), peak("second"), peak("nodes"), peak("bound")
assert bound[:3] == first[:3] and "read from " + cache in bound[3], \
    f"ranks bound to a core each counted their own cores, not the host's: {bound} vs {first}"
assert "recorded in " + cache in first[3], f"the first run did not record its measurement: {first}"
assert "read from " + cache in second[3], f"the second run did not read the first's: {second}"
assert first[:3] == second[:3], f"two runs of one configuration, two peaks: {first} vs {second}"
assert first[2] == 2 and abs(first[0] - first[1] / 2) <= 0.06, f"2 ranks on one host: not half each: {first}"
assert "read from " + cache in nodes[3] and nodes[2] == 1, f"two nodes of one rank: {nodes}"
assert nodes[1] == first[1] and nodes[0] == nodes[1], f"a node's only rank has the whole host: {nodes}"
print(f"cpu peak: {first[0]} GFLOP/s per rank (host {first[1]}) in both runs, read from the cache by the second; "
      f"{nodes[0]} per rank as two 1-rank nodes: ok")
PY
