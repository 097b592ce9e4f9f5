// SPDX-License-Identifier: MIT
// AIO2_TRACE in the libaio replacement, linked in: each test runs a child
// process (AIO2_TRACE is read once per process) that makes libaio calls,
// then reads the trace file it left. Every record must be matched to the
// submission it came from even when iocbs are rewritten and submitted
// again as soon as they are reaped, from several threads; requests io_submit
// did not accept leave nothing behind; io_destroy records what was still in
// flight; exit() without io_destroy and fork() are covered. Built with the
// sanitizers too.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "compat/trace_file.h"

// libaio's interface, as the replacement exports it.
typedef struct io_context *io_context_t;
extern "C" {
int io_setup(int maxevents, io_context_t *ctxp);
int io_destroy(io_context_t ctx);
int io_submit(io_context_t ctx, long nr, struct iocb *ios[]);
int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
                 struct timespec *timeout);
}

namespace {

namespace tf = aio2_compat;

// A fresh directory, removed with everything in it at the end.
class temp_dir {
 public:
  temp_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "aio2-compat-trace.XXXXXX").string();
    if (mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir &) = delete;
  temp_dir &operator=(const temp_dir &) = delete;
  std::string operator/(const std::string &name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

constexpr unsigned kBlocks = 256;  // the file: 1 MiB

// Runs fn in a child with AIO2_TRACE=trace; the child's exit status is fn's
// (0: passed). Failures inside are reported by the status only, so fn says
// what failed on stderr.
template <class Fn>
void in_child(const std::string &trace, Fn fn) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("AIO2_TRACE", trace.c_str(), 1);
    std::exit(fn());
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "child status " << st;
  ASSERT_EQ(WEXITSTATUS(st), 0) << "the child's check " << WEXITSTATUS(st) << " failed";
}

int make_file(const std::string &path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  std::vector<unsigned char> block(4096);
  for (unsigned b = 0; b < kBlocks; b++) {
    std::memset(block.data(), static_cast<int>(b), block.size());
    if (pwrite(fd, block.data(), block.size(), off_t{b} * 4096) != 4096) return -1;
  }
  return fd;
}

void prep_read(iocb &cb, int fd, void *buf, uint64_t offset, uint64_t len) {
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = static_cast<uint32_t>(fd);
  cb.aio_lio_opcode = IOCB_CMD_PREAD;
  cb.aio_buf = reinterpret_cast<uint64_t>(buf);
  cb.aio_nbytes = len;
  cb.aio_offset = static_cast<int64_t>(offset);
}

// Request number n: a read that no other number makes (offset, length).
uint64_t offset_of(uint64_t n) { return (n % kBlocks) * 4096; }
uint64_t length_of(uint64_t n) { return 1 + n / kBlocks; }

// Requests numbered [next, end) through one context, by any number of
// threads: each iocb is rewritten and submitted again as soon as its event
// is reaped, by whichever thread reaped it.
struct job {
  struct slot {
    iocb cb;
    unsigned char buf[4096];
  };
  io_context_t ctx;
  int fd;
  std::atomic<uint64_t> next;
  uint64_t end;
  std::atomic<uint64_t> done{0};
  std::vector<slot> slots;
  job(io_context_t c, int f, uint64_t first, uint64_t count, unsigned depth)
      : ctx(c), fd(f), next(first), end(first + count), slots(depth) {}
};

// Submits slots [from, to) of j, then reaps and resubmits until every
// request of j is done. Returns 0 or a failure code.
int run_job(job &j, unsigned from, unsigned to, uint64_t total) {
  for (unsigned i = from; i < to; i++) {
    const uint64_t n = j.next.fetch_add(1);
    if (n >= j.end) break;
    prep_read(j.slots[i].cb, j.fd, j.slots[i].buf, offset_of(n), length_of(n));
    iocb *p = &j.slots[i].cb;
    if (io_submit(j.ctx, 1, &p) != 1) return 20;
  }
  io_event evs[64];
  while (j.done.load() < total) {
    timespec ts{0, 20000000};
    const int got = io_getevents(j.ctx, 1, 64, evs, &ts);
    if (got < 0) return 21;
    for (int e = 0; e < got; e++) {
      auto *cb = reinterpret_cast<iocb *>(evs[e].obj);
      if (evs[e].res != static_cast<int64_t>(cb->aio_nbytes)) return 22;
      j.done.fetch_add(1);
      const uint64_t n = j.next.fetch_add(1);
      if (n >= j.end) continue;
      auto *sl = reinterpret_cast<job::slot *>(cb);  // cb is the slot's first member
      prep_read(sl->cb, j.fd, sl->buf, offset_of(n), length_of(n));
      if (io_submit(j.ctx, 1, &cb) != 1) return 23;
    }
  }
  return 0;
}

// One thread's requests numbered [first, first + count) through ctx,
// `depth` in flight.
int reuse_loop(io_context_t ctx, int fd, uint64_t first, uint64_t count, unsigned depth) {
  job j(ctx, fd, first, count, depth);
  return run_job(j, 0, depth, count);
}

tf::trace_contents read_trace(const std::string &path) {
  tf::trace_contents t;
  const std::string err = tf::read_trace_file(path, t);
  EXPECT_EQ(err, "");
  EXPECT_EQ(t.trailing_bytes, 0u);
  EXPECT_EQ(t.unknown_records, 0u);
  return t;
}

// Each end record: its counts add up, nothing dropped or unmatched.
void expect_clean_ends(const tf::trace_contents &t, uint32_t how) {
  for (const auto &e : t.ends) {
    EXPECT_EQ(e.how, how);
    EXPECT_EQ(e.requests, e.records);
    EXPECT_EQ(e.unobserved, 0u);
    EXPECT_EQ(e.unmatched, 0u);
    EXPECT_EQ(e.dropped, 0u);
    EXPECT_EQ(e.source, tf::kSourceLibaio);
  }
}

TEST(CompatTrace, ReusedIocbsFromSeveralThreadsAreMatchedToTheirSubmissions) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  constexpr unsigned kThreads = 3;
  constexpr uint64_t kEach = 3000;
  in_child(trace, [&] {
    const int fd = make_file(dir / "data");
    if (fd < 0) return 10;
    // A context per thread, and one more shared by two threads.
    std::vector<io_context_t> ctxs(kThreads + 1, nullptr);
    for (auto &c : ctxs)
      if (io_setup(64, &c) != 0) return 11;
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < kThreads; t++) {
      ts.emplace_back([&, t] {
        if (const int rc = reuse_loop(ctxs[t], fd, t * kEach, kEach, 16)) failed = rc;
      });
    }
    // Two threads on the last context, each reaping the other's iocbs too.
    job shared(ctxs[kThreads], fd, kThreads * kEach, 2 * kEach, 16);
    for (unsigned t = 0; t < 2; t++) {
      ts.emplace_back([&, t] {
        if (const int rc = run_job(shared, t * 8, t * 8 + 8, 2 * kEach)) failed = rc;
      });
    }
    for (auto &th : ts) th.join();
    if (failed) return failed.load();
    for (auto &c : ctxs)
      if (io_destroy(c) != 0) return 12;
    return 0;
  });
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.processes.size(), 1u);
  EXPECT_EQ(t.contexts.size(), kThreads + 1);
  EXPECT_EQ(t.ends.size(), kThreads + 1);
  expect_clean_ends(t, tf::kEndDestroyed);
  ASSERT_EQ(t.requests.size(), (kThreads + 2) * kEach);
  // Every request number exactly once, with the fields it was submitted with.
  std::set<uint64_t> seen;
  for (const auto &r : t.requests) {
    ASSERT_EQ(r.op_space, tf::kOpIocb);
    ASSERT_EQ(r.op, IOCB_CMD_PREAD);
    ASSERT_EQ(r.offset % 4096, 0u);
    ASSERT_GE(r.nbytes, 1u);
    const uint64_t n = (r.nbytes - 1) * kBlocks + r.offset / 4096;
    EXPECT_TRUE(seen.insert(n).second) << "request " << n << " recorded twice";
    EXPECT_EQ(r.res, static_cast<int64_t>(r.nbytes)) << "request " << n;
    EXPECT_EQ(r.status[tf::kAttrTiming], AIO2_ATTR_OK);
    EXPECT_EQ(r.status[tf::kAttrCache], AIO2_ATTR_OK);
    EXPECT_EQ(r.status[tf::kAttrExecutor], AIO2_ATTR_OK);
    EXPECT_LE(r.timing.submitted_ns, r.timing.posted_ns);
  }
  EXPECT_EQ(seen.size(), (kThreads + 2) * kEach);
}

