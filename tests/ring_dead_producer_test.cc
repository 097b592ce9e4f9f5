// SPDX-License-Identifier: MIT
// Producers that die: processes sharing a ring through a memfd, one of which
// is killed (SIGKILL) at the worst moments, stopped there by the ring's test
// hook: holding the tail lock before writing anything, holding it after
// writing the BUSY headers, and between reserve and commit. The surviving
// producers and the reaper must go on, and every record of a live producer
// must arrive exactly once, intact.

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Where a child stops (0: nowhere), and the pipe it reports on; it then
// waits for SIGKILL. Set in the child only, after fork.
int g_stop_at = 0;
int g_stop_fd = -1;

void stop_here(int point) {
  if (point != g_stop_at) return;
  const char c = static_cast<char>(point);
  if (write(g_stop_fd, &c, 1) != 1) _exit(3);
  for (;;) pause();
}

}  // namespace

#define AIO2_RING_TEST_HOOK(point) stop_here(point)
#include "aio2/ring.h"

#include <gtest/gtest.h>

namespace {

constexpr uint32_t kRecLen = 32;  // header + 3 payload words

// Payload word w of record i of producer p.
uint64_t stamp(uint32_t p, uint32_t i, uint32_t w) {
  return (uint64_t{p} << 48) | (uint64_t{i} << 8) | (w + 1u);
}

int push_stamped(aio2_ring *r, uint32_t p, uint32_t i) {
  uint64_t payload[3];
  for (uint32_t w = 0; w < 3; w++) payload[w] = stamp(p, i, w);
  int err;
  while ((err = aio2_ring_push(r, p, payload, kRecLen)) == -EAGAIN) sched_yield();
  return err;
}

// Counts per producer and record of what the reaper got.
struct tally {
  std::vector<std::vector<unsigned>> seen;
  unsigned total = 0;
  bool bad = false;

  explicit tally(std::vector<uint32_t> per_producer) {
    for (uint32_t n : per_producer) seen.emplace_back(n, 0u);
  }
  void add(const unsigned char *rec) {
    uint32_t len, flags;
    uint64_t words[3];
    std::memcpy(&len, rec, 4);
    std::memcpy(&flags, rec + 4, 4);
    std::memcpy(words, rec + 8, sizeof words);
    const uint32_t p = flags;
    const uint32_t i = static_cast<uint32_t>((words[0] >> 8) & 0xffffffffffu);
    if (len != kRecLen || p >= seen.size() || i >= seen[p].size()) {
      bad = true;
      return;
    }
    for (uint32_t w = 0; w < 3; w++)
      if (words[w] != stamp(p, i, w)) bad = true;
    seen[p][i]++;
    total++;
  }
  bool each_once() const {
    for (const auto &v : seen)
      for (unsigned c : v)
        if (c != 1) return false;
    return !bad;
  }
};

// Reaps until `want` records have arrived, calling aio2_ring_reclaim when
// nothing comes. Returns the number of records reclaim dropped, or -1 on an
// error. Never gives up: a wedged ring hangs here, and ctest's timeout says so.
int reap_all(aio2_ring *r, tally &t, unsigned want) {
  alignas(8) unsigned char buf[1024];
  int dropped = 0;
  while (t.total < want) {
    const int64_t got = aio2_ring_reap(r, buf, sizeof buf, 0);
    if (got < 0) return -1;
    if (got == 0) {
      const int rc = aio2_ring_reclaim(r);
      if (rc < 0) return -1;
      dropped += rc;
      if (rc == 0) sched_yield();
      continue;
    }
    for (int64_t at = 0; at < got;) {
      uint32_t len;
      std::memcpy(&len, buf + at, 4);
      t.add(buf + at);
      at += len;
    }
  }
  return dropped;
}

struct shared_ring {
  int fd = -1;
  aio2_ring *r = nullptr;
  shared_ring() {
    EXPECT_EQ(aio2_ring_memfd_create("dead-producer", 4096, 0, 0, 1, &fd, &r), 0);
  }
  ~shared_ring() {
    if (r) aio2_ring_unmap(r);
    if (fd >= 0) close(fd);
  }
};

// A child that maps the ring itself, as another program would (map_fd
// validates the header as aio2_ring_attach does), pushes `before` records,
// then stops at `stop_at` in its next reservation (0: pushes `count` more
// and exits 0). Exit 1 on any error.
pid_t spawn_producer(int ring_fd, uint32_t p, uint32_t before, int stop_at, int stop_fd, bool busy,
                     uint32_t count) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  aio2_ring *r = nullptr;
  if (aio2_ring_map_fd(ring_fd, &r) != 0) _exit(1);
  for (uint32_t i = 0; i < before; i++)
    if (push_stamped(r, p, i) != 0) _exit(1);
  if (busy) {
    // Reserve, write part of the payload, and stop before commit.
    aio2_ring_rec *rec = nullptr;
    int err;
    while ((err = aio2_ring_reserve(r, kRecLen, &rec)) == -EAGAIN) sched_yield();
    if (err != 0) _exit(1);
    const uint64_t half = stamp(p, before, 0);
    aio2_ring_write(r, rec, 0, &half, 8);
    g_stop_at = -1;
    g_stop_fd = stop_fd;
    stop_here(-1);
  }
  g_stop_at = stop_at;
  g_stop_fd = stop_fd;
  for (uint32_t i = before; i < before + count + (stop_at ? 1 : 0); i++)
    if (push_stamped(r, p, i) != 0) _exit(1);
  _exit(0);
}

