// SPDX-License-Identifier: MIT
//
// pool_bench - requests per second of aio2's system-call thread pool next to
// glibc POSIX AIO, libuv's thread pool and plain synchronous calls, in the
// same run, with the same queue depth and the same file.
//
// What is measured
//   workloads  cached_randread_qd32   4 KiB pread() at random 4 KiB-aligned
//                                     offsets of a 64 MiB temporary file that
//                                     is written, fsync'ed and read once
//                                     before the runs (so every read hits the
//                                     page cache), 32 requests in flight
//              syscall_getppid_qd32   getppid(), 32 requests in flight: the
//                                     pure cost of the asynchronous machinery
//   engines    aio2_pool   an aio2 RING context, bounded_workers = W. 32
//                          requests are submitted in one aio2_submit; then
//                          repeatedly: reap from the ring in user memory
//                          (aio2_reap_events), or when it is empty wait in
//                          aio2_getevents(min_events=1), and resubmit as many
//                          requests as completed in ONE aio2_submit call.
//                          pread requests carry the AIO2_IOCB_BOUNDED hint
//                          (no fstat per request; --aio2-no-hint drops it).
//              posix_aio   glibc POSIX AIO (aio_init with aio_threads = W):
//                          32 aiocbs in flight with aio_read, aio_suspend to
//                          wait, aio_error/aio_return to reap, resubmit.
//                          There is no POSIX AIO for getppid: "n/a".
//              libuv       libuv's thread pool, UV_THREADPOOL_SIZE = W (set
//                          with setenv before the first libuv call): 32
//                          uv_fs_read requests (getppid: uv_queue_work whose
//                          work callback calls syscall(SYS_getppid)) in
//                          flight on the default loop; each completion
//                          callback resubmits; uv_run(UV_RUN_DEFAULT).
//              sync        pread() / syscall(SYS_getppid) in a loop, queue
//                          depth 1: the baseline.
//   W is 4 x the CPUs (aio2's default bounded_workers) unless --workers says
//   otherwise; the header of the output says which number was used.
//
// How it is timed
//   Each cell (workload x engine) runs for a warm-up (default 0.25 s, not
//   counted), then the measured window (default 2 s). req/s = requests whose
//   completion was reaped inside the window / window length. Latency of one
//   request = CLOCK_MONOTONIC at reap minus CLOCK_MONOTONIC just before its
//   submission (one clock read per submit batch and per reap batch); all
//   latencies of the window are sorted for p50 and p99. When the window ends
//   no more requests are submitted and those in flight are drained, not
//   counted. Each cell is repeated N times (default 3); a repetition runs
//   every cell once, engines round-robin (the first engine rotates with the
//   repetition) so that machine noise is spread over all engines. The table
//   shows the median req/s over the repetitions and the median of the
//   per-repetition p50 and p99.
//
// Output
//   stderr: one line per cell and repetition, as it finishes. stdout: the
//   thread counts used, then the table (workload, engine, req/s, p50_us,
//   p99_us, and for diagnosis cpu_us = process CPU time per request and
//   ctxsw = context switches per request, both from getrusage over the whole
//   cell, batch = requests per reap of the submitting thread, then the req/s
//   of every repetition), then the ratios of the medians: aio2_pool / libuv,
//   aio2_pool / posix_aio (and / sync). --json FILE writes an array of
//   {workload, engine, ops_per_s, p50_us, p99_us, reps, cpu_us_per_req,
//   ctxsw_per_req, ops_per_s_each}; n/a cells have null values and reps 0.
//
// Verification
//   Every block of the file starts with an 8-byte pattern derived from its
//   index. Every completed pread must return 4096 and carry its block's
//   pattern; every getppid must return the parent's pid; every request must
//   complete exactly once. A failure prints what failed and exits 1. Setup
//   failures (file, context, libuv) print one line and exit 1; bad arguments
//   exit 2.
//
// How to run
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && make -C build pool_bench
//   build/bin/pool_bench [--duration S] [--reps N] [--json FILE]
//       [--warmup S] [--workers W] [--engines aio2_pool,posix_aio,libuv,sync]
//       [--workloads cached_randread_qd32,syscall_getppid_qd32]
//       [--aio2-no-hint] [--posix-aio-dup-fds] [--dir DIR]
//   --posix-aio-dup-fds gives each posix_aio slot its own dup() of the file
//   descriptor (glibc runs the requests of one descriptor one at a time).
//   The temporary file is created in --dir (default $TMPDIR or /tmp) and
//   unlinked as soon as it is open, so it is gone at exit whatever happens.
//   With the defaults the whole run takes about 50 s.

