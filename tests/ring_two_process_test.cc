// SPDX-License-Identifier: MIT
// Two processes, one ring: children map a memfd ring at their own addresses
// and produce stamped records; this process reaps and verifies every one.

#include <gtest/gtest.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "aio2/ring.h"
#include "stamp.h"

extern char **environ;

namespace {

constexpr uint32_t kSpread = 40;

pid_t spawn_child(int fd, uint32_t id, uint64_t count) {
  const std::string sfd = std::to_string(fd), sid = std::to_string(id),
                    scount = std::to_string(count), sspread = std::to_string(kSpread);
  char *argv[] = {const_cast<char *>(RING_CHILD_PATH), const_cast<char *>(sfd.c_str()),
                  const_cast<char *>(sid.c_str()), const_cast<char *>(scount.c_str()),
                  const_cast<char *>(sspread.c_str()), nullptr};
  pid_t pid = -1;
  const int err = posix_spawn(&pid, RING_CHILD_PATH, nullptr, nullptr, argv, environ);
  EXPECT_EQ(err, 0) << std::strerror(err);
  return pid;
}

// Reaps until `total` records arrived; checks stamps and per-child order.
void reap_all(aio2_ring *r, unsigned children, uint64_t per_child, bool zero_copy) {
  std::vector<int64_t> last(children, -1);
  const uint64_t total = per_child * children;
  uint64_t got = 0;
  alignas(8) unsigned char buf[8192];
  auto progress = std::chrono::steady_clock::now();
  auto check = [&](const unsigned char *rec) {
    aio2_test::stamp_head h{};
    ASSERT_TRUE(aio2_test::stamp_check(rec, kSpread, &h)) << "damaged record";
    ASSERT_LT(h.producer, children);
    ASSERT_EQ(static_cast<int64_t>(h.seq), last[h.producer] + 1) << "lost or repeated";
    last[h.producer] = static_cast<int64_t>(h.seq);
    got++;
  };
  while (got < total) {
    bool any = false;
    if (zero_copy) {
      aio2_ring_rec *rec = nullptr;
      const int rc = aio2_ring_peek(r, &rec);
      ASSERT_GE(rc, 0) << aio2_ring_strerror(rc);
      if (rc == 1) {
        ASSERT_NO_FATAL_FAILURE(check(reinterpret_cast<const unsigned char *>(rec)));
        aio2_ring_consume(r, rec);
        any = true;
      }
    } else {
      const int64_t n = aio2_ring_reap(r, buf, sizeof buf, 0);
      ASSERT_GE(n, 0) << aio2_ring_strerror(static_cast<int>(n));
      for (int64_t off = 0; off < n;) {
        aio2_ring_rec hdr;
        std::memcpy(&hdr, buf + off, sizeof hdr);
        ASSERT_NO_FATAL_FAILURE(check(buf + off));
        off += hdr.len;
        any = true;
      }
    }
    if (any) {
      progress = std::chrono::steady_clock::now();
    } else {
      ASSERT_LT(std::chrono::steady_clock::now() - progress, std::chrono::seconds(60))
          << "children stopped producing at " << got << " of " << total;
      sched_yield();
    }
  }
  EXPECT_EQ(aio2_ring_used(r), 0u);
}

void run(unsigned children, bool zero_copy) {
  int fd = -1;
  aio2_ring *r = nullptr;
  // Inheritable fd; start near 2^64 so both processes cross the wrap.
  const uint32_t flags = zero_copy ? AIO2_RING_F_SINGLE_REAPER : 0;
  ASSERT_EQ(aio2_ring_memfd_create("two-process", 16384, flags, UINT64_MAX - 8191, 1, &fd, &r), 0);
  const uint64_t per_child = 50000;
  std::vector<pid_t> pids;
  for (unsigned i = 0; i < children; i++) pids.push_back(spawn_child(fd, i, per_child));
  reap_all(r, children, per_child, zero_copy);
  for (const pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  aio2_ring_unmap(r);
  close(fd);
}

TEST(RingTwoProcess, ChildProducesParentReapsZeroCopy) { run(1, true); }
TEST(RingTwoProcess, TwoChildrenProduceParentReapsByCopy) { run(2, false); }

}  // namespace
