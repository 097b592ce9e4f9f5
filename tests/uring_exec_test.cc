// SPDX-License-Identifier: MIT
// exec::uring on its own, handing completions to a recording sink:
// translate() for what io_uring implements and refuses; reads of a file
// submitted, harvested exactly once with the right data, counted by
// inflight(); more requests than entries; a nowait-first read made by
// io_uring (RWF_NOWAIT, then the rest) on uncached and partly cached
// ranges; cancelling a read that waits on an empty pipe; shutdown. Skipped
// when io_uring cannot be set up here.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "exec/uring.h"
#include "exec_util.h"
#include "fs_util.h"

namespace {

using aio2::exec::executor;
using aio2::exec::request;
using aio2::exec::uring;
using aio2_test::recording_sink;

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }

class UringExec : public ::testing::Test {
 protected:
  void SetUp() override {
    ring = std::make_unique<uring>(sink);
    const int rc = ring->init(64);
    if (rc < 0) GTEST_SKIP() << "io_uring unavailable here: " << std::strerror(-rc);
    ASSERT_TRUE(ring->active());
  }

  // A request for io_uring, translated into its SQE.
  request *add(long nr, uint64_t ud, std::initializer_list<uint64_t> args) {
    return aio2_test::add_for_uring(reqs, *ring, nr, ud, args);
  }
  bool harvest_until(size_t n) { return aio2_test::harvest_until(*ring, sink, n); }

  recording_sink sink;
  aio2_test::request_set reqs;
  std::unique_ptr<uring> ring;  // last: it refers to the sink and the requests
};

TEST_F(UringExec, Translate) {
  alignas(8) unsigned char sqe_bytes[64];
  auto *sqe = reinterpret_cast<io_uring_sqe *>(sqe_bytes);
  char buf[16];
  const uint64_t pread_args[6] = {5, u(buf), sizeof buf, 4096, 0, 0};
  ASSERT_TRUE(ring->translate(SYS_pread64, pread_args, sqe_bytes));
  EXPECT_EQ(sqe->opcode, IORING_OP_READ);
  EXPECT_EQ(sqe->fd, 5);
  EXPECT_EQ(sqe->addr, u(buf));
  EXPECT_EQ(sqe->len, sizeof buf);
  EXPECT_EQ(sqe->off, 4096u);
  // read(2) reads at the file position: io_uring's -1.
  const uint64_t read_args[6] = {5, u(buf), sizeof buf, 0, 0, 0};
  ASSERT_TRUE(ring->translate(SYS_read, read_args, sqe_bytes));
  EXPECT_EQ(sqe->off, static_cast<uint64_t>(-1));
  // A negative offset is the call's own -EINVAL, not the file position.
  const uint64_t negative[6] = {5, u(buf), sizeof buf, static_cast<uint64_t>(-1), 0, 0};
  EXPECT_FALSE(ring->translate(SYS_pread64, negative, sqe_bytes));
  const uint64_t negative2[6] = {5, u(buf), sizeof buf, static_cast<uint64_t>(-4096), 0, 0};
  EXPECT_FALSE(ring->translate(SYS_pread64, negative2, sqe_bytes));
  // No io_uring opcode.
  const uint64_t none[6] = {};
  EXPECT_FALSE(ring->translate(SYS_getppid, none, sqe_bytes));
  EXPECT_FALSE(ring->translate(SYS_ioctl, none, sqe_bytes));
  // io_uring would read these arguments differently.
  iovec iov{buf, sizeof buf};
  const uint64_t hipri[6] = {5, u(&iov), 1, 0, 0, RWF_HIPRI};
  EXPECT_FALSE(ring->translate(SYS_preadv2, hipri, sqe_bytes));
  const uint64_t recv_from[6] = {5, u(buf), sizeof buf, 0, u(buf), u(buf)};
  EXPECT_FALSE(ring->translate(SYS_recvfrom, recv_from, sqe_bytes));
  // An instance that was never set up translates nothing.
  recording_sink other;
  uring idle(other);
  EXPECT_FALSE(idle.active());
  EXPECT_FALSE(idle.translate(SYS_pread64, pread_args, sqe_bytes));
}

