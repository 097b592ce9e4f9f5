// SPDX-License-Identifier: MIT
// The generic system-call thread pool: every request that reaches it runs as
// a raw system call in a worker thread. Two classes of workers, as in the
// kernel's io-wq: bounded ones for work that finishes (regular-file I/O),
// few, so that disk work is not oversubscribed; unbounded ones for work that
// may wait for ever (a read on a pipe, poll, a futex wait), as many as are
// waiting, so that a waiting request can never starve one that would finish.
// Idle workers exit after a timeout. A running request can be interrupted
// by a signal for cancellation.
//
// Hand-off costs are paid per batch, not per request: a worker takes its
// share of what is queued at once, hands a batch of completions to the
// sink with one batch_done (one wake-up of the reapers), and spins briefly
// (one worker per class) before it sleeps, so that work submitted right
// after a completion needs no wake-up system call. A thread that would
// sleep in getevents runs queued bounded work itself (caller_work).
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
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
  unsigned spinning = 0;            // workers looking for work before they sleep; guarded by mu
  uint64_t run_ns = 0;              // average run time of a request, ns (0: none yet); guarded by mu
  // How many requests are queued: written under mu; read without it by a
  // spinning worker and by caller_work as a hint (what they take, they take
  // under mu). Relaxed: it publishes nothing.
  std::atomic<uint32_t> nqueued{0};
  unsigned max = 0;                 // most workers; set before any use
  bool stopping = false;            // guarded by mu
  const char *name = "";
};

class pool final : public executor, public caller_work {
 public:
  pool(unsigned bounded_max, unsigned unbounded_max, unsigned idle_ms,
       completion_sink &sink) noexcept;
  ~pool() override;
  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;

  // Queues the requests on their classes (plan.unbounded), each class under
  // one lock, and gets one worker on each (none when one spins for work,
  // else waking an idle one or starting one, up to the class's limit); a
  // worker takes its share of the queue (take_share) and, when more is
  // queued, pulls in the next, one at a time. Each request reaches the sink
  // from a worker, from a thread in getevents (run_queued_here) or,
  // cancelled while queued, from the cancelling thread; a worker follows
  // each batch it took with one sink.batch_done(false), the others each
  // request.
  void submit(request *const *reqs, size_t n) noexcept override;

  // The oldest request with this user_data, running before queued, bounded
  // class before unbounded. A running one's worker gets the cancel signal,
  // which interrupts a call that waits in the kernel: an unbounded one is
  // `running`; a bounded one (which finishes by itself), one run by a
  // thread in getevents (never signalled), and the rest of a nowait-first
  // read that a worker has taken are `in_flight`, never flagged, so they
  // run to their end (a rest cut short would be a short count). One a
  // worker took and has not started completes with -ECANCELED from that
  // worker (`cancelled`); otherwise a queued one is removed and completed
  // with -ECANCELED (`cancelled`).
  cancel_result cancel(uint64_t user_data) noexcept override;

  // Completes everything queued with -ECANCELED, interrupts what runs until
  // it returns, and waits for every worker to exit. Idempotent.
  void shutdown() noexcept override;

  // Installs the no-op handler of the signal used to interrupt workers.
  // Returns 0, or -EBUSY when another handler owns that signal.
  static int install_cancel_signal() noexcept;
  static int cancel_signal() noexcept;

  // caller_work: runs the oldest queued bounded requests in this thread,
  // up to kCallerRunMax of them in order, while each is a read, write or
  // sync (a call whose effect does not depend on the thread) submitted with
  // this thread's credentials (the check a worker makes, made before taking
  // it, so that a thread with other credentials leaves it to a worker),
  // with the program's signals blocked as on a worker (one mask change for
  // the batch), and never interrupted by a cancel once started (it is
  // bounded: it finishes); one taken and not yet started cancels as a
  // worker's does. Their events follow with one batch_done. Their executor
  // attribute says worker UINT32_MAX. Unbounded work may wait for ever:
  // never here. True when it ran any.
  bool run_queued_here() noexcept override;

  // The most requests a worker takes at once.
  static constexpr size_t kTakeMax = 32;
  // The most requests one run_queued_here runs: enough to share one signal
  // mask save and restore among several, few enough that the caller's
  // events (and the rest of the queue, which stays for the workers) do not
  // wait long behind them.
  static constexpr size_t kCallerRunMax = 8;

 private:
  enum class help { none, wake, start };
  void enqueue(worker_class *k, request *const *reqs, size_t n) noexcept;
  help help_needed(worker_class *k) noexcept;
  void get_help(worker_class *k, help h) noexcept;
  static sigset_t work_sigmask() noexcept;
  void worker_main(worker_class *k) noexcept;
  size_t take_share(worker_class *k, request **out) noexcept;
  void learn_run_time(worker_class *k, std::chrono::steady_clock::duration took) noexcept;
  bool spin_for_work(worker_class *k, std::unique_lock<std::mutex> &lk) noexcept;
  void run_checked(request *r, uint32_t worker) noexcept;
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
