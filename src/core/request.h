// SPDX-License-Identifier: MIT
// A request as aio2 keeps it between submit and completion, and the parsing
// that turns caller bytes into one. Parsing validates everything before a
// request is accepted; nothing runs that was not accepted.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aio2/abi.h"
#include "attr/registry.h"

namespace aio2 {

namespace sys {
struct syscall_info;
}

namespace exec {
struct worker_class;
}

// Longest request aio2 accepts (fixed part and attributes).
constexpr uint32_t kMaxRequestBytes = 65536;

// A request that passed validation: views into the caller's bytes.
struct parsed_request {
  const aio2_iocb *io = nullptr;        // the fixed part (caller memory)
  const unsigned char *attrs = nullptr;  // its attribute records
  uint32_t attr_bytes = 0;
  const sys::syscall_info *info = nullptr;
  // AIO2_PATH_* bits where every known attribute of the request can be
  // honoured (AIO2_PATH_ALL when it has none); the same over its REQUIRED
  // attributes (0 when one is unknown: it can be honoured nowhere).
  uint32_t attr_paths = AIO2_PATH_ALL;
  uint32_t required_paths = AIO2_PATH_ALL;
  // Some attribute's hooks must run in one thread around the call
  // (AIO2_ATTR_HANDLER_THREAD): the request is never split.
  bool thread_bound = false;
};

// Validates the request at `p` with `left` bytes of buffer after it: every
// field and attribute record, known attributes' payload sizes, and notes
// where its attributes can be honoured. Returns 0 or the -errno aio2_submit
// documents. Whether REQUIRED attributes can be honoured depends on the
// path chosen afterwards: required_ok() says.
int parse_request(const unsigned char *p, size_t left, parsed_request *out) noexcept;

// Whether the REQUIRED attributes of `pr` can be honoured on `route`
// (AIO2_PATH_* bits; more than one for a split read).
inline bool required_ok(const parsed_request &pr, uint32_t route) noexcept {
  return (pr.required_paths & route) == route;
}

// Writes the event header into `dst`, then the attribute results; `dst` has
// sizeof(aio2_event) + attrs.result_bytes() of room.
void write_event(unsigned char *dst, uint64_t user_data, int64_t res, uint32_t flags,
                 const attr::request_attrs &attrs) noexcept;

// Where a request is in its life. Transitions between queued and running are
// made under the owning worker class's mutex.
enum class req_state : uint32_t { free, queued, running, finishing, overflow };

// One in-flight request. Slots are allocated in chunks, reused through a
// free list and freed only when the context is destroyed, so steady-state
// submission allocates nothing (the vectors keep their capacity).
struct request {
  // Links for whichever list holds the request (free list, a worker class's
  // queue or running list, the overflow list); guarded by that list's lock.
  request *next = nullptr;
  request *prev = nullptr;
  exec::worker_class *klass = nullptr;  // the class it is queued on / runs in
  req_state state = req_state::free;   // guarded as the links are

  aio2_iocb io{};                      // copy of the fixed part
  std::vector<unsigned char> attrs;    // copy of the attribute records
  attr::request_attrs attr_state;      // their handlers, statuses and results
  std::vector<unsigned char> event;    // the event, built at completion

  // Cancellation of a running request: set by aio2_cancel under the class
  // mutex; read by the worker just before the system call (relaxed is
  // enough: the mutex handoff that started the request orders the rest).
  std::atomic<bool> cancel_requested{false};
  pid_t worker_tid = 0;                // guarded by the class mutex
  // Bumped each time the slot is reused, so a late cancel signal can tell a
  // new request from the one it meant. Written by the submitter, read by
  // aio2_cancel; relaxed: it is compared, never used to publish data.
  std::atomic<uint64_t> generation{0};
  int64_t res = 0;
  uint32_t event_flags = 0;
  // AIO2_PATH_* bits of the route: one path, or INLINE|URING / INLINE|POOL
  // for a read tried with RWF_NOWAIT in the submitting thread first.
  uint32_t route = AIO2_PATH_POOL;
  // A split read whose RWF_NOWAIT attempt did not finish it: the bytes it
  // read (-1: not split, or already combined into res). The rest runs with
  // cont_args (cont_iov holds the iovecs left for a vectored read); its
  // attributes' before hooks ran in the submitting thread.
  int64_t split_done = -1;
  uint64_t cont_args[6] = {};
  std::vector<iovec> cont_iov;
  // The io_uring submission entry, translated at submit (io_uring route).
  alignas(8) unsigned char sqe[64] = {};
  // The SQE in flight is the cache attribute's RWF_NOWAIT probe of a read
  // (io_uring route); what it does not read is read again without it.
  bool probe = false;
};

// A read (read, pread64, readv, preadv, preadv2, per r->io) whose RWF_NOWAIT
// attempt returned `n`. Returns false when that finished it (n is 0, the end
// of the file, or everything asked for), with r->split_done = n. Returns
// true when the rest must still run, with r->split_done the bytes read so
// far and r->cont_args (and r->cont_iov) the call that reads the rest: the
// whole call again after an error (EAGAIN: not cached; EOPNOTSUPP; any
// other: the real call gives the authoritative answer).
bool continue_read(request *r, int64_t n) noexcept;

// The result of a split read: the bytes read inline plus what the rest
// returned (or, when the rest failed, the bytes read inline if any). Also
// reports the RWF_NOWAIT attempt's outcome to the cache attribute. Clears
// split_done. No-op for requests that were not split.
void combine_split(request *r) noexcept;

// Ends a request after its call (or the rest of a split read) returned
// `res` on `worker`: combines a split result, runs the after hooks, sets
// r->res and r->event_flags.
void end_call(request *r, int64_t res, uint32_t worker) noexcept;

// Runs a request in this thread between its before and after hooks (or
// only the rest of a split read, whose before hooks already ran), unless
// cancellation already asked for it not to run.
void run_request(request *r, uint32_t worker) noexcept;

}  // namespace aio2
