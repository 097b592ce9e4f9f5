// SPDX-License-Identifier: MIT
// `aio2 bench`: the aio2 engines. aio2 (policy AUTO), aio2_pool (POOL) and
// aio2_uring (URING) differ only in the context's policy; aio2_no_uring is
// AUTO on a context set up with AIO2_SETUP_NO_URING (io_uring refused, as
// where seccomp, kernel.io_uring_disabled or an old kernel forbid it);
// aio2_registered is AUTO with the cell's file registered
// (aio2_register_fds), its requests naming the context's descriptor, and
// the cell's buffers registered (aio2_register_buffers), as
// liburing_tuned registers both for O_DIRECT.
//
// After the window the engine probes, on the same context, which path its
// requests really take: a few more rounds of the workload's requests, each
// with the executor attribute added, their paths counted into
// cell_result::paths (the table's path column and labels).
//
// One RING context per cell. The requests of a cell are built in one buffer
// allocated when the cell starts: each is the 72-byte aio2_iocb followed by
// the cell's attribute records, copied from a tail built once, so the loop
// allocates nothing per request. Completions are reaped from the ring in
// user memory (aio2_reap_events); when it is empty, or says -EAGAIN (events
// on the overflow list, or aio2 needs a call to harvest io_uring
// completions), the loop waits in aio2_getevents(min_events = 1).

#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "aio2/aio2.h"
#include "bench.h"

namespace aio2_bench {

using bench_util::die;
using bench_util::verify_failed;

namespace {

constexpr size_t kEventMax = 512;                   // bytes of an event, attribute results included
constexpr uint32_t kIoprio = (2u << 13) | 4u;       // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4)
constexpr char kTag[16] = "aio2 bench tag";         // the tag attribute's 16 bytes
constexpr int64_t kDeadlineAheadNs = 3600'000'000'000;  // the deadline: one hour ahead, never met

uint32_t policy_of(engine e) {
  switch (e) {
    case engine::aio2_pool: return AIO2_POLICY_POOL;
    case engine::aio2_uring: return AIO2_POLICY_URING;
    default: return AIO2_POLICY_AUTO;
  }
}

// Creates the context an engine uses; returns 0 or -errno.
int setup(engine e, unsigned workers, unsigned qd, aio2_ctx **ctx, uint64_t *features) {
  aio2_params p{};
  p.size = sizeof p;
  p.type = AIO2_CTX_RING;
  if (e == engine::aio2_no_uring) p.flags = AIO2_SETUP_NO_URING;
  p.bounded_workers = workers;  // 0: aio2's default
  p.policy = policy_of(e);
  // Room for every event in flight, so the overflow list stays out of it.
  uint64_t ring = 65536;
  while (ring < static_cast<uint64_t>(qd) * kEventMax) ring <<= 1;
  p.ring_bytes = ring;
  const int rc = aio2_setup(AIO2_ABI_VERSION, &p, ctx);
  if (rc == 0) *features = p.features;
  return rc;
}

class aio2_engine {
 public:
  explicit aio2_engine(cell &c) : c_(c) {
    uint64_t features = 0;
    if (const int rc = setup(c.en(), c.env().workers, c.qd(), &ctx_, &features); rc < 0)
      die("%s: aio2_setup: %s", c.engine_name(), aio2_strerror(rc));
    if (c.en() == engine::aio2_uring && !(features & AIO2_FEAT_URING))
      die("%s: this aio2 context does not use io_uring (no AIO2_FEAT_URING)", c.engine_name());
    if (c.en() == engine::aio2_no_uring && (features & AIO2_FEAT_URING))
      die("%s: AIO2_SETUP_NO_URING gave a context with AIO2_FEAT_URING", c.engine_name());
    ring_ = aio2_ring_get(ctx_);
    if (ring_ == nullptr) die("%s: aio2_ring_get returned NULL", c.engine_name());
    tail_ = build_tail(c.attrs() ? c.attrs()->ids : std::vector<uint16_t>{});
    req_len_ = sizeof(aio2_iocb) + tail_.size();
    reqs_.assign(req_len_ * c.qd(), 0);
    evbuf_.assign(c.qd() * kEventMax / sizeof(uint64_t), 0);
    file_flags_ = c.env().aio2_hint ? AIO2_IOCB_BOUNDED : 0;
    fd_ = static_cast<uint64_t>(c.fd());
    if (c.en() == engine::aio2_registered && c.fd() >= 0) {
      const int mine = c.fd();
      int reg = -1;
      if (const int rc = aio2_register_fds(ctx_, &mine, &reg, 1); rc < 0)
        die("%s: aio2_register_fds: %s", c.engine_name(), aio2_strerror(rc));
      fd_ = static_cast<uint64_t>(reg);
      if (features & AIO2_FEAT_URING) {
        std::vector<iovec> iov(c.qd());
        for (unsigned i = 0; i < c.qd(); i++) iov[i] = iovec{c.buf(i), kBlock};
        if (const int rc = aio2_register_buffers(ctx_, iov.data(), c.qd()); rc < 0)
          die("%s: aio2_register_buffers: %s", c.engine_name(), aio2_strerror(rc));
      }
    }
  }

