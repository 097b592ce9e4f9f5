// SPDX-License-Identifier: MIT
#include "core/parse.h"

#include <cerrno>
#include <cstring>

#include "attr/registry.h"
#include "sys/syscall_table.h"

namespace aio2::core {

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
          (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED) ||
      (io->flags & AIO2_IOCB_POLICY_MASK) > AIO2_IOCB_POLICY(AIO2_POLICY_POOL))
    return -EINVAL;

  // Attributes: well-formed, inside the request; a known one's payload has
  // a size its handler accepts. Where they can be honoured is noted for the
  // route chosen next (required_ok).
  const unsigned char *attrs = p + sizeof(aio2_iocb);
  const uint32_t attr_bytes = len - static_cast<uint32_t>(sizeof(aio2_iocb));
  uint32_t attr_paths = AIO2_PATH_ALL, required_paths = AIO2_PATH_ALL;
  bool thread_bound = false, wants_nowait = false;
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
    if (h != nullptr) {
      attr_paths &= h->paths;
      thread_bound |= (h->flags & AIO2_ATTR_HANDLER_THREAD) != 0;
      wants_nowait |= (h->flags & AIO2_ATTR_HANDLER_NOWAIT) != 0;
    }
    if (a.flags & AIO2_ATTR_F_REQUIRED) required_paths &= h ? h->paths : 0;
    off += a.len;
  }

  const sys::syscall_info *info = sys::lookup(static_cast<long>(io->nr));
  if (info == nullptr) return -ENOSYS;
  if (info->refused != nullptr) return -EPERM;

  out->io = io;
  out->attrs = attrs;
  out->attr_bytes = attr_bytes;
  out->info = info;
  out->attr_paths = attr_paths;
  out->required_paths = required_paths;
  out->thread_bound = thread_bound;
  out->wants_nowait = wants_nowait;
  return 0;
}

}  // namespace aio2::core
