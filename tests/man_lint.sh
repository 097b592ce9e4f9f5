#!/bin/sh
# SPDX-License-Identifier: MIT
# Lints every man page in MANDIR with mandoc at the warning level: any
# message fails the test. Each is linted as manN/NAME.N of a tree whose
# manN/ is MANDIR, the way man(1) finds it; a symbolic link (another name
# for a page) is linted as the page it names.
#
#   tests/man_lint.sh MANDOC MANDIR
set -eu
mandoc=$1
man=$(cd "$2" && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
for s in 1 3 7; do
  ln -s "$man" "$tree/man$s"
done
cd "$tree"
pages=0
failed=0
for page in "$man"/*.[137]; do
  name=${page##*/}
  out=$("$mandoc" -T lint -W warning "man${name##*.}/$name" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "man_lint: $name: mandoc -T lint -W warning exited $rc" >&2
    failed=$((failed + 1))
  fi
  pages=$((pages + 1))
done
if [ "$pages" -eq 0 ]; then
  echo "man_lint: no page in $man" >&2
  exit 1
fi
echo "man_lint: $pages pages, $failed with warnings"
[ "$failed" -eq 0 ]
