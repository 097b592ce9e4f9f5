// SPDX-License-Identifier: MIT
#include "compat/posix/engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "compat/posix/notify.h"
#include "compat/posix/status.h"
#include "compat/trace_file.h"
#include "compat/posix/wait.h"
#include "util/fault.h"

namespace aio2::posix {

namespace {

// The engine, published once made (release; paired with the acquire in
// engine_peek/engine_get, so that a caller sees it whole). A forked child
// sets it back to null and makes its own on first use.
std::atomic<engine *> g_engine{nullptr};
std::mutex g_init_mu;          // serialises creation; guards g_init
struct aioinit g_init {};      // aio_init's parameters, before creation
bool g_init_given = false;     // guarded by g_init_mu
std::atomic<bool> g_failure_reported{false};  // relaxed: a message once
aio2_compat::trace_writer *g_trace = nullptr;  // guarded by g_init_mu until published with the engine
bool g_atfork_done = false;       // guarded by g_init_mu
// In a forked child: how many of the parent's requests were in flight, said
// on stderr at the child's first call (relaxed: the child's own counter,
// read and cleared by exchange so that one call says it).
std::atomic<size_t> g_fork_lost{0};

// Requests are made in chunks and never freed: a stale pointer (aio_cancel
// racing a completion) always points at a request record.
constexpr size_t kChunk = 256;
// The completion thread's event buffer.
constexpr size_t kEventBuffer = 64 * 1024;
// Requests handed to aio2 in one aio2_submit, built on the stack.
constexpr size_t kBatch = 16;
// The submitter's buffer for the events it reaps itself.
constexpr size_t kReapHereBuffer = 8 * 1024;
// The completion thread's wait in aio2_getevents while events are owed,
// doubling from the first to the second.
constexpr int64_t kGeteventsWaitMinMs = 10;
constexpr int64_t kGeteventsWaitMaxMs = 10 * 1000;
// How long aio_cancel waits for requests it interrupted to come back.
constexpr long kCancelWaitNs = 10 * 1000 * 1000;

// At exit: the engine's context-end record (registered after the trace
// writer's own handler, so it runs before it).
void trace_at_exit() {
  if (engine *e = engine_peek()) e->trace_exit();
}

void atfork_prepare() {
  if (engine *e = engine_peek()) e->prepare_fork();
  notify_prepare_fork();
}

void atfork_parent() {
  notify_parent_after_fork();
  if (engine *e = engine_peek()) e->parent_after_fork();
}

void atfork_child() {
  notify_after_fork();
  wait_after_fork();
  engine *e = engine_peek();
  if (e == nullptr) return;
  g_fork_lost.store(e->child_after_fork(), std::memory_order_relaxed);
  // The parent's engine (its threads absent here) is abandoned: the child
  // makes a new one on its next call.
  g_engine.store(nullptr, std::memory_order_release);
}

}  // namespace

uint64_t now_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void message(const char *text) {
  char line[512];
  const int n = std::snprintf(line, sizeof line, "aio2-posix: %s\n", text);
  if (n <= 0) return;
  int state = 0;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);  // write(2) is a cancellation point
  const size_t len = std::min(static_cast<size_t>(n), sizeof line - 1);
  const ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
  pthread_setcancelstate(state, &state);
}

