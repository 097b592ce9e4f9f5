// SPDX-License-Identifier: MIT
// The generic ring, one edge at a time: geometry, empty, full, exact fit,
// wrap with PAD, zero-payload records, limits, BUSY, discard, both reaper
// kinds, positions near 2^32 and 2^64, and corruption detected, not followed.

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "aio2/ring.h"

namespace {

struct ring_deleter {
  void operator()(aio2_ring *r) const { aio2_ring_unmap(r); }
};
using ring_ptr = std::unique_ptr<aio2_ring, ring_deleter>;

ring_ptr make_ring(uint64_t data_bytes, uint32_t flags = 0, uint64_t start = 0) {
  aio2_ring *r = nullptr;
  const int err = aio2_ring_new(data_bytes, flags, start, &r);
  EXPECT_EQ(err, 0) << aio2_ring_strerror(err);
  return ring_ptr(r);
}

// A payload of `len - 8` bytes whose every byte depends on `tag`.
std::vector<unsigned char> payload(uint32_t len, unsigned tag) {
  std::vector<unsigned char> p(len - AIO2_RING_REC_HDR);
  for (size_t i = 0; i < p.size(); i++) p[i] = static_cast<unsigned char>(tag * 31 + i);
  return p;
}

// True when `bytes` holds payload `p` (memcmp must not see an empty vector's
// null data pointer).
bool same(const unsigned char *bytes, const std::vector<unsigned char> &p) {
  return p.empty() || std::memcmp(bytes, p.data(), p.size()) == 0;
}

int push(aio2_ring *r, uint32_t len, unsigned tag, uint32_t flags = 0) {
  const auto p = payload(len, tag);
  return aio2_ring_push(r, flags, p.data(), len);
}

// Peeks the next record and checks that it is (len, tag, flags); consumes it.
void expect_peek(aio2_ring *r, uint32_t len, unsigned tag, uint32_t flags = 0) {
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_peek(r, &rec), 1);
  EXPECT_EQ(rec->len, len);
  EXPECT_EQ(rec->flags, flags);
  const auto p = payload(len, tag);
  EXPECT_TRUE(same(reinterpret_cast<unsigned char *>(rec) + 8, p));
  aio2_ring_consume(r, rec);
}

uint64_t offset_of(const aio2_ring *r, const void *rec) {
  return static_cast<uint64_t>(static_cast<const unsigned char *>(rec) -
                               (reinterpret_cast<const unsigned char *>(r) + AIO2_RING_HDR_BYTES));
}

TEST(RingGeometry, InitRefusesBadArguments) {
  alignas(64) static unsigned char mem[AIO2_RING_HDR_BYTES + 4096];
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 4096, 0, 0), 0);
  EXPECT_EQ(aio2_ring_init(nullptr, sizeof mem, 4096, 0, 0), -EINVAL);
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 3000, 0, 0), -EINVAL);     // not a power of two
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 32, 0, 0), -EINVAL);       // below the minimum
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 8192, 0, 0), -EINVAL);     // larger than the memory
  EXPECT_EQ(aio2_ring_init(mem + 8, sizeof mem - 8, 2048, 0, 0), -EINVAL);  // misaligned
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 4096, 0x80, 0), -EINVAL);  // unknown flag
  EXPECT_EQ(aio2_ring_init(mem, sizeof mem, 4096, 0, 12), -EINVAL);    // unaligned start
  aio2_ring *r = nullptr;
  EXPECT_EQ(aio2_ring_new(100, 0, 0, &r), -EINVAL);
  EXPECT_EQ(aio2_ring_unmap(nullptr), -EINVAL);
}

TEST(RingGeometry, MaxRecordIsHalfTheDataArea) {
  auto r = make_ring(4096);
  EXPECT_EQ(aio2_ring_max_record(r.get()), 2048u);
}

TEST(Ring, EmptyRingHasNothing) {
  auto r = make_ring(4096);
  aio2_ring_rec *rec = nullptr;
  unsigned char buf[64];
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), 0);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 0);
  EXPECT_EQ(aio2_ring_used(r.get()), 0u);
  EXPECT_EQ(aio2_ring_next_len(r.get()), 0u);
}

