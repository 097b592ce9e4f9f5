// SPDX-License-Identifier: MIT
// The C entry points. Each one checks its handle, catches everything and
// returns -errno; the work happens in aio2::core::context.

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "core/context.h"
#include "exec/pool.h"
#include "util/fault.h"

// A handle. Handles are never freed: a destroyed one stays readable and
// answers -EBADF until it is reused by a later aio2_setup, so a stale
// pointer is an error, not a crash (like a closed file descriptor).
// In a child made by fork(), a handle made before the fork answers
// -ECHILD: its executors' threads and its io_uring requests stay with the
// parent.
struct aio2_ctx {
  // kLive while usable. seq_cst with `calls`: an entry point increments
  // calls then reads magic; destroy swaps magic then reads calls. One of the
  // two always sees the other (Dekker), so no call runs on a dying context.
  std::atomic<uint64_t> magic{0};
  std::atomic<uint32_t> calls{0};
  aio2::core::context *impl = nullptr;  // written only while no call can run
  // The process's fork generation when it was set up (written, like impl,
  // before magic becomes kLive).
  uint32_t fork_gen = 0;
  aio2_ctx *next_free = nullptr;  // guarded by the handle registry's mutex
};

namespace {

constexpr uint64_t kLive = 0x6f69613276696c65ull;  // "eliv2aio"
constexpr uint64_t kDead = 0x6f69613264616564ull;  // "dead2aio"

// All handles ever made, and the free ones.
struct handle_registry {
  std::mutex mu;
  std::vector<std::unique_ptr<aio2_ctx>> all;  // guarded by mu
  aio2_ctx *free = nullptr;                    // guarded by mu

  aio2_ctx *take() {
    std::lock_guard lk(mu);
    if (free) {
      aio2_ctx *h = free;
      free = h->next_free;
      return h;
    }
    all.push_back(std::make_unique<aio2_ctx>());
    return all.back().get();
  }
  void give_back(aio2_ctx *h) {
    std::lock_guard lk(mu);
    h->next_free = free;
    free = h;
  }
};

handle_registry &registry() {
  static handle_registry *r = new handle_registry;  // never destroyed: handles outlive exit
  return *r;
}

// Bumped in the child of each fork(), by the pthread_atfork handler, while
// the child has one thread. Relaxed: each process only ever reads what its
// own (single) thread wrote before any other thread existed in it, or what
// the parent wrote before fork(); it publishes nothing else.
std::atomic<uint32_t> g_fork_gen{0};

// Holds the registry's mutex across fork(), so that the child's copy is
// consistent and its own aio2_setup calls work.
void watch_fork() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork([] { registry().mu.lock(); }, [] { registry().mu.unlock(); },
                   [] {
                     registry().mu.unlock();
                     g_fork_gen.fetch_add(1, std::memory_order_relaxed);
                   });
  });
}

bool inherited(const aio2_ctx *h) noexcept {
  return h->fork_gen != g_fork_gen.load(std::memory_order_relaxed);
}

// Holds a context for the length of one entry point.
class ctx_ref {
 public:
  explicit ctx_ref(aio2_ctx *h) noexcept : h_(h) {
    if (h_ == nullptr) return;
    h_->calls.fetch_add(1, std::memory_order_seq_cst);
    if (h_->magic.load(std::memory_order_seq_cst) == kLive && !inherited(h_)) {
      impl_ = h_->impl;
    } else {
      if (h_->magic.load(std::memory_order_relaxed) == kLive) err_ = -ECHILD;
      h_->calls.fetch_sub(1, std::memory_order_seq_cst);
      h_ = nullptr;
    }
  }
  ~ctx_ref() {
    if (h_) h_->calls.fetch_sub(1, std::memory_order_seq_cst);
  }
  ctx_ref(const ctx_ref &) = delete;
  ctx_ref &operator=(const ctx_ref &) = delete;
  aio2::core::context *get() const noexcept { return impl_; }
  // aio2_destroy began while this call was in progress.
  bool dying() const noexcept { return h_ && h_->magic.load(std::memory_order_seq_cst) != kLive; }
  // Why get() is null: -EBADF (NULL or destroyed), or -ECHILD (set up
  // before a fork(), in the child).
  int error() const noexcept { return err_; }

 private:
  aio2_ctx *h_;
  aio2::core::context *impl_ = nullptr;
  int err_ = -EBADF;
};

uint32_t or_default(uint32_t v, uint32_t dflt) { return v ? v : dflt; }

bool valid_ring_bytes(uint64_t v) {
  return v >= 4096 && v <= (uint64_t{1} << 32) && (v & (v - 1)) == 0;
}

constexpr uint64_t kFeatures = AIO2_FEAT_RING | AIO2_FEAT_SYNC | AIO2_FEAT_EVENTFD |
                               AIO2_FEAT_OVERFLOW | AIO2_FEAT_POOL | AIO2_FEAT_CANCEL |
                               AIO2_FEAT_INLINE | AIO2_FEAT_LEGACY | AIO2_FEAT_RESTRICT;

}  // namespace

