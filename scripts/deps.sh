#!/usr/bin/env bash
# Installs the Debian packages aio2 needs, when they are missing. Quiet and
# idempotent: a second run installs nothing.
#
#   scripts/deps.sh [PART...]
#
# PART is what is to be built: lib (the library: liburing), tools (the aio2
# command, AIO2_BUILD_TOOLS), tests (AIO2_BUILD_TESTS), bench
# (AIO2_BUILD_BENCH), deb (the Debian packages, `make deb`: debian/control's
# Build-Depends, lintian) or fuzz (the libFuzzer targets, `make fuzz`). The library's packages always come; no PART means
# all.
set -euo pipefail

lib=(build-essential cmake make pkg-config liburing-dev)
# `aio2 bench` links libuv and libaio; `aio2 bench --plot` runs gnuplot.
tools=(libuv1-dev libaio-dev nlohmann-json3-dev gnuplot-nox)
# Debian's GTest CMake package names gmock's files too; mandoc lints the man
# pages; fio runs on the libaio replacement; the ABI check (scripts/abi.sh)
# runs abidw and abidiff (abigail-tools); libaio_compat_test loads the real
# libaio.so.1 (libaio1) beside aio2's; the qemu-img test runs qemu-img
# (qemu-utils) on aio2's libaio and watches it with strace; sysbench and
# stressapptest run on it too.
tests=(libgtest-dev libgmock-dev nlohmann-json3-dev mandoc fio abigail-tools libaio1 qemu-utils
  strace sysbench stressapptest)
# tool_bench_test checks that `aio2 bench --plot`'s SVG files are well-formed
# XML with xmllint (libxml2-utils).
tests+=(libxml2-utils)
# The ring's model check (tests/model/) is built on relacy, header-only.
tests+=(relacy-dev)
# pool_bench links the engines of `aio2 bench`; bench/callgrind_requests.sh
# counts instructions with valgrind's callgrind.
bench=(libbenchmark-dev libboost-dev libconcurrentqueue-dev valgrind "${tools[@]}")
# The fuzz targets (`make fuzz`) are built by clang with libFuzzer, whose
# runtime (and ASan's and UBSan's for clang) is libclang-rt-14-dev.
fuzz=(clang libclang-rt-14-dev)
# dpkg-buildpackage with debhelper builds the packages, which hold the aio2
# command (its build needs the tools' packages); lintian checks them.
deb=(dpkg-dev debhelper fakeroot lintian "${tools[@]}")

[ $# -eq 0 ] && set -- tools tests bench deb fuzz
packages=("${lib[@]}")
for part in "$@"; do
  case "$part" in
    lib) ;;
    tools) packages+=("${tools[@]}") ;;
    tests) packages+=("${tests[@]}") ;;
    bench) packages+=("${bench[@]}") ;;
    deb) packages+=("${deb[@]}") ;;
    fuzz) packages+=("${fuzz[@]}") ;;
    *) echo "deps: unknown part '$part' (lib, tools, tests, bench, deb or fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
