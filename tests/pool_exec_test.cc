// SPDX-License-Identifier: MIT
// exec::pool on its own, handing completions to a recording sink: every
// request completes once with its call's result; bounded and unbounded
// workers are separate classes; cancelling a queued request completes it
// with -ECANCELED, cancelling a running one interrupts it (-EINTR), and a
// running bounded one is answered in_flight (it finishes by itself);
// shutdown completes everything exactly once before it returns; idle
// workers exit and new ones start. A worker takes queued requests in
// batches, one batch_done each; a request it took and has not started
// cancels like a queued one; a thread outside the pool runs queued bounded
// work (run_queued_here) only with the submitter's credentials; under
// submitters, callers running work and cancels at once, every request
// completes once. Which requests run and which wait is
// made certain by the classes' limits and by waiting until a worker is seen
// blocked in read(2) (/proc), never by sleeping.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exec/pool.h"
#include "exec_util.h"
#include "sys/creds.h"

namespace {

using aio2::exec::executor;
using aio2::exec::pool;
using aio2::exec::request;
using aio2_test::recording_sink;
using aio2_test::test_pipe;

constexpr unsigned kIdleMs = 60000;  // workers stay for the test unless it says otherwise

class PoolExec : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pool::install_cancel_signal(), 0);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(devnull, 0);
  }
  void TearDown() override {
    p.reset();
    if (devnull >= 0) close(devnull);
  }

  void make(unsigned bounded, unsigned unbounded, unsigned idle_ms = kIdleMs) {
    p = std::make_unique<pool>(bounded, unbounded, idle_ms, sink);
  }
  request *getppid_req(uint64_t ud, bool unbounded = false) {
    return reqs.add(SYS_getppid, ud, {}, AIO2_PATH_POOL, unbounded);
  }
  // A write of one byte to /dev/null: a call a waiting caller may run.
  request *null_write(uint64_t ud, bool unbounded = false) {
    return reqs.add(SYS_write, ud, {static_cast<uint64_t>(devnull),
                                    reinterpret_cast<uint64_t>(byte), 1},
                    AIO2_PATH_POOL, unbounded);
  }
  request *pipe_read(uint64_t ud, const test_pipe &tp, bool unbounded) {
    return reqs.add(SYS_read, ud, {static_cast<uint64_t>(tp.rd), reinterpret_cast<uint64_t>(byte),
                                   1},
                    AIO2_PATH_POOL, unbounded);
  }
  void submit(request *r) { p->submit(&r, 1); }
  // A pool of one bounded and one unbounded worker whose bounded worker is
  // held in a read of `tp` (request 1) until the test writes to it.
  void hold_the_bounded_worker(const test_pipe &tp) {
    ASSERT_TRUE(tp.ok());
    make(1, 1);
    submit(pipe_read(1, tp, /*unbounded=*/false));
    wait_reading(tp);
  }
  // Waits until a worker is blocked reading `tp`.
  void wait_reading(const test_pipe &tp) {
    ASSERT_TRUE(aio2_test::wait_in_syscall(SYS_read, static_cast<uint64_t>(tp.rd)))
        << "no worker ever blocked in read on fd " << tp.rd;
  }
  // A pool of one worker per class, whose worker of the class asked for
  // is blocked in a read of `tp` (request `ud`).
  void start_blocked_read(uint64_t ud, const test_pipe &tp, bool unbounded) {
    ASSERT_TRUE(tp.ok());
    make(1, 1);
    submit(pipe_read(ud, tp, unbounded));
    wait_reading(tp);
  }

  unsigned char byte[8] = {};
  int devnull = -1;
  // Declared so that the pool goes first: it refers to the sink and the
  // requests until it is shut down.
  recording_sink sink;
  aio2_test::request_set reqs;
  std::unique_ptr<pool> p;
};

