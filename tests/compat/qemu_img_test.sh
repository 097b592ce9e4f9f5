#!/usr/bin/env bash
# qemu-img on aio2's libaio.so.1: a program that never calls io_getevents.
# With file.aio=native qemu calls only io_setup, io_submit and io_destroy,
# waits on each request's eventfd and reads completions straight from the
# ring at the context's address.
#
#   tests/compat/qemu_img_test.sh COMPAT_DIR
#
# COMPAT_DIR holds aio2's libaio.so.1 and libaio-aio2.so.1. For each way of
# loading it (LD_LIBRARY_PATH, LD_PRELOAD), qemu-img converts a file of
# random bytes raw to raw with O_DIRECT on both sides, and `qemu-img bench`
# writes a pattern 16 requests deep; the files must hold exactly what was
# written, and strace must see no kernel AIO system call (io_setup,
# io_submit, io_getevents, io_destroy): every request ran on aio2. The same
# convert on the real libaio, which must show io_submit, proves that strace
# sees them. Exits 77 (skipped) without qemu-img or strace.
set -euo pipefail

compat=$(cd "${1:?usage: $0 COMPAT_DIR}" && pwd)
for tool in qemu-img strace cmp; do
  command -v "$tool" >/dev/null || { echo "qemu_img_test: $tool not found (qemu-utils, strace)"; exit 77; }
done
[ -e "$compat/libaio.so.1" ] && [ -e "$compat/libaio-aio2.so.1" ] ||
  { echo "qemu_img_test: no libaio.so.1 in $compat" >&2; exit 1; }

# O_DIRECT needs a file system that has it: not tmpfs.
base=${TMPDIR:-/tmp}
[ "$(stat -f -c %T "$base")" = tmpfs ] && base=$PWD
work=$(mktemp -d "$base/aio2-qemu-img.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

size=$((32 * 1024 * 1024))
head -c "$size" /dev/urandom >src.raw
head -c $((16 * 1024 * 1024)) /dev/zero | tr '\0' '\132' >pattern.want  # 0x5a

aio_calls='io_setup,io_submit,io_getevents,io_destroy,io_pgetevents'
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# Runs qemu-img with the environment in "$@" before it, under strace;
# prints how many kernel AIO calls strace saw.
traced() {
  local trace=$work/trace.$RANDOM
  env "$@" strace -f -qq -e trace="$aio_calls" -o "$trace" qemu-img "${qemu_args[@]}" >/dev/null
  grep -c -E '^[0-9]+ +io_(setup|submit|getevents|destroy|pgetevents)\(' "$trace" || true
}

convert() {
  rm -f dst.raw
  truncate -s "$size" dst.raw
  qemu_args=(convert -n -t none -T none
    --image-opts driver=raw,file.driver=file,file.filename=src.raw,file.aio=native
    --target-image-opts driver=raw,file.driver=file,file.filename=dst.raw,file.aio=native)
  traced "$@"
}

bench_write() {
  rm -f bench.raw
  truncate -s $((16 * 1024 * 1024)) bench.raw
  qemu_args=(bench -w -q -c 4096 -d 16 -s 4096 -S 4096 --pattern=0x5a -t none -i native -f raw
    bench.raw)
  traced "$@"
}

# The real libaio: kernel AIO calls are seen (else this test proves nothing).
if [ -e /lib/x86_64-linux-gnu/libaio.so.1 ]; then
  n=$(convert X=1)
  [ "$n" -gt 0 ] || fail "kernel AIO: strace saw no io_* call"
  cmp -s src.raw dst.raw || fail "kernel AIO: the copy differs"
  echo "kernel AIO: convert made $n kernel AIO calls"
fi

for way in LD_LIBRARY_PATH LD_PRELOAD; do
  if [ "$way" = LD_LIBRARY_PATH ]; then env_set=(LD_LIBRARY_PATH="$compat")
  else env_set=(LD_PRELOAD="$compat/libaio-aio2.so.1"); fi
  n=$(convert "${env_set[@]}")
  [ "$n" -eq 0 ] || fail "$way: convert made $n kernel AIO calls"
  cmp -s src.raw dst.raw || fail "$way: the copy differs from the source"
  n=$(bench_write "${env_set[@]}")
  [ "$n" -eq 0 ] || fail "$way: bench made $n kernel AIO calls"
  cmp -s bench.raw pattern.want || fail "$way: bench's file does not hold its pattern"
  echo "aio2 via $way: convert and bench made no kernel AIO call, files intact"
done

if [ "$failures" -eq 0 ]; then
  echo "qemu_img_test: passed"
else
  echo "qemu_img_test: $failures failed"
  exit 1
fi
