// SPDX-License-Identifier: MIT
// Several copies of aio2 in one process: this program's (the static
// library), the one inside aio2's libaio.so.1 and the one inside
// libaio2-posix.so, each loaded with dlopen. Each copy sets up and cancels
// through the same cancel signal: the copy that comes second must take the
// first one's handler for its own (it used to answer -EBUSY), and a blocked
// read is still interrupted in each.

#include <aio.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "aio2/aio2.h"
#include "libaio_api.h"
#include "proc_util.h"

namespace {

// A read of an empty pipe, on the pool, in this program's copy; cancelled
// once a worker is blocked in it.
void cancel_blocked_read_here() {
  aio2_params p{};
  p.size = sizeof p;
  p.policy = AIO2_POLICY_POOL;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  char b[8];
  alignas(8) aio2_iocb io;
  aio2_prep(&io, SYS_read, 42, static_cast<uint64_t>(fds[0]), reinterpret_cast<uint64_t>(b),
            sizeof b, 0, 0, 0);
  ASSERT_EQ(aio2_submit(c, &io, sizeof io), static_cast<ssize_t>(sizeof io));
  while (!aio2_test::thread_blocked_in(SYS_read, fds[0]))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(aio2_cancel(c, 42), -EALREADY);
  alignas(8) unsigned char ev[64];
  const timespec ts{10, 0};
  ASSERT_EQ(aio2_getevents(c, 1, ev, sizeof ev, &ts), static_cast<ssize_t>(sizeof(aio2_event)));
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, -EINTR);
  EXPECT_EQ(aio2_destroy(c), 0);
  close(fds[0]);
  close(fds[1]);
}

TEST(TwoCopies, EachCopyTakesTheOthersCancelHandler) {
  // This program's copy first: it installs the handler.
  cancel_blocked_read_here();

  // The libaio replacement's copy: io_setup, then a blocked pipe read that
  // io_cancel interrupts.
  const auto a = aio2_test::libaio_api::load("aio2", AIO2_LIBAIO_PATH);
  ASSERT_TRUE(a.ok()) << a.error;
  aio2_test::io_context_t ctx = nullptr;
  ASSERT_EQ(a.io_setup(4, &ctx), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  char b[8];
  struct iocb cb {};
  cb.aio_lio_opcode = IOCB_CMD_PREAD;
  cb.aio_fildes = static_cast<uint32_t>(fds[0]);
  cb.aio_buf = reinterpret_cast<uint64_t>(b);
  cb.aio_nbytes = sizeof b;
  struct iocb *list[1] = {&cb};
  ASSERT_EQ(a.io_submit(ctx, 1, list), 1);
  // io_uring may hold the read instead of a worker; either is interrupted.
  for (int i = 0; i < 1000 && !aio2_test::thread_blocked_in(SYS_read, fds[0]); i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int crc = a.io_cancel(ctx, &cb, nullptr);
  EXPECT_TRUE(crc == -EINPROGRESS || crc == 0) << crc;
  struct io_event ev {};
  struct timespec ts {10, 0};
  ASSERT_EQ(a.io_getevents(ctx, 1, 1, &ev, &ts), 1);
  EXPECT_TRUE(ev.res == -EINTR || ev.res == -ECANCELED) << ev.res;
  EXPECT_EQ(a.io_destroy(ctx), 0);
  close(fds[0]);
  close(fds[1]);

  // The POSIX AIO replacement's copy: a read of a regular file.
  void *dl = dlopen(AIO2_POSIX_LIB, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  auto aread = reinterpret_cast<int (*)(struct aiocb *)>(dlsym(dl, "aio_read"));
  auto aerror = reinterpret_cast<int (*)(const struct aiocb *)>(dlsym(dl, "aio_error"));
  auto areturn = reinterpret_cast<ssize_t (*)(struct aiocb *)>(dlsym(dl, "aio_return"));
  ASSERT_TRUE(aread && aerror && areturn);
  FILE *f = tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite("0123456789", 1, 10, f), 10u);
  fflush(f);
  struct aiocb acb {};
  acb.aio_fildes = fileno(f);
  acb.aio_buf = b;
  acb.aio_nbytes = sizeof b;
  ASSERT_EQ(aread(&acb), 0) << strerror(errno);
  while (aerror(&acb) == EINPROGRESS) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(areturn(&acb), 8);
  fclose(f);

  // And this program's copy still cancels.
  cancel_blocked_read_here();
}

// A handler of the program's own keeps the signal: setup refuses.
TEST(TwoCopies, AnotherHandlerIsStillRefused) {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGRTMAX - 2, &sa, nullptr), 0);
  aio2_ctx *c = nullptr;
  EXPECT_EQ(aio2_setup(AIO2_ABI_VERSION, nullptr, &c), -EBUSY);
}

}  // namespace
