// SPDX-License-Identifier: MIT
// A mutex for critical sections of a few instructions that several threads
// enter often (a free list, a list of requests in flight): glibc's adaptive
// mutex, which spins a little on a taken lock before it sleeps in the
// kernel. std::mutex sleeps at once, so two threads that meet on such a
// lock pay a futex wait, a wake-up call and two context switches for a
// section that would have been free a few hundred cycles later. Lockable:
// it works with std::lock_guard and std::unique_lock, and ThreadSanitizer
// sees it as the pthread mutex it is.
#pragma once

#include <pthread.h>

namespace aio2::util {

class adaptive_mutex {
 public:
  adaptive_mutex() noexcept = default;
  ~adaptive_mutex() { pthread_mutex_destroy(&m_); }
  adaptive_mutex(const adaptive_mutex &) = delete;
  adaptive_mutex &operator=(const adaptive_mutex &) = delete;

  void lock() noexcept { pthread_mutex_lock(&m_); }
  bool try_lock() noexcept { return pthread_mutex_trylock(&m_) == 0; }
  void unlock() noexcept { pthread_mutex_unlock(&m_); }

 private:
  pthread_mutex_t m_ = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
};

}  // namespace aio2::util
