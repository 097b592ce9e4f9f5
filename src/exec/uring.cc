// SPDX-License-Identifier: MIT
#include "exec/uring.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <thread>
#include <vector>

#include "attr/registry.h"
#include "exec/run.h"
#include "sys/rw_args.h"
#include "sys/syscall_table.h"

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

void *ptr(uint64_t v) noexcept { return reinterpret_cast<void *>(v); }
int fd_of(uint64_t v) noexcept { return static_cast<int>(v); }
// A length above the kernel's limit is clipped as the kernel clips it, which
// also fits io_uring's 32-bit sqe->len.
unsigned clip(uint64_t len) noexcept { return static_cast<unsigned>(sys::clip_rw(len)); }

}  // namespace

uring::~uring() {
  shutdown();
  if (probe_) io_uring_free_probe(probe_);
  if (entries_) io_uring_queue_exit(&ring_);
}

int uring::init(unsigned entries, int efd) noexcept {
  io_uring_params p{};
  // SUBMIT_ALL (5.18): one refused entry does not stop the rest of a batch.
  // The completion queue is four times the submission queue; beyond that the
  // kernel keeps completions on its own overflow list (IORING_FEAT_NODROP).
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
  if (probe_ == nullptr) rc = -EOPNOTSUPP;
  else if (efd >= 0) rc = io_uring_register_eventfd(&ring_, efd);
  if (rc < 0) {
    if (probe_) io_uring_free_probe(probe_);
    probe_ = nullptr;
    io_uring_queue_exit(&ring_);
    return rc;
  }
  entries_ = p.sq_entries;
  return 0;
}

