// SPDX-License-Identifier: MIT
#pragma once

namespace aio2_tool {
// `aio2 demo`: returns the process exit status.
int demo_main(int argc, char **argv);
}  // namespace aio2_tool
