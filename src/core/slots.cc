// SPDX-License-Identifier: MIT
#include "core/slots.h"

#include "util/fault.h"

namespace aio2::core {

size_t slots::take(exec::request **out, size_t n) noexcept {
  size_t got = 0;
  if (n == 0) return 0;
  // Acquire: pairs with the release of the put() exchange that left the
  // slot in the cell, so its state as put back is what this thread sees.
  if (exec::request *r = last_freed_.exchange(nullptr, std::memory_order_acquire)) {
    out[got++] = r;
    if (got == n) return got;
  }
  std::lock_guard lk(mu_);
  while (got < n) {
    if (free_.empty()) {
      if (fault::fail(fault::site::slots_chunk)) break;
      try {
        chunks_.emplace_back(new exec::request[kChunk]);
      } catch (...) {
        break;
      }
      exec::request *chunk = chunks_.back().get();
      for (size_t i = 0; i < kChunk; i++) free_.push_back(&chunk[i]);
    }
    out[got++] = free_.pop_front();
  }
  return got;
}

void slots::put_many(exec::request *const *rs, size_t n) noexcept {
  if (n == 0) return;
  for (size_t i = 0; i < n; i++) {
    exec::request *r = rs[i];
    if (r->creds != nullptr) sys::creds_table::drop(r->creds);
    r->creds = nullptr;
    r->has_creds = false;
  }
  // The next take reuses the last while it is warm in the cache. Release:
  // its state above for the take() (or put()) that acquires it from the
  // cell; acquire: the same for the slot this displaces, from the put()
  // that left it, before it goes on the free list.
  exec::request *older = last_freed_.exchange(rs[n - 1], std::memory_order_acq_rel);
  if (older == nullptr && n == 1) return;
  std::lock_guard lk(mu_);
  if (older != nullptr) free_.push_front(older);
  for (size_t i = 0; i + 1 < n; i++) free_.push_front(rs[i]);
}

}  // namespace aio2::core
