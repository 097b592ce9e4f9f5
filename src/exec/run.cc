// SPDX-License-Identifier: MIT
#include "exec/run.h"

#include <cerrno>
#include <cstring>
#include <new>

#include "sys/raw_syscall.h"
#include "sys/rw_args.h"
#include "util/fault.h"

namespace aio2::exec {

bool nowait_first::attempted(const aio2_iocb &io, int64_t n) noexcept {
  const uint64_t *a = io.args;
  uint64_t *rest = rest_->args;  // reset(true) made it
  std::memcpy(rest, a, sizeof rest_->args);
  rest_pending_ = true;
  if (n < 0) {
    done_ = 0;
    // What the descriptor was when the attempt ran: the call itself gives
    // the same answer then, whatever RWF_NOWAIT (a number closed, or reused
    // for a pipe or a directory). Running the whole call again later could
    // meet another file under the number (io_uring would read a pipe there,
    // ignoring the offset). Any other error (-EAGAIN: not cached;
    // -EOPNOTSUPP: no RWF_NOWAIT here) is the flag's: the whole call again
    // gives the answer.
    if (n == -EBADF || n == -ESPIPE || n == -EISDIR) {
      error_ = static_cast<int32_t>(n);
      rest_pending_ = false;
      return false;
    }
    return true;
  }
  done_ = n;
  const auto done = static_cast<uint64_t>(n);
  const bool at_offset = sys::where(io) == sys::rw_at::offset;
  if (n == 0) {
    rest_pending_ = false;
    return false;
  }
  if (!sys::is_vectored(io.nr)) {
    if (done >= a[2]) {
      rest_pending_ = false;
      return false;
    }
    rest[1] = a[1] + done;
    rest[2] = a[2] - done;
    if (at_offset) rest[3] = a[3] + done;
    return true;
  }
  // The iovecs are readable: the kernel has just read them.
  const auto *iov = reinterpret_cast<const iovec *>(a[1]);
  uint64_t want = 0;
  for (uint64_t i = 0; i < a[2]; i++) want += iov[i].iov_len;
  if (done >= want) {
    rest_pending_ = false;
    return false;
  }
  try {
    if (fault::fail(fault::site::rest_iov)) throw std::bad_alloc();
    rest_->iov.clear();
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
      rest_->iov.push_back(v);
    }
  } catch (...) {
    rest_pending_ = false;  // no memory for the rest: a short read, as the call may give
    return false;
  }
  rest[1] = reinterpret_cast<uint64_t>(rest_->iov.data());
  rest[2] = rest_->iov.size();
  if (at_offset) rest[3] = a[3] + done;
  return true;
}

int64_t nowait_first::combine(int64_t rest_res, uint32_t *event_flags) noexcept {
  if (done_ < 0 || combined_) return rest_res;
  combined_ = true;
  const bool pending = rest_pending_;
  rest_pending_ = false;
  // The attempt read everything there was, or its error is the answer.
  if (!pending) return error_ ? error_ : done_;
  if (rest_res < 0 && done_ > 0) {
    *event_flags &= ~AIO2_EVENT_CANCELED;
    return done_;
  }
  return rest_res < 0 ? rest_res : done_ + rest_res;
}

namespace {

// The attribute hooks learn what a nowait-first attempt read.
void tell_attrs(request *r) noexcept {
  if (r->nowait.attempted()) r->attrs.set_nowait_bytes(r->nowait.attempt_bytes());
}

// The before hooks: false (with *res, the result to report) when one
// completed the request without the call.
bool before_hooks(request *r, uint32_t worker, int64_t *res) noexcept {
  return r->attrs.empty() || r->attrs.before(r->io, r->attrs.records(), worker, res);
}

}  // namespace

bool begin(request *r, uint32_t worker) noexcept {
  int64_t res = 0;
  if (before_hooks(r, worker, &res)) return true;
  finish(r, res, worker);
  return false;
}

void finish(request *r, int64_t res, uint32_t worker) noexcept {
  r->event_flags = 0;
  r->res = r->nowait.combine(res, &r->event_flags);
  tell_attrs(r);
  if (!r->attrs.empty()) r->attrs.after(r->io, r->attrs.records(), worker, r->res);
}

void end_unrun(request *r, int64_t res, uint32_t event_flags) noexcept {
  r->event_flags = event_flags;
  r->res = r->nowait.combine(res, &r->event_flags);
  tell_attrs(r);
}

void run_here(request *r, uint32_t worker) noexcept {
  if (r->cancel_requested.load(std::memory_order_relaxed)) {
    cancelled(r);
    return;
  }
  const long nr = static_cast<long>(r->io.nr);
  if (r->nowait.rest_pending()) {  // the rest of a nowait-first read; before hooks ran
    finish(r, sys::raw_syscall(nr, r->nowait.rest_args()), worker);
    return;
  }
  if (begin(r, worker)) finish(r, sys::raw_syscall(nr, r->io.args), worker);
}

bool attempt_here(request *r, const int64_t *made) noexcept {
  // Whatever ends the request here, its after and post hooks see that it
  // ran inline alone.
  int64_t res = 0;
  if (!before_hooks(r, 0, &res)) {
    r->attrs.set_path(AIO2_PATH_INLINE);
    finish(r, res, 0);
    return true;
  }
  // Nowait-first reads are reads at an offset (the router's rule): args[3].
  const int64_t n = made ? *made : sys::read_nowait(r->io, r->io.args[3]);
  if (!r->nowait.attempted(r->io, n)) {
    r->attrs.set_path(AIO2_PATH_INLINE);
    finish(r, 0, 0);  // the attempt's bytes, or its error, are the result (combine)
    return true;
  }
  return false;
}

}  // namespace aio2::exec
