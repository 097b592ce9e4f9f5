// SPDX-License-Identifier: MIT
// Each allocation site of src/util/fault.h failed once, on its own: the call
// that needed it answers a specific -errno (or, where the design says so,
// carries on without it), every request admitted still gets exactly one
// event, and nothing is left open. Built where the injector is compiled in
// (AIO2_FAULT_INJECT: the AddressSanitizer build, whose leak check runs at
// each test's exit). ctest runs each test in a process of its own.

#include <aio.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "aio2/aio2.h"
#include "util/fault.h"

namespace {

using aio2::fault::site;

unsigned idx(site s) { return static_cast<unsigned>(s); }

size_t open_fds() {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd");
       it != std::filesystem::directory_iterator(); ++it)
    n++;
  return n;
}

uint64_t failed_at(site s) {
  uint64_t calls = 0, failed = 0;
  aio2_fault_counts(idx(s), &calls, &failed);
  return failed;
}

aio2_ctx *setup(uint32_t policy, uint32_t flags, int *err) {
  aio2_params p{};
  p.size = sizeof p;
  p.policy = policy;
  p.flags = flags;
  aio2_ctx *c = nullptr;
  *err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  return c;
}

// One getppid request with the timing attribute.
struct getppid_req {
  alignas(8) unsigned char b[256] = {};
  // `timings` timing attributes: 16 make an event (24 + 16 * 40 bytes)
  // too large to encode on the stack, which reserves its own room.
  explicit getppid_req(uint64_t ud, int timings = 1) {
    aio2_prep(io(), SYS_getppid, ud, 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < timings; i++) aio2_attr_add(io(), sizeof b, AIO2_ATTR_TIMING, 0, nullptr, 0);
  }
  aio2_iocb *io() { return reinterpret_cast<aio2_iocb *>(b); }
};

// Events reaped until `want` came or a second passed with none.
int reap(aio2_ctx *c, int want, int64_t *last_res) {
  alignas(8) unsigned char buf[1024];
  int got = 0;
  while (got < want) {
    const timespec ts{1, 0};
    const ssize_t n = aio2_getevents(c, 1, buf, sizeof buf, &ts);
    if (n <= 0) break;
    for (const aio2_event *ev = aio2_event_next(buf, static_cast<size_t>(n), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(n), ev)) {
      *last_res = ev->res;
      got++;
    }
  }
  // Nothing more may come.
  const timespec zero{0, 0};
  if (aio2_getevents(c, 1, buf, sizeof buf, &zero) > 0) got++;
  return got;
}

TEST(FaultInject, BuiltinAttributesRegisterWithoutAllocating) {
  // Before anything else in this process: the built-in handlers are
  // registered at the first lookup, and a failed copy would have left the
  // timing attribute UNSUPPORTED without a word.
  aio2_fault_arm_site(idx(site::attr_handler), 1);
  getppid_req r(1);
  alignas(8) unsigned char ev[256];
  ASSERT_GT(aio2_call(nullptr, r.io(), ev, sizeof ev), 0);
  uint16_t status = 0;
  EXPECT_NE(aio2_event_attr_payload(reinterpret_cast<aio2_event *>(ev), AIO2_ATTR_TIMING,
                                    sizeof(aio2_attr_timing), &status),
            nullptr)
      << "status " << status;
  // A user's handler is copied: that copy fails with -ENOMEM, and the id
  // stays free for the next try.
  aio2_attr_handler h{};
  h.size = sizeof h;
  h.id = AIO2_ATTR_USER_MIN + 7;
  h.paths = AIO2_PATH_ALL;
  EXPECT_EQ(aio2_attr_register(&h), -ENOMEM);
  aio2_fault_disarm();
  EXPECT_EQ(aio2_attr_register(&h), 0);
}

