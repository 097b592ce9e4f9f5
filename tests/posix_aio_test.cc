// SPDX-License-Identifier: MIT
// libaio2-posix.so against glibc's POSIX AIO, call by call: each case runs
// on both implementations (glibc through dlvsym at GLIBC_2.34, ours through
// its own handle) and states what each must answer. Where they differ on
// purpose the row says so; docs/compat.md lists the differences.
#include <aio.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "held_buffer.h"
#include "posix_util.h"

namespace {

using aio2_test::make_cb;
using aio2_test::posix_api;
using aio2_test::wait_done;

constexpr size_t kFileBytes = 64 * 1024;

// The byte at offset `i` of the test file.
unsigned char pattern(size_t i) { return static_cast<unsigned char>((i * 131u + 7u) & 0xff); }

const posix_api &api_of(bool ours) { return ours ? aio2_test::aio2_api() : aio2_test::glibc_api(); }

// A scratch file of kFileBytes of the pattern, open read-write, read-only
// and write-only.
class PosixAio : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api().complete) << api().name << ": " << api().problem;
    ASSERT_TRUE(dir_.ok());
    path_ = dir_ / "data";
    rw_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(rw_, 0);
    std::vector<unsigned char> bytes(kFileBytes);
    for (size_t i = 0; i < kFileBytes; i++) bytes[i] = pattern(i);
    ASSERT_EQ(pwrite(rw_, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    ro_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    wo_ = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(ro_, 0);
    ASSERT_GE(wo_, 0);
  }
  void TearDown() override {
    for (int fd : {rw_, ro_, wo_})
      if (fd >= 0) close(fd);
  }
  const posix_api &api() const { return api_of(GetParam()); }
  bool ours() const { return GetParam(); }

  aio2_test::scratch_dir dir_{"posix"};
  std::string path_;
  int rw_ = -1, ro_ = -1, wo_ = -1;
};

// ---- The table: one request, what the call and then the request answer --

// What a case must give: the call's result and errno, then (when the call
// returned 0, after the request completed) aio_error and aio_return.
// kUntouched: the control block's status is not written (checked through a
// sentinel stored in it beforehand).
constexpr int kUntouched = 0x5a5a;
struct outcome {
  int call;
  int call_errno;  // checked when call is -1
  int error;       // aio_error afterwards, or kUntouched
  ssize_t ret;     // aio_return afterwards (when error is not kUntouched)
};

enum class kind { read, write, fsync_sync, fsync_dsync, fsync_op0 };

struct fixture_fds {
  int rw, ro, wo;
};

struct row {
  const char *name;
  kind k;
  // Fills the control block (the file's descriptors given); returns the
  // descriptors to close afterwards.
  std::function<std::vector<int>(struct aiocb &, const fixture_fds &)> setup;
  outcome glibc, aio2;
  bool glibc_crashes = false;  // not run on glibc: it dereferences NULL, or
                               // kills the process
};

int closed_fd() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  return fd;
}

