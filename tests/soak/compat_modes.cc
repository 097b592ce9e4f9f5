// SPDX-License-Identifier: MIT
// The soak's libaio and posix modes: the replacements, loaded with dlopen
// (tests/libaio_api.h, tests/posix_util.h) as the stress tests load them, so
// that a sanitizer build checks the replacements built with it. With
// --faults, AIO2_FAULT_INJECT is set before the library is loaded, which
// arms the injector inside it (its own copy of aio2) for the whole mode.
//
// libaio: rounds of io_setup with a random nr; one thread submits preads
// (verified), pwrites (read back), fsyncs and pipe reads in batches of
// io_submit, cancels some with io_cancel; two threads reap with
// io_getevents under a signal storm; each round ends drained or with
// io_destroy while requests are in flight.
//
// posix: rounds of aio_read/aio_write/lio_listio (LIO_WAIT and LIO_NOWAIT)
// from one thread that the signal storm interrupts in aio_suspend and
// lio_listio; aio_cancel on pipe reads and on random requests; every request
// is collected with aio_error, then aio_return exactly once.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

// posix_util.h's aio2_api() names a library of its own; the soak loads the
// one given on its command line.
#ifndef AIO2_POSIX_LIB
#define AIO2_POSIX_LIB ""
#endif
#include "../libaio_api.h"
#include "../posix_util.h"
#include "soak_util.h"

namespace soak {

namespace {

constexpr uint32_t kMaxRead = 16384;
constexpr uint32_t kBlock = 4096;
constexpr unsigned kPipes = 4;
uint64_t pipe_token(unsigned p) { return 0x2222222222222222ull * (p + 1); }

enum kind : uint8_t { k_pread, k_pwrite, k_fsync, k_pipe_read, k_kinds };
const char *const kKindNames[k_kinds] = {"pread", "pwrite", "fsync", "pipe_read"};

// False when faults were asked of a build without the injector.
bool arm_library_faults(const options &o) {
  if (o.fault_ppm == 0) return true;
#ifndef AIO2_FAULT_INJECT
  fail("--faults needs libraries built with AIO2_FAULT_INJECT (the ASan build)");
  return false;
#endif
  const std::string v = std::to_string(o.fault_ppm) + ",0," + std::to_string(o.seed);
  setenv("AIO2_FAULT_INJECT", v.c_str(), 1);  // read by the library as it loads
  return true;
}

struct pipes {
  int rd[kPipes], wr[kPipes];
  bool ok = true;
  pipes() {
    for (unsigned k = 0; k < kPipes; k++) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) {
        ok = false;
        fds[0] = fds[1] = -1;
      }
      rd[k] = fds[0];
      wr[k] = fds[1];
    }
  }
  void close_writers() {
    for (int &w : wr)
      if (w >= 0) {
        close(w);
        w = -1;
      }
  }
  ~pipes() {
    close_writers();
    for (int r : rd)
      if (r >= 0) close(r);
  }
};

// The result of a request of kind `k` (of `len` bytes at `off`, or a pipe
// read of pipe `p`), its buffer at `buf`; false after reporting a failure.
void check_rw(counters &c, const char *mode, uint8_t k, int64_t res, uint32_t len, uint64_t off,
              const unsigned char *buf, unsigned p, uint64_t key, int scratch_fd, bool cancel_asked,
              bool faults) {
  if (cancel_asked && (res == -ECANCELED || res == -EINTR)) {
    c.add("results_cancelled");
    return;
  }
  if (faults && res == -EAGAIN) {
    c.add("results_eagain_no_worker");
    return;
  }
  switch (k) {
    case k_pread:
      if (res != len) {
        fail("%s pread of %u: %lld", mode, len, static_cast<long long>(res));
      } else if (data_mismatch(buf, off, len) != len) {
        fail("%s pread at %llu: data differs", mode, static_cast<unsigned long long>(off));
      } else {
        c.add("bytes_read_verified", len);
      }
      return;
    case k_pwrite: {
      if (res != len) {
        fail("%s pwrite of %u: %lld", mode, len, static_cast<long long>(res));
        return;
      }
      std::unique_ptr<unsigned char[]> back(new unsigned char[len]);
      if (pread(scratch_fd, back.get(), len, static_cast<off_t>(off)) != len ||
          written_mismatch(back.get(), key, len) != len)
        fail("%s pwrite at %llu does not read back", mode, static_cast<unsigned long long>(off));
      else
        c.add("bytes_written_verified", len);
      return;
    }
    case k_fsync:
      if (res != 0) fail("%s fsync: %lld", mode, static_cast<long long>(res));
      return;
    default: {
      uint64_t tok = 0;
      std::memcpy(&tok, buf, sizeof tok);
      if (res == 8 && tok == pipe_token(p)) c.add("results_pipe_token");
      else if (res == 0) c.add("results_pipe_eof");
      else fail("%s pipe read: %lld", mode, static_cast<long long>(res));
      return;
    }
  }
}

