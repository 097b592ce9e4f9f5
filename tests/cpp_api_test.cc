// SPDX-License-Identifier: MIT
// The C++ layer (aio2/aio2.hpp): context ownership and setup errors, the
// request builder's layout against hand-built C structs, submit/getevents
// and the event views, submit errors, cancel, call on the process-wide SYNC
// context, reaping from user memory, the views over hand-built events, and
// the C++ walks and lookups against the C walkers over crafted buffers, sound
// and unsound.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.hpp"
#include "proc_util.h"

namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // only to turn a hang into a failure

// An 8-aligned byte buffer.
template <std::size_t Bytes>
struct aligned_buf {
  std::array<uint64_t, Bytes / 8> words{};
  std::span<std::byte> bytes() { return std::as_writable_bytes(std::span(words)); }
};

// A copy of one event, so that the buffer it came in can be reused.
struct event_copy {
  std::vector<uint64_t> words;
  explicit event_copy(aio2::event_view ev) : words((ev.size() + 7) / 8) {
    std::memcpy(words.data(), ev.bytes().data(), ev.size());
  }
  aio2::event_view view() const {
    return aio2::event_view(reinterpret_cast<const aio2_event *>(words.data()));
  }
};

// Waits (up to the deadline) for `n` events and returns copies keyed by user_data.
std::map<uint64_t, event_copy> wait_events(aio2::context &c, std::size_t n) {
  std::map<uint64_t, event_copy> out;
  aligned_buf<8192> buf;
  const auto t0 = std::chrono::steady_clock::now();
  while (out.size() < n && std::chrono::steady_clock::now() - t0 < kDeadline) {
    for (aio2::event_view ev : c.getevents(1, buf.bytes(), 100ms))
      out.emplace(ev.user_data(), event_copy(ev));
  }
  EXPECT_EQ(out.size(), n);
  return out;
}

template <class T>
std::span<const std::byte> as_payload(const T &v) {
  return std::as_bytes(std::span<const T, 1>(&v, 1));
}

// Expects `f` to throw std::system_error with generic errno `err`.
template <class F>
void expect_system_error(F &&f, int err) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected " << std::strerror(err);
  } catch (const std::system_error &e) {
    EXPECT_EQ(e.code(), std::error_code(err, std::generic_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find(aio2_strerror(-err)), std::string::npos) << e.what();
  }
}

// ---- context: ownership ------------------------------------------------------

TEST(CppContext, DefaultsAndWrittenBackParams) {
  aio2::context c;
  ASSERT_TRUE(c);
  EXPECT_NE(c.native_handle(), nullptr);
  EXPECT_EQ(c.ring(), aio2_ring_get(c.native_handle()));
  EXPECT_NE(c.ring(), nullptr);
  EXPECT_EQ(c.params().size, sizeof(aio2_params));
  EXPECT_EQ(c.params().ring_bytes, 65536u);
  EXPECT_EQ(c.params().max_inflight, 65536u);
  EXPECT_EQ(c.params().eventfd, -1);
  EXPECT_TRUE(c.params().features & AIO2_FEAT_RING);
  EXPECT_EQ(c.eventfd(), std::nullopt);
}

TEST(CppContext, EventFdFromParams) {
  aio2_params p{};
  p.flags = AIO2_SETUP_EVENTFD;
  aio2::context c(p);
  ASSERT_TRUE(c.eventfd().has_value());
  EXPECT_GE(*c.eventfd(), 0);
  EXPECT_EQ(*c.eventfd(), c.params().eventfd);
}

TEST(CppContext, DestroyedOnScopeExit) {
  aio2_ctx *h = nullptr;
  {
    aio2::context c;
    h = c.native_handle();
    ASSERT_NE(h, nullptr);
  }
  // Already destroyed (no setup since, so the handle is not reused).
  EXPECT_EQ(aio2_destroy(h), -EBADF);
}

TEST(CppContext, MoveConstructLeavesAnEmptyHarmlessSource) {
  aio2::context a;
  aio2_ctx *const h = a.native_handle();
  aio2_ring *const r = a.ring();
  aio2::context b(std::move(a));
  EXPECT_EQ(b.native_handle(), h);
  EXPECT_EQ(b.ring(), r);
  EXPECT_EQ(b.params().ring_bytes, 65536u);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(a.native_handle(), nullptr);
  EXPECT_EQ(a.ring(), nullptr);
  EXPECT_EQ(a.params().size, 0u);
  // Calls on the empty context fail with EBADF through the error_code
  // overloads, without throwing.
  aio2::request_builder rb;
  rb.add(SYS_getpid, 1, {});
  std::error_code ec;
  EXPECT_EQ(a.submit(rb, ec), 0u);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  aligned_buf<256> buf;
  EXPECT_TRUE(a.getevents(0, buf.bytes(), 0ns, ec).empty());
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_EQ(a.cancel(1, ec), aio2::cancel_result::not_found);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_TRUE(a.reap(buf.bytes(), ec).events.empty());
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_EQ(a.eventfd(), std::nullopt);
  // call on an empty context is EBADF, not a run on the process-wide context.
  rb.clear();
  rb.add(SYS_gettid, 2, {});
  EXPECT_FALSE(a.call(rb.bytes(), buf.bytes(), ec).has_value());
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  rb.clear();
  rb.add(SYS_getpid, 1, {});
  expect_system_error([&] { (void)a.submit(rb); }, EBADF);
  // b still works.
  EXPECT_EQ(b.submit(rb), rb.bytes().size());
  EXPECT_EQ(wait_events(b, 1).at(1).view().res(), getpid());
}  // a's destructor runs on an empty context: nothing to do

