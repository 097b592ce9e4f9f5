// SPDX-License-Identifier: MIT
// The completion queue on its own (core/event_ring_queue with core/slots),
// fed by the test as an executor would feed it: the in-flight limit, the
// ring then the overflow list in posting order, getevents' buffer and
// timeout rules, the wake-up of blocked reapers (one, and many producers
// against many reapers), close(), and the context's eventfd. No executor
// and no io_uring: start(nullptr, efd).

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "core/event_ring_queue.h"
#include "core/slots.h"
#include "exec_util.h"

namespace {

using aio2::core::event_ring_queue;
using aio2::exec::request;

constexpr uint64_t kRingBytes = 4096;
constexpr uint32_t kTagEventBytes = sizeof(aio2_event) + sizeof(aio2_attr_ret) + AIO2_TAG_MAX;

struct got_event {
  uint64_t user_data;
  int64_t res;
  uint32_t flags;
  uint32_t len;
};

std::vector<got_event> parse(const unsigned char *buf, ssize_t bytes) {
  std::vector<got_event> out;
  if (bytes <= 0) return out;
  const size_t n = static_cast<size_t>(bytes);
  size_t walked = 0;
  for (const aio2_event *ev = aio2_event_next(buf, n, nullptr); ev;
       ev = aio2_event_next(buf, n, ev)) {
    out.push_back({ev->user_data, ev->res, ev->flags, ev->len});
    walked += ev->len;
  }
  EXPECT_EQ(walked, n) << "the buffer holds whole events only";
  return out;
}

class CompletionQueue : public ::testing::Test {
 protected:
  void make(uint32_t max_inflight, int efd = -1) {
    q = std::make_unique<event_ring_queue>(s, max_inflight);
    ASSERT_EQ(q->create(kRingBytes), 0);
    ASSERT_EQ(q->start(nullptr, efd), 0);
  }
  void TearDown() override {
    // Take back what the test left on the overflow list (it holds slots).
    if (!q) return;
    alignas(8) unsigned char buf[65536];
    const timespec zero{0, 0};
    while (q->getevents(0, buf, sizeof buf, &zero) > 0) {
    }
  }

  // Completes a request as an executor would: admitted, a slot, its
  // attribute state prepared (no attributes, or a 64-byte tag), res and
  // flags set. Does not call batch_done.
  void post(uint64_t user_data, int64_t res, uint32_t flags = 0, bool tag = false) {
    ASSERT_TRUE(q->admit()) << "user_data " << user_data;
    request *r = nullptr;
    ASSERT_EQ(s.take(&r, 1), 1u);
    r->io = aio2_iocb{};
    r->io.len = sizeof r->io;
    r->io.nr = SYS_getppid;
    r->io.user_data = user_data;
    uint32_t attr_len = 0;
    if (tag) {
      alignas(8) unsigned char b[sizeof(aio2_iocb) + 8 + AIO2_TAG_MAX];
      auto *io = reinterpret_cast<aio2_iocb *>(b);
      *io = r->io;
      const char t[AIO2_TAG_MAX] = "tagged";
      ASSERT_NE(aio2_attr_add(io, sizeof b, AIO2_ATTR_TAG, 0, t, sizeof t), nullptr);
      attr_len = io->len - static_cast<uint32_t>(sizeof(aio2_iocb));
      ASSERT_EQ(r->attrs.keep_records(b + sizeof(aio2_iocb), attr_len), 0);
      r->io.len = io->len;
    } else {
      ASSERT_EQ(r->attrs.keep_records(nullptr, 0), 0);
    }
    ASSERT_EQ(r->attrs.prepare(r->io, r->attrs.records(), attr_len, AIO2_PATH_POOL, false), 0);
    r->res = res;
    r->event_flags = flags;
    q->complete(r);
  }

  uint32_t owner_flags() const { return aio2_ring_owner_flags(q->ring()); }
  bool overflowing() const { return owner_flags() & AIO2_RING_OVERFLOW; }

