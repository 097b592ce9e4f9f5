#!/usr/bin/env bash
# Lone cached pread64s on an AUTO context make only their own system call:
# the RWF_NOWAIT read (preadv2), with the descriptor's facts taken on trust
# (one fcntl per sys::kTrustedUses reads, not one per aio2_submit), and no
# io_uring_enter. Runs TrustedReadCount.LoneCachedReads (2000 reads, each
# checked) under strace -c.
#   trusted_read_syscalls.sh TEST_BINARY
set -euo pipefail
bin=$1
command -v strace >/dev/null || { echo "strace is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strace -f -c -o "$work/counts" "$bin" --gtest_filter=TrustedReadCount.LoneCachedReads
calls() { awk -v s="$1" '$NF == s {print ($4 ~ /^[0-9]+$/) ? $4 : $3}' "$work/counts"; }
reads=2000
preadv2=$(calls preadv2) fcntl=$(calls fcntl) enter=$(calls io_uring_enter)
preadv2=${preadv2:-0} fcntl=${fcntl:-0} enter=${enter:-0}
echo "reads $reads: preadv2 $preadv2, fcntl $fcntl, io_uring_enter $enter"
cat "$work/counts"
# The test's setup (making and warming the file, the context) makes a few
# fcntl calls of its own: 16 are allowed beside one per kTrustedUses reads.
if [ "$preadv2" -lt "$reads" ]; then
  echo "FAIL: fewer RWF_NOWAIT reads than requests: they did not run in the submitter"; exit 1
fi
if [ "$fcntl" -gt $((reads / 63 + 16)) ]; then
  echo "FAIL: $fcntl fcntl calls for $reads reads: the descriptor is asked about per submit"; exit 1
fi
if [ "$enter" -gt 16 ]; then
  echo "FAIL: $enter io_uring_enter calls: lone cached reads went to io_uring"; exit 1
fi
echo "ok"
