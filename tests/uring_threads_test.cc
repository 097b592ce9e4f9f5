// SPDX-License-Identifier: MIT
// exec::uring with several submitting threads: the instances they spread
// over, all made by init. One thread alone stays on the first instance; a
// thread whose instance's submission lock was taken moves to the next at
// the end of its call; AIO2_URING_SPREAD moves every thread after every
// call; completions on any instance are harvested by any thread and make
// fd() readable; cancel finds a request on another thread's instance;
// shutdown completes everything on every instance once; submitting makes
// no descriptor. Skipped when io_uring cannot be set up here.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "exec/uring.h"
#include "sys/creds.h"
#include "exec_util.h"
#include "fs_util.h"

namespace {

using aio2::exec::executor;
using aio2::exec::request;
using aio2::exec::uring;
using aio2_test::recording_sink;

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }

// Sets an environment variable for the life of the object.
struct scoped_env {
  const char *name;
  scoped_env(const char *n, const char *v) : name(n) { setenv(n, v, 1); }
  ~scoped_env() { unsetenv(name); }
};

class UringThreads : public ::testing::Test {
 protected:
  // An executor allowing `max` instances.
  void start(unsigned max) {
    ring = std::make_unique<uring>(sink);
    const int rc = ring->init(64, max);
    if (rc < 0) GTEST_SKIP() << "io_uring unavailable here: " << std::strerror(-rc);
    ASSERT_TRUE(ring->active());
    ASSERT_EQ(ring->instances(), max) << "init makes them all";
  }

  // start(max) with AIO2_URING_SPREAD=1 while the executor is made (it
  // reads it then): every call moves its thread to the next instance.
  void start_spread(unsigned max) {
    scoped_env spread("AIO2_URING_SPREAD", "1");
    start(max);
  }

  request *add(aio2_test::request_set &set, long nr, uint64_t ud,
               std::initializer_list<uint64_t> args) {
    return aio2_test::add_for_uring(set, *ring, nr, ud, args);
  }
  bool harvest_until(size_t n) { return aio2_test::harvest_until(*ring, sink, n); }

  // `n` reads of one byte each from `rd` (user_data base + i), each in a
  // call of its own (with AIO2_URING_SPREAD, each on the next instance).
  void pipe_reads(int rd, unsigned char *bytes, unsigned n, uint64_t base) {
    for (unsigned i = 0; i < n; i++) {
      request *r = add(reqs, SYS_read, base + i, {static_cast<uint64_t>(rd), u(&bytes[i]), 1});
      ring->submit(&r, 1);
      ring->end_of_call();
    }
  }

  recording_sink sink;
  aio2_test::request_set reqs;
  aio2_test::test_pipe tp;  // for reads that wait
  std::unique_ptr<uring> ring;  // last: it refers to the sink and the requests
};

TEST_F(UringThreads, OneThreadStaysOnTheFirstInstance) {
  start(4);
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(4096 * 200);
  for (unsigned i = 0; i < 200; i++) {
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(f.fd()), u(&buf[4096 * i]), 4096,
                                           4096u * (i % 16)});
    ring->submit(&r, 1);
    ring->end_of_call();
    ASSERT_EQ(ring->this_threads_instance(), 0u) << "nobody else took its submission lock";
  }
  ASSERT_TRUE(harvest_until(200));
  for (unsigned i = 0; i < 200; i++) {
    const auto c = sink.of(i);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].res, 4096);
    EXPECT_EQ(buf[4096 * i + 7], aio2_test::pattern_at(4096u * (i % 16) + 7));
  }
}

TEST_F(UringThreads, SpreadVisitsEveryInstanceInTurnAndReadsStayRight) {
  start_spread(3);
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> buf(4096 * 12);
  for (unsigned i = 0; i < 12; i++) {
    ASSERT_EQ(ring->this_threads_instance(), i % 3);
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(f.fd()), u(&buf[4096 * i]), 4096,
                                           4096u * i});
    ring->submit(&r, 1);
    ring->end_of_call();
  }
  ASSERT_TRUE(harvest_until(12));
  EXPECT_EQ(ring->inflight(), 0u);
  for (const auto &[ud, n] : sink.tally()) EXPECT_EQ(n, 1) << ud;
  for (unsigned i = 0; i < 12; i++) {
    const auto c = sink.of(i);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].res, 4096);
    for (unsigned b = 0; b < 4096; b += 511)
      ASSERT_EQ(buf[4096 * i + b], aio2_test::pattern_at(4096u * i + b)) << i << " " << b;
  }
}

