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

int parse_request(const unsigned char *p, size_t left, uint32_t path,
                  parsed_request *out) noexcept {
  if (left < sizeof(aio2_iocb)) return -EINVAL;
  const auto *io = reinterpret_cast<const aio2_iocb *>(p);
  const uint32_t len = io->len;
  if (len < sizeof(aio2_iocb) || (len & 7u) || len > left) return -EINVAL;
  if (len > kMaxRequestBytes) return -E2BIG;
  if (io->reserved != 0) return -EINVAL;
  if ((io->flags & ~AIO2_IOCB_ALL) ||
      (io->flags & (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED)) ==
          (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED) ||
      (io->flags & AIO2_IOCB_PATH_MASK) > AIO2_IOCB_PATH(AIO2_POLICY_POOL))
    return -EINVAL;

  // Attributes: well-formed, inside the request; a known one's payload has
  // a size its handler accepts; a REQUIRED one can be honoured on `path`.
  const unsigned char *attrs = p + sizeof(aio2_iocb);
  const uint32_t attr_bytes = len - static_cast<uint32_t>(sizeof(aio2_iocb));
  bool required_unhonoured = false;
  for (uint32_t off = 0; off < attr_bytes;) {
    if (attr_bytes - off < sizeof(aio2_attr)) return -EINVAL;
    const aio2_attr a = attr_at(attrs + off);
    if (a.len < sizeof(aio2_attr) || (a.len & 7u) || a.len > attr_bytes - off) return -EINVAL;
    if (a.flags & ~AIO2_ATTR_F_ALL) return -EINVAL;
    const aio2_attr_handler *h = attr::lookup(a.id);
    const uint32_t payload = a.len - static_cast<uint32_t>(sizeof(aio2_attr));
    // Payloads are padded to 8 bytes, so the most accepted is payload_max
    // rounded up to 8.
    if (h && (payload < h->payload_min || payload > ((h->payload_max + 7u) & ~7u)))
      return -EINVAL;
    if ((a.flags & AIO2_ATTR_F_REQUIRED) && (h == nullptr || !(h->paths & path)))
      required_unhonoured = true;
    off += a.len;
  }

  const sys::syscall_info *info = sys::lookup(static_cast<long>(io->nr));
  if (info == nullptr) return -ENOSYS;
  if (info->refused != nullptr) return -EPERM;
  if (required_unhonoured) return -EOPNOTSUPP;

  out->io = io;
  out->attrs = attrs;
  out->attr_bytes = attr_bytes;
  out->info = info;
  return 0;
}

void write_event(unsigned char *dst, uint64_t user_data, int64_t res, uint32_t flags,
                 const attr::request_attrs &attrs) noexcept {
  aio2_event ev{};
  ev.len = static_cast<uint32_t>(sizeof ev) + attrs.result_bytes();
  ev.flags = flags;
  ev.user_data = user_data;
  ev.res = res;
  std::memcpy(dst, &ev, sizeof ev);
  attrs.write_results(dst + sizeof ev);
}

}  // namespace aio2