#include <aio.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "bench_util.h"

namespace {

// The helpers both benchmarks share (failures, arguments, clock, buffers).
using namespace bench_util;

// ---------------------------------------------------------------------------
// Parameters and small helpers

constexpr unsigned kQD = 32;
constexpr uint64_t kFileBytes = 64ull << 20;
constexpr uint64_t kBlocks = kFileBytes / kBlock;
constexpr int64_t kStallNs = 10'000'000'000;  // no completion for 10 s: give up

enum class workload { randread, getppid };
enum class engine { aio2_pool, posix_aio, libuv, sync };

constexpr workload kWorkloads[] = {workload::randread, workload::getppid};
constexpr engine kEngines[] = {engine::aio2_pool, engine::posix_aio, engine::libuv, engine::sync};

const char *name(workload w) {
  return w == workload::randread ? "cached_randread_qd32" : "syscall_getppid_qd32";
}

const char *name(engine e) {
  switch (e) {
    case engine::aio2_pool: return "aio2_pool";
    case engine::posix_aio: return "posix_aio";
    case engine::libuv: return "libuv";
    default: return "sync";
  }
}

bool applicable(engine e, workload w) { return !(e == engine::posix_aio && w == workload::getppid); }

// The first 8 bytes of block `b` of the file.
uint64_t pattern(uint64_t b) { return (b + 1) * 0x9e3779b97f4a7c15ull ^ 0x706f6f6c62656e63ull; }

// xorshift64*: cheap, good enough to pick blocks.
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed ? seed : 0x2545f4914f6cdd1dull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
  uint64_t block() { return next() % kBlocks; }
};

// ---------------------------------------------------------------------------
// Environment shared by the cells

struct env {
  int fd = -1;
  std::vector<int> dup_fds;  // --posix-aio-dup-fds: one per slot
  long ppid = 0;
  unsigned workers = 0;
  unsigned aio2_workers_in_force = 0;
  bool aio2_hint = true;
  int64_t warmup_ns = 0;
  int64_t duration_ns = 0;
  uint64_t seed = 1;
};

// What one cell measures.
struct window {
  int64_t start;  // end of the warm-up
  int64_t end;    // end of the measured window
};

struct cell_result {
  uint64_t ops = 0;              // requests reaped in the window
  uint64_t all_ops = 0;          // requests reaped in the whole cell
  uint64_t reaps = 0;            // reap batches in the window (0: not counted)
  std::vector<uint32_t> lat_ns;  // one per request reaped in the window
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
  // Process-wide getrusage deltas over the whole cell, per request reaped.
  double cpu_us_per_req = 0, ctxsw_per_req = 0;
  double per_reap = 0;  // requests per reap batch (aio2_pool, posix_aio)
};

class recorder {
 public:
  recorder(const window &w, cell_result &r) : w_(w), r_(r) { r_.lat_ns.reserve(1u << 20); }
  // A request submitted at `sub` was reaped at `reap`.
  void add(int64_t sub, int64_t reap) {
    r_.all_ops++;
    if (reap < w_.start || reap >= w_.end) return;
    r_.ops++;
    const int64_t d = reap - sub;
    r_.lat_ns.push_back(d <= 0 ? 0u : d >= UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(d));
  }
  // The submitting thread reaped a batch of completions at `reap`.
  void batch(int64_t reap) {
    if (reap >= w_.start && reap < w_.end) r_.reaps++;
  }

 private:
  const window &w_;
  cell_result &r_;
};

void check_read(const char *eng, int64_t res, const unsigned char *buf, uint64_t block) {
  if (res != static_cast<int64_t>(kBlock)) {
    if (res < 0)
      verify_failed("%s: pread of block %" PRIu64 " failed: %s", eng, block,
                    std::strerror(static_cast<int>(-res)));
    verify_failed("%s: pread of block %" PRIu64 " returned %" PRId64 ", expected %zu", eng, block,
                  res, kBlock);
  }
  uint64_t got;
  std::memcpy(&got, buf, sizeof got);
  if (got != pattern(block))
    verify_failed("%s: block %" PRIu64 " starts with 0x%016" PRIx64 ", expected 0x%016" PRIx64,
                  eng, block, got, pattern(block));
}

