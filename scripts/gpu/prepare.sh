#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with network) before sending work to the lent GPU
# machine, which has CUDA, torch and NCCL but no Open MPI, HDF5, Boost, spdlog or
# GoogleTest and no network. Downloads those Debian packages into .gpu-deps/ (ignored by
# git; pass it to the device tool as a carried path). scripts/gpu/run.sh unpacks them there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.gpu-deps
mkdir -p "$out"
# What reel links against, and what those libraries load at run time (Open MPI's
# transports and PMIx, HDF5's compression libraries, spdlog's fmt).
pkgs=(libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15 libhwloc-plugins
      libevent-core-2.1-7 libevent-pthreads-2.1-7 libevent-2.1-7 libfabric1 libucx0 libpsm2-2
      libpsm-infinipath1 libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200 libmunge2
      libltdl7 libnuma1 libxnvctrl0 ocl-icd-libopencl1
      libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libsz2 libaec0 libcurl3-gnutls libaec-dev
      libboost-program-options-dev libboost-program-options1.74-dev libboost-program-options1.74.0
      libboost1.74-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev libpng-dev libpng16-16
      nlohmann-json3-dev)
cd "$out"
missing=()
for p in "${pkgs[@]}"; do ls "${p}"_*.deb > /dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then apt-get download "${missing[@]}"; fi
du -sh "$out"
