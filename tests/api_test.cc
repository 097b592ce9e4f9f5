// SPDX-License-Identifier: MIT
// The entry points, one behaviour and one error at a time: setup's version,
// size, flag, policy and io_uring rules; submit's validation of every field,
// the same under every policy; getevents' waiting and buffer rules; call;
// the pool's cancel (policy_test.cc has cancel on every path); the eventfd;
// destroy.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "proc_util.h"
#include "test_util.h"

namespace {

using aio2_test::thread_blocked_in;
using aio2_test::thread_count;
using aio2_test::settled_thread_count;
using aio2_test::ctx_ptr;
using aio2_test::make_ctx;
using aio2_test::make_policy_ctx;
using aio2_test::make_pool_ctx;
using aio2_test::policy_param_name;
using aio2_test::wait_events;

using aio2_test::req;

const aio2_event &as_event(const std::vector<unsigned char> &v) {
  return *reinterpret_cast<const aio2_event *>(v.data());
}

// ---- setup --------------------------------------------------------------

TEST(Setup, RefusesVersionsItDoesNotImplement) {
  aio2_ctx *c = nullptr;
  EXPECT_EQ(aio2_setup(0, nullptr, &c), -EPROTONOSUPPORT);
  EXPECT_EQ(aio2_setup(AIO2_ABI_VERSION + 1, nullptr, &c), -EPROTONOSUPPORT);
  EXPECT_EQ(c, nullptr);
}

TEST(Setup, DefaultsWithoutParams) {
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, nullptr, &c), 0);
  EXPECT_NE(aio2_ring_get(c), nullptr);
  EXPECT_EQ(aio2_eventfd(c), -ENOENT);
  EXPECT_EQ(aio2_destroy(c), 0);
}

TEST(Setup, RefusesBadParams) {
  aio2_ctx *c = nullptr;
  aio2_params p{};
  p.size = sizeof p;
  EXPECT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, nullptr), -EINVAL);
  auto bad = [&](auto change, int err) {
    aio2_params q{};
    q.size = sizeof q;
    change(q);
    EXPECT_EQ(aio2_setup(AIO2_ABI_VERSION, &q, &c), err);
  };
  bad([](aio2_params &q) { q.size = 8; }, -EINVAL);
  bad([](aio2_params &q) { q.flags = 0x80; }, -EINVAL);
  bad([](aio2_params &q) { q.type = 9; }, -EINVAL);
  // A LEGACY context needs io_setup's nr_events in max_inflight.
  bad([](aio2_params &q) { q.type = AIO2_CTX_LEGACY; }, -EINVAL);
  bad([](aio2_params &q) { q.ring_bytes = 5000; }, -EINVAL);
  bad([](aio2_params &q) { q.ring_bytes = 2048; }, -EINVAL);
  bad([](aio2_params &q) { q.reserved = 1; }, -EINVAL);
  bad([](aio2_params &q) { q.reserved = 0x80000000u; }, -EINVAL);
  for (const uint32_t n : {65u, 1000u, 0xffffffffu})
    bad([n](aio2_params &q) { q.uring_instances = n; }, -EINVAL);
  bad([](aio2_params &q) { q.flags = 0x4; }, -EINVAL);  // the first unknown setup flag
  bad([](aio2_params &q) { q.policy = AIO2_POLICY_POOL + 1; }, -EINVAL);
  bad([](aio2_params &q) { q.policy = 0xffffffffu; }, -EINVAL);
  for (const uint32_t entries : {3u, 100u, 257u, 32769u, 65536u, 0x80000000u, 0xffffffffu})
    bad([entries](aio2_params &q) { q.uring_entries = entries; }, -EINVAL);
  // Checked even when io_uring will not be used.
  bad([](aio2_params &q) {
    q.flags = AIO2_SETUP_NO_URING;
    q.uring_entries = 3;
  }, -EINVAL);
  bad([](aio2_params &q) {
    q.flags = AIO2_SETUP_NO_URING;
    q.policy = 4;
  }, -EINVAL);
  bad([](aio2_params &q) {
    q.type = AIO2_CTX_SYNC;
    q.flags = AIO2_SETUP_EVENTFD;
  }, -EINVAL);
}

TEST(Setup, ReportsWhatIsInForce) {
  aio2_params p{};
  p.size = sizeof p;
  p.ring_bytes = 8192;
  p.flags = AIO2_SETUP_EVENTFD;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  EXPECT_EQ(p.ring_bytes, 8192u);
  EXPECT_EQ(p.max_inflight, 65536u);
  EXPECT_GT(p.bounded_workers, 0u);
  EXPECT_GE(p.eventfd, 0);
  EXPECT_EQ(aio2_eventfd(c), p.eventfd);
  const uint64_t want = AIO2_FEAT_RING | AIO2_FEAT_SYNC | AIO2_FEAT_EVENTFD | AIO2_FEAT_OVERFLOW |
                        AIO2_FEAT_POOL | AIO2_FEAT_CANCEL | AIO2_FEAT_INLINE;
  EXPECT_EQ(p.features & want, want);
  EXPECT_EQ(aio2_ring_get(c)->data_bytes, 8192u);
  EXPECT_EQ(aio2_destroy(c), 0);
}

