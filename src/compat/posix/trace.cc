// SPDX-License-Identifier: MIT
#include "compat/posix/trace.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "compat/posix/engine.h"

namespace aio2::posix {

namespace {

// The longest line: the fields (14, at most 20 characters and a space
// each), and a file name of PATH_MAX escaped, and the newline.
constexpr size_t kMaxLine = 14 * 21 + 2 * 4096 + 2;

}  // namespace

trace_writer *trace_writer::open_from_env() {
  const char *file = std::getenv("AIO2_POSIX_TRACE");
  if (file == nullptr || *file == '\0') return nullptr;
  // Never truncated here: several processes (fio's jobs) may write it at
  // once; `aio2 run` truncates it before the program starts.
  int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  // A file that can only be written (a pipe, a terminal) gets each line
  // written.
  if (fd < 0) fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    message("AIO2_POSIX_TRACE: the trace file cannot be opened; requests are not traced");
    return nullptr;
  }
  return new trace_writer(fd);
}

trace_writer::trace_writer(int fd) : fd_(fd), pid_(static_cast<int>(getpid())) {}

bool trace_writer::take_chunk_locked() {
  if (chunk_ != nullptr) munmap(chunk_, kChunk);
  chunk_ = nullptr;
  used_ = 0;
  // The file is locked while its end moves, against the other processes
  // that write it (a process lock: it also holds between a parent and a
  // child that share this descriptor).
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  while (fcntl(fd_, F_SETLKW, &lock) != 0)
    if (errno != EINTR) return false;
  struct stat st {};
  bool ok = fstat(fd_, &st) == 0;
  const long page = sysconf(_SC_PAGESIZE);
  const off_t at = ok ? (st.st_size + page - 1) / page * page : 0;
  // Blocks reserved, so that writing the mapping cannot fail for want of
  // space (which would be SIGBUS).
  ok = ok && fallocate(fd_, 0, at, static_cast<off_t>(kChunk)) == 0;
  void *p = ok ? mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, at) : MAP_FAILED;
  lock.l_type = F_UNLCK;
  fcntl(fd_, F_SETLK, &lock);
  if (p == MAP_FAILED) return false;
  chunk_ = static_cast<char *>(p);
  return true;
}

void trace_writer::add(const trace_line &l, const std::string &path) {
  char line[kMaxLine];
  char *p = line;
  const auto word = [&](const char *w) {
    const size_t n = std::strlen(w);
    std::memcpy(p, w, n);
    p += n;
    *p++ = ' ';
  };
  const auto number = [&](auto v) {
    char digits[24];
    const size_t n = static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, v).ptr - digits);
    std::memcpy(p, digits, n);
    p += n;
    *p++ = ' ';
  };
  word("posix");
  number(pid_);
  word(l.op);
  number(l.fd);
  number(l.offset);
  number(l.len);
  number(l.res);
  number(l.submitted_ns);
  number(l.started_ns);
  number(l.finished_ns);
  number(l.posted_ns);
  word(l.exec);
  word(l.cache);
  number(l.cached);
  if (path.empty()) *p++ = '-';
  for (size_t i = 0; i < path.size() && i < 4096; i++) {
    const char c = path[i];
    if (c == '\\' || c == '\n') *p++ = '\\';
    *p++ = c == '\n' ? 'n' : c;
  }
  *p++ = '\n';
  const size_t len = static_cast<size_t>(p - line);
  std::lock_guard<std::mutex> lk(mu_);
  if (mapped_ && (chunk_ == nullptr || used_ + len > kChunk)) mapped_ = take_chunk_locked();
  if (mapped_) {
    std::memcpy(chunk_ + used_, line, len);
    used_ += len;
    return;
  }
  // No mapping: the line goes at the end of the file, whole, in one write
  // (a pipe or a terminal: where it is). Not a cancellation point here:
  // callers are in the middle of a completion.
  int state = 0;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
  struct restore {
    int state;
    ~restore() { pthread_setcancelstate(state, &state); }
  } restore_on_return{state};
  for (;;) {
    const off_t end = lseek(fd_, 0, SEEK_END);
    const ssize_t w = end < 0 ? write(fd_, line, len) : pwrite(fd_, line, len, end);
    if (w == static_cast<ssize_t>(len)) return;
    if (w < 0 && errno == EINTR) continue;
    message("AIO2_POSIX_TRACE: writing the trace file failed; a line was lost");
    return;
  }
}

void trace_writer::after_fork() noexcept {
  pid_ = getpid();
  // The chunk stays mapped in the child, unused (the parent goes on
  // writing it); the child's first line takes a chunk of its own.
  chunk_ = nullptr;
  used_ = 0;
  new (&mu_) std::mutex;  // the parent's prepare handler held it
}

}  // namespace aio2::posix
