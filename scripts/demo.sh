#!/usr/bin/env bash
# The README's main job: set up, build, generate the physics world, and train the tiny
# world model with FSDP on 4 CPU ranks (mpirun); then draw what it learned.
# Extra arguments override the configuration (e.g. --run.steps 600 --parallel.activation_checkpoint full).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
ranks=${REEL_RANKS:-4}
bash "$root/scripts/build.sh" --target reel
cd "$root"
mkdir -p runs
[ -f runs/world.h5 ] || "$build/launch/reel" data --out runs/world.h5 --clips 1088 --seed 7
# As root, Open MPI wants explicit consent; more ranks than cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The run directory: configs/tiny.ini's, unless the arguments name another.
run_dir=runs/tiny
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do [ "${args[i]}" != "--run.dir" ] || run_dir=${args[i + 1]}; done
mkdir -p "$run_dir"
start=$SECONDS
# The log (rank 0's, on stderr) also goes to RUN_DIR/train.log: its held-out trend is quoted below.
mpirun --oversubscribe --bind-to none -np "$ranks" "$build/launch/reel" train --config configs/tiny.ini "$@" 2>&1 |
  tee "$run_dir/train.log"
trained=$((SECONDS - start))
# The weights to sample: the best held-out evaluation's (run.keep_best, on in configs/tiny.ini:
# the last steps may overfit the 1,024 training clips), else the final ones.
trend=$(grep -o "held-out loss: best .*" "$run_dir/train.log" | tail -n 1 || true)
weights=$run_dir/model.h5 drawn="the final weights"
if [ -f "$run_dir/model_best.h5" ]; then
  weights=$run_dir/model_best.h5
  drawn="the best held-out evaluation's weights$(sed -n "s/.*model_best.h5 holds \(step [0-9]*\)'s weights.*/, \1/p" <<< "$trend")"
fi
# The held-out clips (the file's last data.eval_clips = 64): rollouts under the true and the
# reversed actions, measured against copying the last frame; pictures of the first four.
"$build/launch/reel" sample --weights "$weights" --data runs/world.h5 --count 64 --pictures 4 \
  --out "$run_dir/samples" | tee "$run_dir/sample.txt"
echo
echo "demo: trained on $ranks ranks in $trained s"
echo "demo: sampled     $weights ($drawn)"
[ -z "$trend" ] || echo "demo: $trend"
echo "demo: curves      $run_dir/curves.png (reel plot $run_dir redraws them)"
echo "demo: pictures    $run_dir/samples/sample_*.png (labelled rows: context, predicted, truth, predicted under reversed actions)"
echo "demo: metrics     $run_dir/metrics.jsonl (rollout_*, agent_err_*, action_* at each evaluation)"
echo "demo: the model on 64 held-out clips against copying the last context frame:"
grep -E "^(rollout MSE|agent position|action following)" "$run_dir/sample.txt" | sed 's/^/  /'
