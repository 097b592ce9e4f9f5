// SPDX-License-Identifier: MIT
// exec::nowait_first on its own: what the rest of a read is after an
// attempt read part of it (plain and vectored, at an offset and at the file
// position), when the attempt finished it, and how the rest's result
// combines with the attempt's bytes. No system call runs: the arithmetic is
// checked on made-up results.

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "exec/request.h"

namespace {

// The state as dispatch readies it for a nowait-first read (reset(true)
// makes the room for the rest).
struct nowait_first : aio2::exec::nowait_first {
  nowait_first() { EXPECT_EQ(reset(true), 0); }
};

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }

aio2_iocb make_io(long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4 = 0,
                  uint64_t a5 = 0) {
  aio2_iocb io{};
  io.len = sizeof io;
  io.nr = static_cast<uint32_t>(nr);
  io.user_data = 7;
  const uint64_t a[6] = {a0, a1, a2, a3, a4, a5};
  std::memcpy(io.args, a, sizeof a);
  return io;
}

const iovec *rest_iov(const nowait_first &nw) {
  return reinterpret_cast<const iovec *>(nw.rest_args()[1]);
}

TEST(NowaitFirst, FreshStateIsNotAttempted) {
  nowait_first nw;
  EXPECT_FALSE(nw.attempted());
  EXPECT_EQ(nw.attempt_bytes(), -1);
  EXPECT_FALSE(nw.rest_pending());
}

TEST(NowaitFirst, Pread64FullReadNeedsNoRest) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 1000);
  nowait_first nw;
  EXPECT_FALSE(nw.attempted(io, 100));
  EXPECT_TRUE(nw.attempted());
  EXPECT_EQ(nw.attempt_bytes(), 100);
  EXPECT_FALSE(nw.rest_pending());
  uint32_t flags = 0;
  // No rest ran: the attempt's bytes are the result, whatever is passed.
  EXPECT_EQ(nw.combine(0, &flags), 100);
  EXPECT_EQ(flags, 0u);
}

TEST(NowaitFirst, Pread64ShortReadLeavesTheRest) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 1000, 0xaa, 0xbb);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  EXPECT_TRUE(nw.rest_pending());
  EXPECT_EQ(nw.attempt_bytes(), 30);
  const uint64_t *r = nw.rest_args();
  EXPECT_EQ(r[0], 3u);
  EXPECT_EQ(r[1], u(buf + 30));
  EXPECT_EQ(r[2], 70u);
  EXPECT_EQ(r[3], 1030u);
  EXPECT_EQ(r[4], 0xaau);
  EXPECT_EQ(r[5], 0xbbu);
  // The request's own arguments are untouched.
  EXPECT_EQ(io.args[1], u(buf));
  EXPECT_EQ(io.args[2], 100u);
  EXPECT_EQ(io.args[3], 1000u);
}

TEST(NowaitFirst, ReadAtPositionKeepsNoOffset) {
  char buf[64];
  // read(fd, buf, 64): args[3] is not an offset and must not move.
  const aio2_iocb io = make_io(SYS_read, 4, u(buf), sizeof buf, 0x1234);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 10));
  EXPECT_EQ(nw.rest_args()[1], u(buf + 10));
  EXPECT_EQ(nw.rest_args()[2], 54u);
  EXPECT_EQ(nw.rest_args()[3], 0x1234u);
}

TEST(NowaitFirst, ZeroIsTheEndOfTheFile) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 1 << 20);
  nowait_first nw;
  EXPECT_FALSE(nw.attempted(io, 0));
  EXPECT_TRUE(nw.attempted());
  EXPECT_EQ(nw.attempt_bytes(), 0);
  EXPECT_FALSE(nw.rest_pending());
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(-ECANCELED, &flags), 0);
}

TEST(NowaitFirst, ErrorsRunTheWholeCallAgain) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 4096, 5, 6);
  for (int64_t err : {-EAGAIN, -EOPNOTSUPP, -EIO}) {
    SCOPED_TRACE(err);
    nowait_first nw;
    ASSERT_TRUE(nw.attempted(io, err));
    EXPECT_TRUE(nw.attempted());
    EXPECT_EQ(nw.attempt_bytes(), 0);  // errors count as 0
    EXPECT_TRUE(nw.rest_pending());
    EXPECT_EQ(std::memcmp(nw.rest_args(), io.args, sizeof io.args), 0);
  }
}

