// SPDX-License-Identifier: MIT
// A context: the parts of one aio2_ctx, wired so that requests flow one
// way (docs/design.md, "Parts"):
//   submit -> parse (core/parse) -> route (core/router) -> an executor
//   (exec/inline, exec/uring, exec/pool) -> completion queue
//   (core/event_ring_queue) -> reap (getevents, or the mapped ring).
// The context owns the parts and the submission loop that joins them; the
// C entry points (core/api.cc) are thin wrappers over it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>

#include "aio2/aio2.h"
#include "core/event_ring_queue.h"
#include "core/router.h"
#include "core/slots.h"
#include "exec/inline.h"
#include "exec/pool.h"
#include "exec/uring.h"

namespace aio2 {

struct limits {
  uint32_t max_inflight;
  uint64_t ring_bytes;
  uint32_t bounded_workers;
  uint32_t unbounded_workers;
  uint32_t idle_ms;
  uint32_t policy;         // AIO2_POLICY_*
  uint32_t uring_entries;  // asked for (default 256)
};

class context {
 public:
  context(uint32_t type, uint32_t flags, const limits &lim) noexcept;
  ~context();
  context(const context &) = delete;
  context &operator=(const context &) = delete;

  // Creates the ring, the eventfd and io_uring (when allowed and
  // available). Returns 0 or -errno.
  int start() noexcept;

  // aio2_submit, aio2_getevents and aio2_cancel, as aio2.h documents them.
  ssize_t submit(const void *reqs, size_t bytes) noexcept;
  ssize_t getevents(unsigned min_events, void *buf, size_t bytes,
                    const struct timespec *timeout) noexcept;
  int cancel(uint64_t user_data) noexcept;
  // Wakes waiters and makes every later wait return at once (destroy calls
  // it, then waits for the entry points in progress to return).
  void close() noexcept { queue_.close(); }
  // close(), then shuts every executor down: each cancels what it can and
  // waits for every request it took. The destructor calls it, when no
  // entry point runs any more, so no request can be queued behind it.
  void shutdown() noexcept;

  uint32_t type() const noexcept { return type_; }
  aio2_ring *ring() const noexcept { return queue_.ring(); }
  int eventfd() const noexcept { return efd_; }
  // io_uring submission queue entries in use; 0 when io_uring is not.
  uint32_t uring_entries() const noexcept { return uring_.entries(); }

 private:
  const uint32_t type_;
  const uint32_t flags_;
  const limits lim_;
  int efd_ = -1;
  router_env env_;

  // Declared in the order requests flow, so that the queue outlives the
  // executors that post to it.
  slots slots_;
  event_ring_queue queue_;
  exec::inline_executor inline_;
  exec::pool pool_;
  exec::uring uring_;
};

// Runs one request synchronously (aio2_call). Returns the event's length or
// -errno.
ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes) noexcept;

}  // namespace aio2