void check_ppid(const char *eng, int64_t res, long ppid) {
  if (res != ppid)
    verify_failed("%s: getppid returned %" PRId64 ", expected %ld", eng, res, ppid);
}

// ---------------------------------------------------------------------------
// aio2_pool

void run_aio2(workload wl, const env &e, const window &w, cell_result &out) {
  constexpr const char *kName = "aio2_pool";
  aio2_params p{};
  p.size = sizeof p;
  p.type = AIO2_CTX_RING;
  p.bounded_workers = e.workers;
  aio2_ctx *ctx = nullptr;
  if (int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx); rc < 0)
    die("aio2_setup: %s", aio2_strerror(rc));
  aio2_ring *ring = aio2_ring_get(ctx);
  if (ring == nullptr) die("aio2_ring_get returned NULL");

  std::vector<block_buf> bufs(kQD);
  struct slot {
    uint64_t block = 0;
    int64_t t_sub = 0;
    bool busy = false;
  } slots[kQD];
  aio2_iocb iocbs[kQD];
  alignas(8) unsigned char evbuf[kQD * sizeof(aio2_event) * 2];
  rng r(e.seed);
  recorder rec(w, out);

  unsigned n = 0;  // requests prepared in iocbs
  auto prep = [&](unsigned i) {
    slot &s = slots[i];
    s.busy = true;
    if (wl == workload::randread) {
      s.block = r.block();
      aio2_prep(&iocbs[n], SYS_pread64, i, static_cast<uint64_t>(e.fd),
                reinterpret_cast<uint64_t>(bufs[i].b), kBlock, s.block * kBlock, 0, 0);
      if (e.aio2_hint) iocbs[n].flags = AIO2_IOCB_BOUNDED;
    } else {
      aio2_prep(&iocbs[n], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
    }
    n++;
  };
  // Submits the n prepared requests in one call (more only if it takes a part).
  auto submit = [&]() {
    const int64_t t = now_ns();
    for (unsigned k = 0; k < n; k++) slots[iocbs[k].user_data].t_sub = t;
    const size_t bytes = n * sizeof(aio2_iocb);
    size_t off = 0;
    while (off < bytes) {
      const ssize_t rc = aio2_submit(ctx, reinterpret_cast<unsigned char *>(iocbs) + off, bytes - off);
      if (rc < 0) die("aio2_submit: %s", aio2_strerror(static_cast<int>(rc)));
      off += static_cast<size_t>(rc);
    }
    n = 0;
  };

  for (unsigned i = 0; i < kQD; i++) prep(i);
  submit();
  unsigned inflight = kQD;
  const timespec stall = to_timespec(kStallNs);
  while (inflight) {
    int64_t got = aio2_reap_events(ring, evbuf, sizeof evbuf);
    if (got == 0 || got == -EAGAIN) got = aio2_getevents(ctx, 1, evbuf, sizeof evbuf, &stall);
    if (got < 0) die("aio2 reap: %s", aio2_strerror(static_cast<int>(got)));
    if (got == 0) verify_failed("%s: no completion in 10 s with %u requests in flight", kName, inflight);
    const int64_t t = now_ns();
    rec.batch(t);
    const size_t bytes = static_cast<size_t>(got);
    for (const aio2_event *ev = aio2_event_next(evbuf, bytes, nullptr); ev;
         ev = aio2_event_next(evbuf, bytes, ev)) {
      if (ev->user_data >= kQD || !slots[ev->user_data].busy)
        verify_failed("%s: event for user_data %" PRIu64 " that is not in flight", kName,
                      ev->user_data);
      const auto i = static_cast<unsigned>(ev->user_data);
      slot &s = slots[i];
      if (ev->flags & AIO2_EVENT_CANCELED) verify_failed("%s: request %u was cancelled", kName, i);
      if (wl == workload::randread) check_read(kName, ev->res, bufs[i].b, s.block);
      else check_ppid(kName, ev->res, e.ppid);
      s.busy = false;
      inflight--;
      rec.add(s.t_sub, t);
      if (t < w.end) prep(i);
    }
    if (n) {
      inflight += n;
      submit();
    }
  }
  const int64_t extra = aio2_reap_events(ring, evbuf, sizeof evbuf);
  if (extra != 0 && extra != -EAGAIN)
    verify_failed("%s: %" PRId64 " bytes of events after every request completed", kName, extra);
  if (int rc = aio2_destroy(ctx); rc < 0) die("aio2_destroy: %s", aio2_strerror(rc));
}

