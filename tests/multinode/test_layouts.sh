#!/usr/bin/env bash
# Two real nodes (scripts/cluster.sh: network namespaces, Slurm, Open MPI over TCP between
# them), two ranks each, under `srun --mpi=pmix`:
#   - FSDP over the 4 ranks, HSDP sharded inside each node and replicated across
#     (--parallel.shard_group node), and hybrid sequence parallelism (Ulysses inside a node,
#     the ring across) each match one rank: per-step losses and gradient norms within 1e-5;
#   - the start-up log names the placement (which node runs which ranks, which axes cross);
#   - rank 0's bytes to the other node per step (metrics.jsonl comm_bytes_internode) equal
#     reel plan's prediction for 2 nodes x 2 ranks exactly, call by call, and so do the totals.
# Usage: test_layouts.sh path/to/reel repository-root. Exit 77 (skipped) where this machine
# cannot make namespaces or has no Slurm (the reason is printed).
set -uo pipefail
reel=$1 root=$2
cluster=(bash "$root/scripts/cluster.sh")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
multinode_can_run || exit 77
multinode_up layouts 2

"$reel" data --out "$work/world.h5" --clips 40 --seed 3 > /dev/null || exit 1
common=(--config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.global_batch 8 --data.eval_clips 4
        --run.eval_every 0 --run.steps 4 --run.log_every 1 --checkpoint.every 0 --run.plot false --dist.threads 1)
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 \
  "$reel" train --run.dir "$work/one" "${common[@]}" > "$work/one.log" 2>&1 || { tail "$work/one.log"; exit 1; }

layouts=("fsdp|"
         "hsdp|--parallel.shard_group node"
         "hybrid_sp|--parallel.sp 4 --parallel.sp_mode hybrid --parallel.ulysses 2")
for entry in "${layouts[@]}"; do
  name=${entry%%|*}
  read -r -a opts <<< "${entry#*|}"
  timeout 300 "${cluster[@]}" exec ctl srun --mpi=pmix -N 2 -n 4 --ntasks-per-node 2 \
    "$reel" train --run.dir "$work/$name" "${common[@]}" "${opts[@]}" > "$work/$name.log" 2>&1 \
    || { tail -n 20 "$work/$name.log"; bad "$name: the 2-node run failed"; continue; }
  grep -q "placement: 2 nodes x 2 ranks: rn1 {0,1}, rn2 {2,3}" "$work/$name.log" \
    || { grep placement "$work/$name.log"; bad "$name: the log does not name the placement"; }
  "$reel" plan --given --cluster cpu --nodes 2 --gpus-per-node 2 --json --config "$root/configs/tiny.ini" \
    --data.global_batch 8 "${opts[@]}" > "$work/$name.plan.json" 2> "$work/$name.plan.err" \
    || { cat "$work/$name.plan.err"; bad "$name: reel plan failed"; continue; }
  "$root/.venv/bin/python" - "$name" "$work/one/metrics.jsonl" "$work/$name/metrics.jsonl" "$work/$name.plan.json" <<'PY' \
    || bad "$name: see above"
import json, sys
name, one, run, plan = sys.argv[1:]
ref = [json.loads(l) for l in open(one)]
got = [json.loads(l) for l in open(run)]
assert [r["step"] for r in got] == [r["step"] for r in ref], f"steps {[r['step'] for r in got]}"
for a, b in zip(ref, got):
    for key in ("loss", "grad_norm"):
        assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(a[key])), f"step {a['step']} {key}: 1 rank {a[key]}, 2 nodes {b[key]}"
layout = json.load(open(plan))["layouts"][0]
measured, predicted = got[-1]["comm_bytes_internode"], layout["comm_bytes_internode"]
assert measured == predicted, f"bytes to the other node: measured {measured}, planned {predicted}"
assert got[-1]["comm_bytes"] == layout["comm_bytes"], f"bytes: measured {got[-1]['comm_bytes']}, planned {layout['comm_bytes']}"
print(f"{name}: {len(got)} steps match 1 rank within 1e-5; rank 0 sends {sum(measured.values())} of "
      f"{sum(got[-1]['comm_bytes'].values())} bytes per step to the other node, as planned {measured}")
PY
done
[ $fail -eq 0 ] && echo "multinode layouts: ok"
exit $fail
