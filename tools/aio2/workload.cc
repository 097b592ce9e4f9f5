// SPDX-License-Identifier: MIT
// Workloads for the aio2 command: see workload.h.

#include "workload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace aio2_tool {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// pwrite or pread all of `len` bytes at `off`; 0 or an errno (EIO for a
// short transfer at the end of the file).
template <class Io>
int full_io(Io io, int fd, unsigned char *buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = io(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

// The largest buffer used to fill or read a whole file.
constexpr size_t kChunk = 1u << 20;

}  // namespace

const char *op_kind_name(op_kind k) {
  switch (k) {
    case op_kind::read: return "read";
    case op_kind::write: return "write";
    case op_kind::fsync: return "fsync";
    case op_kind::getppid: return "getppid";
    case op_kind::poll: return "poll";
    case op_kind::other: return "other";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Named workloads

const std::vector<workload> &workloads() {
  // name, summary, qd, write_pct, fsync_every, syscalls_only, warm_first,
  // cold_then_warm, direct
  static const std::vector<workload> all = {
      {"cold_then_warm_randread",
       "drop the file from the page cache, then read blocks twice in random order (misses, then hits)",
       32, 0, 0, false, false, true, false},
      {"cached_randread_qd1", "4 KiB random reads of a cached file, one at a time", 1, 0, 0, false,
       true, false, false},
      {"cached_randread_qd32", "4 KiB random reads of a cached file, 32 in flight", 32, 0, 0, false,
       true, false, false},
      {"direct_randread_qd32", "4 KiB random O_DIRECT reads (past the page cache), 32 in flight", 32,
       0, 0, false, false, false, true},
      {"syscall_getppid", "getppid(): the cost of a request that does no I/O, 32 in flight", 32, 0,
       0, true, false, false, false},
      {"mixed_rw_fsync",
       "70% 4 KiB random reads, 30% 4 KiB random writes, fsync after every 32 writes, 32 in flight",
       32, 30, 32, false, true, false, false},
  };
  return all;
}

const workload *find_workload(std::string_view name) {
  for (const auto &w : workloads())
    if (name == w.name) return &w;
  return nullptr;
}

std::string workload_names() {
  std::string s;
  for (const auto &w : workloads()) s += (s.empty() ? "" : ", ") + std::string(w.name);
  return s;
}

op_generator::op_generator(const workload &w, uint64_t file_bytes, uint64_t count, uint64_t seed)
    : w_(w), blocks_(file_bytes / kBlock), count_(count), rng_(seed) {
  if (!w_.cold_then_warm || blocks_ == 0) return;
  const uint64_t want = count_ == 0 ? blocks_ : std::min(blocks_, (count_ + 1) / 2);
  // Choose `want` distinct blocks: the first `want` of a partial shuffle.
  std::vector<uint64_t> all(blocks_);
  for (uint64_t b = 0; b < blocks_; b++) all[b] = b;
  for (uint64_t i = 0; i < want; i++) std::swap(all[i], all[i + rng_() % (blocks_ - i)]);
  round_.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(want));
  round_pos_ = round_.size();  // the first next() shuffles
}

bool op_generator::next(op &out) {
  if (count_ != 0 && made_ == count_) return false;
  made_++;
  out = op{};
  if (w_.syscalls_only || blocks_ == 0) {
    out.kind = op_kind::getppid;
    return true;
  }
  if (w_.fsync_every && writes_since_fsync_ == w_.fsync_every) {
    writes_since_fsync_ = 0;
    out.kind = op_kind::fsync;
    return true;
  }
  out.len = kBlock;
  if (w_.cold_then_warm) {
    if (round_pos_ == round_.size()) {
      std::shuffle(round_.begin(), round_.end(), rng_);
      round_pos_ = 0;
    }
    out.kind = op_kind::read;
    out.offset = round_[round_pos_++] * kBlock;
    return true;
  }
  out.offset = rng_() % blocks_ * kBlock;
  out.kind = w_.write_pct && rng_() % 100 < w_.write_pct ? op_kind::write : op_kind::read;
  if (out.kind == op_kind::write) writes_since_fsync_++;
  return true;
}

// ---------------------------------------------------------------------------
// The file

uint64_t block_pattern(uint64_t block) { return block * 0x9e3779b97f4a7c15ull ^ 0xa102ull; }

namespace {

// Calls fn(block, from, n, at): bytes [from, from + n) of block `block` are
// bytes [at, at + n) of the range [offset, offset + len).
template <class Fn>
void for_each_block_part(uint64_t offset, size_t len, Fn fn) {
  for (size_t at = 0; at < len;) {
    const uint64_t pos = offset + at;
    const size_t from = static_cast<size_t>(pos % kBlock);
    const size_t n = std::min<size_t>(kBlock - from, len - at);
    fn(pos / kBlock, from, n, at);
    at += n;
  }
}

void make_block(unsigned char *blk, uint64_t block) {
  const uint64_t pat = block_pattern(block);
  std::memcpy(blk, &pat, sizeof pat);
  std::memset(blk + sizeof pat, static_cast<int>(block & 0xff), kBlock - sizeof pat);
}

}  // namespace

void fill_pattern(unsigned char *buf, uint64_t offset, size_t len) {
  for_each_block_part(offset, len, [&](uint64_t block, size_t from, size_t n, size_t at) {
    if (from == 0 && n == kBlock) {
      make_block(buf + at, block);
      return;
    }
    unsigned char blk[kBlock];
    make_block(blk, block);
    std::memcpy(buf + at, blk + from, n);
  });
}

bool matches_pattern(const unsigned char *buf, uint64_t offset, size_t len) {
  bool same = true;
  for_each_block_part(offset, len, [&](uint64_t block, size_t from, size_t n, size_t at) {
    unsigned char blk[kBlock];
    make_block(blk, block);
    same = same && std::memcmp(buf + at, blk + from, n) == 0;
  });
  return same;
}

data_file data_file::make_temp(const std::string &prefix, uint64_t bytes) {
  const char *env = std::getenv("TMPDIR");
  const std::string dir = env && *env ? env : "/tmp";
  std::string path = dir + "/" + prefix + ".XXXXXX";
  const int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0)
    throw tool_error("cannot create a temporary file in " + dir + ": " + errno_text(errno), false);
  // Unlinked at once: nothing is left behind, whatever happens next.
  unlink(path.c_str());
  data_file f(fd, bytes, path, true);
  std::vector<unsigned char> chunk(kChunk);
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - off));
    fill_pattern(chunk.data(), off, len);
    if (int err = full_io(pwrite, fd, chunk.data(), len, off))
      throw tool_error("writing the temporary file in " + dir + ": " + errno_text(err), false);
  }
  if (fsync(fd) != 0)
    throw tool_error("fsync of the temporary file in " + dir + ": " + errno_text(errno), false);
  return f;
}

