// SPDX-License-Identifier: MIT
// The engine behind libaio2-posix.so: glibc's POSIX AIO calls carried out
// on one aio2 context, through aio2's public C API only.
//
// This header defines, in aio2::posix:
//   - request      one aio_read / aio_write / aio_fsync in flight: what was
//                  asked, where it is, how to notify;
//   - lio_group    the requests of one lio_listio call;
//   - engine       the process's state: the context, the completion thread
//                  that reaps it, the descriptor table that orders fsyncs,
//                  cancellation and fork;
//   - engine_get   the engine, created on first use (nullptr when it cannot
//                  be: errno says why).
//
// Where statuses live: in the caller's struct aiocb, as glibc keeps them:
// __return_value, then __error_code (EINPROGRESS while in flight), stored
// with release by whoever completes the request and loaded with acquire by
// aio_error and aio_return. The completion thread writes them as events
// arrive, so polling aio_error costs no system call.
#pragma once

#include <aio.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>
#include <memory>
#include <unordered_map>
#include <vector>

#include "aio2/aio2.h"
#include "util/fault.h"
#include "util/intrusive_list.h"

namespace aio2_compat {
class trace_writer;
struct trace_request;
}

namespace aio2::posix {

// compat_may_throw - called where a container is about to allocate: throws
// std::bad_alloc when the injector fails the compat_container site, so that
// the tests take the path a real std::bad_alloc takes there.
inline void compat_may_throw() {
  if (aio2::fault::fail(aio2::fault::site::compat_container)) throw std::bad_alloc();
}

// What a request does.
enum class op : uint8_t { read, write, fsync, fdatasync };

struct lio_group;

// One request from submission until its event is reaped. Fields marked
// "fixed" are written before the request is visible to any other thread
// and never change; "shard" fields are guarded by the mutex of the
// descriptor shard of `fd`.
struct request {
  // fixed
  struct aiocb *cb = nullptr;  // the caller's control block: statuses go here
  int fd = -1;
  op kind = op::read;
  bool ordered = false;  // a write on an O_APPEND or non-seekable descriptor:
                         // it starts after every earlier write on `fd`
  bool stream = false;   // read()/write() instead of pread/pwrite (the
                         // descriptor cannot seek); also set by the thread
                         // that handles its -ESPIPE event, before it hands
                         // the request to aio2 again
  void *buf = nullptr;
  uint64_t len = 0;
  int64_t offset = 0;
  struct sigevent sev {};  // the caller's notification, copied at submit
  lio_group *group = nullptr;

  // shard
  bool completed = false;         // its status is written
  bool held = false;              // on fd's `held`, not yet given to aio2
                                  // (otherwise aio2 has it, or is about to)
  bool cancel_requested = false;  // aio_cancel asked aio2 to interrupt it:
                                  // -EINTR then means ECANCELED
  uint64_t wseq = 0;              // writes: their number among the writes on
                                  // `fd`; held requests: the first write
                                  // number they need not wait for
  util::list_link<request> all_link;    // on fd's `all`
  util::list_link<request> write_link;  // on fd's `writes`
  util::list_link<request> held_link;   // on fd's `held`

