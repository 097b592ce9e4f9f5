// SPDX-License-Identifier: MIT
// The executor interface. An executor runs requests on one path: in the
// submitting thread (exec/inline), on io_uring (exec/uring) or on the
// worker pool (exec/pool). It takes a batch of requests the router planned
// for it, runs each between its attribute hooks (exec/run), and hands each
// finished request to a completion_sink, which is the only way anything in
// exec/ reaches the context: requests flow one way, from the router through
// an executor into the completion queue.
#pragma once

#include <cstddef>
#include <cstdint>

#include "exec/request.h"

namespace aio2::exec {

// Where finished requests go (core's completion queue implements it).
class completion_sink {
 public:
  // The request's call is over: r->res and r->event_flags are final. The
  // sink owns r from now on. Called from any thread, concurrently.
  virtual void complete(request *r) noexcept = 0;
  // complete() of rs[0..n), in that order, sharing what the sink can among
  // them (one reservation in the ring, one turn of the slots' lock).
  virtual void complete_many(request *const *rs, size_t n) noexcept = 0;
  // The calls to complete() of one batch are over: wake reapers once.
  // `collected`: the batch was collected from a collected_executor (its
  // in-flight count changed).
  virtual void batch_done(bool collected) noexcept = 0;

 protected:
  ~completion_sink() = default;
};

class executor {
 public:
  enum class cancel_result {
    cancelled,  // it had not started: it completes with -ECANCELED
    running,    // it runs and was asked to stop (a signal, the kernel's
                // cancel): a call blocked in the kernel returns -EINTR
    in_flight,  // it is here and its event is still to come, but nothing
                // stops it: it runs to its end (a read of a regular file
                // under way, or one whose completion the kernel has posted
                // and nobody has harvested yet)
    not_found,  // no request with this user_data is here
  };

  virtual ~executor() = default;
  // Takes `n` requests planned for this executor (their attribute state
  // prepared); each will reach the sink exactly once.
  virtual void submit(request *const *reqs, size_t n) noexcept = 0;
  // Cancels the oldest request here with this user_data.
  virtual cancel_result cancel(uint64_t user_data) noexcept = 0;
  // Completes what is queued with -ECANCELED, interrupts what runs, and
  // returns when every request it took has reached the sink. Idempotent.
  virtual void shutdown() noexcept = 0;
};

// Queued work that a thread waiting for events may run itself instead of
// sleeping (the pool's bounded requests, which finish).
class caller_work {
 public:
  // Runs a few queued requests (at least one; the executor says how many
  // at most) in this thread and hands them to the sink; returns false when
  // nothing this thread may run is queued.
  virtual bool run_queued_here() noexcept = 0;

 protected:
  ~caller_work() = default;
};

// An executor whose completions wait in a kernel queue until some thread
// collects them (io_uring's completion queue). Reapers that find no event
// collect them; one of them at a time sleeps on fd().
class collected_executor : public executor {
 public:
  // Collects what has completed and hands it to the sink; returns how many.
  // `wait`: may block for the collection lock; otherwise gives up when
  // another thread collects.
  virtual size_t harvest(bool wait) noexcept = 0;
  // Requests taken and not yet collected. Seq_cst: pairs with a sleeping
  // reaper's announcement (core/waiter.h), so that a reaper going to sleep
  // either sees requests in flight or is woken.
  virtual uint64_t inflight() const noexcept = 0;
  // Completions wait to be collected.
  virtual bool ready() const noexcept = 0;
  // Becomes readable when completions wait.
  virtual int fd() const noexcept = 0;
};

}  // namespace aio2::exec
