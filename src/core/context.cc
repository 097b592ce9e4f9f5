// SPDX-License-Identifier: MIT
#include "core/context.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>

#include "attr/builtins.h"
#include "exec/raw_syscall.h"
#include "sys/fd_facts.h"
#include "sys/rw_calls.h"
#include "sys/syscall_table.h"

namespace aio2 {

namespace {

constexpr uint32_t kSleepers = 1;       // bit 0 of the futex word: a reaper sleeps on it
constexpr uint32_t kUringSleeper = 2;   // bit 1: the io_uring waiter sleeps in ppoll
constexpr uint32_t kPost = 4;           // what one post adds
constexpr size_t kChunk = 64;  // slots allocated at a time
constexpr size_t kSubmitBatch = 64;  // requests handed to the pool per lock

long futex_wait(std::atomic<uint32_t> *word, uint32_t expect, const timespec *rel) noexcept {
  return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expect, rel,
                 nullptr, 0) == 0
             ? 0
             : -errno;
}

void futex_wake_all(std::atomic<uint32_t> *word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

int64_t now_ns() noexcept { return static_cast<int64_t>(attr::monotonic_ns()); }

unsigned count_events(const unsigned char *p, size_t bytes) noexcept {
  unsigned n = 0;
  for (size_t off = 0; off < bytes; n++) {
    aio2_ring_rec h;
    std::memcpy(&h, p + off, sizeof h);
    off += h.len;
  }
  return n;
}


}  // namespace

context::context(uint32_t type, uint32_t flags, const limits &lim) noexcept
    : type_(type),
      flags_(flags),
      lim_(lim),
      pool_(lim.bounded_workers, lim.unbounded_workers, lim.idle_ms, &context::on_complete, this),
      uring_(&context::on_complete, &context::on_uring_posted, this) {}

context::~context() {
  shutdown();  // nothing runs after this: the pool and io_uring are stopped
  if (ring_) aio2_ring_unmap(ring_);
  if (efd_ >= 0) ::close(efd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int context::start() noexcept {
  if (type_ != AIO2_CTX_RING) return 0;
  // Many workers post (producers) and any number of threads reap.
  if (int err = aio2_ring_new(lim_.ring_bytes, 0, 0, &ring_)) return err;
  if (flags_ & AIO2_SETUP_EVENTFD) {
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) return -errno;
  }
  // io_uring when allowed and available; any failure (not built into the
  // kernel, kernel.io_uring_disabled, seccomp, too old) leaves the context
  // on the inline path and the pool, which the feature bits show.
  if (!(flags_ & AIO2_SETUP_NO_URING) && uring_.init(lim_.uring_entries, efd_) == 0) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return -errno;
  }
  // Where io_uring runs reads it tries them without blocking first, inside
  // io_uring_enter, for a whole batch at once; a RWF_NOWAIT attempt of our
  // own would only add a system call per read (docs/design.md, measured).
  nowait_first_ = !uring_.active();
  return 0;
}

size_t context::take_slots(request **out, size_t n) noexcept {
  std::lock_guard lk(slots_mu_);
  size_t got = 0;
  while (got < n) {
    if (free_slots_ == nullptr) {
      try {
        chunks_.emplace_back(new request[kChunk]);
      } catch (...) {
        break;
      }
      request *chunk = chunks_.back().get();
      for (size_t i = 0; i < kChunk; i++) {
        chunk[i].next = free_slots_;
        free_slots_ = &chunk[i];
      }
    }
    request *r = free_slots_;
    free_slots_ = r->next;
    r->next = nullptr;
    out[got++] = r;
  }
  return got;
}

void context::put_slot(request *r) noexcept {
  r->state = req_state::free;
  std::lock_guard lk(slots_mu_);
  r->next = free_slots_;
  free_slots_ = r;
}

namespace {

// The calls whose descriptor's O_NONBLOCK makes them return -EAGAIN instead
// of waiting. io_uring does not answer like the call for them: it waits
// (polls) for a pipe or socket, and for a regular file it gives -EAGAIN
// where the call would read from the disk.
bool honours_nonblock(uint32_t nr) noexcept {
  switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_preadv2:
    case SYS_pwritev2: case SYS_recvfrom: case SYS_sendto: case SYS_recvmsg: case SYS_sendmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_splice: case SYS_tee:
      return true;
    default:
      return false;
  }
}

// A call with an explicit offset (preadv2 and pwritev2 at -1 use the
// position instead).
bool positioned(const aio2_iocb &io) noexcept {
  switch (io.nr) {
    case SYS_pread64: case SYS_pwrite64: case SYS_preadv: case SYS_pwritev:
      return true;
    case SYS_preadv2: case SYS_pwritev2:
      return static_cast<int64_t>(io.args[3]) != -1;
    default:
      return false;
  }
}

// A read or write at the file position.
bool at_position(const aio2_iocb &io) noexcept {
  switch (io.nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
      return true;
    case SYS_preadv2: case SYS_pwritev2:
      return static_cast<int64_t>(io.args[3]) == -1;
    default:
      return false;
  }
}

// Writes that a blocking pipe or socket takes whole from the call, and in
// part from io_uring (which stops at what fits without waiting).
bool stream_write(uint32_t nr) noexcept {
  return nr == SYS_write || nr == SYS_writev || nr == SYS_pwritev2 || nr == SYS_sendto ||
         nr == SYS_sendmsg;
}

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

}  // namespace