TEST(FaultInject, SetupFailsWithEnomemAndLeavesNothingOpen) {
  struct row {
    site s;
    uint32_t flags;
  };
  for (const row &w : {row{site::context_new, 0}, row{site::ring_map, 0},
                       row{site::eventfd, AIO2_SETUP_EVENTFD}, row{site::wake_eventfd, 0}}) {
    const size_t fds = open_fds();
    aio2_fault_arm_site(idx(w.s), 1);
    int err = 0;
    aio2_ctx *c = setup(AIO2_POLICY_AUTO, w.flags, &err);
    const uint64_t failed = failed_at(w.s);
    aio2_fault_disarm();
    if (w.s == site::wake_eventfd && failed == 0) {
      // Only a context with io_uring has the reapers' wake-up eventfd.
      EXPECT_EQ(err, 0);
      aio2_destroy(c);
      continue;
    }
    EXPECT_EQ(failed, 1u) << aio2::fault::site_name(w.s);
    EXPECT_EQ(err, -ENOMEM) << aio2::fault::site_name(w.s);
    EXPECT_EQ(c, nullptr);
    EXPECT_EQ(open_fds(), fds) << aio2::fault::site_name(w.s);
  }
}

// A LEGACY context (the old ABI's ring, and with io_uring a collector
// thread and its two eventfds): each call at each site failed in turn, the
// setup answers -ENOMEM or -EAGAIN and leaves no descriptor open, until the
// site's calls are all passed and the setup succeeds.
TEST(FaultInject, LegacySetupFailsAtEveryCallAndLeavesNothingOpen) {
  for (site s : {site::context_new, site::legacy_map, site::eventfd, site::wake_eventfd,
                 site::thread_create, site::uring_setup}) {
    bool succeeded = false;
    for (uint64_t nth = 1; nth <= 8 && !succeeded; nth++) {
      const size_t fds = open_fds();
      aio2_params p{};
      p.size = sizeof p;
      p.type = AIO2_CTX_LEGACY;
      p.max_inflight = 8;
      p.flags = AIO2_SETUP_EVENTFD;
      aio2_ctx *c = nullptr;
      aio2_fault_arm_site(idx(s), nth);
      const int err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
      const uint64_t failed = failed_at(s);
      aio2_fault_disarm();
      if (err == 0) {
        succeeded = true;
        EXPECT_EQ(aio2_destroy(c), 0);
        EXPECT_EQ(open_fds(), fds) << aio2::fault::site_name(s);
        continue;
      }
      EXPECT_EQ(failed, 1u) << aio2::fault::site_name(s) << " call " << nth;
      EXPECT_TRUE(err == -ENOMEM || err == -EAGAIN) << aio2_strerror(err);
      EXPECT_EQ(open_fds(), fds) << aio2::fault::site_name(s) << " call " << nth;
    }
    EXPECT_TRUE(succeeded) << aio2::fault::site_name(s);
  }
}

TEST(FaultInject, IoUringSetupFailingLeavesTheContextOnThePool) {
  aio2_fault_arm_site(idx(site::uring_setup), 1);
  aio2_params p{};
  p.size = sizeof p;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  aio2_fault_disarm();
  EXPECT_EQ(p.features & AIO2_FEAT_URING, 0u);
  getppid_req r(5);
  ASSERT_EQ(aio2_submit(c, r.b, r.io()->len), static_cast<ssize_t>(r.io()->len));
  int64_t res = 0;
  EXPECT_EQ(reap(c, 1, &res), 1);
  EXPECT_EQ(res, getppid());
  EXPECT_EQ(aio2_destroy(c), 0);
}

// Each submit-time site: the request is refused with -ENOMEM and produces
// no event; the same request then goes through.
TEST(FaultInject, SubmitSitesRefuseWithEnomem) {
  for (site s : {site::slots_chunk, site::attr_bytes, site::attr_state, site::event_bytes}) {
    int err = 0;
    aio2_ctx *c = setup(AIO2_POLICY_POOL, 0, &err);
    ASSERT_EQ(err, 0);
    getppid_req r(9, s == site::event_bytes ? 16 : 1);
    aio2_fault_arm_site(idx(s), 1);
    EXPECT_EQ(aio2_submit(c, r.b, r.io()->len), -ENOMEM) << aio2::fault::site_name(s);
    EXPECT_EQ(failed_at(s), 1u) << aio2::fault::site_name(s);
    aio2_fault_disarm();
    int64_t res = 0;
    EXPECT_EQ(reap(c, 0, &res), 0) << "an event for a refused request";
    ASSERT_EQ(aio2_submit(c, r.b, r.io()->len), static_cast<ssize_t>(r.io()->len));
    EXPECT_EQ(reap(c, 1, &res), 1) << aio2::fault::site_name(s);
    EXPECT_EQ(res, getppid());
    EXPECT_EQ(aio2_destroy(c), 0);
  }
}

