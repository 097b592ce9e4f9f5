// SPDX-License-Identifier: MIT
// Request slots: allocated in chunks that live as long as the context, and
// reused through a free list, so that steady-state submission allocates
// nothing. A slot taken is the caller's until it is put back.
//
// The slot freed last waits in a single-entry cell in front of the free
// list (one atomic exchange to put it there, one to take it back), so the
// common pattern of one request completing and the next being submitted
// takes no lock. put() and take() may run concurrently from any threads.
#pragma once

#include <atomic>
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
  void put(exec::request *r) noexcept { put_many(&r, 1); }
  // put() of rs[0..n), under one lock: the last goes into the cell, the
  // others (and the slot it displaces) onto the free list.
  void put_many(exec::request *const *rs, size_t n) noexcept;
  // The snapshots the context's requests hold (exec::request::creds).
  sys::creds_table &creds() noexcept { return creds_; }

 private:
  static constexpr size_t kChunk = 64;  // slots allocated at a time
  sys::creds_table creds_;
  // The slot put back last, or nullptr: the first place put() leaves a
  // slot and take() looks. Exchanged only (never compared), so it has no
  // ABA. put()'s exchange releases the slot's state written before it
  // (the credentials dropped, and everything its last user wrote) to the
  // take() or put() whose exchange acquires it.
  std::atomic<exec::request *> last_freed_{nullptr};
  util::adaptive_mutex mu_;  // taken when the cell is empty or full
  std::vector<std::unique_ptr<exec::request[]>> chunks_;  // guarded by mu_
  exec::request_list free_;                               // guarded by mu_
};

}  // namespace aio2::core
