// SPDX-License-Identifier: MIT
#include "sys/rw_args.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace aio2::sys {

int iov_total(uint64_t uiov, uint64_t cnt, uint64_t *total) noexcept {
  if (cnt > kMaxIov) return -EINVAL;
  uint64_t sum = 0;
  iovec chunk[64];
  const pid_t self = getpid();
  for (uint64_t done = 0; done < cnt;) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(cnt - done, std::size(chunk)));
    const iovec local{chunk, k * sizeof(iovec)};
    const iovec remote{reinterpret_cast<void *>(uiov + done * sizeof(iovec)), k * sizeof(iovec)};
    const ssize_t got = process_vm_readv(self, &local, 1, &remote, 1, 0);
    if (got < 0 && errno != EFAULT) return -errno;
    if (got != static_cast<ssize_t>(k * sizeof(iovec))) return -EINVAL;
    for (size_t i = 0; i < k; i++) {
      if (static_cast<ssize_t>(chunk[i].iov_len) < 0) return -EINVAL;
      sum = clip_rw(sum + chunk[i].iov_len);
    }
    done += k;
  }
  *total = sum;
  return 0;
}

int64_t read_nowait(const aio2_iocb &io, uint64_t off) noexcept {
  const uint64_t *a = io.args;
  iovec one{reinterpret_cast<void *>(a[1]), static_cast<size_t>(a[2])};
  const bool vec = is_vectored(io.nr);
  const uint64_t iov = vec ? a[1] : reinterpret_cast<uint64_t>(&one);
  const uint64_t cnt = vec ? a[2] : 1;
  const uint64_t flags = RWF_NOWAIT | (io.nr == SYS_preadv2 ? a[5] : 0);
  const long n = syscall(SYS_preadv2, a[0], iov, cnt, off, 0L, flags);
  return n < 0 ? -errno : n;
}

}  // namespace aio2::sys
