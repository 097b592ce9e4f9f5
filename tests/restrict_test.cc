// SPDX-License-Identifier: MIT
// aio2_restrict: a context's allowlist of system calls and attribute ids.
// Allowed requests run on every path (each policy forced per request) and
// through aio2_call; the others are refused with -EPERM where submission
// reports errors (aio2_submit's result, aio2_call's, io_submit's), with
// nothing run and no event; an attribute id outside the list refuses its
// request; the list is fixed once (-EBUSY after); a malformed one fixes
// nothing; and submitters racing the call see either no list or the whole
// one (run under ThreadSanitizer too). The pure check a fuzz target calls
// (allowlist_check_bytes) is tested on its own.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.hpp"
#include "core/allowlist.h"
#include "test_util.h"

namespace {

using aio2_test::ctx_ptr;
using aio2_test::make_ctx;
using aio2_test::reap;
using aio2_test::req_buf;

aio2_restriction sys_entry(long nr) {
  return {AIO2_RESTRICT_SYSCALL, 0, static_cast<uint32_t>(nr)};
}
aio2_restriction attr_entry(uint32_t id) { return {AIO2_RESTRICT_ATTR, 0, id}; }

// A temporary file holding "allowlist", removed on destruction.
struct temp_file {
  std::string path;
  int fd = -1;
  temp_file() {
    char t[] = "/tmp/aio2-restrict-XXXXXX";
    fd = mkstemp(t);
    path = t;
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, "allowlist", 9), 9);
  }
  ~temp_file() {
    if (fd >= 0) close(fd);
    unlink(path.c_str());
  }
};

ssize_t submit(aio2_ctx *c, req_buf &r) { return aio2_submit(c, r.b, r.len()); }

TEST(Restrict, AllowedRunAndOthersAreRefusedWithEperm) {
  ctx_ptr c = make_ctx();
  const aio2_restriction allow[] = {sys_entry(SYS_getppid), sys_entry(SYS_pread64)};
  ASSERT_EQ(aio2_restrict(c.get(), allow, 2), 0);

  req_buf ok(SYS_getppid, 1);
  ASSERT_EQ(submit(c.get(), ok), static_cast<ssize_t>(ok.len()));
  auto ev = reap(c.get(), 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].res(), getppid());

  req_buf no(SYS_getpid, 2);
  EXPECT_EQ(submit(c.get(), no), -EPERM);
  req_buf no2(SYS_write, 3, 1, 0, 0);
  EXPECT_EQ(submit(c.get(), no2), -EPERM);

  // A batch stops at the refused request: the one before it is accepted.
  alignas(8) unsigned char batch[2 * sizeof(aio2_iocb)];
  aio2_prep(reinterpret_cast<aio2_iocb *>(batch), SYS_getppid, 4, 0, 0, 0, 0, 0, 0);
  aio2_prep(reinterpret_cast<aio2_iocb *>(batch + sizeof(aio2_iocb)), SYS_getpid, 5, 0, 0, 0, 0,
            0, 0);
  EXPECT_EQ(aio2_submit(c.get(), batch, sizeof batch), static_cast<ssize_t>(sizeof(aio2_iocb)));
  ev = reap(c.get(), 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user_data(), 4u);
  // Nothing else was posted: the refused requests made no event.
  alignas(8) unsigned char buf[512];
  const timespec zero{0, 0};
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf, sizeof buf, &zero), 0);
}

class RestrictPath : public ::testing::TestWithParam<uint32_t> {};

// Each path, forced per request: the allowed pread runs there, the refused
// pwrite64 is refused before it is routed anywhere.
TEST_P(RestrictPath, AllowedRunsRefusedDoesNot) {
  temp_file f;
  ctx_ptr c = make_ctx();
  const aio2_restriction allow[] = {sys_entry(SYS_pread64), attr_entry(AIO2_ATTR_EXECUTOR)};
  ASSERT_EQ(aio2_restrict(c.get(), allow, 2), 0);
  char data[16] = {};
  req_buf rd(SYS_pread64, 10, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(data), 9, 0);
  rd.path(GetParam()).attr(AIO2_ATTR_EXECUTOR);
  auto ev = aio2_test::submit_one(c.get(), rd);
  EXPECT_EQ(ev.res(), 9);
  EXPECT_EQ(std::string(data, 9), "allowlist");
  EXPECT_NE(ev.path(), 0u);

  const char more[] = "more";
  req_buf wr(SYS_pwrite64, 11, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(more), 4,
             0);
  wr.path(GetParam());
  EXPECT_EQ(submit(c.get(), wr), -EPERM);
  char check[16] = {};
  EXPECT_EQ(pread(f.fd, check, sizeof check, 0), 9) << "the refused write ran";
}

