// SPDX-License-Identifier: MIT
//
// attr_bench - what each request attribute costs: requests per second of
// 4 KiB cached random pread64 with and without the attribute, on aio2's
// thread-pool path and on its synchronous aio2_call path, in one run.
//
// What is measured
//   workload   4 KiB pread64 at random 4 KiB-aligned offsets of a 64 MiB
//              temporary file that is written, fsync'ed and read back before
//              the runs, so every read hits the page cache. The file must be
//              on a disk filesystem (not tmpfs or ramfs: the cache attribute
//              looks at a real page cache); it goes in --dir, default the
//              current directory, and is unlinked as soon as it is open.
//   paths      pool   one aio2 RING context (default parameters) for the whole
//                     run; 32 requests in flight, each with the
//                     AIO2_IOCB_BOUNDED hint; reaped with aio2_getevents
//                     (min_events 1); every batch of completions is
//                     resubmitted in ONE aio2_submit call.
//              call   aio2_call(NULL, ...) in a loop: the process-wide SYNC
//                     context, queue depth 1, in the calling thread.
//   variants   none      no attribute: the baseline
//              timing    AIO2_ATTR_TIMING
//              cache     AIO2_ATTR_CACHE
//              tag       AIO2_ATTR_TAG, 16 bytes
//              deadline  AIO2_ATTR_DEADLINE, one hour ahead (never expires)
//              executor  AIO2_ATTR_EXECUTOR
//              ioprio    AIO2_ATTR_IOPRIO, class BE (2), data 4: (2<<13)|4
//              rusage    AIO2_ATTR_RUSAGE
//              all       all seven above in one request, in that order
//   Requests are built once per cell (one template per in-flight slot);
//   only the offset changes from one request to the next, so every variant
//   pays the same for building requests, apart from copying its bytes.
//
// How it is timed
//   Each cell (path x variant) runs a warm-up (--warmup, default 0.05 s, not
//   counted) and then a measured window (--duration, default 0.5 s): req/s =
//   completions reaped inside the window / window length. A repetition runs
//   every cell once; variants go round-robin, the first variant rotating
//   with the repetition, each variant's pool cell next to its call cell, so
//   slow phases of the machine spread over all variants. --reps (default 5)
//   repetitions. Every cell of one repetition reads the same block sequence.
//   cost_vs_none = (median req/s of none - median req/s of the variant) /
//   median req/s of none * 100, per path: positive means slower.
//   With the defaults: 2 x 9 x 5 x 0.55 s, about 50 s, plus writing the file.
//   (1 s cells with 5 repetitions would take 95 s; --duration 1 gives that.)
//   On a small VM the same cell can vary by tens of percent from one second
//   to the next: read the spread and paired_cost columns before a cost.
//
// Output
//   stderr: one line per cell and repetition as it finishes. stdout: the
//   table (path, variant, median req/s, cost_vs_none, spread = (max - min) /
//   median of the repetitions' req/s, paired = the lowest and highest cost of
//   the variant against none of the same repetition, cpu_us = process CPU
//   time per request, median, and the attribute status), details of every
//   attribute's results, and whether each path meets the cost targets
//   (timing <= 5%, cache <= 10%, all seven <= 20%). --json FILE: an array of {path, variant, ops_per_s, cost_pct,
//   status, attrs, spread_pct, cpu_us_per_req, ops_per_s_each}; none has
//   cost_pct 0 and status "-".
//
// Attribute status
//   The status column says what aio2 answered for the variant's attributes:
//   OK, UNSUPPORTED (no handler is registered for the id), NOT_APPLICABLE,
//   UNAVAILABLE, ERROR. When requests got
//   different statuses they are joined with '+', most frequent first; when
//   the attributes of `all` differ, each status lists its attributes. An
//   UNSUPPORTED attribute costs only its parsing, so its cost is not the
//   attribute's; the target lines say so.
//
// Verification
//   Every block starts with an 8-byte pattern derived from its index. Every
//   pread must return 4096 and carry its block's pattern; every request must
//   complete exactly once and not be cancelled; its event must carry exactly
//   one result per attribute, in request order, with the attribute's id.
//   A result with status OK must be sound: timing stamps in order, the tag
//   echoed, the deadline not expired, the executor path right, the cache
//   outcome consistent with 4096 bytes requested, ioprio's applied 0 or 1.
//   A failure prints what failed and exits 1. Setup failures print one line
//   and exit 1; bad arguments exit 2.
//
// How to run
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAIO2_BUILD_BENCH=ON
//   make -C build attr_bench
//   build/bin/attr_bench [--duration S] [--warmup S] [--reps N] [--json FILE]
//       [--dir DIR] [--paths pool,call] [--variants none,timing,...] [--workers W]
//   --workers sets the pool context's bounded_workers (default: aio2's
//   default, 4 x the CPUs).

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
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
// Parameters

constexpr unsigned kQD = 32;
constexpr uint64_t kFileBytes = 64ull << 20;
constexpr uint64_t kBlocks = kFileBytes / kBlock;
constexpr size_t kReqCap = 256;          // bytes of one request, attributes included
constexpr size_t kEvBuf = kQD * 512;     // the largest event is 304 bytes
constexpr int64_t kStallNs = 10'000'000'000;  // no completion for 10 s: give up
constexpr uint32_t kIoprio = (2u << 13) | 4u;  // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4)
constexpr size_t kTagBytes = 16;

