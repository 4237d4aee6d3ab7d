#!/usr/bin/env bash
# package.add_subdirectory: examples/downstream with reel's source tree added by
# add_subdirectory (-DREEL_SOURCE_DIR) configures and generates (building it would build
# all of reel again): reel as a subproject leaves the build type alone, builds neither its
# tests nor its benchmarks, and the project's program links reel::dist under that name.
# usage: test_add_subdirectory.sh CMAKE GENERATOR BUILD_DIR SOURCE_DIR TORCH_DIR REEL_CUDA
# (the build's LibTorch and CUDA choice, as a project adding reel passes them)
set -uo pipefail
cmake=$1 generator=$2 build=$3 src=$4 torch_dir=$5 reel_cuda=$6
work=$build/package-subdirectory
fail() { echo "FAIL: $*"; exit 1; }
unset CMAKE_PREFIX_PATH Torch_DIR CMAKE_BUILD_TYPE
rm -rf "$work" && mkdir -p "$work"
start=$SECONDS
"$cmake" -S "$src/examples/downstream" -B "$work" -G "$generator" -DREEL_SOURCE_DIR="$src" -DTorch_DIR="$torch_dir" \
  -DREEL_CUDA="$reel_cuda" > "$work/configure.log" 2>&1 ||
  fail "configuring examples/downstream with add_subdirectory(reel): $(grep -A12 'CMake Error' "$work/configure.log" | head -n 40)"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$work/CMakeCache.txt"; }
[ -z "$(cache CMAKE_BUILD_TYPE)" ] || fail "reel as a subproject set CMAKE_BUILD_TYPE=$(cache CMAKE_BUILD_TYPE)"
[ "$(cache REEL_BUILD_TESTS)" = OFF ] && [ "$(cache REEL_BUILD_BENCH)" = OFF ] ||
  fail "reel as a subproject builds its tests ($(cache REEL_BUILD_TESTS)) or benchmarks ($(cache REEL_BUILD_BENCH))"
# The generated build files (Ninja's, or Makefiles'): what is built, and how it links.
generated=$(find "$work" -maxdepth 3 \( -name build.ninja -o -name Makefile2 -o -path '*allreduce_check.dir/link.txt' \))
[ -n "$generated" ] || fail "no build files generated"
grep -q "allreduce_check" $generated || fail "no target allreduce_check"
! grep -Eq "reel_dist_tests|reel_comm_bench" $generated || fail "reel's tests or benchmarks are targets"
grep -q "reel/dist/libreel_dist\.a" $generated || fail "allreduce_check does not link reel's reel_dist"
echo "package add_subdirectory: configured and generated in $((SECONDS - start)) s: ok"
