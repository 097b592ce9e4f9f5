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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <vector>

#include "aio2/aio2.h"
#include <signal.h>

#include "core/allowlist.h"
#include "core/event_ring_queue.h"
#include "core/legacy_queue.h"
#include "core/nowait_adapt.h"
#include "core/router.h"
#include "core/slots.h"
#include "exec/inline.h"
#include "exec/pool.h"
#include "exec/uring.h"
#include "sys/creds.h"
#include "sys/fd_facts.h"

struct iocb;
struct io_event;

namespace aio2::core {

struct limits {
  uint32_t max_inflight;
  uint64_t ring_bytes;
  uint32_t bounded_workers;
  uint32_t unbounded_workers;
  uint32_t idle_ms;
  uint32_t policy;         // AIO2_POLICY_*
  uint32_t uring_entries;  // asked for (default 256)
  uint32_t uring_instances;  // asked for (0: exec::uring's default)
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
  // The old ABI on a LEGACY context (core/legacy.cc): io_submit,
  // io_getevents/io_pgetevents and io_cancel, with the kernel's answers.
  long submit_legacy(long nr, struct iocb **iocbs) noexcept;
  long getevents_legacy(long min_nr, long nr, struct io_event *events,
                        const struct timespec *timeout, const sigset_t *sigmask) noexcept;
  int cancel_legacy(struct iocb *cb, struct io_event *result) noexcept;
  // aio2_restrict: fixes the allowlist, once (-EBUSY after that; -EINVAL
  // for a malformed entry, which fixes nothing).
  int restrict_to(const aio2_restriction *r, size_t n) noexcept;
  // aio2_register_fds: a descriptor of its own for each of fds[0..nr)
  // (F_DUPFD_CLOEXEC), its facts pinned (sys::pin_fd), written to out[];
  // all or nothing. The context closes them when it is destroyed, after its
  // last request.
  int register_fds(const int *fds, int *out, unsigned nr) noexcept;
  // aio2_register_buffers: the buffers with io_uring (exec::uring).
  int register_buffers(const struct iovec *iov, unsigned nr) noexcept {
    return uring_.register_buffers(iov, nr);
  }
  // The allowlist in force, or nullptr while the context has none.
  const allowlist *allowed() const noexcept {
    // Pairs with the release in restrict_to: a submitter that sees the
    // pointer sees the bits built behind it.
    return allow_.load(std::memory_order_acquire);
  }
  // Wakes waiters and makes every later wait return at once (destroy calls
  // it, then waits for the entry points in progress to return).
  void close() noexcept { queue_.close(); }
  // close(), then shuts every executor down: each cancels what it can and
  // waits for every request it took. The destructor calls it, when no
  // entry point runs any more, so no request can be queued behind it.
  void shutdown() noexcept;

  // In the child of a fork(), for a context set up in the parent: closes
  // this process's copies of its eventfd and io_uring descriptors and
  // touches nothing else (its executors' threads are not in this process,
  // their locks may be held, and io_uring's requests are the parent's).
  void abandon_after_fork() noexcept;

  uint32_t type() const noexcept { return type_; }
  aio2_ring *ring() const noexcept { return ring_queue_.ring(); }
  // Events an observed LEGACY context could not mirror (its ring was full).
  uint64_t observe_dropped() const noexcept { return legacy_queue_.observe_dropped(); }
  // A LEGACY context's struct aio_ring; nullptr for the other types.
  legacy_ring *legacy() const noexcept { return legacy_queue_.ring(); }
  int eventfd() const noexcept { return efd_; }
  // io_uring submission queue entries in use; 0 when io_uring is not.
  uint32_t uring_entries() const noexcept { return uring_.entries(); }
  uint32_t uring_instances() const noexcept { return uring_.instances(); }

 private:
  static constexpr size_t kBatch = 64;  // requests handed to an executor at a time

  // Requests for one executor, handed over kBatch at a time.
  class batch {
   public:
    explicit batch(exec::executor &e) noexcept : e_(e) {}
    void add(exec::request *r) noexcept {
      reqs_[n_++] = r;
      if (n_ == kBatch) flush();
    }
    // Hands what is gathered over; true when anything ever was.
    bool flush() noexcept {
      if (n_) e_.submit(reqs_, n_);
      used_ |= n_ != 0;
      n_ = 0;
      return used_;
    }

   private:
    exec::executor &e_;
    exec::request *reqs_[kBatch];
    size_t n_ = 0;
    bool used_ = false;
  };