enum class path { pool, call };
constexpr path kPaths[] = {path::pool, path::call};
const char *name(path p) { return p == path::pool ? "pool" : "call"; }

constexpr unsigned kMaxAttrs = 7;
struct variant {
  const char *name;
  uint16_t ids[kMaxAttrs];
  unsigned n;
};
constexpr variant kVariants[] = {
    {"none", {}, 0},
    {"timing", {AIO2_ATTR_TIMING}, 1},
    {"cache", {AIO2_ATTR_CACHE}, 1},
    {"tag", {AIO2_ATTR_TAG}, 1},
    {"deadline", {AIO2_ATTR_DEADLINE}, 1},
    {"executor", {AIO2_ATTR_EXECUTOR}, 1},
    {"ioprio", {AIO2_ATTR_IOPRIO}, 1},
    {"rusage", {AIO2_ATTR_RUSAGE}, 1},
    {"all",
     {AIO2_ATTR_TIMING, AIO2_ATTR_CACHE, AIO2_ATTR_TAG, AIO2_ATTR_DEADLINE, AIO2_ATTR_EXECUTOR,
      AIO2_ATTR_IOPRIO, AIO2_ATTR_RUSAGE},
     7},
};
constexpr unsigned kNumVariants = sizeof kVariants / sizeof kVariants[0];

// Status values 0..4 have names; anything else is counted as "other".
constexpr unsigned kStatusSlots = 6;

// ---------------------------------------------------------------------------
// Small helpers

// The first 8 bytes of block `b` of the file.
uint64_t pattern(uint64_t b) { return (b + 7) * 0xbf58476d1ce4e5b9ull ^ 0x6174747262656e63ull; }

// splitmix64 to pick blocks.
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t block() { return next() % kBlocks; }
};

// One request with room for its attributes.
struct alignas(8) req_buf {
  aio2_iocb io;
  unsigned char room[kReqCap - sizeof(aio2_iocb)];
};

struct alignas(8) ev_buf {
  unsigned char b[kEvBuf];
};

// The tag of slot `i`: 16 bytes, different for every slot.
void make_tag(unsigned i, unsigned char out[kTagBytes]) {
  std::memcpy(out, "attrbnch", 8);
  const uint64_t v = 0x5441475441470000ull | i;
  std::memcpy(out + 8, &v, sizeof v);
}

// ---------------------------------------------------------------------------
// What the attribute results said, per attribute of a cell

struct attr_stats {
  uint64_t status[kStatusSlots] = {};
  // timing (OK only): sums over requests
  uint64_t timing_n = 0;
  double queue_ns = 0, service_ns = 0, post_ns = 0;
  // cache
  uint64_t cache_outcome[4] = {};  // index: AIO2_CACHE_* (0 unused)
  uint64_t cache_method[3] = {};   // index: AIO2_CACHE_BY_*
  // deadline
  int64_t min_slack_ns = INT64_MAX;
  // executor
  uint64_t workers_seen = 0;  // bit per worker number < 64
  uint64_t cpus_seen = 0;     // bit per CPU < 64
  // ioprio
  uint64_t ioprio_applied = 0, ioprio_not = 0;
  int32_t ioprio_error = 0;
  uint32_t ioprio_previous = 0;
  // rusage sums
  uint64_t ru[6] = {};

  void merge(const attr_stats &o) {
    for (unsigned k = 0; k < kStatusSlots; k++) status[k] += o.status[k];
    timing_n += o.timing_n;
    queue_ns += o.queue_ns;
    service_ns += o.service_ns;
    post_ns += o.post_ns;
    for (unsigned k = 0; k < 4; k++) cache_outcome[k] += o.cache_outcome[k];
    for (unsigned k = 0; k < 3; k++) cache_method[k] += o.cache_method[k];
    min_slack_ns = std::min(min_slack_ns, o.min_slack_ns);
    workers_seen |= o.workers_seen;
    cpus_seen |= o.cpus_seen;
    ioprio_applied += o.ioprio_applied;
    ioprio_not += o.ioprio_not;
    if (o.ioprio_error) ioprio_error = o.ioprio_error;
    if (o.ioprio_applied) ioprio_previous = o.ioprio_previous;
    for (unsigned k = 0; k < 6; k++) ru[k] += o.ru[k];
  }
  uint64_t total() const {
    uint64_t t = 0;
    for (uint64_t s : status) t += s;
    return t;
  }
};

struct cell_result {
  uint64_t ops = 0;      // completions reaped in the window
  uint64_t all_ops = 0;  // completions in the whole cell
  double ops_per_s = 0;
  double cpu_us_per_req = 0;
  attr_stats attrs[kMaxAttrs];
};

// Checks the result payload of an OK attribute and records what it says.
template <typename T>
T payload_as(const aio2_attr_ret *r, const char *pname, const char *aname) {
  if (r->len - sizeof *r < sizeof(T))
    verify_failed("%s: %s result is %u bytes, expected at least %zu", pname, aname,
                  r->len - static_cast<uint32_t>(sizeof *r), sizeof(T));
  T v;
  std::memcpy(&v, reinterpret_cast<const unsigned char *>(r) + sizeof *r, sizeof v);
  return v;
}