INSTANTIATE_TEST_SUITE_P(Policies, RestrictPath,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_INLINE,
                                           AIO2_POLICY_URING, AIO2_POLICY_POOL),
                         aio2_test::policy_param_name);

TEST(Restrict, AttributeOutsideTheListRefusesItsRequest) {
  ctx_ptr c = make_ctx();
  const aio2_restriction allow[] = {sys_entry(SYS_getppid), attr_entry(AIO2_ATTR_TAG)};
  ASSERT_EQ(aio2_restrict(c.get(), allow, 2), 0);
  const uint64_t tag = 0x1234;
  req_buf tagged(SYS_getppid, 1);
  tagged.attr_of(AIO2_ATTR_TAG, tag);
  auto ev = aio2_test::submit_one(c.get(), tagged);
  EXPECT_EQ(ev.res(), getppid());
  EXPECT_EQ(ev.get<uint64_t>(AIO2_ATTR_TAG), tag);

  req_buf timed(SYS_getppid, 2);
  timed.attr_of(AIO2_ATTR_TAG, tag).attr(AIO2_ATTR_TIMING);
  EXPECT_EQ(submit(c.get(), timed), -EPERM);
  // An unknown id is refused too, not passed as UNSUPPORTED.
  req_buf unknown(SYS_getppid, 3);
  unknown.attr(0x7777);
  EXPECT_EQ(submit(c.get(), unknown), -EPERM);
}

TEST(Restrict, FixedOnceSecondCallIsEbusy) {
  ctx_ptr c = make_ctx();
  const aio2_restriction a[] = {sys_entry(SYS_getppid)};
  const aio2_restriction b[] = {sys_entry(SYS_getppid), sys_entry(SYS_getpid)};
  ASSERT_EQ(aio2_restrict(c.get(), a, 1), 0);
  EXPECT_EQ(aio2_restrict(c.get(), b, 2), -EBUSY);
  EXPECT_EQ(aio2_restrict(c.get(), nullptr, 0), -EBUSY);
  // The first list is still the one in force.
  req_buf no(SYS_getpid, 1);
  EXPECT_EQ(submit(c.get(), no), -EPERM);
}

TEST(Restrict, MalformedListFixesNothing) {
  ctx_ptr c = make_ctx();
  const aio2_restriction bad_kind[] = {sys_entry(SYS_getppid), {7, 0, 1}};
  const aio2_restriction bad_reserved[] = {{AIO2_RESTRICT_SYSCALL, 1, SYS_getppid}};
  const aio2_restriction bad_nr[] = {sys_entry(100000)};
  const aio2_restriction bad_attr[] = {attr_entry(0x10000)};
  EXPECT_EQ(aio2_restrict(c.get(), bad_kind, 2), -EINVAL);
  EXPECT_EQ(aio2_restrict(c.get(), bad_reserved, 1), -EINVAL);
  EXPECT_EQ(aio2_restrict(c.get(), bad_nr, 1), -EINVAL);
  EXPECT_EQ(aio2_restrict(c.get(), bad_attr, 1), -EINVAL);
  EXPECT_EQ(aio2_restrict(c.get(), nullptr, 1), -EINVAL);
  EXPECT_EQ(aio2_restrict(nullptr, bad_nr, 1), -EBADF);
  // Nothing is in force: getpid still runs, and a good list can follow.
  req_buf r(SYS_getpid, 1);
  EXPECT_EQ(aio2_test::submit_one(c.get(), r).res(), getpid());
  const aio2_restriction good[] = {sys_entry(SYS_getppid)};
  EXPECT_EQ(aio2_restrict(c.get(), good, 1), 0);
  EXPECT_EQ(submit(c.get(), r), -EPERM);
}

