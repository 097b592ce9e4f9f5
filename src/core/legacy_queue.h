// SPDX-License-Identifier: MIT
// The old ABI's event format: libaio's fixed 32-byte struct io_event
// (data, obj, res, res2) in a ring laid out exactly like the kernel's
// struct aio_ring (fs/aio.c), so that programs reap it in user space as
// they reap the kernel's: libaio's io_getevents fast path, fio's
// userspace_reap, qemu's own reader. head and tail are event indices in
// [0, nr); the ring is empty when they are equal, so it holds nr - 1.
//
// Events reach the ring, and each request's eventfd (IOCB_FLAG_RESFD) is
// signalled, without any call into the library: pool workers and
// submitters post directly, and where requests go to io_uring the
// completion queue's collector thread harvests its completion queue as
// completions arrive. A program
// that waits on the eventfd and then reads the ring never hangs.
//
// Outstanding requests are limited to what io_setup(nr) promises: a request
// is admitted only while requests admitted and not yet reaped stay within
// the ring's capacity, so the ring never overflows and no event waits
// anywhere else; and a request within that promise is always admitted.
#pragma once

#include <linux/aio_abi.h>
#include <signal.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>

#include "core/completion_queue.h"
#include "core/event_ring_queue.h"

namespace aio2::core {

// The kernel's struct aio_ring (fs/aio.c): what io_context_t points at.
struct legacy_ring {
  unsigned id;  // the ring's owner, for the replacement's handle checks
  unsigned nr;  // events[] holds nr slots
  unsigned head;  // next event to reap; written by reapers
  unsigned tail;  // next slot to fill; written by the library
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;  // sizeof(struct aio_ring)
  struct io_event events[];
};
static_assert(sizeof(legacy_ring) == 32, "struct aio_ring's header is 32 bytes");

constexpr unsigned kLegacyRingMagic = 0xa10a10a1;

// Whether [p, p + bytes) can be user memory: not NULL, and below the end of
// the user half of the address space (47 bits; mmap goes above only when
// asked to). Where the kernel answers -EFAULT for a pointer it cannot copy
// through, the old ABI's calls answer -EFAULT for pointers that fail this
// check (kernel addresses, -1) instead of faulting; an unmapped user
// address still faults, as with any library call.
inline bool legacy_user_range(const void *p, size_t bytes) noexcept {
  constexpr uintptr_t kUserEnd = uintptr_t{1} << 47;
  const auto a = reinterpret_cast<uintptr_t>(p);
  return a != 0 && a < kUserEnd && bytes <= kUserEnd - a;
}

class legacy_queue final : public completion_queue {
 public:
  // `max_events`: what io_setup was asked for.
  legacy_queue(slots &s, uint32_t max_events) noexcept
      : completion_queue(s, max_events), max_events_(max_events) {}
  ~legacy_queue() override;

  // Maps the ring. Returns 0 or -errno.
  int create() noexcept;
  legacy_ring *ring() const noexcept { return ring_; }

  // Also posts each completion's aio2 event, with its attribute results,
  // to the ring of `ring_queue` (AIO2_SETUP_LEGACY_OBSERVE), dropping it
  // there when full, and wakes that queue's reapers with its own.
  void observe_into(event_ring_queue *ring_queue) noexcept { observe_ = ring_queue; }
  uint64_t observe_dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }

  // Admits a request while the ring keeps room for every event that
  // requests in flight can post: exactly nr_events outstanding (admitted,
  // not yet reaped), however the events are reaped.
  bool admit() noexcept override;
  void unadmit() noexcept override;

  // io_getevents(2) and io_pgetevents(2): copies between min_nr and nr
  // events, waiting up to `timeout` (relative) for min_nr, with `sigmask`
  // in force while it waits (nullptr: the thread's own). Returns the count
  // or -errno (-EINVAL for bad arguments, -EINTR).
  long getevents(long min_nr, long nr, struct io_event *events, const struct timespec *timeout,
                 const sigset_t *sigmask) noexcept;

 private:
  bool store(exec::request *r) noexcept override;
  void batch_done(bool collected) noexcept override;
  void set_need_getevents(bool) noexcept override {}  // the collector thread harvests
  void mirror(const exec::request *r, int64_t res) noexcept;

  const uint32_t max_events_;
  legacy_ring *ring_ = nullptr;
  size_t map_bytes_ = 0;
  std::mutex tail_mu_;  // producers: one slot at a time (the format has one tail)
  std::mutex head_mu_;  // reapers inside the library (user-space reapers take none)
  // Admission counts, exact under admit_mu_: requests admitted, and events
  // reaped (in the library or in user space: head's moves, seen by admit()
  // at `seen_head_`; between two looks head moves fewer than nr slots,
  // since no more than nr_events are outstanding).
  std::mutex admit_mu_;
  uint64_t admitted_ = 0;  // guarded by admit_mu_
  uint64_t reaped_ = 0;    // guarded by admit_mu_
  unsigned seen_head_ = 0;  // guarded by admit_mu_
  event_ring_queue *observe_ = nullptr;  // set before any request
  // aio2 events the observer's ring had no room for. Relaxed: a counter.
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace aio2::core
