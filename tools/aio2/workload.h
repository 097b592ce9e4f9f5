// SPDX-License-Identifier: MIT
// Workloads for the aio2 command's subcommands (trace, bench): what a request
// does (op), the named generators (workload, op_generator), the file they run
// against (data_file: a temporary pattern file, or an existing one read-only),
// and the ops file, one operation a line (parse_ops).
//
// Nothing here prints or exits: every failure throws tool_error with a
// one-line message, and data_file removes its temporary file before it
// returns (it is unlinked as soon as it is made), so nothing is left behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aio2_tool {

// A failure to report on one line (no trailing newline); `bad_input` says
// whether the user's arguments or files were wrong (exit 2) or the run
// failed (exit 1).
class tool_error : public std::runtime_error {
 public:
  explicit tool_error(const std::string &what, bool bad_input = true)
      : std::runtime_error(what), bad_input_(bad_input) {}
  bool bad_input() const noexcept { return bad_input_; }

 private:
  bool bad_input_;
};

// The block every generated read and write covers; also the alignment of
// O_DIRECT buffers and the unit of --size.
constexpr uint32_t kBlock = 4096;

// ---------------------------------------------------------------------------
// Operations

// poll and other are requests of programs `aio2 run` observed (IOCB_CMD_POLL,
// and any call that is none of the others); workloads never make them.
enum class op_kind : uint8_t { read, write, fsync, getppid, poll, other };
constexpr unsigned kOpKinds = 6;

// "read", "write", "fsync", "getppid", "poll", "other".
const char *op_kind_name(op_kind k);

// One request: pread64/pwrite64 of `len` bytes at `offset`, fsync, or
// getppid (offset and len 0).
struct op {
  op_kind kind = op_kind::getppid;
  uint32_t len = 0;
  uint64_t offset = 0;
};

// ---------------------------------------------------------------------------
// Named workloads

struct workload {
  const char *name;
  const char *summary;  // one line, for --help
  unsigned qd;          // default queue depth
  unsigned write_pct;   // percent of block operations that are writes
  unsigned fsync_every; // an fsync after every this many writes (0: never)
  bool syscalls_only;   // getppid, no file
  bool warm_first;      // read the whole file once before the run
  bool cold_then_warm;  // evict the file, then read chosen blocks twice
  bool direct;          // O_DIRECT reads (bypass the page cache)
};

// Every named workload, the default (cold_then_warm_randread) first.
const std::vector<workload> &workloads();
// The workload called `name`, or nullptr.
const workload *find_workload(std::string_view name);
// Their names, comma-separated, for messages.
std::string workload_names();

// Generates a workload's operations over a file of `file_bytes` (a multiple
// of kBlock, at least one block): random kBlock-aligned blocks, the mix of
// reads, writes and fsyncs the workload names. `count` operations, or
// without end when it is 0. The same seed gives the same operations.
//
// cold_then_warm: picks ceil(count / 2) distinct blocks (every block when
// there are fewer, or when count is 0) and reads them in rounds, each a new
// random order: the first round finds them cold, later rounds warm.
class op_generator {
 public:
  op_generator(const workload &w, uint64_t file_bytes, uint64_t count, uint64_t seed);
  // The next operation; false once `count` were generated.
  bool next(op &out);

 private:
  const workload &w_;
  uint64_t blocks_;
  uint64_t count_;
  uint64_t made_ = 0;
  unsigned writes_since_fsync_ = 0;
  std::mt19937_64 rng_;
  std::vector<uint64_t> round_;  // cold_then_warm: the chosen blocks
  size_t round_pos_ = 0;
};

// ---------------------------------------------------------------------------
// The file

// The pattern a temporary file holds: each kBlock block starts with 8 bytes
// derived from its number, and the rest is the number's low byte.
uint64_t block_pattern(uint64_t block);
// Writes the `len` bytes a pattern file holds at `offset` into `buf`.
void fill_pattern(unsigned char *buf, uint64_t offset, size_t len);
// Whether `buf` holds the `len` bytes a pattern file holds at `offset`.
bool matches_pattern(const unsigned char *buf, uint64_t offset, size_t len);

// The file a workload reads and writes.
class data_file {
 public:
  // A new file of `bytes` (a multiple of kBlock) in $TMPDIR, or /tmp,
  // named `prefix`.XXXXXX and unlinked at once, every block filled with its
  // pattern, and fsync'ed.
  static data_file make_temp(const std::string &prefix, uint64_t bytes);
  // An existing regular file, opened read-only.
  static data_file open_existing(const std::string &path);

  data_file(data_file &&o) noexcept;
  data_file &operator=(data_file &&o) = delete;
  data_file(const data_file &) = delete;
  data_file &operator=(const data_file &) = delete;
  ~data_file();

  int fd() const { return fd_; }
  uint64_t bytes() const { return bytes_; }
  bool writable() const { return temporary_; }
  bool temporary() const { return temporary_; }
  // The path (for a temporary file, the name it had before it was unlinked).
  const std::string &path() const { return path_; }

  // A second descriptor of the same file opened with O_DIRECT, owned by
  // this object; throws when the file system refuses O_DIRECT.
  int direct_fd();
  // Reads the whole file once, so the page cache holds it.
  void warm() const;
  // Drops the file from the page cache (POSIX_FADV_DONTNEED after
  // fdatasync) and turns readahead off for it (POSIX_FADV_RANDOM), so each
  // read finds only what was read before.
  void evict() const;

 private:
  data_file(int fd, uint64_t bytes, std::string path, bool temporary)
      : fd_(fd), bytes_(bytes), path_(std::move(path)), temporary_(temporary) {}
  int fd_ = -1;
  int direct_fd_ = -1;
  uint64_t bytes_ = 0;
  std::string path_;
  bool temporary_ = false;
};

// ---------------------------------------------------------------------------
// The ops file
//
// One operation a line; '#' starts a comment; blank lines are skipped:
//   read OFFSET LEN     pread64 of LEN bytes at OFFSET
//   write OFFSET LEN    pwrite64 of LEN bytes (the file's own pattern) at OFFSET
//   fsync
//   getppid
// Numbers are decimal or 0x-hexadecimal, with an optional K, M or G suffix
// (binary multiples). LEN is 1..kMaxOpLen; OFFSET + LEN must lie within
// the file. Errors name the file and the line: "ops.txt:3: ...".
constexpr uint32_t kMaxOpLen = 1u << 20;

// Parses the ops in `in` (`name` for messages) against a file of
// `file_bytes`; writes are refused when `writable` is false.
std::vector<op> parse_ops(std::istream &in, const std::string &name, uint64_t file_bytes,
                          bool writable);
// Opens `path` and parses it; throws when it cannot be read or holds no op.
std::vector<op> read_ops_file(const std::string &path, uint64_t file_bytes, bool writable);

// A byte count with an optional K, M or G suffix (binary multiples); false
// when `s` is not one.
bool parse_size(std::string_view s, uint64_t &out);
// "64 MiB", "4 KiB", "1000 bytes": the largest unit that divides `bytes`.
std::string format_size(uint64_t bytes);

}  // namespace aio2_tool