TEST_F(UringThreads, WithALimitOfOneNothingMoves) {
  start_spread(1);
  aio2_test::pattern_file f(4096);
  ASSERT_TRUE(f.ok());
  unsigned char buf[4096];
  for (unsigned i = 0; i < 4; i++) {
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(f.fd()), u(buf), 4096, 0});
    ring->submit(&r, 1);
    ring->end_of_call();
    ASSERT_EQ(ring->this_threads_instance(), 0u);
    ASSERT_TRUE(harvest_until(i + 1));
  }
}

// Two threads submit to one executor as fast as they can. The kernel
// reads a cached block inside io_uring_enter, under the submission lock,
// so each soon finds the lock taken by the other and one moves on.
TEST_F(UringThreads, ContendedThreadsSpreadOverTwoInstances) {
  start(2);
  aio2_test::pattern_file f(1 << 20);
  ASSERT_TRUE(f.ok());
  constexpr unsigned kPerThread = 20000;
  aio2_test::request_set sets[2];
  std::vector<request *> mine[2];
  std::vector<unsigned char> bufs[2];
  for (unsigned t = 0; t < 2; t++) {
    bufs[t].resize(4096 * 16);
    for (unsigned i = 0; i < kPerThread; i++)
      mine[t].push_back(add(sets[t], SYS_pread64, (uint64_t{t} << 32) | i,
                            {static_cast<uint64_t>(f.fd()), u(&bufs[t][4096 * (i % 16)]), 4096,
                             4096u * (i % 256)}));
  }
  ASSERT_FALSE(HasFatalFailure());
  std::atomic<bool> go{false};
  std::atomic<unsigned> submitted[2] = {0, 0};
  std::atomic<unsigned> where[2] = {0, 0};  // each thread's instance after its last call
  std::atomic<bool> apart{false};
  const auto body = [&](unsigned t) {
    while (!go.load()) std::this_thread::yield();
    for (unsigned i = 0; i < kPerThread && !apart.load(); i++) {
      ring->submit(&mine[t][i], 1);
      submitted[t].fetch_add(1);
      ring->end_of_call();
      where[t].store(ring->this_threads_instance());
      if (where[0].load() != where[1].load()) apart.store(true);
      ring->harvest(false);
    }
  };
  std::thread a(body, 0), b(body, 1);
  go.store(true);
  a.join();
  b.join();
  EXPECT_TRUE(apart.load()) << "after " << submitted[0] << " + " << submitted[1]
                            << " submissions both threads still share an instance";
  ASSERT_TRUE(harvest_until(submitted[0] + submitted[1]));
  EXPECT_EQ(ring->inflight(), 0u);
  for (const auto &[ud, n] : sink.tally()) ASSERT_EQ(n, 1) << ud;
  for (const auto &c : sink.all()) ASSERT_EQ(c.res, 4096) << c.user_data;
}

// Thread `s` learns its instance, this thread takes that instance's
// submission lock, then `s` submits two reads (with `personality`, when
// non-zero, registered by `s` on its instance) and ends its call. Returns
// whether the submit call returned while the lock was still held, with
// the instances before and after in *own and *after; the reads are
// harvested and their bytes checked.
struct taken_lock_result {
  bool returned_while_held;
  unsigned own, after;
};