const std::vector<row> &rows() {
  static const std::vector<row> table = {
      {"read_bad_fd", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_fildes = -1; return std::vector<int>{}; },
       {0, 0, EBADF, -1}, {0, 0, EBADF, -1}},
      {"read_closed_fd", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_fildes = closed_fd(); return std::vector<int>{}; },
       {0, 0, EBADF, -1}, {0, 0, EBADF, -1}},
      {"read_write_only_fd", kind::read,
       [](struct aiocb &cb, const fixture_fds &f) { cb.aio_fildes = f.wo; return std::vector<int>{}; },
       {0, 0, EBADF, -1}, {0, 0, EBADF, -1}},
      {"read_directory", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_fildes = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
         return std::vector<int>{cb.aio_fildes};
       },
       {0, 0, EISDIR, -1}, {0, 0, EISDIR, -1}},
      {"read_null_buffer", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_buf = nullptr; return std::vector<int>{}; },
       {0, 0, EFAULT, -1}, {0, 0, EFAULT, -1}},
      {"read_wild_buffer", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_buf = reinterpret_cast<void *>(8);
         return std::vector<int>{};
       },
       {0, 0, EFAULT, -1}, {0, 0, EFAULT, -1}},
      // A page that stays mapped with no access (an unmapped one could be
      // mapped again by another thread before the write runs).
      {"write_inaccessible_buffer", kind::write,
       [](struct aiocb &cb, const fixture_fds &) {
         static void *const none = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
         cb.aio_buf = none;
         return std::vector<int>{};
       },
       {0, 0, EFAULT, -1}, {0, 0, EFAULT, -1}},
      {"read_huge_length", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_nbytes = SIZE_MAX; return std::vector<int>{}; },
       {0, 0, EFAULT, -1}, {0, 0, EFAULT, -1}},
      {"read_negative_offset", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_offset = -1; return std::vector<int>{}; },
       {0, 0, EINVAL, -1}, {0, 0, EINVAL, -1}},
      {"read_reqprio_negative", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_reqprio = -1; return std::vector<int>{}; },
       {-1, EINVAL, EINVAL, -1}, {-1, EINVAL, EINVAL, -1}},
      {"read_reqprio_above_max", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_reqprio = AIO_PRIO_DELTA_MAX + 1;
         return std::vector<int>{};
       },
       {-1, EINVAL, EINVAL, -1}, {-1, EINVAL, EINVAL, -1}},
      {"read_zero_bytes", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_nbytes = 0; return std::vector<int>{}; },
       {0, 0, 0, 0}, {0, 0, 0, 0}},
      {"read_at_end_of_file", kind::read,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_offset = kFileBytes; return std::vector<int>{}; },
       {0, 0, 0, 0}, {0, 0, 0, 0}},
      {"read_past_end_of_file", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_offset = kFileBytes - 100;
         return std::vector<int>{};
       },
       {0, 0, 0, 100}, {0, 0, 0, 100}},
      {"write_read_only_fd", kind::write,
       [](struct aiocb &cb, const fixture_fds &f) { cb.aio_fildes = f.ro; return std::vector<int>{}; },
       {0, 0, EBADF, -1}, {0, 0, EBADF, -1}},
      // A pipe has no offset: glibc falls back from pwrite and pread to
      // write and read; so does aio2.
      {"write_pipe", kind::write,
       [](struct aiocb &cb, const fixture_fds &) {
         int p[2];
         if (pipe2(p, O_CLOEXEC) != 0) return std::vector<int>{};
         cb.aio_fildes = p[1];
         cb.aio_offset = 12345;
         return std::vector<int>{p[0], p[1]};
       },
       {0, 0, 0, 4096}, {0, 0, 0, 4096}},
      {"read_pipe", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         int p[2];
         if (pipe2(p, O_CLOEXEC) != 0 || write(p[1], "0123456789", 10) != 10) return std::vector<int>{};
         cb.aio_fildes = p[0];
         cb.aio_offset = 12345;
         return std::vector<int>{p[0], p[1]};
       },
       {0, 0, 0, 10}, {0, 0, 0, 10}},
      {"fsync_op_zero", kind::fsync_op0, [](struct aiocb &, const fixture_fds &) { return std::vector<int>{}; },
       {-1, EINVAL, kUntouched, 0}, {-1, EINVAL, kUntouched, 0}},
      {"fsync_bad_fd", kind::fsync_sync,
       [](struct aiocb &cb, const fixture_fds &) { cb.aio_fildes = -1; return std::vector<int>{}; },
       {-1, EBADF, kUntouched, 0}, {-1, EBADF, kUntouched, 0}},
      {"fsync_o_sync", kind::fsync_sync, [](struct aiocb &, const fixture_fds &) { return std::vector<int>{}; },
       {0, 0, 0, 0}, {0, 0, 0, 0}},
      {"fsync_o_dsync", kind::fsync_dsync, [](struct aiocb &, const fixture_fds &) { return std::vector<int>{}; },
       {0, 0, 0, 0}, {0, 0, 0, 0}},
      {"fsync_read_only_fd", kind::fsync_sync,
       [](struct aiocb &cb, const fixture_fds &f) { cb.aio_fildes = f.ro; return std::vector<int>{}; },
       {0, 0, 0, 0}, {0, 0, 0, 0}},
      {"fsync_pipe", kind::fsync_sync,
       [](struct aiocb &cb, const fixture_fds &) {
         int p[2];
         if (pipe2(p, O_CLOEXEC) != 0) return std::vector<int>{};
         cb.aio_fildes = p[1];
         return std::vector<int>{p[0], p[1]};
       },
       {0, 0, EINVAL, -1}, {0, 0, EINVAL, -1}},
      // glibc ignores an unknown sigev_notify (no notification); aio2
      // refuses it. Signal 0, that of a zeroed sigevent, sends nothing on
      // both.
      {"read_unknown_sigev_notify", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_sigevent.sigev_notify = 99;
         return std::vector<int>{};
       },
       {0, 0, 0, 4096}, {-1, EINVAL, EINVAL, -1}},
      {"read_signal_zero", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
         cb.aio_sigevent.sigev_signo = 0;
         return std::vector<int>{};
       },
       {0, 0, 0, 4096}, {0, 0, 0, 4096}},
      {"read_zeroed_sigevent", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         std::memset(&cb.aio_sigevent, 0, sizeof cb.aio_sigevent);
         return std::vector<int>{};
       },
       {0, 0, 0, 4096}, {0, 0, 0, 4096}},
      {"read_signal_kept_by_libc", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
         // glibc's own SIGCANCEL: glibc sends it, which kills a process
         // that never cancelled a thread (no handler yet).
         cb.aio_sigevent.sigev_signo = 32;
         return std::vector<int>{};
       },
       {0, 0, 0, 4096}, {-1, EINVAL, EINVAL, -1}, true},
      // glibc finds out when it sends the signal, and reports it as the
      // request's error; aio2 refuses it at once.
      {"read_signal_out_of_range", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
         cb.aio_sigevent.sigev_signo = 1000;
         return std::vector<int>{};
       },
       {0, 0, EINVAL, -1}, {-1, EINVAL, EINVAL, -1}},
      {"read_thread_without_function", kind::read,
       [](struct aiocb &cb, const fixture_fds &) {
         cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
         cb.aio_sigevent.sigev_notify_function = nullptr;
         return std::vector<int>{};
       },
       {0, 0, 0, 4096}, {-1, EINVAL, EINVAL, -1}, true},
  };
  return table;
}

TEST_P(PosixAio, TableOfCases) {
  for (const row &r : rows()) {
    if (!ours() && r.glibc_crashes) continue;
    SCOPED_TRACE(r.name);
    alignas(4096) static unsigned char buf[8192];
    struct aiocb cb = make_cb(rw_, buf, 4096, 0);
    const std::vector<int> extra = r.setup(cb, {rw_, ro_, wo_});
    cb.__error_code = kUntouched;
    errno = 0;
    int rc = -2;
    switch (r.k) {
      case kind::read: rc = api().read(&cb); break;
      case kind::write: rc = api().write(&cb); break;
      case kind::fsync_sync: rc = api().fsync(O_SYNC, &cb); break;
      case kind::fsync_dsync: rc = api().fsync(O_DSYNC, &cb); break;
      case kind::fsync_op0: rc = api().fsync(0, &cb); break;
    }
    const int call_errno = errno;
    const outcome &want = ours() ? r.aio2 : r.glibc;
    EXPECT_EQ(rc, want.call);
    if (want.call == -1) {
      EXPECT_EQ(call_errno, want.call_errno) << std::strerror(call_errno);
    }
    if (rc == 0) {
      ASSERT_TRUE(wait_done(api(), &cb));
    }
    EXPECT_EQ(api().error(&cb), want.error) << std::strerror(api().error(&cb));
    if (want.error != kUntouched && (rc == 0 || ours())) {
      EXPECT_EQ(api().ret(&cb), want.ret);
    }
    for (int fd : extra) close(fd);
  }
}