// ---------------------------------------------------------------------------
// posix_aio (glibc)

void run_posix_aio(const env &e, const window &w, cell_result &out) {
  constexpr const char *kName = "posix_aio";
  std::vector<block_buf> bufs(kQD);
  aiocb cbs[kQD];
  const aiocb *list[kQD];
  uint64_t blocks[kQD];
  int64_t t_sub[kQD];
  rng r(e.seed);
  recorder rec(w, out);

  auto submit = [&](unsigned i, int64_t t) {
    aiocb &cb = cbs[i];
    std::memset(&cb, 0, sizeof cb);
    blocks[i] = r.block();
    cb.aio_fildes = e.dup_fds.empty() ? e.fd : e.dup_fds[i];
    cb.aio_buf = bufs[i].b;
    cb.aio_nbytes = kBlock;
    cb.aio_offset = static_cast<off_t>(blocks[i] * kBlock);
    cb.aio_sigevent.sigev_notify = SIGEV_NONE;
    t_sub[i] = t;
    if (aio_read(&cb) != 0) die("aio_read: %s", std::strerror(errno));
    list[i] = &cb;
  };

  const int64_t t0 = now_ns();
  for (unsigned i = 0; i < kQD; i++) submit(i, t0);
  unsigned inflight = kQD;
  const timespec stall = to_timespec(kStallNs);
  while (inflight) {
    if (aio_suspend(list, static_cast<int>(kQD), &stall) != 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN)
        verify_failed("%s: no completion in 10 s with %u requests in flight", kName, inflight);
      die("aio_suspend: %s", std::strerror(errno));
    }
    const int64_t t = now_ns();
    rec.batch(t);
    unsigned done[kQD], ndone = 0;
    for (unsigned i = 0; i < kQD; i++) {
      if (list[i] == nullptr) continue;
      const int err = aio_error(&cbs[i]);
      if (err == EINPROGRESS) continue;
      const ssize_t res = aio_return(&cbs[i]);
      list[i] = nullptr;
      inflight--;
      check_read(kName, err ? -err : static_cast<int64_t>(res), bufs[i].b, blocks[i]);
      rec.add(t_sub[i], t);
      done[ndone++] = i;
    }
    if (ndone == 0 || t >= w.end) continue;
    const int64_t ts = now_ns();
    for (unsigned k = 0; k < ndone; k++) submit(done[k], ts);
    inflight += ndone;
  }
}

// ---------------------------------------------------------------------------
// libuv

struct uv_bench;

struct uv_slot {
  uv_fs_t fs;
  uv_work_t work;
  uv_buf_t buf;
  uint64_t block = 0;
  int64_t t_sub = 0;
  int64_t res = 0;
  unsigned index = 0;
  bool busy = false;
  uv_bench *b = nullptr;
};

struct uv_bench {
  uv_loop_t *loop;
  const env *e;
  const window *w;
  recorder *rec;
  rng r{1};
  std::vector<block_buf> bufs;
  uv_slot slots[kQD];
};

constexpr const char *kUvName = "libuv";

// A completion callback ran for slot `s`: it must be in flight.
void uv_take(uv_slot *s) {
  if (!s->busy) verify_failed("%s: completion for slot %u that is not in flight", kUvName, s->index);
  s->busy = false;
}

void uv_on_read(uv_fs_t *req);

void uv_submit_read(uv_slot *s, int64_t t) {
  uv_bench *b = s->b;
  s->block = b->r.block();
  s->buf = uv_buf_init(reinterpret_cast<char *>(b->bufs[s->index].b), kBlock);
  s->t_sub = t;
  s->busy = true;
  s->fs.data = s;
  const int rc = uv_fs_read(b->loop, &s->fs, b->e->fd, &s->buf, 1,
                            static_cast<int64_t>(s->block * kBlock), uv_on_read);
  if (rc < 0) die("uv_fs_read: %s", uv_strerror(rc));
}