TEST(Ring, RoundTripKeepsPayloadAndFlags) {
  auto r = make_ring(4096);
  ASSERT_EQ(push(r.get(), 40, 1, 0x1234), 0);
  ASSERT_EQ(push(r.get(), 8 + 8 * 17, 2, AIO2_RING_REC_USER_MASK), 0);
  EXPECT_EQ(aio2_ring_used(r.get()), 40u + 8 + 8 * 17);
  expect_peek(r.get(), 40, 1, 0x1234);
  expect_peek(r.get(), 8 + 8 * 17, 2, AIO2_RING_REC_USER_MASK);
  EXPECT_EQ(aio2_ring_used(r.get()), 0u);
}

TEST(Ring, ZeroPayloadRecord) {
  auto r = make_ring(64);
  ASSERT_EQ(aio2_ring_push(r.get(), 7, nullptr, 8), 0);
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_peek(r.get(), &rec), 1);
  EXPECT_EQ(rec->len, 8u);
  EXPECT_EQ(rec->flags, 7u);
  aio2_ring_consume(r.get(), rec);
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), 0);
}

TEST(Ring, BadLengthsAndFlagsAreRefusedAndLoseNothing) {
  auto r = make_ring(4096);
  ASSERT_EQ(push(r.get(), 32, 9), 0);
  const unsigned char big[4096] = {};
  aio2_ring_rec *rec = nullptr;
  EXPECT_EQ(aio2_ring_push(r.get(), 0, big, 12), -EINVAL);  // not a multiple of 8
  EXPECT_EQ(aio2_ring_push(r.get(), 0, big, 0), -EINVAL);   // shorter than a header
  EXPECT_EQ(aio2_ring_reserve(r.get(), 4, &rec), -EINVAL);
  EXPECT_EQ(aio2_ring_push(r.get(), 0, big, 2056), -E2BIG);  // above data_bytes / 2
  EXPECT_EQ(aio2_ring_push(r.get(), 0, big, 4096), -E2BIG);  // as large as the ring
  EXPECT_EQ(aio2_ring_push(r.get(), AIO2_RING_REC_BUSY, big, 16), -EINVAL);  // ring-owned bit
  EXPECT_EQ(aio2_ring_push(r.get(), AIO2_RING_REC_PAD, big, 16), -EINVAL);
  EXPECT_EQ(aio2_ring_used(r.get()), 32u);
  expect_peek(r.get(), 32, 9);
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), 0);
}

TEST(Ring, FullRingSaysNoRoomAndKeepsEverything) {
  auto r = make_ring(256);
  unsigned n = 0;
  while (push(r.get(), 24, n) == 0) n++;
  EXPECT_EQ(push(r.get(), 24, 99), -EAGAIN);
  EXPECT_EQ(n, 10u);  // 10 * 24 = 240; 16 bytes left, too few
  EXPECT_EQ(aio2_ring_used(r.get()), 240u);
  ASSERT_EQ(push(r.get(), 16, 50), 0);  // exactly fits
  EXPECT_EQ(aio2_ring_used(r.get()), 256u);
  EXPECT_EQ(aio2_ring_push(r.get(), 0, nullptr, 8), -EAGAIN);  // not even 8 bytes
  for (unsigned i = 0; i < n; i++) expect_peek(r.get(), 24, i);
  expect_peek(r.get(), 16, 50);
  aio2_ring_rec *rec = nullptr;
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), 0);
}

TEST(Ring, WrapInsertsPadAndKeepsRecordsContiguous) {
  auto r = make_ring(64);
  ASSERT_EQ(push(r.get(), 24, 1), 0);  // [0, 24)
  ASSERT_EQ(push(r.get(), 24, 2), 0);  // [24, 48)
  expect_peek(r.get(), 24, 1);
  expect_peek(r.get(), 24, 2);
  // 16 bytes remain before the end: a 24-byte record needs a 16-byte PAD.
  ASSERT_EQ(push(r.get(), 24, 3), 0);
  EXPECT_EQ(aio2_ring_used(r.get()), 16u + 24u);
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_peek(r.get(), &rec), 1);
  EXPECT_EQ(offset_of(r.get(), rec), 0u);  // the record starts the area again
  EXPECT_EQ(aio2_ring_used(r.get()), 24u);  // the PAD was consumed on the way
  aio2_ring_consume(r.get(), rec);
}

