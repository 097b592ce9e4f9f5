// SPDX-License-Identifier: MIT
// Plain cached pread64s of the new ABI take their descriptor's facts on
// trust (sys::read_on_trust, core/context.cc): the RWF_NOWAIT read is made
// before the router asks about the descriptor, and its answer checks the
// facts. Here a descriptor number is reused after reads made on trust -
// closed, or dup2'd onto a write-only file, a pipe, a directory or another
// file - and the next read must get exactly the answer the kernel gives
// pread64 on what the number names now. The system-call count of lone
// cached reads is checked by tests/trusted_read_syscalls.sh, which runs
// LoneCachedReads under strace.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "test_util.h"

namespace {

using aio2_test::event_copy;
using aio2_test::req_buf;

enum class reuse { closed, wronly, pipe, directory, other_file };

std::string reuse_name(const ::testing::TestParamInfo<reuse> &info) {
  switch (info.param) {
    case reuse::closed: return "closed";
    case reuse::wronly: return "wronly";
    case reuse::pipe: return "pipe";
    case reuse::directory: return "directory";
    case reuse::other_file: return "other_file";
  }
  return "unknown";
}

// A pread64 of `len` bytes at `off` of `fd` into `buf`, alone in its call,
// with the context's policy (AUTO).
event_copy pread_alone(aio2_ctx *c, int fd, void *buf, uint64_t len, uint64_t off, uint64_t ud) {
  req_buf r(SYS_pread64, ud, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(buf), len, off);
  return aio2_test::submit_wait(c, r, 10);
}

class TrustedRead : public ::testing::TestWithParam<reuse> {};

TEST_P(TrustedRead, ReusedDescriptorGetsTheKernelsAnswer) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  // A copy of the file's descriptor under a number of its own, to reuse.
  const int fd = dup(f.fd());
  ASSERT_GE(fd, 0);
  std::vector<unsigned char> buf(4096);
  // Reads on trust: the first asks the kernel about the descriptor, the
  // next ones take its facts on trust.
  for (uint64_t i = 0; i < 4; i++) {
    std::memset(buf.data(), 0, buf.size());
    ASSERT_EQ(pread_alone(ctx.get(), fd, buf.data(), 4096, i * 4096, i).res(), 4096);
    ASSERT_TRUE(aio2_test::pattern_holds(buf.data(), i * 4096, 4096));
  }
  aio2_test::scratch_dir dir;
  int pfd[2] = {-1, -1};
  int other = -1;
  switch (GetParam()) {
    case reuse::closed:
      ASSERT_EQ(close(fd), 0);
      break;
    case reuse::wronly:
      other = open((dir.path() + "/w").c_str(), O_WRONLY | O_CREAT, 0600);
      break;
    case reuse::pipe:
      ASSERT_EQ(pipe(pfd), 0);
      ASSERT_EQ(write(pfd[1], "abc", 3), 3);
      other = pfd[0];
      break;
    case reuse::directory:
      other = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
      break;
    case reuse::other_file: {
      other = open((dir.path() + "/o").c_str(), O_RDWR | O_CREAT, 0600);
      ASSERT_GE(other, 0);
      const std::vector<unsigned char> xs(8192, 'x');
      ASSERT_EQ(pwrite(other, xs.data(), xs.size(), 0), 8192);
      break;
    }
  }
  if (GetParam() != reuse::closed) {
    ASSERT_GE(other, 0);
    ASSERT_EQ(dup2(other, fd), fd);
  }
  // What the kernel's pread64 answers on the number now.
  std::vector<unsigned char> want(4096), got(4096);
  errno = 0;
  const ssize_t kernel = pread(fd, want.data(), 4096, 4096);
  const int64_t kernel_res = kernel < 0 ? -errno : kernel;
  if (GetParam() == reuse::pipe) {
    EXPECT_EQ(kernel_res, -ESPIPE);  // the pipe keeps its bytes
  }
  const event_copy e = pread_alone(ctx.get(), fd, got.data(), 4096, 4096, 99);
  EXPECT_EQ(e.res(), kernel_res);
  if (kernel_res > 0) {
    EXPECT_EQ(std::memcmp(got.data(), want.data(), static_cast<size_t>(kernel_res)), 0);
  }
  if (GetParam() == reuse::pipe) {
    char left[8] = {};
    EXPECT_EQ(read(pfd[0], left, sizeof left), 3) << "the read took the pipe's bytes";
  }
  if (GetParam() != reuse::closed) close(fd);
  if (other >= 0) close(other);
  if (pfd[1] >= 0) close(pfd[1]);
}

