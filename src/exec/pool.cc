// SPDX-License-Identifier: MIT
#include "exec/pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "exec/run.h"
#include "util/fault.h"

namespace aio2::exec {

namespace {

void cancel_handler(int, siginfo_t *, void *) {}

// Every copy of aio2 in a process (libaio2.so, or the static library linked
// into a program, and the copy inside each replacement library: libaio.so.1,
// libaio2-posix.so) installs the same do-nothing handler in the same way,
// and none can see another's function. A copy therefore takes a handler it
// finds for its own when it was installed that way: SA_SIGINFO without
// SA_RESTART, and every signal blocked while it runs (a signature no other
// use of the signal is likely to share).
void aio2_signature(struct sigaction *sa) noexcept {
  sa->sa_sigaction = cancel_handler;
  sa->sa_flags = SA_SIGINFO;  // no SA_RESTART: a blocked call returns -EINTR
  sigfillset(&sa->sa_mask);
}

bool has_aio2_signature(const struct sigaction &sa) noexcept {
  if (!(sa.sa_flags & SA_SIGINFO) || (sa.sa_flags & SA_RESTART)) return false;
  if (sa.sa_sigaction == cancel_handler) return true;
  // The kernel never blocks SIGKILL and SIGSTOP, and the C library keeps
  // the signals between 31 and SIGRTMIN for itself.
  for (int s = 1; s <= SIGRTMAX; s++) {
    if (s == SIGKILL || s == SIGSTOP || (s > 31 && s < SIGRTMIN)) continue;
    if (!sigismember(&sa.sa_mask, s)) return false;
  }
  return true;
}

}  // namespace

int pool::cancel_signal() noexcept { return SIGRTMAX - 2; }

int pool::install_cancel_signal() noexcept {
  static std::mutex mu;
  std::lock_guard lk(mu);
  struct sigaction old {};
  if (sigaction(cancel_signal(), nullptr, &old)) return -errno;
  if (has_aio2_signature(old)) return 0;
  if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
    return -EBUSY;
  struct sigaction sa {};
  aio2_signature(&sa);
  return sigaction(cancel_signal(), &sa, nullptr) ? -errno : 0;
}

pool::pool(unsigned bounded_max, unsigned unbounded_max, unsigned idle_ms,
           completion_sink &sink) noexcept
    : idle_ms_(idle_ms), sink_(sink) {
  bounded_.max = bounded_max;
  bounded_.name = "bounded";
  unbounded_.max = unbounded_max;
  unbounded_.name = "unbounded";
}

pool::~pool() { shutdown(); }

void pool::deliver(request *r) noexcept {
  sink_.complete(r);  // r belongs to the sink now
  sink_.batch_done(false);
}

bool pool::spawn(worker_class *k) noexcept {
  if (fault::fail(fault::site::thread_create)) return false;
  try {
    std::thread(&pool::worker_main, this, k).detach();
    return true;
  } catch (...) {
    return false;
  }
}

// Under k->mu: when work is queued, get one more worker on it: wake an idle
// one, else count a new one to start. One at a time: a worker that takes a
// request and still sees work queued does the same, so help arrives in a
// chain only as long as there is work for it, instead of a herd woken at
// once that preempts the submitter (measured in docs/design.md).
pool::help pool::help_needed(worker_class *k) noexcept {
  if (k->queued.empty()) return help::none;
  if (k->idle > k->waking) {
    k->waking++;  // this idle worker is spoken for until it runs
    return help::wake;
  }
  if (k->idle == 0 && k->live < k->max) {
    k->live++;  // counted now so concurrent callers do not overshoot
    return help::start;
  }
  return help::none;
}

// Outside k->mu: act on help_needed's answer. When a thread cannot be started
// and no worker is left to run the queue, what is queued completes with
// -EAGAIN: every request still gets its event.
void pool::get_help(worker_class *k, help h) noexcept {
  if (h == help::wake) k->work_cv.notify_one();
  if (h != help::start || spawn(k)) return;
  request_list orphans;
  {
    std::lock_guard lk(k->mu);
    k->live--;
    if (k->live == 0) orphans = k->queued.take_all();
  }
  while (request *r = orphans.pop_front()) {
    end_unrun(r, -EAGAIN, 0);
    deliver(r);
  }
}

void pool::submit(request *const *reqs, size_t n) noexcept {
  // Runs of one class go in under one lock.
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && reqs[j]->plan.unbounded == reqs[i]->plan.unbounded) j++;
    enqueue(reqs[i]->plan.unbounded ? &unbounded_ : &bounded_, reqs + i, j - i);
    i = j;
  }
}

