// SPDX-License-Identifier: MIT
// The io_uring executor's translations: each system call io_uring
// implements, as the submission entry that has the call's meaning, and the
// argument values for which it has not (then the call runs elsewhere).
// docs/syscalls.md lists them.
#include <fcntl.h>
#include <sys/syscall.h>

#include <climits>
#include <cstring>

#include "exec/uring.h"
#include "sys/rw_args.h"
#include "sys/syscall_table.h"

namespace aio2::exec {

namespace {

void *ptr(uint64_t v) noexcept { return reinterpret_cast<void *>(v); }
int fd_of(uint64_t v) noexcept { return static_cast<int>(v); }
// A length above the kernel's limit is clipped as the kernel clips it, which
// also fits io_uring's 32-bit sqe->len.
unsigned clip(uint64_t len) noexcept { return static_cast<unsigned>(sys::clip_rw(len)); }

}  // namespace

bool uring::translate(uint32_t nr, const uint64_t *a, void *entry) const noexcept {
  if (!active()) return false;
  auto *sqe = static_cast<io_uring_sqe *>(entry);
  if (!translate_call(nr, a, sqe)) return false;
  // A registered descriptor by its slot in the file tables, in the entries
  // whose descriptor is the file the call works on (a directory's, a
  // socket's or a pipe's never is: only regular files and block devices
  // are registered).
  switch (sqe->opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
    case IORING_OP_FSYNC:
    case IORING_OP_SYNC_FILE_RANGE:
    case IORING_OP_FALLOCATE:
    case IORING_OP_FADVISE:
      if (const int slot = fixed_slot(sqe->fd); slot >= 0) {
        sqe->fd = slot;
        sqe->flags |= IOSQE_FIXED_FILE;
      }
      break;
    default:
      break;
  }
  // A read or write into a registered buffer by its index.
  if ((sqe->opcode == IORING_OP_READ || sqe->opcode == IORING_OP_WRITE) &&
      nbuffers_.load(std::memory_order_relaxed) != 0) {
    if (const int b = fixed_buffer(sqe->addr, sqe->len); b >= 0) {
      sqe->opcode = sqe->opcode == IORING_OP_READ ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED;
      sqe->buf_index = static_cast<uint16_t>(b);
    }
  }
  return true;
}

int uring::fixed_buffer(uint64_t addr, uint64_t len) const noexcept {
  // Acquire: pairs with register_buffers' release (the array's contents).
  const unsigned n = nbuffers_.load(std::memory_order_acquire);
  const buffer *b = buffers_.get();
  // The last buffer that begins at or below addr (they do not overlap).
  unsigned lo = 0, hi = n;
  while (lo < hi) {
    const unsigned mid = (lo + hi) / 2;
    if (b[mid].begin <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -1;
  const buffer &in = b[lo - 1];
  return addr + len <= in.end && addr + len >= addr ? static_cast<int>(in.index) : -1;
}

int uring::fixed_slot(int fd) const noexcept {
  const std::atomic<uint16_t> *m = fixed_.load(std::memory_order_acquire);
  if (m == nullptr || fd < 0 || fd >= kFdRange) return -1;
  // Acquire: pairs with add_fixed_file's store, made after every table
  // holds the file.
  return static_cast<int>(m[fd].load(std::memory_order_acquire)) - 1;
}

bool uring::translate_call(uint32_t nr, const uint64_t *a, io_uring_sqe *sqe) const noexcept {
  // -1 means "the file position" to io_uring; the positioned calls refuse
  // any negative offset (their own -EINVAL, the call's answer), and
  // preadv2/pwritev2 take -1 as io_uring does.
  if (sys::bad_offset(nr, a)) return false;
  const sys::syscall_info *info = sys::lookup(static_cast<long>(nr));
  if (info == nullptr || info->uring_op < 0 || !io_uring_opcode_supported(probe_, info->uring_op))
    return false;
  std::memset(sqe, 0, sizeof *sqe);
  const int cwd = AT_FDCWD;
  switch (nr) {
    case SYS_read:
      io_uring_prep_read(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), static_cast<uint64_t>(-1));
      return true;
    case SYS_pread64:
      io_uring_prep_read(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), a[3]);
      return true;
    case SYS_write:
      io_uring_prep_write(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), static_cast<uint64_t>(-1));
      return true;
    case SYS_pwrite64:
      io_uring_prep_write(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), a[3]);
      return true;
    case SYS_readv:
    case SYS_writev:
    case SYS_preadv:
    case SYS_pwritev:
    case SYS_preadv2:
    case SYS_pwritev2: {
      const bool v2 = sys::is_v2(nr);
      if (a[2] > sys::kMaxIov) return false;
      const uint64_t off =
          sys::where(nr, a) == sys::rw_at::position ? static_cast<uint64_t>(-1) : a[3];
      const auto *iov = static_cast<const iovec *>(ptr(a[1]));
      const auto cnt = static_cast<unsigned>(a[2]);
      const bool rd = sys::is_read(nr);
      if (rd) io_uring_prep_readv(sqe, fd_of(a[0]), iov, cnt, off);
      else io_uring_prep_writev(sqe, fd_of(a[0]), iov, cnt, off);
      // The call refuses unknown high bits itself; io_uring without IOPOLL
      // refuses RWF_HIPRI, which the call takes as a hint.
      if (v2 && ((a[5] >> 32) || (a[5] & RWF_HIPRI))) return false;
      if (v2) sqe->rw_flags = static_cast<__kernel_rwf_t>(a[5]);
      return true;
    }
    case SYS_fsync:
      io_uring_prep_fsync(sqe, fd_of(a[0]), 0);
      return true;
    case SYS_fdatasync:
      io_uring_prep_fsync(sqe, fd_of(a[0]), IORING_FSYNC_DATASYNC);
      return true;
    case SYS_sync_file_range:  // sqe->len is 32 bits
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_sync_file_range(sqe, fd_of(a[0]), static_cast<unsigned>(a[2]), a[1],
                                    static_cast<int>(a[3]));
      return true;
    case SYS_fallocate:
      io_uring_prep_fallocate(sqe, fd_of(a[0]), static_cast<int>(a[1]),
                              static_cast<off_t>(a[2]), static_cast<off_t>(a[3]));
      return true;
    case SYS_fadvise64:  // sqe->len is 32 bits before Linux 6.7
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_fadvise(sqe, fd_of(a[0]), a[1], static_cast<off_t>(a[2]),
                            static_cast<int>(a[3]));
      return true;
    case SYS_madvise:
      if (a[1] > UINT32_MAX) return false;
      io_uring_prep_madvise(sqe, ptr(a[0]), static_cast<off_t>(a[1]), static_cast<int>(a[2]));
      return true;
    case SYS_open:
      io_uring_prep_openat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                           static_cast<int>(a[1]), static_cast<mode_t>(a[2]));
      return true;
    case SYS_openat:
      io_uring_prep_openat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                           static_cast<int>(a[2]), static_cast<mode_t>(a[3]));
      return true;
    case SYS_openat2:  // the kernel copies `size` bytes of open_how, as the call does
      io_uring_prep_rw(IORING_OP_OPENAT2, sqe, fd_of(a[0]), ptr(a[1]),
                       static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]), a[2]);
      return true;
    case SYS_close:
      io_uring_prep_close(sqe, fd_of(a[0]));
      return true;
    case SYS_statx:
      io_uring_prep_statx(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                          static_cast<int>(a[2]), static_cast<unsigned>(a[3]),
                          static_cast<struct statx *>(ptr(a[4])));
      return true;
    case SYS_rename:
      io_uring_prep_renameat(sqe, cwd, static_cast<const char *>(ptr(a[0])), cwd,
                             static_cast<const char *>(ptr(a[1])), 0);
      return true;
    case SYS_renameat:
    case SYS_renameat2:
      io_uring_prep_renameat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                             fd_of(a[2]), static_cast<const char *>(ptr(a[3])),
                             nr == SYS_renameat2 ? static_cast<unsigned>(a[4]) : 0);
      return true;
    case SYS_unlink:
    case SYS_rmdir:
      io_uring_prep_unlinkat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                             nr == SYS_rmdir ? AT_REMOVEDIR : 0);
      return true;
    case SYS_unlinkat:
      io_uring_prep_unlinkat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                             static_cast<int>(a[2]));
      return true;
    case SYS_mkdir:
      io_uring_prep_mkdirat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                            static_cast<mode_t>(a[1]));
      return true;
    case SYS_mkdirat:
      io_uring_prep_mkdirat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                            static_cast<mode_t>(a[2]));
      return true;
    case SYS_symlink:
      io_uring_prep_symlinkat(sqe, static_cast<const char *>(ptr(a[0])), cwd,
                              static_cast<const char *>(ptr(a[1])));
      return true;
    case SYS_symlinkat:
      io_uring_prep_symlinkat(sqe, static_cast<const char *>(ptr(a[0])), fd_of(a[1]),
                              static_cast<const char *>(ptr(a[2])));
      return true;
    case SYS_link:
      io_uring_prep_linkat(sqe, cwd, static_cast<const char *>(ptr(a[0])), cwd,
                           static_cast<const char *>(ptr(a[1])), 0);
      return true;
    case SYS_linkat:
      io_uring_prep_linkat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])), fd_of(a[2]),
                           static_cast<const char *>(ptr(a[3])), static_cast<int>(a[4]));
      return true;
    case SYS_socket:
      io_uring_prep_socket(sqe, static_cast<int>(a[0]), static_cast<int>(a[1]),
                           static_cast<int>(a[2]), 0);
      return true;
    case SYS_accept:
    case SYS_accept4:
      io_uring_prep_accept(sqe, fd_of(a[0]), static_cast<sockaddr *>(ptr(a[1])),
                           static_cast<socklen_t *>(ptr(a[2])),
                           nr == SYS_accept4 ? static_cast<int>(a[3]) : 0);
      return true;
    case SYS_connect:
      io_uring_prep_connect(sqe, fd_of(a[0]), static_cast<const sockaddr *>(ptr(a[1])),
                            static_cast<socklen_t>(a[2]));
      return true;
    case SYS_recvfrom:  // io_uring's recv does not return the source address
      if (a[4] != 0 || a[5] != 0 || a[2] > UINT32_MAX) return false;
      io_uring_prep_recv(sqe, fd_of(a[0]), ptr(a[1]), a[2], static_cast<int>(a[3]));
      return true;
    case SYS_recvmsg:
      io_uring_prep_recvmsg(sqe, fd_of(a[0]), static_cast<msghdr *>(ptr(a[1])),
                            static_cast<unsigned>(a[2]));
      return true;
    case SYS_shutdown:
      io_uring_prep_shutdown(sqe, fd_of(a[0]), static_cast<int>(a[1]));
      return true;
    case SYS_splice:
      // io_uring takes the offsets by value and does not move the caller's
      // loff_t variables as the call does: only splices without them.
      if (a[1] != 0 || a[3] != 0 || a[4] > UINT32_MAX) return false;
      io_uring_prep_splice(sqe, fd_of(a[0]), -1, fd_of(a[2]), -1, static_cast<unsigned>(a[4]),
                           static_cast<unsigned>(a[5]));
      return true;
    case SYS_tee:
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_tee(sqe, fd_of(a[0]), fd_of(a[1]), static_cast<unsigned>(a[2]),
                        static_cast<unsigned>(a[3]));
      return true;
    case SYS_epoll_ctl:
      io_uring_prep_epoll_ctl(sqe, fd_of(a[0]), fd_of(a[2]), static_cast<int>(a[1]),
                              static_cast<epoll_event *>(ptr(a[3])));
      return true;
    case SYS_getxattr:
      io_uring_prep_getxattr(sqe, static_cast<const char *>(ptr(a[1])),
                             static_cast<char *>(ptr(a[2])), static_cast<const char *>(ptr(a[0])),
                             static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]));
      return true;
    case SYS_fgetxattr:
      io_uring_prep_fgetxattr(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                              static_cast<char *>(ptr(a[2])),
                              static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]));
      return true;
    case SYS_setxattr:
      if (a[3] > UINT32_MAX) return false;
      io_uring_prep_setxattr(sqe, static_cast<const char *>(ptr(a[1])),
                             static_cast<const char *>(ptr(a[2])),
                             static_cast<const char *>(ptr(a[0])), static_cast<int>(a[4]),
                             static_cast<unsigned>(a[3]));
      return true;
    case SYS_fsetxattr:
      if (a[3] > UINT32_MAX) return false;
      io_uring_prep_fsetxattr(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                              static_cast<const char *>(ptr(a[2])), static_cast<int>(a[4]),
                              static_cast<unsigned>(a[3]));
      return true;
    default:
      return false;  // an opcode in the table without a translation here
  }
}

}  // namespace aio2::exec