  // Posts events 1, 2, ... (res = 10 * user_data) until one lands on the
  // overflow list; returns how many went into the ring.
  uint64_t fill_ring() {
    uint64_t n = 0;
    while (!overflowing()) {
      post(n + 1, static_cast<int64_t>(10 * (n + 1)));
      if (HasFatalFailure()) return n;
      n++;
      if (n > kRingBytes) {
        ADD_FAILURE() << "the ring never filled";
        return n;
      }
    }
    return n - 1;  // the last one overflowed
  }

  ssize_t poll_events(unsigned char *buf, size_t bytes, unsigned min = 1) {
    const timespec zero{0, 0};
    return q->getevents(min, buf, bytes, &zero);
  }

  aio2::core::slots s;
  std::unique_ptr<event_ring_queue> q;
};

TEST_F(CompletionQueue, AdmitUpToMaxInflight) {
  make(4);
  for (int i = 0; i < 4; i++) EXPECT_TRUE(q->admit()) << i;
  EXPECT_FALSE(q->admit());
  EXPECT_FALSE(q->admit());  // a refusal counts nothing
  q->unadmit();
  EXPECT_TRUE(q->admit());
  EXPECT_FALSE(q->admit());
  for (int i = 0; i < 4; i++) q->unadmit();
}

TEST_F(CompletionQueue, AnEventInTheRingGivesItsAdmissionBack) {
  make(1);
  for (uint64_t i = 1; i <= 20; i++) {
    post(i, 0);  // admit() inside would fail if the admission were kept
    ASSERT_FALSE(HasFatalFailure());
  }
  EXPECT_FALSE(overflowing());
  alignas(8) unsigned char buf[4096];
  const auto evs = parse(buf, poll_events(buf, sizeof buf));
  ASSERT_EQ(evs.size(), 20u);
  for (uint64_t i = 0; i < 20; i++) EXPECT_EQ(evs[i].user_data, i + 1);
}

TEST_F(CompletionQueue, RingThenOverflowInPostingOrder) {
  make(1u << 20);
  const uint64_t in_ring = fill_ring();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_GT(in_ring, 100u);  // 24-byte events in 4 KiB
  const uint64_t total = in_ring + 1 + 20;
  for (uint64_t i = in_ring + 2; i <= total; i++) {
    post(i, static_cast<int64_t>(10 * i), i % 3 ? 0 : AIO2_EVENT_CANCELED);
    ASSERT_FALSE(HasFatalFailure());
  }
  q->batch_done(false);
  EXPECT_TRUE(overflowing());

  alignas(8) unsigned char buf[65536];
  const auto evs = parse(buf, poll_events(buf, sizeof buf));
  ASSERT_EQ(evs.size(), total);
  for (uint64_t i = 0; i < total; i++) {
    const uint64_t ud = i + 1;
    EXPECT_EQ(evs[i].user_data, ud) << "event " << i;
    EXPECT_EQ(evs[i].res, static_cast<int64_t>(10 * ud));
    EXPECT_EQ(evs[i].len, sizeof(aio2_event));
    const uint32_t want = ud > in_ring + 1 && ud % 3 == 0 ? AIO2_EVENT_CANCELED : 0;
    EXPECT_EQ(evs[i].flags, want) << "event " << i;
  }
  EXPECT_FALSE(overflowing()) << "drained: OVERFLOW is cleared";
  EXPECT_EQ(poll_events(buf, sizeof buf), 0);
}

TEST_F(CompletionQueue, NewEventsQueueBehindTheOverflowList) {
  make(1u << 20);
  const uint64_t in_ring = fill_ring();
  ASSERT_FALSE(HasFatalFailure());
  post(in_ring + 2, 0);  // a second one on the overflow list
  ASSERT_FALSE(HasFatalFailure());
  // Reap exactly the ring's events: the overflow list stays.
  std::vector<unsigned char> ring_part(in_ring * sizeof(aio2_event) + 8);
  auto *rb = reinterpret_cast<unsigned char *>(
      (reinterpret_cast<uintptr_t>(ring_part.data()) + 7) & ~uintptr_t{7});
  const auto first = parse(rb, poll_events(rb, in_ring * sizeof(aio2_event)));
  ASSERT_EQ(first.size(), in_ring);
  EXPECT_EQ(first.back().user_data, in_ring);
  EXPECT_TRUE(overflowing());
  // The ring has room now, but an event posted meanwhile must not pass the
  // older ones waiting on the overflow list.
  post(in_ring + 3, 0);
  ASSERT_FALSE(HasFatalFailure());
  alignas(8) unsigned char buf[4096];
  const auto rest = parse(buf, poll_events(buf, sizeof buf));
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest[0].user_data, in_ring + 1);
  EXPECT_EQ(rest[1].user_data, in_ring + 2);
  EXPECT_EQ(rest[2].user_data, in_ring + 3);
  EXPECT_FALSE(overflowing());
}

