# Sourced by a command-line test script (bash): strict mode, a scratch directory $dir
# removed on exit, mpirun allowed as root, and fail MESSAGE (prints FAIL: and exits 1).
#   source "$(dirname "$0")/../support/cli_test.sh"
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() {
  echo "FAIL: $*"
  exit 1
}
