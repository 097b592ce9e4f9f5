// SPDX-License-Identifier: MIT
// Observation of libaio contexts: the submission table, the observer thread
// and the context's end (observe.h).
//
// Locks, outermost first: g_mu (the list of observed contexts; the
// observer holds it for a pass over them), a context's table mutex, the
// trace writer's own. Nothing is written to the trace under a table mutex.
#include "compat/libaio/observe.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "compat/trace_file.h"

namespace aio2_libaio {

namespace {

using aio2_compat::trace_request;
using aio2_compat::trace_writer;

// The aio2 ring of an observed context: about 16000 events of 128 bytes,
// some 15 ms of completions at a million a second, while the observer
// looks every millisecond or so.
constexpr uint64_t kRingBytes = 2u << 20;
// How long the observer sleeps between passes: kBusyNs while events come,
// kIdleNs after a second without any.
constexpr int64_t kBusyNs = 1000000, kIdleNs = 4000000;
constexpr unsigned kIdlePasses = 1000;
// Records wait in the writer's buffer at most this long while the program
// is quiet.
constexpr uint64_t kFlushNs = 1000000000;
// io_destroy waits this long for requests still in flight, once cancelled.
constexpr int64_t kDestroyWaitNs = 2000000000;
// Bytes of events taken from a ring at a time.
constexpr size_t kDrainBytes = 64 * 1024;

// What io_submit copied from an iocb. key: the iocb's address (0: a free
// slot, 1: a removed one).
struct entry {
  uintptr_t key;
  uint64_t stamp;  // CLOCK_MONOTONIC before the io_submit that took it
  uint64_t offset;
  uint64_t nbytes;
  int32_t fd;
  uint16_t opcode;
  uint8_t flags;  // aio2_compat::kReq*
};
constexpr uintptr_t kFree = 0, kRemoved = 1;

// Entries by iocb address, open addressing with linear probing. An address
// may have several entries: a program that reuses an iocb as soon as it has
// its io_event submits it again before the observer has read the first
// event. Guarded by mu.
class submit_table {
 public:
  std::mutex mu;

  bool init(size_t min_entries) noexcept {
    size_t cap = 64;
    while (cap < min_entries * 2) cap *= 2;
    return resize(cap);
  }

  // false when there is no memory for it.
  bool insert(const entry &e) noexcept {
    if ((live_ + removed_ + 1) * 4 > slots_.size() * 3 &&
        !resize(live_ * 2 >= slots_.size() ? slots_.size() * 2 : slots_.size()))
      return false;
    for (size_t i = home(e.key);; i = (i + 1) & mask_) {
      entry &s = slots_[i];
      if (s.key == kFree || s.key == kRemoved) {
        removed_ -= s.key == kRemoved;
        s = e;
        live_++;
        return true;
      }
    }
  }

  // Removes the entry of `key` made at `stamp` (a request io_submit did not
  // accept).
  void remove(uintptr_t key, uint64_t stamp) noexcept {
    for (size_t i = home(key); slots_[i].key != kFree; i = (i + 1) & mask_) {
      if (slots_[i].key == key && slots_[i].stamp == stamp) {
        drop(slots_[i]);
        return;
      }
    }
  }

  // The entry of the event of `key` submitted at `submitted` (0: unknown):
  // the latest made no later, or without a time the oldest. It is removed,
  // and with `orphans` also the older ones of the same key (their events
  // were dropped), counted in `orphans_removed`.
  bool take(uintptr_t key, uint64_t submitted, bool orphans, entry &out,
            uint64_t &orphans_removed) noexcept {
    entry *best = nullptr, *oldest = nullptr;
    for (size_t i = home(key); slots_[i].key != kFree; i = (i + 1) & mask_) {
      entry &s = slots_[i];
      if (s.key != key) continue;
      if (!oldest || s.stamp < oldest->stamp) oldest = &s;
      if (submitted && s.stamp <= submitted && (!best || s.stamp > best->stamp)) best = &s;
    }
    if (!best) best = oldest;
    if (!best) return false;
    out = *best;
    drop(*best);
    if (orphans) {
      for (size_t i = home(key); slots_[i].key != kFree; i = (i + 1) & mask_) {
        if (slots_[i].key == key && slots_[i].stamp < out.stamp) {
          drop(slots_[i]);
          orphans_removed++;
        }
      }
    }
    return true;
  }

  size_t live() const noexcept { return live_; }

  // The addresses of every entry.
  std::vector<uintptr_t> keys() const {
    std::vector<uintptr_t> v;
    for (const entry &s : slots_)
      if (s.key != kFree && s.key != kRemoved) v.push_back(s.key);
    return v;
  }

