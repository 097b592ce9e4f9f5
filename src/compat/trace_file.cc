// SPDX-License-Identifier: MIT
#include "compat/trace_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include "aio2/aio2.h"

namespace aio2_compat {

namespace {

constexpr size_t kBatchRecords = 512;  // 64 KiB a write

trace_writer *g_writer = nullptr;  // set once, under g_env_mu; never freed
std::mutex g_env_mu;
bool g_env_read = false;

uint64_t clock_ns(clockid_t id) noexcept {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// write(2) of all `n` bytes; 0 or an errno.
int write_all(int fd, const unsigned char *p, size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// Checks, under an exclusive flock, that the file is empty (then writes the
// header) or starts with a header of this version (`fd` is open for reading
// and appending). "" or why not.
std::string claim(int fd) {
  while (flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) return std::string("cannot lock it: ") + std::strerror(errno);
  std::string why;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    why = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (st.st_size == 0) {
    trace_header h{};
    h.kind = kTraceMagic;
    h.version = kTraceVersion;
    h.record_size = kTraceRecordSize;
    std::memcpy(h.text, "aio2 trace file\n", 16);
    if (const int err = write_all(fd, reinterpret_cast<const unsigned char *>(&h), sizeof h))
      why = std::string("cannot write its header: ") + std::strerror(err);
  } else {
    trace_header h{};
    const ssize_t got = pread(fd, &h, sizeof h, 0);
    if (got != static_cast<ssize_t>(sizeof h) || h.kind != kTraceMagic)
      why = "it exists and is not an aio2 trace file (remove it or name another)";
    else if (h.version != kTraceVersion || h.record_size != kTraceRecordSize)
      why = "it is an aio2 trace file of version " + std::to_string(h.version) +
            " (this library writes version " + std::to_string(kTraceVersion) + ")";
  }
  flock(fd, LOCK_UN);
  return why;
}

}  // namespace

uint64_t trace_now_ns() noexcept { return clock_ns(CLOCK_MONOTONIC); }

void fill_results(trace_request &rec, const aio2_event &ev) noexcept {
  rec.res = ev.res;
  if (ev.flags & AIO2_EVENT_CANCELED) rec.flags |= kReqCanceled;
  const auto take = [&](unsigned slot, uint16_t id, void *dst, size_t size) {
    uint16_t st = 0;
    if (const void *p = aio2_event_attr_payload(&ev, id, size, &st)) {
      std::memcpy(dst, p, size);
      rec.status[slot] = AIO2_ATTR_OK;
    } else if (!aio2_event_find_attr(&ev, id)) {
      rec.status[slot] = kStatusMissing;
    } else {
      // OK with a payload too short counts as ERROR.
      rec.status[slot] = st == AIO2_ATTR_OK ? static_cast<uint8_t>(AIO2_ATTR_ERROR)
                                            : static_cast<uint8_t>(st < 0xfe ? st : 0xfe);
    }
  };
  take(kAttrTiming, AIO2_ATTR_TIMING, &rec.timing, sizeof rec.timing);
  aio2_attr_cache c{};
  take(kAttrCache, AIO2_ATTR_CACHE, &c, sizeof c);
  if (rec.status[kAttrCache] == AIO2_ATTR_OK) {
    rec.cache_outcome = c.outcome;
    rec.cache_method = c.method;
    rec.bytes_cached = c.bytes_cached;
    rec.bytes_requested = c.bytes_requested;
  }
  take(kAttrExecutor, AIO2_ATTR_EXECUTOR, &rec.executor, sizeof rec.executor);
}

// ---------------------------------------------------------------------------
// The writer

trace_writer::trace_writer(int fd, std::string path, std::string who, uint32_t source) noexcept
    : fd_(fd), path_(std::move(path)), who_(std::move(who)), source_(source), pid_(getpid()) {}

trace_writer *trace_writer::from_env(const char *who, uint32_t source) noexcept {
  std::lock_guard lk(g_env_mu);
  if (g_env_read) return g_writer;
  g_env_read = true;
  const char *path = std::getenv("AIO2_TRACE");
  if (path == nullptr || *path == '\0') return nullptr;
  const int fd = ::open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: cannot open it: %s; not tracing\n", who, path,
                 std::strerror(errno));
    return nullptr;
  }
  struct stat st {};
  std::string why;
  if (fstat(fd, &st) != 0) why = std::string("cannot stat it: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "not a regular file";
  else why = claim(fd);
  if (!why.empty()) {
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: %s; not tracing\n", who, path, why.c_str());
    ::close(fd);
    return nullptr;
  }
  trace_writer *w = nullptr;
  try {
    w = new trace_writer(fd, path, who, source);
    w->buf_.resize(kBatchRecords * kTraceRecordSize);
  } catch (...) {
    delete w;
    ::close(fd);
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: out of memory; not tracing\n", who, path);
    return nullptr;
  }
  g_writer = w;
  pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
  std::atexit(at_exit);
  return w;
}

void trace_writer::process_record_locked() noexcept {
  process_written_ = true;
  trace_process p{};
  p.kind = kTraceProcess;
  p.pid = static_cast<uint32_t>(pid_);
  p.ppid = static_cast<uint32_t>(getppid());
  p.source = source_;
  p.monotonic_ns = clock_ns(CLOCK_MONOTONIC);
  p.realtime_ns = clock_ns(CLOCK_REALTIME);
  if (FILE *f = std::fopen("/proc/self/comm", "re")) {
    if (std::fgets(p.comm, sizeof p.comm, f)) p.comm[std::strcspn(p.comm, "\n")] = '\0';
    std::fclose(f);
  }
  add_locked(&p);
}

void trace_writer::add_locked(const void *rec) noexcept {
  if (failed_) {
    lost_++;
    return;
  }
  if (!process_written_) process_record_locked();
  if (used_ == 0) oldest_ns_ = trace_now_ns();
  std::memcpy(buf_.data() + used_, rec, kTraceRecordSize);
  used_ += kTraceRecordSize;
  if (used_ == buf_.size()) write_locked();
}

void trace_writer::write_locked() noexcept {
  if (used_ == 0 || failed_) return;
  if (const int err = write_all(fd_, buf_.data(), used_)) {
    failed_ = true;
    lost_ += used_ / kTraceRecordSize;
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: writing records: %s; tracing stops\n", who_.c_str(),
                 path_.c_str(), std::strerror(err));
  }
  used_ = 0;
}

uint32_t trace_writer::context_opened(const aio2_params &p, uint32_t max_events) noexcept {
  std::lock_guard lk(mu_);
  trace_context c{};
  c.kind = kTraceContext;
  c.pid = static_cast<uint32_t>(pid_);
  c.ctx = next_ctx_++;
  c.source = source_;
  c.max_events = max_events;
  c.uring_entries = p.uring_entries;
  c.features = p.features;
  c.ring_bytes = p.ring_bytes;
  c.opened_ns = trace_now_ns();
  add_locked(&c);
  return c.ctx;
}

void trace_writer::append(const trace_request *recs, size_t n) noexcept {
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < n; i++) {
    trace_request r = recs[i];
    r.kind = kTraceRequest;
    r.pid = static_cast<uint32_t>(pid_);
    r.source = static_cast<uint8_t>(source_);
    add_locked(&r);
  }
}

