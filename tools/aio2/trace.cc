// SPDX-License-Identifier: MIT
// `aio2 trace`: parses its arguments, prepares the file and the operations,
// runs them through a context with the timing, cache, executor and tag
// attributes on every request, and hands the events to trace_report.cc.

#include "trace.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <sstream>

#include "aio2/aio2.h"

namespace aio2_tool {

namespace {

const char kUsage[] =
    "usage: aio2 trace [OPTIONS]\n"
    "\n"
    "Runs a workload with the timing, cache, executor and tag attributes on every\n"
    "request and reports what the attributes say: the cache hit ratio, queueing,\n"
    "service and post-delay percentiles by execution path, the mix of paths, and\n"
    "each attribute's result statuses. Optionally writes every request as a\n"
    "slice in a Chrome trace (open it in https://ui.perfetto.dev).\n"
    "\n"
    "What to run (one of):\n"
    "  --workload NAME     a generated workload (default cold_then_warm_randread):\n"
    "@WORKLOADS@"
    "  --ops FILE          the operations in FILE, one a line, submitted in order:\n"
    "                        read OFFSET LEN | write OFFSET LEN | fsync | getppid\n"
    "                      '#' starts a comment; numbers take K, M, G suffixes\n"
    "\n"
    "The file:\n"
    "  --file PATH         run against PATH, an existing file opened read-only\n"
    "                      (workloads and ops files that write are refused)\n"
    "  --size BYTES        otherwise a temporary pattern file of BYTES in $TMPDIR or\n"
    "                      /tmp, removed at exit: 4K..64G, a multiple of 4K\n"
    "                      (default 64M)\n"
    "\n"
    "How:\n"
    "  --qd N              requests in flight, 1..4096 (default: the workload's;\n"
    "                      1 for --ops)\n"
    "  --count N           requests to run, 1..1000000 (default 20000)\n"
    "  --duration SECONDS  run for this long instead (at most 1000000 requests)\n"
    "  --policy POLICY     auto, uring, pool or inline: the context's policy\n"
    "                      (aio2_params.policy, default auto)\n"
    "  --seed N            random seed for the generated workloads (default 1)\n"
    "\n"
    "Output (the readable report always goes to standard output):\n"
    "  --chrome-trace FILE the Trace Event Format JSON: one slice per request with\n"
    "                      its queued and service phases\n"
    "  --json FILE         the report as JSON\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 when every request succeeded; 1 when a request failed or the\n"
    "run could not be done; 2 for bad arguments or input; 130 when interrupted\n"
    "(the report then covers what had been submitted). docs/trace.md says more.\n";

}  // namespace

std::string trace_usage() {
  // Each workload's name, then its summary wrapped to 79 columns.
  const std::string indent(26, ' ');
  std::string list;
  for (const auto &w : workloads()) {
    list += std::string(24, ' ') + w.name + "\n";
    std::string line = indent;
    std::istringstream words(w.summary);
    for (std::string word; words >> word;) {
      if (line.size() > indent.size() && line.size() + 1 + word.size() > 79) {
        list += line + "\n";
        line = indent;
      }
      line += (line.size() > indent.size() ? " " : "") + word;
    }
    list += line + "\n";
  }
  std::string text = kUsage;
  text.replace(text.find("@WORKLOADS@"), 11, list);
  return text;
}

namespace {

using trace::record;
using trace::run_info;

constexpr uint64_t kMinSize = kBlock, kMaxSize = 64ull << 30;
constexpr uint64_t kMaxRequests = 1000000;
constexpr unsigned kMaxQd = 4096;
// Bytes of one request: the fixed part, timing, cache, executor (no
// payload) and an 8-byte tag.
constexpr size_t kReqBytes = sizeof(aio2_iocb) + 3 * sizeof(aio2_attr) + sizeof(aio2_attr) + 8;
// Most requests in one aio2_submit.
constexpr unsigned kMaxBatch = 256;
// A run in which nothing completes for this long has hung.
constexpr time_t kStallSeconds = 60;

struct options {
  const workload *wl = nullptr;
  std::string ops_path, file_path, chrome_path, json_path;
  uint64_t size = 64ull << 20;
  bool size_set = false;
  unsigned qd = 0;  // 0: the default
  uint64_t count = 20000;
  bool count_set = false;
  double duration = 0;
  uint32_t policy = AIO2_POLICY_AUTO;
  std::string policy_name = "auto";
  uint64_t seed = 1;
};

[[noreturn]] void bad(const std::string &msg) { throw tool_error(msg); }

uint64_t parse_number(const std::string &opt, const std::string &v, uint64_t lo, uint64_t hi) {
  char *end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || errno || *end || n < lo || n > hi)
    bad(opt + " " + v + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) +
        ")");
  return n;
}

