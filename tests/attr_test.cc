// SPDX-License-Identifier: MIT
// Attributes proved true, not only present: timing orders and separates
// queueing from service time; tag echoes; deadline stops a call from
// running; executor says where it ran; user-defined attributes get every
// hook; statuses (UNSUPPORTED, UNAVAILABLE, NOT_APPLICABLE) and REQUIRED
// behave as documented, on the pool and on aio2_call.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "test_util.h"

namespace {

using aio2_test::make_ctx;
using aio2_test::make_pool_ctx;
using aio2_test::now_ns;
using aio2_test::wait_events;

// A request with attributes, in its own 8-aligned buffer.
struct request {
  alignas(8) unsigned char b[1024] = {};
  aio2_iocb *io() { return reinterpret_cast<aio2_iocb *>(b); }
  request(long nr, uint64_t ud, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0) {
    aio2_prep(io(), nr, ud, a0, a1, a2, 0, 0, 0);
  }
  request &attr(uint16_t id, const void *payload = nullptr, size_t n = 0, uint16_t flags = 0) {
    EXPECT_NE(aio2_attr_add(io(), sizeof b, id, flags, payload, n), nullptr);
    return *this;
  }
  uint32_t len() { return io()->len; }
};

const aio2_event *ev_of(const std::vector<unsigned char> &v) {
  return reinterpret_cast<const aio2_event *>(v.data());
}

template <class T>
T result(const aio2_event *ev, uint16_t id) {
  uint16_t status = 0xffff;
  const void *p = aio2_event_attr_payload(ev, id, sizeof(T), &status);
  EXPECT_NE(p, nullptr) << "attribute " << id << " status " << status;
  T t{};
  if (p) std::memcpy(&t, p, sizeof t);
  return t;
}

uint16_t status_of(const aio2_event *ev, uint16_t id) {
  const aio2_attr_ret *r = aio2_event_find_attr(ev, id);
  return r ? r->status : 0xffff;
}

// ---- timing ------------------------------------------------------------------

TEST(Timing, ServiceTimeCoversTheCallAndTimestampsAreOrdered) {
  auto c = make_ctx();
  static const timespec nap{0, 20000000};
  request r(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap));
  r.attr(AIO2_ATTR_TIMING);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  const auto t = result<aio2_attr_timing>(ev_of(evs[0]), AIO2_ATTR_TIMING);
  EXPECT_LE(t.submitted_ns, t.started_ns);
  EXPECT_LT(t.started_ns, t.finished_ns);
  EXPECT_LE(t.finished_ns, t.posted_ns);
  EXPECT_GE(t.finished_ns - t.started_ns, 20000000u);  // nanosleep sleeps at least that long
}

// The requests of one aio2_submit call share one submit stamp, taken
// inside the call: the first runs inline for 2 ms (a nanosleep with the
// INLINE policy) before the second is even looked at, and still both say
// the same, so the second's queueing time holds the first's service time.
// Every stamp stays ordered, and the next call takes a reading of its own.
TEST(Timing, OneSubmitCallSharesOneSubmitStamp) {
  auto c = make_ctx();
  static const timespec nap{0, 2000000};
  request first(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap));
  first.io()->flags = AIO2_IOCB_POLICY(AIO2_POLICY_INLINE);
  first.attr(AIO2_ATTR_TIMING);
  request second(SYS_getppid, 2);
  second.attr(AIO2_ATTR_TIMING);
  request third(SYS_getppid, 3);
  third.attr(AIO2_ATTR_TIMING);
  alignas(8) unsigned char both[2048];
  std::memcpy(both, first.b, first.len());
  std::memcpy(both + first.len(), second.b, second.len());
  const uint32_t bytes = first.len() + second.len();
  const uint64_t before = now_ns();
  ASSERT_EQ(aio2_submit(c.get(), both, bytes), bytes);
  const uint64_t between = now_ns();
  ASSERT_EQ(aio2_submit(c.get(), third.b, third.len()), third.len());
  aio2_attr_timing ts[4];
  for (const auto &e : wait_events(c.get(), 3))
    ts[ev_of(e)->user_data] = result<aio2_attr_timing>(ev_of(e), AIO2_ATTR_TIMING);
  EXPECT_EQ(ts[1].submitted_ns, ts[2].submitted_ns) << "one stamp for the call";
  EXPECT_GE(ts[1].submitted_ns, before) << "taken inside the call";
  EXPECT_LE(ts[1].submitted_ns, between);
  EXPECT_GE(ts[2].started_ns, ts[1].finished_ns) << "the second started after the first";
  EXPECT_GE(ts[2].started_ns - ts[2].submitted_ns, 2000000u);
  EXPECT_GE(ts[3].submitted_ns, between) << "the next call reads the clock again";
  for (int i = 1; i <= 3; i++) {
    EXPECT_LE(ts[i].submitted_ns, ts[i].started_ns) << i;
    EXPECT_LE(ts[i].started_ns, ts[i].finished_ns) << i;
    EXPECT_LE(ts[i].finished_ns, ts[i].posted_ns) << i;
  }
}