INSTANTIATE_TEST_SUITE_P(Reuse, TrustedRead,
                         ::testing::Values(reuse::closed, reuse::wronly, reuse::pipe,
                                           reuse::directory, reuse::other_file),
                         reuse_name);

// 2000 lone cached reads, each checked; run under strace by
// tests/trusted_read_syscalls.sh, which counts the system calls they made.
TEST(TrustedReadCount, LoneCachedReads) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 20);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(4096);
  for (uint64_t i = 0; i < 2000; i++) {
    const uint64_t off = (i * 7 % 256) * 4096;
    ASSERT_EQ(pread_alone(ctx.get(), f.fd(), buf.data(), 4096, off, i).res(), 4096);
    ASSERT_TRUE(aio2_test::pattern_holds(buf.data(), off, 4096)) << "read " << i;
  }
}

// One thread reads a descriptor number alone in each call, on trust while
// the facts allow, while another points the number at another file, a pipe
// holding bytes, or nothing, as fast as it can. Every read gets one event
// with an answer pread64 could have given for one of them at some moment:
// 4096 bytes all of one file (at the offset asked), -EBADF or -ESPIPE. The
// pipe never loses a byte (a read that went to io_uring with facts taken
// from a regular file would consume them).
TEST(TrustedReadStress, NumberRepointedDuringReads) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer reports a descriptor closed in one thread while another
  // uses it as a data race, and this test does exactly that on purpose.
  GTEST_SKIP() << "races a descriptor on purpose, which ThreadSanitizer reports";
#endif
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file a(1 << 16);
  ASSERT_TRUE(a.ok());
  a.warm(0, a.size());
  aio2_test::scratch_dir dir;
  const int b = open((dir.path() + "/b").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(b, 0);
  const std::vector<unsigned char> xs(1 << 16, 'x');
  ASSERT_EQ(pwrite(b, xs.data(), xs.size(), 0), static_cast<ssize_t>(xs.size()));
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  ASSERT_EQ(write(pfd[1], "pipe", 4), 4);
  // A number far above the others: while it is closed, a descriptor made
  // meanwhile by anyone else in the process takes a lower free number, and
  // the flipper's next dup2 cannot land on it. (The sanitizers' runtime
  // makes a pipe to probe memory; had it taken the closed number, a dup2
  // onto its read end would kill the process with SIGPIPE on the probe.)
  int num = fcntl(a.fd(), F_DUPFD_CLOEXEC, 512);
  if (num < 0) num = dup(a.fd());  // RLIMIT_NOFILE at or below 512
  ASSERT_GE(num, 0);
  std::atomic<bool> stop{false};  // relaxed: a flag, publishes nothing
  std::thread flipper([&] {
    const int targets[] = {b, pfd[0], -1, a.fd()};
    for (unsigned i = 0; !stop.load(std::memory_order_relaxed); i++) {
      const int t = targets[i % 4];
      if (t < 0) close(num);
      else dup2(t, num);
      // Each state lasts a few reads, and a flip can land in any part of one.
      const timespec pause{0, static_cast<long>(5000 + (i * 7919) % 20000)};
      nanosleep(&pause, nullptr);
    }
  });
  std::vector<unsigned char> buf(4096);
  unsigned from_a = 0, from_b = 0, badf = 0, spipe = 0;
  for (uint64_t i = 0; i < 20000 && !HasFailure(); i++) {
    const uint64_t off = (i % 16) * 4096;
    std::memset(buf.data(), 0, buf.size());
    const event_copy e = pread_alone(ctx.get(), num, buf.data(), 4096, off, i);
    const int64_t res = e.res();
    if (res == -EBADF) {
      badf++;
    } else if (res == -ESPIPE) {
      spipe++;
    } else if (res == 4096 && aio2_test::pattern_holds(buf.data(), off, 4096)) {
      from_a++;
    } else if (res == 4096 && std::memcmp(buf.data(), xs.data(), 4096) == 0) {
      from_b++;
    } else {
      ADD_FAILURE() << "read " << i << ": " << res << ", not an answer of one of the files";
    }
  }
  stop.store(true, std::memory_order_relaxed);
  flipper.join();
  char left[8] = {};
  ASSERT_EQ(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);  // an empty pipe fails the check, not hangs
  EXPECT_EQ(read(pfd[0], left, sizeof left), 4) << "a read took the pipe's bytes";
  EXPECT_GT(from_a + from_b, 0u);
  std::printf("file a %u, file b %u, -EBADF %u, -ESPIPE %u\n", from_a, from_b, badf, spipe);
  close(num);
  close(b);
  close(pfd[0]);
  close(pfd[1]);
}

