// SPDX-License-Identifier: MIT
// The policies (AUTO, INLINE, URING, POOL), each with and without
// AIO2_SETUP_NO_URING: the exact path each kind of call and each descriptor
// rule gives (the executor attribute's path), opens with and without the
// flags that let io_uring take them, creat, whole sends to blocking sockets
// and per-request overrides; the inline path runs inside
// aio2_submit in the submitting thread; every attribute keeps its promises
// on every path (timing, tag, deadline, executor, cache, ioprio, rusage);
// cancel and destroy with reads of empty pipes in flight; and a call that
// fails reports exactly what the raw system call reports (aio2_call is the
// reference), whichever path ran it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "fs_util.h"
#include "test_util.h"

namespace {

using namespace aio2_test;
using namespace std::chrono_literals;

constexpr uint64_t KiB = 1024;
constexpr int kWhoProcess = 1;                      // IOPRIO_WHO_PROCESS
constexpr uint32_t kBe6 = (2u << 13) | 6u;          // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 6)
constexpr uint32_t kBadClass = (7u << 13) | 1u;     // no class 7
constexpr uint64_t kFar = 3600ull * 1000000000ull;  // an hour, in ns

long my_tid() { return syscall(SYS_gettid); }
long my_ioprio() { return syscall(SYS_ioprio_get, kWhoProcess, 0); }
uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }
uint64_t u(int fd) { return static_cast<uint64_t>(fd); }

// "-29 (Illegal seek)", or the number alone when it is not an -errno.
std::string errno_str(int64_t res) {
  std::string s = std::to_string(res);
  if (res < 0 && res > -4096) s += " (" + std::string(std::strerror(static_cast<int>(-res))) + ")";
  if (res == INT64_MIN) s += " (no event)";
  return s;
}

// The route of a read at an offset of a regular file meant to be cached:
// kCachedRead when a RWF_NOWAIT read finds all of it, else kUncachedRead.
route cached_read(int fd, uint64_t off, uint64_t len) {
  return nowait_reads_whole(fd, off, len) ? kCachedRead : kUncachedRead;
}

// ---- the variants ---------------------------------------------------------------

struct variant {
  uint32_t policy;
  uint32_t setup_flags;  // 0 or AIO2_SETUP_NO_URING
};

std::string variant_str(const variant &v) {
  return std::string(policy_name(v.policy)) + (v.setup_flags & AIO2_SETUP_NO_URING ? "NoUring" : "");
}
std::string variant_name(const ::testing::TestParamInfo<variant> &info) {
  return variant_str(info.param);
}
// How gtest prints a variant (in ctest's test list too).
void PrintTo(const variant &v, std::ostream *os) { *os << variant_str(v); }

class PolicyTest : public ::testing::TestWithParam<variant> {
 protected:
  void SetUp() override {
    ctx_ = fresh_ctx(&params_);
    ASSERT_NE(ctx_, nullptr);
    if (GetParam().setup_flags & AIO2_SETUP_NO_URING) {
      ASSERT_FALSE(uring());
    } else if (!uring()) {
      GTEST_SKIP() << "io_uring is not available here (AIO2_FEAT_URING missing): this variant "
                      "would only repeat "
                   << variant_str(variant{policy(), AIO2_SETUP_NO_URING});
    }
  }
  // Another context like the test's.
  ctx_ptr fresh_ctx(aio2_params *in_force = nullptr) const {
    aio2_params p{};
    p.flags = GetParam().setup_flags;
    return make_policy_ctx(GetParam().policy, p, in_force);
  }
  uint32_t policy() const { return GetParam().policy; }
  bool uring() const { return (params_.features & AIO2_FEAT_URING) != 0; }
  // Whether `path` is the one this context's policy must give route `r`.
  ::testing::AssertionResult path_is(const route &r, uint32_t path) const {
    return aio2_test::path_is(policy(), r, uring(), path);
  }
  aio2_ctx *c() const { return ctx_.get(); }
  event_copy run(req_buf &r) { return submit_one(c(), r); }

  aio2_params params_{};
  ctx_ptr ctx_;
};

// ---- where each call runs ---------------------------------------------------------

TEST_P(PolicyTest, EachKindOfCallTakesThePolicysPath) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  const int out = open((dir / "out").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  std::vector<unsigned char> buf(4096);
  const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  constexpr int64_t kPositive = INT64_MIN;
  auto check = [&](req_buf &&r, const route &want, int64_t res, const char *what) {
    r.attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = run(r);
    if (res == kPositive)
      EXPECT_GT(e.res(), 0) << what;
    else
      EXPECT_EQ(e.res(), res) << what;
    const auto x = e.get<aio2_attr_executor>(AIO2_ATTR_EXECUTOR);
    EXPECT_TRUE(path_is(want, x.path)) << what;
    EXPECT_LT(static_cast<long>(x.cpu), ncpu) << what;
    if (x.path == AIO2_PATH_POOL) {
      EXPECT_GE(x.worker, 1u) << what;
    }
  };
  check(req_buf(SYS_getppid, 1), kNonblockingCall, getppid(), "getppid");
  check(req_buf(SYS_uname, 2, u(buf.data())), kNonblockingCall, 0, "uname");
  const route pread_route = cached_read(f.fd(), 8192, 4096);
  check(req_buf(SYS_pread64, 3, u(f.fd()), u(buf.data()), 4096, 8192), pread_route, 4096,
        "pread64 of a cached regular file at an offset");
  EXPECT_TRUE(pattern_holds(buf.data(), 8192, 4096));
  check(req_buf(SYS_pwrite64, 4, u(out), u(buf.data()), 4096, 0), kUringCall, 4096,
        "pwrite64 of a regular file");
  check(req_buf(SYS_fsync, 5, u(out)), kUringCall, 0, "fsync");
  static const timespec nap{0, 1000};
  check(req_buf(SYS_nanosleep, 6, u(&nap), 0), kPoolCall, 0, "nanosleep");
  check(req_buf(SYS_getdents64, 7, u(dir.fd()), u(buf.data()), buf.size()), kPoolCall, kPositive,
        "getdents64");
  // gettid says which thread ran it: this one exactly when the path is INLINE.
  req_buf t(SYS_gettid, 8);
  t.attr(AIO2_ATTR_EXECUTOR);
  const event_copy e = run(t);
  const uint32_t path = e.get<aio2_attr_executor>(AIO2_ATTR_EXECUTOR).path;
  EXPECT_TRUE(path_is(kNonblockingCall, path));
  if (path == AIO2_PATH_INLINE)
    EXPECT_EQ(e.res(), my_tid());
  else
    EXPECT_NE(e.res(), my_tid());
  close(out);
}

