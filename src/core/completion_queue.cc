// SPDX-License-Identifier: MIT
#include "core/completion_queue.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/fault.h"

namespace aio2::core {

int64_t monotonic_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

completion_queue::~completion_queue() { stop_collector_thread(); }

int completion_queue::start(exec::collected_executor *collector, int eventfd) noexcept {
  collector_ = collector;
  efd_ = eventfd;
  return waiter_.start(collector);
}

bool completion_queue::admit() noexcept {
  if (inflight_.fetch_add(1, std::memory_order_relaxed) < max_inflight_) return true;
  inflight_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

void completion_queue::release_many(exec::request *const *rs, size_t n) noexcept {
  slots_.put_many(rs, n);
  inflight_.fetch_sub(static_cast<uint32_t>(n), std::memory_order_relaxed);
}

void completion_queue::complete(exec::request *r) noexcept {
  r->attrs.post(r->io, r->attrs.records(), r->res);
  // Read before store(): once the event is stored a reaper may release r.
  const bool counted = efd_ >= 0;
  if (store(r)) release(r);
  // After the store (release; batch_done's exchange acquires).
  if (counted) unsignalled_.fetch_add(1, std::memory_order_release);
}

size_t completion_queue::store_many(exec::request *const *rs, size_t n,
                                    exec::request **in_ring) noexcept {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (store(rs[i])) in_ring[k++] = rs[i];
  return k;
}

void completion_queue::complete_many(exec::request *const *rs, size_t n) noexcept {
  constexpr size_t kChunk = 64;
  for (size_t at = 0; at < n; at += kChunk) {
    const size_t m = n - at < kChunk ? n - at : kChunk;
    for (size_t i = 0; i < m; i++) {
      exec::request *r = rs[at + i];
      r->attrs.post(r->io, r->attrs.records(), r->res);
    }
    // Read before the stores: once an event is stored a reaper may release
    // its request.
    const bool counted = efd_ >= 0;
    exec::request *in_ring[kChunk];
    const size_t k = store_many(rs + at, m, in_ring);
    release_many(in_ring, k);
    // After the stores (release; batch_done's exchange acquires).
    if (counted) unsignalled_.fetch_add(m, std::memory_order_release);
  }
}

void completion_queue::signal_eventfd() noexcept {
  if (efd_ < 0) return;
  // Acquire: pairs with the release of complete() and complete_many(), so
  // the events counted here are stored before the count is written. A count another batch_done
  // took is written by that one, after its own events' stores.
  const uint64_t n = unsignalled_.exchange(0, std::memory_order_acquire);
  // The counter cannot fill: it would take 2^64 - 2 unread events.
  if (n) {
    [[maybe_unused]] ssize_t w = ::write(efd_, &n, sizeof n);
  }
}

void completion_queue::batch_done(bool collected) noexcept {
  // io_uring's batches change its in-flight count.
  if (collected) sync_need_getevents();
  waiter_.wake();
  signal_eventfd();
}

int completion_queue::start_collector_thread() noexcept {
  if (collector_ == nullptr) return 0;
  if (fault::fail(fault::site::wake_eventfd)) return -ENOMEM;
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return -errno;
  if (fault::fail(fault::site::wake_eventfd)) return -ENOMEM;
  reapers_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (reapers_fd_ < 0) return -errno;
  if (fault::fail(fault::site::thread_create)) return -EAGAIN;
  try {
    collector_thread_ = std::thread(&completion_queue::collector_main, this);
  } catch (...) {
    return -EAGAIN;
  }
  return 0;
}

void completion_queue::reaper_enters() noexcept {
  // seq_cst: the reapers' half of the handshake with collector_main().
  if (reapers_fd_ >= 0) reapers_.fetch_add(1, std::memory_order_seq_cst);
}

void completion_queue::reaper_leaves() noexcept {
  if (reapers_fd_ < 0) return;
  // The last one out wakes the collector thread when it sleeps on the
  // reapers (a write it finds in its next poll if it has not gone to sleep
  // yet). seq_cst: the handshake with collector_main() (watching_).
  if (reapers_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      watching_.load(std::memory_order_seq_cst)) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(reapers_fd_, &one, sizeof one);
  }
}

void completion_queue::collector_main() noexcept {
  // No process signals here: they belong to the program's own threads.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  for (;;) {
    // While a reaper waits in getevents it collects; this thread waits for
    // the last one to leave (a write to reapers_fd_ made since this check
    // is still there for the poll). seq_cst: this thread's half of the
    // handshake with reaper_leaves() (completion_queue.h).
    watching_.store(true, std::memory_order_seq_cst);
    const bool reaper_inside = reapers_.load(std::memory_order_seq_cst) > 0;
    // Relaxed: only this thread writes it, and a reaper that still sees
    // true makes one spurious write, read below.
    if (!reaper_inside) watching_.store(false, std::memory_order_relaxed);
    pollfd fds[3] = {{stop_fd_, POLLIN, 0}, {reapers_fd_, POLLIN, 0},
                     {reaper_inside ? -1 : collector_->fd(), POLLIN, 0}};
    if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[1].revents) {
      uint64_t v;
      [[maybe_unused]] ssize_t rd = ::read(reapers_fd_, &v, sizeof v);
    }
    // Blocks for the harvest lock: a reaper harvesting now may leave
    // completions behind it that only this thread will see.
    if (!reaper_inside) collector_->harvest(true);
  }
}

void completion_queue::stop_collector_thread() noexcept {
  if (collector_thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(stop_fd_, &one, sizeof one);
    collector_thread_.join();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  if (reapers_fd_ >= 0) ::close(reapers_fd_);
  stop_fd_ = reapers_fd_ = -1;
}

void completion_queue::collector_submitted() noexcept {
  sync_need_getevents();
  waiter_.collect();
  waiter_.collector_submitted();
}

void completion_queue::sync_need_getevents() noexcept {
  // Set while requests are on io_uring: their completions reach the ring
  // only through aio2_getevents (or a submit), so reapers of the ring in
  // memory must call in when they find it empty.
  std::lock_guard lk(need_mu_);
  const bool want = collector_ != nullptr && collector_->inflight() != 0;
  if (want == need_on_) return;
  need_on_ = want;
  set_need_getevents(want);
}

void encode_event(unsigned char *dst, uint64_t user_data, int64_t res, uint32_t flags,
                  const attr::request_attrs &attrs) noexcept {
  aio2_event ev{};
  ev.len = static_cast<uint32_t>(sizeof ev) + attrs.result_bytes();
  ev.flags = flags;
  ev.user_data = user_data;
  ev.res = res;
  std::memcpy(dst, &ev, sizeof ev);
  attrs.write_results(dst + sizeof ev);
}

}  // namespace aio2::core