void pool::enqueue(worker_class *k, request *const *reqs, size_t n) noexcept {
  help h;
  {
    std::lock_guard lk(k->mu);
    for (size_t i = 0; i < n; i++) k->queued.push_back(reqs[i]);
    h = help_needed(k);
  }
  get_help(k, h);
}

void pool::worker_main(worker_class *k) noexcept {
  // Workers take no process signals but the cancel signal (and the
  // synchronous ones, which cannot be blocked usefully).
  sigset_t set;
  sigfillset(&set);
  for (int s : {cancel_signal(), SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigdelset(&set, s);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  const uint32_t worker = next_worker_.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto idle_for = std::chrono::milliseconds(idle_ms_);

  std::unique_lock lk(k->mu);
  for (;;) {
    while (k->queued.empty()) {
      if (k->stopping) goto out;
      k->idle++;
      const bool timed_out = k->work_cv.wait_for(lk, idle_for) == std::cv_status::timeout;
      k->idle--;
      if (k->waking) k->waking--;  // a wake-up (or its stand-in) was used
      if (timed_out && k->queued.empty()) goto out;
    }
    request *r = k->queued.pop_front();
    r->worker_tid = tid;
    k->running.push_back(r);
    const help h = help_needed(k);  // more queued: pass the work on
    lk.unlock();
    get_help(k, h);

    // Never with other credentials than the submitter had: the C
    // library's setuid() and its kin change this thread with every other,
    // but a raw system call, setfsuid() or capset() in the submitting
    // thread changes that thread alone, and a change after the request was
    // queued would run it with the new ones.
    sys::creds mine;
    if (r->has_creds && (sys::thread_creds(&mine) != 0 || !sys::same_creds(mine, *r->creds)))
      end_unrun(r, -EPERM, 0);
    else
      run_here(r, worker);

    lk.lock();
    k->running.unlink(r);
    r->worker_tid = 0;
    lk.unlock();
    deliver(r);
    lk.lock();
  }
out:
  k->live--;
  k->exit_cv.notify_all();
}

pool::cancel_result pool::cancel(uint64_t user_data) noexcept {
  for (worker_class *k : {&bounded_, &unbounded_}) {
    request *running = nullptr, *queued = nullptr;
    uint64_t generation = 0;
    {
      std::lock_guard lk(k->mu);
      for (request *r = k->running.front(); r && !running; r = request_list::next(r)) {
        if (r->io.user_data != user_data) continue;
        r->cancel_requested.store(true, std::memory_order_relaxed);
        // The worker cannot leave the running list without this mutex, so
        // its thread is alive and still inside this request.
        syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
        running = r;
        generation = r->generation.load(std::memory_order_relaxed);
      }
      for (request *r = k->queued.front(); r && !running && !queued;
           r = request_list::next(r)) {
        if (r->io.user_data != user_data) continue;
        k->queued.unlink(r);
        queued = r;
      }
    }
    if (queued) {
      cancelled(queued);
      deliver(queued);
      return cancel_result::cancelled;
    }
    if (!running) continue;
    // The signal is lost when it lands after the worker checked
    // cancel_requested and before it entered the kernel. Send it again for a
    // short while, as long as the same request is still running.
    for (int i = 0; i < 10; i++) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard lk(k->mu);
      request *r = k->running.front();
      while (r && !(r == running && r->generation.load(std::memory_order_relaxed) == generation))
        r = request_list::next(r);
      if (!r) break;
      syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
    }
    return cancel_result::running;
  }
  return cancel_result::not_found;
}

void pool::shutdown() noexcept {
  if (shut_down_) return;
  shut_down_ = true;
  for (worker_class *k : {&bounded_, &unbounded_}) {
    request_list queued;
    {
      std::lock_guard lk(k->mu);
      k->stopping = true;
      queued = k->queued.take_all();
    }
    k->work_cv.notify_all();
    while (request *r = queued.pop_front()) {
      cancelled(r);
      deliver(r);
    }
  }
  // Interrupt what runs until nothing does; calls that cannot be interrupted
  // (disk I/O) simply finish.
  for (;;) {
    bool running = false;
    for (worker_class *k : {&bounded_, &unbounded_}) {
      std::lock_guard lk(k->mu);
      for (request *r = k->running.front(); r; r = request_list::next(r)) {
        r->cancel_requested.store(true, std::memory_order_relaxed);
        syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
        running = true;
      }
    }
    if (!running) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (worker_class *k : {&bounded_, &unbounded_}) {
    std::unique_lock lk(k->mu);
    k->work_cv.notify_all();
    k->exit_cv.wait(lk, [k] { return k->live == 0; });
  }
}

}  // namespace aio2::exec
