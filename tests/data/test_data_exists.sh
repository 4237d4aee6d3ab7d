#!/usr/bin/env bash
# reel data refuses an --out that exists (a usage error naming --overwrite), and the file
# is still the one it was, byte for byte. Exits with reel's own status.
# Usage: test_data_exists.sh path/to/reel existing.h5
set -uo pipefail
reel=$1 file=$2
before=$(sha256sum < "$file")
"$reel" data --out "$file" --clips 3
rc=$?
[ "$(sha256sum < "$file")" = "$before" ] || { echo "FAIL: the existing file changed"; exit 1; }
exit $rc
