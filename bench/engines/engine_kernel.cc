// SPDX-License-Identifier: MIT
// `aio2 bench`: the kernel's own asynchronous interfaces, used directly.
//
// liburing  one io_uring per cell, queue_init(entries = the depth rounded up
//           to a power of two). A batch of resubmissions and the wait for the
//           next completion are one system call
//           (io_uring_submit_and_wait_timeout); completions are read from the
//           CQ ring in user memory. It has no getppid: syscall_getppid runs
//           IORING_OP_NOP, which makes no system call (labelled in the table).
// liburing_tuned  the same loop on a ring set up the way fio's io_uring
//           engine sets its own up, plus what the kernel offers a single
//           submitter beyond it: IORING_SETUP_COOP_TASKRUN (with
//           TASKRUN_FLAG), SINGLE_ISSUER and DEFER_TASKRUN, the ring's
//           descriptor registered (io_uring_register_ring_fd), and for the
//           O_DIRECT workload the file registered (IOSQE_FIXED_FILE) and the
//           cell's buffers registered (IORING_OP_READ_FIXED). A flag the
//           kernel refuses (EINVAL) is dropped and the row says so, in fio's
//           order: DEFER_TASKRUN with SINGLE_ISSUER first, then TASKRUN_FLAG,
//           then COOP_TASKRUN.
// libaio    one kernel AIO context per cell (io_setup(depth)); io_submit of
//           the batch, io_getevents(min 1). On a buffered descriptor kernel
//           AIO runs reads and writes synchronously inside io_submit: those
//           rows are measured all the same, and labelled. It has no getppid
//           (n/a), and IOCB_CMD_FSYNC only where the file system has it (the
//           mixed workload is n/a where it answers EINVAL).

#include <libaio.h>
#include <liburing.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace aio2_bench {

using bench_util::die;
using bench_util::verify_failed;

