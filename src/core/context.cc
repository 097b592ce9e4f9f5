// SPDX-License-Identifier: MIT
#include "core/context.h"

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>

#include "attr/builtins.h"
#include "exec/raw_syscall.h"
#include "sys/syscall_table.h"

namespace aio2 {

namespace {

constexpr uint32_t kSleepers = 1;  // bit 0 of the futex word: a reaper sleeps on it
constexpr size_t kChunk = 64;  // slots allocated at a time
constexpr size_t kSubmitBatch = 64;  // requests handed to the pool per lock

long futex_wait(std::atomic<uint32_t> *word, uint32_t expect, const timespec *rel) noexcept {
  return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expect, rel,
                 nullptr, 0) == 0
             ? 0
             : -errno;
}

void futex_wake_all(std::atomic<uint32_t> *word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

int64_t now_ns() noexcept { return static_cast<int64_t>(attr::monotonic_ns()); }

unsigned count_events(const unsigned char *p, size_t bytes) noexcept {
  unsigned n = 0;
  for (size_t off = 0; off < bytes; n++) {
    aio2_ring_rec h;
    std::memcpy(&h, p + off, sizeof h);
    off += h.len;
  }
  return n;
}

}  // namespace

context::context(uint32_t type, uint32_t flags, const limits &lim) noexcept
    : type_(type),
      flags_(flags),
      lim_(lim),
      pool_(lim.bounded_workers, lim.unbounded_workers, lim.idle_ms, &context::on_complete, this) {}

context::~context() {
  close();
  if (ring_) aio2_ring_unmap(ring_);
  if (efd_ >= 0) ::close(efd_);
}

int context::start() noexcept {
  if (type_ != AIO2_CTX_RING) return 0;
  // Many workers post (producers) and any number of threads reap.
  if (int err = aio2_ring_new(lim_.ring_bytes, 0, 0, &ring_)) return err;
  if (flags_ & AIO2_SETUP_EVENTFD) {
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) return -errno;
  }
  return 0;
}

size_t context::take_slots(request **out, size_t n) noexcept {
  std::lock_guard lk(slots_mu_);
  size_t got = 0;
  while (got < n) {
    if (free_slots_ == nullptr) {
      try {
        chunks_.emplace_back(new request[kChunk]);
      } catch (...) {
        break;
      }
      request *chunk = chunks_.back().get();
      for (size_t i = 0; i < kChunk; i++) {
        chunk[i].next = free_slots_;
        free_slots_ = &chunk[i];
      }
    }
    request *r = free_slots_;
    free_slots_ = r->next;
    r->next = nullptr;
    out[got++] = r;
  }
  return got;
}

void context::put_slot(request *r) noexcept {
  r->state = req_state::free;
  std::lock_guard lk(slots_mu_);
  r->next = free_slots_;
  free_slots_ = r;
}

ssize_t context::submit(const void *reqs, size_t bytes) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if ((reqs == nullptr && bytes) || (reinterpret_cast<uintptr_t>(reqs) & 7u)) return -EINVAL;
  const auto *p = static_cast<const unsigned char *>(reqs);
  request *batch[2][kSubmitBatch];
  size_t n[2] = {0, 0};
  auto flush = [&](int cls) {
    if (n[cls]) pool_.enqueue(batch[cls], n[cls], cls == 1);
    n[cls] = 0;
  };
  // Slots are taken in batches (one lock per batch, not per request) and
  // the unused rest given back at the end.
  request *spare[kSubmitBatch];
  size_t nspare = 0;
  size_t off = 0;
  int err = 0;
  while (off < bytes) {
    parsed_request pr;
    if ((err = parse_request(p + off, bytes - off, AIO2_PATH_POOL, &pr)) != 0) break;
    if (inflight_.fetch_add(1, std::memory_order_relaxed) >= lim_.max_inflight) {
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      err = -EAGAIN;
      break;
    }
    if (nspare == 0) {
      const size_t want = (bytes - off) / sizeof(aio2_iocb);
      nspare = take_slots(spare, want < kSubmitBatch ? (want ? want : 1) : kSubmitBatch);
    }
    request *r = nspare ? spare[--nspare] : nullptr;
    if (r != nullptr) {
      try {
        r->attrs.assign(pr.attrs, pr.attrs + pr.attr_bytes);  // keeps capacity across reuse
      } catch (...) {
        put_slot(r);
        r = nullptr;
      }
    }
    if (r == nullptr) {
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      err = -ENOMEM;
      break;
    }
    r->io = *pr.io;
    r->path = AIO2_PATH_POOL;
    // Attribute handlers, and their on_submit hooks, which may refuse it.
    err = r->attr_state.prepare(r->io, r->attrs.data(), pr.attr_bytes, AIO2_PATH_POOL);
    if (err) {
      put_slot(r);
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      break;
    }
    r->cancel_requested.store(false, std::memory_order_relaxed);
    r->generation.fetch_add(1, std::memory_order_relaxed);
    const int cls = exec::pool::wants_unbounded(r->io, *pr.info) ? 1 : 0;
    batch[cls][n[cls]++] = r;
    if (n[cls] == kSubmitBatch) flush(cls);
    off += pr.io->len;
  }
  flush(0);
  flush(1);
  while (nspare) put_slot(spare[--nspare]);
  if (off == 0 && err) return err;
  return static_cast<ssize_t>(off);
}

