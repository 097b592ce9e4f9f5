# aio2's two commands, over CMake. Each installs what is missing (Debian
# packages, via scripts/deps.sh), configures, builds and runs.
#   make demo   the demo: aio2's main job, shown
#   make test   the whole suite: plain, ThreadSanitizer and ASan+UBSan builds
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps demo test test-plain test-tsan test-asan bench clean

all: build/.configured
	@cmake --build build -j$(JOBS)

deps:
	@scripts/deps.sh

build/.configured: CMakeLists.txt | deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@touch $@

build-tsan/.configured: CMakeLists.txt | deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIO2_SANITIZE=thread >/dev/null
	@touch $@

build-asan/.configured: CMakeLists.txt | deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIO2_SANITIZE=address >/dev/null
	@touch $@

demo: build/.configured
	@cmake --build build -j$(JOBS) --target aio2 >/dev/null
	@build/bin/aio2 demo

# ctest's summary line closes each run; any failure stops make.
test: test-plain test-tsan test-asan
	@echo "make test: plain, ThreadSanitizer and AddressSanitizer+UBSan suites all passed"

test-plain: build/.configured
	@cmake --build build -j$(JOBS) >/dev/null
	@echo "== plain build" && cd build && ctest -j$(JOBS) --output-on-failure

# TSan's shadow memory needs a narrower mmap layout than recent kernels'
# default randomisation gives; setarch -R runs the tests without it.
test-tsan: build-tsan/.configured
	@cmake --build build-tsan -j$(JOBS) >/dev/null
	@echo "== ThreadSanitizer build" && cd build-tsan && \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch -R ctest -j$(JOBS) --output-on-failure

test-asan: build-asan/.configured
	@cmake --build build-asan -j$(JOBS) >/dev/null
	@echo "== AddressSanitizer+UBSan build" && cd build-asan && \
	  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  ctest -j$(JOBS) --output-on-failure

# Benchmarks are built optimised (Release) in their own tree. `aio2 bench`
# runs aio2 beside liburing, libaio, POSIX AIO, libuv and plain calls;
# pool_bench, built too, is a preset of it (the thread pools alone).
bench: deps
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-bench -j$(JOBS) --target ring_bench aio2 pool_bench attr_bench uring_share_bench >/dev/null
	@build-bench/bin/ring_bench
	@build-bench/bin/aio2 bench
	@build-bench/bin/attr_bench
	@build-bench/bin/uring_share_bench

clean:
	rm -rf build build-tsan build-asan build-bench