extern "C" {

int aio2_setup(unsigned version, struct aio2_params *p, aio2_ctx **out) {
  if (version != AIO2_ABI_VERSION) return -EPROTONOSUPPORT;
  if (out == nullptr) return -EINVAL;
  aio2_params in{};
  size_t given = 0;
  if (p != nullptr) {
    if (p->size < AIO2_PARAMS_SIZE_MIN) return -EINVAL;
    given = p->size < sizeof in ? p->size : sizeof in;
    std::memcpy(&in, p, given);
    // A newer caller's longer struct is fine while its extra fields are unused.
    const auto *extra = reinterpret_cast<const unsigned char *>(p);
    for (size_t i = sizeof in; i < p->size; i++)
      if (extra[i] != 0) return -E2BIG;
  }
  if (in.flags & ~AIO2_SETUP_ALL) return -EINVAL;
  if (in.reserved) return -EINVAL;
  if (in.policy > AIO2_POLICY_POOL) return -EINVAL;
  if (in.uring_entries &&
      (in.uring_entries > 32768 || (in.uring_entries & (in.uring_entries - 1))))
    return -EINVAL;
  if (in.uring_instances > aio2::exec::uring::kMaxInstances) return -EINVAL;
  // A LEGACY context holds what io_setup(nr_events) was asked for.
  if (in.type == AIO2_CTX_LEGACY && in.max_inflight == 0) return -EINVAL;
  if (in.type != AIO2_CTX_LEGACY && (in.flags & AIO2_SETUP_LEGACY_OBSERVE)) return -EINVAL;
  if (in.type != AIO2_CTX_RING && in.type != AIO2_CTX_SYNC && in.type != AIO2_CTX_LEGACY)
    return -EINVAL;
  if (in.type == AIO2_CTX_SYNC && (in.flags & AIO2_SETUP_EVENTFD)) return -EINVAL;
  if (in.ring_bytes && !valid_ring_bytes(in.ring_bytes)) return -EINVAL;

  const unsigned cpus = std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 1;
  const aio2::core::limits lim{or_default(in.max_inflight, 65536),
                         in.ring_bytes ? in.ring_bytes : 65536,
                         or_default(in.bounded_workers, 4 * cpus),
                         or_default(in.unbounded_workers, 4096), or_default(in.idle_ms, 2000),
                         in.policy, or_default(in.uring_entries, 256), in.uring_instances};
  if (int err = aio2::exec::pool::install_cancel_signal()) return err;
  watch_fork();

  aio2::core::context *c = nullptr;
  aio2_ctx *h = nullptr;
  try {
    if (aio2::fault::fail(aio2::fault::site::context_new)) throw std::bad_alloc();
    c = new aio2::core::context(in.type, in.flags, lim);
    h = registry().take();
  } catch (...) {
    delete c;
    return -ENOMEM;
  }
  if (int err = c->start()) {
    delete c;
    registry().give_back(h);
    return err;
  }
  h->impl = c;
  h->fork_gen = g_fork_gen.load(std::memory_order_relaxed);
  h->magic.store(kLive, std::memory_order_seq_cst);

  if (p != nullptr) {
    aio2_params res = in;
    res.max_inflight = lim.max_inflight;
    res.ring_bytes = in.type == AIO2_CTX_RING || (in.flags & AIO2_SETUP_LEGACY_OBSERVE)
                         ? lim.ring_bytes
                         : 0;
    res.bounded_workers = lim.bounded_workers;
    res.unbounded_workers = lim.unbounded_workers;
    res.idle_ms = lim.idle_ms;
    res.eventfd = c->eventfd();
    res.features = kFeatures | (c->uring_entries() ? AIO2_FEAT_URING : 0);
    res.uring_entries = c->uring_entries();
    res.uring_instances = c->uring_instances();
    res.size = p->size;
    std::memcpy(p, &res, given);  // never past what the caller said it has
  }
  *out = h;
  return 0;
}

int aio2_destroy(aio2_ctx *h) {
  if (h == nullptr) return -EBADF;
  uint64_t live = kLive;
  if (!h->magic.compare_exchange_strong(live, kDead, std::memory_order_seq_cst)) return -EBADF;
  aio2::core::context *c = h->impl;
  if (inherited(h)) {
    // A parent's context in a fork child: its threads are not here and its
    // locks may be held by them, so it is neither shut down nor freed; its
    // descriptors (this process's copies) are closed, and the handle is
    // never reused (calls in progress at the fork stay counted).
    c->abandon_after_fork();
    return 0;
  }
  // Wake waiters, then wait for every entry point in progress to return.
  c->close();
  while (h->calls.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  delete c;
  h->impl = nullptr;
  registry().give_back(h);
  return 0;
}

ssize_t aio2_submit(aio2_ctx *ctx, const void *reqs, size_t bytes) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->submit(reqs, bytes) : c.error();
}

ssize_t aio2_getevents(aio2_ctx *ctx, unsigned min_events, void *buf, size_t bytes,
                       const struct timespec *timeout) {
  ctx_ref c(ctx);
  if (!c.get()) return c.error();
  const ssize_t n = c.get()->getevents(min_events, buf, bytes, timeout);
  // Destroyed while it waited (destroy's close ended the wait): with
  // nothing taken, the context is gone.
  return n == 0 && c.dying() ? -EBADF : n;
}

ssize_t aio2_call(aio2_ctx *ctx, const struct aio2_iocb *req, void *ev, size_t ev_bytes) {
  if (ctx == nullptr) return aio2::core::call_sync(req, ev, ev_bytes);  // the process-wide SYNC context
  ctx_ref c(ctx);
  return c.get() ? aio2::core::call_sync(req, ev, ev_bytes, c.get()->allowed()) : c.error();
}

int aio2_restrict(aio2_ctx *ctx, const struct aio2_restriction *r, size_t n) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->restrict_to(r, n) : c.error();
}

