// SPDX-License-Identifier: MIT
// The coroutine layer (aio2/co.hpp): many coroutines on one thread with
// their results and attribute results, overlap, nested tasks and their
// values and exceptions, refused submissions as exceptions and as
// error_codes, a system call's own error as the event's result, the
// in-flight limit as back-pressure, post, run_for, and destruction with
// coroutines pending (the driver's, a coroutine of the caller's, frames
// destroyed while queued or in flight), on io_uring and on the pool.

#include "aio2/co.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"

namespace {

using namespace std::chrono_literals;
using aio2::co::driver;
using aio2::co::event;
using aio2::co::task;

uint64_t u64(const void *p) { return reinterpret_cast<uintptr_t>(p); }

aio2::context make_context(uint32_t policy, uint32_t max_inflight = 0) {
  aio2_params p{};
  p.policy = policy;
  p.max_inflight = max_inflight;
  return aio2::context(p);
}

// The two paths a blocking call can wait on: io_uring (AUTO, when the
// kernel lets aio2 use it) and a pool worker (POOL).
class co_paths : public ::testing::TestWithParam<uint32_t> {};
INSTANTIATE_TEST_SUITE_P(policies, co_paths,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_POOL),
                         [](const auto &param) {
                           return std::string(param.param == AIO2_POLICY_AUTO ? "auto" : "pool");
                         });

// A pipe, closed on destruction.
struct pipe_pair {
  int rd = -1, wr = -1;
  pipe_pair() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      rd = fds[0];
      wr = fds[1];
    }
  }
  ~pipe_pair() {
    if (rd >= 0) close(rd);
    if (wr >= 0) close(wr);
  }
  // What is in the pipe 20 ms after a write, without waiting longer: time
  // enough for a read still in flight to take the bytes.
  std::string drain() const {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int fl = fcntl(rd, F_GETFL);
    fcntl(rd, F_SETFL, fl | O_NONBLOCK);
    char buf[256];
    const ssize_t n = read(rd, buf, sizeof buf);
    fcntl(rd, F_SETFL, fl);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
};

// Counts its destruction: a local of a coroutine whose frame is destroyed.
struct guard {
  int *destroyed;
  explicit guard(int *d) : destroyed(d) {}
  guard(const guard &) = delete;
  ~guard() { ++*destroyed; }
};

// ---- Many coroutines, results and attributes ------------------------------------

