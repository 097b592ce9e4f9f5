// SPDX-License-Identifier: MIT
// Which system calls are reads and writes, by number: the cache attribute,
// the ioprio attribute, routing and the continuation of partly cached reads
// all ask, and must agree.
#pragma once

#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "aio2/abi.h"

namespace aio2::sys {

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

// The reads that take an iovec array (args[1]) and its length (args[2]).
inline bool is_vector_read(uint32_t nr) noexcept {
  return nr == SYS_readv || nr == SYS_preadv || nr == SYS_preadv2;
}

// Reads what the read `io` asks for at `off` (-1: the file position) with
// RWF_NOWAIT, into the request's own buffers, without moving the position
// for an explicit offset: the bytes read, or -errno (-EAGAIN: the first page
// is not cached). The iovec array of a vectored read is the caller's.
inline int64_t read_nowait(const aio2_iocb &io, uint64_t off) noexcept {
  const uint64_t *a = io.args;
  iovec one{reinterpret_cast<void *>(a[1]), static_cast<size_t>(a[2])};
  const bool vec = is_vector_read(io.nr);
  const uint64_t iov = vec ? a[1] : reinterpret_cast<uint64_t>(&one);
  const uint64_t cnt = vec ? a[2] : 1;
  const uint64_t flags = RWF_NOWAIT | (io.nr == SYS_preadv2 ? a[5] : 0);
  const long n = syscall(SYS_preadv2, a[0], iov, cnt, off, 0L, flags);
  return n < 0 ? -errno : n;
}

}  // namespace aio2::sys