TEST(Ring, PadPlusRecordMustFitOrNothingIsWritten) {
  auto r = make_ring(64);
  ASSERT_EQ(push(r.get(), 32, 1), 0);  // [0, 32)
  ASSERT_EQ(push(r.get(), 16, 2), 0);  // [32, 48)
  expect_peek(r.get(), 32, 1);
  // free = 48 bytes, but 32 at the end are only 16 long: PAD 16 + 32 = 48 fits exactly.
  ASSERT_EQ(push(r.get(), 32, 3), 0);
  EXPECT_EQ(aio2_ring_used(r.get()), 64u);
  EXPECT_EQ(push(r.get(), 8 + 0, 4), -EAGAIN);
  expect_peek(r.get(), 16, 2);
  expect_peek(r.get(), 32, 3);
}

TEST(Ring, MaxRecordFitsAnEmptyRingAtEveryOffset) {
  auto r = make_ring(128);
  const uint32_t max = aio2_ring_max_record(r.get());
  for (unsigned step = 0; step < 16; step++) {
    ASSERT_EQ(push(r.get(), max, step), 0) << "offset " << (step * 8);
    expect_peek(r.get(), max, step);
    ASSERT_EQ(push(r.get(), 8, step), 0);  // move the offset on by 8
    expect_peek(r.get(), 8, step);
  }
}

TEST(Ring, BusyRecordHoldsBackItAndEverythingAfterIt) {
  auto r = make_ring(4096);
  ASSERT_EQ(push(r.get(), 16, 1), 0);
  aio2_ring_rec *busy = nullptr;
  ASSERT_EQ(aio2_ring_reserve(r.get(), 32, &busy), 0);
  ASSERT_EQ(push(r.get(), 16, 3), 0);
  unsigned char buf[256];
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 16);  // only the first
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 0);   // the busy one blocks
  const auto p = payload(32, 2);
  aio2_ring_write(r.get(), busy, 0, p.data(), p.size());
  aio2_ring_commit(r.get(), busy, 5 | AIO2_RING_REC_BUSY);  // ring bits are ignored
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 32 + 16);
  aio2_ring_rec hdr;
  std::memcpy(&hdr, buf, 8);
  EXPECT_EQ(hdr.len, 32u);
  EXPECT_EQ(hdr.flags, 5u);
  EXPECT_EQ(std::memcmp(buf + 8, p.data(), p.size()), 0);
}

// One reservation committed as three records (16, 40 and 24 bytes): none is
// seen before the commit, all three after it, each with its own flags and
// payload, by both kinds of reaper, with one producer or many, at the wrap
// (a PAD in front of the reservation) as elsewhere.
void split_commit_round(aio2_ring *r, unsigned tag, bool copy) {
  const uint32_t lens[3] = {16, 40, 24}, flags[3] = {7, 8, 9};
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_reserve(r, 80, &rec), 0);
  // The rest of the reservation: records 2 and 3, headers and payloads.
  std::vector<unsigned char> rest;
  for (unsigned i = 1; i < 3; i++) {
    const aio2_ring_rec h{lens[i], flags[i]};
    const auto p = payload(lens[i], tag + i);
    rest.insert(rest.end(), reinterpret_cast<const unsigned char *>(&h),
                reinterpret_cast<const unsigned char *>(&h) + sizeof h);
    rest.insert(rest.end(), p.begin(), p.end());
  }
  const auto p0 = payload(lens[0], tag);
  aio2_ring_write(r, rec, 0, p0.data(), p0.size());
  aio2_ring_write(r, rec, p0.size(), rest.data(), rest.size());
  aio2_ring_rec *none = nullptr;
  ASSERT_EQ(aio2_ring_peek(r, &none), 0) << "a record of the reservation showed before its commit";
  aio2_ring_commit_split(r, rec, lens[0], flags[0] | AIO2_RING_REC_BUSY);  // ring bits ignored
  if (!copy) {
    for (unsigned i = 0; i < 3; i++) expect_peek(r, lens[i], tag + i, flags[i]);
  } else {
    alignas(8) unsigned char buf[256];
    ASSERT_EQ(aio2_ring_reap(r, buf, sizeof buf, 0), 80);
    size_t at = 0;
    for (unsigned i = 0; i < 3; i++) {
      aio2_ring_rec h;
      std::memcpy(&h, buf + at, sizeof h);
      EXPECT_EQ(h.len, lens[i]);
      EXPECT_EQ(h.flags, flags[i]);
      EXPECT_TRUE(same(buf + at + 8, payload(lens[i], tag + i)));
      at += lens[i];
    }
  }
  EXPECT_EQ(aio2_ring_used(r), 0u);
}

