// SPDX-License-Identifier: MIT
// The completion queue of a context: where finished requests become events
// and wait to be reaped. Executors hand it finished requests (it is their
// completion_sink); reapers take events out. The part every event format
// shares is here: the in-flight limit, the attribute on_post hooks, the
// wake-up protocol (core/waiter), the context's eventfd, the collector
// thread, and the NEED_GETEVENTS flag that tells reapers of the mapped ring
// to call in while requests sit on io_uring. An event format (event_ring_queue: aio2's
// variable-length events in the byte ring) says how an event is encoded,
// where it goes, and how reapers copy it out.
//
// Order of a post: on_post hooks -> encode -> store (the ring, else the
// overflow list) -> the slot goes back -> wake (futex, eventfd). A reaper
// that finds the event after waking sees every byte of it: the ring's
// commit (release) pairs with the reap's acquire, and the overflow list is
// guarded by its mutex.
//
// The eventfd counts events: each event adds exactly 1 to its counter, on
// every path, once the event can be reaped (in the ring, or on the overflow
// list for aio2_getevents). The count is written at batch_done(), so one
// write covers a batch. io_uring's completions are collected by aio2 (the
// kernel never signals the eventfd itself: it would count aio2's own
// entries and a nowait-first read's first try); where nobody may call in
// to collect them (a context with an eventfd, or a LEGACY one), a collector
// thread does.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <thread>

#include "attr/registry.h"
#include "core/slots.h"
#include "core/waiter.h"
#include "exec/executor.h"
#include "util/adaptive_mutex.h"

namespace aio2::core {

class completion_queue : public exec::completion_sink {
 public:
  completion_queue(slots &s, uint32_t max_inflight) noexcept
      : slots_(s), max_inflight_(max_inflight) {}
  virtual ~completion_queue();
  completion_queue(const completion_queue &) = delete;
  completion_queue &operator=(const completion_queue &) = delete;

  // Once the executors exist: `collector` (may be null) is the one whose
  // completions reapers collect; `eventfd` (or -1) is signalled on posts.
  // Returns 0 or -errno.
  int start(exec::collected_executor *collector, int eventfd) noexcept;

  // Counts an accepted request against the in-flight limit: false (and
  // nothing counted) at the limit. Relaxed: a counter for the limit, it
  // publishes nothing. A format may limit admission further.
  virtual bool admit() noexcept;
  // Takes back an admission whose request was never handed to an executor.
  virtual void unadmit() noexcept { inflight_.fetch_sub(1, std::memory_order_relaxed); }

  // exec::completion_sink: posts the request's event; wakes, and adds the
  // events posted since the last batch_done to the eventfd, at batch_done.
  void complete(exec::request *r) noexcept override;
  void complete_many(exec::request *const *rs, size_t n) noexcept override;
  void batch_done(bool collected) noexcept override;

  // Starts the thread that collects the collector's completions as they
  // arrive, for contexts whose programs may never call in (they wait on an
  // eventfd). While threads wait in a getevents call they collect, and the
  // thread sleeps. Returns 0 or -errno.
  int start_collector_thread() noexcept;
  // Stops it (before the executors shut down). Idempotent.
  void stop_collector_thread() noexcept;

  // The submitter handed requests to the collector: keeps NEED_GETEVENTS in
  // step, posts what already completed (cached reads complete inside
  // io_uring_enter, so reapers of the mapped ring see them without calling
  // in), and makes sure a sleeping reaper will wait for the rest.
  void collector_submitted() noexcept;

  // Wakes every waiter and makes every later wait return at once.
  void close() noexcept { waiter_.close(); }

  // Queued work (the pool's bounded requests) that a getevents call runs
  // itself where it would otherwise sleep; nullptr: none. Set before any
  // wait.
  void set_caller_work(exec::caller_work *w) noexcept { caller_work_ = w; }

 protected:
  // The format: encodes r's event (its attribute results are final) and
  // stores it, in the ring or on the overflow list. Returns true when the
  // event is in the ring (the slot may go back at once), false when the
  // format keeps r until a reaper drains it (then it calls release()).
  virtual bool store(exec::request *r) noexcept = 0;
  // store() of rs[0..n), in order; writes those whose events are in the
  // ring to in_ring (room for n) and returns how many. The others are the
  // format's, as with store(). A format that can share work among events
  // overrides it.
  virtual size_t store_many(exec::request *const *rs, size_t n, exec::request **in_ring) noexcept;
  // Sets or clears the format's NEED_GETEVENTS flag.
  virtual void set_need_getevents(bool on) noexcept = 0;

  // An event left the queue: the slot goes back, and the admission with it.
  void release(exec::request *r) noexcept { release_many(&r, 1); }
  // release() of rs[0..n), the slots under one lock.
  void release_many(exec::request *const *rs, size_t n) noexcept;

  // Waits for events on behalf of a getevents call: calls look() (which
  // collects nothing and must not block) until it returns non-zero, the
  // timeout (relative; nullptr: none) passes, close() is called, or a
  // signal handler runs (SA_RESTART or not). look() returns > 0 to stop, 0
  // to wait, < 0 for an error to return. `got()` says whether something was
  // taken already (a signal then ends the wait with 1 instead of -EINTR).
  // Returns look()'s stop value, 1 after a signal with something taken, 0 on
  // timeout or close, -EINTR, or -EINVAL for a bad timeout.
  template <class Look, class Got>
  long wait_for(const timespec *timeout, Look look, Got got) noexcept;

