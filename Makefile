# aio2's commands, over CMake. Each installs what is missing (Debian
# packages, via scripts/deps.sh), configures, builds and runs.
#   make demo   the demo: aio2's main job, shown
#   make test   the whole suite: plain, ThreadSanitizer and ASan+UBSan builds
#   make bench  the benchmarks, built optimised
#   make deb    the Debian packages, lintian-checked, in build-deb/
#   make deb-test  the packages installed, used by a program, removed (root)
#   make abi-update  a deliberate ABI change: the baseline and the symbols
#               file rewritten from the built library, to commit with it
#   make fuzz   the libFuzzer targets (clang), FUZZ_SECONDS each (default 60)
# A plain `cmake -S . -B build` builds the library alone, which needs only
# liburing; each target here turns on the parts it runs (AIO2_BUILD_*).
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

# The tests run the aio2 command, and pool_bench links its bench engines.
TOOLS := -DAIO2_BUILD_TOOLS=ON
TESTS := -DAIO2_BUILD_TOOLS=ON -DAIO2_BUILD_TESTS=ON
BENCH := -DAIO2_BUILD_TOOLS=ON -DAIO2_BUILD_BENCH=ON
EVERYTHING := -DAIO2_BUILD_TOOLS=ON -DAIO2_BUILD_TESTS=ON -DAIO2_BUILD_BENCH=ON

.PHONY: all deps deps-tools deps-tests deps-bench deps-deb deb deb-test demo test test-plain test-tsan test-asan \
	bench abi-update clean fuzz test-fuzz deps-fuzz

# `make`: everything, in build/.
all: build/.configured-all
	@cmake --build build -j$(JOBS)

deps:
	@scripts/deps.sh
deps-tools:
	@scripts/deps.sh tools
# As root, the plain test build also tests the Debian packages (aio2_deb).
ROOT := $(filter 0,$(shell id -u))
deps-tests:
	@scripts/deps.sh tools tests $(if $(ROOT),deb)
deps-bench:
	@scripts/deps.sh tools bench
deps-deb:
	@scripts/deps.sh deb

# build/ serves `make`, the demo and the plain tests; each configures it once
# with its own options, which add to those already in its cache.
build/.configured-all: CMakeLists.txt | deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(EVERYTHING) $(CMAKE_FLAGS) >/dev/null
	@touch $@

build/.configured-tools: CMakeLists.txt | deps-tools
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(TOOLS) $(CMAKE_FLAGS) >/dev/null
	@touch $@

build/.configured-tests: CMakeLists.txt | deps-tests
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(TESTS) $(CMAKE_FLAGS) >/dev/null
	@touch $@

build-tsan/.configured: CMakeLists.txt | deps-tests
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIO2_SANITIZE=thread $(TESTS) >/dev/null
	@touch $@

build-asan/.configured: CMakeLists.txt | deps-tests
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIO2_SANITIZE=address $(TESTS) >/dev/null
	@touch $@

demo: build/.configured-tools
	@cmake --build build -j$(JOBS) --target aio2 >/dev/null
	@build/bin/aio2 demo

# ctest's summary line closes each run; any failure stops make.
test: test-plain test-tsan test-asan test-fuzz
	@echo "make test: plain, ThreadSanitizer and AddressSanitizer+UBSan suites and the fuzz targets all passed"

test-plain: build/.configured-tests
	@cmake --build build -j$(JOBS) >/dev/null
	@echo "== plain build" && cd build && ctest -j$(JOBS) --output-on-failure

# TSan's shadow memory needs a narrower mmap layout than recent kernels'
# default randomisation gives; setarch -R runs the tests without it.
test-tsan: build-tsan/.configured
	@cmake --build build-tsan -j$(JOBS) >/dev/null
	@echo "== ThreadSanitizer build" && cd build-tsan && \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" setarch -R ctest -j$(JOBS) --output-on-failure

test-asan: build-asan/.configured
	@cmake --build build-asan -j$(JOBS) >/dev/null
	@echo "== AddressSanitizer+UBSan build" && cd build-asan && \
	  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  ctest -j$(JOBS) --output-on-failure

# Benchmarks are built optimised (Release) in their own tree. `aio2 bench`
# runs aio2 beside liburing, libaio, POSIX AIO, libuv and plain calls;
# pool_bench, built too, is a preset of it (the thread pools alone).
bench: deps-bench
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release $(BENCH) >/dev/null
	@cmake --build build-bench -j$(JOBS) --target ring_bench aio2 pool_bench attr_bench uring_share_bench >/dev/null
	@build-bench/bin/ring_bench
	@build-bench/bin/aio2 bench
	@build-bench/bin/attr_bench
	@build-bench/bin/uring_share_bench

# The ABI test (aio2_abi, scripts/abi.sh check) fails on any change of the
# exported entry points or the types they take. A deliberate change edits
# src/aio2.map and the headers, then runs this and commits abi/libaio2.abi
# and debian/libaio2-0.symbols in the same commit.
abi-update: build/.configured-tests
	@cmake --build build -j$(JOBS) --target aio2_shared >/dev/null
	@scripts/abi.sh update build/libaio2.so

# libaio2-0, libaio2-dev, aio2-tools and aio2-libaio, built by dpkg-buildpackage
# -us -uc from a copy of the tree in build-deb/, which holds the .deb and .changes
# files; lintian's E: and W: tags fail (scripts/deb.sh).
deb: deps-deb
	@JOBS=$(JOBS) scripts/deb.sh build

# The packages installed with dpkg -i, a program built against them with
# find_package and pkg-config, and the packages removed; the plain test
# build runs the same as its aio2_deb test when run as root.
deb-test: deps-deb
	@JOBS=$(JOBS) scripts/deb.sh test

# The fuzz targets (fuzz/, docs/testing.md "Fuzzing"), built by clang with
# libFuzzer, ASan and UBSan in build-fuzz/. Each runs FUZZ_SECONDS on a
# working corpus in build-fuzz/corpus/<target>, seeded from the committed
# fuzz/corpus/<target> (which it never writes); a crash leaves its input in
# build-fuzz/crash-<target>-* and fails. `make test` runs each for
# TEST_FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 10
FUZZ_TARGETS := walkers ring submit libaio posix
deps-fuzz:
	@scripts/deps.sh fuzz

build-fuzz/.configured: CMakeLists.txt | deps-fuzz
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIO2_BUILD_FUZZ=ON >/dev/null
	@touch $@

define run-fuzz
	@cmake --build build-fuzz -j$(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS)) >/dev/null
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "== fuzz_$$t, $(1) s"; \
	  status=0; \
	  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	    build-fuzz/bin/fuzz_$$t -max_total_time=$(1) -timeout=60 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t fuzz/corpus/$$t \
	    >build-fuzz/fuzz_$$t.log 2>&1 || status=$$?; \
	  grep -E "number_of_executed_units|average_exec_per_sec|ERROR|invariant broken|Test unit written|SUMMARY" \
	    build-fuzz/fuzz_$$t.log || true; \
	  if [ $$status -ne 0 ]; then echo "fuzz_$$t failed (exit $$status): build-fuzz/fuzz_$$t.log"; exit 1; fi; \
	done
endef

fuzz: build-fuzz/.configured
	$(call run-fuzz,$(FUZZ_SECONDS))

test-fuzz: build-fuzz/.configured
	$(call run-fuzz,$(TEST_FUZZ_SECONDS))

clean:
	rm -rf build build-tsan build-asan build-bench build-deb build-fuzz
