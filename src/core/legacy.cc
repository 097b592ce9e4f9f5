// SPDX-License-Identifier: MIT
// The old ABI on a LEGACY context: struct iocb in, struct io_event out.
// Each iocb is translated into an aio2 request (the system call the kernel
// would make for it, and an ioprio attribute for IOCB_FLAG_IOPRIO) in its
// own slot, then takes the same way as any request: parse, route, an
// executor, the completion queue (legacy_queue, the kernel's ring format).
// The checks and errors are the kernel's (fs/aio.c) where it has them.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <new>

#include "core/context.h"
#include "core/parse.h"

namespace aio2::core {

namespace {

// IOCB_FLAG_RESFD's descriptor must be an eventfd: -EBADF when it is not
// open, -EINVAL when it is something else (another anonymous inode, such
// as a timerfd, included: /proc names the kind; without /proc any
// anonymous inode passes).
int check_eventfd(int fd) noexcept {
  struct stat st {};
  if (fstat(fd, &st) != 0) return -EBADF;
  if ((st.st_mode & S_IFMT) != 0) return -EINVAL;
  char path[32], link[32];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) return 0;
  link[n] = 0;
  return std::strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

// The ioprio encodings the kernel accepts (class NONE with level 0, RT, BE
// and IDLE with levels 0..7); whether RT is allowed is the kernel's answer,
// when the call runs.
bool ioprio_valid(uint32_t v) noexcept {
  const uint32_t cls = v >> 13, rest = v & 0x1ff8u, level = v & 7u;
  if (rest) return false;
  return cls == 0 ? level == 0 : cls <= 3;
}

// aio_rw_flags bits that some kernel knows (RWF_HIPRI up to RWF_DONTCACHE);
// the kernel that runs the call judges these, the rest are refused here.
constexpr uint32_t kKnownRwFlags = 0xff;

// Translates `cb` into r's aio2 request (r->legacy->req) and legacy fields,
// asking `fds` about its descriptor. Returns 0 or the -errno io_submit
// gives for it, checked in the kernel's order (fs/aio.c): the iocb's own
// fields, the descriptor, the eventfd, then what the opcode needs. Bits of
// aio_flags other than RESFD and IOPRIO are ignored, as by the kernel.
// `observe`: the request also asks for timing, cache and executor
// (AIO2_SETUP_LEGACY_OBSERVE).
int translate(const iocb &cb, exec::request *r, sys::fd_lookup &fds, bool observe) noexcept {
  if (cb.aio_reserved2 != 0) return -EINVAL;
  // The kernel refuses lengths and offsets that do not fit its types.
  if (cb.aio_nbytes > static_cast<uint64_t>(SSIZE_MAX)) return -EINVAL;
  // The descriptor must be open (O_PATH ones are not, for I/O).
  sys::fd_facts f{};
  if (fds.get(static_cast<int>(cb.aio_fildes), &f) != 0 || (f.flags & O_PATH)) return -EBADF;
  exec::request::legacy_fields &l = *r->legacy;
  l.data = cb.aio_data;
  l.obj = reinterpret_cast<uint64_t>(&cb);
  l.opcode = cb.aio_lio_opcode;
  l.resfd = -1;
  if (cb.aio_flags & IOCB_FLAG_RESFD) {
    if (const int err = check_eventfd(static_cast<int>(cb.aio_resfd))) return err;
    l.resfd = static_cast<int>(cb.aio_resfd);
  }
  auto *io = reinterpret_cast<aio2_iocb *>(l.req);
  const uint64_t fd = cb.aio_fildes, buf = cb.aio_buf, n = cb.aio_nbytes;
  const auto off = static_cast<uint64_t>(cb.aio_offset);
  const auto flags = static_cast<uint64_t>(static_cast<uint32_t>(cb.aio_rw_flags));
  const uint64_t ud = l.obj;
  l.iov = iovec{reinterpret_cast<void *>(buf), static_cast<size_t>(n)};
  const auto one_iov = reinterpret_cast<uint64_t>(&l.iov);
  const uint16_t op = cb.aio_lio_opcode;
  switch (op) {
    case IOCB_CMD_PREAD:
    case IOCB_CMD_PWRITE:
    case IOCB_CMD_PREADV:
    case IOCB_CMD_PWRITEV: {
      // Reads and writes: the ioprio, the flags, then the direction.
      uint32_t prio = 0;
      if (cb.aio_flags & IOCB_FLAG_IOPRIO) {
        prio = static_cast<uint32_t>(static_cast<uint16_t>(cb.aio_reqprio));
        if (!ioprio_valid(prio)) return -EINVAL;
      }
      if (flags & ~uint64_t{kKnownRwFlags}) return -EOPNOTSUPP;
      const bool read = op == IOCB_CMD_PREAD || op == IOCB_CMD_PREADV;
      const int mode = f.flags & O_ACCMODE;
      if (mode == (read ? O_WRONLY : O_RDONLY)) return -EBADF;
      // A pipe or socket has no offset: the kernel's read_iter ignores
      // aio_offset there, so the call is read, write, readv or writev. A
      // directory has no read_iter or write_iter: the kernel refuses it.
      struct stat st {};
      const bool other = !f.positionable && fstat(static_cast<int>(fd), &st) == 0;
      if (other && S_ISDIR(st.st_mode)) return -EINVAL;
      if (other && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        const bool vec = op == IOCB_CMD_PREADV || op == IOCB_CMD_PWRITEV;
        const uint64_t iov = vec ? buf : one_iov, cnt = vec ? n : 1;
        if (flags) aio2_prep(io, read ? SYS_preadv2 : SYS_pwritev2, ud, fd, iov, cnt,
                             static_cast<uint64_t>(-1), 0, flags);
        else if (vec) aio2_prep(io, read ? SYS_readv : SYS_writev, ud, fd, buf, n, 0, 0, 0);
        else aio2_prep(io, read ? SYS_read : SYS_write, ud, fd, buf, n, 0, 0, 0);
      } else if (op == IOCB_CMD_PREAD) {
        if (flags) aio2_prep(io, SYS_preadv2, ud, fd, one_iov, 1, off, 0, flags);
        else aio2_prep(io, SYS_pread64, ud, fd, buf, n, off, 0, 0);
      } else if (op == IOCB_CMD_PWRITE) {
        if (flags) aio2_prep(io, SYS_pwritev2, ud, fd, one_iov, 1, off, 0, flags);
        else aio2_prep(io, SYS_pwrite64, ud, fd, buf, n, off, 0, 0);
      } else if (op == IOCB_CMD_PREADV) {
        aio2_prep(io, flags ? SYS_preadv2 : SYS_preadv, ud, fd, buf, n, off, 0, flags);
      } else {
        aio2_prep(io, flags ? SYS_pwritev2 : SYS_pwritev, ud, fd, buf, n, off, 0, flags);
      }
      if (cb.aio_flags & IOCB_FLAG_IOPRIO) {
        const aio2_attr_ioprio p{prio, 0};
        aio2_attr_add(io, sizeof l.req, AIO2_ATTR_IOPRIO, 0, &p, sizeof p);
      }
      break;
    }
    case IOCB_CMD_FSYNC:
    case IOCB_CMD_FDSYNC: {
      if (cb.aio_buf || cb.aio_nbytes || cb.aio_offset || cb.aio_rw_flags) return -EINVAL;
      // Pipes and sockets have no fsync: the kernel refuses them here.
      struct stat st {};
      if (!f.positionable && fstat(static_cast<int>(fd), &st) == 0 &&
          (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return -EINVAL;
      aio2_prep(io, op == IOCB_CMD_FSYNC ? SYS_fsync : SYS_fdatasync, ud, fd, 0, 0, 0, 0, 0);
      break;
    }
    case IOCB_CMD_POLL:
      // The events to wait for are in aio_buf; nothing else may be set.
      if ((cb.aio_buf >> 16) || cb.aio_nbytes || cb.aio_offset || cb.aio_rw_flags)
        return -EINVAL;
      l.pfd = pollfd{static_cast<int>(fd), static_cast<short>(cb.aio_buf | POLLERR | POLLHUP), 0};
      aio2_prep(io, SYS_poll, ud, reinterpret_cast<uint64_t>(&l.pfd), 1,
                static_cast<uint64_t>(-1), 0, 0, 0);
      break;
    default:
      return -EINVAL;  // NOOP and unknown opcodes, as the kernel answers
  }
  // An observed context's requests say how they ran (AIO2_SETUP_LEGACY_OBSERVE).
  if (observe) {
    for (unsigned id : {AIO2_ATTR_TIMING, AIO2_ATTR_CACHE, AIO2_ATTR_EXECUTOR})
      aio2_attr_add(io, sizeof l.req, static_cast<uint16_t>(id), 0, nullptr, 0);
  }
  return 0;
}

// The read of a plain IOCB_CMD_PREAD, made with RWF_NOWAIT before the
// descriptor is asked about, when its descriptor's facts can be taken on
// trust (sys::trusted_cached_read: a file read through the page cache when
// last asked): the answer checks the facts. Returns true with *n the read's
// answer (bytes or -EAGAIN) and the facts in `memo`, for translate() and
// the router; false when the request goes the checked way (its read is
// then made as for any other, after one fcntl), having distrusted a
// descriptor that answered anything else. Only requests that carry no
// attribute qualify (none of their hooks must run before the read).
bool read_on_trust(const iocb &cb, bool observe, sys::fd_memo &memo, int64_t *n) noexcept {
  if (cb.aio_lio_opcode != IOCB_CMD_PREAD || observe || (cb.aio_flags & IOCB_FLAG_IOPRIO) ||
      cb.aio_rw_flags != 0 || cb.aio_reserved2 != 0)
    return false;
  return sys::read_on_trust(static_cast<int>(cb.aio_fildes), reinterpret_cast<void *>(cb.aio_buf),
                            static_cast<size_t>(cb.aio_nbytes), cb.aio_offset, memo, n);
}

// Whether the allowlist admits `cb`, translated into `pr`: the system call
// its opcode became, and the ioprio attribute when it asks for a priority.
// The attributes an observed context adds itself are the context's, not
// the caller's, and are not checked. 0 or -EPERM.
int legacy_allowed(const allowlist *allow, const iocb &cb, const parsed_request &pr) noexcept {
  if (allow == nullptr) return 0;
  if (!allow->syscall_allowed(pr.io->nr)) return -EPERM;
  if ((cb.aio_flags & IOCB_FLAG_IOPRIO) && !allow->attr_allowed(AIO2_ATTR_IOPRIO)) return -EPERM;
  return 0;
}

}  // namespace

long context::submit_legacy(long nr, struct iocb **iocbs) noexcept {
  if (type_ != AIO2_CTX_LEGACY) return -EBADFD;
  if (nr < 0) return -EINVAL;
  if (nr > 0 && !legacy_user_range(iocbs, static_cast<size_t>(nr) * sizeof *iocbs))
    return -EFAULT;
  const allowlist *allow = allowed();
  long done = 0;
  int err = 0;
  submission s(*this, static_cast<size_t>(nr));
  for (; done < nr; done++) {
    const iocb *cb = iocbs[done];
    if (!legacy_user_range(cb, sizeof *cb)) {
      err = -EFAULT;
      break;
    }
    exec::request *r = s.admit(&err);
    if (r == nullptr) break;
    if (!r->legacy) r->legacy.reset(new (std::nothrow) exec::request::legacy_fields);
    if (!r->legacy) {
      err = -ENOMEM;
      s.refuse(r);
      break;
    }
    parsed_request pr;
    exec::plan plan;
    const bool observe = flags_ & AIO2_SETUP_LEGACY_OBSERVE;
    // A read is made on trust only under the AUTO policy, and where the
    // allowlist admits it (the checked way below refuses it otherwise,
    // before anything runs).
    int64_t made = 0;
    const bool on_trust = s.policy() == AIO2_POLICY_AUTO &&
                          (allow == nullptr || allow->syscall_allowed(SYS_pread64)) &&
                          read_on_trust(*cb, observe, s.memo(), &made);
    if ((err = translate(*cb, r, s.memo(), observe)) == 0 &&
        (err = parse_request(r->legacy->req, sizeof r->legacy->req, &pr)) == 0 &&
        (err = legacy_allowed(allow, *cb, pr)) == 0) {
      if (on_trust && (made == 0 || made == static_cast<int64_t>(cb->aio_nbytes))) {
        // Read whole on trust: finished here, as in context::submit,
        // without the router.
        err = s.read_whole_here(pr, r, made);
      } else {
        plan = s.plan_for(pr);
        // The read made on trust is the plan's attempt when the plan has
        // one here; otherwise the request runs as planned (and reads
        // again).
        const bool use = on_trust && plan.attempt == exec::attempt::submitter;
        err = required_ok(pr, plan.bits()) ? s.dispatch(pr, plan, r, use ? &made : nullptr)
                                           : -EOPNOTSUPP;
      }
    }
    if (err) {
      s.refuse(r);
      break;
    }
  }
  s.finish();
  return done == 0 && err ? err : done;
}

long context::getevents_legacy(long min_nr, long nr, struct io_event *events,
                               const struct timespec *timeout, const sigset_t *sigmask) noexcept {
  if (type_ != AIO2_CTX_LEGACY) return -EBADFD;
  if ((timeout && !legacy_user_range(timeout, sizeof *timeout)) ||
      (sigmask && !legacy_user_range(sigmask, sizeof *sigmask)))
    return -EFAULT;
  return legacy_queue_.getevents(min_nr, nr, events, timeout, sigmask);
}

int context::cancel_legacy(struct iocb *cb, struct io_event *result) noexcept {
  if (type_ != AIO2_CTX_LEGACY) return -EBADFD;
  // `result` is not used (the kernel no longer writes it either, and takes
  // NULL): the event arrives through the ring, as the kernel delivers it.
  // -EINPROGRESS says the cancellation is under way (or done): the request
  // was removed, or interrupted. A request that nothing stops (a read of a
  // regular file under way) is -EINVAL, as the kernel answers for a request
  // it cannot cancel; its event comes with its result.
  (void)result;
  if (!legacy_user_range(cb, sizeof *cb)) return -EFAULT;
  switch (cancel_everywhere(reinterpret_cast<uint64_t>(cb))) {
    case exec::executor::cancel_result::cancelled:
    case exec::executor::cancel_result::running:
      return -EINPROGRESS;
    case exec::executor::cancel_result::in_flight:
    case exec::executor::cancel_result::not_found:
      break;
  }
  return -EINVAL;
}

}  // namespace aio2::core
