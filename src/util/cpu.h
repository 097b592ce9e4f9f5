// SPDX-License-Identifier: MIT
// What the spinning parts need from the processor: a pause inside a spin
// loop (kinder to the sibling hyperthread and to the memory system than a
// bare load), and how many CPUs this process may run on (a spin helps only
// when the thread it waits for runs on another CPU), and the timed spin
// the reapers and the pool's workers share.
#pragma once

#include <sched.h>

#include <chrono>

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

// How long a thread spins for what another thread is about to publish
// before it sleeps: longer than another thread takes to submit a few cached
// reads and post their events (a few microseconds), short enough to cost
// little CPU when nothing comes. A reaper spins for a post (core/waiter.cc),
// an idle worker for work (exec/pool.cc).
inline constexpr std::chrono::microseconds kSpin{20};

// Spins, pausing between looks, until came() answers true (returns true) or
// `span` has passed (false). The clock is read every 64 looks: a look costs
// a load, a clock read tens of nanoseconds. came() must be cheap and must
// not block; what it reads is the caller's to order.
template <class Came>
bool spin_until(Came &&came, std::chrono::nanoseconds span = kSpin) noexcept {
  const auto until = std::chrono::steady_clock::now() + span;
  for (unsigned i = 1;; i++) {
    if (came()) return true;
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) return false;
    cpu_relax();
  }
}

}  // namespace aio2::util
