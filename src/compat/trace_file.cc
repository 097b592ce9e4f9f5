// SPDX-License-Identifier: MIT
#include "compat/trace_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

// The lock on the whole file that every writer holds while it moves the
// file's end (reserves a chunk, appends a batch, writes the header). An
// open-file-description lock: it excludes the two replacements' writers in
// one process too (each opens the file itself), and a forked child opens
// the file again to have its own. F_SETLKW is a cancellation point: the
// callers hold a mutex, so cancellation is off meanwhile.
class file_lock {
 public:
  explicit file_lock(int fd) noexcept : fd_(fd) {
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state_);
    struct flock l {};
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    while ((err_ = fcntl(fd_, F_OFD_SETLKW, &l) == 0 ? 0 : errno) == EINTR) {
    }
  }
  ~file_lock() {
    if (err_ == 0) {
      struct flock l {};
      l.l_type = F_UNLCK;
      l.l_whence = SEEK_SET;
      fcntl(fd_, F_OFD_SETLK, &l);
    }
    pthread_setcancelstate(cancel_state_, &cancel_state_);
  }
  file_lock(const file_lock &) = delete;
  file_lock &operator=(const file_lock &) = delete;
  // 0, or why the lock could not be taken.
  int error() const noexcept { return err_; }

 private:
  int fd_;
  int err_ = 0;
  int cancel_state_ = 0;
};

trace_header make_header() noexcept {
  trace_header h{};
  h.kind = kTraceMagic;
  h.version = kTraceVersion;
  h.record_size = kTraceRecordSize;
  std::memcpy(h.text, "aio2 trace file\n", 16);
  return h;
}

