#!/usr/bin/env bash
# stressapptest's disk thread on aio2's libaio replacement (LD_LIBRARY_PATH):
# it writes patterned blocks to a file with io_submit (O_DIRECT), reads them
# back the same way and checks every block. The run must report
# "Status: PASS", with stressapptest's io_submit bound to the replacement.
#   stressapptest_libaio.sh COMPAT_DIR [SCRATCH_DIR] [SECONDS]
set -euo pipefail
compat=$(cd "$1" && pwd)
dir=${2:-${TMPDIR:-/tmp}}
secs=${3:-5}
command -v stressapptest >/dev/null ||
  { echo "stressapptest is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d "$dir/aio2-sat-XXXXXX")
trap 'rm -rf "$work"' EXIT
truncate -s 256M "$work/disk"
out=$work/out
status=0
env LD_LIBRARY_PATH="$compat" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$work/ld" \
  timeout $((secs + 120)) stressapptest -s "$secs" -M 32 -d "$work/disk" \
  --blocks-per-segment 32 --segment-size 1048576 >"$out" 2>&1 || status=$?
grep -E "^Stats: Disk|^Status" "$out" || true
if [ $status -ne 0 ] || ! grep -q "^Status: PASS" "$out"; then
  echo "FAIL stressapptest (exit $status)"; tail -20 "$out"; exit 1
fi
if ! grep -qs "to $compat/libaio.*io_submit" "$work"/ld.*; then
  echo "FAIL stressapptest: io_submit did not bind to $compat"; exit 1
fi
echo "ok   stressapptest disk thread on aio2's libaio"
