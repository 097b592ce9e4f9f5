// SPDX-License-Identifier: MIT
// Stamped records for the ring's stress and two-process tests. A record's
// length, flags and every payload byte follow from (producer, sequence), so a
// reaper can verify a record it never saw produced, with no shared state.
#pragma once

#include <cstdint>
#include <cstring>

#include "aio2/ring.h"

namespace aio2_test {

// splitmix64: a fast, well-mixed hash of one 64-bit value.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Payload: producer id (u32), user flags echo (u32), sequence (u64), then
// filler words derived from (producer, sequence).
struct stamp_head {
  uint32_t producer;
  uint32_t flags;
  uint64_t seq;
};
constexpr uint32_t kMinStampLen = AIO2_RING_REC_HDR + sizeof(stamp_head);

// Record length for (producer, seq): 24 .. 24 + 8 * (spread - 1) bytes.
inline uint32_t stamp_len(uint32_t producer, uint64_t seq, uint32_t spread) {
  return kMinStampLen + 8u * static_cast<uint32_t>(mix(seq * 131u + producer) % spread);
}

inline uint32_t stamp_flags(uint32_t producer, uint64_t seq) {
  return static_cast<uint32_t>(mix(seq ^ (uint64_t{producer} << 40))) & AIO2_RING_REC_USER_MASK;
}

// Fills `payload` (len - 8 bytes) for (producer, seq).
inline void stamp_fill(unsigned char *payload, uint32_t len, uint32_t producer, uint64_t seq) {
  stamp_head h{producer, stamp_flags(producer, seq), seq};
  std::memcpy(payload, &h, sizeof h);
  for (uint32_t off = sizeof h; off + 8 <= len - AIO2_RING_REC_HDR; off += 8) {
    const uint64_t v = mix((seq << 20) ^ (uint64_t{producer} << 8) ^ off);
    std::memcpy(payload + off, &v, 8);
  }
}

// Checks a whole record (header included) against its stamp. Returns the
// stamp head through *out, and false if anything differs.
inline bool stamp_check(const unsigned char *rec, uint32_t spread, stamp_head *out) {
  aio2_ring_rec hdr;
  std::memcpy(&hdr, rec, sizeof hdr);
  if (hdr.len < kMinStampLen) return false;
  stamp_head h;
  std::memcpy(&h, rec + AIO2_RING_REC_HDR, sizeof h);
  *out = h;
  if (hdr.len != stamp_len(h.producer, h.seq, spread)) return false;
  if (hdr.flags != stamp_flags(h.producer, h.seq) || h.flags != hdr.flags) return false;
  unsigned char want[AIO2_RING_REC_HDR + 8 * 1024];
  if (hdr.len > sizeof want) return false;
  stamp_fill(want, hdr.len, h.producer, h.seq);
  return std::memcmp(want, rec + AIO2_RING_REC_HDR, hdr.len - AIO2_RING_REC_HDR) == 0;
}

}  // namespace aio2_test