// Each rule that looks at a request's arguments and descriptors (the kind
// of file, O_NONBLOCK, the offset, the flags), case by case: the exact path
// each policy gives it, with io_uring and without, and the call's result.
TEST_P(PolicyTest, EachDescriptorRuleGivesItsPath) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  const int out = open((dir / "out").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  std::vector<unsigned char> data(8192);
  for (size_t i = 0; i < data.size(); i++) data[i] = pattern_at(i);
  ASSERT_EQ(pwrite(out, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  const int out_nb = open((dir / "out").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(out_nb, 0);
  const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  int dp[2], bp[2], nbp[2], nbe[2], bq[2], nbq[2];  // pipes: with data, blocking, O_NONBLOCK...
  ASSERT_EQ(pipe2(dp, O_CLOEXEC), 0);
  ASSERT_EQ(write(dp[1], "pipedata", 8), 8);
  ASSERT_EQ(pipe2(bp, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(nbp, O_CLOEXEC | O_NONBLOCK), 0);
  ASSERT_EQ(pipe2(nbe, O_CLOEXEC | O_NONBLOCK), 0);  // ...empty and O_NONBLOCK...
  ASSERT_EQ(pipe2(bq, O_CLOEXEC), 0);  // ...and two more, the ends of splices
  ASSERT_EQ(pipe2(nbq, O_CLOEXEC | O_NONBLOCK), 0);
  int bs[2], nbs[2];  // stream socket pairs: blocking and O_NONBLOCK
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, bs), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, nbs), 0);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr *>(&lo), sizeof lo), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(epfd, 0);
  std::vector<unsigned char> buf(4096);
  char small[8] = {};
  auto check = [&](req_buf &&r, const route &want, int64_t res, const char *what) {
    r.attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = submit_wait(c(), r, 5);
    EXPECT_EQ(e.res(), res) << what;
    EXPECT_TRUE(path_is(want, e.path())) << what;
  };
  // Reads and writes of regular files.
  check(req_buf(SYS_read, 1, u(f.fd()), u(buf.data()), 4096), kPoolCall, 4096,
        "read of a regular file at its position");
  EXPECT_TRUE(pattern_holds(buf.data(), 0, 4096));
  check(req_buf(SYS_write, 2, u(out), u(data.data()), 16), kPoolCall, 16,
        "write to a regular file at its position");
  check(req_buf(SYS_pread64, 3, u(f.fd()), u(buf.data()), 4096, static_cast<uint64_t>(-1)),
        kPoolCall, -EINVAL, "pread64 at offset -1");
  const route nb_file_read = cached_read(out_nb, 0, 4096);
  check(req_buf(SYS_pread64, 4, u(out_nb), u(buf.data()), 4096, 0), nb_file_read, 4096,
        "pread64 of an O_NONBLOCK regular file (pread64 ignores O_NONBLOCK)");
  check(req_buf(SYS_read, 5, u(out_nb), u(buf.data()), 4096), kPoolCall, 4096,
        "read of an O_NONBLOCK regular file at its position");
  iovec iov{buf.data(), 4096};
  // preadv2 with RWF_NOWAIT cannot block: AUTO runs it inline; URING gives
  // it to io_uring, which takes the flag.
  constexpr route kNowaitRead{AIO2_PATH_INLINE, AIO2_PATH_INLINE, true};
  check(req_buf(SYS_preadv2, 6, u(f.fd()), u(&iov), 1, 4096, 0, RWF_NOWAIT), kNowaitRead, 4096,
        "preadv2 with RWF_NOWAIT at an offset");
  check(req_buf(SYS_preadv2, 7, u(f.fd()), u(&iov), 1, static_cast<uint64_t>(-1), 0, 0), kPoolCall,
        4096, "preadv2 at the file position (-1)");
  const route preadv_route = cached_read(f.fd(), 16384, 4096);
  check(req_buf(SYS_preadv, 8, u(f.fd()), u(&iov), 1, 16384, 0), preadv_route, 4096,
        "preadv of a cached regular file at an offset");
  EXPECT_TRUE(pattern_holds(buf.data(), 16384, 4096));
  check(req_buf(SYS_pwritev2, 9, u(out), u(&iov), 1, 8192, 0, 0), kUringCall, 4096,
        "pwritev2 of a regular file at an offset");
  // Positioned calls on what has no position: io_uring would ignore the
  // offset where the call fails, or read like read(2).
  check(req_buf(SYS_pread64, 10, u(dp[0]), u(buf.data()), 8, 0), kPoolCall, -ESPIPE,
        "pread64 of a pipe holding data");
  check(req_buf(SYS_pread64, 11, u(zero), u(buf.data()), 4096, 4096), kPoolCall, 4096,
        "pread64 of /dev/zero (a character device)");
  // Pipes: blocking reads go to io_uring; blocking writes stay off it (the
  // call writes everything); O_NONBLOCK ones cannot block.
  ASSERT_EQ(write(bp[1], "blocking", 8), 8);
  check(req_buf(SYS_read, 12, u(bp[0]), u(small), 8), kUringCall, 8,
        "read of a blocking pipe holding data");
  ASSERT_EQ(write(nbp[1], "nonblock", 8), 8);
  check(req_buf(SYS_read, 13, u(nbp[0]), u(small), 8), kNonblockingDescriptor, 8,
        "read of an O_NONBLOCK pipe holding data");
  check(req_buf(SYS_read, 14, u(nbe[0]), u(small), 8), kNonblockingDescriptor, -EAGAIN,
        "read of an empty O_NONBLOCK pipe");
  check(req_buf(SYS_write, 15, u(bp[1]), u("12345678"), 8), kPoolCall, 8,
        "write to a blocking pipe");
  check(req_buf(SYS_write, 16, u(nbp[1]), u("12345678"), 8), kNonblockingDescriptor, 8,
        "write to an O_NONBLOCK pipe");
  check(req_buf(SYS_fsync, 17, u(bp[0])), kUringCall, -EINVAL, "fsync of a pipe");
  // Splices: io_uring takes them without offset pointers, unless every
  // descriptor is O_NONBLOCK (then inline).
  check(req_buf(SYS_splice, 18, u(bp[0]), 0, u(bq[1]), 0, 8, 0), kUringCall, 8,
        "splice between blocking pipes");
  check(req_buf(SYS_splice, 19, u(nbp[0]), 0, u(nbq[1]), 0, 8, 0), kNonblockingDescriptor, 8,
        "splice between O_NONBLOCK pipes");
  loff_t in_off = 0;
  check(req_buf(SYS_splice, 20, u(f.fd()), u(&in_off), u(bq[1]), 0, 100, 0), kPoolCall, 100,
        "splice from a file with an offset pointer");
  EXPECT_EQ(in_off, 100);
  // Sockets.
  ASSERT_EQ(write(bs[1], "sock-one", 8), 8);
  check(req_buf(SYS_recvfrom, 21, u(bs[0]), u(small), 8, 0, 0, 0), kUringCall, 8,
        "recvfrom of a blocking socket holding data");
  ASSERT_EQ(write(nbs[1], "sock-two", 8), 8);
  check(req_buf(SYS_recvfrom, 22, u(nbs[0]), u(small), 8, 0, 0, 0), kNonblockingDescriptor, 8,
        "recvfrom of an O_NONBLOCK socket holding data");
  ASSERT_EQ(write(bs[1], "sock-3!!", 8), 8);
  sockaddr_storage from{};
  socklen_t from_len = sizeof from;
  check(req_buf(SYS_recvfrom, 23, u(bs[0]), u(small), 8, 0, u(&from), u(&from_len)), kPoolCall, 8,
        "recvfrom asking for the source address");
  check(req_buf(SYS_accept4, 24, u(listener), 0, 0, SOCK_CLOEXEC), kNonblockingDescriptor, -EAGAIN,
        "accept4 on an O_NONBLOCK listener with nothing pending");
  // Calls without descriptor rules.
  struct statx sx {};
  check(req_buf(SYS_statx, 25, u(dir.fd()), u("out"), 0, STATX_SIZE, u(&sx)), kUringCall, 0,
        "statx");
  struct stat st {};
  ASSERT_EQ(fstat(out, &st), 0);
  EXPECT_EQ(sx.stx_size, static_cast<uint64_t>(st.st_size));
  const int dup_fd = dup(out);
  ASSERT_GE(dup_fd, 0);
  check(req_buf(SYS_close, 26, u(dup_fd)), kUringCall, 0, "close");
  EXPECT_EQ(fcntl(dup_fd, F_GETFD), -1);
  epoll_event ev{};
  ev.events = EPOLLIN;
  check(req_buf(SYS_epoll_ctl, 27, u(epfd), EPOLL_CTL_ADD, u(bp[0]), u(&ev)), kUringCall, 0,
        "epoll_ctl");
  for (int fd : {out, out_nb, zero, listener, epfd, dp[0], dp[1], bp[0], bp[1], nbp[0], nbp[1], nbe[0], nbe[1],
                 bq[0], bq[1], nbq[0], nbq[1], bs[0], bs[1], nbs[0], nbs[1]})
    close(fd);
}

// ---- opens, creat and sends -------------------------------------------------------

mode_t current_umask() {
  const mode_t m = umask(0);
  umask(m);
  return m;
}

// An open of `name` in `d` through aio2, with `flags` and `mode`, by `nr`:
// open (the absolute path), openat (relative to d's descriptor) or openat2
// (the same, with a struct open_how). Waits up to 5 s for the event.
event_copy open_via(aio2_ctx *c, long nr, const scratch_dir &d, const char *name, uint64_t flags,
                    mode_t mode) {
  const std::string abs = d / name;
  open_how how{};
  how.flags = flags;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  req_buf r = nr == SYS_open     ? req_buf(SYS_open, 1, u(abs.c_str()), flags, mode)
              : nr == SYS_openat ? req_buf(SYS_openat, 1, u(d.fd()), u(name), flags, mode)
                                 : req_buf(SYS_openat2, 1, u(d.fd()), u(name), u(&how), sizeof how);
  r.attr(AIO2_ATTR_EXECUTOR);
  return submit_wait(c, r, 5);
}

const char *open_name(long nr) {
  return nr == SYS_open ? "open" : nr == SYS_openat ? "openat" : "openat2";
}