  void prep(unsigned slot, const op &o, unsigned char *buf) {
    prep_into(reqs_.data() + queued_, tail_, slot, o, buf);
    queued_ += req_len_;
  }

  // The request for slot's operation o at `at`, with the attribute records
  // `tail` behind it.
  void prep_into(unsigned char *at, const std::vector<unsigned char> &tail, unsigned slot,
                 const op &o, unsigned char *buf) {
    auto *io = reinterpret_cast<aio2_iocb *>(at);
    const auto b = reinterpret_cast<uint64_t>(buf);
    const uint64_t off = o.block * kBlock;
    switch (o.kind) {
      case op_kind::read: aio2_prep(io, SYS_pread64, slot, fd_, b, kBlock, off, 0, 0); break;
      case op_kind::write: aio2_prep(io, SYS_pwrite64, slot, fd_, b, kBlock, off, 0, 0); break;
      case op_kind::fsync: aio2_prep(io, SYS_fsync, slot, fd_, 0, 0, 0, 0, 0); break;
      case op_kind::trivial: aio2_prep(io, SYS_getppid, slot, 0, 0, 0, 0, 0, 0); break;
    }
    if (o.kind != op_kind::trivial) io->flags = file_flags_;
    if (!tail.empty()) {
      std::memcpy(reinterpret_cast<unsigned char *>(io) + sizeof *io, tail.data(), tail.size());
      io->len += static_cast<uint32_t>(tail.size());
    }
  }

  // Submits every prepared request in one aio2_submit (more only when it
  // takes a part).
  void submit() {
    submit_bytes(reqs_.data(), queued_);
    queued_ = 0;
  }

  unsigned reap(completion *out, unsigned max) {
    const size_t len = reap_bytes();
    const void *buf = evbuf_.data();
    unsigned n = 0;
    for (const aio2_event *ev = aio2_event_next(buf, len, nullptr); ev;
         ev = aio2_event_next(buf, len, ev)) {
      check_event(ev, n, max);
      count_attrs(ev);
      out[n++] = completion{static_cast<unsigned>(ev->user_data), ev->res};
    }
    return n;
  }

  // After the window: kProbeRequests (at least one round of qd) more of the
  // workload's requests, each carrying the cell's attributes and the
  // executor attribute, checked like the others; their paths are counted.
  void probe_paths() {
    std::vector<uint16_t> ids = c_.attrs() ? c_.attrs()->ids : std::vector<uint16_t>{};
    if (std::find(ids.begin(), ids.end(), AIO2_ATTR_EXECUTOR) == ids.end())
      ids.push_back(AIO2_ATTR_EXECUTOR);
    const std::vector<unsigned char> tail = build_tail(ids);
    const size_t len = sizeof(aio2_iocb) + tail.size();
    std::vector<unsigned char> reqs(len * c_.qd());
    const unsigned qd = c_.qd();
    for (unsigned done = 0; done < kProbeRequests; done += qd) {
      for (unsigned i = 0; i < qd; i++) prep_into(reqs.data() + i * len, tail, i, c_.begin(i), c_.buf(i));
      submit_bytes(reqs.data(), reqs.size());
      for (unsigned left = qd; left;) {
        const size_t got = reap_bytes();
        const void *buf = evbuf_.data();
        unsigned n = 0;
        for (const aio2_event *ev = aio2_event_next(buf, got, nullptr); ev;
             ev = aio2_event_next(buf, got, ev), n++) {
          check_event(ev, n, left);
          c_.out().paths[path_of(ev)]++;
          // After the window: checked, never counted, never continued.
          c_.complete(static_cast<unsigned>(ev->user_data), ev->res, bench_util::now_ns());
        }
        left -= n;
      }
    }
    c_.check_drained();
  }

  // Events from the ring in user memory, else (empty, or -EAGAIN: the
  // overflow list or io_uring need a call) from aio2_getevents; bytes read.
  size_t reap_bytes() {
    void *buf = evbuf_.data();
    const size_t bytes = evbuf_.size() * sizeof(uint64_t);
    int64_t got = aio2_reap_events(ring_, buf, bytes);
    if (got == 0 || got == -EAGAIN) {
      const timespec stall = bench_util::to_timespec(cell::kStallNs);
      do got = aio2_getevents(ctx_, 1, buf, bytes, &stall);
      while (got == -EINTR);
    }
    if (got < 0) die("%s: reaping: %s", c_.engine_name(), aio2_strerror(static_cast<int>(got)));
    return static_cast<size_t>(got);
  }

  // The n-th event of a reap that expects at most max.
  void check_event(const aio2_event *ev, unsigned n, unsigned max) const {
    if (n == max || ev->user_data >= c_.qd())
      verify_failed("%s: event for user_data %" PRIu64 ", which is not in flight",
                    c_.engine_name(), ev->user_data);
    if (ev->flags & AIO2_EVENT_CANCELED)
      verify_failed("%s: request %" PRIu64 " was cancelled", c_.engine_name(), ev->user_data);
  }