TEST(NowaitFirst, PreadvSplitInsideAnIovec) {
  char a[100], b[200];
  const iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  const aio2_iocb io = make_io(SYS_preadv, 3, u(iov), 2, 8192);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 40));
  EXPECT_EQ(nw.attempt_bytes(), 40);
  ASSERT_EQ(nw.rest_args()[2], 2u);
  const iovec *r = rest_iov(nw);
  ASSERT_NE(r, iov);  // a copy: the caller's iovecs are not written
  EXPECT_EQ(r[0].iov_base, a + 40);
  EXPECT_EQ(r[0].iov_len, 60u);
  EXPECT_EQ(r[1].iov_base, b);
  EXPECT_EQ(r[1].iov_len, 200u);
  EXPECT_EQ(nw.rest_args()[3], 8192u + 40);
  EXPECT_EQ(iov[0].iov_base, a);
  EXPECT_EQ(iov[0].iov_len, 100u);
}

TEST(NowaitFirst, PreadvSplitAcrossIovecs) {
  char a[100], b[200], c[50];
  const iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
  const aio2_iocb io = make_io(SYS_preadv, 3, u(iov), 3, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 150));  // all of a, half of b
  ASSERT_EQ(nw.rest_args()[2], 2u);
  const iovec *r = rest_iov(nw);
  EXPECT_EQ(r[0].iov_base, b + 50);
  EXPECT_EQ(r[0].iov_len, 150u);
  EXPECT_EQ(r[1].iov_base, c);
  EXPECT_EQ(r[1].iov_len, 50u);
  EXPECT_EQ(nw.rest_args()[3], 150u);
}

TEST(NowaitFirst, PreadvSplitOnAnIovecBoundary) {
  char a[100], b[200], c[50];
  const iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
  const aio2_iocb io = make_io(SYS_preadv, 3, u(iov), 3, 10);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 300));  // a and b exactly
  ASSERT_EQ(nw.rest_args()[2], 1u);
  EXPECT_EQ(rest_iov(nw)[0].iov_base, c);
  EXPECT_EQ(rest_iov(nw)[0].iov_len, 50u);
  EXPECT_EQ(nw.rest_args()[3], 310u);
}

TEST(NowaitFirst, PreadvFullReadNeedsNoRest) {
  char a[100], b[200];
  const iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  const aio2_iocb io = make_io(SYS_preadv, 3, u(iov), 2, 0);
  nowait_first nw;
  EXPECT_FALSE(nw.attempted(io, 300));
  EXPECT_FALSE(nw.rest_pending());
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(0, &flags), 300);
}

TEST(NowaitFirst, Preadv2AtPositionKeepsMinusOneAndFlags) {
  char a[100], b[100];
  const iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  const aio2_iocb io =
      make_io(SYS_preadv2, 3, u(iov), 2, static_cast<uint64_t>(-1), 0, RWF_HIPRI);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 120));
  EXPECT_EQ(nw.rest_args()[2], 1u);
  EXPECT_EQ(rest_iov(nw)[0].iov_base, b + 20);
  EXPECT_EQ(rest_iov(nw)[0].iov_len, 80u);
  EXPECT_EQ(nw.rest_args()[3], static_cast<uint64_t>(-1));
  EXPECT_EQ(nw.rest_args()[5], static_cast<uint64_t>(RWF_HIPRI));
}

TEST(NowaitFirst, VectoredErrorRunsTheCallersIovecsAgain) {
  char a[100];
  const iovec iov[1] = {{a, sizeof a}};
  const aio2_iocb io = make_io(SYS_preadv, 3, u(iov), 1, 512);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, -EAGAIN));
  EXPECT_EQ(nw.attempt_bytes(), 0);
  EXPECT_EQ(nw.rest_args()[1], u(iov));
  EXPECT_EQ(nw.rest_args()[2], 1u);
  EXPECT_EQ(nw.rest_args()[3], 512u);
}

