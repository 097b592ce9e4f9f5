// SPDX-License-Identifier: MIT
// aio2's libaio.so.1 against the real one. Debian's libaio.so.1 (kernel AIO)
// and aio2's replacement are both loaded with dlopen into this process,
// neither linked, and bound by symbol version; every case of the table runs
// on each with fresh contexts, and its answer (return values, then the
// events' res and res2, obj and data checked) is compared with what the row
// expects of each. Rows where the two differ say why: the kernel's answer is
// an artefact of kernel AIO (buffered I/O run inside io_submit, a ring sized
// beyond what io_setup asked for, io_cancel that cancels only polls), or
// aio2's answer is the more specific one. docs/compat.md lists the same
// differences.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "held_buffer.h"
#include "libaio_api.h"
#include "test_util.h"

// Under the sanitizers: the kernel's cases crash the real libaio on
// purpose, in a child, and the table records the signal, so the sanitizer
// must not catch it; and the children start threads after fork().
extern "C" const char *__tsan_default_options() { return "handle_segv=0:die_after_fork=0"; }
extern "C" const char *__asan_default_options() { return "handle_segv=0"; }

namespace {

using aio2_test::aio_ring_view;
using aio2_test::io_context_t;
using aio2_test::libaio_api;

constexpr const char *kRealLibaio = "/lib/x86_64-linux-gnu/libaio.so.1";

const libaio_api &kernel_api() {
  static const libaio_api a = libaio_api::load("kernel", kRealLibaio);
  return a;
}
const libaio_api &ours_api() {
  static const libaio_api a = libaio_api::load("aio2", AIO2_LIBAIO_PATH);
  return a;
}

// Files every case may use: a pattern file (read-write), descriptors of one
// file opened read-only and write-only, and a scratch directory.
struct files {
  aio2_test::scratch_dir dir{"aio2-libaio"};
  aio2_test::pattern_file pattern{64 * 1024};
  int rdonly = -1, wronly = -1;
  files() {
    const std::string p = dir / "plain";
    const int fd = open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::vector<char> zeros(8192, 'z');
      (void)!write(fd, zeros.data(), zeros.size());
      close(fd);
    }
    rdonly = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    wronly = open(p.c_str(), O_WRONLY | O_CLOEXEC);
  }
  ~files() {
    if (rdonly >= 0) close(rdonly);
    if (wronly >= 0) close(wronly);
  }
  bool ok() const { return dir.ok() && pattern.ok() && rdonly >= 0 && wronly >= 0; }
};

files &the_files() {
  static files f;
  return f;
}

// A context of `a`, destroyed at the end of the case.
struct ctx {
  const libaio_api &a;
  io_context_t c = nullptr;
  int rc;
  explicit ctx(const libaio_api &api, int nr = 64) : a(api), rc(api.io_setup(nr, &c)) {}
  ~ctx() {
    if (rc == 0 && c) a.io_destroy(c);
  }
  aio_ring_view *ring() const { return reinterpret_cast<aio_ring_view *>(c); }
};

// A pipe, both ends closed at the end of the case.
struct pipe_pair {
  int rd = -1, wr = -1;
  pipe_pair() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) rd = p[0], wr = p[1];
  }
  ~pipe_pair() {
    if (rd >= 0) close(rd);
    if (wr >= 0) close(wr);
  }
};

constexpr uint64_t kData = 0x5eed0000cafe0000ull;

iocb rw(uint16_t op, int fd, void *buf, uint64_t n, int64_t off) {
  iocb cb{};
  cb.aio_lio_opcode = op;
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_buf = reinterpret_cast<uint64_t>(buf);
  cb.aio_nbytes = n;
  cb.aio_offset = off;
  cb.aio_data = kData;
  return cb;
}

iocb poll_cb(int fd, short events) {
  iocb cb{};
  cb.aio_lio_opcode = IOCB_CMD_POLL;
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_buf = static_cast<uint64_t>(events);
  cb.aio_data = kData;
  return cb;
}

std::string num(long v) { return std::to_string(v); }

// An event as the table writes it: res and res2, and "?obj" or "?data" when
// the event does not carry the iocb's address or aio_data.
std::string event_str(const io_event &ev, const iocb *cb) {
  std::string s = "res=" + num(static_cast<long>(ev.res));
  if (ev.res2) s += " res2=" + num(static_cast<long>(ev.res2));
  if (ev.obj != reinterpret_cast<uint64_t>(cb)) s += " ?obj";
  if (ev.data != cb->aio_data) s += " ?data";
  return s;
}

// Waits up to 5 s for one event of `cb` and writes it, or "no event".
std::string reap_one(const ctx &x, const iocb *cb) {
  io_event ev{};
  timespec ts{5, 0};
  const int got = x.a.io_getevents(x.c, 1, 1, &ev, &ts);
  if (got != 1) return "getevents=" + num(got);
  return event_str(ev, cb);
}

// Submits `cb` alone: the return value, then its event when it was queued.
std::string submit_one(const ctx &x, iocb *cb) {
  if (x.rc != 0) return "io_setup=" + num(x.rc);
  iocb *list[1] = {cb};
  const int rc = x.a.io_submit(x.c, 1, list);
  if (rc != 1) return num(rc);
  return "1 " + reap_one(x, cb);
}

// Waits up to 5 s until the ring holds `n` events (read from the ring).
bool ring_holds(io_context_t c, unsigned n) {
  const auto *r = reinterpret_cast<const aio_ring_view *>(c);
  const uint64_t until = aio2_test::now_ns() + 5000000000ull;
  while (aio2_test::now_ns() < until) {
    const unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    const unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    const unsigned nr = r->nr;
    if ((tail + nr - head) % nr >= n) return true;
    usleep(1000);
  }
  return false;
}

// A mapped page made inaccessible: an address that is no context.
void *unmapped_page() {
  static void *p = [] {
    void *m = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? nullptr : m;
  }();
  return p;
}

using case_fn = std::string (*)(const libaio_api &a);

// ---- io_setup --------------------------------------------------------------

std::string setup_nr(const libaio_api &a, int nr) {
  io_context_t c = nullptr;
  const int rc = a.io_setup(nr, &c);
  if (rc == 0) a.io_destroy(c);
  return num(rc);
}

