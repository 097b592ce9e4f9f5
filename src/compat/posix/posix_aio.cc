// SPDX-License-Identifier: MIT
// libaio2-posix.so: glibc's POSIX AIO calls (aio_read ... lio_listio, each
// with its *64 twin, and aio_init) on aio2. The names are exported without
// a symbol version, so that under LD_PRELOAD they bind every versioned
// reference a program has to glibc's (aio_read@GLIBC_2.34, the compat
// aio_read@GLIBC_2.2.5, lio_listio@GLIBC_2.4...). Nothing else is
// exported: aio2 itself is linked in hidden.
//
// Errors: a call's own arguments are checked at once (-1 and errno, as
// glibc: EINVAL, EBADF, EAGAIN); what the I/O itself reports (EBADF for a
// read of a closed descriptor, EFAULT, EINVAL for a negative offset) comes
// back through aio_error, as with glibc.

// <aio.h> declares the control blocks nonnull, which lets the compiler drop
// the checks for NULL below; they stay, since a NULL gets EINVAL here, not
// a crash. glibc's <sys/cdefs.h> defines __nonnull only when it is not
// defined already.
#define __nonnull(params)

#include <aio.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

#include "compat/posix/engine.h"
#include "compat/posix/notify.h"
#include "compat/posix/status.h"
#include "compat/posix/wait.h"
#include "util/fault.h"

#define AIO2_EXPORT extern "C" __attribute__((visibility("default")))