int aio2_register_fds(aio2_ctx *ctx, const int *fds, int *out, unsigned nr) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->register_fds(fds, out, nr) : c.error();
}

int aio2_register_buffers(aio2_ctx *ctx, const struct iovec *iov, unsigned nr) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->register_buffers(iov, nr) : c.error();
}

int aio2_cancel(aio2_ctx *ctx, uint64_t user_data) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->cancel(user_data) : c.error();
}

long aio2_legacy_submit(aio2_ctx *ctx, long nr, struct iocb **iocbs) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->submit_legacy(nr, iocbs) : c.error();
}

long aio2_legacy_getevents(aio2_ctx *ctx, long min_nr, long nr, struct io_event *events,
                           const struct timespec *timeout, const void *sigmask) {
  ctx_ref c(ctx);
  if (!c.get()) return c.error();
  const long n = c.get()->getevents_legacy(min_nr, nr, events, timeout,
                                           static_cast<const sigset_t *>(sigmask));
  // Destroyed while it waited, with nothing taken: the kernel's answer for
  // a context destroyed under io_getevents.
  return n == 0 && c.dying() ? -EINVAL : n;
}

int aio2_legacy_cancel(aio2_ctx *ctx, struct iocb *iocb, struct io_event *result) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->cancel_legacy(iocb, result) : c.error();
}

uint64_t aio2_legacy_observe_dropped(aio2_ctx *ctx) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->observe_dropped() : 0;
}

void *aio2_legacy_ring(aio2_ctx *ctx) {
  ctx_ref c(ctx);
  return c.get() ? static_cast<void *>(c.get()->legacy()) : nullptr;
}

struct aio2_ring *aio2_ring_get(aio2_ctx *ctx) {
  ctx_ref c(ctx);
  return c.get() ? c.get()->ring() : nullptr;
}

int aio2_eventfd(aio2_ctx *ctx) {
  ctx_ref c(ctx);
  if (!c.get()) return c.error();
  return c.get()->eventfd() >= 0 ? c.get()->eventfd() : -ENOENT;
}

const char *aio2_strerror(int err) {
  switch (err) {
    case 0: return "success";
    case -EPROTONOSUPPORT: return "ABI version not implemented by this library";
    case -EBADF: return "not a live aio2 context (NULL or destroyed)";
    case -EBADFD: return "the context's type does not support this call (a SYNC context has no ring)";
    case -EINVAL: return "malformed argument or request (length, alignment, reserved field, flags or attribute record)";
    case -E2BIG: return "request or parameter struct too large";
    case -ENOSYS: return "not a system call on this architecture";
    case -EPERM: return "refused: a system call that cannot run safely in another thread (see docs/syscalls.md), one outside the context's allowlist (aio2_restrict), or credentials that changed in the submitting thread alone";
    case -EOPNOTSUPP: return "a REQUIRED attribute is not supported on the request's path";
    case -EAGAIN: return "in-flight limit reached: reap events, then submit again";
    case -ENOBUFS: return "event buffer too small for the event";
    case -ENOENT: return "no outstanding request with this user_data";
    case -EALREADY: return "the request is running: it was interrupted where possible";
    case -ECANCELED: return "the request was cancelled before it ran";
    case -EBUSY: return "aio2's cancel signal (SIGRTMAX-2) has another handler, or the context's allowlist is already fixed";
    case -ENOMEM: return "out of memory";
    case -EINTR: return "interrupted by a signal before any event arrived";
    case -ECHILD: return "the context was set up before fork(): it belongs to the parent process";
    default: return aio2_ring_strerror(err);
  }
}

}  // extern "C"