bool context::descriptors_fit_uring(const parsed_request &pr, sys::fd_memo &memo,
                                    bool *nonblocking) const noexcept {
  const aio2_iocb &io = *pr.io;
  *nonblocking = false;
  // io_uring opens without waiting first: a FIFO then opens at once (or
  // fails with -ENXIO) where the call waits for the other end. Only opens
  // that cannot wait on one go there.
  if (io.nr == SYS_open || io.nr == SYS_openat || io.nr == SYS_openat2 || io.nr == SYS_creat) {
    const int64_t fl = open_flags(io);
    return fl >= 0 && (fl & (O_NONBLOCK | O_PATH | O_DIRECTORY));
  }
  const bool nb_matters = honours_nonblock(io.nr), pos = positioned(io), cur = at_position(io),
             wr = stream_write(io.nr);
  if (!nb_matters && !pos && !cur) return true;
  bool fits = true, any_nb = false, all_nb = true, seen = false;
  for (unsigned i = 0; i < 6; i++) {
    if (!(pr.info->fd_args & (1u << i))) continue;
    const int fd = static_cast<int>(io.args[i]);
    if (fd < 0) continue;  // AT_FDCWD, or io_uring's -EBADF like the call's
    sys::fd_facts f{};
    if (memo.get(fd, &f) != 0) continue;  // not open: -EBADF either way
    seen = true;
    const bool nb = nb_matters && (f.flags & O_NONBLOCK);
    any_nb |= nb;
    // Cannot block: O_NONBLOCK on something other than a regular file (a
    // regular file's reads wait for the disk whatever the flag says).
    all_nb &= nb && !f.regular;
    if (i != 0) continue;
    // io_uring ignores the offset of a pipe or socket where the call
    // refuses it with -ESPIPE (and would consume the pipe's data).
    if (pos && !f.positionable) fits = false;
    // io_uring reads and moves the position without the file's position
    // lock, so concurrent calls at the position could read the same bytes.
    if (cur && f.regular) fits = false;
    if (wr && !f.regular) fits = false;
  }
  *nonblocking = seen && any_nb && all_nb;
  return fits && !any_nb;
}

