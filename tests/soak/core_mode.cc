// SPDX-License-Identifier: MIT
// The soak's core mode: aio2's own interface, round after round. Each round
// sets a context up with a random policy, ring size (down to 4 KiB, so that
// the overflow list takes the excess), in-flight limit, worker count and
// eventfd, with io_uring or without; two threads submit a random mix
// (preads of the data file, some on a descriptor closed right after
// aio2_submit; pwrites of a pattern; getppid; statx; pipe reads that block
// until a token or the end of the round), with per-request policies,
// attributes on about half, and cancels; two threads reap with
// aio2_getevents while a signal storm interrupts them. A round ends either
// drained (the pipes' write ends closed, every event reaped) or destroyed
// busy (the reapers stopped, aio2_destroy with requests in flight). Then
// every request is checked: reaped exactly once (at most once when
// destroyed busy, never when refused), with a result its kind allows and
// intact data; written blocks are read back; descriptors are counted every
// round and threads at the end.

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>

#include "aio2/aio2.h"
#include "soak_util.h"
#include "util/fault.h"

namespace soak {

namespace {

enum kind : uint8_t {
  k_pread, k_pread_closed, k_preadv, k_pwrite, k_getppid, k_statx, k_pipe_read, k_kinds
};
const char *const kKindNames[k_kinds] = {"pread", "pread_closed_fd", "preadv", "pwrite",
                                         "getppid", "statx", "pipe_read"};

constexpr size_t kMaxReqs = 768;
constexpr uint32_t kMaxRead = 16384;
constexpr uint32_t kBlock = 4096;  // each pwrite has a block of the scratch file
constexpr unsigned kPipes = 4;
constexpr int kClosedFdFloor = 512;  // the lowest number of a read's descriptor closed in flight
constexpr uint64_t kTagXor = 0x5a5a0123456789a5ull;
constexpr size_t kReqBytes = 256;  // a request with its three attributes fits

uint64_t pipe_token(unsigned p) { return 0x1111111111111111ull * (p + 1); }

struct req {
  uint8_t kind = 0;
  bool attrs = false;
  bool cancel_asked = false;  // written by its submitter, read after the join
  bool accepted = false;      // likewise
  int refused = 0;            // the -errno that refused it
  uint32_t len = 0;
  uint64_t off = 0;
  unsigned pipe = 0;
  // How many times it was reaped. acq_rel: the reaper that makes it 1 owns
  // res, flags and tag_ok, which the final pass reads after joining.
  std::atomic<uint32_t> reaped{0};
  int64_t res = 0;
  uint32_t flags = 0;
  uint32_t path = 0;  // from the executor attribute, when it has one
  unsigned char *buf = nullptr;
  struct iovec iov[2] {};
  struct statx sx {};
};

struct round_state {
  uint64_t round = 0;
  aio2_ctx *ctx = nullptr;
  aio2_ring *ring = nullptr;
  int efd = -1;
  size_t n = 0;
  req *reqs = nullptr;
  int data_fd = -1, scratch_fd = -1;
  const char *data_path = nullptr;
  int pipe_rd[kPipes] = {}, pipe_wr[kPipes] = {};
  bool limited = false;  // an in-flight limit below the round's requests
  bool faults = false;
  pid_t ppid = 0;
  // Requests accepted (each submitter adds its count, with release, when
  // it is done) and events reaped (reapers add, relaxed: a count). A reaper
  // that sees `submit_done` (acquire; stored with release after both
  // submitters reported) sees the final `accepted`.
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> reaped{0};
  std::atomic<bool> submit_done{false};
  // Stops the reapers at once (a round destroyed busy). Relaxed: the join
  // that follows orders everything after it.
  std::atomic<bool> stop_reapers{false};
  std::atomic<bool> saw_overflow{false};  // relaxed flag, read after the join
  // Submitters stay alive until the round is over: the kernel cancels a
  // thread's io_uring requests when that thread exits (docs/design.md), and
  // a pipe read waiting for its token must not be cancelled that way.
  std::mutex over_mu;
  std::condition_variable over_cv;
  unsigned submitters_done = 0;  // guarded by over_mu
  bool over = false;             // guarded by over_mu
  counters *c = nullptr;
  signal_storm *storm = nullptr;
};

uint64_t user_data_of(uint64_t round, size_t i) { return (round << 32) | i; }

// Builds request i into `b`; its kind and arguments are chosen here.
void build(round_state &s, size_t i, rng &r, unsigned char *b, int *dup_fd) {
  req &q = s.reqs[i];
  const unsigned roll = static_cast<unsigned>(pick(r, 100));
  q.kind = roll < 22 ? k_pread : roll < 32 ? k_pread_closed : roll < 38 ? k_preadv
         : roll < 58 ? k_pwrite : roll < 70 ? k_getppid : roll < 80 ? k_statx : k_pipe_read;
  auto *io = reinterpret_cast<aio2_iocb *>(b);
  const uint64_t ud = user_data_of(s.round, i);
  *dup_fd = -1;
  switch (q.kind) {
    case k_pread:
    case k_pread_closed: {
      q.len = 1 + static_cast<uint32_t>(pick(r, kMaxRead));
      q.off = pick(r, kDataBytes - q.len);
      int fd = s.data_fd;
      if (q.kind == k_pread_closed) {
        // Closed right after aio2_submit returns. Its number is far above
        // the others: a descriptor made meanwhile by another thread (a
        // round's pipes or files, a new context's) takes a lower free
        // number, so the number, while it is closed, is reused only by
        // another of these duplicates of the data file, and a read that
        // runs after the close still has an answer to check. (At a low
        // number, a read could read whatever file took it: an empty one
        // answers 0, which is pread64's answer too.)
        fd = fcntl(s.data_fd, F_DUPFD_CLOEXEC, kClosedFdFloor);
        if (fd < 0) fd = dup(s.data_fd);  // RLIMIT_NOFILE below the floor
        if (fd < 0) {
          fd = s.data_fd;
          q.kind = k_pread;
        }
        *dup_fd = fd == s.data_fd ? -1 : fd;
      }
      aio2_prep(io, SYS_pread64, ud, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(q.buf),
                q.len, q.off, 0, 0);
      break;
    }
    case k_preadv: {
      // Two iovecs; the part of the file a nowait attempt did not read is
      // read again through the iovecs left (their copy is an allocation).
      q.len = 2 + static_cast<uint32_t>(pick(r, kMaxRead - 1));
      q.off = pick(r, kDataBytes - q.len);
      const uint32_t first = 1 + static_cast<uint32_t>(pick(r, q.len - 1));
      q.iov[0] = {q.buf, first};
      q.iov[1] = {q.buf + first, q.len - first};
      aio2_prep(io, SYS_preadv, ud, static_cast<uint64_t>(s.data_fd),
                reinterpret_cast<uint64_t>(q.iov), 2, q.off, 0, 0);
      break;
    }
    case k_pwrite:
      q.len = 1 + static_cast<uint32_t>(pick(r, kBlock));
      q.off = i * kBlock;
      for (uint32_t k = 0; k < q.len; k++) q.buf[k] = written_byte(ud, k);
      aio2_prep(io, SYS_pwrite64, ud, static_cast<uint64_t>(s.scratch_fd),
                reinterpret_cast<uint64_t>(q.buf), q.len, q.off, 0, 0);
      break;
    case k_getppid: aio2_prep(io, SYS_getppid, ud, 0, 0, 0, 0, 0, 0); break;
    case k_statx:
      aio2_prep(io, SYS_statx, ud, static_cast<uint64_t>(AT_FDCWD),
                reinterpret_cast<uint64_t>(s.data_path), 0, STATX_SIZE,
                reinterpret_cast<uint64_t>(&q.sx), 0);
      break;
    default:
      q.pipe = static_cast<unsigned>(pick(r, kPipes));
      q.len = 8;
      std::memset(q.buf, 0, 8);
      aio2_prep(io, SYS_read, ud, static_cast<uint64_t>(s.pipe_rd[q.pipe]),
                reinterpret_cast<uint64_t>(q.buf), 8, 0, 0, 0);
      break;
  }
  // A policy of its own for some; never INLINE for a pipe read, which
  // would wait in the submitting thread.
  if (chance(r, 30)) {
    uint32_t policy = static_cast<uint32_t>(pick(r, 4));
    if (q.kind == k_pipe_read && policy == AIO2_POLICY_INLINE) policy = AIO2_POLICY_POOL;
    io->flags |= AIO2_IOCB_POLICY(policy);
  } else if (q.kind == k_pipe_read) {
    io->flags |= AIO2_IOCB_POLICY(AIO2_POLICY_AUTO);  // the context's may be INLINE
  }
  q.attrs = chance(r, 50);
  if (q.attrs) {
    const uint64_t tag = ud ^ kTagXor;
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_TAG, 0, &tag, sizeof tag);
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_TIMING, 0, nullptr, 0);
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
  }
}