// O_NONBLOCK, O_PATH or O_DIRECTORY: the open cannot wait on a FIFO, so
// io_uring takes it; the descriptor it returns works like one from the call.
TEST_P(PolicyTest, OpensThatCannotWaitOnAFifoGoToIoUringAndGiveAWorkingDescriptor) {
  scratch_dir d;
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(mkdir((d / "sub").c_str(), 0700), 0);
  const int w = open((d / "f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(w, 0);
  ASSERT_EQ(write(w, "contents", 8), 8);
  close(w);
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  struct open_case {
    const char *what;
    const char *name;
    uint64_t flags;
    mode_t type;  // S_IFDIR, S_IFREG, S_IFIFO
  };
  const open_case cases[] = {
      {"O_DIRECTORY of a directory", "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC, S_IFDIR},
      {"O_PATH of a regular file", "f", O_PATH | O_CLOEXEC, S_IFREG},
      {"O_PATH | O_DIRECTORY of a directory", "sub", O_PATH | O_DIRECTORY | O_CLOEXEC, S_IFDIR},
      {"O_NONBLOCK of a regular file", "f", O_RDONLY | O_NONBLOCK | O_CLOEXEC, S_IFREG},
      {"O_NONBLOCK of a FIFO with no writer", "fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC, S_IFIFO},
  };
  for (const long nr : {long{SYS_open}, long{SYS_openat}, long{SYS_openat2}}) {
    for (const open_case &oc : cases) {
      SCOPED_TRACE(std::string(open_name(nr)) + ": " + oc.what);
      const event_copy e = open_via(c(), nr, d, oc.name, oc.flags, 0);
      EXPECT_TRUE(path_is(kUringCall, e.path()));
      ASSERT_GE(e.res(), 0) << errno_str(e.res());
      const int fd = static_cast<int>(e.res());
      struct stat got {}, want {};
      ASSERT_EQ(fstat(fd, &got), 0) << std::strerror(errno);
      ASSERT_EQ(stat((d / oc.name).c_str(), &want), 0);
      EXPECT_EQ(got.st_mode & S_IFMT, oc.type);
      EXPECT_EQ(got.st_ino, want.st_ino);
      EXPECT_EQ(got.st_dev, want.st_dev);
      EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
      const int fl = fcntl(fd, F_GETFL);
      char buf[16] = {};
      if (oc.flags & O_PATH) {
        EXPECT_TRUE(fl & O_PATH) << std::hex << fl;
        EXPECT_EQ(read(fd, buf, sizeof buf), -1);  // a path descriptor does no I/O
        EXPECT_EQ(errno, EBADF);
      } else if (oc.type == S_IFREG) {
        EXPECT_TRUE(fl & O_NONBLOCK) << std::hex << fl;
        EXPECT_EQ(read(fd, buf, sizeof buf), 8);
        EXPECT_STREQ(buf, "contents");
      } else if (oc.type == S_IFIFO) {
        EXPECT_TRUE(fl & O_NONBLOCK) << std::hex << fl;
        EXPECT_EQ(read(fd, buf, sizeof buf), 0);  // no writer: end of file at once
      }
      EXPECT_EQ(close(fd), 0);
    }
  }
}

// Without those flags an open could wait on a FIFO for the other end, which
// io_uring would not: the pool runs it, and it works.
TEST_P(PolicyTest, OpensThatCouldWaitOnAFifoGoToThePoolAndWork) {
  scratch_dir d;
  ASSERT_TRUE(d.ok());
  const int w = open((d / "f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(w, 0);
  ASSERT_EQ(write(w, "contents", 8), 8);
  close(w);
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  const mode_t mask = current_umask();
  for (const long nr : {long{SYS_open}, long{SYS_openat}, long{SYS_openat2}}) {
    SCOPED_TRACE(open_name(nr));
    char buf[16] = {};
    // O_RDONLY of a regular file.
    event_copy e = open_via(c(), nr, d, "f", O_RDONLY | O_CLOEXEC, 0);
    EXPECT_TRUE(path_is(kPoolCall, e.path())) << "O_RDONLY";
    ASSERT_GE(e.res(), 0) << errno_str(e.res());
    int fd = static_cast<int>(e.res());
    EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(read(fd, buf, sizeof buf), 8);
    EXPECT_STREQ(buf, "contents");
    EXPECT_EQ(close(fd), 0);
    // O_CREAT | O_WRONLY of a new file, with a mode.
    const std::string name = std::string("new-") + open_name(nr);
    e = open_via(c(), nr, d, name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    EXPECT_TRUE(path_is(kPoolCall, e.path())) << "O_CREAT | O_WRONLY";
    ASSERT_GE(e.res(), 0) << errno_str(e.res());
    fd = static_cast<int>(e.res());
    struct stat st {};
    ASSERT_EQ(fstat(fd, &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0640u & ~mask);
    EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
    EXPECT_EQ(write(fd, "new", 3), 3);
    EXPECT_EQ(close(fd), 0);
    ASSERT_EQ(stat((d / name).c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 3);
    // O_RDONLY of a FIFO waits for a writer (one that opens in 50 ms).
    std::thread writer([&] {
      std::this_thread::sleep_for(50ms);
      const int wf = open((d / "fifo").c_str(), O_WRONLY | O_CLOEXEC);
      if (wf >= 0) {
        (void)!write(wf, "fifo", 4);
        close(wf);
      }
    });
    e = open_via(c(), nr, d, "fifo", O_RDONLY | O_CLOEXEC, 0);
    writer.join();
    EXPECT_TRUE(path_is(kPoolCall, e.path())) << "O_RDONLY of a FIFO";
    ASSERT_GE(e.res(), 0) << errno_str(e.res());
    fd = static_cast<int>(e.res());
    std::memset(buf, 0, sizeof buf);
    EXPECT_EQ(read(fd, buf, sizeof buf), 4);
    EXPECT_STREQ(buf, "fifo");
    EXPECT_EQ(close(fd), 0);
  }
}

// creat's flags are O_CREAT | O_WRONLY | O_TRUNC, never one that keeps an
// open off a FIFO's wait: it always runs on the pool.
TEST_P(PolicyTest, CreatGoesToThePoolAndCreatesOrTruncates) {
  scratch_dir d;
  ASSERT_TRUE(d.ok());
  const mode_t mask = current_umask();
  const std::string path = d / "c";
  auto creat_via = [&](const std::string &p, mode_t mode) {
    req_buf r(SYS_creat, 1, u(p.c_str()), mode);
    r.attr(AIO2_ATTR_EXECUTOR);
    return submit_wait(c(), r, 5);
  };
  // A new file, with the mode.
  event_copy e = creat_via(path, 0640);
  EXPECT_TRUE(path_is(kPoolCall, e.path()));
  ASSERT_GE(e.res(), 0) << errno_str(e.res());
  int fd = static_cast<int>(e.res());
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u & ~mask);
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
  EXPECT_EQ(write(fd, "0123456789", 10), 10);
  EXPECT_EQ(close(fd), 0);
  // An existing file: truncated, its mode kept.
  e = creat_via(path, 0600);
  EXPECT_TRUE(path_is(kPoolCall, e.path()));
  ASSERT_GE(e.res(), 0) << errno_str(e.res());
  fd = static_cast<int>(e.res());
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u & ~mask);
  EXPECT_EQ(close(fd), 0);
  // A missing directory: the call's error.
  e = creat_via(d / "missing/c", 0600);
  EXPECT_TRUE(path_is(kPoolCall, e.path()));
  EXPECT_EQ(e.res(), -ENOENT);
}

// A blocking stream socket takes a send whole from the call, which waits for
// room; io_uring would return after what fitted. So sendto and sendmsg stay
// on the pool, and send every byte of a message much larger than the
// socket's buffer while a reader drains it slowly.
TEST_P(PolicyTest, SendsToABlockingStreamSocketGoToThePoolAndSendEverything) {
  constexpr size_t kBytes = 2 << 20;
  std::vector<unsigned char> msg(kBytes);
  for (size_t i = 0; i < kBytes; i++) msg[i] = pattern_at(i);
  for (const long nr : {long{SYS_sendto}, long{SYS_sendmsg}}) {
    SCOPED_TRACE(nr == SYS_sendto ? "sendto" : "sendmsg");
    int s[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    const int small = 16384;
    ASSERT_EQ(setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    std::vector<unsigned char> got;
    std::thread reader([&] {
      std::this_thread::sleep_for(20ms);  // the buffer fills first
      const timeval tv{10, 0};
      setsockopt(s[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::vector<unsigned char> chunk(8192);
      while (got.size() < kBytes) {
        const ssize_t n = recv(s[1], chunk.data(), chunk.size(), 0);
        if (n <= 0) break;
        got.insert(got.end(), chunk.begin(), chunk.begin() + n);
      }
    });
    iovec iov[2] = {{msg.data(), 1000}, {msg.data() + 1000, kBytes - 1000}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    req_buf r = nr == SYS_sendto ? req_buf(SYS_sendto, 1, u(s[0]), u(msg.data()), kBytes, 0, 0, 0)
                                 : req_buf(SYS_sendmsg, 1, u(s[0]), u(&m), 0);
    r.attr(AIO2_ATTR_EXECUTOR);
    // Submitted from a thread of its own: in a thread that created an
    // io_uring instance since closed (an earlier test's context), the
    // kernel's clean-up of that instance interrupts the next blocking call,
    // which would cut an INLINE send short.
    event_copy e;
    std::thread sender([&] { e = submit_wait(c(), r, 10); });
    sender.join();
    shutdown(s[0], SHUT_WR);  // the reader stops at the end, whatever was sent
    reader.join();
    EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
    EXPECT_TRUE(path_is(kPoolCall, e.path()));
    EXPECT_EQ(got.size(), kBytes);
    EXPECT_TRUE(got == msg) << "the bytes received differ from those sent";
    close(s[0]);
    close(s[1]);
  }
}

// On an O_NONBLOCK socket the call cannot block: AUTO runs it inline on a
// context with io_uring (URING, where io_uring would wait instead of
// returning -EAGAIN, and AUTO without io_uring use the pool). It sends what
// fits, and -EAGAIN when nothing does.
TEST_P(PolicyTest, SendsToAnONonblockSocketRunInlineAndDoNotWait) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s), 0);
  static const char word[16] = "nonblocking msg";
  iovec iov[2] = {{const_cast<char *>(word), 5}, {const_cast<char *>(word) + 5, 11}};
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  auto send_via = [&](long nr) {
    req_buf r = nr == SYS_sendto ? req_buf(SYS_sendto, 1, u(s[0]), u(word), sizeof word, 0, 0, 0)
                                 : req_buf(SYS_sendmsg, 1, u(s[0]), u(&m), 0);
    r.attr(AIO2_ATTR_EXECUTOR);
    return submit_wait(c(), r, 5);
  };
  for (const long nr : {long{SYS_sendto}, long{SYS_sendmsg}}) {
    SCOPED_TRACE(nr == SYS_sendto ? "sendto" : "sendmsg");
    const event_copy e = send_via(nr);
    EXPECT_EQ(e.res(), static_cast<int64_t>(sizeof word));
    EXPECT_TRUE(path_is(kNonblockingDescriptor, e.path()));
    char back[sizeof word] = {};
    EXPECT_EQ(recv(s[1], back, sizeof back, 0), static_cast<ssize_t>(sizeof word));
    EXPECT_EQ(std::memcmp(back, word, sizeof word), 0);
  }
  // Full: -EAGAIN at once.
  std::vector<char> fill(65536, 'x');
  while (send(s[0], fill.data(), fill.size(), MSG_DONTWAIT) > 0) {
  }
  for (const long nr : {long{SYS_sendto}, long{SYS_sendmsg}}) {
    SCOPED_TRACE(nr == SYS_sendto ? "sendto to a full socket" : "sendmsg to a full socket");
    const event_copy e = send_via(nr);
    EXPECT_EQ(e.res(), -EAGAIN);
    EXPECT_TRUE(path_is(kNonblockingDescriptor, e.path()));
  }
  close(s[0]);
  close(s[1]);
}

TEST_P(PolicyTest, APerRequestPathOverridesThePolicy) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(4096);
  for (uint32_t o = AIO2_POLICY_AUTO; o <= AIO2_POLICY_POOL; o++) {
    SCOPED_TRACE(policy_name(o));
    req_buf p(SYS_getppid, 1);
    p.path(o).attr(AIO2_ATTR_EXECUTOR);
    const event_copy ep = run(p);
    EXPECT_EQ(ep.res(), getppid());
    EXPECT_TRUE(aio2_test::path_is(o, kNonblockingCall, uring(), ep.path()));
    const route pread_route = cached_read(f.fd(), 4096, 4096);
    req_buf r(SYS_pread64, 2, u(f.fd()), u(buf.data()), 4096, 4096);
    r.path(o).attr(AIO2_ATTR_EXECUTOR);
    const event_copy er = run(r);
    EXPECT_EQ(er.res(), 4096);
    EXPECT_TRUE(pattern_holds(buf.data(), 4096, 4096));
    EXPECT_TRUE(aio2_test::path_is(o, pread_route, uring(), er.path()));
    req_buf t(SYS_gettid, 3);
    t.path(o);
    const event_copy et = run(t);
    if (o == AIO2_POLICY_INLINE || o == AIO2_POLICY_AUTO)
      EXPECT_EQ(et.res(), my_tid());
    else
      EXPECT_NE(et.res(), my_tid());
  }
}

// INLINE: inside aio2_submit, in the submitting thread; the event still
// goes to the ring, and is there when aio2_submit returns.
TEST_P(PolicyTest, TheInlinePathRunsInsideSubmit) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  static const char word[8] = "inline!";
  req_buf w(SYS_write, 1, u(p[1]), u(word), sizeof word);
  w.path(AIO2_POLICY_INLINE).attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c(), w.b, w.len()), w.len());
  char back[8] = {};
  EXPECT_EQ(read(p[0], back, sizeof back), 8) << "the write had not run when submit returned";
  EXPECT_EQ(std::memcmp(back, word, 8), 0);
  alignas(8) unsigned char buf[256];
  const timespec zero{0, 0};
  const ssize_t got = aio2_getevents(c(), 1, buf, sizeof buf, &zero);
  ASSERT_GT(got, 0) << "the inline event was not in the ring when submit returned";
  const event_copy e = copy_event(aio2_event_next(buf, static_cast<size_t>(got), nullptr));
  EXPECT_EQ(e.res(), 8);
  EXPECT_EQ(e.path(), AIO2_PATH_INLINE);
  close(p[0]);
  close(p[1]);
}

// INLINE even when the call blocks: a read of an empty pipe returns from
// aio2_submit only once another thread has written.
TEST_P(PolicyTest, TheInlinePathBlocksInSubmit) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    written = true;
    (void)!write(p[1], "12345678", 8);
  });
  char got[8] = {};
  req_buf r(SYS_read, 1, u(p[0]), u(got), sizeof got);
  r.path(AIO2_POLICY_INLINE).attr(AIO2_ATTR_EXECUTOR);
  EXPECT_EQ(aio2_submit(c(), r.b, r.len()), r.len());
  EXPECT_TRUE(written.load()) << "submit returned before the read could have";
  const auto evs = reap(c(), 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].res(), 8);
  EXPECT_EQ(evs[0].path(), AIO2_PATH_INLINE);
  EXPECT_EQ(std::memcmp(got, "12345678", 8), 0);
  writer.join();
  close(p[0]);
  close(p[1]);
}

// ---- attributes on every path --------------------------------------------------------

TEST_P(PolicyTest, TimingTagAndExecutorOnEveryKindOfCall) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(8192);
  const int sink = static_cast<int>(syscall(SYS_memfd_create, "aio2-policy", 0));
  ASSERT_GE(sink, 0);
  static const timespec nap{0, 1000};
  const unsigned char tag[AIO2_TAG_MAX] = {7, 6, 5, 4, 3, 2, 1, 0, 0xff, 0x80};
  struct one {
    req_buf r;
    route want;
    int64_t res;
  };
  one reqs[] = {
      {req_buf(SYS_getppid, 1), kNonblockingCall, getppid()},
      {req_buf(SYS_pread64, 2, u(f.fd()), u(buf.data()), 8192, 0), cached_read(f.fd(), 0, 8192),
       8192},
      {req_buf(SYS_pwrite64, 3, u(sink), u(buf.data()), 8192, 0), kUringCall, 8192},
      {req_buf(SYS_nanosleep, 4, u(&nap), 0), kPoolCall, 0},
  };
  for (one &o : reqs) {
    SCOPED_TRACE(o.r.io()->nr);
    o.r.attr(AIO2_ATTR_TIMING).attr(AIO2_ATTR_TAG, tag, 10).attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = run(o.r);
    EXPECT_EQ(e.res(), o.res);
    const auto t = e.get<aio2_attr_timing>(AIO2_ATTR_TIMING);
    EXPECT_GT(t.submitted_ns, 0u);
    EXPECT_GT(t.started_ns, 0u);
    EXPECT_GT(t.finished_ns, 0u);
    EXPECT_GT(t.posted_ns, 0u);
    EXPECT_LE(t.submitted_ns, t.started_ns);
    EXPECT_LE(t.started_ns, t.finished_ns);
    EXPECT_LE(t.finished_ns, t.posted_ns);
    uint16_t st = 0;
    const void *echo = aio2_event_attr_payload(e.ev(), AIO2_ATTR_TAG, AIO2_TAG_MAX, &st);
    ASSERT_NE(echo, nullptr) << st;
    EXPECT_EQ(std::memcmp(echo, tag, AIO2_TAG_MAX), 0);  // 10 bytes, then zeros
    EXPECT_TRUE(path_is(o.want, e.path()));
  }
  EXPECT_TRUE(pattern_holds(buf.data(), 0, 8192));
  close(sink);
}