 private:
  size_t home(uintptr_t key) const noexcept {
    return static_cast<size_t>((static_cast<uint64_t>(key) * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  void drop(entry &s) noexcept {
    s.key = kRemoved;
    live_--;
    removed_++;
  }
  bool resize(size_t cap) noexcept {
    std::vector<entry> old;
    try {
      old.swap(slots_);
      slots_.assign(cap, entry{});
    } catch (...) {
      old.swap(slots_);
      return false;
    }
    mask_ = cap - 1;
    shift_ = 64u - static_cast<unsigned>(__builtin_ctzll(cap));
    live_ = removed_ = 0;
    for (const entry &e : old) {
      if (e.key == kFree || e.key == kRemoved) continue;
      size_t i = home(e.key);
      while (slots_[i].key != kFree) i = (i + 1) & mask_;
      slots_[i] = e;
      live_++;
    }
    return true;
  }

  std::vector<entry> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t live_ = 0, removed_ = 0;
};

// The process's observed contexts and the observer thread.
std::mutex g_mu;
std::condition_variable g_cv;
std::vector<observed *> g_live;  // guarded by g_mu
bool g_thread_running = false;   // guarded by g_mu
bool g_stop = false;             // guarded by g_mu
pthread_t g_thread;
bool g_hooks_installed = false;  // guarded by g_mu
// Counts forks: a child's inherited contexts are the parent's, not to be
// observed (their observer thread is not in the child).
std::atomic<unsigned> g_generation{0};

trace_writer *g_writer = nullptr;  // set once by observe_prepare
bool g_writer_read = false;
std::mutex g_prepare_mu;

}  // namespace

struct observed {
  aio2_ctx *ctx = nullptr;
  aio2_ring *ring = nullptr;
  uint32_t id = 0;  // the context's number in the trace
  uint32_t max_events = 0;
  uint64_t ring_bytes = 0;
  unsigned generation = 0;
  submit_table table;
  std::atomic<uint64_t> requests{0};  // accepted by io_submit
  // Guarded by the table's mutex:
  uint64_t untracked = 0;  // accepted but not in the table (no memory)
  uint64_t orphans_removed = 0;
  // Written by whoever drains (the observer, under g_mu, or io_destroy
  // once the context has left g_live):
  uint64_t records = 0, unmatched = 0;
};

namespace {

// Requests in the table that may still complete: the entries, less those
// whose events were dropped and are still there. Under the table's mutex.
uint64_t in_flight_locked(observed *o) {
  const uint64_t dropped = aio2_legacy_observe_dropped(o->ctx);
  const uint64_t orphans = dropped > o->orphans_removed ? dropped - o->orphans_removed : 0;
  const uint64_t live = o->table.live();
  return live > orphans ? live - orphans : 0;
}

// Turns the events in `buf` into records and writes them.
void record_events(observed *o, const unsigned char *buf, size_t bytes,
                   std::vector<trace_request> &recs) {
  recs.clear();
  const bool orphans = aio2_legacy_observe_dropped(o->ctx) != 0;
  {
    std::lock_guard lk(o->table.mu);
    for (const aio2_event *ev = aio2_event_next(buf, bytes, nullptr); ev;
         ev = aio2_event_next(buf, bytes, ev)) {
      trace_request r{};
      r.ctx = o->id;
      r.user_data = ev->user_data;
      aio2_compat::fill_results(r, *ev);
      entry e{};
      const uint64_t submitted =
          r.status[aio2_compat::kAttrTiming] == AIO2_ATTR_OK ? r.timing.submitted_ns : 0;
      if (o->table.take(static_cast<uintptr_t>(ev->user_data), submitted, orphans, e,
                        o->orphans_removed)) {
        r.op = e.opcode;
        r.op_space = aio2_compat::kOpIocb;
        r.flags |= e.flags;
        r.fd = e.fd;
        r.offset = e.offset;
        r.nbytes = e.nbytes;
      } else {
        r.op_space = aio2_compat::kOpUnknown;
        r.fd = -1;
        o->unmatched++;
      }
      recs.push_back(r);
    }
  }
  o->records += recs.size();
  if (!recs.empty()) g_writer->append(recs.data(), recs.size());
}

// Reads every event in o's ring without waiting. Returns the bytes read.
size_t drain(observed *o, std::vector<uint64_t> &buf, std::vector<trace_request> &recs) {
  size_t total = 0;
  auto *b = reinterpret_cast<unsigned char *>(buf.data());
  const size_t cap = buf.size() * sizeof(uint64_t);
  for (;;) {
    int64_t got = aio2_reap_events(o->ring, b, cap);
    if (got == -EAGAIN) {
      static const timespec zero{0, 0};
      got = aio2_getevents(o->ctx, 0, b, cap, &zero);
    }
    if (got <= 0) break;
    record_events(o, b, static_cast<size_t>(got), recs);
    total += static_cast<size_t>(got);
  }
  return total;
}

void *observer_main(void *) {
  std::vector<uint64_t> buf(kDrainBytes / sizeof(uint64_t));
  std::vector<trace_request> recs;
  recs.reserve(kDrainBytes / sizeof(aio2_event));
  unsigned idle = 0;
  std::unique_lock lk(g_mu);
  while (!g_stop) {
    bool busy = false, any = false;
    for (observed *o : g_live) {
      const size_t got = drain(o, buf, recs);
      any = any || got;
      // A ring found a quarter full is looked at again at once.
      busy = busy || got * 4 >= o->ring_bytes;
    }
    idle = any ? 0 : std::min(idle + 1, kIdlePasses);
    g_writer->flush_if_older(kFlushNs);
    if (busy) {  // look again at once, letting io_setup and io_destroy in first
      lk.unlock();
      sched_yield();
      lk.lock();
      continue;
    }
    g_cv.wait_for(lk, std::chrono::nanoseconds(idle >= kIdlePasses ? kIdleNs : kBusyNs),
                  [] { return g_stop; });
  }
  return nullptr;
}

// Starts the observer thread with every signal blocked (signals are the
// program's). Under g_mu.
bool start_thread_locked() {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int err = pthread_create(&g_thread, nullptr, observer_main, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err) return false;
  g_thread_running = true;
  return true;
}

// Writes o's end record. requests = records + unobserved.
void end_record(observed *o, uint32_t how) {
  aio2_compat::trace_context_end e{};
  e.ctx = o->id;
  e.how = how;
  e.requests = o->requests.load(std::memory_order_relaxed);
  e.records = o->records;
  e.unmatched = o->unmatched;
  e.dropped = aio2_legacy_observe_dropped(o->ctx);
  e.unobserved = e.requests > e.records ? e.requests - e.records : 0;
  e.closed_ns = aio2_compat::trace_now_ns();
  g_writer->context_closed(e);
}

// exit(): stops the observer, records what every live context holds, and
// writes their end records and the buffer. The contexts stay (other threads
// may still use them); later events of theirs are not recorded.
void at_exit() {
  std::vector<observed *> live;
  {
    std::unique_lock lk(g_mu);
    if (!g_thread_running) return;
    g_stop = true;
    g_cv.notify_all();
  }
  if (!pthread_equal(pthread_self(), g_thread)) pthread_join(g_thread, nullptr);
  {
    std::lock_guard lk(g_mu);
    g_thread_running = false;
    live.swap(g_live);
  }
  std::vector<uint64_t> buf(kDrainBytes / sizeof(uint64_t));
  std::vector<trace_request> recs;
  for (observed *o : live) {
    drain(o, buf, recs);
    end_record(o, aio2_compat::kEndExit);
  }
  g_writer->flush();
}

// fork(): the child has no observer thread, and the contexts it inherits
// are not observed there (their records are the parent's).
void at_fork_prepare() { g_mu.lock(); }
void at_fork_parent() { g_mu.unlock(); }
void at_fork_child() {
  g_live.clear();
  g_thread_running = false;
  g_stop = false;
  g_generation.fetch_add(1, std::memory_order_relaxed);
  g_mu.unlock();
}

}  // namespace

bool observe_prepare(aio2_params &p) noexcept {
  {
    std::lock_guard lk(g_prepare_mu);
    if (!g_writer_read) {
      g_writer_read = true;
      g_writer = trace_writer::from_env("aio2 libaio", aio2_compat::kSourceLibaio);
    }
  }
  if (!g_writer) return false;
  p.flags |= AIO2_SETUP_LEGACY_OBSERVE;
  p.ring_bytes = kRingBytes;
  return true;
}

observed *observe_attach(aio2_ctx *ctx, const aio2_params &p, uint32_t max_events) noexcept {
  observed *o = new (std::nothrow) observed;
  if (o == nullptr || !o->table.init(max_events)) {
    delete o;
    std::fprintf(stderr, "aio2 libaio: out of memory: this context is not traced\n");
    return nullptr;
  }
  o->ctx = ctx;
  o->ring = aio2_ring_get(ctx);
  o->max_events = max_events;
  o->ring_bytes = p.ring_bytes;
  std::lock_guard lk(g_mu);
  o->generation = g_generation.load(std::memory_order_relaxed);
  if (!g_hooks_installed) {
    g_hooks_installed = true;
    pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    // Registered after the writer's own: runs before it at exit.
    std::atexit(at_exit);
  }
  if (o->ring == nullptr || (!g_thread_running && !start_thread_locked())) {
    std::fprintf(stderr, "aio2 libaio: cannot start the observer thread: this context is not traced\n");
    delete o;
    return nullptr;
  }
  o->id = g_writer->context_opened(p, max_events);
  try {
    g_live.push_back(o);
  } catch (...) {
    delete o;
    return nullptr;
  }
  return o;
}

uint64_t observe_before_submit(observed *o, long nr, struct iocb **ios) noexcept {
  if (o->generation != g_generation.load(std::memory_order_relaxed)) return 0;
  const uint64_t stamp = aio2_compat::trace_now_ns();
  if (nr <= 0 || ios == nullptr) return stamp;
  // No more than max_events can be accepted; the first NULL stops io_submit.
  const long n = std::min<long>(nr, o->max_events);
  std::lock_guard lk(o->table.mu);
  for (long i = 0; i < n && ios[i] != nullptr; i++) {
    const iocb &cb = *ios[i];
    entry e{};
    e.key = reinterpret_cast<uintptr_t>(ios[i]);
    e.stamp = stamp;
    e.fd = static_cast<int32_t>(cb.aio_fildes);
    e.opcode = cb.aio_lio_opcode;
    switch (cb.aio_lio_opcode) {
      case IOCB_CMD_PREADV:
      case IOCB_CMD_PWRITEV:
        e.flags = aio2_compat::kReqVectored;
        [[fallthrough]];
      case IOCB_CMD_PREAD:
      case IOCB_CMD_PWRITE:
        e.offset = static_cast<uint64_t>(cb.aio_offset);
        e.nbytes = cb.aio_nbytes;
        break;
      default:
        break;
    }
    if (!o->table.insert(e)) o->untracked++;
  }
  return stamp;
}

void observe_after_submit(observed *o, long nr, struct iocb **ios, long rc,
                          uint64_t stamp) noexcept {
  if (o->generation != g_generation.load(std::memory_order_relaxed)) return;
  const long accepted = rc > 0 ? rc : 0;
  if (accepted) o->requests.fetch_add(static_cast<uint64_t>(accepted), std::memory_order_relaxed);
  if (nr <= 0 || ios == nullptr) return;
  const long n = std::min<long>(nr, o->max_events);
  if (accepted >= n) return;
  std::lock_guard lk(o->table.mu);
  for (long i = accepted; i < n && ios[i] != nullptr; i++)
    o->table.remove(reinterpret_cast<uintptr_t>(ios[i]), stamp);
}

void observe_detach(observed *o) noexcept {
  bool live = false;
  {
    std::lock_guard lk(g_mu);
    const auto it = std::find(g_live.begin(), g_live.end(), o);
    if (it != g_live.end()) {
      g_live.erase(it);
      live = true;
    }
  }
  // Not live: inherited across fork(), or already ended at exit.
  if (!live || o->generation != g_generation.load(std::memory_order_relaxed)) {
    delete o;
    return;
  }
  // The observer no longer looks at o: this thread reads its ring alone.
  std::vector<uint64_t> buf;
  std::vector<trace_request> recs;
  try {
    buf.resize(kDrainBytes / sizeof(uint64_t));
  } catch (...) {
    end_record(o, aio2_compat::kEndDestroyed);
    g_writer->flush();
    delete o;
    return;
  }
  drain(o, buf, recs);
  // What is still in flight is cancelled, as io_destroy does, and its
  // events waited for (a request that cannot be cancelled is waited for by
  // aio2_destroy; its event is not recorded).
  std::vector<uintptr_t> pending;
  {
    std::lock_guard lk(o->table.mu);
    if (in_flight_locked(o) > 0) {
      try {
        pending = o->table.keys();
      } catch (...) {
      }
    }
  }
  if (!pending.empty()) {
    for (uintptr_t key : pending) {
      struct io_event ev {};
      aio2_legacy_cancel(o->ctx, reinterpret_cast<struct iocb *>(key), &ev);
    }
    const int64_t deadline = static_cast<int64_t>(aio2_compat::trace_now_ns()) + kDestroyWaitNs;
    auto *b = reinterpret_cast<unsigned char *>(buf.data());
    for (;;) {
      {
        std::lock_guard lk(o->table.mu);
        if (in_flight_locked(o) == 0) break;
      }
      const int64_t left = deadline - static_cast<int64_t>(aio2_compat::trace_now_ns());
      if (left <= 0) break;
      const timespec ts{left / 1000000000, left % 1000000000};
      const ssize_t got = aio2_getevents(o->ctx, 1, b, buf.size() * sizeof(uint64_t), &ts);
      if (got < 0 && got != -EINTR) break;
      if (got > 0) record_events(o, b, static_cast<size_t>(got), recs);
    }
  }
  end_record(o, aio2_compat::kEndDestroyed);
  g_writer->flush();
  delete o;
}

}  // namespace aio2_libaio
