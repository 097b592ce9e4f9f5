// SPDX-License-Identifier: MIT
// The entry point of `aio2 bench`, for the aio2 command and for pool_bench
// (which runs it with its own engines and workloads).
#pragma once

namespace aio2_tool {
// Runs the benchmark with `argv[1..argc)` as its options; `prog` starts every
// message ("aio2 bench"). Returns 0 when the run is done; a failure prints
// one line on stderr, removes what it created, and exits the process with
// status 1 (at run time) or 2 (bad arguments). Never throws.
int bench_main(const char *prog, int argc, char **argv);
}  // namespace aio2_tool