engine::engine(const struct aioinit *init) {
  aio2_params p{};
  p.size = sizeof p;
  p.ring_bytes = 1u << 20;
  // No io_uring: the kernel cancels a thread's io_uring requests when the
  // thread exits, and a POSIX AIO request outlives the thread that made it
  // (a SIGEV_THREAD function that queues the next read, a worker that
  // exits). Reads the page cache serves run inline (RWF_NOWAIT in the
  // caller), the rest on aio2's pool.
  p.flags = AIO2_SETUP_NO_URING;
  if (init != nullptr) {
    if (init->aio_threads > 0) p.bounded_workers = static_cast<uint32_t>(init->aio_threads);
    if (init->aio_idle_time > 0) p.idle_ms = static_cast<uint32_t>(init->aio_idle_time) * 1000u;
  }
  int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx_);
  if (rc < 0) {
    error_ = rc == -EBUSY || rc == -ENOMEM || rc == -EMFILE ? EAGAIN : -rc;
    ctx_ = nullptr;
    return;
  }
  trace_ = g_trace;
  if (trace_ != nullptr) trace_ctx_ = trace_->context_opened(p, 0);
  ring_ = aio2_ring_get(ctx_);
  if (!aio2::fault::fail(aio2::fault::site::compat_alloc))
    events_buf_.reset(new (std::nothrow) unsigned char[kEventBuffer]);  // 16-aligned, as new is
  if (events_buf_ == nullptr) {
    error_ = EAGAIN;
    aio2_destroy(ctx_);
    ctx_ = nullptr;
    return;
  }
  // The completion thread blocks every signal: the program's signals,
  // completion signals included, go to the program's threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = aio2::fault::fail(aio2::fault::site::compat_thread)
           ? EAGAIN
           : pthread_create(&thread_, nullptr, completion_main, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    error_ = EAGAIN;
    aio2_destroy(ctx_);
    ctx_ = nullptr;
    return;
  }
  pthread_detach(thread_);
}

request *engine::alloc() {
  std::lock_guard<std::mutex> lk(free_mu_);
  if (free_ == nullptr) {
    auto *chunk = aio2::fault::fail(aio2::fault::site::compat_alloc)
                      ? nullptr
                      : new (std::nothrow) request[kChunk];
    if (chunk == nullptr) return nullptr;
    try {
      compat_may_throw();
      chunks_.push_back(chunk);  // remembered, to be freed with the engine
    } catch (const std::bad_alloc &) {
      delete[] chunk;
      return nullptr;
    }
    for (size_t i = 0; i < kChunk; i++) {
      chunk[i].next_free = free_;
      free_ = &chunk[i];
    }
  }
  request *r = free_;
  free_ = r->next_free;
  return r;
}

void engine::release(request *r) {
  // Fields are reset here, by the last user, so that alloc hands out a
  // clean record.
  r->completed = r->held = r->cancel_requested = false;
  r->ordered = r->stream = false;
  r->group = nullptr;
  std::lock_guard<std::mutex> lk(free_mu_);
  r->next_free = free_;
  free_ = r;
}

