// SPDX-License-Identifier: MIT
// The contract where it is easy to get wrong, one rule per test: the
// eventfd's count on every path (inline, pool, io_uring with its cancel and
// its nowait-first retry, the overflow list, LEGACY contexts); aio2_destroy
// beside threads blocked in aio2_getevents and threads submitting;
// aio2_getevents interrupted by a signal, with and without SA_RESTART, on
// both waits; contexts inherited across fork(); and a context's event ring
// run across the 2^64 wrap of its positions, with every kind of reaper.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "core/test_hooks.h"
#include "exec/test_hooks.h"
#include "held_buffer.h"
#include "proc_util.h"
#include "test_util.h"

#if defined(__SANITIZE_THREAD__)
#define CONTRACT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONTRACT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CONTRACT_ASAN 1
#endif

namespace {

using aio2_test::ctx_ptr;
using aio2_test::event_copy;
using aio2_test::make_ctx;
using aio2_test::make_policy_ctx;
using aio2_test::req_buf;
using aio2_test::wait_events;

using aio2_test::req;

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }

// What the eventfd holds now (it is non-blocking): 0 when nothing.
uint64_t read_now(int efd) {
  uint64_t v = 0;
  if (read(efd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
    EXPECT_EQ(errno, EAGAIN);
    return 0;
  }
  return v;
}

// Reads the eventfd until it has counted `want`, failing the test when 10 s
// pass with nothing new (a liveness bound, not a measurement). Returns the
// total read.
uint64_t count_until(int efd, uint64_t want) {
  uint64_t total = 0;
  while (total < want) {
    pollfd pfd{efd, POLLIN, 0};
    if (poll(&pfd, 1, 10000) != 1) {
      ADD_FAILURE() << "the eventfd counted " << total << " of " << want << " events";
      break;
    }
    total += read_now(efd);
  }
  return total;
}

struct pipe_fds {
  int r = -1, w = -1;
  pipe_fds() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    r = fds[0];
    w = fds[1];
  }
  ~pipe_fds() {
    close(r);
    close(w);
  }
  void put8() const {
    const uint64_t v = 0x0102030405060708ull;
    EXPECT_EQ(write(w, &v, sizeof v), 8);
  }
};

bool has_uring(aio2_ctx *c) {
  aio2_params p{};
  (void)c;
  p.size = sizeof p;
  aio2_ctx *probe = nullptr;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &probe) != 0) return false;
  const bool yes = p.features & AIO2_FEAT_URING;
  aio2_destroy(probe);
  return yes;
}

aio2_params eventfd_params() {
  aio2_params p{};
  p.flags = AIO2_SETUP_EVENTFD;
  return p;
}

// ---- the eventfd: one count per event, on every path -------------------------

TEST(EventfdCount, InlineEventsCountOneEachBeforeSubmitReturns) {
  auto c = make_policy_ctx(AIO2_POLICY_INLINE, eventfd_params());
  const int efd = aio2_eventfd(c.get());
  ASSERT_GE(efd, 0);
  aio2_iocb five[5];
  for (uint64_t i = 0; i < 5; i++) five[i] = req(SYS_getppid, i);
  ASSERT_EQ(aio2_submit(c.get(), five, sizeof five), 5 * 72);
  EXPECT_EQ(read_now(efd), 5u) << "five inline events, five counts, written by the submit";
  EXPECT_EQ(wait_events(c.get(), 5).size(), 5u);
  EXPECT_EQ(read_now(efd), 0u) << "nothing more after the events are reaped";
}

TEST(EventfdCount, PoolEventsCountOneEach) {
  auto c = make_policy_ctx(AIO2_POLICY_POOL, eventfd_params());
  const int efd = aio2_eventfd(c.get());
  ASSERT_GE(efd, 0);
  aio2_iocb five[5];
  for (uint64_t i = 0; i < 5; i++) five[i] = req(SYS_getppid, i);
  ASSERT_EQ(aio2_submit(c.get(), five, sizeof five), 5 * 72);
  EXPECT_EQ(count_until(efd, 5), 5u);
  EXPECT_EQ(wait_events(c.get(), 5).size(), 5u);
  EXPECT_EQ(read_now(efd), 0u);
}

TEST(EventfdCount, OverflowedEventsCountOneEach) {
  aio2_params p = eventfd_params();
  p.ring_bytes = 4096;  // 170 plain events; the rest go to the overflow list
  auto c = make_policy_ctx(AIO2_POLICY_INLINE, p);
  const int efd = aio2_eventfd(c.get());
  constexpr unsigned kN = 1000;
  std::vector<aio2_iocb> reqs;
  for (unsigned i = 0; i < kN; i++) reqs.push_back(req(SYS_getppid, i));
  ASSERT_EQ(aio2_submit(c.get(), reqs.data(), kN * sizeof(aio2_iocb)),
            static_cast<ssize_t>(kN * 72));
  EXPECT_TRUE(aio2_ring_owner_flags(aio2_ring_get(c.get())) & AIO2_RING_OVERFLOW);
  EXPECT_EQ(read_now(efd), kN) << "events on the overflow list count too";
  EXPECT_EQ(wait_events(c.get(), kN).size(), kN);
  EXPECT_EQ(read_now(efd), 0u);
}

TEST(EventfdCount, UringEventsCountOneEachAndACancelOne) {
  auto c = make_policy_ctx(AIO2_POLICY_URING, eventfd_params());
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  const int efd = aio2_eventfd(c.get());
  pipe_fds pp;
  uint64_t sink[3] = {};
  std::vector<req_buf> reads;
  for (uint64_t i = 0; i < 3; i++) {
    reads.emplace_back(SYS_read, i, static_cast<uint64_t>(pp.r), u(&sink[i]), 8);
    reads.back().attr(AIO2_ATTR_EXECUTOR);
    ASSERT_EQ(aio2_submit(c.get(), reads.back().io(), reads.back().len()), reads.back().len());
  }
  const int rc = aio2_cancel(c.get(), 1);
  EXPECT_TRUE(rc == 0 || rc == -EALREADY) << rc;
  EXPECT_EQ(count_until(efd, 1), 1u) << "the cancelled read's event";
  pp.put8();
  pp.put8();
  EXPECT_EQ(count_until(efd, 2), 2u);
  unsigned cancelled = 0;
  for (const auto &e : wait_events(c.get(), 3)) {
    const auto *ev = reinterpret_cast<const aio2_event *>(e.data());
    event_copy copy;
    copy.words.resize((ev->len + 7) / 8);
    std::memcpy(copy.words.data(), ev, ev->len);
    EXPECT_EQ(copy.path(), static_cast<uint32_t>(AIO2_PATH_URING));
    if (ev->user_data == 1) {
      cancelled++;
      EXPECT_TRUE(ev->res == -ECANCELED || ev->res == -EINTR) << ev->res;
    } else {
      EXPECT_EQ(ev->res, 8);
    }
  }
  EXPECT_EQ(cancelled, 1u);
  EXPECT_EQ(read_now(efd), 0u) << "aio2's own io_uring entries count nothing";
}