TEST_F(PoolExec, EachRequestCompletesOnceWithItsResult) {
  constexpr unsigned kN = 200;
  make(4, 16);
  std::vector<request *> batch;
  for (unsigned i = 0; i < kN; i++) batch.push_back(getppid_req(1000 + i, i % 5 == 0));
  // In batches of mixed classes, as the context hands them over.
  for (size_t i = 0; i < kN; i += 50) p->submit(batch.data() + i, 50);
  ASSERT_TRUE(sink.wait_for_count(kN)) << sink.count() << " of " << kN;
  p->shutdown();
  const auto tally = sink.tally();
  ASSERT_EQ(tally.size(), kN);
  for (unsigned i = 0; i < kN; i++) EXPECT_EQ(tally.at(1000 + i), 1) << 1000 + i;
  const pid_t me = aio2_test::this_tid();
  for (const auto &c : sink.all()) {
    EXPECT_EQ(c.res, getppid());
    EXPECT_EQ(c.flags, 0u);
    EXPECT_NE(c.tid, me) << "ran on a worker";
  }
  EXPECT_EQ(sink.unannounced(), 0u) << "each completion is followed by batch_done(false)";
  EXPECT_LE(sink.batches(false), kN);
  EXPECT_EQ(sink.batches(true), 0u);
}

