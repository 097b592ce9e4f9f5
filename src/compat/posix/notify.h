// SPDX-License-Identifier: MIT
// Notifications of completed requests, as struct sigevent asks:
//   SIGEV_NONE       nothing;
//   SIGEV_SIGNAL     the signal queued to the process, with si_code
//                    SI_ASYNCIO, the caller's pid and uid and the sigval
//                    (signal 0, that of a zeroed sigevent: nothing);
//   SIGEV_THREAD_ID  the same signal queued to one thread (Linux);
//   SIGEV_THREAD     sigev_notify_function(sigev_value) in a thread of its
//                    own: with sigev_notify_attributes, a new thread made
//                    with them for each notification, as glibc does;
//                    without, a thread of a small pool that grows whenever
//                    no thread is idle (a notification never waits behind
//                    another) and shrinks after a second of idleness.
// Notification threads run with no signal blocked, as glibc's do.
#pragma once

#include <signal.h>

namespace aio2::posix {

// check_sigevent - 0 when `sev` can be honoured, else EINVAL: an unknown
// sigev_notify, a signal number outside 0..NSIG-1 or one the C library
// keeps for itself (32, 33), SIGEV_THREAD without a function,
// SIGEV_THREAD_ID without a thread.
int check_sigevent(const struct sigevent &sev) noexcept;

// notify - deliver `sev` (already checked). A signal that cannot be queued
// (the queue limit, RLIMIT_SIGPENDING) is reported once on stderr.
void notify(const struct sigevent &sev) noexcept;

// notify_after_fork - in a child: the pool's threads are gone; start
// afresh.
void notify_after_fork() noexcept;

// notify_prepare_fork / notify_parent_after_fork - hold the pool's lock
// across fork(), so that the child's copy is consistent.
void notify_prepare_fork() noexcept;
void notify_parent_after_fork() noexcept;

}  // namespace aio2::posix
