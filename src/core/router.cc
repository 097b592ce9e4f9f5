// SPDX-License-Identifier: MIT
#include "core/router.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys/rw_args.h"
#include "sys/syscall_table.h"

namespace aio2::core {

namespace {

// The open flags of an open-family call, or -1 when they cannot be read.
int64_t open_flags(const aio2_iocb &io) noexcept {
  switch (io.nr) {
    case SYS_open: return static_cast<int64_t>(io.args[1]);
    case SYS_openat: return static_cast<int64_t>(io.args[2]);
    case SYS_creat: return O_CREAT | O_WRONLY | O_TRUNC;
    case SYS_openat2: {  // flags are the first field of struct open_how
      if (io.args[3] < sizeof(uint64_t)) return -1;
      uint64_t flags = 0;
      const iovec local{&flags, sizeof flags};
      const iovec remote{reinterpret_cast<void *>(io.args[2]), sizeof flags};
      if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof flags) return -1;
      return static_cast<int64_t>(flags & 0x7fffffff);
    }
    default: return -1;
  }
}

bool is_open(uint32_t nr) noexcept {
  return nr == SYS_open || nr == SYS_openat || nr == SYS_openat2 || nr == SYS_creat;
}

// What the descriptors of a request say about where it can run.
struct fd_verdict {
  bool uring_fits = true;  // io_uring answers like the call
  bool cannot_block = false;  // every descriptor is O_NONBLOCK and not a file or block device
  bool may_wait_forever = false;  // some descriptor is neither a regular file nor a block device
};

fd_verdict judge_descriptors(const parsed_request &pr, sys::fd_lookup &fds) noexcept {
  const aio2_iocb &io = *pr.io;
  fd_verdict v;
  // io_uring opens without waiting first: a FIFO then opens at once (or
  // fails with -ENXIO) where the call waits for the other end. Only opens
  // that cannot wait on one go there.
  if (is_open(io.nr)) {
    const int64_t fl = open_flags(io);
    v.uring_fits = fl >= 0 && (fl & (O_NONBLOCK | O_PATH | O_DIRECTORY));
  }
  const bool nb_matters = sys::honours_nonblock(io.nr), wr = sys::stream_write(io.nr);
  const sys::rw_at at = sys::where(io);
  bool any_nb = false, all_nb = true, seen = false;
  // Only the descriptor arguments (the table's fd_args bits), lowest first.
  for (uint32_t left = pr.info->fd_args & 0x3fu; left != 0; left &= left - 1) {
    const unsigned i = static_cast<unsigned>(__builtin_ctz(left));
    const int fd = static_cast<int>(io.args[i]);
    if (fd < 0) continue;  // AT_FDCWD, or -EBADF from io_uring and the call alike
    sys::fd_facts f{};
    if (fds.get(fd, &f) != 0) {
      // Not open: -EBADF from the call and io_uring alike, unless another
      // thread opens the number before io_uring looks it up. A read or
      // write at an offset then runs as the call, which refuses a pipe or
      // socket there (-ESPIPE) where io_uring would consume its data.
      if (i == 0 && at == sys::rw_at::offset) v.uring_fits = false;
      continue;
    }
    seen = true;
    v.may_wait_forever |= !f.positionable;
    const bool nb = nb_matters && (f.flags & O_NONBLOCK);
    any_nb |= nb;
    // Cannot block: O_NONBLOCK on something other than a regular file or a
    // block device (their reads wait for the disk whatever the flag says).
    all_nb &= nb && !f.positionable;
    if (i != 0) continue;
    // io_uring ignores the offset of a pipe or socket where the call
    // refuses it with -ESPIPE (and would consume the pipe's data).
    if (at == sys::rw_at::offset && !f.positionable) v.uring_fits = false;
    // io_uring reads and moves the position without the file's position
    // lock, so concurrent calls at the position could read the same bytes.
    if (at == sys::rw_at::position && f.regular) v.uring_fits = false;
    if (wr && !f.regular) v.uring_fits = false;
  }
  v.cannot_block = seen && any_nb && all_nb;
  if (any_nb) v.uring_fits = false;  // io_uring would wait (poll) or miss -EAGAIN
  return v;
}

// Pool workers: unbounded for calls that may wait for ever. The request's
// hints first, then the system-call table, then the descriptors' kinds.
bool wants_unbounded(const parsed_request &pr, const fd_verdict &v) noexcept {
  if (pr.io->flags & AIO2_IOCB_UNBOUNDED) return true;
  if (pr.io->flags & AIO2_IOCB_BOUNDED) return false;
  switch (pr.info->blocks) {
    case sys::blocking::forever: return true;
    case sys::blocking::fd_dependent: return v.may_wait_forever;
    default: return false;
  }
}

}  // namespace

