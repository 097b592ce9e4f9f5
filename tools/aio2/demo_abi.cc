// SPDX-License-Identifier: MIT
// `aio2 demo`, the parts that show the new ABI: any system call submitted
// asynchronously, the overflow list, several reapers, a synchronous call,
// cancellation, and refusals.

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
#include <vector>

#include "aio2/aio2.h"
#include "demo.h"

namespace aio2_tool {

namespace {

struct ctx_holder {
  aio2_ctx *c = nullptr;
  ~ctx_holder() {
    if (c) aio2_destroy(c);
  }
};

int make_ctx(ctx_holder &h, uint64_t ring_bytes, uint32_t max_inflight = 0) {
  aio2_params p{};
  p.size = sizeof p;
  p.ring_bytes = ring_bytes;
  p.max_inflight = max_inflight;
  return aio2_setup(AIO2_ABI_VERSION, &p, &h.c);
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
  return s.empty() ? "?" : s;
}

// The executor attribute's path in `ev`, or 0.
uint32_t path_of(const aio2_event &ev) {
  const auto *x = static_cast<const aio2_attr_executor *>(
      aio2_event_attr_payload(&ev, AIO2_ATTR_EXECUTOR, sizeof(aio2_attr_executor), nullptr));
  return x ? x->path : 0;
}

// Any system call, asynchronously, side by side.
int any_syscall(int part_no) {
  demo_part(part_no, "five different system calls in one submit, completing out of order",
            "AIO runs ANY system call asynchronously: io_uring where the kernel has an opcode, "
            "the submitting thread where it cannot block, a generic pool for the rest (M11)");
  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  char path[] = "/tmp/aio2-demo-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -errno;
  unlink(path);
  const char text[] = "hello from a file read asynchronously";
  if (write(fd, text, sizeof text) != static_cast<ssize_t>(sizeof text)) return -EIO;
  const int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  static char dents[4096], data[64];
  static const timespec nap{0, 30000000};
  // Each request asks for the executor attribute: where did it run?
  constexpr size_t kReq = sizeof(aio2_iocb) + sizeof(aio2_attr);  // one request, back to back
  alignas(8) unsigned char reqs[5 * kReq];
  const uint64_t args[5][3] = {
      {reinterpret_cast<uint64_t>(&nap), 0, 0},
      {static_cast<uint64_t>(dir), reinterpret_cast<uint64_t>(dents), sizeof dents},
      {static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(data), sizeof text},
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
  const int err = reap(h.c, 5, [&](const aio2_event &ev) {
    std::printf("    event for %-20s on %-6s res %-6" PRId64, names[ev.user_data],
                path_name(path_of(ev)).c_str(), ev.res);
    if (ev.user_data == 1 && ev.res > 0) {
      unsigned entries = 0;
      for (long off = 0; off < ev.res; entries++)
        off += reinterpret_cast<const dirent64 *>(dents + off)->d_reclen;
      std::printf(" (%u directory entries)", entries);
    } else if (ev.user_data == 2) {
      std::printf(" \"%s\"", data);
    } else if (ev.user_data == 4) {
      std::printf(" (%s: the call's own error, in its event)", strerrorname_np(static_cast<int>(-ev.res)));
    }
    std::printf("\n");
  });
  close(fd);
  close(dir);
  return err;
}

// The overflow list: a small ring, many completions, nothing lost.
int overflow(int part_no) {
  demo_part(part_no, "20,000 requests into a 4 KiB ring (room for 170 events), reaped afterwards",
            "the ring's size no longer limits outstanding requests: an overflow list and a flag (M7)");
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
  const int err = reap(h.c, kN, [&](const aio2_event &ev) { seen[ev.user_data]++; });
  unsigned once = 0;
  for (uint8_t s : seen) once += s == 1;
  std::printf("    reaped %u of %u events exactly once; OVERFLOW is now %s\n", once, kN,
              aio2_ring_owner_flags(ring) & AIO2_RING_OVERFLOW ? "still set" : "clear");
  return err ? err : (once == kN ? 0 : -EBADMSG);
}

// Several threads reap one context: getevents and user-space reaping.
int many_reapers(int part_no) {
  demo_part(part_no, "4 threads reap 200,000 completions of one context, 2 of them without a call",
            "lockless multi-reaper reaping from user memory, free of ABA (M8)");
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
          seen[ev->user_data]++;
          per_thread[t]++;
          total++;
        }
      }
    });
  std::vector<aio2_iocb> reqs(kN);
  for (unsigned i = 0; i < kN; i++) aio2_prep(&reqs[i], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
  const auto *bytes = reinterpret_cast<const unsigned char *>(reqs.data());
  for (size_t off = 0, end = kN * sizeof(aio2_iocb); off < end;) {
    const size_t chunk = std::min<size_t>(end - off, 1000 * sizeof(aio2_iocb));
    const ssize_t n = aio2_submit(h.c, bytes + off, chunk);
    if (n == -EAGAIN) std::this_thread::yield();  // in-flight limit: let the reapers catch up
    else if (n < 0) return static_cast<int>(n);
    else off += static_cast<size_t>(n);
  }
  for (auto &t : threads) t.join();
  unsigned once = 0;
  for (auto &s : seen) once += s.load() == 1;
  std::printf("    events per thread: %u (user space) / %u (user space) / %u / %u (aio2_getevents)\n",
              per_thread[0], per_thread[1], per_thread[2], per_thread[3]);
  std::printf("    %u of %u reaped exactly once\n", once, kN);
  return once == kN ? 0 : -EBADMSG;
}