TEST(EventfdCount, UringNowaitFirstReadCountsOnceWhateverItsFirstTryFound) {
  auto c = make_policy_ctx(AIO2_POLICY_URING, eventfd_params());
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  const int efd = aio2_eventfd(c.get());
  // A file in the build tree (a disk file system where the tree is on one),
  // written, synced and dropped from the page cache, so that the RWF_NOWAIT
  // first try finds it missing where the kernel lets it go.
  char path[] = "contract_eventfd_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  std::vector<char> data(1 << 20, 'x');
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(fsync(fd), 0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::vector<char> buf(data.size());
  req_buf r(SYS_pread64, 7, static_cast<uint64_t>(fd), u(buf.data()), buf.size(), 0);
  r.attr(AIO2_ATTR_CACHE).attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  EXPECT_EQ(count_until(efd, 1), 1u);
  const auto evs = wait_events(c.get(), 1);
  ASSERT_EQ(evs.size(), 1u);
  event_copy e;
  e.words.resize((evs[0].size() + 7) / 8);
  std::memcpy(e.words.data(), evs[0].data(), evs[0].size());
  EXPECT_EQ(e.res(), static_cast<int64_t>(buf.size()));
  const auto cache = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  RecordProperty("cache_outcome", static_cast<int>(cache.outcome));
  EXPECT_EQ(read_now(efd), 0u) << "one count for the read, none for its first try (outcome "
                               << cache.outcome << ")";
  close(fd);
}

TEST(EventfdCount, WaitingOnTheEventfdAloneSeesUringEvents) {
  // A program that never calls aio2_getevents: the collector thread brings
  // io_uring's completions to the ring and counts them.
  auto c = make_policy_ctx(AIO2_POLICY_URING, eventfd_params());
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  const int efd = aio2_eventfd(c.get());
  pipe_fds pp;
  uint64_t sink = 0;
  const aio2_iocb rd = req(SYS_read, 3, static_cast<uint64_t>(pp.r), u(&sink), 8);
  ASSERT_EQ(aio2_submit(c.get(), &rd, sizeof rd), 72);
  EXPECT_EQ(read_now(efd), 0u);
  pp.put8();
  EXPECT_EQ(count_until(efd, 1), 1u);
  alignas(8) unsigned char buf[256];
  aio2_ring *ring = aio2_ring_get(c.get());
  const int64_t n = aio2_reap_events(ring, buf, sizeof buf);
  ASSERT_EQ(n, static_cast<int64_t>(sizeof(aio2_event))) << "the event is in the ring already";
  const auto *ev = reinterpret_cast<const aio2_event *>(buf);
  EXPECT_EQ(ev->user_data, 3u);
  EXPECT_EQ(ev->res, 8);
}

TEST(EventfdCount, LegacyContextCountsOneEach) {
  aio2_params p = eventfd_params();
  p.type = AIO2_CTX_LEGACY;
  p.max_inflight = 16;
  auto c = make_ctx(p);
  const int efd = aio2_eventfd(c.get());
  ASSERT_GE(efd, 0);
  char path[] = "/tmp/contract_legacy_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ASSERT_EQ(write(fd, "0123456789abcdef", 16), 16);
  char bufs[5][16];
  iocb cbs[5] = {};
  iocb *list[5];
  for (int i = 0; i < 5; i++) {
    cbs[i].aio_data = static_cast<uint64_t>(i);
    cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
    cbs[i].aio_fildes = static_cast<uint32_t>(fd);
    cbs[i].aio_buf = u(bufs[i]);
    cbs[i].aio_nbytes = 16;
    list[i] = &cbs[i];
  }
  ASSERT_EQ(aio2_legacy_submit(c.get(), 5, list), 5);
  EXPECT_EQ(count_until(efd, 5), 5u);
  io_event evs[5];
  const timespec ts{10, 0};
  EXPECT_EQ(aio2_legacy_getevents(c.get(), 5, 5, evs, &ts, nullptr), 5);
  for (const io_event &e : evs) EXPECT_EQ(e.res, 16);
  EXPECT_EQ(read_now(efd), 0u);
  close(fd);
}

// ---- aio2_destroy beside other calls -------------------------------------------

TEST(DestroyConcurrently, WakesThreadsBlockedInGeteventsWithEbadf) {
  auto owned = make_ctx();
  aio2_ctx *c = owned.release();
  pipe_fds pool_pipe, uring_pipe;
  uint64_t sink[2] = {};
  // Something in flight on the pool and, where there is io_uring, on it
  // (then one of the waiters holds the io_uring waiter's role, in ppoll).
  req_buf on_pool(SYS_read, 1, static_cast<uint64_t>(pool_pipe.r), u(&sink[0]), 8);
  on_pool.path(AIO2_POLICY_POOL);
  ASSERT_EQ(aio2_submit(c, on_pool.io(), on_pool.len()), on_pool.len());
  req_buf on_uring(SYS_read, 2, static_cast<uint64_t>(uring_pipe.r), u(&sink[1]), 8);
  on_uring.path(AIO2_POLICY_URING);
  ASSERT_EQ(aio2_submit(c, on_uring.io(), on_uring.len()), on_uring.len());
  constexpr int kWaiters = 3;
  std::atomic<int> entered{0};
  std::atomic<long> rcs[kWaiters];
  std::vector<std::thread> ts;
  for (int i = 0; i < kWaiters; i++) {
    rcs[i] = 1;
    ts.emplace_back([&, i] {
      alignas(8) unsigned char buf[256];
      entered.fetch_add(1);
      rcs[i] = aio2_getevents(c, 1, buf, sizeof buf, nullptr);
    });
  }
  while (entered.load() < kWaiters) std::this_thread::yield();
  // Let them reach their waits (a thread that is late gets -EBADF on entry,
  // which is the same answer).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(aio2_destroy(c), 0);
  for (auto &t : ts) t.join();
  for (int i = 0; i < kWaiters; i++) EXPECT_EQ(rcs[i].load(), -EBADF) << "waiter " << i;
  EXPECT_EQ(aio2_destroy(c), -EBADF);
}

TEST(DestroyConcurrently, WakesALegacyWaiterWithTheKernelsEinval) {
  aio2_params p{};
  p.type = AIO2_CTX_LEGACY;
  p.max_inflight = 8;
  auto owned = make_ctx(p);
  aio2_ctx *c = owned.release();
  std::atomic<bool> entered{false};
  std::atomic<long> rc{1};
  std::thread waiter([&] {
    io_event ev[1];
    entered = true;
    rc = aio2_legacy_getevents(c, 1, 1, ev, nullptr, nullptr);
  });
  while (!entered.load()) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(aio2_destroy(c), 0);
  waiter.join();
  // -EINVAL woken in its wait, or -EBADF when it came too late to wait.
  EXPECT_TRUE(rc.load() == -EINVAL || rc.load() == -EBADF) << rc.load();
}

TEST(DestroyConcurrently, WhileThreadsSubmitAndReap) {
  auto owned = make_ctx();
  aio2_ctx *c = owned.release();
  constexpr int kThreads = 3;
  std::atomic<uint64_t> accepted{0};
  std::atomic<int> odd{0};  // answers other than a whole batch, -EAGAIN or -EBADF
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      aio2_iocb batch[8];
      for (uint64_t i = 0; i < 8; i++)
        batch[i] = req(i % 2 ? SYS_getppid : SYS_gettid, static_cast<uint64_t>(t) << 32 | i);
      batch[7].flags = AIO2_IOCB_POLICY(AIO2_POLICY_POOL);
      alignas(8) unsigned char buf[4096];
      const timespec zero{0, 0};
      for (;;) {
        const ssize_t n = aio2_submit(c, batch, sizeof batch);
        if (n == -EBADF) break;
        // Whole requests, or none and -EAGAIN at the in-flight limit.
        if (n > 0 && n % 72 == 0) accepted.fetch_add(static_cast<uint64_t>(n) / 72);
        else if (n != -EAGAIN) odd.fetch_add(1);
        const ssize_t g = aio2_getevents(c, 0, buf, sizeof buf, &zero);
        if (g == -EBADF) break;
        if (g < 0) odd.fetch_add(1);
      }
    });
  }
  while (accepted.load() < 2000) std::this_thread::yield();
  EXPECT_EQ(aio2_destroy(c), 0);
  for (auto &t : ts) t.join();
  EXPECT_EQ(odd.load(), 0);
  EXPECT_EQ(aio2_destroy(c), -EBADF);
}

// ---- aio2_getevents and signals ----------------------------------------------------

std::atomic<int> g_handled{0};
void on_usr1(int) { g_handled.fetch_add(1, std::memory_order_relaxed); }

struct usr1_handler {
  struct sigaction old {};
  explicit usr1_handler(bool restart) {
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  }
  ~usr1_handler() { sigaction(SIGUSR1, &old, nullptr); }
};

enum class wait_kind { futex, uring };

struct eintr_case {
  wait_kind kind;
  bool restart;
};

