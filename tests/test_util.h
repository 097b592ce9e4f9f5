// SPDX-License-Identifier: MIT
// Helpers the context tests share: a context that destroys itself, the
// monotonic clock, and reaping exactly n events.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <vector>

#include "aio2/aio2.h"

namespace aio2_test {

struct ctx_deleter {
  void operator()(aio2_ctx *c) const { aio2_destroy(c); }
};
using ctx_ptr = std::unique_ptr<aio2_ctx, ctx_deleter>;

// A context with parameters `p` (size filled in); fails the test on error.
inline ctx_ptr make_ctx(aio2_params p = {}) {
  p.size = sizeof p;
  aio2_ctx *c = nullptr;
  const int err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  EXPECT_EQ(err, 0) << aio2_strerror(err);
  return ctx_ptr(c);
}

// A context with at most `bounded_workers` bounded workers.
inline ctx_ptr make_ctx(uint32_t bounded_workers) {
  aio2_params p{};
  p.bounded_workers = bounded_workers;
  return make_ctx(p);
}

// CLOCK_MONOTONIC now, in nanoseconds.
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Calls fn(const aio2_event *) for each of the next `n` events, waiting up
// to 10 s for each batch (a test failure, not a hang, when they never come).
template <class Fn>
void for_events(aio2_ctx *c, unsigned n, Fn fn) {
  alignas(8) unsigned char buf[8192];
  for (unsigned seen = 0; seen < n;) {
    const timespec ts{10, 0};
    const ssize_t got = aio2_getevents(c, 1, buf, sizeof buf, &ts);
    EXPECT_GT(got, 0) << aio2_strerror(static_cast<int>(got));
    if (got <= 0) return;
    for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(got), ev), seen++)
      fn(ev);
  }
}

// The next `n` events, as copies.
inline std::vector<std::vector<unsigned char>> wait_events(aio2_ctx *c, unsigned n) {
  std::vector<std::vector<unsigned char>> out;
  for_events(c, n, [&](const aio2_event *ev) {
    const auto *p = reinterpret_cast<const unsigned char *>(ev);
    out.emplace_back(p, p + ev->len);
  });
  return out;
}

}  // namespace aio2_test