// The only bounded worker is held in a pipe read while ten requests queue
// behind it: when it is free it takes them at once, and one batch_done
// covers several.
TEST_F(PoolExec, QueuedRequestsRunInBatches) {
  test_pipe tp;
  hold_the_bounded_worker(tp);
  ASSERT_FALSE(HasFatalFailure());
  constexpr unsigned kQueued = 10;
  std::vector<request *> batch;
  for (unsigned i = 0; i < kQueued; i++) batch.push_back(getppid_req(100 + i));
  p->submit(batch.data(), batch.size());
  ASSERT_EQ(write(tp.wr, "b", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(1 + kQueued));
  p->shutdown();
  for (unsigned i = 0; i < kQueued; i++) EXPECT_EQ(sink.of(100 + i).size(), 1u) << 100 + i;
  EXPECT_EQ(sink.unannounced(), 0u);
  EXPECT_LT(sink.batches(false), 1 + kQueued) << "one batch_done per request: no batch taken";
}

// Quick unbounded requests first (a class whose work is quick takes it in
// batches, were it bounded), then two pipe reads in one submit: each gets a
// worker of its own, since unbounded work may wait for ever and a request
// taken behind it would wait with it.
TEST_F(PoolExec, UnboundedRequestsAreTakenOneAtATime) {
  test_pipe tp1, tp2;
  ASSERT_TRUE(tp1.ok() && tp2.ok());
  make(1, 2);
  std::vector<request *> quick;
  for (unsigned i = 0; i < 20; i++) quick.push_back(getppid_req(100 + i, /*unbounded=*/true));
  p->submit(quick.data(), quick.size());
  ASSERT_TRUE(sink.wait_for_count(quick.size()));
  request *both[2] = {pipe_read(1, tp1, /*unbounded=*/true), pipe_read(2, tp2, true)};
  p->submit(both, 2);
  wait_reading(tp1);
  wait_reading(tp2);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(write(tp1.wr, "1", 1), 1);
  ASSERT_EQ(write(tp2.wr, "2", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(quick.size() + 2));
  EXPECT_EQ(sink.of(1).at(0).res, 1);
  EXPECT_EQ(sink.of(2).at(0).res, 1);
}

// One submit of two bounded requests to a class of one worker: the worker
// takes both, and blocks in the first (a pipe read). The second is taken
// and not started: cancelling it completes it with -ECANCELED, from the
// worker, once the read is over.
TEST_F(PoolExec, CancelTakenRequestThatHasNotStarted) {
  test_pipe tp;
  ASSERT_TRUE(tp.ok());
  make(1, 1);
  request *both[2] = {pipe_read(1, tp, /*unbounded=*/false), getppid_req(2)};
  p->submit(both, 2);
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(p->run_queued_here()) << "the worker took both";
  EXPECT_EQ(p->cancel(2), executor::cancel_result::cancelled);
  ASSERT_EQ(write(tp.wr, "c", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(2));
  const auto c = sink.of(2);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].res, -ECANCELED);
  EXPECT_EQ(c[0].flags, AIO2_EVENT_CANCELED);
  EXPECT_EQ(sink.of(1).at(0).res, 1);
  p->shutdown();
  EXPECT_EQ(sink.count(), 2u);
}

// With the only bounded worker blocked, queued bounded reads and writes run
// in the thread that asks (a reaper in getevents), the oldest first;
// unbounded work, other calls (getppid: a call may depend on its thread)
// and work from other credentials never do.
TEST_F(PoolExec, CallerRunsQueuedBoundedWork) {
  test_pipe bounded_pipe, unbounded_pipe;
  ASSERT_TRUE(bounded_pipe.ok() && unbounded_pipe.ok());
  make(1, 1);
  submit(pipe_read(1, bounded_pipe, /*unbounded=*/false));
  submit(pipe_read(2, unbounded_pipe, /*unbounded=*/true));
  wait_reading(bounded_pipe);
  wait_reading(unbounded_pipe);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(p->run_queued_here()) << "nothing queued";

  aio2::sys::creds mine, other;
  ASSERT_EQ(aio2::sys::thread_creds(&mine), 0);
  other = mine;
  other.uid[3] ^= 1;  // another file-system uid
  request *foreign = null_write(10);
  foreign->creds = &other;
  foreign->has_creds = true;
  request *own = null_write(11);
  own->creds = &mine;
  own->has_creds = true;
  submit(null_write(12, /*unbounded=*/true));
  submit(own);
  submit(null_write(13));
  submit(getppid_req(14));
  EXPECT_TRUE(p->run_queued_here()) << "ran 11 and 13, in one call";
  EXPECT_EQ(sink.count(), 2u);
  EXPECT_FALSE(p->run_queued_here()) << "getppid ran outside the pool";
  EXPECT_TRUE(sink.of(14).empty());
  const pid_t me = aio2_test::this_tid();
  for (uint64_t ud : {11, 13}) {
    const auto c = sink.of(ud);
    ASSERT_EQ(c.size(), 1u) << ud;
    EXPECT_EQ(c[0].res, 1) << ud;
    EXPECT_EQ(c[0].tid, me) << ud;
  }
  EXPECT_EQ(sink.all().at(0).user_data, 11u) << "the oldest first";
  EXPECT_TRUE(sink.of(12).empty()) << "unbounded work ran outside the pool";

  EXPECT_EQ(p->cancel(14), executor::cancel_result::cancelled);
  submit(foreign);
  EXPECT_FALSE(p->run_queued_here()) << "ran a request of other credentials";
  EXPECT_EQ(p->cancel(10), executor::cancel_result::cancelled) << "it is still queued";

  ASSERT_EQ(write(bounded_pipe.wr, "r", 1), 1);
  ASSERT_EQ(write(unbounded_pipe.wr, "r", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(7));
  p->shutdown();
  EXPECT_EQ(sink.of(12).at(0).res, 1);
  EXPECT_EQ(sink.of(10).at(0).res, -ECANCELED);
  EXPECT_EQ(sink.count(), 7u);
  EXPECT_EQ(sink.unannounced(), 0u);
}

// With the only bounded worker blocked, a caller runs at most
// pool::kCallerRunMax queued requests per call, the oldest first, in one
// batch (one batch_done); the rest stay queued, for the next call or a
// worker.
TEST_F(PoolExec, CallerRunIsCapped) {
  test_pipe tp;
  hold_the_bounded_worker(tp);
  ASSERT_FALSE(HasFatalFailure());
  constexpr size_t kCap = pool::kCallerRunMax, kQueued = 2 * kCap + 3;
  static_assert(kCap > 1, "a batch");
  std::vector<request *> batch;
  for (size_t i = 0; i < kQueued; i++) batch.push_back(null_write(100 + i));
  p->submit(batch.data(), batch.size());
  const size_t batches_before = sink.batches(false);
  ASSERT_TRUE(p->run_queued_here());
  EXPECT_EQ(sink.count(), kCap) << "one call runs the cap, no more, no less";
  EXPECT_EQ(sink.batches(false), batches_before + 1) << "one batch_done for the batch";
  EXPECT_EQ(sink.unannounced(), 0u);
  for (size_t i = 0; i < kCap; i++) EXPECT_EQ(sink.all().at(i).user_data, 100 + i) << "oldest first";
  ASSERT_TRUE(p->run_queued_here());
  EXPECT_EQ(sink.count(), 2 * kCap);
  // The last three stay queued for the worker once it is free.
  EXPECT_TRUE(sink.of(100 + 2 * kCap).empty());
  ASSERT_EQ(write(tp.wr, "w", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(1 + kQueued));
  const pid_t me = aio2_test::this_tid();
  for (size_t i = 0; i < kQueued; i++) {
    const auto c = sink.of(100 + i);
    ASSERT_EQ(c.size(), 1u) << 100 + i;
    EXPECT_EQ(c[0].res, 1);
    if (i < 2 * kCap) EXPECT_EQ(c[0].tid, me) << 100 + i;
    else EXPECT_NE(c[0].tid, me) << 100 + i << " ran in the caller";
  }
  p->shutdown();
  EXPECT_EQ(sink.count(), 1 + kQueued);
}

// A request of a caller's batch that is taken and not started yet cancels
// as a worker's does: -ECANCELED, and the cancel says so.
TEST_F(PoolExec, CancelInCallersBatchBeforeItStarts) {
  test_pipe blocker, tp;
  ASSERT_TRUE(tp.ok());
  hold_the_bounded_worker(blocker);
  ASSERT_FALSE(HasFatalFailure());
  // The caller's batch: a pipe read (it blocks the caller) and a write.
  request *two[2] = {pipe_read(2, tp, /*unbounded=*/false), null_write(3)};
  p->submit(two, 2);
  std::thread caller([&] { EXPECT_TRUE(p->run_queued_here()); });
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  // Started in the caller, which is the program's thread and is never
  // signalled: bounded work runs to its end there.
  EXPECT_EQ(p->cancel(2), executor::cancel_result::in_flight) << "started in the caller";
  EXPECT_EQ(p->cancel(3), executor::cancel_result::cancelled);
  ASSERT_EQ(write(tp.wr, "c", 1), 1);
  caller.join();
  ASSERT_EQ(write(blocker.wr, "b", 1), 1);
  ASSERT_TRUE(sink.wait_for_count(3));
  p->shutdown();
  EXPECT_EQ(sink.of(2).at(0).res, 1);
  EXPECT_EQ(sink.of(3).at(0).res, -ECANCELED);
  EXPECT_EQ(sink.count(), 3u);
}

// Conservation with every hand-off at once: submitting threads, threads
// that run queued work themselves (as reapers in getevents do), and a
// thread cancelling requests at random, on few workers so that queues
// form. Every request reaches the sink exactly once: with its result, or
// -ECANCELED.
TEST_F(PoolExec, SubmittersCallersAndCancelsConserveRequests) {
#if defined(__SANITIZE_THREAD__)
  constexpr unsigned kPerSubmitter = 4000;
#else
  constexpr unsigned kPerSubmitter = 20000;
#endif
  constexpr unsigned kSubmitters = 3, kCallers = 2, kChunk = 16;
  constexpr uint64_t kTotal = uint64_t{kSubmitters} * kPerSubmitter;
  make(2, 2);
  std::vector<std::vector<request *>> made(kSubmitters);
  for (unsigned s = 0; s < kSubmitters; s++)
    for (unsigned i = 0; i < kPerSubmitter; i++) {
      const uint64_t ud = uint64_t{s} * kPerSubmitter + i;
      // Writes (which callers may run) and getppids (which they may not),
      // bounded and unbounded.
      request *r = i % 2 ? null_write(ud, i % 7 == 0) : getppid_req(ud, i % 7 == 0);
      made[s].push_back(r);
    }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> cancelled_ok{0};
  std::vector<std::thread> threads;
  std::vector<pid_t> caller_tids(kCallers);
  std::atomic<unsigned> callers_ready{0};
  for (unsigned c = 0; c < kCallers; c++)
    threads.emplace_back([&, c] {
      caller_tids[c] = aio2_test::this_tid();
      callers_ready.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed))
        if (!p->run_queued_here()) std::this_thread::yield();
    });
  threads.emplace_back([&] {
    uint64_t x = 88172645463325252ull;  // xorshift
    while (!stop.load(std::memory_order_relaxed)) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if (p->cancel(x % kTotal) == executor::cancel_result::cancelled) cancelled_ok++;
    }
  });
  while (callers_ready.load() != kCallers) std::this_thread::yield();
  std::vector<std::thread> submitters;
  for (unsigned s = 0; s < kSubmitters; s++)
    submitters.emplace_back([&, s] {
      for (unsigned i = 0; i < kPerSubmitter; i += kChunk) p->submit(made[s].data() + i, kChunk);
    });
  for (auto &t : submitters) t.join();
  ASSERT_TRUE(sink.wait_for_count(kTotal, std::chrono::seconds(120)))
      << sink.count() << " of " << kTotal;
  stop.store(true);
  for (auto &t : threads) t.join();
  p->shutdown();
  const auto tally = sink.tally();
  ASSERT_EQ(tally.size(), kTotal);
  for (const auto &[ud, n] : tally) ASSERT_EQ(n, 1) << ud;
  uint64_t cancelled = 0, by_callers = 0;
  for (const auto &c : sink.all()) {
    if (c.res == -ECANCELED) {
      cancelled++;
      EXPECT_EQ(c.flags, AIO2_EVENT_CANCELED);
    } else {
      EXPECT_EQ(c.res, c.r->io.nr == SYS_write ? 1 : getppid()) << c.user_data;
    }
    for (pid_t t : caller_tids) by_callers += c.tid == t;
  }
  // Each cancel that said cancelled made one; one that found the request
  // just started may make one too (it had not entered its call yet).
  EXPECT_GE(cancelled, cancelled_ok.load());
  EXPECT_EQ(sink.count(), kTotal);
  EXPECT_EQ(sink.unannounced(), 0u);
  EXPECT_GT(by_callers, 0u) << "no caller ever ran queued work";
  RecordProperty("run_by_callers", std::to_string(by_callers));
  RecordProperty("cancelled", std::to_string(cancelled));
}