// Verifies one completion: the read, then the attribute results.
void check_event(path p, const aio2_event *ev, const variant &v, const unsigned char *buf,
                 uint64_t block, unsigned slot, cell_result &out) {
  const char *pn = name(p);
  if (ev->flags & AIO2_EVENT_CANCELED)
    verify_failed("%s/%s: request of slot %u was cancelled", pn, v.name, slot);
  if (ev->res != static_cast<int64_t>(kBlock)) {
    if (ev->res < 0)
      verify_failed("%s/%s: pread of block %" PRIu64 " failed: %s", pn, v.name, block,
                    std::strerror(static_cast<int>(-ev->res)));
    verify_failed("%s/%s: pread of block %" PRIu64 " returned %" PRId64 ", expected %zu", pn,
                  v.name, block, ev->res, kBlock);
  }
  uint64_t got;
  std::memcpy(&got, buf, sizeof got);
  if (got != pattern(block))
    verify_failed("%s/%s: block %" PRIu64 " starts with 0x%016" PRIx64 ", expected 0x%016" PRIx64,
                  pn, v.name, block, got, pattern(block));

  const aio2_attr_ret *r = nullptr;
  for (unsigned k = 0; k < v.n; k++) {
    r = aio2_attr_next(ev, r);
    const uint16_t id = v.ids[k];
    const char *an = attr_name(id);
    if (r == nullptr)
      verify_failed("%s/%s: event has %u attribute results, the request had %u", pn, v.name, k,
                    v.n);
    if (r->id != id)
      verify_failed("%s/%s: attribute result %u has id %u, expected %u (%s)", pn, v.name, k,
                    r->id, id, an);
    attr_stats &st = out.attrs[k];
    st.status[std::min<unsigned>(r->status, kStatusSlots - 1)]++;
    if (r->status != AIO2_ATTR_OK) continue;
    switch (id) {
      case AIO2_ATTR_TIMING: {
        const auto t = payload_as<aio2_attr_timing>(r, pn, an);
        if (t.started_ns == 0 || t.submitted_ns > t.started_ns || t.started_ns > t.finished_ns ||
            t.finished_ns > t.posted_ns)
          verify_failed("%s/%s: timing stamps out of order: submitted %" PRIu64 " started %" PRIu64
                        " finished %" PRIu64 " posted %" PRIu64,
                        pn, v.name, t.submitted_ns, t.started_ns, t.finished_ns, t.posted_ns);
        st.timing_n++;
        st.queue_ns += static_cast<double>(t.started_ns - t.submitted_ns);
        st.service_ns += static_cast<double>(t.finished_ns - t.started_ns);
        st.post_ns += static_cast<double>(t.posted_ns - t.finished_ns);
        break;
      }
      case AIO2_ATTR_TAG: {
        if (r->len - sizeof *r < kTagBytes)
          verify_failed("%s/%s: tag result is %u bytes, expected at least %zu", pn, v.name,
                        r->len - static_cast<uint32_t>(sizeof *r), kTagBytes);
        unsigned char want[kTagBytes];
        make_tag(slot, want);
        if (std::memcmp(reinterpret_cast<const unsigned char *>(r) + sizeof *r, want, kTagBytes))
          verify_failed("%s/%s: tag of slot %u not echoed", pn, v.name, slot);
        break;
      }
      case AIO2_ATTR_DEADLINE: {
        const auto d = payload_as<aio2_attr_deadline_ret>(r, pn, an);
        if (d.expired || d.slack_ns <= 0)
          verify_failed("%s/%s: deadline one hour ahead reported expired=%u slack %" PRId64 " ns",
                        pn, v.name, d.expired, d.slack_ns);
        st.min_slack_ns = std::min(st.min_slack_ns, d.slack_ns);
        break;
      }
      case AIO2_ATTR_EXECUTOR: {
        const auto e = payload_as<aio2_attr_executor>(r, pn, an);
        const uint32_t want = p == path::pool ? AIO2_PATH_POOL : AIO2_PATH_CALL;
        if (e.path != want)
          verify_failed("%s/%s: executor path %u, expected %u", pn, v.name, e.path, want);
        if (e.worker < 64) st.workers_seen |= 1ull << e.worker;
        if (e.cpu < 64) st.cpus_seen |= 1ull << e.cpu;
        break;
      }
      case AIO2_ATTR_CACHE: {
        const auto c = payload_as<aio2_attr_cache>(r, pn, an);
        if (c.outcome < AIO2_CACHE_HIT || c.outcome > AIO2_CACHE_MISS ||
            c.bytes_requested != kBlock || c.bytes_cached > c.bytes_requested ||
            (c.outcome == AIO2_CACHE_HIT && c.bytes_cached != c.bytes_requested) ||
            (c.outcome == AIO2_CACHE_MISS && c.bytes_cached != 0))
          verify_failed("%s/%s: cache result outcome %u, %" PRIu64 " of %" PRIu64
                        " bytes cached, for a 4096-byte read",
                        pn, v.name, c.outcome, c.bytes_cached, c.bytes_requested);
        st.cache_outcome[c.outcome]++;
        st.cache_method[c.method <= 2 ? c.method : 0]++;
        break;
      }
      case AIO2_ATTR_IOPRIO: {
        const auto io = payload_as<aio2_attr_ioprio_ret>(r, pn, an);
        if (io.applied > 1)
          verify_failed("%s/%s: ioprio applied=%u", pn, v.name, io.applied);
        if (io.applied) {
          st.ioprio_applied++;
          st.ioprio_previous = io.previous;
        } else {
          st.ioprio_not++;
          st.ioprio_error = io.error;
        }
        break;
      }
      case AIO2_ATTR_RUSAGE: {
        const auto ru = payload_as<aio2_attr_rusage>(r, pn, an);
        const uint64_t vals[6] = {ru.minflt, ru.majflt, ru.nvcsw, ru.nivcsw, ru.inblock, ru.oublock};
        for (unsigned q = 0; q < 6; q++) st.ru[q] += vals[q];
        break;
      }
      default: break;
    }
  }
  if (aio2_attr_next(ev, r) != nullptr)
    verify_failed("%s/%s: event has more attribute results than the request's %u", pn, v.name,
                  v.n);
}