// A deadline already passed: -ETIME, and the call does not run (the pipe and
// the file stay empty); attributes after it never start.
TEST_P(PolicyTest, AnExpiredDeadlineStopsTheCallOnEveryPath) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  scratch_dir dir;
  ASSERT_TRUE(dir.ok());
  const int out = open((dir / "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  static const char bytes[16] = "must not appear";
  const aio2_attr_deadline past{now_ns() - 1000000};
  req_buf reqs[] = {req_buf(SYS_write, 1, u(p[1]), u(bytes), sizeof bytes),
                    req_buf(SYS_pwrite64, 2, u(out), u(bytes), sizeof bytes, 0),
                    req_buf(SYS_write, 3, u(out), u(bytes), sizeof bytes),
                    req_buf(SYS_getppid, 4)};
  for (req_buf &r : reqs) {
    SCOPED_TRACE(r.io()->user_data);
    r.attr_of(AIO2_ATTR_DEADLINE, past).attr(AIO2_ATTR_EXECUTOR).attr(AIO2_ATTR_TIMING);
    const event_copy e = run(r);
    EXPECT_EQ(e.res(), -ETIME);
    const auto d = e.get<aio2_attr_deadline_ret>(AIO2_ATTR_DEADLINE);
    EXPECT_EQ(d.expired, 1u);
    EXPECT_LT(d.slack_ns, 0);
    EXPECT_EQ(e.status(AIO2_ATTR_EXECUTOR), AIO2_ATTR_NOT_APPLICABLE);
    const auto t = e.get<aio2_attr_timing>(AIO2_ATTR_TIMING);
    EXPECT_EQ(t.started_ns, 0u);
    EXPECT_EQ(t.finished_ns, 0u);
    EXPECT_GE(t.posted_ns, t.submitted_ns);
  }
  char back;
  EXPECT_EQ(read(p[0], &back, 1), -1);  // the pipe write never happened
  EXPECT_EQ(errno, EAGAIN);
  struct stat st {};
  ASSERT_EQ(fstat(out, &st), 0);
  EXPECT_EQ(st.st_size, 0);  // nor the file writes
  EXPECT_EQ(lseek(out, 0, SEEK_CUR), 0);
  // A deadline in the future: the call runs.
  const aio2_attr_deadline later{now_ns() + kFar};
  req_buf w(SYS_pwrite64, 5, u(out), u(bytes), sizeof bytes, 0);
  w.attr_of(AIO2_ATTR_DEADLINE, later);
  const event_copy e = run(w);
  EXPECT_EQ(e.res(), static_cast<int64_t>(sizeof bytes));
  EXPECT_EQ(e.get<aio2_attr_deadline_ret>(AIO2_ATTR_DEADLINE).expired, 0u);
  EXPECT_GT(e.get<aio2_attr_deadline_ret>(AIO2_ATTR_DEADLINE).slack_ns, 0);
  close(out);
  close(p[0]);
  close(p[1]);
}

TEST_P(PolicyTest, CacheReportsHitsAndMissesOnEveryPath) {
  pattern_file f(1024 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(256 * KiB);
  auto expect_method = [](const aio2_attr_cache &c) {
    EXPECT_TRUE(c.method == AIO2_CACHE_BY_CACHESTAT || c.method == AIO2_CACHE_BY_NOWAIT)
        << c.method;
  };
  // Cached, at an offset.
  const route hit = cached_read(f.fd(), 0, 64 * KiB);
  req_buf r(SYS_pread64, 1, u(f.fd()), u(buf.data()), 64 * KiB, 0);
  r.attr(AIO2_ATTR_CACHE).attr(AIO2_ATTR_EXECUTOR);
  event_copy e = run(r);
  EXPECT_EQ(e.res(), static_cast<int64_t>(64 * KiB));
  EXPECT_TRUE(pattern_holds(buf.data(), 0, 64 * KiB));
  auto cache = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  EXPECT_EQ(cache.outcome, AIO2_CACHE_HIT);
  EXPECT_EQ(cache.bytes_cached, 64 * KiB);
  EXPECT_EQ(cache.bytes_requested, 64 * KiB);
  expect_method(cache);
  EXPECT_TRUE(path_is(hit, e.path()));
  // Cached, at the file position, which moves.
  ASSERT_EQ(lseek(f.fd(), 128 * KiB, SEEK_SET), static_cast<off_t>(128 * KiB));
  req_buf rd(SYS_read, 2, u(f.fd()), u(buf.data()), 64 * KiB);
  rd.attr(AIO2_ATTR_CACHE).attr(AIO2_ATTR_EXECUTOR);
  e = run(rd);
  EXPECT_EQ(e.res(), static_cast<int64_t>(64 * KiB));
  EXPECT_TRUE(pattern_holds(buf.data(), 128 * KiB, 64 * KiB));
  EXPECT_EQ(lseek(f.fd(), 0, SEEK_CUR), static_cast<off_t>(192 * KiB));
  cache = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  EXPECT_EQ(cache.outcome, AIO2_CACHE_HIT);
  EXPECT_EQ(cache.bytes_cached, 64 * KiB);
  expect_method(cache);
  EXPECT_TRUE(path_is(kPoolCall, e.path()));
  // A write is not a read.
  req_buf w(SYS_pwrite64, 3, u(f.fd()), u(buf.data()), 4096, 0);
  w.attr(AIO2_ATTR_CACHE);
  for (size_t i = 0; i < 4096; i++) buf[i] = pattern_at(i);
  e = run(w);
  EXPECT_EQ(e.res(), 4096);
  EXPECT_EQ(e.status(AIO2_ATTR_CACHE), AIO2_ATTR_NOT_APPLICABLE);
  // Evicted: a miss (or partial, if readahead or another reader got there).
  // Readahead off and the file re-read into small folios, which a range can
  // be evicted from.
  ASSERT_EQ(posix_fadvise(f.fd(), 0, 0, POSIX_FADV_RANDOM), 0);
  if (!f.evictable()) GTEST_SKIP() << "POSIX_FADV_DONTNEED does not evict here";
  req_buf cold(SYS_pread64, 4, u(f.fd()), u(buf.data()), 256 * KiB, 512 * KiB);
  cold.attr(AIO2_ATTR_CACHE).attr(AIO2_ATTR_EXECUTOR);
  // A RWF_NOWAIT attempt (io_uring's, or one in the submitter) starts the
  // read of what is missing and, on a fast device, may find it all there
  // before it returns: a whole read served at once, which says nothing
  // about misses. Evict and read again until the attempt comes back short.
  for (int i = 0; i < 50; i++) {
    f.evict(512 * KiB, 256 * KiB);
    if (f.resident(512 * KiB, 256 * KiB) != 0) GTEST_SKIP() << "the range came back at once";
    e = run(cold);
    if (e.get<aio2_attr_cache>(AIO2_ATTR_CACHE).outcome != AIO2_CACHE_HIT) break;
  }
  EXPECT_EQ(e.res(), static_cast<int64_t>(256 * KiB));
  EXPECT_TRUE(pattern_holds(buf.data(), 512 * KiB, 256 * KiB));
  if (e.get<aio2_attr_cache>(AIO2_ATTR_CACHE).outcome == AIO2_CACHE_HIT)
    GTEST_SKIP() << "every RWF_NOWAIT attempt found its own read of the range done";
  EXPECT_EQ(e.res(), static_cast<int64_t>(256 * KiB));
  EXPECT_TRUE(pattern_holds(buf.data(), 512 * KiB, 256 * KiB));
  cache = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  EXPECT_TRUE(cache.outcome == AIO2_CACHE_MISS || cache.outcome == AIO2_CACHE_PARTIAL)
      << cache.outcome;
  EXPECT_LT(cache.bytes_cached, 256 * KiB);
  EXPECT_EQ(cache.bytes_requested, 256 * KiB);
  expect_method(cache);
  EXPECT_TRUE(path_is(kUncachedRead, e.path()));
}

// Reads of a range only half in the page cache (which AUTO may split: a
// RWF_NOWAIT attempt in the submitting thread, the rest elsewhere) return
// every byte, and move the file position once, by what they return.
TEST_P(PolicyTest, HalfCachedReadsAreWholeAndMoveThePositionOnce) {
  pattern_file f(1024 * KiB);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(256 * KiB);
  const uint64_t len = buf.size();
  // Readahead off, so that a read of the evicted half does not bring it all
  // in at once (read_ahead_kb is often larger than the file), and the file
  // re-read into small folios: the large ones its writes left cannot be
  // evicted in part.
  ASSERT_EQ(posix_fadvise(f.fd(), 0, 0, POSIX_FADV_RANDOM), 0);
  auto half_cached = [&](uint64_t off) {
    f.evict(0, f.size());
    f.warm(0, f.size());
    f.evict(off + len / 2, len / 2);
  };
  // The route of a read at an offset of [from, from + n): split without
  // io_uring, its rest on the pool unless the eviction failed.
  auto offset_read = [&](uint64_t from, uint64_t n) {
    return f.resident(from, n) == n ? cached_read(f.fd(), from, n) : kUncachedRead;
  };
  auto check = [&](req_buf &&r, uint64_t from, off_t pos_after, const char *what) {
    // A read at the file position of a regular file stays off io_uring
    // (io_uring moves the position without the file's position lock) and is
    // not split (two parts could interleave with another reader's).
    const bool at_pos = r.io()->nr == SYS_read || r.io()->nr == SYS_readv ||
                        (r.io()->nr == SYS_preadv2 && static_cast<int64_t>(r.io()->args[3]) == -1);
    const route want = at_pos ? kPoolCall : offset_read(from, len);
    std::fill(buf.begin(), buf.end(), 0);
    r.attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = run(r);
    EXPECT_EQ(e.res(), static_cast<int64_t>(len)) << what;
    EXPECT_TRUE(pattern_holds(buf.data(), from, len)) << what;
    EXPECT_EQ(lseek(f.fd(), 0, SEEK_CUR), pos_after) << what;
    // A nowait-first read's attempt starts the read of the evicted half;
    // when that finishes before the attempt returns (a fast device, or the
    // submitter preempted in between), the attempt reads everything and the
    // request ends inline, without io_uring or the pool.
    const auto auto_path = [&](const route &x) { return uring() ? x.auto_uring : x.auto_no_uring; };
    const bool whole_at_once = policy() == AIO2_POLICY_AUTO &&
                               auto_path(want) == auto_path(kUncachedRead) &&
                               e.path() == AIO2_PATH_INLINE;
    EXPECT_TRUE(whole_at_once || path_is(want, e.path())) << what;
  };
  const off_t start = 64 * KiB;  // where the position is left before each
  half_cached(256 * KiB);
  lseek(f.fd(), start, SEEK_SET);
  check(req_buf(SYS_pread64, 1, u(f.fd()), u(buf.data()), len, 256 * KiB), 256 * KiB, start, "pread64");
  half_cached(256 * KiB);
  lseek(f.fd(), 256 * KiB, SEEK_SET);
  check(req_buf(SYS_read, 2, u(f.fd()), u(buf.data()), len), 256 * KiB, 512 * KiB, "read");
  iovec iov[2] = {{buf.data(), 1000}, {buf.data() + 1000, len - 1000}};
  half_cached(512 * KiB);
  lseek(f.fd(), 512 * KiB, SEEK_SET);
  check(req_buf(SYS_readv, 3, u(f.fd()), u(iov), 2), 512 * KiB, 768 * KiB, "readv");
  half_cached(512 * KiB);
  lseek(f.fd(), 512 * KiB, SEEK_SET);
  check(req_buf(SYS_preadv2, 4, u(f.fd()), u(iov), 2, static_cast<uint64_t>(-1), 0, 0), 512 * KiB,
        768 * KiB, "preadv2 at -1");
  half_cached(768 * KiB);
  lseek(f.fd(), start, SEEK_SET);
  check(req_buf(SYS_preadv, 5, u(f.fd()), u(iov), 2, 768 * KiB, 0), 768 * KiB, start, "preadv");
  // Across the end of the file: what is there.
  half_cached(1024 * KiB - len);
  lseek(f.fd(), start, SEEK_SET);
  const route tail_route = offset_read(1024 * KiB - len / 2, len / 2);
  req_buf tail(SYS_pread64, 6, u(f.fd()), u(buf.data()), len, 1024 * KiB - len / 2);
  tail.attr(AIO2_ATTR_EXECUTOR);
  const event_copy e = run(tail);
  EXPECT_EQ(e.res(), static_cast<int64_t>(len / 2));
  EXPECT_TRUE(pattern_holds(buf.data(), 1024 * KiB - len / 2, len / 2));
  EXPECT_TRUE(path_is(tail_route, e.path()));
}

TEST_P(PolicyTest, IoprioIsAppliedOrRefusedAlikeOnEveryPath) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(4096);
  const long before = my_ioprio();
  ASSERT_GE(before, 0);
  ASSERT_NE(before, static_cast<long>(kBe6)) << "this thread already has the test's priority";
  const aio2_attr_ioprio good{kBe6, 0}, bad{kBadClass, 0};
  for (const bool valid : {true, false}) {
    SCOPED_TRACE(valid ? "valid priority" : "refused priority");
    req_buf reqs[] = {req_buf(SYS_getppid, 1),
                      req_buf(SYS_pread64, 2, u(f.fd()), u(buf.data()), 4096, 0)};
    const int64_t want[] = {getppid(), 4096};
    for (int i = 0; i < 2; i++) {
      reqs[i].attr_of(AIO2_ATTR_IOPRIO, valid ? good : bad).attr(AIO2_ATTR_EXECUTOR);
      const event_copy e = run(reqs[i]);
      EXPECT_EQ(e.res(), want[i]) << i;  // the call runs either way
      EXPECT_EQ(e.status(AIO2_ATTR_IOPRIO), AIO2_ATTR_OK) << i;
      const auto ret = e.get<aio2_attr_ioprio_ret>(AIO2_ATTR_IOPRIO);
      EXPECT_EQ(ret.applied, valid ? 1u : 0u) << i << " path " << path_str(e.path());
      EXPECT_EQ(ret.error, valid ? 0 : -EINVAL) << i << " path " << path_str(e.path());
      EXPECT_EQ(ret.reserved, 0u);
    }
  }
  EXPECT_TRUE(pattern_holds(buf.data(), 0, 4096));
  EXPECT_EQ(my_ioprio(), before);  // an inline run gave the thread its own back
  // A call whose io_uring operation takes no priority still runs.
  req_buf s(SYS_fsync, 3, u(f.fd()));
  s.attr_of(AIO2_ATTR_IOPRIO, good).attr(AIO2_ATTR_EXECUTOR);
  const event_copy e = run(s);
  EXPECT_EQ(e.res(), 0);
  const uint16_t st = e.status(AIO2_ATTR_IOPRIO);
  EXPECT_TRUE(st == AIO2_ATTR_OK || st == AIO2_ATTR_UNAVAILABLE) << st;
  EXPECT_EQ(my_ioprio(), before);
}

// rusage needs a thread of aio2's own to run the call (docs/attributes.md,
// "Status by path"): OK on a pool worker and inline, UNAVAILABLE on
// io_uring; AUTO moves a request that asks for it from io_uring (or a split
// read) to the pool.
TEST_P(PolicyTest, RusageIsOkWhereAThreadRanTheCallAndUnavailableOnIoUring) {
  pattern_file f(64 * KiB);
  ASSERT_TRUE(f.ok());
  f.warm(0, f.size());
  std::vector<unsigned char> buf(4096);
  const int sink = static_cast<int>(syscall(SYS_memfd_create, "aio2-rusage", 0));
  ASSERT_GE(sink, 0);
  // rusage: AUTO never sends these to io_uring nor splits them: the pool,
  // or inline for a call that cannot block. URING does not look at
  // attributes: io_uring where it takes the call.
  constexpr route kThreadBoundUringCall{AIO2_PATH_POOL, AIO2_PATH_POOL, true};
  struct one {
    req_buf r;
    route want;
    int64_t res;
  };
  one reqs[] = {
      {req_buf(SYS_getppid, 1), kNonblockingCall, getppid()},
      {req_buf(SYS_pread64, 2, u(f.fd()), u(buf.data()), 4096, 0), kThreadBoundUringCall, 4096},
      {req_buf(SYS_pwrite64, 3, u(sink), u(buf.data()), 4096, 0), kThreadBoundUringCall, 4096},
  };
  for (one &o : reqs) {
    SCOPED_TRACE(o.r.io()->nr);
    o.r.attr(AIO2_ATTR_RUSAGE).attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = run(o.r);
    EXPECT_EQ(e.res(), o.res);
    const uint32_t path = e.path();
    const uint16_t st = e.status(AIO2_ATTR_RUSAGE);
    if (path & AIO2_PATH_URING) {
      EXPECT_EQ(st, AIO2_ATTR_UNAVAILABLE) << path_str(path);
    } else {
      EXPECT_EQ(st, AIO2_ATTR_OK) << path_str(path);
    }
    EXPECT_TRUE(path_is(o.want, path));
    if (policy() == AIO2_POLICY_AUTO) {
      EXPECT_EQ(st, AIO2_ATTR_OK);
    }
  }
  // REQUIRED: served on the pool and inline, whatever the context's policy.
  for (const uint32_t o : {AIO2_POLICY_POOL, AIO2_POLICY_INLINE}) {
    req_buf r(SYS_getppid, 10 + o);
    r.path(o).attr(AIO2_ATTR_RUSAGE, nullptr, 0, AIO2_ATTR_F_REQUIRED).attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = run(r);
    EXPECT_EQ(e.res(), getppid()) << policy_name(o);
    EXPECT_EQ(e.path(), o == AIO2_POLICY_POOL ? AIO2_PATH_POOL : AIO2_PATH_INLINE);
    EXPECT_EQ(e.status(AIO2_ATTR_RUSAGE), AIO2_ATTR_OK) << policy_name(o);
  }
  close(sink);
}

// ---- cancel and destroy ------------------------------------------------------------------

// Skips INLINE contexts: a read there runs to the end inside submit.
#define SKIP_IF_INLINE()                                                        \
  do {                                                                          \
    if (policy() == AIO2_POLICY_INLINE)                                         \
      GTEST_SKIP() << "INLINE: nothing is in flight once aio2_submit returns";  \
  } while (0)

// Whether another event arrives within 100 ms (there must be none).
bool another_event(aio2_ctx *c) {
  alignas(8) unsigned char buf[512];
  const timespec wait{0, 100000000};
  return aio2_getevents(c, 1, buf, sizeof buf, &wait) != 0;
}

TEST_P(PolicyTest, CancelARunningReadOfAnEmptyPipe) {
  SKIP_IF_INLINE();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  char got[8] = {};
  req_buf r(SYS_read, 77, u(p[0]), u(got), sizeof got);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c(), r.b, r.len()), r.len());
  std::this_thread::sleep_for(20ms);  // let it reach its path; either outcome is allowed
  const int rc = aio2_cancel(c(), 77);
  EXPECT_TRUE(rc == 0 || rc == -EALREADY) << aio2_strerror(rc);
  const auto evs = reap(c(), 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].user_data(), 77u);
  EXPECT_TRUE(evs[0].res() == -ECANCELED || evs[0].res() == -EINTR) << evs[0].res();
  EXPECT_FALSE(another_event(c()));
  EXPECT_EQ(aio2_cancel(c(), 77), -ENOENT);
  EXPECT_EQ(aio2_cancel(c(), 12345), -ENOENT);
  // The cancelled read is gone: what is written next stays in the pipe.
  ASSERT_EQ(write(p[1], "x", 1), 1);
  std::this_thread::sleep_for(10ms);
  ASSERT_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  char x = 0;
  EXPECT_EQ(read(p[0], &x, 1), 1);
  EXPECT_EQ(x, 'x');
  close(p[0]);
  close(p[1]);
}