TEST(CppContext, MoveAssignDestroysTheOldContext) {
  aio2::context a;
  aio2::context b;
  aio2_ctx *const ha = a.native_handle();
  aio2_ctx *const hb = b.native_handle();
  b = std::move(a);
  EXPECT_EQ(b.native_handle(), ha);
  EXPECT_FALSE(a);                      // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(aio2_destroy(hb), -EBADF);  // b's old context was destroyed
  // Self-move keeps the context.
  aio2::context &alias = b;
  b = std::move(alias);
  EXPECT_EQ(b.native_handle(), ha);
  // Moving an empty context into a live one empties it.
  b = std::move(a);
  EXPECT_FALSE(b);
  EXPECT_EQ(aio2_destroy(ha), -EBADF);
}

TEST(CppContext, AdoptAndRelease) {
  aio2_ctx *raw = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, nullptr, &raw), 0);
  aio2::context c(raw);
  EXPECT_EQ(c.native_handle(), raw);
  EXPECT_NE(c.ring(), nullptr);
  aio2_ctx *back = c.release();
  EXPECT_EQ(back, raw);
  EXPECT_FALSE(c);
  EXPECT_EQ(aio2_destroy(back), 0);  // release did not destroy it
  aio2::context empty(static_cast<aio2_ctx *>(nullptr));
  EXPECT_FALSE(empty);
}

TEST(CppContext, SyncContextHasNoRing) {
  aio2_params p{};
  p.type = AIO2_CTX_SYNC;
  aio2::context s(p);
  EXPECT_EQ(s.ring(), nullptr);
  aio2::request_builder rb;
  rb.add(SYS_gettid, 3, {});
  std::error_code ec;
  EXPECT_EQ(s.submit(rb, ec), 0u);
  EXPECT_EQ(ec, std::error_code(EBADFD, std::generic_category()));
  aligned_buf<256> buf;
  EXPECT_TRUE(s.reap(buf.bytes(), ec).events.empty());
  EXPECT_EQ(ec, std::error_code(EBADFD, std::generic_category()));
  const aio2::event_view ev = s.call(rb.bytes(), buf.bytes());
  EXPECT_EQ(ev.user_data(), 3u);
  EXPECT_EQ(ev.res(), syscall(SYS_gettid));
}

// ---- context: setup errors -------------------------------------------------------

TEST(CppContext, SetupErrorsThrowSystemError) {
  aio2_params p{};
  expect_system_error([&] { aio2::context c(p, AIO2_ABI_VERSION + 1); }, EPROTONOSUPPORT);
  p.ring_bytes = 5000;
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.size = 8;  // below AIO2_PARAMS_SIZE_MIN
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.flags = 0x80;
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.reserved = 1;
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.type = AIO2_CTX_LEGACY;  // without io_setup's nr_events (max_inflight)
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.size = sizeof p + 8;  // the struct has no bytes beyond sizeof
  expect_system_error([&] { aio2::context c(p); }, E2BIG);
}

TEST(CppContext, PolicyErrorsThrowAndPoliciesAreKept) {
  aio2_params p{};
  p.policy = AIO2_POLICY_POOL + 1;
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.uring_entries = 3;  // not a power of two
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  p = {};
  p.uring_entries = 65536;  // above 32768
  expect_system_error([&] { aio2::context c(p); }, EINVAL);
  for (uint32_t policy = AIO2_POLICY_AUTO; policy <= AIO2_POLICY_POOL; policy++) {
    p = {};
    p.policy = policy;
    aio2::context c(p);
    EXPECT_EQ(c.params().policy, policy);
    EXPECT_EQ(c.params().uring_entries, (c.params().features & AIO2_FEAT_URING) ? 256u : 0u);
  }
}

TEST(CppContext, CreateReportsErrorsWithoutThrowing) {
  aio2_params p{};
  p.ring_bytes = 5000;
  std::error_code ec = std::make_error_code(std::errc::io_error);
  aio2::context bad = aio2::context::create(p, ec);
  EXPECT_EQ(ec, std::error_code(EINVAL, std::generic_category()));
  EXPECT_FALSE(bad);
  aio2::context old = aio2::context::create(aio2_params{}, ec, AIO2_ABI_VERSION + 1);
  EXPECT_EQ(ec, std::errc::protocol_not_supported);
  EXPECT_FALSE(old);
  p.ring_bytes = 8192;
  aio2::context good = aio2::context::create(p, ec);
  EXPECT_FALSE(ec);
  ASSERT_TRUE(good);
  EXPECT_EQ(good.params().ring_bytes, 8192u);
}

// ---- request_builder: layout -----------------------------------------------------