bool refusal_allowed(const round_state &s, int err) {
  if (err == -ENOMEM) return s.faults;
  if (err == -EAGAIN) return s.limited || s.faults;
  return false;
}

void submitter(round_state &s, unsigned t, unsigned nthreads, uint64_t seed) {
  rng r(seed);
  alignas(8) static thread_local unsigned char batch[16 * kReqBytes];
  std::vector<size_t> mine;
  for (size_t i = t; i < s.n; i += nthreads) mine.push_back(i);
  std::vector<size_t> accepted_mine;
  size_t next = 0;
  uint64_t eagain_waits = 0, refused = 0, cancels = 0, calls = 0;
  while (next < mine.size()) {
    // A batch of up to 16 requests, built now.
    const size_t want = 1 + pick(r, 16);
    size_t count = 0, bytes = 0;
    uint32_t lens[16];
    int dups[16];
    while (count < want && next + count < mine.size()) {
      const size_t i = mine[next + count];
      build(s, i, r, batch + bytes, &dups[count]);
      lens[count] = reinterpret_cast<aio2_iocb *>(batch + bytes)->len;
      bytes += lens[count];
      count++;
    }
    size_t done = 0, off = 0, retries = 0;
    while (done < count) {
      const ssize_t n = aio2_submit(s.ctx, batch + off, bytes - off);
      if (n > 0) {
        size_t took = 0;
        while (done < count && took + lens[done] <= static_cast<size_t>(n)) {
          s.reqs[mine[next + done]].accepted = true;
          accepted_mine.push_back(mine[next + done]);
          took += lens[done];
          off += lens[done];
          done++;
        }
        if (took != static_cast<size_t>(n))
          fail("aio2_submit accepted %zd bytes, not a whole number of requests", n);
        retries = 0;
        continue;
      }
      const int err = static_cast<int>(n);
      if (n == 0) {
        fail("aio2_submit returned 0 for %zu bytes", bytes - off);
        break;
      }
      if (err == -EAGAIN && s.limited && retries < 2000) {
        // The in-flight limit: the reapers make room.
        retries++;
        eagain_waits++;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      req &q = s.reqs[mine[next + done]];
      q.refused = err;
      if (!refusal_allowed(s, err))
        fail("aio2_submit refused a %s request with %s", kKindNames[q.kind], aio2_strerror(err));
      refused++;
      off += lens[done];
      done++;
      retries = 0;
    }
    // Descriptors closed while their requests may still be queued.
    for (size_t k = 0; k < count; k++)
      if (dups[k] >= 0) close(dups[k]);
    // Tokens for some of the pipe reads, so that they finish mid-round.
    for (size_t k = 0; k < count; k++) {
      const req &q = s.reqs[mine[next + k]];
      if (q.kind != k_pipe_read || !q.accepted || !chance(r, 50)) continue;
      const uint64_t tok = pipe_token(q.pipe);
      if (write(s.pipe_wr[q.pipe], &tok, sizeof tok) != sizeof tok) fail("pipe write: %s", strerror(errno));
    }
    next += count;
    // Cancel one of this thread's earlier requests, now and then.
    if (!accepted_mine.empty() && chance(r, 15)) {
      const size_t i = accepted_mine[pick(r, accepted_mine.size())];
      s.reqs[i].cancel_asked = true;
      const int rc = aio2_cancel(s.ctx, user_data_of(s.round, i));
      cancels++;
      if (rc != 0 && rc != -EALREADY && rc != -ENOENT)
        fail("aio2_cancel: %s", aio2_strerror(rc));
      s.c->add(rc == 0 ? "cancel_queued" : rc == -EALREADY ? "cancel_running" : "cancel_done_already");
    }
    // Some of the data file dropped from the page cache now and then, so
    // that nowait-first reads find part of their range missing and finish
    // it on io_uring or a worker (the rest of a preadv takes a copy of its
    // iovecs).
    if (chance(r, 3)) {
      const uint64_t at = pick(r, kDataBytes / 4096) * 4096;
      posix_fadvise(s.data_fd, static_cast<off_t>(at), 256 * 1024, POSIX_FADV_DONTNEED);
      s.c->add("cache_drops");
    }
    // A synchronous call now and then (the process-wide SYNC context).
    if (chance(r, 5)) {
      alignas(8) unsigned char io_b[sizeof(aio2_iocb)];
      alignas(8) unsigned char ev_b[64];
      aio2_prep(reinterpret_cast<aio2_iocb *>(io_b), SYS_getppid, 7, 0, 0, 0, 0, 0, 0);
      const ssize_t n = aio2_call(nullptr, reinterpret_cast<aio2_iocb *>(io_b), ev_b, sizeof ev_b);
      calls++;
      if (n == -ENOMEM && s.faults) s.c->add("aio2_call_enomem");
      else if (n < 0 || reinterpret_cast<aio2_event *>(ev_b)->res != s.ppid)
        fail("aio2_call(getppid): %zd", n);
    }
  }
  s.accepted.fetch_add(accepted_mine.size(), std::memory_order_release);
  s.c->add("submit_eagain_waits", eagain_waits);
  s.c->add("requests_refused", refused);
  s.c->add("cancels", cancels);
  s.c->add("aio2_call", calls);
  std::unique_lock lk(s.over_mu);
  s.submitters_done++;
  s.over_cv.notify_all();
  s.over_cv.wait(lk, [&] { return s.over; });
}

void check_event(round_state &s, const aio2_event *ev) {
  const uint64_t ud = ev->user_data;
  const size_t i = static_cast<size_t>(ud & 0xffffffffu);
  if ((ud >> 32) != s.round || i >= s.n) {
    fail("event with user_data %#llx, not of this round", static_cast<unsigned long long>(ud));
    return;
  }
  req &q = s.reqs[i];
  if (q.reaped.fetch_add(1, std::memory_order_acq_rel) != 0) {
    fail("request %#llx reaped twice", static_cast<unsigned long long>(ud));
    return;
  }
  q.res = ev->res;
  q.flags = ev->flags;
  unsigned nres = 0;
  for (const aio2_attr_ret *a = aio2_attr_next(ev, nullptr); a; a = aio2_attr_next(ev, a)) {
    static const uint16_t order[3] = {AIO2_ATTR_TAG, AIO2_ATTR_TIMING, AIO2_ATTR_EXECUTOR};
    if (nres < 3 && a->id != order[nres]) fail("attribute result %u has id %u", nres, a->id);
    nres++;
  }
  if (nres != (q.attrs ? 3u : 0u))
    fail("%u attribute results for a request with %u attributes", nres, q.attrs ? 3u : 0u);
  if (q.attrs) {
    uint16_t st = 0;
    const void *p = aio2_event_attr_payload(ev, AIO2_ATTR_TAG, 8, &st);
    uint64_t tag = 0;
    if (p) std::memcpy(&tag, p, sizeof tag);
    if (p == nullptr || tag != (ud ^ kTagXor)) fail("tag not echoed (status %u)", st);
    aio2_attr_executor x{};
    if (const void *e = aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof x, nullptr)) {
      std::memcpy(&x, e, sizeof x);
      q.path = x.path;
    }
  }
}

