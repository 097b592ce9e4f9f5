// SPDX-License-Identifier: MIT
// Settings and hooks for tests only. The settings are read where a context
// is set up (never on a request's path); each hook costs one relaxed load
// and a predictable branch on the path that reads it. The library's shared object does not export them (its
// version script exports aio2_* alone); tests that link the static library
// set them before aio2_setup.
#pragma once

#include <atomic>
#include <cstdint>

namespace aio2::core::test_hooks {

// Where the event ring of the next RING context starts: its head and tail
// begin here (a multiple of 8; 0, the default, is what every program
// gets), so that a test can run traffic across the positions' 2^64 wrap.
// Relaxed: read once by aio2_setup, written by a test before it.
extern std::atomic<uint64_t> ring_start_pos;

// Called, when set, in the submitting thread when a nowait-first read's
// first try there left a rest to read, before the rest goes to its
// executor, with the request's user_data: a test acts inside that window
// (cancels the request, say). Read only on that path, which hands work to
// another thread anyway. Relaxed: a test sets it before submitting.
extern std::atomic<void (*)(uint64_t user_data)> after_nowait_attempt;

// Called, when set, in the submitting thread when a call has handed
// requests to io_uring, before it harvests their completions: a test acts
// while the kernel holds them (cancels one whose completion is posted and
// not yet harvested, say). Read only by calls that used io_uring. Relaxed:
// a test sets it before submitting.
extern std::atomic<void (*)()> before_uring_harvest;

}  // namespace aio2::core::test_hooks
