// SPDX-License-Identifier: MIT
#include "exec/uring.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <new>
#include <thread>
#include <vector>

#include "attr/registry.h"
#include "exec/run.h"
#include "sys/rw_args.h"
#include "sys/syscall_table.h"
#include "util/fault.h"

namespace aio2::exec {

namespace {

// The SQE's user_data: the request's address with 16 bits of its slot
// generation on top (user-space addresses fit in 47 bits on x86_64), so a
// cancel aimed at a request that has just completed cannot hit the next
// request to use the slot. Zero marks aio2's own entries (cancellations).
uint64_t tag_of(const request *r) noexcept {
  return reinterpret_cast<uint64_t>(r) |
         (r->generation.load(std::memory_order_relaxed) & 0xffffu) << 48;
}
request *request_of(uint64_t tag) noexcept {
  return reinterpret_cast<request *>(tag & ((uint64_t{1} << 48) - 1));
}

}  // namespace

uring::~uring() {
  shutdown();
  if (probe_) io_uring_free_probe(probe_);
  if (entries_) io_uring_queue_exit(&ring_);
}

int uring::init(unsigned entries) noexcept {
  io_uring_params p{};
  // SUBMIT_ALL (5.18): one refused entry does not stop the rest of a batch.
  // The completion queue is four times the submission queue; beyond that the
  // kernel keeps completions on its own overflow list (IORING_FEAT_NODROP).
  if (fault::fail(fault::site::uring_setup)) return -ENOMEM;
  p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4 > 65536 ? 65536 : entries * 4;  // the kernel's most
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc == -EINVAL) {  // an older kernel: without the flags
    p = io_uring_params{};
    rc = io_uring_queue_init_params(entries, &ring_, &p);
  }
  if (rc < 0) return rc;
  // NODROP (5.5) so no completion is ever lost; RW_CUR_POS (5.6) for reads
  // and writes at the file position; EXT_ARG (5.11) marks a kernel recent
  // enough for every opcode translated below to behave as documented.
  const unsigned need = IORING_FEAT_NODROP | IORING_FEAT_RW_CUR_POS | IORING_FEAT_EXT_ARG;
  if ((p.features & need) != need) {
    io_uring_queue_exit(&ring_);
    return -EOPNOTSUPP;
  }
  probe_ = io_uring_get_probe_ring(&ring_);
  if (probe_ == nullptr) {
    io_uring_queue_exit(&ring_);
    return -EOPNOTSUPP;
  }
  entries_ = p.sq_entries;
  return 0;
}

void uring::submit(request *const *reqs, size_t n) noexcept {
  request *go[64];
  size_t ngo = 0;
  bool done_here = false;
  const auto flush = [&] {
    if (ngo == 0) return;
    link(go, ngo);
    // Counted before the kernel can complete any of them (harvest subtracts).
    inflight_.fetch_add(ngo, std::memory_order_seq_cst);
    queue(go, ngo);
    ngo = 0;
  };
  for (size_t i = 0; i < n; i++) {
    request *r = reqs[i];
    auto *sqe = reinterpret_cast<io_uring_sqe *>(r->sqe);
    // The rest of a nowait-first read started in the submitter: its before
    // hooks ran there.
    if (!r->nowait.rest_pending()) {
      if (!begin(r, 0)) {  // a hook completed it (a deadline passed, say)
        sink_.complete(r);
        done_here = true;
        continue;
      }
      if (const int32_t prio = r->attrs.run_ioprio(); prio >= 0)
        sqe->ioprio = static_cast<uint16_t>(prio);
      // A nowait-first read made here: RWF_NOWAIT first, the rest again
      // (harvest), while an attribute that measures it still applies.
      if (r->plan.attempt == attempt::executor && !r->attrs.wants_nowait())
        r->plan.attempt = attempt::none;
      if (r->plan.attempt == attempt::executor) sqe->rw_flags |= RWF_NOWAIT;
    }
    // The submitter's credentials, wherever and by whichever thread the
    // kernel issues it.
    if (r->has_creds) sqe->personality = r->personality;
    go[ngo++] = r;
    if (ngo == std::size(go)) flush();
  }
  flush();
  if (done_here) sink_.batch_done(false);
}