TEST_F(UringExec, PreadsCompleteOnceWithTheirData) {
  constexpr unsigned kN = 32, kLen = 8192;
  aio2_test::pattern_file f(kN * kLen);
  ASSERT_TRUE(f.ok());
  std::vector<std::vector<unsigned char>> bufs(kN, std::vector<unsigned char>(kLen));
  std::vector<request *> batch;
  for (unsigned i = 0; i < kN; i++)
    batch.push_back(add(SYS_pread64, 100 + i,
                        {static_cast<uint64_t>(f.fd()), u(bufs[i].data()), kLen,
                         uint64_t{i} * kLen}));
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(ring->inflight(), 0u);
  ring->submit(batch.data(), batch.size());
  // Nothing is collected until somebody harvests.
  EXPECT_EQ(ring->inflight(), kN);
  EXPECT_EQ(sink.count(), 0u);
  pollfd pfd{ring->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 30000), 1);
  EXPECT_TRUE(ring->ready());
  ASSERT_TRUE(harvest_until(kN)) << sink.count() << " of " << kN;
  EXPECT_EQ(ring->inflight(), 0u);
  EXPECT_FALSE(ring->ready());
  const auto tally = sink.tally();
  ASSERT_EQ(tally.size(), kN);
  for (unsigned i = 0; i < kN; i++) {
    EXPECT_EQ(tally.at(100 + i), 1);
    const auto c = sink.of(100 + i);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].res, kLen);
    EXPECT_EQ(c[0].flags, 0u);
    EXPECT_EQ(c[0].r, batch[i]);
    EXPECT_TRUE(aio2_test::pattern_holds(bufs[i].data(), uint64_t{i} * kLen, kLen)) << i;
  }
  EXPECT_GE(sink.batches(true), 1u);
  EXPECT_EQ(sink.batches(false), 0u);
  EXPECT_EQ(ring->harvest(true), 0u);
}

// More requests at once than the submission queue has entries, and more
// completions than its completion queue holds (the kernel keeps the rest).
TEST_F(UringExec, MoreRequestsThanEntries) {
  constexpr unsigned kN = 600, kLen = 512;
  aio2_test::pattern_file f(64 * 1024);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> bufs(size_t{kN} * kLen);
  std::vector<request *> batch;
  for (unsigned i = 0; i < kN; i++) {
    const uint64_t off = (uint64_t{i} * kLen) % f.size();
    batch.push_back(add(SYS_pread64, i,
                        {static_cast<uint64_t>(f.fd()), u(&bufs[size_t{i} * kLen]), kLen, off}));
  }
  ASSERT_FALSE(HasFatalFailure());
  ring->submit(batch.data(), batch.size());
  ASSERT_TRUE(harvest_until(kN)) << sink.count() << " of " << kN;
  EXPECT_EQ(ring->inflight(), 0u);
  const auto tally = sink.tally();
  ASSERT_EQ(tally.size(), kN);
  for (const auto &[ud, n] : tally) EXPECT_EQ(n, 1) << ud;
  for (unsigned i = 0; i < kN; i++) {
    const uint64_t off = (uint64_t{i} * kLen) % f.size();
    EXPECT_TRUE(aio2_test::pattern_holds(&bufs[size_t{i} * kLen], off, kLen)) << i;
  }
  for (const auto &c : sink.all()) EXPECT_EQ(c.res, kLen);
}

class UringNowaitFirst : public UringExec {
 protected:
  static constexpr uint32_t kLen = 256 * 1024;

  // A pread64 of `len` bytes at 0 with the cache attribute, made by
  // io_uring as a nowait-first read.
  request *nowait_read(int fd, unsigned char *buf, uint32_t len = kLen) {
    alignas(8) unsigned char b[sizeof(aio2_iocb) + sizeof(aio2_attr)];
    auto *io = reinterpret_cast<aio2_iocb *>(b);
    aio2_prep(io, SYS_pread64, 77, static_cast<uint64_t>(fd), u(buf), len, 0, 0, 0);
    EXPECT_NE(aio2_attr_add(io, sizeof b, AIO2_ATTR_CACHE, 0, nullptr, 0), nullptr);
    request *r = reqs.add(SYS_pread64, 77, {}, AIO2_PATH_URING);
    r->io = *io;
    const auto attr_len = io->len - static_cast<uint32_t>(sizeof(aio2_iocb));
    EXPECT_EQ(r->attrs.keep_records(b + sizeof(aio2_iocb), attr_len), 0);
    r->plan.attempt = aio2::exec::attempt::executor;
    EXPECT_EQ(r->nowait.reset(true), 0);
    EXPECT_EQ(r->attrs.prepare(r->io, r->attrs.records(), attr_len, AIO2_PATH_URING, true), 0);
    EXPECT_TRUE(r->attrs.wants_nowait());
    EXPECT_TRUE(ring->translate(r->io.nr, r->io.args, r->sqe));
    return r;
  }