// On io_uring, the entries of one batch are queued together and share one
// start stamp, read inside the call; the next call reads the clock again.
TEST(Timing, OneIoUringBatchSharesOneStartStamp) {
  aio2_params p{};
  const auto c = aio2_test::make_ctx_answering(p);
  ASSERT_NE(c, nullptr);
  if (!(p.features & AIO2_FEAT_URING)) GTEST_SKIP() << "io_uring is not available here";
  const int fd = memfd_create("aio2-timing", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  static char data[4096];
  ASSERT_EQ(pwrite(fd, data, sizeof data, 0), static_cast<ssize_t>(sizeof data));
  static char bufs[3][512];
  std::vector<request> reqs;
  for (uint64_t i = 0; i < 3; i++) {
    reqs.emplace_back(SYS_pread64, i, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(bufs[i]),
                      sizeof bufs[i]);
    reqs.back().io()->args[3] = 512 * i;  // the offset
    reqs.back().io()->flags = AIO2_IOCB_POLICY(AIO2_POLICY_URING);
    reqs.back().attr(AIO2_ATTR_TIMING).attr(AIO2_ATTR_EXECUTOR);
  }
  alignas(8) unsigned char two[2048];
  std::memcpy(two, reqs[0].b, reqs[0].len());
  std::memcpy(two + reqs[0].len(), reqs[1].b, reqs[1].len());
  const uint32_t bytes = reqs[0].len() + reqs[1].len();
  const uint64_t before = now_ns();
  ASSERT_EQ(aio2_submit(c.get(), two, bytes), bytes);
  const uint64_t between = now_ns();
  ASSERT_EQ(aio2_submit(c.get(), reqs[2].b, reqs[2].len()), reqs[2].len());
  aio2_attr_timing ts[3];
  for (const auto &e : wait_events(c.get(), 3)) {
    const aio2_event *ev = ev_of(e);
    ASSERT_EQ(ev->res, 512);
    ASSERT_EQ(result<aio2_attr_executor>(ev, AIO2_ATTR_EXECUTOR).path, AIO2_PATH_URING);
    ts[ev->user_data] = result<aio2_attr_timing>(ev, AIO2_ATTR_TIMING);
  }
  EXPECT_EQ(ts[0].started_ns, ts[1].started_ns) << "one start stamp for the batch";
  EXPECT_GE(ts[0].started_ns, before) << "read inside the call";
  EXPECT_LE(ts[0].started_ns, between);
  EXPECT_GE(ts[2].started_ns, between) << "the next call reads the clock again";
  for (int i = 0; i < 3; i++) {
    EXPECT_LE(ts[i].submitted_ns, ts[i].started_ns) << i;
    EXPECT_LE(ts[i].started_ns, ts[i].finished_ns) << i;
    EXPECT_LE(ts[i].finished_ns, ts[i].posted_ns) << i;
  }
  close(fd);
}

TEST(Timing, QueueingBehindABusyWorkerShowsAsQueueTime) {
  auto c = make_pool_ctx(1);  // one bounded worker
  static const timespec nap{0, 50000000};
  request slow(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap));
  slow.io()->flags = AIO2_IOCB_BOUNDED;
  slow.attr(AIO2_ATTR_TIMING);
  request quick(SYS_getppid, 2);
  quick.io()->flags = AIO2_IOCB_BOUNDED;
  quick.attr(AIO2_ATTR_TIMING);
  ASSERT_EQ(aio2_submit(c.get(), slow.b, slow.len()), slow.len());
  ASSERT_EQ(aio2_submit(c.get(), quick.b, quick.len()), quick.len());
  const auto evs = wait_events(c.get(), 2);
  aio2_attr_timing ts[3];
  for (const auto &e : evs) ts[ev_of(e)->user_data] = result<aio2_attr_timing>(ev_of(e), AIO2_ATTR_TIMING);
  // The quick request could only start once the single worker was free:
  // its queueing time holds the slow one's service time.
  EXPECT_GE(ts[2].started_ns, ts[1].finished_ns);
  EXPECT_LT(ts[2].finished_ns - ts[2].started_ns, ts[2].started_ns - ts[2].submitted_ns);
}