class GeteventsSignal : public ::testing::TestWithParam<eintr_case> {};

// Sends SIGUSR1 to `waiter` until it says it is `done` (a signal sent
// before the thread sleeps is handled before it and does not count), then
// joins it. The pipe's read is completed after 10 s, so that a call that
// never returns fails the test instead of hanging it; returns whether that
// had to be done.
static bool signal_until_done(std::thread &waiter, const std::atomic<bool> &done, pipe_fds &pp) {
  const auto t0 = std::chrono::steady_clock::now();
  bool completed = false;
  while (!done.load()) {
    pthread_kill(waiter.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!completed && std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10)) {
      pp.put8();
      completed = true;
    }
  }
  waiter.join();
  return completed;
}

TEST_P(GeteventsSignal, AnswersEintrBeforeAnyEvent) {
  const eintr_case k = GetParam();
  // A read blocked on an empty pipe: on the pool (reapers wait on the futex)
  // or on io_uring (one reaper waits in ppoll on its descriptor).
  auto c = make_policy_ctx(k.kind == wait_kind::uring ? AIO2_POLICY_URING : AIO2_POLICY_POOL);
  if (k.kind == wait_kind::uring && !has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  pipe_fds pp;
  uint64_t sink = 0;
  req_buf rd(SYS_read, 5, static_cast<uint64_t>(pp.r), u(&sink), 8);
  rd.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), rd.io(), rd.len()), rd.len());
  usr1_handler h(k.restart);
  std::atomic<bool> done{false};
  std::atomic<long> rc{1};
  std::thread waiter([&] {
    alignas(8) unsigned char buf[256];
    rc = aio2_getevents(c.get(), 1, buf, sizeof buf, nullptr);
    done = true;
  });
  const bool completed = signal_until_done(waiter, done, pp);
  EXPECT_FALSE(completed) << "aio2_getevents went on waiting through the signals";
  EXPECT_EQ(rc.load(), -EINTR);
  EXPECT_GT(g_handled.load(), 0);
  // The request is untouched by the interruption: its one event comes.
  if (!completed) pp.put8();
  const auto evs = wait_events(c.get(), 1);
  ASSERT_EQ(evs.size(), 1u);
  event_copy e;
  e.words.resize((evs[0].size() + 7) / 8);
  std::memcpy(e.words.data(), evs[0].data(), evs[0].size());
  EXPECT_EQ(e.res(), 8);
  EXPECT_EQ(e.path(), k.kind == wait_kind::uring ? static_cast<uint32_t>(AIO2_PATH_URING)
                                                  : static_cast<uint32_t>(AIO2_PATH_POOL));
}

TEST_P(GeteventsSignal, ReturnsWhatItTookWhenInterruptedAfterIt) {
  const eintr_case k = GetParam();
  auto c = make_policy_ctx(k.kind == wait_kind::uring ? AIO2_POLICY_URING : AIO2_POLICY_POOL);
  if (k.kind == wait_kind::uring && !has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  pipe_fds pp;
  uint64_t sink = 0;
  // One event ready, and one that never comes while the call waits for two.
  const aio2_iocb now = req(SYS_getppid, 1);
  ASSERT_EQ(aio2_submit(c.get(), &now, sizeof now), 72);
  const aio2_iocb later = req(SYS_read, 2, static_cast<uint64_t>(pp.r), u(&sink), 8);
  ASSERT_EQ(aio2_submit(c.get(), &later, sizeof later), 72);
  // The first event is in the ring before the call starts, so the call
  // takes it before any signal can find it waiting.
  aio2_ring *ring = aio2_ring_get(c.get());
  const auto t_ready = std::chrono::steady_clock::now();
  while (__atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE) == __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE)) {
    ASSERT_LT(std::chrono::steady_clock::now() - t_ready, std::chrono::seconds(10));
    std::this_thread::yield();
  }
  usr1_handler h(k.restart);
  std::atomic<bool> done{false};
  std::atomic<long> rc{1};
  std::thread waiter([&] {
    alignas(8) unsigned char buf[256];
    rc = aio2_getevents(c.get(), 2, buf, sizeof buf, nullptr);
    done = true;
  });
  const bool completed = signal_until_done(waiter, done, pp);
  EXPECT_FALSE(completed) << "aio2_getevents went on waiting through the signals";
  EXPECT_EQ(rc.load(), static_cast<long>(sizeof(aio2_event))) << "the event it had taken";
  if (!completed) pp.put8();
  EXPECT_EQ(wait_events(c.get(), 1).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Waits, GeteventsSignal,
    ::testing::Values(eintr_case{wait_kind::futex, false}, eintr_case{wait_kind::futex, true},
                      eintr_case{wait_kind::uring, false}, eintr_case{wait_kind::uring, true}),
    [](const ::testing::TestParamInfo<eintr_case> &i) {
      return std::string(i.param.kind == wait_kind::uring ? "Uring" : "Futex") +
             (i.param.restart ? "SaRestart" : "NoSaRestart");
    });

// ---- aio2_cancel on every route ------------------------------------------------------

// The one event of `ud` among the next `n` events; a failure when there is
// not exactly one.
event_copy the_event(aio2_ctx *c, unsigned n, uint64_t ud) {
  event_copy out;
  unsigned found = 0;
  for (const auto &e : wait_events(c, n)) {
    const auto *ev = reinterpret_cast<const aio2_event *>(e.data());
    if (ev->user_data != ud) continue;
    found++;
    out.words.assign((ev->len + 7) / 8, 0);
    std::memcpy(out.words.data(), ev, ev->len);
  }
  EXPECT_EQ(found, 1u) << "events of " << ud;
  return out;
}

// Nothing more comes: every request had exactly one event.
void expect_no_more_events(aio2_ctx *c) {
  alignas(8) unsigned char buf[256];
  const timespec zero{0, 0};
  EXPECT_EQ(aio2_getevents(c, 0, buf, sizeof buf, &zero), 0);
}

// A context whose one bounded worker is kept busy by a read of an empty
// pipe until release() writes to it.
struct busy_worker {
  pipe_fds pp;
  uint64_t sink = 0;
  void occupy(aio2_ctx *c) {
    aio2_iocb r = req(SYS_read, 1000, static_cast<uint64_t>(pp.r), u(&sink), 8);
    r.flags = AIO2_IOCB_BOUNDED | AIO2_IOCB_POLICY(AIO2_POLICY_POOL);
    ASSERT_EQ(aio2_submit(c, &r, sizeof r), 72);
    const auto t0 = std::chrono::steady_clock::now();
    while (!aio2_test::thread_blocked_in(SYS_read, pp.r)) {
      ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void release() const { pp.put8(); }
};

TEST(CancelRoute, QueuedOnThePoolCompletesCanceledWithoutRunning) {
  aio2_params p{};
  p.bounded_workers = 1;
  auto c = make_policy_ctx(AIO2_POLICY_POOL, p);
  busy_worker busy;
  busy.occupy(c.get());
  ASSERT_FALSE(HasFatalFailure());
  aio2_iocb q = req(SYS_getppid, 2);
  q.flags = AIO2_IOCB_BOUNDED;
  ASSERT_EQ(aio2_submit(c.get(), &q, sizeof q), 72);
  EXPECT_EQ(aio2_cancel(c.get(), 2), 0);
  EXPECT_EQ(aio2_cancel(c.get(), 2), -ENOENT) << "it is no longer outstanding";
  const event_copy e = the_event(c.get(), 1, 2);
  EXPECT_EQ(e.res(), -ECANCELED);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, AIO2_EVENT_CANCELED);
  busy.release();
  EXPECT_EQ(the_event(c.get(), 1, 1000).res(), 8);
  expect_no_more_events(c.get());
}

TEST(CancelRoute, RunningOnThePoolIsInterrupted) {
  auto c = make_policy_ctx(AIO2_POLICY_POOL);
  pipe_fds pp;
  uint64_t sink = 0;
  const aio2_iocb r = req(SYS_read, 3, static_cast<uint64_t>(pp.r), u(&sink), 8);
  ASSERT_EQ(aio2_submit(c.get(), &r, sizeof r), 72);
  const auto t0 = std::chrono::steady_clock::now();
  while (!aio2_test::thread_blocked_in(SYS_read, pp.r)) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(aio2_cancel(c.get(), 3), -EALREADY);
  const event_copy e = the_event(c.get(), 1, 3);
  EXPECT_EQ(e.res(), -EINTR);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u) << "it ran";
  expect_no_more_events(c.get());
}