  waiter waiter_;
  // Requests accepted whose events are not yet out of the queue's bounds
  // (queued, running, or on the overflow list). Relaxed: a counter.
  std::atomic<uint32_t> inflight_{0};

 private:
  void sync_need_getevents() noexcept;
  void signal_eventfd() noexcept;
  void collector_main() noexcept;
  // A getevents call starts or ends its wait (the collector thread sleeps
  // while any waits).
  void reaper_enters() noexcept;
  void reaper_leaves() noexcept;

  slots &slots_;
  const uint32_t max_inflight_;
  int efd_ = -1;
  exec::collected_executor *collector_ = nullptr;
  exec::caller_work *caller_work_ = nullptr;
  // Orders NEED_GETEVENTS updates: each change of the collector's count is
  // followed, in the same thread, by sync_need_getevents(); under the mutex
  // each call reads the count after every change whose own call came
  // before it, so the last call leaves the flag matching the count.
  util::adaptive_mutex need_mu_;
  bool need_on_ = false;  // guarded by need_mu_
  // Events posted and not yet added to the eventfd; counted only when
  // there is one. Release on the increment (after the event is stored),
  // acquire on batch_done's exchange: the thread that writes a count has
  // seen the events it counts stored.
  std::atomic<uint64_t> unsignalled_{0};

  std::thread collector_thread_;
  int stop_fd_ = -1;  // eventfd that wakes the collector thread to exit
  // Threads inside getevents: while there are any, they collect io_uring's
  // completions themselves (the waiter's role), and the collector thread
  // sleeps on reapers_fd_ alone, so that a completion wakes one thread, not
  // two. Counted only while the collector thread runs. The last reaper to
  // leave writes reapers_fd_ only while the collector says it sleeps that
  // way (`watching_`), so that a program whose completions never go
  // through io_uring (cached reads, run in its own thread) pays no system
  // call for the collector. The pair is a Dekker handshake, seq_cst on
  // both sides: the collector stores watching_ then loads reapers_; a
  // reaper decrements reapers_ then loads watching_; at least one of them
  // sees the other's store, so either the collector watches io_uring or
  // the reaper wakes it.
  std::atomic<int> reapers_{0};
  std::atomic<bool> watching_{false};
  int reapers_fd_ = -1;
};

// CLOCK_MONOTONIC now, in nanoseconds.
int64_t monotonic_now_ns() noexcept;

template <class Look, class Got>
long completion_queue::wait_for(const timespec *timeout, Look look, Got got) noexcept {
  if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
    return -EINVAL;
  // A timeout too long to add to the clock (centuries) waits for ever.
  constexpr int64_t kMaxSeconds = 100ll * 365 * 24 * 3600;
  if (timeout && timeout->tv_sec > kMaxSeconds) timeout = nullptr;
  const int64_t deadline =
      timeout ? monotonic_now_ns() + timeout->tv_sec * 1000000000ll + timeout->tv_nsec : 0;
  bool role = false;  // this thread is the io_uring waiter
  struct role_guard {
    waiter &w;
    bool &held;
    ~role_guard() {
      if (held) w.release_role();
    }
  } guard{waiter_, role};
  struct reaper_guard {
    completion_queue &q;
    explicit reaper_guard(completion_queue &cq) noexcept : q(cq) { q.reaper_enters(); }
    ~reaper_guard() { q.reaper_leaves(); }
  } reaping{*this};
  for (;;) {
    // Sampled before looking, so a post after the look changes it and the
    // sleep below returns at once.
    const uint32_t seen = waiter_.sample();
    waiter_.collect();
    if (const long rc = look(); rc != 0) return rc;
    if (waiter_.closing()) return 0;
    timespec rel{}, *relp = nullptr;
    if (timeout) {
      const int64_t left = deadline - monotonic_now_ns();
      if (left <= 0) return 0;
      rel.tv_sec = left / 1000000000;
      rel.tv_nsec = left % 1000000000;
      relp = &rel;
    }
    // Rather than sleep while bounded work is queued on the pool, run it
    // here: its event is there for the next look, and nobody sleeps or
    // wakes for it.
    if (caller_work_ && caller_work_->run_queued_here()) continue;
    // An event may be a moment away: another thread's request is running.
    if (inflight_.load(std::memory_order_relaxed) != 0 && waiter_.spin_for_post(seen)) continue;
    // A signal ends the wait: with what was taken (io_getevents' answer),
    // or -EINTR.
    if (waiter_.sleep(seen, relp, &role) == -EINTR) return got() ? 1 : -EINTR;
  }
}

// Writes aio2's event for `user_data`, `res`, `flags` and the results of
// `attrs` into `dst`, which has sizeof(aio2_event) + attrs.result_bytes()
// bytes of room.
void encode_event(unsigned char *dst, uint64_t user_data, int64_t res, uint32_t flags,
                  const attr::request_attrs &attrs) noexcept;

}  // namespace aio2::core
