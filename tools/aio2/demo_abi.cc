// SPDX-License-Identifier: MIT
// `aio2 demo`, the parts that use aio2 contexts: any system call submitted
// asynchronously and run on the path that suits it, attribute results in
// the completion events, the overflow list, several threads reaping one
// context, aio2_call, cancellation, and the calls aio2 refuses.

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aio2/aio2.h"
#include "demo.h"

namespace aio2_tool {

namespace {

struct ctx_holder {
  aio2_ctx *c = nullptr;
  uint64_t features = 0;  // AIO2_FEAT_* of the context
  ~ctx_holder() {
    if (c) aio2_destroy(c);
  }
};

int make_ctx(ctx_holder &h, uint64_t ring_bytes, uint32_t max_inflight = 0) {
  aio2_params p{};
  p.size = sizeof p;
  p.ring_bytes = ring_bytes;
  p.max_inflight = max_inflight;
  const int err = aio2_setup(AIO2_ABI_VERSION, &p, &h.c);
  h.features = p.features;
  return err;
}

// Waits for `n` events; calls `fn` on each.
template <class Fn>
int reap(aio2_ctx *c, unsigned n, Fn fn) {
  alignas(8) unsigned char buf[8192];
  for (unsigned got = 0; got < n;) {
    const timespec ts{10, 0};
    const ssize_t bytes = aio2_getevents(c, 1, buf, sizeof buf, &ts);
    if (bytes < 0) return static_cast<int>(bytes);
    if (bytes == 0) return -ETIME;
    for (auto *ev = aio2_event_next(buf, static_cast<size_t>(bytes), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(bytes), ev), got++)
      fn(*ev);
  }
  return 0;
}

// "uring", "pool", "inline", "inline+pool": the executor attribute's path.
std::string path_name(uint32_t path) {
  std::string s;
  for (auto [bit, name] : {std::pair{AIO2_PATH_INLINE, "inline"}, {AIO2_PATH_URING, "uring"},
                           {AIO2_PATH_POOL, "pool"}, {AIO2_PATH_CALL, "call"}})
    if (path & bit) s += (s.empty() ? "" : "+") + std::string(name);
  return s.empty() ? "-" : s;
}

// The executor attribute's path in `ev`, or 0.
uint32_t path_of(const aio2_event &ev) {
  const auto *x = static_cast<const aio2_attr_executor *>(
      aio2_event_attr_payload(&ev, AIO2_ATTR_EXECUTOR, sizeof(aio2_attr_executor), nullptr));
  return x ? x->path : 0;
}

const char *errname(int64_t res) {
  return res < 0 ? strerrorname_np(static_cast<int>(-res)) : "ok";
}

// Any system call, asynchronously, each on the path that suits it.
int any_syscall(int part_no) {
  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  const bool uring = (h.features & AIO2_FEAT_URING) != 0;
  demo_part(part_no, "Any system call, asynchronously: five different calls in one aio2_submit",
            "A request names a system call by its number and six arguments, and aio2 runs it "
            "on the cheapest path that can: inline in the submitting thread when the call "
            "cannot block, io_uring when the kernel has an operation for it, a thread pool for "
            "the rest. Each request here also asks for the executor attribute, whose result "
            "names the path that ran it.",
            std::string("The events come in the order the calls finished, not the order they "
                        "were submitted: nanosleep went in first. getppid ran inline, inside "
                        "aio2_submit. ") +
                (uring ? "pread64 and close ran on io_uring; getdents64 and nanosleep, which "
                         "io_uring cannot run, on the pool. "
                       : "This context has no io_uring (the kernel or a seccomp filter refuses "
                         "it), so the calls io_uring would run went inline or to the pool. ") +
                "close(999999) fails with EBADF: the call ran, and its own error is its "
                "event's result, like any other result.");
  char path[] = "/tmp/aio2-demo-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -errno;
  unlink(path);
  const char hello[] = "hello from a file read asynchronously";
  if (write(fd, hello, sizeof hello) != static_cast<ssize_t>(sizeof hello)) return -EIO;
  const int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  static char dents[4096], data[64];
  static const timespec nap{0, 30000000};
  constexpr size_t kReq = sizeof(aio2_iocb) + sizeof(aio2_attr);  // one request, back to back
  alignas(8) unsigned char reqs[5 * kReq];
  const uint64_t args[5][3] = {
      {reinterpret_cast<uint64_t>(&nap), 0, 0},
      {static_cast<uint64_t>(dir), reinterpret_cast<uint64_t>(dents), sizeof dents},
      {static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(data), sizeof hello},
      {0, 0, 0},
      {999999, 0, 0}};
  const long nrs[5] = {SYS_nanosleep, SYS_getdents64, SYS_pread64, SYS_getppid, SYS_close};
  for (unsigned i = 0; i < 5; i++) {
    auto *io = reinterpret_cast<aio2_iocb *>(reqs + i * kReq);
    aio2_prep(io, nrs[i], i, args[i][0], args[i][1], args[i][2], 0, 0, 0);
    aio2_attr_add(io, kReq, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
  }
  const char *names[] = {"nanosleep(30 ms)", "getdents64(\"/\")", "pread64(temp file)",
                         "getppid()", "close(999999)"};
  const ssize_t n = aio2_submit(h.c, reqs, sizeof reqs);
  if (n != static_cast<ssize_t>(sizeof reqs)) return n < 0 ? static_cast<int>(n) : -EIO;
  // What each call must return.
  unsigned seen[5] = {};
  std::string wrong;
  const int err = reap(h.c, 5, [&](const aio2_event &ev) {
    if (ev.user_data >= 5) {
      wrong = "an event with an unknown user_data";
      return;
    }
    seen[ev.user_data]++;
    char line[128];
    std::snprintf(line, sizeof line, "    event for %-20s on %-6s res %-6" PRId64, names[ev.user_data],
                  path_name(path_of(ev)).c_str(), ev.res);
    std::string text = line;
    bool ok = true;
    switch (ev.user_data) {
      case 0:
        ok = ev.res == 0;
        break;
      case 1: {
        ok = ev.res > 0;
        unsigned entries = 0;
        for (long off = 0; ok && off < ev.res; entries++)
          off += reinterpret_cast<const dirent64 *>(dents + off)->d_reclen;
        text += " (" + std::to_string(entries) + " directory entries)";
        break;
      }
      case 2:
        ok = ev.res == static_cast<int64_t>(sizeof hello) && std::memcmp(data, hello, sizeof hello) == 0;
        text += std::string(" \"") + data + "\"";
        break;
      case 3:
        ok = ev.res == getppid();
        text += " (this process's parent)";
        break;
      case 4:
        ok = ev.res == -EBADF;
        text += std::string(" (") + errname(ev.res) + ": the call's own error, in its event)";
        break;
    }
    text.erase(text.find_last_not_of(' ') + 1);
    std::printf("%s\n", text.c_str());
    if (!ok && wrong.empty()) wrong = std::string(names[ev.user_data]) + " returned the wrong result";
  });
  close(fd);
  close(dir);
  if (err) return err;
  if (!wrong.empty()) return demo_fail(wrong);
  for (unsigned s : seen)
    if (s != 1) return demo_fail("a request did not get exactly one event");
  return 0;
}

// Attributes: where the time went, and whether the page cache served it.
int attributes(int part_no) {
  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  const bool uring = (h.features & AIO2_FEAT_URING) != 0;
  demo_part(part_no, "Attributes: 16 reads of 4 MiB, cold then warm, with timing, cache and executor",
            "A request can carry attributes, and its completion event brings back one result "
            "for each, inside the event. timing says when the request was submitted, started "
            "and finished; cache says whether the page cache held the data; executor names the "
            "path that ran it. The file is dropped from the page cache, then read twice.",
            std::string("The cold round misses the page cache; the warm round reads the same "
                        "data again and hits it (all 64 MiB, unless memory is short), with the "
                        "shorter mean service time (started to finished). "
                        "Queueing (submitted to started) is how long a read waited for its path "
                        "to take it. On tmpfs, which keeps files in the page cache, both rounds "
                        "hit.") +
                (uring ? ""
                       : " Without io_uring a read is first tried inline with RWF_NOWAIT: a "
                         "cold read then finishes on the pool (path inline+pool), a warm one "
                         "inline."));
  constexpr size_t kChunk = 4 << 20, kChunks = 16;
  constexpr unsigned char kFill = 0x5a;
  const char *dir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  std::string path = std::string(dir) + "/aio2-demo-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) return -errno;
  unlink(path.c_str());
  std::vector<unsigned char> block(kChunk, kFill);
  for (size_t i = 0; i < kChunks; i++)
    if (write(fd, block.data(), kChunk) != static_cast<ssize_t>(kChunk)) return -EIO;
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // cold: out of the page cache
  // No readahead, so that reading one chunk does not warm the next: cold
  // then means cold.
  posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  std::vector<std::vector<unsigned char>> bufs(kChunks, std::vector<unsigned char>(kChunk));
  for (const char *round : {"cold", "warm"}) {
    for (auto &b : bufs) std::fill(b.begin(), b.end(), 0);
    std::vector<uint64_t> words(kChunks * 32);
    size_t bytes = 0;
    for (size_t i = 0; i < kChunks; i++) {
      auto *io = reinterpret_cast<aio2_iocb *>(words.data() + bytes / 8);
      aio2_prep(io, SYS_pread64, i, static_cast<uint64_t>(fd),
                reinterpret_cast<uint64_t>(bufs[i].data()), kChunk, i * kChunk, 0, 0);
      io->flags = AIO2_IOCB_BOUNDED;
      aio2_attr_add(io, 256, AIO2_ATTR_TIMING, 0, nullptr, 0);
      aio2_attr_add(io, 256, AIO2_ATTR_CACHE, 0, nullptr, 0);
      aio2_attr_add(io, 256, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
      bytes += io->len;
    }
    const ssize_t n = aio2_submit(h.c, words.data(), bytes);
    if (n != static_cast<ssize_t>(bytes)) return n < 0 ? static_cast<int>(n) : -EIO;
    double queue_ms = 0, service_ms = 0;
    unsigned hits = 0, misses = 0, partial = 0, other = 0, bad = 0;
    uint64_t cached = 0;
    std::string paths;
    const int err = reap(h.c, kChunks, [&](const aio2_event &ev) {
      uint16_t st;
      const auto *t = static_cast<const aio2_attr_timing *>(
          aio2_event_attr_payload(&ev, AIO2_ATTR_TIMING, sizeof(aio2_attr_timing), nullptr));
      const auto *c = static_cast<const aio2_attr_cache *>(
          aio2_event_attr_payload(&ev, AIO2_ATTR_CACHE, sizeof(aio2_attr_cache), &st));
      if (t) {
        queue_ms += static_cast<double>(t->started_ns - t->submitted_ns) / 1e6;
        service_ms += static_cast<double>(t->finished_ns - t->started_ns) / 1e6;
      }
      if (!c) other++;
      else if (c->outcome == AIO2_CACHE_HIT) hits++;
      else if (c->outcome == AIO2_CACHE_MISS) misses++;
      else partial++;
      if (c) cached += c->bytes_cached;
      const std::string p = path_name(path_of(ev));
      if (paths.find(p) == std::string::npos) paths += (paths.empty() ? "" : ", ") + p;
      // Every read returns its 4 MiB, and they hold what was written.
      const std::vector<unsigned char> &b = bufs[ev.user_data % kChunks];
      if (ev.user_data >= kChunks || ev.res != static_cast<int64_t>(kChunk) || b.front() != kFill ||
          b.back() != kFill || !t)
        bad++;
    });
    if (err) return err;
    std::printf("    %s: cache hits %u, partial %u, misses %u%s (%.0f of %zu MiB cached); "
                "mean queueing %.2f ms, mean service %.2f ms; path %s\n",
                round, hits, partial, misses, other ? ", no cache result" : "",
                static_cast<double>(cached) / (1 << 20), kChunks * kChunk >> 20,
                queue_ms / kChunks, service_ms / kChunks, paths.c_str());
    if (bad) return demo_fail("a read did not return its 4 MiB of data with a timing result");
  }
  close(fd);
  return 0;
}

// The overflow list: a small ring, many completions, nothing lost.
int overflow(int part_no) {
  demo_part(part_no, "The overflow list: 20,000 completions into a 4 KiB ring (room for 170 events)",
            "The completion ring has a fixed size, but it never limits how many requests are "
            "outstanding (only max_inflight does, 100,000 here): an event that finds the ring "
            "full waits on the context's overflow list, and the ring header's OVERFLOW flag "
            "tells reapers to call aio2_getevents, which delivers those events in order. Here "
            "20,000 getppid calls complete before anything is reaped.",
            "The ring is full (4080 of 4096 bytes: 170 events of 24 bytes) and flagged "
            "OVERFLOW, yet every one of the 20,000 events arrives exactly once, and the flag "
            "is clear once the list is empty.");
  ctx_holder h;
  if (int err = make_ctx(h, 4096, 100000)) return err;
  constexpr unsigned kN = 20000;
  std::vector<aio2_iocb> reqs(kN);
  for (unsigned i = 0; i < kN; i++) aio2_prep(&reqs[i], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
  const ssize_t n = aio2_submit(h.c, reqs.data(), kN * sizeof(aio2_iocb));
  if (n != static_cast<ssize_t>(kN * sizeof(aio2_iocb))) return n < 0 ? static_cast<int>(n) : -EIO;
  aio2_ring *ring = aio2_ring_get(h.c);
  while (!(aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW)) std::this_thread::yield();
  std::printf("    ring header says OVERFLOW with %" PRIu64 " of 4096 bytes in use\n",
              aio2_ring_used(ring));
  std::vector<uint8_t> seen(kN);
  const int err = reap(h.c, kN, [&](const aio2_event &ev) {
    if (ev.user_data < kN) seen[ev.user_data]++;
  });
  unsigned once = 0;
  for (uint8_t s : seen) once += s == 1;
  const bool still = (aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW) != 0;
  std::printf("    reaped %u of %u events exactly once; OVERFLOW is now %s\n", once, kN,
              still ? "still set" : "clear");
  if (err) return err;
  if (once != kN) return demo_fail("an event was lost or delivered twice");
  if (still) return demo_fail("OVERFLOW stayed set after the overflow list was drained");
  return 0;
}

// Several threads reap one context: getevents and user-space reaping.
int many_reapers(int part_no) {
  demo_part(part_no, "Several reapers: 4 threads reap one context's 200,000 completions",
            "Any number of threads may reap one context at the same time. Two threads here "
            "read events straight from the ring mapped in their memory (aio2_reap_events, no "
            "system call; they call aio2_getevents only when it answers EAGAIN because events "
            "wait on the overflow list); the other two call aio2_getevents. A reaper copies "
            "events, then claims them with one compare-and-swap of the ring's 64-bit head; "
            "positions never repeat, so a stale claim cannot succeed (no ABA problem).",
            "How the events split between the threads changes from run to run. The second "
            "line is the point: every one of the 200,000 events was reaped by exactly one "
            "thread.");
  ctx_holder h;
  if (int err = make_ctx(h, 65536, 200000)) return err;
  constexpr unsigned kN = 200000;
  std::vector<std::atomic<uint8_t>> seen(kN);
  std::atomic<unsigned> total{0};
  unsigned per_thread[4] = {};
  aio2_ring *ring = aio2_ring_get(h.c);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      alignas(8) unsigned char buf[4096];
      while (total.load() < kN) {
        int64_t n = t < 2 ? aio2_reap_events(ring, buf, sizeof buf) : 0;
        if (t >= 2 || n == -EAGAIN) {
          const timespec ts{0, 2000000};
          n = aio2_getevents(h.c, 1, buf, sizeof buf, &ts);
        }
        if (n <= 0) continue;
        for (auto *ev = aio2_event_next(buf, static_cast<size_t>(n), nullptr); ev;
             ev = aio2_event_next(buf, static_cast<size_t>(n), ev)) {
          if (ev->user_data < kN) seen[ev->user_data]++;
          per_thread[t]++;
          total++;
        }
      }
    });
  std::vector<aio2_iocb> reqs(kN);
  for (unsigned i = 0; i < kN; i++) aio2_prep(&reqs[i], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
  const auto *bytes = reinterpret_cast<const unsigned char *>(reqs.data());
  int err = 0;
  for (size_t off = 0, end = kN * sizeof(aio2_iocb); off < end;) {
    const size_t chunk = std::min<size_t>(end - off, 1000 * sizeof(aio2_iocb));
    const ssize_t n = aio2_submit(h.c, bytes + off, chunk);
    if (n == -EAGAIN) {
      std::this_thread::yield();  // in-flight limit: let the reapers catch up
    } else if (n < 0) {
      err = static_cast<int>(n);
      total = kN;  // stop the reapers
      break;
    } else {
      off += static_cast<size_t>(n);
    }
  }
  for (auto &t : threads) t.join();
  if (err) return err;
  unsigned once = 0;
  for (auto &s : seen) once += s.load() == 1;
  std::printf("    events per thread: %u and %u (from the ring in memory), %u and %u "
              "(aio2_getevents)\n",
              per_thread[0], per_thread[1], per_thread[2], per_thread[3]);
  std::printf("    %u of %u reaped exactly once\n", once, kN);
  return once == kN ? 0 : demo_fail("an event was lost or reaped twice");
}

// A synchronous call, cancellation, and refusals.
int call_cancel_refuse(int part_no) {
  demo_part(part_no, "A synchronous call, a cancellation, and the calls aio2 refuses",
            "aio2_call runs one request, attributes included, in the calling thread and "
            "returns its event. aio2_cancel stops a request that is waiting: here a read of an "
            "empty pipe, which would otherwise wait for ever. Calls that cannot run safely on "
            "another thread (they would change that thread's credentials, replace the process "
            "or end the thread) are refused when submitted, each with its own error, and never "
            "run.",
            "gettid returns this thread's own id: aio2_call ran it right here. The cancelled "
            "read's line says where it was and what that means for its result. execve, setuid "
            "and exit are refused with EPERM; 100000 is not a system call number here: "
            "ENOSYS.");
  alignas(8) unsigned char ev[64];
  aio2_iocb io;
  aio2_prep(&io, SYS_gettid, 1, 0, 0, 0, 0, 0, 0);
  const ssize_t len = aio2_call(nullptr, &io, ev, sizeof ev);
  if (len < 0) return static_cast<int>(len);
  const int64_t tid_res = reinterpret_cast<aio2_event *>(ev)->res;
  const long tid = syscall(SYS_gettid);
  std::printf("    aio2_call(gettid) in this thread: res %" PRId64 " (this thread is %ld)\n",
              tid_res, tid);
  if (tid_res != tid) return demo_fail("aio2_call(gettid) did not run in the calling thread");

  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  int fds[2];
  if (pipe(fds)) return -errno;
  static char buf[8];
  constexpr size_t kReq = sizeof(aio2_iocb) + sizeof(aio2_attr);
  alignas(8) unsigned char read_req[kReq];
  auto *rd = reinterpret_cast<aio2_iocb *>(read_req);
  aio2_prep(rd, SYS_read, 42, static_cast<uint64_t>(fds[0]), reinterpret_cast<uint64_t>(buf),
            sizeof buf, 0, 0, 0);
  aio2_attr_add(rd, kReq, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
  if (aio2_submit(h.c, read_req, kReq) != static_cast<ssize_t>(kReq)) return -EIO;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the read start waiting
  const int rc = aio2_cancel(h.c, 42);
  int64_t res = 0;
  uint32_t path = 0;
  const int err = reap(h.c, 1, [&](const aio2_event &e) {
    res = e.res;
    path = path_of(e);
  });
  close(fds[0]);
  close(fds[1]);
  if (err) return err;
  std::printf("    read of an empty pipe, on %s, cancelled: aio2_cancel -> %s %s; its event's res %s\n",
              path_name(path).c_str(), rc ? strerrorname_np(-rc) : "0",
              rc == 0            ? "(it had not started: it never runs)"
              : rc == -EALREADY ? "(it was running: its call is interrupted)"
                                : "",
              errname(res));
  if (!(rc == 0 && res == -ECANCELED) && !(rc == -EALREADY && (res == -EINTR || res == -ECANCELED)))
    return demo_fail("the cancelled read did not end as aio2_cancel said it would");
  const std::pair<long, int> refused[] = {
      {SYS_execve, -EPERM}, {SYS_setuid, -EPERM}, {SYS_exit, -EPERM}, {100000L, -ENOSYS}};
  for (const auto &[nr, want] : refused) {
    aio2_prep(&io, nr, 0, 0, 0, 0, 0, 0, 0);
    const ssize_t r = aio2_submit(h.c, &io, sizeof io);
    std::printf("    submit nr %-6ld -> %-7s %s\n", nr, errname(r), aio2_strerror(static_cast<int>(r)));
    if (r != want) return demo_fail("system call " + std::to_string(nr) + " was not refused");
  }
  return 0;
}

}  // namespace

int demo_context_parts(int &part_no) {
  int (*const parts[])(int) = {any_syscall, attributes, overflow, many_reapers,
                               call_cancel_refuse};
  for (auto *p : parts) {
    if (int err = p(part_no)) return err;
    part_no++;
  }
  return 0;
}

}  // namespace aio2_tool
