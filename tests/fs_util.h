// SPDX-License-Identifier: MIT
// Files for the path tests: a scratch directory removed with everything in
// it, and a file of a known byte pattern that can be evicted from and
// brought back into the page cache.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace aio2_test {

// A directory on a file system that really evicts pages: $TMPDIR or /tmp
// unless that is tmpfs or ramfs, else the current directory (ctest runs
// tests in the build tree).
inline std::string evicting_dir() {
  constexpr long kTmpfsMagic = 0x01021994, kRamfsMagic = 0x858458f6;
  const char *env = std::getenv("TMPDIR");
  std::string dir = env && *env ? env : "/tmp";
  struct statfs sf {};
  if (statfs(dir.c_str(), &sf) != 0 || static_cast<long>(sf.f_type) == kTmpfsMagic ||
      static_cast<long>(sf.f_type) == kRamfsMagic) {
    char cwd[4096];
    dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
  }
  return dir;
}

// A fresh directory, removed with its contents on destruction.
class scratch_dir {
 public:
  explicit scratch_dir(const char *tag = "aio2") {
    std::string t = evicting_dir() + "/" + tag + "-XXXXXX";
    if (mkdtemp(t.data())) path_ = t;
    fd_ = path_.empty() ? -1 : open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~scratch_dir() {
    if (fd_ >= 0) close(fd_);
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir &) = delete;
  scratch_dir &operator=(const scratch_dir &) = delete;
  bool ok() const { return fd_ >= 0; }
  const std::string &path() const { return path_; }
  std::string operator/(const std::string &name) const { return path_ + "/" + name; }
  int fd() const { return fd_; }  // an O_DIRECTORY descriptor, for the *at calls

 private:
  std::string path_;
  int fd_ = -1;
};

// The byte at `off` of every pattern file.
inline unsigned char pattern_at(uint64_t off) {
  return static_cast<unsigned char>((off % 251) ^ ((off >> 12) & 0xff));
}

// Whether `buf` holds the pattern from `off`.
inline bool pattern_holds(const unsigned char *buf, uint64_t off, uint64_t len) {
  for (uint64_t i = 0; i < len; i++)
    if (buf[i] != pattern_at(off + i)) return false;
  return true;
}

// Whether a RWF_NOWAIT read of [off, off + len), clipped to the end of the
// file, reads all of it: what a split read's attempt in the submitting
// thread finds. For ranges meant to be cached (on a miss the kernel may
// start reading ahead).
inline bool nowait_reads_whole(int fd, uint64_t off, uint64_t len) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t want = off >= size ? 0 : std::min(len, size - off);
  std::vector<unsigned char> buf(want ? want : 1);
  const iovec iov{buf.data(), want};
  return preadv2(fd, &iov, 1, static_cast<off_t>(off), RWF_NOWAIT) == static_cast<ssize_t>(want);
}

// A file of `size` pattern bytes, written and synced, unlinked at once (the
// read-write descriptor keeps it).
class pattern_file {
 public:
  explicit pattern_file(uint64_t size = 1 << 20) : size_(size) {
    std::string path = evicting_dir() + "/aio2-pattern-XXXXXX";
    fd_ = mkstemp(path.data());
    if (fd_ < 0) return;
    unlink(path.c_str());
    std::vector<unsigned char> data(size);
    for (uint64_t i = 0; i < size; i++) data[i] = pattern_at(i);
    ok_ = pwrite(fd_, data.data(), size, 0) == static_cast<ssize_t>(size) && fsync(fd_) == 0;
  }
  ~pattern_file() {
    if (fd_ >= 0) close(fd_);
  }
  pattern_file(const pattern_file &) = delete;
  pattern_file &operator=(const pattern_file &) = delete;

  int fd() const { return fd_; }
  bool ok() const { return ok_; }
  uint64_t size() const { return size_; }

  // Drops [off, off + len) from the page cache.
  void evict(uint64_t off, uint64_t len) const { evict_range(fd_, size_, off, len); }
  // Brings [off, off + len) into the page cache.
  void warm(uint64_t off, uint64_t len) const {
    std::vector<unsigned char> buf(len);
    (void)!pread(fd_, buf.data(), len, static_cast<off_t>(off));
  }
  // Bytes of [off, off + len) whose pages mincore(2) finds cached.
  uint64_t resident(uint64_t off, uint64_t len) const { return resident_bytes(fd_, size_, off, len); }
  // Whether eviction works here at all.
  bool evictable() const {
    evict(0, size_);
    const bool gone = resident(0, size_) == 0;
    warm(0, size_);
    return gone;
  }

  // Drops [off, off + len) of any descriptor of a file of `size` bytes from
  // the page cache. POSIX_FADV_DONTNEED skips pages another CPU still holds
  // in its LRU batches for a moment, so it is asked again until mincore(2)
  // finds the range gone (or a second has passed: then the caller's own
  // residency check reports it).
  static void evict_range(int fd, uint64_t size, uint64_t off, uint64_t len) {
    fdatasync(fd);
    for (int i = 0; i < 1000; i++) {
      posix_fadvise(fd, static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
      if (resident_bytes(fd, size, off, len) == 0) return;
      usleep(1000);
    }
  }

  // Bytes of [off, off + len) cached, for any descriptor of a file of
  // `size` bytes.
  static uint64_t resident_bytes(int fd, uint64_t size, uint64_t off, uint64_t len) {
    const uint64_t ps = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t end = std::min(off + len, size);
    if (end <= off) return 0;
    const uint64_t base = off / ps * ps;
    const size_t maplen = static_cast<size_t>(end - base);
    void *m = mmap(nullptr, maplen, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(base));
    if (m == MAP_FAILED) return ~0ull;
    std::vector<unsigned char> vec((maplen + ps - 1) / ps);
    const int rc = mincore(m, maplen, vec.data());
    munmap(m, maplen);
    if (rc != 0) return ~0ull;
    uint64_t bytes = 0;
    for (size_t i = 0; i < vec.size(); i++) {
      if (!(vec[i] & 1)) continue;
      const uint64_t lo = std::max(base + i * ps, off), hi = std::min(base + (i + 1) * ps, end);
      bytes += hi - lo;
    }
    return bytes;
  }

 private:
  uint64_t size_;
  int fd_ = -1;
  bool ok_ = false;
};

}  // namespace aio2_test
