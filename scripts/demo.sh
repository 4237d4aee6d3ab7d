#!/usr/bin/env bash
# The README's main job: set up, build, and run reel on 4 CPU ranks (mpirun).
# For now: the communication smoke run — every collective on a dp=2 x sp=2 mesh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
ranks=${REEL_RANKS:-4}
bash "$root/scripts/build.sh" --target reel
# As root, Open MPI wants explicit consent; more ranks than cores need --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun --oversubscribe --bind-to none -np "$ranks" "$build/launch/reel" smoke --parallel.sp 2 "$@"