// A synchronous call, cancellation, and refusals.
int call_cancel_refuse(int part_no) {
  demo_part(part_no, "a synchronous call, a cancelled read, and calls aio2 refuses",
            "one call issues a request synchronously (M12); bad input gets its own -errno");
  alignas(8) unsigned char ev[64];
  aio2_iocb io;
  aio2_prep(&io, SYS_gettid, 1, 0, 0, 0, 0, 0, 0);
  const ssize_t len = aio2_call(nullptr, &io, ev, sizeof ev);
  if (len < 0) return static_cast<int>(len);
  std::printf("    aio2_call(gettid) in this thread: res %" PRId64 " (this thread is %ld)\n",
              reinterpret_cast<aio2_event *>(ev)->res, static_cast<long>(syscall(SYS_gettid)));

  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  int fds[2];
  if (pipe(fds)) return -errno;
  static char buf[8];
  aio2_prep(&io, SYS_read, 42, static_cast<uint64_t>(fds[0]), reinterpret_cast<uint64_t>(buf),
            sizeof buf, 0, 0, 0);
  if (aio2_submit(h.c, &io, sizeof io) != sizeof io) return -EIO;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let a worker block in read(2)
  const int rc = aio2_cancel(h.c, 42);
  std::printf("    read on an empty pipe, cancelled: aio2_cancel -> %s; ", rc ? strerrorname_np(-rc) : "0");
  const int err = reap(h.c, 1, [](const aio2_event &e) {
    std::printf("its event res %s\n", e.res < 0 ? strerrorname_np(static_cast<int>(-e.res)) : "ok");
  });
  close(fds[0]);
  close(fds[1]);
  if (err) return err;
  for (const long nr : {long{SYS_execve}, long{SYS_setuid}, long{SYS_exit}, 100000L}) {
    aio2_prep(&io, nr, 0, 0, 0, 0, 0, 0, 0);
    const ssize_t r = aio2_submit(h.c, &io, sizeof io);
    std::printf("    submit nr %-6ld -> %-7s %s\n", nr, strerrorname_np(static_cast<int>(-r)),
                aio2_strerror(static_cast<int>(r)));
  }
  return 0;
}

// Attributes: where the time went, and whether the page cache served it.
int attributes(int part_no) {
  demo_part(part_no, "16 reads of 4 MiB with timing, cache and executor attributes, cold then warm",
            "attribute results come back inside the completion event (M1-M4)");
  constexpr size_t kChunk = 4 << 20, kChunks = 16;
  const char *dir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  std::string path = std::string(dir) + "/aio2-demo-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) return -errno;
  unlink(path.c_str());
  std::vector<unsigned char> block(kChunk, 0x5a);
  for (size_t i = 0; i < kChunks; i++)
    if (write(fd, block.data(), kChunk) != static_cast<ssize_t>(kChunk)) return -EIO;
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // cold: out of the page cache
  // No readahead, so that reading one chunk does not warm the next: cold
  // then means cold.
  posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  ctx_holder h;
  if (int err = make_ctx(h, 65536)) return err;
  std::vector<std::vector<unsigned char>> bufs(kChunks, std::vector<unsigned char>(kChunk));
  for (const char *round : {"cold", "warm"}) {
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
    unsigned hits = 0, misses = 0, partial = 0, other = 0;
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
    });
    if (err) return err;
    std::printf("    %s: cache hit %u, partial %u, miss %u%s; %.0f of %zu MiB were cached; "
                "mean queueing %.2f ms, mean service %.2f ms; ran on %s\n",
                round, hits, partial, misses, other ? " (cache attribute not available)" : "",
                static_cast<double>(cached) / (1 << 20), kChunks * kChunk >> 20,
                queue_ms / kChunks, service_ms / kChunks, paths.c_str());

  }
  close(fd);
  return 0;
}

}  // namespace

int demo_abi(int first_part) {
  int (*const parts[])(int) = {any_syscall, attributes, overflow, many_reapers,
                               call_cancel_refuse};
  int n = first_part;
  for (auto *p : parts)
    if (int err = p(n++)) {
      std::fprintf(stderr, "aio2 demo: part %d: %s\n", n - 1, aio2_strerror(err));
      return err;
    }
  return 0;
}

}  // namespace aio2_tool