void trace_writer::context_closed(const trace_context_end &end) noexcept {
  std::lock_guard lk(mu_);
  trace_context_end e = end;
  e.kind = kTraceContextEnd;
  e.pid = static_cast<uint32_t>(pid_);
  e.source = source_;
  add_locked(&e);
}

void trace_writer::flush() noexcept {
  std::lock_guard lk(mu_);
  write_locked();
}

void trace_writer::flush_if_older(uint64_t ns) noexcept {
  std::lock_guard lk(mu_);
  if (used_ && trace_now_ns() - oldest_ns_ > ns) write_locked();
}

uint64_t trace_writer::lost() const noexcept {
  std::lock_guard lk(mu_);
  return lost_;
}

// fork(): the buffer is the parent's to write; the child starts empty, under
// its own pid, with its own process record.
void trace_writer::at_fork_prepare() noexcept {
  if (g_writer) g_writer->mu_.lock();
}

void trace_writer::at_fork_parent() noexcept {
  if (g_writer) g_writer->mu_.unlock();
}

void trace_writer::at_fork_child() noexcept {
  if (!g_writer) return;
  g_writer->used_ = 0;
  g_writer->pid_ = getpid();
  g_writer->process_written_ = false;
  g_writer->next_ctx_ = 1;
  g_writer->mu_.unlock();
}

void trace_writer::at_exit() noexcept {
  if (g_writer) g_writer->flush();
}

// ---------------------------------------------------------------------------
// The reader

std::string read_trace_file(const std::string &path, trace_contents &out) {
  out = trace_contents{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  std::vector<unsigned char> data;
  unsigned char chunk[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return "cannot read " + path + ": " + std::strerror(err);
    }
    if (got == 0) break;
    data.insert(data.end(), chunk, chunk + got);
  }
  ::close(fd);
  if (data.empty()) return "";
  trace_header h{};
  if (data.size() < sizeof h) return path + " is not an aio2 trace file (too short for its header)";
  std::memcpy(&h, data.data(), sizeof h);
  if (h.kind != kTraceMagic) return path + " is not an aio2 trace file (no A2TR header)";
  if (h.version != kTraceVersion)
    return path + " is an aio2 trace file of version " + std::to_string(h.version) +
           " (this reader knows version " + std::to_string(kTraceVersion) + ")";
  if (h.record_size != kTraceRecordSize)
    return path + ": record size " + std::to_string(h.record_size) + " (expected " +
           std::to_string(kTraceRecordSize) + ")";
  const size_t n = data.size() / kTraceRecordSize;
  out.trailing_bytes = data.size() % kTraceRecordSize;
  for (size_t i = 1; i < n; i++) {
    const unsigned char *p = data.data() + i * kTraceRecordSize;
    uint32_t kind;
    std::memcpy(&kind, p, sizeof kind);
    switch (kind) {
      case kTraceRequest:
        out.requests.emplace_back();
        std::memcpy(&out.requests.back(), p, kTraceRecordSize);
        break;
      case kTraceProcess:
        out.processes.emplace_back();
        std::memcpy(&out.processes.back(), p, kTraceRecordSize);
        break;
      case kTraceContext:
        out.contexts.emplace_back();
        std::memcpy(&out.contexts.back(), p, kTraceRecordSize);
        break;
      case kTraceContextEnd:
        out.ends.emplace_back();
        std::memcpy(&out.ends.back(), p, kTraceRecordSize);
        break;
      default:
        out.unknown_records++;  // includes a second header: harmless
        break;
    }
  }
  return "";
}

}  // namespace aio2_compat
