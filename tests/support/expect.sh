#!/usr/bin/env bash
# Runs a command and checks both its exit code and its output, which CTest's
# PASS_REGULAR_EXPRESSION alone does not (it ignores the exit code).
#   expect.sh ok    REGEX command...   exit 0 and output matching REGEX (grep -E)
#   expect.sh error REGEX command...   a clean failure: exit 1..125 (not 0, not a crash
#                                      or a signal) and output matching REGEX
#   expect.sh usage REGEX command...   a usage error: exit 2 and output matching REGEX
set -uo pipefail
mode=$1 regex=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if ! grep -Eq -- "$regex" <<< "$out"; then
  echo "FAIL: the output does not match /$regex/ (exit $rc)"
  exit 1
fi
case $mode in
  ok) [ "$rc" -eq 0 ] || { echo "FAIL: exit $rc, expected 0"; exit 1; } ;;
  error)
    [ "$rc" -ne 0 ] || { echo "FAIL: exit 0 after an error"; exit 1; }
    [ "$rc" -lt 126 ] || { echo "FAIL: exit $rc: a crash or a signal, not a clean error"; exit 1; } ;;
  usage) [ "$rc" -eq 2 ] || { echo "FAIL: exit $rc, expected 2 (a usage error)"; exit 1; } ;;
  *) echo "expect.sh: mode must be ok, error or usage"; exit 2 ;;
esac
echo "expect.sh $mode: exit $rc as expected"
