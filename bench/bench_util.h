// SPDX-License-Identifier: MIT
// Helpers pool_bench and attr_bench share: failure messages, usage and
// argument parsing, the monotonic clock, 4 KiB aligned buffers, process CPU
// time, medians, and the temporary pattern file.
//
// main sets g_prog (and g_usage) first: every message starts with the
// program's name.
#pragma once

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
  if (errno || end == v || *end || !(d >= lo) || d > 3600)
    usage(std::string("bad value for ") + opt + ": " + v);
  return d;
}

// A decimal number in [lo, hi].
inline unsigned parse_uint(const char *opt, const char *v, unsigned lo, unsigned hi) {
  char *end = nullptr;
  errno = 0;
  const unsigned long u = std::strtoul(v, &end, 10);
  if (errno || end == v || *end || u < lo || u > hi)
    usage(std::string("bad value for ") + opt + ": " + v);
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
// The pattern file

// Creates a file of `bytes` (a multiple of 1 MiB) in `dir`, named after
// g_prog and unlinked at once, whose every kBlock block starts with
// pattern(block index); fsyncs it, reads it all back (checking the pattern)
// so the page cache holds it, and returns its descriptor.
inline int make_pattern_file(const std::string &dir, uint64_t bytes,
                             uint64_t (*pattern)(uint64_t)) {
  std::string path = dir + "/" + g_prog + ".XXXXXX";
  std::vector<char> tmpl(path.begin(), path.end());
  tmpl.push_back('\0');
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) die("cannot create a temporary file in %s: %s", dir.c_str(), std::strerror(errno));
  if (unlink(tmpl.data()) != 0) die("unlink %s: %s", tmpl.data(), std::strerror(errno));
  constexpr size_t kChunk = 1u << 20;
  std::vector<unsigned char> chunk(kChunk);
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    for (size_t b = 0; b < kChunk; b += kBlock) {
      const uint64_t blk = (off + b) / kBlock;
      const uint64_t pat = pattern(blk);
      std::memcpy(&chunk[b], &pat, sizeof pat);
      std::memset(&chunk[b + sizeof pat], static_cast<int>(blk & 0xff), kBlock - sizeof pat);
    }
    size_t done = 0;
    while (done < kChunk) {
      const ssize_t w =
          pwrite(fd, chunk.data() + done, kChunk - done, static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        die("writing the temporary file in %s: %s", dir.c_str(),
            w < 0 ? std::strerror(errno) : "short write");
      done += static_cast<size_t>(w);
    }
  }
  if (fsync(fd) != 0) die("fsync of the temporary file: %s", std::strerror(errno));
  // Read it all once, checking the pattern: the page cache now holds it.
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    const ssize_t rd = pread(fd, chunk.data(), kChunk, static_cast<off_t>(off));
    if (rd != static_cast<ssize_t>(kChunk))
      die("reading the temporary file back: %s", rd < 0 ? std::strerror(errno) : "short read");
    for (size_t b = 0; b < kChunk; b += kBlock) {
      uint64_t got;
      std::memcpy(&got, &chunk[b], sizeof got);
      if (got != pattern((off + b) / kBlock))
        verify_failed("the temporary file does not read back what was written");
    }
  }
  return fd;
}

}  // namespace bench_util
