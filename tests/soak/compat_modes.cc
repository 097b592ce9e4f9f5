// SPDX-License-Identifier: MIT
#include "soak_util.h"
namespace soak {
void run_libaio(const options &, counters &) {}
void run_posix(const options &, counters &) {}
}  // namespace soak