// In a batch, the request that meets the failure stops the submit there:
// the ones before it are accepted (and complete), the rest are not.
TEST(FaultInject, BatchStopsAtTheFailingRequest) {
  int err = 0;
  aio2_ctx *c = setup(AIO2_POLICY_POOL, 0, &err);
  ASSERT_EQ(err, 0);
  alignas(8) unsigned char batch[4 * 128];
  size_t bytes = 0;
  for (int i = 0; i < 4; i++) {
    getppid_req r(static_cast<uint64_t>(i));
    std::memcpy(batch + bytes, r.b, r.io()->len);
    bytes += r.io()->len;
  }
  const size_t one = bytes / 4;
  aio2_fault_arm_site(idx(site::attr_bytes), 3);
  EXPECT_EQ(aio2_submit(c, batch, bytes), static_cast<ssize_t>(2 * one));
  aio2_fault_disarm();
  int64_t res = 0;
  EXPECT_EQ(reap(c, 2, &res), 2);
  EXPECT_EQ(aio2_destroy(c), 0);
}

TEST(FaultInject, WorkerThatCannotStartCompletesWithEagain) {
  int err = 0;
  aio2_ctx *c = setup(AIO2_POLICY_POOL, 0, &err);
  ASSERT_EQ(err, 0);
  getppid_req r(3);
  aio2_fault_arm_site(idx(site::thread_create), 1);
  ASSERT_EQ(aio2_submit(c, r.b, r.io()->len), static_cast<ssize_t>(r.io()->len));
  aio2_fault_disarm();
  int64_t res = 0;
  EXPECT_EQ(reap(c, 1, &res), 1);
  EXPECT_EQ(res, -EAGAIN);
  EXPECT_EQ(aio2_destroy(c), 0);
}

#ifdef AIO2_POSIX_LIB_PATH
// libaio2-posix.so with every one of its allocations failing (the injector
// inside it armed from the environment as it loads): lio_listio queues
// nothing, answers EAGAIN and says so in every control block, where POSIX
// tells the caller to look.
TEST(FaultInject, ListioWithoutMemoryMarksEveryControlBlock) {
  setenv("AIO2_FAULT_INJECT", "1000000", 1);
  void *dl = dlopen(AIO2_POSIX_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
  unsetenv("AIO2_FAULT_INJECT");
  ASSERT_NE(dl, nullptr) << dlerror();
  auto listio = reinterpret_cast<int (*)(int, struct aiocb *const[], int, struct sigevent *)>(
      dlsym(dl, "lio_listio"));
  auto error = reinterpret_cast<int (*)(const struct aiocb *)>(dlsym(dl, "aio_error"));
  auto ret = reinterpret_cast<ssize_t (*)(struct aiocb *)>(dlsym(dl, "aio_return"));
  ASSERT_TRUE(listio && error && ret);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  char b[2][8];
  struct aiocb cbs[2] {};
  struct aiocb *list[2];
  for (int i = 0; i < 2; i++) {
    cbs[i].aio_fildes = fds[0];
    cbs[i].aio_buf = b[i];
    cbs[i].aio_nbytes = sizeof b[i];
    cbs[i].aio_lio_opcode = LIO_READ;
    list[i] = &cbs[i];
  }
  errno = 0;
  EXPECT_EQ(listio(LIO_NOWAIT, list, 2, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(error(&cbs[i]), EAGAIN) << i;
    EXPECT_EQ(ret(&cbs[i]), -1) << i;
  }
  close(fds[0]);
  close(fds[1]);
}
#endif

}  // namespace