TEST(CancelRoute, WaitingOnIoUringIsCanceled) {
  auto c = make_policy_ctx(AIO2_POLICY_URING);
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  pipe_fds pp;
  uint64_t sink = 0;
  req_buf r(SYS_read, 4, static_cast<uint64_t>(pp.r), u(&sink), 8);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  // A read waiting for data on io_uring has not started its transfer: the
  // kernel cancels it.
  EXPECT_EQ(aio2_cancel(c.get(), 4), 0);
  const event_copy e = the_event(c.get(), 1, 4);
  EXPECT_EQ(e.res(), -ECANCELED);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, AIO2_EVENT_CANCELED);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_URING));
  pp.put8();
  uint64_t back = 0;
  EXPECT_EQ(read(pp.r, &back, sizeof back), 8) << "the cancelled read took nothing";
  expect_no_more_events(c.get());
}

// A stream socket pair: a read of `a` blocks until `b` writes.
struct socket_fds {
  int a = -1, b = -1;
  socket_fds() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~socket_fds() {
    close(a);
    close(b);
  }
};

TEST(CancelRoute, SocketReadRunningOnThePoolIsInterrupted) {
  auto c = make_policy_ctx(AIO2_POLICY_POOL);
  socket_fds sp;
  uint64_t sink = 0;
  const aio2_iocb r = req(SYS_read, 6, static_cast<uint64_t>(sp.a), u(&sink), 8);
  ASSERT_EQ(aio2_submit(c.get(), &r, sizeof r), 72);
  const auto t0 = std::chrono::steady_clock::now();
  while (!aio2_test::thread_blocked_in(SYS_read, sp.a)) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(aio2_cancel(c.get(), 6), -EALREADY);
  const event_copy e = the_event(c.get(), 1, 6);
  EXPECT_EQ(e.res(), -EINTR);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u) << "it ran";
  // The interrupted read took nothing: what is written next is still there.
  const uint64_t v = 42;
  ASSERT_EQ(write(sp.b, &v, sizeof v), 8);
  uint64_t back = 0;
  EXPECT_EQ(read(sp.a, &back, sizeof back), 8);
  EXPECT_EQ(back, v);
  expect_no_more_events(c.get());
}

TEST(CancelRoute, SocketReadWaitingOnIoUringIsCanceled) {
  auto c = make_policy_ctx(AIO2_POLICY_URING);
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  socket_fds sp;
  uint64_t sink = 0;
  req_buf r(SYS_read, 7, static_cast<uint64_t>(sp.a), u(&sink), 8);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  EXPECT_EQ(aio2_cancel(c.get(), 7), 0);
  const event_copy e = the_event(c.get(), 1, 7);
  EXPECT_EQ(e.res(), -ECANCELED);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, AIO2_EVENT_CANCELED);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_URING));
  const uint64_t v = 43;
  ASSERT_EQ(write(sp.b, &v, sizeof v), 8);
  uint64_t back = 0;
  EXPECT_EQ(read(sp.a, &back, sizeof back), 8) << "the cancelled read took nothing";
  EXPECT_EQ(back, v);
  expect_no_more_events(c.get());
}

TEST(CancelRoute, CompletedInlineIsNotFound) {
  auto c = make_policy_ctx(AIO2_POLICY_INLINE);
  const aio2_iocb r = req(SYS_getppid, 5);
  ASSERT_EQ(aio2_submit(c.get(), &r, sizeof r), 72);
  EXPECT_EQ(aio2_cancel(c.get(), 5), -ENOENT);
  const event_copy e = the_event(c.get(), 1, 5);
  EXPECT_EQ(e.res(), getppid());
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  expect_no_more_events(c.get());
}

