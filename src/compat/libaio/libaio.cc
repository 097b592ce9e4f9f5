// SPDX-License-Identifier: MIT
// libaio 0.3.113's interface on aio2's LEGACY contexts. io_context_t is the
// address of the context's struct aio_ring, as with the kernel, so programs
// that read the ring themselves keep working; every call finds the context
// in a table by that address, without reading memory there. Functions
// return -errno and leave errno alone, as libaio's do; a handle that is not
// a live context answers -EINVAL, as the kernel does.
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include "aio2/aio2.h"
#include "compat/libaio/observe.h"
#include "core/legacy_queue.h"
#include "util/fault.h"

// libaio's own types, as <libaio.h> lays them out (struct iocb and struct
// io_event match <linux/aio_abi.h>'s).
typedef struct io_context *io_context_t;
typedef void (*io_callback_t)(io_context_t ctx, struct iocb *iocb, long res, long res2);

#define AIO2_EXPORT extern "C" __attribute__((visibility("default")))
// A symbol version for a definition: GCC's symver attribute, or, for
// compilers without it (clang 14, which builds the fuzz targets), the
// assembler directive the attribute stands for, placed after the function.
#if defined(__has_attribute) && __has_attribute(symver)
#define AIO2_SYMVER(name) __attribute__((symver(name)))
#define AIO2_SYMVER_ASM(fn, name)
#else
#define AIO2_SYMVER(name)
#define AIO2_SYMVER_ASM(fn, name) __asm__(".symver " #fn "," name);
#endif

namespace {

using aio2::core::legacy_ring;

// Live contexts, by the address of their ring. The handle is looked up as
// a number, never read through, so any value (NULL, an unmapped address, a
// destroyed context's) answers -EINVAL as the kernel's lookup does. The
// table has three levels over the page number (user addresses have 47 bits:
// 35 bits of page number, 11 + 12 + 12); rings are mapped, so page-aligned.
// Nodes are made under g_mu and never freed; each pointer is published with
// release and read with acquire, so a lookup needs no lock.
constexpr unsigned kPageShift = 12, kTopBits = 11, kLevelBits = 12;
constexpr uintptr_t kUserLimit = uintptr_t{1} << 47;
// A live context, and its observation (AIO2_TRACE) or nullptr: observed is
// written before ctx (release) and read after it (acquire).
struct entry {
  std::atomic<aio2_ctx *> ctx{nullptr};
  std::atomic<aio2_libaio::observed *> observed{nullptr};
};
struct leaf {
  entry ctx[1u << kLevelBits];
};
struct middle {
  std::atomic<leaf *> leaves[1u << kLevelBits];
};
std::atomic<middle *> g_top[1u << kTopBits];
std::mutex g_mu;  // makes nodes; serialises io_setup and io_destroy

// The entry of `handle`, or nullptr when none can exist; `make` adds the
// nodes it needs (under g_mu).
entry *entry_of(const void *handle, bool make) noexcept {
  const auto addr = reinterpret_cast<uintptr_t>(handle);
  if (addr == 0 || addr >= kUserLimit || (addr & ((uintptr_t{1} << kPageShift) - 1))) return nullptr;
  const uintptr_t page = addr >> kPageShift;
  const uintptr_t mask = (uintptr_t{1} << kLevelBits) - 1;
  std::atomic<middle *> &top = g_top[page >> (2 * kLevelBits)];
  middle *m = top.load(std::memory_order_acquire);
  if (m == nullptr) {
    if (!make) return nullptr;
    m = aio2::fault::fail(aio2::fault::site::compat_alloc) ? nullptr : new (std::nothrow) middle{};
    if (m == nullptr) return nullptr;
    top.store(m, std::memory_order_release);
  }
  std::atomic<leaf *> &mid = m->leaves[(page >> kLevelBits) & mask];
  leaf *l = mid.load(std::memory_order_acquire);
  if (l == nullptr) {
    if (!make) return nullptr;
    l = aio2::fault::fail(aio2::fault::site::compat_alloc) ? nullptr : new (std::nothrow) leaf{};
    if (l == nullptr) return nullptr;
    mid.store(l, std::memory_order_release);
  }
  return &l->ctx[page & mask];
}

// A child made by fork() has no contexts, as with the kernel (its AIO
// contexts belong to the parent's address space): the child's copy of the
// table is emptied, and every call in the child with an inherited handle
// answers -EINVAL. The contexts themselves are left alone (their threads
// were not copied). g_mu is held across fork() so that the child's copy is
// consistent and unlocked.
void forget_all_in_child() noexcept {
  for (auto &top : g_top) {
    middle *m = top.load(std::memory_order_relaxed);
    if (m == nullptr) continue;
    for (auto &mid : m->leaves) {
      leaf *l = mid.load(std::memory_order_relaxed);
      if (l == nullptr) continue;
      for (auto &e : l->ctx) {
        e.ctx.store(nullptr, std::memory_order_relaxed);
        e.observed.store(nullptr, std::memory_order_relaxed);
      }
    }
  }
  g_mu.unlock();
}

void watch_fork() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork([] { g_mu.lock(); }, [] { g_mu.unlock(); }, forget_all_in_child);
  });
}