// ---------------------------------------------------------------------------
// Requests

struct env {
  int fd = -1;
  int64_t warmup_ns = 0;
  int64_t duration_ns = 0;
  aio2_ctx *ctx = nullptr;  // the pool path's context, for the whole run
};

// Fills `rb` with slot `slot`'s pread of variant `v` (offset set later).
void build_request(req_buf &rb, const variant &v, unsigned slot, const block_buf &buf, int fd,
                   int64_t deadline_ns) {
  std::memset(&rb, 0, sizeof rb);
  aio2_prep(&rb.io, SYS_pread64, slot, static_cast<uint64_t>(fd),
            reinterpret_cast<uint64_t>(buf.b), kBlock, 0, 0, 0);
  rb.io.flags = AIO2_IOCB_BOUNDED;
  for (unsigned k = 0; k < v.n; k++) {
    void *ok = nullptr;
    switch (v.ids[k]) {
      case AIO2_ATTR_TAG: {
        unsigned char tag[kTagBytes];
        make_tag(slot, tag);
        ok = aio2_attr_add(&rb.io, sizeof rb, AIO2_ATTR_TAG, 0, tag, sizeof tag);
        break;
      }
      case AIO2_ATTR_DEADLINE: {
        const aio2_attr_deadline d{static_cast<uint64_t>(deadline_ns)};
        ok = aio2_attr_add(&rb.io, sizeof rb, AIO2_ATTR_DEADLINE, 0, &d, sizeof d);
        break;
      }
      case AIO2_ATTR_IOPRIO: {
        const aio2_attr_ioprio io{kIoprio, 0};
        ok = aio2_attr_add(&rb.io, sizeof rb, AIO2_ATTR_IOPRIO, 0, &io, sizeof io);
        break;
      }
      default:  // timing, cache, executor, rusage: no payload
        ok = aio2_attr_add(&rb.io, sizeof rb, v.ids[k], 0, nullptr, 0);  // non-NULL when it fits
        break;
    }
    if (ok == nullptr) die("request of variant %s does not fit in %zu bytes", v.name, kReqCap);
  }
}

// ---------------------------------------------------------------------------
// The two paths

void run_pool(const variant &v, const env &e, uint64_t seed, cell_result &out) {
  std::vector<block_buf> bufs(kQD);
  std::vector<req_buf> tmpl(kQD);
  std::vector<req_buf> batch(kQD);  // contiguous requests for one aio2_submit
  auto evbuf = std::make_unique<ev_buf>();
  uint64_t blocks[kQD];
  bool busy[kQD] = {};
  rng r(seed);
  const int64_t deadline = now_ns() + 3600ll * 1'000'000'000;
  for (unsigned i = 0; i < kQD; i++) build_request(tmpl[i], v, i, bufs[i], e.fd, deadline);
  const uint32_t len = tmpl[0].io.len;
  auto *sbuf = reinterpret_cast<unsigned char *>(batch.data());

  unsigned n = 0;  // requests prepared in sbuf
  auto prep = [&](unsigned i) {
    blocks[i] = r.block();
    tmpl[i].io.args[3] = blocks[i] * kBlock;
    std::memcpy(sbuf + static_cast<size_t>(n) * len, &tmpl[i], len);
    busy[i] = true;
    n++;
  };
  auto submit = [&]() {
    const size_t bytes = static_cast<size_t>(n) * len;
    size_t off = 0;
    while (off < bytes) {
      const ssize_t rc = aio2_submit(e.ctx, sbuf + off, bytes - off);
      if (rc < 0) die("aio2_submit (%s): %s", v.name, aio2_strerror(static_cast<int>(rc)));
      off += static_cast<size_t>(rc);
    }
    n = 0;
  };

  const int64_t t0 = now_ns();
  const int64_t start = t0 + e.warmup_ns, end = start + e.duration_ns;
  for (unsigned i = 0; i < kQD; i++) prep(i);
  submit();
  unsigned inflight = kQD;
  const timespec stall = to_timespec(kStallNs);
  while (inflight) {
    const ssize_t got = aio2_getevents(e.ctx, 1, evbuf->b, sizeof evbuf->b, &stall);
    if (got < 0) {
      if (got == -EINTR) continue;
      die("aio2_getevents: %s", aio2_strerror(static_cast<int>(got)));
    }
    if (got == 0) verify_failed("pool/%s: no completion in 10 s with %u requests in flight", v.name, inflight);
    const int64_t t = now_ns();
    const bool counted = t >= start && t < end;
    const auto bytes = static_cast<size_t>(got);
    for (const aio2_event *ev = aio2_event_next(evbuf->b, bytes, nullptr); ev;
         ev = aio2_event_next(evbuf->b, bytes, ev)) {
      if (ev->user_data >= kQD || !busy[ev->user_data])
        verify_failed("pool/%s: event for user_data %" PRIu64 " that is not in flight", v.name,
                      ev->user_data);
      const auto i = static_cast<unsigned>(ev->user_data);
      check_event(path::pool, ev, v, bufs[i].b, blocks[i], i, out);
      busy[i] = false;
      inflight--;
      out.all_ops++;
      if (counted) out.ops++;
      if (t < end) prep(i);
    }
    if (n) {
      inflight += n;
      submit();
    }
  }
  const timespec zero{};
  const ssize_t extra = aio2_getevents(e.ctx, 0, evbuf->b, sizeof evbuf->b, &zero);
  if (extra != 0)
    verify_failed("pool/%s: %zd bytes of events after every request completed", v.name, extra);
}

