// SPDX-License-Identifier: MIT
// Fuzz target: the inline walkers of aio2/aio2.h and aio2/aio2.hpp over an
// arbitrary buffer of "events" (as aio2_getevents or aio2_reap_events would
// fill one), and aio2_attr_add building a request in a buffer of arbitrary
// room. Checks: no walker reads outside the buffer (AddressSanitizer: the
// buffer is a heap copy of exactly the input's size); every event and
// attribute result a walker returns lies whole inside its parent and is
// sound; the C and C++ walkers agree on every count, id and payload; a walk
// ends (each step moves forwards).

#include <cstdint>
#include <cstring>
#include <vector>

#include "aio2/aio2.h"
#include "aio2/aio2.hpp"
#include "fuzz_input.h"

namespace {

using aio2_fuzz::input;

void walk_attrs(const aio2_event *ev, const unsigned char *buf_end) {
  const auto *ev_end = reinterpret_cast<const unsigned char *>(ev) + ev->len;
  AIO2_FUZZ_CHECK(ev_end <= buf_end);
  unsigned n = 0;
  const unsigned char *prev_end = reinterpret_cast<const unsigned char *>(ev) + sizeof *ev;
  uint64_t sum = 0;
  for (const aio2_attr_ret *r = aio2_attr_next(ev, nullptr); r; r = aio2_attr_next(ev, r)) {
    const auto *b = reinterpret_cast<const unsigned char *>(r);
    AIO2_FUZZ_CHECK(b == prev_end, b - prev_end);  // contiguous, in order
    AIO2_FUZZ_CHECK(r->len >= sizeof *r && r->len % 8 == 0, r->len);
    AIO2_FUZZ_CHECK(b + r->len <= ev_end, r->len);
    AIO2_FUZZ_CHECK(aio2_event_attr(ev, n) == r, n);
    const aio2_attr_ret *f = aio2_event_find_attr(ev, r->id);
    AIO2_FUZZ_CHECK(f != nullptr && f <= r && f->id == r->id);
    uint16_t st = 0xffff;
    const void *pl = aio2_event_attr_payload(ev, r->id, 8, &st);
    AIO2_FUZZ_CHECK(st == f->status, st, f->status);
    if (pl != nullptr) {
      AIO2_FUZZ_CHECK(f->status == AIO2_ATTR_OK && f->len >= 16, f->len);
      uint64_t v;
      std::memcpy(&v, pl, 8);
      sum += v;
    }
    for (uint32_t i = 0; i < r->len; i++) sum += b[i];  // every byte is readable
    prev_end = b + r->len;
    n++;
  }
  AIO2_FUZZ_CHECK(aio2_event_attr(ev, n) == nullptr, n);

  // The C++ view, the same walk.
  const aio2::event_view v(ev);
  unsigned m = 0;
  uint64_t sum2 = 0;
  for (const auto a : v.attrs()) {
    const aio2_attr_ret *r = aio2_event_attr(ev, m);
    AIO2_FUZZ_CHECK(r == a.native(), m);
    AIO2_FUZZ_CHECK(a.payload().size() + sizeof(aio2_attr_ret) == r->len, a.payload().size());
    const auto got = v.attr_as<uint64_t>(a.id());
    const auto *f = aio2_event_find_attr(ev, a.id());
    if (got) {
      AIO2_FUZZ_CHECK(f->status == AIO2_ATTR_OK);
      sum2 += *got;
    }
    for (const std::byte c : a.payload()) sum2 += static_cast<unsigned char>(c);
    sum2 += static_cast<uint64_t>(a.id()) + a.status() + (a.ok() ? 1 : 0);
    m++;
  }
  AIO2_FUZZ_CHECK(m == n, m, n);
  AIO2_FUZZ_CHECK(v.size() == ev->len && v.bytes().size() == ev->len);
  // Keep the sums alive so the reads are not optimised away.
  volatile uint64_t sink = sum + sum2;
  (void)sink;
}

void walk_events(const unsigned char *buf, size_t bytes) {
  const unsigned char *end = buf + bytes;
  unsigned n = 0;
  size_t off = 0;
  for (const aio2_event *ev = aio2_event_next(buf, bytes, nullptr); ev;
       ev = aio2_event_next(buf, bytes, ev)) {
    const auto *b = reinterpret_cast<const unsigned char *>(ev);
    AIO2_FUZZ_CHECK(b == buf + off, b - buf, off);
    AIO2_FUZZ_CHECK(ev->len >= sizeof *ev && ev->len % 8 == 0 && ev->len <= bytes - off, ev->len);
    walk_attrs(ev, end);
    off += ev->len;
    n++;
  }
  const aio2::event_range range(std::span<const std::byte>(reinterpret_cast<const std::byte *>(buf), bytes));
  unsigned m = 0;
  size_t off2 = 0;
  for (const auto v : range) {
    AIO2_FUZZ_CHECK(reinterpret_cast<const unsigned char *>(v.native()) == buf + off2);
    off2 += v.size();
    m++;
  }
  AIO2_FUZZ_CHECK(m == n, m, n);
}

// aio2_attr_add in a request of `cap` bytes: it appends whole attributes or
// refuses (NULL), never writes past `cap` (the buffer is exactly `cap` long).
void build_request(input &in) {
  const size_t cap = sizeof(aio2_iocb) + (in.get<uint16_t>() % 2048);
  std::vector<unsigned char> mem(cap);
  auto *io = reinterpret_cast<aio2_iocb *>(mem.data());
  aio2_prep(io, 39, 1, 0, 0, 0, 0, 0, 0);
  unsigned char payload[512];
  for (int i = 0; i < 16 && !in.empty(); i++) {
    const auto id = in.get<uint16_t>();
    const auto flags = in.get<uint16_t>();
    const size_t plen = in.get<uint16_t>() % sizeof payload;
    in.bytes(payload, plen);
    const uint32_t before = io->len;
    void *p = aio2_attr_add(io, cap, id, flags, payload, plen);
    const size_t want = sizeof(aio2_attr) + ((plen + 7) & ~size_t{7});
    if (p == nullptr) {
      AIO2_FUZZ_CHECK(before + want > cap && io->len == before, before, want);
      continue;
    }
    AIO2_FUZZ_CHECK(io->len == before + want && io->len <= cap, io->len, cap);
    AIO2_FUZZ_CHECK(std::memcmp(p, payload, plen) == 0);
    aio2_attr a;
    std::memcpy(&a, mem.data() + before, sizeof a);
    AIO2_FUZZ_CHECK(a.id == id && a.flags == flags && a.len == want);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  // First byte: which half; the rest is the buffer (events) or the recipe
  // (request). Events are 8-aligned in real buffers: copy to an aligned heap
  // block of exactly the rest's size.
  const bool events = (data[0] & 1) == 0;
  if (events) {
    const size_t bytes = size - 1;
    // operator new's alignment is at least 16.
    auto *buf = static_cast<unsigned char *>(::operator new(bytes ? bytes : 1));
    if (bytes) std::memcpy(buf, data + 1, bytes);
    walk_events(buf, bytes);
    ::operator delete(buf);
  } else {
    input in(data + 1, size - 1);
    build_request(in);
  }
  return 0;
}
