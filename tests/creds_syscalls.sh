#!/usr/bin/env bash
# System calls per request, counted with strace: a request whose call does
# not depend on its caller's credentials (a cached pread) takes no snapshot
# of them, on AUTO, URING and POOL: none of the six calls that read a
# thread's credentials (getresuid, getresgid, setfsuid, setfsgid, capget,
# getgroups) is made. An openat, which does depend on them, still takes a
# snapshot on POOL (and its worker compares): the counter does see them.
# Prints the total system calls per request of each run.
#   creds_syscalls.sh PROG [SCRATCH_DIR]
set -euo pipefail
prog=$1
dir=${2:-${TMPDIR:-/tmp}}
command -v strace >/dev/null || { echo "strace is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d "$dir/aio2-creds-syscalls-XXXXXX")
trap 'rm -rf "$work"' EXIT
n=4096
creds_calls="getresuid getresgid setfsuid setfsgid capget getgroups"
# count FILE: the credential reads and every call, from strace -c's table.
count() {
  awk -v names="$creds_calls" '
    BEGIN { split(names, a, " "); for (i in a) want[a[i]] = 1 }
    $1 ~ /^[0-9.]+$/ && NF >= 5 {
      name = $NF  # columns: % time, seconds, usecs/call, calls, [errors], syscall
      if (name == "total") total = $4; else if (name in want) creds += $4
    }
    END { printf "%d %d\n", creds, total }' "$1"
}
status=0
for policy in AUTO URING POOL; do
  strace -f -c -o "$work/$policy.read" "$prog" "$policy" read $n
  read -r creds total < <(count "$work/$policy.read")
  echo "$policy read: $creds credential reads, $total system calls, $(awk -v t="$total" -v n=$n 'BEGIN{printf "%.2f", t/n}') per request"
  if [ "$creds" -ne 0 ]; then
    echo "FAIL: $policy: cached reads read the submitter's credentials $creds times"
    cat "$work/$policy.read"; status=1
  fi
done
strace -f -c -o "$work/POOL.open" "$prog" POOL open 256
read -r creds total < <(count "$work/POOL.open")
echo "POOL open: $creds credential reads, $total system calls for 256 openat"
if [ "$creds" -lt 256 ]; then
  echo "FAIL: openat on the pool read credentials only $creds times: the snapshot or the worker's check is gone (or strace's table changed)"
  cat "$work/POOL.open"; status=1
fi
[ $status -eq 0 ] && echo ok
exit $status