// Every policy is accepted and read back as given; uring_entries reads back
// what is in force: the value asked for (256 by default) with io_uring, 0
// without it.
TEST(Setup, PolicyAndUringEntriesAreReadBack) {
  for (uint32_t policy = AIO2_POLICY_AUTO; policy <= AIO2_POLICY_POOL; policy++) {
    for (const uint32_t entries : {0u, 1u, 64u, 4096u}) {
      aio2_params p{};
      p.size = sizeof p;
      p.policy = policy;
      p.uring_entries = entries;
      aio2_ctx *c = nullptr;
      ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0) << policy << " " << entries;
      EXPECT_EQ(p.policy, policy);
      EXPECT_EQ(p.reserved, 0u);
      EXPECT_TRUE(p.features & AIO2_FEAT_INLINE);
      if (p.features & AIO2_FEAT_URING)
        EXPECT_EQ(p.uring_entries, entries ? entries : 256u) << policy;
      else
        EXPECT_EQ(p.uring_entries, 0u) << policy;
      EXPECT_EQ(aio2_destroy(c), 0);
    }
  }
  // The largest size allowed.
  aio2_params p{};
  p.size = sizeof p;
  p.uring_entries = 32768;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  EXPECT_EQ(p.uring_entries, (p.features & AIO2_FEAT_URING) ? 32768u : 0u);
  EXPECT_EQ(aio2_destroy(c), 0);
}

// uring_instances reads back the io_uring instances made: as many as asked
// (1 to 64), twice the CPUs this process may run on (at most 16) by
// default, 1 for a LEGACY context, 0 without io_uring.
TEST(Setup, UringInstancesAreReadBack) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const uint32_t dflt = std::min<uint32_t>(2 * static_cast<uint32_t>(CPU_COUNT(&set)), 16);
  for (const uint32_t asked : {0u, 1u, 3u, 64u}) {
    for (const uint32_t type : {AIO2_CTX_RING, AIO2_CTX_LEGACY}) {
      aio2_params p{};
      p.size = sizeof p;
      p.type = type;
      p.max_inflight = 64;
      p.uring_instances = asked;
      aio2_ctx *c = nullptr;
      ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0) << asked;
      const uint32_t want = !(p.features & AIO2_FEAT_URING) ? 0
                            : type == AIO2_CTX_LEGACY       ? 1
                            : asked                         ? asked
                                                            : dflt;
      EXPECT_EQ(p.uring_instances, want) << asked << " type " << type;
      EXPECT_EQ(p.reserved, 0u);
      EXPECT_EQ(aio2_destroy(c), 0);
    }
  }
  aio2_params p{};
  p.size = sizeof p;
  p.flags = AIO2_SETUP_NO_URING;
  p.uring_instances = 8;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  EXPECT_EQ(p.uring_instances, 0u);
  EXPECT_EQ(aio2_destroy(c), 0);
}

TEST(Setup, NoUringMeansNoUringFeatureAndNoEntries) {
  for (uint32_t policy = AIO2_POLICY_AUTO; policy <= AIO2_POLICY_POOL; policy++) {
    aio2_params p{};
    p.size = sizeof p;
    p.flags = AIO2_SETUP_NO_URING;
    p.policy = policy;
    p.uring_entries = 64;
    aio2_ctx *c = nullptr;
    ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
    EXPECT_FALSE(p.features & AIO2_FEAT_URING) << policy;
    EXPECT_TRUE(p.features & AIO2_FEAT_INLINE);
    EXPECT_TRUE(p.features & AIO2_FEAT_POOL);
    EXPECT_EQ(p.uring_entries, 0u);
    EXPECT_EQ(p.flags, AIO2_SETUP_NO_URING);
    EXPECT_EQ(aio2_destroy(c), 0);
  }
  // A SYNC context takes the flag too.
  aio2_params p{};
  p.size = sizeof p;
  p.type = AIO2_CTX_SYNC;
  p.flags = AIO2_SETUP_NO_URING;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  EXPECT_FALSE(p.features & AIO2_FEAT_URING);
  EXPECT_EQ(aio2_destroy(c), 0);
}

TEST(Setup, OlderShorterParamsKeepWorkingAndAreNotOverrun) {
  struct {
    aio2_params p;
    unsigned char guard[8];
  } s;
  std::memset(&s, 0xa5, sizeof s);
  std::memset(&s.p, 0, AIO2_PARAMS_SIZE_MIN);
  s.p.size = AIO2_PARAMS_SIZE_MIN;  // size, type, flags, max_inflight only
  s.p.max_inflight = 77;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &s.p, &c), 0);
  EXPECT_EQ(s.p.max_inflight, 77u);
  const auto *tail = reinterpret_cast<const unsigned char *>(&s.p) + AIO2_PARAMS_SIZE_MIN;
  for (size_t i = 0; i < sizeof s - AIO2_PARAMS_SIZE_MIN; i++) ASSERT_EQ(tail[i], 0xa5) << i;
  EXPECT_EQ(aio2_destroy(c), 0);
}

TEST(Setup, NewerLongerParamsNeedAZeroTail) {
  struct {
    aio2_params p;
    uint64_t future[2];
  } s{};
  s.p.size = sizeof s;
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &s.p, &c), 0);
  EXPECT_EQ(aio2_destroy(c), 0);
  s.future[1] = 1;
  s.p.size = sizeof s;
  EXPECT_EQ(aio2_setup(AIO2_ABI_VERSION, &s.p, &c), -E2BIG);
}

// ---- handles ------------------------------------------------------------

