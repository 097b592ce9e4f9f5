// SPDX-License-Identifier: MIT
// Registered descriptors (aio2_register_fds): the context's own descriptor
// for each file, its facts pinned, closed by aio2_destroy. Requests naming
// one run on every path and give the kernel's answers; what cannot be
// pinned is refused whole; a number freed by aio2_destroy is asked about
// again when it is reused. tests/register_fds_syscalls.sh runs the
// RegisteredFdsCount tests under strace: reads on a registered descriptor
// make no fcntl, the same reads on the caller's make one each.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "test_util.h"

namespace {

using aio2_test::event_copy;
using aio2_test::req_buf;

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }
uint64_t u(int fd) { return static_cast<uint64_t>(fd); }

// Descriptors open in this process.
int open_fds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (const dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // opendir's own
}

bool same_file(int a, int b) {
  struct stat sa {}, sb {};
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int register_one(aio2_ctx *c, int fd) {
  int out = -1;
  const int err = aio2_register_fds(c, &fd, &out, 1);
  EXPECT_EQ(err, 0) << aio2_strerror(err);
  return err == 0 ? out : -1;
}

TEST(RegisterFds, ReadsAndWritesOnEveryPath) {
  for (const uint32_t flags : {0u, static_cast<uint32_t>(AIO2_SETUP_NO_URING)}) {
    aio2_params p{};
    p.flags = flags;
    aio2_test::ctx_ptr ctx = aio2_test::make_ctx(p);
    aio2_test::pattern_file f(1 << 20);
    ASSERT_TRUE(f.ok());
    const int reg = register_one(ctx.get(), f.fd());
    ASSERT_GE(reg, 0);
    EXPECT_NE(reg, f.fd());
    EXPECT_TRUE(same_file(reg, f.fd()));
    EXPECT_EQ(fcntl(reg, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    std::vector<unsigned char> buf(8192);
    uint64_t ud = 1;
    for (const uint32_t policy :
         {AIO2_POLICY_AUTO, AIO2_POLICY_INLINE, AIO2_POLICY_URING, AIO2_POLICY_POOL}) {
      const uint64_t off = ud * 8192;
      std::fill(buf.begin(), buf.end(), 0);
      req_buf r(SYS_pread64, ud++, u(reg), u(buf.data()), buf.size(), off);
      r.path(policy).attr(AIO2_ATTR_TIMING).attr(AIO2_ATTR_CACHE);
      const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
      EXPECT_EQ(e.res(), static_cast<int64_t>(buf.size())) << "policy " << policy;
      EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), off, buf.size())) << "policy " << policy;
      EXPECT_EQ(e.status(AIO2_ATTR_CACHE), AIO2_ATTR_OK) << "policy " << policy;
      // A write through the registered descriptor, read back through the
      // caller's.
      const char msg[] = "registered";
      req_buf w(SYS_pwrite64, ud++, u(reg), u(msg), sizeof msg, off);
      w.path(policy);
      EXPECT_EQ(aio2_test::submit_wait(ctx.get(), w, 10).res(), static_cast<int64_t>(sizeof msg));
      char back[sizeof msg] = {};
      EXPECT_EQ(pread(f.fd(), back, sizeof back, static_cast<off_t>(off)),
                static_cast<ssize_t>(sizeof back));
      EXPECT_STREQ(back, msg) << "policy " << policy;
    }
    // Another context's requests may name it too.
    aio2_test::ctx_ptr other = aio2_test::make_ctx(p);
    req_buf r(SYS_pread64, 99, u(reg), u(buf.data()), 4096, 0);
    EXPECT_EQ(aio2_test::submit_wait(other.get(), r, 10).res(), 4096);
    EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), 0, 4096));
  }
}

TEST(RegisterFds, TheCallerMayCloseItsOwn) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  const int mine = dup(f.fd());
  ASSERT_GE(mine, 0);
  const int reg = register_one(ctx.get(), mine);
  ASSERT_GE(reg, 0);
  ASSERT_EQ(close(mine), 0);
  std::vector<unsigned char> buf(4096);
  req_buf r(SYS_pread64, 1, u(reg), u(buf.data()), buf.size(), 8192);
  EXPECT_EQ(aio2_test::submit_wait(ctx.get(), r, 10).res(), 4096);
  EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), 8192, 4096));
}