void reaper(round_state &s, unsigned t) {
  s.storm->enrol();
  alignas(8) static thread_local unsigned char buf[16384];
  uint64_t eintr = 0, calls = 0, events = 0;
  const auto slack = std::chrono::seconds(60);
  auto deadline = std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (s.stop_reapers.load(std::memory_order_relaxed)) break;
    if (s.submit_done.load(std::memory_order_acquire)) {
      if (s.reaped.load(std::memory_order_relaxed) >= s.accepted.load(std::memory_order_relaxed))
        break;
      if (deadline == std::chrono::steady_clock::time_point::max())
        deadline = std::chrono::steady_clock::now() + slack;
      else if (std::chrono::steady_clock::now() > deadline) {
        fail("round %llu: %llu of %llu events never came",
             static_cast<unsigned long long>(s.round),
             static_cast<unsigned long long>(s.accepted.load() - s.reaped.load()),
             static_cast<unsigned long long>(s.accepted.load()));
        break;
      }
    }
    if (s.ring && (aio2_ring_owner_flags(s.ring) & AIO2_RING_OVERFLOW))
      s.saw_overflow.store(true, std::memory_order_relaxed);
    if (t == 0 && s.efd >= 0) {
      uint64_t v;
      if (read(s.efd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
        fail("eventfd read: %s", strerror(errno));
    }
    const timespec ts{0, 20 * 1000 * 1000};
    const ssize_t n = aio2_getevents(s.ctx, 1, buf, sizeof buf, &ts);
    calls++;
    if (n == -EINTR) {
      eintr++;
      continue;
    }
    if (n < 0) {
      fail("aio2_getevents: %s", aio2_strerror(static_cast<int>(n)));
      break;
    }
    uint64_t k = 0;
    for (const aio2_event *ev = aio2_event_next(buf, static_cast<size_t>(n), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(n), ev)) {
      check_event(s, ev);
      k++;
    }
    events += k;
    s.reaped.fetch_add(k, std::memory_order_relaxed);
  }
  s.storm->leave();
  s.c->add("getevents_calls", calls);
  s.c->add("getevents_eintr", eintr);
  s.c->add("events_reaped", events);
}

// The result request `q` may have, given how its round went.
void check_result(round_state &s, size_t i) {
  req &q = s.reqs[i];
  const int64_t res = q.res;
  const bool cancelled = q.cancel_asked && (res == -ECANCELED || res == -EINTR);
  const bool no_thread = s.faults && res == -EAGAIN;  // a worker could not be started
  const char *what = kKindNames[q.kind];
  static const char *const paths[] = {"path_call", "path_pool", "path_inline", "path_uring"};
  for (unsigned k = 0; k < 4; k++)
    if (q.path & (1u << k)) s.c->add(paths[k]);
  if (cancelled || no_thread) {
    s.c->add(cancelled ? "results_cancelled" : "results_eagain_no_worker");
    return;
  }
  switch (q.kind) {
    case k_pread:
    case k_preadv:
    case k_pread_closed: {
      if (q.kind == k_pread_closed && res == -EBADF) {
        s.c->add("results_closed_fd_ebadf");
        return;
      }
      // A nowait-first read that is cancelled, or whose descriptor is
      // closed before its rest runs, ends with what its first half read.
      const bool partial_ok = q.cancel_asked || q.kind == k_pread_closed;
      const bool ok = res == q.len || (partial_ok && res > 0 && res < q.len);
      if (ok && res < q.len) s.c->add("results_short_first_half");
      if (!ok) {
        fail("%s of %u bytes: %lld", what, q.len, static_cast<long long>(res));
        return;
      }
      const size_t bad = data_mismatch(q.buf, q.off, static_cast<size_t>(res));
      if (bad != static_cast<size_t>(res))
        fail("%s at %llu: byte %zu differs", what, static_cast<unsigned long long>(q.off), bad);
      s.c->add("bytes_read_verified", static_cast<uint64_t>(res));
      return;
    }
    case k_pwrite: {
      if (res != q.len) {
        fail("pwrite of %u bytes: %lld", q.len, static_cast<long long>(res));
        return;
      }
      std::unique_ptr<unsigned char[]> back(new unsigned char[q.len]);
      const ssize_t got = pread(s.scratch_fd, back.get(), q.len, static_cast<off_t>(q.off));
      const size_t bad = got == q.len ? written_mismatch(back.get(), user_data_of(s.round, i), q.len)
                                      : 0;
      if (got != q.len || bad != q.len) {
        // What is there instead: an earlier round's pattern, zeros, or the
        // buffer as it is now (something wrote into it).
        const auto earlier = [&](uint64_t back_rounds) {
          return s.round > back_rounds &&
                 back.get()[bad] == written_byte(user_data_of(s.round - back_rounds, i), bad);
        };
        const bool buffer_same = std::memcmp(back.get(), q.buf, q.len) == 0;
        size_t buf_bad = written_mismatch(q.buf, user_data_of(s.round, i), q.len);
        fail("pwrite's block %zu (%u bytes, path %#x, flags %#x, cancel %d) does not read back: "
             "byte %zu is %#x, not %#x; round-1's %d, round-2's %d; the file is the buffer: %d; "
             "the buffer differs from the pattern at %zu",
             i, q.len, q.path, q.flags, q.cancel_asked, bad, got == q.len ? back.get()[bad] : 0,
             written_byte(user_data_of(s.round, i), bad), earlier(1), earlier(2), buffer_same,
             buf_bad);
      }
      s.c->add("bytes_written_verified", q.len);
      return;
    }
    case k_getppid:
      if (res != s.ppid) fail("getppid: %lld", static_cast<long long>(res));
      return;
    case k_statx:
      if (res != 0 || q.sx.stx_size != kDataBytes)
        fail("statx: %lld, size %llu", static_cast<long long>(res),
             static_cast<unsigned long long>(q.sx.stx_size));
      return;
    default: {
      uint64_t tok = 0;
      std::memcpy(&tok, q.buf, sizeof tok);
      if (res == 8 && tok == pipe_token(q.pipe)) s.c->add("results_pipe_token");
      else if (res == 0) s.c->add("results_pipe_eof");
      else fail("pipe read: %lld, token %#llx, event flags %#x, path %#x", static_cast<long long>(res),
                static_cast<unsigned long long>(tok), q.flags, q.path);
      return;
    }
  }
}

#ifdef AIO2_FAULT_INJECT
// Adds the injector's counts since its last arming (one round) to `c`.
void add_fault_counts(counters &c) {
  for (unsigned k = 0; k < static_cast<unsigned>(aio2::fault::site::count); k++) {
    uint64_t calls = 0, failed = 0;
    aio2_fault_counts(k, &calls, &failed);
    const std::string name = aio2::fault::site_name(static_cast<aio2::fault::site>(k));
    if (calls) c.add("fault_calls_" + name, calls);
    if (failed) c.add("fault_failed_" + name, failed);
  }
}
#endif

}  // namespace

