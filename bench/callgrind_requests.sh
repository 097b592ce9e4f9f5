#!/usr/bin/env bash
# Instruction counts per workload (callgrind counts instructions, so the
# numbers repeat on a busy machine): bench/callgrind_requests.c linked
# against the static library of a build tree, run for cached preads and
# getppid, on the AUTO and POOL policies; then raw liburing's reads
# (bench/callgrind_liburing.c) as the baseline. Each line gives the whole
# program's count for 20000 requests and the count per request at the
# margin: the difference between 30000 and 10000 requests, over 20000,
# which leaves out start-up and teardown.
#   bench/callgrind_requests.sh [BUILD_DIR]   (default build-bench)
#   RESTRICT=1 bench/callgrind_requests.sh ... each also under aio2_restrict
#   ATTRS=1 bench/callgrind_requests.sh ...    each also with the timing and
#       cache attributes on every request, and the URING policy too
#   QDS="1 32" bench/callgrind_requests.sh ... at each queue depth (default 32)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/requests" bench/callgrind_requests.c -Iinclude "$build/libaio2.a" \
  $(pkg-config --libs liburing) -lstdc++ -lpthread
cc -O2 -o "$work/liburing" bench/callgrind_liburing.c $(pkg-config --libs liburing)
cd "$work"
# ir N QD PROGRAM ARGS...: the instructions callgrind counts for N requests
# (the program's failure, or no count, stops the script).
ir() {
  local n=$1 qd=$2 out count
  shift 2
  out=$(AIO2_N=$n AIO2_QD=$qd valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1) ||
    { echo "callgrind_requests.sh: $* failed at $n requests:" >&2; echo "$out" >&2; exit 1; }
  count=$(awk '/Collected/ {print $NF}' <<<"$out")
  [ -n "$count" ] || { echo "callgrind_requests.sh: no count from $*" >&2; exit 1; }
  echo "$count"
}
# row QD LABEL PROGRAM ARGS...: the whole count at `whole` requests, and per
# request at the margin, from `lo` to `hi` requests.
whole=20000 lo=10000 hi=30000
row() {
  local qd=$1 label=$2 n_whole n_lo n_hi
  shift 2
  n_whole=$(ir $whole "$qd" "$@")
  n_lo=$(ir $lo "$qd" "$@")
  n_hi=$(ir $hi "$qd" "$@")
  awk -v qd="$qd" -v label="$label" -v whole="$n_whole" -v a="$n_lo" -v b="$n_hi" \
    -v span=$((hi - lo)) 'BEGIN {
    printf "qd%-3s %-30s %12s instructions, %7.1f per request\n", qd, label, whole, (b - a) / span }'
}
# RESTRICT=1 runs each under an allowlist of the two calls too (aio2_restrict).
for qd in ${QDS:-32}; do
  for policy in auto pool ${ATTRS:+uring}; do
    for mode in pread getppid; do
      for allow in plain ${RESTRICT:+restrict}; do
        for attrs in none ${ATTRS:+attrs}; do
          row "$qd" "$(printf '%-5s %-8s %-8s %-5s' "$policy" "$mode" "$allow" "$attrs")" \
            ./requests "$mode" "$policy" "$allow" "$attrs"
        done
      done
    done
  done
  row "$qd" "$(printf '%-5s %-8s' liburing pread)" ./liburing
done
