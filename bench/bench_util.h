// SPDX-License-Identifier: MIT
// Helpers the benchmarks (attr_bench, and `aio2 bench`, which pool_bench
// runs) share: failure messages, usage and argument parsing, the monotonic
// clock, 4 KiB aligned buffers, process CPU time, medians, the temporary
// pattern file, page-cache residency, file system names, and the names of
// aio2's attributes and their statuses.
//
// main sets g_prog (and g_usage) first: every message starts with the
// program's name.
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "aio2/abi.h"

namespace bench_util {

// The program's name, first in every message, and the usage lines usage()
// prints after its message.
inline const char *g_prog = "bench";
inline const char *g_usage = "";

// ---------------------------------------------------------------------------
// Failures

// Prints g_prog + ": " + `what` + the message on stderr, then exits 1.
[[noreturn]] inline void vfail(const char *what, const char *fmt, va_list ap) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s", g_prog, what);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  std::exit(1);
}

// A setup failure: one line, exit 1.
__attribute__((format(printf, 1, 2))) [[noreturn]] inline void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail("", fmt, ap);
}

// A verification failure: what failed, exit 1.
__attribute__((format(printf, 1, 2))) [[noreturn]] inline void verify_failed(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail("VERIFICATION FAILED: ", fmt, ap);
}

// ---------------------------------------------------------------------------
// Arguments

// A bad argument: g_prog + ": " + `msg`, then g_usage, on stderr; exit 2.
[[noreturn]] inline void usage(const std::string &msg) {
  std::fprintf(stderr, "%s: %s\n%s", g_prog, msg.c_str(), g_usage);
  std::exit(2);
}

// Seconds in [lo, 3600].
inline double parse_seconds(const char *opt, const char *v, double lo) {
  char *end = nullptr;
  errno = 0;
  const double d = std::strtod(v, &end);
  if (errno || end == v || *end || !(d >= lo) || d > 3600) {
    char range[64];
    std::snprintf(range, sizeof range, " (seconds, from %g to 3600)", lo);
    usage(std::string("bad value for ") + opt + ": " + v + range);
  }
  return d;
}

// A decimal number in [lo, hi].
inline unsigned parse_uint(const char *opt, const char *v, unsigned lo, unsigned hi) {
  char *end = nullptr;
  errno = 0;
  const unsigned long u = std::strtoul(v, &end, 10);
  if (errno || end == v || *end || u < lo || u > hi || v[0] == '-')
    usage(std::string("bad value for ") + opt + ": " + v + " (from " + std::to_string(lo) +
          " to " + std::to_string(hi) + ")");
  return static_cast<unsigned>(u);
}

// ---------------------------------------------------------------------------
// Small helpers

constexpr size_t kBlock = 4096;

struct alignas(kBlock) block_buf {
  unsigned char b[kBlock];
};

inline int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline timespec to_timespec(int64_t ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

// User plus system CPU time of `ru`, in microseconds.
inline double cpu_us(const rusage &ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---------------------------------------------------------------------------
// aio2's built-in attributes

struct attr_entry {
  uint16_t id;
  const char *name;
};
// In abi.h's order.
inline constexpr attr_entry kBuiltinAttrs[] = {
    {AIO2_ATTR_TIMING, "timing"},     {AIO2_ATTR_TAG, "tag"},     {AIO2_ATTR_DEADLINE, "deadline"},
    {AIO2_ATTR_EXECUTOR, "executor"}, {AIO2_ATTR_CACHE, "cache"}, {AIO2_ATTR_IOPRIO, "ioprio"},
    {AIO2_ATTR_RUSAGE, "rusage"},
};

// A built-in attribute's name, "?" for any other id.
inline const char *attr_name(uint16_t id) {
  for (const attr_entry &a : kBuiltinAttrs)
    if (a.id == id) return a.name;
  return "?";
}

// An attribute result status's name (AIO2_ATTR_OK..AIO2_ATTR_ERROR), "OTHER"
// for any other value.
inline const char *attr_status_name(unsigned s) {
  switch (s) {
    case AIO2_ATTR_OK: return "OK";
    case AIO2_ATTR_UNSUPPORTED: return "UNSUPPORTED";
    case AIO2_ATTR_NOT_APPLICABLE: return "NOT_APPLICABLE";
    case AIO2_ATTR_UNAVAILABLE: return "UNAVAILABLE";
    case AIO2_ATTR_ERROR: return "ERROR";
    default: return "OTHER";
  }
}

// ---------------------------------------------------------------------------
// The pattern file
//
// Every kBlock block of a pattern file starts with pattern(block index), 8
// bytes, and the rest of the block holds the block index's low byte.

// Writes block `blk` of a pattern file into `b` (kBlock bytes).
inline void fill_pattern_block(unsigned char *b, uint64_t blk, uint64_t (*pattern)(uint64_t)) {
  const uint64_t pat = pattern(blk);
  std::memcpy(b, &pat, sizeof pat);
  std::memset(b + sizeof pat, static_cast<int>(blk & 0xff), kBlock - sizeof pat);
}

// Creates an empty file in `dir` named `stem`.XXXXXX and returns its
// descriptor (read-write). When `reopen_flags` is not -1 the file is opened
// a second time by its name with those flags before the name goes: the
// descriptor lands in *reopened, or -1 with the errno in *reopen_errno. The
// name is unlinked before this returns, so nothing is left behind whatever
// happens next.
inline int create_temp_file(const std::string &dir, const char *stem, int reopen_flags = -1,
                            int *reopened = nullptr, int *reopen_errno = nullptr) {
  std::string path = dir + "/" + stem + ".XXXXXX";
  std::vector<char> tmpl(path.begin(), path.end());
  tmpl.push_back('\0');
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) die("cannot create a temporary file in %s: %s", dir.c_str(), std::strerror(errno));
  if (reopen_flags != -1) {
    *reopened = open(tmpl.data(), reopen_flags | O_CLOEXEC);
    *reopen_errno = *reopened < 0 ? errno : 0;
  }
  if (unlink(tmpl.data()) != 0) die("unlink %s: %s", tmpl.data(), std::strerror(errno));
  return fd;
}

// Fills `fd` with `bytes` (a multiple of kBlock) of pattern and fsyncs it.
inline void write_pattern_file(int fd, const std::string &where, uint64_t bytes,
                               uint64_t (*pattern)(uint64_t)) {
  constexpr size_t kChunk = 1u << 20;
  std::vector<unsigned char> chunk(kChunk);
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - off));
    for (size_t b = 0; b < len; b += kBlock) fill_pattern_block(&chunk[b], (off + b) / kBlock, pattern);
    size_t done = 0;
    while (done < len) {
      const ssize_t w = pwrite(fd, chunk.data() + done, len - done, static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        die("writing the temporary file in %s: %s", where.c_str(),
            w < 0 ? std::strerror(errno) : "short write");
      done += static_cast<size_t>(w);
    }
  }
  if (fsync(fd) != 0) die("fsync of the temporary file in %s: %s", where.c_str(), std::strerror(errno));
}