options parse_args(int argc, char **argv) {
  options o;
  std::string workload_name;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i], value;
    if (arg.rfind("--", 0) != 0) bad("unexpected argument '" + arg + "' (see 'aio2 trace --help')");
    const size_t eq = arg.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    auto take = [&]() -> const std::string & {
      if (!inline_value) {
        if (i + 1 >= argc) bad(arg + " needs a value");
        value = argv[++i];
      }
      return value;
    };
    auto take_path = [&](std::string &dst) {
      dst = take();
      if (dst.empty()) bad(arg + " needs a file name");
    };
    if (arg == "--workload") {
      workload_name = take();
      o.wl = find_workload(workload_name);
      if (!o.wl) bad("unknown workload '" + workload_name + "' (one of: " + workload_names() + ")");
    } else if (arg == "--ops") {
      take_path(o.ops_path);
    } else if (arg == "--file") {
      take_path(o.file_path);
    } else if (arg == "--size") {
      const std::string &v = take();
      if (!parse_size(v, o.size) || o.size < kMinSize || o.size > kMaxSize || o.size % kBlock)
        bad("--size " + v + " is out of range (4K..64G, a multiple of 4K)");
      o.size_set = true;
    } else if (arg == "--qd") {
      o.qd = static_cast<unsigned>(parse_number("--qd", take(), 1, kMaxQd));
    } else if (arg == "--count") {
      o.count = parse_number("--count", take(), 1, kMaxRequests);
      o.count_set = true;
    } else if (arg == "--duration") {
      const std::string &v = take();
      char *end = nullptr;
      errno = 0;
      o.duration = std::strtod(v.c_str(), &end);
      if (v.empty() || errno || *end || !(o.duration > 0) || o.duration > 86400)
        bad("--duration " + v + " is out of range (seconds, more than 0, at most 86400)");
    } else if (arg == "--policy") {
      static const char *const names[] = {"auto", "inline", "uring", "pool"};
      static_assert(AIO2_POLICY_AUTO == 0 && AIO2_POLICY_INLINE == 1 && AIO2_POLICY_URING == 2 &&
                    AIO2_POLICY_POOL == 3);
      const std::string &v = take();
      uint32_t p = 0;
      while (p < 4 && v != names[p]) p++;
      if (p == 4) bad("unknown policy '" + v + "' (auto, uring, pool or inline)");
      o.policy = p;
      o.policy_name = v;
    } else if (arg == "--seed") {
      o.seed = parse_number("--seed", take(), 0, UINT64_MAX);
    } else if (arg == "--chrome-trace") {
      take_path(o.chrome_path);
    } else if (arg == "--json") {
      take_path(o.json_path);
    } else {
      bad("unknown option '" + arg + "' (see 'aio2 trace --help')");
    }
  }
  if (o.wl && !o.ops_path.empty()) bad("--workload and --ops exclude each other");
  if (!o.wl && o.ops_path.empty()) o.wl = &workloads().front();
  if (o.count_set && o.duration > 0) bad("--count and --duration exclude each other");
  if (!o.ops_path.empty() && (o.count_set || o.duration > 0))
    bad("--count and --duration do not apply to --ops (the file is run once)");
  if (!o.file_path.empty() && o.size_set) bad("--size and --file exclude each other");
  if (o.wl && o.wl->syscalls_only && (!o.file_path.empty() || o.size_set))
    bad(std::string(o.wl->name) + " uses no file: drop --file and --size");
  if (o.wl && o.wl->write_pct && !o.file_path.empty())
    bad(std::string(o.wl->name) +
        " writes, so it runs on the temporary file only: drop --file (it is opened read-only)");
  if (!o.chrome_path.empty() && o.chrome_path == o.json_path)
    bad("--chrome-trace and --json name the same file");
  if (o.qd == 0) o.qd = o.wl ? o.wl->qd : 1;
  return o;
}

// ---------------------------------------------------------------------------
// Signals. SIGINT, SIGTERM or SIGHUP while the requests run stops
// submission: what was submitted is drained and reported. Before and after
// that they end the process at once (exit status 130), first removing the
// output files still being written (the temporary data file is unlinked
// from the start).