std::string setup_ring(const libaio_api &a) {
  ctx x(a, 64);
  if (x.rc) return num(x.rc);
  const aio_ring_view *r = x.ring();
  return "magic=" + std::string(r->magic == aio2_test::kAioRingMagic ? "ok" : "bad") +
         " head=" + num(r->head) + " tail=" + num(r->tail) +
         " compat=" + num(r->compat_features) + " incompat=" + num(r->incompat_features) +
         " hdr=" + num(r->header_length) + (r->nr > 64 ? " nr>64" : " nr<=64");
}

std::string setup_ctxp_in_use(const libaio_api &a) {
  io_context_t c = reinterpret_cast<io_context_t>(0x1000);
  return num(a.io_setup(8, &c));
}

std::string setup_ctxp_null(const libaio_api &a) { return num(a.io_setup(8, nullptr)); }

std::string queue_init_zero(const libaio_api &a) {
  io_context_t c = nullptr;
  return num(a.io_queue_init(0, &c));
}

// Admission: io_setup(1) and as many polls as the context takes.
std::string setup_one_admits(const libaio_api &a) {
  ctx x(a, 1);
  if (x.rc) return num(x.rc);
  pipe_pair p;
  iocb cbs[4] = {poll_cb(p.rd, POLLIN), poll_cb(p.rd, POLLIN), poll_cb(p.rd, POLLIN),
                 poll_cb(p.rd, POLLIN)};
  iocb *list[4] = {&cbs[0], &cbs[1], &cbs[2], &cbs[3]};
  const int rc = a.io_submit(x.c, 4, list);
  std::string s = num(rc);
  if (rc >= 1) {
    iocb *more[1] = {&cbs[3]};
    if (rc < 4) s += " then " + num(a.io_submit(x.c, 1, more));
  }
  (void)!write(p.wr, "x", 1);
  return s;
}

// Kernel addresses: what libaio's own harness passes for a bad pointer.
void *kernel_pointer() { return reinterpret_cast<void *>(0xffffffff81000000ull); }

std::string setup_ctxp_kernel(const libaio_api &a) {
  return num(a.io_setup(8, static_cast<io_context_t *>(kernel_pointer())));
}

// A child made by fork() has none of its parent's contexts.
std::string submit_in_child(const libaio_api &a) {
  ctx x(a);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(-a.io_submit(x.c, 0, nullptr));
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string parent = num(a.io_submit(x.c, 0, nullptr));
  return "child " + (WIFEXITED(status) ? num(-WEXITSTATUS(status)) : "crashed") + " parent " +
         parent;
}

// io_setup(1): submit a poll of an empty pipe, have another thread make
// it ready while this one waits in io_getevents, reap the event and submit
// the next at once, many times (libaio's harness, case 23, does the same).
// The one outstanding request is always within what io_setup promised. A
// race, so this can only fail now and then: an event was once counted both
// in the ring and as in flight for a moment after it was posted, and a
// submit in that moment was refused with -EAGAIN.
std::string reap_then_submit_at_limit(const libaio_api &a) {
  ctx x(a, 1);
  if (x.rc) return num(x.rc);
  pipe_pair p, go;
  std::thread helper([&] {
    char c;
    while (read(go.rd, &c, 1) == 1 && c == 'g') (void)!write(p.wr, "x", 1);
  });
  // Two busy threads keep both CPUs taken, so that the thread that posts
  // an event is often preempted right after it.
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; i++)
    busy.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  int refused = 0, lost = 0;
  char c;
  for (int i = 0; i < 5000; i++) {
    iocb cb = poll_cb(p.rd, POLLIN);
    iocb *list[1] = {&cb};
    const int rc = a.io_submit(x.c, 1, list);
    if (rc != 1) {
      refused++;
      continue;
    }
    (void)!write(go.wr, "g", 1);
    io_event ev;
    timespec ts{5, 0};
    if (a.io_getevents(x.c, 1, 1, &ev, &ts) != 1) lost++;
    (void)!read(p.rd, &c, 1);
  }
  stop = true;
  for (auto &t : busy) t.join();
  (void)!write(go.wr, "q", 1);
  helper.join();
  return "refused=" + num(refused) + " lost=" + num(lost);
}

// ---- io_submit -------------------------------------------------------------

std::string submit_nr(const libaio_api &a, long nr) {
  ctx x(a);
  char buf[16];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  const int rc = a.io_submit(x.c, nr, list);
  return num(rc);
}

std::string submit_ctx(const libaio_api &a, io_context_t c) {
  char buf[16];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  return num(a.io_submit(c, 1, list));
}

std::string submit_destroyed_ctx(const libaio_api &a) {
  io_context_t c = nullptr;
  if (const int rc = a.io_setup(8, &c)) return "io_setup=" + num(rc);
  a.io_destroy(c);
  return submit_ctx(a, c);
}

std::string submit_null_array(const libaio_api &a) {
  ctx x(a);
  return num(a.io_submit(x.c, 1, nullptr));
}

std::string submit_null_second(const libaio_api &a) {
  ctx x(a);
  char buf[16];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  iocb *list[2] = {&cb, nullptr};
  const int rc = a.io_submit(x.c, 2, list);
  return rc == 1 ? "1 " + reap_one(x, &cb) : num(rc);
}

std::string submit_cb(const libaio_api &a, iocb cb) {
  ctx x(a);
  return submit_one(x, &cb);
}

std::string pread_fd(const libaio_api &a, int fd) {
  char buf[16];
  return submit_cb(a, rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 0));
}

// The descriptor is closed after io_setup, which may open descriptors.
std::string pread_closed_fd(const libaio_api &a) {
  ctx x(a);
  const int fd = dup(the_files().rdonly);
  close(fd);
  char buf[16];
  iocb cb = rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 0);
  return submit_one(x, &cb);
}

// A descriptor read through the page cache a few times (aio2 then takes its
// facts on trust, checking them by the read itself), then its number given
// to something else: `reuse` puts the new file at `fd` and says what it is.
// Each answer must be the one the new file gets.
std::string pread_after_reuse(const libaio_api &a, int (*reuse)(int fd)) {
  ctx x(a);
  const int fd = dup(the_files().pattern.fd());
  std::string s;
  for (int i = 0; i < 3; i++) {
    char buf[4096];
    iocb cb = rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 4096);
    s += submit_one(x, &cb) + "; ";
  }
  const std::string what = num(reuse(fd));
  char buf[8] = {};
  iocb cb = rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 0);
  s += what + " " + submit_one(x, &cb);
  close(fd);
  return s;
}