TEST(Timing, CancelledWhileQueuedNeverStarted) {
  auto c = make_pool_ctx(1);
  static const timespec nap{0, 100000000};
  request slow(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap));
  slow.io()->flags = AIO2_IOCB_BOUNDED;
  request victim(SYS_getppid, 2);
  victim.io()->flags = AIO2_IOCB_BOUNDED;
  victim.attr(AIO2_ATTR_TIMING).attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), slow.b, slow.len()), slow.len());
  ASSERT_EQ(aio2_submit(c.get(), victim.b, victim.len()), victim.len());
  ASSERT_EQ(aio2_cancel(c.get(), 2), 0);
  for (const auto &e : wait_events(c.get(), 2)) {
    if (ev_of(e)->user_data != 2) continue;
    EXPECT_EQ(ev_of(e)->res, -ECANCELED);
    const auto t = result<aio2_attr_timing>(ev_of(e), AIO2_ATTR_TIMING);
    EXPECT_GT(t.submitted_ns, 0u);
    EXPECT_EQ(t.started_ns, 0u);
    EXPECT_EQ(t.finished_ns, 0u);
    EXPECT_GE(t.posted_ns, t.submitted_ns);
    EXPECT_EQ(status_of(ev_of(e), AIO2_ATTR_EXECUTOR), AIO2_ATTR_NOT_APPLICABLE);
  }
}

// ---- tag -----------------------------------------------------------------------

TEST(Tag, BytesComeBackUnchanged) {
  auto c = make_ctx();
  const char trace_id[16] = {'t', 'r', 'a', 'c', 'e', '-', '4', '2', 1, 2, 3, 4, 5, 6, 7, 8};
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_TAG, trace_id, sizeof trace_id);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  uint16_t status;
  const void *p = aio2_event_attr_payload(ev_of(evs[0]), AIO2_ATTR_TAG, AIO2_TAG_MAX, &status);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, trace_id, sizeof trace_id), 0);
  const unsigned char zero[AIO2_TAG_MAX - sizeof trace_id] = {};
  EXPECT_EQ(std::memcmp(static_cast<const char *>(p) + sizeof trace_id, zero, sizeof zero), 0);
}

TEST(Tag, OversizeAndEmptyTagsAreRefusedAtSubmit) {
  auto c = make_ctx();
  const unsigned char big[AIO2_TAG_MAX + 1] = {};
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_TAG, big, sizeof big);
  EXPECT_EQ(aio2_submit(c.get(), r.b, r.len()), -EINVAL);
  request empty(SYS_getppid, 1);
  empty.attr(AIO2_ATTR_TAG);
  EXPECT_EQ(aio2_submit(c.get(), empty.b, empty.len()), -EINVAL);
  alignas(8) unsigned char ev[256];
  EXPECT_EQ(aio2_call(nullptr, r.io(), ev, sizeof ev), -EINVAL);
}

// ---- deadline -------------------------------------------------------------------

TEST(Deadline, ExpiredDeadlineMeansTheCallNeverRan) {
  auto c = make_ctx();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  static const char byte = 'x';
  const aio2_attr_deadline past{now_ns() - 1000000};
  request r(SYS_write, 1, static_cast<uint64_t>(fds[1]), reinterpret_cast<uint64_t>(&byte), 1);
  r.attr(AIO2_ATTR_DEADLINE, &past, sizeof past);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  EXPECT_EQ(ev_of(evs[0])->res, -ETIME);
  const auto d = result<aio2_attr_deadline_ret>(ev_of(evs[0]), AIO2_ATTR_DEADLINE);
  EXPECT_EQ(d.expired, 1u);
  EXPECT_LT(d.slack_ns, 0);
  char back;
  EXPECT_EQ(read(fds[0], &back, 1), -1);  // the write never happened
  EXPECT_EQ(errno, EAGAIN);
  // The same through aio2_call.
  alignas(8) unsigned char ev[128];
  ASSERT_GT(aio2_call(nullptr, r.io(), ev, sizeof ev), 0);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, -ETIME);
  EXPECT_EQ(read(fds[0], &back, 1), -1);
  close(fds[0]);
  close(fds[1]);
}

