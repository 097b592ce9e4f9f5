// SPDX-License-Identifier: MIT
// Conservation under load: 2 submitting threads and 3 reaping threads (two
// calling aio2_getevents, one reaping from the mapped ring without a call)
// push a mix of getppid, pread of a temp file (data checked), nanosleep, and
// write-then-read through a pipe. Every request must produce exactly one
// event with the right result. It runs under every policy: AUTO (the
// default, mixing the inline, io_uring and pool paths) with the full count,
// the others with a fifth of it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "test_util.h"

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr uint64_t kBasePerSubmitter = 100000;  // TSan: ~10x slower per access
#elif defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kBasePerSubmitter = 250000;
#else
constexpr uint64_t kBasePerSubmitter = 500000;  // 1 million requests in all
#endif
constexpr unsigned kSubmitters = 2, kReapers = 3;
constexpr unsigned kWindow = 128;  // requests in flight per submitter
constexpr size_t kFileBytes = 1 << 20, kReadBytes = 4096;

// Requests per submitter under `policy`: the base count for AUTO, a fifth
// of it for the others; AIO2_STRESS_SCALE multiplies both.
uint64_t per_submitter(uint32_t policy) {
  const char *s = std::getenv("AIO2_STRESS_SCALE");
  const uint64_t scale = s ? std::strtoull(s, nullptr, 10) : 1;
  const uint64_t base = policy == AIO2_POLICY_AUTO ? kBasePerSubmitter : kBasePerSubmitter / 5;
  return base * (scale ? scale : 1);
}

// user_data: submitter (8 bits) | slot (16 bits) | sequence (40 bits).
uint64_t make_ud(unsigned sub, unsigned slot, uint64_t seq) {
  return (uint64_t{sub} << 56) | (uint64_t{slot} << 40) | seq;
}

// Each slot of a submitter's window always carries the same kind of request.
enum kind : unsigned { k_getppid, k_pread, k_nanosleep, k_pipe };

struct slot {
  alignas(64) std::atomic<bool> free{true};  // reaper: release; submitter: acquire
  unsigned kind = 0;
  int pipe_rd = -1, pipe_wr = -1;
  bool pipe_reading = false;  // next pipe request: read (true) or write
  uint64_t pipe_word = 0;     // what the last write sent
  uint64_t read_off = 0;
  alignas(8) unsigned char buf[kReadBytes];
};

class StressTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    char path[] = "/tmp/aio2-stress-XXXXXX";
    fd_ = mkstemp(path);
    ASSERT_GE(fd_, 0);
    unlink(path);
    std::vector<uint64_t> words(kFileBytes / 8);
    for (size_t i = 0; i < words.size(); i++) words[i] = i * 0x9e3779b97f4a7c15ull;
    ASSERT_EQ(write(fd_, words.data(), kFileBytes), static_cast<ssize_t>(kFileBytes));
  }
  void TearDown() override { close(fd_); }
  int fd_ = -1;
};

