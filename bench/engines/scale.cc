// SPDX-License-Identifier: MIT
// `aio2 bench --scale`: three curves of aio2 alone, printed as tables and,
// with --plot DIR, drawn by gnuplot into DIR (SVG) beside their data (CSV).
//
// in flight  N = 1, 4, 16 ... --scale-inflight requests (getppid) submitted
//            on a fresh context and only then reaped: ns per request from
//            the first submission to the last reap, and bytes per request
//            held while all N were submitted and none reaped, as the
//            allocator's bytes in use (mallinfo2: arena + mmapped chunks) and
//            as resident memory (/proc/self/statm), each after minus before,
//            divided by N. Series: policy AUTO (getppid runs inline and its
//            event waits in the ring or on the overflow list) and POOL (the
//            requests queue for the workers). One request goes through each
//            context before the "before" readings, so that what a context
//            makes once on its first request is not counted per request.
// threads    T = 1, 2, 4 ... --scale-threads submitting threads on ONE
//            context, each keeping --qd requests in flight and reaping (any
//            thread's events), and the same T threads with a context each.
// reapers    one submitting thread keeping --qd requests in flight on one
//            context, and R = 1, 2, 4 ... --scale-threads threads that only
//            reap it.
// The threads and reapers curves run 4 KiB reads of the bench's file when it
// has one (every result and every block's first 8 bytes checked), getppid
// otherwise; each point runs --scale-ops requests (from the threads' start
// to the last reap), after one unshown warm-up run of a quarter of that.

#include <malloc.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "bench.h"

namespace aio2_bench {

using bench_util::die;
using bench_util::now_ns;
using bench_util::verify_failed;

namespace {

constexpr size_t kEventMax = 64;  // an event without attributes is 24 bytes: room to spare
constexpr unsigned kSubmitChunk = 4096;  // requests per aio2_submit in the in-flight curve

aio2_ctx *make_ctx(uint32_t policy, uint32_t max_inflight) {
  aio2_params p{};
  p.size = sizeof p;
  p.type = AIO2_CTX_RING;
  p.policy = policy;
  p.max_inflight = max_inflight;
  aio2_ctx *ctx = nullptr;
  if (const int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx); rc < 0)
    die("--scale: aio2_setup: %s", aio2_strerror(rc));
  return ctx;
}

// Bytes the allocator holds for the program: small chunks and mmapped ones.
uint64_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<uint64_t>(mi.uordblks) + static_cast<uint64_t>(mi.hblkhd);
}