size_t engine::build(const request *r, unsigned char *out) const {
  auto *io = reinterpret_cast<aio2_iocb *>(out);
  const auto ud = reinterpret_cast<uint64_t>(r);
  const auto fd = static_cast<uint64_t>(r->fd);
  const auto buf = reinterpret_cast<uint64_t>(r->buf);
  switch (r->kind) {
    case op::read:
      if (r->stream) aio2_prep(io, SYS_read, ud, fd, buf, r->len, 0, 0, 0);
      else aio2_prep(io, SYS_pread64, ud, fd, buf, r->len, static_cast<uint64_t>(r->offset), 0, 0);
      break;
    case op::write:
      if (r->stream) aio2_prep(io, SYS_write, ud, fd, buf, r->len, 0, 0, 0);
      else aio2_prep(io, SYS_pwrite64, ud, fd, buf, r->len, static_cast<uint64_t>(r->offset), 0, 0);
      break;
    case op::fsync:
      aio2_prep(io, SYS_fsync, ud, fd, 0, 0, 0, 0, 0);
      break;
    case op::fdatasync:
      aio2_prep(io, SYS_fdatasync, ud, fd, 0, 0, 0, 0, 0);
      break;
  }
  if (trace_ != nullptr) {
    aio2_attr_add(io, kMaxIocb, AIO2_ATTR_TIMING, 0, nullptr, 0);
    aio2_attr_add(io, kMaxIocb, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
    aio2_attr_add(io, kMaxIocb, AIO2_ATTR_CACHE, 0, nullptr, 0);
  }
  return io->len;
}

fd_entry *engine::entry_locked(shard &s, int fd) {
  auto it = s.fds.find(fd);
  if (it != s.fds.end()) return &it->second;
  try {
    compat_may_throw();
    return &s.fds[fd];
  } catch (const std::bad_alloc &) {
    return nullptr;
  }
}

fd_entry &engine::linked_entry_locked(shard &s, int fd) { return s.fds.find(fd)->second; }

int engine::submit(request **reqs, size_t n, bool *queued) {
  request_list go, withdrawn;
  size_t own = 0, refused = 0;
  for (size_t i = 0; i < n; i++) {
    request *r = reqs[i];
    shard &s = shard_of(r->fd);
    std::unique_lock<std::mutex> lk(s.mu);
    fd_entry *e = entry_locked(s, r->fd);
    if (e == nullptr) {
      // Not queued: nobody else has seen it.
      lk.unlock();
      queued[i] = false;
      store_status(r->cb, -1, EAGAIN);
      release(r);
      refused++;
      continue;
    }
    queued[i] = true;
    // In progress before anyone can find it, so that a completion (or an
    // aio_cancel) that follows at once is not overwritten.
    store_status(r->cb, 0, EINPROGRESS);
    e->all.push_back(r);
    bool hold = false;
    if (r->kind == op::write) {
      r->wseq = e->next_wseq++;
      hold = r->ordered && !e->writes.empty();
      e->writes.push_back(r);
    } else if (r->kind == op::fsync || r->kind == op::fdatasync) {
      // POSIX: the sync covers every write queued on the descriptor before
      // it, so it starts when they have completed.
      r->wseq = e->next_wseq;
      hold = !e->writes.empty();
    }
    if (hold) {
      r->held = true;
      e->held.push_back(r);
    } else {
      go.push_back(r);
      own++;
    }
  }
  // Counted before they start: a request's record may be written at once.
  if (trace_ != nullptr) trace_requests_.fetch_add(n - refused, std::memory_order_relaxed);
  start(&go, own, &withdrawn);
  size_t nwithdrawn = 0;
  // Requests aio2 could not take for lack of resources were not queued:
  // the call fails for them. (The others may be done and reused by now:
  // they are not looked at again.)
  while (request *w = withdrawn.pop_front()) {
    for (size_t i = 0; i < n; i++)
      if (reqs[i] == w) queued[i] = false;
    release(w);
    nwithdrawn++;
  }
  if (trace_ != nullptr && nwithdrawn != 0)
    trace_requests_.fetch_sub(nwithdrawn, std::memory_order_relaxed);
  reap_here();
  return nwithdrawn == 0 && refused == 0 ? 0 : EAGAIN;
}

void engine::start(request_list *go, size_t own, request_list *withdrawn) {
  // Requests go to aio2 kBatch at a time, built on the stack. Completing a
  // refused request may release held ones: they join `go`, after.
  alignas(8) unsigned char buf[kBatch * kMaxIocb];
  size_t lens[kBatch];
  request *batch[kBatch];
  size_t taken = 0;  // requests taken off `go` so far
  while (!go->empty()) {
    const size_t first = taken;
    size_t k = 0, bytes = 0;
    for (; k < kBatch && !go->empty(); k++, taken++) {
      batch[k] = go->pop_front();
      lens[k] = build(batch[k], buf + bytes);
      bytes += lens[k];
    }
    pending_.fetch_add(static_cast<int64_t>(k), std::memory_order_seq_cst);
    size_t pos = 0, idx = 0;
    while (pos < bytes) {
      const ssize_t rc = aio2_submit(ctx_, buf + pos, bytes - pos);
      if (rc > 0) {
        size_t took = 0;
        while (took < static_cast<size_t>(rc)) took += lens[idx++];
        pos += took;
        continue;
      }
      request *r = batch[idx];
      const bool mine = first + idx < own;
      pos += lens[idx++];
      pending_.fetch_sub(1, std::memory_order_seq_cst);  // refused: no event
      if ((rc == -EAGAIN || rc == -ENOMEM) && mine) {
        withdraw(r, EAGAIN, go);
        withdrawn->push_back(r);
      } else {
        // aio2 refused the request itself (a bad descriptor, a negative
        // offset), or, for one queued earlier, had no room: that is its
        // result, as if the call had returned it.
        finish(r, rc == -ENOMEM ? -EAGAIN : rc, nullptr, go);
        release(r);
      }
    }
  }
}

void engine::withdraw(request *r, int err, request_list *ready) {
  shard &s = shard_of(r->fd);
  std::lock_guard<std::mutex> lk(s.mu);
  unlink_locked(linked_entry_locked(s, r->fd), r, ready);
  store_status(r->cb, -1, err);
}

void engine::unlink_locked(fd_entry &e, request *r, request_list *ready) {
  r->completed = true;
  e.all.unlink(r);
  if (r->held) {
    e.held.unlink(r);
    r->held = false;
  }
  if (r->kind == op::write) e.writes.unlink(r);
  // Held requests start in order, each once no write before it is left.
  while (!e.held.empty()) {
    request *h = e.held.front();
    const uint64_t oldest = e.writes.empty() ? UINT64_MAX : e.writes.front()->wseq;
    if (oldest < h->wseq) break;
    e.held.pop_front();
    h->held = false;
    ready->push_back(h);
  }
}

void engine::record_locked(const request *r, int64_t res, const aio2_event *ev,
                           aio2_compat::trace_request *out) const {
  aio2_compat::trace_request &rec = *out;
  rec = aio2_compat::trace_request{};
  rec.ctx = trace_ctx_;
  rec.op_space = aio2_compat::kOpSyscall;
  rec.fd = r->fd;
  rec.user_data = reinterpret_cast<uint64_t>(r->cb);
  // The system call the request ran (or would have run).
  switch (r->kind) {
    case op::read: rec.op = r->stream ? SYS_read : SYS_pread64; break;
    case op::write: rec.op = r->stream ? SYS_write : SYS_pwrite64; break;
    case op::fsync: rec.op = SYS_fsync; break;
    case op::fdatasync: rec.op = SYS_fdatasync; break;
  }
  if (r->kind == op::read || r->kind == op::write) {
    rec.nbytes = r->len;
    if (!r->stream) rec.offset = static_cast<uint64_t>(r->offset);
  }
  if (ev != nullptr) {
    aio2_compat::fill_results(rec, *ev);
  } else {
    for (uint8_t &st : rec.status) st = aio2_compat::kStatusMissing;
    if (res == -ECANCELED) rec.flags |= aio2_compat::kReqCanceled;
  }
  rec.res = res == -EINTR && r->cancel_requested ? -ECANCELED : res;
}

bool engine::finish(request *r, int64_t res, const aio2_event *ev, request_list *ready) {
  shard &s = shard_of(r->fd);
  completion c;
  bool done = false;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    fd_entry &e = linked_entry_locked(s, r->fd);
    // The record goes to the trace before the status is stored: a program
    // that exits as soon as it sees its requests done (fio's jobs _exit)
    // leaves every record in the file. Lock order: shard, then the trace
    // writer's (fork's prepare handlers take them in that order too).
    if (trace_ != nullptr) {
      aio2_compat::trace_request rec;
      record_locked(r, res, ev, &rec);
      trace_->append(&rec, 1);
      trace_records_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!r->completed) {
      unlink_locked(e, r, ready);
      int64_t ret = 0;
      if (res == -ECANCELED || (res == -EINTR && r->cancel_requested)) {
        ret = -1;
        c.error = ECANCELED;
      } else if (res < 0) {
        ret = -1;
        c.error = static_cast<int>(-res);
      } else {
        ret = res;
      }
      // The status is stored under the lock, so that fork finds every
      // request either on its descriptor's list or with its status.
      store_status(r->cb, ret, c.error);
      c.sev = r->sev;
      c.group = r->group;
      done = true;
    }
  }
  if (done) deliver(c);
  return done;
}