void uv_on_read(uv_fs_t *req) {
  auto *s = static_cast<uv_slot *>(req->data);
  uv_bench *b = s->b;
  const int64_t t = now_ns();
  uv_take(s);
  const auto res = static_cast<int64_t>(req->result);
  uv_fs_req_cleanup(req);
  check_read(kUvName, res, b->bufs[s->index].b, s->block);
  b->rec->add(s->t_sub, t);
  if (t < b->w->end) uv_submit_read(s, t);
}

void uv_work_getppid(uv_work_t *req) {
  static_cast<uv_slot *>(req->data)->res = syscall(SYS_getppid);
}

void uv_after_getppid(uv_work_t *req, int status);

void uv_submit_getppid(uv_slot *s, int64_t t) {
  s->t_sub = t;
  s->busy = true;
  s->res = -1;
  s->work.data = s;
  const int rc = uv_queue_work(s->b->loop, &s->work, uv_work_getppid, uv_after_getppid);
  if (rc < 0) die("uv_queue_work: %s", uv_strerror(rc));
}

void uv_after_getppid(uv_work_t *req, int status) {
  auto *s = static_cast<uv_slot *>(req->data);
  uv_bench *b = s->b;
  const int64_t t = now_ns();
  uv_take(s);
  if (status != 0) verify_failed("%s: work request failed: %s", kUvName, uv_strerror(status));
  check_ppid(kUvName, s->res, b->e->ppid);
  b->rec->add(s->t_sub, t);
  if (t < b->w->end) uv_submit_getppid(s, t);
}

void run_libuv(workload wl, const env &e, const window &w, cell_result &out) {
  recorder rec(w, out);
  auto b = std::make_unique<uv_bench>();
  b->loop = uv_default_loop();
  if (b->loop == nullptr) die("uv_default_loop failed");
  b->e = &e;
  b->w = &w;
  b->rec = &rec;
  b->r = rng(e.seed);
  b->bufs.resize(kQD);
  const int64_t t0 = now_ns();
  for (unsigned i = 0; i < kQD; i++) {
    uv_slot *s = &b->slots[i];
    s->index = i;
    s->b = b.get();
    if (wl == workload::randread) uv_submit_read(s, t0);
    else uv_submit_getppid(s, t0);
  }
  const int rc = uv_run(b->loop, UV_RUN_DEFAULT);
  if (rc != 0) die("uv_run: %d requests still active", rc);
  for (const uv_slot &s : b->slots)
    if (s.busy) verify_failed("%s: slot %u never completed", kUvName, s.index);
}

// ---------------------------------------------------------------------------
// sync

void run_sync(workload wl, const env &e, const window &w, cell_result &out) {
  constexpr const char *kName = "sync";
  block_buf buf;
  rng r(e.seed);
  recorder rec(w, out);
  int64_t t = now_ns();
  while (t < w.end) {
    const int64_t sub = t;
    if (wl == workload::randread) {
      const uint64_t blk = r.block();
      const ssize_t res = pread(e.fd, buf.b, kBlock, static_cast<off_t>(blk * kBlock));
      t = now_ns();
      check_read(kName, res < 0 ? -errno : static_cast<int64_t>(res), buf.b, blk);
    } else {
      const long res = syscall(SYS_getppid);
      t = now_ns();
      check_ppid(kName, res, e.ppid);
    }
    rec.add(sub, t);
  }
}

// ---------------------------------------------------------------------------
// Cells, statistics, output

