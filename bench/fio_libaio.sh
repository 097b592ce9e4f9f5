#!/usr/bin/env bash
# fio's libaio engine on kernel AIO (Debian's libaio) and on aio2's libaio
# replacement, side by side in one run: the same file, the same job, the
# engines interleaved, each cell repeated. Prints IOPS (the median of the
# repetitions) and the ratio aio2 / kernel AIO for:
#   uncached  buffered 4 KiB random reads of a file the page cache does not
#             hold (fio's invalidate=1 drops it before each run), QD 32
#   direct    O_DIRECT 4 KiB random reads, QD 32
#   cached    buffered 4 KiB random reads of a file the page cache holds, QD 32
# each in fio's default configuration of the engine and tuned (below).
#
#   bench/fio_libaio.sh COMPAT_DIR [--size 1g] [--runtime 5] [--reps 3] [--dir DIR]
# COMPAT_DIR holds libaio.so.1 (build-bench/compat after `make bench`).
name=fio_libaio size=1g
. "$(dirname "$0")/fio_common.sh"

# iops ENGINE CELL CONFIG: one fio run's read IOPS (terse format, field 8).
# CONFIG default: fio's libaio engine as it comes (io_getevents reaps);
# tuned: the ring read in user space (userspace_reap=1, which fio's HOWTO
# gives for the libaio engine and which works only with
# iodepth_batch_complete_min=0), the same for both engines.
iops() {
  local env=() common=(--name=b --ioengine=libaio --filename="$file" --size="$size"
    --rw=randread --bs=4k --iodepth=32 --time_based=1 --runtime="$runtime"
    --randrepeat=0 --output-format=terse)
  [ "$1" = aio2 ] && env=(LD_LIBRARY_PATH="$compat")
  case $2 in
    uncached) common+=(--direct=0 --invalidate=1) ;;
    direct) common+=(--direct=1) ;;
    cached) common+=(--direct=0 --invalidate=0) ;;
  esac
  [ "$3" = tuned ] && common+=(--userspace_reap=1 --iodepth_batch_complete_min=0)
  env "${env[@]}" fio "${common[@]}" | awk -F';' '{print $8}'
}

printf '%-9s %-8s %14s %14s %8s\n' workload config kernel_aio aio2 ratio
for cell in uncached direct cached; do
  if [ "$cell" = cached ]; then  # bring the whole file in first
    fio --name=warm --filename="$file" --size="$size" --rw=read --bs=1m --invalidate=0 \
      --output-format=terse >/dev/null
  fi
  for config in default tuned; do
    k=() a=()
    for ((i = 0; i < reps; i++)); do
      k+=("$(iops kernel "$cell" "$config")")
      a+=("$(iops aio2 "$cell" "$config")")
    done
    km=$(printf '%s\n' "${k[@]}" | median)
    am=$(printf '%s\n' "${a[@]}" | median)
    printf '%-9s %-8s %14s %14s %8s\n' "$cell" "$config" "$km" "$am" "$(awk -v a="$am" -v k="$km" \
      'BEGIN {printf (k > 0 ? "%.2fx" : "n/a"), a / k}')"
  done
done