TEST_P(co_paths, ManyCoroutinesReadWithAttributes) {
  constexpr int kBlocks = 256;
  constexpr uint64_t kBlock = 4096;
  aio2_test::pattern_file f(kBlocks * kBlock);
  ASSERT_TRUE(f.ok());
  aio2::context ctx = make_context(GetParam());
  driver d(ctx);
  const std::thread::id me = std::this_thread::get_id();
  int checked = 0, other_thread = 0;

  auto read_block = [&](int i) -> task<void> {
    std::vector<unsigned char> buf(kBlock);
    const std::string tag = "block " + std::to_string(i);
    aio2::request_builder b;
    b.add(SYS_pread64, 1000 + static_cast<uint64_t>(i),
          {static_cast<uint64_t>(f.fd()), u64(buf.data()), kBlock, static_cast<uint64_t>(i) * kBlock});
    b.attr(AIO2_ATTR_TIMING, {});
    b.attr(AIO2_ATTR_EXECUTOR, {});
    b.attr(AIO2_ATTR_TAG, std::as_bytes(std::span(tag.data(), tag.size())));
    const event ev = co_await d.submit(b);
    if (std::this_thread::get_id() != me) other_thread++;
    EXPECT_EQ(ev.res(), static_cast<int64_t>(kBlock)) << i;
    EXPECT_EQ(ev.user_data(), 1000u + static_cast<uint64_t>(i));  // the builder's, restored
    EXPECT_TRUE(aio2_test::pattern_holds(buf.data(), static_cast<uint64_t>(i) * kBlock, kBlock)) << i;
    // (ASSERT_* cannot return from a coroutine: EXPECT_*, then stop.)
    const auto timing = ev.attr_as<aio2_attr_timing>(AIO2_ATTR_TIMING);
    const auto exec = ev.attr_as<aio2_attr_executor>(AIO2_ATTR_EXECUTOR);
    const auto tag_ret = ev.find_attr(AIO2_ATTR_TAG);
    EXPECT_TRUE(timing && exec && tag_ret && tag_ret->ok()) << i;
    if (!timing || !exec || !tag_ret || !tag_ret->ok()) co_return;
    EXPECT_GE(timing->posted_ns, timing->submitted_ns);
    EXPECT_NE(timing->started_ns, 0u);
    if (GetParam() == AIO2_POLICY_POOL) {
      EXPECT_EQ(exec->path, AIO2_PATH_POOL);
    }
    EXPECT_EQ(std::memcmp(tag_ret->payload().data(), tag.data(), tag.size()), 0);
    std::size_t results = 0;
    for (aio2::attr_result_view r : ev.attrs()) results += r.ok();
    EXPECT_EQ(results, 3u);
    checked++;
  };
  for (int i = 0; i < kBlocks; i++) d.spawn(read_block(i));
  EXPECT_EQ(d.tasks(), static_cast<std::size_t>(kBlocks));
  d.run();
  EXPECT_EQ(checked, kBlocks);
  EXPECT_EQ(other_thread, 0);
  EXPECT_EQ(d.tasks(), 0u);
  EXPECT_EQ(d.in_flight(), 0u);
}

TEST(co, CoroutinesWaitAtTheSameTime) {
  // 32 sleeps of 200 ms on the pool: one after the other they would take
  // 6.4 s; at the same time, about 200 ms.
  constexpr int kSleepers = 32;
  aio2::context ctx = make_context(AIO2_POLICY_POOL);
  driver d(ctx);
  const timespec nap{0, 200000000};
  std::size_t peak = 0;
  int done = 0;
  auto sleeper = [&]() -> task<void> {
    aio2::co::request r = d.submit(SYS_nanosleep, u64(&nap), 0);
    const event ev = co_await r;
    peak = std::max(peak, d.in_flight() + 1);
    EXPECT_EQ(ev.res(), 0);
    done++;
  };
  for (int i = 0; i < kSleepers; i++) d.spawn(sleeper());
  const auto t0 = std::chrono::steady_clock::now();
  d.run();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(done, kSleepers);
  EXPECT_LT(took, 3200ms);  // half the serial time
  EXPECT_GT(peak, 1u);
}

// ---- Tasks: values, nesting, exceptions -----------------------------------------

TEST(co, NestedTasksGiveTheirValues) {
  aio2::context ctx;
  driver d(ctx);
  auto ppid = [&]() -> task<int64_t> {
    const event ev = co_await d.submit(SYS_getppid);
    co_return ev.res();
  };
  auto sum = [&](int n) -> task<int64_t> {
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += co_await ppid();
    co_return s;
  };
  EXPECT_EQ(d.run(sum(5)), 5 * static_cast<int64_t>(getppid()));
  // A task that moves a value out.
  auto words = [&]() -> task<std::vector<std::string>> {
    co_await d.submit(SYS_getpid);
    co_return std::vector<std::string>{"a", "b"};
  };
  EXPECT_EQ(d.run(words()).size(), 2u);
  // A task<void> through run.
  bool ran = false;
  auto flag = [&]() -> task<void> {
    co_await d.submit(SYS_getpid);
    ran = true;
  };
  d.run(flag());
  EXPECT_TRUE(ran);
}