TEST(CompatTrace, RequestsIoSubmitRefusedLeaveNothingBehind) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  in_child(trace, [&] {
    const int fd = make_file(dir / "data");
    if (fd < 0) return 10;
    io_context_t ctx = nullptr;
    if (io_setup(4, &ctx) != 0) return 11;
    std::vector<iocb> cbs(8);
    std::vector<iocb *> ptrs;
    std::vector<unsigned char> buf(8 * 4096);
    for (unsigned i = 0; i < 8; i++) {
      prep_read(cbs[i], fd, buf.data() + i * 4096, i * 4096, 4096);
      ptrs.push_back(&cbs[i]);
    }
    cbs[2].aio_lio_opcode = 99;  // refused: the call stops there
    if (io_submit(ctx, 8, ptrs.data()) != 2) return 12;
    io_event evs[8];
    if (io_getevents(ctx, 2, 8, evs, nullptr) != 2) return 13;
    // Four in flight at most (io_setup(4)): the rest is refused.
    cbs[2].aio_lio_opcode = IOCB_CMD_PREAD;
    const int n = io_submit(ctx, 6, ptrs.data() + 2);
    if (n < 1 || n > 4) return 14;
    if (io_getevents(ctx, n, 8, evs, nullptr) != n) return 15;
    // Nothing is in flight: io_destroy waits for nothing.
    const auto t0 = std::chrono::steady_clock::now();
    if (io_destroy(ctx) != 0) return 16;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(1)) return 17;
    return 0;
  });
  const tf::trace_contents t = read_trace(trace);
  ASSERT_EQ(t.ends.size(), 1u);
  expect_clean_ends(t, tf::kEndDestroyed);
  EXPECT_EQ(t.ends[0].requests, t.requests.size());
  EXPECT_GE(t.requests.size(), 3u);
  EXPECT_LE(t.requests.size(), 6u);
  for (const auto &r : t.requests) {
    EXPECT_EQ(r.op_space, tf::kOpIocb);
    EXPECT_EQ(r.res, 4096);
  }
}