constexpr unsigned kCleanupSlots = 2;
char g_cleanup[kCleanupSlots][PATH_MAX];  // outputs being written; "" when free
volatile sig_atomic_t g_running = 0;       // the requests are running
volatile sig_atomic_t g_stop = 0;          // a signal asked them to stop

extern "C" void on_stop_signal(int) {
  if (g_running) {
    g_stop = 1;
    return;
  }
  for (const char *p : g_cleanup)
    if (p[0]) unlink(p);
  _exit(130);
}

// Runs fn with the stop signals blocked, so that the handler never sees a
// cleanup slot half written.
template <class Fn>
void with_signals_blocked(Fn fn) {
  sigset_t set, old;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, &old);
  fn();
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

class stop_signals {
 public:
  stop_signals() {
    g_stop = 0;
    g_running = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a wait in aio2_getevents returns -EINTR
    for (unsigned i = 0; i < 3; i++) sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~stop_signals() {
    for (unsigned i = 0; i < 3; i++) sigaction(kSignals[i], &old_[i], nullptr);
  }
  stop_signals(const stop_signals &) = delete;
  stop_signals &operator=(const stop_signals &) = delete;

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3] {};
};

// Marks the requests as running (a signal stops them rather than the
// process) while it lives.
struct running_scope {
  running_scope() { g_running = 1; }
  ~running_scope() { g_running = 0; }
  running_scope(const running_scope &) = delete;
  running_scope &operator=(const running_scope &) = delete;
};

// ---------------------------------------------------------------------------
// Output files: written beside their final name and renamed into place only
// when complete, so a failed or interrupted run leaves nothing behind.

class pending_output {
 public:
  explicit pending_output(const std::string &path) : path_(path), tmp_(path + ".XXXXXX") {
    if (tmp_.size() >= PATH_MAX) bad("cannot create " + path + ": the name is too long");
    int fd = -1;
    with_signals_blocked([&] {
      fd = mkostemp(tmp_.data(), O_CLOEXEC);
      if (fd < 0) return;
      for (slot_ = 0; slot_ < kCleanupSlots && g_cleanup[slot_][0]; slot_++) {
      }
      std::memcpy(g_cleanup[slot_], tmp_.c_str(), tmp_.size() + 1);
    });
    if (fd < 0) bad("cannot create " + path + ": " + std::strerror(errno));
    const mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    f_ = fdopen(fd, "w");
    if (!f_) {
      const int err = errno;
      close(fd);
      discard();
      throw tool_error("cannot write " + path + ": " + std::strerror(err), false);
    }
  }
  pending_output(const pending_output &) = delete;
  pending_output &operator=(const pending_output &) = delete;
  ~pending_output() {
    if (f_) {
      fclose(f_);
      discard();
    }
  }
  FILE *file() const { return f_; }
  const std::string &path() const { return path_; }
  void commit() {
    const bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
    const int err = errno;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || !closed || rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = ok && closed ? errno : err;
      discard();
      throw tool_error("writing " + path_ + ": " + std::strerror(e), false);
    }
    with_signals_blocked([&] { g_cleanup[slot_][0] = '\0'; });
  }

 private:
  // Removes the file being written and frees its cleanup slot.
  void discard() {
    with_signals_blocked([&] {
      unlink(tmp_.c_str());
      g_cleanup[slot_][0] = '\0';
    });
  }
  std::string path_, tmp_;
  unsigned slot_ = 0;
  FILE *f_ = nullptr;
};

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string aio2_error(const char *what, int64_t err) {
  return std::string(what) + ": " + aio2_strerror(static_cast<int>(err));
}

// Where operations come from: a generator or the ops file, bounded by a
// count or a duration, and by a stop signal.
class op_source {
 public:
  op_source(std::optional<op_generator> gen, std::vector<op> ops, double duration)
      : gen_(std::move(gen)), ops_(std::move(ops)), duration_ns_(duration * 1e9) {}
  void start() { start_ns_ = now_ns(); }
  bool next(op &out) {
    if (done_) return false;
    if (g_stop) return stop(true);
    if (duration_ns_ > 0 && static_cast<double>(now_ns() - start_ns_) >= duration_ns_)
      return stop(false);
    if (made_ == kMaxRequests) return stop(false);
    if (gen_) {
      if (!gen_->next(out)) return stop(false);
    } else {
      if (made_ == ops_.size()) return stop(false);
      out = ops_[made_];
    }
    made_++;
    return true;
  }
  bool interrupted() const { return interrupted_; }

