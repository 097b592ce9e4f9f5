// SPDX-License-Identifier: MIT
#include "core/slots.h"

#include "util/fault.h"

namespace aio2::core {

size_t slots::take(exec::request **out, size_t n) noexcept {
  std::lock_guard lk(mu_);
  size_t got = 0;
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

void slots::put(exec::request *r) noexcept {
  if (r->creds != nullptr) sys::creds_table::drop(r->creds);
  r->creds = nullptr;
  r->has_creds = false;
  std::lock_guard lk(mu_);
  free_.push_front(r);  // the next take reuses it while it is warm in the cache
}

}  // namespace aio2::core
