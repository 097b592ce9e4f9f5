// SPDX-License-Identifier: MIT
// aio2's own event format: variable-length aio2_event records (24 bytes and
// the attribute results) in the context's byte ring (ring/), which reapers
// may also read straight from memory; events that find the ring full wait
// on the overflow list, oldest first, with AIO2_RING_OVERFLOW set, until
// aio2_getevents drains them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>

#include "aio2/aio2.h"
#include "core/completion_queue.h"

namespace aio2::core {

class event_ring_queue final : public completion_queue {
 public:
  // Events up to this many bytes are encoded on the stack on their way into
  // the ring; a request whose event may be larger reserves room for it in
  // exec::request::event at submission (so that store() cannot fail). An
  // event on the overflow list is encoded again, from the request, straight
  // into the reaper's buffer: most requests need no event bytes of their own.
  static constexpr size_t kStackEvent = 512;
  // Events of a batch (complete_many) are encoded back to back in up to
  // this many bytes on the stack and go into the ring in one reservation:
  // 85 plain 24-byte events, 34 with timing and cache results.
  static constexpr size_t kBatchEvents = 2048;

  event_ring_queue(slots &s, uint32_t max_inflight) noexcept
      : completion_queue(s, max_inflight) {}
  ~event_ring_queue() override;

  // Creates the ring of `ring_bytes` (a power of two). Returns 0 or -errno.
  int create(uint64_t ring_bytes) noexcept;
  aio2_ring *ring() const noexcept { return ring_; }

  // aio2_getevents: copies whole events into buf, from the ring, then from
  // the overflow list, waiting as documented in aio2.h.
  ssize_t getevents(unsigned min_events, void *buf, size_t bytes,
                    const struct timespec *timeout) noexcept;

 private:
  bool store(exec::request *r) noexcept override;
  size_t store_many(exec::request *const *rs, size_t n, exec::request **in_ring) noexcept override;
  void set_need_getevents(bool on) noexcept override;
  bool push_to_ring(const unsigned char *event, uint32_t len, uint32_t flags) noexcept;
  // Copies events into buf from the ring, then from the overflow list.
  // Returns 0, or -ENOBUFS with *need set, or a ring error.
  int drain(unsigned char *buf, size_t bytes, size_t &got, unsigned &events,
            uint32_t *need) noexcept;

  aio2_ring *ring_ = nullptr;
  // Events that found the ring full, oldest first.
  std::mutex ovf_mu_;
  exec::request_list overflow_;  // guarded by ovf_mu_
  // Length of the overflow list. Written under ovf_mu_; read without it as a
  // hint (a post that sees 0 tries the ring first). Acquire/release: a
  // reader that sees it non-zero and takes ovf_mu_ finds the entries.
  std::atomic<uint64_t> ovf_count_{0};
};

}  // namespace aio2::core