  // Runs it and returns its completion; the cache result in *cache.
  recording_sink::completion run(request *r, aio2_attr_cache *cache) {
    ring->submit(&r, 1);
    EXPECT_TRUE(harvest_until(1));
    recording_sink::completion c{};
    EXPECT_TRUE(sink.wait_for(77, &c, std::chrono::seconds(0)));
    EXPECT_EQ(sink.count(), 1u);
    EXPECT_EQ(ring->inflight(), 0u) << "the rest was counted until it completed";
    EXPECT_TRUE(r->nowait.attempted());
    EXPECT_FALSE(r->nowait.rest_pending());
    // What the completion queue does when it posts: the on_post hooks.
    r->attrs.post(r->io, r->attrs.records(), r->res);
    std::vector<unsigned char> res(r->attrs.result_bytes());
    r->attrs.write_results(res.data());
    aio2_attr_ret ret{};
    EXPECT_GE(res.size(), sizeof ret + sizeof *cache);
    if (res.size() >= sizeof ret + sizeof *cache) {
      std::memcpy(&ret, res.data(), sizeof ret);
      EXPECT_EQ(ret.id, AIO2_ATTR_CACHE);
      EXPECT_EQ(ret.status, AIO2_ATTR_OK);
      std::memcpy(cache, res.data() + sizeof ret, sizeof *cache);
    }
    // The attribute reports the attempt, whatever it read.
    EXPECT_EQ(cache->method, AIO2_CACHE_BY_NOWAIT);
    EXPECT_EQ(cache->bytes_requested, static_cast<uint64_t>(c.res));
    EXPECT_EQ(cache->bytes_cached, static_cast<uint64_t>(r->nowait.attempt_bytes()));
    const uint32_t want = r->nowait.attempt_bytes() == c.res ? AIO2_CACHE_HIT
                          : r->nowait.attempt_bytes() == 0   ? AIO2_CACHE_MISS
                                                             : AIO2_CACHE_PARTIAL;
    EXPECT_EQ(cache->outcome, want);
    return c;
  }
};

// Whether the RWF_NOWAIT attempt stops at pages that are not cached is the
// kernel's affair: on a fast disk it may start readahead and find the
// pages uptodate before it returns. The result is the full length and the
// data is right either way; what the attempt read is printed.
TEST_F(UringNowaitFirst, UncachedRangeReturnsTheFullLength) {
  aio2_test::pattern_file f(kLen);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(kLen);
  request *r = nowait_read(f.fd(), buf.data());
  ASSERT_FALSE(HasFatalFailure());
  f.evict(0, kLen);
  aio2_attr_cache cache{};
  const auto c = run(r, &cache);
  EXPECT_EQ(c.res, kLen);
  EXPECT_EQ(c.flags, 0u);
  EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), 0, kLen));
  std::printf("the attempt read %lld of %u bytes\n",
              static_cast<long long>(r->nowait.attempt_bytes()), kLen);
}

TEST_F(UringNowaitFirst, PartlyCachedRangeReturnsTheFullLength) {
  aio2_test::pattern_file f(kLen);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(kLen);
  request *r = nowait_read(f.fd(), buf.data());
  ASSERT_FALSE(HasFatalFailure());
  f.evict(0, kLen);
  f.warm(0, 64 * 1024);
  f.evict(64 * 1024, kLen - 64 * 1024);  // what readahead brought in beyond
  aio2_attr_cache cache{};
  const auto c = run(r, &cache);
  EXPECT_EQ(c.res, kLen);
  EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), 0, kLen));
  EXPECT_GT(r->nowait.attempt_bytes(), 0) << "the cached head was read by the attempt";
  std::printf("the attempt read %lld of %u bytes\n",
              static_cast<long long>(r->nowait.attempt_bytes()), kLen);
}

TEST_F(UringNowaitFirst, CachedRangeIsOneRead) {
  aio2_test::pattern_file f(kLen);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(kLen);
  request *r = nowait_read(f.fd(), buf.data());
  ASSERT_FALSE(HasFatalFailure());
  f.warm(0, kLen);
  aio2_attr_cache cache{};
  const auto c = run(r, &cache);
  EXPECT_EQ(c.res, kLen);
  EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), 0, kLen));
  EXPECT_EQ(cache.outcome, AIO2_CACHE_HIT);
  EXPECT_EQ(r->nowait.attempt_bytes(), static_cast<int64_t>(kLen));
}