// Checks, under the file lock, that the regular file is empty (then writes
// the header) or starts with a header of this version (`fd` is open for
// reading and appending). "" or why not.
std::string claim(int fd) {
  const file_lock lock(fd);
  if (lock.error()) return std::string("cannot lock it: ") + std::strerror(lock.error());
  std::string why;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    why = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (st.st_size == 0) {
    const trace_header h = make_header();
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

trace_writer::trace_writer(int fd, std::string path, std::string who, uint32_t source,
                           mode how) noexcept
    : fd_(fd), path_(std::move(path)), who_(std::move(who)), source_(source), pid_(getpid()),
      how_(how) {}

trace_writer *trace_writer::from_env(const char *who, uint32_t source) noexcept {
  std::lock_guard lk(g_env_mu);
  if (g_env_read) return g_writer;
  g_env_read = true;
  const char *path = std::getenv("AIO2_TRACE");
  if (path == nullptr || *path == '\0') return nullptr;
  int fd = ::open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  // What can only be written (a pipe's write end named by /dev/stderr, a
  // terminal) is written record by record.
  if (fd < 0 && (errno == EACCES || errno == EINVAL))
    fd = ::open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: cannot open it: %s; not tracing\n", who, path,
                 std::strerror(errno));
    return nullptr;
  }
  struct stat st {};
  std::string why;
  mode how = mode::mapped;
  if (fstat(fd, &st) != 0) {
    why = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (S_ISREG(st.st_mode)) {
    why = claim(fd);
  } else if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    why = "it is neither a regular file, nor a pipe or a terminal";  // a disk is not written
  } else {
    // Each process that writes a stream begins with a header of its own:
    // a reader takes the first, and skips the others as unknown records.
    how = mode::each;
    const trace_header h = make_header();
    if (const int err = write_all(fd, reinterpret_cast<const unsigned char *>(&h), sizeof h))
      why = std::string("cannot write its header: ") + std::strerror(err);
  }
  if (!why.empty()) {
    std::fprintf(stderr, "%s: AIO2_TRACE=%s: %s; not tracing\n", who, path, why.c_str());
    ::close(fd);
    return nullptr;
  }
  trace_writer *w = nullptr;
  try {
    w = new trace_writer(fd, path, who, source, how);
    w->buf_.resize((how == mode::each ? 1 : kBatchRecords) * kTraceRecordSize);
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

bool trace_writer::take_chunk_locked() noexcept {
  if (chunk_ != nullptr) munmap(chunk_, kChunk);
  chunk_ = nullptr;
  chunk_used_ = 0;
  const file_lock lock(fd_);
  if (lock.error()) return false;
  struct stat st {};
  if (fstat(fd_, &st) != 0) return false;
  // Chunks start on a page boundary (mmap's offsets must); the bytes
  // between the end and the boundary stay zero, padding.
  const auto page = static_cast<off_t>(sysconf(_SC_PAGESIZE));
  const off_t at = (st.st_size + page - 1) / page * page;
  // The blocks are allocated now, so that storing into the mapping cannot
  // fail for want of space (which would be SIGBUS); the file grows to the
  // chunk's end, so that the next writer reserves after it.
  if (fallocate(fd_, 0, at, static_cast<off_t>(kChunk)) != 0) return false;
  void *p = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, at);
  if (p == MAP_FAILED) return false;
  chunk_ = static_cast<unsigned char *>(p);
  return true;
}

void trace_writer::add_locked(const void *rec) noexcept {
  if (failed_) {
    lost_++;
    return;
  }
  if (!process_written_) process_record_locked();
  if (how_ == mode::mapped && (chunk_ == nullptr || chunk_used_ == kChunk) && !take_chunk_locked())
    how_ = mode::batched;  // this file cannot be mapped: whole batches instead
  if (how_ == mode::mapped) {
    // The kind last: a process killed while it copies leaves padding, not
    // a record with part of its fields.
    unsigned char *dst = chunk_ + chunk_used_;
    std::memcpy(dst + sizeof(uint32_t), static_cast<const unsigned char *>(rec) + sizeof(uint32_t),
                kTraceRecordSize - sizeof(uint32_t));
    uint32_t kind;
    std::memcpy(&kind, rec, sizeof kind);
    // Publishes the record's other fields (stored above) before its kind,
    // in this thread's order, so that no reader ever finds a kind with
    // the fields unwritten. Readers are other processes reading the file
    // (read(2) of the same page-cache page, usually after this one ended):
    // there is no acquire to pair with, the release keeps the compiler and
    // the processor from storing the kind first. The writer's mutex orders
    // the threads of this process.
    __atomic_store_n(reinterpret_cast<uint32_t *>(dst), kind, __ATOMIC_RELEASE);
    chunk_used_ += kTraceRecordSize;
    return;
  }
  if (used_ == 0) oldest_ns_ = trace_now_ns();
  std::memcpy(buf_.data() + used_, rec, kTraceRecordSize);
  used_ += kTraceRecordSize;
  if (used_ == buf_.size()) write_locked();
}

void trace_writer::fail_locked(const char *what, int err) noexcept {
  failed_ = true;
  lost_ += used_ / kTraceRecordSize;
  used_ = 0;
  std::fprintf(stderr, "%s: AIO2_TRACE=%s: %s: %s; tracing stops\n", who_.c_str(), path_.c_str(),
               what, std::strerror(err));
}

void trace_writer::write_locked() noexcept {
  if (used_ == 0 || failed_) return;
  if (how_ == mode::each) {
    // One record, one write: a pipe keeps writes of up to PIPE_BUF whole.
    // write(2) is a cancellation point: off, as under the file lock.
    int state = 0;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    const int err = write_all(fd_, buf_.data(), used_);
    pthread_setcancelstate(state, &state);
    if (err) return fail_locked("writing records", err);
    used_ = 0;
    return;
  }
  // Batched: at the file's end (O_APPEND), under the file lock, so that no
  // other writer reserves a chunk over the batch meanwhile.
  const file_lock lock(fd_);
  if (lock.error()) return fail_locked("locking it", lock.error());
  if (const int err = write_all(fd_, buf_.data(), used_)) return fail_locked("writing records", err);
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

trace_writer::mode trace_writer::how() const noexcept {
  std::lock_guard lk(mu_);
  return how_;
}

uint64_t trace_writer::lost() const noexcept {
  std::lock_guard lk(mu_);
  return lost_;
}

// fork(): the buffer and the chunk are the parent's to write; the child
// starts empty, under its own pid, with its own process record. A mapped
// writer's child opens the file again (/proc/self/fd: the same file, even
// if it was renamed), for a lock of its own: the lock belongs to the open
// file description, which the child shares with the parent.
void trace_writer::at_fork_prepare() noexcept {
  if (g_writer) g_writer->mu_.lock();
}

void trace_writer::at_fork_parent() noexcept {
  if (g_writer) g_writer->mu_.unlock();
}

void trace_writer::at_fork_child() noexcept {
  if (!g_writer) return;
  trace_writer *w = g_writer;
  w->used_ = 0;
  if (w->chunk_ != nullptr) munmap(w->chunk_, kChunk);
  w->chunk_ = nullptr;
  w->chunk_used_ = 0;
  if (w->how_ != mode::each) {
    char self[64];
    std::snprintf(self, sizeof self, "/proc/self/fd/%d", w->fd_);
    int fd = ::open(self, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0) fd = ::open(w->path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      ::close(w->fd_);
      w->fd_ = fd;
    } else {
      // Sharing the parent's lock would let the two reserve the same
      // bytes: this process does not trace.
      // (write(2), not stdio: another thread of the parent may have held
      // stderr's lock at fork.)
      w->failed_ = true;
      char line[512];
      const int n = std::snprintf(line, sizeof line,
                                  "%s: AIO2_TRACE=%s: cannot open it again after fork: %s; not "
                                  "tracing in this process\n",
                                  w->who_.c_str(), w->path_.c_str(), std::strerror(errno));
      if (n > 0) {
        const ssize_t wr = ::write(STDERR_FILENO, line, std::min(sizeof line - 1, static_cast<size_t>(n)));
        (void)wr;
      }
    }
  }
  w->pid_ = getpid();
  w->process_written_ = false;
  w->next_ctx_ = 1;
  w->mu_.unlock();
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
      case kTracePadding:
        out.padding_records++;
        break;
      default:
        out.unknown_records++;  // includes a second header: harmless
        break;
    }
  }
  return "";
}

}  // namespace aio2_compat
