// SPDX-License-Identifier: MIT
// The io_uring executor: one io_uring instance per context (liburing), for
// the system calls io_uring implements with the call's meaning. Requests
// are translated to submission entries by the router (translate), queued
// under one submission lock in batches, and their completions are
// harvested by whichever thread gets there first: the submitter right after
// it submits (cached reads complete inside io_uring_enter), a reaper in
// aio2_getevents, or the one reaper that waits on the ring's descriptor
// (core/waiter). docs/design.md ("The io_uring path") says why.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "exec/executor.h"
#include "sys/creds.h"

namespace aio2::exec {

class uring final : public collected_executor {
 public:
  explicit uring(completion_sink &sink) noexcept : sink_(sink) {}
  ~uring() override;
  uring(const uring &) = delete;
  uring &operator=(const uring &) = delete;

  // Sets up an instance with `entries` submission entries and probes the
  // opcodes. No eventfd is registered with the kernel: it would count every
  // completion entry, aio2's own included, where the context's eventfd
  // counts events (core/completion_queue.h). Returns 0, or -errno when
  // io_uring cannot be used (then active() is false and every request goes
  // elsewhere).
  int init(unsigned entries) noexcept;
  bool active() const noexcept { return entries_ != 0; }
  unsigned entries() const noexcept { return entries_; }

  // Translates system call `nr` with `args` (a request's, or those of the
  // rest of a nowait-first read) into `sqe` (an io_uring_sqe) when this
  // kernel implements the call on io_uring with the same meaning. Returns
  // false when it does not (no opcode, not supported here, or arguments
  // io_uring would read differently).
  bool translate(uint32_t nr, const uint64_t *args, void *sqe) const noexcept;
  // translate() for the router (router_env::uring_translate).
  static bool translate_for(const void *self, uint32_t nr, const uint64_t *args,
                            void *sqe) noexcept {
    return static_cast<const uring *>(self)->translate(nr, args, sqe);
  }

  // Takes requests whose r->sqe is translated: runs their before hooks
  // (not for the rest of a nowait-first read, whose hooks ran), gives
  // each entry the priority the hooks asked for and, for a nowait-first
  // read made here, RWF_NOWAIT; then submits. A request io_uring refuses at
  // submission completes with that error.
  void submit(request *const *reqs, size_t n) noexcept override;

  // Harvests what has completed, handing each request to the sink and
  // calling sink.batch_done(true) after each batch; returns how many.
  // Never called with sq_mu_ held. The rest of a nowait-first read is
  // resubmitted by the harvesting thread (so it belongs to it, for the
  // kernel).
  size_t harvest(bool wait) noexcept override;
  uint64_t inflight() const noexcept override { return inflight_.load(std::memory_order_seq_cst); }
  bool ready() const noexcept override;
  int fd() const noexcept override { return ring_.ring_fd; }

  // Cancels the oldest in-flight request with this user_data, without
  // waiting: `cancelled` when it had not started (its completion, with
  // -ECANCELED, is harvested before this returns); `running` when the
  // kernel was asked to interrupt a call that may wait for ever (unbounded:
  // a pipe or socket); `in_flight` when it is ours and its completion is
  // still to come but nothing stops it: a read of a regular file under way,
  // one the kernel's cancel cannot find (-ENOENT: a buffered read waiting
  // for its pages, a completion posted and not yet harvested, the rest of
  // a nowait-first read between its attempt and its submission).
  cancel_result cancel(uint64_t user_data) noexcept override;
  // Cancels everything in flight and harvests until nothing is. Idempotent.
  void shutdown() noexcept override;
  // Closes this process's descriptor of the instance and nothing else (a
  // fork child's copy of a parent's context): no request is cancelled or
  // harvested, since they are the parent's.
  void close_descriptor() noexcept;

  // The io_uring personality (IORING_REGISTER_PERSONALITY) that holds the
  // calling thread's credentials, `mine` (its snapshot, just taken):
  // registered by the first caller with them and kept for the instance's
  // life. An entry whose personality is set runs with them wherever the
  // kernel issues it (in io_uring_enter, on an io-wq worker, in task work)
  // and whichever thread enters it. 0 when there is none: kPersonalities
  // sets are registered, or the registration failed, or the credentials
  // changed while it ran.
  uint16_t personality_for(const sys::creds &mine) noexcept;
  static constexpr unsigned kPersonalities = 64;

 private:
  void link(request *const *reqs, size_t n) noexcept;
  void queue(request *const *reqs, size_t n) noexcept;
  void queue_cancel(uint64_t tag, int flags) noexcept;

  io_uring ring_{};
  io_uring_probe *probe_ = nullptr;
  unsigned entries_ = 0;
  completion_sink &sink_;
  bool shut_down_ = false;
  // Set by shutdown: harvest submits no more rests of nowait-first reads
  // (they complete as rests that never ran). Relaxed: it publishes nothing.
  std::atomic<bool> stopping_{false};

  std::mutex sq_mu_;  // the submission queue, and io_uring_submit
  std::mutex cq_mu_;  // the completion queue (harvest)
  // In-flight requests, for cancel; taken once per submitted batch and once
  // per harvested batch.
  std::mutex list_mu_;
  request_list inflight_list_;  // guarded by list_mu_
  // Requests taken and not yet harvested (a nowait-first read's rest stays
  // counted). Raised before the kernel sees them, lowered after their
  // events are posted; seq_cst (see inflight()).
  std::atomic<uint64_t> inflight_{0};

  // Registered personalities, never unregistered before the instance is
  // torn down (an entry in flight keeps naming its id).
  struct personality {
    sys::creds creds;
    uint16_t id;
  };
  std::mutex personality_mu_;
  personality personalities_[kPersonalities];  // guarded by personality_mu_
  unsigned npersonalities_ = 0;                // guarded by personality_mu_
};

}  // namespace aio2::exec