void engine::deliver(const completion &c) {
  notify(c.sev);
  lio_group *g = c.group;
  if (g == nullptr) return;
  if (c.error != 0) g->failed.store(1, std::memory_order_relaxed);
  // Release: the statuses and `failed` before it; acquire: the completer
  // that reaches zero sees every other completer's.
  if (g->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) lio_done(g);
}

void lio_done(lio_group *g) {
  if (g->wait) word_wake(&g->remaining);
  else notify(g->sev);
  lio_unref(g);
}

void lio_unref(lio_group *g) {
  if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete g;
}

void *engine::completion_main(void *self) {
  static_cast<engine *>(self)->completion_loop();
  return nullptr;
}

void engine::completion_loop() {
  unsigned char *const buf = events_buf_.get();
  const struct timespec zero {};
  // How long to sleep in aio2_getevents with events owed: doubled while
  // none comes (a read blocked on a socket), so that an idle wait costs
  // few wake-ups, and back to the start on the next event.
  int64_t wait_ms = kGeteventsWaitMinMs;
  for (;;) {
    const uint32_t seq = work_seq_.load(std::memory_order_acquire);
    if (pending_.load(std::memory_order_seq_cst) <= 0) {
      // Nothing owed: sleep outside aio2 until a submitter leaves events
      // owed.
      sleeping_.store(1, std::memory_order_seq_cst);
      if (pending_.load(std::memory_order_seq_cst) <= 0) word_wait(&work_seq_, seq, nullptr);
      sleeping_.store(0, std::memory_order_relaxed);
      continue;
    }
    ssize_t n = aio2_getevents(ctx_, 1, buf, kEventBuffer, &zero);
    if (n == 0) {
      const struct timespec t = {static_cast<time_t>(wait_ms / 1000), static_cast<long>(wait_ms % 1000) * 1000000L};
      n = aio2_getevents(ctx_, 1, buf, kEventBuffer, &t);
      if (n == 0) {
        wait_ms = std::min<int64_t>(wait_ms * 2, kGeteventsWaitMaxMs);
        continue;
      }
    }
    if (n == -EINTR) continue;
    if (n < 0) {
      message("the completion thread cannot reap aio2's events; requests in flight will not complete");
      return;
    }
    wait_ms = kGeteventsWaitMinMs;
    handle_events(buf, static_cast<size_t>(n));
    epoch_publish();
  }
}

