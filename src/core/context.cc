// SPDX-License-Identifier: MIT
#include "core/context.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <new>

#include "core/parse.h"
#include "core/test_hooks.h"
#include "exec/run.h"
#include "sys/fd_facts.h"
#include "sys/syscall_table.h"
#include "util/fault.h"

namespace aio2::core {

std::atomic<void (*)(uint64_t)> test_hooks::after_nowait_attempt{nullptr};
std::atomic<void (*)()> test_hooks::before_uring_harvest{nullptr};

context::context(uint32_t type, uint32_t flags, const limits &lim) noexcept
    : type_(type),
      flags_(flags),
      lim_(lim),
      ring_queue_(slots_, lim.max_inflight),
      legacy_queue_(slots_, lim.max_inflight),
      queue_(type == AIO2_CTX_LEGACY ? static_cast<completion_queue &>(legacy_queue_)
                                     : static_cast<completion_queue &>(ring_queue_)),
      inline_(queue_),
      pool_(lim.bounded_workers, lim.unbounded_workers, lim.idle_ms, queue_),
      uring_(queue_) {}

namespace {

// Closes descriptors aio2_register_fds made, each unpinned first: once
// closed, its number may be reused at once by another thread's open.
void close_registered(const std::vector<int> &fds) noexcept {
  for (int d : fds) {
    sys::unpin_fd(d);
    ::close(d);
  }
}

}  // namespace

context::~context() {
  shutdown();  // nothing runs after this: every executor is stopped
  if (efd_ >= 0) ::close(efd_);
  close_registered(fixed_);  // no request names them any more
  delete allow_.load(std::memory_order_relaxed);  // no entry point runs any more
}

int context::restrict_to(const aio2_restriction *r, size_t n) noexcept {
  if (allowed() != nullptr) return -EBUSY;
  auto *a = new (std::nothrow) allowlist;
  if (a == nullptr) return -ENOMEM;
  if (int err = a->build(r, n)) {
    delete a;
    return err;
  }
  // Release: publishes the bits built above to every submitter that loads
  // the pointer with acquire (allowed()). Only one caller wins; a
  // concurrent loser answers -EBUSY and frees its own.
  const allowlist *none = nullptr;
  if (!allow_.compare_exchange_strong(none, a, std::memory_order_release,
                                      std::memory_order_acquire)) {
    delete a;
    return -EBUSY;
  }
  return 0;
}

int context::start() noexcept {
  if (type_ == AIO2_CTX_SYNC) return 0;
  if (int err = type_ == AIO2_CTX_LEGACY ? legacy_queue_.create()
                                         : ring_queue_.create(lim_.ring_bytes))
    return err;
  // An observed LEGACY context mirrors its events into an aio2 ring too.
  if (flags_ & AIO2_SETUP_LEGACY_OBSERVE) {
    if (int err = ring_queue_.create(lim_.ring_bytes)) return err;
    if (int err = ring_queue_.start(nullptr, -1)) return err;
    legacy_queue_.observe_into(&ring_queue_);
  }
  if (flags_ & AIO2_SETUP_EVENTFD) {
    if (fault::fail(fault::site::eventfd)) return -ENOMEM;
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) return -errno;
  }
  // io_uring when allowed and available; any failure (not built into the
  // kernel, kernel.io_uring_disabled, seccomp, too old) leaves the context
  // on the inline path and the pool, which the feature bits show.
  // A LEGACY context keeps one instance: the old ABI's programs give each
  // submitting thread its own io_setup context, and a program may make
  // hundreds (each instance is a descriptor).
  const bool uring =
      !(flags_ & AIO2_SETUP_NO_URING) &&
      uring_.init(lim_.uring_entries, type_ == AIO2_CTX_LEGACY ? 1 : lim_.uring_instances) == 0;
  env_.policy = lim_.policy;
  env_.nowait_in_submitter = !uring || type_ == AIO2_CTX_LEGACY;
  adapt_on_ = uring && type_ == AIO2_CTX_RING;
  if (uring) {
    env_.uring_translate = &exec::uring::translate_for;
    env_.uring = &uring_;
  }
  if (int err = queue_.start(uring ? &uring_ : nullptr, efd_)) return err;
  queue_.set_caller_work(&pool_);
  // Programs of the old ABI, and programs that wait on the context's
  // eventfd, may never call in: io_uring's completions must reach the ring
  // (and the eventfd) by themselves.
  if (uring && (type_ == AIO2_CTX_LEGACY || efd_ >= 0)) return queue_.start_collector_thread();
  return 0;
}

context::submission::submission(context &c, size_t expected) noexcept
    : c_(c),
      expected_(expected),
      to_pool_(c.pool_),
      to_uring_(c.uring_),
      scope_(memo_),
      env_(c.env_) {
  if (c.adapt_on_ && c.adapt_.here(expected)) env_.nowait_in_submitter = adapting_ = true;
}

