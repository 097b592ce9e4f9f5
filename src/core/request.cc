// SPDX-License-Identifier: MIT
#include "core/request.h"

#include <cerrno>
#include <cstring>

#include "exec/raw_syscall.h"
#include "sys/rw_calls.h"
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
          (AIO2_IOCB_BOUNDED | AIO2_IOCB_UNBOUNDED) ||
      (io->flags & AIO2_IOCB_PATH_MASK) > AIO2_IOCB_PATH(AIO2_POLICY_POOL))
    return -EINVAL;

  // Attributes: well-formed, inside the request; a known one's payload has
  // a size its handler accepts. Where they can be honoured is noted for the
  // route chosen next (required_ok).
  const unsigned char *attrs = p + sizeof(aio2_iocb);
  const uint32_t attr_bytes = len - static_cast<uint32_t>(sizeof(aio2_iocb));
  uint32_t attr_paths = AIO2_PATH_ALL, required_paths = AIO2_PATH_ALL;
  bool thread_bound = false;
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

namespace aio2 {

bool continue_read(request *r, int64_t n) noexcept {
  const uint64_t *a = r->io.args;
  const uint32_t nr = r->io.nr;
  const bool vec = sys::is_vector_read(nr);
  const bool at_pos = nr == SYS_read || nr == SYS_readv;
  std::memcpy(r->cont_args, a, sizeof r->cont_args);
  if (n < 0) {
    r->split_done = 0;
    return true;
  }
  r->split_done = n;
  if (n == 0) return false;
  const auto done = static_cast<uint64_t>(n);
  if (!vec) {
    if (done >= a[2]) return false;
    r->cont_args[1] = a[1] + done;
    r->cont_args[2] = a[2] - done;
    if (!at_pos) r->cont_args[3] = a[3] + done;
    return true;
  }
  // The iovecs are readable: the kernel has just read them.
  const auto *iov = reinterpret_cast<const iovec *>(a[1]);
  uint64_t want = 0;
  for (uint64_t i = 0; i < a[2]; i++) want += iov[i].iov_len;
  if (done >= want) return false;
  try {
    r->cont_iov.clear();
    uint64_t skip = done;
    for (uint64_t i = 0; i < a[2]; i++) {
      iovec v = iov[i];
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      v.iov_base = static_cast<char *>(v.iov_base) + skip;
      v.iov_len -= skip;
      skip = 0;
      r->cont_iov.push_back(v);
    }
  } catch (...) {
    return false;  // no memory for the rest: a short read, as the call may give
  }
  r->cont_args[1] = reinterpret_cast<uint64_t>(r->cont_iov.data());
  r->cont_args[2] = r->cont_iov.size();
  if (!at_pos && static_cast<int64_t>(a[3]) != -1) r->cont_args[3] = a[3] + done;
  return true;
}

void combine_split(request *r) noexcept {
  if (r->split_done < 0) return;
  const int64_t done = r->split_done;
  r->split_done = -1;
  // Like a read that fails part-way: what was read counts, the error is lost.
  if (r->res < 0 && done > 0) {
    r->res = done;
    r->event_flags &= ~AIO2_EVENT_CANCELED;
  } else if (r->res >= 0) {
    r->res += done;
  }
  r->attr_state.note_nowait(done, r->res);
}

void end_call(request *r, int64_t res, uint32_t worker) noexcept {
  r->res = res;
  r->event_flags = 0;
  combine_split(r);
  if (!r->attr_state.empty()) r->attr_state.after(r->io, r->attrs.data(), worker, r->res);
}

void run_request(request *r, uint32_t worker) noexcept {
  if (r->cancel_requested.load(std::memory_order_relaxed)) {
    r->res = -ECANCELED;
    r->event_flags = AIO2_EVENT_CANCELED;
    combine_split(r);
    return;
  }
  const long nr = static_cast<long>(r->io.nr);
  if (r->split_done >= 0) {  // the rest of a split read; before hooks ran
    end_call(r, exec::raw_syscall(nr, r->cont_args), worker);
    return;
  }
  int64_t res = 0;
  if (r->attr_state.empty() || r->attr_state.before(r->io, r->attrs.data(), worker, &res))
    res = exec::raw_syscall(nr, r->io.args);
  end_call(r, res, worker);
}

}  // namespace aio2