// A file of `bytes` on the build tree's file system, written, synced and
// dropped from the page cache from `drop_from` on (the part before is
// read, so cached).
struct cold_file {
  int fd = -1;
  cold_file(size_t bytes, size_t drop_from) {
    char path[] = "contract_cold_XXXXXX";
    fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    unlink(path);
    std::vector<char> data(bytes, 'c');
    EXPECT_EQ(write(fd, data.data(), bytes), static_cast<ssize_t>(bytes));
    EXPECT_EQ(fsync(fd), 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (drop_from) {
      EXPECT_EQ(pread(fd, data.data(), drop_from, 0), static_cast<ssize_t>(drop_from));
      posix_fadvise(fd, static_cast<off_t>(drop_from), 0, POSIX_FADV_DONTNEED);
    }
  }
  ~cold_file() { close(fd); }
  // Bytes of its first `bytes` in the page cache now, by mincore(2) (which,
  // unlike a RWF_NOWAIT read, starts no readahead).
  ssize_t cached_now(size_t bytes) const {
    void *m = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return -errno;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> vec((bytes + page - 1) / page);
    ssize_t n = mincore(m, bytes, vec.data()) == 0 ? 0 : -errno;
    for (size_t i = 0; n >= 0 && i < vec.size(); i++) n += (vec[i] & 1) ? static_cast<ssize_t>(page) : 0;
    munmap(m, bytes);
    return n;
  }
};

// A context without io_uring whose one bounded worker is busy: a
// nowait-first read's rest waits in the pool's queue.
ctx_ptr split_ctx() {
  aio2_params p{};
  p.flags = AIO2_SETUP_NO_URING;
  p.bounded_workers = 1;
  return make_policy_ctx(AIO2_POLICY_AUTO, p);
}

TEST(CancelRoute, RestQueuedOnThePoolWithNothingReadCompletesCanceled) {
  constexpr size_t kBytes = 1 << 20;
  cold_file f(kBytes, 0);
  if (f.cached_now(kBytes) != 0) GTEST_SKIP() << "the page cache keeps this file";
  auto c = split_ctx();
  busy_worker busy;
  busy.occupy(c.get());
  ASSERT_FALSE(HasFatalFailure());
  std::vector<char> buf(kBytes);
  req_buf r(SYS_pread64, 6, static_cast<uint64_t>(f.fd), u(buf.data()), kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  const int rc = aio2_cancel(c.get(), 6);
  const event_copy e = the_event(c.get(), 1, 6);
  if (rc == -ENOENT && e.path() == AIO2_PATH_INLINE) {
    // The device filled the cache inside the RWF_NOWAIT try (a fast disk
    // finishes the readahead the try starts): it completed inline, and so
    // it is not found, as that route says.
    EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
    busy.release();
    GTEST_SKIP() << "the first try read it all; the rest was never queued";
  }
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(e.res(), -ECANCELED);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, AIO2_EVENT_CANCELED);
  busy.release();
  EXPECT_EQ(the_event(c.get(), 1, 1000).res(), 8);
  expect_no_more_events(c.get());
}

TEST(CancelRoute, RestQueuedOnThePoolAfterAPartialFirstTryKeepsTheBytesRead) {
  constexpr size_t kBytes = 1 << 20, kCached = kBytes / 2;
  cold_file f(kBytes, kCached);
  const ssize_t cached = f.cached_now(kBytes);
  if (cached <= 0 || cached >= static_cast<ssize_t>(kBytes))
    GTEST_SKIP() << "could not leave the file part cached (" << cached << ")";
  auto c = split_ctx();
  busy_worker busy;
  busy.occupy(c.get());
  ASSERT_FALSE(HasFatalFailure());
  std::vector<char> buf(kBytes);
  req_buf r(SYS_pread64, 7, static_cast<uint64_t>(f.fd), u(buf.data()), kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  const int rc = aio2_cancel(c.get(), 7);
  const event_copy e = the_event(c.get(), 1, 7);
  if (rc == -ENOENT && e.path() == AIO2_PATH_INLINE) {
    EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
    busy.release();
    GTEST_SKIP() << "the first try read it all; the rest was never queued";
  }
  EXPECT_EQ(rc, 0);
  // Like a read that stops part-way: the bytes the first try read.
  EXPECT_GT(e.res(), 0);
  EXPECT_LT(e.res(), static_cast<int64_t>(kBytes));
  EXPECT_EQ(e.res() % 4096, 0);
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  EXPECT_EQ(buf[0], 'c');
  busy.release();
  EXPECT_EQ(the_event(c.get(), 1, 1000).res(), 8);
  expect_no_more_events(c.get());
}

aio2_ctx *g_hook_ctx = nullptr;
std::atomic<int> g_hook_rc{1};
void cancel_in_the_window(uint64_t ud) { g_hook_rc = aio2_cancel(g_hook_ctx, ud); }

struct nowait_hook {
  explicit nowait_hook(aio2_ctx *c) {
    g_hook_ctx = c;
    g_hook_rc = 1;
    aio2::core::test_hooks::after_nowait_attempt.store(cancel_in_the_window);
  }
  ~nowait_hook() { aio2::core::test_hooks::after_nowait_attempt.store(nullptr); }
};

TEST(CancelRoute, BetweenTheFirstTryAndItsRestIsNotFoundAndTheReadFinishes) {
  constexpr size_t kBytes = 1 << 20;
  cold_file f(kBytes, 0);
  if (f.cached_now(kBytes) != 0) GTEST_SKIP() << "the page cache keeps this file";
  aio2_params p{};
  p.flags = AIO2_SETUP_NO_URING;
  auto c = make_policy_ctx(AIO2_POLICY_AUTO, p);
  std::vector<char> buf(kBytes);
  req_buf r(SYS_pread64, 8, static_cast<uint64_t>(f.fd), u(buf.data()), kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  {
    nowait_hook h(c.get());
    ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  }
  const event_copy e = the_event(c.get(), 1, 8);
  if (g_hook_rc.load() == 1 && e.path() == AIO2_PATH_INLINE)
    GTEST_SKIP() << "the first try read it all; there was no rest";
  // Inside aio2_submit the request is not outstanding yet: it is not found.
  EXPECT_EQ(g_hook_rc.load(), -ENOENT) << "the hook ran";
  EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_INLINE | AIO2_PATH_POOL));
  expect_no_more_events(c.get());
}

// ---- cancel while the kernel or a worker holds the request ----------------------------
//
// aio2_cancel answers -EALREADY for a request it finds but cannot stop,
// and the request then ends as if nobody had asked: all its bytes, one
// event. Each window is reached with a test hook (in the submitting thread
// before it harvests io_uring; on a worker before it runs a request) or a
// held_buffer (a worker waits inside the read's copy).

std::atomic<uint64_t> g_cancel_ud{0};
void cancel_now() { g_hook_rc = aio2_cancel(g_hook_ctx, g_cancel_ud.load()); }

// Sets before_uring_harvest to cancel `ud` while it is set.
struct uring_hook {
  uring_hook(aio2_ctx *c, uint64_t ud) {
    g_hook_ctx = c;
    g_hook_rc = 1;
    g_cancel_ud = ud;
    aio2::core::test_hooks::before_uring_harvest.store(cancel_now);
  }
  ~uring_hook() { aio2::core::test_hooks::before_uring_harvest.store(nullptr); }
};

// Sets before_pool_run to cancel `target` when the worker is about to run
// `when` (once).
std::atomic<uint64_t> g_pool_when{0};
void cancel_before_run(uint64_t ud) {
  if (ud != g_pool_when.load()) return;
  g_pool_when = 0;
  cancel_now();
}
struct pool_hook {
  // Waits until the hook has cancelled (a liveness bound of 10 s): until
  // then this thread must not call aio2_getevents, which would run the
  // queued work itself instead of the worker.
  static bool wait_ran() {
    for (int i = 0; i < 10000 && g_hook_rc.load() == 1; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return g_hook_rc.load() != 1;
  }
  pool_hook(aio2_ctx *c, uint64_t when, uint64_t target) {
    g_hook_ctx = c;
    g_hook_rc = 1;
    g_cancel_ud = target;
    g_pool_when = when;
    aio2::exec::test_hooks::before_pool_run.store(cancel_before_run);
  }
  ~pool_hook() { aio2::exec::test_hooks::before_pool_run.store(nullptr); }
};

bool all_bytes(const std::vector<char> &buf, char c) {
  for (char b : buf)
    if (b != c) return false;
  return true;
}

// A read of a cold 1 MiB file on a URING context, with attribute `attr`
// (and the executor's),
// cancelled inside aio2_submit after io_submit handed it to the kernel and
// before anything harvested it: aio2_cancel must answer -EALREADY, and its
// one event have every byte, without AIO2_EVENT_CANCELED. False (with a
// reason) when this machine cannot run it.
bool cold_read_cancelled_before_harvest(uint64_t ud, uint16_t attr, std::string *skip) {
  constexpr size_t kBytes = 1 << 20;
  cold_file f(kBytes, 0);
  if (f.cached_now(kBytes) != 0) return *skip = "the page cache keeps this file", false;
  auto c = make_policy_ctx(AIO2_POLICY_URING);
  if (!has_uring(c.get())) return *skip = "no io_uring here", false;
  std::vector<char> buf(kBytes);
  req_buf r(SYS_pread64, ud, static_cast<uint64_t>(f.fd), u(buf.data()), kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  if (attr != AIO2_ATTR_EXECUTOR) r.attr(attr);
  {
    uring_hook h(c.get(), ud);
    EXPECT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  }
  EXPECT_EQ(g_hook_rc.load(), -EALREADY) << "found, not stopped: its event is to come";
  const event_copy e = the_event(c.get(), 1, ud);
  EXPECT_NE(e.res(), -EAGAIN) << "a first try's own error leaked out";
  EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_URING));
  EXPECT_TRUE(all_bytes(buf, 'c'));
  expect_no_more_events(c.get());
  return true;
}

TEST(CancelRoute, ReadOnIoUringTheKernelCannotFindRunsToTheEnd) {
  // The kernel is reading it (a buffered read waiting for its pages, which
  // its cancel does not find: -ENOENT), or has posted its completion.
  // Either way it is on aio2's in-flight list, outstanding.
  std::string skip;
  if (!cold_read_cancelled_before_harvest(20, AIO2_ATTR_EXECUTOR, &skip)) GTEST_SKIP() << skip;
}

TEST(CancelRoute, NowaitAttemptOnIoUringCancelledReadsItsRestNotEAGAIN) {
  // The cache attribute makes io_uring's first try RWF_NOWAIT: on a cold
  // file it completes with -EAGAIN inside io_uring_enter, and the rest is
  // read by whoever harvests that completion: here the cancel, which
  // harvests it with the cancel asked.
  std::string skip;
  if (!cold_read_cancelled_before_harvest(21, AIO2_ATTR_CACHE, &skip)) GTEST_SKIP() << skip;
}

TEST(CancelRoute, ReadOnAnIoUringWorkerWaitingInItsCopyRunsToTheEnd) {
  auto c = make_policy_ctx(AIO2_POLICY_URING);
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  // io_uring reads the file on one of its workers, which then waits in the
  // copy into the held buffer: the read is under way in the kernel, and its
  // cancel is asked of a running request.
  aio2_test::worker_read_file f;
  ASSERT_TRUE(f.ok());
  aio2_test::held_buffer hb(4096);
  if (!hb.ok()) GTEST_SKIP() << hb.why();
  req_buf r(SYS_pread64, 28, static_cast<uint64_t>(f.fd), u(hb.data()), 4096, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  ASSERT_TRUE(hb.wait_touched()) << "the read never reached the held buffer";
  ASSERT_NE(hb.toucher(), static_cast<pid_t>(syscall(SYS_gettid))) << "it waits in aio2_submit";
  EXPECT_EQ(aio2_cancel(c.get(), 28), -EALREADY);
  hb.release();
  const event_copy e = the_event(c.get(), 1, 28);
  EXPECT_EQ(e.res(), f.size()) << "every byte";
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_URING));
  EXPECT_EQ(std::string(hb.data(), f.bytes.size()), f.bytes);
  EXPECT_FALSE(hb.auto_released());
  expect_no_more_events(c.get());
}