uint32_t context::choose_route(const parsed_request &pr, io_uring_sqe *sqe,
                               sys::fd_memo &memo) const noexcept {
  const aio2_iocb &io = *pr.io;
  const uint32_t field = io.flags & AIO2_IOCB_PATH_MASK;
  const uint32_t policy = field ? (field >> AIO2_IOCB_PATH_SHIFT) - 1 : lim_.policy;
  if (policy == AIO2_POLICY_POOL) return AIO2_PATH_POOL;
  if (policy == AIO2_POLICY_INLINE) return AIO2_PATH_INLINE;
  bool nonblocking = false;
  const bool uring = uring_.translate(io.nr, io.args, sqe) &&
                     descriptors_fit_uring(pr, memo, &nonblocking);
  if (policy == AIO2_POLICY_URING) return uring ? AIO2_PATH_URING : AIO2_PATH_POOL;
  // AUTO: the first path, cheapest first, on which every attribute of the
  // request can be honoured; the pool honours every built-in.
  const auto honoured = [&](uint32_t route) { return (pr.attr_paths & route) == route; };
  // Calls that cannot block run here: non-blocking by nature, or by the
  // descriptor's O_NONBLOCK (a pipe, a socket: -EAGAIN at once).
  if ((pr.info->blocks == sys::blocking::never || nonblocking) && honoured(AIO2_PATH_INLINE))
    return AIO2_PATH_INLINE;
  if (sys::is_read(io.nr)) {
    // preadv2 with RWF_NOWAIT cannot block: it is its own inline attempt.
    if (io.nr == SYS_preadv2 && (io.args[5] & RWF_NOWAIT) && honoured(AIO2_PATH_INLINE))
      return AIO2_PATH_INLINE;
    // Only at an offset, not negative (the call's own -EINVAL, not
    // preadv2's "current position"), and not at the file position: a read
    // in two parts there could interleave with another reader's.
    const bool offset_ok = positioned(io) && static_cast<int64_t>(io.args[3]) >= 0;
    if (nowait_first_ && !pr.thread_bound && offset_ok) {
      const uint32_t split = AIO2_PATH_INLINE | (uring ? AIO2_PATH_URING : AIO2_PATH_POOL);
      // Only regular files: a short read of a pipe or socket is its answer,
      // not part of one; and not O_DIRECT, whose RWF_NOWAIT read would wait
      // for the device in this thread.
      sys::fd_facts f{};
      if (honoured(split) && memo.get(static_cast<int>(io.args[0]), &f) == 0 &&
          sys::reads_through_cache(f))
        return split;
    }
  }
  if (uring && honoured(AIO2_PATH_URING)) return AIO2_PATH_URING;
  return AIO2_PATH_POOL;
}

bool context::start_split(request *r) noexcept {
  const unsigned char *attrs = r->attrs.data();
  int64_t res = 0;
  if (!r->attr_state.empty() && !r->attr_state.before(r->io, attrs, 0, &res)) {
    r->attr_state.set_path(AIO2_PATH_INLINE);
    end_call(r, res, 0);
    return true;
  }
  // Split reads are reads at an offset (choose_route): args[3] is it.
  const int64_t n = sys::read_nowait(r->io, r->io.args[3]);
  // Everything asked for, or the end of the file: done here. Else (not
  // cached: EAGAIN; not supported here: EOPNOTSUPP; any error) the rest of
  // the route runs the rest, or the whole call, and gives the answer.
  if (!continue_read(r, n)) {
    r->attr_state.set_path(AIO2_PATH_INLINE);
    end_call(r, 0, 0);  // combines: res = the bytes read here
    return true;
  }
  return false;
}

