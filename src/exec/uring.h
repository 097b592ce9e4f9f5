// SPDX-License-Identifier: MIT
// The io_uring path: one io_uring instance per context (liburing), for the
// system calls io_uring implements natively. Requests are translated to
// SQEs at submit (translate), queued under one submission lock in batches,
// and their CQEs are harvested by whichever thread gets there first: the
// submitter right after it submits (cached reads complete inside
// io_uring_enter), a reaper in aio2_getevents, or the one reaper that waits
// on the ring's descriptor. docs/design.md ("The io_uring path") says why.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "core/request.h"

namespace aio2::exec {

class uring {
 public:
  // Called for each harvested request with r->res set; the callee owns it.
  using complete_fn = void (*)(void *owner, request *r);
  // Called after each batch of completions is posted (wake reapers).
  using posted_fn = void (*)(void *owner);

  uring(complete_fn complete, posted_fn posted, void *owner) noexcept
      : complete_(complete), posted_(posted), owner_(owner) {}
  ~uring();
  uring(const uring &) = delete;
  uring &operator=(const uring &) = delete;

  // Sets up an instance with `entries` submission entries and probes the
  // opcodes. `efd` >= 0 is registered to be signalled on every completion.
  // Returns 0, or -errno when io_uring cannot be used (then active() is
  // false and every request goes elsewhere).
  int init(unsigned entries, int efd) noexcept;
  bool active() const noexcept { return entries_ != 0; }
  unsigned entries() const noexcept { return entries_; }
  int fd() const noexcept { return ring_.ring_fd; }

  // Translates system call `nr` with `args` (a request's, or those of the
  // rest of a partly done read) into `sqe` when this kernel implements the
  // call on io_uring with the same meaning.
  // Returns false when it does not (no opcode, not supported here, or
  // arguments io_uring would read differently): the pool runs it then.
  bool translate(uint32_t nr, const uint64_t *args, io_uring_sqe *sqe) const noexcept;

  // Queues `n` requests whose r->sqe is ready, and submits them. A request
  // io_uring refuses at submission completes with that error.
  void submit(request *const *reqs, size_t n) noexcept;

  // Harvests what has completed, calling complete for each request and
  // posted after each batch; returns how many. `wait`: may block for the
  // harvest lock; otherwise it gives up when another thread is harvesting.
  // Never called with sq_mu_ held. Cache-probe retries are resubmitted by
  // the harvesting thread (so they belong to it, for the kernel).
  size_t harvest(bool wait) noexcept;
  // Requests queued and not yet harvested. Seq_cst: pairs with the reapers'
  // sleepers bits (context::getevents, Dekker-style), so that a reaper
  // going to sleep either sees requests in flight or is woken.
  uint64_t inflight() const noexcept { return inflight_.load(std::memory_order_seq_cst); }
  // True when completions are waiting in the completion queue.
  bool ready() const noexcept;

  enum class cancel_result { cancelled, running, not_found };
  // Cancels the oldest in-flight request with this user_data, without
  // waiting: `cancelled` when it had not started (its completion, with
  // -ECANCELED, is in the completion queue), `running` when it was
  // interrupted or cannot be.
  cancel_result cancel(uint64_t user_data) noexcept;
  // Cancels everything in flight and harvests until nothing is. Idempotent.
  void shutdown() noexcept;

 private:
  void link(request *const *reqs, size_t n) noexcept;
  void queue(request *const *reqs, size_t n) noexcept;
  void queue_cancel(uint64_t tag, int flags) noexcept;

  io_uring ring_{};
  io_uring_probe *probe_ = nullptr;
  unsigned entries_ = 0;
  complete_fn complete_;
  posted_fn posted_;
  void *owner_;
  bool shut_down_ = false;

  std::mutex sq_mu_;  // the submission queue, and io_uring_submit
  std::mutex cq_mu_;  // the completion queue (harvest)
  // In-flight requests, for cancel: a list guarded by list_mu_ (taken once
  // per submitted batch and once per harvested batch).
  std::mutex list_mu_;
  request *head_ = nullptr;  // guarded by list_mu_
  request *tail_ = nullptr;  // guarded by list_mu_
  std::atomic<uint64_t> inflight_{0};
};

}  // namespace aio2::exec