TEST_P(PolicyTest, CancelOneOfTwoReadsAndTheOtherStillCompletes) {
  SKIP_IF_INLINE();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  char a[8] = {}, b[8] = {};
  req_buf r1(SYS_read, 1, u(p[0]), u(a), sizeof a), r2(SYS_read, 2, u(p[0]), u(b), sizeof b);
  ASSERT_EQ(aio2_submit(c(), r1.b, r1.len()), r1.len());
  ASSERT_EQ(aio2_submit(c(), r2.b, r2.len()), r2.len());
  std::this_thread::sleep_for(20ms);
  const int rc = aio2_cancel(c(), 1);
  EXPECT_TRUE(rc == 0 || rc == -EALREADY) << aio2_strerror(rc);
  // Wait for the cancelled one first, so the data can only go to the other.
  auto evs = reap(c(), 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].user_data(), 1u);
  EXPECT_TRUE(evs[0].res() == -ECANCELED || evs[0].res() == -EINTR) << evs[0].res();
  ASSERT_EQ(write(p[1], "abcdefgh", 8), 8);
  evs = reap(c(), 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].user_data(), 2u);
  EXPECT_EQ(evs[0].res(), 8);
  EXPECT_EQ(std::memcmp(b, "abcdefgh", 8), 0);
  EXPECT_FALSE(another_event(c()));
  close(p[0]);
  close(p[1]);
}