// Appends `v`'s bytes to `out` (a hand-built request buffer).
template <class T>
void put(std::vector<unsigned char> &out, const T &v) {
  const auto *p = reinterpret_cast<const unsigned char *>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

// Appends an 8-byte record header (an aio2_attr or aio2_attr_ret, whose
// third field is the length) and `n` payload bytes padded to 8.
template <class Header>
void put_record(std::vector<unsigned char> &out, Header h, const void *payload, std::size_t n) {
  h.len = static_cast<uint32_t>(8 + (n + 7) / 8 * 8);
  put(out, h);
  const auto *p = static_cast<const unsigned char *>(payload);
  out.insert(out.end(), p, p + n);
  out.resize(out.size() + (h.len - 8 - n), 0);
}

void put_attr(std::vector<unsigned char> &out, uint16_t id, uint16_t flags, const void *payload,
              std::size_t n) {
  put_record(out, aio2_attr{id, flags, 0}, payload, n);
}

constexpr char kAbc[3] = {'a', 'b', 'c'};
constexpr std::array<uint64_t, 2> kSixteen = {0x1111111111111111ull, 0x2222222222222222ull};
constexpr uint64_t kEight = 0x0123456789abcdefull;

// Three requests: getppid (no attributes), getpid with three attributes and
// all six args, getuid with one.
aio2::request_builder three_requests() {
  aio2::request_builder b;
  b.add(SYS_getppid, 0x1001, {})
      .add(SYS_getpid, 0x1002, {1, 2, 3, 4, 5, 6}, AIO2_IOCB_BOUNDED)
      .attr(0x7001, std::as_bytes(std::span(kAbc)))
      .attr(0x7002, std::as_bytes(std::span(kSixteen)), 0)
      .attr(0x7003, {})
      .add(SYS_getuid, 0x1003, {9})
      .attr(0x7004, as_payload(kEight));
  return b;
}

TEST(CppBuilder, LayoutEqualsHandBuiltStructs) {
  std::vector<unsigned char> want;
  aio2_iocb io{};
  io.len = 72;
  io.nr = SYS_getppid;
  io.user_data = 0x1001;
  put(want, io);

  io = {};
  io.len = 72 + 16 + 24 + 8;
  io.nr = SYS_getpid;
  io.user_data = 0x1002;
  for (unsigned i = 0; i < 6; i++) io.args[i] = i + 1;
  io.flags = AIO2_IOCB_BOUNDED;
  put(want, io);
  put_attr(want, 0x7001, 0, kAbc, sizeof kAbc);
  put_attr(want, 0x7002, 0, kSixteen.data(), sizeof kSixteen);
  put_attr(want, 0x7003, 0, nullptr, 0);

  io = {};
  io.len = 72 + 16;
  io.nr = SYS_getuid;
  io.user_data = 0x1003;
  io.args[0] = 9;
  put(want, io);
  put_attr(want, 0x7004, 0, &kEight, sizeof kEight);

  const aio2::request_builder b = three_requests();
  EXPECT_EQ(b.count(), 3u);
  ASSERT_EQ(b.bytes().size(), want.size());
  EXPECT_EQ(std::memcmp(b.bytes().data(), want.data(), want.size()), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.bytes().data()) % 8, 0u);
}

TEST(CppBuilder, MisuseThrowsAndClearEmpties) {
  aio2::request_builder b;
  EXPECT_TRUE(b.empty());
  EXPECT_THROW(b.attr(1, {}), std::logic_error);
  EXPECT_THROW(b.add(SYS_getpid, 1, {1, 2, 3, 4, 5, 6, 7}), std::invalid_argument);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.bytes().empty());
  b.add(SYS_getpid, 1, {}).attr(2, as_payload(kEight), AIO2_ATTR_F_REQUIRED);
  EXPECT_EQ(b.bytes().size(), 88u);
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.count(), 0u);
  EXPECT_TRUE(b.bytes().empty());
  EXPECT_THROW(b.attr(1, {}), std::logic_error);
}

// ---- submit, getevents, event views ---------------------------------------------

TEST(CppEvents, SubmitTogetherAndReadTheEvents) {
  aio2::context c;
  const aio2::request_builder b = three_requests();
  EXPECT_EQ(c.submit(b), b.bytes().size());
  const auto evs = wait_events(c, 3);
  ASSERT_EQ(evs.size(), 3u);

  const aio2::event_view ppid = evs.at(0x1001).view();
  EXPECT_EQ(ppid.user_data(), 0x1001u);
  EXPECT_EQ(ppid.res(), getppid());
  EXPECT_EQ(ppid.flags(), 0u);
  EXPECT_FALSE(ppid.cancelled());
  EXPECT_FALSE(ppid.error());
  EXPECT_EQ(ppid.size(), sizeof(aio2_event));
  EXPECT_TRUE(ppid.attrs().empty());

  const aio2::event_view pid = evs.at(0x1002).view();
  EXPECT_EQ(pid.res(), getpid());
  EXPECT_EQ(pid.size(), sizeof(aio2_event) + 3 * sizeof(aio2_attr_ret));
  // One result per attribute, in request order; this build knows no id.
  std::vector<uint16_t> ids;
  for (aio2::attr_result_view r : pid.attrs()) {
    ids.push_back(r.id());
    EXPECT_EQ(r.status(), AIO2_ATTR_UNSUPPORTED);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(r.payload().empty());
  }
  EXPECT_EQ(ids, (std::vector<uint16_t>{0x7001, 0x7002, 0x7003}));
  const auto found = pid.find_attr(0x7002);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id(), 0x7002u);
  EXPECT_EQ(found->status(), AIO2_ATTR_UNSUPPORTED);
  EXPECT_EQ(found->native(), aio2_event_attr(pid.native(), 1));
  EXPECT_FALSE(pid.find_attr(0x7fff).has_value());
  EXPECT_EQ(pid.attr_as<uint32_t>(0x7001), std::nullopt);  // status not OK
  EXPECT_EQ(pid.attr_as<uint8_t>(0x7003), std::nullopt);

  const aio2::event_view uid = evs.at(0x1003).view();
  EXPECT_EQ(uid.res(), getuid());
  ASSERT_EQ(std::ranges::distance(uid.attrs()), 1);
  EXPECT_EQ(uid.attrs().front().id(), 0x7004u);
}

