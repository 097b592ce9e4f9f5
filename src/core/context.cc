// SPDX-License-Identifier: MIT
#include "core/context.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "core/parse.h"
#include "exec/run.h"
#include "sys/fd_facts.h"

namespace aio2 {

namespace {

constexpr size_t kBatch = 64;  // requests handed to an executor at a time

// Requests for one executor, handed over kBatch at a time.
class batch {
 public:
  explicit batch(exec::executor &e) noexcept : e_(e) {}
  void add(exec::request *r) noexcept {
    reqs_[n_++] = r;
    if (n_ == kBatch) flush();
  }
  // Hands what is gathered over; true when anything ever was.
  bool flush() noexcept {
    if (n_) e_.submit(reqs_, n_);
    used_ |= n_ != 0;
    n_ = 0;
    return used_;
  }

 private:
  exec::executor &e_;
  exec::request *reqs_[kBatch];
  size_t n_ = 0;
  bool used_ = false;
};

}  // namespace

context::context(uint32_t type, uint32_t flags, const limits &lim) noexcept
    : type_(type),
      flags_(flags),
      lim_(lim),
      queue_(slots_, lim.max_inflight),
      inline_(queue_),
      pool_(lim.bounded_workers, lim.unbounded_workers, lim.idle_ms, queue_),
      uring_(queue_) {}

context::~context() {
  shutdown();  // nothing runs after this: every executor is stopped
  if (efd_ >= 0) ::close(efd_);
}

int context::start() noexcept {
  if (type_ != AIO2_CTX_RING) return 0;
  if (int err = queue_.create(lim_.ring_bytes)) return err;
  if (flags_ & AIO2_SETUP_EVENTFD) {
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) return -errno;
  }
  // io_uring when allowed and available; any failure (not built into the
  // kernel, kernel.io_uring_disabled, seccomp, too old) leaves the context
  // on the inline path and the pool, which the feature bits show.
  const bool uring = !(flags_ & AIO2_SETUP_NO_URING) && uring_.init(lim_.uring_entries, efd_) == 0;
  env_.policy = lim_.policy;
  env_.nowait_in_submitter = !uring;
  if (uring) {
    env_.uring_translate = &exec::uring::translate_for;
    env_.uring = &uring_;
  }
  return queue_.start(uring ? &uring_ : nullptr, efd_);
}

ssize_t context::submit(const void *reqs, size_t bytes) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if ((reqs == nullptr && bytes) || (reinterpret_cast<uintptr_t>(reqs) & 7u)) return -EINVAL;
  const auto *p = static_cast<const unsigned char *>(reqs);
  batch to_pool(pool_), to_uring(uring_);
  bool done_here = false;
  // Slots are taken in batches (one lock per batch, not per request) and
  // the unused rest given back at the end.
  exec::request *spare[kBatch];
  size_t nspare = 0;
  size_t off = 0;
  int err = 0;
  sys::fd_memo memo;
  const sys::fd_memo_scope memo_scope(memo);  // shared with the attribute hooks
  while (off < bytes) {
    parsed_request pr;
    if ((err = parse_request(p + off, bytes - off, &pr)) != 0) break;
    alignas(8) unsigned char sqe[sizeof exec::request::sqe];
    const exec::plan plan = route(pr, memo, env_, sqe);
    if (!required_ok(pr, plan.bits())) {
      err = -EOPNOTSUPP;
      break;
    }
    if (!queue_.admit()) {
      err = -EAGAIN;
      break;
    }
    if (nspare == 0) {
      const size_t want = (bytes - off) / sizeof(aio2_iocb);
      nspare = slots_.take(spare, want < kBatch ? (want ? want : 1) : kBatch);
    }
    exec::request *r = nspare ? spare[--nspare] : nullptr;
    if (r != nullptr) {
      try {
        r->attr_bytes.assign(pr.attrs, pr.attrs + pr.attr_bytes);  // keeps capacity across reuse
      } catch (...) {
        slots_.put(r);
        r = nullptr;
      }
    }
    if (r == nullptr) {
      queue_.unadmit();
      err = -ENOMEM;
      break;
    }
    r->io = *pr.io;
    r->plan = plan;
    r->nowait.reset();
    // Attribute handlers, and their on_submit hooks, which may refuse it.
    err = r->attrs.prepare(r->io, r->attr_bytes.data(), pr.attr_bytes, plan.bits(),
                           plan.attempt != exec::attempt::none);
    if (err) {
      slots_.put(r);
      queue_.unadmit();
      break;
    }
    r->cancel_requested.store(false, std::memory_order_relaxed);
    r->generation.fetch_add(1, std::memory_order_relaxed);
    off += pr.io->len;

    if (plan.attempt == exec::attempt::submitter) {
      // A nowait-first read: the attempt here, the rest on the pool.
      if (exec::attempt_here(r)) {
        queue_.complete(r);
        done_here = true;
      } else {
        to_pool.add(r);
      }
    } else if (plan.path == AIO2_PATH_INLINE) {
      inline_.submit(&r, 1);
      done_here = true;
    } else if (plan.path == AIO2_PATH_URING) {
      std::memcpy(r->sqe, sqe, sizeof r->sqe);
      to_uring.add(r);
    } else {
      to_pool.add(r);
    }
  }
  to_pool.flush();
  const bool uring_used = to_uring.flush();
  while (nspare) slots_.put(spare[--nspare]);
  if (uring_used) queue_.collector_submitted();
  if (done_here) queue_.batch_done(false);
  if (off == 0 && err) return err;
  return static_cast<ssize_t>(off);
}

ssize_t context::getevents(unsigned min_events, void *buf, size_t bytes,
                           const struct timespec *timeout) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  return queue_.getevents(min_events, buf, bytes, timeout);
}

int context::cancel(uint64_t user_data) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  // Requests on the inline path complete inside aio2_submit: nothing to
  // cancel there.
  for (exec::executor *e : {static_cast<exec::executor *>(&pool_),
                            static_cast<exec::executor *>(&uring_)}) {
    switch (e->cancel(user_data)) {
      case exec::executor::cancel_result::cancelled: return 0;
      case exec::executor::cancel_result::running: return -EALREADY;
      case exec::executor::cancel_result::not_found: break;
    }
  }
  return -ENOENT;
}

void context::shutdown() noexcept {
  close();
  for (exec::executor *e : {static_cast<exec::executor *>(&inline_),
                            static_cast<exec::executor *>(&pool_),
                            static_cast<exec::executor *>(&uring_)})
    e->shutdown();
}

}  // namespace aio2