uint64_t rss_bytes() {
  FILE *f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Doubling (or x4) steps from 1 to max, max always last.
std::vector<uint64_t> steps(uint64_t max, unsigned factor) {
  std::vector<uint64_t> v;
  for (uint64_t n = 1; n < max; n *= factor) v.push_back(n);
  v.push_back(max);
  return v;
}

// Reaps into buf from the ring in user memory, else aio2_getevents waiting
// up to wait_ns for one event. Returns the bytes of events (0: none came).
size_t reap_some(aio2_ctx *ctx, aio2_ring *ring, void *buf, size_t bytes, int64_t wait_ns) {
  int64_t got = aio2_reap_events(ring, buf, bytes);
  if (got == 0 || got == -EAGAIN) {
    const timespec ts = bench_util::to_timespec(wait_ns);
    do got = aio2_getevents(ctx, 1, buf, bytes, &ts);
    while (got == -EINTR);
  }
  if (got == -ETIME || got == -ETIMEDOUT) return 0;
  if (got < 0) die("--scale: reaping: %s", aio2_strerror(static_cast<int>(got)));
  return static_cast<size_t>(got);
}

// ---------------------------------------------------------------------------
// In flight

struct inflight_point {
  uint64_t n;
  double ns_per_req[2];     // AUTO, POOL
  double heap_per_req[2];   // allocator bytes in use, per request
  double rss_per_req[2];    // resident bytes, per request
};

void run_inflight_one(uint64_t n, uint32_t policy, long ppid, double *ns, double *heap, double *rss) {
  // The caller's memory first (requests, the check bitmap, the event
  // buffer), outside the measured difference.
  std::vector<aio2_iocb> reqs(n);
  for (uint64_t i = 0; i < n; i++) aio2_prep(&reqs[i], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
  std::vector<uint8_t> seen(n, 0);
  std::vector<uint64_t> evbuf(kSubmitChunk * kEventMax / sizeof(uint64_t));
  aio2_ctx *ctx = make_ctx(policy, static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX)));
  aio2_ring *ring = aio2_ring_get(ctx);
  // One request through first, so that what a context makes once, on its
  // first request (a worker thread, say), is not counted per request.
  {
    aio2_iocb one;
    aio2_prep(&one, SYS_getppid, 0, 0, 0, 0, 0, 0, 0);
    if (const ssize_t rc = aio2_submit(ctx, &one, sizeof one); rc != static_cast<ssize_t>(sizeof one))
      die("--scale: aio2_submit: %s", rc < 0 ? aio2_strerror(static_cast<int>(rc)) : "took part of one");
    if (reap_some(ctx, ring, evbuf.data(), evbuf.size() * sizeof(uint64_t), cell::kStallNs) == 0)
      verify_failed("--scale: no event in 10 s for the first request");
  }
  const uint64_t heap0 = heap_in_use(), rss0 = rss_bytes();
  const int64_t t0 = now_ns();
  const auto *bytes = reinterpret_cast<const unsigned char *>(reqs.data());
  const size_t total = n * sizeof(aio2_iocb);
  for (size_t off = 0; off < total;) {
    const size_t chunk = std::min<size_t>(total - off, kSubmitChunk * sizeof(aio2_iocb));
    const ssize_t rc = aio2_submit(ctx, bytes + off, chunk);
    if (rc < 0) die("--scale: aio2_submit with %" PRIu64 " in flight: %s", n, aio2_strerror(static_cast<int>(rc)));
    off += static_cast<size_t>(rc);
  }
  // Every request submitted, none reaped: what aio2 holds for them now.
  const uint64_t heap1 = heap_in_use(), rss1 = rss_bytes();
  uint64_t reaped = 0;
  while (reaped < n) {
    const size_t len = reap_some(ctx, ring, evbuf.data(), evbuf.size() * sizeof(uint64_t), cell::kStallNs);
    if (len == 0) verify_failed("--scale: no event in 10 s with %" PRIu64 " of %" PRIu64 " reaped", reaped, n);
    for (const aio2_event *ev = aio2_event_next(evbuf.data(), len, nullptr); ev;
         ev = aio2_event_next(evbuf.data(), len, ev)) {
      if (ev->user_data >= n || seen[ev->user_data])
        verify_failed("--scale: event for request %" PRIu64 ", not in flight", ev->user_data);
      if (ev->res != ppid)
        verify_failed("--scale: getppid returned %" PRId64 ", expected %ld", ev->res, ppid);
      seen[ev->user_data] = 1;
      reaped++;
    }
  }
  const int64_t t1 = now_ns();
  if (const int rc = aio2_destroy(ctx); rc < 0) die("--scale: aio2_destroy: %s", aio2_strerror(rc));
  const auto dn = static_cast<double>(n);
  *ns = static_cast<double>(t1 - t0) / dn;
  *heap = (static_cast<double>(heap1) - static_cast<double>(heap0)) / dn;
  *rss = (static_cast<double>(rss1) - static_cast<double>(rss0)) / dn;
}

// ---------------------------------------------------------------------------
// Threads and reapers

// One context's share of a multi-threaded point: slots of every submitter,
// the counts every thread updates.
struct mt_slot {
  // 1 while the slot is free for its submitter; the reaper that reaps the
  // slot's event stores 1 (release) after checking its buffer, and the
  // submitter's exchange to 0 (acquire) pairs with it, so the buffer and
  // `block` are the submitter's again before it reuses them.
  std::atomic<uint32_t> free{1};
  uint64_t block = 0;  // written by the submitter before the submission
};