TEST(Ring, SplitCommitPublishesEveryRecordOfTheReservationAtOnce) {
  for (const uint32_t mode : {0u, AIO2_RING_F_SINGLE_PRODUCER | AIO2_RING_F_SINGLE_REAPER}) {
    for (const bool copy : {false, true}) {
      SCOPED_TRACE(testing::Message() << "flags " << mode << " copy " << copy);
      // 256 bytes: 80-byte reservations meet the wrap at every 8-byte offset.
      auto r = make_ring(256, mode);
      for (unsigned round = 0; round < 40; round++) {
        split_commit_round(r.get(), round * 3, copy);
        if (HasFatalFailure()) return;
        if (round % 3 == 0) {  // shift the next reservation's offset
          ASSERT_EQ(push(r.get(), 8, 0), 0);
          expect_peek(r.get(), 8, 0);
        }
      }
    }
  }
}

TEST(Ring, DiscardedReservationIsSkipped) {
  auto r = make_ring(4096);
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_reserve(r.get(), 64, &rec), 0);
  ASSERT_EQ(push(r.get(), 16, 7), 0);
  aio2_ring_discard(r.get(), rec);
  expect_peek(r.get(), 16, 7);
  EXPECT_EQ(aio2_ring_used(r.get()), 0u);
}

TEST(Ring, ReapCopiesWholeRecordsAndHonoursLimits) {
  auto r = make_ring(4096);
  for (unsigned i = 0; i < 4; i++) ASSERT_EQ(push(r.get(), 40, i), 0);
  unsigned char buf[200];
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, 39, 0), -ENOBUFS);  // less than one record
  EXPECT_EQ(aio2_ring_next_len(r.get()), 40u);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 1), 40);  // max_recs
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, 100, 0), 80);         // two fit in 100 bytes
  const auto p1 = payload(40, 1), p2 = payload(40, 2);
  EXPECT_EQ(std::memcmp(buf + 8, p1.data(), p1.size()), 0);
  EXPECT_EQ(std::memcmp(buf + 48, p2.data(), p2.size()), 0);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 40);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 0);
}

// Every payload size from 0 to 120 bytes: reap copies small payloads in
// fixed-size pieces (8, two of 16, two of 32) and larger ones with memcpy;
// each comes out byte for byte, and nothing is written past its record.
TEST(Ring, ReapCopiesEveryPayloadSizeExactly) {
  auto r = make_ring(4096);
  for (uint32_t len = 8; len <= 128; len += 8) {
    SCOPED_TRACE(len);
    ASSERT_EQ(push(r.get(), len, len), 0);
    alignas(8) unsigned char buf[256];
    std::memset(buf, 0xa5, sizeof buf);
    ASSERT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), static_cast<int64_t>(len));
    aio2_ring_rec hdr;
    std::memcpy(&hdr, buf, sizeof hdr);
    EXPECT_EQ(hdr.len, len);
    EXPECT_TRUE(same(buf + 8, payload(len, len)));
    for (size_t i = len; i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xa5) << "byte " << i;
  }
}

TEST(Ring, SingleProducerModePublishesAtCommit) {
  auto r = make_ring(128, AIO2_RING_F_SINGLE_PRODUCER | AIO2_RING_F_SINGLE_REAPER);
  ASSERT_EQ(push(r.get(), 48, 1), 0);
  ASSERT_EQ(push(r.get(), 48, 2), 0);
  expect_peek(r.get(), 48, 1);
  expect_peek(r.get(), 48, 2);
  aio2_ring_rec *rec = nullptr;
  ASSERT_EQ(aio2_ring_reserve(r.get(), 48, &rec), 0);  // needs a PAD of 32
  EXPECT_EQ(offset_of(r.get(), rec), 0u);
  EXPECT_EQ(aio2_ring_used(r.get()), 0u);  // nothing published yet
  const auto p = payload(48, 3);
  aio2_ring_write(r.get(), rec, 0, p.data(), p.size());
  aio2_ring_commit(r.get(), rec, 0);
  EXPECT_EQ(aio2_ring_used(r.get()), 32u + 48u);
  expect_peek(r.get(), 48, 3);
}