  // the free list's (free_mu_)
  request *next_free = nullptr;
};

// A list of requests through `held_link`, which is free whenever a request
// is not on its descriptor's `held`: the held requests a completion let go
// (ready to start), the requests a submit hands to aio2 or withdraws.
// Moving requests onto one allocates nothing, so no path that completes or
// starts requests can fail for want of memory.
using request_list = util::intrusive_list<request, &request::held_link>;

// The requests of one lio_listio call: notified (LIO_NOWAIT) or woken
// (LIO_WAIT) when the last one completes.
struct lio_group {
  // Requests not yet completed. The completer's decrement (acq_rel)
  // publishes their statuses to whoever sees it reach zero: the LIO_WAIT
  // caller (futex on this word) or the completer of the last one.
  std::atomic<uint32_t> remaining{0};
  // Set (relaxed; read after `remaining` reaches zero) when a request
  // failed or was cancelled: LIO_WAIT then returns EIO.
  std::atomic<uint32_t> failed{0};
  // References: one per party that may still touch the group (the LIO_WAIT
  // caller, the completers as one). The last to drop it (acq_rel, so every
  // access before each drop happens before the free) frees the group.
  std::atomic<uint32_t> refs{1};
  bool wait = false;     // LIO_WAIT: the caller sleeps on `remaining`
  struct sigevent sev {};  // LIO_NOWAIT: the list's own notification
};

// lio_done - the last request of `g` completed: wake the LIO_WAIT caller or
// send the list's notification, and drop the completers' reference.
void lio_done(lio_group *g);
// lio_unref - drop one reference to `g`; the last frees it.
void lio_unref(lio_group *g);

// What notifying a completed request takes, copied out of it under its
// shard's lock (the status is stored there), so that the request may be
// reused as soon as the lock is dropped.
struct completion {
  int error = 0;  // aio_error's value
  struct sigevent sev {};
  lio_group *group = nullptr;
};

// The state of one descriptor number. Guarded by its shard's mutex.
struct fd_entry {
  util::intrusive_list<request, &request::all_link> all;      // not completed, submit order
  util::intrusive_list<request, &request::write_link> writes;  // writes not completed
  util::intrusive_list<request, &request::held_link> held;    // waiting for earlier writes
  uint64_t next_wseq = 1;
};

class engine {
 public:
  // engine - the context, the completion thread, and its context record in
  // the trace file when AIO2_TRACE names one. Check ok() afterwards.
  explicit engine(const struct aioinit *init);
  engine(const engine &) = delete;
  engine &operator=(const engine &) = delete;

  // ok - 0, or the errno that made the engine unusable.
  int ok() const noexcept { return error_; }

  // submit - queue `n` requests (prepared by the caller, each from the free
  // list): link them to their descriptors, hold the fsyncs and ordered
  // writes that must wait, hand the rest to aio2 in one batch. Requests aio2
  // refuses for a reason of their own (bad descriptor, offset...) complete
  // with that error. Returns 0, or an errno when some request could not be
  // queued for lack of resources (EAGAIN: aio2 had no room, or the
  // descriptor's entry could not be made): their status is EAGAIN, they
  // are released, and `queued[i]` is false for them.
  int submit(request **reqs, size_t n, bool *queued);

  // cancel - aio_cancel(fd, cb): AIO_CANCELED, AIO_NOTCANCELED, AIO_ALLDONE,
  // or -1 with errno.
  int cancel(int fd, struct aiocb *cb);

  // reap_here - in a program's thread (after its requests went to aio2, or
  // before aio_suspend sleeps): reap what the ring already holds, without a
  // system call, so that those requests complete now, with no hand-off to
  // the completion thread (reads the page cache served inline are there as
  // soon as aio2_submit returns). Not a cancellation point.
  void reap_here();

  // alloc / release - request records, reused without allocation.
  request *alloc();
  void release(request *r);

  // The atfork handlers.
  void prepare_fork();
  void parent_after_fork();
  // Marks every request in flight as ECANCELED in the child's copy of its
  // aiocb; returns how many there were. The engine is then abandoned.
  size_t child_after_fork();

  // trace_exit - at exit: the context's end record in the trace file, with
  // the requests still in flight counted as unobserved.
  void trace_exit() noexcept;

 private:
  struct shard {
    std::mutex mu;
    std::unordered_map<int, fd_entry> fds;
  };
  // Few enough that fork's prepare handler can hold them all (and that
  // ThreadSanitizer can follow it: at most 64 locks held).
  static constexpr size_t kShards = 16;

  shard &shard_of(int fd) { return shards_[static_cast<unsigned>(fd) % kShards]; }