struct mt_run {
  const bench_file *file = nullptr;  // reads of it, or getppid when null
  long ppid = 0;
  unsigned qd = 0;
  uint64_t ops = 0;
  unsigned submitters = 0;
  std::vector<aio2_ctx *> ctxs;  // submitter t uses ctxs[t % size]
  std::unique_ptr<mt_slot[]> slots;  // submitters * qd
  std::unique_ptr<unsigned char[], decltype(&std::free)> bufs{nullptr, &std::free};
  // Requests any submitter may still start: each takes one with fetch_sub
  // before it submits (relaxed: it orders nothing, it only counts).
  std::atomic<int64_t> to_submit{0};
  // Requests reaped and checked, by every thread (relaxed: a count; the
  // threads are joined before it is read for the result).
  std::atomic<uint64_t> reaped{0};

  unsigned char *buf(size_t slot) { return bufs.get() + slot * kBlock; }
};

// Checks one event (result, and a read's first 8 bytes) and frees its slot.
void mt_complete(mt_run &r, const aio2_event *ev) {
  const uint64_t slot = ev->user_data;
  if (slot >= static_cast<uint64_t>(r.submitters) * r.qd)
    verify_failed("--scale: event for slot %" PRIu64 ", which does not exist", slot);
  mt_slot &s = r.slots[slot];
  if (r.file != nullptr) {
    if (ev->res != static_cast<int64_t>(kBlock))
      verify_failed("--scale: read returned %" PRId64 ", expected 4096", ev->res);
    uint64_t got;
    std::memcpy(&got, r.buf(slot), sizeof got);
    if (got != r.file->expected[s.block])
      verify_failed("--scale: block %" PRIu64 " starts with 0x%016" PRIx64 ", expected 0x%016" PRIx64,
                    s.block, got, r.file->expected[s.block]);
  } else if (ev->res != r.ppid) {
    verify_failed("--scale: getppid returned %" PRId64 ", expected %ld", ev->res, r.ppid);
  }
  if (s.free.exchange(1, std::memory_order_release) != 0)
    verify_failed("--scale: slot %" PRIu64 " completed twice", slot);
  r.reaped.fetch_add(1, std::memory_order_relaxed);
}

// Reaps what ctx has (waiting up to 1 ms for one event); returns events.
unsigned mt_reap(mt_run &r, aio2_ctx *ctx, std::vector<uint64_t> &evbuf) {
  const size_t len = reap_some(ctx, aio2_ring_get(ctx), evbuf.data(), evbuf.size() * sizeof(uint64_t),
                               1'000'000);
  unsigned n = 0;
  for (const aio2_event *ev = aio2_event_next(evbuf.data(), len, nullptr); ev;
       ev = aio2_event_next(evbuf.data(), len, ev), n++)
    mt_complete(r, ev);
  return n;
}

