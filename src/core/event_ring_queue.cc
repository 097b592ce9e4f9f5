// SPDX-License-Identifier: MIT
#include "core/event_ring_queue.h"

#include "core/test_hooks.h"

#include <cerrno>
#include <cstring>

namespace aio2::core {

std::atomic<uint64_t> test_hooks::ring_start_pos{0};

namespace {

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

event_ring_queue::~event_ring_queue() {
  if (ring_) aio2_ring_unmap(ring_);
}

int event_ring_queue::create(uint64_t ring_bytes) noexcept {
  // Many threads post (producers) and any number of threads reap.
  return aio2_ring_new(ring_bytes, 0, test_hooks::ring_start_pos.load(std::memory_order_relaxed),
                       &ring_);
}

void event_ring_queue::set_need_getevents(bool on) noexcept {
  if (on) aio2_ring_owner_flags_set(ring_, AIO2_RING_NEED_GETEVENTS);
  else aio2_ring_owner_flags_clear(ring_, AIO2_RING_NEED_GETEVENTS);
}

bool event_ring_queue::push_to_ring(const unsigned char *event, uint32_t len,
                                    uint32_t flags) noexcept {
  aio2_ring_rec *rec = nullptr;
  if (aio2_ring_reserve(ring_, len, &rec) != 0) return false;  // full, or larger than a record
  aio2_ring_write(ring_, rec, 0, event + AIO2_RING_REC_HDR, len - AIO2_RING_REC_HDR);
  aio2_ring_commit(ring_, rec, flags);
  return true;
}

bool event_ring_queue::store(exec::request *r) noexcept {
  const uint32_t len = static_cast<uint32_t>(sizeof(aio2_event)) + r->attrs.result_bytes();
  // While older events wait on the overflow list, newer ones queue behind
  // them, so reapers see completions in posting order.
  if (ovf_count_.load(std::memory_order_acquire) == 0) {
    alignas(8) unsigned char here[kStackEvent];
    unsigned char *event = here;
    if (len > sizeof here) event = r->attrs.event_room(len);  // reserved at submit
    encode_event(event, r->io.user_data, r->res, r->event_flags, r->attrs);
    if (push_to_ring(event, len, r->event_flags)) return true;
  }
  std::lock_guard lk(ovf_mu_);
  overflow_.push_back(r);
  ovf_count_.fetch_add(1, std::memory_order_release);
  aio2_ring_owner_flags_set(ring_, AIO2_RING_OVERFLOW);
  return false;
}

size_t event_ring_queue::store_many(exec::request *const *rs, size_t n,
                                    exec::request **in_ring) noexcept {
  size_t k = 0, i = 0;
  while (i < n) {
    // The longest run from i whose events fit in the batch buffer, encoded
    // there back to back: each event's first 8 bytes are its record header
    // (len, flags), so the run is a sequence of whole ring records.
    alignas(8) unsigned char batch[kBatchEvents];
    size_t used = 0, end = i;
    uint32_t first_len = 0, first_flags = 0;
    if (ovf_count_.load(std::memory_order_acquire) == 0) {
      for (; end < n; end++) {
        const exec::request *r = rs[end];
        const size_t len = sizeof(aio2_event) + r->attrs.result_bytes();
        if (len > sizeof batch - used) break;
        encode_event(batch + used, r->io.user_data, r->res, r->event_flags, r->attrs);
        if (end == i) {
          first_len = static_cast<uint32_t>(len);
          first_flags = r->event_flags;
        }
        used += len;
      }
    }
    aio2_ring_rec *rec = nullptr;
    if (end - i >= 2 && aio2_ring_reserve(ring_, static_cast<uint32_t>(used), &rec) == 0) {
      aio2_ring_write(ring_, rec, 0, batch + AIO2_RING_REC_HDR, used - AIO2_RING_REC_HDR);
      aio2_ring_commit_split(ring_, rec, first_len, first_flags);
      for (; i < end; i++) in_ring[k++] = rs[i];
      continue;
    }
    if (end - i == 1 && push_to_ring(batch, first_len, first_flags)) {
      in_ring[k++] = rs[i++];
      continue;
    }
    // One at a time: a lone event, one too large for the buffer, a run the
    // ring has no room for now, or events behind the overflow list.
    if (end == i) end = i + 1;
    for (; i < end; i++)
      if (store(rs[i])) in_ring[k++] = rs[i];
  }
  return k;
}

int event_ring_queue::drain(unsigned char *buf, size_t bytes, size_t &got, unsigned &events,
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
  while (exec::request *r = overflow_.front()) {
    // Encoded from the request, whose results are final since it posted.
    const size_t len = sizeof(aio2_event) + r->attrs.result_bytes();
    if (len > bytes - got) {
      *need = static_cast<uint32_t>(len);
      return -ENOBUFS;
    }
    encode_event(buf + got, r->io.user_data, r->res, r->event_flags, r->attrs);
    got += len;
    events++;
    overflow_.unlink(r);
    ovf_count_.fetch_sub(1, std::memory_order_release);
    release(r);
  }
  aio2_ring_owner_flags_clear(ring_, AIO2_RING_OVERFLOW);
  return 0;
}

ssize_t event_ring_queue::getevents(unsigned min_events, void *buf, size_t bytes,
                                    const struct timespec *timeout) noexcept {
  if (buf == nullptr || (reinterpret_cast<uintptr_t>(buf) & 7u)) return -EINVAL;
  auto *out = static_cast<unsigned char *>(buf);
  size_t got = 0;
  unsigned events = 0;
  const long rc = wait_for(
      timeout,
      [&]() -> long {
        uint32_t need = 0;
        const int err = drain(out, bytes, got, events, &need);
        if (err == -ENOBUFS) {
          if (got) return 1;
          if (bytes >= sizeof need) std::memcpy(out, &need, sizeof need);
          return -EINVAL;
        }
        if (err < 0) return got ? 1 : err;
        return events >= min_events ? 1 : 0;
      },
      [&] { return got != 0; });
  if (rc < 0) return rc;
  return static_cast<ssize_t>(got);
}

}  // namespace aio2::core
