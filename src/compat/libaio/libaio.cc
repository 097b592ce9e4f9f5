// SPDX-License-Identifier: MIT
// libaio 0.3.113's interface on aio2's LEGACY contexts. io_context_t is the
// address of the context's struct aio_ring, as with the kernel, so programs
// that read the ring themselves keep working; the ring's `id` field names
// the context's slot in a table here, which every call checks against the
// ring's address before it uses the context. Functions return -errno and
// leave errno alone, as libaio's do; a handle that is not a live context
// answers -EINVAL, as the kernel does.
#include <linux/aio_abi.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "aio2/aio2.h"
#include "compat/libaio/observe.h"
#include "core/legacy_queue.h"

// libaio's own types, as <libaio.h> lays them out (struct iocb and struct
// io_event match <linux/aio_abi.h>'s).
typedef struct io_context *io_context_t;
typedef void (*io_callback_t)(io_context_t ctx, struct iocb *iocb, long res, long res2);

#define AIO2_EXPORT extern "C" __attribute__((visibility("default")))
#define AIO2_SYMVER(name) __attribute__((symver(name)))

namespace {

using aio2::legacy_ring;

// Live contexts, by slot; slot 0 is never used, so a ring whose id is 0 is
// not ours. A slot is claimed under g_mu and published with release: a
// call that reads it with acquire and finds its own ring there sees the
// context pointer written before. Slots are reused after io_destroy.
constexpr unsigned kSlots = 65536;
struct slot {
  std::atomic<legacy_ring *> ring{nullptr};
  std::atomic<aio2_ctx *> ctx{nullptr};
  // The context's observation (AIO2_TRACE), or nullptr; written with ctx.
  std::atomic<aio2_libaio::observed *> observed{nullptr};
};
slot g_slots[kSlots];
std::mutex g_mu;

// The slot of a live context, or nullptr.
slot *slot_of(io_context_t handle) noexcept {
  auto *ring = reinterpret_cast<legacy_ring *>(handle);
  if (ring == nullptr) return nullptr;
  const unsigned id = ring->id;
  if (id == 0 || id >= kSlots) return nullptr;
  if (g_slots[id].ring.load(std::memory_order_acquire) != ring) return nullptr;
  return &g_slots[id];
}

aio2_ctx *context_of(io_context_t handle) noexcept {
  slot *s = slot_of(handle);
  return s ? s->ctx.load(std::memory_order_relaxed) : nullptr;
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
  if (ctxp == nullptr) return -EFAULT;
  if (*ctxp != nullptr || maxevents <= 0) return -EINVAL;
  if (maxevents > aio_max_nr()) return -EAGAIN;
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
  auto *ring = static_cast<legacy_ring *>(aio2_legacy_ring(ctx));
  std::lock_guard lk(g_mu);
  for (unsigned id = 1; id < kSlots; id++) {
    if (g_slots[id].ring.load(std::memory_order_relaxed) != nullptr) continue;
    ring->id = id;
    g_slots[id].ctx.store(ctx, std::memory_order_relaxed);
    g_slots[id].observed.store(obs, std::memory_order_relaxed);
    g_slots[id].ring.store(ring, std::memory_order_release);
    *ctxp = reinterpret_cast<io_context_t>(ring);
    return 0;
  }
  if (obs) aio2_libaio::observe_detach(obs);
  aio2_destroy(ctx);
  return -EAGAIN;
}

AIO2_EXPORT int io_destroy(io_context_t handle) {
  aio2_ctx *ctx = nullptr;
  aio2_libaio::observed *obs = nullptr;
  {
    std::lock_guard lk(g_mu);
    slot *s = slot_of(handle);
    if (s == nullptr) return -EINVAL;
    ctx = s->ctx.load(std::memory_order_relaxed);
    obs = s->observed.load(std::memory_order_relaxed);
    s->ring.store(nullptr, std::memory_order_release);
    s->ctx.store(nullptr, std::memory_order_relaxed);
    s->observed.store(nullptr, std::memory_order_relaxed);
  }
  // The trace gets what is left before the context goes.
  if (obs) aio2_libaio::observe_detach(obs);
  // Cancels what can be cancelled and waits for the rest, as the kernel's
  // io_destroy does; the ring is unmapped with the context.
  aio2_destroy(ctx);
  return 0;
}

AIO2_EXPORT int io_submit(io_context_t handle, long nr, struct iocb *ios[]) {
  slot *s = slot_of(handle);
  if (s == nullptr) return -EINVAL;
  aio2_ctx *ctx = s->ctx.load(std::memory_order_relaxed);
  aio2_libaio::observed *obs = s->observed.load(std::memory_order_relaxed);
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

AIO2_EXPORT AIO2_SYMVER("io_getevents@@LIBAIO_0.4") int io_getevents_0_4(
    io_context_t ctx, long min_nr, long nr, struct io_event *events, struct timespec *timeout) {
  // libaio's fast path: a zero timeout on an empty ring answers 0 without
  // a call (the ring is read as libaio reads it).
  const auto *ring = reinterpret_cast<const legacy_ring *>(ctx);
  if (ring && ring->magic == aio2::kLegacyRingMagic && timeout && timeout->tv_sec == 0 &&
      timeout->tv_nsec == 0 &&
      __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) ==
          __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE))
    return 0;
  return getevents(ctx, min_nr, nr, events, timeout, nullptr);
}

// The LIBAIO_0.1 io_getevents had no min_nr: it waited for one event.
AIO2_EXPORT AIO2_SYMVER("io_getevents@LIBAIO_0.1") int io_getevents_0_1(
    io_context_t ctx, long nr, struct io_event *events, const struct timespec *timeout) {
  return getevents(ctx, 1, nr, events, timeout, nullptr);
}

AIO2_EXPORT int io_pgetevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
                              struct timespec *timeout, sigset_t *sigmask) {
  return getevents(ctx, min_nr, nr, events, timeout, sigmask);
}

AIO2_EXPORT AIO2_SYMVER("io_cancel@@LIBAIO_0.4") int io_cancel_0_4(io_context_t handle,
                                                                   struct iocb *iocb,
                                                                   struct io_event *evt) {
  aio2_ctx *ctx = context_of(handle);
  if (ctx == nullptr) return -EINVAL;
  return aio2_legacy_cancel(ctx, iocb, evt);
}

// The LIBAIO_0.1 io_cancel had no result argument.
AIO2_EXPORT AIO2_SYMVER("io_cancel@LIBAIO_0.1") int io_cancel_0_1(io_context_t ctx,
                                                                  struct iocb *iocb) {
  struct io_event unused;
  return io_cancel_0_4(ctx, iocb, &unused);
}

AIO2_EXPORT AIO2_SYMVER("io_queue_wait@@LIBAIO_0.4") int io_queue_wait_0_4(
    io_context_t ctx, struct timespec *timeout) {
  return getevents(ctx, 0, 0, nullptr, timeout, nullptr);
}

AIO2_EXPORT AIO2_SYMVER("io_queue_wait@LIBAIO_0.1") int io_queue_wait_0_1(
    io_context_t ctx, struct timespec *timeout) {
  return getevents(ctx, 0, 0, nullptr, timeout, nullptr);
}

AIO2_EXPORT int io_queue_init(int maxevents, io_context_t *ctxp) {
  if (maxevents <= 0) return -EINVAL;
  if (ctxp == nullptr) return -EFAULT;
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
