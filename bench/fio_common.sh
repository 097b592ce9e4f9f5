# Sourced by bench/fio_libaio.sh and bench/fio_observe.sh: the part they
# share. Before sourcing, the script sets `name` (its name, for messages and
# the work directory) and `size` (the default file size). Then, with the
# script's arguments:
#
#   SCRIPT COMPAT_DIR [--size S] [--runtime SEC] [--reps N] [--dir DIR]
#
# it sets compat, size, runtime (default 5), reps (default 3) and dir
# (default $TMPDIR or /tmp); checks that COMPAT_DIR holds libaio.so.1 and
# that fio is installed; makes the work directory `work` (removed at exit)
# and writes `file`, the data file, in it; and defines `median` (of numbers
# on standard input, one a line) and `trace_requests FILE` (the request
# records of an aio2 trace file: 128-byte records, kind 1 in the first 4
# bytes; the zero padding of mapped chunks is kind 0).
set -euo pipefail
compat=${1:?usage: $name.sh COMPAT_DIR [--size S] [--runtime SEC] [--reps N] [--dir DIR]}
shift
runtime=5 reps=3 dir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "$name: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -e "$compat/libaio.so.1" ] || { echo "$name: no libaio.so.1 in $compat" >&2; exit 2; }
command -v fio >/dev/null || { echo "$name: fio is not installed" >&2; exit 2; }
work=$(mktemp -d "$dir/aio2-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/data
fio --name=fill --filename="$file" --size="$size" --rw=write --bs=1m --output-format=terse \
  >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
trace_requests() { od -An -v -w128 -tu4 "$1" | awk '$1 == 1 { n++ } END { print n + 0 }'; }