// Reads the first `bytes` (a multiple of kBlock) of `fd` once, in 1 MiB
// chunks, and calls block(index, first 8 bytes) for every kBlock block: the
// page cache then holds them (if it can).
template <typename F>
inline void read_blocks(int fd, const std::string &what, uint64_t bytes, F &&block) {
  constexpr size_t kChunk = 1u << 20;
  std::vector<unsigned char> chunk(kChunk);
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - off));
    size_t done = 0;
    while (done < len) {
      const ssize_t rd = pread(fd, chunk.data() + done, len - done, static_cast<off_t>(off + done));
      if (rd < 0 && errno == EINTR) continue;
      if (rd <= 0)
        die("reading %s: %s", what.c_str(), rd < 0 ? std::strerror(errno) : "unexpected end of file");
      done += static_cast<size_t>(rd);
    }
    for (size_t b = 0; b < len; b += kBlock) {
      uint64_t first;
      std::memcpy(&first, &chunk[b], sizeof first);
      block((off + b) / kBlock, first);
    }
  }
}

// Reads a pattern file back whole, checking the pattern of every block.
inline void check_pattern_file(int fd, uint64_t bytes, uint64_t (*pattern)(uint64_t)) {
  read_blocks(fd, "the temporary file back", bytes, [&](uint64_t blk, uint64_t first) {
    if (first != pattern(blk)) verify_failed("the temporary file does not read back what was written");
  });
}

// Creates a file of `bytes` (a multiple of kBlock) in `dir`, named after
// g_prog and unlinked at once, filled with pattern(); fsyncs it, reads it
// all back (checking the pattern) so the page cache holds it, and returns
// its descriptor.
inline int make_pattern_file(const std::string &dir, uint64_t bytes,
                             uint64_t (*pattern)(uint64_t)) {
  const int fd = create_temp_file(dir, g_prog);
  write_pattern_file(fd, dir, bytes, pattern);
  check_pattern_file(fd, bytes, pattern);
  return fd;
}

// The percentage of the first `bytes` of `fd` that the page cache holds
// (mincore over a mapping), or -1 when it cannot be found.
inline double resident_percent(int fd, uint64_t bytes) {
  if (bytes == 0) return -1;
  void *m = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -1;
  const long page = sysconf(_SC_PAGESIZE);
  const uint64_t pages = (bytes + static_cast<uint64_t>(page) - 1) / static_cast<uint64_t>(page);
  std::vector<unsigned char> vec(pages);
  double pct = -1;
  if (mincore(m, bytes, vec.data()) == 0) {
    uint64_t in = 0;
    for (unsigned char c : vec) in += c & 1u;
    pct = static_cast<double>(in) * 100.0 / static_cast<double>(pages);
  }
  munmap(m, bytes);
  return pct;
}

// A short name for a statfs(2) f_type.
inline const char *fs_name(long type) {
  switch (type) {
    case EXT4_SUPER_MAGIC: return "ext2/3/4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    case NFS_SUPER_MAGIC: return "nfs";
    case F2FS_SUPER_MAGIC: return "f2fs";
    case TMPFS_MAGIC: return "tmpfs";
    case RAMFS_MAGIC: return "ramfs";
    default: return "other";
  }
}

}  // namespace bench_util
