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
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

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
// Every container growth in libaio2-posix.so (the compat_container site:
// a descriptor's entry, aio_cancel's lists, the SIGEV_THREAD queue, the
// request chunks' list, lio_listio's room) failed in turn, the nth call in
// the nth run, each run a fresh process (the library's injector is armed
// from the environment as it loads; a std::bad_alloc there used to leave
// the C entry points by exception). The child runs one fixed workload and
// checks it: each call answers 0 or -1 with EAGAIN; each accepted request
// completes once with its bytes (a pipe read: its byte, or ECANCELED); a
// refused one says EAGAIN in its control block; the SIGEV_THREAD
// notification of an accepted read runs exactly once; aio_cancel answers
// AIO_CANCELED, AIO_NOTCANCELED, AIO_ALLDONE or -1 with EAGAIN.
struct posix_calls {
  int (*read)(struct aiocb *);
  int (*error)(const struct aiocb *);
  ssize_t (*ret)(struct aiocb *);
  int (*cancel)(int, struct aiocb *);
  int (*listio)(int, struct aiocb *const[], int, struct sigevent *);
};

std::atomic<int> g_notified{0};
void on_notify(union sigval) { g_notified.fetch_add(1); }

// Waits up to 10 s for `cb` to leave EINPROGRESS; its aio_error.
int wait_done(const posix_calls &c, struct aiocb *cb) {
  for (int i = 0; i < 10000; i++) {
    const int e = c.error(cb);
    if (e != EINPROGRESS) return e;
    usleep(1000);
  }
  return EINPROGRESS;
}