ssize_t context::submit(const void *reqs, size_t bytes) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if ((reqs == nullptr && bytes) || (reinterpret_cast<uintptr_t>(reqs) & 7u)) return -EINVAL;
  const auto *p = static_cast<const unsigned char *>(reqs);
  request *batch[2][kSubmitBatch];
  size_t n[2] = {0, 0};
  auto flush = [&](int cls) {
    if (n[cls]) pool_.enqueue(batch[cls], n[cls], cls == 1);
    n[cls] = 0;
  };
  request *ubatch[kSubmitBatch];
  size_t nu = 0;
  bool uring_used = false, posted = false;
  auto flush_uring = [&] {
    if (nu) uring_.submit(ubatch, nu);
    uring_used |= nu != 0;
    nu = 0;
  };
  auto to_pool = [&](request *r, const sys::syscall_info &info) {
    const int cls = exec::pool::wants_unbounded(r->io, info) ? 1 : 0;
    batch[cls][n[cls]++] = r;
    if (n[cls] == kSubmitBatch) flush(cls);
  };
  auto to_uring = [&](request *r) {
    ubatch[nu++] = r;
    if (nu == kSubmitBatch) flush_uring();
  };
  auto done_here = [&](request *r) {
    complete(r, false);
    posted = true;
  };
  // Slots are taken in batches (one lock per batch, not per request) and
  // the unused rest given back at the end.
  request *spare[kSubmitBatch];
  size_t nspare = 0;
  size_t off = 0;
  int err = 0;
  sys::fd_memo memo;
  const sys::fd_memo_scope memo_scope(memo);  // shared with the attribute hooks
  while (off < bytes) {
    parsed_request pr;
    if ((err = parse_request(p + off, bytes - off, &pr)) != 0) break;
    io_uring_sqe sqe;
    const uint32_t route = choose_route(pr, &sqe, memo);
    if (!required_ok(pr, route)) {
      err = -EOPNOTSUPP;
      break;
    }
    if (inflight_.fetch_add(1, std::memory_order_relaxed) >= lim_.max_inflight) {
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      err = -EAGAIN;
      break;
    }
    if (nspare == 0) {
      const size_t want = (bytes - off) / sizeof(aio2_iocb);
      nspare = take_slots(spare, want < kSubmitBatch ? (want ? want : 1) : kSubmitBatch);
    }
    request *r = nspare ? spare[--nspare] : nullptr;
    if (r != nullptr) {
      try {
        r->attrs.assign(pr.attrs, pr.attrs + pr.attr_bytes);  // keeps capacity across reuse
      } catch (...) {
        put_slot(r);
        r = nullptr;
      }
    }
    if (r == nullptr) {
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      err = -ENOMEM;
      break;
    }
    r->io = *pr.io;
    r->route = route;
    r->split_done = -1;
    r->probe = false;
    // Attribute handlers, and their on_submit hooks, which may refuse it.
    err = r->attr_state.prepare(r->io, r->attrs.data(), pr.attr_bytes, route);
    if (err) {
      put_slot(r);
      inflight_.fetch_sub(1, std::memory_order_relaxed);
      break;
    }
    r->cancel_requested.store(false, std::memory_order_relaxed);
    r->generation.fetch_add(1, std::memory_order_relaxed);
    off += pr.io->len;

    if (route == AIO2_PATH_INLINE) {
      run_request(r, 0);
      done_here(r);
    } else if (route & AIO2_PATH_INLINE) {  // a split read
      if (start_split(r)) {
        done_here(r);
      } else if ((route & AIO2_PATH_URING) &&
                 uring_.translate(r->io.nr, r->cont_args,
                                  reinterpret_cast<io_uring_sqe *>(r->sqe))) {
        to_uring(r);
      } else {
        to_pool(r, *pr.info);
      }
    } else if (route == AIO2_PATH_URING) {
      int64_t res = 0;
      const unsigned char *attrs = r->attrs.data();
      if (!r->attr_state.empty() && !r->attr_state.before(r->io, attrs, 0, &res)) {
        end_call(r, res, 0);  // a hook completed it (deadline passed, say)
        done_here(r);
        continue;
      }
      if (const unsigned char *prio = r->attr_state.payload_if_ok(AIO2_ATTR_IOPRIO, attrs)) {
        aio2_attr_ioprio want;
        std::memcpy(&want, prio, sizeof want);
        aio2_attr_ioprio_ret got{};
        r->attr_state.result_if_ok(AIO2_ATTR_IOPRIO, &got, sizeof got);
        if (got.applied) sqe.ioprio = static_cast<uint16_t>(want.ioprio);
      }
      // The cache attribute: the read goes with RWF_NOWAIT, and what that
      // does not get is read again without it (uring::harvest).
      aio2_attr_cache unused;
      r->probe = sys::is_read(r->io.nr) && r->attr_state.result_if_ok(AIO2_ATTR_CACHE, &unused, 0);
      if (r->probe) sqe.rw_flags |= RWF_NOWAIT;
      std::memcpy(r->sqe, &sqe, sizeof sqe);
      to_uring(r);
    } else {
      to_pool(r, *pr.info);
    }
  }
  flush(0);
  flush(1);
  flush_uring();
  while (nspare) put_slot(spare[--nspare]);
  if (uring_used) after_uring_submit();
  if (posted) wake(true);
  if (off == 0 && err) return err;
  return static_cast<ssize_t>(off);
}

void context::after_uring_submit() noexcept {
  sync_need_getevents();
  // Reads the page cache serves completed inside io_uring_enter: post them
  // now, so reapers of the ring in memory see them without calling in.
  harvest_uring();
  // A reaper asleep on the futex while no request was on io_uring waits for
  // nobody to harvest these: wake it to take the io_uring waiter's role.
  // Seq_cst: uring_.submit raised inflight before this load; a reaper sets
  // its bit before it reads inflight (getevents).
  if ((posted_.load(std::memory_order_seq_cst) & kSleepers) &&
      !uring_role_.load(std::memory_order_seq_cst))
    wake(false);
}