TEST(Handles, NullAndDestroyedContextsAreRefused) {
  alignas(8) unsigned char buf[64];
  const aio2_iocb io = req(SYS_getppid, 1);
  EXPECT_EQ(aio2_submit(nullptr, &io, sizeof io), -EBADF);
  EXPECT_EQ(aio2_getevents(nullptr, 0, buf, sizeof buf, nullptr), -EBADF);
  EXPECT_EQ(aio2_cancel(nullptr, 1), -EBADF);
  EXPECT_EQ(aio2_destroy(nullptr), -EBADF);
  EXPECT_EQ(aio2_ring_get(nullptr), nullptr);
  EXPECT_EQ(aio2_eventfd(nullptr), -EBADF);
  aio2_ctx *c = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, nullptr, &c), 0);
  ASSERT_EQ(aio2_destroy(c), 0);
  EXPECT_EQ(aio2_submit(c, &io, sizeof io), -EBADF);
  EXPECT_EQ(aio2_getevents(c, 0, buf, sizeof buf, nullptr), -EBADF);
  EXPECT_EQ(aio2_cancel(c, 1), -EBADF);
  EXPECT_EQ(aio2_call(c, &io, buf, sizeof buf), -EBADF);
  EXPECT_EQ(aio2_ring_get(c), nullptr);
  EXPECT_EQ(aio2_destroy(c), -EBADF);
}

TEST(Handles, SyncContextOnlyCalls) {
  aio2_params p{};
  p.type = AIO2_CTX_SYNC;
  auto c = make_ctx(p);
  alignas(8) unsigned char buf[64];
  const aio2_iocb io = req(SYS_getppid, 5);
  EXPECT_EQ(aio2_submit(c.get(), &io, sizeof io), -EBADFD);
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf, sizeof buf, nullptr), -EBADFD);
  EXPECT_EQ(aio2_cancel(c.get(), 5), -EBADFD);
  EXPECT_EQ(aio2_ring_get(c.get()), nullptr);
  ASSERT_EQ(aio2_call(c.get(), &io, buf, sizeof buf), 24);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(buf)->res, getppid());
}

// ---- submit validation ----------------------------------------------------

// An attribute id in aio2's range that nothing registers.
constexpr uint16_t kUnknownAttr = 0x7ff0;

// Submit-time validation gives the same -errno whatever the context's policy.
class Submit : public ::testing::TestWithParam<uint32_t> {
 protected:
  ctx_ptr c = make_policy_ctx(GetParam());
  // A buffer for hand-built requests, 8-aligned.
  alignas(8) unsigned char b[512] = {};
  aio2_iocb *io = reinterpret_cast<aio2_iocb *>(b);
  void SetUp() override { *io = req(SYS_getppid, 42); }
  ssize_t submit(size_t bytes) { return aio2_submit(c.get(), b, bytes); }
  void add_attr(uint16_t id, uint16_t flags, uint32_t len) {
    aio2_attr a{id, flags, len};
    std::memcpy(b + io->len, &a, sizeof a);
    io->len += len;
  }
};

TEST_P(Submit, AcceptsAWellFormedRequestAndCompletesIt) {
  ASSERT_EQ(submit(sizeof *io), 72);
  const auto evs = wait_events(c.get(), 1);
  EXPECT_EQ(as_event(evs[0]).user_data, 42u);
  EXPECT_EQ(as_event(evs[0]).res, getppid());
  EXPECT_EQ(as_event(evs[0]).len, 24u);
}

TEST_P(Submit, ZeroBytesIsNothing) { EXPECT_EQ(aio2_submit(c.get(), nullptr, 0), 0); }

TEST_P(Submit, RefusesMalformedRequests) {
  EXPECT_EQ(aio2_submit(c.get(), nullptr, 72), -EINVAL);
  EXPECT_EQ(aio2_submit(c.get(), b + 4, 72), -EINVAL);  // misaligned
  EXPECT_EQ(submit(64), -EINVAL);                        // shorter than a request
  io->len = 64;
  EXPECT_EQ(submit(72), -EINVAL);  // len below 72
  io->len = 76;
  EXPECT_EQ(submit(80), -EINVAL);  // not a multiple of 8
  io->len = 80;
  EXPECT_EQ(submit(72), -EINVAL);  // says more than the buffer holds
  io->len = 72;
  io->reserved = 1;
  EXPECT_EQ(submit(72), -EINVAL);
  io->reserved = 0;
  io->flags = 0x100;
  EXPECT_EQ(submit(72), -EINVAL);  // unknown executor hint
  io->flags = AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED;
  EXPECT_EQ(submit(72), -EINVAL);  // contradictory hints
  io->flags = 0;
  io->len = 72 + 65536;
  EXPECT_EQ(aio2_submit(c.get(), b, 72 + 65536), -E2BIG);
}

TEST_P(Submit, RefusesMalformedAttributes) {
  add_attr(kUnknownAttr, 0, 4);  // shorter than an attribute header
  io->len = 80;
  EXPECT_EQ(submit(80), -EINVAL);
  *io = req(SYS_getppid, 1);
  add_attr(kUnknownAttr, 0, 12);  // not a multiple of 8
  io->len = 88;
  EXPECT_EQ(submit(88), -EINVAL);
  *io = req(SYS_getppid, 1);
  add_attr(kUnknownAttr, 0, 16);
  io->len = 80;  // the attribute runs past its request
  EXPECT_EQ(submit(80), -EINVAL);
  *io = req(SYS_getppid, 1);
  add_attr(kUnknownAttr, 0x40, 8);  // unknown attribute flag
  EXPECT_EQ(submit(io->len), -EINVAL);
  *io = req(SYS_getppid, 1);
  add_attr(kUnknownAttr, AIO2_ATTR_F_REQUIRED, 8);  // unknown: cannot be honoured
  EXPECT_EQ(submit(io->len), -EOPNOTSUPP);
}