TEST(Restrict, EmptyListAllowsNothingAndRefusedCallsStayRefused) {
  ctx_ptr c = make_ctx();
  ASSERT_EQ(aio2_restrict(c.get(), nullptr, 0), 0);
  req_buf r(SYS_getppid, 1);
  EXPECT_EQ(submit(c.get(), r), -EPERM);

  // Listing a call aio2 always refuses does not let it run.
  ctx_ptr d = make_ctx();
  const aio2_restriction allow[] = {sys_entry(SYS_setuid), sys_entry(SYS_getppid)};
  ASSERT_EQ(aio2_restrict(d.get(), allow, 2), 0);
  req_buf su(SYS_setuid, 1, 0);
  EXPECT_EQ(submit(d.get(), su), -EPERM);
}

TEST(Restrict, AioCallOnARestrictedContextIsChecked) {
  ctx_ptr c = make_ctx();
  const aio2_restriction allow[] = {sys_entry(SYS_getppid)};
  ASSERT_EQ(aio2_restrict(c.get(), allow, 1), 0);
  alignas(8) unsigned char ev[256];
  req_buf ok(SYS_getppid, 1), no(SYS_getpid, 2);
  ASSERT_GT(aio2_call(c.get(), ok.io(), ev, sizeof ev), 0);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, getppid());
  EXPECT_EQ(aio2_call(c.get(), no.io(), ev, sizeof ev), -EPERM);
  // The process-wide context has no allowlist.
  ASSERT_GT(aio2_call(nullptr, no.io(), ev, sizeof ev), 0);
  EXPECT_EQ(reinterpret_cast<aio2_event *>(ev)->res, getpid());

  // A SYNC context takes a list too.
  aio2_params p{};
  p.type = AIO2_CTX_SYNC;
  ctx_ptr s = make_ctx(p);
  ASSERT_EQ(aio2_restrict(s.get(), allow, 1), 0);
  EXPECT_EQ(aio2_call(s.get(), no.io(), ev, sizeof ev), -EPERM);
}

// The old ABI: the system call each iocb becomes is checked, and
// IOCB_FLAG_IOPRIO needs the ioprio attribute.
TEST(Restrict, LegacyOpcodesAreChecked) {
  temp_file f;
  aio2_params p{};
  p.type = AIO2_CTX_LEGACY;
  p.max_inflight = 8;
  ctx_ptr c = make_ctx(p);
  const aio2_restriction allow[] = {sys_entry(SYS_pread64)};
  ASSERT_EQ(aio2_restrict(c.get(), allow, 1), 0);
  char data[16] = {};
  iocb rd{}, wr{}, prio{};
  rd.aio_lio_opcode = IOCB_CMD_PREAD;
  rd.aio_fildes = static_cast<uint32_t>(f.fd);
  rd.aio_buf = reinterpret_cast<uint64_t>(data);
  rd.aio_nbytes = 9;
  rd.aio_data = 7;
  wr = rd;
  wr.aio_lio_opcode = IOCB_CMD_PWRITE;
  prio = rd;
  prio.aio_flags = IOCB_FLAG_IOPRIO;
  prio.aio_reqprio = static_cast<int16_t>(2 << 13 | 4);  // best effort, level 4
  iocb *one[] = {&rd}, *two[] = {&wr}, *three[] = {&prio};
  EXPECT_EQ(aio2_legacy_submit(c.get(), 1, two), -EPERM);
  EXPECT_EQ(aio2_legacy_submit(c.get(), 1, three), -EPERM);
  ASSERT_EQ(aio2_legacy_submit(c.get(), 1, one), 1);
  io_event ev[2];
  const timespec ts{10, 0};
  ASSERT_EQ(aio2_legacy_getevents(c.get(), 1, 2, ev, &ts, nullptr), 1);
  EXPECT_EQ(ev[0].data, 7u);
  EXPECT_EQ(ev[0].res, 9);
  EXPECT_EQ(std::string(data, 9), "allowlist");
}

