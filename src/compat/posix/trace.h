// SPDX-License-Identifier: MIT
// AIO2_POSIX_TRACE=FILE: one text line per request, added to FILE. The format
// (docs/compat.md, "The trace format"):
//
//   posix PID OP FD OFFSET LEN RES SUBMITTED STARTED FINISHED POSTED EXEC CACHE CACHED PATH
//
// OP is read, write, fsync or fdatasync; RES the system call's result
// (bytes, or -errno); the four times are CLOCK_MONOTONIC nanoseconds from
// the timing attribute (0 when the call never started); EXEC the paths that
// ran it (inline, pool, inline+pool, or - when aio2 never ran it); CACHE
// hit, partial, miss or - (no cache result: a write, an O_DIRECT read...);
// CACHED the bytes found cached; PATH the file's name, with backslash and
// newline written as \\ and \n, last so that it may hold spaces.
//
// How lines reach the file: each process maps a chunk of 1 MiB at the
// file's end (reserved with fallocate under a lock on the file, so that
// several processes, fio's jobs, can share one file) and copies its lines
// into it. A line is in the page cache as soon as it is copied: nothing is
// buffered in the process, so a program that ends at once (fio's jobs
// _exit) loses none, and a line costs no system call. The unused end of a
// chunk stays NUL bytes, which readers skip. Where the file cannot be
// reserved (no fallocate) or mapped (a pipe, a terminal: AIO2_POSIX_TRACE=
// /dev/stderr works), each line is written with one write(2) instead.
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
  // open_from_env - the writer for $AIO2_POSIX_TRACE, or nullptr when it is unset
  // or empty, or cannot be opened (said once on stderr).
  static trace_writer *open_from_env();

  // add - the line, path last, into the file.
  void add(const trace_line &l, const std::string &path);

  // In a forked child: the parent's chunk is the parent's (a shared
  // mapping): the child takes chunks of its own.
  void after_fork() noexcept;
  void prepare_fork() noexcept { mu_.lock(); }
  void parent_after_fork() noexcept { mu_.unlock(); }

 private:
  explicit trace_writer(int fd);
  // Maps a new chunk at the file's end; false when that cannot be done
  // (the writer then writes each line).
  bool take_chunk_locked();

  static constexpr size_t kChunk = 1u << 20;
  int fd_;
  int pid_;  // this process's (set again in a forked child)
  std::mutex mu_;
  char *chunk_ = nullptr;  // guarded by mu_: the mapped chunk, or nullptr
  size_t used_ = 0;        // guarded by mu_: bytes of it written
  bool mapped_ = true;     // guarded by mu_: false once mapping failed
};

}  // namespace aio2::posix