size_t engine::handle_events(const unsigned char *buf, size_t n) {
  size_t count = 0;
  for (const aio2_event *ev = aio2_event_next(buf, n, nullptr); ev != nullptr; ev = aio2_event_next(buf, n, ev))
    count++;
  // Lowered before the events are handled: handling may start requests
  // (held ones, a pipe's read again), which raise it again.
  pending_.fetch_sub(static_cast<int64_t>(count), std::memory_order_seq_cst);
  for (const aio2_event *ev = aio2_event_next(buf, n, nullptr); ev != nullptr; ev = aio2_event_next(buf, n, ev))
    handle_event(ev);
  return count;
}

void engine::reap_here() {
  alignas(8) unsigned char buf[kReapHereBuffer];
  const struct timespec zero {};
  bool any = false;
  for (;;) {
    int64_t got = aio2_reap_events(ring_, buf, sizeof buf);
    // Events on the overflow list (or held by io_uring) need a call.
    if (got == -EAGAIN) got = aio2_getevents(ctx_, 0, buf, sizeof buf, &zero);
    if (got <= 0) break;
    any |= handle_events(buf, static_cast<size_t>(got)) > 0;
  }
  if (any) epoch_publish();
  kick();
}

void engine::kick() {
  if (pending_.load(std::memory_order_seq_cst) > 0 && sleeping_.load(std::memory_order_seq_cst) != 0) {
    work_seq_.fetch_add(1, std::memory_order_seq_cst);
    word_wake(&work_seq_);
  }
}

void engine::handle_event(const aio2_event *ev) {
  auto *r = reinterpret_cast<request *>(ev->user_data);
  if (ev->res == -ESPIPE && (r->kind == op::read || r->kind == op::write) && !r->stream) {
    // A descriptor that cannot seek (a pipe, a socket): the read or write
    // happens at its position instead, as glibc does.
    r->stream = true;
    request_list again;
    again.push_back(r);
    start(&again, 0, nullptr);
    return;
  }
  request_list ready;
  finish(r, ev->res, ev, &ready);
  release(r);
  if (!ready.empty()) start(&ready, 0, nullptr);
}

