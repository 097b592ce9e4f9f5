// SPDX-License-Identifier: MIT
// A request as aio2 keeps it between submit and completion, and the parsing
// that turns caller bytes into one. Parsing validates everything before a
// request is accepted; nothing runs that was not accepted.
#pragma once

#include <sys/types.h>

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
};

// Validates the request at `p` with `left` bytes of buffer after it, for a
// request that will run on `path` (AIO2_PATH_*): every field and attribute
// record, known attributes' payload sizes, REQUIRED attributes that cannot
// be honoured there. Returns 0 or the -errno aio2_submit documents.
int parse_request(const unsigned char *p, size_t left, uint32_t path,
                  parsed_request *out) noexcept;

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
  uint32_t path = AIO2_PATH_POOL;      // where it runs
};

}  // namespace aio2
