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

#include "core/request.h"

namespace aio2::sys {
struct syscall_info;
}

namespace aio2::exec {

// One class of workers and its queue.
struct worker_class {
  std::mutex mu;
  std::condition_variable work_cv;  // workers wait here for work
  std::condition_variable exit_cv;  // shutdown waits here for live == 0
  request *q_head = nullptr;        // FIFO of queued requests; guarded by mu
  request *q_tail = nullptr;        // guarded by mu
  request *run_head = nullptr;      // running requests, oldest first; guarded by mu
  request *run_tail = nullptr;      // guarded by mu
  unsigned live = 0;                // workers alive; guarded by mu
  unsigned idle = 0;                // workers waiting for work; guarded by mu
  unsigned waking = 0;              // idle workers already notified; guarded by mu
  unsigned max = 0;                 // most workers; set before any use
  bool stopping = false;            // guarded by mu
  const char *name = "";
};

class pool {
 public:
  // Called in a worker (or in the thread that cancels a queued request) once
  // per request, after it ran or was cancelled; r->res and r->event_flags are
  // set. The callee owns the request from then on.
  using complete_fn = void (*)(void *owner, request *r);

  pool(unsigned bounded_max, unsigned unbounded_max, unsigned idle_ms, complete_fn complete,
       void *owner) noexcept;
  ~pool();
  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;

  // Which class should run this request: true for unbounded. Uses the
  // request's hints, else the system-call table, else (for calls whose
  // blocking depends on the descriptor) fstat() of the descriptor.
  static bool wants_unbounded(const aio2_iocb &io, const sys::syscall_info &info) noexcept;

  // Queues `n` requests on one class under one lock and gets one worker on
  // them (waking an idle one or starting one, up to the class's limit);
  // workers that find more queued pull in the next, one at a time.
  void enqueue(request *const *reqs, size_t n, bool unbounded) noexcept;

  enum class cancel_result { queued, running, not_found };
  // Cancels an outstanding request with this user_data: a running one (the
  // oldest first) is interrupted with the cancel signal; otherwise a queued
  // one is removed and completed with -ECANCELED.
  cancel_result cancel(uint64_t user_data) noexcept;

  // Completes everything queued with -ECANCELED, interrupts what runs until
  // it returns, and waits for every worker to exit. Idempotent.
  void shutdown() noexcept;

  // Installs the no-op handler of the signal used to interrupt workers.
  // Returns 0, or -EBUSY when another handler owns that signal.
  static int install_cancel_signal() noexcept;
  static int cancel_signal() noexcept;

 private:
  enum class help { none, wake, start };
  help help_needed(worker_class *k) noexcept;
  void get_help(worker_class *k, help h) noexcept;
  void worker_main(worker_class *k) noexcept;
  bool spawn(worker_class *k) noexcept;
  void complete_cancelled(request *r) noexcept;

  worker_class bounded_;
  worker_class unbounded_;
  unsigned idle_ms_;
  complete_fn complete_;
  void *owner_;
  bool shut_down_ = false;
  // Numbers workers for the executor attribute. Relaxed: a counter.
  std::atomic<uint32_t> next_worker_{0};
};

}  // namespace aio2::exec