// ---- combine ---------------------------------------------------------------

TEST(NowaitFirstCombine, RestOkAddsTheAttemptsBytes) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(70, &flags), 100);
  EXPECT_FALSE(nw.rest_pending());
  EXPECT_EQ(flags, 0u);
}

TEST(NowaitFirstCombine, RestShortAddsToo) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(5, &flags), 35);  // the file ended during the rest
}

TEST(NowaitFirstCombine, RestFailedAfterBytesIsAShortRead) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  for (int64_t err : {-EIO, -ECANCELED, -EINTR}) {
    SCOPED_TRACE(err);
    nowait_first nw;
    ASSERT_TRUE(nw.attempted(io, 30));
    uint32_t flags = AIO2_EVENT_CANCELED | 0x100u;
    EXPECT_EQ(nw.combine(err, &flags), 30);
    EXPECT_EQ(flags, 0x100u);  // CANCELED cleared, the other bits kept
    EXPECT_FALSE(nw.rest_pending());
  }
}

TEST(NowaitFirstCombine, RestFailedWithoutBytesIsTheError) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, -EAGAIN));
  uint32_t flags = AIO2_EVENT_CANCELED;
  EXPECT_EQ(nw.combine(-ECANCELED, &flags), -ECANCELED);
  EXPECT_EQ(flags, AIO2_EVENT_CANCELED);  // it never read anything: still cancelled
  EXPECT_FALSE(nw.rest_pending());
}

TEST(NowaitFirstCombine, RestOkAfterAnError) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, -EAGAIN));
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(100, &flags), 100);
}

TEST(NowaitFirstCombine, SecondCallPassesThrough) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(70, &flags), 100);
  flags = AIO2_EVENT_CANCELED;
  EXPECT_EQ(nw.combine(100, &flags), 100);
  EXPECT_EQ(nw.combine(-EIO, &flags), -EIO);
  EXPECT_EQ(flags, AIO2_EVENT_CANCELED);
  // The attempt is still on record.
  EXPECT_TRUE(nw.attempted());
  EXPECT_EQ(nw.attempt_bytes(), 30);
}

TEST(NowaitFirstCombine, SecondCallAfterAFinishedAttemptPassesThrough) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_FALSE(nw.attempted(io, 100));
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(0, &flags), 100);
  EXPECT_EQ(nw.combine(0, &flags), 0);
}

TEST(NowaitFirstCombine, NotAttemptedPassesThrough) {
  nowait_first nw;
  for (int64_t res : {int64_t{0}, int64_t{42}, int64_t{-EIO}, int64_t{-ECANCELED}}) {
    uint32_t flags = AIO2_EVENT_CANCELED;
    EXPECT_EQ(nw.combine(res, &flags), res);
    EXPECT_EQ(flags, AIO2_EVENT_CANCELED);
  }
  EXPECT_FALSE(nw.attempted());
}

TEST(NowaitFirst, ResetForgetsEverything) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  uint32_t flags = 0;
  ASSERT_EQ(nw.combine(70, &flags), 100);
  nw.reset(true);
  EXPECT_FALSE(nw.attempted());
  EXPECT_EQ(nw.attempt_bytes(), -1);
  EXPECT_FALSE(nw.rest_pending());
  EXPECT_EQ(nw.combine(5, &flags), 5);  // not attempted: passes through
  // A new attempt after reset combines again (the slot is reused).
  ASSERT_TRUE(nw.attempted(io, 60));
  EXPECT_EQ(nw.combine(40, &flags), 100);
}

TEST(NowaitFirst, ResetDropsAPendingRest) {
  char buf[100];
  const aio2_iocb io = make_io(SYS_pread64, 3, u(buf), sizeof buf, 0);
  nowait_first nw;
  ASSERT_TRUE(nw.attempted(io, 30));
  ASSERT_TRUE(nw.rest_pending());
  nw.reset(true);
  EXPECT_FALSE(nw.rest_pending());
  uint32_t flags = 0;
  EXPECT_EQ(nw.combine(-EIO, &flags), -EIO);
}

}  // namespace