void run_call(const variant &v, const env &e, uint64_t seed, cell_result &out) {
  block_buf buf;
  req_buf req;
  auto evbuf = std::make_unique<ev_buf>();
  rng r(seed);
  const int64_t deadline = now_ns() + 3600ll * 1'000'000'000;
  build_request(req, v, 0, buf, e.fd, deadline);

  const int64_t t0 = now_ns();
  const int64_t start = t0 + e.warmup_ns, end = start + e.duration_ns;
  int64_t t = t0;
  while (t < end) {
    const uint64_t blk = r.block();
    req.io.args[3] = blk * kBlock;
    const ssize_t rc = aio2_call(nullptr, &req.io, evbuf->b, sizeof evbuf->b);
    t = now_ns();
    if (rc < 0) die("aio2_call (%s): %s", v.name, aio2_strerror(static_cast<int>(rc)));
    const aio2_event *ev = aio2_event_next(evbuf->b, static_cast<size_t>(rc), nullptr);
    if (ev == nullptr || ev->len != static_cast<uint32_t>(rc))
      verify_failed("call/%s: aio2_call returned %zd but the event is not sound", v.name, rc);
    if (ev->user_data != 0)
      verify_failed("call/%s: event user_data %" PRIu64 ", expected 0", v.name, ev->user_data);
    check_event(path::call, ev, v, buf.b, blk, 0, out);
    out.all_ops++;
    if (t >= start && t < end) out.ops++;
  }
}

void run_cell(path p, const variant &v, const env &e, uint64_t seed, cell_result &out) {
  rusage ru0{}, ru1{};
  getrusage(RUSAGE_SELF, &ru0);
  if (p == path::pool) run_pool(v, e, seed, out);
  else run_call(v, e, seed, out);
  getrusage(RUSAGE_SELF, &ru1);
  if (out.ops == 0) verify_failed("%s/%s: no request completed in the window", name(p), v.name);
  out.ops_per_s = static_cast<double>(out.ops) * 1e9 / static_cast<double>(e.duration_ns);
  out.cpu_us_per_req = (cpu_us(ru1) - cpu_us(ru0)) / static_cast<double>(out.all_ops);
}

// ---------------------------------------------------------------------------
// Statistics and output

struct summary {
  path p;
  const variant *v;
  std::vector<double> ops, cpu;  // one per repetition
  attr_stats attrs[kMaxAttrs];
  double med = 0, cost = 0, spread = 0, paired_lo = 0, paired_hi = 0;
  bool has_cost = false;
  std::string status;               // the table's status column
  std::string attr_status[kMaxAttrs];  // per attribute
};

// The statuses one attribute got: the names joined with '+', most frequent first.
std::string status_of(const attr_stats &st) {
  unsigned order[kStatusSlots];
  for (unsigned k = 0; k < kStatusSlots; k++) order[k] = k;
  std::stable_sort(order, order + kStatusSlots,
                   [&](unsigned a, unsigned b) { return st.status[a] > st.status[b]; });
  std::string s;
  for (unsigned k : order) {
    if (st.status[k] == 0) continue;
    if (!s.empty()) s += '+';
    s += attr_status_name(k);
  }
  return s.empty() ? "none seen" : s;
}

// The status column: one status when all attributes agree, else each status
// with its attributes: "OK(timing,tag) UNSUPPORTED(cache)".
std::string cell_status(summary &s) {
  if (s.v->n == 0) return "-";
  std::vector<std::string> labels;
  for (unsigned k = 0; k < s.v->n; k++) {
    s.attr_status[k] = status_of(s.attrs[k]);
    if (std::find(labels.begin(), labels.end(), s.attr_status[k]) == labels.end())
      labels.push_back(s.attr_status[k]);
  }
  if (labels.size() == 1) return labels[0];
  std::string out;
  for (const std::string &l : labels) {
    if (!out.empty()) out += ' ';
    out += l + '(';
    bool first = true;
    for (unsigned k = 0; k < s.v->n; k++)
      if (s.attr_status[k] == l) {
        if (!first) out += ',';
        out += attr_name(s.v->ids[k]);
        first = false;
      }
    out += ')';
  }
  return out;
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%+.1f%%", v);
  return b;
}