TEST_F(CompletionQueue, OverflowedEventsHoldTheirAdmissions) {
  make(2);
  const uint64_t in_ring = fill_ring();  // each admission returned at once
  ASSERT_FALSE(HasFatalFailure());
  post(in_ring + 2, 0);  // the second admission, held on the overflow list
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(q->admit()) << "two events wait on the overflow list";
  alignas(8) unsigned char buf[65536];
  EXPECT_EQ(parse(buf, poll_events(buf, sizeof buf)).size(), in_ring + 2);
  EXPECT_TRUE(q->admit());
  EXPECT_TRUE(q->admit());
  EXPECT_FALSE(q->admit());
  q->unadmit();
  q->unadmit();
}

TEST_F(CompletionQueue, SmallBufferFromTheRingSaysWhatItNeeds) {
  make(16);
  post(5, 55, 0, /*tag=*/true);
  ASSERT_FALSE(HasFatalFailure());
  alignas(8) unsigned char small[64] = {};
  ASSERT_LT(sizeof small, kTagEventBytes);
  EXPECT_EQ(poll_events(small, sizeof small), -EINVAL);
  uint32_t need = 0;
  std::memcpy(&need, small, sizeof need);
  EXPECT_EQ(need, kTagEventBytes);
  // Nothing was consumed.
  alignas(8) unsigned char buf[4096];
  const auto evs = parse(buf, poll_events(buf, sizeof buf));
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].user_data, 5u);
  EXPECT_EQ(evs[0].res, 55);
  EXPECT_EQ(evs[0].len, kTagEventBytes);
}

TEST_F(CompletionQueue, SmallBufferFromTheOverflowListSaysWhatItNeeds) {
  make(1u << 20);
  const uint64_t in_ring = fill_ring();
  ASSERT_FALSE(HasFatalFailure());
  post(in_ring + 2, 0, 0, /*tag=*/true);
  ASSERT_FALSE(HasFatalFailure());
  // Room for the ring's events and the first overflowed one (24 bytes), not
  // the tagged one after it: what fits is returned.
  std::vector<unsigned char> space((in_ring + 1) * sizeof(aio2_event) + 8);
  auto *b = reinterpret_cast<unsigned char *>(
      (reinterpret_cast<uintptr_t>(space.data()) + 7) & ~uintptr_t{7});
  const auto first = parse(b, poll_events(b, (in_ring + 1) * sizeof(aio2_event)));
  ASSERT_EQ(first.size(), in_ring + 1);
  EXPECT_TRUE(overflowing());
  alignas(8) unsigned char small[32] = {};
  EXPECT_EQ(poll_events(small, sizeof small), -EINVAL);
  uint32_t need = 0;
  std::memcpy(&need, small, sizeof need);
  EXPECT_EQ(need, kTagEventBytes);
  EXPECT_TRUE(overflowing());
  alignas(8) unsigned char buf[4096];
  const auto rest = parse(buf, poll_events(buf, sizeof buf));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].user_data, in_ring + 2);
  EXPECT_FALSE(overflowing());
}

TEST_F(CompletionQueue, BadBuffers) {
  make(16);
  post(1, 0);
  ASSERT_FALSE(HasFatalFailure());
  alignas(8) unsigned char buf[256];
  EXPECT_EQ(poll_events(nullptr, 256), -EINVAL);
  EXPECT_EQ(poll_events(buf + 4, 128), -EINVAL);  // not 8-aligned
  const timespec bad{0, 1000000000};
  EXPECT_EQ(q->getevents(1, buf, sizeof buf, &bad), -EINVAL);
  EXPECT_EQ(parse(buf, poll_events(buf, sizeof buf)).size(), 1u);
}

