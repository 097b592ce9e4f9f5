// SPDX-License-Identifier: MIT
// `aio2 demo`: nine parts, each showing one feature of aio2 on data it makes
// itself and checking its own results. demo_abi.cc holds the parts that use
// aio2 contexts (any system call, attributes, the overflow list, several
// reapers, aio2_call, cancellation and refusals); demo.cc holds the parts on
// the generic ring alone, and the command itself.
#pragma once

#include <string>

namespace aio2_tool {

// `aio2 demo`: returns the process exit status (0 when every part passed).
int demo_main(int argc, char **argv);

// Prints a part's heading: its number and title, then what it shows and
// what to notice in the lines it prints, in plain words, wrapped.
void demo_part(int n, const char *title, const std::string &shows, const std::string &notice);

// What a part returns when one of its own checks failed; demo_fail has said
// which on stderr. Parts otherwise return 0 or -errno.
constexpr int kCheckFailed = 1;

// Reports a failed check of the part being run on stderr; returns
// kCheckFailed.
int demo_fail(const std::string &what);

// Runs the parts that use aio2 contexts, numbering them from `part_no`,
// which it advances past each part that passed. Returns 0, -errno or
// kCheckFailed.
int demo_context_parts(int &part_no);

}  // namespace aio2_tool