data_file data_file::open_existing(const std::string &path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw tool_error("cannot open " + path + ": " + errno_text(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw tool_error("cannot stat " + path + ": " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw tool_error(path + " is not a regular file");
  }
  return data_file(fd, static_cast<uint64_t>(st.st_size), path, false);
}

data_file::data_file(data_file &&o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      direct_fd_(std::exchange(o.direct_fd_, -1)),
      bytes_(o.bytes_),
      path_(std::move(o.path_)),
      temporary_(o.temporary_) {}

data_file::~data_file() {
  if (direct_fd_ >= 0) close(direct_fd_);
  if (fd_ >= 0) close(fd_);
}

int data_file::direct_fd() {
  if (direct_fd_ >= 0) return direct_fd_;
  // Through /proc so that it works for an unlinked temporary file too.
  const std::string self = "/proc/self/fd/" + std::to_string(fd_);
  const int fd = open(self.c_str(), (temporary_ ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
  if (fd < 0)
    throw tool_error("cannot open " + path_ + " with O_DIRECT: " + errno_text(errno) +
                     (errno == EINVAL ? " (the file system refuses O_DIRECT)" : ""));
  direct_fd_ = fd;
  return fd;
}

void data_file::warm() const {
  std::vector<unsigned char> chunk(kChunk);
  for (uint64_t off = 0; off < bytes_; off += kChunk) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes_ - off));
    if (int err = full_io(pread, fd_, chunk.data(), len, off))
      throw tool_error("reading " + path_ + ": " + errno_text(err), false);
  }
}

void data_file::evict() const {
  if (temporary_ && fdatasync(fd_) != 0)
    throw tool_error("fdatasync of " + path_ + ": " + errno_text(errno), false);
  if (int err = posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED))
    throw tool_error("posix_fadvise(DONTNEED) on " + path_ + ": " + errno_text(err), false);
  if (int err = posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM))
    throw tool_error("posix_fadvise(RANDOM) on " + path_ + ": " + errno_text(err), false);
}