  void submit_bytes(const unsigned char *reqs, size_t bytes) {
    size_t off = 0;
    while (off < bytes) {
      const ssize_t rc = aio2_submit(ctx_, reqs + off, bytes - off);
      if (rc < 0) die("%s: aio2_submit: %s", c_.engine_name(), aio2_strerror(static_cast<int>(rc)));
      off += static_cast<size_t>(rc);
    }
  }

  static path_kind path_of(const aio2_event *ev) {
    const auto *x = static_cast<const aio2_attr_executor *>(
        aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof(aio2_attr_executor), nullptr));
    if (x == nullptr) return path_unknown;
    switch (x->path) {
      case AIO2_PATH_INLINE: return path_inline;
      case AIO2_PATH_URING: return path_uring;
      case AIO2_PATH_POOL: return path_pool;
      default: return x->path == 0 ? path_unknown : path_several;
    }
  }

  // After the last completion: nothing else may come; then the context goes.
  void close() {
    const int64_t extra = aio2_reap_events(ring_, evbuf_.data(), evbuf_.size() * sizeof(uint64_t));
    if (extra != 0 && extra != -EAGAIN)
      verify_failed("%s: %" PRId64 " bytes of events after every request completed",
                    c_.engine_name(), extra);
    if (const int rc = aio2_destroy(ctx_); rc < 0)
      die("%s: aio2_destroy: %s", c_.engine_name(), aio2_strerror(rc));
    ctx_ = nullptr;
  }

 private:
  // The attribute records of `ids`, as they follow a request's iocb.
  std::vector<unsigned char> build_tail(const std::vector<uint16_t> &ids) const {
    if (ids.empty()) return {};
    uint64_t scratch[128];  // 1 KiB: the iocb and seven attributes fit with room to spare
    auto *io = reinterpret_cast<aio2_iocb *>(scratch);
    aio2_prep(io, 0, 0, 0, 0, 0, 0, 0, 0);
    for (uint16_t id : ids) {
      const void *payload = nullptr;
      size_t len = 0;
      aio2_attr_deadline dl{};
      aio2_attr_ioprio prio{};
      switch (id) {
        case AIO2_ATTR_TAG: payload = kTag; len = sizeof kTag; break;
        case AIO2_ATTR_DEADLINE:
          dl.deadline_ns = static_cast<uint64_t>(bench_util::now_ns() + kDeadlineAheadNs);
          payload = &dl;
          len = sizeof dl;
          break;
        case AIO2_ATTR_IOPRIO:
          prio.ioprio = kIoprio;
          payload = &prio;
          len = sizeof prio;
          break;
        default: break;  // timing, executor, cache, rusage: no payload
      }
      if (aio2_attr_add(io, sizeof scratch, id, 0, payload, len) == nullptr)
        die("%s: the attributes do not fit in a request", c_.engine_name());
    }
    const auto *bytes = reinterpret_cast<const unsigned char *>(io);
    return std::vector<unsigned char>(bytes + sizeof *io, bytes + io->len);
  }

  // One result per attribute, in request order, with the attribute's id;
  // counts their statuses.
  void count_attrs(const aio2_event *ev) {
    const attr_set *as = c_.attrs();
    const size_t want = as ? as->ids.size() : 0;
    size_t k = 0;
    for (const aio2_attr_ret *r = aio2_attr_next(ev, nullptr); r; r = aio2_attr_next(ev, r), k++) {
      if (k >= want || r->id != as->ids[k])
        verify_failed("%s: event %" PRIu64 ": attribute result %zu has id %u", c_.engine_name(),
                      ev->user_data, k, r->id);
      c_.out().attr_status[k][r->status < 5 ? r->status : 5]++;
    }
    if (k != want)
      verify_failed("%s: event %" PRIu64 " has %zu attribute results for %zu attributes",
                    c_.engine_name(), ev->user_data, k, want);
  }

  cell &c_;
  aio2_ctx *ctx_ = nullptr;
  aio2_ring *ring_ = nullptr;
  std::vector<unsigned char> tail_;  // attribute records after each iocb
  size_t req_len_ = 0;
  std::vector<unsigned char> reqs_;  // qd requests of req_len_ bytes (new[]: 16-aligned)
  size_t queued_ = 0;                // bytes of requests prepared
  std::vector<uint64_t> evbuf_;      // 8-aligned events
  uint32_t file_flags_ = 0;
  uint64_t fd_ = 0;
};

}  // namespace

void run_aio2(cell &c) {
  aio2_engine e(c);
  run_batched(c, e);
  e.probe_paths();
  e.close();
}

std::string probe_aio2(engine e, bool *uses_uring) {
  aio2_ctx *ctx = nullptr;
  uint64_t features = 0;
  if (const int rc = setup(e, 0, 1, &ctx, &features); rc < 0)
    return std::string("aio2_setup: ") + aio2_strerror(rc);
  aio2_destroy(ctx);
  *uses_uring = (features & AIO2_FEAT_URING) != 0;
  if (e == engine::aio2_uring && !*uses_uring)
    return "its context does not use io_uring (no AIO2_FEAT_URING: io_uring unavailable or disabled here)";
  return "";
}

}  // namespace aio2_bench