void context::sync_need_getevents() noexcept {
  // Set while requests are on io_uring: their completions reach the ring
  // only through aio2_getevents (or a submit), so reapers of the ring in
  // memory must call in when they find it empty. Every change of the count
  // is followed, in the same thread, by this call; under need_mu_ each call
  // reads the count after every change whose own call came before it, so
  // the last call leaves the flag matching the count.
  std::lock_guard lk(need_mu_);
  const bool want = uring_.inflight() != 0;
  const bool has = (aio2_ring_owner_flags(ring_) & AIO2_RING_NEED_GETEVENTS) != 0;
  if (want && !has) aio2_ring_owner_flags_set(ring_, AIO2_RING_NEED_GETEVENTS);
  if (!want && has) aio2_ring_owner_flags_clear(ring_, AIO2_RING_NEED_GETEVENTS);
}

void context::harvest_uring() noexcept {
  // Also when nothing is in flight but the queue holds entries (aio2's own
  // cancellations): they would keep the ring's descriptor readable.
  if (uring_.active() && (uring_.inflight() != 0 || uring_.ready())) uring_.harvest(false);
}

void context::on_uring_posted(void *self) noexcept {
  auto *c = static_cast<context *>(self);
  c->sync_need_getevents();
  c->wake(false);  // the kernel signalled the eventfd for each completion
}

// Pool workers complete one request at a time and wake at once; the
// io_uring harvester posts a batch, then its caller wakes once.
void context::on_complete(void *self, request *r) noexcept {
  auto *c = static_cast<context *>(self);
  c->complete(r, !(r->route & AIO2_PATH_URING));
}

bool context::push_to_ring(const request *r) noexcept {
  const auto len = static_cast<uint32_t>(r->event.size());
  aio2_ring_rec *rec = nullptr;
  if (aio2_ring_reserve(ring_, len, &rec) != 0) return false;  // full, or larger than a record
  aio2_ring_write(ring_, rec, 0, r->event.data() + AIO2_RING_REC_HDR, len - AIO2_RING_REC_HDR);
  aio2_ring_commit(ring_, rec, r->event_flags);
  return true;
}

void context::complete(request *r, bool wake_now) noexcept {
  combine_split(r);  // a split read cancelled before its rest ran
  r->attr_state.post(r->io, r->attrs.data(), r->res);
  const uint32_t len = static_cast<uint32_t>(sizeof(aio2_event)) + r->attr_state.result_bytes();
  r->event.resize(len);  // no allocation once the slot has held an event this large
  write_event(r->event.data(), r->io.user_data, r->res, r->event_flags, r->attr_state);
  // While older events wait on the overflow list, newer ones queue behind
  // them, so reapers see completions in posting order.
  if (ovf_count_.load(std::memory_order_acquire) == 0 && push_to_ring(r)) {
    put_slot(r);
    inflight_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    std::lock_guard lk(ovf_mu_);
    r->state = req_state::overflow;
    r->next = nullptr;
    if (ovf_tail_) ovf_tail_->next = r;
    else ovf_head_ = r;
    ovf_tail_ = r;
    ovf_count_.fetch_add(1, std::memory_order_release);
    aio2_ring_owner_flags_set(ring_, AIO2_RING_OVERFLOW);
  }
  if (wake_now) wake(true);
}

void context::wake(bool eventfd) noexcept {
  // Count the post. Release: a reaper that sees the new value sees the
  // event. Only the poster that finds a sleeper's bit set clears it and
  // makes the wake-up system call; the rest make none.
  const uint32_t old = posted_.fetch_add(kPost, std::memory_order_seq_cst);
  if (old & kSleepers) {
    posted_.fetch_and(~kSleepers, std::memory_order_acq_rel);
    futex_wake_all(&posted_);
  }
  if (old & kUringSleeper) {
    posted_.fetch_and(~kUringSleeper, std::memory_order_acq_rel);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
  }
  if (eventfd && efd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(efd_, &one, sizeof one);  // cannot fill: 2^64-2
  }
}

