// SPDX-License-Identifier: MIT
// Where AUTO makes a read's RWF_NOWAIT attempt on a context with io_uring
// (core/nowait_adapt.h): in the submitter for small calls while reads hit,
// in io_uring for large calls, and in the submitter for one small call in
// kProbeEvery while they miss. Then end to end: a lone cached read runs
// inline, a call of 32 goes to io_uring.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

#include "core/nowait_adapt.h"
#include "fs_util.h"
#include "test_util.h"

namespace {

using aio2::core::nowait_adapt;

unsigned here_of(nowait_adapt &a, size_t requests, unsigned calls) {
  unsigned n = 0;
  for (unsigned i = 0; i < calls; i++) n += a.here(requests);
  return n;
}

TEST(NowaitAdapt, SmallCallsTryHereWhileReadsHit) {
  nowait_adapt a;
  EXPECT_EQ(here_of(a, 1, 100), 100u);
  EXPECT_EQ(here_of(a, nowait_adapt::kSmallCall, 100), 100u);
  EXPECT_EQ(here_of(a, nowait_adapt::kSmallCall + 1, 100), 0u);
  EXPECT_EQ(here_of(a, 32, 100), 0u);
  for (int i = 0; i < 100; i++) a.outcome(true);
  EXPECT_EQ(a.score(), nowait_adapt::kScoreMax);
}

TEST(NowaitAdapt, MissesSendCallsToIoUringButForProbes) {
  nowait_adapt a;
  int misses = 0;
  while (a.score() >= nowait_adapt::kHitsLikely) {
    a.outcome(false);
    misses++;
  }
  EXPECT_GT(misses, 2) << "one miss must not turn a context around";
  EXPECT_LT(misses, 10);
  const unsigned calls = 40 * nowait_adapt::kProbeEvery;
  EXPECT_EQ(here_of(a, 1, calls), 40u) << "one small call in kProbeEvery probes";
  EXPECT_EQ(here_of(a, 32, calls), 0u);
  for (int i = 0; i < 200; i++) a.outcome(false);
  EXPECT_EQ(a.score(), 0u);
  // Hits bring it back.
  int hits = 0;
  while (a.score() < nowait_adapt::kHitsLikely) {
    a.outcome(true);
    hits++;
  }
  EXPECT_LT(hits, 10);
  EXPECT_EQ(here_of(a, 1, 50), 50u);
}

// End to end, on a context with io_uring: the executor attribute says where
// each read ran.
TEST(NowaitAdapt, LoneCachedReadRunsInlineAndABigCallGoesToIoUring) {
  aio2_params p{};
  const auto ctx = aio2_test::make_ctx_answering(p);
  ASSERT_NE(ctx, nullptr);
  if (!(p.features & AIO2_FEAT_URING)) GTEST_SKIP() << "no io_uring here";
  aio2_test::pattern_file f(1 << 20);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(aio2_test::nowait_reads_whole(f.fd(), 0, 1 << 20)) << "the file is not cached";
  constexpr unsigned kReads = 32;
  std::vector<std::vector<char>> bufs(kReads, std::vector<char>(4096));
  std::vector<aio2_test::req_buf> reqs;
  reqs.reserve(kReads);
  for (unsigned i = 0; i < kReads; i++) {
    reqs.emplace_back(SYS_pread64, i, static_cast<uint64_t>(f.fd()),
                      reinterpret_cast<uint64_t>(bufs[i].data()), 4096, uint64_t{i} * 4096);
    reqs.back().attr(AIO2_ATTR_EXECUTOR);
  }
  // Alone: inline.
  const aio2_test::event_copy one = aio2_test::submit_wait(ctx.get(), reqs[0], 5);
  ASSERT_EQ(one.res(), 4096);
  EXPECT_EQ(one.path(), static_cast<uint32_t>(AIO2_PATH_INLINE));
  // 32 in one call: io_uring.
  std::vector<unsigned char> all;
  for (auto &r : reqs) all.insert(all.end(), r.b, r.b + r.len());
  ASSERT_EQ(aio2_submit(ctx.get(), all.data(), all.size()), static_cast<ssize_t>(all.size()));
  unsigned on_uring = 0;
  for (const aio2_test::event_copy &e : aio2_test::reap(ctx.get(), kReads)) {
    EXPECT_EQ(e.res(), 4096);
    on_uring += e.path() == AIO2_PATH_URING;
  }
  EXPECT_EQ(on_uring, kReads);
}

}  // namespace