// A nowait-first read of a file whose first half is cached, on a context
// without io_uring and with one bounded worker: the attempt reads the first
// half in aio2_submit, the worker the rest.
struct split_read {
  static constexpr size_t kBytes = 1 << 20, kCached = kBytes / 2;
  cold_file f{kBytes, kCached};
  ctx_ptr c;
  std::string skip;
  split_read() {
    const ssize_t cached = f.cached_now(kBytes);
    if (cached <= 0 || cached >= static_cast<ssize_t>(kBytes))
      skip = "could not leave the file part cached (" + std::to_string(cached) + ")";
    aio2_params p{};
    p.flags = AIO2_SETUP_NO_URING;
    p.bounded_workers = 1;
    c = make_policy_ctx(AIO2_POLICY_AUTO, p);
  }
  // Checks the read's one event: every byte, not cancelled, in two parts.
  void expect_whole(uint64_t ud, const char *data) {
    const event_copy e = the_event(c.get(), 1, ud);
    EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes)) << "the rest ran to its end";
    EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
    EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_INLINE | AIO2_PATH_POOL));
    EXPECT_EQ(data[0], 'c');
    EXPECT_EQ(data[kBytes - 1], 'c');
  }
};

TEST(CancelRoute, RestTakenByAWorkerJustBeforeItsCallRunsToTheEnd) {
  split_read s;
  if (!s.skip.empty()) GTEST_SKIP() << s.skip;
  std::vector<char> buf(split_read::kBytes);
  req_buf r(SYS_pread64, 22, static_cast<uint64_t>(s.f.fd), u(buf.data()), split_read::kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  {
    // On the worker, between taking the rest and its call.
    pool_hook h(s.c.get(), 22, 22);
    ASSERT_EQ(aio2_submit(s.c.get(), r.io(), r.len()), r.len());
    const bool ran = pool_hook::wait_ran();
    const event_copy e = the_event(s.c.get(), 1, 22);
    if (!ran && e.path() == AIO2_PATH_INLINE)
      GTEST_SKIP() << "the first try read it all; there was no rest";
    EXPECT_EQ(g_hook_rc.load(), -EALREADY);
    EXPECT_EQ(e.res(), static_cast<int64_t>(split_read::kBytes)) << "the rest ran to its end";
    EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  }
  EXPECT_TRUE(all_bytes(buf, 'c'));
  expect_no_more_events(s.c.get());
}

TEST(CancelRoute, RestTakenBehindAnotherRequestRunsToTheEnd) {
  split_read s;
  if (!s.skip.empty()) GTEST_SKIP() << s.skip;
  // Two requests for the one bounded worker in one call: a plain pread
  // (the pool's), then the split read, whose rest joins it in the queue.
  // The worker takes both at once; when it is about to run the first, the
  // second is taken and not started.
  char first[64];
  std::vector<char> buf(split_read::kBytes);
  struct {
    aio2_iocb a;
    aio2_iocb b;
  } two{};
  two.a = req(SYS_pread64, 23, static_cast<uint64_t>(s.f.fd), u(first), sizeof first, 0);
  two.a.flags = AIO2_IOCB_POLICY(AIO2_POLICY_POOL);
  two.b = req(SYS_pread64, 24, static_cast<uint64_t>(s.f.fd), u(buf.data()), split_read::kBytes, 0);
  std::vector<int64_t> res;
  std::vector<uint64_t> uds;
  {
    pool_hook h(s.c.get(), 23, 24);
    ASSERT_EQ(aio2_submit(s.c.get(), &two, sizeof two), static_cast<ssize_t>(sizeof two));
    pool_hook::wait_ran();
    aio2_test::for_events(s.c.get(), 2, [&](const aio2_event *ev) {
      uds.push_back(ev->user_data);
      res.push_back(ev->res);
      EXPECT_EQ(ev->flags & AIO2_EVENT_CANCELED, 0u) << ev->user_data;
    });
  }
  ASSERT_EQ(uds.size(), 2u);
  if (g_hook_rc.load() == 1) GTEST_SKIP() << "the first try read it all; there was no rest";
  EXPECT_EQ(g_hook_rc.load(), -EALREADY) << "taken by the worker: it runs";
  for (size_t i = 0; i < uds.size(); i++)
    EXPECT_EQ(res[i], uds[i] == 23 ? static_cast<int64_t>(sizeof first)
                                   : static_cast<int64_t>(split_read::kBytes))
        << uds[i];
  EXPECT_TRUE(all_bytes(buf, 'c')) << "the rest ran to its end";
  expect_no_more_events(s.c.get());
}

TEST(CancelRoute, RestWaitingInItsCopyRunsToTheEnd) {
  split_read s;
  if (!s.skip.empty()) GTEST_SKIP() << s.skip;
  const ssize_t cached = s.f.cached_now(split_read::kBytes);
  // The attempt fills the cached part in this thread: only what the
  // worker reads is held.
  aio2_test::held_buffer hb(split_read::kBytes, static_cast<size_t>(cached));
  if (!hb.ok()) GTEST_SKIP() << hb.why();
  req_buf r(SYS_pread64, 25, static_cast<uint64_t>(s.f.fd), u(hb.data()), split_read::kBytes, 0);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(s.c.get(), r.io(), r.len()), r.len());
  ASSERT_TRUE(hb.wait_touched()) << "the worker never reached the held pages";
  ASSERT_NE(hb.toucher(), static_cast<pid_t>(syscall(SYS_gettid))) << "the test's thread waits in the copy";
  // The worker is inside the rest's pread64, waiting in its copy.
  EXPECT_EQ(aio2_cancel(s.c.get(), 25), -EALREADY);
  hb.release();
  s.expect_whole(25, hb.data());
  EXPECT_FALSE(hb.auto_released());
  expect_no_more_events(s.c.get());
}

TEST(CancelRoute, FileReadWaitingInItsCopyOnThePoolRunsToTheEnd) {
  constexpr size_t kBytes = 64 * 1024;
  cold_file f(kBytes, kBytes);  // all of it cached
  auto c = make_policy_ctx(AIO2_POLICY_POOL);
  aio2_test::held_buffer hb(kBytes);
  if (!hb.ok()) GTEST_SKIP() << hb.why();
  // A read of the file first: its descriptor's facts are checked, and a
  // plain pread of it could be tried on trust in this thread (it must not
  // be on a POOL context).
  char first[64];
  const aio2_iocb r0 = req(SYS_pread64, 27, static_cast<uint64_t>(f.fd), u(first), sizeof first, 0);
  ASSERT_EQ(aio2_submit(c.get(), &r0, sizeof r0), 72);
  EXPECT_EQ(the_event(c.get(), 1, 27).res(), static_cast<int64_t>(sizeof first));
  const aio2_iocb r = req(SYS_pread64, 26, static_cast<uint64_t>(f.fd), u(hb.data()), kBytes, 0);
  ASSERT_EQ(aio2_submit(c.get(), &r, sizeof r), 72);
  ASSERT_TRUE(hb.wait_touched()) << "the worker never reached the held pages";
  ASSERT_NE(hb.toucher(), static_cast<pid_t>(syscall(SYS_gettid))) << "the test's thread waits in the copy";
  // A read of a regular file is not interrupted: it is found, and goes on.
  EXPECT_EQ(aio2_cancel(c.get(), 26), -EALREADY);
  hb.release();
  const event_copy e = the_event(c.get(), 1, 26);
  EXPECT_EQ(e.res(), static_cast<int64_t>(kBytes));
  EXPECT_EQ(e.ev()->flags & AIO2_EVENT_CANCELED, 0u);
  EXPECT_EQ(hb.data()[0], 'c');
  EXPECT_EQ(hb.data()[kBytes - 1], 'c');
  EXPECT_FALSE(hb.auto_released());
  expect_no_more_events(c.get());
}