  // One aio2_submit or io_submit call: its slots (taken kBatch at a time),
  // its batches for the executors, and the descriptor facts its requests
  // share with the router and the attribute hooks. finish() hands the
  // batches over, gives unused slots back and wakes reapers once.
  class submission {
   public:
    // `expected`: how many requests the call may hold.
    submission(context &c, size_t expected) noexcept;
    sys::fd_memo &memo() noexcept { return memo_; }
    // This call's nowait-first reads make their attempts here.
    bool reads_here() const noexcept { return env_.nowait_in_submitter; }
    // Admits one more request against the queue's limit and takes its
    // slot; nullptr with *err -EAGAIN (the limit) or -ENOMEM.
    exec::request *admit(int *err) noexcept;
    // Gives back a slot admit() took for a request that was then refused.
    void refuse(exec::request *r) noexcept;
    // The context's AIO2_POLICY_*.
    uint32_t policy() const noexcept { return env_.policy; }
    // The router's plan for `pr`, whose io_uring entry the next dispatch
    // takes.
    exec::plan plan_for(const parsed_request &pr) noexcept;
    // Completes `r` from `pr`, a read without attributes made on trust
    // here that returned `made`, everything asked for or the end of the
    // file: a nowait-first read finished by its attempt, so no router, no
    // rest and no hook. 0 (the request is complete), or -errno with `r` the
    // caller's to give back.
    int read_whole_here(const parsed_request &pr, exec::request *r, int64_t made) noexcept;
    // Sets `r` up from `pr` and `plan` (its attribute hooks' on_submit may
    // refuse it: their -errno) and hands it to its executor. 0 or -errno;
    // on an error `r` is the caller's to give back. `attempt_made`: the
    // RWF_NOWAIT read was already made, with that result (a request
    // without attributes, planned for its attempt here).
    int dispatch(const parsed_request &pr, const exec::plan &plan, exec::request *r,
                 const int64_t *attempt_made = nullptr) noexcept;
    void finish() noexcept;

   private:
    // Gives `r` the submitting thread's credentials before it leaves this
    // thread (read once per call), and for io_uring (`uring`) the
    // personality that holds them: 0 or -errno; *uring is cleared when
    // io_uring has no personality for them (the pool runs it then).
    int hand_off(exec::request *r, bool *uring) noexcept;

    context &c_;
    size_t expected_;
    batch to_pool_, to_uring_;
    bool done_here_ = false;
    exec::request *spare_[kBatch];
    size_t nspare_ = 0;
    sys::fd_memo memo_;
    const sys::fd_memo_scope scope_;  // the hooks share memo_
    const attr::one_shared_reading submit_clock_{attr::shared_clock::submit};  // the call's requests share one submit stamp
    int creds_err_ = 1;    // 1 until creds_ is read, then 0 or its -errno
    sys::creds creds_;
    // creds_ interned (the context's sys::creds_table): hold()'s count is
    // this call's until finish(); each request takes one more.
    const sys::creds *held_ = nullptr;
    int personality_ = -1;  // -1 until asked, then uring::personality_for's answer
    alignas(8) unsigned char sqe_[sizeof exec::request::sqe];
    // The context's router environment, with this call's choice of where
    // nowait-first reads make their attempt (core/nowait_adapt.h).
    router_env env_;
    bool adapting_ = false;  // the choice was the adaptive one: outcomes teach it
  };

  // The first executor that knows the request cancels it.
  exec::executor::cancel_result cancel_everywhere(uint64_t user_data) noexcept;

  const uint32_t type_;
  const uint32_t flags_;
  // The allowlist, built by restrict_to and never changed or freed before
  // the context is: nullptr until then. Published with release by the one
  // restrict_to whose compare-exchange wins; submitters read it with
  // acquire (allowed()).
  std::atomic<const allowlist *> allow_{nullptr};
  const limits lim_;
  int efd_ = -1;
  // The descriptors aio2_register_fds made, pinned, closed by the destructor.
  std::mutex fixed_mu_;
  std::vector<int> fixed_;  // guarded by fixed_mu_
  router_env env_;
  // AUTO on a RING context with io_uring: each call chooses where its
  // reads' RWF_NOWAIT attempts run (adapt_on_ set by start()).
  nowait_adapt adapt_;
  bool adapt_on_ = false;

  // Declared in the order requests flow, so that the queue outlives the
  // executors that post to it.
  slots slots_;
  event_ring_queue ring_queue_;    // RING contexts
  legacy_queue legacy_queue_;      // LEGACY contexts
  completion_queue &queue_;        // the one of this context's type
  exec::inline_executor inline_;
  exec::pool pool_;
  exec::uring uring_;
};

// Runs one request synchronously (aio2_call). Returns the event's length or
// -errno.
// `allow`: the context's allowlist, or nullptr for none.
ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes,
                  const allowlist *allow = nullptr) noexcept;

}  // namespace aio2::core