// Each returns 0 with `fd` replaced, or -1.
int reuse_closed(int fd) { return close(fd); }
int reuse_wronly(int fd) { return dup2(the_files().wronly, fd) == fd ? 0 : -1; }
int reuse_pipe(int fd) {
  int p[2];
  if (pipe(p) != 0 || write(p[1], "abc", 3) != 3 || dup2(p[0], fd) != fd) return -1;
  close(p[0]);
  close(p[1]);
  return 0;
}
int reuse_dir(int fd) { return dup2(the_files().dir.fd(), fd) == fd ? 0 : -1; }
int reuse_other_file(int fd) {
  const std::string p = the_files().dir / "other";
  const int o = open(p.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  if (o < 0 || write(o, "xyz", 3) != 3 || dup2(o, fd) != fd) return -1;
  close(o);
  return 0;
}

std::string pread_with(const libaio_api &a, uint16_t op, uint32_t flags, uint64_t reserved2,
                       int reqprio = 0) {
  char buf[4096];
  iocb cb = rw(op, the_files().pattern.fd(), buf, sizeof buf, 4096);
  cb.aio_flags = flags;
  cb.aio_reserved2 = reserved2;
  cb.aio_reqprio = static_cast<int16_t>(reqprio);
  const std::string s = submit_cb(a, cb);
  if (s == "1 res=4096" && !aio2_test::pattern_holds(reinterpret_cast<unsigned char *>(buf), 4096,
                                                     sizeof buf))
    return s + " ?bytes";
  return s;
}

std::string pread_resfd(const ctx &x, int resfd) {
  char buf[64];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = static_cast<uint32_t>(resfd);
  return submit_one(x, &cb);
}

std::string resfd_pipe(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  return pread_resfd(x, p.wr);
}

std::string resfd_timerfd(const libaio_api &a) {
  ctx x(a);
  const int t = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  const std::string s = pread_resfd(x, t);
  close(t);
  return s;
}

std::string resfd_closed(const libaio_api &a) {
  ctx x(a);
  const int e = eventfd(0, EFD_CLOEXEC);
  close(e);
  return pread_resfd(x, e);
}

// An eventfd per request: signalled once when the event is in the ring,
// which is read in user space without io_getevents.
std::string resfd_eventfd(const libaio_api &a) {
  ctx x(a);
  const int e = eventfd(0, EFD_CLOEXEC);
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = static_cast<uint32_t>(e);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  (void)!write(p.wr, "x", 1);
  pollfd pfd{e, POLLIN, 0};
  uint64_t count = 0;
  if (poll(&pfd, 1, 5000) == 1 && read(e, &count, sizeof count) == sizeof count) {
    aio_ring_view *r = x.ring();
    const unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    const unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    s += " count=" + num(static_cast<long>(count));
    if (head != tail) {
      s += " ring " + event_str(r->events[head], &cb);
      __atomic_store_n(&r->head, (head + 1) % r->nr, __ATOMIC_RELEASE);
    } else {
      s += " ring empty";
    }
  } else {
    s += " no signal";
  }
  close(e);
  return s;
}

std::string fsync_op(const libaio_api &a, uint16_t op, int fd, uint64_t nbytes) {
  iocb cb{};
  cb.aio_lio_opcode = op;
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_nbytes = nbytes;
  cb.aio_data = kData;
  return submit_cb(a, cb);
}

std::string fsync_pipe(const libaio_api &a) {
  pipe_pair p;
  return fsync_op(a, IOCB_CMD_FSYNC, p.wr, 0);
}

std::string pwritev_preadv(const libaio_api &a) {
  ctx x(a);
  const int fd = the_files().pattern.fd();
  char w1[100], w2[300];
  memset(w1, 'A', sizeof w1);
  memset(w2, 'B', sizeof w2);
  iovec wv[2] = {{w1, sizeof w1}, {w2, sizeof w2}};
  iocb cb = rw(IOCB_CMD_PWRITEV, fd, wv, 2, 60000);
  std::string s = submit_one(x, &cb);
  char r1[50], r2[350];
  iovec rv[2] = {{r1, sizeof r1}, {r2, sizeof r2}};
  iocb rd = rw(IOCB_CMD_PREADV, fd, rv, 2, 60000);
  s += "; " + submit_one(x, &rd);
  const bool same = memcmp(r1, w1, 50) == 0 && memcmp(r2, w1, 50) == 0 &&
                    memcmp(r2 + 50, w2, 300) == 0;
  // Puts the pattern back for the cases after this one.
  std::vector<unsigned char> back(400);
  for (size_t i = 0; i < back.size(); i++) back[i] = aio2_test::pattern_at(60000 + i);
  (void)!pwrite(fd, back.data(), back.size(), 60000);
  return s + (same ? "" : " ?bytes");
}

std::string pread_past_end(const libaio_api &a) {
  char buf[4096];
  std::string s = submit_cb(a, rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, 4096, 62 * 1024));
  return s + "; " +
         submit_cb(a, rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, 4096, 1 << 20));
}

std::string pread_bad_buffer(const libaio_api &a) {
  return submit_cb(a, rw(IOCB_CMD_PREAD, the_files().pattern.fd(),
                         reinterpret_cast<void *>(unmapped_page()), 4096, 0));
}

// A buffered read of pages not in the page cache. Kernel AIO reads them
// inside io_submit: the event is in the ring when io_submit returns. aio2
// returns at once and the read completes later (whether it is already
// done when io_submit returns is not part of the answer).
std::string buffered_read_uncached(const libaio_api &a) {
  ctx x(a);
  static unsigned char buf[64 * 1024];
  const aio2_test::pattern_file &f = the_files().pattern;
  f.evict(0, sizeof buf);
  iocb cb = rw(IOCB_CMD_PREAD, f.fd(), buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  const aio_ring_view *r = x.ring();
  const bool at_return = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) != r->head;
  if (a.name == "kernel") s += at_return ? " in_ring_at_return" : " in_flight_at_return";
  s += " " + reap_one(x, &cb);
  return s + (aio2_test::pattern_holds(buf, 0, sizeof buf) ? "" : " ?bytes");
}