  // Builds `r`'s aio2 request into `out` (room for kMaxIocb bytes); returns
  // its length.
  size_t build(const request *r, unsigned char *out) const;
  // Hands the requests on `go` to aio2 (emptying it), kBatch to an
  // aio2_submit. A request aio2 refuses for a reason of its own completes
  // with that error; one refused for lack of resources (EAGAIN, ENOMEM) is
  // withdrawn when it is among the first `own` (the caller's, which then
  // fails the call: they are moved to `withdrawn`) and completes with
  // EAGAIN otherwise. Held requests that completions release on the way
  // join `go` and are started too.
  void start(request_list *go, size_t own, request_list *withdrawn);
  // Under the shard lock: the entry of descriptor `fd`, made on first use;
  // nullptr when it cannot be made (no memory).
  fd_entry *entry_locked(shard &s, int fd);
  // Under the shard lock: the entry of a descriptor that has a request
  // linked (entries are never removed).
  static fd_entry &linked_entry_locked(shard &s, int fd);
  // The trace record of `r`, completed with `res` (what the program sees:
  // bytes or -errno) and its event `ev` (nullptr when aio2 never ran it:
  // the attributes' statuses are then "missing"). Under the shard lock.
  void record_locked(const request *r, int64_t res, const aio2_event *ev,
                     aio2_compat::trace_request *rec) const;
  // Completes `r` with the system call's result `res` (bytes or -errno);
  // `ev`, its event, for the trace (nullptr when aio2 never ran it).
  // Collects in `ready` the held requests that may now start. Returns
  // false when `r` was already completed (cancelled).
  bool finish(request *r, int64_t res, const aio2_event *ev, request_list *ready);
  // Withdraws `r`, which was not queued: status `err`, no notification.
  void withdraw(request *r, int err, request_list *ready);
  // Under the shard lock: marks `r` completed, takes it off its lists, and
  // moves the held requests that may now start to `ready`.
  void unlink_locked(fd_entry &e, request *r, request_list *ready);
  // Notifies a completed request (its status is already stored).
  void deliver(const completion &c);

  void completion_loop();
  static void *completion_main(void *self);
  void handle_event(const aio2_event *ev);
  // Handles the events in `buf` (`n` bytes); returns how many there were.
  size_t handle_events(const unsigned char *buf, size_t n);
  // Wakes the completion thread when events are due that nobody reaps.
  void kick();

  int error_ = 0;
  aio2_ctx *ctx_ = nullptr;
  aio2_ring *ring_ = nullptr;
  // The completion thread's event buffer, made with the engine and owned by
  // it (not by the thread, whose stack is its only other holder).
  std::unique_ptr<unsigned char[]> events_buf_;
  // Events aio2 owes that nobody has reaped yet: raised (seq_cst) by
  // start() before aio2_submit, lowered (seq_cst) by whoever reaps. It never
  // counts fewer than are owed. The completion thread sleeps in
  // aio2_getevents only while it is above zero; otherwise on work_seq_,
  // so that completions the submitter reaps itself cost no wake-up.
  std::atomic<int64_t> pending_{0};
  // The completion thread's sleep outside aio2: sleeping_ set (seq_cst)
  // before it checks pending_ again, and a submitter that raised pending_
  // checks sleeping_ (seq_cst) after: a Dekker pair, so that one of them
  // sees the other. work_seq_ is the futex word; kick() bumps it.
  std::atomic<uint32_t> sleeping_{0};
  std::atomic<uint32_t> work_seq_{0};
  pthread_t thread_{};
  aio2_compat::trace_writer *trace_ = nullptr;  // fixed at construction
  uint32_t trace_ctx_ = 0;                      // its context's number in the trace
  // Tracing's counts for the context-end record: requests queued (added
  // by submit for those it queued) and request records written. Relaxed:
  // they publish nothing; trace_exit reads them at exit, when requests
  // still running may yet add to both.
  std::atomic<uint64_t> trace_requests_{0};
  std::atomic<uint64_t> trace_records_{0};

  shard shards_[kShards];

  std::mutex free_mu_;
  request *free_ = nullptr;              // guarded by free_mu_
  std::vector<request *> chunks_;        // guarded by free_mu_
};

// The largest aio2 request the engine builds: the fixed part and three
// attributes without payload (timing, cache, executor).
constexpr size_t kMaxIocb = sizeof(aio2_iocb) + 3 * sizeof(aio2_attr);

// engine_get - the process's engine, created on first use; nullptr with
// errno set when it cannot be (and a one-line message on stderr, once).
engine *engine_get();

// engine_peek - the engine if it exists, without creating it.
engine *engine_peek();

// fork_notice - in a child forked while requests were in flight: say once,
// at the child's first call, that they were not inherited. Costs one
// relaxed load otherwise.
bool fork_notice_due() noexcept;
void fork_notice_slow();
inline void fork_notice() {
  if (fork_notice_due()) fork_notice_slow();
}

// set_init - aio_init's parameters, used if the engine does not exist yet.
void set_init(const struct aioinit *init);

// message - write one line "aio2-posix: TEXT" to stderr (async-signal-safe).
void message(const char *text);

// now_ns - CLOCK_MONOTONIC in nanoseconds.
uint64_t now_ns();

}  // namespace aio2::posix