// The same window, hit every time: a user attribute's before hook, which
// runs in the submitter after the router took the descriptor's facts (a
// cached file) and just before the RWF_NOWAIT attempt, points the number
// at a pipe holding bytes. The attempt answers -ESPIPE, which is what
// pread64 answers for the pipe, and is the read's result: nothing runs the
// read again (io_uring would read the pipe, ignoring the offset).
std::atomic<int> g_flip_to{-1};  // relaxed: set and read by the test's own thread
std::atomic<int> g_flip_num{-1};

int flip_before(aio2_attr_hook *) {
  const int to = g_flip_to.load(std::memory_order_relaxed);
  if (to >= 0) dup2(to, g_flip_num.load(std::memory_order_relaxed));
  return 0;
}

constexpr uint16_t kFlipAttr = AIO2_ATTR_USER_MIN + 0x4f;
const aio2_attr_handler kFlipHandler = {
    sizeof(aio2_attr_handler), kFlipAttr, 0, 0, 0, 0, AIO2_PATH_ALL, "flip", nullptr, flip_before,
    nullptr, nullptr, nullptr};

TEST(TrustedReadStress, NumberRepointedToAPipeJustBeforeTheAttempt) {
  static const int registered = aio2_attr_register(&kFlipHandler);
  ASSERT_EQ(registered, 0);
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file a(1 << 16);
  ASSERT_TRUE(a.ok());
  a.warm(0, a.size());
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  ASSERT_EQ(write(pfd[1], "pipe", 4), 4);
  const int num = dup(a.fd());
  ASSERT_GE(num, 0);
  g_flip_num.store(num, std::memory_order_relaxed);
  std::vector<unsigned char> buf(4096);
  for (uint64_t i = 0; i < 8; i++) {
    ASSERT_EQ(dup2(a.fd(), num), num);
    g_flip_to.store(pfd[0], std::memory_order_relaxed);
    req_buf r(SYS_pread64, i, static_cast<uint64_t>(num), reinterpret_cast<uint64_t>(buf.data()),
              4096, 4096);
    r.attr(kFlipAttr).attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
    g_flip_to.store(-1, std::memory_order_relaxed);
    EXPECT_EQ(e.res(), -ESPIPE) << "read " << i;
    EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_INLINE)) << "read " << i;
  }
  char left[8] = {};
  ASSERT_EQ(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
  EXPECT_EQ(read(pfd[0], left, sizeof left), 4) << "a read took the pipe's bytes";
  close(num);
  close(pfd[0]);
  close(pfd[1]);
}

}  // namespace