std::string poll_ready(const libaio_api &a) {
  pipe_pair p;
  (void)!write(p.wr, "x", 1);
  return submit_cb(a, poll_cb(p.rd, POLLIN));
}

std::string poll_later(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  io_event ev{};
  timespec zero{0, 0};
  s += " early=" + num(a.io_getevents(x.c, 0, 1, &ev, &zero));
  std::thread t([&] {
    usleep(20000);
    (void)!write(p.wr, "x", 1);
  });
  s += " " + reap_one(x, &cb);
  t.join();
  return s;
}

std::string poll_hangup(const libaio_api &a) {
  pipe_pair p;
  close(p.wr);
  p.wr = -1;
  return submit_cb(a, poll_cb(p.rd, POLLIN));
}

std::string poll_with_nbytes(const libaio_api &a) {
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  cb.aio_nbytes = 1;
  return submit_cb(a, cb);
}

std::string rw_flags(const libaio_api &a, int flags) {
  char buf[4096];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 8192);
  cb.aio_rw_flags = flags;
  the_files().pattern.warm(0, 64 * 1024);
  return submit_cb(a, cb);
}

// ---- io_getevents ----------------------------------------------------------

std::string getevents(const libaio_api &a, long min_nr, long nr, long ns, bool null_events) {
  ctx x(a);
  io_event evs[4];
  timespec ts{0, ns};
  const uint64_t t0 = aio2_test::now_ns();
  const int rc = a.io_getevents(x.c, min_nr, nr, null_events ? nullptr : evs, &ts);
  const uint64_t waited = aio2_test::now_ns() - t0;
  std::string s = num(rc);
  if (ns >= 10000000) s += waited + 2000000 >= static_cast<uint64_t>(ns) ? " waited" : " early";
  return s;
}

std::string getevents_bad_timeout(const libaio_api &a, long sec, long nsec) {
  ctx x(a);
  io_event ev;
  timespec ts{sec, nsec};
  return num(a.io_getevents(x.c, 1, 1, &ev, &ts));
}

// NULL events with an event in the ring: it is not lost.
std::string getevents_null_with_event(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  (void)!write(p.wr, "x", 1);
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  if (!ring_holds(x.c, 1)) return s + " no event";
  timespec ts{1, 0};
  s += " " + num(a.io_getevents(x.c, 1, 1, nullptr, &ts));
  return s + " then " + reap_one(x, &cb);
}

// A kernel address for the events, with an event to copy out.
std::string getevents_kernel_events(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  (void)!write(p.wr, "x", 1);
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  if (!ring_holds(x.c, 1)) return s + " no event";
  timespec ts{1, 0};
  return s + " " + num(a.io_getevents(x.c, 1, 1, static_cast<io_event *>(kernel_pointer()), &ts));
}

std::string getevents_kernel_timeout(const libaio_api &a) {
  ctx x(a);
  io_event ev;
  return num(a.io_getevents(x.c, 1, 1, &ev, static_cast<timespec *>(kernel_pointer())));
}

std::string getevents_bad_ctx(const libaio_api &a) {
  io_event ev;
  timespec ts{0, 1000};
  return num(a.io_getevents(reinterpret_cast<io_context_t>(unmapped_page()), 1, 1, &ev, &ts)) +
         " " + num(a.io_getevents(nullptr, 1, 1, &ev, &ts));
}

// The LIBAIO_0.1 io_getevents has no min_nr: it waits for one event.
std::string getevents_0_1(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  std::thread t([&] {
    usleep(30000);
    (void)!write(p.wr, "x", 1);
  });
  io_event evs[4];
  const int got = a.io_getevents_0_1(x.c, 4, evs, nullptr);
  t.join();
  s += " " + num(got);
  if (got == 1) s += " " + event_str(evs[0], &cb);
  return s;
}

std::string pgetevents(const libaio_api &a) {
  ctx x(a);
  char buf[512];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  sigset_t none;
  sigemptyset(&none);
  io_event ev{};
  timespec ts{5, 0};
  const int got = a.io_pgetevents(x.c, 1, 1, &ev, &ts, &none);
  s += " " + num(got);
  if (got == 1) s += " " + event_str(ev, &cb);
  timespec zero{0, 0};
  return s + " empty=" + num(a.io_pgetevents(x.c, 0, 1, &ev, &zero, &none));
}

std::atomic<int> g_signals{0};
void on_signal(int) { g_signals.fetch_add(1); }

// io_pgetevents with a mask that lets through a signal pending before the
// call: the signal interrupts the wait.
std::string pgetevents_pending_signal(const libaio_api &a) {
  ctx x(a);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGUSR2, &sa, nullptr);
  sigset_t blocked, old, allow;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &blocked, &old);
  pthread_kill(pthread_self(), SIGUSR2);
  allow = old;
  sigdelset(&allow, SIGUSR2);
  g_signals = 0;
  io_event ev;
  timespec ts{0, 200000000};
  const int rc = a.io_pgetevents(x.c, 1, 1, &ev, &ts, &allow);
  const int seen = g_signals.load();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  signal(SIGUSR2, SIG_DFL);
  return num(rc) + " handled=" + num(seen);
}

// ---- io_cancel -------------------------------------------------------------

std::string cancel_done(const libaio_api &a, bool reaped) {
  ctx x(a);
  char buf[64];
  iocb cb = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  if (!ring_holds(x.c, 1)) return s + " no event";
  if (reaped) s += " " + reap_one(x, &cb);
  io_event res{};
  s += " cancel=" + num(a.io_cancel(x.c, &cb, &res));
  return s;
}

std::string cancel_unknown(const libaio_api &a) {
  ctx x(a);
  iocb cb{};
  io_event res{};
  return num(a.io_cancel(x.c, &cb, &res)) + " " + num(a.io_cancel_0_1(x.c, &cb));
}

std::string cancel_null_iocb(const libaio_api &a) {
  ctx x(a);
  io_event res{};
  return num(a.io_cancel(x.c, nullptr, &res));
}

std::string cancel_null_result(const libaio_api &a) {
  ctx x(a);
  iocb cb{};
  return num(a.io_cancel(x.c, &cb, nullptr));
}