TEST(RegisterFds, WhatCannotBePinnedIsRefusedWhole) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  const int path_fd = open("/", O_PATH | O_CLOEXEC);
  const int dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(path_fd, 0);
  ASSERT_GE(dir_fd, 0);
  // A number nothing has open (a freed low one would be the registration's
  // own first new descriptor).
  const int closed = 60000;
  ASSERT_EQ(fcntl(closed, F_GETFD), -1);
  const int before = open_fds();
  struct {
    std::vector<int> fds;
    int err;
    const char *what;
  } cases[] = {
      {{pfd[0]}, -EINVAL, "a pipe"},
      {{f.fd(), pfd[1]}, -EINVAL, "a file, then a pipe"},
      {{path_fd}, -EINVAL, "O_PATH"},
      {{dir_fd}, -EINVAL, "a directory"},
      {{f.fd(), closed}, -EBADF, "a file, then a closed descriptor"},
      {{-1}, -EBADF, "-1"},
  };
  for (const auto &c : cases) {
    std::vector<int> out(c.fds.size(), -7);
    EXPECT_EQ(aio2_register_fds(ctx.get(), c.fds.data(), out.data(), static_cast<unsigned>(c.fds.size())),
              c.err)
        << c.what;
    for (int o : out) EXPECT_EQ(o, -7) << c.what << ": out written";
    EXPECT_EQ(open_fds(), before) << c.what << ": a descriptor left open";
  }
  int one = f.fd(), out = -7;
  EXPECT_EQ(aio2_register_fds(ctx.get(), nullptr, &out, 1), -EINVAL);
  EXPECT_EQ(aio2_register_fds(ctx.get(), &one, nullptr, 1), -EINVAL);
  EXPECT_EQ(aio2_register_fds(ctx.get(), nullptr, nullptr, 0), 0);
  EXPECT_EQ(aio2_register_fds(nullptr, &one, &out, 1), -EBADF);
  aio2_ctx *dead = nullptr;
  aio2_params p{};
  p.size = sizeof p;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &dead), 0);
  ASSERT_EQ(aio2_destroy(dead), 0);
  EXPECT_EQ(aio2_register_fds(dead, &one, &out, 1), -EBADF);
  EXPECT_EQ(out, -7);
  EXPECT_EQ(open_fds(), before);
  close(pfd[0]);
  close(pfd[1]);
  close(path_fd);
  close(dir_fd);
}

// aio2_destroy closes the context's descriptors after its requests; the
// number, reused for a nonblocking pipe, is asked about again: AUTO runs the
// pipe's read inline (a regular file's read at its position would go to the
// pool).
TEST(RegisterFds, DestroyClosesThemAndTheirNumbersAreAskedAgain) {
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  int reg = -1;
  {
    aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
    reg = register_one(ctx.get(), f.fd());
    ASSERT_GE(reg, 0);
    std::vector<unsigned char> buf(4096);
    req_buf r(SYS_read, 1, u(reg), u(buf.data()), buf.size());
    r.attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
    EXPECT_EQ(e.res(), 4096);
    EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_POOL));
  }
  errno = 0;
  EXPECT_EQ(fcntl(reg, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  // The number reused for a pipe's read end.
  int pfd[2];
  ASSERT_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
  ASSERT_EQ(dup3(pfd[0], reg, O_CLOEXEC), reg);
  close(pfd[0]);
  pfd[0] = reg;
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  char c;
  req_buf r(SYS_read, 2, u(pfd[0]), u(&c), 1);
  r.attr(AIO2_ATTR_EXECUTOR);
  const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
  EXPECT_EQ(e.res(), -EAGAIN);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_INLINE));
  close(pfd[0]);
  close(pfd[1]);
}