TEST_P(Submit, RefusesUnknownAndForbiddenSystemCalls) {
  io->nr = 100000;
  EXPECT_EQ(submit(72), -ENOSYS);
  for (const long nr : {SYS_exit, SYS_exit_group, SYS_execve, SYS_clone, SYS_fork, SYS_setuid,
                        SYS_setgroups, SYS_rt_sigreturn, SYS_unshare, SYS_seccomp}) {
    io->nr = static_cast<uint32_t>(nr);
    EXPECT_EQ(submit(72), -EPERM) << nr;
  }
}

// The path field (bits 2..4) holds AIO2_IOCB_POLICY(AIO2_POLICY_*) or zero;
// 5, 6 and 7 are refused, alone or with the other hints.
TEST_P(Submit, RefusesAPathFieldOutOfRange) {
  for (const uint32_t v : {5u, 6u, 7u}) {
    for (const uint32_t hint : {0u, AIO2_IOCB_BOUNDED, AIO2_IOCB_UNBOUNDED}) {
      io->flags = (v << AIO2_IOCB_POLICY_SHIFT) | hint;
      ASSERT_EQ(io->flags & ~AIO2_IOCB_ALL, 0u);
      EXPECT_EQ(submit(72), -EINVAL) << v << " " << hint;
      alignas(8) unsigned char ev[64];
      EXPECT_EQ(aio2_call(nullptr, io, ev, sizeof ev), -EINVAL) << v;
      EXPECT_EQ(aio2_call(c.get(), io, ev, sizeof ev), -EINVAL) << v;
    }
  }
  // Nothing was queued.
  alignas(8) unsigned char buf[256];
  const timespec poll{0, 20000000};
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &poll), 0);
}

TEST_P(Submit, AcceptsEveryPathOverride) {
  for (uint32_t policy = AIO2_POLICY_AUTO; policy <= AIO2_POLICY_POOL; policy++) {
    *io = req(SYS_getppid, 100 + policy);
    io->flags = AIO2_IOCB_POLICY(policy);
    ASSERT_EQ(submit(72), 72) << policy;
    const auto evs = wait_events(c.get(), 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(as_event(evs[0]).user_data, 100u + policy);
    EXPECT_EQ(as_event(evs[0]).res, getppid());
  }
  *io = req(SYS_getppid, 200);
  io->flags = AIO2_IOCB_POLICY(AIO2_POLICY_POOL) | AIO2_IOCB_BOUNDED;
  ASSERT_EQ(submit(72), 72);
  EXPECT_EQ(as_event(wait_events(c.get(), 1)[0]).res, getppid());
}

// Validation errors of attributes, whatever the path: sizes each built-in
// accepts, tags, REQUIRED on an unknown id.
TEST_P(Submit, RefusesBadBuiltinAttributePayloads) {
  auto with = [&](uint16_t id, const void *payload, size_t n) {
    *io = req(SYS_getppid, 1);
    EXPECT_NE(aio2_attr_add(io, sizeof b, id, 0, payload, n), nullptr);
    return submit(io->len);
  };
  const unsigned char big[AIO2_TAG_MAX + 1] = {};
  EXPECT_EQ(with(AIO2_ATTR_TAG, big, sizeof big), -EINVAL);
  EXPECT_EQ(with(AIO2_ATTR_TAG, nullptr, 0), -EINVAL);
  const uint64_t two[2] = {1, 2};
  EXPECT_EQ(with(AIO2_ATTR_DEADLINE, two, sizeof two), -EINVAL);
  EXPECT_EQ(with(AIO2_ATTR_DEADLINE, nullptr, 0), -EINVAL);
  const aio2_attr_ioprio reserved{(2u << 13) | 6u, 1};
  EXPECT_EQ(with(AIO2_ATTR_IOPRIO, &reserved, sizeof reserved), -EINVAL);
  EXPECT_EQ(with(AIO2_ATTR_IOPRIO, two, sizeof two), -EINVAL);
  // Nothing was queued.
  alignas(8) unsigned char buf[256];
  const timespec poll{0, 20000000};
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &poll), 0);
}

TEST_P(Submit, StopsAtTheFirstBadRequestAndRunsWhatCameBefore) {
  aio2_iocb three[3] = {req(SYS_getppid, 1), req(SYS_getppid, 2), req(SYS_execve, 3)};
  EXPECT_EQ(aio2_submit(c.get(), three, sizeof three), 144);
  const auto evs = wait_events(c.get(), 2);
  std::set<uint64_t> got{as_event(evs[0]).user_data, as_event(evs[1]).user_data};
  EXPECT_EQ(got, (std::set<uint64_t>{1, 2}));
  alignas(8) unsigned char buf[256];
  const timespec poll{0, 20000000};
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &poll), 0);  // nothing for #3
}