std::string cancel_bad_ctx(const libaio_api &a) {
  iocb cb{};
  io_event res{};
  return num(a.io_cancel(reinterpret_cast<io_context_t>(unmapped_page()), &cb, &res));
}

// A poll waiting on an empty pipe, cancelled: its event still arrives.
std::string cancel_pending_poll(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  usleep(10000);
  io_event res{};
  s += " cancel=" + num(a.io_cancel(x.c, &cb, &res));
  return s + " " + reap_one(x, &cb);
}

// A read of a regular file that is under way when io_cancel comes: neither
// cancels it (-EINVAL), and its one event has every byte. On the kernel it
// is an O_DIRECT read in flight on the device (a buffered one would run
// inside io_submit). On aio2 the read waits in its copy into a held buffer,
// on an io_uring worker (or without io_uring a pool worker): nothing copies
// worker_read_file in io_submit's thread.
std::string cancel_running_file_read(const libaio_api &a) {
  ctx x(a);
  std::string s;
  long want = 0;
  int fd = -1;
  iocb cb{};
  if (a.name == "kernel") {
    alignas(4096) static char buf[4096];
    const std::string path = the_files().dir / "direct_file";
    fd = open(path.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0 || pwrite(fd, buf, sizeof buf, 0) != 4096) return "no O_DIRECT";
    want = 4096;
    cb = rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 0);
    iocb *list[1] = {&cb};
    s = num(a.io_submit(x.c, 1, list));
    io_event res{};
    s += " cancel=" + num(a.io_cancel(x.c, &cb, &res));
  } else {
    aio2_test::worker_read_file f;
    if (!f.ok()) return "no worker_read_file";
    aio2_test::held_buffer hb(4096);
    if (!hb.ok()) return "held buffer: " + hb.why();
    cb = rw(IOCB_CMD_PREAD, f.fd, hb.data(), 4096, 0);
    iocb *list[1] = {&cb};
    s = num(a.io_submit(x.c, 1, list));
    if (!hb.wait_touched()) return s + " never reached the held buffer";
    if (hb.toucher() == static_cast<pid_t>(syscall(SYS_gettid))) return s + " copied in io_submit";
    io_event res{};
    s += " cancel=" + num(a.io_cancel(x.c, &cb, &res));
    hb.release();
    std::string ev = reap_one(x, &cb);
    if (ev == "res=" + num(f.size())) ev = "res=full";
    return s + " " + ev + (hb.auto_released() ? " (released by the watchdog)" : "");
  }
  std::string ev = reap_one(x, &cb);
  if (ev == "res=" + num(want)) ev = "res=full";
  close(fd);
  return s + " " + ev;
}

