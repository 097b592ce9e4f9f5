#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks the man pages against the headers, so that no page goes missing
# and no synopsis drifts from the code:
#   - every function aio2/aio2.h and aio2/ring.h declare (aio2_*, not the
#     aio2__ internals) has its prototype, word for word, in the SYNOPSIS of
#     a section 3 page, and every SYNOPSIS prototype is such a declaration;
#   - `man NAME` finds every one: MANDIR/NAME.3 is the page itself or a
#     symbolic link (PAGE.3, in the same directory) to the page whose
#     SYNOPSIS has it;
#   - a page's NAME section lists each function its SYNOPSIS has, and
#     nothing that is neither declared nor the page's own name;
#   - .Dt matches the file name; every page has the sections of its kind;
#     section 3 and 7 pages have an EXAMPLES program (the build compiles and
#     runs each); every .Xr to an aio2 page names a page that exists;
#   - every structure a SYNOPSIS shows has the headers' members, in order;
#   - aio2(7) lists the system calls the table refuses (REFUSE in
#     src/sys/syscall_table.cc), no more and no fewer.
#
#   tests/man_check.sh SOURCEDIR
set -eu
inc=$1/include
man=$1/man
table=$1/src/sys/syscall_table.cc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
problem() {
  echo "man_check: $*" >&2
  fail=1
}

# Declarations: a line at column 0 naming aio2_x( starts one; it ends at the
# first ')'. Normalised: one space between words, none inside parentheses,
# no "static inline".
awk '
  function norm(s) {
    sub(/\).*/, ")", s)
    gsub(/[ \t]+/, " ", s)
    sub(/^ /, "", s)
    sub(/^static inline /, "", s)
    gsub(/\( /, "(", s); gsub(/ \)/, ")", s); gsub(/ ,/, ",", s)
    return s
  }
  /^[a-z]/ && /[ *]aio2_[a-z][a-z0-9_]*\(/ { on = 1; d = "" }
  on { d = d " " $0; if (index($0, ")")) { print norm(d); on = 0 } }
' "$inc/aio2/aio2.h" "$inc/aio2/ring.h" | sort -u >"$tmp/declared"
sed 's/.*[ *]\(aio2_[a-z0-9_]*\)(.*/\1/' "$tmp/declared" | sort -u >"$tmp/declared.names"
if [ "$(wc -l <"$tmp/declared.names")" -lt 20 ]; then
  problem "found only $(wc -l <"$tmp/declared.names") declarations in $inc: the parser is broken"
fi

# Structures: `struct aio2_x { ... };` as "aio2_x: type name; type name; ...",
# comments, array bounds and extra blanks dropped (the headers' static
# assertions check sizes and offsets). Read from the headers, and from the
# SYNOPSIS of every page that shows one.
structs() {
  awk '
    function flush(   out, i, n, f) {
      while (match(body, /\/\*/)) {
        rest = substr(body, RSTART + 2)
        e = index(rest, "*/")
        body = substr(body, 1, RSTART - 1) " " (e ? substr(rest, e + 2) : "")
      }
      gsub(/\[[^]]*\]/, "", body)
      gsub(/[ \t]+/, " ", body)
      n = split(body, f, ";")
      out = name ":"
      for (i = 1; i <= n; i++) {
        sub(/^ /, "", f[i]); sub(/ $/, "", f[i])
        if (f[i] != "") out = out " " f[i] ";"
      }
      print out
    }
    /^\.Sh / { syn = ($0 == ".Sh SYNOPSIS") }
    FILENAME ~ /\.[137]$/ && !syn { next }
    !on && /^struct aio2_[a-z_]+ \{/ { on = 1; name = $2; body = ""; next }
    on && /^\};/ { flush(); on = 0; next }
    on { body = body " " $0 }
  ' "$@"
}
structs "$inc/aio2/abi.h" "$inc/aio2/aio2.h" "$inc/aio2/ring.h" | sort -u >"$tmp/structs.h"
if [ "$(wc -l <"$tmp/structs.h")" -lt 15 ]; then
  problem "found only $(wc -l <"$tmp/structs.h") structures in $inc: the parser is broken"
fi
for page in "$man"/*.[137]; do
  [ -L "$page" ] && continue
  structs "$page" | while IFS= read -r st; do
    grep -qxF "$st" "$tmp/structs.h" ||
      echo "man_check: ${page##*/}: its SYNOPSIS shows $st; the headers say $(grep "^${st%%:*}:" "$tmp/structs.h")"
  done
done >"$tmp/struct.problems"
if [ -s "$tmp/struct.problems" ]; then
  cat "$tmp/struct.problems" >&2
  fail=1
fi

