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
mpirun --oversubscribe --bind-to none -np "$ranks" "$build/launch/reel" train --config configs/tiny.ini "$@"
# The run directory: configs/tiny.ini's, unless the arguments name another.
run_dir=runs/tiny
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do [ "${args[i]}" != "--run.dir" ] || run_dir=${args[i + 1]}; done
"$build/launch/reel" sample --weights "$run_dir/model.h5" --data runs/world.h5 --count 4 --out "$run_dir/samples"