// A regular file whose file system does not do RWF_NOWAIT (procfs: io_uring
// answers -EOPNOTSUPP): the attempt is certain to fail, and the whole read
// runs again without it.
TEST_F(UringNowaitFirst, RefusedAttemptRunsTheWholeReadAgain) {
  const int fd = open("/proc/version", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  unsigned char want[4096], buf[4096];
  const ssize_t n = pread(fd, want, sizeof want, 0);
  ASSERT_GT(n, 0);
  request *r = nowait_read(fd, buf, sizeof buf);
  ASSERT_FALSE(HasFatalFailure());
  aio2_attr_cache cache{};
  const auto c = run(r, &cache);
  EXPECT_EQ(c.res, n);
  EXPECT_EQ(std::memcmp(buf, want, static_cast<size_t>(n)), 0);
  EXPECT_EQ(r->nowait.attempt_bytes(), 0) << "the attempt read nothing";
  EXPECT_EQ(cache.outcome, AIO2_CACHE_MISS);
  close(fd);
}

TEST_F(UringExec, CancelPipeReadThatWaits) {
  aio2_test::test_pipe tp;
  ASSERT_TRUE(tp.ok());
  unsigned char byte = 0;
  request *r = add(SYS_read, 9, {static_cast<uint64_t>(tp.rd), u(&byte), 1});
  ASSERT_FALSE(HasFatalFailure());
  ring->submit(&r, 1);
  EXPECT_EQ(ring->inflight(), 1u);
  EXPECT_EQ(ring->cancel(12345), executor::cancel_result::not_found);
  const executor::cancel_result cr = ring->cancel(9);
  ASSERT_TRUE(cr == executor::cancel_result::cancelled || cr == executor::cancel_result::running)
      << static_cast<int>(cr);
  if (cr == executor::cancel_result::cancelled) {
    EXPECT_EQ(sink.count(), 1u) << "a cancelled request's completion is harvested by cancel";
  }
  ASSERT_TRUE(harvest_until(1));
  const auto c = sink.of(9);
  ASSERT_EQ(c.size(), 1u);
  if (cr == executor::cancel_result::cancelled) {
    EXPECT_EQ(c[0].res, -ECANCELED);
    EXPECT_EQ(c[0].flags, AIO2_EVENT_CANCELED);
  } else {
    EXPECT_TRUE(c[0].res == -EINTR || c[0].res == -ECANCELED) << c[0].res;
  }
  EXPECT_EQ(ring->inflight(), 0u);
  EXPECT_EQ(ring->cancel(9), executor::cancel_result::not_found);
  // The cancelled read is gone: data arriving now completes nothing.
  ASSERT_EQ(write(tp.wr, "q", 1), 1);
  EXPECT_EQ(ring->harvest(true), 0u);
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(UringExec, ShutdownCompletesEverythingOnce) {
  aio2_test::test_pipe tp;
  ASSERT_TRUE(tp.ok());
  constexpr unsigned kReads = 5;
  unsigned char bytes[kReads] = {};
  std::vector<request *> batch;
  for (unsigned i = 0; i < kReads; i++)
    batch.push_back(add(SYS_read, i, {static_cast<uint64_t>(tp.rd), u(&bytes[i]), 1}));
  aio2_test::pattern_file f(4096);
  ASSERT_TRUE(f.ok());
  unsigned char fbuf[4096];
  batch.push_back(add(SYS_pread64, 50, {static_cast<uint64_t>(f.fd()), u(fbuf), 4096, 0}));
  ASSERT_FALSE(HasFatalFailure());
  ring->submit(batch.data(), batch.size());
  EXPECT_TRUE(aio2_test::returns_by_itself([&] { ring->shutdown(); }, [&] {
    EXPECT_EQ(write(tp.wr, "uuuuu", kReads), static_cast<ssize_t>(kReads));
  })) << "shutdown did not cancel the reads";
  EXPECT_EQ(ring->inflight(), 0u);
  ASSERT_EQ(sink.count(), kReads + 1);
  for (const auto &[ud, n] : sink.tally()) EXPECT_EQ(n, 1) << ud;
  for (unsigned i = 0; i < kReads; i++) {
    const auto c = sink.of(i);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_TRUE(c[0].res == -ECANCELED || c[0].res == -EINTR) << c[0].res;
    // AIO2_EVENT_CANCELED only where shutdown marks each request
    // (cancel_requested: before Linux 6.0); one cancellation of everything
    // (6.0+) leaves the flag clear. Nobody can reap these events.
    EXPECT_EQ(c[0].flags & ~AIO2_EVENT_CANCELED, 0u);
  }
  // The file read finished or was cancelled: either way, once.
  const auto fr = sink.of(50);
  ASSERT_EQ(fr.size(), 1u);
  EXPECT_TRUE(fr[0].res == 4096 || fr[0].res == -ECANCELED) << fr[0].res;
  ring->shutdown();  // idempotent
  ring.reset();      // and the destructor's
  EXPECT_EQ(sink.count(), kReads + 1);
}

}  // namespace