exec::request *context::submission::admit(int *err) noexcept {
  if (!c_.queue_.admit()) {
    *err = -EAGAIN;
    return nullptr;
  }
  if (nspare_ == 0) {
    const size_t want = expected_ < kBatch ? (expected_ ? expected_ : 1) : kBatch;
    nspare_ = c_.slots_.take(spare_, want);
  }
  if (nspare_ == 0) {
    c_.queue_.unadmit();
    *err = -ENOMEM;
    return nullptr;
  }
  expected_ -= expected_ ? 1 : 0;
  return spare_[--nspare_];
}

void context::submission::refuse(exec::request *r) noexcept {
  c_.slots_.put(r);
  c_.queue_.unadmit();
}

exec::plan context::submission::plan_for(const parsed_request &pr) noexcept {
  return route(pr, memo_, env_, sqe_);
}

namespace {

// Whether the request's outcome may depend on who runs it: its call's
// (sys::syscall_info::creds_free), or an attribute's hooks, which run in
// the executing thread (ioprio's ioprio_set checks CAP_SYS_ADMIN there; a
// registered handler may do anything). The built-ins listed only read
// clocks, the page cache (through the request's own descriptor) or the
// thread's resource usage.
bool creds_matter(const parsed_request &pr) noexcept {
  if (!pr.info->creds_free) return true;
  for (uint32_t off = 0; off < pr.attr_bytes;) {
    aio2_attr a;
    std::memcpy(&a, pr.attrs + off, sizeof a);  // parse_request checked every record
    switch (a.id) {
      case AIO2_ATTR_TIMING:
      case AIO2_ATTR_TAG:
      case AIO2_ATTR_DEADLINE:
      case AIO2_ATTR_EXECUTOR:
      case AIO2_ATTR_CACHE:
      case AIO2_ATTR_RUSAGE: break;
      default: return true;
    }
    off += a.len;
  }
  return false;
}

}  // namespace

int context::submission::hand_off(exec::request *r, bool *uring) noexcept {
  if (creds_err_ == 1) {
    creds_err_ = sys::thread_creds(&creds_);
    if (creds_err_ == 0 && (held_ = c_.slots_.creds().hold(creds_)) == nullptr) creds_err_ = -ENOMEM;
  }
  if (creds_err_) return creds_err_;
  // hold()'s count is this call's until finish(): a request that took one
  // of its own and has already completed cannot let the entry be reused
  // under the call's next request.
  sys::creds_table::hold_again(held_);
  r->creds = held_;
  r->has_creds = true;
  if (*uring) {
    if (personality_ < 0) personality_ = c_.uring_.personality_for(creds_);
    r->personality = static_cast<uint16_t>(personality_);
    *uring = personality_ != 0;
  }
  return 0;
}

int context::submission::dispatch(const parsed_request &pr, const exec::plan &planned,
                                  exec::request *r, const int64_t *attempt_made) noexcept {
  exec::plan plan = planned;
  // A request that leaves this thread carries its credentials when its
  // outcome depends on them; one for io_uring that no personality can hold
  // them for goes to the pool, which checks them, when its REQUIRED
  // attributes allow. A slot comes with none (slots::put dropped them).
  const bool carry = creds_matter(pr);
  const bool leaves = plan.attempt != exec::attempt::submitter;  // now, not after an attempt
  if (carry && leaves && plan.path == AIO2_PATH_URING) {
    bool uring = true;
    if (int err = hand_off(r, &uring)) return err;
    if (!uring) {
      plan.path = AIO2_PATH_POOL;
      plan.attempt = exec::attempt::none;
      if (!required_ok(pr, plan.bits())) return -EOPNOTSUPP;
    }
  } else if (carry && leaves && plan.path == AIO2_PATH_POOL) {
    bool uring = false;
    if (int err = hand_off(r, &uring)) return err;
  }
  if (int err = r->attrs.keep_records(pr.attrs, pr.attr_bytes)) return err;
  r->io = *pr.io;
  r->plan = plan;
  if (int err = r->nowait.reset(plan.attempt != exec::attempt::none)) return err;
  // Attribute handlers, and their on_submit hooks, which may refuse it.
  if (int err = r->attrs.prepare(r->io, r->attrs.records(), pr.attr_bytes, plan.bits(),
                                 plan.attempt != exec::attempt::none))
    return err;
  // The room for an event too large to encode on the stack, taken now: the
  // completion that writes it runs where nothing can fail
  // (event_ring_queue::store), and a slot keeps its capacity, so only a
  // request larger than any its slot held allocates.
  const size_t event_room = sizeof(aio2_event) + r->attrs.max_result_bytes();
  if (event_room > event_ring_queue::kStackEvent) {
    if (int err = r->attrs.reserve_event(event_room)) return err;
  }
  r->cancel_requested.store(false, std::memory_order_relaxed);
  r->generation.fetch_add(1, std::memory_order_relaxed);

  if (plan.attempt == exec::attempt::submitter) {
    // A nowait-first read: the attempt here, the rest on io_uring when it
    // takes the rest's arguments, else on the pool. The rest leaves this
    // thread with its credentials; when they cannot be read, it completes
    // with that error (the attempt's bytes, if any, are its result).
    bool uring = plan.path == AIO2_PATH_URING;
    const bool whole = exec::attempt_here(r, attempt_made);
    if (adapting_) c_.adapt_.outcome(whole);
    if (whole) {
      c_.queue_.complete(r);
      done_here_ = true;
      return 0;
    }
    if (auto *hook = test_hooks::after_nowait_attempt.load(std::memory_order_relaxed))
      hook(r->io.user_data);
    if (int err = carry ? hand_off(r, &uring) : 0) {
      exec::end_unrun(r, err, 0);
      c_.queue_.complete(r);
      done_here_ = true;
    } else if (uring && c_.uring_.translate(r->io.nr, r->nowait.rest_args(), r->sqe)) {
      to_uring_.add(r);
    } else {
      to_pool_.add(r);
    }
  } else if (plan.path == AIO2_PATH_INLINE) {
    c_.inline_.submit(&r, 1);
    done_here_ = true;
  } else if (plan.path == AIO2_PATH_URING) {
    std::memcpy(r->sqe, sqe_, sizeof r->sqe);
    to_uring_.add(r);
  } else {
    to_pool_.add(r);
  }
  return 0;
}