// Runs a fixed sequence of wrapping pushes and reaps from `start` and checks
// every record. Exercises both reaper kinds across the 2^32 and 2^64 wraps.
void run_wrapping_sequence(uint64_t start, bool copy_reaper) {
  auto r = make_ring(256, 0, start);
  unsigned char buf[512];
  unsigned next_push = 0, next_pop = 0;
  for (int round = 0; round < 200; round++) {
    const uint32_t len = 8 + 8 * static_cast<uint32_t>((round * 7) % 15);
    while (push(r.get(), len, next_push) == 0) next_push++;
    // Reap about half of what is there.
    const unsigned target = next_pop + (next_push - next_pop + 1) / 2;
    while (next_pop < target) {
      if (copy_reaper) {
        const int64_t got = aio2_ring_reap(r.get(), buf, sizeof buf, 1);
        ASSERT_GT(got, 0);
        aio2_ring_rec hdr;
        std::memcpy(&hdr, buf, 8);
        const auto p = payload(hdr.len, next_pop);
        ASSERT_TRUE(same(buf + 8, p)) << "record " << next_pop;
      } else {
        aio2_ring_rec *rec = nullptr;
        ASSERT_EQ(aio2_ring_peek(r.get(), &rec), 1);
        const auto p = payload(rec->len, next_pop);
        ASSERT_TRUE(same(reinterpret_cast<unsigned char *>(rec) + 8, p));
        aio2_ring_consume(r.get(), rec);
      }
      next_pop++;
    }
  }
  const uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
  EXPECT_GT(tail - start, 200u * 64u);  // moved well past the start
  if (start > UINT64_MAX - 1024) {
    EXPECT_LT(tail, start);  // and wrapped round 2^64
  }
}

class RingPositions : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RingPositions, CopyReaperAcrossWrap) { run_wrapping_sequence(GetParam(), true); }
TEST_P(RingPositions, ZeroCopyReaperAcrossWrap) { run_wrapping_sequence(GetParam(), false); }

INSTANTIATE_TEST_SUITE_P(Starts, RingPositions,
                         ::testing::Values(uint64_t{0}, (uint64_t{1} << 32) - 64,
                                           (uint64_t{1} << 32) - 8, UINT64_MAX - 63,
                                           UINT64_MAX - 7, UINT64_MAX - 255));

// ---- corruption --------------------------------------------------------

TEST(RingAttach, ValidatesEveryHeaderField) {
  auto r = make_ring(1024);
  const size_t mem = aio2_ring_mem_bytes(1024);
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), 0);
  EXPECT_EQ(aio2_ring_attach(nullptr, mem), -EINVAL);
  EXPECT_EQ(aio2_ring_attach(r.get(), 100), -EMSGSIZE);  // shorter than a header

  r->magic ^= 1;
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -ENOEXEC);
  r->magic ^= 1;
  r->version = AIO2_RING_VERSION + 1;
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EPROTONOSUPPORT);
  r->version = AIO2_RING_VERSION;
  r->hdr_bytes = 256;
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EMSGSIZE);
  r->hdr_bytes = AIO2_RING_HDR_BYTES;
  r->data_bytes = 1000;  // not a power of two
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EMSGSIZE);
  r->data_bytes = 2048;  // larger than the mapping
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EMSGSIZE);
  r->data_bytes = 1024;
  r->setup_flags = 0x100;
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EINVAL);
  r->setup_flags = 0;
  r->tail = 2048;  // more in use than the ring holds
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EUCLEAN);
  r->tail = 0;
  r->head = 4;  // unaligned
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), -EUCLEAN);
  r->head = 0;
  EXPECT_EQ(aio2_ring_attach(r.get(), mem), 0);
}

// Every corrupt combination of positions, one row each, on a ring whose data
// area is 1024 bytes; attach refuses each with -EUCLEAN and accepts the sound
// rows. Positions are relative to a base, run at 0 and just below 2^64.
struct positions_row {
  const char *what;
  uint64_t head, tail, producer_head, reaper_tail;
  int want;
};

constexpr uint64_t kNone = ~uint64_t{0};  // "same as head"