aio2_ctx *context_of(io_context_t handle) noexcept {
  entry *e = entry_of(handle, false);
  return e ? e->ctx.load(std::memory_order_acquire) : nullptr;
}

// The kernel's limit on events of all contexts (fs.aio-max-nr): one
// context may not ask for more.
long aio_max_nr() noexcept {
  long v = 65536;
  if (FILE *f = std::fopen("/proc/sys/fs/aio-max-nr", "re")) {
    if (std::fscanf(f, "%ld", &v) != 1) v = 65536;
    std::fclose(f);
  }
  return v;
}

}  // namespace

AIO2_EXPORT int io_setup(int maxevents, io_context_t *ctxp) {
  if (!aio2::core::legacy_user_range(ctxp, sizeof *ctxp)) return -EFAULT;
  if (*ctxp != nullptr || maxevents <= 0) return -EINVAL;
  // The kernel doubles nr (and raises it to 4 per CPU) and refuses a ring
  // of more than 256 MiB of events with -EINVAL, before it compares nr with
  // fs.aio-max-nr.
  if (static_cast<unsigned long>(maxevents) > 0x10000000ul / sizeof(io_event) / 2) return -EINVAL;
  if (maxevents > aio_max_nr()) return -EAGAIN;
  watch_fork();
  aio2_params p{};
  p.size = sizeof p;
  p.type = AIO2_CTX_LEGACY;
  p.max_inflight = static_cast<uint32_t>(maxevents);
  const aio2_params plain = p;
  // AIO2_TRACE: the context mirrors its events for the observer.
  const bool observe = aio2_libaio::observe_prepare(p);
  aio2_ctx *ctx = nullptr;
  int err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx);
  aio2_libaio::observed *obs = nullptr;
  if (observe && err == 0) {
    obs = aio2_libaio::observe_attach(ctx, p, static_cast<uint32_t>(maxevents));
    if (obs == nullptr) {  // said why: runs unobserved
      aio2_destroy(ctx);
      p = plain;
      err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx);
    }
  } else if (observe && err != -EINVAL) {
    std::fprintf(stderr, "aio2 libaio: an observed context: %s; this one is not traced\n",
                 aio2_strerror(err));
    p = plain;
    err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx);
  }
  if (err) return err;
  void *ring = aio2_legacy_ring(ctx);
  {
    std::lock_guard lk(g_mu);
    if (entry *e = entry_of(ring, true)) {
      e->observed.store(obs, std::memory_order_relaxed);
      e->ctx.store(ctx, std::memory_order_release);
      *ctxp = reinterpret_cast<io_context_t>(ring);
      return 0;
    }
  }
  if (obs) aio2_libaio::observe_detach(obs);
  aio2_destroy(ctx);
  return -ENOMEM;
}

AIO2_EXPORT int io_destroy(io_context_t handle) {
  aio2_ctx *ctx = nullptr;
  aio2_libaio::observed *obs = nullptr;
  {
    std::lock_guard lk(g_mu);
    entry *e = entry_of(handle, false);
    ctx = e ? e->ctx.exchange(nullptr, std::memory_order_acq_rel) : nullptr;
    if (ctx == nullptr) return -EINVAL;
    obs = e->observed.exchange(nullptr, std::memory_order_relaxed);
  }
  // The trace gets what is left before the context goes.
  if (obs) aio2_libaio::observe_detach(obs);
  // Cancels what can be cancelled and waits for the rest, as the kernel's
  // io_destroy does; the ring is unmapped with the context.
  aio2_destroy(ctx);
  return 0;
}

AIO2_EXPORT int io_submit(io_context_t handle, long nr, struct iocb *ios[]) {
  entry *e = entry_of(handle, false);
  aio2_ctx *ctx = e ? e->ctx.load(std::memory_order_acquire) : nullptr;
  if (ctx == nullptr) return -EINVAL;
  aio2_libaio::observed *obs = e->observed.load(std::memory_order_relaxed);
  if (obs == nullptr) return static_cast<int>(aio2_legacy_submit(ctx, nr, ios));
  const uint64_t stamp = aio2_libaio::observe_before_submit(obs, nr, ios);
  const long rc = aio2_legacy_submit(ctx, nr, ios);
  aio2_libaio::observe_after_submit(obs, nr, ios, rc, stamp);
  return static_cast<int>(rc);
}

namespace {

int getevents(io_context_t handle, long min_nr, long nr, struct io_event *events,
              const struct timespec *timeout, const sigset_t *sigmask) noexcept {
  aio2_ctx *ctx = context_of(handle);
  if (ctx == nullptr) return -EINVAL;
  return static_cast<int>(aio2_legacy_getevents(ctx, min_nr, nr, events, timeout, sigmask));
}

}  // namespace