// A read that is running when io_cancel comes. Kernel AIO runs a read of a
// pipe inside io_submit (it would block there), so on the kernel the read
// is an O_DIRECT one of a file, in flight on the device; aio2 runs the read
// of an empty pipe asynchronously and interrupts it.
std::string cancel_running_read(const libaio_api &a) {
  ctx x(a);
  pipe_pair p;
  alignas(4096) static char buf[4096];
  int fd = p.rd;
  int direct = -1;
  if (a.name == "kernel") {
    const std::string path = the_files().dir / "direct";
    direct = open(path.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
    if (direct < 0 || pwrite(direct, buf, sizeof buf, 0) != 4096) return "no O_DIRECT";
    fd = direct;
  }
  iocb cb = rw(IOCB_CMD_PREAD, fd, buf, sizeof buf, 0);
  iocb *list[1] = {&cb};
  std::string s = num(a.io_submit(x.c, 1, list));
  if (a.name != "kernel") usleep(20000);  // the read blocks
  io_event res{};
  s += " cancel=" + num(a.io_cancel(x.c, &cb, &res));
  // aio2's read ends -ECANCELED on io_uring, -EINTR on a worker.
  std::string ev = reap_one(x, &cb);
  if (ev == "res=-125" || ev == "res=-4") ev = "res=cancelled";
  if (direct >= 0) close(direct);
  return s + " " + ev;
}

// ---- io_destroy, io_queue_* ------------------------------------------------

std::string destroy_twice(const libaio_api &a) {
  io_context_t c = nullptr;
  if (const int rc = a.io_setup(8, &c)) return "io_setup=" + num(rc);
  const int first = a.io_destroy(c);
  return num(first) + " " + num(a.io_destroy(c));
}

std::string destroy_bad(const libaio_api &a) {
  return num(a.io_destroy(nullptr)) + " " +
         num(a.io_destroy(reinterpret_cast<io_context_t>(unmapped_page())));
}

// io_destroy with a poll still waiting: it returns once the poll is gone.
std::string destroy_pending(const libaio_api &a) {
  io_context_t c = nullptr;
  if (const int rc = a.io_setup(8, &c)) return "io_setup=" + num(rc);
  pipe_pair p;
  iocb cb = poll_cb(p.rd, POLLIN);
  iocb *list[1] = {&cb};
  const int rc = a.io_submit(c, 1, list);
  return num(rc) + " " + num(a.io_destroy(c));
}

struct callback_log {
  int calls = 0;
  long res_sum = 0;
  bool objs_ok = true;
};
callback_log g_log;
iocb g_cbs[3];

void record(io_context_t, struct iocb *cb, long res, long res2) {
  g_log.calls++;
  g_log.res_sum += res + res2;
  if (cb < &g_cbs[0] || cb > &g_cbs[2]) g_log.objs_ok = false;
}

// io_queue_init, io_set_callback's aio_data, io_queue_run, io_queue_wait,
// io_queue_release.
std::string queue_run(const libaio_api &a) {
  io_context_t c = nullptr;
  if (const int rc = a.io_queue_init(8, &c)) return "io_queue_init=" + num(rc);
  static char bufs[3][1000];
  iocb *list[3];
  for (int i = 0; i < 3; i++) {
    g_cbs[i] = rw(IOCB_CMD_PREAD, the_files().pattern.fd(), bufs[i], 100u * (i + 1), 0);
    g_cbs[i].aio_data = reinterpret_cast<uint64_t>(&record);  // io_set_callback
    list[i] = &g_cbs[i];
  }
  g_log = {};
  std::string s = num(a.io_submit(c, 3, list));
  if (!ring_holds(c, 3)) s += " not all";
  timespec zero{0, 0};
  s += " wait=" + num(a.io_queue_wait(c, &zero)) + "," + num(a.io_queue_wait_0_1(c, &zero));
  const int run = a.io_queue_run(c);
  s += " run=" + num(run) + " calls=" + num(g_log.calls) + " sum=" + num(g_log.res_sum) +
       (g_log.objs_ok ? "" : " ?obj");
  const int again = a.io_queue_run(c);
  s += " again=" + num(again);
  const int release = a.io_queue_release(c);
  return s + " release=" + num(release);
}

// ---- the table -------------------------------------------------------------

struct row {
  const char *name;
  case_fn run;
  const char *kernel;  // kernel AIO's answer
  const char *ours;    // aio2's, when it differs; nullptr: the same
  const char *why;     // why they differ
};

// A poll that the kernel completes from a wake-up reports the wake-up's
// events unmasked (POLLIN | POLLRDNORM for a pipe), one ready at submission
// only those asked for.
constexpr const char *kPollWhy =
    "the kernel's wake-up path leaves POLLRDNORM in res although only POLLIN was asked (its "
    "submission path masks it); aio2 reports what poll(2) reports, the events asked for";

const row kRows[] = {
    // io_setup
    {"setup_nr_zero", [](const libaio_api &a) { return setup_nr(a, 0); }, "-22", nullptr, ""},
    {"setup_nr_negative", [](const libaio_api &a) { return setup_nr(a, -1); }, "-22", nullptr, ""},
    {"setup_nr_over_aio_max_nr", [](const libaio_api &a) { return setup_nr(a, 65537); }, "-11",
     nullptr, ""},
    {"setup_nr_huge", [](const libaio_api &a) { return setup_nr(a, INT_MAX); }, "-22", nullptr,
     ""},
    {"setup_ring_header", setup_ring,
     "magic=ok head=0 tail=0 compat=1 incompat=0 hdr=32 nr>64", nullptr, ""},
    {"setup_ctxp_in_use", setup_ctxp_in_use, "-22", nullptr, ""},
    {"setup_ctxp_null", setup_ctxp_null, "-14", nullptr, ""},
    {"queue_init_zero", queue_init_zero, "-22", nullptr, ""},
    {"setup_ctxp_kernel", setup_ctxp_kernel, "-14", nullptr, ""},
    {"queue_init_ctxp_kernel",
     [](const libaio_api &a) {
       return num(a.io_queue_init(8, static_cast<io_context_t *>(kernel_pointer())));
     },
     "signal Segmentation fault", "-14",
     "libaio's io_queue_init writes NULL through the pointer before io_setup; aio2 checks it"},
    {"setup_one_admits", setup_one_admits, "4", "1 then -11",
     "the kernel sizes the ring beyond io_setup's nr (at least 4 events per CPU, doubled); aio2 "
     "keeps exactly nr outstanding"},
    {"reap_then_submit_at_limit", reap_then_submit_at_limit, "refused=0 lost=0", nullptr, ""},
    // io_submit
    {"submit_nr_zero", [](const libaio_api &a) { return submit_nr(a, 0); }, "0", nullptr, ""},
    {"submit_nr_negative", [](const libaio_api &a) { return submit_nr(a, -1); }, "-22", nullptr,
     ""},
    {"submit_ctx_null", [](const libaio_api &a) { return submit_ctx(a, nullptr); }, "-22",
     nullptr, ""},
    {"submit_ctx_unmapped",
     [](const libaio_api &a) {
       return submit_ctx(a, reinterpret_cast<io_context_t>(unmapped_page()));
     },
     "-22", nullptr, ""},
    {"submit_ctx_destroyed", submit_destroyed_ctx, "-22", nullptr, ""},
    {"submit_null_array", submit_null_array, "-14", nullptr, ""},
    {"submit_null_second", submit_null_second, "1 res=16", nullptr, ""},
    {"submit_array_minus_one",
     [](const libaio_api &a) {
       ctx x(a);
       return num(a.io_submit(x.c, 1, reinterpret_cast<iocb **>(-1l)));
     },
     "-14", nullptr, ""},
    {"submit_kernel_iocb",
     [](const libaio_api &a) {
       ctx x(a);
       iocb *list[1] = {static_cast<iocb *>(kernel_pointer())};
       return num(a.io_submit(x.c, 1, list));
     },
     "-14", nullptr, ""},
    {"submit_in_child", submit_in_child, "child -22 parent 0", nullptr, ""},
    {"submit_bad_fd", [](const libaio_api &a) { return pread_fd(a, -1); }, "-9", nullptr, ""},
    {"submit_closed_fd", pread_closed_fd, "-9", nullptr, ""},
    {"pread_on_wronly", [](const libaio_api &a) { return pread_fd(a, the_files().wronly); }, "-9",
     nullptr, ""},
    {"pread_reused_closed", [](const libaio_api &a) { return pread_after_reuse(a, reuse_closed); },
     "1 res=4096; 1 res=4096; 1 res=4096; 0 -9", nullptr, ""},
    {"pread_reused_wronly", [](const libaio_api &a) { return pread_after_reuse(a, reuse_wronly); },
     "1 res=4096; 1 res=4096; 1 res=4096; 0 -9", nullptr, ""},
    {"pread_reused_pipe", [](const libaio_api &a) { return pread_after_reuse(a, reuse_pipe); },
     "1 res=4096; 1 res=4096; 1 res=4096; 0 1 res=3", nullptr, ""},
    {"pread_reused_dir", [](const libaio_api &a) { return pread_after_reuse(a, reuse_dir); },
     "1 res=4096; 1 res=4096; 1 res=4096; 0 -22", nullptr, ""},
    {"pread_reused_other_file",
     [](const libaio_api &a) { return pread_after_reuse(a, reuse_other_file); },
     "1 res=4096; 1 res=4096; 1 res=4096; 0 1 res=3", nullptr, ""},
    {"pwrite_on_rdonly",
     [](const libaio_api &a) {
       char buf[16] = {};
       return submit_cb(a, rw(IOCB_CMD_PWRITE, the_files().rdonly, buf, sizeof buf, 0));
     },
     "-9", nullptr, ""},
    {"pread", [](const libaio_api &a) { return pread_with(a, IOCB_CMD_PREAD, 0, 0); },
     "1 res=4096", nullptr, ""},
    {"bad_fd_before_opcode",
     [](const libaio_api &a) {
       char buf[16];
       return submit_cb(a, rw(99, -1, buf, sizeof buf, 0));
     },
     "-9", nullptr, ""},
    {"ioprio_ignored_by_fsync",
     [](const libaio_api &a) {
       iocb cb{};
       cb.aio_lio_opcode = IOCB_CMD_FSYNC;
       cb.aio_fildes = static_cast<uint32_t>(the_files().pattern.fd());
       cb.aio_flags = IOCB_FLAG_IOPRIO;
       cb.aio_reqprio = static_cast<int16_t>(7 << 13);
       cb.aio_data = kData;
       return submit_cb(a, cb);
     },
     "1 res=0", nullptr, ""},
    {"unknown_opcode", [](const libaio_api &a) { return pread_with(a, 99, 0, 0); }, "-22",
     nullptr, ""},
    {"noop", [](const libaio_api &a) { return pread_with(a, IOCB_CMD_NOOP, 0, 0); }, "-22",
     nullptr, ""},
    {"reserved2", [](const libaio_api &a) { return pread_with(a, IOCB_CMD_PREAD, 0, 1); }, "-22",
     nullptr, ""},
    {"unknown_aio_flags",
     [](const libaio_api &a) { return pread_with(a, IOCB_CMD_PREAD, 1u << 7, 0); }, "1 res=4096",
     nullptr, ""},
    {"resfd_pipe", resfd_pipe, "-22", nullptr, ""},
    {"resfd_timerfd", resfd_timerfd, "-22", nullptr, ""},
    {"resfd_closed", resfd_closed, "-9", nullptr, ""},
    {"resfd_eventfd", resfd_eventfd, "1 count=1 ring res=65", "1 count=1 ring res=1", kPollWhy},
    {"ioprio_be_4",
     [](const libaio_api &a) {
       return pread_with(a, IOCB_CMD_PREAD, IOCB_FLAG_IOPRIO, 0, (2 << 13) | 4);
     },
     "1 res=4096", nullptr, ""},
    {"ioprio_bad_class",
     [](const libaio_api &a) { return pread_with(a, IOCB_CMD_PREAD, IOCB_FLAG_IOPRIO, 0, 7 << 13); },
     "-22", nullptr, ""},
    {"ioprio_none_level",
     [](const libaio_api &a) { return pread_with(a, IOCB_CMD_PREAD, IOCB_FLAG_IOPRIO, 0, 3); },
     "-22", nullptr, ""},
    {"fsync",
     [](const libaio_api &a) {
       return fsync_op(a, IOCB_CMD_FSYNC, the_files().pattern.fd(), 0);
     },
     "1 res=0", nullptr, ""},
    {"fdsync",
     [](const libaio_api &a) {
       return fsync_op(a, IOCB_CMD_FDSYNC, the_files().pattern.fd(), 0);
     },
     "1 res=0", nullptr, ""},
    {"fsync_with_nbytes",
     [](const libaio_api &a) {
       return fsync_op(a, IOCB_CMD_FSYNC, the_files().pattern.fd(), 1);
     },
     "-22", nullptr, ""},
    {"fsync_pipe", fsync_pipe, "-22", nullptr, ""},
    {"pwritev_preadv", pwritev_preadv, "1 res=400; 1 res=400", nullptr, ""},
    {"pread_past_end", pread_past_end, "1 res=2048; 1 res=0", nullptr, ""},
    {"pread_bad_buffer", pread_bad_buffer, "1 res=-14", nullptr, ""},
    {"buffered_read_uncached", buffered_read_uncached, "1 in_ring_at_return res=65536",
     "1 res=65536",
     "kernel AIO runs buffered I/O inside io_submit, which returns with the event in the ring; "
     "aio2 runs it asynchronously (io_uring or a worker)"},
    {"pread_pipe",
     [](const libaio_api &a) {
       pipe_pair p;
       (void)!write(p.wr, "abc", 3);
       char buf[8];
       return submit_cb(a, rw(IOCB_CMD_PREAD, p.rd, buf, sizeof buf, 12345));
     },
     "1 res=3", nullptr, ""},
    {"pwrite_pipe",
     [](const libaio_api &a) {
       pipe_pair p;
       return submit_cb(a, rw(IOCB_CMD_PWRITE, p.wr, const_cast<char *>("abcd"), 4, 777));
     },
     "1 res=4", nullptr, ""},
    {"poll_ready", poll_ready, "1 res=1", nullptr, ""},
    {"poll_later", poll_later, "1 early=0 res=65", "1 early=0 res=1", kPollWhy},
    {"poll_hangup", poll_hangup, "1 res=16", nullptr, ""},
    {"poll_with_nbytes", poll_with_nbytes, "-22", nullptr, ""},
    {"rwf_nowait_cached", [](const libaio_api &a) { return rw_flags(a, RWF_NOWAIT); },
     "1 res=4096", nullptr, ""},
    {"rwf_unknown", [](const libaio_api &a) { return rw_flags(a, 1 << 30); }, "-95", nullptr, ""},
    // io_getevents
    {"getevents_min_over_nr", [](const libaio_api &a) { return getevents(a, 2, 1, 1000, false); },
     "-22", nullptr, ""},
    {"getevents_min_negative", [](const libaio_api &a) { return getevents(a, -1, 1, 1000, false); },
     "-22", nullptr, ""},
    {"getevents_nr_negative", [](const libaio_api &a) { return getevents(a, 0, -1, 1000, false); },
     "-22", nullptr, ""},
    {"getevents_fast_path_skips_checks",
     [](const libaio_api &a) { return getevents(a, 2, 1, 0, false); }, "0", nullptr, ""},
    {"pgetevents_fast_path_skips_checks",
     [](const libaio_api &a) {
       ctx x(a);
       io_event ev;
       timespec zero{0, 0};
       return num(a.io_pgetevents(x.c, 2, 1, &ev, &zero, nullptr));
     },
     "0", nullptr, ""},
    {"getevents_timeout_zero", [](const libaio_api &a) { return getevents(a, 1, 4, 0, false); },
     "0", nullptr, ""},
    {"getevents_timeout_short",
     [](const libaio_api &a) { return getevents(a, 1, 4, 30000000, false); }, "0 waited", nullptr,
     ""},
    {"getevents_null_events_empty",
     [](const libaio_api &a) { return getevents(a, 1, 4, 0, true); }, "0", nullptr, ""},
    {"getevents_null_events_wait",
     [](const libaio_api &a) { return getevents(a, 1, 4, 30000000, true); }, "0 waited",
     "-14 early",
     "the kernel finds the bad array only when it copies an event out; aio2 refuses it at once"},
    {"getevents_null_events_pending", getevents_null_with_event, "1 -14 then res=1", nullptr, ""},
    {"getevents_kernel_events", getevents_kernel_events, "1 -14", nullptr, ""},
    {"getevents_kernel_timeout", getevents_kernel_timeout, "signal Segmentation fault", "-14",
     "libaio's io_getevents reads the timeout for its fast path before the call; aio2 checks the "
     "pointer first"},
    {"getevents_bad_timeout",
     [](const libaio_api &a) { return getevents_bad_timeout(a, 0, -1); }, "hangs", "-22",
     "the kernel does not check tv_nsec and waits for ever on a negative one; aio2 refuses it"},
    {"getevents_bad_ctx", getevents_bad_ctx, "signal Segmentation fault", "-22 -22",
     "libaio reads the ring's magic through the handle before the call, so an unmapped handle "
     "crashes it; aio2 looks the handle up without reading through it"},
    {"getevents_0_1_waits_for_one", getevents_0_1, "1 1 res=65", "1 1 res=1", kPollWhy},
    {"pgetevents", pgetevents, "1 1 res=512 empty=0", nullptr, ""},
    {"pgetevents_pending_signal", pgetevents_pending_signal, "-4 handled=1", nullptr, ""},
    // io_cancel
    {"cancel_done_reaped", [](const libaio_api &a) { return cancel_done(a, true); },
     "1 res=64 cancel=-22", nullptr, ""},
    {"cancel_done_unreaped", [](const libaio_api &a) { return cancel_done(a, false); },
     "1 cancel=-22", nullptr, ""},
    {"cancel_unknown", cancel_unknown, "-22 -22", nullptr, ""},
    {"cancel_null_iocb", cancel_null_iocb, "-14", nullptr, ""},
    {"cancel_kernel_iocb",
     [](const libaio_api &a) {
       ctx x(a);
       io_event res{};
       return num(a.io_cancel(x.c, static_cast<iocb *>(kernel_pointer()), &res));
     },
     "-14", nullptr, ""},
    {"cancel_null_result", cancel_null_result, "-22", nullptr, ""},
    {"cancel_bad_ctx", cancel_bad_ctx, "-22", nullptr, ""},
    {"cancel_pending_poll", cancel_pending_poll, "1 cancel=-115 res=0", nullptr, ""},
    {"cancel_running_file_read", cancel_running_file_read, "1 cancel=-22 res=full", nullptr, ""},
    {"cancel_running_read", cancel_running_read, "1 cancel=-22 res=4096", "1 cancel=-115 res=cancelled",
     "kernel AIO cancels only polls (a running read goes on, and a pipe read would have blocked "
     "io_submit); aio2 interrupts the read"},
    // io_destroy, io_queue_*
    {"destroy_twice", destroy_twice, "0 -22", nullptr, ""},
    {"destroy_bad", destroy_bad, "-22 -22", nullptr, ""},
    {"destroy_pending", destroy_pending, "1 0", nullptr, ""},
    {"queue_run", queue_run, "3 wait=0,0 run=0 calls=3 sum=600 again=0 release=0", nullptr, ""},
};

class compat : public ::testing::TestWithParam<row> {};

// Runs a case of aio2 on a thread of its own, so that signals and what
// the kernel keeps per thread (io_uring's task work) stay with the case.
std::string run_ours(const row &r, const libaio_api &a) {
  std::string out;
  std::thread t([&] { out = r.run(a); });
  t.join();
  return out;
}

// Runs a case of kernel AIO in a child process: libaio reads the ring
// through any handle (a bad one crashes it, which the table records as
// the signal), and aio2's io_uring work in this process cannot interrupt
// the kernel's io_getevents with its task work.
std::string run_kernel(const row &r, const libaio_api &a) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const std::string out = r.run(a);
    (void)!write(p[1], out.data(), out.size());
    _exit(0);
  }
  close(p[1]);
  // A case that the kernel never answers is killed after 5 s: "hangs".
  std::string out;
  char buf[512];
  bool hung = false;
  for (;;) {
    pollfd pfd{p[0], POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1) {
      hung = true;
      kill(pid, SIGKILL);
      break;
    }
    const ssize_t n = read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (hung) return "hangs";
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return out;
}

