#!/usr/bin/env bash
# aio2's performance goals, measured in one run on this machine, with the
# peers side by side: `aio2 bench` (AUTO, AUTO with the file registered,
# AUTO without io_uring, the pool,
# liburing default and tuned, libaio, glibc POSIX AIO, libuv, plain calls)
# on cached and O_DIRECT reads, with and without the timing and cache
# attributes; its in-flight scale curve; uring_share_bench (submitting
# threads on one context against a context each); ring_bench's 24-byte
# rows. bench/goals.py then prints each goal, the ratio measured and
# whether it is met. Everything each program printed stays in the output
# directory, so every figure can be traced to its row.
#   bench/goals.sh [BUILD_DIR] [OUT_DIR]    (defaults: build-bench, a new temporary directory)
#   QUICK=1 bench/goals.sh ...  short windows and one repetition: a check
#       that everything runs, not numbers to report
# Needs a quiet machine: the goals are ratios of wall-clock throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
out=${2:-$(mktemp -d /tmp/aio2-goals-XXXXXX)}
mkdir -p "$out"
for b in aio2 uring_share_bench ring_bench; do
  [ -x "$build/bin/$b" ] || { echo "goals.sh: $build/bin/$b is missing (make bench builds it)"; exit 1; }
done
echo "goals.sh: results in $out (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
quick_bench=() quick_share=() quick_ring=()
if [ -n "${QUICK:-}" ]; then
  quick_bench=(--quick --reps 1) quick_share=(--duration 0.2 --reps 1) quick_ring=(--benchmark_repetitions=1)
fi
"$build/bin/aio2" bench "${quick_bench[@]}" --engines aio2,aio2_registered,aio2_no_uring,aio2_pool,liburing,liburing_tuned,libaio,posix_aio,libuv,sync,sync_nowait \
  --workloads cached_randread_qd1,cached_randread_qd32,direct_randread_qd32 \
  --attrs none --attrs timing,cache --dir "${TMPDIR:-/tmp}" --json "$out/bench.json" >"$out/bench.txt"
"$build/bin/aio2" bench --engines sync --workloads syscall_getppid --duration 0.1 --reps 1 \
  --scale --plot "$out/plots" >"$out/scale.txt"
"$build/bin/uring_share_bench" "${quick_share[@]}" --dir "${TMPDIR:-/tmp}" >"$out/uring_share.txt"
"$build/bin/ring_bench" "${quick_ring[@]}" --benchmark_filter='/24/' >"$out/ring.txt" 2>"$out/ring.err"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/load.txt"
python3 bench/goals.py "$out"