 private:
  bool stop(bool interrupted) {
    done_ = true;
    interrupted_ = interrupted;
    return false;
  }
  std::optional<op_generator> gen_;
  std::vector<op> ops_;
  double duration_ns_;
  int64_t start_ns_ = 0;
  uint64_t made_ = 0;
  bool done_ = false, interrupted_ = false;
};

struct aligned_free {
  void operator()(unsigned char *p) const { std::free(p); }
};
using buffer = std::unique_ptr<unsigned char, aligned_free>;

struct ctx_holder {
  aio2_ctx *c = nullptr;
  ctx_holder() = default;
  ctx_holder(const ctx_holder &) = delete;
  ctx_holder &operator=(const ctx_holder &) = delete;
  ~ctx_holder() {
    if (c) aio2_destroy(c);
  }
};

// Runs the operations of `src` through `ctx`, `qd` at a time, and records
// every request and its event.
class runner {
 public:
  runner(aio2_ctx *ctx, unsigned qd, int fd, int read_fd, bool verify)
      : ctx_(ctx), ring_(aio2_ring_get(ctx)), qd_(qd), fd_(fd), read_fd_(read_fd),
        verify_(verify), slot_bufs_(qd), slot_caps_(qd, 0) {
    for (unsigned s = qd; s-- > 0;) free_slots_.push_back(s);
  }

  std::vector<record> run(op_source &src, run_info &info) {
    std::vector<uint64_t> batch(kMaxBatch * kReqBytes / 8);
    std::vector<uint64_t> events(65536 / 8);
    auto *evbuf = reinterpret_cast<unsigned char *>(events.data());
    const size_t evbytes = events.size() * 8;
    src.start();
    bool source_done = false;
    int64_t first_submit = 0, last_event = 0;
    for (;;) {
      // Top up to the queue depth.
      unsigned n = 0;
      while (inflight_ + n < qd_ && n < kMaxBatch) {
        const uint64_t idx = next_ + n;
        if (idx == recs_.size()) {
          op o;
          if (source_done || !src.next(o)) {
            source_done = true;
            break;
          }
          recs_.emplace_back();
          recs_.back().o = o;
          slot_of_.push_back(-1);
        }
        build(reinterpret_cast<unsigned char *>(batch.data()) + n * kReqBytes, idx);
        n++;
      }
      if (n) {
        const int64_t t = now_ns();
        if (!first_submit) first_submit = t;
        for (unsigned i = 0; i < n; i++) recs_[next_ + i].client_submit_ns = t;
        const ssize_t got = aio2_submit(ctx_, batch.data(), n * kReqBytes);
        if (got < 0 && got != -EAGAIN) throw tool_error(aio2_error("aio2_submit", got), false);
        const unsigned accepted = got < 0 ? 0 : static_cast<unsigned>(got / kReqBytes);
        for (unsigned i = accepted; i < n; i++) release(next_ + i);  // built again later
        next_ += accepted;
        inflight_ += accepted;
        if (inflight_ == 0) throw tool_error(aio2_error("aio2_submit", got), false);
      }
      if (inflight_ == 0) break;  // and source_done: nothing is left
      // Reap from the ring in user memory; wait in aio2_getevents when it is
      // empty or says aio2 needs the call.
      int64_t got = aio2_reap_events(ring_, evbuf, evbytes);
      if (got < 0 && got != -EAGAIN) throw tool_error(aio2_error("reaping the ring", got), false);
      if (got <= 0) {
        const timespec stall{kStallSeconds, 0};
        got = aio2_getevents(ctx_, 1, evbuf, evbytes, &stall);
        if (got == -EINTR) continue;
        if (got < 0) throw tool_error(aio2_error("aio2_getevents", got), false);
        if (got == 0)
          throw tool_error("no request completed in " + std::to_string(kStallSeconds) + " s; " +
                               std::to_string(inflight_) + " still outstanding",
                           false);
      }
      for (auto *ev = aio2_event_next(evbuf, static_cast<size_t>(got), nullptr); ev;
           ev = aio2_event_next(evbuf, static_cast<size_t>(got), ev))
        complete(*ev, info);
      last_event = now_ns();
    }
    info.elapsed_s = static_cast<double>(last_event - first_submit) / 1e9;
    info.interrupted = src.interrupted();
    return std::move(recs_);
  }