// Submitter t: submits its free slots while requests remain; reaps too
// when `reaps` (no reaper threads), until every request is reaped.
void mt_submitter(mt_run &r, unsigned t, bool reaps, uint64_t seed) {
  aio2_ctx *ctx = r.ctxs[t % r.ctxs.size()];
  std::vector<aio2_iocb> reqs(r.qd);
  std::vector<uint64_t> evbuf(static_cast<size_t>(r.qd) * r.submitters * kEventMax / sizeof(uint64_t) + 8);
  int64_t last = now_ns();
  for (;;) {
    unsigned n = 0;
    for (unsigned k = 0; k < r.qd; k++) {
      const size_t slot = static_cast<size_t>(t) * r.qd + k;
      mt_slot &s = r.slots[slot];
      if (s.free.load(std::memory_order_relaxed) == 0) continue;
      if (r.to_submit.fetch_sub(1, std::memory_order_relaxed) <= 0) {
        r.to_submit.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      s.free.exchange(0, std::memory_order_acquire);
      if (r.file != nullptr) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        s.block = (seed >> 17) % r.file->blocks;
        aio2_prep(&reqs[n], SYS_pread64, slot, static_cast<uint64_t>(r.file->fd),
                  reinterpret_cast<uint64_t>(r.buf(slot)), kBlock, s.block * kBlock, 0, 0);
        reqs[n].flags = AIO2_IOCB_BOUNDED;
      } else {
        aio2_prep(&reqs[n], SYS_getppid, slot, 0, 0, 0, 0, 0, 0);
      }
      n++;
    }
    const auto *bytes = reinterpret_cast<const unsigned char *>(reqs.data());
    for (size_t off = 0, total = n * sizeof(aio2_iocb); off < total;) {
      const ssize_t rc = aio2_submit(ctx, bytes + off, total - off);
      if (rc < 0) die("--scale: aio2_submit: %s", aio2_strerror(static_cast<int>(rc)));
      off += static_cast<size_t>(rc);
    }
    const bool done = r.reaped.load(std::memory_order_relaxed) >= r.ops;
    if (done) return;
    if (reaps) {
      if (mt_reap(r, ctx, evbuf) > 0) last = now_ns();
      else if (now_ns() - last > cell::kStallNs) verify_failed("--scale: no event in 10 s");
    } else if (n == 0) {
      std::this_thread::yield();  // every slot in flight: the reapers free them
    }
  }
}

void mt_reaper(mt_run &r) {
  std::vector<uint64_t> evbuf(static_cast<size_t>(r.qd) * r.submitters * kEventMax / sizeof(uint64_t) + 8);
  int64_t last = now_ns();
  while (r.reaped.load(std::memory_order_relaxed) < r.ops) {
    if (mt_reap(r, r.ctxs[0], evbuf) > 0) last = now_ns();
    else if (now_ns() - last > cell::kStallNs) verify_failed("--scale: no event in 10 s");
  }
}

// ops/s of `submitters` threads (each reaping when reapers == 0) with
// `reapers` threads reaping, on `contexts` contexts.
double run_mt(const bench_env &env, unsigned submitters, unsigned reapers, unsigned contexts,
              uint64_t ops) {
  mt_run r;
  r.file = env.read_file != nullptr && env.read_file->fd >= 0 ? env.read_file : nullptr;
  r.ppid = env.ppid;
  r.qd = env.qd;
  r.ops = ops;
  r.submitters = submitters;
  const size_t nslots = static_cast<size_t>(submitters) * r.qd;
  r.slots = std::make_unique<mt_slot[]>(nslots);
  void *p = nullptr;
  if (const int rc = posix_memalign(&p, kBlock, nslots * kBlock); rc != 0)
    die("posix_memalign: %s", std::strerror(rc));
  r.bufs.reset(static_cast<unsigned char *>(p));
  std::memset(p, 0, nslots * kBlock);
  // Room in each ring for every event its submitters can have in flight.
  const uint32_t inflight = static_cast<uint32_t>(nslots);
  for (unsigned c = 0; c < contexts; c++) r.ctxs.push_back(make_ctx(AIO2_POLICY_AUTO, std::max(inflight, 1024u)));
  r.to_submit.store(static_cast<int64_t>(ops), std::memory_order_relaxed);
  const int64_t t0 = now_ns();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < submitters; t++)
    threads.emplace_back(mt_submitter, std::ref(r), t, reapers == 0, 0x9e3779b97f4a7c15ull * (t + 1));
  for (unsigned k = 0; k < reapers; k++) threads.emplace_back(mt_reaper, std::ref(r));
  for (std::thread &th : threads) th.join();
  const int64_t t1 = now_ns();
  if (r.reaped.load(std::memory_order_relaxed) != ops)
    verify_failed("--scale: %" PRIu64 " requests reaped for %" PRIu64 " submitted",
                  r.reaped.load(std::memory_order_relaxed), ops);
  for (size_t k = 0; k < nslots; k++)
    if (r.slots[k].free.load(std::memory_order_acquire) != 1)
      verify_failed("--scale: slot %zu never completed", k);
  for (aio2_ctx *ctx : r.ctxs)
    if (const int rc = aio2_destroy(ctx); rc < 0) die("--scale: aio2_destroy: %s", aio2_strerror(rc));
  return static_cast<double>(ops) / (static_cast<double>(t1 - t0) / 1e9);
}

