#!/usr/bin/env bash
# The cost of observation, for both replacements: fio's libaio engine on
# aio2's libaio replacement (libaio.so.1 through LD_LIBRARY_PATH) and fio's
# posixaio engine on libaio2-posix.so (LD_PRELOAD), buffered 4 KiB random
# reads of a file the page cache holds, QD 32, each run plain and with
# AIO2_TRACE set (what `aio2 run --trace` sets: every request carries the
# timing, cache and executor attributes and gets a record in the trace
# file; for libaio its event is also mirrored to an aio2 ring that the
# observer thread reads). Plain and traced are interleaved, on the same
# file, each repeated. Prints for each engine and repetition the IOPS and
# the CPU time per request (fio's usr + sys of the job's process, which
# holds aio2's threads and the observer: the cost that contention for the
# CPUs does not hide), then the medians and the ratios traced / plain, and
# checks that each traced run's file holds one request record per request
# fio counted.
#
#   bench/fio_observe.sh COMPAT_DIR [--size 256m] [--runtime 5] [--reps 3] [--dir DIR]
# COMPAT_DIR holds libaio.so.1 and libaio2-posix.so (build-bench/compat
# after `make bench`).
name=fio_observe size=256m
. "$(dirname "$0")/fio_common.sh"
[ -e "$compat/libaio2-posix.so" ] || { echo "$name: no libaio2-posix.so in $compat" >&2; exit 2; }
fio --name=warm --filename="$file" --size="$size" --rw=read --bs=1m --invalidate=0 \
  --output-format=terse >/dev/null

# run ENGINE MODE: one fio run; prints "IOPS IOS CPU_US" (terse fields 8, 6,
# 9, 88 and 89: read IOPS, KiB read (4 per request), runtime in ms, usr and
# sys CPU in percent of it) with CPU_US the CPU microseconds per request.
run() {
  local env=()
  case $1 in
    libaio) env=(LD_LIBRARY_PATH="$compat") ;;
    posixaio) env=(LD_PRELOAD="$compat/libaio2-posix.so") ;;
  esac
  [ "$2" = traced ] && env+=(AIO2_TRACE="$work/trace")
  rm -f "$work/trace"
  env "${env[@]}" fio --name=b --ioengine="$1" --filename="$file" --size="$size" \
    --rw=randread --bs=4k --iodepth=32 --direct=0 --invalidate=0 --time_based=1 \
    --runtime="$runtime" --randrepeat=0 --output-format=terse |
    awk -F';' '{ios = $6 / 4; cpu = ($88 + $89) / 100 * $9 * 1000;
                printf "%d %d %.2f\n", $8, ios, ios ? cpu / ios : 0}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.2fx" : "n/a"), a / b}'; }

for engine in libaio posixaio; do
  plain=() traced=() plain_cpu=() traced_cpu=()
  echo "fio's $engine engine"
  printf '%-6s %12s %12s %14s %14s %16s\n' rep plain_iops traced_iops plain_cpu_us traced_cpu_us \
    trace_records
  for ((i = 1; i <= reps; i++)); do
    read -r p _ pc < <(run "$engine" plain)
    read -r t ios tc < <(run "$engine" traced)
    records=$(trace_requests "$work/trace")
    check="$records"
    [ "$records" = "$ios" ] || check="$records (fio: $ios)"
    printf '%-6s %12s %12s %14s %14s %16s\n' "$i" "$p" "$t" "$pc" "$tc" "$check"
    plain+=("$p") traced+=("$t") plain_cpu+=("$pc") traced_cpu+=("$tc")
  done
  pm=$(printf '%s\n' "${plain[@]}" | median)
  tm=$(printf '%s\n' "${traced[@]}" | median)
  pcm=$(printf '%s\n' "${plain_cpu[@]}" | median)
  tcm=$(printf '%s\n' "${traced_cpu[@]}" | median)
  printf '%-6s %12s %12s %14s %14s\n' median "$pm" "$tm" "$pcm" "$tcm"
  echo "traced / plain: IOPS $(ratio "$tm" "$pm"), CPU per request $(ratio "$tcm" "$pcm")"
done