TEST_P(Submit, UnknownAttributesComeBackUnsupportedInOrder) {
  add_attr(0x7ff1, 0, 8);
  add_attr(0x7ff2, 0, 24);
  add_attr(300, 0, 16);
  ASSERT_EQ(submit(io->len), io->len);
  const auto evs = wait_events(c.get(), 1);
  const aio2_event &ev = as_event(evs[0]);
  EXPECT_EQ(ev.len, 24u + 3 * 8);
  EXPECT_EQ(ev.res, getppid());
  const uint16_t ids[] = {0x7ff1, 0x7ff2, 300};
  for (unsigned i = 0; i < 3; i++) {
    const aio2_attr_ret *r = aio2_event_attr(&ev, i);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->id, ids[i]);
    EXPECT_EQ(r->status, AIO2_ATTR_UNSUPPORTED);
    EXPECT_EQ(r->len, 8u);
  }
  EXPECT_EQ(aio2_event_attr(&ev, 3), nullptr);
  EXPECT_EQ(aio2_event_find_attr(&ev, 0x7ff2), aio2_event_attr(&ev, 1));
}

INSTANTIATE_TEST_SUITE_P(Policies, Submit,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_INLINE, AIO2_POLICY_URING,
                                           AIO2_POLICY_POOL),
                         policy_param_name);

// Every policy that does not run a pipe read in the submitting thread.
class SubmitLimit : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SubmitLimit, InFlightLimitGivesEagainAndLosesNothing) {
  aio2_params p{};
  p.max_inflight = 4;
  p.bounded_workers = 1;
  auto c = make_policy_ctx(GetParam(), p);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // Four reads that block on an empty pipe fill the limit.
  std::vector<aio2_iocb> reads;
  uint64_t sink[4];
  for (uint64_t i = 0; i < 4; i++)
    reads.push_back(req(SYS_read, i, static_cast<uint64_t>(fds[0]),
                        reinterpret_cast<uint64_t>(&sink[i]), 8));
  ASSERT_EQ(aio2_submit(c.get(), reads.data(), reads.size() * sizeof(aio2_iocb)), 4 * 72);
  // A call no policy runs inline (whether an inline getppid needs a slot is
  // not specified).
  static const timespec zero{0, 0};
  const aio2_iocb more = req(SYS_nanosleep, 99, reinterpret_cast<uint64_t>(&zero), 0);
  EXPECT_EQ(aio2_submit(c.get(), &more, sizeof more), -EAGAIN);
  const uint64_t words[4] = {10, 11, 12, 13};
  ASSERT_EQ(write(fds[1], words, sizeof words), static_cast<ssize_t>(sizeof words));
  const auto evs = wait_events(c.get(), 4);
  for (const auto &e : evs) EXPECT_EQ(as_event(e).res, 8);
  EXPECT_EQ(aio2_submit(c.get(), &more, sizeof more), 72);  // room again
  EXPECT_EQ(as_event(wait_events(c.get(), 1)[0]).user_data, 99u);
  close(fds[0]);
  close(fds[1]);
}

INSTANTIATE_TEST_SUITE_P(Policies, SubmitLimit,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_URING, AIO2_POLICY_POOL),
                         policy_param_name);

// ---- getevents ------------------------------------------------------------

TEST(GetEvents, RefusesBadArguments) {
  auto c = make_ctx();
  alignas(8) unsigned char buf[64];
  EXPECT_EQ(aio2_getevents(c.get(), 0, nullptr, 64, nullptr), -EINVAL);
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf + 4, 32, nullptr), -EINVAL);
  const timespec bad{0, 1000000000};
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf, sizeof buf, &bad), -EINVAL);
  const timespec neg{-1, 0};
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf, sizeof buf, &neg), -EINVAL);
}

TEST(GetEvents, ZeroTimeoutPollsAndTimeoutWaits) {
  auto c = make_ctx();
  alignas(8) unsigned char buf[64];
  const timespec zero{0, 0};
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &zero), 0);
  const timespec short_wait{0, 30000000};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &short_wait), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
}

TEST(GetEvents, HugeTimeoutWaitsForTheEvent) {
  auto c = make_ctx();
  const timespec nap{0, 20000000};
  const aio2_iocb io = req(SYS_nanosleep, 6, reinterpret_cast<uint64_t>(&nap), 0);
  ASSERT_EQ(aio2_submit(c.get(), &io, sizeof io), 72);
  alignas(8) unsigned char buf[64];
  const timespec forever{INT64_MAX, 999999999};  // would overflow a deadline in ns
  EXPECT_EQ(aio2_getevents(c.get(), 1, buf, sizeof buf, &forever), 24);
}

TEST(EventWalk, StopsAtAnEventWhoseLengthIsNotSound) {
  alignas(8) unsigned char buf[96] = {};
  auto put = [&](size_t off, uint32_t len) {
    aio2_event ev{};
    ev.len = len;
    std::memcpy(buf + off, &ev, sizeof ev);
  };
  put(0, 24);
  put(24, 32);
  put(56, 0);  // corrupt: a walk that trusted it would never end
  const aio2_event *e = aio2_event_next(buf, sizeof buf, nullptr);
  ASSERT_NE(e, nullptr);
  e = aio2_event_next(buf, sizeof buf, e);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->len, 32u);
  EXPECT_EQ(aio2_event_next(buf, sizeof buf, e), nullptr);
  put(56, 12);  // not a multiple of 8
  EXPECT_EQ(aio2_event_next(buf, sizeof buf, e), nullptr);
  put(56, 48);  // past the buffer
  EXPECT_EQ(aio2_event_next(buf, sizeof buf, e), nullptr);
  put(56, 40);  // exactly to the end: sound
  EXPECT_NE(aio2_event_next(buf, sizeof buf, e), nullptr);
  // An attribute result that lies about its length ends the attribute walk.
  aio2_attr_ret r{5, AIO2_ATTR_OK, 0};
  std::memcpy(buf + 24 + 24, &r, sizeof r);  // inside the 32-byte event
  EXPECT_EQ(aio2_attr_next(e, nullptr), nullptr);
}

