#!/usr/bin/env bash
# reel data refuses an --out that exists (a usage error naming --overwrite), and the file
# is still the one it was, byte for byte; with --overwrite it is replaced (on a copy: the
# file is other tests' fixture). Exits with the refusal's status.
# Usage: test_data_exists.sh path/to/reel existing.h5
set -uo pipefail
reel=$1 file=$2
before=$(sha256sum < "$file")
"$reel" data --out "$file" --clips 3
rc=$?
[ "$(sha256sum < "$file")" = "$before" ] || { echo "FAIL: the existing file changed"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$file" "$work/copy.h5"
"$reel" data --out "$work/copy.h5" --clips 3 --overwrite > /dev/null || { echo "FAIL: --overwrite refused"; exit 1; }
inspect=$("$reel" data --inspect "$work/copy.h5")
grep -q ": 3 clips" <<< "$inspect" || { echo "FAIL: --overwrite did not replace the file: $inspect"; exit 1; }
exit $rc