TEST(co, ExceptionsReachTheAwaitingTask) {
  aio2::context ctx;
  driver d(ctx);
  auto fails = [&]() -> task<int> {
    co_await d.submit(SYS_getpid);
    throw std::runtime_error("child failed");
  };
  auto parent = [&]() -> task<std::string> {
    try {
      co_await fails();
    } catch (const std::runtime_error &e) {
      co_return std::string("caught: ") + e.what();
    }
    co_return std::string("not caught");
  };
  EXPECT_EQ(d.run(parent()), "caught: child failed");
}

TEST(co, SpawnedTaskExceptionIsRethrownByRunAfterTheOthersFinish) {
  aio2::context ctx = make_context(AIO2_POLICY_POOL);
  driver d(ctx);
  const timespec nap{0, 50000000};
  bool slow_finished = false;
  auto fails = [&]() -> task<void> {
    co_await d.submit(SYS_getpid);
    throw std::runtime_error("spawned task failed");
  };
  auto slow = [&]() -> task<void> {
    co_await d.submit(SYS_nanosleep, u64(&nap), 0);
    slow_finished = true;
  };
  d.spawn(fails());
  d.spawn(slow());
  EXPECT_THROW(d.run(), std::runtime_error);
  EXPECT_TRUE(slow_finished);
  EXPECT_EQ(d.tasks(), 0u);
  d.run();  // the exception was handed over once
}

// ---- Errors -----------------------------------------------------------------------

TEST(co, RefusedRequestThrowsSystemError) {
  aio2::context ctx;
  driver d(ctx);
  auto refused = [&]() -> task<int> {
    try {
      co_await d.submit(100000);  // not a system call: ENOSYS
    } catch (const std::system_error &e) {
      EXPECT_EQ(e.code(), std::error_code(ENOSYS, std::generic_category()));
      EXPECT_NE(std::string(e.what()).find("aio2_submit"), std::string::npos);
      co_return 1;
    }
    co_return 0;
  };
  EXPECT_EQ(d.run(refused()), 1);
}