TEST(GetEvents, TooSmallBufferSaysHowMuchItNeedsAndKeepsTheEvent) {
  auto c = make_ctx();
  alignas(8) unsigned char b[128] = {};
  auto *io = reinterpret_cast<aio2_iocb *>(b);
  *io = req(SYS_getppid, 3);
  ASSERT_NE(aio2_attr_add(io, sizeof b, 11, 0, nullptr, 0), nullptr);
  ASSERT_NE(aio2_attr_add(io, sizeof b, 12, 0, nullptr, 0), nullptr);
  ASSERT_EQ(aio2_submit(c.get(), b, io->len), io->len);
  alignas(8) unsigned char small[32];
  const timespec ts{5, 0};
  ssize_t rc;
  while ((rc = aio2_getevents(c.get(), 1, small, sizeof small, &ts)) == 0) {
  }
  ASSERT_EQ(rc, -EINVAL);
  uint32_t need;
  std::memcpy(&need, small, 4);
  EXPECT_EQ(need, 24u + 2 * 8);
  const auto evs = wait_events(c.get(), 1);  // still there
  EXPECT_EQ(as_event(evs[0]).user_data, 3u);
}

TEST(GetEvents, WaitsForMinEvents) {
  auto c = make_ctx();
  std::vector<aio2_iocb> reqs;
  const timespec nap{0, 20000000};
  for (uint64_t i = 0; i < 3; i++)
    reqs.push_back(req(SYS_nanosleep, i, reinterpret_cast<uint64_t>(&nap), 0));
  ASSERT_EQ(aio2_submit(c.get(), reqs.data(), 3 * sizeof(aio2_iocb)), 3 * 72);
  alignas(8) unsigned char buf[1024];
  size_t total = 0;
  while (total < 3 * 24) {
    const ssize_t got = aio2_getevents(c.get(), 3, buf, sizeof buf, nullptr);
    ASSERT_GT(got, 0);
    total += static_cast<size_t>(got);
  }
  EXPECT_EQ(total, 3u * 24);
}

// ---- overflow -------------------------------------------------------------

TEST(Overflow, RingSizeNeverLimitsOutstandingRequests) {
  aio2_params p{};
  p.ring_bytes = 4096;  // 170 events of 24 bytes
  p.max_inflight = 200000;
  auto c = make_ctx(p);
  aio2_ring *ring = aio2_ring_get(c.get());
  constexpr unsigned kN = 100000;
  std::vector<aio2_iocb> reqs;
  for (unsigned i = 0; i < kN; i++) reqs.push_back(req(SYS_getppid, i));
  size_t off = 0;
  const size_t bytes = reqs.size() * sizeof(aio2_iocb);
  while (off < bytes) {
    const ssize_t n = aio2_submit(c.get(), reinterpret_cast<unsigned char *>(reqs.data()) + off,
                                  bytes - off);
    ASSERT_GT(n, 0) << aio2_strerror(static_cast<int>(n));
    off += static_cast<size_t>(n);
  }
  // Wait until every request has completed somewhere (ring or overflow).
  const auto t0 = std::chrono::steady_clock::now();
  while (!(aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW) ||
         aio2_ring_used(ring) + 24 <= 4096 - 24) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW);
  // A user-space reaper empties the ring, then is told to call in.
  alignas(8) unsigned char buf[4096];
  std::vector<uint8_t> seen(kN);
  uint64_t events = 0;
  auto account = [&](const unsigned char *b, size_t n) {
    for (auto *ev = aio2_event_next(b, n, nullptr); ev; ev = aio2_event_next(b, n, ev)) {
      ASSERT_LT(ev->user_data, kN);
      ASSERT_EQ(ev->res, getppid());
      seen[ev->user_data]++;
      events++;
    }
  };
  int64_t r;
  while ((r = aio2_reap_events(ring, buf, sizeof buf)) > 0) account(buf, static_cast<size_t>(r));
  EXPECT_EQ(r, -EAGAIN);  // ring empty, OVERFLOW set: call aio2_getevents
  while (events < kN) {
    const timespec ts{10, 0};
    const ssize_t n = aio2_getevents(c.get(), 1, buf, sizeof buf, &ts);
    ASSERT_GT(n, 0);
    account(buf, static_cast<size_t>(n));
  }
  EXPECT_FALSE(aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW);
  for (unsigned i = 0; i < kN; i++) ASSERT_EQ(seen[i], 1) << i;
  EXPECT_EQ(aio2_reap_events(ring, buf, sizeof buf), 0);
}

// ---- call ---------------------------------------------------------------------

TEST(Call, RunsInTheCallingThreadWithoutAContext) {
  alignas(8) unsigned char ev[64];
  const aio2_iocb io = req(SYS_gettid, 8);
  ASSERT_EQ(aio2_call(nullptr, &io, ev, sizeof ev), 24);
  const auto *e = reinterpret_cast<aio2_event *>(ev);
  EXPECT_EQ(e->user_data, 8u);
  EXPECT_EQ(e->res, static_cast<int64_t>(syscall(SYS_gettid)));  // this thread
}

