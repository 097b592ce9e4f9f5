// SPDX-License-Identifier: MIT
#include "exec/pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "exec/raw_syscall.h"
#include "sys/syscall_table.h"

namespace aio2::exec {

namespace {

// List helpers. Every list is guarded by its owner's mutex, held by callers.
void fifo_push(request *&head, request *&tail, request *r) noexcept {
  r->next = nullptr;
  r->prev = tail;
  if (tail) tail->next = r;
  else head = r;
  tail = r;
}

void list_unlink(request *&head, request *&tail, request *r) noexcept {
  if (r->prev) r->prev->next = r->next;
  else head = r->next;
  if (r->next) r->next->prev = r->prev;
  else tail = r->prev;
  r->next = r->prev = nullptr;
}

request *fifo_pop(request *&head, request *&tail) noexcept {
  request *r = head;
  if (r) list_unlink(head, tail, r);
  return r;
}

void cancel_handler(int) {}

}  // namespace

int pool::cancel_signal() noexcept { return SIGRTMAX - 2; }

int pool::install_cancel_signal() noexcept {
  static std::mutex mu;
  std::lock_guard lk(mu);
  struct sigaction old {};
  if (sigaction(cancel_signal(), nullptr, &old)) return -errno;
  if (old.sa_handler == cancel_handler) return 0;
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) return -EBUSY;
  struct sigaction sa {};
  sa.sa_handler = cancel_handler;  // no SA_RESTART: a blocked call returns -EINTR
  sigemptyset(&sa.sa_mask);
  return sigaction(cancel_signal(), &sa, nullptr) ? -errno : 0;
}

pool::pool(unsigned bounded_max, unsigned unbounded_max, unsigned idle_ms, complete_fn complete,
           void *owner) noexcept
    : idle_ms_(idle_ms), complete_(complete), owner_(owner) {
  bounded_.max = bounded_max;
  bounded_.name = "bounded";
  unbounded_.max = unbounded_max;
  unbounded_.name = "unbounded";
}

pool::~pool() { shutdown(); }

bool pool::wants_unbounded(const aio2_iocb &io, const sys::syscall_info &info) noexcept {
  if (io.flags & AIO2_IOCB_UNBOUNDED) return true;
  if (io.flags & AIO2_IOCB_BOUNDED) return false;
  switch (info.blocks) {
    case sys::blocking::forever:
      return true;
    case sys::blocking::fd_dependent: {
      // Finite only when every descriptor is a regular file or a block
      // device; pipes, sockets, ttys and the like may wait for ever. A bad
      // descriptor makes the call fail at once, so it does not count.
      for (int i = 0; i < 6; i++) {
        if (!(info.fd_args & (1u << i))) continue;
        struct stat st {};
        if (fstat(static_cast<int>(io.args[i]), &st) != 0) continue;
        if (!(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) return true;
      }
      return false;
    }
    default:
      return false;
  }
}

bool pool::spawn(worker_class *k) noexcept {
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
  if (k->q_head == nullptr) return help::none;
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
  request *orphans = nullptr;
  {
    std::lock_guard lk(k->mu);
    k->live--;
    if (k->live == 0) {
      orphans = k->q_head;
      k->q_head = k->q_tail = nullptr;
    }
  }
  while (orphans) {
    request *r = orphans;
    orphans = r->next;
    r->next = r->prev = nullptr;
    r->state = req_state::finishing;
    r->res = -EAGAIN;
    r->event_flags = 0;
    combine_split(r);
    complete_(owner_, r);
  }
}

void pool::enqueue(request *const *reqs, size_t n, bool unbounded) noexcept {
  worker_class *k = unbounded ? &unbounded_ : &bounded_;
  help h;
  {
    std::lock_guard lk(k->mu);
    for (size_t i = 0; i < n; i++) {
      reqs[i]->klass = k;
      reqs[i]->state = req_state::queued;
      fifo_push(k->q_head, k->q_tail, reqs[i]);
    }
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
    while (k->q_head == nullptr) {
      if (k->stopping) goto out;
      k->idle++;
      const bool timed_out = k->work_cv.wait_for(lk, idle_for) == std::cv_status::timeout;
      k->idle--;
      if (k->waking) k->waking--;  // a wake-up (or its stand-in) was used
      if (timed_out && k->q_head == nullptr) goto out;
    }
    request *r = fifo_pop(k->q_head, k->q_tail);
    r->state = req_state::running;
    r->worker_tid = tid;
    fifo_push(k->run_head, k->run_tail, r);
    const help h = help_needed(k);  // more queued: pass the work on
    lk.unlock();
    get_help(k, h);

    run_request(r, worker);

    lk.lock();
    list_unlink(k->run_head, k->run_tail, r);
    r->state = req_state::finishing;
    r->worker_tid = 0;
    lk.unlock();
    complete_(owner_, r);  // r belongs to the owner now
    lk.lock();
  }
out:
  k->live--;
  k->exit_cv.notify_all();
}

void pool::complete_cancelled(request *r) noexcept {
  r->res = -ECANCELED;
  r->event_flags = AIO2_EVENT_CANCELED;
  combine_split(r);  // a split read that read some bytes reports them
  complete_(owner_, r);
}

pool::cancel_result pool::cancel(uint64_t user_data) noexcept {
  for (worker_class *k : {&bounded_, &unbounded_}) {
    request *running = nullptr, *queued = nullptr;
    uint64_t generation = 0;
    {
      std::lock_guard lk(k->mu);
      for (request *r = k->run_head; r && !running; r = r->next) {
        if (r->io.user_data != user_data) continue;
        r->cancel_requested.store(true, std::memory_order_relaxed);
        // The worker cannot leave the running list without this mutex, so
        // its thread is alive and still inside this request.
        syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
        running = r;
        generation = r->generation.load(std::memory_order_relaxed);
      }
      for (request *r = k->q_head; r && !running && !queued; r = r->next) {
        if (r->io.user_data != user_data) continue;
        list_unlink(k->q_head, k->q_tail, r);
        r->state = req_state::finishing;
        queued = r;
      }
    }
    if (queued) {
      complete_cancelled(queued);
      return cancel_result::queued;
    }
    if (!running) continue;
    // The signal is lost when it lands after the worker checked
    // cancel_requested and before it entered the kernel. Send it again for a
    // short while, as long as the same request is still running.
    for (int i = 0; i < 10; i++) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard lk(k->mu);
      request *r = k->run_head;
      while (r && !(r == running && r->generation.load(std::memory_order_relaxed) == generation))
        r = r->next;
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
    request *queued;
    {
      std::lock_guard lk(k->mu);
      k->stopping = true;
      queued = k->q_head;
      k->q_head = k->q_tail = nullptr;
    }
    k->work_cv.notify_all();
    while (queued) {
      request *r = queued;
      queued = r->next;
      r->next = r->prev = nullptr;
      r->state = req_state::finishing;
      complete_cancelled(r);
    }
  }
  // Interrupt what runs until nothing does; calls that cannot be interrupted
  // (disk I/O) simply finish.
  for (;;) {
    bool running = false;
    for (worker_class *k : {&bounded_, &unbounded_}) {
      std::lock_guard lk(k->mu);
      for (request *r = k->run_head; r; r = r->next) {
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