// The *64 names are the same calls.
TEST_P(PosixAio, SixtyFourBitNamesWork) {
  alignas(8) unsigned char buf[100];
  struct aiocb64 cb;
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = ro_;
  cb.aio_buf = buf;
  cb.aio_nbytes = sizeof buf;
  cb.aio_offset = 1000;
  cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  ASSERT_EQ(api().read64(&cb), 0);
  const struct aiocb64 *list[1] = {&cb};
  while (api().error64(&cb) == EINPROGRESS) api().suspend64(list, 1, nullptr);
  EXPECT_EQ(api().error64(&cb), 0);
  EXPECT_EQ(api().ret64(&cb), 100);
  for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(buf[i], pattern(1000 + i));
  EXPECT_EQ(api().fsync64(O_SYNC, &cb), 0);
  while (api().error64(&cb) == EINPROGRESS) api().suspend64(list, 1, nullptr);
  EXPECT_EQ(api().error64(&cb), 0);
  EXPECT_EQ(api().cancel64(ro_, &cb), AIO_ALLDONE);
  cb.aio_lio_opcode = LIO_WRITE;
  cb.aio_fildes = rw_;
  struct aiocb64 *items[1] = {&cb};
  EXPECT_EQ(api().listio64(LIO_WAIT, items, 1, nullptr), 0);
  EXPECT_EQ(api().ret64(&cb), 100);
  EXPECT_EQ(api().write64(&cb), 0);
  while (api().error64(&cb) == EINPROGRESS) api().suspend64(list, 1, nullptr);
  EXPECT_EQ(api().ret64(&cb), 100);
}

// ---- aio_error and aio_return ----------------------------------------------

// A pipe whose read end has nothing to read: reads on it stay in progress.
struct quiet_pipe {
  int r = -1, w = -1;
  quiet_pipe() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      r = p[0];
      w = p[1];
    }
  }
  ~quiet_pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
};

TEST_P(PosixAio, ErrorBeforeAndAfterCompletionAndReturnTwice) {
  quiet_pipe p;
  char buf[16] = {};
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&cb), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(api().error(&cb), EINPROGRESS);
  // POSIX: no return status yet. glibc answers the 0 it stored.
  // POSIX: no return status yet; aio2 says EINVAL. glibc answers what the
  // field holds (here the -1 of its failed pread, before it fell back to
  // read).
  if (ours()) {
    errno = 0;
    EXPECT_EQ(api().ret(&cb), -1);
    EXPECT_EQ(errno, EINVAL);
  }
  ASSERT_EQ(write(p.w, "hello", 5), 5);
  ASSERT_TRUE(wait_done(api(), &cb));
  EXPECT_EQ(api().error(&cb), 0);
  EXPECT_EQ(api().ret(&cb), 5);
  EXPECT_EQ(api().ret(&cb), 5);  // twice: the same, as glibc
  EXPECT_EQ(std::memcmp(buf, "hello", 5), 0);
}