int context::drain(unsigned char *buf, size_t bytes, size_t &got, unsigned &events,
                   uint32_t *need) noexcept {
  for (;;) {
    const int64_t n = aio2_ring_reap(ring_, buf + got, bytes - got, 0);
    if (n == 0) break;
    if (n == -ENOBUFS) {
      *need = aio2_ring_next_len(ring_);
      return -ENOBUFS;
    }
    if (n < 0) return static_cast<int>(n);
    events += count_events(buf + got, static_cast<size_t>(n));
    got += static_cast<size_t>(n);
  }
  if (ovf_count_.load(std::memory_order_acquire) == 0) return 0;
  std::lock_guard lk(ovf_mu_);
  while (ovf_head_ != nullptr) {
    request *r = ovf_head_;
    const size_t len = r->event.size();
    if (len > bytes - got) {
      *need = static_cast<uint32_t>(len);
      return -ENOBUFS;
    }
    std::memcpy(buf + got, r->event.data(), len);
    got += len;
    events++;
    ovf_head_ = r->next;
    if (ovf_head_ == nullptr) ovf_tail_ = nullptr;
    ovf_count_.fetch_sub(1, std::memory_order_release);
    put_slot(r);
    inflight_.fetch_sub(1, std::memory_order_relaxed);
  }
  aio2_ring_owner_flags_clear(ring_, AIO2_RING_OVERFLOW);
  return 0;
}

ssize_t context::getevents(unsigned min_events, void *buf, size_t bytes,
                           const struct timespec *timeout) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  if (buf == nullptr || (reinterpret_cast<uintptr_t>(buf) & 7u)) return -EINVAL;
  if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
    return -EINVAL;
  auto *out = static_cast<unsigned char *>(buf);
  // A timeout too long to add to the clock (centuries) waits for ever.
  constexpr int64_t kMaxSeconds = 100ll * 365 * 24 * 3600;
  if (timeout && timeout->tv_sec > kMaxSeconds) timeout = nullptr;
  const int64_t deadline =
      timeout ? now_ns() + timeout->tv_sec * 1000000000ll + timeout->tv_nsec : 0;
  size_t got = 0;
  unsigned events = 0;
  bool role = false;  // this thread is the io_uring waiter
  struct role_guard {
    context *c;
    bool &held;
    ~role_guard() {
      if (held) c->release_uring_role();
    }
  } guard{this, role};
  for (;;) {
    // Sampled before looking, so a post after the look changes it and the
    // wait below returns at once.
    const uint32_t seen = posted_.load(std::memory_order_seq_cst);
    harvest_uring();
    uint32_t need = 0;
    const int err = drain(out, bytes, got, events, &need);
    if (err == -ENOBUFS) {
      if (got) return static_cast<ssize_t>(got);
      if (bytes >= sizeof need) std::memcpy(out, &need, sizeof need);
      return -EINVAL;
    }
    if (err < 0) return got ? static_cast<ssize_t>(got) : err;
    if (events >= min_events || closing_.load(std::memory_order_acquire))
      return static_cast<ssize_t>(got);
    timespec rel{}, *relp = nullptr;
    if (timeout) {
      const int64_t left = deadline - now_ns();
      if (left <= 0) return static_cast<ssize_t>(got);
      rel.tv_sec = left / 1000000000;
      rel.tv_nsec = left % 1000000000;
      relp = &rel;
    }
    // Requests on io_uring complete only into its completion queue: one
    // reaper at a time (the role) waits there, and on wake_fd_ for posts
    // from elsewhere; the others wait on the futex for what it posts.
    // A holder keeps the role (and waits on io_uring) until it returns, even
    // when nothing is in flight at this moment: others rely on it.
    if (role || (uring_.inflight() != 0 && !uring_role_.exchange(true, std::memory_order_seq_cst))) {
      role = true;
      uint32_t cur = seen;
      if (!posted_.compare_exchange_strong(cur, seen | kUringSleeper, std::memory_order_seq_cst))
        continue;  // posted since we looked
      pollfd fds[2] = {{uring_.fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      const int rc = uring_.ready() ? 0 : ppoll(fds, 2, relp, nullptr);
      posted_.fetch_and(~kUringSleeper, std::memory_order_acq_rel);
      if (rc > 0 && fds[1].revents) {
        uint64_t v;
        [[maybe_unused]] ssize_t rd = ::read(wake_fd_, &v, sizeof v);
      }
      if (rc < 0 && errno == EINTR && got == 0) return -EINTR;
      continue;
    }
    // Announce a sleeper, unless something was posted since `seen` (then
    // look again). The futex compares the word with what we announced, so
    // a post after this point either changes it (no sleep) or finds the
    // sleepers bit and wakes us.
    const uint32_t want = seen | kSleepers;
    uint32_t cur = seen;
    if (cur != want &&
        !posted_.compare_exchange_strong(cur, want, std::memory_order_seq_cst,
                                         std::memory_order_seq_cst) &&
        cur != want) {
      continue;  // posted since we looked (cur == want: another reaper set the bit)
    }
    // With the bit set (seq_cst), look once more for io_uring work nobody
    // waits for; a submitter or a releasing waiter that saw the bit wakes us.
    if (uring_.inflight() != 0 && !uring_role_.load(std::memory_order_seq_cst)) continue;
    const long rc = futex_wait(&posted_, want, relp);
    if (rc == -EINTR && got == 0) return -EINTR;
  }
}

void context::release_uring_role() noexcept {
  uring_role_.store(false, std::memory_order_seq_cst);
  // A reaper asleep on the futex while requests remain on io_uring must
  // take the role over: wake them (seq_cst, pairs with the sleeper's bit
  // and its load of uring_role_).
  if (uring_.inflight() != 0 && (posted_.load(std::memory_order_seq_cst) & kSleepers))
    wake(false);
}

int context::cancel(uint64_t user_data) noexcept {
  if (type_ != AIO2_CTX_RING) return -EBADFD;
  switch (pool_.cancel(user_data)) {
    case exec::pool::cancel_result::queued: return 0;
    case exec::pool::cancel_result::running: return -EALREADY;
    default: break;
  }
  int rc = -ENOENT;
  switch (uring_.cancel(user_data)) {
    case exec::uring::cancel_result::cancelled: rc = 0; break;
    case exec::uring::cancel_result::running: rc = -EALREADY; break;
    default: break;
  }
  harvest_uring();  // the cancelled request's completion is posted by now
  return rc;
}

void context::close() noexcept {
  if (closing_.exchange(true)) return;
  wake(false);  // waiters see closing_ and return
  futex_wake_all(&posted_);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
  }
}