TEST(Call, RefusesBeforeRunning) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  const char msg[8] = "written";
  const aio2_iocb w = req(SYS_write, 1, static_cast<uint64_t>(fds[1]),
                          reinterpret_cast<uint64_t>(msg), sizeof msg);
  alignas(8) unsigned char ev[64];
  EXPECT_EQ(aio2_call(nullptr, &w, ev, 16), -ENOBUFS);
  char back[8];
  EXPECT_EQ(read(fds[0], back, sizeof back), -1);  // the write did not happen
  EXPECT_EQ(errno, EAGAIN);
  const aio2_iocb forbidden = req(SYS_setuid, 1, 0);
  EXPECT_EQ(aio2_call(nullptr, &forbidden, ev, sizeof ev), -EPERM);
  EXPECT_EQ(aio2_call(nullptr, nullptr, ev, sizeof ev), -EINVAL);
  EXPECT_EQ(aio2_call(nullptr, &w, nullptr, 64), -EINVAL);
  ASSERT_EQ(aio2_call(nullptr, &w, ev, sizeof ev), 24);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, 8);
  EXPECT_EQ(read(fds[0], back, sizeof back), 8);
  close(fds[0]);
  close(fds[1]);
}

TEST(Call, ReturnsTheSystemCallsErrorInTheEvent) {
  alignas(8) unsigned char ev[64];
  const aio2_iocb io = req(SYS_close, 1, 987654);
  ASSERT_EQ(aio2_call(nullptr, &io, ev, sizeof ev), 24);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, -EBADF);
}

// ---- cancel ---------------------------------------------------------------------

// The pool's own cancellation (a worker blocked in read(2) gets the signal);
// policy_test.cc covers cancel on every policy.
TEST(Cancel, InterruptsAReadBlockedOnAnEmptyPipe) {
  auto c = make_pool_ctx();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  char buf[8];
  const aio2_iocb rd = req(SYS_read, 77, static_cast<uint64_t>(fds[0]),
                           reinterpret_cast<uint64_t>(buf), sizeof buf);
  ASSERT_EQ(aio2_submit(c.get(), &rd, sizeof rd), 72);
  // Wait until a worker is really inside read(2) on the pipe.
  const auto t0 = std::chrono::steady_clock::now();
  while (!thread_blocked_in(SYS_read, fds[0])) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(aio2_cancel(c.get(), 77), -EALREADY);
  const auto evs = wait_events(c.get(), 1);
  const aio2_event &ev = as_event(evs[0]);
  EXPECT_EQ(ev.user_data, 77u);
  EXPECT_EQ(ev.res, -EINTR);
  EXPECT_EQ(aio2_cancel(c.get(), 77), -ENOENT);
  close(fds[0]);
  close(fds[1]);
}

TEST(Cancel, QueuedRequestNeverRuns) {
  auto c = make_pool_ctx(1);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  // The only bounded worker sleeps; a write queued behind it is cancelled.
  const timespec nap{0, 200000000};
  aio2_iocb two[2] = {req(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap), 0),
                      req(SYS_write, 2, static_cast<uint64_t>(fds[1]),
                          reinterpret_cast<uint64_t>("x"), 1)};
  two[0].flags = AIO2_IOCB_BOUNDED;
  two[1].flags = AIO2_IOCB_BOUNDED;
  ASSERT_EQ(aio2_submit(c.get(), two, sizeof two), 144);
  EXPECT_EQ(aio2_cancel(c.get(), 2), 0);
  EXPECT_EQ(aio2_cancel(c.get(), 2), -ENOENT);
  EXPECT_EQ(aio2_cancel(c.get(), 12345), -ENOENT);
  const auto evs = wait_events(c.get(), 2);
  for (const auto &e : evs) {
    const aio2_event &ev = as_event(e);
    if (ev.user_data == 2) {
      EXPECT_EQ(ev.res, -ECANCELED);
      EXPECT_EQ(ev.flags, AIO2_EVENT_CANCELED);
    } else {
      EXPECT_EQ(ev.res, 0);
    }
  }
  char x;
  EXPECT_EQ(read(fds[0], &x, 1), -1);  // the write never ran
  close(fds[0]);
  close(fds[1]);
}

// ---- eventfd --------------------------------------------------------------------

TEST(EventFd, DrivesAnEpollLoop) {
  aio2_params p{};
  p.flags = AIO2_SETUP_EVENTFD;
  auto c = make_ctx(p);
  const int efd = aio2_eventfd(c.get());
  ASSERT_GE(efd, 0);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event want{};
  want.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &want), 0);
  constexpr unsigned kN = 1000;
  std::vector<aio2_iocb> reqs;
  for (unsigned i = 0; i < kN; i++) reqs.push_back(req(SYS_getppid, i));
  ASSERT_EQ(aio2_submit(c.get(), reqs.data(), reqs.size() * sizeof(aio2_iocb)),
            static_cast<ssize_t>(kN * 72));
  unsigned got = 0, wakeups = 0;
  uint64_t counted = 0;
  alignas(8) unsigned char buf[4096];
  aio2_ring *ring = aio2_ring_get(c.get());
  while (got < kN) {
    epoll_event ev{};
    ASSERT_EQ(epoll_wait(ep, &ev, 1, 10000), 1) << "no wake-up with " << got << " reaped";
    wakeups++;
    uint64_t count;
    ASSERT_EQ(read(efd, &count, sizeof count), 8);
    counted += count;
    int64_t n;
    while ((n = aio2_reap_events(ring, buf, sizeof buf)) != 0) {
      if (n == -EAGAIN) n = aio2_getevents(c.get(), 0, buf, sizeof buf, nullptr);
      ASSERT_GE(n, 0);
      if (n == 0) break;
      for (auto *e = aio2_event_next(buf, static_cast<size_t>(n), nullptr); e;
           e = aio2_event_next(buf, static_cast<size_t>(n), e))
        got++;
    }
  }
  EXPECT_EQ(got, kN);
  // One count per event: what the wake-ups read adds up to the events, and
  // no count is left over.
  EXPECT_EQ(counted, kN);
  EXPECT_GE(wakeups, 1u);
  EXPECT_LE(wakeups, kN);
  uint64_t left = 0;
  EXPECT_EQ(read(efd, &left, sizeof left), -1) << left << " counts left after every event";
  RecordProperty("epoll_wakeups", static_cast<int>(wakeups));
  close(ep);
}

