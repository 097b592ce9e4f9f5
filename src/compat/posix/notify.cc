// SPDX-License-Identifier: MIT
#include "compat/posix/notify.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>

#include "compat/posix/engine.h"
#include "util/fault.h"

namespace aio2::posix {

namespace {

// Signal 0 sends nothing (a zeroed sigevent is SIGEV_SIGNAL with signal 0:
// no notification, as with glibc). glibc keeps signals 32 and 33
// (SIGCANCEL, SIGSETXID) below SIGRTMIN.
bool usable_signal(int signo) noexcept {
  if (signo < 0 || signo >= NSIG) return false;
  return signo < 32 || signo >= SIGRTMIN;
}

struct job {
  void (*fn)(union sigval);
  union sigval value;
};

// The threads that run SIGEV_THREAD notifications without attributes.
struct notify_pool {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<job> queue;  // guarded by mu
  unsigned idle = 0;      // guarded by mu: threads waiting for a job
};

// Constructed in place so that a forked child can start a fresh one; never
// destroyed (its threads may run at exit).
alignas(notify_pool) unsigned char g_pool_storage[sizeof(notify_pool)];
notify_pool *g_pool = new (g_pool_storage) notify_pool;

std::atomic<bool> g_signal_reported{false};  // relaxed: only limits a message to once

void unblock_all_signals() noexcept {
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

void *pool_thread(void *) {
  unblock_all_signals();
  notify_pool &p = *g_pool;
  std::unique_lock<std::mutex> lk(p.mu);
  for (;;) {
    while (p.queue.empty()) {
      p.idle++;
      const bool timed_out = p.cv.wait_for(lk, std::chrono::seconds(1)) == std::cv_status::timeout;
      p.idle--;
      if (timed_out && p.queue.empty()) return nullptr;
    }
    const job j = p.queue.front();
    p.queue.pop_front();
    lk.unlock();
    j.fn(j.value);
    lk.lock();
  }
}

void *own_thread(void *arg) {
  unblock_all_signals();
  const job j = *static_cast<job *>(arg);
  delete static_cast<job *>(arg);
  j.fn(j.value);
  return nullptr;
}

// Starts a detached pool thread; false when none can be made.
bool start_pool_thread() noexcept {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  const int rc = aio2::fault::fail(aio2::fault::site::compat_thread)
                     ? EAGAIN
                     : pthread_create(&t, &attr, pool_thread, nullptr);
  pthread_attr_destroy(&attr);
  return rc == 0;
}

void pool_post(const job &j) noexcept {
  notify_pool &p = *g_pool;
  std::unique_lock<std::mutex> lk(p.mu);
  try {
    compat_may_throw();
    p.queue.push_back(j);
  } catch (const std::bad_alloc &) {
    // No room in the queue: this thread runs it, as when no thread can be
    // made.
    lk.unlock();
    message("SIGEV_THREAD: no memory to queue the notification; it runs in the completing thread");
    j.fn(j.value);
    return;
  }
  if (p.queue.size() <= p.idle) {
    p.cv.notify_one();
    return;
  }
  lk.unlock();
  if (start_pool_thread()) return;
  // No new thread: an existing one will take it when free, or, with none
  // at all, this thread runs it.
  lk.lock();
  if (p.idle > 0) {
    p.cv.notify_one();
    return;
  }
  if (!p.queue.empty()) {
    const job mine = p.queue.back();
    p.queue.pop_back();
    lk.unlock();
    message("SIGEV_THREAD: no thread could be created; the notification runs in the completion thread");
    mine.fn(mine.value);
  }
}

void queue_signal(const struct sigevent &sev, bool to_thread) noexcept {
  if (sev.sigev_signo == 0) return;
  siginfo_t info{};
  info.si_signo = sev.sigev_signo;
  info.si_code = SI_ASYNCIO;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value = sev.sigev_value;
  const long rc = to_thread ? syscall(SYS_rt_tgsigqueueinfo, info.si_pid, sev._sigev_un._tid,
                                      sev.sigev_signo, &info)
                            : syscall(SYS_rt_sigqueueinfo, info.si_pid, sev.sigev_signo, &info);
  if (rc != 0 && !g_signal_reported.exchange(true, std::memory_order_relaxed))
    message(errno == EAGAIN ? "a completion signal was lost: the queue of pending signals is full "
                              "(RLIMIT_SIGPENDING)"
                            : "a completion signal could not be queued");
}

}  // namespace

int check_sigevent(const struct sigevent &sev) noexcept {
  switch (sev.sigev_notify) {
    case SIGEV_NONE:
      return 0;
    case SIGEV_SIGNAL:
      return usable_signal(sev.sigev_signo) ? 0 : EINVAL;
    case SIGEV_THREAD_ID:
      return usable_signal(sev.sigev_signo) && sev._sigev_un._tid > 0 ? 0 : EINVAL;
    case SIGEV_THREAD:
      return sev.sigev_notify_function != nullptr ? 0 : EINVAL;
    default:
      return EINVAL;
  }
}

void notify(const struct sigevent &sev) noexcept {
  switch (sev.sigev_notify) {
    case SIGEV_SIGNAL:
      queue_signal(sev, false);
      return;
    case SIGEV_THREAD_ID:
      queue_signal(sev, true);
      return;
    case SIGEV_THREAD:
      break;
    default:
      return;
  }
  const job j{sev.sigev_notify_function, sev.sigev_value};
  auto *attr = static_cast<pthread_attr_t *>(sev.sigev_notify_attributes);
  if (attr == nullptr) {
    pool_post(j);
    return;
  }
  auto *arg =
      aio2::fault::fail(aio2::fault::site::compat_alloc) ? nullptr : new (std::nothrow) job(j);
  pthread_t t;
  if (arg != nullptr && pthread_create(&t, attr, own_thread, arg) == 0) {
    // Nobody else knows the thread, so nobody could join it: detach it
    // when the caller's attributes made it joinable.
    int state = PTHREAD_CREATE_DETACHED;
    pthread_attr_getdetachstate(attr, &state);
    if (state == PTHREAD_CREATE_JOINABLE) pthread_detach(t);
    return;
  }
  delete arg;
  message("SIGEV_THREAD: no thread could be created with the given attributes; a pool thread runs "
          "the notification");
  pool_post(j);
}

void notify_prepare_fork() noexcept { g_pool->mu.lock(); }

void notify_parent_after_fork() noexcept { g_pool->mu.unlock(); }

void notify_after_fork() noexcept {
  // The old pool (its lock held by the parent's prepare handler, its
  // threads absent here) is abandoned in place; the child starts empty.
  g_pool = new (g_pool_storage) notify_pool;
}

}  // namespace aio2::posix