class UringPlacement : public UringThreads {
 protected:
  taken_lock_result submit_while_taken(bool with_personality) {
    aio2_test::pattern_file f(1 << 16);
    EXPECT_TRUE(f.ok());
    std::vector<unsigned char> buf(4096 * 2);
    request *batch[2];
    for (unsigned k = 0; k < 2; k++)
      batch[k] = add(reqs, SYS_pread64, k,
                     {static_cast<uint64_t>(f.fd()), u(&buf[4096 * k]), 2048, 4096u * (k + 1)});
    std::atomic<int> own{-1};
    std::atomic<bool> held{false}, done{false};
    std::atomic<unsigned> after{0};
    std::thread s([&] {
      if (with_personality) {
        aio2::sys::creds mine;
        EXPECT_EQ(aio2::sys::thread_creds(&mine), 0);
        const uint16_t id = ring->personality_for(mine);
        EXPECT_NE(id, 0) << "no personality registered";
        for (request *r : batch) {
          r->has_creds = true;
          r->personality = id;
        }
      }
      own = static_cast<int>(ring->this_threads_instance());
      while (!held.load()) std::this_thread::yield();
      ring->submit(batch, 2);
      ring->end_of_call();
      after = ring->this_threads_instance();
      done = true;
    });
    while (own.load() < 0) std::this_thread::yield();
    bool by_itself;
    {
      std::unique_lock lk = ring->hold_submission(static_cast<unsigned>(own.load()));
      held = true;
      // A batch that goes elsewhere returns at once; one that waits for
      // this lock cannot return before it is let go (after 200 ms).
      const auto end = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(with_personality ? 200 : 60000);
      while (!done.load() && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      by_itself = done.load();
    }
    s.join();
    EXPECT_TRUE(harvest_until(2));
    for (unsigned k = 0; k < 2; k++) {
      const auto c = sink.of(k);
      EXPECT_EQ(c.size(), 1u);
      if (c.size() == 1) {
        EXPECT_EQ(c[0].res, 2048);
      }
      for (unsigned b = 0; b < 2048; b += 257)
        EXPECT_EQ(buf[4096 * k + b], aio2_test::pattern_at(4096u * (k + 1) + b)) << k << " " << b;
    }
    EXPECT_EQ(ring->inflight(), 0u);
    return {by_itself, static_cast<unsigned>(own.load()), after.load()};
  }
};

// A batch whose instance's submission lock another thread holds goes at
// once to the next instance whose lock is free, and its thread moves
// there for its next call.
TEST_F(UringPlacement, ABatchGoesToAFreeInstanceWhenItsOwnIsTaken) {
  start(3);
  const taken_lock_result r = submit_while_taken(false);
  EXPECT_TRUE(r.returned_while_held) << "the batch waited for the taken lock";
  EXPECT_EQ(r.after, (r.own + 1) % 3) << "it did not move to the instance it used";
}

// A batch that names a personality (registered on its thread's instance)
// waits for that instance's lock; its thread moves to the next after.
TEST_F(UringPlacement, ABatchWithAPersonalityWaitsForItsOwnInstance) {
  start(3);
  const taken_lock_result r = submit_while_taken(true);
  EXPECT_FALSE(r.returned_while_held) << "the batch went to another instance";
  EXPECT_EQ(r.after, (r.own + 1) % 3);
}

TEST_F(UringThreads, AnyThreadHarvestsEveryInstanceAndFdShowsThem) {
  start_spread(2);
  ASSERT_TRUE(tp.ok());
  unsigned char bytes[2] = {};
  // One waiting read on each instance, submitted by this thread.
  pipe_reads(tp.rd, bytes, 2, 0);
  EXPECT_EQ(ring->inflight(), 2u);
  ASSERT_EQ(write(tp.wr, "ab", 2), 2);
  // Another thread, new to the executor, harvests both.
  size_t got = 0;
  std::thread other([&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (got < 2 && std::chrono::steady_clock::now() < end) {
      pollfd pfd{ring->fd(), POLLIN, 0};
      if (!ring->ready()) poll(&pfd, 1, 100);
      got += ring->harvest(false);
    }
  });
  other.join();
  EXPECT_EQ(got, 2u);
  EXPECT_EQ(ring->inflight(), 0u);
  ASSERT_EQ(sink.count(), 2u);
  for (unsigned i = 0; i < 2; i++) EXPECT_EQ(sink.of(i).at(0).res, 1);
}

TEST_F(UringThreads, CancelFindsARequestOnAnotherThreadsInstance) {
  start_spread(4);
  ASSERT_TRUE(tp.ok());
  unsigned char bytes[4] = {};
  pipe_reads(tp.rd, bytes, 4, 100);
  std::vector<executor::cancel_result> out(4);
  std::thread other([&] {
    for (unsigned i = 0; i < 4; i++) out[i] = ring->cancel(100 + i);
  });
  other.join();
  ASSERT_TRUE(harvest_until(4));
  for (unsigned i = 0; i < 4; i++) {
    EXPECT_EQ(out[i], executor::cancel_result::cancelled) << i;
    const auto c = sink.of(100 + i);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].res, -ECANCELED);
    EXPECT_EQ(c[0].flags, AIO2_EVENT_CANCELED);
  }
  EXPECT_EQ(ring->inflight(), 0u);
}