# Pages: NAME entries and SYNOPSIS prototypes; links are noted.
: >"$tmp/protos"
: >"$tmp/names"
for page in "$man"/*.[137]; do
  file=${page##*/}
  base=${file%.*}
  sec=${file##*.}
  if [ -L "$page" ]; then
    target=$(readlink "$page")
    case $target in
      */*) problem "$file: links to $target, outside its directory" ;;
      *) [ -f "$man/$target" ] && [ ! -L "$man/$target" ] ||
           problem "$file: links to $target, which is not a page in $man" ;;
    esac
    echo "$file $target" >>"$tmp/links"
    continue
  fi
  awk -v page="$file" -v base="$base" -v sec="$sec" -v protos="$tmp/protos" \
      -v names="$tmp/names" '
    function unq(s) { gsub(/"/, "", s); return s }
    /^\.Dt / {
      want = toupper(base) " " sec
      got = $2 " " $3
      if (got != want) { print "man_check: " page ": .Dt " got ", expected " want; bad = 1 }
    }
    /^\.Sh / { s = substr($0, 5); seen[s] = 1; if (s == "EXAMPLES") ex = 1; else ex = 0 }
    ex && /^int main\(/ { program = 1 }
    s == "NAME" && /^\.Nm / { n = $2; sub(/,$/, "", n); print page " " n >> names }
    s == "SYNOPSIS" && /^\.Ft / { t = unq(substr($0, 5)) }
    s == "SYNOPSIS" && /^\.Fn / {
      line = substr($0, 5)
      name = line; sub(/ .*/, "", name)
      rest = substr(line, length(name) + 1)
      args = ""
      while (match(rest, /"[^"]*"/)) {
        a = substr(rest, RSTART + 1, RLENGTH - 2)
        args = args (args == "" ? "" : ", ") a
        rest = substr(rest, RSTART + RLENGTH)
      }
      if (args == "") args = "void"
      p = t (t ~ /\*$/ ? "" : " ") name "(" args ")"
      print page "\t" p >> protos
    }
    END {
      n = split(sec == "1" ? "NAME|SYNOPSIS|DESCRIPTION|EXIT STATUS|EXAMPLES|SEE ALSO" : \
                sec == "7" ? "NAME|DESCRIPTION|EXAMPLES|SEE ALSO" : \
                "NAME|LIBRARY|SYNOPSIS|DESCRIPTION|RETURN VALUES|CONCURRENCY|EXAMPLES|ERRORS|SEE ALSO",
                need, "|")
      for (i = 1; i <= n; i++)
        if (!(need[i] in seen)) { print "man_check: " page ": no " need[i] " section"; bad = 1 }
      if (sec != "1" && !program) { print "man_check: " page ": its EXAMPLES has no program (int main)"; bad = 1 }
      exit bad
    }
  ' "$page" >&2 || fail=1
  # Cross references to aio2 pages.
  for xr in $(sed -n 's/^\.Xr \(aio2[a-z0-9_-]*\) \([137]\).*/\1.\2/p' "$page"); do
    [ -f "$man/$xr" ] || problem "$file: .Xr to $xr, which is not in $man"
  done
done
touch "$tmp/links"

cut -f2 "$tmp/protos" | sort >"$tmp/documented"
# Each declaration documented word for word, once.
while IFS= read -r d; do
  c=$(grep -cxF "$d" "$tmp/documented" || true)
  [ "$c" -eq 1 ] || problem "declared as \"$d\", in $c SYNOPSIS sections"
done <"$tmp/declared"
# Each SYNOPSIS prototype declared.
while IFS="$(printf '\t')" read -r page p; do
  grep -qxF "$p" "$tmp/declared" || problem "$page: SYNOPSIS has \"$p\", which no header declares"
done <"$tmp/protos"
# man NAME finds the page that has NAME's prototype.
sed 's/^\([^\t]*\)\t.*[ *]\(aio2_[a-z0-9_]*\)(.*/\2 \1/' "$tmp/protos" >"$tmp/homes"
while IFS= read -r n; do
  home=$(awk -v n="$n" '$1 == n { print $2; exit }' "$tmp/homes")
  [ -n "$home" ] || continue  # reported above
  if [ "$home" != "$n.3" ]; then
    link=$(awk -v f="$n.3" '$1 == f { print $2 }' "$tmp/links")
    [ "$link" = "$home" ] || problem "$n: man $n finds ${link:-no page}; its prototype is in $home"
  fi
  grep -qxF "$home $n" "$tmp/names" || problem "$home: $n is in its SYNOPSIS, not in its NAME"
done <"$tmp/declared.names"
# NAME lists only declared functions and the page's own topic.
while read -r page n; do
  [ "$n" = "${page%.*}" ] && continue
  grep -qxF "$n" "$tmp/declared.names" || problem "$page: NAME lists $n, which no header declares"
done <"$tmp/names"

# The refused calls.
sed -n 's/^ *REFUSE(\([a-z0-9_]*\),.*/\1/p' "$table" | sort >"$tmp/refused.table"
sed -n '/^\.\\" refused:begin/,/^\.\\" refused:end/p' "$man/aio2.7" | grep -v '^\.' |
  sort >"$tmp/refused.man"
if [ "$(wc -l <"$tmp/refused.table")" -lt 30 ]; then
  problem "found only $(wc -l <"$tmp/refused.table") REFUSE entries in $table: the parser is broken"
elif ! cmp -s "$tmp/refused.table" "$tmp/refused.man"; then
  problem "aio2.7's refused calls differ from $table's (< table, > page):"
  diff "$tmp/refused.table" "$tmp/refused.man" >&2 || true
fi

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "man_check: $(wc -l <"$tmp/declared.names") functions, each in a page's SYNOPSIS as declared; \
$(ls "$man"/*.[137] | wc -l) files; $(wc -l <"$tmp/refused.man") refused calls"