TEST(Deadline, AttributesAfterTheDeadlineNeverStart) {
  auto c = make_ctx();
  const aio2_attr_deadline past{now_ns() - 1000000};
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_EXECUTOR)  // its turn comes before the deadline stops the call
      .attr(AIO2_ATTR_DEADLINE, &past, sizeof past)
      .attr(AIO2_ATTR_RUSAGE)    // never reached
      .attr(AIO2_ATTR_TIMING);   // never reached: no start or finish
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  const aio2_event *ev = ev_of(evs[0]);
  EXPECT_EQ(ev->res, -ETIME);
  EXPECT_EQ(status_of(ev, AIO2_ATTR_EXECUTOR), AIO2_ATTR_OK);
  EXPECT_EQ(status_of(ev, AIO2_ATTR_RUSAGE), AIO2_ATTR_NOT_APPLICABLE);
  const auto t = result<aio2_attr_timing>(ev, AIO2_ATTR_TIMING);
  EXPECT_EQ(t.started_ns, 0u);
  EXPECT_EQ(t.finished_ns, 0u);
  EXPECT_GE(t.posted_ns, t.submitted_ns);
}

TEST(Deadline, FutureDeadlineRunsTheCall) {
  auto c = make_ctx();
  const aio2_attr_deadline later{now_ns() + 60ull * 1000000000};
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_DEADLINE, &later, sizeof later);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  EXPECT_EQ(ev_of(evs[0])->res, getppid());
  const auto d = result<aio2_attr_deadline_ret>(ev_of(evs[0]), AIO2_ATTR_DEADLINE);
  EXPECT_EQ(d.expired, 0u);
  EXPECT_GT(d.slack_ns, 0);
}

TEST(Deadline, WrongPayloadSizeIsRefused) {
  auto c = make_ctx();
  const uint64_t two[2] = {1, 2};
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_DEADLINE, two, sizeof two);
  EXPECT_EQ(aio2_submit(c.get(), r.b, r.len()), -EINVAL);
}

// ---- executor -------------------------------------------------------------------

TEST(Executor, SaysWhichPathWorkerAndCpu) {
  auto c = make_pool_ctx();
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_EXECUTOR);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  const auto e = result<aio2_attr_executor>(ev_of(evs[0]), AIO2_ATTR_EXECUTOR);
  EXPECT_EQ(e.path, AIO2_PATH_POOL);
  EXPECT_GE(e.worker, 1u);
  EXPECT_LT(e.cpu, std::thread::hardware_concurrency());
  alignas(8) unsigned char ev[128];
  ASSERT_GT(aio2_call(nullptr, r.io(), ev, sizeof ev), 0);
  const auto e2 = result<aio2_attr_executor>(reinterpret_cast<aio2_event *>(ev), AIO2_ATTR_EXECUTOR);
  EXPECT_EQ(e2.path, AIO2_PATH_CALL);
  EXPECT_EQ(e2.worker, 0u);
}

// ---- user-defined attributes ---------------------------------------------------------

// A test attribute: counts its hooks and records what they saw.
struct probe_result {
  uint64_t submit_calls, before_calls, after_calls, post_calls;
  int64_t res_seen_after;
  uint64_t ran_at_post;
  uint64_t payload_word;
  uint64_t path;
};
constexpr uint16_t kProbe = 0x8101;
std::atomic<int> g_hook_calls{0};

probe_result *probe_of(aio2_attr_hook *h) { return static_cast<probe_result *>(h->result); }

const aio2_attr_handler kProbeHandler = {
    sizeof(aio2_attr_handler), kProbe, 0, 8, 8, sizeof(probe_result), AIO2_PATH_POOL | AIO2_PATH_CALL,
    "probe",
    [](aio2_attr_hook *h) {
      probe_of(h)->submit_calls++;
      std::memcpy(&probe_of(h)->payload_word, h->payload, 8);
      g_hook_calls++;
      return probe_of(h)->payload_word == 666 ? -EDOM : 0;  // refuse on request
    },
    [](aio2_attr_hook *h) {
      probe_of(h)->before_calls++;
      probe_of(h)->path = h->path;
      return 0;
    },
    [](aio2_attr_hook *h) {
      probe_of(h)->after_calls++;
      probe_of(h)->res_seen_after = h->res;
    },
    [](aio2_attr_hook *h) {
      probe_of(h)->post_calls++;
      probe_of(h)->ran_at_post = h->ran;
    },
    nullptr};

