// SPDX-License-Identifier: MIT
// Hooks for tests only, in the executors: a test sets one to act inside a
// window that no timing can hit reliably. Each costs one relaxed load and
// a predictable branch where it is read. The library's shared object does
// not export them (its version script exports aio2_* alone); tests that
// link the static library set them, and set them back to null, around the
// requests they concern.
#pragma once

#include <atomic>
#include <cstdint>

namespace aio2::exec::test_hooks {

// Called, when set, on a pool worker with a request's user_data after the
// worker took the request and marked it started (a cancel now finds it
// running in that worker), just before the worker runs it; also for each
// later request of the same batch, when its turn comes. Relaxed: a test
// sets it before submitting.
extern std::atomic<void (*)(uint64_t user_data)> before_pool_run;

}  // namespace aio2::exec::test_hooks
