// SPDX-License-Identifier: MIT
// The argument rules of the read and write system calls, written once:
// which calls read or write, where they do it (the file position or an
// explicit offset), which offsets and lengths the kernel accepts, how many
// iovecs, and the RWF_NOWAIT attempt of a read. The router, the io_uring
// translations, nowait-first reads and the cache and ioprio attributes all
// ask here, so they cannot disagree.
#pragma once

#include <sys/syscall.h>
#include <sys/uio.h>

#include <cstdint>

#include "aio2/abi.h"

namespace aio2::sys {

// The kernel clips one read or write to this many bytes (MAX_RW_COUNT with
// 4 KiB pages).
constexpr uint64_t kMaxRw = 0x7ffff000u;
// The most iovecs a vectored call accepts (UIO_MAXIOV).
constexpr uint64_t kMaxIov = 1024;

// read, pread64, readv, preadv, preadv2.
inline bool is_read(uint32_t nr) noexcept {
  return nr == SYS_read || nr == SYS_pread64 || nr == SYS_readv || nr == SYS_preadv ||
         nr == SYS_preadv2;
}

// write, pwrite64, writev, pwritev, pwritev2.
inline bool is_write(uint32_t nr) noexcept {
  return nr == SYS_write || nr == SYS_pwrite64 || nr == SYS_writev || nr == SYS_pwritev ||
         nr == SYS_pwritev2;
}

// The reads and writes that take an iovec array (args[1]) and its length
// (args[2]).
inline bool is_vectored(uint32_t nr) noexcept {
  return nr == SYS_readv || nr == SYS_preadv || nr == SYS_preadv2 || nr == SYS_writev ||
         nr == SYS_pwritev || nr == SYS_pwritev2;
}

// preadv2 and pwritev2: flags in args[5], and offset -1 means the position.
inline bool is_v2(uint32_t nr) noexcept { return nr == SYS_preadv2 || nr == SYS_pwritev2; }

// Where a read or write happens.
enum class rw_at : uint8_t {
  none,      // not a read or write
  position,  // the file position, which it moves (read, readv, preadv2 at -1...)
  offset,    // args[3], an explicit offset; the position does not move
};

// Where the read or write `nr` with `args` happens. On 64-bit systems the
// preadv family's offset is args[3] whole (the kernel ignores pos_h).
inline rw_at where(uint32_t nr, const uint64_t *args) noexcept {
  switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
      return rw_at::position;
    case SYS_pread64: case SYS_pwrite64: case SYS_preadv: case SYS_pwritev:
      return rw_at::offset;
    case SYS_preadv2: case SYS_pwritev2:
      return static_cast<int64_t>(args[3]) == -1 ? rw_at::position : rw_at::offset;
    default:
      return rw_at::none;
  }
}
inline rw_at where(const aio2_iocb &io) noexcept { return where(io.nr, io.args); }

// A call at an explicit offset that the kernel refuses with -EINVAL before
// doing anything: the offset is negative (preadv2's -1 is the position).
inline bool bad_offset(uint32_t nr, const uint64_t *args) noexcept {
  return where(nr, args) == rw_at::offset && static_cast<int64_t>(args[3]) < 0;
}
inline bool bad_offset(const aio2_iocb &io) noexcept { return bad_offset(io.nr, io.args); }

// `len` clipped as the kernel clips one read or write.
inline uint64_t clip_rw(uint64_t len) noexcept { return len < kMaxRw ? len : kMaxRw; }

// The calls whose descriptor's O_NONBLOCK makes them return -EAGAIN instead
// of waiting.
inline bool honours_nonblock(uint32_t nr) noexcept {
  switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_preadv2:
    case SYS_pwritev2: case SYS_recvfrom: case SYS_sendto: case SYS_recvmsg: case SYS_sendmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_splice: case SYS_tee:
      return true;
    default:
      return false;
  }
}

// Writes that a blocking pipe or socket takes whole from the call (which
// waits for room) and only in part from io_uring (which stops at what fits).
inline bool stream_write(uint32_t nr) noexcept {
  return nr == SYS_write || nr == SYS_writev || nr == SYS_pwritev2 || nr == SYS_sendto ||
         nr == SYS_sendmsg;
}

// Total length of the caller's `cnt` iovecs at `uiov`, clipped as the kernel
// clips it. The array is the caller's memory, possibly bad: it is copied
// with process_vm_readv on ourselves, which fails with EFAULT instead of
// faulting. Returns 0, -EINVAL (the call will refuse it, or would fault), or
// another -errno when the copy itself was refused (seccomp, say).
int iov_total(uint64_t uiov, uint64_t cnt, uint64_t *total) noexcept;

// Reads what the read `io` asks for at `off` (-1: the file position) with
// RWF_NOWAIT, into the request's own buffers, without moving the position
// for an explicit offset: the bytes read, or -errno (-EAGAIN: the first page
// is not cached). The iovec array of a vectored read is the caller's.
int64_t read_nowait(const aio2_iocb &io, uint64_t off) noexcept;

}  // namespace aio2::sys
