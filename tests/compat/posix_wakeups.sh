#!/usr/bin/env bash
# fio's posixaio engine on libaio2-posix.so, cached 4 KiB random reads at
# queue depth 32, counted with strace: every read runs in fio's own thread
# (one preadv2 with RWF_NOWAIT each), and its completion reaches fio without
# a hand-off: the futex calls of the whole run stay a small fraction of the
# requests (a completion thread woken per request makes one or more per
# request). The file is small and read twice first, so that the page cache
# holds it.
#   posix_wakeups.sh LIB [SCRATCH_DIR]
set -euo pipefail
lib=$1
dir=${2:-${TMPDIR:-/tmp}}
command -v fio >/dev/null || { echo "fio is not installed (scripts/deps.sh tests)"; exit 1; }
command -v strace >/dev/null || { echo "strace is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d "$dir/aio2-posix-wake-XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/data
head -c 16M /dev/urandom >"$file"
cat "$file" "$file" >/dev/null
ios=4000
LD_PRELOAD=$lib strace -f -c -e trace=futex,preadv2,pread64 -o "$work/counts" \
  fio --name=w --ioengine=posixaio --filename="$file" --size=16m --rw=randread --bs=4k \
  --iodepth=32 --number_ios=$ios --randrepeat=0 --direct=0 --invalidate=0 \
  --output-format=terse >/dev/null
calls() { awk -v s="$1" '$NF == s {print ($4 ~ /^[0-9]+$/) ? $4 : $3}' "$work/counts"; }
futex=$(calls futex) preadv2=$(calls preadv2)
futex=${futex:-0} preadv2=${preadv2:-0}
echo "requests $ios, preadv2 $preadv2, futex $futex"
cat "$work/counts"
if [ "$preadv2" -lt "$ios" ]; then
  echo "FAIL: fewer RWF_NOWAIT reads than requests: they did not run in fio's thread"; exit 1
fi
if [ "$futex" -gt $((ios / 10)) ]; then
  echo "FAIL: $futex futex calls for $ios cached reads: completions are handed off"; exit 1
fi
echo "ok"
