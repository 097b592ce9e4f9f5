// SPDX-License-Identifier: MIT
// Parsing: the first step of submission, which turns the caller's bytes into
// a request the router can plan. It validates everything before a request
// is accepted (nothing runs that was not accepted) and reads nothing but the
// request itself and the attribute and system-call tables.
#pragma once

#include <cstddef>
#include <cstdint>

#include "aio2/abi.h"

namespace aio2::sys {
struct syscall_info;
}

namespace aio2::core {

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
  // (AIO2_ATTR_HANDLER_THREAD): the request never starts in the submitter
  // and finishes elsewhere.
  bool thread_bound = false;
  // Some attribute measures a RWF_NOWAIT attempt (AIO2_ATTR_HANDLER_NOWAIT).
  bool wants_nowait = false;
};

// Validates the request at `p` with `left` bytes of buffer after it: every
// field and attribute record, known attributes' payload sizes, and notes
// where its attributes can be honoured. Returns 0 or the -errno aio2_submit
// documents. Whether REQUIRED attributes can be honoured depends on the
// path chosen afterwards: required_ok() says.
int parse_request(const unsigned char *p, size_t left, parsed_request *out) noexcept;

// Whether the REQUIRED attributes of `pr` can be honoured on `route`
// (AIO2_PATH_* bits; INLINE and another for a nowait-first read that starts
// in the submitting thread).
inline bool required_ok(const parsed_request &pr, uint32_t route) noexcept {
  return (pr.required_paths & route) == route;
}

}  // namespace aio2::core