TEST(FaultInject, DISABLED_PosixContainerChild) {
  void *dl = dlopen(AIO2_POSIX_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  posix_calls c{};
  c.read = reinterpret_cast<int (*)(struct aiocb *)>(dlsym(dl, "aio_read"));
  c.error = reinterpret_cast<int (*)(const struct aiocb *)>(dlsym(dl, "aio_error"));
  c.ret = reinterpret_cast<ssize_t (*)(struct aiocb *)>(dlsym(dl, "aio_return"));
  c.cancel = reinterpret_cast<int (*)(int, struct aiocb *)>(dlsym(dl, "aio_cancel"));
  c.listio = reinterpret_cast<int (*)(int, struct aiocb *const[], int, struct sigevent *)>(
      dlsym(dl, "lio_listio"));
  ASSERT_TRUE(c.read && c.error && c.ret && c.cancel && c.listio);
  char path[] = "/tmp/aio2_posix_fault_XXXXXX";
  const int wfd = mkstemp(path);
  ASSERT_GE(wfd, 0);
  unlink(path);
  char data[64];
  for (size_t i = 0; i < sizeof data; i++) data[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(pwrite(wfd, data, sizeof data, 0), static_cast<ssize_t>(sizeof data));
  // Three more descriptors of the file (three new entries) and a pipe.
  int fds[3];
  for (int &fd : fds) {
    fd = dup(wfd);
    ASSERT_GE(fd, 0);
  }
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int faults = 0;
  // An answer of a call that queues: 0, or -1 with EAGAIN (counted).
  auto queued = [&](int rc, struct aiocb *cb) {
    if (rc == 0) return true;
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(errno, EAGAIN);
    if (cb != nullptr) {
      EXPECT_EQ(c.error(cb), EAGAIN);
    }
    faults++;
    return false;
  };
  auto check_read = [&](struct aiocb *cb, size_t off, size_t len) {
    ASSERT_EQ(wait_done(c, cb), 0);
    ASSERT_EQ(c.ret(cb), static_cast<ssize_t>(len));
    EXPECT_EQ(std::memcmp(const_cast<void *>(cb->aio_buf), data + off, len), 0);
  };

  char b[6][16];
  struct aiocb cbs[6] {};
  for (int i = 0; i < 6; i++) {
    cbs[i].aio_fildes = fds[i < 2 ? i : 2];
    cbs[i].aio_buf = b[i];
    cbs[i].aio_nbytes = 16;
    cbs[i].aio_offset = 8 * i;
    cbs[i].aio_lio_opcode = LIO_READ;
  }
  // A read with a SIGEV_THREAD notification (the pool's queue), one more.
  cbs[0].aio_sigevent.sigev_notify = SIGEV_THREAD;
  cbs[0].aio_sigevent.sigev_notify_function = on_notify;
  const bool first = queued(c.read(&cbs[0]), &cbs[0]);
  const bool second = queued(c.read(&cbs[1]), &cbs[1]);
  // lio_listio(LIO_WAIT) of four reads on a third descriptor.
  struct aiocb *list[4] = {&cbs[2], &cbs[3], &cbs[4], &cbs[5]};
  errno = 0;
  const int lrc = c.listio(LIO_WAIT, list, 4, nullptr);
  if (lrc != 0) {
    EXPECT_EQ(errno, EAGAIN);
    faults++;
  }
  // A pipe read that blocks, cancelled.
  char pb = 0;
  struct aiocb pcb {};
  pcb.aio_fildes = p[0];
  pcb.aio_buf = &pb;
  pcb.aio_nbytes = 1;
  const bool piped = queued(c.read(&pcb), &pcb);
  if (piped) {
    errno = 0;
    const int crc = c.cancel(p[0], &pcb);
    if (crc == -1) {
      EXPECT_EQ(errno, EAGAIN);
      faults++;
    } else {
      EXPECT_TRUE(crc == AIO_CANCELED || crc == AIO_NOTCANCELED || crc == AIO_ALLDONE) << crc;
    }
    // Whatever the cancel did, the read ends: with the byte or ECANCELED.
    ASSERT_EQ(write(p[1], "x", 1), 1);
    const int e = wait_done(c, &pcb);
    if (e == 0) {
      EXPECT_EQ(c.ret(&pcb), 1);
      EXPECT_EQ(pb, 'x');
    } else {
      EXPECT_EQ(e, ECANCELED);
      EXPECT_EQ(c.ret(&pcb), -1);
    }
  }

  if (first) check_read(&cbs[0], 0, 16);
  if (second) check_read(&cbs[1], 8, 16);
  for (int i = 2; i < 6; i++) {
    const int e = wait_done(c, &cbs[i]);
    if (e == EAGAIN) {
      EXPECT_NE(lrc, 0) << i;  // only a failed call leaves a refused entry
      EXPECT_EQ(c.ret(&cbs[i]), -1);
      continue;
    }
    check_read(&cbs[i], 8 * static_cast<size_t>(i), 16);
  }
  // The notification of an accepted read, once (a pool thread, or the
  // completing thread when it could not be queued).
  for (int i = 0; i < 10000 && first && g_notified.load() == 0; i++) usleep(1000);
  usleep(first ? 20000 : 0);
  EXPECT_EQ(g_notified.load(), first ? 1 : 0);
  std::printf("posix-fault-child faults=%d\n", faults);
  for (int fd : fds) close(fd);
  close(wfd);
  close(p[0]);
  close(p[1]);
}

// Runs the child above in a new process with AIO2_FAULT_INJECT=`arming`
// ("" for none); its exit status, and in *faults the calls it saw refused.
int run_posix_child(const std::string &arming, int *faults) {
  int out[2];
  if (pipe(out) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    if (arming.empty()) unsetenv("AIO2_FAULT_INJECT");
    else setenv("AIO2_FAULT_INJECT", arming.c_str(), 1);
    execl("/proc/self/exe", "fault_inject_test", "--gtest_also_run_disabled_tests",
          "--gtest_filter=FaultInject.DISABLED_PosixContainerChild", static_cast<char *>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const size_t at = text.find("posix-fault-child faults=");
  *faults = at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 25);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || *faults < 0)
    std::fprintf(stderr, "child (%s) failed:\n%s\n", arming.c_str(), text.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(FaultInject, PosixContainerGrowthFailsWithEagainAndLosesNothing) {
  int faults = -1;
  ASSERT_EQ(run_posix_child("", &faults), 0);
  EXPECT_EQ(faults, 0);
  int runs_refused = 0;
  for (int nth = 1; nth <= 12; nth++) {
    ASSERT_EQ(run_posix_child("site:compat_container," + std::to_string(nth), &faults), 0) << nth;
    if (faults > 0) runs_refused++;
  }
  // Each container a call needs: the three descriptors' entries, the
  // pipe's, aio_cancel's lists (the SIGEV_THREAD queue, the request
  // chunks' list and lio_listio's room fail without a refusal to see:
  // run inline, taken from the next chunk, refused before the first).
  EXPECT_GE(runs_refused, 5);
}
#endif

}  // namespace