void context::on_complete(void *self, request *r) noexcept {
  static_cast<context *>(self)->complete(r);
}

bool context::push_to_ring(const request *r) noexcept {
  const auto len = static_cast<uint32_t>(r->event.size());
  aio2_ring_rec *rec = nullptr;
  if (aio2_ring_reserve(ring_, len, &rec) != 0) return false;  // full, or larger than a record
  aio2_ring_write(ring_, rec, 0, r->event.data() + AIO2_RING_REC_HDR, len - AIO2_RING_REC_HDR);
  aio2_ring_commit(ring_, rec, r->event_flags);
  return true;
}

void context::complete(request *r) noexcept {
  r->attr_state.post(r->io, r->attrs.data(), r->res);
  const uint32_t len = static_cast<uint32_t>(sizeof(aio2_event)) + r->attr_state.result_bytes();
  r->event.resize(len);  // no allocation once the slot has held an event this large
  write_event(r->event.data(), r->io.user_data, r->res, r->event_flags, r->attr_state);
  // While older events wait on the overflow list, newer ones queue behind
  // them, so reapers see completions in posting order.
  if (ovf_count_.load(std::memory_order_acquire) == 0 && push_to_ring(r)) {
    put_slot(r);
    inflight_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    std::lock_guard lk(ovf_mu_);
    r->state = req_state::overflow;
    r->next = nullptr;
    if (ovf_tail_) ovf_tail_->next = r;
    else ovf_head_ = r;
    ovf_tail_ = r;
    ovf_count_.fetch_add(1, std::memory_order_release);
    aio2_ring_owner_flags_set(ring_, AIO2_RING_OVERFLOW);
  }
  wake();
}

void context::wake() noexcept {
  // Count the post (+2: bit 0 is the sleepers bit). Release: a reaper that
  // sees the new value sees the event. Only the poster that finds the
  // sleepers bit set clears it and makes the wake-up system call; the rest
  // make none.
  if (posted_.fetch_add(2, std::memory_order_acq_rel) & kSleepers) {
    posted_.fetch_and(~kSleepers, std::memory_order_acq_rel);
    futex_wake_all(&posted_);
  }
  if (efd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(efd_, &one, sizeof one);  // cannot fill: 2^64-2
  }
}

int context::drain(unsigned char *buf, size_t bytes, size_t &got, unsigned &events,
                   uint32_t *need) noexcept {
  for (;;) {
    const int64_t n = aio2_ring_reap(ring_, buf + got, bytes - got, 0);
    if (n == 0) break;
    if (n == -ENOBUFS) {
      *need = aio2_ring_next_len(ring_);
      return -ENOBUFS;
    }
    if (n < 0) return static_cast<int>(n);
    events += count_events(buf + got, static_cast<size_t>(n));
    got += static_cast<size_t>(n);
  }
  if (ovf_count_.load(std::memory_order_acquire) == 0) return 0;
  std::lock_guard lk(ovf_mu_);
  while (ovf_head_ != nullptr) {
    request *r = ovf_head_;
    const size_t len = r->event.size();
    if (len > bytes - got) {
      *need = static_cast<uint32_t>(len);
      return -ENOBUFS;
    }
    std::memcpy(buf + got, r->event.data(), len);
    got += len;
    events++;
    ovf_head_ = r->next;
    if (ovf_head_ == nullptr) ovf_tail_ = nullptr;
    ovf_count_.fetch_sub(1, std::memory_order_release);
    put_slot(r);
    inflight_.fetch_sub(1, std::memory_order_relaxed);
  }
  aio2_ring_owner_flags_clear(ring_, AIO2_RING_OVERFLOW);
  return 0;
}