 private:
  unsigned char *slot_buffer(size_t slot, size_t len) {
    if (slot_caps_[slot] < len) {
      const size_t cap = (len + kBlock - 1) / kBlock * kBlock;
      slot_bufs_[slot].reset(static_cast<unsigned char *>(std::aligned_alloc(kBlock, cap)));
      if (!slot_bufs_[slot]) throw tool_error("out of memory for I/O buffers", false);
      slot_caps_[slot] = cap;
    }
    return slot_bufs_[slot].get();
  }

  void build(unsigned char *at, uint64_t idx) {
    record &r = recs_[idx];
    const int32_t slot = static_cast<int32_t>(free_slots_.back());
    free_slots_.pop_back();
    slot_of_[idx] = slot;
    auto *io = reinterpret_cast<aio2_iocb *>(at);
    const auto addr = [](const void *p) { return reinterpret_cast<uint64_t>(p); };
    switch (r.o.kind) {
      case op_kind::read:
        aio2_prep(io, SYS_pread64, idx, static_cast<uint64_t>(read_fd_),
                  addr(slot_buffer(static_cast<size_t>(slot), r.o.len)), r.o.len, r.o.offset, 0, 0);
        break;
      case op_kind::write: {
        unsigned char *buf = slot_buffer(static_cast<size_t>(slot), r.o.len);
        fill_pattern(buf, r.o.offset, r.o.len);
        aio2_prep(io, SYS_pwrite64, idx, static_cast<uint64_t>(fd_), addr(buf), r.o.len, r.o.offset,
                  0, 0);
        break;
      }
      case op_kind::fsync:
        aio2_prep(io, SYS_fsync, idx, static_cast<uint64_t>(fd_), 0, 0, 0, 0, 0);
        break;
      case op_kind::getppid:
        aio2_prep(io, SYS_getppid, idx, 0, 0, 0, 0, 0, 0);
        break;
      case op_kind::poll:
      case op_kind::other:  // a traced program's requests, never a workload's
        throw tool_error(std::string("no workload makes ") + op_kind_name(r.o.kind) + " requests",
                         false);
    }
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_TIMING, 0, nullptr, 0);
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_CACHE, 0, nullptr, 0);
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
    const uint64_t tag = idx;  // the request's index, for correlation
    aio2_attr_add(io, kReqBytes, AIO2_ATTR_TAG, 0, &tag, sizeof tag);
  }

  void release(uint64_t idx) {
    free_slots_.push_back(static_cast<uint32_t>(slot_of_[idx]));
    slot_of_[idx] = -1;
  }

  // Reads attribute `id`'s result into `out` (when OK); returns its status,
  // kStatusMissing when the event has none for it.
  template <class T>
  static uint8_t read_attr(const aio2_event &ev, uint16_t id, T *out) {
    uint16_t st = 0;
    const void *p = aio2_event_attr_payload(&ev, id, sizeof(T), &st);
    if (p) {
      std::memcpy(out, p, sizeof(T));
      return AIO2_ATTR_OK;
    }
    if (!aio2_event_find_attr(&ev, id)) return trace::kStatusMissing;
    // OK with a payload too short to hold T counts as ERROR.
    return st == AIO2_ATTR_OK ? static_cast<uint8_t>(AIO2_ATTR_ERROR)
                              : static_cast<uint8_t>(std::min<uint16_t>(st, 0xfe));
  }

  void complete(const aio2_event &ev, run_info &info) {
    const uint64_t idx = ev.user_data;
    if (idx >= next_ || slot_of_[idx] < 0 || recs_[idx].done) {
      info.stray_events++;
      return;
    }
    record &r = recs_[idx];
    r.done = true;
    r.res = ev.res;
    r.ev_flags = ev.flags;
    r.status[trace::kTiming] = read_attr(ev, AIO2_ATTR_TIMING, &r.timing);
    r.status[trace::kCache] = read_attr(ev, AIO2_ATTR_CACHE, &r.cache);
    r.status[trace::kExecutor] = read_attr(ev, AIO2_ATTR_EXECUTOR, &r.executor);
    uint64_t tag = ~idx;
    r.status[trace::kTag] = read_attr(ev, AIO2_ATTR_TAG, &tag);
    r.tag_ok = tag == idx;
    if (verify_ && r.o.kind == op_kind::read && r.res == static_cast<int64_t>(r.o.len))
      r.data_bad = !matches_pattern(slot_bufs_[static_cast<size_t>(slot_of_[idx])].get(),
                                    r.o.offset, r.o.len);
    release(idx);
    inflight_--;
  }

  aio2_ctx *ctx_;
  aio2_ring *ring_;
  unsigned qd_;
  int fd_, read_fd_;
  bool verify_;
  std::vector<record> recs_;
  std::vector<int32_t> slot_of_;  // per record: its buffer slot while in flight, else -1
  std::vector<buffer> slot_bufs_;
  std::vector<size_t> slot_caps_;
  std::vector<uint32_t> free_slots_;
  uint64_t next_ = 0;  // the first record not yet accepted by aio2_submit
  uint64_t inflight_ = 0;
};

