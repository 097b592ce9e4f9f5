// SPDX-License-Identifier: MIT
#include "core/allowlist.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

#include "sys/syscall_table.h"

namespace aio2::core {

int allowlist::build(const aio2_restriction *r, size_t n) noexcept {
  std::memset(sys_, 0, sizeof sys_);
  std::memset(attrs_, 0, sizeof attrs_);
  if (r == nullptr && n != 0) return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    const aio2_restriction &e = r[i];
    int err = 0;
    if (e.reserved != 0) {
      err = -EINVAL;
    } else if (e.kind == AIO2_RESTRICT_SYSCALL) {
      const sys::syscall_info *info = sys::lookup(static_cast<long>(e.value));
      if (e.value >= kSyscalls || info == nullptr) err = -EINVAL;
      else sys_[e.value / 64] |= uint64_t{1} << (e.value % 64);
    } else if (e.kind == AIO2_RESTRICT_ATTR) {
      if (e.value >= kAttrs) err = -EINVAL;
      else attrs_[e.value / 64] |= uint64_t{1} << (e.value % 64);
    } else {
      err = -EINVAL;
    }
    if (err) {
      std::memset(sys_, 0, sizeof sys_);
      std::memset(attrs_, 0, sizeof attrs_);
      return err;
    }
  }
  return 0;
}

int allowlist::check(uint64_t nr, const unsigned char *attrs, size_t attr_bytes) const noexcept {
  if (!syscall_allowed(nr)) return -EPERM;
  for (size_t off = 0; off < attr_bytes;) {
    if (attr_bytes - off < sizeof(aio2_attr)) return -EINVAL;
    aio2_attr a;
    std::memcpy(&a, attrs + off, sizeof a);
    if (a.len < sizeof a || (a.len & 7u) || a.len > attr_bytes - off) return -EINVAL;
    if (!attr_allowed(a.id)) return -EPERM;
    off += a.len;
  }
  return 0;
}

int allowlist_check_bytes(const void *restrictions, size_t rbytes, const void *req,
                          size_t len) noexcept {
  // 72 KiB of bits: on the heap, and the entries copied out to be aligned.
  std::unique_ptr<allowlist> a(new (std::nothrow) allowlist);
  const size_t n = rbytes / sizeof(aio2_restriction);
  std::unique_ptr<aio2_restriction[]> entries(new (std::nothrow) aio2_restriction[n ? n : 1]);
  if (!a || !entries) return -ENOMEM;
  if (n) std::memcpy(entries.get(), restrictions, n * sizeof(aio2_restriction));
  if (int err = a->build(entries.get(), n)) return err;
  if (len < sizeof(aio2_iocb)) return -EINVAL;
  aio2_iocb io;
  std::memcpy(&io, req, sizeof io);
  const size_t end = io.len < len ? io.len : len;
  if (end < sizeof io) return -EINVAL;
  return a->check(io.nr, static_cast<const unsigned char *>(req) + sizeof io, end - sizeof io);
}

}  // namespace aio2::core