uint8_t pick_kind(rng &r) {
  const unsigned roll = static_cast<unsigned>(pick(r, 100));
  return roll < 45 ? k_pread : roll < 75 ? k_pwrite : roll < 80 ? k_fsync : k_pipe_read;
}

// ---- libaio -----------------------------------------------------------------

struct aio_req {
  struct iocb cb {};
  uint8_t kind = 0;
  bool accepted = false, cancel_asked = false;
  uint32_t len = 0;
  uint64_t off = 0;
  unsigned pipe = 0;
  // Times reaped. acq_rel: the reaper that makes it 1 owns `res`.
  std::atomic<uint32_t> reaped{0};
  int64_t res = 0;
  unsigned char *buf = nullptr;
};

struct aio_round {
  const aio2_test::libaio_api *a = nullptr;
  aio2_test::io_context_t ctx = nullptr;
  aio_req *reqs = nullptr;
  size_t n = 0;
  uint64_t round = 0;
  // Accepted requests and reaped events; release/acquire on `submit_done`
  // publishes the final `accepted` to the reapers.
  std::atomic<uint64_t> accepted{0}, reaped{0};
  std::atomic<bool> submit_done{false};
  std::atomic<bool> stop{false};  // relaxed: the join orders the rest
  counters *c = nullptr;
  signal_storm *storm = nullptr;
};

void aio_reaper(aio_round &s) {
  s.storm->enrol();
  io_event evs[32];
  uint64_t eintr = 0, events = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (!s.stop.load(std::memory_order_relaxed)) {
    if (s.submit_done.load(std::memory_order_acquire) &&
        s.reaped.load(std::memory_order_relaxed) >= s.accepted.load(std::memory_order_relaxed))
      break;
    if (std::chrono::steady_clock::now() > give_up) {
      fail("libaio round %llu: %llu events never came", static_cast<unsigned long long>(s.round),
           static_cast<unsigned long long>(s.accepted.load() - s.reaped.load()));
      break;
    }
    timespec ts{0, 20 * 1000 * 1000};
    const int n = s.a->io_getevents(s.ctx, 1, 32, evs, &ts);
    if (n == -EINTR) {
      eintr++;
      continue;
    }
    if (n < 0) {
      fail("io_getevents: %s", strerror(-n));
      break;
    }
    for (int k = 0; k < n; k++) {
      const size_t i = static_cast<size_t>(evs[k].data);
      if (i >= s.n || reinterpret_cast<struct iocb *>(evs[k].obj) != &s.reqs[i].cb) {
        fail("io_event with data %llu, not of this round", static_cast<unsigned long long>(evs[k].data));
        continue;
      }
      if (s.reqs[i].reaped.fetch_add(1, std::memory_order_acq_rel) != 0) {
        fail("libaio request reaped twice");
        continue;
      }
      s.reqs[i].res = evs[k].res;
    }
    events += static_cast<uint64_t>(n);
    s.reaped.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  s.storm->leave();
  s.c->add("io_getevents_eintr", eintr);
  s.c->add("events_reaped", events);
}

}  // namespace

