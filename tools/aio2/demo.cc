// SPDX-License-Identifier: MIT
// `aio2 demo`: shows the design at work, one idea per part. It grows with
// the library; today it shows the generic completion ring.

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "aio2/ring.h"
#include "demo.h"

namespace aio2_tool {

void demo_part(int n, const char *title, const char *idea) {
  std::printf("\n[%d] %s\n    idea: %s\n", n, title, idea);
}

namespace {

uint64_t tail_of(const aio2_ring *r) { return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~uint64_t{7}; }
uint64_t head_of(const aio2_ring *r) { return __atomic_load_n(&r->head, __ATOMIC_ACQUIRE); }

// Part 1: records of different sizes, byte positions, the PAD at the wrap.
int variable_records(int part_no) {
  demo_part(part_no, "variable-length records in a 256-byte ring",
       "records are measured in bytes; positions run free and are masked only to index (M6, M8)");
  aio2_ring *r = nullptr;
  if (int err = aio2_ring_new(256, 0, 0, &r)) return err;
  const uint32_t lens[] = {24, 64, 8, 120, 48, 96};
  char text[128];
  for (unsigned round = 0; round < 2; round++) {
    for (const uint32_t len : lens) {
      std::snprintf(text, sizeof text, "record of %u bytes", len);
      unsigned char payload[128] = {};
      std::memcpy(payload, text, std::strlen(text));
      const uint64_t before = tail_of(r);
      const int err = aio2_ring_push(r, 0, payload, len);
      if (err == -EAGAIN) {
        std::printf("    push %3u bytes -> ring full (%" PRIu64 " of 256 bytes in use): the owner decides; "
                    "aio2 will put it on its overflow list\n",
                    len, aio2_ring_used(r));
        break;
      }
      if (err) return err;
      const uint64_t pad = tail_of(r) - before - len;
      std::printf("    push %3u bytes at position %4" PRIu64 " (offset %3" PRIu64 ")%s\n", len,
                  before + pad, (before + pad) & 255,
                  pad ? "  <- did not fit before the end: a PAD record fills the gap" : "");
    }
    aio2_ring_rec *rec = nullptr;
    while (aio2_ring_peek(r, &rec) == 1) {
      const char *text_in = reinterpret_cast<const char *>(rec) + 8;
      const int shown = static_cast<int>(strnlen(text_in, rec->len - 8));
      std::printf("    reap %3u bytes, payload \"%.*s\" (head now %" PRIu64 ")\n", rec->len, shown,
                  text_in, head_of(r) + rec->len);
      aio2_ring_consume(r, rec);
    }
  }
  return aio2_ring_unmap(r);
}

// Part 2: several producers, several lock-free reapers, conservation.
int many_threads(int part_no) {
  constexpr unsigned kProducers = 3, kReapers = 3;
  constexpr uint64_t kPerProducer = 400000;
  demo_part(part_no, "3 producer threads, 3 reaper threads, 1.2 million records in a 64 KiB ring",
       "many threads reap without a lock: copy, then claim by CAS on a 64-bit head, free of ABA (M8)");
  aio2_ring *r = nullptr;
  // Start 1 MiB below 2^64 so the positions wrap round during the run.
  if (int err = aio2_ring_new(65536, 0, UINT64_MAX - (1 << 20) + 1, &r)) return err;
  std::vector<std::atomic<uint8_t>> seen(kProducers * kPerProducer);
  std::atomic<uint64_t> reaped{0}, damaged{0};
  std::vector<uint64_t> per_reaper(kReapers);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kReapers; i++)
    threads.emplace_back([&, i] {
      alignas(8) unsigned char buf[4096];
      while (reaped.load(std::memory_order_relaxed) < kProducers * kPerProducer) {
        const int64_t n = aio2_ring_reap(r, buf, sizeof buf, 0);
        if (n <= 0) {
          sched_yield();
          continue;
        }
        uint64_t got = 0;
        for (int64_t off = 0; off < n; got++) {
          aio2_ring_rec h;
          uint64_t id, check;
          std::memcpy(&h, buf + off, 8);
          std::memcpy(&id, buf + off + 8, 8);
          std::memcpy(&check, buf + off + h.len - 8, 8);
          if (check != ~id || h.len != 24 + 8 * (id % 8) || id >= seen.size()) damaged++;
          else seen[id].fetch_add(1, std::memory_order_relaxed);
          off += h.len;
        }
        per_reaper[i] += got;
        reaped += got;
      }
    });
  for (unsigned p = 0; p < kProducers; p++)
    threads.emplace_back([&, p] {
      uint64_t rec[12] = {};
      for (uint64_t s = 0; s < kPerProducer; s++) {
        const uint64_t id = p * kPerProducer + s;
        const uint32_t len = static_cast<uint32_t>(24 + 8 * (id % 8));  // 24..80 bytes
        rec[0] = id;
        rec[len / 8 - 2] = ~id;  // last payload word checks the first
        while (aio2_ring_push(r, 0, rec, len) == -EAGAIN) sched_yield();
      }
    });
  for (auto &t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t once = 0;
  for (auto &s : seen) once += s.load() == 1;
  std::printf("    %.2f M records/s; reapers took %" PRIu64 " / %" PRIu64 " / %" PRIu64 " records\n",
              static_cast<double>(reaped.load()) / secs / 1e6, per_reaper[0], per_reaper[1],
              per_reaper[2]);
  std::printf("    conservation: %" PRIu64 " of %" PRIu64 " records reaped exactly once, %" PRIu64
              " damaged; tail wrapped past 2^64 to %" PRIu64 "\n",
              once, seen.size(), damaged.load(), tail_of(r));
  aio2_ring_unmap(r);
  return once == seen.size() && damaged == 0 ? 0 : -EBADMSG;
}

// Part 3: another process produces into a memfd ring.
int two_processes(int part_no) {
  demo_part(part_no, "a child process produces into a memfd ring; this process reaps",
       "the ring is generic and lives in any memory, even memory shared by two processes (M9)");
  int fd = -1;
  aio2_ring *r = nullptr;
  if (int err = aio2_ring_memfd_create("aio2-demo", 8192, AIO2_RING_F_SINGLE_PRODUCER, 0, 0, &fd, &r))
    return err;
  constexpr uint64_t kCount = 100000;
  const pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    aio2_ring *mine = nullptr;
    if (aio2_ring_map_fd(fd, &mine)) _exit(3);
    for (uint64_t i = 0; i < kCount; i++) {
      const uint64_t v[2] = {i, i * i};
      while (aio2_ring_push(mine, 1, v, 24) == -EAGAIN) sched_yield();
    }
    _exit(0);
  }
  uint64_t next = 0, bad = 0;
  while (next < kCount) {
    aio2_ring_rec *rec = nullptr;
    const int rc = aio2_ring_peek(r, &rec);
    if (rc < 0) return rc;
    if (rc == 0) {
      sched_yield();
      continue;
    }
    uint64_t v[2];
    std::memcpy(v, reinterpret_cast<unsigned char *>(rec) + 8, sizeof v);
    bad += v[0] != next || v[1] != next * next;
    next++;
    aio2_ring_consume(r, rec);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("    child (pid %d) mapped the ring at its own address and pushed %" PRIu64
              " records; %" PRIu64 " arrived in order, %" PRIu64 " wrong; child exit %d\n",
              static_cast<int>(pid), kCount, next, bad, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  aio2_ring_unmap(r);
  close(fd);
  return bad == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBADMSG;
}

// Part 4: bad input and corruption are reported, never followed.
int bad_input(int part_no) {
  demo_part(part_no, "bad input and corrupt memory",
       "every bad size or corrupt header gets its own error, and nothing in the ring is lost");
  aio2_ring *r = nullptr;
  if (int err = aio2_ring_new(1024, 0, 0, &r)) return err;
  const unsigned char zero[1024] = {};
  aio2_ring_push(r, 0, zero, 32);
  aio2_ring_push(r, 0, zero, 40);
  auto show = [](const char *what, int err) {
    std::printf("    %-44s -> %-16s %s\n", what, err < 0 ? strerrorname_np(-err) : "ok",
                aio2_ring_strerror(err));
  };
  show("push a 12-byte record", aio2_ring_push(r, 0, zero, 12));
  show("push a 1024-byte record into a 1 KiB ring", aio2_ring_push(r, 0, zero, 1024));
  show("push with the ring's BUSY bit in the flags", aio2_ring_push(r, AIO2_RING_REC_BUSY, zero, 16));
  auto *victim = reinterpret_cast<aio2_ring_rec *>(reinterpret_cast<unsigned char *>(r) +
                                                   AIO2_RING_HDR_BYTES + 32);
  victim->len = 4000;
  alignas(8) unsigned char buf[256];
  const int64_t first = aio2_ring_reap(r, buf, sizeof buf, 0);
  std::printf("    %-44s -> %" PRId64 " bytes: the sound record before it\n",
              "reap with the 2nd record's length corrupted", first);
  show("reap again", static_cast<int>(aio2_ring_reap(r, buf, sizeof buf, 0)));
  victim->len = 40;
  show("repair the length and reap", static_cast<int>(aio2_ring_reap(r, buf, sizeof buf, 0) == 40 ? 0 : -1));
  r->magic = 0;
  show("attach to a header with the wrong magic", aio2_ring_attach(r, aio2_ring_mem_bytes(1024)));
  r->magic = AIO2_RING_MAGIC;
  r->version = 9;
  show("attach to a header from a future version", aio2_ring_attach(r, aio2_ring_mem_bytes(1024)));
  r->version = AIO2_RING_VERSION;
  aio2_ring_unmap(r);
  return 0;
}

}  // namespace

int demo_main(int, char **) {
  std::printf("aio2 demo: every part makes its own data and checks its own results\n");
  if (demo_abi(1)) return 1;
  int (*const parts[])(int) = {variable_records, many_threads, two_processes, bad_input};
  int n = 6;
  for (auto *p : parts) {
    const int err = p(n++);
    if (err) {
      std::fprintf(stderr, "aio2 demo: part %d: %s\n", n - 1, aio2_ring_strerror(err));
      return 1;
    }
  }
  std::printf("\ndemo finished: every part checked its own results.\n");
  return 0;
}

}  // namespace aio2_tool