int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The victim stops holding the tail lock (before or after writing the
// headers); a second producer process starts and waits for the lock; the
// victim is killed. The second producer must take the lock over and finish,
// the parent must be able to push too, and every live record arrives once.
void lock_holder_killed(int point) {
  shared_ring s;
  ASSERT_NE(s.r, nullptr);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  constexpr uint32_t kBefore = 3, kSurvivor = 2000;
  const pid_t victim = spawn_producer(s.fd, 0, kBefore, point, pfd[1], false, 0);
  ASSERT_GT(victim, 0);
  char c = 0;
  ASSERT_EQ(read(pfd[0], &c, 1), 1);
  ASSERT_EQ(c, point);
  // It holds the lock now, under its own id.
  EXPECT_EQ(__atomic_load_n(&s.r->tail_owner, __ATOMIC_ACQUIRE), static_cast<uint64_t>(victim));
  EXPECT_EQ(aio2_ring_producer_alive(static_cast<uint32_t>(victim)), 1);

  const pid_t survivor = spawn_producer(s.fd, 1, 0, 0, -1, false, kSurvivor);
  ASSERT_GT(survivor, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  EXPECT_EQ(wait_exit(victim), 128 + SIGKILL);

  tally t({kBefore + 1, kSurvivor, 1});
  t.seen[0][kBefore] = 1;  // the victim's unfinished record never arrives
  EXPECT_EQ(reap_all(s.r, t, kBefore + kSurvivor), 0);
  EXPECT_EQ(wait_exit(survivor), 0);
  // The parent produces too, once the survivor is done (before, both could
  // wait for room in a full ring that only the parent reaps).
  EXPECT_EQ(push_stamped(s.r, 2, 0), 0);
  EXPECT_EQ(reap_all(s.r, t, kBefore + kSurvivor + 1), 0);
  EXPECT_TRUE(t.each_once());
  uint64_t spare[8];
  EXPECT_EQ(aio2_ring_reap(s.r, spare, sizeof spare, 0), 0);
  EXPECT_EQ(aio2_ring_used(s.r), 0u);
  EXPECT_EQ(__atomic_load_n(&s.r->tail_owner, __ATOMIC_ACQUIRE), 0u);
  close(pfd[0]);
  close(pfd[1]);
}

TEST(DeadProducer, KilledHoldingTheLockBeforeWriting) { lock_holder_killed(AIO2_RING_HOOK_LOCKED); }

TEST(DeadProducer, KilledHoldingTheLockAfterWritingHeaders) {
  lock_holder_killed(AIO2_RING_HOOK_HEADERS);
}

// The victim reserves a record and stops before committing it; a record the
// parent pushes afterwards waits behind it. While the victim lives, reclaim
// leaves its record alone; once it is killed (a zombie first, then waited
// for), reclaim drops it and the parent's record arrives.
TEST(DeadProducer, KilledBetweenReserveAndCommit) {
  shared_ring s;
  ASSERT_NE(s.r, nullptr);
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  constexpr uint32_t kBefore = 2;
  const pid_t victim = spawn_producer(s.fd, 0, kBefore, 0, pfd[1], true, 0);
  ASSERT_GT(victim, 0);
  char c = 0;
  ASSERT_EQ(read(pfd[0], &c, 1), 1);
  ASSERT_EQ(push_stamped(s.r, 1, 0), 0);

  tally t({kBefore + 1, 1});
  t.seen[0][kBefore] = 1;  // never committed
  alignas(8) unsigned char buf[1024];
  int64_t got = aio2_ring_reap(s.r, buf, sizeof buf, 0);
  ASSERT_EQ(got, int64_t{2 * kRecLen});  // the victim's committed records only
  t.add(buf);
  t.add(buf + kRecLen);
  EXPECT_EQ(aio2_ring_reap(s.r, buf, sizeof buf, 0), 0);  // stopped at BUSY
  EXPECT_EQ(aio2_ring_reclaim(s.r), 0);                   // its producer lives
  EXPECT_EQ(aio2_ring_reap(s.r, buf, sizeof buf, 0), 0);

  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // Not waited for yet: a zombie, which reclaim counts as dead once the
  // kernel has made it one.
  int dropped = 0;
  while ((dropped = aio2_ring_reclaim(s.r)) == 0) sched_yield();
  EXPECT_EQ(dropped, 1);
  EXPECT_EQ(wait_exit(victim), 128 + SIGKILL);
  EXPECT_EQ(aio2_ring_reclaim(s.r), 0);
  EXPECT_EQ(reap_all(s.r, t, kBefore + 1), 0);
  EXPECT_TRUE(t.each_once());
  EXPECT_EQ(aio2_ring_used(s.r), 0u);
  close(pfd[0]);
  close(pfd[1]);
}

void *report_id(void *out) {
  static_cast<uint32_t *>(out)[0] = aio2_ring_producer_id();
  static_cast<uint32_t *>(out)[1] = static_cast<uint32_t>(syscall(SYS_gettid));
  static_cast<uint32_t *>(out)[2] =
      static_cast<uint32_t>(aio2_ring_producer_alive(static_cast<uint32_t>(syscall(SYS_gettid))));
  return nullptr;
}

// Ids are kernel thread ids, per thread, renewed in a fork's child; a live
// thread of this process reads as alive, a joined one as gone once the
// kernel has released it. pthread_join returns when the thread's exit clears
// its tid word, which happens before the kernel removes the thread from
// /proc, so for a moment after the join it may still read as alive: the test
// waits for that (it can fail only by reading alive for a minute).
TEST(DeadProducer, ProducerIdsAndLiveness) {
  const auto me = static_cast<uint32_t>(syscall(SYS_gettid));
  EXPECT_EQ(aio2_ring_producer_id(), me);
  EXPECT_EQ(aio2_ring_producer_alive(me), 1);
  EXPECT_EQ(aio2_ring_producer_alive(0), 1);  // no id: cannot tell

  uint32_t th[3] = {0, 0, 0};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, report_id, th), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_EQ(th[0], th[1]);
  EXPECT_NE(th[0], me);
  EXPECT_EQ(th[2], 1u);                          // alive while it ran
  for (int i = 0; i < 60000 && aio2_ring_producer_alive(th[0]) != 0; ++i) usleep(1000);
  EXPECT_EQ(aio2_ring_producer_alive(th[0]), 0);  // gone once released

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0)
    _exit(aio2_ring_producer_id() == static_cast<uint32_t>(getpid()) ? 0 : 1);
  EXPECT_EQ(wait_exit(child), 0);
  EXPECT_EQ(aio2_ring_producer_alive(static_cast<uint32_t>(child)), 0);
}

}  // namespace