int engine::cancel(int fd, struct aiocb *cb) {
  // Requests aio2 could not cancel before they ran are interrupted where
  // they run (a blocked read returns EINTR, reported as ECANCELED). The
  // call waits up to kCancelWaitNs for them, asking again as it waits: a
  // request may be between two attempts (a read of a pipe moving from
  // pread to read), and a signal may land before its call blocks.
  shard &s = shard_of(fd);
  const uint64_t limit_ns = now_ns() + kCancelWaitNs;
  // The vectors get their room in the first pass, under the lock, before
  // anything changes (each later pass holds a subset of the targets): a
  // call that cannot have it answers EAGAIN having cancelled nothing.
  std::vector<request *> targets;  // the requests in flight at the first pass
  std::vector<struct aiocb *> asked;
  std::vector<request *> this_pass;
  std::vector<completion> done;
  size_t canceled = 0;
  bool first = true;
  for (;;) {
    request_list ready, never_ran;
    size_t running = 0;
    this_pass.clear();
    done.clear();
    {
      std::lock_guard<std::mutex> lk(s.mu);
      auto it = s.fds.find(fd);
      if (it != s.fds.end()) {
        fd_entry &e = it->second;
        if (first) {
          size_t matching = 0;
          for (request *r = e.all.front(); r != nullptr; r = e.all.next(r))
            if (cb == nullptr || r->cb == cb) matching++;
          try {
            if (matching != 0) compat_may_throw();
            targets.reserve(matching);
            asked.reserve(matching);
            this_pass.reserve(matching);
            done.reserve(matching);
          } catch (const std::bad_alloc &) {
            errno = EAGAIN;
            return -1;
          }
        }
        for (request *r = e.all.front(); r != nullptr; r = e.all.next(r)) {
          if (cb != nullptr && r->cb != cb) continue;
          if (first) targets.push_back(r);  // within the room reserved
          else if (std::find(targets.begin(), targets.end(), r) == targets.end()) continue;
          this_pass.push_back(r);  // a subset of the targets
        }
        for (request *r : this_pass) {
          const bool was_held = r->held;
          if (was_held) {
            if (trace_ != nullptr) {
              // Before its status, as in finish().
              aio2_compat::trace_request rec;
              record_locked(r, -ECANCELED, nullptr, &rec);
              trace_->append(&rec, 1);
              trace_records_.fetch_add(1, std::memory_order_relaxed);
            }
          } else if (aio2_cancel(ctx_, reinterpret_cast<uint64_t>(r)) != 0) {
            // Running (interrupted where it can be), or its event is on
            // its way: its status tells.
            r->cancel_requested = true;
            if (std::find(asked.begin(), asked.end(), r->cb) == asked.end())
              asked.push_back(r->cb);  // at most one per target
            running++;
            continue;
          }
          // It will not run: cancelled now. A request aio2 had is released
          // when its event (-ECANCELED) arrives; a held one, never given to
          // aio2, here (off `held` now, so its link is free).
          unlink_locked(e, r, &ready);
          if (was_held) never_ran.push_back(r);
          store_status(r->cb, -1, ECANCELED);
          completion c;
          c.error = ECANCELED;
          c.sev = r->sev;
          c.group = r->group;
          done.push_back(c);  // at most one per target
        }
      }
    }
    for (const completion &c : done) deliver(c);
    if (!done.empty()) epoch_publish();
    while (request *r = never_ran.pop_front()) release(r);
    if (!ready.empty()) {
      start(&ready, 0, nullptr);
      kick();
    }
    canceled += done.size();
    if (first && targets.empty()) {
      if (cb == nullptr || get_error(cb) != EINPROGRESS) return AIO_ALLDONE;
      errno = EINVAL;  // in progress, but not a request of this descriptor
      return -1;
    }
    first = false;
    const uint64_t now = now_ns();
    if (running == 0 || now >= limit_ns) break;
    // Wait for a completion, a millisecond at most, then ask again.
    const uint64_t until = std::min(now + 1000 * 1000, limit_ns);
    const struct timespec step = {static_cast<time_t>(until / 1000000000u),
                                  static_cast<long>(until % 1000000000u)};
    const uint32_t seen = epoch_load();
    bool pending = false;
    for (struct aiocb *a : asked)
      if (get_error(a) == EINPROGRESS) pending = true;
    if (pending) epoch_wait(seen, &step, false);
  }
  size_t still = 0;
  for (struct aiocb *a : asked) {
    const int err = get_error(a);
    if (err == ECANCELED) canceled++;
    if (err == EINPROGRESS) still++;
  }
  if (still > 0) return AIO_NOTCANCELED;
  return canceled > 0 ? AIO_CANCELED : AIO_ALLDONE;
}