// ---------------------------------------------------------------------------
// Output

std::string num(double v, const char *f = "%.1f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void write_text(const std::string &path, const std::string &text) {
  cleanup_add(path);
  FILE *f = std::fopen(path.c_str(), "w");
  if (f == nullptr) die("--plot: cannot write %s: %s", path.c_str(), std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) die("--plot: writing %s: %s", path.c_str(), std::strerror(errno));
}

// Draws `csv` (a header line, then columns: x, series...) into svg with
// gnuplot: one panel per entry of `panels` (title, y label, columns).
struct panel {
  std::string title, ylabel;
  std::vector<std::pair<unsigned, std::string>> series;  // column (1-based), title
};
void plot_csv(const std::string &csv, const std::string &svg, const std::string &xlabel,
              const std::vector<panel> &panels, bool logy) {
  std::string s;
  s += "set terminal svg dynamic noenhanced font 'sans,11' size 720," +
       std::to_string(360 * panels.size()) + "\n";
  s += "set output " + gp_quote(svg) + "\n";
  s += "set datafile separator ','\nset key top left font ',9'\nset grid\n";
  s += "set logscale x 2\nset format x '%g'\nset xlabel " + gp_quote(xlabel) + "\n";
  if (logy) s += "set logscale y\n";
  s += "set multiplot layout " + std::to_string(panels.size()) + ",1\n";
  for (const panel &p : panels) {
    s += "set title " + gp_quote(p.title) + "\nset ylabel " + gp_quote(p.ylabel) + "\n";
    std::string cmd;
    for (const auto &[col, title] : p.series)
      cmd += std::string(cmd.empty() ? "plot " : ", ") + gp_quote(csv) + " skip 1 using 1:" +
             std::to_string(col) + " with linespoints lw 2 pt 7 title " + gp_quote(title);
    s += cmd + "\n";
  }
  s += "unset multiplot\nset output\n";
  const std::string script = svg + ".gp";
  write_text(script, s);
  cleanup_add(svg);
  const std::string err = run_gnuplot(script);
  unlink(script.c_str());
  cleanup_remove(script);
  if (!err.empty()) die("--plot: gnuplot failed on %s: %s", svg.c_str(), err.c_str());
}

}  // namespace