namespace {

// ---------------------------------------------------------------------------
// liburing

constexpr unsigned kTunedFlags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                                 IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

std::string flag_names(unsigned flags) {
  static const struct {
    unsigned bit;
    const char *name;
  } kNames[] = {{IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
                {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
                {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
                {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"}};
  std::string out;
  for (const auto &n : kNames)
    if (flags & n.bit) out += (out.empty() ? "" : "|") + std::string(n.name);
  return out;
}

// io_uring_queue_init_params with kTunedFlags, dropping what the kernel
// refuses with EINVAL in fio's order; *flags gets the flags in force.
int tuned_queue_init(unsigned entries, io_uring *ring, unsigned *flags) {
  unsigned f = kTunedFlags;
  for (;;) {
    io_uring_params p{};
    p.flags = f;
    const int rc = io_uring_queue_init_params(entries, ring, &p);
    if (rc != -EINVAL || f == 0) {
      *flags = f;
      return rc;
    }
    // DEFER_TASKRUN needs SINGLE_ISSUER; TASKRUN_FLAG needs COOP_TASKRUN.
    if (f & IORING_SETUP_DEFER_TASKRUN) f &= ~(IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER);
    else if (f & IORING_SETUP_TASKRUN_FLAG) f &= ~IORING_SETUP_TASKRUN_FLAG;
    else f = 0;
  }
}

class uring_engine {
 public:
  explicit uring_engine(cell &c) : c_(c), fd_(c.fd()) {
    unsigned entries = 1;
    while (entries < c.qd()) entries <<= 1;
    if (c.en() != engine::liburing_tuned) {
      if (const int rc = io_uring_queue_init(entries, &ring_, 0); rc < 0)
        die("%s: io_uring_queue_init: %s", c.engine_name(), std::strerror(-rc));
      return;
    }
    unsigned flags = 0;
    if (const int rc = tuned_queue_init(entries, &ring_, &flags); rc < 0)
      die("%s: io_uring_queue_init_params: %s", c.engine_name(), std::strerror(-rc));
    std::string label;
    if (flags != kTunedFlags) label = "kernel refused " + flag_names(kTunedFlags & ~flags);
    auto add = [&](const std::string &what) { label += (label.empty() ? "" : "; ") + what; };
    // 1: the one descriptor registered.
    if (const int rc = io_uring_register_ring_fd(&ring_); rc != 1)
      add(std::string("ring fd not registered: ") + (rc < 0 ? std::strerror(-rc) : "none taken"));
    if (c.wl() == workload::direct_qd32) {
      const int fds[1] = {fd_};
      if (const int rc = io_uring_register_files(&ring_, fds, 1); rc < 0)
        add(std::string("files not registered: ") + std::strerror(-rc));
      else
        fixed_file_ = true;
      std::vector<iovec> iov(c.qd());
      for (unsigned i = 0; i < c.qd(); i++) iov[i] = iovec{c.buf(i), kBlock};
      if (const int rc = io_uring_register_buffers(&ring_, iov.data(), c.qd()); rc < 0)
        add(std::string("buffers not registered: ") + std::strerror(-rc));
      else
        fixed_bufs_ = true;
    }
    c.out().path_label = label;
  }

  void prep(unsigned slot, const op &o, unsigned char *buf) {
    io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) die("%s: the submission queue is full", c_.engine_name());
    const uint64_t off = o.block * kBlock;
    const int fd = fixed_file_ ? 0 : fd_;  // registered: index 0 of the file table
    switch (o.kind) {
      case op_kind::read:
        if (fixed_bufs_) io_uring_prep_read_fixed(sqe, fd, buf, kBlock, off, static_cast<int>(slot));
        else io_uring_prep_read(sqe, fd, buf, kBlock, off);
        if (fixed_file_) sqe->flags |= IOSQE_FIXED_FILE;
        break;
      case op_kind::write: io_uring_prep_write(sqe, fd_, buf, kBlock, off); break;
      case op_kind::fsync: io_uring_prep_fsync(sqe, fd_, 0); break;
      case op_kind::trivial: io_uring_prep_nop(sqe); break;
    }
    io_uring_sqe_set_data64(sqe, slot);
  }

  // Nothing to do: reap() submits what prep() queued in the same system call
  // that waits.
  void submit() {}

  // The probe: io_uring_submit alone, then the completions already in the
  // CQ ring (a read the page cache served inside io_uring_enter is there).
  unsigned submit_and_count() {
    const int rc = io_uring_submit(&ring_);
    if (rc < 0) die("%s: io_uring_submit: %s", c_.engine_name(), std::strerror(-rc));
    return io_uring_cq_ready(&ring_);
  }

  unsigned reap(completion *out, unsigned max) {
    for (;;) {
      io_uring_cqe *cqe = nullptr;
      __kernel_timespec ts{};
      ts.tv_sec = cell::kStallNs / 1'000'000'000;
      const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (rc == -EINTR) continue;
      if (rc == -ETIME) return 0;
      if (rc < 0) die("%s: io_uring_submit_and_wait_timeout: %s", c_.engine_name(), std::strerror(-rc));
      break;
    }
    unsigned n = 0, head;
    io_uring_cqe *cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      const uint64_t slot = io_uring_cqe_get_data64(cqe);
      if (n == max || slot >= c_.qd())
        verify_failed("%s: completion for slot %llu, which is not in flight", c_.engine_name(),
                      static_cast<unsigned long long>(slot));
      out[n++] = completion{static_cast<unsigned>(slot), cqe->res};
    }
    io_uring_cq_advance(&ring_, n);
    return n;
  }

  void close() { io_uring_queue_exit(&ring_); }

 private:
  cell &c_;
  int fd_;
  bool fixed_file_ = false;  // liburing_tuned, O_DIRECT: fd_ is registered at index 0
  bool fixed_bufs_ = false;  // liburing_tuned, O_DIRECT: slot i's buffer is registered buffer i
  io_uring ring_{};
};

// ---------------------------------------------------------------------------
// libaio

class libaio_engine {
 public:
  explicit libaio_engine(cell &c)
      : c_(c), fd_(c.fd()), cbs_(c.qd()), queued_(c.qd()), events_(c.qd()) {
    if (const int rc = io_setup(static_cast<int>(c.qd()), &ctx_); rc < 0)
      die("%s: io_setup: %s", c.engine_name(), std::strerror(-rc));
  }

  void prep(unsigned slot, const op &o, unsigned char *buf) {
    iocb &cb = cbs_[slot];
    const auto off = static_cast<long long>(o.block * kBlock);
    switch (o.kind) {
      case op_kind::read: io_prep_pread(&cb, fd_, buf, kBlock, off); break;
      case op_kind::write: io_prep_pwrite(&cb, fd_, buf, kBlock, off); break;
      case op_kind::fsync: io_prep_fsync(&cb, fd_); break;
      case op_kind::trivial: die("%s: kernel AIO has no getppid", c_.engine_name());
    }
    cb.data = reinterpret_cast<void *>(static_cast<uintptr_t>(slot));
    queued_[nqueued_++] = &cb;
  }

  void submit() {
    unsigned off = 0;
    while (off < nqueued_) {
      const int rc = io_submit(ctx_, static_cast<long>(nqueued_ - off), queued_.data() + off);
      if (rc == -EINTR) continue;
      if (rc <= 0) die("%s: io_submit: %s", c_.engine_name(), rc < 0 ? std::strerror(-rc) : "took none");
      off += static_cast<unsigned>(rc);
    }
    nqueued_ = 0;
  }

  // The probe: io_submit, then what io_getevents finds done without waiting.
  unsigned submit_and_count() {
    submit();
    timespec zero{};
    int rc;
    do rc = io_getevents(ctx_, 0, static_cast<long>(c_.qd()), events_.data(), &zero);
    while (rc == -EINTR);
    if (rc < 0) die("%s: io_getevents: %s", c_.engine_name(), std::strerror(-rc));
    for (int k = 0; k < rc; k++) early_.push_back(events_[static_cast<size_t>(k)]);
    return static_cast<unsigned>(rc);
  }

  unsigned reap(completion *out, unsigned max) {
    if (!early_.empty()) {  // events submit_and_count took out already
      unsigned n = 0;
      while (!early_.empty() && n < max) {
        out[n++] = to_completion(early_.back());
        early_.pop_back();
      }
      return n;
    }
    int rc;
    do {
      timespec ts = bench_util::to_timespec(cell::kStallNs);
      rc = io_getevents(ctx_, 1, static_cast<long>(max), events_.data(), &ts);
    } while (rc == -EINTR);
    if (rc < 0) die("%s: io_getevents: %s", c_.engine_name(), std::strerror(-rc));
    for (int k = 0; k < rc; k++) out[k] = to_completion(events_[static_cast<size_t>(k)]);
    return static_cast<unsigned>(rc);
  }

  completion to_completion(const io_event &ev) const {
    const auto slot = reinterpret_cast<uintptr_t>(ev.data);
    if (slot >= c_.qd())
      verify_failed("%s: completion for slot %zu, which is not in flight", c_.engine_name(),
                    static_cast<size_t>(slot));
    // res is the call's result, or -errno, in an unsigned long.
    return completion{static_cast<unsigned>(slot), static_cast<int64_t>(static_cast<long>(ev.res))};
  }

  void close() {
    if (const int rc = io_destroy(ctx_); rc < 0)
      die("%s: io_destroy: %s", c_.engine_name(), std::strerror(-rc));
  }

 private:
  cell &c_;
  int fd_;
  io_context_t ctx_ = nullptr;
  std::vector<iocb> cbs_;        // one per slot
  std::vector<iocb *> queued_;   // prepared, not yet submitted
  unsigned nqueued_ = 0;
  std::vector<io_event> events_;
  std::vector<io_event> early_;  // the probe's events found at submit, not yet handed on
};

}  // namespace

void run_liburing(cell &c) {
  uring_engine e(c);
  run_batched(c, e);
  probe_submit(c, e);
  e.close();
}

void run_libaio(cell &c) {
  libaio_engine e(c);
  run_batched(c, e);
  probe_submit(c, e);
  e.close();
}

std::string probe_liburing() {
  io_uring ring{};
  if (const int rc = io_uring_queue_init(8, &ring, 0); rc < 0)
    return std::string("io_uring_queue_init: ") + std::strerror(-rc);
  std::string why;
  io_uring_probe *p = io_uring_get_probe_ring(&ring);
  if (p == nullptr) {
    why = "io_uring_get_probe_ring failed";
  } else {
    for (int opcode : {IORING_OP_NOP, IORING_OP_READ, IORING_OP_WRITE, IORING_OP_FSYNC})
      if (!io_uring_opcode_supported(p, opcode))
        why = "this kernel's io_uring lacks opcode " + std::to_string(opcode);
    io_uring_free_probe(p);
  }
  io_uring_queue_exit(&ring);
  return why;
}

std::string probe_liburing_tuned(std::string *flags) {
  io_uring ring{};
  unsigned f = 0;
  if (const int rc = tuned_queue_init(8, &ring, &f); rc < 0)
    return std::string("io_uring_queue_init_params: ") + std::strerror(-rc);
  io_uring_queue_exit(&ring);
  *flags = f ? flag_names(f) : "none";
  return "";
}

std::string probe_libaio() {
  io_context_t ctx = nullptr;
  if (const int rc = io_setup(1, &ctx); rc < 0) return std::string("io_setup: ") + std::strerror(-rc);
  io_destroy(ctx);
  return "";
}

std::string probe_libaio_fsync(int fd) {
  io_context_t ctx = nullptr;
  if (const int rc = io_setup(1, &ctx); rc < 0) return std::string("io_setup: ") + std::strerror(-rc);
  iocb cb{};
  iocb *list[1] = {&cb};
  io_prep_fsync(&cb, fd);
  std::string why;
  int rc = io_submit(ctx, 1, list);
  if (rc != 1) {
    why = std::string("io_submit of IOCB_CMD_FSYNC: ") + (rc < 0 ? std::strerror(-rc) : "took none");
  } else {
    io_event ev{};
    timespec ts = bench_util::to_timespec(cell::kStallNs);
    rc = io_getevents(ctx, 1, 1, &ev, &ts);
    const auto res = static_cast<long>(ev.res);
    if (rc != 1) why = "IOCB_CMD_FSYNC did not complete";
    else if (res != 0) why = std::string("IOCB_CMD_FSYNC: ") + std::strerror(static_cast<int>(-res));
  }
  io_destroy(ctx);
  return why;
}

}  // namespace aio2_bench
