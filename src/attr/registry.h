// SPDX-License-Identifier: MIT
// The attribute registry: attribute id -> handler, for built-ins and
// user-defined attributes alike, and the per-request state that runs a
// request's attribute hooks in order and lays out their results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "aio2/aio2.h"

namespace aio2::attr {

// The handler for `id`, or nullptr when none is registered. Lock-free.
const aio2_attr_handler *lookup(uint16_t id) noexcept;

// Registers a copy of `h`. `builtin` allows ids below AIO2_ATTR_USER_MIN.
// Returns 0 or the errors of aio2_attr_register.
int add(const aio2_attr_handler &h, bool builtin) noexcept;

// While it lives, the attribute clock (monotonic_ns) in this thread answers
// with the one reading taken when it began: the io_uring harvester finishes
// and posts a batch of completions that it saw at one moment, so one clock
// read stands for all of them.
class one_clock_read {
 public:
  one_clock_read() noexcept;
  ~one_clock_read();
  one_clock_read(const one_clock_read &) = delete;
  one_clock_read &operator=(const one_clock_read &) = delete;

 private:
  uint64_t saved_;
};

// The readings a batch of requests shares, each taken once, at its first
// use inside its scope (a batch without the timing attribute reads no clock
// for it):
//   submit  one aio2_submit or io_submit call: the submit stamps
//           (submit_ns) of its requests; the caller handed them over
//           together.
//   queue   one batch of entries for io_uring: the start stamps
//           (start_ns) of its requests, whose entries are queued together.
// Only those stamps share them; the other clock reads of the call (the
// inline path's start and finish stamps) are their own.
enum class shared_clock { submit, queue };

class one_shared_reading {
 public:
  explicit one_shared_reading(shared_clock c) noexcept;
  ~one_shared_reading();
  one_shared_reading(const one_shared_reading &) = delete;
  one_shared_reading &operator=(const one_shared_reading &) = delete;

 private:
  const shared_clock c_;
  bool saved_in_;
  uint64_t saved_now_;
};

// One attribute of one request.
struct instance {
  const aio2_attr_handler *h;  // nullptr: unknown id (UNSUPPORTED)
  uint32_t payload_off;        // into the request's attribute bytes
  uint32_t payload_len;
  uint32_t result_off;         // into results
  uint16_t id;
  uint16_t status;
};

// The attributes of one request and their results, from submit to event.
// Every attribute of the request has exactly one instance, in order.
// What it holds lives out of line, made by the first request with
// attributes and kept (with its capacity) for the next ones: a request
// without attributes carries one null pointer, and costs no allocation.
class request_attrs {
 public:
  // Keeps a copy of the request's attribute records (`n` bytes at `src`),
  // which records() gives from then on. 0, or -ENOMEM (nothing is kept).
  int keep_records(const unsigned char *src, uint32_t n) noexcept;
  const unsigned char *records() const noexcept { return d_ ? d_->records.data() : nullptr; }
  // Sets up from validated attribute records (`attrs`, `bytes` long) for a
  // request that will run on `path` (AIO2_PATH_* bits), as a nowait-first
  // read when `nowait_first`, then runs the on_submit hooks. Returns 0 or
  // the -errno that refuses the request.
  int prepare(const aio2_iocb &io, const unsigned char *attrs, uint32_t bytes, uint32_t path,
              bool nowait_first) noexcept;
  // In the executing thread, just before the call, in request order.
  // Returns false when a hook says not to run it (*res then holds the result
  // to report); the attributes after that one get no before or after.
  bool before(const aio2_iocb &io, const unsigned char *attrs, uint32_t worker,
              int64_t *res) noexcept;
  // Just after the call (or after before() said not to run it).
  void after(const aio2_iocb &io, const unsigned char *attrs, uint32_t worker,
             int64_t res) noexcept;
  // When the event is written, with the request's result.
  void post(const aio2_iocb &io, const unsigned char *attrs, int64_t res) noexcept;
  // Bytes of attribute results in the event, and writing them.
  uint32_t result_bytes() const noexcept;
  // The most result_bytes() can be, whatever the outcome.
  uint32_t max_result_bytes() const noexcept;
  void write_results(unsigned char *dst) const noexcept;
  bool empty() const noexcept { return !d_ || d_->insts.empty(); }
  // Room for the request's encoded event when it is too large for the
  // stack: reserve_event(len) at submit (0 or -ENOMEM), then event_room(len)
  // when it posts, which never allocates.
  int reserve_event(size_t len) noexcept;
  unsigned char *event_room(size_t len) noexcept;
  // The path bits that ran the request, as hooks see them from now on (a
  // nowait-first read that finished in the submitter reports INLINE alone).
  void set_path(uint32_t path) noexcept {
    if (d_) d_->path = path;
  }
  // A nowait-first read's RWF_NOWAIT attempt read `done` bytes: what later
  // hooks see as nowait_done.
  void set_nowait_bytes(int64_t done) noexcept {
    if (d_) d_->nowait_done = done;
  }
  // Some attribute that measures a RWF_NOWAIT attempt
  // (AIO2_ATTR_HANDLER_NOWAIT) still applies (its status is OK).
  bool wants_nowait() const noexcept;
  // The I/O priority a before hook asked the executor to give the call
  // (aio2_attr_hook.ioprio), or -1.
  int32_t run_ioprio() const noexcept { return d_ ? d_->ioprio : -1; }
  size_t size() const noexcept { return d_ ? d_->insts.size() : 0; }

 private:
  struct data {
    std::vector<instance> insts;         // keeps its capacity across reuse
    std::vector<uint64_t> results;       // result payloads, 8-aligned
    std::vector<unsigned char> records;  // keep_records' copy
    std::vector<unsigned char> event;    // reserve_event's room
    uint32_t path = 0;
    bool nowait_first = false;
    int64_t nowait_done = -1;
    int32_t ioprio = -1;
    size_t befores = 0;  // instances whose before turn came (after runs for these)
    bool ran = false;
  };
  // Makes d_ when there is none: false when memory ran out.
  bool make() noexcept;
  aio2_attr_hook hook(size_t index, const aio2_iocb &io, const unsigned char *attrs,
                      uint32_t worker, int64_t res) noexcept;
  // Keeps the status a hook reported.
  static void take(instance &in, const aio2_attr_hook &h) noexcept;

  std::unique_ptr<data> d_;
};

}  // namespace aio2::attr