TEST_P(StressTest, EveryRequestGetsExactlyOneEventWithTheRightResult) {
  const uint64_t n = per_submitter(GetParam());
  const uint64_t total = n * kSubmitters;
  aio2_params p{};
  p.size = sizeof p;
  p.ring_bytes = 16384;  // small, so the overflow list is used too
  p.policy = GetParam();
  aio2_ctx *ctx = nullptr;
  ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &ctx), 0);
  RecordProperty("uring", (p.features & AIO2_FEAT_URING) ? "yes" : "no");
  aio2_ring *ring = aio2_ring_get(ctx);
  const int64_t ppid = getppid();

  std::vector<std::vector<slot>> slots(kSubmitters);
  for (auto &v : slots) {
    v = std::vector<slot>(kWindow);
    for (unsigned j = 0; j < kWindow; j++) {
      v[j].kind = j % 4;
      if (v[j].kind == k_pipe) {
        int fds[2];
        ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
        v[j].pipe_rd = fds[0];
        v[j].pipe_wr = fds[1];
      }
    }
  }
  // seen[sub][seq]: events received for that request.
  std::vector<std::vector<std::atomic<uint8_t>>> seen(kSubmitters);
  for (auto &v : seen) v = std::vector<std::atomic<uint8_t>>(n);
  std::atomic<uint64_t> reaped{0}, wrong{0};
  std::atomic<bool> failed{false};

  auto check = [&](const aio2_event *ev) {
    const unsigned sub = static_cast<unsigned>(ev->user_data >> 56);
    const unsigned j = static_cast<unsigned>((ev->user_data >> 40) & 0xffff);
    const uint64_t seq = ev->user_data & ((uint64_t{1} << 40) - 1);
    if (sub >= kSubmitters || j >= kWindow || seq >= n || ev->len != sizeof(aio2_event)) {
      wrong++;
      return;
    }
    slot &s = slots[sub][j];
    bool ok = false;
    switch (s.kind) {
      case k_getppid: ok = ev->res == ppid; break;
      case k_nanosleep: ok = ev->res == 0; break;
      case k_pread: {
        ok = ev->res == static_cast<int64_t>(kReadBytes);
        for (size_t w = 0; ok && w < kReadBytes / 8; w++) {
          uint64_t v;
          std::memcpy(&v, s.buf + 8 * w, 8);
          ok = v == (s.read_off / 8 + w) * 0x9e3779b97f4a7c15ull;
        }
        break;
      }
      case k_pipe: {
        ok = ev->res == 8;
        uint64_t v;
        std::memcpy(&v, s.buf, 8);
        if (s.pipe_reading) ok = ok && v == s.pipe_word;  // the read got what was written
        s.pipe_reading = !s.pipe_reading;
        break;
      }
    }
    if (!ok && wrong++ < 5) ADD_FAILURE() << "kind " << s.kind << " res " << ev->res << " ud " << ev->user_data;
    seen[sub][seq].fetch_add(1, std::memory_order_relaxed);
    s.free.store(true, std::memory_order_release);  // hands the slot back (pairs with acquire)
  };

  auto submitter = [&](unsigned sub) {
    std::vector<aio2_iocb> batch;
    uint64_t seq = 0;
    auto progress = std::chrono::steady_clock::now();
    while (seq < n && !failed) {
      batch.clear();
      for (unsigned j = 0; j < kWindow && seq + batch.size() < n; j++) {
        slot &s = slots[sub][j];
        if (!s.free.load(std::memory_order_acquire)) continue;
        s.free.store(false, std::memory_order_relaxed);
        const uint64_t ud = make_ud(sub, j, seq + batch.size());
        aio2_iocb io;
        switch (s.kind) {
          case k_getppid: aio2_prep(&io, SYS_getppid, ud, 0, 0, 0, 0, 0, 0); break;
          case k_nanosleep: {
            static const timespec nap{0, 1000};
            aio2_prep(&io, SYS_nanosleep, ud, reinterpret_cast<uint64_t>(&nap), 0, 0, 0, 0, 0);
            break;
          }
          case k_pread:
            s.read_off = ((seq + batch.size()) * 7919 % (kFileBytes / kReadBytes)) * kReadBytes;
            aio2_prep(&io, SYS_pread64, ud, static_cast<uint64_t>(fd_),
                      reinterpret_cast<uint64_t>(s.buf), kReadBytes, s.read_off, 0, 0);
            break;
          case k_pipe:
            if (s.pipe_reading) {
              aio2_prep(&io, SYS_read, ud, static_cast<uint64_t>(s.pipe_rd),
                        reinterpret_cast<uint64_t>(s.buf), 8, 0, 0, 0);
            } else {
              s.pipe_word = ud * 31 + 7;
              std::memcpy(s.buf, &s.pipe_word, 8);
              aio2_prep(&io, SYS_write, ud, static_cast<uint64_t>(s.pipe_wr),
                        reinterpret_cast<uint64_t>(s.buf), 8, 0, 0, 0);
            }
            break;
        }
        batch.push_back(io);
      }
      if (batch.empty()) {
        if (std::chrono::steady_clock::now() - progress > std::chrono::seconds(60)) {
          ADD_FAILURE() << "submitter " << sub << " starved at seq " << seq;
          failed = true;
        }
        std::this_thread::yield();
        continue;
      }
      const ssize_t bytes = static_cast<ssize_t>(batch.size() * sizeof(aio2_iocb));
      const ssize_t got = aio2_submit(ctx, batch.data(), static_cast<size_t>(bytes));
      if (got != bytes) {
        ADD_FAILURE() << "submit: " << got << " of " << bytes << ": "
                      << aio2_strerror(static_cast<int>(got));
        failed = true;
        return;
      }
      seq += batch.size();
      progress = std::chrono::steady_clock::now();
    }
  };

  auto reaper = [&](unsigned id) {
    alignas(8) unsigned char buf[4096];
    while (reaped.load(std::memory_order_relaxed) < total && !failed) {
      int64_t got;
      if (id == 2) {  // from user memory, calling in only when told to
        got = aio2_reap_events(ring, buf, sizeof buf);
        if (got == -EAGAIN || got == 0) {
          const timespec ts{0, got == 0 ? 1000000 : 0};
          got = aio2_getevents(ctx, 0, buf, sizeof buf, &ts);
        }
      } else {
        const timespec ts{0, 50000000};
        got = aio2_getevents(ctx, 1, buf, sizeof buf, &ts);
      }
      if (got < 0) {
        ADD_FAILURE() << "reaper " << id << ": " << aio2_strerror(static_cast<int>(got));
        failed = true;
        return;
      }
      uint64_t events = 0;
      for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
           ev = aio2_event_next(buf, static_cast<size_t>(got), ev)) {
        check(ev);
        events++;
      }
      reaped.fetch_add(events, std::memory_order_relaxed);
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kReapers; i++) threads.emplace_back(reaper, i);
  for (unsigned i = 0; i < kSubmitters; i++) threads.emplace_back(submitter, i);
  for (auto &t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(failed.load());
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(reaped.load(), total);
  for (unsigned s = 0; s < kSubmitters; s++)
    for (uint64_t q = 0; q < n; q++) ASSERT_EQ(seen[s][q].load(), 1) << s << "/" << q;
  RecordProperty("requests_per_second", std::to_string(static_cast<double>(total) / secs));
  EXPECT_EQ(aio2_destroy(ctx), 0);
  for (auto &v : slots)
    for (auto &s : v)
      if (s.pipe_rd >= 0) {
        close(s.pipe_rd);
        close(s.pipe_wr);
      }
}

INSTANTIATE_TEST_SUITE_P(Policies, StressTest,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_INLINE, AIO2_POLICY_URING,
                                           AIO2_POLICY_POOL),
                         aio2_test::policy_param_name);

}  // namespace
