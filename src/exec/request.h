// SPDX-License-Identifier: MIT
// A request as the executors run it, from the moment it is accepted until
// its event is posted: the copy of the caller's request, its attribute
// state, its plan (which executor runs it, and whether it is a
// nowait-first read), and what the executors need to run, cancel and
// finish it. Slots live in core/slots, which reuses them, so steady-state
// submission allocates nothing (the vectors keep their capacity).
#pragma once

#include <poll.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "aio2/abi.h"
#include "attr/registry.h"
#include "sys/creds.h"
#include "util/intrusive_list.h"

namespace aio2::exec {

// Where a nowait-first read makes its RWF_NOWAIT attempt.
enum class attempt : uint8_t {
  none,       // a plain call: it runs once, on plan::path
  submitter,  // in the submitting thread; what it does not read runs on plan::path
  executor,   // as the executor's first try (io_uring: an SQE with RWF_NOWAIT),
              // then the rest again on the same executor
};

// What the router decided for a request.
struct plan {
  // AIO2_PATH_INLINE, _URING or _POOL: the executor that runs the call, or
  // the rest of a nowait-first read.
  uint32_t path = AIO2_PATH_POOL;
  exec::attempt attempt = exec::attempt::none;
  // Pool: an unbounded worker (the call may wait for ever), else bounded.
  bool unbounded = false;

  // The AIO2_PATH_* bits the request may run on: INLINE|POOL or
  // INLINE|URING for a nowait-first read that starts in the submitter.
  uint32_t bits() const noexcept {
    return path | (attempt == exec::attempt::submitter ? AIO2_PATH_INLINE : 0);
  }
};

// A nowait-first read: "try the read with RWF_NOWAIT, then read the rest
// elsewhere". The page cache serves what it holds without blocking; only
// what it cannot serve costs a hand-off. One mechanism, whichever executor
// makes the attempt: this is its state and its arithmetic.
class nowait_first {
 public:
  // Readies the state for a new request: a nowait-first one (`first`)
  // needs room for its rest's arguments, made once and kept with the slot
  // (a plain call needs none). 0, or -ENOMEM when that room could not be
  // made.
  int reset(bool first) noexcept {
    done_ = -1;
    error_ = 0;
    rest_pending_ = combined_ = false;
    if (first && !rest_) rest_.reset(new (std::nothrow) rest_state);
    return first && !rest_ ? -ENOMEM : 0;
  }
  // The attempt at the read `io` returned `n`. Returns false when that
  // finished the read (n is 0, the end of the file, or everything asked
  // for). Returns true when the rest must still run: rest_args() is then
  // the call that reads it (the whole call again after an error: -EAGAIN,
  // not cached; -EOPNOTSUPP; any other: the real call gives the answer).
  bool attempted(const aio2_iocb &io, int64_t n) noexcept;
  // The attempt was made (attempt_bytes() is what it read).
  bool attempted() const noexcept { return done_ >= 0; }
  // Bytes the attempt read (errors count as 0), or -1 before it was made.
  int64_t attempt_bytes() const noexcept { return done_; }
  // The rest still has to run, or to be accounted for.
  bool rest_pending() const noexcept { return rest_pending_; }
  // The arguments of the call that reads the rest.
  const uint64_t *rest_args() const noexcept { return rest_->args; }
  // The result of the whole read, given what the rest returned (or
  // -ECANCELED when it never ran): the attempt's bytes plus the rest's;
  // when the rest failed, the attempt's bytes if any, like a read that
  // fails part-way (the error is lost, and AIO2_EVENT_CANCELED is cleared
  // from *event_flags). Ends the pending rest. A read with no pending rest
  // returns `rest_res` as it is; so does a second call.
  int64_t combine(int64_t rest_res, uint32_t *event_flags) noexcept;

 private:
  int64_t done_ = -1;
  int32_t error_ = 0;  // the attempt's error when it is the read's answer
  bool rest_pending_ = false;
  bool combined_ = false;
  // What the rest needs, apart from the request: only nowait-first reads
  // have one (reset(true) made it), so the plain calls' slots stay small.
  struct rest_state {
    uint64_t args[6] = {};
    std::vector<iovec> iov;  // the iovecs left of a vectored read
  };
  std::unique_ptr<rest_state> rest_;
};

struct request {
  // Whichever list holds the request (free slots, a pool queue or running
  // list, io_uring's in-flight list, the overflow list); guarded by that
  // list's lock.
  util::list_link<request> link;

  aio2_iocb io{};                    // copy of the fixed part
  // The copy of its attribute records, their handlers, statuses and
  // results, and room for a large event (out of line, null without any).
  attr::request_attrs attrs;
  exec::plan plan;
  exec::nowait_first nowait;

  // Cancellation of a running request: set by aio2_cancel under the lock of
  // the list that holds the request; read by the executing thread just
  // before the system call (relaxed is enough: the lock hand-over that
  // started the request orders the rest).
  std::atomic<bool> cancel_requested{false};
  pid_t worker_tid = 0;  // pool: the running worker; guarded by its class's mutex
  // Bumped each time the slot is reused, so a late cancel (a pool worker's
  // signal, an io_uring cancel by tag) can tell a new request from the one
  // it meant. Written by the submitter, read by aio2_cancel; relaxed: it is
  // compared, never used to publish data.
  std::atomic<uint64_t> generation{0};

  // The submitting thread's credentials when it submitted the request
  // (has_creds), for a request that runs in another thread and whose call
  // depends on them (sys::syscall_info::creds_free is false): a pool worker
  // runs it only with the same (else it completes with -EPERM); io_uring
  // runs it with a personality registered with them. A shared snapshot
  // (sys::creds_table), held until the slot goes back (core/slots). Written
  // by the submitter before the hand-over to the executor, read after it.
  const sys::creds *creds = nullptr;
  bool has_creds = false;
  uint16_t personality = 0;  // io_uring: the personality with `creds` (uring::personality_for)

  int64_t res = 0;           // the call's result, once it ran
  uint32_t event_flags = 0;  // AIO2_EVENT_* for the event
  // The io_uring submission entry (io_uring_sqe), translated at submit.
  alignas(8) unsigned char sqe[64] = {};

  // A request of the old ABI (LEGACY contexts), whose io.user_data is its
  // struct iocb's address: what its io_event echoes, the eventfd to
  // signal, and the memory its translated call points into. Out of line:
  // made by a LEGACY context's first use of the slot and kept with it, so
  // the other contexts' slots do not carry it.
  struct legacy_fields {
    uint64_t data = 0;    // the iocb's aio_data
    uint64_t obj = 0;     // the iocb's address
    int resfd = -1;       // IOCB_FLAG_RESFD's eventfd, or -1
    uint16_t opcode = 0;  // IOCB_CMD_*
    pollfd pfd{};         // IOCB_CMD_POLL's
    iovec iov{};          // a read or write with aio_rw_flags: preadv2, pwritev2
    // The translated aio2 request: the fixed part and an ioprio attribute.
    alignas(8) unsigned char req[128] = {};
  };
  std::unique_ptr<legacy_fields> legacy;
};

using request_list = util::intrusive_list<request, &request::link>;

}  // namespace aio2::exec