TEST(CppEvents, GeteventsBufferRules) {
  aio2::context c;
  aligned_buf<1024> buf;
  std::error_code ec;
  // Polling an empty context: no events, no error.
  EXPECT_TRUE(c.getevents(0, buf.bytes(), 0ns, ec).empty());
  EXPECT_FALSE(ec);
  EXPECT_TRUE(c.getevents(1, buf.bytes(), 0ns).empty());
  // A misaligned buffer and a negative timeout are EINVAL.
  (void)c.getevents(0, buf.bytes().subspan(4), 0ns, ec);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  (void)c.getevents(0, buf.bytes(), -1ns, ec);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  // Too small for the next event: EINVAL, and the bytes it needs in buf.
  aio2::request_builder b;
  b.add(SYS_getpid, 5, {}).attr(0x7ff0, {});  // an id nobody registered
  ASSERT_EQ(c.submit(b), b.bytes().size());
  (void)c.getevents(1, buf.bytes().first(16), kDeadline, ec);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  uint32_t need = 0;
  std::memcpy(&need, buf.words.data(), sizeof need);
  EXPECT_EQ(need, sizeof(aio2_event) + sizeof(aio2_attr_ret));
  expect_system_error([&] { (void)c.getevents(1, buf.bytes().first(16), kDeadline); }, EINVAL);
  // Big enough: one event, iterated with the range.
  const aio2::event_range r = c.getevents(1, buf.bytes(), kDeadline);
  EXPECT_EQ(std::ranges::distance(r), 1);
  EXPECT_EQ(r.bytes().size(), need);
  EXPECT_EQ(r.front().user_data(), 5u);
  // nanoseconds::max() means "for ever" and must not overflow aio2's
  // deadline (UBSan catches that in the sanitizer build). The event is made
  // to be in the ring first, so that a bug cannot turn into a hang.
  b.clear();
  b.add(SYS_getpid, 6, {});
  ASSERT_EQ(c.submit(b), b.bytes().size());
  const auto t0 = std::chrono::steady_clock::now();
  while (aio2_ring_next_len(c.ring()) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, kDeadline);
    std::this_thread::yield();
  }
  const aio2::event_range far = c.getevents(1, buf.bytes(), std::chrono::nanoseconds::max());
  ASSERT_EQ(std::ranges::distance(far), 1);
  EXPECT_EQ(far.front().user_data(), 6u);
}

// ---- submit errors ------------------------------------------------------------------

TEST(CppSubmit, RefusedSyscallIsEperm) {
  aio2::context c;
  aio2::request_builder b;
  b.add(SYS_execve, 1, {});
  std::error_code ec;
  EXPECT_EQ(c.submit(b, ec), 0u);
  EXPECT_EQ(ec, std::errc::operation_not_permitted);
  expect_system_error([&] { (void)c.submit(b.bytes()); }, EPERM);
}

TEST(CppSubmit, MalformedRequestsAreEinval) {
  aio2::context c;
  aio2::request_builder b;
  b.add(SYS_getpid, 1, {});
  std::error_code ec;
  EXPECT_EQ(c.submit(b.bytes().first(64), ec), 0u);  // shorter than a request
  EXPECT_EQ(ec, std::errc::invalid_argument);
  b.clear();
  b.add(SYS_getpid, 1, {}, 0x80);  // unknown AIO2_IOCB_* flag
  EXPECT_EQ(c.submit(b, ec), 0u);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  b.clear();
  b.add(SYS_getpid, 1, {}).attr(1, {}, 0x8000);  // unknown attribute flag
  EXPECT_EQ(c.submit(b, ec), 0u);
  EXPECT_EQ(ec, std::errc::invalid_argument);
  expect_system_error([&] { (void)c.submit(b); }, EINVAL);
  b.clear();
  b.add(SYS_getpid, 1, {}).attr(0x7ff0, {}, AIO2_ATTR_F_REQUIRED);  // unknown: cannot be honoured
  EXPECT_EQ(c.submit(b, ec), 0u);
  EXPECT_EQ(ec, std::errc::operation_not_supported);
}

TEST(CppSubmit, PartialAcceptanceIsNotAnError) {
  aio2::context c;
  aio2::request_builder b;
  b.add(SYS_getpid, 1, {}).add(SYS_execve, 2, {});
  std::error_code ec = std::make_error_code(std::errc::io_error);
  EXPECT_EQ(c.submit(b, ec), sizeof(aio2_iocb));  // the getpid only
  EXPECT_FALSE(ec);
  EXPECT_EQ(c.submit(b.bytes().subspan(sizeof(aio2_iocb)), ec), 0u);
  EXPECT_EQ(ec, std::errc::operation_not_permitted);
  EXPECT_EQ(wait_events(c, 1).at(1).view().res(), getpid());
}

