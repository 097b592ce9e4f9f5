// SPDX-License-Identifier: MIT
// The generic system-call thread pool: every request that reaches it runs as
// a raw system call in a worker thread. Two classes of workers, as in the
// kernel's io-wq: bounded ones for work that finishes (regular-file I/O),
// few, so that disk work is not oversubscribed; unbounded ones for work that
// may wait for ever (a read on a pipe, poll, a futex wait), as many as are
// waiting, so that a waiting request can never starve one that would finish.
// Idle workers exit after a timeout. A running request can be interrupted
// by a signal for cancellation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "exec/executor.h"

namespace aio2::exec {

// One class of workers and its queue.
struct worker_class {
  std::mutex mu;
  std::condition_variable work_cv;  // workers wait here for work
  std::condition_variable exit_cv;  // shutdown waits here for live == 0
  request_list queued;              // FIFO of requests to run; guarded by mu
  request_list running;             // running requests, oldest first; guarded by mu
  unsigned live = 0;                // workers alive; guarded by mu
  unsigned idle = 0;                // workers waiting for work; guarded by mu
  unsigned waking = 0;              // idle workers already notified; guarded by mu
  unsigned max = 0;                 // most workers; set before any use
  bool stopping = false;            // guarded by mu
  const char *name = "";
};

class pool final : public executor {
 public:
  pool(unsigned bounded_max, unsigned unbounded_max, unsigned idle_ms,
       completion_sink &sink) noexcept;
  ~pool() override;
  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;

  // Queues the requests on their classes (plan.unbounded), each class under
  // one lock, and gets one worker on each (waking an idle one or starting
  // one, up to the class's limit); workers that find more queued pull in
  // the next, one at a time. Each request reaches the sink from a worker
  // (or, cancelled while queued, from the cancelling thread), followed by
  // sink.batch_done(false).
  void submit(request *const *reqs, size_t n) noexcept override;

  // A running request (the oldest first) is interrupted with the cancel
  // signal; otherwise a queued one is removed and completed with
  // -ECANCELED.
  cancel_result cancel(uint64_t user_data) noexcept override;

  // Completes everything queued with -ECANCELED, interrupts what runs until
  // it returns, and waits for every worker to exit. Idempotent.
  void shutdown() noexcept override;

  // Installs the no-op handler of the signal used to interrupt workers.
  // Returns 0, or -EBUSY when another handler owns that signal.
  static int install_cancel_signal() noexcept;
  static int cancel_signal() noexcept;

 private:
  enum class help { none, wake, start };
  void enqueue(worker_class *k, request *const *reqs, size_t n) noexcept;
  help help_needed(worker_class *k) noexcept;
  void get_help(worker_class *k, help h) noexcept;
  void worker_main(worker_class *k) noexcept;
  bool spawn(worker_class *k) noexcept;
  // Hands a request whose result is set to the sink, and wakes.
  void deliver(request *r) noexcept;

  worker_class bounded_;
  worker_class unbounded_;
  unsigned idle_ms_;
  completion_sink &sink_;
  bool shut_down_ = false;
  // Numbers workers for the executor attribute. Relaxed: a counter.
  std::atomic<uint32_t> next_worker_{0};
};

}  // namespace aio2::exec
