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
#include "exec/test_hooks.h"
#include "util/cpu.h"
#include "util/fault.h"

namespace aio2::exec {

std::atomic<void (*)(uint64_t)> test_hooks::before_pool_run{nullptr};

namespace {

// request::worker_tid of a request a thread in getevents runs: bounded
// work, which finishes; that thread is the program's, so a cancel never
// signals it. (0: not started; > 0: the worker running it.)
constexpr pid_t kRunByCaller = -1;
// The executor attribute's worker number of a request a thread in
// getevents ran (workers count from 1).
constexpr uint32_t kCallerWorker = UINT32_MAX;

// How much work a worker takes at once, in time: requests that finish
// quicker than a wake-up of another worker costs (cached reads: about a
// microsecond, against several for a wake-up and a context switch) go in
// batches that hold this much, by the class's average; a batch that runs
// longer gives back what it has not started.
constexpr auto kBatchWork = std::chrono::microseconds(50);
constexpr uint64_t kBatchWorkNs = std::chrono::nanoseconds(kBatchWork).count();

// Calls whose effect does not depend on the thread that makes them: reads,
// writes and syncs of a descriptor (bounded: of a regular file or a block
// device). Only they run in a thread waiting in getevents; any other call
// may read or change its thread's state (gettid, prctl, unshare, setns,
// sched_setaffinity(0), open as that thread's credentials...), which must
// be a worker's, not the program's thread's.
bool runs_anywhere(uint32_t nr) noexcept {
  switch (nr) {
    case SYS_read: case SYS_pread64: case SYS_readv: case SYS_preadv: case SYS_preadv2:
    case SYS_write: case SYS_pwrite64: case SYS_writev: case SYS_pwritev: case SYS_pwritev2:
    case SYS_fsync: case SYS_fdatasync:
      return true;
    default:
      return false;
  }
}

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
//
// A worker that spins for work takes it (and passes the rest on) without a
// wake-up.
pool::help pool::help_needed(worker_class *k) noexcept {
  if (k->queued.empty() || k->spinning) return help::none;
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
    if (k->live == 0) {
      orphans = k->queued.take_all();
      k->nqueued.store(0, std::memory_order_relaxed);
    }
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
    k->nqueued.store(k->nqueued.load(std::memory_order_relaxed) + static_cast<uint32_t>(n),
                     std::memory_order_relaxed);
    h = help_needed(k);
  }
  get_help(k, h);
}

// Under k->mu, with work queued: moves this worker's share of the queue to
// the running list, not started (worker_tid 0), into `out`; returns how
// many. Bounded work: the queue divided among the workers that could take
// part of it now (this one, idle ones not yet woken, ones that may still
// start), or more for quick work (kBatchWork), at most kTakeMax: one
// wake-up serves several requests, and a queue of slow requests still
// spreads over every worker it can have.
size_t pool::take_share(worker_class *k, request **out) noexcept {
  const uint32_t queued = k->nqueued.load(std::memory_order_relaxed);
  // Unbounded work may wait for ever: one request behind another there
  // would wait with it. One at a time, as many workers as requests.
  if (k == &unbounded_) {
    request *r = k->queued.pop_front();
    r->worker_tid = 0;
    k->running.push_back(r);
    out[0] = r;
    k->nqueued.store(queued - 1, std::memory_order_relaxed);
    return 1;
  }
  const unsigned helpers =
      1 + (k->idle > k->waking ? k->idle - k->waking : 0) + (k->max > k->live ? k->max - k->live : 0);
  size_t want = (queued + helpers - 1) / helpers;
  // Quick work: as much as one worker runs in kBatchWork.
  if (k->run_ns != 0 && kBatchWorkNs / k->run_ns > want) want = kBatchWorkNs / k->run_ns;
  if (want == 0) want = 1;
  if (want > kTakeMax) want = kTakeMax;
  size_t n = 0;
  while (n < want && !k->queued.empty()) {
    request *r = k->queued.pop_front();
    r->worker_tid = 0;
    k->running.push_back(r);
    out[n++] = r;
  }
  k->nqueued.store(queued - static_cast<uint32_t>(n), std::memory_order_relaxed);
  return n;
}

// Under k->mu: a request of k ran for `took`: the class's average moves an
// eighth of the way toward it.
void pool::learn_run_time(worker_class *k, std::chrono::steady_clock::duration took) noexcept {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  const uint64_t sample = ns <= 0 ? 1 : static_cast<uint64_t>(ns);
  k->run_ns = k->run_ns == 0 ? sample : k->run_ns - k->run_ns / 8 + sample / 8;
  if (k->run_ns == 0) k->run_ns = 1;
}

// Under k->mu (released while it spins), with nothing queued: one worker
// per class looks for work for util::kSpin before it sleeps, so that work
// submitted right behind its completions (a program that reaps and submits
// again) costs no wake-up call and this worker no sleep. One: more would
// take CPUs from the threads that submit. Returns true when it spun (look
// at the queue again), false when another worker spins.
bool pool::spin_for_work(worker_class *k, std::unique_lock<std::mutex> &lk) noexcept {
  if (k->spinning) return false;
  k->spinning++;
  lk.unlock();
  // Relaxed: a change only sends the worker to look again under k->mu.
  util::spin_until([k] { return k->nqueued.load(std::memory_order_relaxed) != 0; });
  lk.lock();
  k->spinning--;
  return true;
}

// What a thread running pool work blocks: every process signal but the
// cancel signal (and the synchronous ones, which cannot be blocked usefully).
sigset_t pool::work_sigmask() noexcept {
  sigset_t set;
  sigfillset(&set);
  for (int s : {cancel_signal(), SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigdelset(&set, s);
  return set;
}

void pool::worker_main(worker_class *k) noexcept {
  // Workers take no process signals: they belong to the program's threads.
  const sigset_t set = work_sigmask();
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  const uint32_t worker = next_worker_.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto idle_for = std::chrono::milliseconds(idle_ms_);
  request *batch[kTakeMax];

  std::unique_lock lk(k->mu);
  for (;;) {
    bool spun = false;  // since this worker last found work
    while (k->queued.empty()) {
      if (k->stopping) goto out;
      if (!spun) {
        spun = true;
        if (spin_for_work(k, lk)) continue;
      }
      k->idle++;
      const bool timed_out = k->work_cv.wait_for(lk, idle_for) == std::cv_status::timeout;
      k->idle--;
      if (k->waking) k->waking--;  // a wake-up (or its stand-in) was used
      if (timed_out && k->queued.empty()) goto out;
    }
    const size_t n = take_share(k, batch);
    batch[0]->worker_tid = tid;  // started: a cancel signals this thread
    const help h = help_needed(k);  // more queued: pass the work on
    lk.unlock();
    get_help(k, h);

    size_t n_left = n;
    const auto batch_start = std::chrono::steady_clock::now();
    auto started = batch_start;
    for (size_t i = 0; i < n_left; i++) {
      request *r = batch[i];
      if (auto *hook = test_hooks::before_pool_run.load(std::memory_order_relaxed))
        hook(r->io.user_data);
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

      const auto ended = std::chrono::steady_clock::now();
      lk.lock();
      k->running.unlink(r);
      r->worker_tid = 0;
      learn_run_time(k, ended - started);
      started = ended;
      help back = help::none;
      if (i + 1 < n_left && ended - batch_start > kBatchWork) {
        // Slower than the average promised: what has not started goes
        // back to the head of the queue, in order, for other workers.
        for (size_t j = n_left; j-- > i + 1;) {
          k->running.unlink(batch[j]);
          k->queued.push_front(batch[j]);
        }
        k->nqueued.store(k->nqueued.load(std::memory_order_relaxed) +
                             static_cast<uint32_t>(n_left - i - 1),
                         std::memory_order_relaxed);
        n_left = i + 1;
        back = help_needed(k);
      } else if (i + 1 < n_left) {
        batch[i + 1]->worker_tid = tid;
      }
      lk.unlock();
      get_help(k, back);
      sink_.complete(r);  // r belongs to the sink now
    }
    sink_.batch_done(false);  // one wake-up for the batch
    lk.lock();
  }
out:
  k->live--;
  k->exit_cv.notify_all();
}

bool pool::run_queued_here() noexcept {
  worker_class *k = &bounded_;
  if (k->nqueued.load(std::memory_order_relaxed) == 0) return false;
  // The oldest queued requests this thread may run, up to kCallerRunMax,
  // taken under one lock as a worker takes its share. The worker's
  // credential check is made before a request is taken, for one that
  // carries credentials; this thread's are read (six system calls) only
  // when such a request is at the head, outside the lock, and then looked
  // at again.
  request *batch[kCallerRunMax];
  size_t n = 0;
  sys::creds mine;
  bool have_mine = false;
  for (;;) {
    bool need_mine = false;
    {
      std::lock_guard lk(k->mu);
      while (n < kCallerRunMax && !k->stopping) {
        request *r = k->queued.front();
        if (r == nullptr || !runs_anywhere(r->io.nr)) break;
        if (r->has_creds && !have_mine) {
          need_mine = true;
          break;
        }
        if (r->has_creds && !sys::same_creds(mine, *r->creds)) break;
        k->queued.pop_front();
        k->nqueued.store(k->nqueued.load(std::memory_order_relaxed) - 1,
                         std::memory_order_relaxed);
        // The first starts now; the others are taken and not started
        // (worker_tid 0): a cancel completes them with -ECANCELED, as a
        // worker's.
        r->worker_tid = n == 0 ? kRunByCaller : 0;
        k->running.push_back(r);
        batch[n++] = r;
      }
    }
    if (!need_mine || sys::thread_creds(&mine) != 0) break;
    have_mine = true;
  }
  if (n == 0) return false;
  // The program's signals wait until the calls are over, as they would
  // on a worker: a handler that ran here could interrupt a call that a
  // worker finishes (a read on FUSE, say). One save and restore for the
  // whole batch.
  static const sigset_t set = work_sigmask();  // built once: seven calls
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &set, &old);
  for (size_t i = 0; i < n; i++) {
    run_here(batch[i], kCallerWorker);
    // Under the mutex, as a worker does: a cancel that saw the next one
    // taken has set its cancel_requested, which run_here reads next.
    std::lock_guard lk(k->mu);
    k->running.unlink(batch[i]);
    batch[i]->worker_tid = 0;
    if (i + 1 < n) batch[i + 1]->worker_tid = kRunByCaller;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  sink_.complete_many(batch, n);  // each belongs to the sink now
  sink_.batch_done(false);  // one wake-up for the batch
  return true;
}

pool::cancel_result pool::cancel(uint64_t user_data) noexcept {
  for (worker_class *k : {&bounded_, &unbounded_}) {
    request *running = nullptr, *queued = nullptr;
    uint64_t generation = 0;
    bool signalled = false, taken = false, goes_on = false;
    {
      std::lock_guard lk(k->mu);
      for (request *r = k->running.front(); r && !running; r = request_list::next(r)) {
        if (r->io.user_data != user_data) continue;
        // Taken, not started and cancelled already: as good as gone.
        if (r->worker_tid == 0 && r->cancel_requested.load(std::memory_order_relaxed)) continue;
        running = r;
        // Bounded work finishes by itself (regular files, block devices):
        // once started, by a worker or by a thread in getevents, it runs to
        // its end, and so does the rest of a nowait-first read that a
        // worker has taken (r->nowait is not touched while r is taken and
        // not started: worker_tid 0, which only its worker changes, under
        // this mutex). Neither is flagged: the flag, read just before the
        // call, would end a rest at its attempt's bytes, a short count for
        // a read the cancel answered -EALREADY for.
        const bool bounded = k == &bounded_;
        if (bounded && (r->worker_tid != 0 || r->nowait.rest_pending())) goes_on = true;
        // A worker that took it and has not started reads this first
        // (under this mutex, after it sets worker_tid) and completes it
        // with -ECANCELED; a started unbounded one reads it just before its
        // call.
        if (!goes_on) r->cancel_requested.store(true, std::memory_order_relaxed);
        taken = r->worker_tid == 0 && !goes_on;
        generation = r->generation.load(std::memory_order_relaxed);
        if (r->worker_tid <= 0) continue;  // not started, or run by a caller
        // The worker cannot leave the running list without this mutex, so
        // its thread is alive and still inside this request. A bounded call
        // gets the signal too: one that waits in the kernel after all (a
        // pipe read declared bounded, a stuck network file) returns -EINTR;
        // a read of a local file does not notice it.
        syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
        signalled = true;
      }
      for (request *r = k->queued.front(); r && !running && !queued;
           r = request_list::next(r)) {
        // One a worker gave back after a cancel completes with -ECANCELED.
        if (r->io.user_data != user_data || r->cancel_requested.load(std::memory_order_relaxed))
          continue;
        k->queued.unlink(r);
        k->nqueued.store(k->nqueued.load(std::memory_order_relaxed) - 1,
                         std::memory_order_relaxed);
        queued = r;
      }
    }
    if (taken) return cancel_result::cancelled;
    if (queued) {
      cancelled(queued);
      deliver(queued);
      return cancel_result::cancelled;
    }
    if (!running) continue;
    const cancel_result out = goes_on ? cancel_result::in_flight : cancel_result::running;
    if (!signalled) return out;
    // The signal is lost when it lands after the worker checked
    // cancel_requested and before it entered the kernel. Send it again for a
    // short while, as long as the same request is still running.
    for (int i = 0; i < 10; i++) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard lk(k->mu);
      request *r = k->running.front();
      while (r && !(r == running && r->generation.load(std::memory_order_relaxed) == generation))
        r = request_list::next(r);
      if (!r || r->worker_tid <= 0) break;
      syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
    }
    return out;
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
      k->nqueued.store(0, std::memory_order_relaxed);
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
        // Taken and not started: its worker completes it with -ECANCELED.
        r->cancel_requested.store(true, std::memory_order_relaxed);
        if (r->worker_tid > 0) syscall(SYS_tgkill, getpid(), r->worker_tid, cancel_signal());
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
