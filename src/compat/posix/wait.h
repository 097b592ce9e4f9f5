// SPDX-License-Identifier: MIT
// Waiting for completions: the completion epoch that aio_suspend and
// aio_cancel sleep on, and futex waits on any 32-bit word (lio_listio's
// LIO_WAIT sleeps on its group's count).
//
// Contract: a thread that sees epoch_load() return E, then finds every
// status it cares about still EINPROGRESS, and calls epoch_wait(E), is
// woken by the first epoch_publish() that follows a status store it did
// not see. Completers store statuses (release) and then call
// epoch_publish() once per batch.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

namespace aio2::posix {

// epoch_load - the epoch, read before checking statuses.
uint32_t epoch_load() noexcept;

// epoch_publish - after storing statuses: move the epoch on and wake the
// threads sleeping on it, with one system call when any sleeps.
void epoch_publish() noexcept;

// epoch_wait - sleep while the epoch is `seen`, until `deadline`
// (CLOCK_MONOTONIC, absolute; nullptr: no limit). With `cancellable`, the
// sleep is a cancellation point (pthread_cancel acts inside it). Returns 0
// (woken, or the epoch had moved), ETIMEDOUT or EINTR (a signal handler
// ran; with no deadline only one installed without SA_RESTART).
int epoch_wait(uint32_t seen, const struct timespec *deadline, bool cancellable);

// word_wait - sleep while `*w` is `expected` (not a cancellation point).
// Returns 0, ETIMEDOUT or EINTR, as epoch_wait.
int word_wait(std::atomic<uint32_t> *w, uint32_t expected, const struct timespec *deadline) noexcept;

// word_wake - wake every thread sleeping on `*w`.
void word_wake(std::atomic<uint32_t> *w) noexcept;

// deadline_after - CLOCK_MONOTONIC now plus `rel` (which must be valid).
struct timespec deadline_after(const struct timespec &rel) noexcept;

// wait_after_fork - in a child: no thread sleeps on the epoch.
void wait_after_fork() noexcept;

}  // namespace aio2::posix
