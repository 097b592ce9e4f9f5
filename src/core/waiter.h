// SPDX-License-Identifier: MIT
// How reapers wait for events, and how posters wake them: the futex word,
// the io_uring waiter's role, and the descriptor that wakes that waiter. It
// knows nothing of the event format; a completion queue (core/
// completion_queue.h) drives it:
//
//   reaper:  seen = sample(); collect(); look for events; if none,
//            sleep(seen, ...) and start again
//   poster:  make the event visible, then wake()
//
// Contract: an event made visible before wake() is found by a reaper whose
// sample() came after that wake(), or the reaper's sleep() returns at once
// (its `seen` is stale). So no wake-up is lost, and a burst of posts costs
// one wake-up system call per sleep, not one per event.
//
// Requests on io_uring complete only into its completion queue, which
// somebody must collect: at most one reaper at a time holds the io_uring
// waiter's role and sleeps in ppoll on the ring's descriptor and on the
// wake descriptor; the others sleep on the futex for what it posts. The
// role and the sleepers' bits pair with the collector's in-flight count
// (Dekker: of a reaper going to sleep and a submitter raising the count,
// one sees the other).
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

#include "exec/executor.h"

namespace aio2::core {

class waiter {
 public:
  waiter() noexcept;
  ~waiter();
  waiter(const waiter &) = delete;
  waiter &operator=(const waiter &) = delete;

  // `collector` (may be null: no io_uring) is the executor whose
  // completions reapers collect. Returns 0 or -errno.
  int start(exec::collected_executor *collector) noexcept;

  // A snapshot of the posts so far, taken before looking for events.
  uint32_t sample() const noexcept { return posted_.load(std::memory_order_seq_cst); }
  // Collects the collector's completions without blocking (they are posted
  // through the sink, which wakes).
  void collect() noexcept;
  // Counts a post and wakes the sleepers; events posted before are visible
  // to them.
  void wake() noexcept;
  // Sleeps until a post after `seen`, `rel` (relative; nullptr: no limit)
  // passes, or close(). Takes the io_uring waiter's role when requests are
  // on io_uring and nobody else holds it (*role then stays true until
  // release_role()). Returns 0 (look again) or -EINTR (a signal handler
  // ran, installed with SA_RESTART or not, on either wait).
  int sleep(uint32_t seen, const timespec *rel, bool *role) noexcept;
  // Gives the io_uring waiter's role up, handing it on.
  void release_role() noexcept;
  // Requests went to the collector: a reaper asleep on the futex while none
  // were there waits for nobody to collect them, so it is woken to take the
  // role.
  void collector_submitted() noexcept;

  // Before a reaper sleeps while requests are in flight: waits up to util::kSpin,
  // awake, for a post since `seen` or for completions waiting to be
  // collected, so that an event a moment away (another thread's cached
  // read, submitted now) costs no futex sleep, no wake-up call and no
  // context switch. One reaper at a time (more would take CPUs from the
  // threads that post), and only on more than one CPU. True when something
  // came (look again), false otherwise (sleep).
  bool spin_for_post(uint32_t seen) noexcept;

  // Wakes everyone, and makes every later sleep return at once.
  void close() noexcept;
  bool closing() const noexcept { return closing_.load(std::memory_order_acquire); }

 private:
  static constexpr uint32_t kSleepers = 1;      // bit 0: a reaper sleeps on the futex
  static constexpr uint32_t kUringSleeper = 2;  // bit 1: the io_uring waiter sleeps in ppoll
  static constexpr uint32_t kPost = 4;          // what one post adds

  uint64_t collector_inflight() const noexcept {
    return collector_ ? collector_->inflight() : 0;
  }
  void wake_uring_waiter() noexcept;

  exec::collected_executor *collector_ = nullptr;
  // The futex word. It grows by kPost with every post; bit 0 says a reaper
  // sleeps (or is about to) on the futex at the current value, bit 1 that
  // the io_uring waiter sleeps (or is about to) in ppoll. A poster wakes
  // only when it finds a bit, and clears it. Seq_cst throughout: a reaper
  // that sees the new value sees the event (the post's release), and the
  // sleepers' bits pair with collector_inflight() and role_ (Dekker).
  std::atomic<uint32_t> posted_{0};
  // A reaper holds the io_uring waiter's role. Seq_cst, paired with bit 0
  // of posted_ (a sleeper on the futex checks it after setting its bit; a
  // releasing holder checks the bit after clearing it).
  std::atomic<bool> role_{false};
  int wake_fd_ = -1;  // eventfd that wakes the io_uring waiter out of ppoll
  // A reaper spins (spin_for_post). Acquire on taking it, release on
  // letting go; it guards nothing but the number of spinners.
  std::atomic<bool> spinning_{false};
  const bool may_spin_;  // more than one CPU
  // Set once by close(); release, paired with closing()'s acquire.
  std::atomic<bool> closing_{false};
};

}  // namespace aio2::core
