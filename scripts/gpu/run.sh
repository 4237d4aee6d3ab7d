#!/usr/bin/env bash
# Run THERE, on the lent GPU machine (through the device tool, with .gpu-deps carried):
# unpacks the Debian packages from scripts/gpu/prepare.sh into /tmp/deps, builds reel
# against that machine's own torch (CUDA 13) and NCCL for sm_90, runs the GPU tests and
# the CPU suite, and writes logs to $OUT (or ./gpu-out).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/gpu-out}
deps=/tmp/deps
mkdir -p "$out" "$deps"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc
} > "$out/machine.txt" 2>&1
for deb in "$root"/.gpu-deps/*.deb; do dpkg -x "$deb" "$deps"; done
lib=$deps/usr/lib/x86_64-linux-gnu
# A relocated Open MPI finds its own files through OPAL_PREFIX.
export OPAL_PREFIX=$deps/usr PATH=$deps/usr/bin:$PATH
export LD_LIBRARY_PATH=$lib:$lib/openmpi/lib:${LD_LIBRARY_PATH:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=$(command -v python3)
nccl_home=$($py -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null)
[ -e "$nccl_home/lib/libnccl.so" ] || ln -sf "$(ls "$nccl_home"/lib/libnccl.so.* | head -1)" "$nccl_home/lib/libnccl.so" 2>/dev/null
export NCCL_HOME=$nccl_home LD_LIBRARY_PATH=$nccl_home/lib:$LD_LIBRARY_PATH
cmake -S "$root" -B /tmp/reel-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DREEL_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DREEL_PYTHON="$py" -DCMAKE_PREFIX_PATH="$deps/usr" \
  -DMPI_CXX_COMPILER="$deps/usr/bin/mpicxx" -DGTest_DIR="$lib/cmake/GTest" \
  -DBoost_DIR="$lib/cmake/Boost-1.74.0" -Dspdlog_DIR="$lib/cmake/spdlog" -Dnlohmann_json_DIR="$deps/usr/share/cmake/nlohmann_json" \
  -DHDF5_ROOT="$deps/usr" > "$out/configure.log" 2>&1 || { tail -50 "$out/configure.log"; exit 1; }
cmake --build /tmp/reel-build -j "$(nproc)" > "$out/build.log" 2>&1 || { tail -60 "$out/build.log"; exit 1; }
cd /tmp/reel-build
ctest -L gpu --output-on-failure > "$out/ctest-gpu.log" 2>&1; gpu_rc=$?
ctest -LE gpu -j 8 --output-on-failure > "$out/ctest-cpu.log" 2>&1; cpu_rc=$?
mpirun -np 1 ./launch/reel smoke --dist.backend nccl --mib 64 > "$out/smoke-nccl.log" 2>&1; smoke_rc=$?
tail -5 "$out/ctest-gpu.log"; tail -5 "$out/ctest-cpu.log"; tail -12 "$out/smoke-nccl.log"
echo "gpu tests rc=$gpu_rc, cpu tests rc=$cpu_rc, nccl smoke rc=$smoke_rc"
exit $(( gpu_rc || cpu_rc || smoke_rc ))
