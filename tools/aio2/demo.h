// SPDX-License-Identifier: MIT
#pragma once

namespace aio2_tool {
// `aio2 demo`: returns the process exit status.
int demo_main(int argc, char **argv);
// Prints a part's heading: its number, what it does, and the idea it shows.
void demo_part(int n, const char *title, const char *idea);
// The parts that show the new ABI, numbered from `first_part`; 0 or -errno.
int demo_abi(int first_part);
}  // namespace aio2_tool