bool uring::translate(uint32_t nr, const uint64_t *a, void *entry) const noexcept {
  if (!active()) return false;
  auto *sqe = static_cast<io_uring_sqe *>(entry);
  // -1 means "the file position" to io_uring; the positioned calls refuse
  // any negative offset (their own -EINVAL, the call's answer), and
  // preadv2/pwritev2 take -1 as io_uring does.
  aio2_iocb io{};
  io.nr = nr;
  std::memcpy(io.args, a, sizeof io.args);
  if (sys::bad_offset(io)) return false;
  const sys::syscall_info *info = sys::lookup(static_cast<long>(nr));
  if (info == nullptr || info->uring_op < 0 || !io_uring_opcode_supported(probe_, info->uring_op))
    return false;
  std::memset(sqe, 0, sizeof *sqe);
  const int cwd = AT_FDCWD;
  switch (nr) {
    case SYS_read:
      io_uring_prep_read(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), static_cast<uint64_t>(-1));
      return true;
    case SYS_pread64:
      io_uring_prep_read(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), a[3]);
      return true;
    case SYS_write:
      io_uring_prep_write(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), static_cast<uint64_t>(-1));
      return true;
    case SYS_pwrite64:
      io_uring_prep_write(sqe, fd_of(a[0]), ptr(a[1]), clip(a[2]), a[3]);
      return true;
    case SYS_readv:
    case SYS_writev:
    case SYS_preadv:
    case SYS_pwritev:
    case SYS_preadv2:
    case SYS_pwritev2: {
      const bool v2 = sys::is_v2(nr);
      if (a[2] > sys::kMaxIov) return false;
      const uint64_t off =
          sys::where(io) == sys::rw_at::position ? static_cast<uint64_t>(-1) : a[3];
      const auto *iov = static_cast<const iovec *>(ptr(a[1]));
      const auto cnt = static_cast<unsigned>(a[2]);
      const bool rd = sys::is_read(nr);
      if (rd) io_uring_prep_readv(sqe, fd_of(a[0]), iov, cnt, off);
      else io_uring_prep_writev(sqe, fd_of(a[0]), iov, cnt, off);
      // The call refuses unknown high bits itself; io_uring without IOPOLL
      // refuses RWF_HIPRI, which the call takes as a hint.
      if (v2 && ((a[5] >> 32) || (a[5] & RWF_HIPRI))) return false;
      if (v2) sqe->rw_flags = static_cast<__kernel_rwf_t>(a[5]);
      return true;
    }
    case SYS_fsync:
      io_uring_prep_fsync(sqe, fd_of(a[0]), 0);
      return true;
    case SYS_fdatasync:
      io_uring_prep_fsync(sqe, fd_of(a[0]), IORING_FSYNC_DATASYNC);
      return true;
    case SYS_sync_file_range:  // sqe->len is 32 bits
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_sync_file_range(sqe, fd_of(a[0]), static_cast<unsigned>(a[2]), a[1],
                                    static_cast<int>(a[3]));
      return true;
    case SYS_fallocate:
      io_uring_prep_fallocate(sqe, fd_of(a[0]), static_cast<int>(a[1]),
                              static_cast<off_t>(a[2]), static_cast<off_t>(a[3]));
      return true;
    case SYS_fadvise64:  // sqe->len is 32 bits before Linux 6.7
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_fadvise(sqe, fd_of(a[0]), a[1], static_cast<off_t>(a[2]),
                            static_cast<int>(a[3]));
      return true;
    case SYS_madvise:
      if (a[1] > UINT32_MAX) return false;
      io_uring_prep_madvise(sqe, ptr(a[0]), static_cast<off_t>(a[1]), static_cast<int>(a[2]));
      return true;
    case SYS_open:
      io_uring_prep_openat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                           static_cast<int>(a[1]), static_cast<mode_t>(a[2]));
      return true;
    case SYS_openat:
      io_uring_prep_openat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                           static_cast<int>(a[2]), static_cast<mode_t>(a[3]));
      return true;
    case SYS_openat2:  // the kernel copies `size` bytes of open_how, as the call does
      io_uring_prep_rw(IORING_OP_OPENAT2, sqe, fd_of(a[0]), ptr(a[1]),
                       static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]), a[2]);
      return true;
    case SYS_close:
      io_uring_prep_close(sqe, fd_of(a[0]));
      return true;
    case SYS_statx:
      io_uring_prep_statx(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                          static_cast<int>(a[2]), static_cast<unsigned>(a[3]),
                          static_cast<struct statx *>(ptr(a[4])));
      return true;
    case SYS_rename:
      io_uring_prep_renameat(sqe, cwd, static_cast<const char *>(ptr(a[0])), cwd,
                             static_cast<const char *>(ptr(a[1])), 0);
      return true;
    case SYS_renameat:
    case SYS_renameat2:
      io_uring_prep_renameat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                             fd_of(a[2]), static_cast<const char *>(ptr(a[3])),
                             nr == SYS_renameat2 ? static_cast<unsigned>(a[4]) : 0);
      return true;
    case SYS_unlink:
    case SYS_rmdir:
      io_uring_prep_unlinkat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                             nr == SYS_rmdir ? AT_REMOVEDIR : 0);
      return true;
    case SYS_unlinkat:
      io_uring_prep_unlinkat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                             static_cast<int>(a[2]));
      return true;
    case SYS_mkdir:
      io_uring_prep_mkdirat(sqe, cwd, static_cast<const char *>(ptr(a[0])),
                            static_cast<mode_t>(a[1]));
      return true;
    case SYS_mkdirat:
      io_uring_prep_mkdirat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                            static_cast<mode_t>(a[2]));
      return true;
    case SYS_symlink:
      io_uring_prep_symlinkat(sqe, static_cast<const char *>(ptr(a[0])), cwd,
                              static_cast<const char *>(ptr(a[1])));
      return true;
    case SYS_symlinkat:
      io_uring_prep_symlinkat(sqe, static_cast<const char *>(ptr(a[0])), fd_of(a[1]),
                              static_cast<const char *>(ptr(a[2])));
      return true;
    case SYS_link:
      io_uring_prep_linkat(sqe, cwd, static_cast<const char *>(ptr(a[0])), cwd,
                           static_cast<const char *>(ptr(a[1])), 0);
      return true;
    case SYS_linkat:
      io_uring_prep_linkat(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])), fd_of(a[2]),
                           static_cast<const char *>(ptr(a[3])), static_cast<int>(a[4]));
      return true;
    case SYS_socket:
      io_uring_prep_socket(sqe, static_cast<int>(a[0]), static_cast<int>(a[1]),
                           static_cast<int>(a[2]), 0);
      return true;
    case SYS_accept:
    case SYS_accept4:
      io_uring_prep_accept(sqe, fd_of(a[0]), static_cast<sockaddr *>(ptr(a[1])),
                           static_cast<socklen_t *>(ptr(a[2])),
                           nr == SYS_accept4 ? static_cast<int>(a[3]) : 0);
      return true;
    case SYS_connect:
      io_uring_prep_connect(sqe, fd_of(a[0]), static_cast<const sockaddr *>(ptr(a[1])),
                            static_cast<socklen_t>(a[2]));
      return true;
    case SYS_recvfrom:  // io_uring's recv does not return the source address
      if (a[4] != 0 || a[5] != 0 || a[2] > UINT32_MAX) return false;
      io_uring_prep_recv(sqe, fd_of(a[0]), ptr(a[1]), a[2], static_cast<int>(a[3]));
      return true;
    case SYS_recvmsg:
      io_uring_prep_recvmsg(sqe, fd_of(a[0]), static_cast<msghdr *>(ptr(a[1])),
                            static_cast<unsigned>(a[2]));
      return true;
    case SYS_shutdown:
      io_uring_prep_shutdown(sqe, fd_of(a[0]), static_cast<int>(a[1]));
      return true;
    case SYS_splice:
      // io_uring takes the offsets by value and does not move the caller's
      // loff_t variables as the call does: only splices without them.
      if (a[1] != 0 || a[3] != 0 || a[4] > UINT32_MAX) return false;
      io_uring_prep_splice(sqe, fd_of(a[0]), -1, fd_of(a[2]), -1, static_cast<unsigned>(a[4]),
                           static_cast<unsigned>(a[5]));
      return true;
    case SYS_tee:
      if (a[2] > UINT32_MAX) return false;
      io_uring_prep_tee(sqe, fd_of(a[0]), fd_of(a[1]), static_cast<unsigned>(a[2]),
                        static_cast<unsigned>(a[3]));
      return true;
    case SYS_epoll_ctl:
      io_uring_prep_epoll_ctl(sqe, fd_of(a[0]), fd_of(a[2]), static_cast<int>(a[1]),
                              static_cast<epoll_event *>(ptr(a[3])));
      return true;
    case SYS_getxattr:
      io_uring_prep_getxattr(sqe, static_cast<const char *>(ptr(a[1])),
                             static_cast<char *>(ptr(a[2])), static_cast<const char *>(ptr(a[0])),
                             static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]));
      return true;
    case SYS_fgetxattr:
      io_uring_prep_fgetxattr(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                              static_cast<char *>(ptr(a[2])),
                              static_cast<unsigned>(a[3] > UINT32_MAX ? UINT32_MAX : a[3]));
      return true;
    case SYS_setxattr:
      if (a[3] > UINT32_MAX) return false;
      io_uring_prep_setxattr(sqe, static_cast<const char *>(ptr(a[1])),
                             static_cast<const char *>(ptr(a[2])),
                             static_cast<const char *>(ptr(a[0])), static_cast<int>(a[4]),
                             static_cast<unsigned>(a[3]));
      return true;
    case SYS_fsetxattr:
      if (a[3] > UINT32_MAX) return false;
      io_uring_prep_fsetxattr(sqe, fd_of(a[0]), static_cast<const char *>(ptr(a[1])),
                              static_cast<const char *>(ptr(a[2])), static_cast<int>(a[4]),
                              static_cast<unsigned>(a[3]));
      return true;
    default:
      return false;  // an opcode in the table without a translation here
  }
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
      {
        std::lock_guard ll(list_mu_);  // pairs with link (see there)
        for (size_t i = 0; i < m; i++) inflight_list_.unlink(done[i]);
      }
      // These completions were all seen now: timing's finished and posted
      // stamps share one clock reading (its documented meaning on io_uring).
      const attr::one_clock_read seen_now;
      for (size_t i = 0; i < m; i++) {
        request *r = done[i];
        // A nowait-first read's attempt: read the rest (or all of it,
        // after an error) again without RWF_NOWAIT, unless it was
        // cancelled.
        if (r->plan.attempt == attempt::executor && !r->nowait.attempted()) {
          auto *sqe = reinterpret_cast<io_uring_sqe *>(r->sqe);
          const uint16_t prio = sqe->ioprio;  // the hooks' priority, kept
          if (r->nowait.attempted(r->io, res[i]) && res[i] != -ECANCELED &&
              !r->cancel_requested.load(std::memory_order_relaxed) &&
              translate(r->io.nr, r->nowait.rest_args(), sqe)) {
            sqe->ioprio = prio;
            again[na++] = r;
            continue;
          }
          // Finished by the attempt, or no rest will run: the attempt's
          // bytes (0 here adds nothing), or its error.
          if (res[i] >= 0) res[i] = 0;
        }
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
    // Outside cq_mu_: queueing may need to harvest to make room.
    if (na) {
      link(again, na);
      queue(again, na);
    }
    total += m;
    if (m) sink_.batch_done(true);
  }
  return total;
}

uring::cancel_result uring::cancel(uint64_t user_data) noexcept {
  if (!active()) return cancel_result::not_found;
  uint64_t tag = 0;
  {
    std::lock_guard lk(list_mu_);
    for (request *r = inflight_list_.front(); r; r = request_list::next(r)) {
      if (r->io.user_data != user_data) continue;
      r->cancel_requested.store(true, std::memory_order_relaxed);
      tag = tag_of(r);
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
  cancel_result out = cancel_result::running;
  if (rc == 0) out = cancel_result::cancelled;
  else if (rc == -ENOENT) out = cancel_result::not_found;  // it completed meanwhile
  else if (rc == -EINVAL) queue_cancel(tag, 0);  // before Linux 6.0: ask asynchronously
  harvest(false);  // the cancelled request's completion is posted by now
  return out;
}

void uring::shutdown() noexcept {
  if (!active() || shut_down_) return;
  shut_down_ = true;
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