ssize_t context::getevents(unsigned min_events, void *buf, size_t bytes,
                           const struct timespec *timeout) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if (buf == nullptr || (reinterpret_cast<uintptr_t>(buf) & 7u)) return -EINVAL;
  if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
    return -EINVAL;
  auto *out = static_cast<unsigned char *>(buf);
  // A timeout too long to add to the clock (centuries) waits for ever.
  constexpr int64_t kMaxSeconds = 100ll * 365 * 24 * 3600;
  if (timeout && timeout->tv_sec > kMaxSeconds) timeout = nullptr;
  const int64_t deadline =
      timeout ? now_ns() + timeout->tv_sec * 1000000000ll + timeout->tv_nsec : 0;
  size_t got = 0;
  unsigned events = 0;
  for (;;) {
    // Sampled before looking, so a post after the look changes it and the
    // futex wait below returns at once.
    const uint32_t seen = posted_.load(std::memory_order_acquire);
    uint32_t need = 0;
    const int err = drain(out, bytes, got, events, &need);
    if (err == -ENOBUFS) {
      if (got) return static_cast<ssize_t>(got);
      if (bytes >= sizeof need) std::memcpy(out, &need, sizeof need);
      return -EINVAL;
    }
    if (err < 0) return got ? static_cast<ssize_t>(got) : err;
    if (events >= min_events || closing_.load(std::memory_order_acquire))
      return static_cast<ssize_t>(got);
    timespec rel{}, *relp = nullptr;
    if (timeout) {
      const int64_t left = deadline - now_ns();
      if (left <= 0) return static_cast<ssize_t>(got);
      rel.tv_sec = left / 1000000000;
      rel.tv_nsec = left % 1000000000;
      relp = &rel;
    }
    // Announce a sleeper, unless something was posted since `seen` (then
    // look again). The futex compares the word with what we announced, so
    // a post after this point either changes it (no sleep) or finds the
    // sleepers bit and wakes us.
    const uint32_t want = seen | kSleepers;
    uint32_t cur = seen;
    if (cur != want &&
        !posted_.compare_exchange_strong(cur, want, std::memory_order_acq_rel,
                                         std::memory_order_acquire) &&
        cur != want) {
      continue;  // posted since we looked (cur == want: another reaper set the bit)
    }
    const long rc = futex_wait(&posted_, want, relp);
    if (rc == -EINTR && got == 0) return -EINTR;
  }
}

int context::cancel(uint64_t user_data) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  switch (pool_.cancel(user_data)) {
    case exec::pool::cancel_result::queued: return 0;
    case exec::pool::cancel_result::running: return -EALREADY;
    default: return -ENOENT;
  }
}

void context::close() noexcept {
  if (closing_.exchange(true)) return;
  posted_.fetch_add(2, std::memory_order_acq_rel);
  futex_wake_all(&posted_);
  pool_.shutdown();
}

ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes) noexcept {
  if (req == nullptr || (reinterpret_cast<uintptr_t>(req) & 7u)) return -EINVAL;
  if (ev == nullptr || (reinterpret_cast<uintptr_t>(ev) & 7u)) return -EINVAL;
  parsed_request pr;
  const size_t len = req->len < sizeof *req ? sizeof *req : req->len;
  const auto *bytes = reinterpret_cast<const unsigned char *>(req);
  if (int err = parse_request(bytes, len, AIO2_PATH_CALL, &pr)) return err;
  // Each thread reuses one attribute state, so a call allocates nothing
  // once the thread has made one as large; a hook that calls aio2_call from
  // inside a call gets a fresh one.
  thread_local attr::request_attrs reused;
  thread_local bool reused_busy = false;
  attr::request_attrs fresh;
  const bool mine = !reused_busy;
  attr::request_attrs &attrs = mine ? reused : fresh;
  reused_busy = true;
  struct release {
    bool mine;
    ~release() {
      if (mine) reused_busy = false;
    }
  } release_on_return{mine};
  if (int err = attrs.prepare(*req, pr.attrs, pr.attr_bytes, AIO2_PATH_CALL)) return err;
  // Refuse before running when even the largest possible event would not fit.
  if (ev_bytes < sizeof(aio2_event) + attrs.max_result_bytes()) return -ENOBUFS;
  int64_t res = 0;
  if (attrs.empty() || attrs.before(*req, pr.attrs, 0, &res))
    res = exec::raw_syscall(static_cast<long>(req->nr), req->args);
  attrs.after(*req, pr.attrs, 0, res);
  attrs.post(*req, pr.attrs, res);
  write_event(static_cast<unsigned char *>(ev), req->user_data, res, 0, attrs);
  return static_cast<ssize_t>(sizeof(aio2_event) + attrs.result_bytes());
}

}  // namespace aio2
