#!/usr/bin/env bash
# Runs fio's posixaio engine on libaio2-posix.so (LD_PRELOAD) with
# verify=crc32c, and checks that fio succeeded and that the library ran the
# requests: its trace file (AIO2_TRACE) holds one request record for each one
# fio issued.
#
#   posix_fio.sh LIB WORKDIR NAME run FIO-OPTION...
#       one job (rw=read gets a verified write job before it)
#   posix_fio.sh LIB WORKDIR NAME corrupt FIO-OPTION...
#       writes a file, overwrites one block, and expects the verifying read
#       to fail: the check that verification sees bad data
#
# Exit status: 0 pass, 1 fail, 77 fio is not installed (skipped).
set -euo pipefail
lib=$1 work=$2/fio-$3 name=$3 mode=$4
shift 4
command -v fio >/dev/null || { echo "fio is not installed (scripts/deps.sh tests)"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
trace=$work/trace
common=(--filename="$work/file" --ioengine=posixaio --verify=crc32c --verify_fatal=1
  --verify_state_save=0 --group_reporting=1 "$@")

run_fio() {
  LD_PRELOAD=$lib AIO2_TRACE=$trace fio "${common[@]}" "$@" >"$work/out" 2>&1
}

if [ "$mode" = corrupt ]; then
  run_fio --name=write --rw=write || { cat "$work/out"; echo "FAIL: the write job"; exit 1; }
  bs=$(printf '%s\n' "$@" | sed -n 's/^--bs=//p')
  dd if=/dev/zero of="$work/file" bs="${bs:-4k}" seek=3 count=1 conv=notrunc status=none
  if run_fio --name=read --rw=read; then
    cat "$work/out"
    echo "FAIL: fio read a corrupted block and did not notice"
    exit 1
  fi
  grep -q "verify" "$work/out" || { cat "$work/out"; echo "FAIL: not a verify error"; exit 1; }
  echo "fio noticed the corrupted block"
  rm -rf "$work"
  exit 0
fi

rw=$(printf '%s\n' "$@" | sed -n 's/^--rw=//p')
if [ "$rw" = read ] || [ "$rw" = randread ]; then
  # A read job verifies what a verifying write job wrote before it.
  run_fio --name=write --rw=write --name="$name" --stonewall || { cat "$work/out"; echo "FAIL: fio"; exit 1; }
else
  run_fio --name="$name" --do_verify=1 || { cat "$work/out"; echo "FAIL: fio"; exit 1; }
fi

# Requests fio issued (reads, verification reads included, writes and
# syncs), against the trace's request records (128 bytes each, kind 1 in
# the first 4; the zero records padding each process's chunk are kind 0):
# one each.
issued=$(sed -n 's/.*issued rwts: total=\([0-9]*\),\([0-9]*\),\([0-9]*\),\([0-9]*\).*/\1 \2 \4/p' "$work/out" |
  awk '{ s += $1 + $2 + $3 } END { print s + 0 }')
lines=$(od -An -v -w128 -tu4 "$trace" | awk '$1 == 1 { n++ } END { print n + 0 }')
echo "fio issued $issued requests; the trace has $lines request records"
if [ "$issued" -eq 0 ] || [ "$lines" -ne "$issued" ]; then
  cat "$work/out"
  echo "FAIL: libaio2-posix.so did not run each request once"
  exit 1
fi
rm -rf "$work"
