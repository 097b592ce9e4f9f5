#!/usr/bin/env bash
# Reads on a registered descriptor (aio2_register_fds) make no fcntl: 1000
# lone reads with the timing and cache attributes and 60 calls of 32 reads,
# under strace -c, against the same reads on the caller's descriptor, which
# must make at least one fcntl per lone read (so that the count is shown to
# see them).
#   register_fds_syscalls.sh TEST_BINARY
set -euo pipefail
bin=$1
command -v strace >/dev/null || { echo "strace is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fcntls() {
  strace -f -c -o "$work/$1" "$bin" --gtest_filter="RegisteredFdsCount.$1" >"$work/$1.out" 2>&1 ||
    { cat "$work/$1.out"; echo "FAIL: RegisteredFdsCount.$1"; exit 1; }
  awk '$NF == "fcntl" {print ($4 ~ /^[0-9]+$/) ? $4 : $3}' "$work/$1"
}
reg=$(fcntls Registered) unreg=$(fcntls Unregistered)
reg=${reg:-0} unreg=${unreg:-0}
echo "fcntl calls: registered $reg, unregistered $unreg (1000 lone reads with attributes, 60 calls of 32)"
# The test's setup (the file, the context, the registration) makes a few of
# its own: 16 are allowed.
if [ "$unreg" -lt 1000 ]; then
  echo "FAIL: the control made $unreg fcntl calls for 1000 reads with attributes: the count misses them"; exit 1
fi
if [ "$reg" -gt 16 ]; then
  echo "FAIL: $reg fcntl calls on a registered descriptor"; exit 1
fi
echo "ok"
