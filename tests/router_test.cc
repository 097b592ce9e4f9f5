// SPDX-License-Identifier: MIT
// The router against a table: every rule of src/core/router.cc, one row per
// case, with made-up descriptor facts and a made-up io_uring. No descriptor
// is opened and no io_uring is created: route() is a pure function of the
// parsed request, a sys::fd_lookup and a router_env, and each of those is
// built here.
//
// The descriptors are one fixed set of made-up numbers (k_world below), each
// named for what it is: a row states the facts it assumes by the names of
// the descriptors in its arguments. io_uring is a fake translate function
// that answers what the row says, counts its calls, and fills the entry it is
// given with a mark, so a row can say whether io_uring was asked at all.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/parse.h"
#include "core/router.h"
#include "exec/request.h"
#include "sys/fd_facts.h"
#include "sys/syscall_table.h"

namespace aio2::exec {
// Failure messages name the attempt instead of printing a byte.
void PrintTo(attempt a, std::ostream *os) {
  switch (a) {
    case attempt::none: *os << "none"; return;
    case attempt::submitter: *os << "submitter"; return;
    case attempt::executor: *os << "executor"; return;
  }
  *os << "attempt(" << static_cast<unsigned>(a) << ")";
}
}  // namespace aio2::exec

namespace {

using aio2::exec::attempt;
using aio2::sys::fd_facts;

// ---------------------------------------------------------------------------
// The descriptors. Flags are what fcntl(F_GETFL) would say; `regular` is
// S_ISREG, `positionable` S_ISREG or S_ISBLK.
enum : int {
  kRegular = 3,     // regular file, O_RDONLY
  kRegularRw,       // regular file, O_RDWR
  kRegularWo,       // regular file, O_WRONLY
  kRegularNb,       // regular file, O_RDONLY | O_NONBLOCK
  kDirect,          // regular file, O_RDONLY | O_DIRECT
  kPath,            // regular file, O_PATH
  kPipe,            // pipe, blocking
  kPipe2,           // another blocking pipe
  kPipeNb,          // pipe, O_NONBLOCK
  kPipeNb2,         // another O_NONBLOCK pipe
  kSocket,          // socket, blocking
  kSocketNb,        // socket, O_NONBLOCK
  kBlockDev,        // block device, O_RDWR
  kBlockDevNb,      // block device, O_RDWR | O_NONBLOCK
  kTty,             // character device (a tty), O_RDWR
  kTtyNb,           // character device (a tty), O_RDWR | O_NONBLOCK
  kDir,             // directory, O_RDONLY | O_DIRECTORY
  kClosed,          // not open: the lookup answers -EBADF
};

struct fd_entry {
  int err;  // 0, or what the lookup returns (-EBADF)
  fd_facts facts;
};

const std::map<int, fd_entry> &world() {
  static const std::map<int, fd_entry> w = {
      {kRegular, {0, {O_RDONLY, true, true}}},
      {kRegularRw, {0, {O_RDWR, true, true}}},
      {kRegularWo, {0, {O_WRONLY, true, true}}},
      {kRegularNb, {0, {O_RDONLY | O_NONBLOCK, true, true}}},
      {kDirect, {0, {O_RDONLY | O_DIRECT, true, true}}},
      {kPath, {0, {O_PATH, true, true}}},
      {kPipe, {0, {O_RDONLY, false, false}}},
      {kPipe2, {0, {O_WRONLY, false, false}}},
      {kPipeNb, {0, {O_RDONLY | O_NONBLOCK, false, false}}},
      {kPipeNb2, {0, {O_WRONLY | O_NONBLOCK, false, false}}},
      {kSocket, {0, {O_RDWR, false, false}}},
      {kSocketNb, {0, {O_RDWR | O_NONBLOCK, false, false}}},
      {kBlockDev, {0, {O_RDWR, false, true}}},
      {kBlockDevNb, {0, {O_RDWR | O_NONBLOCK, false, true}}},
      {kTty, {0, {O_RDWR, false, false}}},
      {kTtyNb, {0, {O_RDWR | O_NONBLOCK, false, false}}},
      {kDir, {0, {O_RDONLY | O_DIRECTORY, false, false}}},
      {kClosed, {-EBADF, {}}},
      // Negative numbers are never descriptors (AT_FDCWD, or -EBADF on every
      // path): the router must not ask. This answer, an O_NONBLOCK pipe that
      // would make a read inline and keep it off io_uring, shows it if it does.
      {AT_FDCWD, {0, {O_RDONLY | O_NONBLOCK, false, false}}},
  };
  return w;
}

class fake_fds final : public aio2::sys::fd_lookup {
 public:
  int get(int fd, fd_facts *out) noexcept override {
    calls++;
    const auto &w = world();
    const auto it = w.find(fd);
    if (it == w.end()) return -EBADF;
    if (it->second.err != 0) return it->second.err;
    *out = it->second.facts;
    return 0;
  }
  int calls = 0;
};

// ---------------------------------------------------------------------------
// io_uring: absent (env.uring_translate = nullptr), or a translate that
// answers yes (it runs the call as the call would) or no.
enum class ring : uint8_t { none, yes, no };

constexpr unsigned char kSqeMark = 0xa5;

struct fake_uring {
  bool answer = false;
  int calls = 0;
  uint32_t nr = 0;
  const uint64_t *args = nullptr;
  void *sqe = nullptr;
};

bool fake_translate(const void *uring, uint32_t nr, const uint64_t *args, void *sqe) {
  // The router hands back the pointer the test put in env.uring: the fake
  // object, which is not const.
  auto *f = static_cast<fake_uring *>(const_cast<void *>(uring));
  f->calls++;
  f->nr = nr;
  f->args = args;
  f->sqe = sqe;
  if (f->answer && sqe != nullptr) std::memset(sqe, kSqeMark, 64);
  return f->answer;
}

// ---------------------------------------------------------------------------
// The rows.
constexpr uint32_t kInline = AIO2_PATH_INLINE, kUring = AIO2_PATH_URING, kPool = AIO2_PATH_POOL;
constexpr bool kBounded = false, kUnbounded = true;
constexpr int kAny = -1;                  // translate calls: not checked
constexpr uint64_t kPos = ~uint64_t{0};  // preadv2/pwritev2 offset -1: the file position
constexpr uint64_t u64(int64_t v) { return static_cast<uint64_t>(v); }
constexpr uint32_t pol(uint32_t p) { return AIO2_IOCB_POLICY(p); }

struct want {
  uint32_t path;
  attempt how;
  bool unbounded;
};

struct row {
  const char *name;
  // The context.
  uint32_t policy = AIO2_POLICY_AUTO;
  ring uring = ring::none;
  bool nowait_in_submitter = false;
  // The request. The router reads no buffer: buffer and iovec pointers are 0.
  long nr = -1;
  std::array<uint64_t, 6> args{};
  uint32_t flags = 0;
  uint32_t attr_paths = AIO2_PATH_ALL;
  uint32_t required_paths = AIO2_PATH_ALL;
  bool thread_bound = false;
  bool wants_nowait = false;
  // The plan expected.
  want plan;
  int translate_calls = kAny;  // how many times io_uring is asked
  uint32_t bits = 0;           // plan.bits(), when not 0
};

void PrintTo(const row &r, std::ostream *os) { *os << r.name; }

// open_how for openat2, in this process's memory: the router reads its
// flags with process_vm_readv.
open_how how_rdonly{O_RDONLY, 0, 0};
open_how how_creat{O_WRONLY | O_CREAT | O_TRUNC, 0644, 0};
open_how how_path{O_PATH, 0, 0};
open_how how_directory{O_RDONLY | O_DIRECTORY, 0, 0};
open_how how_nonblock_creat{O_WRONLY | O_CREAT | O_NONBLOCK, 0644, 0};
// Bits above the open flags (the kernel refuses them, on io_uring too) are
// not read as flags.
open_how how_high_bit_path{(uint64_t{1} << 63) | O_PATH, 0, 0};

uint64_t addr(const open_how &h) { return reinterpret_cast<uint64_t>(&h); }
constexpr uint64_t kBadAddr = 8;  // nothing is mapped in the first page

std::vector<row> rows() {
  using enum aio2::exec::attempt;
  constexpr uint32_t A = AIO2_POLICY_AUTO, I = AIO2_POLICY_INLINE, U = AIO2_POLICY_URING,
                     P = AIO2_POLICY_POOL;
  constexpr uint64_t at_cwd = u64(AT_FDCWD);
  return {
      // ---- The policy: the context's, else the request's own ----------------
      {.name = "auto_getppid_inline", .policy = A, .uring = ring::yes, .nr = SYS_getppid,
       .plan = {kInline, none, kBounded}, .bits = kInline},
      {.name = "auto_getppid_inline_without_uring", .policy = A, .nr = SYS_getppid,
       .plan = {kInline, none, kBounded}},
      {.name = "auto_pread_regular_uring", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kUring, none, kBounded}, .translate_calls = 1,
       .bits = kUring},
      {.name = "auto_translate_false_pool", .policy = A, .uring = ring::no, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}, .translate_calls = 1,
       .bits = kPool},
      {.name = "auto_no_uring_pool", .policy = A, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "inline_ctx_blocking_pipe_read", .policy = I, .uring = ring::yes, .nr = SYS_read,
       .args = {kPipe, 0, 4096}, .plan = {kInline, none, kBounded}, .translate_calls = 0},
      {.name = "inline_ctx_ignores_attr_paths", .policy = I, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .attr_paths = kPool,
       .plan = {kInline, none, kBounded}, .translate_calls = 0},
      // INLINE takes no worker: the hints do not matter there.
      {.name = "inline_ctx_ignores_unbounded_hint", .policy = I, .nr = SYS_read,
       .args = {kPipe, 0, 4096}, .flags = AIO2_IOCB_UNBOUNDED,
       .plan = {kInline, none, kBounded}},
      {.name = "inline_ctx_no_split", .policy = I, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kInline, none, kBounded}},
      {.name = "pool_ctx_getppid", .policy = P, .uring = ring::yes, .nr = SYS_getppid,
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "pool_ctx_pread_regular", .policy = P, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "pool_ctx_nb_pipe_read", .policy = P, .uring = ring::yes, .nr = SYS_read,
       .args = {kPipeNb, 0, 4096}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "pool_ctx_no_split", .policy = P, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "pool_ctx_preadv2_nowait_not_inline", .policy = P, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, 0, RWF_NOWAIT},
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "pool_ctx_ignores_attr_paths", .policy = P, .uring = ring::yes,
       .nr = SYS_getppid, .attr_paths = kInline | kUring, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "uring_ctx_pread_regular", .policy = U, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kUring, none, kBounded}, .translate_calls = 1,
       .bits = kUring},
      {.name = "uring_ctx_translate_false_pool", .policy = U, .uring = ring::no,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded},
       .translate_calls = 1},
      {.name = "uring_ctx_no_uring_pool", .policy = U, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "uring_ctx_getppid_not_inline", .policy = U, .uring = ring::yes,
       .nr = SYS_getppid, .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "uring_ctx_getppid_untranslated_pool", .policy = U, .uring = ring::no,
       .nr = SYS_getppid, .plan = {kPool, none, kBounded}, .translate_calls = 1},
      {.name = "uring_ctx_ignores_attr_paths", .policy = U, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .attr_paths = kInline | kPool,
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "uring_ctx_nb_pipe_read_pool", .policy = U, .uring = ring::yes, .nr = SYS_read,
       .args = {kPipeNb, 0, 4096}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "uring_ctx_no_split", .policy = U, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "uring_ctx_preadv2_nowait_not_inline", .policy = U, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, 0, RWF_NOWAIT},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "uring_ctx_pool_unbounded", .policy = U, .uring = ring::no, .nr = SYS_read,
       .args = {kPipe, 0, 4096}, .plan = {kPool, none, kUnbounded}, .translate_calls = 1},
      // AIO2_IOCB_POLICY overrides the context's.
      {.name = "iocb_pool_over_auto", .policy = A, .uring = ring::yes, .nr = SYS_getppid,
       .flags = pol(P), .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "iocb_inline_over_pool", .policy = P, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = pol(I), .plan = {kInline, none, kBounded},
       .translate_calls = 0},
      {.name = "iocb_uring_over_pool", .policy = P, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = pol(U), .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "iocb_uring_over_inline", .policy = I, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = pol(U), .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "iocb_auto_over_pool", .policy = P, .nr = SYS_getppid, .flags = pol(A),
       .plan = {kInline, none, kBounded}},
      {.name = "iocb_auto_over_uring", .policy = U, .uring = ring::yes, .nr = SYS_getppid,
       .flags = pol(A), .plan = {kInline, none, kBounded}},
      {.name = "iocb_auto_over_inline", .policy = I, .uring = ring::yes, .nr = SYS_read,
       .args = {kRegular, 0, 4096}, .flags = pol(A), .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "iocb_pool_over_uring", .policy = U, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = pol(P), .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "iocb_inline_over_uring", .policy = U, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = pol(I), .plan = {kInline, none, kBounded},
       .translate_calls = 0},
      {.name = "iocb_policy_with_unbounded_hint", .policy = A, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .flags = pol(P) | AIO2_IOCB_UNBOUNDED,
       .plan = {kPool, none, kUnbounded}, .translate_calls = 0},

      // ---- AUTO, calls that cannot block by nature: inline where honoured ---
      {.name = "auto_getppid_attr_lacks_inline_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_getppid, .attr_paths = kPool | kUring, .plan = {kUring, none, kBounded}},
      {.name = "auto_getppid_attr_lacks_inline_pool", .policy = A, .nr = SYS_getppid,
       .attr_paths = kPool | kUring, .plan = {kPool, none, kBounded}},
      {.name = "auto_getppid_attr_inline_only", .policy = A, .uring = ring::yes,
       .nr = SYS_getppid, .attr_paths = kInline, .plan = {kInline, none, kBounded}},
      {.name = "auto_getppid_attr_nowhere_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_getppid, .attr_paths = 0, .plan = {kPool, none, kBounded}},
      // REQUIRED attributes are the context's check on the plan
      // (required_ok), not the router's.
      {.name = "auto_required_paths_not_consulted", .policy = A, .uring = ring::yes,
       .nr = SYS_getppid, .required_paths = 0, .plan = {kInline, none, kBounded}},
      {.name = "auto_nanosleep_not_inline", .policy = A, .nr = SYS_nanosleep,
       .plan = {kPool, none, kUnbounded}},

      // ---- O_NONBLOCK on descriptors that are not files: inline ------------
      {.name = "auto_read_nb_pipe_inline", .policy = A, .uring = ring::yes, .nr = SYS_read,
       .args = {kPipeNb, 0, 4096}, .plan = {kInline, none, kUnbounded}, .translate_calls = 0,
       .bits = kInline},
      {.name = "auto_read_nb_socket_inline", .policy = A, .uring = ring::yes, .nr = SYS_read,
       .args = {kSocketNb, 0, 4096}, .plan = {kInline, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_read_nb_tty_inline", .policy = A, .uring = ring::yes, .nr = SYS_read,
       .args = {kTtyNb, 0, 4096}, .plan = {kInline, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_recvfrom_nb_socket_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_recvfrom, .args = {kSocketNb, 0, 4096}, .plan = {kInline, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_accept4_nb_socket_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_accept4, .args = {kSocketNb}, .plan = {kInline, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_write_nb_pipe_inline", .policy = A, .uring = ring::yes, .nr = SYS_write,
       .args = {kPipeNb2, 0, 4096}, .plan = {kInline, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_sendto_nb_socket_inline", .policy = A, .nr = SYS_sendto,
       .args = {kSocketNb, 0, 4096}, .plan = {kInline, none, kUnbounded}},
      {.name = "auto_read_nb_pipe_attr_lacks_inline_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kPipeNb, 0, 4096}, .attr_paths = kPool | kUring,
       .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_accept4_blocking_socket_pool", .policy = A, .nr = SYS_accept4,
       .args = {kSocket}, .plan = {kPool, none, kUnbounded}},
      // A regular file's or a block device's reads wait for the device
      // whatever O_NONBLOCK says; io_uring would answer -EAGAIN or poll.
      {.name = "auto_read_nb_regular_not_inline", .policy = A, .nr = SYS_read,
       .args = {kRegularNb, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "auto_preadv2_nb_regular_off_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegularNb, 0, 1, 0, 0, 0}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_read_nb_blockdev_not_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kBlockDevNb, 0, 4096}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_write_nb_blockdev_not_inline", .policy = A, .nr = SYS_write,
       .args = {kBlockDevNb, 0, 4096}, .plan = {kPool, none, kBounded}},
      // pread64 does not look at O_NONBLOCK (and a pipe refuses it).
      {.name = "auto_pread_nb_pipe_pool", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kPipeNb, 0, 4096, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_pread_nb_regular_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegularNb, 0, 4096, 0}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      // Every descriptor counts (splice: args 0 and 2), except closed ones.
      {.name = "auto_splice_nb_pipes_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_splice, .args = {kPipeNb, 0, kPipeNb2, 0, 4096, 0},
       .plan = {kInline, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_splice_nb_then_blocking_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_splice, .args = {kPipeNb, 0, kPipe2, 0, 4096, 0},
       .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_splice_blocking_then_nb_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_splice, .args = {kPipe, 0, kPipeNb2, 0, 4096, 0},
       .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_splice_nb_and_closed_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_splice, .args = {kPipeNb, 0, kClosed, 0, 4096, 0},
       .plan = {kInline, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_splice_blocking_pipes_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_splice, .args = {kPipe, 0, kPipe2, 0, 4096, 0},
       .plan = {kUring, none, kUnbounded}, .translate_calls = 1},

      // ---- Closed descriptors, AT_FDCWD and other negative numbers ---------
      {.name = "auto_read_closed_uring", .policy = A, .uring = ring::yes, .nr = SYS_read,
       .args = {kClosed, 0, 4096}, .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "auto_read_closed_pool_bounded", .policy = A, .nr = SYS_read,
       .args = {kClosed, 0, 4096}, .plan = {kPool, none, kBounded}},
      // At an offset a closed number stays off io_uring: reopened as a pipe
      // before io_uring looks it up, it would have its data consumed.
      {.name = "auto_pread_closed_pool", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kClosed, 0, 4096, 0}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "auto_read_at_fdcwd_ignored", .policy = A, .uring = ring::yes, .nr = SYS_read,
       .args = {at_cwd, 0, 4096}, .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "auto_read_negative_fd_pool_bounded", .policy = A, .nr = SYS_read,
       .args = {at_cwd, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "auto_openat_at_fdcwd_directory_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_openat, .args = {at_cwd, 0, O_RDONLY | O_DIRECTORY},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      // The kernel takes a descriptor as an unsigned int: the high bits of
      // the argument are not part of it.
      {.name = "auto_read_fd_high_bits_ignored", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {0xffffffff00000000u | kPipeNb, 0, 4096},
       .plan = {kInline, none, kUnbounded}, .translate_calls = 0},

      // ---- Blocking pipes, sockets, ttys: io_uring, else an unbounded worker
      {.name = "auto_read_blocking_pipe_pool", .policy = A, .nr = SYS_read,
       .args = {kPipe, 0, 4096}, .plan = {kPool, none, kUnbounded}, .bits = kPool},
      {.name = "auto_read_blocking_pipe_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kPipe, 0, 4096}, .plan = {kUring, none, kUnbounded},
       .translate_calls = 1},
      {.name = "auto_read_blocking_socket_pool", .policy = A, .nr = SYS_read,
       .args = {kSocket, 0, 4096}, .plan = {kPool, none, kUnbounded}},
      {.name = "auto_read_tty_pool", .policy = A, .nr = SYS_read, .args = {kTty, 0, 4096},
       .plan = {kPool, none, kUnbounded}},
      {.name = "auto_recvfrom_socket_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_recvfrom, .args = {kSocket, 0, 4096}, .plan = {kUring, none, kUnbounded},
       .translate_calls = 1},

      // ---- Positioned calls on descriptors without an offset: off io_uring -
      {.name = "auto_pread_pipe_pool", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kPipe, 0, 4096, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_preadv_socket_pool", .policy = A, .uring = ring::yes, .nr = SYS_preadv,
       .args = {kSocket, 0, 1, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_preadv2_offset_pipe_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kPipe, 0, 1, 0, 0, 0}, .plan = {kPool, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_preadv2_position_pipe_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kPipe, 0, 1, kPos, kPos, 0},
       .plan = {kUring, none, kUnbounded}, .translate_calls = 1},
      {.name = "auto_pwrite_pipe_pool", .policy = A, .uring = ring::yes, .nr = SYS_pwrite64,
       .args = {kPipe2, 0, 4096, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_pwritev_socket_pool", .policy = A, .uring = ring::yes, .nr = SYS_pwritev,
       .args = {kSocket, 0, 1, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_pread_tty_pool", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kTty, 0, 4096, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_pread_blockdev_uring", .policy = A, .uring = ring::yes, .nr = SYS_pread64,
       .args = {kBlockDev, 0, 4096, 0}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},

      // ---- Reads and writes at a regular file's position: off io_uring ----
      {.name = "auto_read_regular_position_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kRegular, 0, 4096}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_readv_regular_position_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_readv, .args = {kRegular, 0, 1}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_preadv2_position_regular_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, kPos, kPos, 0},
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "auto_write_regular_position_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_write, .args = {kRegularWo, 0, 4096}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_writev_regular_position_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_writev, .args = {kRegularWo, 0, 1}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "auto_pwritev2_position_regular_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_pwritev2, .args = {kRegularWo, 0, 1, kPos, kPos, 0},
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "auto_read_blockdev_position_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kBlockDev, 0, 4096}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "auto_preadv2_offset_regular_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, 0, 0}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "auto_pwrite_regular_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_pwrite64, .args = {kRegularWo, 0, 4096, 0}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "auto_pwritev2_offset_regular_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_pwritev2, .args = {kRegularWo, 0, 1, 0, 0, 0},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},

      // ---- Stream writes to what is not a regular file: off io_uring ------
      {.name = "auto_write_blocking_pipe_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_write, .args = {kPipe2, 0, 4096}, .plan = {kPool, none, kUnbounded},
       .translate_calls = 0},
      {.name = "auto_writev_socket_pool", .policy = A, .uring = ring::yes, .nr = SYS_writev,
       .args = {kSocket, 0, 1}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_pwritev2_position_pipe_pool", .policy = A, .uring = ring::yes,
       .nr = SYS_pwritev2, .args = {kPipe2, 0, 1, kPos, kPos, 0},
       .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_sendto_socket_pool", .policy = A, .uring = ring::yes, .nr = SYS_sendto,
       .args = {kSocket, 0, 4096}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_sendmsg_socket_pool", .policy = A, .uring = ring::yes, .nr = SYS_sendmsg,
       .args = {kSocket, 0, 0}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      {.name = "auto_write_tty_pool", .policy = A, .uring = ring::yes, .nr = SYS_write,
       .args = {kTty, 0, 4096}, .plan = {kPool, none, kUnbounded}, .translate_calls = 0},
      // The rule says "not a regular file": a block device's writes too.
      {.name = "auto_write_blockdev_pool", .policy = A, .uring = ring::yes, .nr = SYS_write,
       .args = {kBlockDev, 0, 4096}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "auto_pwrite_blockdev_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_pwrite64, .args = {kBlockDev, 0, 4096, 0}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},

      // ---- Opens: io_uring only where the open cannot wait on a FIFO ------
      {.name = "openat_rdonly_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {at_cwd, 0, O_RDONLY}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "openat_creat_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {at_cwd, 0, O_WRONLY | O_CREAT | O_TRUNC, 0644},
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "openat_directory_uring", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {kDir, 0, O_RDONLY | O_DIRECTORY}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "openat_path_uring", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {at_cwd, 0, O_PATH}, .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "openat_nonblock_uring", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {at_cwd, 0, O_RDONLY | O_NONBLOCK}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "openat_nonblock_translate_false_pool", .policy = A, .uring = ring::no,
       .nr = SYS_openat, .args = {at_cwd, 0, O_RDONLY | O_NONBLOCK},
       .plan = {kPool, none, kBounded}, .translate_calls = 1},
      {.name = "openat_mode_is_not_flags", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {at_cwd, 0, O_RDONLY, O_NONBLOCK}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "openat_dirfd_kind_ignored", .policy = A, .uring = ring::yes, .nr = SYS_openat,
       .args = {kPipeNb, 0, O_RDONLY}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "open_rdonly_pool", .policy = A, .uring = ring::yes, .nr = SYS_open,
       .args = {0, O_RDONLY}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "open_nonblock_uring", .policy = A, .uring = ring::yes, .nr = SYS_open,
       .args = {0, O_RDONLY | O_NONBLOCK}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "open_mode_is_not_flags", .policy = A, .uring = ring::yes, .nr = SYS_open,
       .args = {0, O_RDONLY, O_DIRECTORY}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "creat_pool", .policy = A, .uring = ring::yes, .nr = SYS_creat,
       .args = {0, 0644}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "creat_mode_is_not_flags", .policy = A, .uring = ring::yes, .nr = SYS_creat,
       .args = {0, O_PATH}, .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "openat2_rdonly_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {at_cwd, 0, addr(how_rdonly), sizeof(open_how)},
       .plan = {kPool, none, kBounded}, .translate_calls = 0},
      {.name = "openat2_creat_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {at_cwd, 0, addr(how_creat), sizeof(open_how)}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "openat2_path_uring", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {at_cwd, 0, addr(how_path), sizeof(open_how)}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "openat2_directory_uring", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {kDir, 0, addr(how_directory), sizeof(open_how)},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "openat2_nonblock_creat_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_openat2, .args = {at_cwd, 0, addr(how_nonblock_creat), sizeof(open_how)},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "openat2_bad_pointer_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {at_cwd, 0, kBadAddr, sizeof(open_how)}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "openat2_size_7_pool", .policy = A, .uring = ring::yes, .nr = SYS_openat2,
       .args = {at_cwd, 0, addr(how_path), 7}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},
      {.name = "openat2_size_8_reads_flags", .policy = A, .uring = ring::yes,
       .nr = SYS_openat2, .args = {at_cwd, 0, addr(how_path), 8},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "openat2_high_bits_not_flags", .policy = A, .uring = ring::yes,
       .nr = SYS_openat2, .args = {at_cwd, 0, addr(how_high_bit_path), sizeof(open_how)},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "uring_ctx_openat_rdonly_pool", .policy = U, .uring = ring::yes,
       .nr = SYS_openat, .args = {at_cwd, 0, O_RDONLY}, .plan = {kPool, none, kBounded},
       .translate_calls = 0},

      // ---- preadv2 with RWF_NOWAIT: its own inline attempt ----------------
      {.name = "preadv2_nowait_regular_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, 0, RWF_NOWAIT},
       .plan = {kInline, none, kBounded}, .bits = kInline},
      {.name = "preadv2_nowait_position_pipe_inline", .policy = A, .nr = SYS_preadv2,
       .args = {kPipe, 0, 1, kPos, kPos, RWF_NOWAIT}, .plan = {kInline, none, kUnbounded}},
      {.name = "preadv2_nowait_attr_lacks_inline_uring", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, 0, RWF_NOWAIT},
       .attr_paths = kPool | kUring, .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "preadv2_nowait_attr_lacks_inline_pool", .policy = A,
       .nowait_in_submitter = true, .nr = SYS_preadv2,
       .args = {kRegular, 0, 1, 0, 0, RWF_NOWAIT}, .attr_paths = kPool | kUring,
       .plan = {kPool, none, kBounded}},
      {.name = "preadv2_hipri_not_inline", .policy = A, .uring = ring::yes, .nr = SYS_preadv2,
       .args = {kRegular, 0, 1, 0, 0, RWF_HIPRI}, .plan = {kUring, none, kBounded},
       .translate_calls = 1},
      {.name = "preadv2_nowait_in_pos_h_not_flags", .policy = A, .uring = ring::yes,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 0, RWF_NOWAIT, 0},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "pwritev2_nowait_not_inline", .policy = A, .uring = ring::yes,
       .nr = SYS_pwritev2, .args = {kRegularWo, 0, 1, 0, 0, RWF_NOWAIT},
       .plan = {kUring, none, kBounded}, .translate_calls = 1},

      // ---- Nowait-first reads that start in the submitter (no io_uring) ---
      {.name = "split_pread_regular", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 4096},
       .plan = {kPool, submitter, kBounded}, .bits = kPool | kInline},
      {.name = "split_pread_offset_0", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .plan = {kPool, submitter, kBounded}},
      {.name = "split_pread_rdwr", .policy = A, .nowait_in_submitter = true, .nr = SYS_pread64,
       .args = {kRegularRw, 0, 4096, 0}, .plan = {kPool, submitter, kBounded}},
      {.name = "split_pread_nb_regular", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegularNb, 0, 4096, 0},
       .plan = {kPool, submitter, kBounded}},
      {.name = "split_preadv_regular", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_preadv, .args = {kRegular, 0, 1, 0}, .plan = {kPool, submitter, kBounded}},
      {.name = "split_preadv2_offset", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, 8192, 0, 0},
       .plan = {kPool, submitter, kBounded}},
      {.name = "split_unbounded_hint", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .flags = AIO2_IOCB_UNBOUNDED,
       .plan = {kPool, submitter, kUnbounded}, .bits = kPool | kInline},
      {.name = "split_attr_inline_pool", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .attr_paths = kInline | kPool,
       .plan = {kPool, submitter, kBounded}},
      {.name = "split_wants_nowait", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kPool, submitter, kBounded}},
      // A LEGACY context plans those with io_uring too: the attempt comes
      // first, and the rest goes to io_uring.
      {.name = "split_precedes_uring", .policy = A, .uring = ring::yes,
       .nowait_in_submitter = true, .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0},
       .plan = {kUring, submitter, kBounded}},
      {.name = "no_split_odirect", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kDirect, 0, 4096, 0}, .plan = {kPool, none, kBounded},
       .bits = kPool},
      {.name = "no_split_wronly", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegularWo, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_opath", .policy = A, .nowait_in_submitter = true, .nr = SYS_pread64,
       .args = {kPath, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_pipe", .policy = A, .nowait_in_submitter = true, .nr = SYS_pread64,
       .args = {kPipe, 0, 4096, 0}, .plan = {kPool, none, kUnbounded}},
      {.name = "no_split_blockdev", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kBlockDev, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_closed", .policy = A, .nowait_in_submitter = true, .nr = SYS_pread64,
       .args = {kClosed, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_negative_offset", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, u64(-4096)},
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_preadv2_negative_offset", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, u64(-2), 0, 0},
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_read_position", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_read, .args = {kRegular, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_preadv2_position", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_preadv2, .args = {kRegular, 0, 1, kPos, kPos, 0},
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_thread_bound", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .thread_bound = true,
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_attr_lacks_inline", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .attr_paths = kPool | kUring,
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_attr_lacks_pool", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .attr_paths = kInline | kUring,
       .plan = {kPool, none, kBounded}},
      {.name = "no_split_without_submitter_reads", .policy = A, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .plan = {kPool, none, kBounded}},
      {.name = "no_split_pwrite", .policy = A, .nowait_in_submitter = true,
       .nr = SYS_pwrite64, .args = {kRegularRw, 0, 4096, 0}, .plan = {kPool, none, kBounded}},

      // ---- On io_uring: a read measuring its RWF_NOWAIT attempt -----------
      {.name = "uring_pread_wants_nowait_executor", .policy = A, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kUring, executor, kBounded}, .translate_calls = 1, .bits = kUring},
      {.name = "uring_read_pipe_wants_nowait_executor", .policy = A, .uring = ring::yes,
       .nr = SYS_read, .args = {kPipe, 0, 4096}, .wants_nowait = true,
       .plan = {kUring, executor, kUnbounded}, .translate_calls = 1},
      {.name = "uring_ctx_preadv_wants_nowait_executor", .policy = U, .uring = ring::yes,
       .nr = SYS_preadv, .args = {kRegular, 0, 1, 0}, .wants_nowait = true,
       .plan = {kUring, executor, kBounded}, .translate_calls = 1},
      {.name = "uring_pwrite_wants_nowait_none", .policy = A, .uring = ring::yes,
       .nr = SYS_pwrite64, .args = {kRegularWo, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kUring, none, kBounded}, .translate_calls = 1},
      {.name = "uring_recvfrom_wants_nowait_none", .policy = A, .uring = ring::yes,
       .nr = SYS_recvfrom, .args = {kSocket, 0, 4096}, .wants_nowait = true,
       .plan = {kUring, none, kUnbounded}, .translate_calls = 1},
      {.name = "uring_translate_false_wants_nowait_none", .policy = A, .uring = ring::no,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kPool, none, kBounded}, .translate_calls = 1},
      {.name = "pool_wants_nowait_none", .policy = A, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .wants_nowait = true, .plan = {kPool, none, kBounded}},
      {.name = "pool_ctx_wants_nowait_none", .policy = P, .uring = ring::yes,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .wants_nowait = true,
       .plan = {kPool, none, kBounded}, .translate_calls = 0},

      // ---- Pool workers: unbounded for calls that may wait for ever -------
      {.name = "class_forever_nanosleep_unbounded", .policy = P, .nr = SYS_nanosleep,
       .plan = {kPool, none, kUnbounded}},
      {.name = "class_never_getppid_bounded", .policy = P, .nr = SYS_getppid,
       .plan = {kPool, none, kBounded}},
      {.name = "class_finite_fsync_regular_bounded", .policy = P, .nr = SYS_fsync,
       .args = {kRegular}, .plan = {kPool, none, kBounded}},
      {.name = "class_finite_fsync_pipe_bounded", .policy = P, .nr = SYS_fsync,
       .args = {kPipe}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_regular_bounded", .policy = P, .nr = SYS_read,
       .args = {kRegular, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_blockdev_bounded", .policy = P, .nr = SYS_read,
       .args = {kBlockDev, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_pipe_unbounded", .policy = P, .nr = SYS_read, .args = {kPipe, 0, 4096},
       .plan = {kPool, none, kUnbounded}},
      {.name = "class_fd_socket_unbounded", .policy = P, .nr = SYS_write,
       .args = {kSocket, 0, 4096}, .plan = {kPool, none, kUnbounded}},
      {.name = "class_fd_closed_bounded", .policy = P, .nr = SYS_read,
       .args = {kClosed, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_ioctl_tty_unbounded", .policy = P, .nr = SYS_ioctl,
       .args = {kTty, TCGETS, 0}, .plan = {kPool, none, kUnbounded}},
      {.name = "class_fd_ioctl_blockdev_bounded", .policy = P, .nr = SYS_ioctl,
       .args = {kBlockDev, TCGETS, 0}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_sendfile_files_bounded", .policy = P, .nr = SYS_sendfile,
       .args = {kRegularWo, kRegular, 0, 4096}, .plan = {kPool, none, kBounded}},
      {.name = "class_fd_sendfile_to_socket_unbounded", .policy = P, .nr = SYS_sendfile,
       .args = {kSocket, kRegular, 0, 4096}, .plan = {kPool, none, kUnbounded}},
      {.name = "class_fd_sendfile_from_pipe_unbounded", .policy = P, .nr = SYS_sendfile,
       .args = {kRegularWo, kPipe, 0, 4096}, .plan = {kPool, none, kUnbounded}},
      {.name = "class_fd_sendfile_from_closed_bounded", .policy = P, .nr = SYS_sendfile,
       .args = {kRegularWo, kClosed, 0, 4096}, .plan = {kPool, none, kBounded}},
      // Only the arguments the table marks as descriptors are looked up: a
      // count that happens to be a pipe's number is a count.
      {.name = "class_fd_args_only", .policy = P, .nr = SYS_pread64,
       .args = {kRegular, 0, kPipe, 0}, .plan = {kPool, none, kBounded}},
      {.name = "hint_unbounded_regular", .policy = P, .nr = SYS_pread64,
       .args = {kRegular, 0, 4096, 0}, .flags = AIO2_IOCB_UNBOUNDED,
       .plan = {kPool, none, kUnbounded}},
      {.name = "hint_unbounded_never", .policy = P, .nr = SYS_getppid,
       .flags = AIO2_IOCB_UNBOUNDED, .plan = {kPool, none, kUnbounded}},
      {.name = "hint_unbounded_finite", .policy = P, .nr = SYS_fsync, .args = {kRegular},
       .flags = AIO2_IOCB_UNBOUNDED, .plan = {kPool, none, kUnbounded}},
      {.name = "hint_bounded_pipe", .policy = P, .nr = SYS_read, .args = {kPipe, 0, 4096},
       .flags = AIO2_IOCB_BOUNDED, .plan = {kPool, none, kBounded}},
      {.name = "hint_bounded_forever", .policy = P, .nr = SYS_nanosleep,
       .flags = AIO2_IOCB_BOUNDED, .plan = {kPool, none, kBounded}},
      {.name = "hint_bounded_auto_pool", .policy = A, .nr = SYS_read, .args = {kPipe, 0, 4096},
       .flags = AIO2_IOCB_BOUNDED, .plan = {kPool, none, kBounded}},
      {.name = "hint_unbounded_uring_ctx_pool", .policy = U, .uring = ring::no,
       .nr = SYS_pread64, .args = {kRegular, 0, 4096, 0}, .flags = AIO2_IOCB_UNBOUNDED,
       .plan = {kPool, none, kUnbounded}},
  };
}

const char *path_name(uint32_t path) {
  switch (path) {
    case AIO2_PATH_INLINE: return "INLINE";
    case AIO2_PATH_URING: return "URING";
    case AIO2_PATH_POOL: return "POOL";
    default: return "?";
  }
}

uint32_t effective_policy(const row &r) {
  const uint32_t field = r.flags & AIO2_IOCB_POLICY_MASK;
  return field ? (field >> AIO2_IOCB_POLICY_SHIFT) - 1 : r.policy;
}

class router_table : public testing::TestWithParam<row> {};

TEST_P(router_table, plan) {
  const row &r = GetParam();
  ASSERT_NE(r.plan.path, 0u) << "the row states no plan";
  aio2_iocb io{};
  io.len = sizeof io;
  io.nr = static_cast<uint32_t>(r.nr);
  for (unsigned i = 0; i < 6; i++) io.args[i] = r.args[i];
  io.flags = r.flags;
  ASSERT_EQ(io.flags & ~AIO2_IOCB_ALL, 0u) << "flags parse_request would refuse";

  aio2::core::parsed_request pr;
  pr.io = &io;
  pr.info = aio2::sys::lookup(r.nr);
  ASSERT_NE(pr.info, nullptr);
  ASSERT_EQ(pr.info->refused, nullptr) << pr.info->name << " is refused before routing";
  pr.attr_paths = r.attr_paths;
  pr.required_paths = r.required_paths;
  pr.thread_bound = r.thread_bound;
  pr.wants_nowait = r.wants_nowait;

  fake_fds fds;
  fake_uring uring;
  uring.answer = r.uring == ring::yes;
  aio2::core::router_env env;
  env.policy = r.policy;
  env.nowait_in_submitter = r.nowait_in_submitter;
  if (r.uring != ring::none) {
    env.uring_translate = &fake_translate;
    env.uring = &uring;
  }
  alignas(8) unsigned char sqe[64] = {};

  const aio2::exec::plan p = aio2::core::route(pr, fds, env, sqe);

  EXPECT_EQ(p.path, r.plan.path) << "planned " << path_name(p.path) << ", expected "
                                 << path_name(r.plan.path);
  EXPECT_EQ(p.attempt, r.plan.how);
  EXPECT_EQ(p.unbounded, r.plan.unbounded);
  if (r.bits != 0) {
    EXPECT_EQ(p.bits(), r.bits);
  }
  if (r.translate_calls != kAny) {
    EXPECT_EQ(uring.calls, r.translate_calls);
  }

  // POOL and INLINE never ask io_uring.
  const uint32_t policy = effective_policy(r);
  if (policy == AIO2_POLICY_POOL || policy == AIO2_POLICY_INLINE) {
    EXPECT_EQ(uring.calls, 0);
  }
  // io_uring is asked about this request, with the router's entry.
  if (uring.calls > 0) {
    EXPECT_EQ(uring.nr, io.nr);
    EXPECT_EQ(uring.args, io.args);
    EXPECT_EQ(uring.sqe, static_cast<void *>(sqe));
  }
  // Planned on io_uring: only when it said yes, and the entry is its own.
  if (p.path == AIO2_PATH_URING) {
    EXPECT_GT(uring.calls, 0);
    EXPECT_TRUE(uring.answer);
    for (unsigned char c : sqe) ASSERT_EQ(c, kSqeMark);
  }
  if (p.attempt == attempt::executor) {
    EXPECT_EQ(p.path, AIO2_PATH_URING);
  }
  // The rest of a nowait-first read that starts in the submitter goes to
  // io_uring when io_uring said yes, else to the pool.
  if (p.attempt == attempt::submitter) {
    EXPECT_EQ(p.path, uring.answer && uring.calls > 0 ? AIO2_PATH_URING : AIO2_PATH_POOL);
  }
}

INSTANTIATE_TEST_SUITE_P(rules, router_table, testing::ValuesIn(rows()),
                         [](const testing::TestParamInfo<row> &i) {
                           return std::string(i.param.name);
                         });

}  // namespace
