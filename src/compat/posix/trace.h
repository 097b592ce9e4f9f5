// SPDX-License-Identifier: MIT
// AIO2_TRACE=FILE: one text line per request, appended to FILE. The format
// (docs/compat.md, "The trace format"):
//
//   posix PID OP FD OFFSET LEN RES SUBMITTED STARTED FINISHED POSTED EXEC CACHE CACHED PATH
//
// OP is read, write, fsync or fdatasync; RES the system call's result
// (bytes, or -errno); the four times are CLOCK_MONOTONIC nanoseconds from
// the timing attribute (0 when the call never started); EXEC the paths that
// ran it (inline, uring, pool, inline+pool, or - when aio2 never ran it);
// CACHE hit, partial, miss or - (no cache result: a write, an O_DIRECT
// read...); CACHED the bytes found cached; PATH the file's name, with
// backslash and newline written as \\ and \n, last so that it may hold
// spaces. Lines of several processes (fio's jobs) may share the file: each
// line is whole, written with others in one write(2) to an O_APPEND file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace aio2::posix {

// What one trace line says.
struct trace_line {
  const char *op = "-";
  int fd = -1;
  int64_t offset = 0;
  uint64_t len = 0;
  int64_t res = 0;
  uint64_t submitted_ns = 0, started_ns = 0, finished_ns = 0, posted_ns = 0;
  const char *exec = "-";
  const char *cache = "-";
  uint64_t cached = 0;
};

struct trace_writer {
  // open_from_env - the writer for $AIO2_TRACE, or nullptr when it is unset
  // or empty, or cannot be opened (said once on stderr).
  static trace_writer *open_from_env();

  // add - format one line (path last) into the buffer; the buffer is
  // written out when it fills, and by flush at the end of each batch of
  // completions.
  void add(const trace_line &l, const std::string &path);
  // flush - write out what the buffer holds.
  void flush();

  // In a forked child: drop the parent's buffered lines (the parent writes
  // them) and keep the descriptor, which the child's engine reuses.
  void after_fork() noexcept;
  void prepare_fork() noexcept { mu_.lock(); }
  void parent_after_fork() noexcept { mu_.unlock(); }

 private:
  explicit trace_writer(int fd) : fd_(fd) { buf_.reserve(kFlushAt + 8192); }
  void flush_locked();

  static constexpr size_t kFlushAt = 60 * 1024;
  int fd_;
  std::mutex mu_;
  std::string buf_;  // guarded by mu_
};

}  // namespace aio2::posix
