#!/usr/bin/env bash
# Instruction counts per workload (callgrind counts instructions, so the
# numbers repeat on a busy machine): bench/callgrind_requests.c linked
# against the static library of a build tree, run for cached preads and
# getppid, on the AUTO and POOL policies.
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
cd "$work"
# RESTRICT=1 runs each under an allowlist of the two calls too (aio2_restrict).
for qd in ${QDS:-32}; do
for policy in auto pool ${ATTRS:+uring}; do
  for mode in pread getppid; do
    for allow in plain ${RESTRICT:+restrict}; do
      for attrs in none ${ATTRS:+attrs}; do
        ir=$(AIO2_QD=$qd valgrind --tool=callgrind --callgrind-out-file=/dev/null ./requests "$mode" "$policy" \
          "$allow" "$attrs" 2>&1 | awk '/Collected/ {print $NF}')
        printf 'qd%-3s %-5s %-8s %-8s %-5s %12s instructions\n' "$qd" "$policy" "$mode" "$allow" \
          "$attrs" "$ir"
      done
    done
  done
done
done