const positions_row kPositionRows[] = {
    {"empty", 0, 0, kNone, kNone, 0},
    {"full", 0, 1024, kNone, kNone, 0},
    {"half full", 64, 576, kNone, kNone, 0},
    // Version 2 locks with tail_owner: bit 0 of tail is corruption too.
    {"tail with bit 0 set", 0, 16 | 1, kNone, kNone, -EUCLEAN},
    {"producer_head behind head", 512, 1024, 256, kNone, 0},
    {"producer_head far behind (not trusted)", 4096, 4096, 0, kNone, 0},
    {"reaper_tail between head and tail", 0, 512, kNone, 256, 0},
    {"reaper_tail behind head (copying reapers only)", 4096, 4104, kNone, 0, 0},
    {"tail bit 1", 0, 18, kNone, kNone, -EUCLEAN},
    {"tail bit 2", 0, 20, kNone, kNone, -EUCLEAN},
    {"tail bits 1 and 2", 0, 22, kNone, kNone, -EUCLEAN},
    {"tail bits 0 and 2", 0, 21, kNone, kNone, -EUCLEAN},
    {"head unaligned", 4, 16, kNone, kNone, -EUCLEAN},
    {"head past tail", 64, 16, kNone, kNone, -EUCLEAN},
    {"tail - head above data_bytes", 0, 1032, kNone, kNone, -EUCLEAN},
    {"tail far ahead", 0, uint64_t{1} << 40, kNone, kNone, -EUCLEAN},
    {"producer_head unaligned", 0, 16, 4, kNone, -EUCLEAN},
    {"producer_head past head", 0, 512, 256, kNone, -EUCLEAN},
    {"producer_head past tail", 0, 512, 768, kNone, -EUCLEAN},
    {"reaper_tail unaligned", 0, 16, kNone, 12, -EUCLEAN},
    {"reaper_tail past tail", 0, 256, kNone, 512, -EUCLEAN},
};

class RingAttachPositions : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RingAttachPositions, RefusesEveryCorruptPosition) {
  const uint64_t base = GetParam();
  auto r = make_ring(1024, 0, base);
  const size_t mem = aio2_ring_mem_bytes(1024);
  for (const auto &row : kPositionRows) {
    r->head = base + row.head;
    r->tail = base + row.tail;
    r->producer_head = base + (row.producer_head == kNone ? row.head : row.producer_head);
    r->reaper_tail = base + (row.reaper_tail == kNone ? row.head : row.reaper_tail);
    EXPECT_EQ(aio2_ring_attach(r.get(), mem), row.want) << row.what;
  }
}

INSTANTIATE_TEST_SUITE_P(Bases, RingAttachPositions,
                         ::testing::Values(uint64_t{0}, (uint64_t{1} << 32) - 256,
                                           UINT64_MAX - 255));

// The contract's example: a tail with bits 1-2 set is refused by attach, and
// a producer that meets one anyway writes nothing there.
TEST(RingCorruption, MisalignedTailIsRefusedByProducers) {
  for (uint32_t flags : {0u, unsigned{AIO2_RING_F_SINGLE_PRODUCER}}) {
    auto r = make_ring(1024, flags);
    ASSERT_EQ(push(r.get(), 16, 1), 0);
    r->tail += 4;  // 20
    EXPECT_EQ(aio2_ring_attach(r.get(), aio2_ring_mem_bytes(1024)), -EUCLEAN);
    EXPECT_EQ(push(r.get(), 16, 2), -EUCLEAN) << flags;
    EXPECT_EQ(r->tail, 20u) << "a refused reserve leaves tail as it found it";
    r->tail -= 4;
    expect_peek(r.get(), 16, 1);
    ASSERT_EQ(push(r.get(), 16, 3), 0);
    expect_peek(r.get(), 16, 3);
  }
}

// aio2_ring_unmap unmaps what was mapped, whatever data_bytes says now: a
// peer that rewrites data_bytes in shared memory cannot make it unmap this
// process's other memory, or leave part of the ring mapped.
// Found by fuzz_ring (corpus file crash_next_len_unaligned_head): a peer
// that writes an unaligned head made aio2_ring_next_len read a word across
// the end of the data area. The ring here ends at a PROT_NONE page, so such
// a read faults; each reaper must answer without it.
TEST(RingCorruption, UnalignedHeadIsNotReadAcrossTheEnd) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t mem = aio2_ring_mem_bytes(1024);
  void *m = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto *base = static_cast<unsigned char *>(m);
  ASSERT_EQ(mprotect(base + page, page, PROT_NONE), 0);
  auto *r = reinterpret_cast<aio2_ring *>(base + page - mem);
  ASSERT_EQ(aio2_ring_init(r, mem, 1024, 0, 1016), 0);
  ASSERT_EQ(push(r, 8, 2), 0);  // the data area's last word
  r->head = 1020;  // 4 bytes before the end: a word there crosses it
  EXPECT_EQ(aio2_ring_next_len(r), 0u);
  aio2_ring_rec *rec = nullptr;
  alignas(8) unsigned char buf[64];
  EXPECT_EQ(aio2_ring_peek(r, &rec), -EUCLEAN);
  EXPECT_EQ(aio2_ring_reap(r, buf, sizeof buf, 0), -EUCLEAN);
  r->head = 1016;
  EXPECT_EQ(aio2_ring_next_len(r), 8u);
  munmap(m, 2 * page);
}

