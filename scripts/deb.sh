#!/usr/bin/env bash
# The Debian packages libaio2-0, libaio2-dev, aio2-tools and aio2-libaio
# (debian/).
#
#   scripts/deb.sh build [DIR]  builds them with `dpkg-buildpackage -us -uc`
#                               from a copy of the source tree in DIR
#                               (build-deb/ by default), then checks them
#                               with lintian: any E: or W: tag fails
#   scripts/deb.sh test [DIR]   builds them, installs them (dpkg -i), builds
#                               a program outside aio2 against them with
#                               find_package and pkg-config
#                               and a libaio program on aio2-libaio
#                               (tests/consumers.cmake, MODE=system), runs
#                               the aio2 command, and removes them again.
#                               Needs root; exits 77 (skipped) without it,
#                               or when one of the packages is installed
#                               already
#
# dpkg-buildpackage writes the packages beside the tree it builds, so it
# builds a copy: the files git tracks or would track (untracked ones not
# ignored), or without git the tree less build*/ and .git. Everything it
# writes stays in DIR. JOBS (default: the CPUs) is its parallelism.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
out=${2:-$src/build-deb}
jobs=${JOBS:-$(nproc)}
packages=(libaio2-0 libaio2-dev aio2-tools aio2-libaio)

case "$cmd" in
build | test) ;;
*) echo "usage: scripts/deb.sh build|test [DIR]" >&2; exit 2 ;;
esac

for tool in dpkg-buildpackage dh lintian cmake; do
  command -v "$tool" >/dev/null ||
    { echo "deb: $tool is missing (scripts/deps.sh deb installs it)" >&2; exit 2; }
done

version=$(sed -n 's/^project(aio2 VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
deb_version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [ "$version" != "$deb_version" ]; then
  echo "deb: debian/changelog's version $deb_version is not the project's $version" >&2
  exit 1
fi
arch=$(dpkg-architecture -q DEB_HOST_ARCH)

build() {
  rm -rf "$out"
  local tree=$out/aio2-$version
  mkdir -p "$tree"
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
      xargs -0 cp -a --parents -t "$tree")
  else
    tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$tree" -xf -
  fi

  echo "deb: dpkg-buildpackage -us -uc in $tree (log: $out/build.log)"
  if ! (cd "$tree" && dpkg-buildpackage -us -uc -J"$jobs") >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log"
    echo "deb: dpkg-buildpackage failed (the whole log: $out/build.log)" >&2
    exit 1
  fi
  changes=$out/aio2_${version}_${arch}.changes
  (cd "$out" && ls -1 -- *.deb | sed "s/^/  /")

  # E: and W: tags fail; I: and P: ones are shown.
  echo "deb: lintian -I --pedantic $(basename "$changes")"
  if ! lintian -I --pedantic --fail-on error,warning "$changes"; then
    echo "deb: lintian found errors or warnings" >&2
    exit 1
  fi
  echo "deb: lintian: no errors, no warnings"
}

installed() {
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q "ok installed"
}

if [ "$cmd" = build ]; then
  build
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deb: skipped: installing the packages (dpkg -i) needs root"
  exit 77
fi
for p in "${packages[@]}"; do
  if installed "$p"; then
    echo "deb: skipped: $p is installed already; this test installs and removes its own" \
      "(dpkg -r ${packages[*]} removes them)"
    exit 77
  fi
done
build

remove() {
  dpkg -P "${packages[@]}" >/dev/null
  for p in "${packages[@]}"; do
    if installed "$p"; then
      echo "deb: $p is still installed" >&2
      exit 1
    fi
  done
  echo "deb: removed ${packages[*]}"
}
trap remove EXIT
debs=()
for p in "${packages[@]}"; do debs+=("$out/${p}_${version}_${arch}.deb"); done
dpkg -i "${debs[@]}" >/dev/null
echo "deb: installed ${packages[*]}"

if ! cmake -DMODE=system -DSOURCE_DIR="$src" -DWORK_DIR="$out/consumer" \
  -DGENERATOR="Unix Makefiles" -DC_COMPILER=cc -DCXX_COMPILER=c++ -DJOBS="$jobs" \
  -P "$src/tests/consumers.cmake" >"$out/consumer.log" 2>&1; then
  tail -n 40 "$out/consumer.log"
  echo "deb: the program outside aio2 did not build or run against the packages" >&2
  exit 1
fi
sed -n 's/^-- system: /deb: /p' "$out/consumer.log"

# The command is on PATH and runs; each man page of the source is installed.
[ "$(command -v aio2)" = /usr/bin/aio2 ] || { echo "deb: aio2 is not /usr/bin/aio2" >&2; exit 1; }
aio2 demo --help >/dev/null
missing=0
for page in "$src"/man/*.[137]; do
  [ -e "$page" ] || continue
  name=$(basename "$page")
  if [ ! -e "/usr/share/man/man${name##*.}/$name.gz" ]; then
    echo "deb: the man page $name is not installed" >&2
    missing=1
  fi
done
[ $missing -eq 0 ]
echo "deb: /usr/bin/aio2 runs; find_package(aio2), pkg-config aio2 and the libaio replacement give working programs"
