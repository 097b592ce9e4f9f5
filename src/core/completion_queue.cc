// SPDX-License-Identifier: MIT
#include "core/completion_queue.h"

#include <unistd.h>

#include <cstring>

namespace aio2::core {

int64_t monotonic_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

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

void completion_queue::release(exec::request *r) noexcept {
  slots_.put(r);
  inflight_.fetch_sub(1, std::memory_order_relaxed);
}

void completion_queue::complete(exec::request *r) noexcept {
  r->attrs.post(r->io, r->attr_bytes.data(), r->res);
  if (store(r)) release(r);
}

void completion_queue::signal_eventfd() noexcept {
  if (efd_ < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(efd_, &one, sizeof one);  // cannot fill: 2^64-2
}

void completion_queue::batch_done(bool eventfd_signalled) noexcept {
  // io_uring's batches change its in-flight count; the kernel signalled
  // the eventfd once per completion.
  if (eventfd_signalled) sync_need_getevents();
  waiter_.wake();
  if (!eventfd_signalled) signal_eventfd();
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