int context::submission::read_whole_here(const parsed_request &pr, exec::request *r,
                                          int64_t made) noexcept {
  if (int err = r->attrs.keep_records(pr.attrs, 0)) return err;
  r->io = *pr.io;
  // The plan it had: its attempt here (the pool would have read a rest).
  r->plan = exec::plan{};
  r->plan.attempt = exec::attempt::submitter;
  if (int err = r->nowait.reset(false)) return err;
  if (int err = r->attrs.prepare(r->io, nullptr, 0, r->plan.bits(), true)) return err;
  r->cancel_requested.store(false, std::memory_order_relaxed);
  r->generation.fetch_add(1, std::memory_order_relaxed);
  exec::end_unrun(r, made, 0);
  if (adapting_) c_.adapt_.outcome(true);
  c_.queue_.complete(r);
  done_here_ = true;
  return 0;
}

void context::submission::finish() noexcept {
  // hold()'s own count, this call's.
  if (held_) sys::creds_table::drop(held_);
  to_pool_.flush();
  const bool uring_used = to_uring_.flush();
  if (uring_used) c_.uring_.end_of_call();
  while (nspare_) c_.slots_.put(spare_[--nspare_]);
  if (uring_used) {
    if (auto *hook = test_hooks::before_uring_harvest.load(std::memory_order_relaxed)) hook();
    c_.queue_.collector_submitted();
  }
  if (done_here_) c_.queue_.batch_done(false);
}

namespace {

// A plain pread64 (no attribute, not bound to this thread) under the AUTO
// policy (the request's, else the context's) made with RWF_NOWAIT before the
// router asks about its descriptor, when the descriptor's facts can be taken
// on trust (sys::read_on_trust, as the old ABI's plain reads do): the answer
// checks the facts, so a call that does not wait makes only its own system
// call. Other policies never read on trust: their reads run as planned.
bool read_on_trust(const parsed_request &pr, uint32_t ctx_policy, sys::fd_memo &memo,
                   int64_t *n) noexcept {
  const aio2_iocb &io = *pr.io;
  const uint32_t field = io.flags & AIO2_IOCB_POLICY_MASK;
  const uint32_t policy = field ? (field >> AIO2_IOCB_POLICY_SHIFT) - 1 : ctx_policy;
  if (io.nr != SYS_pread64 || pr.attr_bytes != 0 || pr.thread_bound ||
      policy != AIO2_POLICY_AUTO)
    return false;
  return sys::read_on_trust(static_cast<int>(io.args[0]), reinterpret_cast<void *>(io.args[1]),
                            static_cast<size_t>(io.args[2]), static_cast<int64_t>(io.args[3]),
                            memo, n);
}

}  // namespace

