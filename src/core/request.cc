// SPDX-License-Identifier: MIT
#include "core/request.h"

#include <cerrno>
#include <cstring>

#include "sys/syscall_table.h"

namespace aio2 {

namespace {

aio2_attr attr_at(const unsigned char *p) {
  aio2_attr a;
  std::memcpy(&a, p, sizeof a);
  return a;
}

}  // namespace

int parse_request(const unsigned char *p, size_t left, parsed_request *out) noexcept {
  if (left < sizeof(aio2_iocb)) return -EINVAL;
  const auto *io = reinterpret_cast<const aio2_iocb *>(p);
  const uint32_t len = io->len;
  if (len < sizeof(aio2_iocb) || (len & 7u) || len > left) return -EINVAL;
  if (len > kMaxRequestBytes) return -E2BIG;
  if (io->reserved != 0) return -EINVAL;
  if ((io->flags & ~AIO2_IOCB_ALL) ||
      (io->flags & (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED)) ==
          (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED))
    return -EINVAL;

  // Attributes: well-formed, inside the request. Until the attribute
  // registry exists no id is supported, so a REQUIRED one fails the request.
  const unsigned char *attrs = p + sizeof(aio2_iocb);
  const uint32_t attr_bytes = len - static_cast<uint32_t>(sizeof(aio2_iocb));
  uint32_t nattrs = 0;
  bool required_unsupported = false;
  for (uint32_t off = 0; off < attr_bytes;) {
    if (attr_bytes - off < sizeof(aio2_attr)) return -EINVAL;
    const aio2_attr a = attr_at(attrs + off);
    if (a.len < sizeof(aio2_attr) || (a.len & 7u) || a.len > attr_bytes - off) return -EINVAL;
    if (a.flags & ~AIO2_ATTR_F_ALL) return -EINVAL;
    if (a.flags & AIO2_ATTR_F_REQUIRED) required_unsupported = true;
    off += a.len;
    nattrs++;
  }

  const sys::syscall_info *info = sys::lookup(static_cast<long>(io->nr));
  if (info == nullptr) return -ENOSYS;
  if (info->refused != nullptr) return -EPERM;
  if (required_unsupported) return -EOPNOTSUPP;

  out->io = io;
  out->attrs = attrs;
  out->attr_bytes = attr_bytes;
  out->nattrs = nattrs;
  out->info = info;
  return 0;
}

uint32_t event_bytes(uint32_t nattrs) noexcept {
  // Until the attribute registry exists every result is UNSUPPORTED: a bare
  // 8-byte aio2_attr_ret with no payload.
  return static_cast<uint32_t>(sizeof(aio2_event) + nattrs * sizeof(aio2_attr_ret));
}

void write_event(unsigned char *dst, uint64_t user_data, int64_t res, uint32_t flags,
                 const unsigned char *attrs, uint32_t attr_bytes, uint32_t nattrs) noexcept {
  aio2_event ev{};
  ev.len = event_bytes(nattrs);
  ev.flags = flags;
  ev.user_data = user_data;
  ev.res = res;
  std::memcpy(dst, &ev, sizeof ev);
  unsigned char *out = dst + sizeof ev;
  for (uint32_t off = 0; off < attr_bytes;) {
    const aio2_attr a = attr_at(attrs + off);
    aio2_attr_ret r{};
    r.id = a.id;
    r.status = AIO2_ATTR_UNSUPPORTED;
    r.len = sizeof r;
    std::memcpy(out, &r, sizeof r);
    out += sizeof r;
    off += a.len;
  }
}

}  // namespace aio2
