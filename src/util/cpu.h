// SPDX-License-Identifier: MIT
// What the spinning parts need from the processor: a pause inside a spin
// loop (kinder to the sibling hyperthread and to the memory system than a
// bare load), and how many CPUs this process may run on (a spin helps only
// when the thread it waits for runs on another CPU).
#pragma once

#include <sched.h>

namespace aio2::util {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The CPUs in this process's affinity mask when asked (at least 1).
inline unsigned usable_cpus() noexcept {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

}  // namespace aio2::util