TEST_F(CompletionQueue, TimeoutZeroPolls) {
  make(16);
  alignas(8) unsigned char buf[4096];
  EXPECT_EQ(poll_events(buf, sizeof buf), 0);
  EXPECT_EQ(poll_events(buf, sizeof buf, 0), 0);
  post(1, 1);
  post(2, 2);
  ASSERT_FALSE(HasFatalFailure());
  // Fewer than min_events: what there is, at once.
  const auto evs = parse(buf, poll_events(buf, sizeof buf, 5));
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].user_data, 1u);
  EXPECT_EQ(evs[1].user_data, 2u);
}

TEST_F(CompletionQueue, ShortTimeoutExpires) {
  make(16);
  alignas(8) unsigned char buf[256];
  const timespec ts{0, 1000000};
  EXPECT_EQ(q->getevents(1, buf, sizeof buf, &ts), 0);
}

// A reaper thread blocked in getevents without a timeout. A wake-up that
// never comes shows as a reaper still waiting after a generous limit
// (then close() lets it go), not as a hang.
class blocked_reaper {
 public:
  blocked_reaper(event_ring_queue &q, unsigned min_events) : q_(q) {
    t_ = std::thread([this, min_events] {
      tid_ = aio2_test::this_tid();
      got_ = q_.getevents(min_events, buf_, sizeof buf_, nullptr);
      done_ = true;
    });
    while (tid_.load() == 0) std::this_thread::yield();
  }
  ~blocked_reaper() {
    if (t_.joinable()) finish();
  }
  // Waits until it sleeps on the futex.
  bool asleep() const { return aio2_test::wait_tid_in_syscall(tid_, SYS_futex); }
  // Waits for getevents to return; false when it had to be closed out.
  bool finish() {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done_.load() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const bool woken = done_.load();
    if (!woken) q_.close();
    t_.join();
    return woken;
  }
  std::vector<got_event> events() const { return parse(buf_, got_); }
  ssize_t got() const { return got_; }

 private:
  event_ring_queue &q_;
  std::thread t_;
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  ssize_t got_ = -1;
  alignas(8) unsigned char buf_[4096];
};

// A reaper blocked on the futex (seen in /proc) is woken by a post from
// another thread.
TEST_F(CompletionQueue, BlockedReaperIsWokenByAPost) {
  make(16);
  blocked_reaper reaper(*q, 1);
  ASSERT_TRUE(reaper.asleep()) << "the reaper never slept";
  std::thread poster([&] {
    post(42, -EIO);
    q->batch_done(false);
  });
  poster.join();
  ASSERT_TRUE(reaper.finish()) << "the post did not wake the reaper";
  const auto evs = reaper.events();
  ASSERT_EQ(evs.size(), 1u) << "getevents returned " << reaper.got();
  EXPECT_EQ(evs[0].user_data, 42u);
  EXPECT_EQ(evs[0].res, -EIO);
}

TEST_F(CompletionQueue, WaitsForMinEvents) {
  make(16);
  blocked_reaper reaper(*q, 3);
  for (uint64_t i = 1; i <= 3; i++) {
    // Each post finds the reaper asleep (again: it has fewer than 3).
    ASSERT_TRUE(reaper.asleep());
    post(i, 0);
    q->batch_done(false);
  }
  ASSERT_TRUE(reaper.finish()) << "the posts did not wake the reaper";
  EXPECT_EQ(reaper.events().size(), 3u);
}

