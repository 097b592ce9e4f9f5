// SPDX-License-Identifier: MIT
#include "core/legacy_queue.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/fault.h"

namespace aio2::core {

legacy_queue::~legacy_queue() {
  stop_collector_thread();
  if (ring_) munmap(ring_, map_bytes_);
}

int legacy_queue::create() noexcept {
  // One slot more than io_setup asked for: a full ring would look empty.
  const size_t slots = static_cast<size_t>(max_events_) + 1;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  map_bytes_ = (sizeof(legacy_ring) + slots * sizeof(io_event) + page - 1) / page * page;
  if (fault::fail(fault::site::legacy_map)) return -ENOMEM;
  void *m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return -errno;
  ring_ = static_cast<legacy_ring *>(m);
  ring_->nr = static_cast<unsigned>(slots);
  ring_->magic = kLegacyRingMagic;
  ring_->compat_features = 1;  // the kernel's AIO_RING_COMPAT_FEATURES
  ring_->incompat_features = 0;
  ring_->header_length = sizeof(legacy_ring);
  return 0;
}

bool legacy_queue::admit() noexcept {
  // Counted, not sampled: head and tail read apart (while others move them)
  // would overstate the ring's use and refuse a submit within the promise.
  // The acquire pairs with a reaper's store-release of head.
  std::lock_guard lk(admit_mu_);
  const unsigned head = __atomic_load_n(&ring_->head, __ATOMIC_ACQUIRE);
  const unsigned nr = ring_->nr;
  reaped_ += (head + nr - seen_head_) % nr;
  seen_head_ = head;
  if (admitted_ - reaped_ >= max_events_) return false;
  admitted_++;
  inflight_.fetch_add(1, std::memory_order_relaxed);  // completion_queue's count
  return true;
}

void legacy_queue::unadmit() noexcept {
  {
    std::lock_guard lk(admit_mu_);
    admitted_--;
  }
  completion_queue::unadmit();
}

bool legacy_queue::store(exec::request *r) noexcept {
  io_event ev{};
  ev.data = r->legacy->data;
  ev.obj = r->legacy->obj;
  ev.res = r->res;
  ev.res2 = 0;
  // A poll completes with the events it found, as the kernel's does; one
  // cancelled (interrupted on a worker, or cancelled on io_uring) found
  // none, which the kernel reports as res 0.
  if (r->legacy->opcode == IOCB_CMD_POLL) {
    if (r->res >= 0) ev.res = r->legacy->pfd.revents;
    else if (r->res == -EINTR || r->res == -ECANCELED) ev.res = 0;
  }
  {
    std::lock_guard lk(tail_mu_);
    const unsigned tail = ring_->tail;
    ring_->events[tail] = ev;
    // Release: a reaper that sees the new tail (acquire) sees the event.
    __atomic_store_n(&ring_->tail, tail + 1 == ring_->nr ? 0 : tail + 1, __ATOMIC_RELEASE);
  }
  if (r->legacy->resfd >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(r->legacy->resfd, &one, sizeof one);
  }
  if (observe_) mirror(r, ev.res);
  return true;
}

void legacy_queue::mirror(const exec::request *r, int64_t res) noexcept {
  // The aio2 event names the request by its iocb (user_data) and has its
  // io_event's result; its attribute results say how it ran. Readers wake
  // through the waiter like any reaper of an aio2 ring.
  const uint32_t len = static_cast<uint32_t>(sizeof(aio2_event)) + r->attrs.result_bytes();
  alignas(8) unsigned char buf[512];  // an observed request carries four attributes at most
  aio2_ring_rec *rec = nullptr;
  if (len > sizeof buf || aio2_ring_reserve(observe_->ring(), len, &rec) != 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  encode_event(buf, r->io.user_data, res, r->event_flags, r->attrs);
  aio2_ring_write(observe_->ring(), rec, 0, buf + AIO2_RING_REC_HDR, len - AIO2_RING_REC_HDR);
  aio2_ring_commit(observe_->ring(), rec, r->event_flags);
}

void legacy_queue::batch_done(bool collected) noexcept {
  completion_queue::batch_done(collected);
  // The observer waits on the mirror ring's own waiter.
  if (observe_) observe_->batch_done(true);
}

long legacy_queue::getevents(long min_nr, long nr, struct io_event *events,
                             const struct timespec *timeout, const sigset_t *sigmask) noexcept {
  if (min_nr < 0 || nr < 0 || min_nr > nr) return -EINVAL;
  if (nr > 0 && !legacy_user_range(events, static_cast<size_t>(nr) * sizeof(io_event)))
    return -EFAULT;
  long got = 0;
  const auto look = [&]() -> long {
    std::lock_guard lk(head_mu_);
    unsigned head = ring_->head;
    // Acquire: pairs with store()'s release of tail.
    const unsigned tail = __atomic_load_n(&ring_->tail, __ATOMIC_ACQUIRE);
    while (head != tail && got < nr) {
      events[got++] = ring_->events[head];
      head = head + 1 == ring_->nr ? 0 : head + 1;
    }
    // Release: the slots are free for producers (admit()'s acquire).
    __atomic_store_n(&ring_->head, head, __ATOMIC_RELEASE);
    return got >= min_nr ? 1 : 0;
  };
  // io_pgetevents: a signal already pending that `sigmask` lets through
  // interrupts the call, as in the kernel (its handler runs when the mask
  // is installed, before the wait could notice it): the events there are
  // are taken without waiting, and none gives -EINTR. One that comes
  // during the wait interrupts it like any signal.
  sigset_t saved;
  bool interrupted = false;
  if (sigmask) {
    sigset_t pending;
    if (sigpending(&pending) == 0) {
      for (int sig = 1; sig < NSIG && !interrupted; sig++)
        interrupted = sigismember(&pending, sig) == 1 && sigismember(sigmask, sig) == 0;
    }
    pthread_sigmask(SIG_SETMASK, sigmask, &saved);
  }
  static const timespec zero{0, 0};
  const long rc = wait_for(interrupted ? &zero : timeout, look, [&] { return got != 0; });
  if (sigmask) pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (rc < 0) return rc;
  return interrupted && got == 0 ? -EINTR : got;
}

}  // namespace aio2::core