namespace {

// libaio's fast path: a zero timeout on an empty ring answers 0 without a
// call, before any argument is checked (the ring is read as libaio reads
// it, once the handle is known to be a live context).
bool empty_at_once(io_context_t ctx, const struct timespec *timeout) noexcept {
  const auto *ring = reinterpret_cast<const legacy_ring *>(ctx);
  return context_of(ctx) && ring->magic == aio2::core::kLegacyRingMagic && timeout &&
         aio2::core::legacy_user_range(timeout, sizeof *timeout) && timeout->tv_sec == 0 &&
         timeout->tv_nsec == 0 &&
         __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) ==
             __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
}

}  // namespace

AIO2_EXPORT AIO2_SYMVER("io_getevents@@LIBAIO_0.4") int io_getevents_0_4(
    io_context_t ctx, long min_nr, long nr, struct io_event *events, struct timespec *timeout) {
  if (empty_at_once(ctx, timeout)) return 0;
  return getevents(ctx, min_nr, nr, events, timeout, nullptr);
}
AIO2_SYMVER_ASM(io_getevents_0_4, "io_getevents@@LIBAIO_0.4")

// The LIBAIO_0.1 io_getevents had no min_nr: it waited for one event.
AIO2_EXPORT AIO2_SYMVER("io_getevents@LIBAIO_0.1") int io_getevents_0_1(
    io_context_t ctx, long nr, struct io_event *events, const struct timespec *timeout) {
  return getevents(ctx, 1, nr, events, timeout, nullptr);
}
AIO2_SYMVER_ASM(io_getevents_0_1, "io_getevents@LIBAIO_0.1")

AIO2_EXPORT int io_pgetevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
                              struct timespec *timeout, sigset_t *sigmask) {
  if (empty_at_once(ctx, timeout)) return 0;
  return getevents(ctx, min_nr, nr, events, timeout, sigmask);
}

AIO2_EXPORT AIO2_SYMVER("io_cancel@@LIBAIO_0.4") int io_cancel_0_4(io_context_t handle,
                                                                   struct iocb *iocb,
                                                                   struct io_event *evt) {
  aio2_ctx *ctx = context_of(handle);
  if (ctx == nullptr) return -EINVAL;
  return aio2_legacy_cancel(ctx, iocb, evt);
}
AIO2_SYMVER_ASM(io_cancel_0_4, "io_cancel@@LIBAIO_0.4")

// The LIBAIO_0.1 io_cancel had no result argument.
AIO2_EXPORT AIO2_SYMVER("io_cancel@LIBAIO_0.1") int io_cancel_0_1(io_context_t ctx,
                                                                  struct iocb *iocb) {
  struct io_event unused;
  return io_cancel_0_4(ctx, iocb, &unused);
}
AIO2_SYMVER_ASM(io_cancel_0_1, "io_cancel@LIBAIO_0.1")

AIO2_EXPORT AIO2_SYMVER("io_queue_wait@@LIBAIO_0.4") int io_queue_wait_0_4(
    io_context_t ctx, struct timespec *timeout) {
  return getevents(ctx, 0, 0, nullptr, timeout, nullptr);
}
AIO2_SYMVER_ASM(io_queue_wait_0_4, "io_queue_wait@@LIBAIO_0.4")

AIO2_EXPORT AIO2_SYMVER("io_queue_wait@LIBAIO_0.1") int io_queue_wait_0_1(
    io_context_t ctx, struct timespec *timeout) {
  return getevents(ctx, 0, 0, nullptr, timeout, nullptr);
}
AIO2_SYMVER_ASM(io_queue_wait_0_1, "io_queue_wait@LIBAIO_0.1")

AIO2_EXPORT int io_queue_init(int maxevents, io_context_t *ctxp) {
  if (maxevents <= 0) return -EINVAL;
  if (!aio2::core::legacy_user_range(ctxp, sizeof *ctxp)) return -EFAULT;
  *ctxp = nullptr;
  return io_setup(maxevents, ctxp);
}

AIO2_EXPORT int io_queue_release(io_context_t ctx) { return io_destroy(ctx); }

// Runs the callback (iocb->data, set by io_set_callback) of every event
// there is, without waiting. Returns 0, or an io_getevents error.
AIO2_EXPORT int io_queue_run(io_context_t ctx) {
  static const struct timespec zero = {0, 0};
  struct io_event ev;
  int ret;
  while ((ret = getevents(ctx, 0, 1, &ev, &zero, nullptr)) == 1) {
    auto cb = reinterpret_cast<io_callback_t>(ev.data);
    cb(ctx, reinterpret_cast<struct iocb *>(ev.obj), static_cast<long>(ev.res),
       static_cast<long>(ev.res2));
  }
  return ret;
}
