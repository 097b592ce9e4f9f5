// SPDX-License-Identifier: MIT
// `aio2 bench`: the user-space thread pools and the plain calls.
//
// posix_aio  glibc POSIX AIO (aio_init with aio_threads = --workers):
//            aio_read / aio_write / aio_fsync(O_SYNC) per request,
//            aio_suspend on the whole list to wait, aio_error / aio_return to
//            reap. glibc runs the requests of one descriptor one after the
//            other (--posix-aio-dup-fds gives each slot a dup()). It cannot
//            run getppid: n/a.
// libuv      libuv's thread pool (UV_THREADPOOL_SIZE = --workers, set before
//            libuv starts): uv_fs_read / uv_fs_write / uv_fs_fsync, and for
//            getppid uv_queue_work whose work calls syscall(SYS_getppid), on
//            the default loop; each completion callback submits the slot's
//            next request; uv_run(UV_RUN_DEFAULT) until all are done.
// sync       pread / pwrite / fsync / syscall(SYS_getppid) in a loop, one at
//            a time, whatever the workload's depth: the baseline.

#include <aio.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "bench.h"

namespace aio2_bench {

using bench_util::die;
using bench_util::now_ns;
using bench_util::verify_failed;

namespace {

// ---------------------------------------------------------------------------
// posix_aio

class posix_aio_engine {
 public:
  explicit posix_aio_engine(cell &c) : c_(c), cbs_(c.qd()), list_(c.qd(), nullptr) {}

  void prep(unsigned slot, const op &o, unsigned char *buf) {
    aiocb &cb = cbs_[slot];
    std::memset(&cb, 0, sizeof cb);
    cb.aio_fildes = c_.posix_fd(slot);
    cb.aio_buf = buf;
    cb.aio_nbytes = kBlock;
    cb.aio_offset = static_cast<off_t>(o.block * kBlock);
    cb.aio_sigevent.sigev_notify = SIGEV_NONE;
    int rc = 0;
    const char *what = "";
    switch (o.kind) {
      case op_kind::read: what = "aio_read"; rc = aio_read(&cb); break;
      case op_kind::write: what = "aio_write"; rc = aio_write(&cb); break;
      case op_kind::fsync: what = "aio_fsync"; rc = aio_fsync(O_SYNC, &cb); break;
      case op_kind::trivial: die("%s: POSIX AIO has no getppid", c_.engine_name());
    }
    if (rc != 0) die("%s: %s: %s", c_.engine_name(), what, std::strerror(errno));
    list_[slot] = &cb;
  }

  void submit() {}  // aio_read and friends submit one by one, in prep

  unsigned reap(completion *out, unsigned max) {
    const timespec stall = bench_util::to_timespec(cell::kStallNs);
    for (;;) {
      if (aio_suspend(list_.data(), static_cast<int>(list_.size()), &stall) != 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        die("%s: aio_suspend: %s", c_.engine_name(), std::strerror(errno));
      }
      unsigned n = 0;
      for (unsigned i = 0; i < list_.size() && n < max; i++) {
        if (list_[i] == nullptr) continue;
        const int err = aio_error(&cbs_[i]);
        if (err == EINPROGRESS) continue;
        if (err < 0) die("%s: aio_error: %s", c_.engine_name(), std::strerror(errno));
        const ssize_t res = aio_return(&cbs_[i]);
        list_[i] = nullptr;
        out[n++] = completion{i, err ? -static_cast<int64_t>(err) : static_cast<int64_t>(res)};
      }
      if (n) return n;
    }
  }