void run_libaio(const options &o, counters &c) {
  if (o.libaio_path.empty()) {
    fail("no libaio replacement to load (--libaio PATH)");
    return;
  }
  if (!arm_library_faults(o)) return;
  const aio2_test::libaio_api a = aio2_test::libaio_api::load("aio2", o.libaio_path.c_str());
  if (!a.ok()) {
    fail("%s", a.error.c_str());
    return;
  }
  std::string data_path;
  const int data_fd = open_data_file(o.dir, &data_path);
  const std::string scratch_path = o.dir + "/aio2_soak.libaio." + std::to_string(getpid());
  const int scratch_fd = open(scratch_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (data_fd < 0 || scratch_fd < 0) {
    fail("libaio mode: data or scratch file cannot be opened");
    return;
  }
  const bool faults = o.fault_ppm != 0;
  signal_storm storm(o.seed ^ 0xa10);
  const size_t base_fds = fd_count();
  const size_t base_threads = thread_count();
  std::vector<unsigned char> bufs(256 * size_t{kMaxRead});
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(o.seconds);
  rng r(o.seed + 17);
  uint64_t round = 0;
  while (std::chrono::steady_clock::now() < until && g_failures.load() == 0) {
    if (fd_count() != base_fds) fail("libaio round %llu: %zu descriptors open, %zu before",
                                     static_cast<unsigned long long>(round), fd_count(), base_fds);
    round++;
    aio_round s;
    s.a = &a;
    s.round = round;
    s.c = &c;
    s.storm = &storm;
    const int nr = 8 + static_cast<int>(pick(r, 248));
    int rc = a.io_setup(nr, &s.ctx);
    if (rc != 0) {
      if (!(faults && (rc == -EAGAIN || rc == -ENOMEM))) fail("io_setup(%d): %s", nr, strerror(-rc));
      c.add("setup_refused");
      continue;
    }
    c.add("rounds");
    s.n = static_cast<size_t>(nr);
    std::unique_ptr<aio_req[]> reqs(new aio_req[s.n]);
    s.reqs = reqs.get();
    pipes pp;
    if (!pp.ok) fail("pipe2: %s", strerror(errno));
    for (size_t i = 0; i < s.n; i++) {
      aio_req &q = s.reqs[i];
      q.buf = bufs.data() + i * kMaxRead;
      q.kind = pick_kind(r);
      q.cb.aio_data = i;
      switch (q.kind) {
        case k_pread:
          q.len = 1 + static_cast<uint32_t>(pick(r, kMaxRead));
          q.off = pick(r, kDataBytes - q.len);
          q.cb.aio_lio_opcode = IOCB_CMD_PREAD;
          q.cb.aio_fildes = static_cast<uint32_t>(data_fd);
          break;
        case k_pwrite:
          q.len = 1 + static_cast<uint32_t>(pick(r, kBlock));
          q.off = i * kBlock;
          for (uint32_t k = 0; k < q.len; k++) q.buf[k] = written_byte(round * 1000 + i, k);
          q.cb.aio_lio_opcode = IOCB_CMD_PWRITE;
          q.cb.aio_fildes = static_cast<uint32_t>(scratch_fd);
          break;
        case k_fsync:
          q.cb.aio_lio_opcode = IOCB_CMD_FSYNC;
          q.cb.aio_fildes = static_cast<uint32_t>(scratch_fd);
          break;
        default:
          q.pipe = static_cast<unsigned>(pick(r, kPipes));
          q.len = 8;
          q.cb.aio_lio_opcode = IOCB_CMD_PREAD;
          q.cb.aio_fildes = static_cast<uint32_t>(pp.rd[q.pipe]);
          break;
      }
      if (q.kind != k_fsync) {  // the kernel's rule: an fsync has no buffer
        q.cb.aio_buf = reinterpret_cast<uint64_t>(q.buf);
        q.cb.aio_nbytes = q.len;
        q.cb.aio_offset = static_cast<int64_t>(q.off);
      }
    }
    std::thread reapers[2];
    for (auto &t : reapers) t = std::thread(aio_reaper, std::ref(s));
    uint64_t refused = 0, accepted = 0;
    for (size_t next = 0; next < s.n;) {
      const size_t want = std::min<size_t>(1 + pick(r, 16), s.n - next);
      struct iocb *ptrs[16];
      for (size_t k = 0; k < want; k++) ptrs[k] = &s.reqs[next + k].cb;
      const int got = a.io_submit(s.ctx, static_cast<long>(want), ptrs);
      if (got < 0) {
        // Within io_setup's promise only an injected failure may refuse.
        if (!(faults && (got == -EAGAIN || got == -ENOMEM)))
          fail("io_submit: %s", strerror(-got));
        refused++;
        next++;  // that one is given up
        continue;
      }
      for (int k = 0; k < got; k++) {
        aio_req &q = s.reqs[next + static_cast<size_t>(k)];
        q.accepted = true;
        accepted++;
        if (q.kind == k_pipe_read && chance(r, 50)) {
          const uint64_t tok = pipe_token(q.pipe);
          if (write(pp.wr[q.pipe], &tok, sizeof tok) != sizeof tok) fail("pipe write");
        }
      }
      next += static_cast<size_t>(got);
      if (got == 0) {
        fail("io_submit took none of %zu", want);
        next++;
      }
      if (chance(r, 20)) {  // cancel one accepted request
        const size_t i = pick(r, next);
        if (s.reqs[i].accepted) {
          s.reqs[i].cancel_asked = true;
          const int crc = a.io_cancel(s.ctx, &s.reqs[i].cb, nullptr);
          if (crc != 0 && crc != -EINPROGRESS && crc != -EINVAL && crc != -EAGAIN)
            fail("io_cancel: %s", strerror(-crc));
          c.add(crc == -EINPROGRESS ? "cancel_running" : crc == 0 ? "cancel_queued" : "cancel_too_late");
        }
      }
    }
    s.accepted.store(accepted, std::memory_order_relaxed);
    s.submit_done.store(true, std::memory_order_release);
    c.add("requests_submitted", accepted);
    c.add("requests_refused", refused);
    const bool busy = chance(r, 30);
    if (busy) s.stop.store(true, std::memory_order_relaxed);
    else pp.close_writers();
    for (auto &t : reapers) t.join();
    rc = a.io_destroy(s.ctx);
    if (rc != 0) fail("io_destroy: %s", strerror(-rc));
    c.add(busy ? "rounds_destroyed_busy" : "rounds_drained");
    uint64_t reaped = 0;
    for (size_t i = 0; i < s.n; i++) {
      aio_req &q = s.reqs[i];
      const uint32_t times = q.reaped.load(std::memory_order_acquire);
      if (!q.accepted) {
        if (times) fail("an event for a refused iocb");
        continue;
      }
      c.add(std::string("submitted_") + kKindNames[q.kind]);
      if (times == 0) {
        if (!busy) fail("libaio request %zu (%s) lost", i, kKindNames[q.kind]);
        continue;
      }
      reaped++;
      check_rw(c, "libaio", q.kind, q.res, q.len, q.off, q.buf, q.pipe, round * 1000 + i,
               scratch_fd, q.cancel_asked, faults);
    }
    if (busy) c.add("destroyed_in_flight", accepted - reaped);
  }
  close(scratch_fd);
  unlink(scratch_path.c_str());
  close(data_fd);
  c.add("signals_sent", storm.sent());
  if (fd_count() + 2 != base_fds) fail("libaio: %zu descriptors at the end, %zu before", fd_count() + 2, base_fds);
  if (!threads_back_to(base_threads, 30))
    fail("libaio: %zu threads, %zu before the mode", thread_count(), base_threads);
  c.print("libaio", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// ---- POSIX AIO ---------------------------------------------------------------

namespace {

struct px_req {
  struct aiocb cb {};
  uint8_t kind = 0;
  bool accepted = false, cancel_asked = false, returned = false;
  uint32_t len = 0;
  uint64_t off = 0;
  unsigned pipe = 0;
  unsigned char *buf = nullptr;
};

}  // namespace

void run_posix(const options &o, counters &c) {
  if (o.posix_path.empty()) {
    fail("no POSIX AIO replacement to load (--posix PATH)");
    return;
  }
  if (!arm_library_faults(o)) return;
  void *dl = dlopen(o.posix_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  const aio2_test::posix_api a =
      aio2_test::detail::load(dl, "aio2", true, nullptr, "libaio2-posix");
  if (!a.complete) {
    fail("%s", a.problem.c_str());
    return;
  }
  std::string data_path;
  const int data_fd = open_data_file(o.dir, &data_path);
  const std::string scratch_path = o.dir + "/aio2_soak.posix." + std::to_string(getpid());
  const int scratch_fd = open(scratch_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (data_fd < 0 || scratch_fd < 0) {
    fail("posix mode: data or scratch file cannot be opened");
    return;
  }
  const bool faults = o.fault_ppm != 0;
  signal_storm storm(o.seed ^ 0x9051);
  storm.enrol();  // this thread waits in aio_suspend and lio_listio(LIO_WAIT)
  constexpr size_t kMax = 256;
  std::vector<unsigned char> bufs(kMax * kMaxRead);
  // The library's context and completion thread are made by the first
  // request; they live as long as the process. Counted after it.
  {
    struct aiocb cb {};
    unsigned char b[8];
    cb.aio_fildes = data_fd;
    cb.aio_buf = b;
    cb.aio_nbytes = sizeof b;
    while (a.read(&cb) != 0) {
      if (!(faults && errno == EAGAIN)) {
        fail("aio_read: %s", strerror(errno));
        break;
      }
    }
    while (a.error(&cb) == EINPROGRESS) {
      const struct aiocb *l[1] = {&cb};
      a.suspend(l, 1, nullptr);
    }
    a.ret(&cb);
  }
  const size_t base_fds = fd_count();
  const size_t base_threads = thread_count();
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(o.seconds);
  rng r(o.seed + 29);
  uint64_t round = 0;
  while (std::chrono::steady_clock::now() < until && g_failures.load() == 0) {
    if (fd_count() != base_fds) fail("posix round %llu: %zu descriptors open, %zu before",
                                     static_cast<unsigned long long>(round), fd_count(), base_fds);
    round++;
    c.add("rounds");
    const size_t n = 8 + pick(r, kMax - 8);
    std::unique_ptr<px_req[]> reqs(new px_req[n]);
    pipes pp;
    if (!pp.ok) fail("pipe2: %s", strerror(errno));
    for (size_t i = 0; i < n; i++) {
      px_req &q = reqs[i];
      q.buf = bufs.data() + i * kMaxRead;
      q.kind = pick_kind(r);
      if (q.kind == k_fsync) q.kind = k_pwrite;  // aio_fsync has its own ordering; kept out
      switch (q.kind) {
        case k_pread:
          q.len = 1 + static_cast<uint32_t>(pick(r, kMaxRead));
          q.off = pick(r, kDataBytes - q.len);
          q.cb.aio_fildes = data_fd;
          q.cb.aio_lio_opcode = LIO_READ;
          break;
        case k_pwrite:
          q.len = 1 + static_cast<uint32_t>(pick(r, kBlock));
          q.off = i * kBlock;
          for (uint32_t k = 0; k < q.len; k++) q.buf[k] = written_byte(round * 1000 + i, k);
          q.cb.aio_fildes = scratch_fd;
          q.cb.aio_lio_opcode = LIO_WRITE;
          break;
        default:
          q.pipe = static_cast<unsigned>(pick(r, kPipes));
          q.len = 8;
          q.cb.aio_fildes = pp.rd[q.pipe];
          q.cb.aio_lio_opcode = LIO_READ;
          break;
      }
      q.cb.aio_buf = q.buf;
      q.cb.aio_nbytes = q.len;
      q.cb.aio_offset = static_cast<off_t>(q.off);
      q.cb.aio_sigevent.sigev_notify = SIGEV_NONE;
    }
    // Submit: single calls, and lio_listio batches (waiting or not).
    uint64_t refused = 0, listio_eintr = 0;
    for (size_t next = 0; next < n;) {
      if (chance(r, 30)) {
        const size_t want = std::min<size_t>(1 + pick(r, 16), n - next);
        struct aiocb *list[16];
        bool has_pipe = false;
        for (size_t k = 0; k < want; k++) {
          list[k] = &reqs[next + k].cb;
          has_pipe |= reqs[next + k].kind == k_pipe_read;
        }
        // LIO_WAIT would wait for a pipe read that no one feeds yet.
        const int mode = has_pipe || chance(r, 50) ? LIO_NOWAIT : LIO_WAIT;
        const int rc = a.listio(mode, list, static_cast<int>(want), nullptr);
        const int err = rc == 0 ? 0 : errno;
        if (rc != 0 && err == EINTR) listio_eintr++;
        if (rc != 0 && err != EINTR && err != EIO && !(faults && err == EAGAIN))
          fail("lio_listio: %s", strerror(err));
        for (size_t k = 0; k < want; k++) {
          px_req &q = reqs[next + k];
          // An element the call did not queue reports its error at once.
          const int e = rc == 0 ? EINPROGRESS : a.error(&q.cb);
          if (rc != 0 && e == EAGAIN && faults) {
            refused++;
            a.ret(&q.cb);
            q.returned = true;
            continue;
          }
          if (rc != 0 && e != EINPROGRESS && e != 0 && e != ECANCELED && !(faults && e == EAGAIN) &&
              err != EINTR && e != EINTR)
            fail("lio_listio element: %s", strerror(e));
          q.accepted = true;
        }
        next += want;
        c.add(mode == LIO_WAIT ? "lio_listio_wait" : "lio_listio_nowait");
      } else {
        px_req &q = reqs[next];
        const int rc = q.kind == k_pwrite ? a.write(&q.cb) : a.read(&q.cb);
        if (rc != 0) {
          if (!(faults && errno == EAGAIN)) fail("aio_%s: %s", kKindNames[q.kind], strerror(errno));
          refused++;
        } else {
          q.accepted = true;
        }
        next++;
      }
      const px_req &last = reqs[next - 1];
      if (last.accepted && last.kind == k_pipe_read && chance(r, 50)) {
        const uint64_t tok = pipe_token(last.pipe);
        if (write(pp.wr[last.pipe], &tok, sizeof tok) != sizeof tok) fail("pipe write");
      }
      if (chance(r, 15)) {
        px_req &q = reqs[pick(r, next)];
        if (q.accepted && !q.returned) {
          q.cancel_asked = true;
          const int crc = a.cancel(q.cb.aio_fildes, &q.cb);
          // -1 with EAGAIN: an injected failure left it no room; it
          // cancelled nothing.
          const bool no_room = crc == -1 && errno == EAGAIN && faults;
          if (crc != AIO_CANCELED && crc != AIO_NOTCANCELED && crc != AIO_ALLDONE && !no_room)
            fail("aio_cancel: %d %s", crc, strerror(errno));
          c.add(no_room                    ? "cancel_eagain"
                : crc == AIO_CANCELED    ? "cancel_canceled"
                : crc == AIO_NOTCANCELED ? "cancel_running"
                                         : "cancel_alldone");
        }
      }
    }
    c.add("requests_refused", refused);
    c.add("lio_listio_eintr", listio_eintr);
    // The pipes' readers: cancelled all at once, or given the end of file.
    if (chance(r, 30)) {
      for (unsigned k = 0; k < kPipes; k++) {
        const int crc = a.cancel(pp.rd[k], nullptr);
        if (crc != AIO_CANCELED && crc != AIO_NOTCANCELED && crc != AIO_ALLDONE &&
            !(crc == -1 && errno == EAGAIN && faults))
          fail("aio_cancel(fd, NULL): %d %s", crc, strerror(errno));
      }
      for (size_t i = 0; i < n; i++)
        if (reqs[i].kind == k_pipe_read) reqs[i].cancel_asked = true;
      c.add("rounds_pipes_cancelled");
    }
    pp.close_writers();
    // Collect: aio_suspend on what is in progress, aio_return once each.
    uint64_t suspend_eintr = 0, submitted = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    for (;;) {
      std::vector<const struct aiocb *> waiting;
      for (size_t i = 0; i < n; i++) {
        px_req &q = reqs[i];
        if (!q.accepted || q.returned) continue;
        const int e = a.error(&q.cb);
        if (e == EINPROGRESS) {
          waiting.push_back(&q.cb);
          continue;
        }
        const ssize_t ret = a.ret(&q.cb);
        q.returned = true;
        submitted++;
        const int64_t res = ret < 0 ? -static_cast<int64_t>(e) : ret;
        if (e != 0 && ret != -1) fail("aio_error %d but aio_return %zd", e, ret);
        check_rw(c, "posix", q.kind, res, q.len, q.off, q.buf, q.pipe, round * 1000 + i,
                 scratch_fd, q.cancel_asked, faults);
      }
      if (waiting.empty()) break;
      if (std::chrono::steady_clock::now() > give_up) {
        fail("posix round %llu: %zu requests never finished", static_cast<unsigned long long>(round),
             waiting.size());
        break;
      }
      const timespec ts{0, 20 * 1000 * 1000};
      if (a.suspend(waiting.data(), static_cast<int>(waiting.size()), &ts) != 0) {
        if (errno == EINTR) suspend_eintr++;
        else if (errno != EAGAIN) fail("aio_suspend: %s", strerror(errno));
      }
    }
    for (size_t i = 0; i < n; i++)
      if (reqs[i].accepted) c.add(std::string("submitted_") + kKindNames[reqs[i].kind]);
    c.add("requests_returned", submitted);
    c.add("aio_suspend_eintr", suspend_eintr);
  }
  storm.leave();
  close(scratch_fd);
  unlink(scratch_path.c_str());
  close(data_fd);
  c.add("signals_sent", storm.sent());
  if (fd_count() + 2 != base_fds) fail("posix: %zu descriptors at the end, %zu before", fd_count() + 2, base_fds);
  if (!threads_back_to(base_threads, 30))
    fail("posix: %zu threads, %zu before the mode", thread_count(), base_threads);
  c.print("posix", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace soak