// A fork child that destroys its copy of the parent's context closes its
// copies of the registered descriptors, and registers none (-ECHILD); the
// parent's stay open and keep reading.
TEST(RegisterFds, AForkChildClosesItsCopiesAndTheParentKeepsItsOwn) {
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  const int reg = register_one(ctx.get(), f.fd());
  ASSERT_GE(reg, 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Exit codes: 2 the copy was not inherited, 3 a registration was taken,
    // 4 destroy failed, 5 the copy stayed open.
    if (fcntl(reg, F_GETFD) < 0) _exit(2);
    int fd = f.fd(), out = -1;
    if (aio2_register_fds(ctx.get(), &fd, &out, 1) != -ECHILD || out != -1) _exit(3);
    if (aio2_destroy(ctx.release()) != 0) _exit(4);
    if (fcntl(reg, F_GETFD) != -1 || errno != EBADF) _exit(5);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::vector<unsigned char> buf(4096);
  req_buf r(SYS_pread64, 1, u(reg), u(buf.data()), buf.size(), 8192);
  const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
  EXPECT_EQ(e.res(), 4096);
  EXPECT_EQ(buf[5], aio2_test::pattern_at(8192 + 5));
}

// ---- registered buffers ----------------------------------------------------

TEST(RegisterBuffers, BadArgumentsAreRefusedAndNothingIsRegistered) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_params np{};
  np.flags = AIO2_SETUP_NO_URING;
  aio2_test::ctx_ptr plain = aio2_test::make_ctx(np);
  std::vector<unsigned char> a(8192), b(8192);
  iovec one{a.data(), a.size()};
  EXPECT_EQ(aio2_register_buffers(nullptr, &one, 1), -EBADF);
  EXPECT_EQ(aio2_register_buffers(plain.get(), &one, 1), -EOPNOTSUPP);
  aio2_params p{};
  p.size = sizeof p;
  aio2_ctx *probe = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &probe), 0);
  const bool uring = p.features & AIO2_FEAT_URING;
  aio2_destroy(probe);
  if (!uring) GTEST_SKIP() << "no io_uring here";
  EXPECT_EQ(aio2_register_buffers(ctx.get(), nullptr, 1), -EINVAL);
  EXPECT_EQ(aio2_register_buffers(ctx.get(), &one, 0), -EINVAL);
  std::vector<iovec> many(1025, iovec{a.data(), 1});
  EXPECT_EQ(aio2_register_buffers(ctx.get(), many.data(), 1025), -EINVAL);
  iovec empty{a.data(), 0};
  EXPECT_EQ(aio2_register_buffers(ctx.get(), &empty, 1), -EINVAL);
  iovec overlap[2] = {{a.data(), 4096}, {a.data() + 4095, 100}};
  EXPECT_EQ(aio2_register_buffers(ctx.get(), overlap, 2), -EINVAL);
  // None of those took: this one does, and a second is refused.
  iovec two[2] = {{b.data(), b.size()}, {a.data(), a.size()}};
  EXPECT_EQ(aio2_register_buffers(ctx.get(), two, 2), 0);
  EXPECT_EQ(aio2_register_buffers(ctx.get(), &one, 1), -EBUSY);
}

// Reads and writes into registered buffers, inside and across their ends,
// on every policy: the bytes are right wherever they run.
TEST(RegisterBuffers, ReadsAndWritesThroughThemAreRight) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 20);
  ASSERT_TRUE(f.ok());
  std::unique_ptr<unsigned char, decltype(&std::free)> area_mem(
      static_cast<unsigned char *>(std::aligned_alloc(4096, 4 * 4096)), &std::free);
  ASSERT_TRUE(area_mem);
  struct {
    unsigned char *p;
    unsigned char *data() const { return p; }
  } area{area_mem.get()};
  std::vector<unsigned char> outside(8192);
  iovec bufs[2] = {{area.data(), 2 * 4096}, {area.data() + 2 * 4096, 2 * 4096}};
  const int rc = aio2_register_buffers(ctx.get(), bufs, 2);
  if (rc == -EOPNOTSUPP) GTEST_SKIP() << "no io_uring here";
  ASSERT_EQ(rc, 0) << aio2_strerror(rc);
  struct where {
    unsigned char *p;
    size_t len;
  };
  // In the first, in the second, across both (not fixed), outside.
  const where places[] = {{area.data() + 100, 4096},
                          {area.data() + 2 * 4096, 8192},
                          {area.data() + 4096, 8192},
                          {outside.data(), 8192}};
  uint64_t ud = 1;
  for (const uint32_t policy : {AIO2_POLICY_AUTO, AIO2_POLICY_URING, AIO2_POLICY_POOL}) {
    for (const where &w : places) {
      const uint64_t off = (ud % 64) * 8192 + 512;
      std::memset(w.p, 0, w.len);
      req_buf r(SYS_pread64, ud++, u(f.fd()), u(w.p), w.len, off);
      r.path(policy);
      EXPECT_EQ(aio2_test::submit_wait(ctx.get(), r, 10).res(), static_cast<int64_t>(w.len))
          << "policy " << policy;
      EXPECT_TRUE(aio2_test::pattern_holds(w.p, off, w.len)) << "policy " << policy;
      // Written back elsewhere in the file from the same buffer, then read
      // through the caller's descriptor.
      req_buf wr(SYS_pwrite64, ud++, u(f.fd()), u(w.p), w.len, off + (1 << 19));
      wr.path(policy);
      EXPECT_EQ(aio2_test::submit_wait(ctx.get(), wr, 10).res(), static_cast<int64_t>(w.len));
      std::vector<unsigned char> back(w.len);
      ASSERT_EQ(pread(f.fd(), back.data(), w.len, static_cast<off_t>(off + (1 << 19))),
                static_cast<ssize_t>(w.len));
      EXPECT_EQ(std::memcmp(back.data(), w.p, w.len), 0) << "policy " << policy;
    }
  }
}

