// SPDX-License-Identifier: MIT
// Conservation under stress through aio2's libaio.so.1, loaded with dlopen
// (so that a sanitizer build of this test checks the replacement built with
// it). Submitter threads write stamped blocks, each write's completion
// submits a read of the same block, and the read's completion checks the
// stamp: every request must complete exactly once, with its own iocb and
// aio_data, its full length and intact data, and io_submit must never
// refuse while the requests outstanding stay within what io_setup promised.
// Events are reaped in each of the ways programs reap them: io_getevents
// from many threads of one context, the ring read in user space the way
// fio's userspace_reap does (head, tail and events[] read, head advanced
// with a store-release), and eventfd-driven reaping from the ring, qemu's
// way (the eventfd's counts must add up to the events).
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "libaio_api.h"
#include "stamp.h"
#include "test_util.h"

namespace {

using aio2_test::aio_ring_view;
using aio2_test::io_context_t;
using aio2_test::libaio_api;

const libaio_api &api() {
  static const libaio_api a = libaio_api::load("aio2", AIO2_LIBAIO_PATH);
  return a;
}

constexpr size_t kBlock = 4096;

enum class reap_mode {
  getevents,       // io_getevents, by every submitter of the context
  user_ring,       // the submitter reads its own context's ring (fio)
  eventfd_ring,    // one thread per context waits on the eventfd, reads the ring (qemu)
  getevents_pool,  // dedicated reaper threads call io_getevents on a shared context
};

struct scenario {
  const char *name;
  int contexts;
  int submitters;  // spread over the contexts round-robin
  int depth;       // requests each submitter keeps outstanding
  int pairs;       // write-then-read pairs per submitter
  reap_mode mode;
  int reapers;  // getevents_pool: reaper threads per context
};

// One request slot of a submitter: its iocb and buffer, reused pair after
// pair. `seq` is the pair in it; `phase` 0 writing, 1 reading. `busy` is
// cleared (release) by the reaper that finished the pair's read; the
// submitter reads it (acquire) before it takes the slot again. In between,
// the library orders each step: what a thread wrote before io_submit, the
// thread that reaps the event sees.
struct slot {
  iocb cb{};
  unsigned char *buf = nullptr;
  uint64_t seq = 0;
  int phase = 0;
  std::atomic<bool> busy{false};
};

struct submitter;

struct context_state {
  io_context_t ctx = nullptr;
  int efd = -1;
  std::vector<submitter *> members;
};

struct submitter {
  int id = 0;
  context_state *cs = nullptr;
  std::unique_ptr<slot[]> slots;
  size_t nslots = 0;
  std::vector<uint8_t> writes_done, reads_done;  // per pair: completions seen
};

struct run_state {
  explicit run_state(const scenario &s) : sc(s) {}
  const scenario &sc;
  int fd = -1;
  std::vector<std::unique_ptr<submitter>> subs;
  std::vector<std::unique_ptr<context_state>> ctxs;
  std::atomic<uint64_t> reads_finished{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> eventfd_counts{0};
  std::atomic<int> errors{0};
  std::atomic<int> refused{0};
  std::string first_error;
  std::mutex error_mu;
  uint64_t total_reads() const { return uint64_t(sc.submitters) * uint64_t(sc.pairs); }

  void error(const std::string &what) {
    if (errors.fetch_add(1) == 0) {
      std::lock_guard lk(error_mu);
      first_error = what;
    }
  }
};

uint64_t word_at(int sub, uint64_t seq, size_t i) {
  return aio2_test::mix((uint64_t(sub) << 48) ^ (seq << 12) ^ i);
}

void stamp(unsigned char *buf, int sub, uint64_t seq) {
  for (size_t i = 0; i < kBlock / 8; i++) {
    const uint64_t w = word_at(sub, seq, i);
    std::memcpy(buf + 8 * i, &w, 8);
  }
}

bool stamped(const unsigned char *buf, int sub, uint64_t seq) {
  for (size_t i = 0; i < kBlock / 8; i++) {
    uint64_t w;
    std::memcpy(&w, buf + 8 * i, 8);
    if (w != word_at(sub, seq, i)) return false;
  }
  return true;
}

// aio_data: submitter, slot, phase.
uint64_t data_of(int sub, size_t slot_index, int phase) {
  return (uint64_t(sub) << 32) | (uint64_t(slot_index) << 1) | uint64_t(phase);
}

void prep(run_state &st, submitter &s, size_t k, int phase) {
  slot &sl = s.slots[k];
  sl.phase = phase;
  iocb &cb = sl.cb;
  cb = iocb{};
  cb.aio_lio_opcode = phase == 0 ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
  cb.aio_fildes = static_cast<uint32_t>(st.fd);
  cb.aio_buf = reinterpret_cast<uint64_t>(sl.buf);
  cb.aio_nbytes = kBlock;
  cb.aio_offset = static_cast<int64_t>((size_t(s.id) * st.sc.depth + k) * kBlock);
  cb.aio_data = data_of(s.id, k, phase);
  if (s.cs->efd >= 0) {
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<uint32_t>(s.cs->efd);
  }
}

// Submits one iocb; -EAGAIN within the promised depth is an error.
void submit(run_state &st, submitter &s, iocb *cb) {
  iocb *list[1] = {cb};
  const int rc = api().io_submit(s.cs->ctx, 1, list);
  if (rc == 1) return;
  if (rc == -EAGAIN) st.refused.fetch_add(1);
  st.error("io_submit: " + std::to_string(rc));
}

// Handles one event, wherever it was reaped.
void on_event(run_state &st, const io_event &ev) {
  st.events.fetch_add(1, std::memory_order_relaxed);
  const int sub = static_cast<int>(ev.data >> 32);
  const size_t k = static_cast<size_t>((ev.data & 0xffffffffu) >> 1);
  const int phase = static_cast<int>(ev.data & 1);
  if (sub < 0 || sub >= st.sc.submitters || k >= size_t(st.sc.depth)) {
    st.error("an event with unknown aio_data");
    return;
  }
  submitter &s = *st.subs[size_t(sub)];
  slot &sl = s.slots[k];
  if (ev.obj != reinterpret_cast<uint64_t>(&sl.cb)) st.error("obj is not the iocb");
  if (phase != sl.phase) st.error("an event for a phase not in flight");
  if (ev.res != static_cast<int64_t>(kBlock) || ev.res2 != 0)
    st.error("res " + std::to_string(static_cast<long long>(ev.res)));
  if (phase == 0) {
    if (s.writes_done[sl.seq]++ != 0) st.error("a write completed twice");
    std::memset(sl.buf, 0, kBlock);
    prep(st, s, k, 1);
    submit(st, s, &sl.cb);
    return;
  }
  if (s.reads_done[sl.seq]++ != 0) st.error("a read completed twice");
  if (!stamped(sl.buf, sub, sl.seq)) st.error("a block read back differs from its stamp");
  st.reads_finished.fetch_add(1, std::memory_order_relaxed);
  sl.busy.store(false, std::memory_order_release);
}

bool finished(const run_state &st) {
  return st.reads_finished.load() >= st.total_reads() || st.errors.load() != 0;
}

// fio's userspace_reap: reads the ring without a call. One reaper per ring.
int user_reap(run_state &st, io_context_t ctx) {
  auto *ring = reinterpret_cast<aio_ring_view *>(ctx);
  if (ring->magic != aio2_test::kAioRingMagic) {
    st.error("the ring's magic is wrong");
    return 0;
  }
  const unsigned nr = ring->nr;
  unsigned head = ring->head;
  const unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
  io_event evs[64];
  int n = 0;
  while (head != tail && n < 64) {
    evs[n++] = ring->events[head];
    head = head + 1 == nr ? 0 : head + 1;
  }
  __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
  for (int i = 0; i < n; i++) on_event(st, evs[i]);
  return n;
}

int getevents_reap(run_state &st, io_context_t ctx, long timeout_ns) {
  io_event evs[32];
  timespec ts{0, timeout_ns};
  const int got = api().io_getevents(ctx, 1, 32, evs, &ts);
  if (got < 0 && got != -EINTR) st.error("io_getevents: " + std::to_string(got));
  for (int i = 0; i < got; i++) on_event(st, evs[i]);
  return got;
}

// Starts a pair in every free slot (so `depth` outstanding at most); reaps
// itself in the getevents and user_ring modes.
void submitter_main(run_state &st, submitter &s) {
  const uint64_t deadline = aio2_test::now_ns() + 120000000000ull;
  uint64_t started = 0;
  for (;;) {
    if (st.errors.load() != 0) return;
    if (aio2_test::now_ns() > deadline) {
      st.error("timed out");
      return;
    }
    bool any_busy = false;
    for (size_t k = 0; k < s.nslots; k++) {
      slot &sl = s.slots[k];
      if (sl.busy.load(std::memory_order_acquire)) {
        any_busy = true;
        continue;
      }
      if (started == uint64_t(st.sc.pairs)) continue;
      sl.busy.store(true, std::memory_order_relaxed);
      any_busy = true;
      sl.seq = started++;
      stamp(sl.buf, s.id, sl.seq);
      prep(st, s, k, 0);
      submit(st, s, &sl.cb);
    }
    if (!any_busy && started == uint64_t(st.sc.pairs)) return;
    switch (st.sc.mode) {
      case reap_mode::getevents:
        getevents_reap(st, s.cs->ctx, 2000000);
        break;
      case reap_mode::user_ring:
        if (user_reap(st, s.cs->ctx) == 0) sched_yield();
        break;
      default:
        usleep(200);
        break;
    }
  }
}

// qemu's way: wait on the eventfd, add up its count, read the ring.
void eventfd_reaper_main(run_state &st, context_state &cs) {
  while (!finished(st)) {
    pollfd pfd{cs.efd, POLLIN, 0};
    if (poll(&pfd, 1, 100) != 1) continue;
    uint64_t count = 0;
    if (read(cs.efd, &count, sizeof count) == sizeof count) st.eventfd_counts.fetch_add(count);
    while (user_reap(st, cs.ctx) > 0) {
    }
  }
}

void getevents_reaper_main(run_state &st, context_state &cs) {
  while (!finished(st)) getevents_reap(st, cs.ctx, 20000000);
}

void run(const scenario &sc) {
  const libaio_api &a = api();
  ASSERT_TRUE(a.ok()) << a.error;
  aio2_test::scratch_dir dir("aio2-libaio-stress");
  ASSERT_TRUE(dir.ok());
  run_state st(sc);
  const std::string path = dir / "data";
  st.fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(st.fd, 0);
  ASSERT_EQ(ftruncate(st.fd, off_t(sc.submitters) * sc.depth * off_t(kBlock)), 0);

  const int per_ctx = (sc.submitters + sc.contexts - 1) / sc.contexts;
  for (int c = 0; c < sc.contexts; c++) {
    auto cs = std::make_unique<context_state>();
    // Exactly what the members keep outstanding: io_submit must never say
    // -EAGAIN.
    ASSERT_EQ(a.io_setup(per_ctx * sc.depth, &cs->ctx), 0);
    if (sc.mode == reap_mode::eventfd_ring) cs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    st.ctxs.push_back(std::move(cs));
  }
  std::vector<std::unique_ptr<unsigned char, decltype(&std::free)>> bufs;
  for (int i = 0; i < sc.submitters; i++) {
    auto s = std::make_unique<submitter>();
    s->id = i;
    s->cs = st.ctxs[size_t(i % sc.contexts)].get();
    s->cs->members.push_back(s.get());
    s->slots = std::make_unique<slot[]>(size_t(sc.depth));
    s->nslots = size_t(sc.depth);
    for (size_t k = 0; k < s->nslots; k++) {
      slot &sl = s->slots[k];
      sl.buf = static_cast<unsigned char *>(std::aligned_alloc(kBlock, kBlock));
      bufs.emplace_back(sl.buf, &std::free);
    }
    s->writes_done.assign(size_t(sc.pairs), 0);
    s->reads_done.assign(size_t(sc.pairs), 0);
    st.subs.push_back(std::move(s));
  }

  std::vector<std::thread> threads;
  for (auto &cs : st.ctxs) {
    if (sc.mode == reap_mode::eventfd_ring) {
      threads.emplace_back(eventfd_reaper_main, std::ref(st), std::ref(*cs));
    } else if (sc.mode == reap_mode::getevents_pool) {
      for (int r = 0; r < sc.reapers; r++)
        threads.emplace_back(getevents_reaper_main, std::ref(st), std::ref(*cs));
    }
  }
  for (auto &s : st.subs) threads.emplace_back(submitter_main, std::ref(st), std::ref(*s));
  for (auto &t : threads) t.join();

  EXPECT_EQ(st.errors.load(), 0) << st.first_error;
  EXPECT_EQ(st.refused.load(), 0) << "io_submit refused within io_setup's promise";
  EXPECT_EQ(st.reads_finished.load(), st.total_reads());
  EXPECT_EQ(st.events.load(), 2 * st.total_reads()) << "an event lost or made up";
  uint64_t missing = 0;
  for (auto &s : st.subs)
    for (int p = 0; p < sc.pairs; p++) missing += s->writes_done[size_t(p)] != 1 || s->reads_done[size_t(p)] != 1;
  EXPECT_EQ(missing, 0u) << "pairs not completed exactly once";
  for (auto &cs : st.ctxs) {
    // Nothing more arrives: the ring is empty.
    io_event ev;
    timespec zero{0, 0};
    EXPECT_EQ(a.io_getevents(cs->ctx, 0, 1, &ev, &zero), 0);
    if (cs->efd >= 0) {
      uint64_t count = 0;
      if (read(cs->efd, &count, sizeof count) == sizeof count) st.eventfd_counts.fetch_add(count);
      close(cs->efd);
    }
    EXPECT_EQ(a.io_destroy(cs->ctx), 0);
  }
  if (sc.mode == reap_mode::eventfd_ring) {
    EXPECT_EQ(st.eventfd_counts.load(), 2 * st.total_reads()) << "one eventfd count per event";
  }
  close(st.fd);
}

// Sizes shrink under the sanitizers (AIO2_STRESS_SCALE divides them).
int scaled(int n) {
  const char *s = std::getenv("AIO2_STRESS_SCALE");
  const int div = s ? std::max(1, std::atoi(s)) : 1;
  return std::max(50, n / div);
}

class stress : public ::testing::TestWithParam<scenario> {};

TEST_P(stress, EveryRequestOnceWithItsData) {
  scenario sc = GetParam();
  sc.pairs = scaled(sc.pairs);
  run(sc);
}

const scenario kScenarios[] = {
    {"one_context_getevents_by_all", 1, 6, 8, 3000, reap_mode::getevents, 0},
    {"context_each_user_ring", 4, 4, 16, 3000, reap_mode::user_ring, 0},
    {"one_context_eventfd_ring", 1, 6, 8, 3000, reap_mode::eventfd_ring, 0},
    {"contexts_eventfd_ring", 3, 6, 8, 3000, reap_mode::eventfd_ring, 0},
    {"one_context_reaper_threads", 1, 4, 8, 3000, reap_mode::getevents_pool, 3},
    {"depth_one_each", 1, 8, 1, 2000, reap_mode::getevents, 0},
};

// A program that alternates the two ways of waiting: io_getevents, then
// its eventfd alone. While a reaper waits in io_getevents the collector
// thread leaves io_uring to it and sleeps until the last reaper leaves;
// a reaper that left without waking it would strand every later io_uring
// completion, and the eventfd wait below would never end. O_DIRECT reads
// go to io_uring.
TEST(collector, EventfdWaitAfterGeteventsNeverStrandsACompletion) {
  aio2_test::scratch_dir dir("aio2-collector");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir / "direct";
  const int fd = open(path.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) GTEST_SKIP() << "no O_DIRECT in " << dir.path() << ": " << strerror(errno);
  alignas(4096) static unsigned char buf[kBlock];
  ASSERT_EQ(pwrite(fd, buf, kBlock, 0), static_cast<ssize_t>(kBlock));
  io_context_t ctx = nullptr;
  ASSERT_EQ(api().io_setup(8, &ctx), 0);
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  auto *ring = reinterpret_cast<aio_ring_view *>(ctx);
  const int rounds = scaled(300);
  for (int i = 0; i < rounds; i++) {
    // Reaped by io_getevents, which waits for it.
    iocb a{};
    a.aio_lio_opcode = IOCB_CMD_PREAD;
    a.aio_fildes = static_cast<uint32_t>(fd);
    a.aio_buf = reinterpret_cast<uint64_t>(buf);
    a.aio_nbytes = kBlock;
    a.aio_data = 2 * static_cast<uint64_t>(i);
    iocb *list[1] = {&a};
    ASSERT_EQ(api().io_submit(ctx, 1, list), 1);
    io_event ev{};
    timespec ts{10, 0};
    ASSERT_EQ(api().io_getevents(ctx, 1, 1, &ev, &ts), 1) << "round " << i;
    ASSERT_EQ(ev.data, a.aio_data);
    ASSERT_EQ(ev.res, static_cast<int64_t>(kBlock));
    // Reaped from the ring after the eventfd says it is there.
    iocb b = a;
    b.aio_data = a.aio_data + 1;
    b.aio_flags = IOCB_FLAG_RESFD;
    b.aio_resfd = static_cast<uint32_t>(efd);
    list[0] = &b;
    ASSERT_EQ(api().io_submit(ctx, 1, list), 1);
    pollfd p{efd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1) << "round " << i << ": the completion was never delivered";
    uint64_t count = 0;
    ASSERT_EQ(read(efd, &count, sizeof count), static_cast<ssize_t>(sizeof count));
    ASSERT_EQ(count, 1u);
    const unsigned head = ring->head;
    ASSERT_NE(head, __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE));
    ASSERT_EQ(ring->events[head].data, b.aio_data);
    ASSERT_EQ(ring->events[head].res, static_cast<int64_t>(kBlock));
    __atomic_store_n(&ring->head, (head + 1) % ring->nr, __ATOMIC_RELEASE);
  }
  EXPECT_EQ(api().io_destroy(ctx), 0);
  close(efd);
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(libaio, stress, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<scenario> &i) { return i.param.name; });

}  // namespace