TEST_F(PoolExec, UnboundedWaitDoesNotStopBoundedWork) {
  test_pipe tp;
  ASSERT_TRUE(tp.ok());
  make(1, 4);
  request *blocked = pipe_read(1, tp, /*unbounded=*/true);
  submit(blocked);
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  // The only bounded worker is free: bounded work runs while the read waits.
  submit(getppid_req(2));
  aio2_test::recording_sink::completion c{};
  EXPECT_TRUE(sink.wait_for(2, &c)) << "bounded work waited behind an unbounded read";
  EXPECT_EQ(c.res, getppid());
  EXPECT_TRUE(sink.of(1).empty()) << "the pipe read is still waiting";
  ASSERT_EQ(write(tp.wr, "x", 1), 1);
  ASSERT_TRUE(sink.wait_for(1, &c));
  EXPECT_EQ(c.res, 1);
  EXPECT_EQ(byte[0], 'x');
}

TEST_F(PoolExec, BoundedWaitDoesNotStopUnboundedWork) {
  test_pipe tp;
  ASSERT_TRUE(tp.ok());
  make(1, 1);
  submit(pipe_read(1, tp, /*unbounded=*/false));  // holds the only bounded worker
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  submit(getppid_req(2, /*unbounded=*/true));
  aio2_test::recording_sink::completion c{};
  EXPECT_TRUE(sink.wait_for(2, &c));
  EXPECT_EQ(c.res, getppid());
  ASSERT_EQ(write(tp.wr, "y", 1), 1);
  ASSERT_TRUE(sink.wait_for(1, &c));
  EXPECT_EQ(c.res, 1);
}