TEST(CompatTrace, IoDestroyRecordsWhatWasStillInFlight) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  in_child(trace, [&] {
    int p[2];
    if (pipe(p) != 0) return 10;
    io_context_t ctx = nullptr;
    if (io_setup(8, &ctx) != 0) return 11;
    // A poll of a pipe nobody writes: in flight until cancelled.
    iocb cb{};
    cb.aio_fildes = static_cast<uint32_t>(p[0]);
    cb.aio_lio_opcode = IOCB_CMD_POLL;
    cb.aio_buf = POLLIN;
    iocb *ptr = &cb;
    if (io_submit(ctx, 1, &ptr) != 1) return 12;
    usleep(20000);
    if (io_destroy(ctx) != 0) return 13;
    return 0;
  });
  const tf::trace_contents t = read_trace(trace);
  ASSERT_EQ(t.ends.size(), 1u);
  EXPECT_EQ(t.ends[0].requests, 1u);
  EXPECT_EQ(t.ends[0].records, 1u);
  EXPECT_EQ(t.ends[0].unobserved, 0u);
  ASSERT_EQ(t.requests.size(), 1u);
  const auto &r = t.requests[0];
  EXPECT_EQ(r.op, IOCB_CMD_POLL);
  EXPECT_GE(r.fd, 0);
  // A poll cancelled before it found anything completes with no events (0),
  // as the kernel's does.
  EXPECT_LE(r.res, 0) << "cancelled";
}

TEST(CompatTrace, ExitWithoutIoDestroyWritesTheEndRecords) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  in_child(trace, [&] {
    const int fd = make_file(dir / "data");
    if (fd < 0) return 10;
    io_context_t ctx = nullptr;
    if (io_setup(16, &ctx) != 0) return 11;
    return reuse_loop(ctx, fd, 0, 100, 4);  // exit() with the context alive
  });
  const tf::trace_contents t = read_trace(trace);
  ASSERT_EQ(t.ends.size(), 1u);
  expect_clean_ends(t, tf::kEndExit);
  EXPECT_EQ(t.requests.size(), 100u);
}