// A per-request path overrides the context's policy: gettid tells which
// thread ran the call.
TEST(CppSubmit, InlinePathRunsInTheSubmittingThread) {
  aio2_params p{};
  p.policy = AIO2_POLICY_POOL;
  aio2::context c(p);
  aio2::request_builder b;
  b.add(SYS_gettid, 1, {}, AIO2_IOCB_POLICY(AIO2_POLICY_INLINE));
  b.add(SYS_gettid, 2, {});  // the context's policy: a pool worker
  ASSERT_EQ(c.submit(b), b.bytes().size());
  const auto evs = wait_events(c, 2);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs.at(1).view().res(), syscall(SYS_gettid));
  EXPECT_GT(evs.at(2).view().res(), 0);
  EXPECT_NE(evs.at(2).view().res(), syscall(SYS_gettid));
  b.clear();
  b.add(SYS_gettid, 3, {}, AIO2_IOCB_POLICY(AIO2_POLICY_POOL + 1));  // out of range
  std::error_code ec;
  EXPECT_EQ(c.submit(b, ec), 0u);
  EXPECT_EQ(ec, std::errc::invalid_argument);
}

// ---- cancel ----------------------------------------------------------------------------

// Both cancel tests wait for a pool worker blocked in read(2): pool policy.
TEST(CppCancel, InterruptsARunningReadAndReportsUnknownIds) {
  aio2_params p{};
  p.policy = AIO2_POLICY_POOL;
  aio2::context c(p);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  char data[8];
  aio2::request_builder b;
  b.add(SYS_read, 77,
        {static_cast<uint64_t>(fds[0]), reinterpret_cast<uint64_t>(data), sizeof data});
  ASSERT_EQ(c.submit(b), b.bytes().size());
  // Wait until a worker is inside read(2) on the pipe.
  const auto t0 = std::chrono::steady_clock::now();
  while (!aio2_test::thread_blocked_in(SYS_read, fds[0])) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, kDeadline);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(c.cancel(77), aio2::cancel_result::running);
  const auto evs = wait_events(c, 1);
  const aio2::event_view ev = evs.at(77).view();
  EXPECT_EQ(ev.res(), -EINTR);
  EXPECT_EQ(ev.error(), std::errc::interrupted);
  EXPECT_FALSE(ev.cancelled());
  std::error_code ec = std::make_error_code(std::errc::io_error);
  EXPECT_EQ(c.cancel(77, ec), aio2::cancel_result::not_found);
  EXPECT_FALSE(ec);
  EXPECT_EQ(c.cancel(12345), aio2::cancel_result::not_found);
  close(fds[0]);
  close(fds[1]);
}

TEST(CppCancel, QueuedRequestIsCancelled) {
  aio2_params p{};
  p.bounded_workers = 1;
  p.policy = AIO2_POLICY_POOL;
  aio2::context c(p);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // The only bounded worker blocks in a read of the empty pipe; a write to
  // the pipe, also BOUNDED, stays queued behind it.
  char data[8];
  aio2::request_builder b;
  b.add(SYS_read, 1, {static_cast<uint64_t>(fds[0]), reinterpret_cast<uint64_t>(data), 8},
        AIO2_IOCB_BOUNDED);
  ASSERT_EQ(c.submit(b), b.bytes().size());
  const auto t0 = std::chrono::steady_clock::now();
  while (!aio2_test::thread_blocked_in(SYS_read, fds[0])) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, kDeadline);
    std::this_thread::sleep_for(1ms);
  }
  b.clear();
  b.add(SYS_write, 2, {static_cast<uint64_t>(fds[1]), reinterpret_cast<uint64_t>("x"), 1},
        AIO2_IOCB_BOUNDED);
  ASSERT_EQ(c.submit(b), b.bytes().size());
  EXPECT_EQ(c.cancel(2), aio2::cancel_result::cancelled);
  EXPECT_EQ(c.cancel(1), aio2::cancel_result::running);
  const auto evs = wait_events(c, 2);
  EXPECT_TRUE(evs.at(2).view().cancelled());
  EXPECT_EQ(evs.at(2).view().res(), -ECANCELED);
  EXPECT_EQ(evs.at(1).view().res(), -EINTR);  // the write never ran
  close(fds[0]);
  close(fds[1]);
}

// ---- call ------------------------------------------------------------------------------

TEST(CppCall, NullContextRunsInTheCallingThread) {
  aio2::request_builder b;
  b.add(SYS_gettid, 11, {});
  aligned_buf<256> buf;
  const aio2::event_view ev = aio2::call(b.bytes(), buf.bytes());
  EXPECT_EQ(ev.user_data(), 11u);
  EXPECT_EQ(ev.res(), syscall(SYS_gettid));
  // And from another thread, that thread's id.
  int64_t res = 0;
  long tid = 0;
  std::thread t([&] {
    aligned_buf<256> tbuf;
    std::error_code ec;
    const auto r = aio2::call(b.bytes(), tbuf.bytes(), ec);
    tid = syscall(SYS_gettid);
    if (r) res = r->res();
  });
  t.join();
  EXPECT_EQ(res, tid);
  EXPECT_NE(tid, syscall(SYS_gettid));
}

