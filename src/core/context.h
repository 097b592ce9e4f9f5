// SPDX-License-Identifier: MIT
// A context: its completion ring, overflow list, eventfd, request slots,
// limits and thread pool. The C entry points in context.cc are thin
// wrappers over this.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "aio2/aio2.h"
#include "core/request.h"
#include "exec/pool.h"
#include "exec/uring.h"
#include "sys/fd_facts.h"

namespace aio2 {

struct limits {
  uint32_t max_inflight;
  uint64_t ring_bytes;
  uint32_t bounded_workers;
  uint32_t unbounded_workers;
  uint32_t idle_ms;
  uint32_t policy;         // AIO2_POLICY_*
  uint32_t uring_entries;  // asked for; 0 never happens (default 256)
};

class context {
 public:
  context(uint32_t type, uint32_t flags, const limits &lim) noexcept;
  ~context();
  context(const context &) = delete;
  context &operator=(const context &) = delete;

  // Creates the ring and eventfd. Returns 0 or -errno.
  int start() noexcept;

  ssize_t submit(const void *reqs, size_t bytes) noexcept;
  ssize_t getevents(unsigned min_events, void *buf, size_t bytes,
                    const struct timespec *timeout) noexcept;
  int cancel(uint64_t user_data) noexcept;
  // Wakes waiters and makes every later wait return at once (destroy calls
  // it, then waits for the entry points in progress to return).
  void close() noexcept;
  // close(), then cancels and waits for every request: the pool's and
  // io_uring's. The destructor calls it, when no entry point runs any more,
  // so no request can be queued behind it.
  void shutdown() noexcept;

  uint32_t type() const noexcept { return type_; }
  aio2_ring *ring() const noexcept { return ring_; }
  int eventfd() const noexcept { return efd_; }
  // io_uring submission queue entries in use; 0 when io_uring is not.
  uint32_t uring_entries() const noexcept { return uring_.entries(); }

 private:
  static void on_complete(void *self, request *r) noexcept;
  // After io_uring's harvester posted a batch: flag and wake-ups.
  static void on_uring_posted(void *self) noexcept;
  // Posts r's event (ring or overflow list) and frees the slot; `wake`
  // also wakes reapers (batches wake once, at their end).
  void complete(request *r, bool wake_now) noexcept;
  bool push_to_ring(const request *r) noexcept;
  // Tells reapers events were posted; `eventfd`: also signal the context's
  // eventfd (io_uring's completions signal it from the kernel).
  void wake(bool eventfd) noexcept;
  // The route of a parsed request (AIO2_PATH_* bits), translating it into
  // *sqe when it goes to io_uring.
  uint32_t choose_route(const parsed_request &pr, io_uring_sqe *sqe,
                        sys::fd_memo &memo) const noexcept;
  // Whether io_uring answers like the call for the request's descriptors:
  // not when one is O_NONBLOCK where that matters (*nonblocking says
  // whether it is also not a regular file: the call cannot block), nor for
  // a positioned call on a pipe or socket.
  bool descriptors_fit_uring(const parsed_request &pr, sys::fd_memo &memo,
                             bool *nonblocking) const noexcept;
  // A split read, in the submitting thread: before hooks and the RWF_NOWAIT
  // attempt. True when that finished it; false when the rest must run
  // elsewhere (r->split_done and r->cont_args say what is left).
  bool start_split(request *r) noexcept;
  // After requests went to io_uring: harvest what already completed, keep
  // AIO2_RING_NEED_GETEVENTS in step, and make sure a sleeping reaper will
  // wait for io_uring.
  void after_uring_submit() noexcept;
  void sync_need_getevents() noexcept;
  // Harvests io_uring completions without blocking (the harvester wakes
  // reapers through on_uring_posted).
  void harvest_uring() noexcept;
  // Gives up the io_uring waiter's role (getevents), handing it on.
  void release_uring_role() noexcept;
  // Copies events into buf from the ring, then from the overflow list.
  // Returns 0, or -ENOBUFS with *need set, or a ring error.
  int drain(unsigned char *buf, size_t bytes, size_t &got, unsigned &events,
            uint32_t *need) noexcept;
  // Takes up to n free slots (allocating chunks as needed); returns how many.
  size_t take_slots(request **out, size_t n) noexcept;
  void put_slot(request *r) noexcept;

  const uint32_t type_;
  const uint32_t flags_;
  const limits lim_;
  aio2_ring *ring_ = nullptr;
  int efd_ = -1;

  // Requests accepted whose events are not yet in the ring (queued, running,
  // or on the overflow list). Relaxed: a counter for the limit, it
  // publishes nothing.
  std::atomic<uint32_t> inflight_{0};

  // Request slots: chunks that live until the context dies, and a free list.
  std::mutex slots_mu_;
  std::vector<std::unique_ptr<request[]>> chunks_;  // guarded by slots_mu_
  request *free_slots_ = nullptr;                   // guarded by slots_mu_

  // Events that found the ring full, oldest first.
  std::mutex ovf_mu_;
  request *ovf_head_ = nullptr;  // guarded by ovf_mu_
  request *ovf_tail_ = nullptr;  // guarded by ovf_mu_
  // Length of the overflow list. Written under ovf_mu_; read without it as a
  // hint (a completion that sees 0 tries the ring first). Acquire/release:
  // a reader that sees it non-zero and takes ovf_mu_ finds the entries.
  std::atomic<uint64_t> ovf_count_{0};

  // Waiting in getevents: the futex word. It grows by 4 with every post;
  // bit 0 says a reaper sleeps (or is about to) on the futex at the current
  // value, bit 1 that the io_uring waiter sleeps (or is about to) in ppoll
  // on the ring's descriptor and wake_fd_. A poster wakes only when it
  // finds a bit, and clears it, so a burst of completions costs one wake-up
  // call per sleep, not one per event. Acq_rel on posts: a reaper that sees
  // the new value sees the event; seq_cst where a sleeper's bit pairs with
  // uring_.inflight() or uring_role_ (Dekker: one side sees the other).
  std::atomic<uint32_t> posted_{0};
  // Whether a reaper holds the io_uring waiter's role: only that one sleeps
  // on io_uring (others on the futex), so one thread's wake-up covers both
  // kinds of completion. Seq_cst, paired with bit 0 of posted_.
  std::atomic<bool> uring_role_{false};
  int wake_fd_ = -1;  // eventfd that wakes the io_uring waiter out of ppoll
  std::mutex need_mu_;  // orders AIO2_RING_NEED_GETEVENTS updates (sync_need_getevents)
  std::atomic<bool> closing_{false};  // set once by close(); waiters return

  exec::pool pool_;
  exec::uring uring_;
  bool nowait_first_ = false;  // AUTO splits reads (set at start)
};

// Runs one request synchronously (aio2_call). Returns the event's length or
// -errno.
ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes) noexcept;

}  // namespace aio2
