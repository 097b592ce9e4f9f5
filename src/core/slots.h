// SPDX-License-Identifier: MIT
// Request slots: allocated in chunks that live as long as the context, and
// reused through a free list, so that steady-state submission allocates
// nothing. A slot taken is the caller's until it is put back.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "exec/request.h"
#include "sys/creds.h"
#include "util/adaptive_mutex.h"

namespace aio2::core {

class slots {
 public:
  // Takes up to `n` free slots into `out` (allocating chunks as needed,
  // under one lock); returns how many (fewer only when memory ran out).
  size_t take(exec::request **out, size_t n) noexcept;
  // Gives a slot back, and the credentials snapshot it held.
  void put(exec::request *r) noexcept;
  // The snapshots the context's requests hold (exec::request::creds).
  sys::creds_table &creds() noexcept { return creds_; }

 private:
  static constexpr size_t kChunk = 64;  // slots allocated at a time
  sys::creds_table creds_;
  util::adaptive_mutex mu_;  // taken by every submit call and every completion
  std::vector<std::unique_ptr<exec::request[]>> chunks_;  // guarded by mu_
  exec::request_list free_;                               // guarded by mu_
};

}  // namespace aio2::core
