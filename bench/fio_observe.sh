#!/usr/bin/env bash
# The cost of observation: fio's libaio engine on aio2's libaio replacement,
# buffered 4 KiB random reads of a file the page cache holds, QD 32, run
# plain and with AIO2_TRACE set (what `aio2 run --trace` sets: every request
# carries the timing, cache and executor attributes, its event is mirrored
# to an aio2 ring, and the observer thread writes a record per request).
# The two are interleaved, on the same file, each repeated. Prints for each
# repetition the IOPS and the CPU time per request (fio's usr + sys of the
# job's process, which holds aio2's threads and the observer: the cost that
# contention for the CPUs does not hide), then the medians and the ratios
# traced / plain, and checks that each traced run's file holds one record
# per request fio counted.
#
#   bench/fio_observe.sh COMPAT_DIR [--size 256m] [--runtime 5] [--reps 3] [--dir DIR]
# COMPAT_DIR holds libaio.so.1 (build-bench/compat after `make bench`).
set -euo pipefail
compat=${1:?usage: fio_observe.sh COMPAT_DIR [--size S] [--runtime SEC] [--reps N] [--dir DIR]}
shift
size=256m runtime=5 reps=3 dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -e "$compat/libaio.so.1" ] || { echo "no libaio.so.1 in $compat" >&2; exit 2; }
command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 2; }
work=$(mktemp -d "$dir/aio2-fio-observe-XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/data
fio --name=fill --filename="$file" --size="$size" --rw=write --bs=1m --output-format=terse \
  >/dev/null
fio --name=warm --filename="$file" --size="$size" --rw=read --bs=1m --invalidate=0 \
  --output-format=terse >/dev/null

# run MODE: one fio run; prints "IOPS IOS CPU_US" (terse fields 8, 6, 9, 88
# and 89: read IOPS, KiB read (4 per request), runtime in ms, usr and sys
# CPU in percent of it) with CPU_US the CPU microseconds per request.
run() {
  local env=(LD_LIBRARY_PATH="$compat")
  [ "$1" = traced ] && env+=(AIO2_TRACE="$work/trace")
  rm -f "$work/trace"
  env "${env[@]}" fio --name=b --ioengine=libaio --filename="$file" --size="$size" \
    --rw=randread --bs=4k --iodepth=32 --direct=0 --invalidate=0 --time_based=1 \
    --runtime="$runtime" --randrepeat=0 --output-format=terse |
    awk -F';' '{ios = $6 / 4; cpu = ($88 + $89) / 100 * $9 * 1000;
                printf "%d %d %.2f\n", $8, ios, ios ? cpu / ios : 0}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

plain=() traced=() plain_cpu=() traced_cpu=()
printf '%-6s %12s %12s %14s %14s %16s\n' rep plain_iops traced_iops plain_cpu_us traced_cpu_us \
  trace_records
for ((i = 1; i <= reps; i++)); do
  read -r p _ pc < <(run plain)
  read -r t ios tc < <(run traced)
  # The file: a header, a process record, a context record, the requests
  # and the context's end record, 128 bytes each.
  records=$(( $(stat -c %s "$work/trace") / 128 - 4 ))
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.2fx" : "n/a"), a / b}'; }
echo "traced / plain: IOPS $(ratio "$tm" "$pm"), CPU per request $(ratio "$tcm" "$pcm")"