TEST(CompatTrace, AForkedChildTracesItsOwnContexts) {
#if defined(__SANITIZE_THREAD__)
  // The child starts aio2's threads and the observer after a fork of a
  // process with threads, which ThreadSanitizer cannot follow.
  GTEST_SKIP() << "ThreadSanitizer does not support threads started after a multi-threaded fork";
#endif
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  in_child(trace, [&] {
    const int fd = make_file(dir / "data");
    if (fd < 0) return 10;
    io_context_t ctx = nullptr;
    if (io_setup(16, &ctx) != 0) return 11;
    if (const int rc = reuse_loop(ctx, fd, 0, 50, 4)) return rc;
    const pid_t child = fork();
    if (child == 0) {
      // The inherited context is not observed here; a new one is.
      io_context_t mine = nullptr;
      if (io_setup(16, &mine) != 0) _exit(30);
      if (reuse_loop(mine, fd, 1000, 70, 4) != 0) _exit(31);
      if (io_destroy(mine) != 0) _exit(32);
      _exit(0);  // as fio's job processes end
    }
    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 40;
    if (const int rc = reuse_loop(ctx, fd, 2000, 30, 4)) return rc;
    return io_destroy(ctx) == 0 ? 0 : 41;
  });
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.processes.size(), 2u);
  ASSERT_EQ(t.contexts.size(), 2u);
  ASSERT_EQ(t.ends.size(), 2u);
  expect_clean_ends(t, tf::kEndDestroyed);
  std::map<uint32_t, uint64_t> per_pid;
  for (const auto &r : t.requests) per_pid[r.pid]++;
  ASSERT_EQ(per_pid.size(), 2u);
  std::multiset<uint64_t> counts;
  for (const auto &[pid, n] : per_pid) counts.insert(n);
  EXPECT_EQ(counts, (std::multiset<uint64_t>{70, 80})) << "no record written twice or lost";
}

// ---------------------------------------------------------------------------
// The writer alone, as both replacements use it

// Record i of writer `who`: every field a function of (who, i), so that a
// record torn or overwritten by another writer is noticed.
tf::trace_request stamped(uint32_t who, uint64_t i) {
  tf::trace_request r{};
  r.ctx = 1;
  r.op = SYS_pread64;
  r.op_space = tf::kOpSyscall;
  r.fd = static_cast<int32_t>(who);
  r.user_data = (uint64_t{who} << 32) | i;
  r.offset = r.user_data;
  r.nbytes = i;
  r.res = static_cast<int64_t>(~r.user_data);
  return r;
}

// Checks that the requests are whole and counts them per writer; each
// (who, i) at most once.
std::map<uint32_t, uint64_t> count_stamped(const tf::trace_contents &t) {
  std::map<uint32_t, uint64_t> per;
  std::set<uint64_t> seen;
  for (const auto &r : t.requests) {
    const auto who = static_cast<uint32_t>(r.user_data >> 32);
    EXPECT_EQ(r.offset, r.user_data) << "a torn record";
    EXPECT_EQ(r.nbytes, r.user_data & 0xffffffffu) << "a torn record";
    EXPECT_EQ(r.res, static_cast<int64_t>(~r.user_data)) << "a torn record";
    EXPECT_EQ(r.fd, static_cast<int32_t>(who)) << "a torn record";
    EXPECT_EQ(r.source, tf::kSourcePosix);
    EXPECT_TRUE(seen.insert(r.user_data).second) << "record " << r.user_data << " twice";
    per[who]++;
  }
  return per;
}

// Forks a process that opens the writer of AIO2_TRACE=trace (fresh: the
// writer is once per process), checks that it writes the way `how` says,
// and runs fn(writer); the child's exit status is fn's. Returns its pid.
template <class Fn>
pid_t writer_child(const std::string &trace, tf::trace_writer::mode how, Fn fn) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setenv("AIO2_TRACE", trace.c_str(), 1);
  tf::trace_writer *w = tf::trace_writer::from_env("test", tf::kSourcePosix);
  if (w == nullptr) _exit(10);
  if (w->how() != how) _exit(11);
  std::exit(fn(w));
}

void expect_exit_0(pid_t pid) {
  ASSERT_GT(pid, 0);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "child status " << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << "the child's check " << WEXITSTATUS(st) << " failed";
}

constexpr uint64_t kChunkBytes = uint64_t{1} << 20;  // trace_writer's chunk