void run_cell(engine en, workload wl, const env &e, cell_result &out) {
  rusage ru0{}, ru1{};
  getrusage(RUSAGE_SELF, &ru0);
  const int64_t t0 = now_ns();
  const window w{t0 + e.warmup_ns, t0 + e.warmup_ns + e.duration_ns};
  switch (en) {
    case engine::aio2_pool: run_aio2(wl, e, w, out); break;
    case engine::posix_aio: run_posix_aio(e, w, out); break;
    case engine::libuv: run_libuv(wl, e, w, out); break;
    case engine::sync: run_sync(wl, e, w, out); break;
  }
  getrusage(RUSAGE_SELF, &ru1);
  const auto all = static_cast<double>(std::max<uint64_t>(out.all_ops, 1));
  out.cpu_us_per_req = (cpu_us(ru1) - cpu_us(ru0)) / all;
  out.ctxsw_per_req = static_cast<double>(ru1.ru_nvcsw - ru0.ru_nvcsw + ru1.ru_nivcsw -
                                          ru0.ru_nivcsw) / all;
  out.per_reap = out.reaps ? static_cast<double>(out.ops) / static_cast<double>(out.reaps) : 0;
  if (out.ops == 0) verify_failed("%s/%s: no request completed in the window", name(wl), name(en));
  if (out.lat_ns.size() != out.ops)
    verify_failed("%s/%s: %zu latencies for %" PRIu64 " requests", name(wl), name(en),
                  out.lat_ns.size(), out.ops);
  out.ops_per_s = static_cast<double>(out.ops) * 1e9 / static_cast<double>(e.duration_ns);
  std::sort(out.lat_ns.begin(), out.lat_ns.end());
  auto pct = [&](double q) {
    // Nearest rank.
    const size_t n = out.lat_ns.size();
    size_t k = static_cast<size_t>(q * static_cast<double>(n) + 0.999999);
    k = k == 0 ? 0 : k - 1;
    return out.lat_ns[std::min(k, n - 1)] / 1000.0;
  };
  out.p50_us = pct(0.50);
  out.p99_us = pct(0.99);
  out.lat_ns = std::vector<uint32_t>();  // free it before the next cell
}

struct summary {
  workload wl;
  engine en;
  bool na;
  std::vector<double> ops, p50, p99, cpu, cs, batch;  // one per repetition
  double ops_med() const { return median(ops); }
};

constexpr const char *kUsage =
    "usage: pool_bench [--duration S] [--reps N] [--json FILE] [--warmup S]\n"
    "                  [--workers W] [--engines LIST] [--workloads LIST]\n"
    "                  [--aio2-no-hint] [--posix-aio-dup-fds] [--dir DIR]\n";

template <typename T, size_t N>
std::vector<T> parse_list(const char *opt, std::string_view v, const T (&all)[N]) {
  std::vector<T> out;
  while (!v.empty()) {
    const size_t comma = v.find(',');
    const std::string_view item = v.substr(0, comma);
    bool found = false;
    for (T x : all)
      if (item == name(x)) {
        if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
        found = true;
      }
    if (!found) usage(std::string("unknown name in ") + opt + ": " + std::string(item));
    v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
  }
  if (out.empty()) usage(std::string(opt) + " needs at least one name");
  // Keep the canonical order.
  std::vector<T> sorted;
  for (T x : all)
    if (std::find(out.begin(), out.end(), x) != out.end()) sorted.push_back(x);
  return sorted;
}

// Writes the summaries to `f` (opened before the runs, so that a bad path
// fails at once) and closes it.
void write_json(FILE *f, const std::string &file, const std::vector<summary> &sums, unsigned reps) {
  std::fprintf(f, "[\n");
  for (size_t i = 0; i < sums.size(); i++) {
    const summary &s = sums[i];
    std::fprintf(f, "  {\"workload\": \"%s\", \"engine\": \"%s\", ", name(s.wl), name(s.en));
    if (s.na) {
      std::fprintf(f, "\"ops_per_s\": null, \"p50_us\": null, \"p99_us\": null, \"reps\": 0, "
                      "\"cpu_us_per_req\": null, \"ctxsw_per_req\": null, \"ops_per_s_each\": []}");
    } else {
      std::fprintf(f, "\"ops_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"reps\": %u, "
                      "\"cpu_us_per_req\": %.3f, \"ctxsw_per_req\": %.3f, \"ops_per_s_each\": [",
                   s.ops_med(), median(s.p50), median(s.p99), reps, median(s.cpu), median(s.cs));
      for (size_t k = 0; k < s.ops.size(); k++) std::fprintf(f, "%s%.1f", k ? ", " : "", s.ops[k]);
      std::fprintf(f, "]}");
    }
    std::fprintf(f, "%s\n", i + 1 < sums.size() ? "," : "");
  }
  std::fprintf(f, "]\n");
  if (std::fclose(f) != 0) die("writing %s: %s", file.c_str(), std::strerror(errno));
}

}  // namespace