void uring::link(request *const *reqs, size_t n) noexcept {
  // Linked under list_mu_ after every field of each request is written; the
  // harvester unlinks under list_mu_ before it reads them, so the mutex
  // orders the hand-over through the kernel (which ThreadSanitizer cannot
  // see).
  std::lock_guard lk(list_mu_);
  for (size_t i = 0; i < n; i++) inflight_list_.push_back(reqs[i]);
}

// Copies the requests' SQEs in and hands them to the kernel, under sq_mu_
// only: nothing is ever harvested while sq_mu_ is held (a harvest may
// resubmit, which takes sq_mu_). When the kernel cannot take more (a full
// submission queue, -EBUSY from a full completion queue on older kernels,
// -EAGAIN when it is short of memory), sq_mu_ is let go, completions are
// harvested, and it tries again: every request keeps its promise of one
// event.
void uring::queue(request *const *reqs, size_t n) noexcept {
  size_t i = 0;
  for (;;) {
    int rc = 0;
    {
      std::lock_guard lk(sq_mu_);
      for (; i < n; i++) {
        io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) break;
        std::memcpy(static_cast<void *>(sqe), reqs[i]->sqe, sizeof *sqe);
        sqe->user_data = tag_of(reqs[i]);
      }
      while (io_uring_sq_ready(&ring_) != 0 && ((rc = io_uring_submit(&ring_)) >= 0 || rc == -EINTR)) {
      }
      if (i == n && io_uring_sq_ready(&ring_) == 0) return;
    }
    if (harvest(true) == 0) std::this_thread::yield();
  }
}

// Queues aio2's own cancellation entry for `tag` (0 with ANY|ALL flags: all).
void uring::queue_cancel(uint64_t tag, int flags) noexcept {
  for (;;) {
    {
      std::lock_guard lk(sq_mu_);
      if (io_uring_sqe *sqe = io_uring_get_sqe(&ring_)) {
        io_uring_prep_cancel64(sqe, tag, flags);
        sqe->user_data = 0;  // aio2's own: harvest skips it
        int rc;
        while (io_uring_sq_ready(&ring_) != 0 &&
               ((rc = io_uring_submit(&ring_)) >= 0 || rc == -EINTR)) {
        }
        if (io_uring_sq_ready(&ring_) == 0) return;
      }
    }
    if (harvest(true) == 0) std::this_thread::yield();
  }
}

bool uring::ready() const noexcept {
  // Called without cq_mu_, so both positions are read atomically (liburing's
  // io_uring_cq_ready reads the head plainly, a race with harvest's store).
  return active() && __atomic_load_n(ring_.cq.ktail, __ATOMIC_ACQUIRE) !=
                         __atomic_load_n(ring_.cq.khead, __ATOMIC_RELAXED);
}