void register_probe() {
  static const int once = aio2_attr_register(&kProbeHandler);
  ASSERT_EQ(once, 0);
}

TEST(UserAttribute, RegistrationRules) {
  register_probe();
  EXPECT_EQ(aio2_attr_register(&kProbeHandler), -EEXIST);
  aio2_attr_handler h = kProbeHandler;
  h.id = 0x1234;
  EXPECT_EQ(aio2_attr_register(&h), -ERANGE);
  h.id = 0x8fff;
  h.result_size = 12;
  EXPECT_EQ(aio2_attr_register(&h), -EINVAL);
  h.result_size = 8;
  h.paths = 0;
  EXPECT_EQ(aio2_attr_register(&h), -EINVAL);
  h.paths = AIO2_PATH_POOL;
  h.payload_min = 16;
  h.payload_max = 8;
  EXPECT_EQ(aio2_attr_register(&h), -EINVAL);
  h.payload_min = 0;
  h.size = 8;
  EXPECT_EQ(aio2_attr_register(&h), -EINVAL);
  EXPECT_EQ(aio2_attr_register(nullptr), -EINVAL);
}

TEST(UserAttribute, EveryHookRunsOnceOnThePoolAndOnCall) {
  register_probe();
  auto c = make_pool_ctx();
  const uint64_t word = 0x1122334455667788ull;
  request r(SYS_getppid, 1);
  r.attr(kProbe, &word, sizeof word);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  auto check = [&](const aio2_event *ev, uint32_t path) {
    const auto p = result<probe_result>(ev, kProbe);
    EXPECT_EQ(p.submit_calls, 1u);
    EXPECT_EQ(p.before_calls, 1u);
    EXPECT_EQ(p.after_calls, 1u);
    EXPECT_EQ(p.post_calls, 1u);
    EXPECT_EQ(p.res_seen_after, getppid());
    EXPECT_EQ(p.ran_at_post, 1u);
    EXPECT_EQ(p.payload_word, word);
    EXPECT_EQ(p.path, path);
  };
  check(ev_of(evs[0]), AIO2_PATH_POOL);
  alignas(8) unsigned char ev[256];
  ASSERT_GT(aio2_call(nullptr, r.io(), ev, sizeof ev), 0);
  check(reinterpret_cast<aio2_event *>(ev), AIO2_PATH_CALL);
}

TEST(UserAttribute, SubmitHookCanRefuseAndPayloadSizeIsChecked) {
  register_probe();
  auto c = make_ctx();
  const uint64_t refuse = 666;
  request r(SYS_getppid, 1);
  r.attr(kProbe, &refuse, sizeof refuse);
  EXPECT_EQ(aio2_submit(c.get(), r.b, r.len()), -EDOM);
  const uint64_t two[2] = {};
  request wrong(SYS_getppid, 1);
  wrong.attr(kProbe, two, sizeof two);
  EXPECT_EQ(aio2_submit(c.get(), wrong.b, wrong.len()), -EINVAL);
}

TEST(UserAttribute, UnavailableOnAPathItDoesNotServe) {
  static const aio2_attr_handler pool_only = {
      sizeof(aio2_attr_handler), 0x8102, 0, 0, 0, 8, AIO2_PATH_POOL, "pool-only",
      nullptr, nullptr, nullptr, nullptr, nullptr};
  static const int once = aio2_attr_register(&pool_only);
  ASSERT_EQ(once, 0);
  request r(SYS_getppid, 1);
  r.attr(0x8102);
  alignas(8) unsigned char ev[128];
  ASSERT_GT(aio2_call(nullptr, r.io(), ev, sizeof ev), 0);
  EXPECT_EQ(status_of(reinterpret_cast<aio2_event *>(ev), 0x8102), AIO2_ATTR_UNAVAILABLE);
  request req(SYS_getppid, 1);
  req.attr(0x8102, nullptr, 0, AIO2_ATTR_F_REQUIRED);
  EXPECT_EQ(aio2_call(nullptr, req.io(), ev, sizeof ev), -EOPNOTSUPP);
  auto c = make_pool_ctx();
  EXPECT_EQ(aio2_submit(c.get(), req.b, req.len()), req.len());  // the pool serves it
  EXPECT_EQ(status_of(ev_of(wait_events(c.get(), 1)[0]), 0x8102), AIO2_ATTR_OK);
}