// With one bounded worker blocked in a pipe read, a second bounded request
// can only be queued: cancelling it is certain to find it there.
TEST_F(PoolExec, CancelQueuedRequest) {
  test_pipe tp;
  ASSERT_TRUE(tp.ok());
  make(1, 4);
  submit(pipe_read(1, tp, false));
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  submit(getppid_req(2));
  EXPECT_EQ(p->cancel(2), executor::cancel_result::cancelled);
  // Completed by the cancelling thread, before cancel returned.
  const auto done = sink.of(2);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].res, -ECANCELED);
  EXPECT_EQ(done[0].flags, AIO2_EVENT_CANCELED);
  EXPECT_EQ(done[0].tid, aio2_test::this_tid());
  EXPECT_EQ(p->cancel(2), executor::cancel_result::not_found);
  EXPECT_TRUE(sink.of(1).empty());
  // Let the read finish; nothing else completes.
  ASSERT_EQ(write(tp.wr, "z", 1), 1);
  aio2_test::recording_sink::completion c{};
  ASSERT_TRUE(sink.wait_for(1, &c));
  EXPECT_EQ(c.res, 1);
  p->shutdown();
  EXPECT_EQ(sink.count(), 2u);
}

TEST_F(PoolExec, CancelOldestQueuedOfTheSameUserData) {
  test_pipe tp;
  ASSERT_TRUE(tp.ok());
  make(1, 4);
  submit(pipe_read(1, tp, false));
  wait_reading(tp);
  ASSERT_FALSE(HasFatalFailure());
  request *first = getppid_req(5);
  request *second = getppid_req(5);
  submit(first);
  submit(second);
  EXPECT_EQ(p->cancel(5), executor::cancel_result::cancelled);
  auto done = sink.of(5);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].r, first);
  EXPECT_EQ(p->cancel(5), executor::cancel_result::cancelled);
  done = sink.of(5);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].r, second);
  p->shutdown();  // interrupts the read
}

