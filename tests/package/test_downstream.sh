#!/usr/bin/env bash
# package.downstream: reel as a package another project uses (docs/install.md).
#   1. cmake --install BUILD --prefix BUILD/package-test/prefix puts the libraries, headers,
#      reel, its scripts and the CMake package where docs/install.md says;
#   2. examples/downstream, configured with -DCMAKE_PREFIX_PATH=PREFIX and nothing else a
#      user would not pass (reelConfig.cmake finds LibTorch, MPI, HDF5, ... itself), builds,
#      and each of its programs runs on 2 ranks and prints OK;
#   3. the installed reel answers --version, reel-mpirun runs the reel beside it, and
#      `reel plot` draws with the installed plot script, also after the prefix has moved
#      (the script is looked up beside the executable, not at a compiled-in path).
# usage: test_downstream.sh CMAKE GENERATOR BUILD_DIR SOURCE_DIR MPIEXEC [COMPILER_LAUNCHER]
set -uo pipefail
cmake=$1 generator=$2 build=$3 src=$4 mpiexec=$5 launcher=${6:-}
work=$build/package-test
prefix=$work/prefix
fail() { echo "FAIL: $*"; exit 1; }
# A user's shell, not reel's build: no hints from the environment, none of reel's overrides.
unset CMAKE_PREFIX_PATH Torch_DIR CUDAToolkit_ROOT REEL_PYTHON REEL_PLOT_SCRIPT REEL_TENSORBOARD_SCRIPT
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=("$mpiexec" --oversubscribe --bind-to none -np 2)

# The examples' programs, each run on 2 ranks; each prints a line starting with OK on rank 0.
programs=(allreduce_check own_model)

rm -rf "$work" && mkdir -p "$work"
start=$SECONDS
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 ||
  fail "cmake --install: $(tail -n 20 "$work/install.log")"
for f in lib/cmake/reel/reelConfig.cmake lib/cmake/reel/reelConfigVersion.cmake lib/cmake/reel/reelTargets.cmake \
         lib/libreel_dist.a lib/libreel_model.a lib/libreel_plan.a lib/libreel_sequence.a \
         include/reel/dist/runtime.hpp include/reel/model/world_model.hpp include/reel/parallel/sequence/ring.hpp \
         include/reel/train/trainer.hpp bin/reel bin/reel-mpirun \
         share/reel/scripts/plot_run.py share/reel/scripts/metrics_to_tensorboard.py share/reel/scripts/convert_videos.py \
         share/reel/slurm/train.sbatch share/reel/slurm/sweep.sbatch share/reel/slurm/summary.sh; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done
[ ! -e "$prefix/include/reel/launch" ] || fail "launch/'s headers (the executable's own) were installed"
[ -z "$(find "$prefix/include" -type f ! -name '*.hpp')" ] || fail "files other than headers under include/: $(find "$prefix/include" -type f ! -name '*.hpp')"
[ -z "$(find "$prefix/lib" -name 'libreel_launch*')" ] || fail "reel_launch (the executable's own library) was installed"
for s in train.sbatch sweep.sbatch; do
  grep -qxF "installed=\"$prefix\"" "$prefix/share/reel/slurm/$s" || fail "the installed $s does not name its prefix"
done
echo "installed in $((SECONDS - start)) s: $(find "$prefix" -type f | wc -l) files, $(du -sh "$prefix" | cut -f1)"

start=$SECONDS
args=(-S "$src/examples/downstream" -B "$work/build" -G "$generator" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release)
[ -n "$launcher" ] && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
"$cmake" "${args[@]}" > "$work/configure.log" 2>&1 || fail "configuring examples/downstream: $(grep -A12 'CMake Error' "$work/configure.log" | head -n 40)"
found=$(sed -n 's/^reel_DIR:PATH=//p' "$work/build/CMakeCache.txt")
[ "$found" = "$prefix/lib/cmake/reel" ] || fail "find_package(reel) found $found, not the installed package"
"$cmake" --build "$work/build" -j 2 > "$work/build.log" 2>&1 || fail "building examples/downstream: $(grep -B2 -A10 -m3 'error' "$work/build.log")"
echo "examples/downstream configured and built against it in $((SECONDS - start)) s"
for p in "${programs[@]}"; do
  out=$(timeout 120 "${mpirun[@]}" "$work/build/$p" 2>&1) || fail "$p on 2 ranks: $out"
  grep -q "^OK" <<< "$out" || fail "$p on 2 ranks printed no OK: $out"
  echo "$p: $(grep "^OK" <<< "$out")"
done

out=$("$prefix/bin/reel" --version 2>&1) || fail "installed reel --version: $out"
grep -Eq "^reel [0-9]+\.[0-9]+" <<< "$out" || fail "installed reel --version: $out"
out=$("$prefix/bin/reel-mpirun" -n 2 -- smoke --mib 1 2>&1) || fail "installed reel-mpirun: $out"
grep -q "all collectives correct" <<< "$out" || fail "installed reel-mpirun smoke: $out"

# reel plot with no override: the interpreter is the build's venv (or python3), the script
# the installed one, found beside the executable, wherever the prefix is.
run=$work/run
mkdir -p "$run"
for step in 1 2 3 4; do
  echo "{\"step\": $step, \"loss\": 1.$((5 - step)), \"lr\": 0.001, \"tokens_per_s\": 1000}" >> "$run/metrics.jsonl"
done
out=$("$prefix/bin/reel" plot "$run" 2>&1) || fail "installed reel plot: $out"
[ -s "$run/curves.png" ] || fail "installed reel plot wrote no $run/curves.png: $out"
moved=$work/moved
mv "$prefix" "$moved"
out=$("$moved/bin/reel" plot "$run" --out "$run/moved.png" 2>&1) || fail "reel plot from a moved prefix: $out"
[ -s "$run/moved.png" ] || fail "reel plot from a moved prefix wrote no picture: $out"
rm "$moved/share/reel/scripts/plot_run.py"
out=$("$moved/bin/reel" plot "$run" --out "$run/none.png" 2>&1) && fail "reel plot without its script succeeded: $out"
grep -q "$moved/share/reel/scripts/plot_run.py" <<< "$out" ||
  fail "reel plot without its script does not name where it looked ($moved/share/reel/scripts/plot_run.py): $out"
out=$(REEL_PLOT_SCRIPT=$src/scripts/plot_run.py "$moved/bin/reel" plot "$run" --out "$run/override.png" 2>&1) &&
  [ -s "$run/override.png" ] || fail "REEL_PLOT_SCRIPT does not override the installed script: $out"
echo "installed reel: --version, reel-mpirun, reel plot with its own script (moved prefix too), REEL_PLOT_SCRIPT"
echo "package downstream: ok"
