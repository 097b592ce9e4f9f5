#!/bin/sh
# SPDX-License-Identifier: MIT
# Writes the program in a man page's EXAMPLES section (its literal blocks,
# with the mdoc escapes \& and \e undone) to OUT, for the build to compile
# and ctest to run.
#
#   tests/man_example.sh PAGE OUT
set -eu
page=$1
out=$2
sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$page" |
  sed -n '/^\.Bd -literal/,/^\.Ed/{/^\.Bd -literal/d;/^\.Ed/d;p;}' |
  sed 's/\\&//g; s/\\e/\\/g;' >"$out.tmp"
if ! grep -q '^int main(' "$out.tmp"; then
  echo "man_example: $page: no program in its EXAMPLES section" >&2
  rm -f "$out.tmp"
  exit 1
fi
mv "$out.tmp" "$out"