int run(const options &o) {
  stop_signals signals;
  // Outputs first: a bad output path fails before any work.
  std::optional<pending_output> chrome, json;
  if (!o.chrome_path.empty()) chrome.emplace(o.chrome_path);
  if (!o.json_path.empty()) json.emplace(o.json_path);

  run_info info;
  info.qd = o.qd;
  info.seed = o.seed;
  info.policy = o.policy_name;

  // The file: --file, or a temporary one when anything needs it.
  std::optional<data_file> file;
  std::vector<op> ops;
  if (!o.file_path.empty()) file.emplace(data_file::open_existing(o.file_path));
  const uint64_t file_bytes = file ? file->bytes() : o.size;
  bool needs_file = o.wl && !o.wl->syscalls_only;
  if (!o.ops_path.empty()) {
    ops = read_ops_file(o.ops_path, file_bytes, !file);
    for (const op &x : ops) needs_file = needs_file || x.kind != op_kind::getppid;
    info.workload = "ops file " + o.ops_path + " (" + std::to_string(ops.size()) + " operations)";
  } else {
    info.workload = o.wl->name;
    if (file && file_bytes < kBlock)
      bad(o.file_path + " is too small: " + o.wl->name + " reads 4 KiB blocks");
  }
  if (needs_file && !file) file.emplace(data_file::make_temp("aio2-trace", o.size));
  int fd = -1, read_fd = -1;
  if (file) {
    info.file = file->path();
    info.file_bytes = file->bytes();
    info.temporary = file->temporary();
    fd = read_fd = file->fd();
    if (o.wl && o.wl->direct) {
      read_fd = file->direct_fd();
      info.direct = true;
    }
    if (o.wl && o.wl->warm_first) file->warm();
    if (o.wl && o.wl->cold_then_warm) file->evict();
  }

  std::optional<op_generator> gen;
  if (o.wl) gen.emplace(*o.wl, file_bytes, o.duration > 0 ? 0 : o.count, o.seed);
  op_source src(std::move(gen), std::move(ops), o.duration);

  std::vector<record> recs;
  {
    aio2_params p{};
    p.size = sizeof p;
    p.policy = o.policy;
    // Room for every event in flight (about 150 bytes each) in the ring.
    p.ring_bytes = 65536;
    while (p.ring_bytes < uint64_t{o.qd} * 256) p.ring_bytes *= 2;
    ctx_holder ctx;
    if (int err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx.c))
      throw tool_error(aio2_error("aio2_setup", err), false);
    info.features = p.features;
    info.uring_entries = p.uring_entries;
    runner r(ctx.c, o.qd, fd, read_fd, info.temporary);
    running_scope running;
    recs = r.run(src, info);
  }

  const trace::summary s = trace::summarize(recs);
  trace::print_report(stdout, info, s);
  std::fflush(stdout);
  if (json) {
    const std::string doc = trace::report_json(info, s);
    std::fwrite(doc.data(), 1, doc.size(), json->file());
    json->commit();
  }
  if (chrome) {
    trace::write_chrome_trace(chrome->file(), info, recs);
    chrome->commit();
    std::printf("\nchrome trace written to %s: open it in https://ui.perfetto.dev\n",
                o.chrome_path.c_str());
  }
  if (json) std::printf("JSON report written to %s\n", o.json_path.c_str());
  if (info.interrupted) return 130;
  if (s.errors || info.stray_events) {
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 trace: %" PRIu64 " of %" PRIu64 " requests failed (see the report)\n",
                 s.errors + info.stray_events, s.requests);
    return 1;
  }
  return 0;
}

}  // namespace

int trace_main(int argc, char **argv) {
  try {
    for (int i = 1; i < argc; i++)
      if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
        std::fputs(trace_usage().c_str(), stdout);
        return 0;
      }
    return run(parse_args(argc, argv));
  } catch (const tool_error &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 trace: %s\n", e.what());
    return e.bad_input() ? 2 : 1;
  } catch (const std::exception &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 trace: %s\n", e.what());
    return 1;
  }
}

}  // namespace aio2_tool
