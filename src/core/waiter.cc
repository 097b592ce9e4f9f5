// SPDX-License-Identifier: MIT
#include "core/waiter.h"

#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>

#include "util/cpu.h"
#include "util/fault.h"

namespace aio2::core {

namespace {

long futex_wait(std::atomic<uint32_t> *word, uint32_t expect, const timespec *rel) noexcept {
  return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expect, rel,
                 nullptr, 0) == 0
             ? 0
             : -errno;
}

void futex_wake_all(std::atomic<uint32_t> *word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace

waiter::waiter() noexcept : may_spin_(util::usable_cpus() > 1) {}

bool waiter::spin_for_post(uint32_t seen) noexcept {
  if (!may_spin_ || spinning_.exchange(true, std::memory_order_acquire)) return false;
  constexpr uint32_t kCount = ~(kPost - 1);  // the posts, without the sleepers' bits
  // Relaxed: a change only sends the reaper to look again, and its next
  // sample() (seq_cst) is what the contract pairs with.
  const bool came = util::spin_until([&] {
    return (posted_.load(std::memory_order_relaxed) & kCount) != (seen & kCount) ||
           (collector_ && collector_->ready());
  });
  spinning_.store(false, std::memory_order_release);
  return came;
}

waiter::~waiter() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int waiter::start(exec::collected_executor *collector) noexcept {
  collector_ = collector;
  if (collector_ == nullptr) return 0;
  if (fault::fail(fault::site::wake_eventfd)) return -ENOMEM;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return wake_fd_ < 0 ? -errno : 0;
}

void waiter::collect() noexcept {
  // Also when nothing is in flight but the queue holds entries (aio2's own
  // cancellations): they would keep the ring's descriptor readable.
  if (collector_ && (collector_->inflight() != 0 || collector_->ready()))
    collector_->harvest(false);
}

void waiter::wake_uring_waiter() noexcept {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
}

void waiter::wake() noexcept {
  // Count the post. A reaper that sees the new value sees the event. Only
  // the poster that finds a sleeper's bit set clears it and makes the
  // wake-up system call; the rest make none.
  const uint32_t old = posted_.fetch_add(kPost, std::memory_order_seq_cst);
  if (old & kSleepers) {
    posted_.fetch_and(~kSleepers, std::memory_order_acq_rel);
    futex_wake_all(&posted_);
  }
  if (old & kUringSleeper) {
    posted_.fetch_and(~kUringSleeper, std::memory_order_acq_rel);
    wake_uring_waiter();
  }
}

int waiter::sleep(uint32_t seen, const timespec *rel, bool *role) noexcept {
  // A holder keeps the role (and waits on io_uring) until it returns, even
  // when nothing is in flight at this moment: others rely on it.
  if (*role || (collector_inflight() != 0 && !role_.exchange(true, std::memory_order_seq_cst))) {
    *role = true;
    uint32_t cur = seen;
    if (!posted_.compare_exchange_strong(cur, seen | kUringSleeper, std::memory_order_seq_cst))
      return 0;  // posted since `seen`
    pollfd fds[2] = {{collector_->fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int rc = collector_->ready() ? 0 : ppoll(fds, 2, rel, nullptr);
    const int err = rc < 0 ? errno : 0;
    posted_.fetch_and(~kUringSleeper, std::memory_order_acq_rel);
    if (rc > 0 && fds[1].revents) {
      uint64_t v;
      [[maybe_unused]] ssize_t rd = ::read(wake_fd_, &v, sizeof v);
    }
    return err == EINTR ? -EINTR : 0;
  }
  // Announce a sleeper, unless something was posted since `seen` (then look
  // again). The futex compares the word with what we announced, so a post
  // after this point either changes it (no sleep) or finds the sleepers bit
  // and wakes us.
  const uint32_t want = seen | kSleepers;
  uint32_t cur = seen;
  if (cur != want &&
      !posted_.compare_exchange_strong(cur, want, std::memory_order_seq_cst,
                                       std::memory_order_seq_cst) &&
      cur != want)
    return 0;  // posted since `seen` (cur == want: another reaper set the bit)
  // With the bit set (seq_cst), look once more for io_uring work nobody
  // waits for; a submitter or a releasing holder that saw the bit wakes us.
  if (collector_inflight() != 0 && !role_.load(std::memory_order_seq_cst)) return 0;
  // Always with a timeout: a futex wait with one answers -EINTR to any
  // signal handler, SA_RESTART or not (without one the kernel restarts it
  // for SA_RESTART handlers), as ppoll does for the io_uring waiter, so a
  // getevents call is interrupted the same way on both waits, as
  // io_getevents(2) is. The caller's loop waits again after an hour.
  static const timespec kHour{3600, 0};
  return futex_wait(&posted_, want, rel ? rel : &kHour) == -EINTR ? -EINTR : 0;
}

void waiter::release_role() noexcept {
  role_.store(false, std::memory_order_seq_cst);
  // A reaper asleep on the futex while requests remain on io_uring must
  // take the role over: wake them (seq_cst, pairs with the sleeper's bit
  // and its load of role_).
  if (collector_inflight() != 0 && (posted_.load(std::memory_order_seq_cst) & kSleepers)) wake();
}

void waiter::collector_submitted() noexcept {
  // Seq_cst: the collector raised its count before this load; a reaper sets
  // its bit before it reads the count (sleep).
  if ((posted_.load(std::memory_order_seq_cst) & kSleepers) &&
      !role_.load(std::memory_order_seq_cst))
    wake();
}

void waiter::close() noexcept {
  if (closing_.exchange(true, std::memory_order_acq_rel)) return;
  wake();  // sleepers see closing() and return
  futex_wake_all(&posted_);
  if (wake_fd_ >= 0) wake_uring_waiter();
}

}  // namespace aio2::core
