#!/usr/bin/env bash
# The world-model metrics in metrics.jsonl are the same at every layout (1 rank, dp=2,
# ring sp=2) and the same as `reel sample` measures on the run's final weights.
# Usage: test_rollout_metrics.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$work/world.h5" --clips 40 --seed 4 > /dev/null || exit 1
args=(train --config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.eval_clips 8 --data.global_batch 8
      --run.steps 6 --run.eval_every 6 --run.rollout_steps 2 --run.log_every 100)
"$reel" "${args[@]}" --run.dir "$work/one" --dist.threads 2 > "$work/one.log" 2>&1 || { tail "$work/one.log"; exit 1; }
for layout in "dp2" "sp2 --parallel.sp 2"; do
  set -- $layout
  timeout 200 mpirun --oversubscribe --bind-to none -np 2 "$reel" "${args[@]}" --run.dir "$work/$1" --dist.threads 1 \
    "${@:2}" > "$work/$1.log" 2>&1 || { tail "$work/$1.log"; exit 1; }
done
"$reel" sample --weights "$work/one/model.h5" --data "$work/world.h5" --count 8 --steps 2 --pictures 0 --json \
  > "$work/sample.json" || exit 1
python3 - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
keys = ["rollout_mse", "rollout_mse_copy", "rollout_ratio", "agent_err_px", "agent_err_copy_px", "action_gain",
        "action_shift_px", "action_shift_physics_px"]
def last(run):
    return [json.loads(l) for l in open(f"{work}/{run}/metrics.jsonl")][-1]
ref = last("one")
assert all(math.isfinite(ref[k]) for k in keys), ref
assert len(ref["rollout_mse_groups"]) == 2 and len(ref["agent_err_px_frames"]) == 4, ref
others = {"dp2": last("dp2"), "sp2": last("sp2"), "reel sample": json.load(open(f"{work}/sample.json"))}
for name, got in others.items():
    for k in keys:
        assert math.isclose(got[k], ref[k], rel_tol=1e-3, abs_tol=1e-5), f"{name}: {k} {got[k]} vs one rank {ref[k]}"
print("rollout metrics: 1 rank, dp=2, sp=2 and reel sample agree:",
      ", ".join(f"{k} {ref[k]:.4f}" for k in keys[:4]))
PY
