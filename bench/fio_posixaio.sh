#!/usr/bin/env bash
# fio's posixaio engine on glibc's POSIX AIO and on libaio2-posix.so, side by
# side: 4 KiB random reads at queue depth 32 of one file, cached (read
# whole beforehand, fio's invalidate=0), buffered but not cached (fio drops
# the file from the page cache first, its default) and O_DIRECT. The runs
# of the two (and of libaio2-posix.so with AIO2_TRACE, for the cost of
# observation) are interleaved, and the table gives the median IOPS of REPS
# runs each; the last column, what the trace says of the reads. For scale,
# `psync` is fio's psync engine on the same file: one pread at a time in
# fio's own thread, the most one thread does with these reads and fio.
#
#   bench/fio_posixaio.sh [LIB]
#
# LIB is libaio2-posix.so (default: build-bench/compat/, else build/compat/).
# Environment: DIR, where the file is made (default: the current directory;
# O_DIRECT needs a file system that takes it, not tmpfs); SIZE, its size
# (default 512m); RUNTIME, seconds per run (default 5); REPS (default 3).
set -euo pipefail

lib=${1:-}
if [ -z "$lib" ]; then
  for c in build-bench/compat/libaio2-posix.so build/compat/libaio2-posix.so; do
    [ -f "$c" ] && lib=$c && break
  done
fi
[ -n "$lib" ] && [ -f "$lib" ] || { echo "fio_posixaio: no libaio2-posix.so (build it, or name it)" >&2; exit 2; }
lib=$(realpath "$lib")
command -v fio >/dev/null || { echo "fio_posixaio: fio is not installed (scripts/deps.sh tests)" >&2; exit 2; }
dir=${DIR:-.}
size=${SIZE:-512m}
runtime=${RUNTIME:-5}
reps=${REPS:-3}
file=$dir/fio_posixaio.data
trace=$dir/fio_posixaio.trace
trap 'rm -f "$trace"' EXIT

if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$(numfmt --from=iec "${size^^}")" ]; then
  fio --name=layout --filename="$file" --size="$size" --rw=write --bs=1m --ioengine=psync \
    --output-format=terse >/dev/null
fi

# One run: prints its read IOPS (fio's terse output, field 8).
one() {  # mode preload trace [engine]
  local mode=$1 preload=$2 tracefile=$3 engine=${4:-posixaio} direct=0 invalidate=1
  [ "$mode" = direct ] && direct=1
  [ "$mode" = cached ] && invalidate=0 && cat "$file" >/dev/null
  rm -f "$trace"
  env ${preload:+LD_PRELOAD=$preload} ${tracefile:+AIO2_TRACE=$tracefile} \
    fio --name=randread --filename="$file" --size="$size" --rw=randread --bs=4k \
    --ioengine="$engine" --iodepth=32 --direct="$direct" --invalidate="$invalidate" \
    --time_based --runtime="$runtime" --output-format=terse | awk -F';' 'NF > 8 { v = int($8) } END { print v }'
}

# What a run's trace says of its reads: page-cache hits, and where they ran.
# The trace file's 128-byte records as 32 u32 words each (docs/compat.md,
# "The trace file"): word 1 the kind (1: request), word 4 the op in its low
# 16 bits (SYS_pread64 = 17), word 6 the statuses (cache: its second byte,
# 0 OK), word 23 the cache outcome (1 hit), word 29 the executor's path bits.
trace_says() {
  od -An -v -w128 -tu4 "$trace" | awk '
    $1 == 1 && $4 % 65536 == 17 {
      n++
      if (int($6 / 256) % 256 == 0 && $23 == 1) h++
      x = $29; path = ""
      if (int(x / 4) % 2) path = "inline"
      if (int(x / 8) % 2) path = path (path == "" ? "" : "+") "uring"
      if (int(x / 2) % 2) path = path (path == "" ? "" : "+") "pool"
      if (path == "") path = "-"
      p[path]++
    }
    END { if (!n) { print "-"; exit } printf "%d%% hits;", 100 * h / n
          for (k in p) printf " %s %d%%", k, 100 * p[k] / n; print "" }'
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf 'fio %s, posixaio engine: 4 KiB random reads, iodepth 32, one %s file, %s s x %s runs, median IOPS\n' \
  "$(fio --version | sed 's/fio-//')" "$size" "$runtime" "$reps"
printf '%-9s %10s %10s %11s %12s %11s %10s  %s\n' case glibc aio2 aio2/glibc "aio2+trace" "trace cost" psync \
  "the trace says"
for mode in cached uncached direct; do
  g="" a="" t="" s="" says=""
  for _ in $(seq "$reps"); do
    g+=" $(one "$mode" "" "")"
    a+=" $(one "$mode" "$lib" "")"
    t+=" $(one "$mode" "$lib" "$trace")"
    says=$(trace_says)
    s+=" $(one "$mode" "" "" psync)"
  done
  mg=$(echo "$g" | median) ma=$(echo "$a" | median) mt=$(echo "$t" | median) ms=$(echo "$s" | median)
  printf '%-9s %10s %10s %10.2fx %12s %10.1f%% %10s  %s\n' "$([ "$mode" = direct ] && echo O_DIRECT || echo "$mode")" \
    "$mg" "$ma" "$(echo "$ma $mg" | awk '{ print $2 ? $1 / $2 : 0 }')" "$mt" \
    "$(echo "$ma $mt" | awk '{ print $1 ? 100 * ($1 - $2) / $1 : 0 }')" "$ms" "$says"
  echo "  runs: glibc$g; aio2$a; aio2+trace$t; psync$s" >&2
done