void context::shutdown() noexcept {
  close();
  pool_.shutdown();
  uring_.shutdown();
}

ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes) noexcept {
  if (req == nullptr || (reinterpret_cast<uintptr_t>(req) & 7u)) return -EINVAL;
  if (ev == nullptr || (reinterpret_cast<uintptr_t>(ev) & 7u)) return -EINVAL;
  parsed_request pr;
  const size_t len = req->len < sizeof *req ? sizeof *req : req->len;
  const auto *bytes = reinterpret_cast<const unsigned char *>(req);
  if (int err = parse_request(bytes, len, &pr)) return err;
  if (!required_ok(pr, AIO2_PATH_CALL)) return -EOPNOTSUPP;
  // Each thread reuses one attribute state, so a call allocates nothing
  // once the thread has made one as large; a hook that calls aio2_call from
  // inside a call gets a fresh one.
  thread_local attr::request_attrs reused;
  thread_local bool reused_busy = false;
  attr::request_attrs fresh;
  const bool mine = !reused_busy;
  attr::request_attrs &attrs = mine ? reused : fresh;
  reused_busy = true;
  struct release {
    bool mine;
    ~release() {
      if (mine) reused_busy = false;
    }
  } release_on_return{mine};
  if (int err = attrs.prepare(*req, pr.attrs, pr.attr_bytes, AIO2_PATH_CALL)) return err;
  // Refuse before running when even the largest possible event would not fit.
  if (ev_bytes < sizeof(aio2_event) + attrs.max_result_bytes()) return -ENOBUFS;
  int64_t res = 0;
  if (attrs.empty() || attrs.before(*req, pr.attrs, 0, &res))
    res = exec::raw_syscall(static_cast<long>(req->nr), req->args);
  attrs.after(*req, pr.attrs, 0, res);
  attrs.post(*req, pr.attrs, res);
  write_event(static_cast<unsigned char *>(ev), req->user_data, res, 0, attrs);
  return static_cast<ssize_t>(sizeof(aio2_event) + attrs.result_bytes());
}

}  // namespace aio2