// Submitters racing aio2_restrict: each submission sees no list or the
// whole one. Once a submitter has seen restrict return (through `fixed`),
// getpid is refused every time; every accepted request gets one event;
// of several concurrent callers exactly one wins.
TEST(Restrict, ConcurrentWithSubmitters) {
  ctx_ptr c = make_ctx();
  std::atomic<bool> fixed{false};  // set after restrict returned; read with acquire
  // Counters only, read after the threads are joined (the join orders
  // them): relaxed.
  std::atomic<uint64_t> accepted{0}, late_runs{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      // Bounded well below the in-flight limit: nothing is reaped meanwhile.
      for (uint64_t i = 0, post = 0; i < 20000; i++) {
        const bool after = fixed.load(std::memory_order_acquire);
        req_buf r(i % 2 ? SYS_getpid : SYS_getppid, static_cast<uint64_t>(t) << 32 | i);
        const ssize_t n = submit(c.get(), r);
        if (n > 0) {
          accepted.fetch_add(1, std::memory_order_relaxed);
          if (after && r.io()->nr == SYS_getpid) late_runs.fetch_add(1, std::memory_order_relaxed);
        } else {
          EXPECT_EQ(n, -EPERM);
        }
        if (after && ++post == 1000) break;
      }
    });
  }
  const aio2_restriction allow[] = {sys_entry(SYS_getppid)};
  std::atomic<int> wins{0}, busy{0};  // counters, read after the joins
  std::vector<std::thread> fixers;
  for (int t = 0; t < 3; t++) {
    fixers.emplace_back([&] {
      const int rc = aio2_restrict(c.get(), allow, 1);
      if (rc == 0) wins.fetch_add(1);
      else if (rc == -EBUSY) busy.fetch_add(1);
    });
  }
  for (auto &t : fixers) t.join();
  fixed.store(true, std::memory_order_release);
  for (auto &t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(busy.load(), 2);
  EXPECT_EQ(late_runs.load(), 0u);
  // Exactly one event per accepted request.
  uint64_t events = 0;
  alignas(8) unsigned char buf[8192];
  while (events < accepted.load()) {
    const timespec ts{10, 0};
    const ssize_t got = aio2_getevents(c.get(), 1, buf, sizeof buf, &ts);
    ASSERT_GT(got, 0);
    for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(got), ev))
      events++;
  }
  const timespec zero{0, 0};
  EXPECT_EQ(aio2_getevents(c.get(), 0, buf, sizeof buf, &zero), 0);
  EXPECT_EQ(events, accepted.load());
}

TEST(Restrict, CppWrapper) {
  aio2::context ctx;
  const aio2_restriction allow[] = {sys_entry(SYS_getppid)};
  ctx.restrict_to(allow);
  std::error_code ec;
  ctx.restrict_to(allow, ec);
  EXPECT_EQ(ec, std::errc::device_or_resource_busy);
  EXPECT_THROW(ctx.restrict_to(allow), std::system_error);
}

// The pure check over bytes that fuzz targets call.
TEST(Restrict, PureCheckOverBytes) {
  using aio2::core::allowlist_check_bytes;
  const aio2_restriction allow[] = {sys_entry(SYS_getppid), attr_entry(AIO2_ATTR_TAG)};
  req_buf r(SYS_getppid, 1);
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, r.b, r.len()), 0);
  const uint64_t tag = 1;
  r.attr_of(AIO2_ATTR_TAG, tag);
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, r.b, r.len()), 0);
  r.attr(AIO2_ATTR_TIMING);
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, r.b, r.len()), -EPERM);
  req_buf other(SYS_getpid, 2);
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, other.b, other.len()), -EPERM);
  // Truncated buffers and records are malformed, never read past `len`.
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, r.b, 10), -EINVAL);
  EXPECT_EQ(allowlist_check_bytes(allow, sizeof allow, r.b, sizeof(aio2_iocb) + 4), -EINVAL);
  const aio2_restriction bad[] = {{9, 0, 0}};
  EXPECT_EQ(allowlist_check_bytes(bad, sizeof bad, r.b, r.len()), -EINVAL);
  // No entries: nothing is allowed.
  EXPECT_EQ(allowlist_check_bytes(nullptr, 0, other.b, other.len()), -EPERM);
}

}  // namespace