namespace aio2::posix {

namespace {

static_assert(sizeof(struct aiocb) == sizeof(struct aiocb64) &&
                  offsetof(struct aiocb, aio_offset) == offsetof(struct aiocb64, aio_offset) &&
                  offsetof(struct aiocb, __error_code) == offsetof(struct aiocb64, __error_code) &&
                  offsetof(struct aiocb, __return_value) == offsetof(struct aiocb64, __return_value),
              "on this ABI aiocb and aiocb64 are one layout, and the *64 calls share the code");

// Checks what a read or write asks for (the call's own arguments); 0 or
// EINVAL.
int check_rw(const struct aiocb *cb) {
  if (cb->aio_reqprio < 0 || cb->aio_reqprio > AIO_PRIO_DELTA_MAX) return EINVAL;
  return check_sigevent(cb->aio_sigevent);
}

// Fills `r` for the caller's control block.
void prepare(request *r, struct aiocb *cb, op kind) {
  r->cb = cb;
  r->fd = cb->aio_fildes;
  r->kind = kind;
  r->buf = const_cast<void *>(cb->aio_buf);
  r->len = cb->aio_nbytes;
  r->offset = cb->aio_offset;
  r->sev = cb->aio_sigevent;
  r->group = nullptr;
  if (kind != op::write) return;
  // POSIX: writes to an O_APPEND descriptor, or to one that cannot seek (a
  // pipe, a socket), land in the order of the calls, so each waits for the
  // ones before it on the descriptor. Two cheap system calls per write tell.
  const int flags = fcntl(r->fd, F_GETFL);
  if (flags < 0) return;  // the write itself reports EBADF
  r->ordered = (flags & O_APPEND) != 0;
  if (lseek(r->fd, 0, SEEK_CUR) < 0 && errno == ESPIPE) r->ordered = r->stream = true;
}

// Fails the call: `err` as errno and, so that aio_error does not show a
// stale status, in the control block too.
int fail(struct aiocb *cb, int err) {
  if (cb != nullptr) store_status(cb, -1, err);
  errno = err;
  return -1;
}

int queue_one(struct aiocb *cb, op kind) {
  fork_notice();
  if (cb == nullptr) return fail(nullptr, EINVAL);
  const int err = kind == op::read || kind == op::write ? check_rw(cb) : check_sigevent(cb->aio_sigevent);
  if (err != 0) return fail(cb, err);
  engine *e = engine_get();
  if (e == nullptr) return fail(cb, errno);
  request *r = e->alloc();
  if (r == nullptr) return fail(cb, EAGAIN);
  const int saved = errno;
  prepare(r, cb, kind);
  errno = saved;
  bool queued = false;
  const int rc = e->submit(&r, 1, &queued);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return 0;
}

int do_fsync(int operation, struct aiocb *cb) {
  fork_notice();
  if (operation != O_SYNC && operation != O_DSYNC) return fail(nullptr, EINVAL);
  if (cb == nullptr) return fail(nullptr, EINVAL);
  if (fcntl(cb->aio_fildes, F_GETFL) < 0) return fail(nullptr, EBADF);
  return queue_one(cb, operation == O_SYNC ? op::fsync : op::fdatasync);
}

int do_error(const struct aiocb *cb) {
  fork_notice();
  if (cb == nullptr) {
    errno = EINVAL;
    return -1;
  }
  return get_error(cb);
}

ssize_t do_return(struct aiocb *cb) {
  fork_notice();
  // POSIX: the return status of a request still in progress is not there
  // yet (glibc answers whatever the field holds).
  if (cb == nullptr || get_error(cb) == EINPROGRESS) {
    errno = EINVAL;
    return -1;
  }
  return get_return(cb);
}

int do_suspend(const struct aiocb *const list[], int nent, const struct timespec *timeout) {
  fork_notice();
  pthread_testcancel();
  if (nent < 0 || (nent > 0 && list == nullptr)) {
    errno = EINVAL;
    return -1;
  }
  if (timeout != nullptr && (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L)) {
    errno = EINVAL;
    return -1;
  }
  struct timespec deadline {};
  if (timeout != nullptr) deadline = deadline_after(*timeout);
  bool reaped = false;
  for (;;) {
    const uint32_t seen = epoch_load();
    bool pending = false;
    for (int i = 0; i < nent; i++) {
      if (list[i] == nullptr) continue;
      if (get_error(list[i]) != EINPROGRESS) return 0;
      pending = true;
    }
    // As glibc: a list with nothing in progress returns at once.
    if (!pending) return 0;
    // Completions already in the ring are taken here rather than waited
    // for from the completion thread.
    if (!reaped) {
      reaped = true;
      if (engine *e = engine_peek()) {
        e->reap_here();
        continue;
      }
    }
    const int rc = epoch_wait(seen, timeout != nullptr ? &deadline : nullptr, true);
    if (rc == 0) continue;
    for (int i = 0; i < nent; i++)
      if (list[i] != nullptr && get_error(list[i]) != EINPROGRESS) return 0;
    errno = rc == ETIMEDOUT ? EAGAIN : EINTR;
    return -1;
  }
}

int do_cancel(int fd, struct aiocb *cb) {
  fork_notice();
  if (fcntl(fd, F_GETFL) < 0) {
    errno = EBADF;
    return -1;
  }
  if (cb != nullptr && cb->aio_fildes != fd) {
    errno = EINVAL;
    return -1;
  }
  if (cb != nullptr && get_error(cb) != EINPROGRESS) return AIO_ALLDONE;
  engine *e = engine_peek();
  if (e == nullptr) {
    // Nothing was ever queued in this process.
    if (cb == nullptr) return AIO_ALLDONE;
    errno = EINVAL;
    return -1;
  }
  return e->cancel(fd, cb);
}

int do_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sig) {
  fork_notice();
  if (mode != LIO_WAIT && mode != LIO_NOWAIT) return fail(nullptr, EINVAL);
  if (nent < 0 || (nent > 0 && list == nullptr)) return fail(nullptr, EINVAL);
  if (mode == LIO_NOWAIT && sig != nullptr && check_sigevent(*sig) != 0) return fail(nullptr, EINVAL);

  // What the call needs, taken before any request is queued: the group,
  // room for every request and their queued flags. Without them nothing is
  // queued, and each control block says EAGAIN (its status is read next).
  auto *g =
      aio2::fault::fail(aio2::fault::site::compat_alloc) ? nullptr : new (std::nothrow) lio_group;
  std::vector<request *> reqs;
  std::unique_ptr<bool[]> queued;
  if (g != nullptr && !aio2::fault::fail(aio2::fault::site::compat_alloc)) {
    try {
      compat_may_throw();
      reqs.reserve(static_cast<size_t>(nent));
      queued.reset(new bool[static_cast<size_t>(nent) + 1]);
    } catch (const std::bad_alloc &) {
    }
  }
  if (g == nullptr || !queued) {
    delete g;
    for (int i = 0; i < nent; i++)
      if (list[i] != nullptr && list[i]->aio_lio_opcode != LIO_NOP) fail(list[i], EAGAIN);
    return fail(nullptr, EAGAIN);
  }
  g->wait = mode == LIO_WAIT;
  if (mode == LIO_NOWAIT && sig != nullptr) g->sev = *sig;
  else g->sev.sigev_notify = SIGEV_NONE;
  // One reference for the completers as a whole, one for a LIO_WAIT
  // caller; and one count for this call itself, dropped once every request
  // is queued, so that the group cannot finish while it is being filled.
  g->refs.store(g->wait ? 2 : 1, std::memory_order_relaxed);
  g->remaining.store(1, std::memory_order_relaxed);

  bool shortage = false, invalid = false;
  engine *e = nullptr;
  for (int i = 0; i < nent; i++) {
    struct aiocb *cb = list[i];
    if (cb == nullptr || cb->aio_lio_opcode == LIO_NOP) continue;
    if (cb->aio_lio_opcode != LIO_READ && cb->aio_lio_opcode != LIO_WRITE) {
      fail(cb, EINVAL);
      invalid = true;
      continue;
    }
    if (const int err = check_rw(cb); err != 0) {
      fail(cb, err);
      invalid = true;
      continue;
    }
    if (e == nullptr && (e = engine_get()) == nullptr) {
      fail(cb, errno);
      shortage = true;
      continue;
    }
    request *r = e->alloc();
    if (r == nullptr) {
      fail(cb, EAGAIN);
      shortage = true;
      continue;
    }
    prepare(r, cb, cb->aio_lio_opcode == LIO_READ ? op::read : op::write);
    r->group = g;
    reqs.push_back(r);  // within the capacity reserved above
  }
  // Counted before any is queued; those that turn out not queued are taken
  // off again (relaxed: this call's own count keeps the group alive).
  g->remaining.fetch_add(static_cast<uint32_t>(reqs.size()), std::memory_order_relaxed);
  if (!reqs.empty()) {
    if (e->submit(reqs.data(), reqs.size(), queued.get()) != 0) {
      shortage = true;
      for (size_t i = 0; i < reqs.size(); i++)
        if (!queued[i]) g->remaining.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // This call's count: the last drop finishes the group (acq_rel: sees
  // every completer's statuses and `failed`). Without LIO_WAIT this call
  // holds no reference of its own: `g` may be gone after the drop.
  const bool wait = g->wait;
  if (g->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (!wait) notify(g->sev);
    lio_unref(g);
  }
  int result = 0;
  if (wait) {
    for (;;) {
      // Acquire: pairs with the completers' acq_rel decrements, so that
      // `failed` and the statuses are seen once it reads zero.
      const uint32_t left = g->remaining.load(std::memory_order_acquire);
      if (left == 0) break;
      if (word_wait(&g->remaining, left, nullptr) == EINTR) {
        result = EINTR;
        break;
      }
    }
    if (result == 0 && g->failed.load(std::memory_order_relaxed) != 0) result = EIO;
    lio_unref(g);
  }
  if (result == 0 && (shortage || invalid)) result = shortage ? EAGAIN : EIO;
  if (result != 0) {
    errno = result;
    return -1;
  }
  return 0;
}

}  // namespace

}  // namespace aio2::posix

using namespace aio2::posix;

AIO2_EXPORT int aio_read(struct aiocb *cb) { return queue_one(cb, op::read); }
AIO2_EXPORT int aio_read64(struct aiocb64 *cb) {
  return queue_one(reinterpret_cast<struct aiocb *>(cb), op::read);
}
AIO2_EXPORT int aio_write(struct aiocb *cb) { return queue_one(cb, op::write); }
AIO2_EXPORT int aio_write64(struct aiocb64 *cb) {
  return queue_one(reinterpret_cast<struct aiocb *>(cb), op::write);
}
AIO2_EXPORT int aio_fsync(int operation, struct aiocb *cb) { return do_fsync(operation, cb); }
AIO2_EXPORT int aio_fsync64(int operation, struct aiocb64 *cb) {
  return do_fsync(operation, reinterpret_cast<struct aiocb *>(cb));
}
AIO2_EXPORT int aio_error(const struct aiocb *cb) { return do_error(cb); }
AIO2_EXPORT int aio_error64(const struct aiocb64 *cb) {
  return do_error(reinterpret_cast<const struct aiocb *>(cb));
}
AIO2_EXPORT ssize_t aio_return(struct aiocb *cb) { return do_return(cb); }
AIO2_EXPORT ssize_t aio_return64(struct aiocb64 *cb) {
  return do_return(reinterpret_cast<struct aiocb *>(cb));
}
AIO2_EXPORT int aio_suspend(const struct aiocb *const list[], int nent,
                            const struct timespec *timeout) {
  return do_suspend(list, nent, timeout);
}
AIO2_EXPORT int aio_suspend64(const struct aiocb64 *const list[], int nent,
                              const struct timespec *timeout) {
  return do_suspend(reinterpret_cast<const struct aiocb *const *>(list), nent, timeout);
}
AIO2_EXPORT int aio_cancel(int fd, struct aiocb *cb) { return do_cancel(fd, cb); }
AIO2_EXPORT int aio_cancel64(int fd, struct aiocb64 *cb) {
  return do_cancel(fd, reinterpret_cast<struct aiocb *>(cb));
}
AIO2_EXPORT int lio_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sig) {
  return do_listio(mode, list, nent, sig);
}
AIO2_EXPORT int lio_listio64(int mode, struct aiocb64 *const list[], int nent,
                             struct sigevent *sig) {
  return do_listio(mode, reinterpret_cast<struct aiocb *const *>(list), nent, sig);
}
AIO2_EXPORT void aio_init(const struct aioinit *init) {
  if (init != nullptr) set_init(init);
}