ssize_t context::submit(const void *reqs, size_t bytes) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if ((reqs == nullptr && bytes) || (reinterpret_cast<uintptr_t>(reqs) & 7u)) return -EINVAL;
  const auto *p = static_cast<const unsigned char *>(reqs);
  // Slots are taken in batches (one lock per batch, not per request).
  submission s(*this, bytes / sizeof(aio2_iocb));
  const allowlist *allow = allowed();
  size_t off = 0;
  int err = 0;
  while (off < bytes) {
    parsed_request pr;
    if ((err = parse_request(p + off, bytes - off, &pr)) != 0) break;
    if (allow && (err = allow->check(pr.io->nr, pr.attrs, pr.attr_bytes)) != 0) break;
    exec::request *r = s.admit(&err);
    if (r == nullptr) break;
    int64_t made = 0;
    const bool on_trust = s.reads_here() && read_on_trust(pr, s.policy(), s.memo(), &made);
    // A read made on trust that read everything asked for (or met the end
    // of the file) is finished: the router would plan it as the nowait-first
    // read it was (a plain AUTO pread64 at a valid offset of a file read
    // through the page cache, which its answer proved), and only the rest's
    // path depends on the rest of the plan. It is not asked.
    if (on_trust && (made == 0 || made == static_cast<int64_t>(pr.io->args[2]))) {
      err = s.read_whole_here(pr, r, made);
    } else {
      const exec::plan plan = s.plan_for(pr);
      // The read made on trust is the plan's attempt when the plan has one
      // here; otherwise the request runs as planned (and reads again).
      const bool use = on_trust && plan.attempt == exec::attempt::submitter;
      err = required_ok(pr, plan.bits()) ? s.dispatch(pr, plan, r, use ? &made : nullptr)
                                         : -EOPNOTSUPP;
    }
    if (err) {
      s.refuse(r);
      break;
    }
    off += pr.io->len;
  }
  s.finish();
  if (off == 0 && err) return err;
  return static_cast<ssize_t>(off);
}

ssize_t context::getevents(unsigned min_events, void *buf, size_t bytes,
                           const struct timespec *timeout) noexcept {
  if (type_ == AIO2_CTX_LEGACY && (flags_ & AIO2_SETUP_LEGACY_OBSERVE))
    return ring_queue_.getevents(min_events, buf, bytes, timeout);
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  return ring_queue_.getevents(min_events, buf, bytes, timeout);
}

exec::executor::cancel_result context::cancel_everywhere(uint64_t user_data) noexcept {
  // Requests on the inline path complete inside aio2_submit: nothing to
  // cancel there.
  for (exec::executor *e : {static_cast<exec::executor *>(&pool_),
                            static_cast<exec::executor *>(&uring_)}) {
    const exec::executor::cancel_result rc = e->cancel(user_data);
    if (rc != exec::executor::cancel_result::not_found) return rc;
  }
  return exec::executor::cancel_result::not_found;
}

int context::cancel(uint64_t user_data) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  switch (cancel_everywhere(user_data)) {
    case exec::executor::cancel_result::cancelled: return 0;
    case exec::executor::cancel_result::running:
    case exec::executor::cancel_result::in_flight: return -EALREADY;
    case exec::executor::cancel_result::not_found: break;
  }
  return -ENOENT;
}

void context::abandon_after_fork() noexcept {
  uring_.close_descriptor();
  if (efd_ >= 0) ::close(efd_);
  efd_ = -1;
  // The child's copies of the registered descriptors; unless a parent's
  // thread held the list's lock at the fork (then they stay open in the
  // child, close-on-exec).
  if (fixed_mu_.try_lock()) {
    close_registered(fixed_);
    fixed_.clear();
    fixed_mu_.unlock();
  }
}

int context::register_fds(const int *fds, int *out, unsigned nr) noexcept {
  if (nr == 0) return 0;
  if (fds == nullptr || out == nullptr) return -EINVAL;
  std::vector<int> made;
  int err = 0;
  try {
    made.reserve(nr);
  } catch (...) {
    return -ENOMEM;
  }
  for (unsigned i = 0; i < nr && err == 0; i++) {
    const int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
      err = -errno;
      break;
    }
    made.push_back(d);
    err = sys::pin_fd(d);
  }
  if (err == 0) {
    std::lock_guard lk(fixed_mu_);
    try {
      fixed_.insert(fixed_.end(), made.begin(), made.end());
    } catch (...) {
      err = -ENOMEM;
    }
  }
  if (err != 0) {
    close_registered(made);
    return err;
  }
  // Named by their slots in io_uring's file tables where that can be; a
  // descriptor that cannot be is named by its number, which works the same.
  for (unsigned i = 0; i < nr; i++) {
    uring_.add_fixed_file(made[i]);
    out[i] = made[i];
  }
  return 0;
}

void context::shutdown() noexcept {
  close();
  queue_.stop_collector_thread();
  for (exec::executor *e : {static_cast<exec::executor *>(&inline_),
                            static_cast<exec::executor *>(&pool_),
                            static_cast<exec::executor *>(&uring_)})
    e->shutdown();
}

}  // namespace aio2::core