TEST_P(compat, KernelThenOurs) {
  const row &r = GetParam();
  ASSERT_TRUE(the_files().ok());
  const libaio_api &ours = ours_api();
  ASSERT_TRUE(ours.ok()) << ours.error;
  const libaio_api &kernel = kernel_api();
  const std::string got_kernel = kernel.ok() ? run_kernel(r, kernel) : "(not run)";
  const std::string got_ours = run_ours(r, ours);
  std::printf("| %s | %s | %s | %s |\n", r.name, got_kernel.c_str(), got_ours.c_str(),
              got_kernel == got_ours ? "same" : r.why);
  EXPECT_EQ(got_ours, r.ours ? r.ours : r.kernel) << "aio2";
  if (!kernel.ok()) {
    GTEST_SKIP() << "the real libaio: " << kernel.error;
  }
  EXPECT_EQ(got_kernel, r.kernel) << "kernel AIO";
  if (r.ours) {
    EXPECT_STRNE(r.why, "") << "a difference says why";
  }
}

INSTANTIATE_TEST_SUITE_P(libaio, compat, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<row> &i) { return i.param.name; });

// Kernel AIO must be there for the comparison to mean anything: a machine
// without io_setup (seccomp, aio-max-nr used up) skips visibly.
TEST(compat_setup, KernelAioAnswers) {
  const libaio_api &kernel = kernel_api();
  if (!kernel.ok()) GTEST_SKIP() << kernel.error;
  io_context_t c = nullptr;
  const int rc = kernel.io_setup(1, &c);
  if (rc == -ENOSYS || rc == -EPERM) GTEST_SKIP() << "kernel AIO unavailable: " << rc;
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(kernel.io_destroy(c), 0);
}

}  // namespace