// Destroy with reads of empty pipes in flight returns (within a watchdog's
// 10 s). In an INLINE context the reads are sent elsewhere per request.
TEST_P(PolicyTest, DestroyWithReadsOfEmptyPipesInFlightReturns) {
  aio2_ctx *raw = fresh_ctx().release();
  ASSERT_NE(raw, nullptr);
  constexpr int kReads = 8;
  int p[kReads][2];
  static char sink[kReads][8];
  for (int i = 0; i < kReads; i++) {
    ASSERT_EQ(pipe2(p[i], O_CLOEXEC), 0);
    req_buf r(SYS_read, static_cast<uint64_t>(i), u(p[i][0]), u(sink[i]), 8);
    if (policy() == AIO2_POLICY_INLINE)
      r.path(i % 3 == 0 ? AIO2_POLICY_AUTO : i % 3 == 1 ? AIO2_POLICY_URING : AIO2_POLICY_POOL);
    ASSERT_EQ(aio2_submit(raw, r.b, r.len()), r.len());
  }
  req_buf q(SYS_getppid, 100);
  ASSERT_EQ(aio2_submit(raw, q.b, q.len()), q.len());
  std::this_thread::sleep_for(20ms);
  auto done = std::async(std::launch::async, [raw] { return aio2_destroy(raw); });
  if (done.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "aio2_destroy did not return within 10 s";
    for (auto &fds : p) (void)!write(fds[1], "unblock!", 8);  // let it finish
  }
  EXPECT_EQ(done.get(), 0);
  for (auto &fds : p) {
    close(fds[0]);
    close(fds[1]);
  }
}

// ---- a failing call reports what the system call reports ---------------------------------

// What the tests run requests with: a path under test, or aio2_call.
using runner = std::function<event_copy(req_buf &)>;

// Resources the failing calls use, made once.
struct error_env {
  scratch_dir dir{"aio2-errors"};
  int file = -1, rdonly = -1, wronly = -1, dirfd = -1, epfd = -1, efd = -1;
  int sock[2] = {-1, -1};  // a connected AF_UNIX stream pair, nothing queued
  int tcp = -1;            // an unconnected TCP socket
  void *noaccess = MAP_FAILED;  // a PROT_NONE page: -EFAULT to touch
  static constexpr uint64_t kUnmapped = 0x1000;  // below mmap_min_addr: never mapped
  unsigned char buf[4096] = {};

