#!/usr/bin/env bash
# The ABI of libaio2.so.0, kept on purpose. Three files state it and must
# agree with the built library:
#   src/aio2.map              the exported entry points, by name, under their
#                             version node (the linker's version script)
#   abi/libaio2.abi           the baseline: abidw's record of those entry
#                             points, their versions and the types they take
#   debian/libaio2-0.symbols  the Debian package's symbols file
#
#   scripts/abi.sh check  LIB   the ABI test: fails on any difference
#   scripts/abi.sh update LIB   a deliberate change: rewrites the baseline
#                               and the symbols file from LIB (`make abi-update`)
#
# LIB is the built libaio2.so of a build with debug information
# (RelWithDebInfo, the plain build). check compares, by abidiff
# (abigail-tools), the baseline with abidw's record of LIB, and the names
# that LIB exports (nm -D) with those of the map and of the symbols file;
# any change, an added entry point too, fails. Only the public headers'
# types count (aio2_ctx is opaque), and paths are recorded relative to the
# source tree, so that the record does not depend on where it was built.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
baseline=$src/abi/libaio2.abi
map=$src/src/aio2.map
symbols=$src/debian/libaio2-0.symbols

usage() {
  echo "usage: scripts/abi.sh check|update LIB" >&2
  exit 2
}
[ $# -eq 2 ] || usage
mode=$1
lib=$2
[ -f "$lib" ] || { echo "abi: no library at $lib" >&2; exit 2; }
for tool in abidw abidiff nm; do
  command -v "$tool" >/dev/null ||
    { echo "abi: $tool is missing (scripts/deps.sh tests installs abigail-tools)" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# abidw's record of a library: the exported interfaces and the public
# headers' types only, without build paths or locations.
dump() {
  abidw --no-corpus-path --no-comp-dir-path --no-show-locs --exported-interfaces-only \
    --headers-dir "$src/include/aio2" --drop-private-types --type-id-style hash \
    --out-file "$tmp/raw.abi" "$1"
  sed "s|path='$src/|path='|" "$tmp/raw.abi" >"$2"
}

# The names the map exports (its global: lines), sorted.
map_names() {
  sed 's|/\*.*\*/||g' "$map" | awk '
    /global:/ { on = 1; next }
    /local:/ { on = 0 }
    on { gsub(/[ \t;]/, ""); if ($0 != "") print }' | sort
}

# The library's defined dynamic symbols as name@version, sorted; the version
# nodes themselves (absolute symbols) are left out.
lib_symbols() {
  nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@@/, "@", $3); print $3 }' | sort
}

# The version node of each name, from the map: the last node opened before it.
map_versioned() {
  sed 's|/\*.*\*/||g' "$map" | awk '
    /^[A-Za-z_][A-Za-z0-9_.]* *\{/ { node = $1; next }
    /global:/ { on = 1; next }
    /local:|\}/ { on = 0 }
    on { gsub(/[ \t;]/, ""); if ($0 != "") print $0 "@" node }' | sort
}

# The symbols file's entries, name@version, the version nodes left out.
symbols_names() {
  awk '/^ / { split($1, s, "@"); if (s[1] != s[2]) print $1 }' "$symbols" | sort
}

case "$mode" in
check)
  fail=0
  lib_symbols >"$tmp/lib"
  map_versioned >"$tmp/map"
  if ! diff -u --label "src/aio2.map" --label "$lib (nm -D)" "$tmp/map" "$tmp/lib"; then
    echo "abi: the library does not export exactly the entry points of src/aio2.map" >&2
    fail=1
  fi
  symbols_names >"$tmp/symbols"
  if ! diff -u --label "debian/libaio2-0.symbols" --label "$lib (nm -D)" "$tmp/symbols" "$tmp/lib"; then
    echo "abi: debian/libaio2-0.symbols does not list the library's symbols" >&2
    fail=1
  fi
  dump "$lib" "$tmp/current.abi"
  rc=0
  abidiff "$baseline" "$tmp/current.abi" >"$tmp/abidiff" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    cat "$tmp/abidiff"
    echo "abi: abidiff found the ABI changed from abi/libaio2.abi (exit $rc)" >&2
    fail=1
  fi
  if [ $fail -ne 0 ]; then
    echo "abi: a deliberate change updates src/aio2.map, then runs 'make abi-update'" \
      "and commits abi/ and debian/libaio2-0.symbols with it" >&2
    exit 1
  fi
  echo "abi: $(wc -l <"$tmp/lib") entry points, as src/aio2.map, abi/libaio2.abi and" \
    "debian/libaio2-0.symbols state them"
  ;;
update)
  version=$(sed -n 's/^project(aio2 VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
  [ -n "$version" ] || { echo "abi: no version in CMakeLists.txt's project()" >&2; exit 1; }
  mkdir -p "$src/abi" "$src/debian"
  dump "$lib" "$baseline"
  # Each symbol keeps the version that added it; new ones get this one. The
  # version nodes are listed as dpkg-gensymbols lists them (node@node).
  declare -A since=()
  if [ -f "$symbols" ]; then
    while read -r sym ver; do since[$sym]=$ver; done < <(awk '/^ / { print $1, $2 }' "$symbols")
  fi
  {
    echo "libaio2.so.0 libaio2-0 #MINVER#"
    echo "* Build-Depends-Package: libaio2-dev"
    {
      nm -D --defined-only "$lib" | awk '$2 == "A" { print $3 "@" $3 }'
      lib_symbols
    } | sort | while read -r sym; do
      echo " $sym ${since[$sym]:-$version}"
    done
  } >"$tmp/symbols.new"
  mv "$tmp/symbols.new" "$symbols"
  echo "abi: wrote abi/libaio2.abi and debian/libaio2-0.symbols ($(lib_symbols | wc -l) entry points)"
  ;;
*) usage ;;
esac
