// SPDX-License-Identifier: MIT
#include "compat/posix/wait.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>

#include "sys/raw_syscall.h"

namespace aio2::posix {

namespace {

// Code that a cancellation's forced unwind runs (it starts in glibc's
// signal handler) is not instrumented by AddressSanitizer, whose check of
// the stack on the way fails there.
#define AIO2_UNWOUND_BY_CANCEL __attribute__((no_sanitize("address")))


// The completion epoch. Completers bump it (seq_cst RMW) after their status
// stores; a waiter announces itself in g_waiters (seq_cst RMW) before the
// kernel compares the epoch. Either the completer's load of g_waiters sees
// the waiter and wakes it, or the waiter's futex compare sees the new
// epoch and does not sleep (a Dekker pair: both sides sequentially
// consistent).
std::atomic<uint32_t> g_epoch{0};
std::atomic<uint32_t> g_waiters{0};

int64_t futex(void *addr, int op, uint32_t val, const struct timespec *ts) noexcept {
  const uint64_t a[6] = {reinterpret_cast<uint64_t>(addr), static_cast<uint64_t>(op), val,
                         reinterpret_cast<uint64_t>(ts), 0, FUTEX_BITSET_MATCH_ANY};
  return sys::raw_syscall(SYS_futex, a);
}

constexpr int kWaitOp = FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG;  // absolute CLOCK_MONOTONIC

int wait_result(int64_t r) noexcept {
  if (r == -ETIMEDOUT) return ETIMEDOUT;
  if (r == -EINTR) return EINTR;
  return 0;  // woken, or -EAGAIN: the word had already changed
}

// The sleep of a cancellable wait, with asynchronous cancellation enabled
// around the system call alone (a pending cancellation acts as soon as the
// type changes). This function holds no object with a destructor, so the
// forced unwind of a cancellation passes through it to its caller's
// cleanups.
__attribute__((noinline)) AIO2_UNWOUND_BY_CANCEL int64_t futex_wait_async_cancel(std::atomic<uint32_t> *w,
                                                           uint32_t expected,
                                                           const struct timespec *deadline) {
  int old = 0;
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
  const int64_t r = futex(w, kWaitOp, expected, deadline);
  pthread_setcanceltype(old, &old);
  return r;
}

// Counts the calling thread among the epoch's sleepers for its lifetime,
// also when a cancellation unwinds through the wait.
struct waiter_mark {
  AIO2_UNWOUND_BY_CANCEL waiter_mark() noexcept { g_waiters.fetch_add(1, std::memory_order_seq_cst); }
  AIO2_UNWOUND_BY_CANCEL ~waiter_mark() { g_waiters.fetch_sub(1, std::memory_order_seq_cst); }
  waiter_mark(const waiter_mark &) = delete;
  waiter_mark &operator=(const waiter_mark &) = delete;
};

}  // namespace

uint32_t epoch_load() noexcept {
  // Acquire: pairs with nothing by itself; the statuses are read with their
  // own acquire loads. Reading the epoch first is what makes a later wait
  // on it safe.
  return g_epoch.load(std::memory_order_acquire);
}

void epoch_publish() noexcept {
  g_epoch.fetch_add(1, std::memory_order_seq_cst);
  if (g_waiters.load(std::memory_order_seq_cst) != 0) futex(&g_epoch, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

AIO2_UNWOUND_BY_CANCEL int epoch_wait(uint32_t seen, const struct timespec *deadline,
                                      bool cancellable) {
  waiter_mark mark;
  if (cancellable) return wait_result(futex_wait_async_cancel(&g_epoch, seen, deadline));
  return wait_result(futex(&g_epoch, kWaitOp, seen, deadline));
}

int word_wait(std::atomic<uint32_t> *w, uint32_t expected, const struct timespec *deadline) noexcept {
  return wait_result(futex(w, kWaitOp, expected, deadline));
}

void word_wake(std::atomic<uint32_t> *w) noexcept { futex(w, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr); }

struct timespec deadline_after(const struct timespec &rel) noexcept {
  struct timespec now {};
  clock_gettime(CLOCK_MONOTONIC, &now);
  struct timespec d {};
  if (rel.tv_sec < 0) return now;  // already passed
  d.tv_sec = now.tv_sec + rel.tv_sec;
  d.tv_nsec = now.tv_nsec + rel.tv_nsec;
  if (d.tv_nsec >= 1000000000L) {
    d.tv_nsec -= 1000000000L;
    d.tv_sec++;
  }
  if (d.tv_sec < now.tv_sec) d.tv_sec = LONG_MAX;  // overflow: no practical limit
  return d;
}

void wait_after_fork() noexcept { g_waiters.store(0, std::memory_order_relaxed); }

}  // namespace aio2::posix