TEST(CppCall, Errors) {
  aio2::request_builder b;
  b.add(SYS_gettid, 1, {}).attr(1, {});
  aligned_buf<256> buf;
  std::error_code ec;
  // The event (24 + 8 bytes) does not fit in 24.
  EXPECT_FALSE(aio2::call(b.bytes(), buf.bytes().first(24), ec).has_value());
  EXPECT_EQ(ec, std::errc::no_buffer_space);
  // Two requests: aio2_call runs one, so the span must hold exactly one.
  b.add(SYS_gettid, 2, {});
  EXPECT_FALSE(aio2::call(b.bytes(), buf.bytes(), ec).has_value());
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(aio2::call(b.bytes().first(8), buf.bytes(), ec).has_value());
  EXPECT_EQ(ec, std::errc::invalid_argument);
  b.clear();
  b.add(SYS_execve, 3, {});
  expect_system_error([&] { (void)aio2::call(b.bytes(), buf.bytes()); }, EPERM);
}

TEST(CppCall, OnARingContextTheEventGoesToTheCaller) {
  aio2::context c;
  aio2::request_builder b;
  b.add(SYS_gettid, 4, {});
  aligned_buf<256> buf;
  const aio2::event_view ev = c.call(b.bytes(), buf.bytes());
  EXPECT_EQ(ev.res(), syscall(SYS_gettid));
  aligned_buf<256> other;
  EXPECT_TRUE(c.getevents(0, other.bytes(), 0ns).empty());
}

// ---- reap ----------------------------------------------------------------------------

TEST(CppReap, FromUserMemoryAfterSubmit) {
  aio2::context c;
  aligned_buf<4096> buf;
  const aio2::reap_result empty = c.reap(buf.bytes());
  EXPECT_TRUE(empty.events.empty());
  EXPECT_FALSE(empty.need_getevents);

  aio2::request_builder b;
  b.add(SYS_getpid, 42, {});
  ASSERT_EQ(c.submit(b), b.bytes().size());
  std::vector<event_copy> got;
  const auto t0 = std::chrono::steady_clock::now();
  while (got.empty() && std::chrono::steady_clock::now() - t0 < kDeadline) {
    const aio2::reap_result r = c.reap(buf.bytes());
    for (aio2::event_view ev : r.events) got.emplace_back(ev);
    if (r.need_getevents)
      for (aio2::event_view ev : c.getevents(0, buf.bytes(), 0ns)) got.emplace_back(ev);
    if (got.empty()) std::this_thread::yield();
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].view().user_data(), 42u);
  EXPECT_EQ(got[0].view().res(), getpid());
}

TEST(CppReap, BufferTooSmallIsEnobufs) {
  aio2::context c;
  aio2::request_builder b;
  b.add(SYS_getpid, 43, {});
  ASSERT_EQ(c.submit(b), b.bytes().size());
  const auto t0 = std::chrono::steady_clock::now();
  while (aio2_ring_next_len(c.ring()) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, kDeadline);
    std::this_thread::yield();
  }
  aligned_buf<256> buf;
  std::error_code ec;
  EXPECT_TRUE(c.reap(buf.bytes().first(16), ec).events.empty());
  EXPECT_EQ(ec, std::errc::no_buffer_space);
  expect_system_error([&] { (void)c.reap(buf.bytes().first(16)); }, ENOBUFS);
  const aio2::reap_result r = c.reap(buf.bytes(), ec);
  EXPECT_FALSE(ec);
  ASSERT_EQ(std::ranges::distance(r.events), 1);
  EXPECT_EQ(r.events.front().user_data(), 43u);
}

// ---- views over hand-built events --------------------------------------------------

// Appends an attribute result with `payload` (padded to 8) to `out`.
void put_ret(std::vector<unsigned char> &out, uint16_t id, uint16_t status, const void *payload,
             std::size_t n) {
  put_record(out, aio2_attr_ret{id, status, 0}, payload, n);
}