 private:
  cell &c_;
  std::vector<aiocb> cbs_;
  std::vector<const aiocb *> list_;  // in flight, or NULL (aio_suspend skips those)
};

// ---------------------------------------------------------------------------
// libuv

struct uv_runner;

struct uv_slot {
  uv_fs_t fs;
  uv_work_t work;
  uv_buf_t buf;
  int64_t res = 0;  // getppid's result, from the worker thread
  unsigned index = 0;
  uv_runner *r = nullptr;
};

struct uv_runner {
  uv_loop_t *loop = nullptr;
  cell *c = nullptr;
  std::unique_ptr<uv_slot[]> slots;
};

bool g_uv_used = false;

void uv_on_fs(uv_fs_t *req);
void uv_after_work(uv_work_t *req, int status);

void uv_work_getppid(uv_work_t *req) { static_cast<uv_slot *>(req->data)->res = syscall(SYS_getppid); }

// Submits slot s's current operation.
void uv_start(uv_slot *s) {
  cell &c = *s->r->c;
  uv_loop_t *loop = s->r->loop;
  const op &o = c.op_of(s->index);
  const int fd = c.fd();
  const auto off = static_cast<int64_t>(o.block * kBlock);
  s->fs.data = s;
  s->work.data = s;
  c.stamp(s->index, now_ns());
  int rc = 0;
  switch (o.kind) {
    case op_kind::read:
      s->buf = uv_buf_init(reinterpret_cast<char *>(c.buf(s->index)), kBlock);
      rc = uv_fs_read(loop, &s->fs, fd, &s->buf, 1, off, uv_on_fs);
      break;
    case op_kind::write:
      s->buf = uv_buf_init(reinterpret_cast<char *>(c.buf(s->index)), kBlock);
      rc = uv_fs_write(loop, &s->fs, fd, &s->buf, 1, off, uv_on_fs);
      break;
    case op_kind::fsync: rc = uv_fs_fsync(loop, &s->fs, fd, uv_on_fs); break;
    case op_kind::trivial:
      s->res = -1;
      rc = uv_queue_work(loop, &s->work, uv_work_getppid, uv_after_work);
      break;
  }
  if (rc < 0) die("%s: submitting: %s", c.engine_name(), uv_strerror(rc));
}

// Slot s completed with res at t; the slot goes on while the window is open.
void uv_done(uv_slot *s, int64_t res, int64_t t) {
  cell &c = *s->r->c;
  if (c.complete(s->index, res, t)) {
    c.begin(s->index);
    uv_start(s);
  }
}

void uv_on_fs(uv_fs_t *req) {
  const int64_t t = now_ns();
  auto *s = static_cast<uv_slot *>(req->data);
  const auto res = static_cast<int64_t>(req->result);
  uv_fs_req_cleanup(req);
  uv_done(s, res, t);
}

void uv_after_work(uv_work_t *req, int status) {
  const int64_t t = now_ns();
  auto *s = static_cast<uv_slot *>(req->data);
  if (status != 0)
    verify_failed("%s: work request failed: %s", s->r->c->engine_name(), uv_strerror(status));
  uv_done(s, s->res, t);
}

}  // namespace

void run_posix_aio(cell &c) {
  posix_aio_engine e(c);
  run_batched(c, e);
}

void run_libuv(cell &c) {
  g_uv_used = true;
  uv_runner r;
  r.loop = uv_default_loop();
  if (r.loop == nullptr) die("%s: uv_default_loop failed", c.engine_name());
  r.c = &c;
  r.slots = std::make_unique<uv_slot[]>(c.qd());
  c.start_clock();
  for (unsigned i = 0; i < c.qd(); i++) {
    uv_slot *s = &r.slots[i];
    s->index = i;
    s->r = &r;
    c.begin(i);
    uv_start(s);
  }
  if (const int rc = uv_run(r.loop, UV_RUN_DEFAULT); rc != 0)
    die("%s: uv_run: %d requests still active", c.engine_name(), rc);
  c.check_drained();
}

void libuv_shutdown() {
  if (g_uv_used) uv_loop_close(uv_default_loop());
}

// ---------------------------------------------------------------------------
// sync, sync_nowait

// A read the way a program that must not block tries it first: one
// preadv2(RWF_NOWAIT) (an iovec, which pread64 does without), then, when
// the page cache lacks part of it (a short read, EAGAIN) or the file
// system has no RWF_NOWAIT (EOPNOTSUPP), a plain pread of the whole block.
int64_t pread_nowait_first(int fd, unsigned char *b, off_t off) {
  iovec v{b, kBlock};
  const ssize_t n = preadv2(fd, &v, 1, off, RWF_NOWAIT);
  if (n == static_cast<ssize_t>(kBlock) || (n < 0 && errno != EAGAIN && errno != EOPNOTSUPP))
    return n;
  return pread(fd, b, kBlock, off);
}

void run_sync(cell &c) {
  const int fd = c.fd();
  const bool nowait = c.en() == engine::sync_nowait;
  c.start_clock();
  c.begin(0);
  for (;;) {
    const op &o = c.op_of(0);
    unsigned char *b = c.buf(0);
    const auto off = static_cast<off_t>(o.block * kBlock);
    const int64_t sub = now_ns();
    c.stamp(0, sub);
    int64_t res = 0;
    switch (o.kind) {
      case op_kind::read: res = nowait ? pread_nowait_first(fd, b, off) : pread(fd, b, kBlock, off); break;
      case op_kind::write: res = pwrite(fd, b, kBlock, off); break;
      case op_kind::fsync: res = fsync(fd); break;
      case op_kind::trivial: res = syscall(SYS_getppid); break;
    }
    if (res < 0) res = -errno;
    if (!c.complete(0, res, now_ns())) break;
    c.begin(0);
  }
  c.check_drained();
}

}  // namespace aio2_bench
