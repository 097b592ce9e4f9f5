// SPDX-License-Identifier: MIT
// core/slots: the single-entry cell in front of the free list loses no
// slot and never hands one slot to two owners.
#include "core/slots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

namespace {

using aio2::core::slots;
using aio2::exec::request;

TEST(Slots, TakeAfterPutReusesTheSlot) {
  slots s;
  request *a = nullptr;
  ASSERT_EQ(s.take(&a, 1), 1u);
  s.put(a);
  request *b = nullptr;
  ASSERT_EQ(s.take(&b, 1), 1u);
  EXPECT_EQ(a, b);
  s.put(b);
}

// Two slots put back: the second displaces the first from the cell onto
// the free list, and a take of two gets both back.
TEST(Slots, ASlotDisplacedFromTheCellIsNotLost) {
  slots s;
  request *got[2] = {};
  ASSERT_EQ(s.take(got, 2), 2u);
  s.put(got[0]);
  s.put(got[1]);
  // Everything else free is taken first, so the two must come back among
  // the first ones only if the cell and the free list both kept theirs.
  std::vector<request *> again(2);
  ASSERT_EQ(s.take(again.data(), 2), 2u);
  EXPECT_EQ(std::set<request *>(again.begin(), again.end()),
            std::set<request *>(got, got + 2));
  for (request *r : again) s.put(r);
}

// Threads take and put concurrently; each stamps the slots it holds and
// checks the stamp before giving them back (a slot handed to two owners
// shows another's stamp). At the end, every slot taken is free exactly once.
TEST(Slots, ConcurrentTakeAndPutHandEachSlotToOneOwner) {
  slots s;
  constexpr int kThreads = 4, kRounds = 20000;
  std::atomic<bool> bad{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kRounds; i++) {
        request *r[3] = {};
        const size_t n = s.take(r, 1 + static_cast<size_t>(i % 3));
        for (size_t j = 0; j < n; j++) r[j]->io.user_data = static_cast<uint64_t>(t) << 32 | i;
        std::this_thread::yield();
        for (size_t j = 0; j < n; j++) {
          if (r[j]->io.user_data != (static_cast<uint64_t>(t) << 32 | i)) bad = true;
          s.put(r[j]);
        }
      }
    });
  }
  for (auto &th : ts) th.join();
  EXPECT_FALSE(bad.load());
  // Conservation: the slots taken now are distinct.
  std::vector<request *> all(kThreads * 3);
  ASSERT_EQ(s.take(all.data(), all.size()), all.size());
  EXPECT_EQ(std::set<request *>(all.begin(), all.end()).size(), all.size());
  for (request *r : all) s.put(r);
}

}  // namespace