// Threads registering while they submit reads on what they registered:
// every read is reaped exactly once, with its bytes, and nothing is
// refused.
TEST(RegisterFds, RegisteringBesideSubmitting) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  constexpr unsigned kThreads = 3, kEach = 40, kLen = 512;
  std::vector<unsigned char> bufs(kThreads * kEach * kLen);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (unsigned i = 0; i < kEach; i++) {
        int fd = f.fd(), reg = -1;
        if (aio2_register_fds(ctx.get(), &fd, &reg, 1) != 0) {
          bad++;
          continue;
        }
        const uint64_t id = t * kEach + i;
        aio2_iocb io;
        aio2_prep(&io, SYS_pread64, id, u(reg), u(bufs.data() + id * kLen), kLen, id * kLen, 0, 0);
        if (aio2_submit(ctx.get(), &io, sizeof io) != static_cast<ssize_t>(sizeof io)) bad++;
      }
    });
  }
  for (auto &t : ts) t.join();
  ASSERT_EQ(bad.load(), 0);
  std::vector<int> seen(kThreads * kEach, 0);
  aio2_test::for_events(ctx.get(), kThreads * kEach, [&](const aio2_event *ev) {
    ASSERT_LT(ev->user_data, seen.size());
    seen[ev->user_data]++;
    EXPECT_EQ(ev->res, kLen);
  });
  for (uint64_t id = 0; id < seen.size(); id++) {
    EXPECT_EQ(seen[id], 1) << id;
    EXPECT_TRUE(aio2_test::pattern_holds(bufs.data() + id * kLen, id * kLen, kLen)) << id;
  }
}

// The reads tests/register_fds_syscalls.sh counts: 1000 lone reads with the
// timing and cache attributes and 60 calls of 32 plain reads, every one
// checked, on the registered descriptor or, for the control, the caller's.
void counted_reads(bool registered) {
  aio2_test::ctx_ptr ctx = aio2_test::make_ctx();
  aio2_test::pattern_file f(1 << 20);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  const int fd = registered ? register_one(ctx.get(), f.fd()) : f.fd();
  ASSERT_GE(fd, 0);
  std::vector<unsigned char> buf(32 * 4096);
  for (uint64_t i = 0; i < 1000; i++) {
    const uint64_t off = (i * 7 % 256) * 4096;
    req_buf r(SYS_pread64, i, u(fd), u(buf.data()), 4096, off);
    r.attr(AIO2_ATTR_TIMING).attr(AIO2_ATTR_CACHE);
    const event_copy e = aio2_test::submit_wait(ctx.get(), r, 10);
    ASSERT_EQ(e.res(), 4096) << i;
    ASSERT_TRUE(aio2_test::pattern_holds(buf.data(), off, 4096)) << i;
  }
  for (uint64_t call = 0; call < 60; call++) {
    std::vector<aio2_iocb> ios(32);
    for (uint64_t j = 0; j < 32; j++) {
      const uint64_t off = ((call * 32 + j) * 5 % 256) * 4096;
      aio2_prep(&ios[j], SYS_pread64, off, u(fd), u(buf.data() + j * 4096), 4096, off, 0, 0);
    }
    const ssize_t bytes = static_cast<ssize_t>(ios.size() * sizeof(aio2_iocb));
    ASSERT_EQ(aio2_submit(ctx.get(), ios.data(), static_cast<size_t>(bytes)), bytes);
    unsigned got = 0;
    aio2_test::for_events(ctx.get(), 32, [&](const aio2_event *ev) {
      got++;
      EXPECT_EQ(ev->res, 4096);
    });
    ASSERT_EQ(got, 32u);
    for (uint64_t j = 0; j < 32; j++) {
      const uint64_t off = ((call * 32 + j) * 5 % 256) * 4096;
      ASSERT_TRUE(aio2_test::pattern_holds(buf.data() + j * 4096, off, 4096)) << call << " " << j;
    }
  }
}

TEST(RegisteredFdsCount, Registered) { counted_reads(true); }
TEST(RegisteredFdsCount, Unregistered) { counted_reads(false); }

}  // namespace