void engine::prepare_fork() {
  for (shard &s : shards_) s.mu.lock();
}

void engine::parent_after_fork() {
  for (shard &s : shards_) s.mu.unlock();
}

size_t engine::child_after_fork() {
  // The shard locks are held (prepare_fork) and stay so: nobody uses this
  // engine again.
  size_t n = 0;
  for (shard &s : shards_)
    for (auto &kv : s.fds)
      for (request *r = kv.second.all.front(); r != nullptr; r = kv.second.all.next(r)) {
        store_status(r->cb, -1, ECANCELED);
        n++;
      }
  return n;
}

void engine::trace_exit() noexcept {
  if (trace_ == nullptr) return;
  aio2_compat::trace_context_end end{};
  end.ctx = trace_ctx_;
  end.how = aio2_compat::kEndExit;
  end.requests = trace_requests_.load(std::memory_order_relaxed);
  end.records = trace_records_.load(std::memory_order_relaxed);
  end.unobserved = end.requests > end.records ? end.requests - end.records : 0;
  end.closed_ns = aio2_compat::trace_now_ns();
  trace_->context_closed(end);
  trace_->flush();
}

void fork_notice_slow() {
  const size_t lost = g_fork_lost.exchange(0, std::memory_order_relaxed);
  if (lost == 0) return;
  char text[200];
  std::snprintf(text, sizeof text,
                "fork: %zu request%s in flight in the parent %s not inherited; in the child %s "
                "aiocb%s report%s ECANCELED",
                lost, lost == 1 ? "" : "s", lost == 1 ? "is" : "are", lost == 1 ? "its" : "their",
                lost == 1 ? "" : "s", lost == 1 ? "s" : "");
  message(text);
}

bool fork_notice_due() noexcept { return g_fork_lost.load(std::memory_order_relaxed) != 0; }

engine *engine_peek() { return g_engine.load(std::memory_order_acquire); }

engine *engine_get() {
  engine *e = g_engine.load(std::memory_order_acquire);
  if (e != nullptr) return e;
  std::lock_guard<std::mutex> lk(g_init_mu);
  e = g_engine.load(std::memory_order_relaxed);
  if (e != nullptr) return e;
  if (!g_atfork_done) {
    // The writer first: its fork handlers are registered before these, so
    // that fork's prepare takes the shard locks before the writer's lock,
    // the order finish() takes them in.
    g_trace = aio2_compat::trace_writer::from_env("aio2-posix", aio2_compat::kSourcePosix);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    if (g_trace != nullptr) std::atexit(trace_at_exit);
    g_atfork_done = true;
  }
  auto *made = aio2::fault::fail(aio2::fault::site::compat_alloc)
                   ? nullptr
                   : new (std::nothrow) engine(g_init_given ? &g_init : nullptr);
  const int err = made == nullptr ? ENOMEM : made->ok();
  if (err != 0) {
    delete made;
    if (!g_failure_reported.exchange(true, std::memory_order_relaxed)) {
      char text[160];
      std::snprintf(text, sizeof text, "aio2 cannot be set up (%s); POSIX AIO calls fail with errno %s",
                    std::strerror(err), err == EAGAIN ? "EAGAIN" : "set");
      message(text);
    }
    errno = err == ENOMEM ? EAGAIN : err;
    return nullptr;
  }
  g_engine.store(made, std::memory_order_release);
  return made;
}

void set_init(const struct aioinit *init) {
  std::lock_guard<std::mutex> lk(g_init_mu);
  if (g_engine.load(std::memory_order_relaxed) != nullptr) return;  // as glibc: before the first request only
  g_init = *init;
  g_init_given = true;
}

}  // namespace aio2::posix