TEST_F(UringThreads, ShutdownCompletesEveryInstanceOnce) {
  start_spread(3);
  ASSERT_TRUE(tp.ok());
  unsigned char bytes[6] = {};
  pipe_reads(tp.rd, bytes, 6, 0);
  EXPECT_TRUE(aio2_test::returns_by_itself([&] { ring->shutdown(); }, [&] {
    EXPECT_EQ(write(tp.wr, "uuuuuu", 6), 6);
  })) << "shutdown did not cancel the reads";
  EXPECT_EQ(ring->inflight(), 0u);
  ASSERT_EQ(sink.count(), 6u);
  for (const auto &[ud, n] : sink.tally()) EXPECT_EQ(n, 1) << ud;
  for (const auto &c : sink.all()) EXPECT_TRUE(c.res == -ECANCELED || c.res == -EINTR) << c.res;
}

// A descriptor added to the file tables is named by its slot
// (IOSQE_FIXED_FILE) in the entries of calls on the file, and reads through
// it are right on every instance; others keep their number, and a call
// whose descriptor is a directory's (openat's) is never given a slot.
TEST_F(UringThreads, FixedFilesAreNamedByTheirSlotOnEveryInstance) {
  start_spread(3);
  aio2_test::pattern_file f(1 << 16), g(1 << 16);
  ASSERT_TRUE(f.ok() && g.ok());
  const int d = fcntl(f.fd(), F_DUPFD_CLOEXEC, 0);  // the context's own copy
  ASSERT_GE(d, 0);
  if (!ring->add_fixed_file(d)) {
    close(d);
    GTEST_SKIP() << "no io_uring file tables here (a kernel before 5.19)";
  }
  EXPECT_EQ(ring->fixed_slot(d), 0);
  EXPECT_EQ(ring->fixed_slot(g.fd()), -1);
  std::vector<unsigned char> buf(4096 * 7);
  for (unsigned i = 0; i < 6; i++) {  // two on each instance
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(d), u(&buf[4096 * i]), 4096,
                                           4096u * (i + 1)});
    const auto *sqe = reinterpret_cast<const io_uring_sqe *>(r->sqe);
    EXPECT_TRUE(sqe->flags & IOSQE_FIXED_FILE);
    EXPECT_EQ(sqe->fd, 0);
    ring->submit(&r, 1);
    ring->end_of_call();
  }
  request *r = add(reqs, SYS_pread64, 6, {static_cast<uint64_t>(g.fd()), u(&buf[4096 * 6]), 4096, 0});
  const auto *sqe = reinterpret_cast<const io_uring_sqe *>(r->sqe);
  EXPECT_FALSE(sqe->flags & IOSQE_FIXED_FILE);
  EXPECT_EQ(sqe->fd, g.fd());
  ring->submit(&r, 1);
  ring->end_of_call();
  ASSERT_TRUE(harvest_until(7));
  for (unsigned i = 0; i < 7; i++) {
    const auto c = sink.of(i);
    ASSERT_EQ(c.size(), 1u);
    ASSERT_EQ(c[0].res, 4096) << i;
    const unsigned base = i < 6 ? 4096u * (i + 1) : 0;
    for (unsigned b = 0; b < 4096; b += 509)
      ASSERT_EQ(buf[4096 * i + b], aio2_test::pattern_at(base + b)) << i << " " << b;
  }
  aio2::exec::request probe{};
  const char *name = "x";
  const uint64_t at_args[4] = {static_cast<uint64_t>(d), u(name), O_RDONLY, 0};
  if (ring->translate(SYS_openat, at_args, probe.sqe)) {
    EXPECT_FALSE(reinterpret_cast<const io_uring_sqe *>(probe.sqe)->flags & IOSQE_FIXED_FILE);
  }
  ring.reset();  // the tables hold the file until the instances go
  close(d);
}

