// SPDX-License-Identifier: MIT
// `aio2 demo`: nine parts, each showing one feature of aio2 at work on data
// it makes itself, saying in plain words what it shows and what to notice in
// its numbers, and checking its own results. Parts 1-5 use aio2 contexts
// (demo_abi.cc); parts 6-9, here, use the generic completion ring alone:
// variable-length records and free-running positions, many threads reaping
// without a lock, a ring shared by two processes, and how bad input and
// corrupt memory are reported. The demo stops at the first part that fails.

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "aio2/ring.h"
#include "demo.h"

namespace aio2_tool {

namespace {

int g_part = 0;  // the part being run, for demo_fail

// Prints `text` after `label`, wrapped at kWidth columns, continuation lines
// indented under the text.
void say(const char *label, const std::string &text) {
  constexpr size_t kWidth = 96, kIndent = 12;  // "    notice: "
  std::string line = std::string("    ") + label;
  line.resize(kIndent, ' ');
  bool empty = true;  // nothing after the indent yet
  for (size_t i = 0; i < text.size();) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    i = j + 1;
    if (word.empty()) continue;
    if (!empty && line.size() + 1 + word.size() > kWidth) {
      std::printf("%s\n", line.c_str());
      line.assign(kIndent, ' ');
      empty = true;
    }
    if (!empty) line += ' ';
    line += word;
    empty = false;
  }
  std::printf("%s\n", line.c_str());
}

}  // namespace

void demo_part(int n, const char *title, const std::string &shows, const std::string &notice) {
  g_part = n;
  std::printf("\n[%d] %s\n", n, title);
  say("shows:", shows);
  say("notice:", notice);
}

int demo_fail(const std::string &what) {
  std::fprintf(stderr, "aio2 demo: part %d: check failed: %s\n", g_part, what.c_str());
  return kCheckFailed;
}