TEST(RingUnmap, IgnoresDataBytesRewrittenByAPeer) {
  const long page = sysconf(_SC_PAGESIZE);
  int fd = -1;
  aio2_ring *a = nullptr, *b = nullptr;
  ASSERT_EQ(aio2_ring_memfd_create("ring-unmap", 4096, 0, 0, 0, &fd, &a), 0);
  ASSERT_EQ(aio2_ring_map_fd(fd, &b), 0);
  // A page mapped right after b's mapping: an unmap that trusted a larger
  // data_bytes would take it away too.
  const size_t b_bytes = (aio2_ring_mem_bytes(4096) + page - 1) / page * page;
  void *after = mmap(reinterpret_cast<unsigned char *>(b) + b_bytes, page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  const bool have_after = after != MAP_FAILED;
  a->data_bytes = uint64_t{1} << 30;  // the peer's write, seen by b too
  EXPECT_EQ(aio2_ring_unmap(b), 0);
  if (have_after) {
    unsigned char vec = 0;
    EXPECT_EQ(mincore(after, page, &vec), 0) << "the page after the ring was unmapped";
    munmap(after, page);
  }
  // The whole of b's mapping is gone (mincore fails on unmapped memory).
  unsigned char vec = 0;
  EXPECT_EQ(mincore(b, page, &vec), -1);
  EXPECT_EQ(errno, ENOMEM);
  a->data_bytes = 8;  // shorter than the real ring
  EXPECT_EQ(aio2_ring_unmap(a), 0);
  EXPECT_EQ(mincore(reinterpret_cast<unsigned char *>(a) + b_bytes - page, page, &vec), -1);
  close(fd);
}

TEST(RingUnmap, RefusesWhatItDidNotMap) {
  alignas(64) static unsigned char mem[AIO2_RING_HDR_BYTES + 4096];
  ASSERT_EQ(aio2_ring_init(mem, sizeof mem, 4096, 0, 0), 0);
  EXPECT_EQ(aio2_ring_unmap(reinterpret_cast<aio2_ring *>(mem)), -EINVAL);
  aio2_ring *r = nullptr;
  ASSERT_EQ(aio2_ring_new(4096, 0, 0, &r), 0);
  EXPECT_EQ(aio2_ring_unmap(r), 0);
  EXPECT_EQ(aio2_ring_unmap(r), -EINVAL);  // already unmapped
}

TEST(RingCorruption, CorruptPositionsAreReportedNotFollowed) {
  auto r = make_ring(1024);
  ASSERT_EQ(push(r.get(), 16, 1), 0);
  r->tail += 4096;  // tail - head > data_bytes
  aio2_ring_rec *rec = nullptr;
  unsigned char buf[64];
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), -EUCLEAN);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), -EUCLEAN);
  EXPECT_EQ(push(r.get(), 16, 2), -EUCLEAN);
  r->tail -= 4096;
  expect_peek(r.get(), 16, 1);  // nothing was lost
}