// Reads and writes into a registered buffer are READ_FIXED and WRITE_FIXED
// with its index on every instance, with the right bytes; one that runs
// past the buffer's end stays a plain READ.
TEST_F(UringThreads, RegisteredBuffersAreNamedByTheirIndexOnEveryInstance) {
  start_spread(3);
  aio2_test::pattern_file f(1 << 16);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> a(4096 * 6), b(4096);
  const iovec bufs[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  const int rc = ring->register_buffers(bufs, 2);
  ASSERT_EQ(rc, 0) << std::strerror(-rc);
  EXPECT_EQ(ring->register_buffers(bufs, 1), -EBUSY);
  for (unsigned i = 0; i < 6; i++) {  // two on each instance
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(f.fd()), u(&a[4096 * i]), 4096,
                                           4096u * (i + 1)});
    const auto *sqe = reinterpret_cast<const io_uring_sqe *>(r->sqe);
    EXPECT_EQ(sqe->opcode, IORING_OP_READ_FIXED);
    EXPECT_EQ(sqe->buf_index, 0);
    ring->submit(&r, 1);
    ring->end_of_call();
  }
  const char msg[] = "fixed";
  std::memcpy(b.data(), msg, sizeof msg);
  request *w = add(reqs, SYS_pwrite64, 6, {static_cast<uint64_t>(f.fd()), u(b.data()), sizeof msg, 0});
  EXPECT_EQ(reinterpret_cast<const io_uring_sqe *>(w->sqe)->opcode, IORING_OP_WRITE_FIXED);
  EXPECT_EQ(reinterpret_cast<const io_uring_sqe *>(w->sqe)->buf_index, 1);
  ring->submit(&w, 1);
  ring->end_of_call();
  request *r = add(reqs, SYS_pread64, 7, {static_cast<uint64_t>(f.fd()), u(&a[4096 * 5]), 8192, 0});
  EXPECT_EQ(reinterpret_cast<const io_uring_sqe *>(r->sqe)->opcode, IORING_OP_READ);
  ASSERT_TRUE(harvest_until(7));
  for (unsigned i = 0; i < 6; i++) {
    const auto c = sink.of(i);
    ASSERT_EQ(c.size(), 1u);
    ASSERT_EQ(c[0].res, 4096) << i;
    for (unsigned k = 0; k < 4096; k += 509)
      ASSERT_EQ(a[4096 * i + k], aio2_test::pattern_at(4096u * (i + 1) + k)) << i << " " << k;
  }
  ASSERT_EQ(sink.of(6).size(), 1u);
  EXPECT_EQ(sink.of(6)[0].res, static_cast<int64_t>(sizeof msg));
  char back[sizeof msg] = {};
  EXPECT_EQ(pread(f.fd(), back, sizeof back, 0), static_cast<ssize_t>(sizeof back));
  EXPECT_STREQ(back, msg);
}

// Instances are made by init, none later: a submit call that made a
// descriptor could take a number the program has just closed.
TEST_F(UringThreads, SubmittingMakesNoDescriptor) {
  start_spread(4);
  aio2_test::pattern_file f(4096);
  ASSERT_TRUE(f.ok());
  const int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(probe, 0);
  ASSERT_EQ(close(probe), 0);  // the lowest free number now
  std::vector<unsigned char> buf(4096 * 8);
  for (unsigned i = 0; i < 8; i++) {
    request *r = add(reqs, SYS_pread64, i, {static_cast<uint64_t>(f.fd()), u(&buf[4096 * i]), 4096, 0});
    ring->submit(&r, 1);
    ring->end_of_call();
  }
  const int again = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(again, probe) << "a submit call took the number just closed";
  if (again >= 0) close(again);
  ASSERT_TRUE(harvest_until(8));
}

}  // namespace
