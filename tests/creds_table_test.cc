// SPDX-License-Identifier: MIT
// sys::creds_table: equal snapshots share one entry, an entry nobody holds
// is reused for the next new set, and holders on many threads at once
// never see an entry overwritten under them (run under ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sys/creds.h"

namespace {

using aio2::sys::creds;
using aio2::sys::creds_table;

creds with_uid(uint32_t uid) {
  creds c;
  for (uint32_t &u : c.uid) u = uid;
  return c;
}

TEST(CredsTable, EqualSnapshotsShareAnEntry) {
  creds_table t;
  const creds *a = t.hold(with_uid(1));
  const creds *b = t.hold(with_uid(1));
  const creds *c = t.hold(with_uid(2));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(c->uid[1], 2u);
  creds_table::drop(a);
  creds_table::drop(b);
  creds_table::drop(c);
}

TEST(CredsTable, AnEntryNobodyHoldsIsReused) {
  creds_table t;
  const creds *a = t.hold(with_uid(1));
  creds_table::hold_again(a);
  creds_table::drop(a);
  // Still held once: a new set gets an entry of its own.
  const creds *b = t.hold(with_uid(2));
  EXPECT_NE(a, b);
  EXPECT_EQ(a->uid[0], 1u);
  creds_table::drop(a);
  // Nobody holds uid 1 now: uid 3 takes its entry.
  const creds *c = t.hold(with_uid(3));
  EXPECT_EQ(c, a);
  EXPECT_EQ(c->uid[0], 3u);
  creds_table::drop(b);
  creds_table::drop(c);
}

// Threads hold and drop four sets at random; each checks, while it holds,
// that its entry still says what it asked for.
TEST(CredsTable, ConcurrentHoldersKeepTheirEntries) {
  creds_table t;
  constexpr int kThreads = 4, kRounds = 20000;
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; i++) {
    ts.emplace_back([&, i] {
      uint64_t seed = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
      for (int r = 0; r < kRounds; r++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const uint32_t uid = static_cast<uint32_t>(seed >> 60) & 3u;
        const creds *h = t.hold(with_uid(uid));
        if (h == nullptr) {
          wrong.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        creds_table::hold_again(h);
        for (uint32_t u : h->uid)
          if (u != uid) wrong.fetch_add(1, std::memory_order_relaxed);
        creds_table::drop(h);
        if (h->uid[2] != uid) wrong.fetch_add(1, std::memory_order_relaxed);
        creds_table::drop(h);
      }
    });
  }
  for (std::thread &th : ts) th.join();
  EXPECT_EQ(wrong.load(), 0);
  // All dropped: new sets are held as ever.
  const creds *a = t.hold(with_uid(7));
  const creds *b = t.hold(with_uid(8));
  const creds *c = t.hold(with_uid(9));
  const creds *d = t.hold(with_uid(10));
  EXPECT_TRUE(a && b && c && d);
  for (const creds *x : {a, b, c, d}) creds_table::drop(x);
}

}  // namespace