// ---- descriptors closed while requests on them are in flight -----------------------

TEST(ClosedInFlight, QueuedOnThePoolRunsOnTheNumberAsItIsWhenItRuns) {
  aio2_params p{};
  p.bounded_workers = 1;
  auto c = make_policy_ctx(AIO2_POLICY_POOL, p);
  busy_worker busy;
  busy.occupy(c.get());
  ASSERT_FALSE(HasFatalFailure());
  char first[] = "/tmp/contract_first_XXXXXX", second[] = "/tmp/contract_second_XXXXXX";
  const int a = mkstemp(first), b = mkstemp(second);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  unlink(first);
  unlink(second);
  ASSERT_EQ(write(a, "AAAA", 4), 4);
  ASSERT_EQ(write(b, "BBBB", 4), 4);
  char got[4] = {};
  aio2_iocb r = req(SYS_pread64, 9, static_cast<uint64_t>(a), u(got), 4, 0);
  r.flags = AIO2_IOCB_BOUNDED;
  ASSERT_EQ(aio2_submit(c.get(), &r, sizeof r), 72);
  // The number now names the other file, as if the program had closed it
  // and opened another before making the call itself.
  ASSERT_EQ(dup2(b, a), a);
  busy.release();
  const event_copy e = the_event(c.get(), 2, 9);
  EXPECT_EQ(e.res(), 4);
  EXPECT_EQ(std::memcmp(got, "BBBB", 4), 0) << "the pool makes the call when it runs";
  expect_no_more_events(c.get());
  close(a);
  close(b);
}

TEST(ClosedInFlight, OnIoUringKeepsTheFileItStartedWith) {
  auto c = make_policy_ctx(AIO2_POLICY_URING);
  if (!has_uring(c.get())) GTEST_SKIP() << "no io_uring here";
  pipe_fds old_pipe, new_pipe;
  uint64_t sink = 0;
  req_buf r(SYS_read, 10, static_cast<uint64_t>(old_pipe.r), u(&sink), 8);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.io(), r.len()), r.len());
  // The number is closed and reused by another pipe's read end: io_uring
  // holds the file it took at submission, as the kernel does for any call
  // already under way.
  const int number = old_pipe.r;
  ASSERT_EQ(dup2(new_pipe.r, number), number);
  new_pipe.put8();
  old_pipe.put8();
  const event_copy e = the_event(c.get(), 1, 10);
  EXPECT_EQ(e.res(), 8);
  EXPECT_EQ(e.path(), static_cast<uint32_t>(AIO2_PATH_URING));
  uint64_t left = 0;
  EXPECT_EQ(read(new_pipe.r, &left, sizeof left), 8) << "the new pipe's data is untouched";
  expect_no_more_events(c.get());
}

TEST(ClosedInFlight, ALaterRequestSeesTheNewDescriptorsFacts) {
  auto c = make_ctx();
  pipe_fds pp;
  ASSERT_EQ(fcntl(pp.r, F_SETFL, O_NONBLOCK), 0);
  uint64_t sink = 0;
  req_buf first(SYS_pread64, 11, static_cast<uint64_t>(pp.r), u(&sink), 8, 0);
  first.attr(AIO2_ATTR_CACHE);
  ASSERT_EQ(aio2_submit(c.get(), first.io(), first.len()), first.len());
  const event_copy a = the_event(c.get(), 1, 11);
  EXPECT_EQ(a.res(), -ESPIPE);
  EXPECT_EQ(a.status(AIO2_ATTR_CACHE), AIO2_ATTR_NOT_APPLICABLE) << "a pipe";
  char path[] = "/tmp/contract_facts_XXXXXX";
  const int f = mkstemp(path);
  ASSERT_GE(f, 0);
  unlink(path);
  ASSERT_EQ(write(f, "12345678", 8), 8);
  ASSERT_EQ(dup2(f, pp.r), pp.r);  // the number is a regular file now
  req_buf second(SYS_pread64, 12, static_cast<uint64_t>(pp.r), u(&sink), 8, 0);
  second.attr(AIO2_ATTR_CACHE);
  ASSERT_EQ(aio2_submit(c.get(), second.io(), second.len()), second.len());
  const event_copy b = the_event(c.get(), 1, 12);
  EXPECT_EQ(b.res(), 8);
  EXPECT_EQ(b.status(AIO2_ATTR_CACHE), AIO2_ATTR_OK) << "a regular file, not the pipe it was";
  EXPECT_EQ(std::memcmp(&sink, "12345678", 8), 0);
  close(f);
}

// ---- fork() -----------------------------------------------------------------------

// In the child: a failed check exits with its line number.
#define CHILD_CHECK(cond) \
  do {                    \
    if (!(cond)) _exit(__LINE__ % 250 + 1); \
  } while (0)

[[noreturn]] void fork_child(aio2_ctx *c, aio2_ctx *legacy) {
  const aio2_iocb one = req(SYS_getppid, 9);
  alignas(8) unsigned char buf[512];
  const timespec zero{0, 0};
  CHILD_CHECK(aio2_submit(c, &one, sizeof one) == -ECHILD);
  CHILD_CHECK(aio2_getevents(c, 0, buf, sizeof buf, &zero) == -ECHILD);
  CHILD_CHECK(aio2_getevents(c, 1, buf, sizeof buf, nullptr) == -ECHILD);
  CHILD_CHECK(aio2_cancel(c, 1) == -ECHILD);
  CHILD_CHECK(aio2_call(c, &one, buf, sizeof buf) == -ECHILD);
  CHILD_CHECK(aio2_ring_get(c) == nullptr);
  CHILD_CHECK(aio2_eventfd(c) == -ECHILD);
  iocb cb{};
  cb.aio_lio_opcode = IOCB_CMD_FSYNC;
  cb.aio_fildes = 0;
  iocb *list[1] = {&cb};
  io_event ev[1];
  CHILD_CHECK(aio2_legacy_submit(legacy, 1, list) == -ECHILD);
  CHILD_CHECK(aio2_legacy_getevents(legacy, 0, 1, ev, &zero, nullptr) == -ECHILD);
  CHILD_CHECK(aio2_legacy_cancel(legacy, &cb, ev) == -ECHILD);
  CHILD_CHECK(aio2_legacy_ring(legacy) == nullptr);
  // Destroy releases what the child can and waits for nothing.
  CHILD_CHECK(aio2_destroy(c) == 0);
  CHILD_CHECK(aio2_destroy(legacy) == 0);
  CHILD_CHECK(aio2_submit(c, &one, sizeof one) == -EBADF);
  CHILD_CHECK(aio2_destroy(c) == -EBADF);
  // aio2_call without a context works, and so does a new context.
  CHILD_CHECK(aio2_call(nullptr, &one, buf, sizeof buf) == static_cast<ssize_t>(sizeof(aio2_event)));
  CHILD_CHECK(reinterpret_cast<aio2_event *>(buf)->res == getppid());
  aio2_ctx *mine = nullptr;
  CHILD_CHECK(aio2_setup(AIO2_ABI_VERSION, nullptr, &mine) == 0);
  aio2_iocb two[2] = {req(SYS_getppid, 1), req(SYS_getppid, 2)};
#ifndef CONTRACT_ASAN
  // One on a pool worker, started in the child. (AddressSanitizer's runtime
  // cannot start a thread in the child of a multi-threaded fork: its locks
  // may be held by threads the child does not have. Both run inline there.)
  two[1].flags = AIO2_IOCB_POLICY(AIO2_POLICY_POOL);
#endif
  CHILD_CHECK(aio2_submit(mine, two, sizeof two) == 144);
  size_t got = 0;
  const timespec ten{10, 0};
  while (got < 2 * sizeof(aio2_event)) {
    const ssize_t n = aio2_getevents(mine, 1, buf + got, sizeof buf - got, &ten);
    CHILD_CHECK(n > 0);
    got += static_cast<size_t>(n);
  }
  for (size_t off = 0; off < got; off += sizeof(aio2_event))
    CHILD_CHECK(reinterpret_cast<aio2_event *>(buf + off)->res == getppid());
  CHILD_CHECK(aio2_destroy(mine) == 0);
  _exit(0);
}

