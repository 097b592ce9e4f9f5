#!/bin/sh
# SPDX-License-Identifier: MIT
# The copy_tree example end to end: makes a tree of directories, files of
# awkward sizes (empty, one byte, around a page, around the example's 64 KiB
# chunk, a few MiB), modes and symbolic links, copies it with the example,
# and compares the copy with the original: every byte of every file (cmp),
# every link target, and each entry's type, mode and size.
#
#   tests/copy_tree_test.sh COPY_TREE WORKDIR
#
# WORKDIR is emptied first and removed when the copy matches.
set -eu

copy_tree=$1
work=$2
rm -rf "$work"
mkdir -p "$work/src"
src=$work/src
dst=$work/dst

# A file of `size` bytes that no other file shares.
mkfile() { # path size
  head -c "$2" /dev/urandom >"$1"
}

sizes="0 1 4095 4096 4097 65535 65536 65537 200000"
for d in a a/b a/b/c a/b/c/d e e/f g; do
  mkdir -p "$src/$d"
  i=0
  for s in $sizes; do
    mkfile "$src/$d/f$i" "$s"
    i=$((i + 1))
  done
done
mkfile "$src/big" 3000000
mkfile "$src/a/b/private" 10000
chmod 0600 "$src/a/b/private"
mkfile "$src/e/tool" 512
chmod 0755 "$src/e/tool"
chmod 0700 "$src/e/f"
mkdir "$src/empty"
i=0
while [ $i -lt 300 ]; do # a wide directory: many entries in one listing
  mkfile "$src/g/w$i" $((i * 13))
  i=$((i + 1))
done
ln -s f1 "$src/a/link"
ln -s ../../big "$src/a/b/uplink"
ln -s dangling "$src/e/nowhere"

"$copy_tree" "$src" "$dst"

# Types, modes, sizes and link targets of every entry.
listing() {
  (cd "$1" && find . -printf '%y %m %s %l %p\n' | LC_ALL=C sort)
}
listing "$src" >"$work/src.list"
listing "$dst" >"$work/dst.list"
if ! cmp -s "$work/src.list" "$work/dst.list"; then
  echo "copy_tree_test: the copy's entries differ:" >&2
  diff "$work/src.list" "$work/dst.list" >&2 || true
  exit 1
fi
# Every regular file byte for byte.
n=0
for f in $(cd "$src" && find . -type f); do
  if ! cmp "$src/$f" "$dst/$f"; then
    echo "copy_tree_test: $f differs" >&2
    exit 1
  fi
  n=$((n + 1))
done
entries=$(wc -l <"$work/src.list")
echo "copy_tree_test: $n files and $entries entries in all match"
rm -rf "$work"