void run_core(const options &o, counters &c) {
#ifndef AIO2_FAULT_INJECT
  if (o.fault_ppm) {
    fail("--faults needs a library built with AIO2_FAULT_INJECT (the ASan build)");
    return;
  }
#endif
  std::string data_path;
  const int data_fd = open_data_file(o.dir, &data_path);
  if (data_fd < 0) {
    fail("data file: %s", strerror(-data_fd));
    return;
  }
  // The writes' file is this process's own: runs may share a directory.
  const std::string scratch_path = o.dir + "/aio2_soak.core." + std::to_string(getpid());
  const int scratch_fd = open(scratch_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (scratch_fd < 0) {
    fail("scratch file: %s", strerror(errno));
    close(data_fd);
    return;
  }
  std::vector<unsigned char> bufs(kMaxReqs * kMaxRead);
  std::unique_ptr<req[]> reqs;
  signal_storm storm(o.seed ^ 0x5707);

  // What must be back when the mode ends; the first round's setup makes
  // the library's process-wide state (the cancel signal, attribute table).
  const size_t base_fds = fd_count();
  const size_t base_threads = thread_count();
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(o.seconds);
  rng r(o.seed);
  uint64_t round = 0;
  while (std::chrono::steady_clock::now() < until && g_failures.load() == 0) {
    round++;
    round_state s;
    s.round = round;
    s.c = &c;
    s.storm = &storm;
    s.data_fd = data_fd;
    s.scratch_fd = scratch_fd;
    s.data_path = data_path.c_str();
    s.ppid = getppid();
    s.n = 16 + pick(r, kMaxReqs - 16);
    reqs.reset(new req[s.n]);
    s.reqs = reqs.get();
    for (size_t i = 0; i < s.n; i++) s.reqs[i].buf = bufs.data() + i * kMaxRead;
    s.faults = o.fault_ppm != 0;

    aio2_params p{};
    p.size = sizeof p;
    p.type = AIO2_CTX_RING;
    p.policy = static_cast<uint32_t>(pick(r, 4));
    static const uint64_t rings[] = {4096, 16384, 65536};
    p.ring_bytes = rings[pick(r, 3)];
    if (chance(r, 25)) {
      p.max_inflight = static_cast<uint32_t>(16 + s.n / 4);
      s.limited = true;
    }
    p.bounded_workers = static_cast<uint32_t>(1 + pick(r, 4));
    p.idle_ms = 20;  // workers come and go: thread creation is exercised
    if (chance(r, 30)) p.flags |= AIO2_SETUP_EVENTFD;
    if (chance(r, 20)) p.flags |= AIO2_SETUP_NO_URING;
    static const char *const policies[] = {"AUTO", "INLINE", "URING", "POOL"};
    c.add(std::string("rounds_policy_") + policies[p.policy]);
#ifdef AIO2_FAULT_INJECT
    if (s.faults) aio2_fault_arm(o.fault_ppm, 0, o.seed * 1000003 + round);
#endif
    // A user attribute registered (its handler is copied: an allocation).
    if (round < 0x7fff) {
      aio2_attr_handler h{};
      h.size = sizeof h;
      h.id = static_cast<uint16_t>(AIO2_ATTR_USER_MIN + round);
      h.paths = AIO2_PATH_ALL;
      h.name = "soak";
      const int arc = aio2_attr_register(&h);
      if (arc != 0 && !(arc == -ENOMEM && s.faults) && arc != -EEXIST)
        fail("aio2_attr_register: %s", aio2_strerror(arc));
    }
    const int rc = aio2_setup(AIO2_ABI_VERSION, &p, &s.ctx);
    if (rc != 0) {
      if (!(s.faults && (rc == -ENOMEM || rc == -EAGAIN)))
        fail("aio2_setup: %s", aio2_strerror(rc));
      c.add("setup_refused");
#ifdef AIO2_FAULT_INJECT
      aio2_fault_disarm();
      add_fault_counts(c);
#endif
      continue;
    }
    c.add("rounds");
    if (p.features & AIO2_FEAT_URING) c.add("rounds_with_uring");
    if (o.no_uring && (p.features & AIO2_FEAT_URING)) fail("io_uring in use though refused");
    s.ring = aio2_ring_get(s.ctx);
    s.efd = (p.flags & AIO2_SETUP_EVENTFD) ? p.eventfd : -1;
    for (unsigned k = 0; k < kPipes; k++) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) {
        fail("pipe2: %s", strerror(errno));
        fds[0] = fds[1] = -1;
      }
      s.pipe_rd[k] = fds[0];
      s.pipe_wr[k] = fds[1];
    }

    std::thread reapers[2], submitters[2];
    for (unsigned t = 0; t < 2; t++) reapers[t] = std::thread(reaper, std::ref(s), t);
    for (unsigned t = 0; t < 2; t++)
      submitters[t] = std::thread(submitter, std::ref(s), t, 2u, r());
    {
      std::unique_lock lk(s.over_mu);
      s.over_cv.wait(lk, [&] { return s.submitters_done == 2; });
    }
    s.submit_done.store(true, std::memory_order_release);
    const bool busy = chance(r, 30);
    if (busy) {
      s.stop_reapers.store(true, std::memory_order_relaxed);
    } else {
      for (unsigned k = 0; k < kPipes; k++) {
        close(s.pipe_wr[k]);  // the pipe reads still waiting read the end of the file
        s.pipe_wr[k] = -1;
      }
    }
    for (auto &t : reapers) t.join();
    const int drc = aio2_destroy(s.ctx);  // busy: with requests in flight
    if (drc != 0) fail("aio2_destroy: %s", aio2_strerror(drc));
    {
      std::lock_guard lk(s.over_mu);
      s.over = true;
    }
    s.over_cv.notify_all();
    for (auto &t : submitters) t.join();
#ifdef AIO2_FAULT_INJECT
    if (s.faults) {
      aio2_fault_disarm();
      add_fault_counts(c);
    }
#endif
    for (unsigned k = 0; k < kPipes; k++) {
      if (s.pipe_rd[k] >= 0) close(s.pipe_rd[k]);
      if (s.pipe_wr[k] >= 0) close(s.pipe_wr[k]);
    }
    if (s.saw_overflow.load()) c.add("rounds_overflowed");

    uint64_t submitted = 0, reaped = 0;
    for (size_t i = 0; i < s.n; i++) {
      req &q = s.reqs[i];
      const uint32_t times = q.reaped.load(std::memory_order_acquire);
      if (!q.accepted) {
        if (times) fail("an event for a refused request");
        continue;
      }
      submitted++;
      c.add(std::string("submitted_") + kKindNames[q.kind]);
      if (times == 0) {
        if (!busy) fail("request %zu (%s) of round %llu lost", i, kKindNames[q.kind],
                        static_cast<unsigned long long>(round));
        continue;
      }
      reaped++;
      check_result(s, i);
    }
    c.add("requests_submitted", submitted);
    c.add(busy ? "rounds_destroyed_busy" : "rounds_drained");
    if (busy) c.add("destroyed_in_flight", submitted - reaped);
    if (s.accepted.load() != submitted) fail("accepted count %llu, flags say %llu",
                                             static_cast<unsigned long long>(s.accepted.load()),
                                             static_cast<unsigned long long>(submitted));
    const size_t fds = fd_count();
    if (fds != base_fds) fail("round %llu: %zu descriptors open, %zu before",
                              static_cast<unsigned long long>(round), fds, base_fds);
  }
  close(scratch_fd);
  unlink(scratch_path.c_str());
  close(data_fd);
  c.add("signals_sent", storm.sent());
  // The storm thread is the caller's: the library's threads must be gone.
  if (!threads_back_to(base_threads, 30))
    fail("%zu threads, %zu before the mode", thread_count(), base_threads);
  if (fd_count() + 2 != base_fds) fail("%zu descriptors at the end, %zu before", fd_count() + 2, base_fds);
  c.print("core", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace soak