TEST_F(CompletionQueue, CloseWakesAWaiter) {
  make(16);
  std::atomic<pid_t> tid{0};
  ssize_t got = -1;
  alignas(8) unsigned char buf[256];
  std::thread reaper([&] {
    tid = aio2_test::this_tid();
    const timespec ts{60, 0};
    got = q->getevents(1, buf, sizeof buf, &ts);
  });
  while (tid.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(aio2_test::wait_tid_in_syscall(tid, SYS_futex));
  const auto t0 = std::chrono::steady_clock::now();
  q->close();
  reaper.join();
  EXPECT_EQ(got, 0);
  // Woken, not timed out: the timeout is 60 s, and half of it tells the two
  // apart however loaded the machine is.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  // Later waits return at once, even without a timeout; events still come out.
  EXPECT_EQ(q->getevents(1, buf, sizeof buf, nullptr), 0);
  post(7, 0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(parse(buf, q->getevents(2, buf, sizeof buf, nullptr)).size(), 1u);
}

TEST_F(CompletionQueue, EventfdCountsEachEventOnceAtBatchDone) {
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  make(16, efd);
  uint64_t v = 0;
  EXPECT_EQ(read(efd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  post(1, 0);
  // Nothing is written before the batch ends.
  EXPECT_EQ(read(efd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  q->batch_done(false);
  ASSERT_EQ(read(efd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 1u);
  for (uint64_t i = 2; i < 7; i++) post(i, 0);
  q->batch_done(true);  // a collected batch counts the same
  ASSERT_EQ(read(efd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  EXPECT_EQ(v, 5u) << "one count per event, in one write";
  // A batch_done with nothing new posted writes nothing.
  q->batch_done(false);
  q->batch_done(true);
  EXPECT_EQ(read(efd, &v, sizeof v), -1);
  EXPECT_EQ(errno, EAGAIN);
  alignas(8) unsigned char buf[256];
  EXPECT_EQ(parse(buf, poll_events(buf, sizeof buf)).size(), 6u);
  q.reset();
  close(efd);
}

// N producer threads post M events each (in batches, as executors do)
// while K reapers block in getevents: every event is reaped exactly once.
// The ring is small, so the overflow list takes part.
TEST_F(CompletionQueue, ManyProducersManyReapersConserveEvents) {
  constexpr unsigned kProducers = 4, kPerProducer = 3000, kReapers = 3, kBatch = 7;
  constexpr uint64_t kTotal = uint64_t{kProducers} * kPerProducer;
  make(1u << 20);
  std::vector<std::atomic<int>> seen(kTotal);
  std::atomic<uint64_t> reaped{0}, bad{0};
  std::atomic<bool> stop{false};

  std::vector<std::thread> reapers;
  for (unsigned k = 0; k < kReapers; k++)
    reapers.emplace_back([&] {
      alignas(8) unsigned char buf[1024];
      for (;;) {
        const ssize_t got = q->getevents(1, buf, sizeof buf, nullptr);
        if (got < 0) {
          bad++;
          return;
        }
        if (got == 0) {
          if (stop) return;
          continue;
        }
        for (const got_event &e : parse(buf, got)) {
          if (e.user_data >= kTotal || e.res != static_cast<int64_t>(e.user_data)) {
            bad++;
            continue;
          }
          seen[e.user_data]++;
          reaped++;
        }
      }
    });

  std::vector<std::thread> producers;
  for (unsigned p = 0; p < kProducers; p++)
    producers.emplace_back([&, p] {
      for (unsigned i = 0; i < kPerProducer; i++) {
        const uint64_t ud = uint64_t{p} * kPerProducer + i;
        post(ud, static_cast<int64_t>(ud));
        if (i % kBatch == kBatch - 1 || i == kPerProducer - 1) q->batch_done(false);
      }
    });
  for (std::thread &t : producers) t.join();

  // Generous: only so that lost wake-ups fail the test instead of hanging it.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (reaped.load() < kTotal && bad.load() == 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  // All of them, before close() (which would let the reapers drain the rest).
  EXPECT_EQ(reaped.load(), kTotal) << "reapers stayed asleep with events waiting";
  stop = true;
  q->close();
  for (std::thread &t : reapers) t.join();

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(reaped.load(), kTotal);
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < kTotal; i++)
    if (seen[i].load() != 1 && wrong++ < 10) ADD_FAILURE() << "user_data " << i << " reaped " << seen[i].load() << " times";
  EXPECT_EQ(wrong, 0u);
  EXPECT_FALSE(overflowing());
}

}  // namespace