std::string json_escape(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

void write_json(FILE *f, const std::string &file, const std::vector<summary> &sums) {
  std::fprintf(f, "[\n");
  for (size_t i = 0; i < sums.size(); i++) {
    const summary &s = sums[i];
    std::fprintf(f, "  {\"path\": \"%s\", \"variant\": \"%s\", \"ops_per_s\": %.1f, ", name(s.p),
                 s.v->name, s.med);
    if (s.has_cost) std::fprintf(f, "\"cost_pct\": %.2f, ", s.cost);
    else std::fprintf(f, "\"cost_pct\": 0.0, ");
    std::fprintf(f, "\"status\": \"%s\", \"attrs\": {", json_escape(s.status).c_str());
    for (unsigned k = 0; k < s.v->n; k++)
      std::fprintf(f, "%s\"%s\": \"%s\"", k ? ", " : "", attr_name(s.v->ids[k]),
                   json_escape(s.attr_status[k]).c_str());
    std::fprintf(f, "}, \"spread_pct\": %.2f, \"cpu_us_per_req\": %.3f, \"ops_per_s_each\": [",
                 s.spread, median(s.cpu));
    for (size_t k = 0; k < s.ops.size(); k++) std::fprintf(f, "%s%.1f", k ? ", " : "", s.ops[k]);
    std::fprintf(f, "]}%s\n", i + 1 < sums.size() ? "," : "");
  }
  std::fprintf(f, "]\n");
  if (std::fclose(f) != 0) die("writing %s: %s", file.c_str(), std::strerror(errno));
}

// ---------------------------------------------------------------------------
// Arguments

constexpr const char *kUsage =
    "usage: attr_bench [--duration S] [--warmup S] [--reps N] [--json FILE]\n"
    "                  [--dir DIR] [--paths pool,call] [--variants LIST] [--workers W]\n"
    "  variants: none,timing,cache,tag,deadline,executor,ioprio,rusage,all\n";

// A comma-separated subset of `names` (count `n`), as indexes in canonical order.
std::vector<unsigned> parse_list(const char *opt, std::string_view s, const char *const *names,
                                 unsigned n) {
  std::vector<bool> want(n, false);
  while (!s.empty()) {
    const size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    bool found = false;
    for (unsigned k = 0; k < n; k++)
      if (item == names[k]) want[k] = found = true;
    if (!found) usage(std::string("unknown name in ") + opt + ": " + std::string(item));
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  std::vector<unsigned> out;
  for (unsigned k = 0; k < n; k++)
    if (want[k]) out.push_back(k);
  if (out.empty()) usage(std::string(opt) + " needs at least one name");
  return out;
}

// ---------------------------------------------------------------------------
// The file

// Creates the 64 MiB pattern file in `dir` (unlinked at once), fsyncs it,
// reads it back (checking the pattern) so the page cache holds it all, and
// returns its descriptor. *resident receives the share of its pages mincore
// finds in memory.
int make_file(const std::string &dir, double *resident) {
  const int fd = bench_util::make_pattern_file(dir, kFileBytes, pattern);
  *resident = bench_util::resident_percent(fd, kFileBytes);
  return fd;
}

}  // namespace

int main(int argc, char **argv) {
  bench_util::g_prog = "attr_bench";
  bench_util::g_usage = kUsage;
  double duration = 0.5, warmup = 0.05;
  unsigned reps = 5, workers = 0;
  std::string json, dir = ".";
  const char *path_names[] = {"pool", "call"};
  const char *variant_names[kNumVariants];
  for (unsigned k = 0; k < kNumVariants; k++) variant_names[k] = kVariants[k].name;
  std::vector<unsigned> paths = {0, 1};
  std::vector<unsigned> variants;
  for (unsigned k = 0; k < kNumVariants; k++) variants.push_back(k);

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
    else if (a == "--paths") paths = parse_list("--paths", val(), path_names, 2);
    else if (a == "--variants")
      variants = parse_list("--variants", val(), variant_names, kNumVariants);
    else if (a == "--help" || a == "-h") usage("measures what each aio2 request attribute costs");
    else usage("unknown argument " + std::string(a));
  }
  // The costs are against none: measure it whatever --variants says.
  if (variants.front() != 0) variants.insert(variants.begin(), 0u);

  FILE *json_file = nullptr;
  if (!json.empty()) {
    json_file = std::fopen(json.c_str(), "w");
    if (json_file == nullptr) die("cannot open %s: %s", json.c_str(), std::strerror(errno));
  }

  // The cache attribute needs a page cache: refuse tmpfs and ramfs.
  struct statfs sfs {};
  if (statfs(dir.c_str(), &sfs) != 0) die("statfs %s: %s", dir.c_str(), std::strerror(errno));
  const auto fstype = static_cast<long>(sfs.f_type);
  if (fstype == TMPFS_MAGIC || fstype == RAMFS_MAGIC)
    die("%s is on %s, which keeps files in memory only; the cache attribute needs a "
        "disk file system's page cache: pass --dir on one",
        dir.c_str(), fstype == TMPFS_MAGIC ? "tmpfs" : "ramfs");
  char *real = realpath(dir.c_str(), nullptr);
  const std::string dir_shown = real ? real : dir;
  std::free(real);

  env e;
  e.warmup_ns = static_cast<int64_t>(warmup * 1e9);
  e.duration_ns = static_cast<int64_t>(duration * 1e9);
  double resident = -1;
  e.fd = make_file(dir, &resident);

  aio2_params prm{};
  prm.size = sizeof prm;
  prm.type = AIO2_CTX_RING;
  prm.bounded_workers = workers;  // 0: aio2's default
  // The pool path, whatever AUTO would choose (inline or io_uring).
  prm.policy = AIO2_POLICY_POOL;
  if (int rc = aio2_setup(AIO2_ABI_VERSION, &prm, &e.ctx); rc < 0)
    die("aio2_setup: %s", aio2_strerror(rc));

  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  std::printf("attr_bench: 4 KiB cached random pread64; pool: QD %u, bounded_workers=%u (in force), "
              "AIO2_IOCB_BOUNDED; call: aio2_call(NULL), QD 1; %u CPUs\n",
              kQD, prm.bounded_workers, cpus);
  std::printf("  file: 64 MiB in %s (%s, f_type 0x%lx), unlinked; %.1f%% of its pages resident "
              "after the warm read\n",
              dir_shown.c_str(), fs_name(fstype), static_cast<unsigned long>(fstype), resident);
  std::printf("  %.2f s per cell after %.2f s warm-up, %u repetitions, variants interleaved "
              "round-robin\n",
              duration, warmup, reps);
  std::fflush(stdout);

  std::vector<summary> sums;
  for (unsigned pi : paths)
    for (unsigned vi : variants) {
      summary s{};
      s.p = kPaths[pi];
      s.v = &kVariants[vi];
      sums.push_back(std::move(s));
    }
  auto find = [&](path p, const variant *v) -> summary * {
    for (summary &s : sums)
      if (s.p == p && s.v == v) return &s;
    return nullptr;
  };

  for (unsigned rep = 0; rep < reps; rep++) {
    const uint64_t seed = 0x243f6a8885a308d3ull * (rep + 1);
    for (size_t k = 0; k < variants.size(); k++) {
      const variant &v = kVariants[variants[(k + rep) % variants.size()]];
      for (size_t q = 0; q < paths.size(); q++) {
        const path p = kPaths[paths[(q + rep) % paths.size()]];
        cell_result r;
        run_cell(p, v, e, seed, r);
        summary *s = find(p, &v);
        s->ops.push_back(r.ops_per_s);
        s->cpu.push_back(r.cpu_us_per_req);
        for (unsigned a = 0; a < v.n; a++) s->attrs[a].merge(r.attrs[a]);
        std::fprintf(stderr, "  rep %u/%u %-4s %-9s %9.0f req/s  cpu %5.2f us/req\n", rep + 1,
                     reps, name(p), v.name, r.ops_per_s, r.cpu_us_per_req);
      }
    }
  }
  if (int rc = aio2_destroy(e.ctx); rc < 0) die("aio2_destroy: %s", aio2_strerror(rc));

  // Medians, costs, statuses.
  for (summary &s : sums) {
    s.med = median(s.ops);
    const auto [lo, hi] = std::minmax_element(s.ops.begin(), s.ops.end());
    s.spread = (*hi - *lo) / s.med * 100;
    s.status = cell_status(s);
    const summary *none = find(s.p, &kVariants[0]);
    if (s.v != &kVariants[0] && none != nullptr) {
      s.has_cost = true;
      s.cost = (none->med - s.med) / none->med * 100;
      s.paired_lo = 1e9;
      s.paired_hi = -1e9;
      for (size_t k = 0; k < s.ops.size(); k++) {
        const double c = (none->ops[k] - s.ops[k]) / none->ops[k] * 100;
        s.paired_lo = std::min(s.paired_lo, c);
        s.paired_hi = std::max(s.paired_hi, c);
      }
    }
  }

  std::printf("\n%-5s %-9s %10s  %-12s  %6s  %-17s %7s  %s\n", "path", "variant", "req/s",
              "cost_vs_none", "spread", "paired_cost", "cpu_us", "status");
  for (const summary &s : sums) {
    char paired[40] = "-";
    if (s.has_cost)
      std::snprintf(paired, sizeof paired, "%+.1f..%+.1f%%", s.paired_lo, s.paired_hi);
    std::printf("%-5s %-9s %10.0f  %-12s  %5.1f%%  %-17s %7.2f  %s\n", name(s.p), s.v->name, s.med,
                s.has_cost ? pct(s.cost).c_str() : "-", s.spread, paired, median(s.cpu),
                s.status.c_str());
  }
  std::printf("(req/s: median of %u repetitions; cost_vs_none: (none - variant) / none from the\n"
              " medians, positive = slower; spread: (max - min) / median of the repetitions;\n"
              " paired_cost: lowest..highest cost against none of the same repetition;\n"
              " cpu_us: process CPU time per request, median)\n",
              reps);

  // What the attribute results said.
  std::printf("\nattribute results (all repetitions, from the single-attribute variants):\n");
  for (const summary &s : sums) {
    if (s.v->n != 1) continue;
    const attr_stats &st = s.attrs[0];
    std::string line;
    char b[200];
    for (unsigned k = 0; k < kStatusSlots; k++)
      if (st.status[k]) {
        std::snprintf(b, sizeof b, "%s%s x%" PRIu64, line.empty() ? "" : ", ", attr_status_name(k),
                      st.status[k]);
        line += b;
      }
    if (st.status[AIO2_ATTR_OK]) {
      switch (s.v->ids[0]) {
        case AIO2_ATTR_TIMING:
          std::snprintf(b, sizeof b, "; mean queue %.2f us, service %.2f us, finish->post %.2f us",
                        st.queue_ns / static_cast<double>(st.timing_n) / 1e3,
                        st.service_ns / static_cast<double>(st.timing_n) / 1e3,
                        st.post_ns / static_cast<double>(st.timing_n) / 1e3);
          line += b;
          break;
        case AIO2_ATTR_CACHE:
          std::snprintf(b, sizeof b,
                        "; hit %" PRIu64 ", partial %" PRIu64 ", miss %" PRIu64
                        "; by cachestat %" PRIu64 ", by nowait %" PRIu64,
                        st.cache_outcome[AIO2_CACHE_HIT], st.cache_outcome[AIO2_CACHE_PARTIAL],
                        st.cache_outcome[AIO2_CACHE_MISS], st.cache_method[AIO2_CACHE_BY_CACHESTAT],
                        st.cache_method[AIO2_CACHE_BY_NOWAIT]);
          line += b;
          break;
        case AIO2_ATTR_DEADLINE:
          std::snprintf(b, sizeof b, "; never expired, least slack %.1f s",
                        static_cast<double>(st.min_slack_ns) / 1e9);
          line += b;
          break;
        case AIO2_ATTR_EXECUTOR:
          std::snprintf(b, sizeof b, "; %d distinct workers, %d distinct CPUs",
                        __builtin_popcountll(st.workers_seen), __builtin_popcountll(st.cpus_seen));
          line += b;
          break;
        case AIO2_ATTR_IOPRIO:
          std::snprintf(b, sizeof b, "; applied %" PRIu64 ", not applied %" PRIu64, st.ioprio_applied,
                        st.ioprio_not);
          line += b;
          if (st.ioprio_not) {
            std::snprintf(b, sizeof b, " (error %s)", std::strerror(-st.ioprio_error));
            line += b;
          }
          if (st.ioprio_applied) {
            std::snprintf(b, sizeof b, "; previous priority 0x%x", st.ioprio_previous);
            line += b;
          }
          break;
        case AIO2_ATTR_RUSAGE: {
          const double n = static_cast<double>(st.status[AIO2_ATTR_OK]);
          std::snprintf(b, sizeof b,
                        "; per request: minflt %.3f majflt %.3f nvcsw %.3f nivcsw %.3f inblock %.3f",
                        static_cast<double>(st.ru[0]) / n, static_cast<double>(st.ru[1]) / n,
                        static_cast<double>(st.ru[2]) / n, static_cast<double>(st.ru[3]) / n,
                        static_cast<double>(st.ru[4]) / n);
          line += b;
          break;
        }
        default: break;
      }
    }
    std::printf("  %-4s %-9s %s\n", name(s.p), s.v->name, line.c_str());
  }

  // Noise.
  std::printf("\nnoise: req/s of none varied across repetitions by");
  for (unsigned pi : paths) {
    const summary *none = find(kPaths[pi], &kVariants[0]);
    std::printf(" %s %.1f%%", name(kPaths[pi]), none->spread);
  }
  std::printf(" ((max - min) / median); costs within that are not told from zero\n");

  // The cost targets: what each attribute may cost against none.
  std::printf("\ntargets: timing <= 5%%, cache <= 10%%, all built-ins <= 20%%\n");
  struct goal {
    const char *variant;
    double limit;
  };
  const goal goals[] = {{"timing", 5}, {"cache", 10}, {"all", 20}};
  for (unsigned pi : paths) {
    const path p = kPaths[pi];
    std::string line;
    for (const goal &g : goals) {
      const summary *s = nullptr;
      for (const summary &x : sums)
        if (x.p == p && std::string_view(x.v->name) == g.variant) s = &x;
      if (!line.empty()) line += "; ";
      line += g.variant;
      if (s == nullptr) {
        line += " not measured";
        continue;
      }
      // Attributes that were not honoured: the measured cost is not theirs.
      std::string unsup;
      for (unsigned k = 0; k < s->v->n; k++)
        if (s->attr_status[k] != "OK") {
          if (!unsup.empty()) unsup += ',';
          unsup += attr_name(s->v->ids[k]);
          unsup += '=';
          unsup += s->attr_status[k];
        }
      line += ' ' + pct(s->cost);
      if (!unsup.empty() && s->v->n == 1)
        line += " n/a (" + unsup + ": the cost measured is not the attribute's)";
      else
        line += s->cost <= g.limit ? " met" : " NOT MET";
      if (!unsup.empty() && s->v->n > 1) line += " but incomplete (" + unsup + ")";
    }
    std::printf("  %s: %s\n", name(p), line.c_str());
  }
  std::fflush(stdout);
  if (json_file != nullptr) write_json(json_file, json, sums);
  close(e.fd);
  return 0;
}
