// SPDX-License-Identifier: MIT
// A request's status in the caller's struct aiocb, where glibc keeps it:
// __return_value (aio_return) and __error_code (aio_error; EINPROGRESS
// while in flight).
//
// R1 store_status: __return_value (relaxed), then __error_code with
//    release.                pairs with A1 (get_error's acquire load), so
//    that whoever sees the final error code also sees the return value.
#pragma once

#include <aio.h>

#include <atomic>
#include <cstdint>

namespace aio2::posix {

inline void store_status(struct aiocb *cb, int64_t ret, int error) noexcept {
  std::atomic_ref<ssize_t>(cb->__return_value).store(static_cast<ssize_t>(ret), std::memory_order_relaxed);
  std::atomic_ref<int>(cb->__error_code).store(error, std::memory_order_release);  // R1
}

// get_error - A1: the error code, with acquire.
inline int get_error(const struct aiocb *cb) noexcept {
  return std::atomic_ref<int>(const_cast<struct aiocb *>(cb)->__error_code)
      .load(std::memory_order_acquire);
}

// get_return - the return value; read after get_error saw a final code.
inline ssize_t get_return(const struct aiocb *cb) noexcept {
  return std::atomic_ref<ssize_t>(const_cast<struct aiocb *>(cb)->__return_value)
      .load(std::memory_order_relaxed);
}

}  // namespace aio2::posix
