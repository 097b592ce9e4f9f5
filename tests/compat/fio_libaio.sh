#!/usr/bin/env bash
# fio's libaio engine on aio2's libaio replacement, with data verified
# (verify=crc32c): both ways a program can get the replacement
# (LD_LIBRARY_PATH finding libaio.so.1, LD_PRELOAD of libaio-aio2.so.1),
# with and without userspace_reap (fio reads the ring itself), buffered and
# O_DIRECT, block sizes 512 B to 1 MiB, queue depths 1 to 128, read, write
# and randrw. Each job is short. The dynamic linker's bindings prove that
# fio's io_submit and io_getevents resolved to the replacement.
#   fio_libaio.sh COMPAT_DIR [SCRATCH_DIR]
set -euo pipefail
compat=$1
dir=${2:-${TMPDIR:-/tmp}}
command -v fio >/dev/null || { echo "fio is not installed (scripts/deps.sh tests)"; exit 1; }
work=$(mktemp -d "$dir/aio2-fio-XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/data

fail=0
run() {  # run MODE ARGS...: MODE is ldpath or preload
  local mode=$1; shift
  local env=(LD_LIBRARY_PATH="$compat")
  [ "$mode" = preload ] && env=(LD_PRELOAD="$compat/libaio-aio2.so.1")
  local out=$work/out
  if ! env "${env[@]}" LD_DEBUG=bindings LD_DEBUG_OUTPUT="$work/ld" timeout 120 \
      fio --name=check --ioengine=libaio --filename="$file" --size=8m --verify=crc32c \
      --do_verify=1 --verify_fatal=1 --output-format=terse "$@" >"$out" 2>&1; then
    echo "FAIL ($mode) fio $*"; tail -5 "$out"; fail=1; return
  fi
  # fio's own calls bind to the replacement, not to Debian's libaio.
  if ! grep -qs "to $compat/libaio.*io_submit" "$work"/ld.*; then
    echo "FAIL ($mode) fio $*: io_submit did not bind to $compat"; fail=1; return
  fi
  rm -f "$work"/ld.*
  echo "ok   ($mode) fio $*"
}

for mode in ldpath preload; do
  run $mode --rw=randwrite --bs=4k --iodepth=32
  run $mode --rw=randwrite --bs=4k --iodepth=32 --userspace_reap=1 --iodepth_batch_complete_min=0
  run $mode --rw=write --bs=512 --iodepth=1 --direct=1
  run $mode --rw=write --bs=1m --iodepth=128 --direct=1
done
run ldpath --rw=randrw --bs=64k --iodepth=16
run ldpath --rw=randrw --bs=8k --iodepth=128 --direct=1 --userspace_reap=1 --iodepth_batch_complete_min=0
run ldpath --rw=randrw --bs=512 --iodepth=4 --direct=1
run preload --rw=randrw --bs=16k --iodepth=64 --userspace_reap=1 --iodepth_batch_complete_min=0
# A read job over what a write job verified and left behind.
run ldpath --rw=write --bs=128k --iodepth=8
run ldpath --rw=read --bs=128k --iodepth=8 --verify_only=1
run preload --rw=randread --bs=128k --iodepth=32 --direct=1 --verify_only=1
exit $fail