TEST_F(PoolExec, CancelRunningPipeReadInterruptsIt) {
  test_pipe tp;
  start_blocked_read(11, tp, /*unbounded=*/true);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(p->cancel(11), executor::cancel_result::running);
  aio2_test::recording_sink::completion c{};
  ASSERT_TRUE(sink.wait_for(11, &c)) << "the interrupted read never completed";
  EXPECT_EQ(c.res, -EINTR);
  EXPECT_EQ(c.flags, 0u) << "it ran: not CANCELED";
  EXPECT_NE(c.tid, aio2_test::this_tid());
  p->shutdown();
  EXPECT_EQ(sink.of(11).size(), 1u);
}

// Bounded work finishes by itself: a running bounded request is found and
// answered in_flight (nothing stops it: its event will come with its own
// result). Its worker still gets the signal, which only a call that waits
// in the kernel notices: here a pipe read its submitter declared bounded,
// which returns -EINTR.
TEST_F(PoolExec, CancelRunningBoundedRequestIsInFlight) {
  test_pipe tp;
  start_blocked_read(10, tp, /*unbounded=*/false);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(p->cancel(10), executor::cancel_result::in_flight);
  aio2_test::recording_sink::completion c{};
  ASSERT_TRUE(sink.wait_for(10, &c));
  EXPECT_EQ(c.res, -EINTR);
  EXPECT_EQ(c.flags, 0u) << "it ran: not CANCELED";
  p->shutdown();
  EXPECT_EQ(sink.of(10).size(), 1u);
}