// Each way a record header can lie: reaping stops before it with -EBADMSG,
// what came before is delivered, and once repaired nothing is lost.
TEST(RingCorruption, CorruptLengthIsReportedAndNothingIsLost) {
  const uint32_t lies[] = {0, 4, 12, 8 * 1000, 0xfffffff8u};
  for (const uint32_t lie : lies) {
    for (const bool copy : {false, true}) {
      SCOPED_TRACE("len " + std::to_string(lie) + (copy ? " copy" : " zero-copy"));
      auto r = make_ring(1024);
      ASSERT_EQ(push(r.get(), 24, 1), 0);
      ASSERT_EQ(push(r.get(), 32, 2), 0);  // at offset 24: corrupted below
      ASSERT_EQ(push(r.get(), 40, 3), 0);
      auto *victim = reinterpret_cast<aio2_ring_rec *>(reinterpret_cast<unsigned char *>(r.get()) +
                                                       AIO2_RING_HDR_BYTES + 24);
      victim->len = lie;
      unsigned char buf[256];
      aio2_ring_rec *rec = nullptr;
      if (copy) {
        EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), 24);  // the sound one first
        EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), -EBADMSG);
        EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), -EBADMSG);  // and again
      } else {
        expect_peek(r.get(), 24, 1);
        EXPECT_EQ(aio2_ring_peek(r.get(), &rec), -EBADMSG);
        EXPECT_EQ(aio2_ring_peek(r.get(), &rec), -EBADMSG);
      }
      EXPECT_EQ(aio2_ring_used(r.get()), 72u);
      victim->len = 32;
      expect_peek(r.get(), 32, 2);
      expect_peek(r.get(), 40, 3);
    }
  }
}

TEST(RingCorruption, RecordCrossingTheEndIsCorrupt) {
  auto r = make_ring(128);
  ASSERT_EQ(push(r.get(), 64, 1), 0);  // [0, 64)
  ASSERT_EQ(push(r.get(), 48, 2), 0);  // [64, 112)
  expect_peek(r.get(), 64, 1);
  expect_peek(r.get(), 48, 2);
  ASSERT_EQ(push(r.get(), 16, 3), 0);  // [112, 128): exactly up to the end
  ASSERT_EQ(push(r.get(), 16, 4), 0);  // [0, 16): 32 bytes are in use
  auto *victim = reinterpret_cast<aio2_ring_rec *>(reinterpret_cast<unsigned char *>(r.get()) +
                                                   AIO2_RING_HDR_BYTES + 112);
  victim->len = 32;  // within what is in use, but past the end of the data area
  aio2_ring_rec *rec = nullptr;
  unsigned char buf[64];
  EXPECT_EQ(aio2_ring_peek(r.get(), &rec), -EBADMSG);
  EXPECT_EQ(aio2_ring_reap(r.get(), buf, sizeof buf, 0), -EBADMSG);
  victim->len = 16;
  expect_peek(r.get(), 16, 3);
  expect_peek(r.get(), 16, 4);
}

TEST(RingErrors, EveryCodeHasItsOwnMessage) {
  const int codes[] = {-EINVAL, -E2BIG, -EAGAIN, -ENOBUFS, -ENOEXEC,
                       -EPROTONOSUPPORT, -EMSGSIZE, -EUCLEAN, -EBADMSG};
  std::set<std::string> seen;
  for (const int c : codes) {
    const std::string m = aio2_ring_strerror(c);
    EXPECT_NE(m, aio2_ring_strerror(-9999)) << c;
    seen.insert(m);
  }
  EXPECT_EQ(seen.size(), std::size(codes));
}

// ---- memory shared through a memfd ---------------------------------------

TEST(RingMemfd, TwoMappingsSeeOneRing) {
  int fd = -1;
  aio2_ring *a = nullptr, *b = nullptr;
  ASSERT_EQ(aio2_ring_memfd_create("ring-test", 4096, 0, 0, 0, &fd, &a), 0);
  ASSERT_EQ(aio2_ring_map_fd(fd, &b), 0);
  ASSERT_NE(a, b);
  ASSERT_EQ(push(a, 48, 4), 0);
  unsigned char buf[64];
  ASSERT_EQ(aio2_ring_reap(b, buf, sizeof buf, 0), 48);
  const auto p = payload(48, 4);
  EXPECT_EQ(std::memcmp(buf + 8, p.data(), p.size()), 0);
  EXPECT_EQ(aio2_ring_used(a), 0u);
  EXPECT_EQ(aio2_ring_unmap(a), 0);
  EXPECT_EQ(aio2_ring_unmap(b), 0);
  close(fd);
}

TEST(RingMemfd, MapRefusesWhatIsNotARing) {
  const int fd = memfd_create("not-a-ring", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  aio2_ring *r = nullptr;
  EXPECT_EQ(aio2_ring_map_fd(fd, &r), -EMSGSIZE);  // empty file
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  EXPECT_EQ(aio2_ring_map_fd(fd, &r), -ENOEXEC);  // zeroes: no magic
  EXPECT_EQ(aio2_ring_map_fd(-1, &r), -EBADF);
  close(fd);
}

}  // namespace