TEST(TraceWriterFile, RecordsFillMappedChunksAndTheReaderSkipsTheirPadding) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  // 20000 requests and the process record: 2.4 MiB, three chunks.
  constexpr uint64_t kRecords = 20000;
  expect_exit_0(writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    for (uint64_t i = 0; i < kRecords; i++) {
      const tf::trace_request r = stamped(1, i);
      w->append(&r, 1);
    }
    return 0;
  }));
  struct stat st {};
  ASSERT_EQ(stat(trace.c_str(), &st), 0);
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // The header, then from the next page boundary three whole chunks.
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), page + 3 * kChunkBytes);
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.processes.size(), 1u);
  EXPECT_EQ(count_stamped(t), (std::map<uint32_t, uint64_t>{{1, kRecords}}));
  // Everything in the file but the header and the records is padding.
  EXPECT_EQ(t.padding_records, static_cast<uint64_t>(st.st_size) / tf::kTraceRecordSize - 1 -
                                   kRecords - t.processes.size());
  EXPECT_GT(t.padding_records, 0u);
}

TEST(TraceWriterFile, ReaderSkipsZeroRecordsAnywhere) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  {
    std::ofstream f(trace, std::ios::binary);
    tf::trace_header h{};
    h.kind = tf::kTraceMagic;
    h.version = tf::kTraceVersion;
    h.record_size = tf::kTraceRecordSize;
    f.write(reinterpret_cast<const char *>(&h), sizeof h);
    const std::string zero(tf::kTraceRecordSize, '\0');
    for (int i = 0; i < 3; i++) f << zero;
    tf::trace_request r = stamped(1, 7);
    r.kind = tf::kTraceRequest;
    r.source = static_cast<uint8_t>(tf::kSourcePosix);
    f.write(reinterpret_cast<const char *>(&r), sizeof r);
    for (int i = 0; i < 5; i++) f << zero;
  }
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.padding_records, 8u);
  EXPECT_EQ(count_stamped(t), (std::map<uint32_t, uint64_t>{{1, 1}}));
}

TEST(TraceWriterFile, ExitAndSigkillLoseNoRecord) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  constexpr uint64_t kRecords = 3000;
  // _exit runs no exit handler: whatever waited in the process is lost.
  expect_exit_0(writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    for (uint64_t i = 0; i < kRecords; i++) {
      const tf::trace_request r = stamped(1, i);
      w->append(&r, 1);
    }
    _exit(0);
    return 1;
  }));
  // Killed once its records are appended (it says so on a pipe).
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t killed = writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    for (uint64_t i = 0; i < kRecords; i++) {
      const tf::trace_request r = stamped(2, i);
      w->append(&r, 1);
    }
    const char c = 'x';
    if (write(ready[1], &c, 1) != 1) return 20;
    for (;;) pause();
  });
  ASSERT_GT(killed, 0);
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the child did not get to the end of its records";
  close(ready[0]);
  ASSERT_EQ(kill(killed, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(waitpid(killed, &st, 0), killed);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.processes.size(), 2u);
  EXPECT_EQ(count_stamped(t), (std::map<uint32_t, uint64_t>{{1, kRecords}, {2, kRecords}}));
}

TEST(TraceWriterFile, AChunkIsReservedUnderTheFileLock) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  // The child opens the writer, then, told to, appends one record: its
  // first chunk must wait for the lock on the file, which this process
  // holds meanwhile (/proc/locks shows the child blocked on it).
  int ready[2], go[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  const pid_t child = writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    const char c = 'r';
    if (write(ready[1], &c, 1) != 1) return 20;
    char g;
    if (read(go[0], &g, 1) != 1) return 21;
    const tf::trace_request r = stamped(1, 0);
    w->append(&r, 1);
    return 0;
  });
  ASSERT_GT(child, 0);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const int fd = open(trace.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &l), 0);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  const std::string waiter = ":" + std::to_string(st.st_ino) + " ";
  bool blocked = false;
  while (!blocked) {
    int cst = 0;
    const pid_t done = waitpid(child, &cst, WNOHANG);
    ASSERT_EQ(done, 0) << "the child appended without waiting for the lock on the file";
    std::ifstream locks("/proc/locks");
    for (std::string line; std::getline(locks, line);)
      if (line.find("-> OFDLCK") != std::string::npos && line.find(waiter) != std::string::npos)
        blocked = true;
    if (!blocked) usleep(1000);
  }
  l.l_type = F_UNLCK;
  ASSERT_EQ(fcntl(fd, F_OFD_SETLK, &l), 0);
  close(fd);
  expect_exit_0(child);
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(count_stamped(t), (std::map<uint32_t, uint64_t>{{1, 1}}));
}

