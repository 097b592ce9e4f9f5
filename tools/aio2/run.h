// SPDX-License-Identifier: MIT
// `aio2 run`: runs an unmodified program on aio2's replacements for libaio
// and POSIX AIO with AIO2_TRACE set, then reports what its requests did with
// the report of `aio2 trace` (trace.h). docs/compat.md describes it.
#pragma once

#include <string>
#include <vector>

#include "compat/trace_file.h"
#include "trace.h"

namespace aio2_tool {

// `aio2 run`: returns the program's exit status (or the command's own, 1
// or 2, when it could not run it or report).
int run_main(int argc, char **argv);

namespace run {

// What a trace file held, as `aio2 trace` records and the header lines
// and counts of the report.
struct converted {
  std::vector<trace::record> recs;  // in order of submission
  uint64_t processes = 0, contexts = 0, ended = 0;
  uint64_t requests = 0;    // accepted by the replacements (from the contexts' end records)
  uint64_t dropped = 0, unobserved = 0, unmatched = 0;
  uint64_t features = 0;
  uint32_t uring_entries = 0;
  unsigned max_in_flight = 0;
  double elapsed_s = 0;  // first submission to last posting
};

// Turns a trace file's records into `aio2 trace`'s.
converted convert(const aio2_compat::trace_contents &t);

}  // namespace run
}  // namespace aio2_tool
