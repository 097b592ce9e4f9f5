#!/usr/bin/env bash
# Runs libaio's own test harness (harness/ of Debian's libaio source
# package) against the real libaio.so.1 (kernel AIO) and against aio2's,
# and prints one line per case with both results.
#
#   tests/compat/libaio_harness.sh BUILD_DIR [LIBAIO_SOURCE_DIR]
#
# BUILD_DIR is an aio2 build tree with the replacement built
# (BUILD_DIR/compat/libaio.so.1). LIBAIO_SOURCE_DIR is an unpacked libaio
# source tree; without it the script fetches one with `apt-get source
# libaio` (needs deb-src entries in apt's sources and dpkg-dev). Nothing
# is copied into the repository: the harness is built in a temporary
# directory, removed at exit.
#
# Each case runs twice on each library: as shipped, and "min1", with the
# harness's sync_submit (and 13.t) waiting for its one event
# (io_getevents min_nr 1 instead of 0). As shipped the harness relies on
# kernel AIO running buffered I/O inside io_submit: it asks for at least 0
# events and expects the one it submitted to be there already. aio2 runs
# the I/O asynchronously, so those cases find no event yet; "min1" shows
# what they check once they wait for it. Cases 8 and 10 need root: they
# loop-mount ext2 images (skipped otherwise).
#
# This is a manual script, not a ctest test: it needs the Debian source
# archive (deb-src), root for the loop mounts, and a minute or two.
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR [LIBAIO_SOURCE_DIR]}
build=$(cd "$build" && pwd)
ours="$build/compat"
[ -e "$ours/libaio.so.1" ] || { echo "harness: $ours/libaio.so.1 not built" >&2; exit 2; }

work=$(mktemp -d /tmp/aio2-libaio-harness.XXXXXX)
cleanup() {
  for m in "$work"/*/harness/testdir.ext2 "$work"/*/harness/testdir.enospc; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

if [ $# -ge 2 ]; then
  src=$(cd "$2" && pwd)
else
  (cd "$work" && apt-get source -qq libaio >/dev/null) ||
    { echo "harness: apt-get source libaio failed (deb-src and dpkg-dev needed)" >&2; exit 2; }
  src=$(find "$work" -maxdepth 1 -type d -name 'libaio-*' | head -n1)
fi
[ -d "$src/harness/cases" ] || { echo "harness: no harness/ in $src" >&2; exit 2; }

# Builds the harness in $work/$1 (the shipped cases, or with min_nr 1).
prepare() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cp -r "$src/harness" "$src/src" "$dir/"
  if [ "$1" = min1 ]; then
    sed -i 's/io_getevents(io_ctx, 0, 1, &event, &ts)/io_getevents(io_ctx, 1, 1, \&event, \&ts)/' \
      "$dir/harness/cases/aio_setup.h" "$dir/harness/cases/13.t"
  fi
  make -s -C "$dir/harness" -j2 LIBAIO=-laio all >/dev/null
  make -s -C "$dir/harness" testdir/rofile testdir/rwfile testdir/wofile >/dev/null
}

# Runs case $2 of variant $1 with library directory $3 (empty: the real
# one); prints its exit status, or "skip" when it cannot run here.
run_case() {
  local dir="$work/$1/harness" n=$2 lib=$3 mnt="" img=""
  case $n in
    8) mnt=testdir.ext2 img=ext2.img ;;
    10) mnt=testdir.enospc img=ext2-enospc.img ;;
  esac
  if [ -n "$mnt" ]; then
    [ "$(id -u)" -eq 0 ] || { echo skip; return; }
    mkdir -p "$dir/$mnt"
    if [ "$n" = 8 ] && [ ! -e "$dir/$img" ]; then
      dd if=/dev/zero bs=1M count=10 of="$dir/$img" 2>/dev/null
      mke2fs -q -F -b 4096 "$dir/$img"
    fi
    mount -o loop -t ext2 "$dir/$img" "$dir/$mnt" 2>/dev/null || { echo skip; return; }
  fi
  local rc=0
  (cd "$dir" && LD_LIBRARY_PATH="$lib" timeout 300 "./cases/$n.p" >"$work/$1-$n-${lib:+aio2}.log" 2>&1) ||
    rc=$?
  # io_uring lets go of a dead process's files a moment after it exits.
  if [ -n "$mnt" ]; then
    for _ in $(seq 50); do umount "$dir/$mnt" 2>/dev/null && break; sleep 0.1; done
  fi
  echo "$rc"
}

prepare stock
prepare min1
cases=$(cd "$work/stock/harness/cases" && ls ./*.t | sed 's|./||; s|\.t$||' | sort -n)

word() { case $1 in 0) echo pass ;; 3) echo skip ;; skip) echo skip ;; *) echo "FAIL($1)" ;; esac; }
printf '%-5s %-14s %-14s %-14s %-14s\n' case kernel aio2 kernel-min1 aio2-min1
pass=0 fail=0
for n in $cases; do
  k=$(word "$(run_case stock "$n" "")")
  o=$(word "$(run_case stock "$n" "$ours")")
  k1=$(word "$(run_case min1 "$n" "")")
  o1=$(word "$(run_case min1 "$n" "$ours")")
  printf '%-5s %-14s %-14s %-14s %-14s\n' "$n" "$k" "$o" "$k1" "$o1"
  for r in "$o" "$o1"; do
    case $r in pass) pass=$((pass + 1)) ;; FAIL*) fail=$((fail + 1)) ;; esac
  done
done
echo "aio2: $pass passed, $fail failed"