size_t uring::harvest(bool wait) noexcept {
  if (!active()) return 0;
  size_t total = 0;
  for (;;) {
    request *again[64];
    size_t na = 0, m = 0;
    {
      std::unique_lock lk(cq_mu_, std::defer_lock);
      if (wait && total == 0) lk.lock();
      else if (!lk.try_lock()) break;  // another thread harvests now
      io_uring_cqe *cqes[64];
      const unsigned k = io_uring_peek_batch_cqe(&ring_, cqes, 64);
      if (k == 0) break;
      request *done[64];
      int32_t res[64];
      for (unsigned i = 0; i < k; i++) {
        // aio2's own entries (cancellations), and liburing's timeouts.
        if (cqes[i]->user_data == 0 || cqes[i]->user_data == LIBURING_UDATA_TIMEOUT) continue;
        done[m] = request_of(cqes[i]->user_data);
        int32_t v = cqes[i]->res;
        // The kernel's restart codes (ERESTARTSYS..ERESTART_RESTARTBLOCK,
        // 512..516) mean "interrupted" to a caller: a cancelled call.
        if (v <= -512 && v >= -516) v = -EINTR;
        res[m++] = v;
      }
      io_uring_cq_advance(&ring_, k);
      // These completions were all seen now: timing's finished and posted
      // stamps share one clock reading (its documented meaning on io_uring).
      const attr::one_clock_read seen_now;
      size_t nd = 0;
      {
        // Pairs with link (see there). A nowait-first read whose rest runs
        // next stays on the list, so that a cancel finds it between its
        // attempt and its rest; the others leave it before they are
        // posted.
        std::lock_guard ll(list_mu_);
        for (size_t i = 0; i < m; i++) {
          request *r = done[i];
          if (r->plan.attempt == attempt::executor && !r->nowait.attempted()) {
            // A nowait-first read's attempt: read the rest (or all of it,
            // after an error) again without RWF_NOWAIT, unless the kernel
            // cancelled the attempt (a cancel that answered 0) or the
            // instance is shutting down. A cancel that answered -EALREADY
            // (cancel_requested without -ECANCELED) lets it run to the end.
            auto *sqe = reinterpret_cast<io_uring_sqe *>(r->sqe);
            const uint16_t prio = sqe->ioprio;  // the hooks' priority, kept
            const uint16_t who = sqe->personality;  // and the submitter's credentials
            const bool rest = r->nowait.attempted(r->io, res[i]);
            if (rest && res[i] != -ECANCELED && !stopping_.load(std::memory_order_relaxed) &&
                translate(r->io.nr, r->nowait.rest_args(), sqe)) {
              sqe->ioprio = prio;
              sqe->personality = who;
              again[na++] = r;
              continue;
            }
            // Finished by the attempt (its bytes, or its error: combine),
            // or no rest will run: cancelled, as a rest that never ran
            // (the attempt's bytes, or -ECANCELED), never the attempt's
            // own -EAGAIN.
            if (res[i] >= 0 || rest) res[i] = rest ? -ECANCELED : 0;
          }
          inflight_list_.unlink(r);
          done[nd] = r;
          res[nd++] = res[i];
        }
      }
      for (size_t i = 0; i < nd; i++) {
        request *r = done[i];
        finish(r, res[i], 0);
        if (r->res == -ECANCELED && r->cancel_requested.load(std::memory_order_relaxed))
          r->event_flags |= AIO2_EVENT_CANCELED;
        sink_.complete(r);
      }
      // Retries stay counted; the others are done. After the events are
      // posted: a reaper that sees the count drop finds them (seq_cst, see
      // inflight()).
      inflight_.fetch_sub(m - na, std::memory_order_seq_cst);
    }
    // Outside cq_mu_: queueing may need to harvest to make room. The
    // retries are still on the in-flight list.
    if (na) queue(again, na);
    total += m;
    if (m) sink_.batch_done(true);
  }
  return total;
}

uint16_t uring::personality_for(const sys::creds &mine) noexcept {
  if (!active()) return 0;
  std::lock_guard lk(personality_mu_);
  for (unsigned i = 0; i < npersonalities_; i++)
    if (sys::same_creds(personalities_[i].creds, mine)) return personalities_[i].id;
  if (npersonalities_ == kPersonalities) return 0;
  const int id = io_uring_register_personality(&ring_);
  if (id <= 0) return 0;
  // The kernel took this thread's credentials as they were during the
  // call; another thread's setuid() (which changes this one too) may have
  // come between the snapshot and the registration. Kept only when the
  // credentials are still the snapshot's.
  sys::creds now;
  if (sys::thread_creds(&now) != 0 || !sys::same_creds(now, mine)) {
    io_uring_unregister_personality(&ring_, id);
    return 0;
  }
  personalities_[npersonalities_++] = {mine, static_cast<uint16_t>(id)};
  return static_cast<uint16_t>(id);
}

