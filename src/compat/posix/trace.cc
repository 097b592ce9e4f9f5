// SPDX-License-Identifier: MIT
#include "compat/posix/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "compat/posix/engine.h"

namespace aio2::posix {

trace_writer *trace_writer::open_from_env() {
  const char *file = std::getenv("AIO2_TRACE");
  if (file == nullptr || *file == '\0') return nullptr;
  // Appended to, never truncated: several processes (fio's jobs) may write
  // it at once; `aio2 run` truncates it before the program starts.
  const int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    message("AIO2_TRACE: the trace file cannot be opened; requests are not traced");
    return nullptr;
  }
  return new trace_writer(fd);
}

void trace_writer::add(const trace_line &l, const std::string &path) {
  char head[320];
  const int n = std::snprintf(
      head, sizeof head,
      "posix %d %s %d %" PRId64 " %" PRIu64 " %" PRId64 " %" PRIu64 " %" PRIu64 " %" PRIu64
      " %" PRIu64 " %s %s %" PRIu64 " ",
      static_cast<int>(getpid()), l.op, l.fd, l.offset, l.len, l.res, l.submitted_ns, l.started_ns,
      l.finished_ns, l.posted_ns, l.exec, l.cache, l.cached);
  std::lock_guard<std::mutex> lk(mu_);
  buf_.append(head, n > 0 ? static_cast<size_t>(n) : 0);
  if (path.empty()) buf_ += '-';
  for (const char c : path) {
    if (c == '\\') buf_ += "\\\\";
    else if (c == '\n') buf_ += "\\n";
    else buf_ += c;
  }
  buf_ += '\n';
  if (buf_.size() >= kFlushAt) flush_locked();
}

void trace_writer::flush() {
  std::lock_guard<std::mutex> lk(mu_);
  flush_locked();
}

void trace_writer::flush_locked() {
  if (buf_.empty()) return;
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t w = write(fd_, buf_.data() + done, buf_.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      message("AIO2_TRACE: writing the trace file failed; lines were lost");
      break;
    }
    done += static_cast<size_t>(w);
  }
  buf_.clear();
}

void trace_writer::after_fork() noexcept {
  buf_.clear();
  new (&mu_) std::mutex;  // the parent's prepare handler held it
}

}  // namespace aio2::posix
