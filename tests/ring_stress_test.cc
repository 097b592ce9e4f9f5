// SPDX-License-Identifier: MIT
// Stress: several producers and reapers of both kinds hammer small rings
// (so they wrap and fill constantly) with stamped variable-length records,
// then a conservation check: every record reaped exactly once, intact, and
// in order per producer as each reaper saw it. Meant to run under
// ThreadSanitizer as well as in a plain build.

#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "aio2/ring.h"
#include "stamp.h"

namespace {

using aio2_test::stamp_check;
using aio2_test::stamp_fill;
using aio2_test::stamp_flags;
using aio2_test::stamp_head;
using aio2_test::stamp_len;

#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kBasePerProducer = 100000;  // TSan runs each access ~10x slower
#elif defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kBasePerProducer = 200000;
#else
constexpr uint64_t kBasePerProducer = 1000000;
#endif
constexpr uint32_t kSpread = 60;  // lengths 24 .. 496 bytes
constexpr auto kStallLimit = std::chrono::seconds(60);

uint64_t per_producer() {
  const char *s = std::getenv("AIO2_STRESS_SCALE");  // e.g. 10 for a long soak
  const uint64_t scale = s ? std::strtoull(s, nullptr, 10) : 1;
  return kBasePerProducer * (scale ? scale : 1);
}

enum class produce_api { push, reserve_commit };
enum class reap_api { copy, zero_copy };

struct stress_case {
  unsigned producers;
  unsigned reapers;
  reap_api reap;
  produce_api produce;
  uint64_t data_bytes;
  uint64_t start;
  std::string name;
};

void backoff(unsigned &spins) {
  if (++spins < 64) {
    aio2__cpu_relax();
  } else {
    spins = 0;
    sched_yield();
  }
}

// Produces `count` stamped records for producer `id`.
void produce(aio2_ring *r, uint32_t id, uint64_t count, produce_api api,
             std::atomic<bool> &failed) {
  unsigned char payload[8 * 1024];
  for (uint64_t seq = 0; seq < count && !failed.load(std::memory_order_relaxed); seq++) {
    const uint32_t len = stamp_len(id, seq, kSpread);
    stamp_fill(payload, len, id, seq);
    unsigned spins = 0;
    for (;;) {
      int err;
      if (api == produce_api::push) {
        err = aio2_ring_push(r, stamp_flags(id, seq), payload, len);
      } else {
        aio2_ring_rec *rec = nullptr;
        if (seq % 97 == 0 && aio2_ring_reserve(r, 16, &rec) == 0)
          aio2_ring_discard(r, rec);  // a reservation given back must vanish
        err = aio2_ring_reserve(r, len, &rec);
        if (err == 0) {
          aio2_ring_write(r, rec, 0, payload, len - AIO2_RING_REC_HDR);
          aio2_ring_commit(r, rec, stamp_flags(id, seq));
        }
      }
      if (err == 0) break;
      if (err != -EAGAIN) {
        ADD_FAILURE() << "producer " << id << ": " << aio2_ring_strerror(err);
        failed = true;
        return;
      }
      backoff(spins);
    }
  }
}

// What one reaper saw: per producer, the last sequence number.
struct reaper_state {
  std::vector<int64_t> last;
  uint64_t records = 0;
};

// gtest prints a parameter by name instead of as raw bytes.
[[maybe_unused]] void PrintTo(const stress_case &c, std::ostream *os) { *os << c.name; }

class RingStress : public ::testing::TestWithParam<stress_case> {};

TEST_P(RingStress, EveryRecordReapedExactlyOnceAndIntact) {
  const stress_case c = GetParam();
  const uint64_t n = per_producer();
  const uint64_t total = n * c.producers;
  uint32_t flags = 0;
  if (c.producers == 1) flags |= AIO2_RING_F_SINGLE_PRODUCER;
  if (c.reapers == 1) flags |= AIO2_RING_F_SINGLE_REAPER;
  aio2_ring *r = nullptr;
  ASSERT_EQ(aio2_ring_new(c.data_bytes, flags, c.start, &r), 0);

  // seen[p][seq]: how many times record (p, seq) was reaped.
  std::vector<std::vector<std::atomic<uint8_t>>> seen(c.producers);
  for (auto &v : seen) v = std::vector<std::atomic<uint8_t>>(n);
  std::atomic<uint64_t> reaped{0};
  std::atomic<bool> failed{false};
  std::vector<reaper_state> states(c.reapers);

  auto account = [&](reaper_state &st, const unsigned char *rec) {
    stamp_head h{};
    if (!stamp_check(rec, kSpread, &h) || h.producer >= c.producers || h.seq >= n) {
      ADD_FAILURE() << "damaged record: producer " << h.producer << " seq " << h.seq;
      failed = true;
      return;
    }
    if (static_cast<int64_t>(h.seq) <= st.last[h.producer]) {
      ADD_FAILURE() << "out of order: producer " << h.producer << " seq " << h.seq
                    << " after " << st.last[h.producer];
      failed = true;
    }
    if (c.reap == reap_api::zero_copy && static_cast<int64_t>(h.seq) != st.last[h.producer] + 1) {
      ADD_FAILURE() << "single reaper skipped: producer " << h.producer << " seq " << h.seq;
      failed = true;
    }
    st.last[h.producer] = static_cast<int64_t>(h.seq);
    seen[h.producer][h.seq].fetch_add(1, std::memory_order_relaxed);
    st.records++;
  };

  auto reap = [&](reaper_state &st) {
    st.last.assign(c.producers, -1);
    alignas(8) unsigned char buf[4096];
    auto progress = std::chrono::steady_clock::now();
    unsigned spins = 0;
    while (reaped.load(std::memory_order_relaxed) < total && !failed.load()) {
      uint64_t got = 0;
      if (c.reap == reap_api::zero_copy) {
        aio2_ring_rec *rec = nullptr;
        const int rc = aio2_ring_peek(r, &rec);
        if (rc < 0) {
          ADD_FAILURE() << "peek: " << aio2_ring_strerror(rc);
          failed = true;
          return;
        }
        if (rc == 1) {
          account(st, reinterpret_cast<const unsigned char *>(rec));
          aio2_ring_consume(r, rec);
          got = 1;
        }
      } else {
        const int64_t bytes = aio2_ring_reap(r, buf, sizeof buf, 0);
        if (bytes < 0) {
          ADD_FAILURE() << "reap: " << aio2_ring_strerror(static_cast<int>(bytes));
          failed = true;
          return;
        }
        for (int64_t off = 0; off < bytes;) {
          aio2_ring_rec hdr;
          std::memcpy(&hdr, buf + off, sizeof hdr);
          account(st, buf + off);
          off += hdr.len;
          got++;
        }
      }
      if (got) {
        reaped.fetch_add(got, std::memory_order_relaxed);
        progress = std::chrono::steady_clock::now();
        spins = 0;
      } else {
        if (std::chrono::steady_clock::now() - progress > kStallLimit) {
          ADD_FAILURE() << "no progress for " << kStallLimit.count() << " s";
          failed = true;
          return;
        }
        backoff(spins);
      }
    }
  };

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < c.reapers; i++) threads.emplace_back(reap, std::ref(states[i]));
  for (unsigned p = 0; p < c.producers; p++)
    threads.emplace_back(produce, r, p, n, c.produce, std::ref(failed));
  for (auto &t : threads) t.join();
  ASSERT_FALSE(failed.load());