  error_env() {
    if (!dir.ok()) return;
    file = open((dir / "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    std::vector<unsigned char> data(8192);
    for (size_t i = 0; i < data.size(); i++) data[i] = pattern_at(i);
    (void)!write(file, data.data(), data.size());
    rdonly = open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC);
    wronly = open((dir / "f").c_str(), O_WRONLY | O_CLOEXEC);
    mkdir((dir / "d").c_str(), 0700);
    mkdir((dir / "full").c_str(), 0700);
    close(open((dir / "full/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    dirfd = open((dir / "d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    efd = eventfd(0, EFD_CLOEXEC);
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock);
    tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    noaccess = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  ~error_env() {
    for (int fd : {file, rdonly, wronly, dirfd, epfd, efd, sock[0], sock[1], tcp})
      if (fd >= 0) close(fd);
    if (noaccess != MAP_FAILED) munmap(noaccess, 4096);
  }
  bool ok() const {
    return file >= 0 && rdonly >= 0 && wronly >= 0 && dirfd >= 0 && epfd >= 0 && efd >= 0 &&
           sock[0] >= 0 && tcp >= 0 && noaccess != MAP_FAILED;
  }
  std::string path(const char *name) const { return dir / name; }
};

// A pipe with 8 bytes in it, closed at the end of the scope (a request that
// wrongly reads it finds data instead of waiting for ever).
struct full_pipe {
  int fd[2] = {-1, -1};
  full_pipe() {
    if (pipe2(fd, O_CLOEXEC | O_NONBLOCK) == 0) (void)!write(fd[1], "pipedata", 8);
  }
  ~full_pipe() {
    close(fd[0]);
    close(fd[1]);
  }
};

// A loopback port nothing listens on.
uint16_t closed_port() {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr *>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

struct error_case {
  const char *name;
  int64_t want;  // the system call's result on this kernel
  std::function<int64_t(error_env &, const runner &)> run;
};

// Runs one request built from the arguments.
int64_t one(const runner &run, long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
            uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0) {
  req_buf r(nr, 1, a0, a1, a2, a3, a4, a5);
  return run(r).res();
}

std::vector<error_case> error_cases() {
  const uint64_t m1 = static_cast<uint64_t>(-1);
  const uint64_t cwd = static_cast<uint64_t>(AT_FDCWD);
  return {
      // reads and writes
      {"read: bad fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_read, 999999, u(e.buf), 16); }},
      {"pread64: bad fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_pread64, 999999, u(e.buf), 16, 0); }},
      {"pread64: unmapped buffer", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_pread64, u(e.rdonly), e.kUnmapped, 16, 0); }},
      {"pread64: inaccessible buffer", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_pread64, u(e.rdonly), u(e.noaccess), 16, 0); }},
      {"read: inaccessible buffer", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_read, u(e.rdonly), u(e.noaccess), 16); }},
      {"pwrite64: inaccessible buffer", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_pwrite64, u(e.wronly), u(e.noaccess), 16, 0); }},
      {"pread64: offset -1", -EINVAL, [m1](error_env &e, const runner &r) { return one(r, SYS_pread64, u(e.rdonly), u(e.buf), 16, m1); }},
      {"pread64: offset -4096", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_pread64, u(e.rdonly), u(e.buf), 16, static_cast<uint64_t>(-4096)); }},
      {"pwrite64: offset -1", -EINVAL, [m1](error_env &e, const runner &r) { return one(r, SYS_pwrite64, u(e.file), u(e.buf), 16, m1); }},
      {"preadv: offset -1", -EINVAL, [m1](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_preadv, u(e.rdonly), u(&iov), 1, m1, 0);
       }},
      {"pwritev: offset -1", -EINVAL, [m1](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_pwritev, u(e.file), u(&iov), 1, m1, 0);
       }},
      {"preadv2: offset -2", -EINVAL, [](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_preadv2, u(e.rdonly), u(&iov), 1, static_cast<uint64_t>(-2), 0, 0);
       }},
      {"preadv2: unknown flag", -EOPNOTSUPP, [](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_preadv2, u(e.rdonly), u(&iov), 1, 0, 0, 0x40000000);
       }},
      {"pwritev2: unknown flag", -EOPNOTSUPP, [](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_pwritev2, u(e.file), u(&iov), 1, 0, 0, 0x40000000);
       }},
      {"readv: 1025 iovecs", -EINVAL, [](error_env &e, const runner &r) {
         std::vector<iovec> iov(1025, iovec{e.buf, 1});
         return one(r, SYS_readv, u(e.rdonly), u(iov.data()), iov.size());
       }},
      {"readv: inaccessible iovec array", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_readv, u(e.rdonly), u(e.noaccess), 2); }},
      {"writev: bad fd", -EBADF, [](error_env &e, const runner &r) {
         iovec iov{e.buf, 16};
         return one(r, SYS_writev, 999999, u(&iov), 1);
       }},
      {"pread64: a pipe", -ESPIPE, [](error_env &e, const runner &r) {
         full_pipe p;
         return one(r, SYS_pread64, u(p.fd[0]), u(e.buf), 8, 0);
       }},
      {"pread64: a pipe at offset 4", -ESPIPE, [](error_env &e, const runner &r) {
         full_pipe p;
         return one(r, SYS_pread64, u(p.fd[0]), u(e.buf), 8, 4);
       }},
      {"pwrite64: a pipe", -ESPIPE, [](error_env &e, const runner &r) {
         full_pipe p;
         return one(r, SYS_pwrite64, u(p.fd[1]), u(e.buf), 8, 0);
       }},
      {"pwrite64: read-only fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_pwrite64, u(e.rdonly), u(e.buf), 16, 0); }},
      {"read: write-only fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_read, u(e.wronly), u(e.buf), 16); }},
      {"read: a directory", -EISDIR, [](error_env &e, const runner &r) { return one(r, SYS_read, u(e.dirfd), u(e.buf), 16); }},
      {"write: the read end of a pipe", -EBADF, [](error_env &e, const runner &r) {
         full_pipe p;
         return one(r, SYS_write, u(p.fd[0]), u(e.buf), 8);
       }},
      {"pread64: past the end", 0, [](error_env &e, const runner &r) { return one(r, SYS_pread64, u(e.rdonly), u(e.buf), 16, 1 << 20); }},
      // opening, closing, metadata
      {"openat: missing path", -ENOENT, [cwd](error_env &e, const runner &r) {
         const std::string p = e.path("missing");
         return one(r, SYS_openat, cwd, u(p.c_str()), O_RDONLY | O_CLOEXEC);
       }},
      {"openat: O_EXCL on an existing file", -EEXIST, [](error_env &e, const runner &r) {
         return one(r, SYS_openat, u(e.dir.fd()), u("f"), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
       }},
      {"openat: O_DIRECTORY on a file", -ENOTDIR, [](error_env &e, const runner &r) {
         return one(r, SYS_openat, u(e.dir.fd()), u("f"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
       }},
      {"openat: bad dirfd", -EBADF, [](error_env &, const runner &r) { return one(r, SYS_openat, 999999, u("f"), O_RDONLY | O_CLOEXEC); }},
      {"openat: inaccessible path", -EFAULT, [cwd](error_env &e, const runner &r) { return one(r, SYS_openat, cwd, u(e.noaccess), O_RDONLY | O_CLOEXEC); }},
      {"openat2: size too small", -EINVAL, [](error_env &e, const runner &r) {
         open_how how{};
         how.flags = O_RDONLY | O_CLOEXEC;
         return one(r, SYS_openat2, u(e.dir.fd()), u("f"), u(&how), 8);
       }},
      {"openat2: RESOLVE_BENEATH escape", -EXDEV, [](error_env &e, const runner &r) {
         open_how how{};
         how.flags = O_RDONLY | O_CLOEXEC;
         how.resolve = RESOLVE_BENEATH;
         return one(r, SYS_openat2, u(e.dirfd), u("../f"), u(&how), sizeof how);
       }},
      {"openat2: unknown resolve bit", -EINVAL, [](error_env &e, const runner &r) {
         open_how how{};
         how.flags = O_RDONLY | O_CLOEXEC;
         how.resolve = 1ull << 40;
         return one(r, SYS_openat2, u(e.dir.fd()), u("f"), u(&how), sizeof how);
       }},
      {"close: bad fd", -EBADF, [](error_env &, const runner &r) { return one(r, SYS_close, 999999); }},
      {"statx: missing path", -ENOENT, [](error_env &e, const runner &r) {
         return one(r, SYS_statx, u(e.dir.fd()), u("missing"), 0, STATX_BASIC_STATS, u(e.buf));
       }},
      {"statx: inaccessible buffer", -EFAULT, [](error_env &e, const runner &r) {
         return one(r, SYS_statx, u(e.dir.fd()), u("f"), 0, STATX_BASIC_STATS, u(e.noaccess));
       }},
      {"statx: both sync types", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_statx, u(e.dir.fd()), u("f"), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                    STATX_BASIC_STATS, u(e.buf));
       }},
      {"renameat2: missing source", -ENOENT, [](error_env &e, const runner &r) {
         return one(r, SYS_renameat2, u(e.dir.fd()), u("missing"), u(e.dir.fd()), u("g"), 0);
       }},
      {"renameat2: NOREPLACE onto an existing name", -EEXIST, [](error_env &e, const runner &r) {
         return one(r, SYS_renameat2, u(e.dir.fd()), u("d"), u(e.dir.fd()), u("f"), RENAME_NOREPLACE);
       }},
      {"renameat2: NOREPLACE with EXCHANGE", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_renameat2, u(e.dir.fd()), u("f"), u(e.dir.fd()), u("d"),
                    RENAME_NOREPLACE | RENAME_EXCHANGE);
       }},
      {"unlinkat: missing", -ENOENT, [](error_env &e, const runner &r) { return one(r, SYS_unlinkat, u(e.dir.fd()), u("missing"), 0); }},
      {"unlinkat: a directory without AT_REMOVEDIR", -EISDIR, [](error_env &e, const runner &r) { return one(r, SYS_unlinkat, u(e.dir.fd()), u("d"), 0); }},
      {"unlinkat: a non-empty directory", -ENOTEMPTY, [](error_env &e, const runner &r) { return one(r, SYS_unlinkat, u(e.dir.fd()), u("full"), AT_REMOVEDIR); }},
      {"unlinkat: unknown flag", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_unlinkat, u(e.dir.fd()), u("f"), 0x1); }},
      {"mkdirat: existing", -EEXIST, [](error_env &e, const runner &r) { return one(r, SYS_mkdirat, u(e.dir.fd()), u("d"), 0700); }},
      {"mkdirat: missing parent", -ENOENT, [](error_env &e, const runner &r) { return one(r, SYS_mkdirat, u(e.dir.fd()), u("no/sub"), 0700); }},
      {"symlinkat: existing link path", -EEXIST, [](error_env &e, const runner &r) { return one(r, SYS_symlinkat, u("target"), u(e.dir.fd()), u("f")); }},
      {"linkat: missing source", -ENOENT, [](error_env &e, const runner &r) {
         return one(r, SYS_linkat, u(e.dir.fd()), u("missing"), u(e.dir.fd()), u("h"), 0);
       }},
      {"linkat: a directory", -EPERM, [](error_env &e, const runner &r) {
         return one(r, SYS_linkat, u(e.dir.fd()), u("d"), u(e.dir.fd()), u("h"), 0);
       }},
      {"linkat: unknown flag", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_linkat, u(e.dir.fd()), u("f"), u(e.dir.fd()), u("h"), 0x1);
       }},
      // syncing, space, advice
      {"fsync: bad fd", -EBADF, [](error_env &, const runner &r) { return one(r, SYS_fsync, 999999); }},
      {"fdatasync: bad fd", -EBADF, [](error_env &, const runner &r) { return one(r, SYS_fdatasync, 999999); }},
      {"fsync: a pipe", -EINVAL, [](error_env &, const runner &r) {
         full_pipe p;
         return one(r, SYS_fsync, u(p.fd[0]));
       }},
      {"sync_file_range: unknown flag", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_sync_file_range, u(e.file), 0, 4096, 0x10); }},
      {"sync_file_range: negative offset", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_sync_file_range, u(e.file), static_cast<uint64_t>(-4096), 4096, SYNC_FILE_RANGE_WRITE);
       }},
      {"sync_file_range: a pipe", -ESPIPE, [](error_env &, const runner &r) {
         full_pipe p;
         return one(r, SYS_sync_file_range, u(p.fd[1]), 0, 4096, SYNC_FILE_RANGE_WRITE);
       }},
      {"fallocate: read-only fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_fallocate, u(e.rdonly), 0, 0, 4096); }},
      {"fallocate: zero length", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_fallocate, u(e.file), 0, 0, 0); }},
      {"fallocate: unknown mode", -EOPNOTSUPP, [](error_env &e, const runner &r) { return one(r, SYS_fallocate, u(e.file), 0x80, 0, 4096); }},
      {"fallocate: a pipe", -ESPIPE, [](error_env &, const runner &r) {
         full_pipe p;
         return one(r, SYS_fallocate, u(p.fd[1]), 0, 0, 4096);
       }},
      {"fadvise64: bad fd", -EBADF, [](error_env &, const runner &r) { return one(r, SYS_fadvise64, 999999, 0, 0, POSIX_FADV_NORMAL); }},
      {"fadvise64: unknown advice", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_fadvise64, u(e.file), 0, 0, 99); }},
      {"fadvise64: negative length", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_fadvise64, u(e.file), 0, static_cast<uint64_t>(-1), POSIX_FADV_NORMAL);
       }},
      {"fadvise64: a pipe", -ESPIPE, [](error_env &, const runner &r) {
         full_pipe p;
         return one(r, SYS_fadvise64, u(p.fd[0]), 0, 0, POSIX_FADV_NORMAL);
       }},
      {"madvise: unaligned address", -EINVAL, [](error_env &e, const runner &r) {
         return one(r, SYS_madvise, u(e.noaccess) + 1, 4096, MADV_DONTNEED);
       }},
      {"madvise: unknown advice", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_madvise, u(e.noaccess), 4096, 9999); }},
      {"madvise: unmapped range", -ENOMEM, [](error_env &e, const runner &r) { return one(r, SYS_madvise, e.kUnmapped, 4096, MADV_WILLNEED); }},
      // sockets
      {"sendto: unconnected TCP", -EPIPE, [](error_env &e, const runner &r) {
         return one(r, SYS_sendto, u(e.tcp), u(e.buf), 8, MSG_NOSIGNAL, 0, 0);
       }},
      {"sendto: not a socket", -ENOTSOCK, [](error_env &e, const runner &r) { return one(r, SYS_sendto, u(e.file), u(e.buf), 8, 0, 0, 0); }},
      {"recvfrom: not a socket", -ENOTSOCK, [](error_env &e, const runner &r) { return one(r, SYS_recvfrom, u(e.file), u(e.buf), 8, 0, 0, 0); }},
      {"recvfrom: MSG_DONTWAIT, nothing queued", -EAGAIN, [](error_env &e, const runner &r) {
         return one(r, SYS_recvfrom, u(e.sock[0]), u(e.buf), 8, MSG_DONTWAIT, 0, 0);
       }},
      {"recvmsg: MSG_DONTWAIT, nothing queued", -EAGAIN, [](error_env &e, const runner &r) {
         iovec iov{e.buf, 8};
         msghdr m{};
         m.msg_iov = &iov;
         m.msg_iovlen = 1;
         return one(r, SYS_recvmsg, u(e.sock[0]), u(&m), MSG_DONTWAIT);
       }},
      {"sendmsg: inaccessible msghdr", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_sendmsg, u(e.sock[0]), u(e.noaccess), 0); }},
      {"recvmsg: inaccessible msghdr", -EFAULT, [](error_env &e, const runner &r) { return one(r, SYS_recvmsg, u(e.sock[0]), u(e.noaccess), MSG_DONTWAIT); }},
      {"shutdown: not a socket", -ENOTSOCK, [](error_env &e, const runner &r) { return one(r, SYS_shutdown, u(e.file), SHUT_RDWR); }},
      {"shutdown: unconnected TCP", -ENOTCONN, [](error_env &e, const runner &r) { return one(r, SYS_shutdown, u(e.tcp), SHUT_RDWR); }},
      {"shutdown: bad how", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_shutdown, u(e.sock[0]), 7); }},
      {"accept4: not listening", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_accept4, u(e.tcp), 0, 0, 0); }},
      {"accept4: unknown flag", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_accept4, u(e.tcp), 0, 0, 0x1); }},
      {"accept4: not a socket", -ENOTSOCK, [](error_env &e, const runner &r) { return one(r, SYS_accept4, u(e.file), 0, 0, 0); }},
      {"connect: a closed port", -ECONNREFUSED, [](error_env &, const runner &r) {
         const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
         a.sin_port = htons(closed_port());
         const int64_t res = one(r, SYS_connect, u(s), u(&a), sizeof a);
         close(s);
         return res;
       }},
      {"connect: address too short", -EINVAL, [](error_env &, const runner &r) {
         const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         const int64_t res = one(r, SYS_connect, u(s), u(&a), 4);
         close(s);
         return res;
       }},
      // pipes
      {"splice: two regular files", -EINVAL, [](error_env &e, const runner &r) { return one(r, SYS_splice, u(e.rdonly), 0, u(e.file), 0, 16, 0); }},
      {"splice: bad fd", -EBADF, [](error_env &e, const runner &r) {
         full_pipe p;
         (void)e;
         return one(r, SYS_splice, 999999, 0, u(p.fd[1]), 0, 16, 0);
       }},
      {"tee: a pipe and a file", -EINVAL, [](error_env &e, const runner &r) {
         full_pipe p;
         return one(r, SYS_tee, u(p.fd[0]), u(e.file), 8, 0);
       }},
      {"epoll_ctl: bad epfd", -EBADF, [](error_env &e, const runner &r) {
         epoll_event ev{};
         ev.events = EPOLLIN;
         return one(r, SYS_epoll_ctl, 999999, EPOLL_CTL_ADD, u(e.efd), u(&ev));
       }},
      {"epoll_ctl: delete what is not there", -ENOENT, [](error_env &e, const runner &r) {
         return one(r, SYS_epoll_ctl, u(e.epfd), EPOLL_CTL_DEL, u(e.efd), 0);
       }},
      {"epoll_ctl: add itself", -EINVAL, [](error_env &e, const runner &r) {
         epoll_event ev{};
         ev.events = EPOLLIN;
         return one(r, SYS_epoll_ctl, u(e.epfd), EPOLL_CTL_ADD, u(e.epfd), u(&ev));
       }},
      {"epoll_ctl: add a regular file", -EPERM, [](error_env &e, const runner &r) {
         epoll_event ev{};
         ev.events = EPOLLIN;
         return one(r, SYS_epoll_ctl, u(e.epfd), EPOLL_CTL_ADD, u(e.file), u(&ev));
       }},
      // descriptors in non-blocking mode: the call must not wait
      {"read: an empty O_NONBLOCK pipe", -EAGAIN, [](error_env &e, const runner &r) {
         int p[2];
         if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return int64_t{1};
         const int64_t res = one(r, SYS_read, u(p[0]), u(e.buf), 8);
         close(p[0]);
         close(p[1]);
         return res;
       }},
      {"write: a full O_NONBLOCK pipe", -EAGAIN, [](error_env &e, const runner &r) {
         int p[2];
         if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return int64_t{1};
         fcntl(p[1], F_SETPIPE_SZ, 4096);
         while (write(p[1], e.buf, sizeof e.buf) > 0) {
         }
         const int64_t res = one(r, SYS_write, u(p[1]), u(e.buf), 8);
         close(p[0]);
         close(p[1]);
         return res;
       }},
      {"recvfrom: an O_NONBLOCK socket, nothing queued", -EAGAIN, [](error_env &e, const runner &r) {
         int s[2];
         if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s) != 0) return int64_t{1};
         const int64_t res = one(r, SYS_recvfrom, u(s[0]), u(e.buf), 8, 0, 0, 0);
         close(s[0]);
         close(s[1]);
         return res;
       }},
      {"recvmsg: an O_NONBLOCK socket, nothing queued", -EAGAIN, [](error_env &e, const runner &r) {
         int s[2];
         if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s) != 0) return int64_t{1};
         iovec iov{e.buf, 8};
         msghdr m{};
         m.msg_iov = &iov;
         m.msg_iovlen = 1;
         const int64_t res = one(r, SYS_recvmsg, u(s[0]), u(&m), 0);
         close(s[0]);
         close(s[1]);
         return res;
       }},
      {"accept4: an O_NONBLOCK listener, nothing pending", -EAGAIN, [](error_env &, const runner &r) {
         const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
         bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a);
         listen(l, 4);
         const int64_t res = one(r, SYS_accept4, u(l), 0, 0, SOCK_CLOEXEC);
         close(l);
         return res;
       }},
      {"connect: an O_NONBLOCK TCP socket", -EINPROGRESS, [](error_env &, const runner &r) {
         const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
         sockaddr_in a{};
         a.sin_family = AF_INET;
         a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
         bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a);
         listen(l, 4);
         socklen_t len = sizeof a;
         getsockname(l, reinterpret_cast<sockaddr *>(&a), &len);
         const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
         const int64_t res = one(r, SYS_connect, u(s), u(&a), sizeof a);
         close(s);
         close(l);
         return res;
       }},
      // not io_uring's
      {"getdents64: bad fd", -EBADF, [](error_env &e, const runner &r) { return one(r, SYS_getdents64, 999999, u(e.buf), sizeof e.buf); }},
  };
}

