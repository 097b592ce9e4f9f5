#!/usr/bin/env bash
# sysbench's fileio test in its async mode (libaio) on aio2's libaio
# replacement, found through LD_LIBRARY_PATH: every access pattern, buffered
# and O_DIRECT. Each run must end as on kernel AIO (exit status 0, no
# FATAL line) having done its operations, with sysbench's io_submit bound
# to the replacement. Data is not compared: sysbench 1.0.20 refills its
# write buffer while writes are in flight, so what its async writes leave
# differs from run to run on kernel AIO itself once the writes are truly
# asynchronous (O_DIRECT); docs/compat.md says more.
#   sysbench_libaio.sh COMPAT_DIR [SCRATCH_DIR]
set -euo pipefail
compat=$(cd "$1" && pwd)
dir=${2:-${TMPDIR:-/tmp}}
command -v sysbench >/dev/null || { echo "sysbench is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d "$dir/aio2-sysbench-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
common=(--file-total-size=16M --file-num=2 --file-block-size=16384)
sysbench fileio "${common[@]}" prepare >/dev/null

fail=0
for flags in "" direct; do
  for mode in seqwr seqrewr seqrd rndrd rndwr rndrw; do
    out=$work/out
    if ! env LD_LIBRARY_PATH="$compat" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$work/ld" \
        timeout 120 sysbench fileio "${common[@]}" --file-test-mode=$mode --file-io-mode=async \
        --file-async-backlog=64 --file-extra-flags=$flags --file-fsync-freq=50 --events=2000 \
        --time=0 run >"$out" 2>&1 || grep -q FATAL "$out"; then
      echo "FAIL sysbench $mode ${flags:-buffered}"; tail -5 "$out"; fail=1; continue
    fi
    if ! grep -qs "to $compat/libaio.*io_submit" "$work"/ld.*; then
      echo "FAIL sysbench $mode ${flags:-buffered}: io_submit did not bind to $compat"; fail=1
      continue
    fi
    rm -f "$work"/ld.*
    events=$(awk '/total number of events:/ {print $5}' "$out")
    if [ "${events:-0}" -lt 2000 ]; then
      echo "FAIL sysbench $mode ${flags:-buffered}: ${events:-no} events, 2000 asked"; fail=1
      continue
    fi
    echo "ok   sysbench $mode ${flags:-buffered}: $events events"
  done
done
exit $fail