// ---- destroy ----------------------------------------------------------------------

TEST(Destroy, WithTenThousandRequestsInFlight) {
  // A thread first, joined: what a runtime starts with the first thread
  // (ThreadSanitizer's background thread) is there before the count.
  std::thread([] {}).join();
  const size_t threads_before = settled_thread_count();
  aio2_params p{};
  p.ring_bytes = 4096;
  p.bounded_workers = 2;
  aio2_ctx *c = nullptr;
  p.size = sizeof p;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &c), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<aio2_iocb> reqs;
  const timespec nap{0, 1000000};
  static char sink[16][8];
  for (unsigned i = 0; i < 10000; i++) {
    if (i % 1000 == 0)  // some block for ever on an empty pipe
      reqs.push_back(req(SYS_read, i, static_cast<uint64_t>(fds[0]),
                         reinterpret_cast<uint64_t>(sink[i / 1000]), 8));
    else
      reqs.push_back(req(SYS_nanosleep, i, reinterpret_cast<uint64_t>(&nap), 0));
    reqs.back().flags = i % 1000 ? AIO2_IOCB_BOUNDED : 0;
  }
  ASSERT_EQ(aio2_submit(c, reqs.data(), reqs.size() * sizeof(aio2_iocb)), 10000 * 72);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // A destroy that never returns fails here, with a message, instead of
  // running into ctest's timeout: 2 workers have at most 10000 naps of 1 ms
  // to finish even if none were cancelled (20 s), so 120 s is a hang.
  std::mutex mu;
  std::condition_variable cv;
  bool returned = false;
  std::thread watchdog([&] {
    std::unique_lock lk(mu);
    if (!cv.wait_for(lk, std::chrono::seconds(120), [&] { return returned; })) {
      std::fprintf(stderr, "Destroy.WithTenThousandRequestsInFlight: aio2_destroy did not "
                           "return within 120 s\n");
      std::abort();
    }
  });
  const int rc = aio2_destroy(c);
  {
    std::lock_guard lk(mu);
    returned = true;
  }
  cv.notify_one();
  watchdog.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(aio2_destroy(c), -EBADF);
  // Every worker has exited (destroy waits for them), and the blocked reads
  // were interrupted, not left to take data written later.
  const auto t0 = std::chrono::steady_clock::now();
  while (thread_count() > threads_before &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // an exited worker's last steps
  EXPECT_EQ(thread_count(), threads_before);
  const char word[8] = {'s', 't', 'i', 'l', 'l', 'h', 'e', 'r'};
  ASSERT_EQ(write(fds[1], word, sizeof word), 8);
  char back[8] = {};
  EXPECT_EQ(read(fds[0], back, sizeof back), 8);
  EXPECT_EQ(std::memcmp(back, word, sizeof word), 0);
  close(fds[0]);
  close(fds[1]);
}

TEST(Pool, IdleWorkersExitAndComeBack) {
  aio2_params p{};
  p.idle_ms = 20;
  auto c = make_policy_ctx(AIO2_POLICY_POOL, p);
  // Blocking reads need one unbounded worker each: eight threads start.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  static uint64_t sink[8];
  std::vector<aio2_iocb> reads;
  for (uint64_t i = 0; i < 8; i++)
    reads.push_back(req(SYS_read, i, static_cast<uint64_t>(fds[0]),
                        reinterpret_cast<uint64_t>(&sink[i]), 8));
  ASSERT_EQ(aio2_submit(c.get(), reads.data(), reads.size() * sizeof(aio2_iocb)), 8 * 72);
  const auto t0 = std::chrono::steady_clock::now();
  while (aio2_test::threads_blocked_in(SYS_read, fds[0]) < 8) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const size_t peak = thread_count();
  const uint64_t words[8] = {};
  ASSERT_EQ(write(fds[1], words, sizeof words), static_cast<ssize_t>(sizeof words));
  ASSERT_EQ(wait_events(c.get(), 8).size(), 8u);
  // With nothing to do they leave after idle_ms.
  while (thread_count() > peak - 8) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // And new work brings a worker back.
  const aio2_iocb one = req(SYS_getppid, 9);
  ASSERT_EQ(aio2_submit(c.get(), &one, sizeof one), 72);
  EXPECT_EQ(as_event(wait_events(c.get(), 1)[0]).res, getppid());
  close(fds[0]);
  close(fds[1]);
}

TEST(Errors, EveryCodeHasAMessage) {
  std::set<std::string> seen;
  for (int e : {EPROTONOSUPPORT, EBADF, EBADFD, EINVAL, E2BIG, ENOSYS, EPERM, EOPNOTSUPP, EAGAIN,
                ENOBUFS, ENOENT, EALREADY, ECANCELED, EBUSY})
    seen.insert(aio2_strerror(-e));
  EXPECT_EQ(seen.size(), 14u);
}

}  // namespace