uring::cancel_result uring::cancel(uint64_t user_data) noexcept {
  if (!active()) return cancel_result::not_found;
  uint64_t tag = 0;
  bool unbounded = false;
  {
    std::lock_guard lk(list_mu_);
    for (request *r = inflight_list_.front(); r; r = request_list::next(r)) {
      if (r->io.user_data != user_data) continue;
      // Read by harvest: a completion of -ECANCELED is then the cancel's.
      r->cancel_requested.store(true, std::memory_order_relaxed);
      tag = tag_of(r);
      unbounded = r->plan.unbounded;
      break;
    }
  }
  if (tag == 0) return cancel_result::not_found;
  io_uring_sync_cancel_reg reg{};
  reg.addr = tag;
  reg.fd = -1;
  // No waiting: a request that is running answers -EALREADY (or, with a
  // zero timeout, -ETIME) at once, as a running call on the pool does.
  reg.timeout.tv_sec = 0;
  reg.timeout.tv_nsec = 0;
  const int rc = io_uring_register_sync_cancel(&ring_, &reg);
  // The kernel was asked to stop a running call (an io-wq worker gets a
  // signal): that interrupts a call that waits (a pipe, a socket), not a
  // read of a regular file, which runs to its end.
  const cancel_result asked = unbounded ? cancel_result::running : cancel_result::in_flight;
  cancel_result out = asked;
  if (rc == 0) {
    out = cancel_result::cancelled;
  } else if (rc == -ENOENT) {
    // Not found by the kernel, yet on the in-flight list: its completion
    // is posted and not harvested yet, or the kernel holds it where its
    // cancel does not look (a buffered read waiting for its pages, a retry
    // in task work, the rest of a nowait-first read not yet submitted).
    // Its event is still to come, with its own result.
    out = cancel_result::in_flight;
  } else if (rc == -EINVAL) {
    queue_cancel(tag, 0);  // before Linux 6.0: ask asynchronously
  }
  harvest(false);  // the cancelled request's completion is posted by now
  return out;
}

void uring::close_descriptor() noexcept {
  if (!active() || ring_.ring_fd < 0) return;
  ::close(ring_.ring_fd);
  ring_.ring_fd = -1;
}

void uring::shutdown() noexcept {
  if (!active() || shut_down_) return;
  shut_down_ = true;
  // Read by harvest: no rest of a nowait-first read is submitted from now
  // on. Relaxed: a harvest that read it false just before submits a rest,
  // which finishes (and is waited for below) like any read under way.
  stopping_.store(true, std::memory_order_relaxed);
  // Every request in flight completes cancelled (AIO2_EVENT_CANCELED when
  // it had not started), however the kernel is asked.
  {
    std::lock_guard lk(list_mu_);
    for (request *r = inflight_list_.front(); r; r = request_list::next(r))
      r->cancel_requested.store(true, std::memory_order_relaxed);
  }
  // Cancel everything at once (Linux 6.0+); older kernels get one
  // asynchronous cancellation per request.
  io_uring_sync_cancel_reg reg{};
  reg.flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
  reg.fd = -1;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  if (io_uring_register_sync_cancel(&ring_, &reg) == -EINVAL) {
    // Before Linux 6.0 (and ANY|ALL before 5.19): one cancellation per
    // request still linked, by its tag.
    std::vector<uint64_t> tags;
    {
      std::lock_guard lk(list_mu_);
      for (request *r = inflight_list_.front(); r; r = request_list::next(r)) {
        r->cancel_requested.store(true, std::memory_order_relaxed);
        try {
          if (fault::fail(fault::site::uring_cancel_tags)) throw std::bad_alloc();
          tags.push_back(tag_of(r));
        } catch (...) {
          break;  // what is left finishes on its own
        }
      }
    }
    for (uint64_t t : tags) queue_cancel(t, 0);
  }
  // What cannot be cancelled (disk I/O under way) finishes; every request
  // gets its event.
  while (inflight() != 0) {
    if (harvest(true) != 0) continue;
    io_uring_cqe *cqe = nullptr;
    __kernel_timespec ts{0, 10 * 1000 * 1000};
    std::lock_guard lk(cq_mu_);  // waits without consuming; harvest consumes
    io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
  }
}

}  // namespace aio2::exec