// A user attribute that measures the RWF_NOWAIT attempt (HANDLER_NOWAIT):
// what its hooks see of a nowait-first read.
struct nowait_seen {
  uint64_t first_at_before;  // nowait_first in before
  uint64_t first_at_post;    // nowait_first in on_post
  int64_t done_at_post;      // nowait_done in on_post
  int64_t res_at_post;
};
constexpr uint16_t kNowaitProbe = 0x8103;

void register_nowait_probe() {
  static const aio2_attr_handler h = {
      sizeof(aio2_attr_handler), kNowaitProbe, AIO2_ATTR_HANDLER_NOWAIT, 0, 0,
      sizeof(nowait_seen), AIO2_PATH_ALL, "nowait-probe", nullptr,
      [](aio2_attr_hook *hk) {
        static_cast<nowait_seen *>(hk->result)->first_at_before = hk->nowait_first;
        return 0;
      },
      nullptr,
      [](aio2_attr_hook *hk) {
        auto *r = static_cast<nowait_seen *>(hk->result);
        r->first_at_post = hk->nowait_first;
        r->done_at_post = hk->nowait_done;
        r->res_at_post = hk->res;
      },
      nullptr};
  static const int once = aio2_attr_register(&h);
  ASSERT_EQ(once, 0);
}

// A regular file of `n` bytes in the page cache, unlinked at once.
int cached_file(size_t n) {
  char path[] = "/tmp/aio2-attr-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  unlink(path);
  std::vector<unsigned char> data(n, 0x5a);
  EXPECT_EQ(pwrite(fd, data.data(), n, 0), static_cast<ssize_t>(n));
  std::vector<unsigned char> back(n);
  EXPECT_EQ(pread(fd, back.data(), n, 0), static_cast<ssize_t>(n));  // cached now
  return fd;
}

// A cached pread64 under AUTO: on io_uring the handler's flag makes it a
// nowait-first read made by io_uring; without io_uring it is one that
// starts in the submitter anyway. Either way the hooks see nowait_first and
// what the attempt read (all of it: the file is cached).
TEST(UserAttribute, NowaitHandlerSeesTheAttemptOfANowaitFirstRead) {
  register_nowait_probe();
  const int fd = cached_file(8192);
  std::vector<unsigned char> buf(4096);
  for (uint32_t flags : {0u, static_cast<uint32_t>(AIO2_SETUP_NO_URING)}) {
    aio2_params p{};
    p.flags = flags;
    auto c = make_ctx(p);
    request r(SYS_pread64, 1, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(buf.data()),
              buf.size());
    r.io()->args[3] = 4096;
    r.attr(kNowaitProbe).attr(AIO2_ATTR_EXECUTOR);
    ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
    const auto evs = wait_events(c.get(), 1);
    const aio2_event *ev = ev_of(evs[0]);
    EXPECT_EQ(ev->res, 4096);
    const auto seen = result<nowait_seen>(ev, kNowaitProbe);
    EXPECT_EQ(seen.first_at_before, 1u) << "flags " << flags;
    EXPECT_EQ(seen.first_at_post, 1u) << "flags " << flags;
    EXPECT_EQ(seen.done_at_post, 4096) << "flags " << flags;
    EXPECT_EQ(seen.res_at_post, 4096) << "flags " << flags;
  }
  close(fd);
}

// Where no RWF_NOWAIT attempt is made (the pool policy, a write), the hooks
// say so: nowait_first 0 and nowait_done -1.
TEST(UserAttribute, NowaitHandlerSeesNoAttemptWhereNoneIsMade) {
  register_nowait_probe();
  const int fd = cached_file(8192);
  std::vector<unsigned char> buf(4096);
  auto pool = make_pool_ctx();
  auto autoc = make_ctx();
  struct row {
    aio2_ctx *c;
    long nr;
  } rows[] = {{pool.get(), SYS_pread64}, {autoc.get(), SYS_pwrite64}};
  for (const row &w : rows) {
    request r(w.nr, 2, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(buf.data()),
              buf.size());
    r.attr(kNowaitProbe);
    ASSERT_EQ(aio2_submit(w.c, r.b, r.len()), r.len());
    const auto evs = wait_events(w.c, 1);
    const aio2_event *ev = ev_of(evs[0]);
    EXPECT_EQ(ev->res, 4096);
    const auto seen = result<nowait_seen>(ev, kNowaitProbe);
    EXPECT_EQ(seen.first_at_before, 0u) << w.nr;
    EXPECT_EQ(seen.first_at_post, 0u) << w.nr;
    EXPECT_EQ(seen.done_at_post, -1) << w.nr;
  }
  close(fd);
}