TEST(Fork, InheritedContextsAnswerEchildInTheChildAndKeepWorkingInTheParent) {
#ifdef CONTRACT_TSAN
  GTEST_SKIP() << "ThreadSanitizer: no threads in the child of a multi-threaded fork";
#endif
  auto c = make_ctx();
  aio2_params lp{};
  lp.type = AIO2_CTX_LEGACY;
  lp.max_inflight = 8;
  auto legacy = make_ctx(lp);
  pipe_fds pool_pipe, uring_pipe, poll_pipe;
  uint64_t sink[2] = {};
  // In flight across the fork: a read on the pool, a read on io_uring (the
  // pool without it), a poll on the LEGACY context.
  req_buf on_pool(SYS_read, 1, static_cast<uint64_t>(pool_pipe.r), u(&sink[0]), 8);
  on_pool.path(AIO2_POLICY_POOL);
  ASSERT_EQ(aio2_submit(c.get(), on_pool.io(), on_pool.len()), on_pool.len());
  req_buf on_uring(SYS_read, 2, static_cast<uint64_t>(uring_pipe.r), u(&sink[1]), 8);
  on_uring.path(AIO2_POLICY_URING);
  ASSERT_EQ(aio2_submit(c.get(), on_uring.io(), on_uring.len()), on_uring.len());
  iocb pcb{};
  pcb.aio_data = 3;
  pcb.aio_lio_opcode = IOCB_CMD_POLL;
  pcb.aio_fildes = static_cast<uint32_t>(poll_pipe.r);
  pcb.aio_buf = POLLIN;
  iocb *plist[1] = {&pcb};
  ASSERT_EQ(aio2_legacy_submit(legacy.get(), 1, plist), 1);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) fork_child(c.get(), legacy.get());
  int status = 0;
  pid_t w = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the child hung";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "a check failed in the child (exit code: its line % 250 + 1)";

  // The parent's requests are the parent's: each still gets its one event.
  pool_pipe.put8();
  uring_pipe.put8();
  poll_pipe.put8();
  for (const auto &e : wait_events(c.get(), 2))
    EXPECT_EQ(reinterpret_cast<const aio2_event *>(e.data())->res, 8);
  io_event ev[1];
  const timespec ten{10, 0};
  ASSERT_EQ(aio2_legacy_getevents(legacy.get(), 1, 1, ev, &ten, nullptr), 1);
  EXPECT_EQ(ev[0].data, 3u);
  EXPECT_TRUE(ev[0].res & POLLIN);
  const aio2_iocb again = req(SYS_getppid, 4);
  ASSERT_EQ(aio2_submit(c.get(), &again, sizeof again), 72);
  EXPECT_EQ(wait_events(c.get(), 1).size(), 1u);
}

// ---- the context ring across 2^64 -------------------------------------------------

enum class reaper { getevents, reap_events, peek };

struct wrap_case {
  uint32_t policy;
  reaper kind;
};

class RingWrap : public ::testing::TestWithParam<wrap_case> {};

// Takes every event there is now (or, when none, waits up to 10 s for one
// through aio2_getevents), calling fn for each; returns how many.
template <class Fn>
unsigned take(aio2_ctx *c, reaper kind, Fn fn) {
  alignas(8) unsigned char buf[4096];
  aio2_ring *ring = aio2_ring_get(c);
  unsigned n = 0;
  const auto walk = [&](int64_t bytes) {
    for (auto *e = aio2_event_next(buf, static_cast<size_t>(bytes), nullptr); e;
         e = aio2_event_next(buf, static_cast<size_t>(bytes), e), n++)
      fn(e);
  };
  if (kind == reaper::reap_events) {
    int64_t got;
    while ((got = aio2_reap_events(ring, buf, sizeof buf)) > 0) walk(got);
    EXPECT_TRUE(got == 0 || got == -EAGAIN) << got;
  } else if (kind == reaper::peek) {
    const aio2_event *e = nullptr;
    int rc;
    while ((rc = aio2_peek_event(ring, &e)) == 1) {
      fn(e);
      aio2_consume_event(ring, e);
      n++;
    }
    EXPECT_TRUE(rc == 0 || rc == -EAGAIN) << rc;
  }
  // getevents itself, and the overflow list (or a wait) for the others.
  const timespec zero{0, 0}, ten{10, 0};
  const ssize_t got = aio2_getevents(c, n ? 0 : 1, buf, sizeof buf, n ? &zero : &ten);
  EXPECT_GE(got, 0);
  if (got > 0) walk(got);
  return n;
}

TEST_P(RingWrap, EveryEventOnceAcrossTheWrap) {
  const wrap_case k = GetParam();
  constexpr uint64_t kRing = 4096;
  const uint64_t start = 0 - 3 * kRing;  // 2^64 - 12288: the wrap comes early
  aio2::core::test_hooks::ring_start_pos.store(start);
  aio2_params p{};
  p.ring_bytes = kRing;
  auto c = make_policy_ctx(k.policy, p);
  aio2::core::test_hooks::ring_start_pos.store(0);
  aio2_ring *ring = aio2_ring_get(c.get());
  ASSERT_NE(ring, nullptr);
  ASSERT_EQ(__atomic_load_n(&ring->head, __ATOMIC_ACQUIRE), start);
  constexpr unsigned kEvents = 3000;
  std::vector<int> seen(kEvents, 0);
  const int64_t ppid = getppid();
  unsigned reaped = 0, submitted = 0, bad = 0;
  const auto check = [&](const aio2_event *e) {
    if (e->user_data >= kEvents || e->res != ppid) bad++;
    else seen[e->user_data]++;
  };
  while (submitted < kEvents) {
    // Batches of 50, and now and then one of 400 that overflows the ring.
    const unsigned n = std::min(kEvents - submitted, submitted % 1000 == 500 ? 400u : 50u);
    std::vector<aio2_iocb> batch;
    for (unsigned i = 0; i < n; i++) batch.push_back(req(SYS_getppid, submitted + i));
    ASSERT_EQ(aio2_submit(c.get(), batch.data(), n * sizeof(aio2_iocb)),
              static_cast<ssize_t>(n * 72));
    submitted += n;
    while (reaped < submitted) {
      const unsigned got = take(c.get(), k.kind, check);
      ASSERT_FALSE(HasFailure()) << reaped << " reaped";
      reaped += got;
      if (got == 0) {
        ADD_FAILURE() << "no event for 10 s with " << submitted - reaped << " outstanding";
        return;
      }
    }
  }
  EXPECT_EQ(reaped, kEvents);
  EXPECT_EQ(bad, 0u);
  for (unsigned i = 0; i < kEvents; i++) EXPECT_EQ(seen[i], 1) << "event " << i;
  const uint64_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
  EXPECT_EQ(head, __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE));
  EXPECT_LT(head, start) << "the positions went past 2^64";
  EXPECT_GT(head, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Reapers, RingWrap,
    ::testing::Values(wrap_case{AIO2_POLICY_INLINE, reaper::getevents},
                      wrap_case{AIO2_POLICY_INLINE, reaper::reap_events},
                      wrap_case{AIO2_POLICY_INLINE, reaper::peek},
                      wrap_case{AIO2_POLICY_POOL, reaper::getevents},
                      wrap_case{AIO2_POLICY_POOL, reaper::reap_events},
                      wrap_case{AIO2_POLICY_POOL, reaper::peek}),
    [](const ::testing::TestParamInfo<wrap_case> &i) {
      const char *k = i.param.kind == reaper::getevents     ? "Getevents"
                      : i.param.kind == reaper::reap_events ? "ReapEvents"
                                                            : "PeekConsume";
      return std::string(aio2_test::policy_name(i.param.policy)) + k;
    });

}  // namespace