// ---------------------------------------------------------------------------
// Sizes and the ops file

bool parse_size(std::string_view s, uint64_t &out) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  uint64_t mult = 1;
  switch (s.back()) {
    case 'k': case 'K': mult = 1ull << 10; break;
    case 'm': case 'M': mult = 1ull << 20; break;
    case 'g': case 'G': mult = 1ull << 30; break;
    default: break;
  }
  if (mult != 1) s.remove_suffix(1);
  const std::string digits(s);
  if (digits.empty()) return false;
  char *end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(digits.c_str(), &end, 0);
  if (errno || end == digits.c_str() || *end || v > UINT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

std::string format_size(uint64_t bytes) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    u++;
  }
  return std::to_string(bytes) + " " + units[u];
}

std::vector<op> parse_ops(std::istream &in, const std::string &name, uint64_t file_bytes,
                          bool writable) {
  std::vector<op> ops;
  std::string line;
  for (unsigned lineno = 1; std::getline(in, line); lineno++) {
    auto fail = [&](const std::string &msg) -> void {
      throw tool_error(name + ":" + std::to_string(lineno) + ": " + msg);
    };
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    if (w.empty()) continue;
    op o;
    if (w[0] == "read" || w[0] == "write") {
      o.kind = w[0] == "read" ? op_kind::read : op_kind::write;
      if (w.size() != 3) fail(w[0] + " takes OFFSET and LEN, as in '" + w[0] + " 4096 4096'");
      uint64_t off = 0, len = 0;
      if (!parse_size(w[1], off)) fail("bad OFFSET '" + w[1] + "'");
      if (!parse_size(w[2], len)) fail("bad LEN '" + w[2] + "'");
      if (len == 0 || len > kMaxOpLen)
        fail("LEN " + w[2] + " is out of range (1.." + std::to_string(kMaxOpLen) + ")");
      if (off > file_bytes || len > file_bytes - off)
        fail(w[0] + " of " + std::to_string(len) + " bytes at " + std::to_string(off) +
             " runs past the end of the file (" + std::to_string(file_bytes) + " bytes)");
      if (o.kind == op_kind::write && !writable)
        fail("write: the file is opened read-only (--file); writes go to the temporary file only");
      o.offset = off;
      o.len = static_cast<uint32_t>(len);
    } else if (w[0] == "fsync" || w[0] == "getppid") {
      o.kind = w[0] == "fsync" ? op_kind::fsync : op_kind::getppid;
      if (w.size() != 1) fail(w[0] + " takes no arguments, found '" + w[1] + "'");
    } else {
      fail("unknown operation '" + w[0] + "' (expected read, write, fsync or getppid)");
    }
    ops.push_back(o);
  }
  if (in.bad()) throw tool_error("cannot read " + name);
  return ops;
}

std::vector<op> read_ops_file(const std::string &path, uint64_t file_bytes, bool writable) {
  std::ifstream in(path);
  if (!in) throw tool_error("cannot open ops file " + path + ": " + errno_text(errno));
  std::vector<op> ops = parse_ops(in, path, file_bytes, writable);
  if (ops.empty()) throw tool_error("ops file " + path + " holds no operation");
  return ops;
}

}  // namespace aio2_tool
