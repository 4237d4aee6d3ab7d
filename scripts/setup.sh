#!/usr/bin/env bash
# Idempotent set-up for reel on Debian 12 (run as root, or with sudo available).
# Installs what is missing and does nothing slow when everything is present:
#   1. Debian packages: Open MPI, HDF5, Boost.Program_options, spdlog, nlohmann-json, GoogleTest,
#      OpenBLAS, libpng, ccache, clang-format (scripts/format.sh), Slurm + munge for tests
#      (skipped when all are installed);
#   2. a project-local virtual environment (.venv) holding PyPI's torch wheel, pinned in
#      scripts/torch-version.txt (skipped when the pinned version already imports).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${REEL_VENV:-$root/.venv}
torch_pin=$(tr -d '[:space:]' < "$root/scripts/torch-version.txt")

debs=(build-essential cmake ninja-build pkg-config ccache
      libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
      libboost-program-options-dev libspdlog-dev libgtest-dev nlohmann-json3-dev
      libopenblas0-openmp libpng-dev python3-venv clang-format
      slurmctld slurmd slurm-client munge)  # a real Slurm on localhost for the launch tests

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Pick an interpreter for the venv: REEL_PYTHON, else python3 on PATH.
py=${REEL_PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch,sys; sys.exit(0 if torch.__version__.split('+')[0]=='$torch_pin' else 1)" 2>/dev/null; then
  echo "setup: installing torch==$torch_pin into $venv (large download, once)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "torch==$torch_pin" numpy
fi
# The video converter (scripts/convert_videos.py) and its test; h5py and safetensors read
# exported checkpoints in the checkpoint tests; matplotlib draws a run's curves
# (scripts/plot_run.py, `reel plot`).
"$venv/bin/python" -c "import imageio, h5py, safetensors, matplotlib" 2>/dev/null ||
  "$venv/bin/python" -m pip install -q imageio h5py safetensors matplotlib
# TensorBoard's own event writer and reader (scripts/metrics_to_tensorboard.py: reel tensorboard,
# reel train --log.tensorboard; the tests read the events back with it).
"$venv/bin/python" -c "import tensorboard" 2>/dev/null || "$venv/bin/python" -m pip install -q tensorboard
echo "setup: ok (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