namespace {

uint64_t tail_of(const aio2_ring *r) { return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~uint64_t{7}; }
uint64_t head_of(const aio2_ring *r) { return __atomic_load_n(&r->head, __ATOMIC_ACQUIRE); }

// Records of different sizes, byte positions, the PAD at the wrap.
int variable_records(int part_no) {
  demo_part(part_no, "The ring on its own: variable-length records in a 256-byte ring",
            "aio2's completion ring is a generic ring (include/aio2/ring.h) that any program "
            "can use for records of any kind. A record is an 8-byte header and a payload, its "
            "length a multiple of 8 bytes. head and tail are 64-bit byte positions that only "
            "grow; the offset into the data area is the position modulo the ring's size.",
            "Positions keep growing past 256 while offsets wrap to 0. A record that would "
            "cross the end of the data area starts again at offset 0, after a PAD record that "
            "fills the gap, so every record is contiguous. A full ring answers EAGAIN at once: "
            "it never blocks and never drops a record; its owner decides what to do (an aio2 "
            "context puts the event on its overflow list).");
  aio2_ring *r = nullptr;
  if (int err = aio2_ring_new(256, 0, 0, &r)) return err;
  const uint32_t lens[] = {24, 64, 8, 120, 48, 96};
  std::vector<uint32_t> pushed, reaped;
  bool full = false;
  int err = 0;
  for (unsigned round = 0; round < 2 && !err; round++) {
    for (const uint32_t len : lens) {
      char text[32];
      std::snprintf(text, sizeof text, "%u-byte record", len);
      unsigned char payload[128] = {};
      std::memcpy(payload, text, std::strlen(text));
      const uint64_t before = tail_of(r);
      err = aio2_ring_push(r, 0, payload, len);
      if (err == -EAGAIN) {
        err = 0;
        full = true;
        std::printf("    push %3u bytes -> EAGAIN: the ring is full (%" PRIu64
                    " of 256 bytes in use)\n",
                    len, aio2_ring_used(r));
        break;
      }
      if (err) break;
      pushed.push_back(len);
      const uint64_t pad = tail_of(r) - before - len;
      std::printf("    push %3u bytes at position %4" PRIu64 " (offset %3" PRIu64 ")%s\n", len,
                  before + pad, (before + pad) & 255,
                  pad ? "  <- did not fit before the end: a PAD record fills the gap" : "");
    }
    aio2_ring_rec *rec = nullptr;
    while (!err && aio2_ring_peek(r, &rec) == 1) {
      const char *text_in = reinterpret_cast<const char *>(rec) + 8;
      const uint32_t payload = rec->len - 8;
      const int shown = static_cast<int>(strnlen(text_in, payload));
      reaped.push_back(rec->len);
      if (payload)
        std::printf("    reap %3u bytes, payload \"%.*s\" (%u bytes), head now %" PRIu64 "\n",
                    rec->len, shown, text_in, payload, head_of(r) + rec->len);
      else
        std::printf("    reap %3u bytes, no payload, head now %" PRIu64 "\n", rec->len,
                    head_of(r) + rec->len);
      aio2_ring_consume(r, rec);
    }
  }
  aio2_ring_unmap(r);
  if (err) return err;
  if (!full) return demo_fail("the ring never filled up");
  if (reaped != pushed) return demo_fail("the records reaped are not the records pushed, in order");
  return 0;
}

// Several producers, several lock-free reapers, conservation.
int many_threads(int part_no) {
  constexpr unsigned kProducers = 3, kReapers = 3;
  constexpr uint64_t kPerProducer = 400000;
  demo_part(part_no, "Many threads on one ring: 3 producers, 3 reapers, 1.2 million records in 64 KiB",
            "Producers reserve space under a lock word beside the tail, held for two stores. "
            "Reapers take no lock: each copies whole records out, then claims them with one "
            "compare-and-swap of the 64-bit head, and throws its copy away when another reaper "
            "claimed them first. The positions start 1 MiB below 2^64, so they wrap round "
            "during the run.",
            "The rate depends on the machine and the split between the reapers varies; the "
            "conservation line is the point: every record reaped exactly once, none damaged, "
            "although the positions wrapped past 2^64.");
  aio2_ring *r = nullptr;
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
  std::printf("    %.2f M records/s; the reapers took %" PRIu64 " / %" PRIu64 " / %" PRIu64
              " records\n",
              static_cast<double>(reaped.load()) / secs / 1e6, per_reaper[0], per_reaper[1],
              per_reaper[2]);
  std::printf("    conservation: %" PRIu64 " of %" PRIu64 " records reaped exactly once, %" PRIu64
              " damaged; the tail wrapped past 2^64 to %" PRIu64 "\n",
              once, seen.size(), damaged.load(), tail_of(r));
  aio2_ring_unmap(r);
  if (once != seen.size() || damaged != 0) return demo_fail("a record was lost, repeated or damaged");
  return 0;
}

// Another process produces into a memfd ring.
int two_processes(int part_no) {
  demo_part(part_no, "Two processes, one ring: a child produces into a memfd, this process reaps",
            "The ring works over any memory. Here it lives in a memfd; a child process maps it "
            "at an address of its own and pushes 100,000 records while this process reaps "
            "them. The header holds positions, never pointers, so each process may map it "
            "anywhere.",
            "All 100,000 records arrive in order, none wrong, and the child exits with status "
            "0.");
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
  int status = 0;
  bool exited = false;
  while (next < kCount) {
    aio2_ring_rec *rec = nullptr;
    const int rc = aio2_ring_peek(r, &rec);
    if (rc < 0) return rc;
    if (rc == 0) {
      // A child that exits before it pushed everything must not leave this
      // loop waiting for ever: once it has exited, an empty ring is final.
      if (!exited) {
        exited = waitpid(pid, &status, WNOHANG) == pid;
      } else if (aio2_ring_used(r) == 0) {
        aio2_ring_unmap(r);
        close(fd);
        return demo_fail("the child exited before it pushed every record");
      }
      sched_yield();
      continue;
    }
    uint64_t v[2];
    std::memcpy(v, reinterpret_cast<unsigned char *>(rec) + 8, sizeof v);
    bad += v[0] != next || v[1] != next * next;
    next++;
    aio2_ring_consume(r, rec);
  }
  if (!exited) waitpid(pid, &status, 0);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::printf("    the child (pid %d) mapped the ring at its own address and pushed %" PRIu64
              " records; %" PRIu64 " arrived in order, %" PRIu64 " wrong; the child's exit "
              "status: %d\n",
              static_cast<int>(pid), kCount, next, bad, code);
  aio2_ring_unmap(r);
  close(fd);
  if (bad != 0) return demo_fail("records arrived out of order or damaged");
  if (code != 0) return demo_fail("the child did not exit with status 0");
  return 0;
}

// Bad input and corruption are reported, never followed.
int bad_input(int part_no) {
  demo_part(part_no, "Bad input and corrupt memory",
            "Every length and position the ring reads from memory is checked before it is "
            "followed, so bad arguments and corrupt headers give an error that says what is "
            "wrong, never a crash; reaping stops before a corrupt record and delivers what "
            "came before it.",
            "A bad push is refused (EINVAL for a bad length or the ring's own flag bits, E2BIG "
            "for a record larger than half the ring); a corrupt record header gives EBADMSG, a "
            "header that is not a ring's or is from a newer version ENOEXEC or EPROTONOSUPPORT. "
            "Once the corrupt length is repaired, that record is reaped normally: nothing in "
            "the ring was lost.");
  aio2_ring *r = nullptr;
  if (int err = aio2_ring_new(1024, 0, 0, &r)) return err;
  const unsigned char zero[1024] = {};
  aio2_ring_push(r, 0, zero, 32);
  aio2_ring_push(r, 0, zero, 40);
  std::string wrong;
  auto show = [&](const char *what, int err, int want) {
    std::printf("    %-44s -> %-16s %s\n", what, err < 0 ? strerrorname_np(-err) : "ok",
                aio2_ring_strerror(err));
    if (err != want && wrong.empty()) wrong = std::string(what) + " did not give the expected answer";
  };
  show("push a 12-byte record", aio2_ring_push(r, 0, zero, 12), -EINVAL);
  show("push a 1024-byte record into a 1 KiB ring", aio2_ring_push(r, 0, zero, 1024), -E2BIG);
  show("push with the ring's BUSY bit in the flags", aio2_ring_push(r, AIO2_RING_REC_BUSY, zero, 16),
       -EINVAL);
  auto *victim = reinterpret_cast<aio2_ring_rec *>(reinterpret_cast<unsigned char *>(r) +
                                                   AIO2_RING_HDR_BYTES + 32);
  victim->len = 4000;
  alignas(8) unsigned char buf[256];
  const int64_t first = aio2_ring_reap(r, buf, sizeof buf, 0);
  std::printf("    %-44s -> %" PRId64 " bytes: the sound record before it\n",
              "reap with the 2nd record's length corrupted", first);
  if (first != 32 && wrong.empty()) wrong = "the reap before the corrupt record did not deliver 32 bytes";
  show("reap again", static_cast<int>(aio2_ring_reap(r, buf, sizeof buf, 0)), -EBADMSG);
  victim->len = 40;
  show("repair the length and reap",
       static_cast<int>(aio2_ring_reap(r, buf, sizeof buf, 0) == 40 ? 0 : -EBADMSG), 0);
  r->magic = 0;
  show("attach to a header with the wrong magic", aio2_ring_attach(r, aio2_ring_mem_bytes(1024)),
       -ENOEXEC);
  r->magic = AIO2_RING_MAGIC;
  r->version = 9;
  show("attach to a header from a future version", aio2_ring_attach(r, aio2_ring_mem_bytes(1024)),
       -EPROTONOSUPPORT);
  r->version = AIO2_RING_VERSION;
  aio2_ring_unmap(r);
  return wrong.empty() ? 0 : demo_fail(wrong);
}

}  // namespace

int demo_main(int, char **) {
  std::printf("aio2 demo: nine parts, each showing one feature of aio2 on data it makes itself\n"
              "and checking its own results\n");
  int n = 1;
  int err = demo_context_parts(n);
  if (err == 0) {
    int (*const parts[])(int) = {variable_records, many_threads, two_processes, bad_input};
    for (auto *p : parts) {
      if ((err = p(n)) != 0) break;
      n++;
    }
  }
  if (err < 0) std::fprintf(stderr, "aio2 demo: part %d: %s\n", n, aio2_strerror(err));
  if (err) return 1;
  std::printf("\ndemo finished: every part checked its own results.\n");
  return 0;
}

}  // namespace aio2_tool