// The hook's ioprio starts at -1 (leave the priority alone); a before hook
// may set it, and the request still runs and completes. (The ioprio
// attribute's tests check that io_uring's entry carries the value.)
TEST(UserAttribute, IoprioFieldStartsAtMinusOneAndAHookMaySetIt) {
  static const aio2_attr_handler h = {
      sizeof(aio2_attr_handler), 0x8104, 0, 0, 0, 8, AIO2_PATH_ALL, "ioprio-probe", nullptr,
      [](aio2_attr_hook *hk) {
        const int64_t seen = hk->ioprio;
        std::memcpy(hk->result, &seen, sizeof seen);
        hk->ioprio = (2 << 13) | 4;  // best effort, level 4
        return 0;
      },
      nullptr, nullptr, nullptr};
  static const int once = aio2_attr_register(&h);
  ASSERT_EQ(once, 0);
  const int fd = cached_file(4096);
  std::vector<unsigned char> buf(4096);
  auto c = make_ctx();
  request r(SYS_pread64, 3, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(buf.data()),
            buf.size());
  r.attr(0x8104);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  EXPECT_EQ(ev_of(evs[0])->res, 4096);
  EXPECT_EQ(result<int64_t>(ev_of(evs[0]), 0x8104), -1);
  close(fd);
}

// ---- statuses and layout ---------------------------------------------------------------

TEST(Results, OnePerAttributeInRequestOrderWithRequiredHonoured) {
  auto c = make_ctx();
  const char tag[8] = "abc";
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_EXECUTOR)
      .attr(0x7ff0)  // unknown
      .attr(AIO2_ATTR_TAG, tag, sizeof tag, AIO2_ATTR_F_REQUIRED)
      .attr(AIO2_ATTR_TIMING, nullptr, 0, AIO2_ATTR_F_REQUIRED);
  ASSERT_EQ(aio2_submit(c.get(), r.b, r.len()), r.len());
  const auto evs = wait_events(c.get(), 1);
  const aio2_event *ev = ev_of(evs[0]);
  const uint16_t ids[] = {AIO2_ATTR_EXECUTOR, 0x7ff0, AIO2_ATTR_TAG, AIO2_ATTR_TIMING};
  const uint16_t statuses[] = {AIO2_ATTR_OK, AIO2_ATTR_UNSUPPORTED, AIO2_ATTR_OK, AIO2_ATTR_OK};
  const uint32_t lens[] = {8 + sizeof(aio2_attr_executor), 8, 8 + AIO2_TAG_MAX,
                           8 + sizeof(aio2_attr_timing)};
  const aio2_attr_ret *ret = nullptr;
  uint32_t total = sizeof(aio2_event);
  for (unsigned i = 0; i < 4; i++) {
    ret = aio2_attr_next(ev, ret);
    ASSERT_NE(ret, nullptr);
    EXPECT_EQ(ret->id, ids[i]);
    EXPECT_EQ(ret->status, statuses[i]);
    EXPECT_EQ(ret->len, lens[i]);
    total += ret->len;
  }
  EXPECT_EQ(aio2_attr_next(ev, ret), nullptr);
  EXPECT_EQ(ev->len, total);
}

TEST(Results, CallRefusesASmallEventBufferBeforeRunning) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  static const char byte = 'y';
  request r(SYS_write, 1, static_cast<uint64_t>(fds[1]), reinterpret_cast<uint64_t>(&byte), 1);
  r.attr(AIO2_ATTR_TIMING);
  alignas(8) unsigned char ev[64];  // 24 + 8 + 32 = 64 fits; 56 does not
  EXPECT_EQ(aio2_call(nullptr, r.io(), ev, 56), -ENOBUFS);
  char back;
  EXPECT_EQ(read(fds[0], &back, 1), -1);
  EXPECT_EQ(aio2_call(nullptr, r.io(), ev, sizeof ev), 64);
  EXPECT_EQ(read(fds[0], &back, 1), 1);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