void run_scale(const bench_env &env, const scale_options &o, const std::string &plot_dir,
               std::vector<std::string> *written) {
  std::printf("\nscale curves (aio2 alone; docs/bench.md, \"Scale curves\")\n");

  // In flight.
  std::printf("\nin flight: N getppid submitted on a fresh context, then reaped; bytes held\n"
              "with all N submitted and none reaped, per request\n");
  std::printf("  %9s %12s %12s %12s %12s %12s %12s\n", "in_flight", "auto_ns/req", "auto_heap_B",
              "auto_rss_B", "pool_ns/req", "pool_heap_B", "pool_rss_B");
  std::string csv = "in_flight,auto_ns_per_req,pool_ns_per_req,auto_heap_bytes_per_req,"
                    "pool_heap_bytes_per_req,auto_rss_bytes_per_req,pool_rss_bytes_per_req\n";
  for (uint64_t n : steps(o.max_inflight, 4)) {
    inflight_point pt{};
    pt.n = n;
    const uint32_t pol[2] = {AIO2_POLICY_AUTO, AIO2_POLICY_POOL};
    for (int k = 0; k < 2; k++)
      run_inflight_one(n, pol[k], env.ppid, &pt.ns_per_req[k], &pt.heap_per_req[k], &pt.rss_per_req[k]);
    std::printf("  %9" PRIu64 " %12.0f %12.0f %12.0f %12.0f %12.0f %12.0f\n", n, pt.ns_per_req[0],
                pt.heap_per_req[0], pt.rss_per_req[0], pt.ns_per_req[1], pt.heap_per_req[1],
                pt.rss_per_req[1]);
    csv += std::to_string(n) + "," + num(pt.ns_per_req[0]) + "," + num(pt.ns_per_req[1]) + "," +
           num(pt.heap_per_req[0]) + "," + num(pt.heap_per_req[1]) + "," + num(pt.rss_per_req[0]) +
           "," + num(pt.rss_per_req[1]) + "\n";
  }
  std::fflush(stdout);
  if (!plot_dir.empty()) {
    const std::string c = plot_dir + "/inflight.csv", s = plot_dir + "/inflight.svg";
    write_text(c, csv);
    plot_csv(c, s, "requests in flight",
             {panel{"aio2: time per request against requests in flight", "ns per request",
                    {{2, "AUTO (getppid inline)"}, {3, "POOL"}}},
              panel{"aio2: memory per request in flight", "bytes per request",
                    {{4, "AUTO, allocator"}, {5, "POOL, allocator"}, {6, "AUTO, resident"},
                     {7, "POOL, resident"}}}},
             false);
    written->insert(written->end(), {c, s});
  }

  const bool reads = env.read_file != nullptr && env.read_file->fd >= 0;
  const char *what = reads ? "4 KiB cached reads" : "getppid";

  // Threads.
  std::printf("\nthreads: T submitting threads, each with %u %s in flight and reaping;\n"
              "one context shared, and a context each; %" PRIu64 " requests per point\n",
              env.qd, what, o.ops);
  std::printf("  %7s %14s %14s %9s\n", "threads", "one_ctx_ops/s", "ctx_each_ops/s", "ratio");
  csv = "threads,one_context_ops_per_s,context_each_ops_per_s\n";
  run_mt(env, 1, 0, 1, o.ops / 4 + 1);  // warm-up, not shown: first faults, io_uring's first use
  for (uint64_t t : steps(o.max_threads, 2)) {
    const auto tt = static_cast<unsigned>(t);
    const double one = run_mt(env, tt, 0, 1, o.ops);
    const double each = run_mt(env, tt, 0, tt, o.ops);
    std::printf("  %7u %14.0f %14.0f %8.2fx\n", tt, one, each, one / each);
    csv += std::to_string(t) + "," + num(one) + "," + num(each) + "\n";
  }
  std::fflush(stdout);
  if (!plot_dir.empty()) {
    const std::string c = plot_dir + "/threads.csv", s = plot_dir + "/threads.svg";
    write_text(c, csv);
    plot_csv(c, s, "submitting threads",
             {panel{std::string("aio2: throughput against submitting threads (") + what + ")",
                    "requests per second", {{2, "one context"}, {3, "a context per thread"}}}},
             false);
    written->insert(written->end(), {c, s});
  }

  // Reapers.
  std::printf("\nreapers: one submitting thread with %u %s in flight on one context, R\n"
              "threads reaping it; %" PRIu64 " requests per point\n",
              env.qd, what, o.ops);
  std::printf("  %7s %14s\n", "reapers", "ops/s");
  csv = "reapers,ops_per_s\n";
  for (uint64_t k : steps(o.max_threads, 2)) {
    const double v = run_mt(env, 1, static_cast<unsigned>(k), 1, o.ops);
    std::printf("  %7" PRIu64 " %14.0f\n", k, v);
    csv += std::to_string(k) + "," + num(v) + "\n";
  }
  std::fflush(stdout);
  if (!plot_dir.empty()) {
    const std::string c = plot_dir + "/reapers.csv", s = plot_dir + "/reapers.svg";
    write_text(c, csv);
    plot_csv(c, s, "reaping threads",
             {panel{std::string("aio2: throughput against reapers, one submitter (") + what + ")",
                    "requests per second", {{2, "one context"}}}},
             false);
    written->insert(written->end(), {c, s});
  }
}

}  // namespace aio2_bench