int main(int argc, char **argv) {
  bench_util::g_prog = "pool_bench";
  bench_util::g_usage = kUsage;
  double duration = 2.0, warmup = 0.25;
  unsigned reps = 3;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  unsigned workers = 4 * cpus;  // aio2's default bounded_workers
  std::string json, dir;
  std::vector<engine> engines(std::begin(kEngines), std::end(kEngines));
  std::vector<workload> workloads(std::begin(kWorkloads), std::end(kWorkloads));
  env e;
  bool dup_fds = false;

  for (int i = 1; i < argc; i++) {
    const std::string_view a = argv[i];
    auto val = [&]() -> const char * {
      if (i + 1 >= argc) usage(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--duration") duration = parse_seconds("--duration", val(), 0.01);
    else if (a == "--warmup") warmup = parse_seconds("--warmup", val(), 0);
    else if (a == "--reps") reps = parse_uint("--reps", val(), 1, 1000);
    else if (a == "--workers") workers = parse_uint("--workers", val(), 1, 1024);
    else if (a == "--json") json = val();
    else if (a == "--dir") dir = val();
    else if (a == "--engines") engines = parse_list("--engines", val(), kEngines);
    else if (a == "--workloads") workloads = parse_list("--workloads", val(), kWorkloads);
    else if (a == "--aio2-no-hint") e.aio2_hint = false;
    else if (a == "--posix-aio-dup-fds") dup_fds = true;
    else if (a == "--help" || a == "-h") usage("measures aio2's thread pool against POSIX AIO, libuv and sync calls");
    else usage("unknown argument " + std::string(a));
  }
  FILE *json_file = nullptr;
  if (!json.empty()) {
    json_file = std::fopen(json.c_str(), "w");
    if (json_file == nullptr) die("cannot open %s: %s", json.c_str(), std::strerror(errno));
  }
  if (dir.empty()) {
    const char *t = std::getenv("TMPDIR");
    dir = t && *t ? t : "/tmp";
  }

  // Same worker count everywhere, before libuv or glibc AIO start threads.
  const std::string wstr = std::to_string(workers);
  if (setenv("UV_THREADPOOL_SIZE", wstr.c_str(), 1) != 0)
    die("setenv UV_THREADPOOL_SIZE: %s", std::strerror(errno));
  aioinit ai{};
  ai.aio_threads = static_cast<int>(workers);
  ai.aio_num = static_cast<int>(kQD);
  ai.aio_idle_time = 1;
  aio_init(&ai);

  e.workers = workers;
  e.warmup_ns = static_cast<int64_t>(warmup * 1e9);
  e.duration_ns = static_cast<int64_t>(duration * 1e9);
  e.ppid = static_cast<long>(getppid());
  e.fd = bench_util::make_pattern_file(dir, kFileBytes, pattern);
  if (dup_fds)
    for (unsigned i = 0; i < kQD; i++) {
      const int d = dup(e.fd);
      if (d < 0) die("dup: %s", std::strerror(errno));
      e.dup_fds.push_back(d);
    }
  {
    // What aio2 puts in force for this request (echoed by aio2_setup).
    aio2_params p{};
    p.size = sizeof p;
    p.type = AIO2_CTX_RING;
    p.bounded_workers = workers;
    aio2_ctx *ctx = nullptr;
    if (int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx); rc < 0)
      die("aio2_setup: %s", aio2_strerror(rc));
    e.aio2_workers_in_force = p.bounded_workers;
    aio2_destroy(ctx);
  }

  std::printf("pool_bench: queue depth %u, %.2f s per cell after %.2f s warm-up, %u repetitions\n",
              kQD, duration, warmup, reps);
  std::printf("  file: 64 MiB in %s (page cache warm), 4 KiB reads at random aligned offsets\n",
              dir.c_str());
  std::printf("  threads: aio2 bounded_workers=%u (in force), libuv UV_THREADPOOL_SIZE=%u, "
              "glibc aio_threads=%u; %u CPUs\n",
              e.aio2_workers_in_force, workers, workers, cpus);
  std::printf("  aio2 pread hint: %s; posix_aio descriptors: %s\n",
              e.aio2_hint ? "AIO2_IOCB_BOUNDED" : "none (fstat per request)",
              dup_fds ? "one dup() per slot" : "one shared");
  std::fflush(stdout);

  std::vector<summary> sums;
  for (workload wl : workloads)
    for (engine en : engines) sums.push_back(summary{wl, en, !applicable(en, wl), {}, {}, {}, {}, {}, {}});

  for (unsigned rep = 0; rep < reps; rep++) {
    for (workload wl : workloads) {
      for (size_t k = 0; k < engines.size(); k++) {
        const engine en = engines[(k + rep) % engines.size()];
        if (!applicable(en, wl)) continue;
        e.seed = 0x9e3779b97f4a7c15ull * (rep + 1) + static_cast<uint64_t>(en);
        cell_result r;
        run_cell(en, wl, e, r);
        for (summary &s : sums)
          if (s.wl == wl && s.en == en) {
            s.ops.push_back(r.ops_per_s);
            s.p50.push_back(r.p50_us);
            s.p99.push_back(r.p99_us);
            s.cpu.push_back(r.cpu_us_per_req);
            s.cs.push_back(r.ctxsw_per_req);
            s.batch.push_back(r.per_reap);
          }
        char per_reap[16] = "-";
        if (r.per_reap > 0) std::snprintf(per_reap, sizeof per_reap, "%.2f", r.per_reap);
        std::fprintf(stderr,
                     "  rep %u/%u %-22s %-10s %9.0f req/s  p50 %7.2f us  p99 %7.2f us  "
                     "cpu %5.2f us/req  ctxsw %5.2f/req  reqs/reap %s\n",
                     rep + 1, reps, name(wl), name(en), r.ops_per_s, r.p50_us, r.p99_us,
                     r.cpu_us_per_req, r.ctxsw_per_req, per_reap);
      }
    }
  }

  std::printf("\n%-22s %-10s %10s %8s %8s %7s %6s %6s   %s\n", "workload", "engine", "req/s",
              "p50_us", "p99_us", "cpu_us", "ctxsw", "batch", "req/s of each repetition");
  for (const summary &s : sums) {
    if (s.na) {
      std::printf("%-22s %-10s %10s %8s %8s %7s %6s %6s\n", name(s.wl), name(s.en), "n/a", "n/a",
                  "n/a", "n/a", "n/a", "n/a");
      continue;
    }
    std::string each;
    char tmp[32];
    for (double v : s.ops) {
      std::snprintf(tmp, sizeof tmp, "%s%.0f", each.empty() ? "" : " ", v);
      each += tmp;
    }
    char batch[16] = "-";
    if (median(s.batch) > 0) std::snprintf(batch, sizeof batch, "%.2f", median(s.batch));
    std::printf("%-22s %-10s %10.0f %8.2f %8.2f %7.2f %6.2f %6s   %s\n", name(s.wl), name(s.en),
                s.ops_med(), median(s.p50), median(s.p99), median(s.cpu), median(s.cs), batch,
                each.c_str());
  }
  std::printf("(medians over the repetitions; cpu_us and ctxsw: process CPU time and context\n"
              " switches per request, getrusage over the whole cell; batch: requests per reap\n"
              " by the submitting thread)\n\n");
  auto find = [&](workload wl, engine en) -> const summary * {
    for (const summary &s : sums)
      if (s.wl == wl && s.en == en) return &s;
    return nullptr;
  };
  for (workload wl : workloads) {
    const summary *a = find(wl, engine::aio2_pool);
    if (a == nullptr) continue;
    std::string line;
    for (engine other : {engine::libuv, engine::posix_aio, engine::sync}) {
      const summary *o = find(wl, other);
      if (o == nullptr) continue;
      char tmp[96];
      if (o->na)
        std::snprintf(tmp, sizeof tmp, "%saio2_pool/%s = n/a", line.empty() ? "" : ", ", name(other));
      else
        std::snprintf(tmp, sizeof tmp, "%saio2_pool/%s = %.2fx", line.empty() ? "" : ", ",
                      name(other), a->ops_med() / o->ops_med());
      line += tmp;
    }
    if (!line.empty()) std::printf("ratios (median req/s): %s: %s\n", name(wl), line.c_str());
  }
  std::fflush(stdout);
  if (json_file != nullptr) write_json(json_file, json, sums, reps);
  return 0;
}