TEST_P(PosixAio, NullControlBlocks) {
  if (!ours()) GTEST_SKIP() << "glibc dereferences NULL";
  errno = 0;
  EXPECT_EQ(api().error(nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().ret(nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().read(nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().write(nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().fsync(O_SYNC, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().listio(LIO_WAIT, nullptr, 3, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().listio(LIO_WAIT, nullptr, -1, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(api().suspend(nullptr, 2, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  api().init(nullptr);  // ignored
}

// ---- aio_cancel ---------------------------------------------------------------

TEST_P(PosixAio, CancelArgumentsAndDoneRequests) {
  alignas(8) unsigned char buf[64];
  struct aiocb cb = make_cb(ro_, buf, sizeof buf, 0);
  errno = 0;
  EXPECT_EQ(api().cancel(-1, nullptr), -1);
  EXPECT_EQ(errno, EBADF);
  errno = 0;
  EXPECT_EQ(api().cancel(closed_fd(), &cb), -1);
  EXPECT_EQ(errno, EBADF);
  // Nothing queued on the descriptor.
  EXPECT_EQ(api().cancel(ro_, nullptr), AIO_ALLDONE);
  // A control block of another descriptor.
  errno = 0;
  EXPECT_EQ(api().cancel(rw_, &cb), -1);
  EXPECT_EQ(errno, EINVAL);
  // Done.
  ASSERT_EQ(api().read(&cb), 0);
  ASSERT_TRUE(wait_done(api(), &cb));
  EXPECT_EQ(api().cancel(ro_, &cb), AIO_ALLDONE);
  EXPECT_EQ(api().error(&cb), 0);
  EXPECT_EQ(api().ret(&cb), 64);
  // Unknown: never submitted, status 0.
  struct aiocb never = make_cb(ro_, buf, sizeof buf, 0);
  EXPECT_EQ(api().cancel(ro_, &never), AIO_ALLDONE);
  // Unknown, claiming to be in progress.
  never.__error_code = EINPROGRESS;
  errno = 0;
  EXPECT_EQ(api().cancel(ro_, &never), -1);
  EXPECT_EQ(errno, EINVAL);
}

// A read blocked in the kernel: glibc cannot cancel it (AIO_NOTCANCELED, it
// stays in progress); aio2 interrupts it (AIO_CANCELED, ECANCELED).
TEST_P(PosixAio, CancelABlockedRead) {
  quiet_pipe p;
  char buf[16] = {};
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&cb), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_EQ(api().error(&cb), EINPROGRESS);
  const int rc = api().cancel(p.r, &cb);
  if (ours()) {
    EXPECT_EQ(rc, AIO_CANCELED);
    EXPECT_EQ(api().error(&cb), ECANCELED);
    EXPECT_EQ(api().ret(&cb), -1);
    EXPECT_EQ(api().cancel(p.r, &cb), AIO_ALLDONE);
  } else {
    EXPECT_EQ(rc, AIO_NOTCANCELED);
    EXPECT_EQ(api().error(&cb), EINPROGRESS);
  }
  // The pipe's data is not taken by a cancelled read.
  ASSERT_EQ(write(p.w, "x", 1), 1);
  ASSERT_TRUE(wait_done(api(), &cb));
  if (ours()) {
    char c = 0;
    EXPECT_EQ(read(p.r, &c, 1), 1);
    EXPECT_EQ(c, 'x');
  } else {
    EXPECT_EQ(api().ret(&cb), 1);
  }
}

// A read of a regular file under way, waiting in its copy into a held
// buffer: neither implementation can cancel it (AIO_NOTCANCELED, it stays
// in progress), and it completes with its full count. aio2 reads it on a
// pool worker (worker_read_file has no RWF_NOWAIT), glibc in a thread of
// its own.
TEST_P(PosixAio, CancelARunningFileReadLetsItFinish) {
  aio2_test::worker_read_file f;
  ASSERT_TRUE(f.ok());
  aio2_test::held_buffer hb(4096);
  if (!hb.ok()) GTEST_SKIP() << hb.why();
  struct aiocb cb = make_cb(f.fd, hb.data(), 4096, 0);
  ASSERT_EQ(api().read(&cb), 0);
  ASSERT_TRUE(hb.wait_touched()) << "the read never reached the held buffer";
  ASSERT_NE(hb.toucher(), static_cast<pid_t>(syscall(SYS_gettid)));
  EXPECT_EQ(api().cancel(f.fd, &cb), AIO_NOTCANCELED);
  EXPECT_EQ(api().error(&cb), EINPROGRESS) << "it runs";
  hb.release();
  ASSERT_TRUE(wait_done(api(), &cb));
  EXPECT_EQ(api().error(&cb), 0);
  EXPECT_EQ(api().ret(&cb), f.size()) << "the full count";
  EXPECT_EQ(std::string(hb.data(), f.bytes.size()), f.bytes);
  EXPECT_FALSE(hb.auto_released());
}

// Two reads on one pipe, cancelled together: glibc runs one and queues the
// other behind it; aio2 runs both, and interrupts both.
TEST_P(PosixAio, CancelEverythingOnADescriptor) {
  quiet_pipe p;
  char b1[8], b2[8];
  struct aiocb c1 = make_cb(p.r, b1, sizeof b1, 0), c2 = make_cb(p.r, b2, sizeof b2, 0);
  ASSERT_EQ(api().read(&c1), 0);
  ASSERT_EQ(api().read(&c2), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int rc = api().cancel(p.r, nullptr);
  if (ours()) {
    EXPECT_EQ(rc, AIO_CANCELED);
    EXPECT_EQ(api().error(&c1), ECANCELED);
    EXPECT_EQ(api().error(&c2), ECANCELED);
  } else {
    EXPECT_EQ(rc, AIO_NOTCANCELED);
    EXPECT_EQ(api().error(&c1), EINPROGRESS);
    EXPECT_EQ(api().error(&c2), ECANCELED);
    ASSERT_EQ(write(p.w, "y", 1), 1);
    ASSERT_TRUE(wait_done(api(), &c1));
    EXPECT_EQ(api().ret(&c1), 1);
  }
}

// ---- Notification: every sigev_notify ------------------------------------------

std::atomic<int> g_signals{0};
std::atomic<int> g_signal_code{0};
std::atomic<int> g_signal_pid{0};
std::atomic<intptr_t> g_signal_value{0};
std::atomic<int> g_signal_tid{0};

void on_signal(int, siginfo_t *si, void *) {
  g_signal_code.store(si->si_code);
  g_signal_pid.store(si->si_pid);
  g_signal_value.store(reinterpret_cast<intptr_t>(si->si_value.sival_ptr));
  g_signal_tid.store(static_cast<int>(syscall(SYS_gettid)));
  g_signals.fetch_add(1);
}

int test_signal() {
  static const int sig = [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 4, &sa, nullptr);
    return SIGRTMIN + 4;
  }();
  return sig;
}

bool wait_for(const std::function<bool()> &cond, int ms = 5000) {
  for (int i = 0; i < ms; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

TEST_P(PosixAio, SigevSignalQueuesSiAsyncioWithTheValue) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  const int sig = test_signal();
  g_signals = 0;
  alignas(8) unsigned char buf[512];
  struct aiocb cb = make_cb(ro_, buf, sizeof buf, 0);
  cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
  cb.aio_sigevent.sigev_signo = sig;
  cb.aio_sigevent.sigev_value.sival_ptr = &cb;
  ASSERT_EQ(api().read(&cb), 0);
  ASSERT_TRUE(wait_for([] { return g_signals.load() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(g_signals.load(), 1);
  EXPECT_EQ(g_signal_code.load(), SI_ASYNCIO);
  EXPECT_EQ(g_signal_pid.load(), getpid());
  EXPECT_EQ(g_signal_value.load(), reinterpret_cast<intptr_t>(&cb));
  EXPECT_EQ(api().error(&cb), 0);  // the status is there before the signal
  EXPECT_EQ(api().ret(&cb), 512);
}

// SIGEV_THREAD_ID: aio2 queues the signal to that thread; glibc does not
// know it and sends nothing.
TEST_P(PosixAio, SigevThreadIdSignalsThatThread) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  const int sig = test_signal();
  g_signals = 0;
  std::atomic<int> target_tid{0};
  std::atomic<bool> stop{false};
  std::thread target([&] {
    target_tid = static_cast<int>(syscall(SYS_gettid));
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (target_tid == 0) std::this_thread::yield();
  alignas(8) unsigned char buf[512];
  struct aiocb cb = make_cb(ro_, buf, sizeof buf, 0);
  cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
  cb.aio_sigevent.sigev_signo = sig;
  cb.aio_sigevent._sigev_un._tid = target_tid;
  cb.aio_sigevent.sigev_value.sival_int = 77;
  ASSERT_EQ(api().read(&cb), 0);
  ASSERT_TRUE(wait_done(api(), &cb));
  if (ours()) {
    ASSERT_TRUE(wait_for([] { return g_signals.load() > 0; }));
    EXPECT_EQ(g_signal_tid.load(), target_tid.load());
    EXPECT_EQ(g_signal_code.load(), SI_ASYNCIO);
    EXPECT_EQ(g_signal_value.load() & 0xffffffff, 77);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(g_signals.load(), 0);
  }
  stop = true;
  target.join();
}

struct thread_note {
  std::atomic<int> calls{0};
  std::atomic<int> status_seen{-1};
  std::atomic<pthread_t> thread{};
  std::atomic<size_t> stack{0};
  std::atomic<int> cpus{0};  // CPUs in the thread's affinity
  std::atomic<bool> cpu0{false};
  struct aiocb *cb = nullptr;
  const posix_api *api = nullptr;
};

void on_notify(union sigval v) {
  auto *n = static_cast<thread_note *>(v.sival_ptr);
  n->status_seen = n->api->error(n->cb);
  n->thread = pthread_self();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    size_t size = 0;
    pthread_attr_getstacksize(&attr, &size);
    n->stack = size;
    pthread_attr_destroy(&attr);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
    n->cpus = CPU_COUNT(&set);
    n->cpu0 = CPU_ISSET(0, &set);
  }
  n->calls.fetch_add(1);
}

TEST_P(PosixAio, SigevThreadRunsTheFunctionOnceInAnotherThread) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  alignas(8) unsigned char buf[512];
  struct aiocb cb = make_cb(ro_, buf, sizeof buf, 0);
  thread_note note;
  note.cb = &cb;
  note.api = &api();
  cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
  cb.aio_sigevent.sigev_notify_function = on_notify;
  cb.aio_sigevent.sigev_value.sival_ptr = &note;
  ASSERT_EQ(api().read(&cb), 0);
  ASSERT_TRUE(wait_for([&] { return note.calls.load() > 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(note.calls.load(), 1);
  EXPECT_EQ(note.status_seen.load(), 0);
  EXPECT_FALSE(pthread_equal(note.thread.load(), pthread_self()));
}

TEST_P(PosixAio, SigevThreadHonoursTheAttributes) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  for (int detach : {PTHREAD_CREATE_DETACHED, PTHREAD_CREATE_JOINABLE}) {
    SCOPED_TRACE(detach == PTHREAD_CREATE_DETACHED ? "detached" : "joinable");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    constexpr size_t kStack = 3 * 1024 * 1024;
    pthread_attr_setstacksize(&attr, kStack);
    pthread_attr_setdetachstate(&attr, detach);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    alignas(8) unsigned char buf[512];
    struct aiocb cb = make_cb(ro_, buf, sizeof buf, 0);
    thread_note note;
    note.cb = &cb;
    note.api = &api();
    cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
    cb.aio_sigevent.sigev_notify_function = on_notify;
    cb.aio_sigevent.sigev_value.sival_ptr = &note;
    cb.aio_sigevent.sigev_notify_attributes = &attr;
    ASSERT_EQ(api().read(&cb), 0);
    ASSERT_TRUE(wait_for([&] { return note.calls.load() > 0; }));
    // The stack may come from the C library's cache of stacks, at least as
    // large; the affinity is exact.
    EXPECT_GE(note.stack.load(), kStack);
    EXPECT_EQ(note.cpus.load(), 1);
    EXPECT_TRUE(note.cpu0.load());
    EXPECT_EQ(note.status_seen.load(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    pthread_attr_destroy(&attr);
  }
}

// Many SIGEV_THREAD notifications whose functions block until all have
// started: none waits behind another (glibc: a thread each; aio2: the pool
// grows).
std::atomic<int> g_started{0};
void on_notify_barrier(union sigval v) {
  g_started.fetch_add(1);
  const int want = v.sival_int;
  for (int i = 0; i < 5000 && g_started.load() < want; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST_P(PosixAio, SigevThreadNotificationsRunConcurrently) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  constexpr int kN = 12;
  g_started = 0;
  alignas(8) static unsigned char buf[kN][64];
  struct aiocb cbs[kN];
  for (int i = 0; i < kN; i++) {
    cbs[i] = make_cb(ro_, buf[i], sizeof buf[i], 64 * i);
    cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
    cbs[i].aio_sigevent.sigev_notify_function = on_notify_barrier;
    cbs[i].aio_sigevent.sigev_value.sival_int = kN;
    ASSERT_EQ(api().read(&cbs[i]), 0);
  }
  EXPECT_TRUE(wait_for([] { return g_started.load() == kN; }, 3000)) << g_started.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// ---- lio_listio -----------------------------------------------------------------

TEST_P(PosixAio, ListioArguments) {
  struct aiocb *none[1] = {nullptr};
  errno = 0;
  EXPECT_EQ(api().listio(7, none, 1, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  // Empty lists and lists of NULL entries.
  EXPECT_EQ(api().listio(LIO_WAIT, none, 0, nullptr), 0);
  EXPECT_EQ(api().listio(LIO_WAIT, none, 1, nullptr), 0);
  EXPECT_EQ(api().listio(LIO_NOWAIT, none, 1, nullptr), 0);
  if (ours()) {
    errno = 0;
    EXPECT_EQ(api().listio(LIO_WAIT, none, -1, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    struct sigevent bad {};
    bad.sigev_notify = 42;
    errno = 0;
    EXPECT_EQ(api().listio(LIO_NOWAIT, none, 1, &bad), -1);
    EXPECT_EQ(errno, EINVAL);
  }
}

TEST_P(PosixAio, ListioWaitWithNopAndNullEntries) {
  alignas(8) unsigned char rbuf[4096], wbuf[4096];
  std::memset(wbuf, 0xab, sizeof wbuf);
  struct aiocb r = make_cb(ro_, rbuf, sizeof rbuf, 4096);
  struct aiocb w = make_cb(rw_, wbuf, sizeof wbuf, 8192);
  struct aiocb nop = make_cb(rw_, wbuf, sizeof wbuf, 0);
  r.aio_lio_opcode = LIO_READ;
  w.aio_lio_opcode = LIO_WRITE;
  nop.aio_lio_opcode = LIO_NOP;
  nop.__error_code = kUntouched;
  struct aiocb *list[] = {&r, &nop, nullptr, &w};
  EXPECT_EQ(api().listio(LIO_WAIT, list, 4, nullptr), 0);
  EXPECT_EQ(api().error(&r), 0);
  EXPECT_EQ(api().ret(&r), 4096);
  EXPECT_EQ(api().error(&w), 0);
  EXPECT_EQ(api().ret(&w), 4096);
  EXPECT_EQ(api().error(&nop), kUntouched);  // a NOP entry is not touched
  for (size_t i = 0; i < sizeof rbuf; i++) ASSERT_EQ(rbuf[i], pattern(4096 + i));
  unsigned char back[4096];
  ASSERT_EQ(pread(ro_, back, sizeof back, 8192), 4096);
  EXPECT_EQ(std::memcmp(back, wbuf, sizeof back), 0);
}

TEST_P(PosixAio, ListioWaitReportsAFailedEntryWithEio) {
  alignas(8) unsigned char a[64], b[64];
  struct aiocb good = make_cb(ro_, a, sizeof a, 0);
  struct aiocb bad = make_cb(-1, b, sizeof b, 0);
  good.aio_lio_opcode = LIO_READ;
  bad.aio_lio_opcode = LIO_READ;
  struct aiocb *list[] = {&good, &bad};
  errno = 0;
  EXPECT_EQ(api().listio(LIO_WAIT, list, 2, nullptr), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(api().error(&good), 0);
  EXPECT_EQ(api().ret(&good), 64);
  EXPECT_EQ(api().error(&bad), EBADF);
  EXPECT_EQ(api().ret(&bad), -1);
}

TEST_P(PosixAio, ListioUnknownOpcode) {
  alignas(8) unsigned char a[64];
  struct aiocb odd = make_cb(ro_, a, sizeof a, 0);
  odd.aio_lio_opcode = 9;
  struct aiocb *list[] = {&odd};
  errno = 0;
  EXPECT_EQ(api().listio(LIO_WAIT, list, 1, nullptr), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(api().error(&odd), EINVAL);
  EXPECT_EQ(api().ret(&odd), -1);
}

TEST_P(PosixAio, ListioNowaitSignalsOnceWhenAllAreDone) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  const int sig = test_signal();
  g_signals = 0;
  constexpr int kN = 8;
  alignas(8) static unsigned char bufs[kN][1024];
  struct aiocb cbs[kN];
  struct aiocb *list[kN];
  for (int i = 0; i < kN; i++) {
    cbs[i] = make_cb(ro_, bufs[i], sizeof bufs[i], 1024 * i);
    cbs[i].aio_lio_opcode = LIO_READ;
    list[i] = &cbs[i];
  }
  struct sigevent sev {};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  sev.sigev_value.sival_int = 4242;
  ASSERT_EQ(api().listio(LIO_NOWAIT, list, kN, &sev), 0);
  ASSERT_TRUE(wait_for([] { return g_signals.load() > 0; }));
  for (int i = 0; i < kN; i++) {
    EXPECT_EQ(api().error(&cbs[i]), 0) << i;  // all done when the signal comes
    EXPECT_EQ(api().ret(&cbs[i]), 1024);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(g_signals.load(), 1);
  EXPECT_EQ(g_signal_code.load(), SI_ASYNCIO);
  EXPECT_EQ(g_signal_value.load() & 0xffffffff, 4242);
}

TEST_P(PosixAio, ListioNowaitNotifiesAnEmptyListAtOnce) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  const int sig = test_signal();
  g_signals = 0;
  struct aiocb nop = make_cb(ro_, nullptr, 0, 0);
  nop.aio_lio_opcode = LIO_NOP;
  struct aiocb *list[] = {&nop, nullptr};
  struct sigevent sev {};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  ASSERT_EQ(api().listio(LIO_NOWAIT, list, 2, &sev), 0);
  EXPECT_TRUE(wait_for([] { return g_signals.load() == 1; }));
}

TEST_P(PosixAio, ListioNowaitThreadAndIndividualNotifications) {
  if (!ours() && aio2_test::kThreadSanitizer) GTEST_SKIP() << "glibc's threads are not seen by ThreadSanitizer";
  const int sig = test_signal();
  g_signals = 0;
  alignas(8) unsigned char a[256], b[256];
  struct aiocb ca = make_cb(ro_, a, sizeof a, 0), cb2 = make_cb(ro_, b, sizeof b, 256);
  ca.aio_lio_opcode = cb2.aio_lio_opcode = LIO_READ;
  // Each entry's own sigevent is honoured too (glibc since 2.4).
  ca.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
  ca.aio_sigevent.sigev_signo = sig;
  thread_note note;
  note.cb = &cb2;
  note.api = &api();
  struct sigevent sev {};
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = on_notify;
  sev.sigev_value.sival_ptr = &note;
  struct aiocb *list[] = {&ca, &cb2};
  ASSERT_EQ(api().listio(LIO_NOWAIT, list, 2, &sev), 0);
  ASSERT_TRUE(wait_for([&] { return note.calls.load() == 1 && g_signals.load() == 1; }));
  EXPECT_EQ(note.status_seen.load(), 0);
  EXPECT_EQ(api().error(&ca), 0);
}

// ---- aio_suspend ---------------------------------------------------------------

TEST_P(PosixAio, SuspendTimesOut) {
  quiet_pipe p;
  char buf[8];
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&cb), 0);
  const struct aiocb *list[] = {nullptr, &cb};
  const struct timespec t = {0, 100 * 1000 * 1000};
  const auto start = std::chrono::steady_clock::now();
  errno = 0;
  EXPECT_EQ(api().suspend(list, 2, &t), -1);
  EXPECT_EQ(errno, EAGAIN);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(95));
  EXPECT_LT(took, std::chrono::milliseconds(2000));
  const struct timespec zero = {0, 0};
  errno = 0;
  EXPECT_EQ(api().suspend(list, 2, &zero), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(write(p.w, "z", 1), 1);
  EXPECT_EQ(api().suspend(list, 2, nullptr), 0);
  EXPECT_EQ(api().error(&cb), 0);
}

TEST_P(PosixAio, SuspendReturnsAtOnceForDoneOrEmptyLists) {
  alignas(8) unsigned char buf[64];
  struct aiocb done = make_cb(ro_, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&done), 0);
  ASSERT_TRUE(wait_done(api(), &done));
  quiet_pipe p;
  char pb[4];
  struct aiocb busy = make_cb(p.r, pb, sizeof pb, 0);
  ASSERT_EQ(api().read(&busy), 0);
  const struct aiocb *list[] = {&busy, &done};
  EXPECT_EQ(api().suspend(list, 2, nullptr), 0);
  const struct aiocb *nulls[] = {nullptr, nullptr};
  EXPECT_EQ(api().suspend(nulls, 2, nullptr), 0);
  EXPECT_EQ(api().suspend(nulls, 0, nullptr), 0);
  errno = 0;
  EXPECT_EQ(api().suspend(list, -1, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  if (ours()) {
    // glibc hands a bad timeout to the kernel and asserts on the answer.
    const struct timespec bad = {0, 2000000000L};
    errno = 0;
    EXPECT_EQ(api().suspend(list, 1, &bad), -1);
    EXPECT_EQ(errno, EINVAL);
  }
  ASSERT_EQ(write(p.w, "abcd", 4), 4);
  ASSERT_TRUE(wait_done(api(), &busy));
}

void on_usr1(int) {}

// A signal handler interrupts a wait with a time-out: EINTR, as glibc.
TEST_P(PosixAio, SuspendIsInterruptedBySignals) {
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  quiet_pipe p;
  char buf[4];
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&cb), 0);
  std::atomic<int> rc{-2}, err{0};
  std::atomic<bool> back{false};
  std::thread waiter([&] {
    const struct aiocb *list[] = {&cb};
    const struct timespec t = {20, 0};
    rc = api().suspend(list, 1, &t);
    err = errno;
    back = true;
  });
  // Until one lands while the waiter sleeps (one that comes before it is
  // handled and forgotten).
  for (int i = 0; i < 200 && !back; i++) {
    pthread_kill(waiter.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  waiter.join();
  EXPECT_EQ(rc.load(), -1);
  EXPECT_EQ(err.load(), EINTR);
  ASSERT_EQ(write(p.w, "q", 1), 1);
  ASSERT_TRUE(wait_done(api(), &cb));
}

struct cancel_args {
  const posix_api *api;
  struct aiocb *cb;
  std::atomic<bool> entered{false};
};

void *suspend_forever(void *arg) {
  auto *a = static_cast<cancel_args *>(arg);
  const struct aiocb *list[] = {a->cb};
  a->entered = true;
  a->api->suspend(list, 1, nullptr);
  return nullptr;  // not reached: cancelled inside aio_suspend
}

// aio_suspend is a cancellation point.
TEST_P(PosixAio, SuspendIsACancellationPoint) {
  quiet_pipe p;
  char buf[4];
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api().read(&cb), 0);
  cancel_args a{&api(), &cb};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, suspend_forever, &a), 0);
  while (!a.entered) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(pthread_cancel(t), 0);
  void *result = nullptr;
  ASSERT_EQ(pthread_join(t, &result), 0);
  EXPECT_EQ(result, PTHREAD_CANCELED);
  // Waiting still works afterwards.
  ASSERT_EQ(write(p.w, "ok", 2), 2);
  const struct aiocb *list[] = {&cb};
  const struct timespec t5 = {5, 0};
  EXPECT_EQ(api().suspend(list, 1, &t5), 0);
  EXPECT_EQ(api().ret(&cb), 2);
}

// ---- What POSIX orders, and what it does not ----------------------------------

// A socket whose send buffer is full, so that a write to it blocks.
struct full_socket {
  int a = -1, b = -1;
  full_socket() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    a = sv[0];
    b = sv[1];
    const int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const int flags = fcntl(a, F_GETFL);
    fcntl(a, F_SETFL, flags | O_NONBLOCK);
    char junk[4096] = {};
    while (write(a, junk, sizeof junk) > 0) {
    }
    fcntl(a, F_SETFL, flags);
  }
  ~full_socket() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
  void drain() {
    const int flags = fcntl(b, F_GETFL);
    fcntl(b, F_SETFL, flags | O_NONBLOCK);
    char junk[65536];
    while (read(b, junk, sizeof junk) > 0) {
    }
    fcntl(b, F_SETFL, flags);
  }
};

// A read on a descriptor whose write is blocked: glibc queues it behind the
// write (one request per descriptor at a time); aio2 runs it.
TEST_P(PosixAio, ARequestDoesNotWaitBehindABlockedOneOnItsDescriptor) {
  full_socket s;
  ASSERT_GE(s.a, 0);
  std::vector<char> big(256 * 1024, 'w');
  struct aiocb w = make_cb(s.a, big.data(), big.size(), 0);
  ASSERT_EQ(api().write(&w), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_EQ(api().error(&w), EINPROGRESS);
  ASSERT_EQ(write(s.b, "r", 1), 1);  // something for `a` to read
  char c = 0;
  struct aiocb r = make_cb(s.a, &c, 1, 0);
  ASSERT_EQ(api().read(&r), 0);
  const struct aiocb *list[] = {&r};
  const struct timespec t = {0, 300 * 1000 * 1000};
  const int rc = api().suspend(list, 1, &t);
  if (ours()) {
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(api().ret(&r), 1);
    EXPECT_EQ(api().error(&w), EINPROGRESS);
  } else {
    EXPECT_EQ(rc, -1);  // behind the write
    EXPECT_EQ(api().error(&r), EINPROGRESS);
  }
  // Let the write finish.
  std::atomic<bool> stop{false};
  std::thread drainer([&] {
    while (!stop) {
      s.drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_TRUE(wait_done(api(), &w));
  EXPECT_TRUE(wait_done(api(), &r));
  stop = true;
  drainer.join();
  EXPECT_EQ(api().ret(&w), static_cast<ssize_t>(big.size()));
}

// aio_fsync covers the writes queued before it: while one is blocked, the
// fsync waits (a socket cannot be synced: it then fails with EINVAL).
TEST_P(PosixAio, FsyncWaitsForTheWritesBeforeIt) {
  full_socket s;
  ASSERT_GE(s.a, 0);
  std::vector<char> big(128 * 1024, 'f');
  struct aiocb w = make_cb(s.a, big.data(), big.size(), 0);
  ASSERT_EQ(api().write(&w), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_EQ(api().error(&w), EINPROGRESS);
  struct aiocb f = make_cb(s.a, nullptr, 0, 0);
  ASSERT_EQ(api().fsync(O_SYNC, &f), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(api().error(&f), EINPROGRESS);
  std::atomic<bool> stop{false};
  std::thread drainer([&] {
    while (!stop) {
      s.drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_TRUE(wait_done(api(), &w));
  EXPECT_TRUE(wait_done(api(), &f));
  stop = true;
  drainer.join();
  EXPECT_EQ(api().error(&w), 0);
  EXPECT_EQ(api().error(&f), EINVAL);
}

// Writes to a descriptor that cannot seek land in the order of the calls.
TEST_P(PosixAio, WritesToAStreamLandInOrder) {
  full_socket s;
  ASSERT_GE(s.a, 0);
  s.drain();
  constexpr int kN = 16;
  std::vector<std::vector<char>> bufs(kN);
  std::vector<struct aiocb> cbs(kN);
  for (int i = 0; i < kN; i++) {
    bufs[i].assign(8192, static_cast<char>('A' + i));
    cbs[i] = make_cb(s.a, bufs[i].data(), bufs[i].size(), 0);
    ASSERT_EQ(api().write(&cbs[i]), 0);
  }
  std::string got;
  while (got.size() < kN * 8192u) {
    char tmp[65536];
    const ssize_t n = read(s.b, tmp, sizeof tmp);
    ASSERT_GT(n, 0);
    got.append(tmp, static_cast<size_t>(n));
  }
  for (int i = 0; i < kN; i++) {
    ASSERT_TRUE(wait_done(api(), &cbs[i]));
    EXPECT_EQ(api().ret(&cbs[i]), 8192);
  }
  for (size_t i = 0; i < got.size(); i++)
    ASSERT_EQ(got[i], static_cast<char>('A' + i / 8192)) << "byte " << i;
}

// O_APPEND: the records land in the order of the calls.
TEST_P(PosixAio, AppendWritesLandInOrder) {
  const std::string path = dir_ / "log";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  constexpr int kN = 64;
  std::vector<std::string> recs(kN);
  std::vector<struct aiocb> cbs(kN);
  for (int i = 0; i < kN; i++) {
    recs[i] = "record " + std::to_string(1000 + i) + "\n";
    cbs[i] = make_cb(fd, recs[i].data(), recs[i].size(), 0);
    ASSERT_EQ(api().write(&cbs[i]), 0);
  }
  for (int i = 0; i < kN; i++) ASSERT_TRUE(wait_done(api(), &cbs[i]));
  close(fd);
  std::string want;
  for (const auto &r : recs) want += r;
  std::string got(want.size() + 10, '\0');
  const int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  got.resize(static_cast<size_t>(read(in, got.data(), got.size())));
  close(in);
  EXPECT_EQ(got, want);
}

// ---- fork() --------------------------------------------------------------------

// A child does not inherit the parent's requests: their control blocks say
// ECANCELED in the child (and one line on stderr says why), the child's own
// requests work, and the parent's request goes on in the parent.
TEST(PosixFork, TheChildStartsAfreshAndSaysSo) {
  const posix_api &api = aio2_test::aio2_api();
  ASSERT_TRUE(api.complete) << api.problem;
  quiet_pipe p;
  char buf[8] = {};
  struct aiocb cb = make_cb(p.r, buf, sizeof buf, 0);
  ASSERT_EQ(api.read(&cb), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(api.error(&cb), EINPROGRESS);
  int err[2];
  ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    int code = 0;
    if (api.error(&cb) != ECANCELED || api.ret(&cb) != -1) code |= 1;
    // A request of the child's own (it starts the child's threads, which
    // ThreadSanitizer does not allow after a fork).
    if (!aio2_test::kThreadSanitizer) {
      int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
      char head[4] = {};
      struct aiocb mine = make_cb(fd, head, sizeof head, 0);
      if (api.read(&mine) != 0 || !wait_done(api, &mine, 5) || api.ret(&mine) != 4 ||
          std::memcmp(head, "\177ELF", 4) != 0)
        code |= 2;
    }
    _exit(code);
  }
  close(err[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::string said(4096, '\0');
  const ssize_t n = read(err[0], said.data(), said.size());
  said.resize(n > 0 ? static_cast<size_t>(n) : 0);
  close(err[0]);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the parent's request was not ECANCELED; 2: a new one failed";
  EXPECT_NE(said.find("aio2-posix: fork: 1 request in flight in the parent is not inherited"),
            std::string::npos)
      << said;
  EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;
  // The parent's request is untouched.
  EXPECT_EQ(api.error(&cb), EINPROGRESS);
  ASSERT_EQ(write(p.w, "after", 5), 5);
  ASSERT_TRUE(wait_done(api, &cb));
  EXPECT_EQ(api.ret(&cb), 5);
}

INSTANTIATE_TEST_SUITE_P(Impl, PosixAio, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) {
                           return std::string(i.param ? "aio2" : "glibc");
                         });

}  // namespace