exec::plan route(const parsed_request &pr, sys::fd_lookup &fds, const router_env &env,
                 void *sqe) noexcept {
  const aio2_iocb &io = *pr.io;
  const uint32_t field = io.flags & AIO2_IOCB_POLICY_MASK;
  const uint32_t policy = field ? (field >> AIO2_IOCB_POLICY_SHIFT) - 1 : env.policy;
  exec::plan p;
  if (policy == AIO2_POLICY_INLINE) {
    p.path = AIO2_PATH_INLINE;
    return p;
  }
  // AUTO: a call that cannot block by nature runs here, whatever its
  // descriptors, when its attributes allow (the cheapest path, first).
  const auto honoured = [&](uint32_t bits) { return (pr.attr_paths & bits) == bits; };
  if (policy == AIO2_POLICY_AUTO && pr.info->blocks == sys::blocking::never &&
      honoured(AIO2_PATH_INLINE)) {
    p.path = AIO2_PATH_INLINE;
    return p;
  }
  const fd_verdict v = judge_descriptors(pr, fds);
  p.unbounded = wants_unbounded(pr, v);
  if (policy == AIO2_POLICY_POOL) return p;
  const bool uring = env.uring_translate != nullptr && v.uring_fits &&
                     env.uring_translate(env.uring, io.nr, io.args, sqe);
  const auto on_uring = [&] {
    p.path = AIO2_PATH_URING;
    if (sys::is_read(io.nr) && pr.wants_nowait) p.attempt = exec::attempt::executor;
    return p;
  };
  if (policy == AIO2_POLICY_URING) return uring ? on_uring() : p;

  // AUTO: the first path, cheapest first, on which every attribute of the
  // request can be honoured; the pool honours every built-in.
  if (v.cannot_block && honoured(AIO2_PATH_INLINE)) {
    p.path = AIO2_PATH_INLINE;
    return p;
  }
  if (sys::is_read(io.nr)) {
    // preadv2 with RWF_NOWAIT cannot block: it is its own inline attempt.
    if (io.nr == SYS_preadv2 && (io.args[5] & RWF_NOWAIT) && honoured(AIO2_PATH_INLINE)) {
      p.path = AIO2_PATH_INLINE;
      return p;
    }
    // Nowait-first reads that start here are reads at a valid offset (not
    // at the file position: a read in two parts there could interleave with
    // another reader's) of a regular file through the page cache (a short
    // read of a pipe or socket is its answer, not part of one; an O_DIRECT
    // read with RWF_NOWAIT would wait for the device in this thread).
    if (env.nowait_in_submitter && !pr.thread_bound && sys::where(io) == sys::rw_at::offset &&
        !sys::bad_offset(io)) {
      exec::plan first = p;  // the rest on io_uring where it can go, else the pool
      first.path = uring ? AIO2_PATH_URING : AIO2_PATH_POOL;
      first.attempt = exec::attempt::submitter;
      sys::fd_facts f{};
      if (honoured(first.bits()) && fds.get(static_cast<int>(io.args[0]), &f) == 0 &&
          sys::reads_through_cache(f))
        return first;
    }
  }
  if (uring && honoured(AIO2_PATH_URING)) return on_uring();
  return p;
}

}  // namespace aio2::core