TEST_P(PolicyTest, AFailingCallReportsWhatTheSystemCallReports) {
  signal(SIGPIPE, SIG_IGN);  // in case a send is not told MSG_NOSIGNAL
  error_env env;
  ASSERT_TRUE(env.ok());
  const runner reference = [](req_buf &r) { return call_one(r); };
  const runner path = [this](req_buf &r) {
    r.attr(AIO2_ATTR_EXECUTOR);
    return submit_wait(c(), r, 3);
  };
  for (const error_case &ec : error_cases()) {
    const int64_t want = ec.run(env, reference);
    EXPECT_EQ(want, ec.want) << ec.name << ": the raw call itself (the test's expectation is off)";
    const int64_t got = ec.run(env, path);
    EXPECT_EQ(got, want) << ec.name << ": got " << errno_str(got) << ", the system call gives "
                         << errno_str(want);
  }
  // The file is as it was: no failing write wrote.
  std::vector<unsigned char> back(8192 + 16);
  EXPECT_EQ(pread(env.file, back.data(), back.size(), 0), 8192);
  EXPECT_TRUE(pattern_holds(back.data(), 0, 8192));
}

INSTANTIATE_TEST_SUITE_P(Variants, PolicyTest,
                         ::testing::Values(variant{AIO2_POLICY_AUTO, 0},
                                           variant{AIO2_POLICY_INLINE, 0},
                                           variant{AIO2_POLICY_URING, 0},
                                           variant{AIO2_POLICY_POOL, 0},
                                           variant{AIO2_POLICY_AUTO, AIO2_SETUP_NO_URING},
                                           variant{AIO2_POLICY_INLINE, AIO2_SETUP_NO_URING},
                                           variant{AIO2_POLICY_URING, AIO2_SETUP_NO_URING},
                                           variant{AIO2_POLICY_POOL, AIO2_SETUP_NO_URING}),
                         variant_name);

// ---- defaults and the feature ------------------------------------------------------------

// No params, a zero policy, or params from before the policy field: AUTO,
// which runs a non-blocking call inline.
TEST(DefaultPolicy, IsAuto) {
  auto path_of_getppid = [](aio2_ctx *c) {
    req_buf r(SYS_getppid, 1);
    r.attr(AIO2_ATTR_EXECUTOR);
    return submit_one(c, r).path();
  };
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, nullptr, &c), 0);
  EXPECT_EQ(path_of_getppid(c), AIO2_PATH_INLINE);
  aio2_destroy(c);
  EXPECT_EQ(path_of_getppid(make_ctx().get()), AIO2_PATH_INLINE);
  aio2_params old{};
  old.size = offsetof(aio2_params, policy);  // up to features
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &old, &c), 0);
  EXPECT_EQ(path_of_getppid(c), AIO2_PATH_INLINE);
  aio2_destroy(c);
}

// Where this process may set up an io_uring instance, a default context
// uses io_uring. (CI machines that forbid io_uring skip this.)
TEST(UringFeature, PresentWhereTheKernelAllowsIt) {
  struct {
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd,
        resv[3];
    uint64_t sq_off[5], cq_off[5];
  } probe{};  // struct io_uring_params, 120 bytes
  static_assert(sizeof probe == 120);
  const long fd = syscall(SYS_io_uring_setup, 4, &probe);
  if (fd < 0)
    GTEST_SKIP() << "io_uring_setup: " << std::strerror(errno) << ": io_uring is not allowed here";
  close(static_cast<int>(fd));
  aio2_params in_force{};
  auto c = make_policy_ctx(AIO2_POLICY_AUTO, {}, &in_force);
  EXPECT_TRUE(in_force.features & AIO2_FEAT_URING)
      << "io_uring_setup works in this process, but the context does not use io_uring";
  EXPECT_EQ(in_force.uring_entries, 256u);
}

}  // namespace