TEST(CppViews, AttrAsAndRangesOverHandBuiltEvents) {
  std::vector<unsigned char> bytes;
  aio2_event e{};
  e.len = 24 + 16 + 8 + 24;
  e.user_data = 9;
  e.res = -ENOENT;
  put(bytes, e);
  const uint32_t word = 0xdeadbeef;
  put_ret(bytes, 1, AIO2_ATTR_OK, &word, sizeof word);
  put_ret(bytes, 2, AIO2_ATTR_ERROR, nullptr, 0);
  put_ret(bytes, 3, AIO2_ATTR_OK, kSixteen.data(), sizeof kSixteen);
  e = {};
  e.len = 24;
  e.flags = AIO2_EVENT_CANCELED;
  e.user_data = 10;
  e.res = -ECANCELED;
  put(bytes, e);
  // A trailing record claiming more bytes than the buffer holds is not yielded.
  e = {};
  e.len = 64;
  e.user_data = 11;
  put(bytes, e);
  std::vector<uint64_t> mem(bytes.size() / 8);
  std::memcpy(mem.data(), bytes.data(), bytes.size());

  const aio2::event_range r(std::as_bytes(std::span(mem)));
  std::vector<uint64_t> uds;
  for (aio2::event_view ev : r) uds.push_back(ev.user_data());
  EXPECT_EQ(uds, (std::vector<uint64_t>{9, 10}));

  auto it = r.begin();
  const aio2::event_view first = *it++;
  EXPECT_EQ(first.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(first.attr_as<uint32_t>(1), 0xdeadbeefu);
  EXPECT_EQ(first.attr_as<uint64_t>(1), uint64_t{0xdeadbeef});  // padded payload is 8 bytes
  EXPECT_EQ((first.attr_as<std::array<uint64_t, 2>>(1)), std::nullopt);  // too short
  EXPECT_EQ(first.attr_as<uint32_t>(2), std::nullopt);                   // ERROR status
  EXPECT_EQ((first.attr_as<std::array<uint64_t, 2>>(3)), kSixteen);
  EXPECT_EQ(first.attr_as<uint32_t>(4), std::nullopt);  // absent
  ASSERT_EQ(std::ranges::distance(first.attrs()), 3);
  EXPECT_EQ(first.find_attr(3)->payload().size(), 16u);
  const aio2::event_view second = *it;
  EXPECT_TRUE(second.cancelled());
  EXPECT_EQ(second.error(), std::errc::operation_canceled);
  EXPECT_TRUE(second.attrs().empty());
  EXPECT_EQ(++it, r.end());

  // A zero-length record ends the walk instead of looping.
  std::array<uint64_t, 6> zero{};
  EXPECT_TRUE(aio2::event_range(std::as_bytes(std::span(zero))).empty());
  EXPECT_TRUE(aio2::event_range().empty());
}

// ---- walks against the C walkers --------------------------------------------------

// An 8-aligned copy of hand-built bytes; bytes() is exactly as long as they are.
struct raw_events {
  std::vector<uint64_t> words;
  std::size_t n;
  explicit raw_events(const std::vector<unsigned char> &b)
      : words((b.size() + 7) / 8), n(b.size()) {
    std::memcpy(words.data(), b.data(), b.size());
  }
  std::span<const std::byte> bytes() const { return std::as_bytes(std::span(words)).first(n); }
};

// Appends an event header claiming `len` bytes, whatever follows.
void put_event(std::vector<unsigned char> &out, uint32_t len, uint64_t user_data) {
  put(out, aio2_event{len, 0, user_data, 0});
}

// Appends an attribute result header claiming `len` bytes, whatever follows.
void put_ret_header(std::vector<unsigned char> &out, uint16_t id, uint16_t status, uint32_t len) {
  put(out, aio2_attr_ret{id, status, len});
}

// Appends `n` bytes of 0xa5, so that padding is not mistaken for a header.
void put_fill(std::vector<unsigned char> &out, std::size_t n) { out.insert(out.end(), n, 0xa5); }

// A walk over a buffer: for each event, its offset, then its results' offsets.
using walk = std::vector<std::vector<std::ptrdiff_t>>;

std::ptrdiff_t offset_in(std::span<const std::byte> buf, const void *p) {
  return static_cast<const std::byte *>(p) - buf.data();
}

// The walk aio2_event_next and aio2_attr_next make.
walk c_walk(std::span<const std::byte> buf) {
  walk w;
  for (const aio2_event *ev = aio2_event_next(buf.data(), buf.size(), nullptr); ev != nullptr;
       ev = aio2_event_next(buf.data(), buf.size(), ev)) {
    std::vector<std::ptrdiff_t> e{offset_in(buf, ev)};
    for (const aio2_attr_ret *r = aio2_attr_next(ev, nullptr); r != nullptr;
         r = aio2_attr_next(ev, r))
      e.push_back(offset_in(buf, r));
    w.push_back(std::move(e));
  }
  return w;
}

// The walk event_range and attr_range make.
walk cpp_walk(std::span<const std::byte> buf) {
  walk w;
  for (aio2::event_view ev : aio2::event_range(buf)) {
    std::vector<std::ptrdiff_t> e{offset_in(buf, ev.native())};
    for (aio2::attr_result_view r : ev.attrs()) e.push_back(offset_in(buf, r.native()));
    w.push_back(std::move(e));
  }
  return w;
}

// Expects the C walkers to make `want` over `buf`, the C++ ranges to make
// the same walk, and, in every event the C walk reaches, the C++ lookups
// (find_attr, attr_as, the results of attrs() by index and by id) to find
// what aio2_event_find_attr, aio2_event_attr_payload and aio2_event_attr do,
// for every id in [0, 8).
void expect_walks(const std::vector<unsigned char> &bytes, const walk &want) {
  const raw_events raw(bytes);
  const std::span<const std::byte> buf = raw.bytes();
  EXPECT_EQ(c_walk(buf), want);
  EXPECT_EQ(cpp_walk(buf), c_walk(buf));
  for (aio2::event_view ev : aio2::event_range(buf)) {
    SCOPED_TRACE(::testing::Message() << "event at " << offset_in(buf, ev.native()));
    unsigned i = 0;
    for (aio2::attr_result_view r : ev.attrs())
      EXPECT_EQ(r.native(), aio2_event_attr(ev.native(), i++));
    EXPECT_EQ(aio2_event_attr(ev.native(), i), nullptr);
    for (uint16_t id = 0; id < 8; id++) {
      SCOPED_TRACE(::testing::Message() << "id " << id);
      const aio2_attr_ret *found = aio2_event_find_attr(ev.native(), id);
      const auto view = ev.find_attr(id);
      EXPECT_EQ(view ? view->native() : nullptr, found);
      const aio2::attr_range attrs = ev.attrs();
      const auto in_attrs =
          std::ranges::find_if(attrs, [&](aio2::attr_result_view r) { return r.id() == id; });
      EXPECT_EQ(in_attrs == attrs.end() ? nullptr : (*in_attrs).native(), found);
      const void *payload = aio2_event_attr_payload(ev.native(), id, sizeof(uint64_t), nullptr);
      uint64_t want_value = 0;
      if (payload != nullptr) std::memcpy(&want_value, payload, sizeof want_value);
      EXPECT_EQ(ev.attr_as<uint64_t>(id),
                payload != nullptr ? std::optional<uint64_t>(want_value) : std::nullopt);
    }
  }
}

TEST(CppWalk, SoundBufferMatchesTheCWalkers) {
  std::vector<unsigned char> b;
  const uint64_t one = 0x1111, three = 0x3333;
  put_event(b, 24 + 16 + 8 + 16, 1);                  // at 0
  put_ret(b, 1, AIO2_ATTR_OK, &one, sizeof one);      // at 24
  put_ret(b, 2, AIO2_ATTR_ERROR, nullptr, 0);         // at 40
  put_ret(b, 3, AIO2_ATTR_OK, &three, sizeof three);  // at 48
  put_event(b, 24, 2);                                // at 64
  put_event(b, 24 + 8, 3);                            // at 88
  put_ret(b, 4, AIO2_ATTR_OK, nullptr, 0);            // at 112
  ASSERT_EQ(b.size(), 120u);
  expect_walks(b, {{0, 24, 40, 48}, {64}, {88, 112}});
  EXPECT_TRUE(aio2::attr_range().empty());
  EXPECT_TRUE(aio2::event_range().empty());
}

// A result whose len is not a multiple of 8 ends its event's results, even
// when the bytes after it would read as results; the next event is still
// reached, since its own len is sound.
TEST(CppWalk, AttrResultLenNotAMultipleOf8EndsTheResults) {
  std::vector<unsigned char> b;
  const uint64_t one = 0x1111;
  put_event(b, 24 + 16 + 24, 1);                  // at 0
  put_ret(b, 1, AIO2_ATTR_OK, &one, sizeof one);  // at 24: sound
  put_ret_header(b, 2, AIO2_ATTR_OK, 12);         // at 40: 12 bytes
  put_fill(b, 4);
  put_ret_header(b, 3, AIO2_ATTR_OK, 8);  // at 52: where a 12-byte step lands
  put_fill(b, 4);
  put_event(b, 24 + 16, 2);                // at 64
  put_ret_header(b, 5, AIO2_ATTR_OK, 12);  // at 88: the first result is unsound
  put_fill(b, 8);
  put_event(b, 24 + 8, 3);                  // at 104
  put_ret(b, 6, AIO2_ATTR_OK, nullptr, 0);  // at 128
  ASSERT_EQ(b.size(), 136u);
  expect_walks(b, {{0, 24}, {64}, {104, 128}});
}

TEST(CppWalk, AttrResultShorterThanItsHeaderOrPastTheEventEndsTheResults) {
  std::vector<unsigned char> b;
  put_event(b, 24 + 16, 1);               // at 0
  put_ret_header(b, 1, AIO2_ATTR_OK, 4);  // at 24: shorter than its header
  put_fill(b, 8);
  put_event(b, 24 + 16, 2);                // at 40
  put_ret_header(b, 2, AIO2_ATTR_OK, 24);  // at 64: 8 bytes past the event
  put_fill(b, 8);
  put_event(b, 24 + 8, 3);                           // at 80
  put_ret_header(b, 3, AIO2_ATTR_OK, 0);             // at 104: zero, would loop
  put_event(b, 24 + 8 + 8, 4);                       // at 112
  put_ret(b, 4, AIO2_ATTR_UNSUPPORTED, nullptr, 0);  // at 136: sound
  put_ret_header(b, 5, AIO2_ATTR_OK, 16);            // at 144: past the event
  put_event(b, 24, 5);                               // at 152
  ASSERT_EQ(b.size(), 176u);
  expect_walks(b, {{0}, {40}, {80}, {112, 136}, {152}});
}

// An event whose len is unsound ends the walk of the buffer there: the events
// after it are not reached.
TEST(CppWalk, EventLenNotSoundEndsTheWalk) {
  struct unsound {
    const char *what;
    uint32_t len;
  };
  for (const unsound u : {unsound{"not a multiple of 8", 28}, unsound{"below 24", 16},
                          unsound{"zero", 0}, unsound{"past the buffer", 64 + 8}}) {
    SCOPED_TRACE(u.what);
    std::vector<unsigned char> b;
    put_event(b, 24 + 8, 1);  // at 0
    put_ret(b, 1, AIO2_ATTR_ERROR, nullptr, 0);
    put_event(b, u.len, 2);  // at 32
    put_fill(b, 8);
    put_event(b, 24, 3);  // at 64: where len 32 would land
    ASSERT_EQ(b.size(), 88u);
    expect_walks(b, {{0, 24}});
    // The same record first in the buffer: no event at all.
    const std::vector<unsigned char> first(b.begin() + 32, b.end());
    expect_walks(first, {});
  }
}

// Bytes after the last event that cannot hold an event header end the walk,
// whether or not the buffer's length is a multiple of 8.
TEST(CppWalk, TrailingBytesShorterThanAnEventEndTheWalk) {
  for (const std::size_t tail :
       {std::size_t{4}, std::size_t{8}, std::size_t{16}, std::size_t{20}}) {
    SCOPED_TRACE(::testing::Message() << tail << " trailing bytes");
    std::vector<unsigned char> b;
    put_event(b, 24, 1);
    put_event(b, 24, 2);  // cut to `tail` bytes below
    b.resize(24 + tail);
    expect_walks(b, {{0}});
  }
}

}  // namespace