TEST(co, RefusedRequestSetsTheErrorCode) {
  aio2::context ctx;
  driver d(ctx);
  auto refused = [&]() -> task<void> {
    std::error_code ec = std::make_error_code(std::errc::interrupted);  // cleared on success
    aio2::request_builder b;
    b.add(SYS_getpid, 7, {});
    event ev = co_await d.submit(b, ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(ev.res(), getpid());
    EXPECT_EQ(ev.user_data(), 7u);
    b.clear();
    b.add(100000, 8, {});
    ev = co_await d.submit(b, ec);
    EXPECT_EQ(ec, std::error_code(ENOSYS, std::generic_category()));
    EXPECT_TRUE(ev.empty());
    // A builder must hold exactly one request.
    aio2::request_builder two;
    two.add(SYS_getpid, 1, {}).add(SYS_getpid, 2, {});
    ev = co_await d.submit(two, ec);
    EXPECT_EQ(ec, std::error_code(EINVAL, std::generic_category()));
    EXPECT_TRUE(ev.empty());
    aio2::request_builder none;
    EXPECT_THROW(co_await d.submit(none), std::system_error);
    // An unknown REQUIRED attribute is refused at submit.
    aio2::request_builder req;
    req.add(SYS_getpid, 3, {}).attr(0x7ffe, {}, AIO2_ATTR_F_REQUIRED);
    ev = co_await d.submit(req, ec);
    EXPECT_EQ(ec, std::error_code(EOPNOTSUPP, std::generic_category()));
  };
  d.run(refused());
  EXPECT_EQ(d.in_flight(), 0u);
  EXPECT_EQ(d.queued(), 0u);
}

TEST(co, SystemCallErrorIsTheEventsResult) {
  aio2::context ctx;
  driver d(ctx);
  auto bad_close = [&]() -> task<void> {
    const event ev = co_await d.submit(SYS_close, -1)  /* all ones, as the kernel takes it */;
    EXPECT_EQ(ev.res(), -EBADF);
    EXPECT_EQ(ev.error(), std::errc::bad_file_descriptor);
    EXPECT_FALSE(ev.cancelled());
  };
  EXPECT_NO_THROW(d.run(bad_close()));
}

TEST(co, InFlightLimitHoldsRequestsBack) {
  // max_inflight 4 and 64 coroutines: the driver keeps what the context
  // refuses with EAGAIN and submits it when events came back.
  aio2::context ctx = make_context(AIO2_POLICY_POOL, 4);
  driver d(ctx);
  const timespec nap{0, 2000000};
  std::size_t peak = 0;
  int done = 0;
  auto sleeper = [&]() -> task<void> {
    const event ev = co_await d.submit(SYS_nanosleep, u64(&nap), 0);
    peak = std::max(peak, d.in_flight());
    EXPECT_EQ(ev.res(), 0);
    done++;
  };
  for (int i = 0; i < 64; i++) d.spawn(sleeper());
  d.run();
  EXPECT_EQ(done, 64);
  EXPECT_LE(peak, 4u);
}

TEST(co, ATaskWaitingForNothingIsALogicError) {
  aio2::context ctx;
  int destroyed = 0;
  {
    driver d(ctx);
    auto stuck = [&]() -> task<void> {
      guard g(&destroyed);
      co_await std::suspend_always{};
    };
    d.spawn(stuck());
    EXPECT_THROW(d.run(), std::logic_error);
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_EQ(destroyed, 1);  // ~driver destroyed the frame
}

// ---- post and run_for ------------------------------------------------------------

TEST(co, PostResumesFromTheLoop) {
  aio2::context ctx;
  driver d(ctx);
  std::coroutine_handle<> parked;
  std::vector<int> order;
  struct park {
    std::coroutine_handle<> *slot;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
    void await_resume() const noexcept {}
  };
  auto waiter = [&]() -> task<void> {
    order.push_back(1);
    co_await park{&parked};
    order.push_back(3);
  };
  auto waker = [&]() -> task<void> {
    co_await d.submit(SYS_getpid);
    order.push_back(2);
    d.post(parked);
  };
  d.spawn(waiter());
  d.spawn(waker());
  d.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(co, RunForStopsAndReportsWhatRemains) {
  aio2::context ctx = make_context(AIO2_POLICY_POOL);
  driver d(ctx);
  const timespec nap{0, 300000000};
  bool done = false;
  auto sleeper = [&]() -> task<void> {
    co_await d.submit(SYS_nanosleep, u64(&nap), 0);
    done = true;
  };
  d.spawn(sleeper());
  EXPECT_FALSE(d.run_for(20ms));
  EXPECT_FALSE(done);
  EXPECT_EQ(d.in_flight(), 1u);
  EXPECT_TRUE(d.run_for(10s));
  EXPECT_TRUE(done);
}

// ---- Destruction with coroutines pending -----------------------------------------

// ~driver with spawned tasks blocked in pipe reads (in flight), tasks whose
// requests are queued, tasks not started: every frame is destroyed, no code
// after a co_await runs, and no read is left in flight (bytes written to
// the pipe afterwards stay in the pipe).
TEST_P(co_paths, DestroyingTheDriverDestroysPendingTasksSafely) {
  aio2::context ctx = make_context(GetParam());
  pipe_pair p;
  ASSERT_GE(p.rd, 0);
  int destroyed = 0, resumed = 0;
  // Every frame holds a copy (a parameter): none is left once all are gone.
  auto frames = std::make_shared<int>(0);
  {
    driver d(ctx);
    auto reader = [&](std::shared_ptr<int>) -> task<void> {
      guard g(&destroyed);
      char buf[64];
      co_await d.submit(SYS_read, p.rd, buf, sizeof buf);
      resumed++;
    };
    auto nested = [&](std::shared_ptr<int> f) -> task<void> {
      guard g(&destroyed);
      co_await reader(f);
      resumed++;
    };
    for (int i = 0; i < 4; i++) d.spawn(reader(frames));
    for (int i = 0; i < 4; i++) d.spawn(nested(frames));
    EXPECT_FALSE(d.run_for(50ms));
    EXPECT_EQ(d.in_flight(), 8u);
    for (int i = 0; i < 3; i++) d.spawn(reader(frames));  // never started
    EXPECT_EQ(d.tasks(), 11u);
    EXPECT_EQ(frames.use_count(), 1 + 4 + 4 * 2 + 3);
  }  // ~driver
  EXPECT_EQ(frames.use_count(), 1);
  EXPECT_EQ(destroyed, 4 + 4 * 2);  // the started ones' locals
  EXPECT_EQ(resumed, 0);
  ASSERT_EQ(write(p.wr, "still here", 10), 10);
  EXPECT_EQ(p.drain(), "still here");
  // The context is intact and has no stray event.
  alignas(8) unsigned char buf[4096];
  const timespec zero{0, 0};
  EXPECT_EQ(aio2_getevents(ctx.native_handle(), 0, buf, sizeof buf, &zero), 0);
  driver again(ctx);
  auto ppid = [&]() -> task<int64_t> { co_return (co_await again.submit(SYS_getppid)).res(); };
  EXPECT_EQ(again.run(ppid()), getppid());
}

// A minimal coroutine type of the caller's own: its frame is destroyed by
// whoever holds the handle, not by the driver.
struct own_coroutine {
  struct promise_type {
    own_coroutine get_return_object() {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

TEST_P(co_paths, FrameDestroyedWhileItsRequestIsInFlight) {
  aio2::context ctx = make_context(GetParam());
  driver d(ctx);
  pipe_pair p;
  ASSERT_GE(p.rd, 0);
  int destroyed = 0, resumed = 0;
  auto reader = [&]() -> own_coroutine {
    guard g(&destroyed);
    char buf[64];
    co_await d.submit(SYS_read, p.rd, buf, sizeof buf);
    resumed++;
  };
  own_coroutine queued = reader();  // awaiting: queued, not yet submitted
  EXPECT_EQ(d.queued(), 1u);
  queued.h.destroy();
  EXPECT_EQ(d.queued(), 0u);
  EXPECT_EQ(destroyed, 1);

  own_coroutine pending = reader();
  EXPECT_FALSE(d.run_for(50ms));  // the read stays in flight
  EXPECT_EQ(d.in_flight(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  pending.h.destroy();  // cancels the read and waits for its event
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(d.in_flight(), 0u);
  EXPECT_EQ(destroyed, 2);
  EXPECT_EQ(resumed, 0);
  ASSERT_EQ(write(p.wr, "untouched", 9), 9);
  EXPECT_EQ(p.drain(), "untouched");
}

TEST_P(co_paths, CallersCoroutineOutlivingTheDriverIsDetached) {
  aio2::context ctx = make_context(GetParam());
  pipe_pair p;
  ASSERT_GE(p.rd, 0);
  int destroyed = 0, resumed = 0;
  own_coroutine pending{};
  {
    driver d(ctx);
    auto reader = [&]() -> own_coroutine {
      guard g(&destroyed);
      char buf[64];
      co_await d.submit(SYS_read, p.rd, buf, sizeof buf);
      resumed++;
    };
    pending = reader();
    EXPECT_FALSE(d.run_for(20ms));
    EXPECT_EQ(d.in_flight(), 1u);
  }  // ~driver: cancels the read, waits for its event, detaches the request
  EXPECT_EQ(resumed, 0);
  EXPECT_EQ(destroyed, 0);
  pending.h.destroy();  // the detached request touches no driver
  EXPECT_EQ(destroyed, 1);
  ASSERT_EQ(write(p.wr, "kept", 4), 4);
  EXPECT_EQ(p.drain(), "kept");
}

}  // namespace