TEST_F(PoolExec, CancelUnknownIsNotFound) {
  make(1, 1);
  EXPECT_EQ(p->cancel(12345), executor::cancel_result::not_found);
  submit(getppid_req(1));
  ASSERT_TRUE(sink.wait_for_count(1));
  p->shutdown();
  EXPECT_EQ(p->cancel(1), executor::cancel_result::not_found);
}

TEST_F(PoolExec, ShutdownCompletesEverythingOnce) {
  test_pipe bounded_pipe, unbounded_pipe1, unbounded_pipe2;
  ASSERT_TRUE(bounded_pipe.ok() && unbounded_pipe1.ok() && unbounded_pipe2.ok());
  make(1, 2);
  submit(pipe_read(1, bounded_pipe, false));
  submit(pipe_read(2, unbounded_pipe1, true));
  submit(pipe_read(3, unbounded_pipe2, true));
  wait_reading(bounded_pipe);
  wait_reading(unbounded_pipe1);
  wait_reading(unbounded_pipe2);
  ASSERT_FALSE(HasFatalFailure());
  constexpr unsigned kQueued = 6;
  for (unsigned i = 0; i < kQueued; i++) submit(getppid_req(100 + i, /*unbounded=*/i % 2 == 1));
  // The odd ones are unbounded: both unbounded workers are blocked, so they
  // are queued too.
  EXPECT_TRUE(aio2_test::returns_by_itself([&] { p->shutdown(); }, [&] {
    for (const test_pipe *tp : {&bounded_pipe, &unbounded_pipe1, &unbounded_pipe2})
      EXPECT_EQ(write(tp->wr, "u", 1), 1);
  })) << "shutdown did not interrupt the reads";
  // Every request reached the sink before shutdown returned.
  EXPECT_EQ(sink.count(), 3 + kQueued);
  for (uint64_t ud : {1, 2, 3}) {
    const auto c = sink.of(ud);
    ASSERT_EQ(c.size(), 1u) << ud;
    EXPECT_EQ(c[0].res, -EINTR) << ud;
    EXPECT_EQ(c[0].flags, 0u) << ud;
  }
  for (unsigned i = 0; i < kQueued; i++) {
    const auto c = sink.of(100 + i);
    ASSERT_EQ(c.size(), 1u) << 100 + i;
    EXPECT_EQ(c[0].res, -ECANCELED);
    EXPECT_EQ(c[0].flags, AIO2_EVENT_CANCELED);
  }
  p->shutdown();  // idempotent
  p.reset();      // and the destructor's own
  EXPECT_EQ(sink.count(), 3 + kQueued);
}

// The threads of this process.
std::set<std::string> threads() {
  std::set<std::string> out;
  for (const auto &e : std::filesystem::directory_iterator("/proc/self/task"))
    out.insert(e.path().filename().string());
  return out;
}

// Threads alive now that were not in `before` (threads of earlier tests'
// pools may still be on their way out: they are in `before` and leave it).
size_t new_threads(const std::set<std::string> &before) {
  size_t n = 0;
  for (const std::string &t : threads()) n += before.count(t) == 0;
  return n;
}

TEST_F(PoolExec, IdleWorkersExitAndNewOnesStart) {
  // A thread started and joined first, so that threads a runtime starts at
  // the first thread creation (ThreadSanitizer's) are in `before`.
  std::thread([] {}).join();
  const auto before = threads();
  make(2, 2, /*idle_ms=*/1);
  for (int round = 0; round < 2; round++) {
    SCOPED_TRACE(round);
    std::vector<request *> batch;
    for (int i = 0; i < 20; i++)
      batch.push_back(getppid_req(static_cast<uint64_t>(round * 100 + i), i % 2 == 1));
    p->submit(batch.data(), batch.size());
    ASSERT_TRUE(sink.wait_for_count(static_cast<size_t>(20 * (round + 1))));
    // Every worker goes once idle for 1 ms.
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (new_threads(before) != 0 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(new_threads(before), 0u) << "idle workers did not exit";
  }
  EXPECT_EQ(sink.count(), 40u);
}

}  // namespace