TEST(TraceWriterFile, ADirectoryIsRefused) {
  temp_dir dir;
  // No writer (the open fails: EISDIR): the process goes on untraced.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("AIO2_TRACE", (dir / "").c_str(), 1);
    _exit(tf::trace_writer::from_env("test", tf::kSourcePosix) == nullptr ? 0 : 1);
  }
  expect_exit_0(pid);
}

TEST(TraceWriterFile, ProcessesWritingOneFileAtOnceKeepEveryRecord) {
  temp_dir dir;
  const std::string trace = dir / "t.trace";
  constexpr uint64_t kRecords = 20000;  // several chunks each
  // Three writers at once: two processes that opened the file each, and a
  // child forked by the second after it had written (which opens the file
  // again for a lock of its own). They start together when `go` closes.
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  const auto wait_go = [&] {
    close(go[1]);
    char c;
    return read(go[0], &c, 1) == 0;
  };
  const auto write_n = [&](tf::trace_writer *w, uint32_t who, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++) {
      const tf::trace_request r = stamped(who, i);
      w->append(&r, 1);
    }
  };
  const pid_t a = writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    if (!wait_go()) return 20;
    write_n(w, 1, 0, kRecords);
    return 0;
  });
  const pid_t b = writer_child(trace, tf::trace_writer::mode::mapped, [&](tf::trace_writer *w) {
    write_n(w, 2, 0, 10);  // a chunk of its own before the fork
    const pid_t c = fork();
    if (c == 0) {
      if (!wait_go()) _exit(30);
      write_n(w, 3, 0, kRecords);
      _exit(0);
    }
    if (!wait_go()) return 21;
    write_n(w, 2, 10, kRecords);
    int cst = 0;
    if (waitpid(c, &cst, 0) != c || !WIFEXITED(cst) || WEXITSTATUS(cst) != 0) return 22;
    return 0;
  });
  close(go[0]);
  close(go[1]);
  expect_exit_0(a);
  expect_exit_0(b);
  const tf::trace_contents t = read_trace(trace);
  EXPECT_EQ(t.processes.size(), 3u);
  EXPECT_EQ(count_stamped(t),
            (std::map<uint32_t, uint64_t>{{1, kRecords}, {2, kRecords}, {3, kRecords}}));
}

TEST(TraceWriterFile, APipeGetsEachRecordWholeInAWriteOfItsOwn) {
  temp_dir dir;
  // AIO2_TRACE names the pipe's write end, as /dev/stderr names a pipe
  // when the program's errors are piped.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const std::string name = "/proc/self/fd/" + std::to_string(p[1]);
  constexpr uint64_t kRecords = 2000;  // 250 KiB each: more than the pipe holds
  pid_t kids[2];
  for (uint32_t who = 1; who <= 2; who++) {
    kids[who - 1] = writer_child(name, tf::trace_writer::mode::each, [&](tf::trace_writer *w) {
      close(p[0]);
      for (uint64_t i = 0; i < kRecords; i++) {
        const tf::trace_request r = stamped(who, i);
        w->append(&r, 1);
      }
      _exit(0);  // nothing waits in the process: nothing to flush
      return 1;
    });
  }
  close(p[1]);
  const std::string copy = dir / "t.trace";
  {
    std::ofstream out(copy, std::ios::binary);
    char buf[1 << 16];
    for (;;) {
      const ssize_t got = read(p[0], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      ASSERT_GE(got, 0);
      if (got == 0) break;
      out.write(buf, got);
    }
  }
  close(p[0]);
  for (pid_t k : kids) expect_exit_0(k);
  tf::trace_contents t;
  ASSERT_EQ(tf::read_trace_file(copy, t), "");
  EXPECT_EQ(t.trailing_bytes, 0u);
  EXPECT_EQ(t.unknown_records, 1u) << "each process begins with a header: the second is skipped";
  EXPECT_EQ(t.padding_records, 0u);
  EXPECT_EQ(t.processes.size(), 2u);
  EXPECT_EQ(count_stamped(t), (std::map<uint32_t, uint64_t>{{1, kRecords}, {2, kRecords}}));
}

}  // namespace