  // Conservation: every (producer, seq) exactly once, and nothing left.
  uint64_t by_reapers = 0;
  for (const auto &st : states) by_reapers += st.records;
  EXPECT_EQ(by_reapers, total);
  EXPECT_EQ(reaped.load(), total);
  for (unsigned p = 0; p < c.producers; p++)
    for (uint64_t s = 0; s < n; s++)
      ASSERT_EQ(seen[p][s].load(), 1) << "producer " << p << " seq " << s;
  EXPECT_EQ(aio2_ring_used(r), 0u);
  // How the records split between reapers depends on scheduling, so it is
  // reported, not asserted.
  std::string split;
  for (const auto &st : states) split += (split.empty() ? "" : "/") + std::to_string(st.records);
  RecordProperty("records_per_reaper", split);
  aio2_ring_unmap(r);
}

constexpr uint64_t k2_64 = UINT64_MAX - 4095;  // start 4 KiB below 2^64
constexpr uint64_t k2_32 = (uint64_t{1} << 32) - 4096;

INSTANTIATE_TEST_SUITE_P(
    Mixes, RingStress,
    ::testing::Values(
        stress_case{1, 1, reap_api::zero_copy, produce_api::push, 4096, 0, "spsc_zero_copy"},
        stress_case{1, 1, reap_api::copy, produce_api::reserve_commit, 4096, k2_32, "spsc_copy_2_32"},
        stress_case{3, 1, reap_api::zero_copy, produce_api::push, 4096, k2_64, "mpsc_zero_copy_2_64"},
        stress_case{3, 3, reap_api::copy, produce_api::push, 4096, k2_64, "mpmc_copy_2_64"},
        stress_case{3, 3, reap_api::copy, produce_api::reserve_commit, 8192, k2_32,
                    "mpmc_reserve_2_32"},
        stress_case{2, 4, reap_api::copy, produce_api::push, 1024, 0, "mpmc_tiny_ring"}),
    [](const ::testing::TestParamInfo<stress_case> &i) { return i.param.name; });

}  // namespace
