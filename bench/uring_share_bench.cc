// SPDX-License-Identifier: MIT
//
// uring_share_bench - the two decisions behind aio2's io_uring path, measured
// side by side in one run (docs/design.md, "The io_uring path"):
//
// 1. How completions reach aio2's ring. aio2 harvests io_uring's completion
//    queue in the threads that are there anyway (the submitter after it
//    submits, the reaper in aio2_getevents) instead of in a completion
//    thread. What a completion thread would cost is measured on raw
//    liburing, so that aio2's own overheads do not blur it:
//      liburing         one thread submits and waits on the CQ itself
//      liburing+thread  a completion thread waits on the CQ and hands each
//                       batch of completions to the submitting thread
//                       (mutex + condition variable), which resubmits
//      aio2_uring       aio2, URING policy (harvest without a thread)
//    on 4 KiB random reads of a cached file at QD 1 (latency-bound: the
//    hand-off is the whole difference) and QD 32.
//
// 2. How several submitting threads share one context. For T = 1, 2, 4 ...
//    --threads (default 4 x the CPUs) submitting threads, each keeping QD 16
//    reads in flight and reaping (any thread's events):
//      ctx-each       T threads, a context each
//      shared         T threads, one context; each call reaps at most 16
//                     events (a thread takes a batch its own size, as the
//                     threads of a server that share a queue do)
//      shared-greedy  the same, but each call reaps every event there is:
//                     a thread that takes another's events resubmits them
//                     as its own, and since io_uring reads a cached block
//                     inside the submitter's io_uring_enter, the work
//                     gathers in whichever thread reaps, while the other
//                     waits (this row measures that imbalance)
//      shared-1ring   "shared" with the context's io_uring instances
//                     limited to one (aio2_params.uring_instances = 1): the
//                     threads take turns in the kernel, which reads under
//                     the instance's lock
//      shared-inst    "shared" with as many instances as threads
//                     (uring_instances = T), where the default is twice the
//                     CPUs (at most 16)
//    (4 KiB cached random reads; ops/s of all T threads together; the ratio
//    is each row over ctx-each).
//
// Each cell runs --duration seconds (default 1) after a 0.2 s warm-up, for
// --reps repetitions (default 3) with the cells' order rotating; the table
// gives the median ops/s, and the ratio to the first row of its block.
//
// --only ROW (repeatable) runs only the rows of that name (for a profile of
// one of them); --threads-from T starts the thread counts at T.
//
// Usage: uring_share_bench [--duration S] [--reps N] [--dir DIR] [--threads T]
//                          [--threads-from T] [--only ROW]...

#include <fcntl.h>
#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aio2/aio2.h"
#include "bench_util.h"

namespace {

using bench_util::kBlock;

constexpr uint64_t kFileBytes = 64ull << 20;
constexpr uint64_t kBlocks = kFileBytes / kBlock;

uint64_t pattern(uint64_t blk) { return blk * 0x9e3779b97f4a7c15ull; }

struct run_cfg {
  int fd;
  double duration;
};

// A stop time `duration` after a warm-up; counts only inside the window.
struct window {
  int64_t start, end;
  explicit window(double warm, double duration)
      : start(bench_util::now_ns() + static_cast<int64_t>(warm * 1e9)),
        end(start + static_cast<int64_t>(duration * 1e9)) {}
};

uint64_t next_off(unsigned &seed) { return (rand_r(&seed) % kBlocks) * kBlock; }

// Raw liburing: submit QD reads, wait, resubmit as many as completed.
double run_liburing(const run_cfg &cfg, unsigned qd) {
  io_uring ring;
  if (io_uring_queue_init(256, &ring, 0) < 0) bench_util::die("io_uring_queue_init failed");
  std::vector<bench_util::block_buf> bufs(qd);
  unsigned seed = 1;
  for (unsigned i = 0; i < qd; i++) {
    io_uring_sqe *s = io_uring_get_sqe(&ring);
    io_uring_prep_read(s, cfg.fd, bufs[i].b, kBlock, next_off(seed));
    s->user_data = i;
  }
  io_uring_submit(&ring);
  const window w(0.2, cfg.duration);
  uint64_t n = 0;
  for (int64_t now = 0; (now = bench_util::now_ns()) < w.end;) {
    io_uring_cqe *c;
    if (io_uring_wait_cqe(&ring, &c) != 0) bench_util::die("io_uring_wait_cqe failed");
    unsigned head, k = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      if (c->res != static_cast<int>(kBlock)) bench_util::die("liburing: short read");
      const auto i = static_cast<unsigned>(c->user_data);
      io_uring_sqe *s = io_uring_get_sqe(&ring);
      io_uring_prep_read(s, cfg.fd, bufs[i].b, kBlock, next_off(seed));
      s->user_data = i;
      k++;
    }
    io_uring_cq_advance(&ring, k);
    if (now >= w.start) n += k;
    io_uring_submit(&ring);
  }
  io_uring_queue_exit(&ring);  // cancels and waits for what is in flight
  return static_cast<double>(n) / cfg.duration;
}

// liburing with a completion thread that hands completions to the submitter.
double run_liburing_thread(const run_cfg &cfg, unsigned qd) {
  io_uring ring;
  if (io_uring_queue_init(256, &ring, 0) < 0) bench_util::die("io_uring_queue_init failed");
  std::vector<bench_util::block_buf> bufs(qd);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<unsigned> ready;  // guarded by mu
  std::atomic<bool> stop{false};
  std::thread completer([&] {
    std::vector<unsigned> got;
    while (!stop.load(std::memory_order_relaxed)) {
      io_uring_cqe *c;
      __kernel_timespec ts{0, 20 * 1000 * 1000};
      if (io_uring_wait_cqe_timeout(&ring, &c, &ts) != 0) continue;
      unsigned head, k = 0;
      got.clear();
      io_uring_for_each_cqe(&ring, head, c) {
        if (c->res != static_cast<int>(kBlock)) bench_util::die("liburing+thread: short read");
        got.push_back(static_cast<unsigned>(c->user_data));
        k++;
      }
      io_uring_cq_advance(&ring, k);
      {
        std::lock_guard lk(mu);
        ready.insert(ready.end(), got.begin(), got.end());
      }
      cv.notify_one();
    }
  });
  unsigned seed = 1;
  auto submit = [&](const std::vector<unsigned> &which) {
    for (unsigned i : which) {
      io_uring_sqe *s = io_uring_get_sqe(&ring);
      io_uring_prep_read(s, cfg.fd, bufs[i].b, kBlock, next_off(seed));
      s->user_data = i;
    }
    io_uring_submit(&ring);
  };
  std::vector<unsigned> all(qd), batch;
  for (unsigned i = 0; i < qd; i++) all[i] = i;
  submit(all);
  const window w(0.2, cfg.duration);
  uint64_t n = 0, outstanding = qd;
  for (int64_t now = 0; (now = bench_util::now_ns()) < w.end;) {
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return !ready.empty(); });
      batch.swap(ready);
    }
    if (now >= w.start) n += batch.size();
    submit(batch);
    batch.clear();
  }
  (void)outstanding;
  stop = true;
  completer.join();
  io_uring_queue_exit(&ring);
  return static_cast<double>(n) / cfg.duration;
}

// A URING context with `instances` io_uring instances (0: the default).
aio2_ctx *make_ctx(unsigned instances = 0) {
  aio2_params p{};
  p.size = sizeof p;
  p.policy = AIO2_POLICY_URING;
  p.uring_instances = instances;
  aio2_ctx *c = nullptr;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &c) != 0) bench_util::die("aio2_setup failed");
  if (!(p.features & AIO2_FEAT_URING)) bench_util::die("this machine gives aio2 no io_uring");
  return c;
}

// One thread's aio2 loop: QD reads in flight on `c`, resubmitting what it
// reaps. Request user_data carry the thread in the top bits; a thread that
// reaps another's completion resubmits into its own buffers (the data is not
// checked here: the conservation tests do that). Each aio2_getevents takes
// at most `reap` events (0: as many as there are, up to 4096).
uint64_t aio2_loop(aio2_ctx *c, const run_cfg &cfg, unsigned qd, unsigned tid,
                   const window &w, unsigned reap = 0) {
  std::vector<bench_util::block_buf> bufs(qd);
  std::vector<aio2_iocb> reqs(4096);
  std::vector<unsigned char> evs(4096 * sizeof(aio2_event));
  unsigned seed = tid + 1;
  auto prep = [&](aio2_iocb *io, unsigned i) {
    aio2_prep(io, SYS_pread64, (uint64_t{tid} << 32) | i, static_cast<uint64_t>(cfg.fd),
              reinterpret_cast<uint64_t>(bufs[i].b), kBlock, next_off(seed), 0, 0);
  };
  for (unsigned i = 0; i < qd; i++) prep(&reqs[i], i);
  if (aio2_submit(c, reqs.data(), qd * sizeof(aio2_iocb)) < 0) bench_util::die("aio2_submit failed");
  uint64_t n = 0;
  for (int64_t now = 0; (now = bench_util::now_ns()) < w.end;) {
    const timespec ts{0, 50 * 1000 * 1000};
    const ssize_t got = aio2_getevents(c, 1, evs.data(),
                                       reap ? reap * sizeof(aio2_event) : evs.size(), &ts);
    if (got < 0) bench_util::die("aio2_getevents failed");
    size_t k = 0;
    for (auto *e = aio2_event_next(evs.data(), static_cast<size_t>(got), nullptr); e;
         e = aio2_event_next(evs.data(), static_cast<size_t>(got), e)) {
      if (e->res != static_cast<int64_t>(kBlock)) bench_util::die("aio2: short read");
      prep(&reqs[k++], static_cast<unsigned>(e->user_data & 0xffffffffu) % qd);
    }
    if (now >= w.start) n += k;
    if (k && aio2_submit(c, reqs.data(), k * sizeof(aio2_iocb)) < 0)
      bench_util::die("aio2_submit failed");
  }
  return n;
}

double run_aio2(const run_cfg &cfg, unsigned qd) {
  aio2_ctx *c = make_ctx();
  const window w(0.2, cfg.duration);
  const uint64_t n = aio2_loop(c, cfg, qd, 0, w);
  aio2_destroy(c);
  return static_cast<double>(n) / cfg.duration;
}

// T submitting threads, QD 16 each, on one context or a context each.
enum class sharing { ctx_each, shared, greedy, one_ring, per_thread };
double run_threads(const run_cfg &cfg, unsigned nthreads, sharing how) {
  const bool shared = how != sharing::ctx_each;
  const unsigned instances = how == sharing::one_ring     ? 1
                             : how == sharing::per_thread ? std::min(nthreads, 64u)
                                                          : 0;
  std::vector<aio2_ctx *> c(nthreads);
  for (unsigned i = 0; i < nthreads; i++) c[i] = shared && i > 0 ? c[0] : make_ctx(instances);
  const unsigned reap = how == sharing::greedy ? 0 : 16;
  const window w(0.2, cfg.duration);
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> t;
  for (unsigned i = 0; i < nthreads; i++)
    t.emplace_back([&, i] { total += aio2_loop(c[i], cfg, 16, i, w, reap); });
  for (auto &x : t) x.join();
  for (unsigned i = 0; i < (shared ? 1 : nthreads); i++) aio2_destroy(c[i]);
  return static_cast<double>(total.load()) / cfg.duration;
}

struct cell {
  const char *block;
  const char *name;
  std::function<double(const run_cfg &)> run;
  std::vector<double> reps;
};

}  // namespace

int main(int argc, char **argv) {
  bench_util::g_prog = "uring_share_bench";
  bench_util::g_usage =
      "usage: uring_share_bench [--duration S] [--reps N] [--dir DIR] [--threads T]\n"
      "                         [--threads-from T] [--only ROW]...\n";
  double duration = 1.0;
  unsigned reps = 3;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned max_threads = 4 * static_cast<unsigned>(cpus > 0 ? cpus : 1);
  unsigned min_threads = 1;
  std::vector<std::string> only;
  std::string dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(bench_util::g_usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) bench_util::die("%s", ("missing value for " + a).c_str());
    if (a == "--duration") duration = bench_util::parse_seconds("--duration", argv[++i], 0.05);
    else if (a == "--reps") reps = bench_util::parse_uint("--reps", argv[++i], 1, 100);
    else if (a == "--dir") dir = argv[++i];
    else if (a == "--threads") max_threads = bench_util::parse_uint("--threads", argv[++i], 1, 256);
    else if (a == "--threads-from")
      min_threads = bench_util::parse_uint("--threads-from", argv[++i], 1, 256);
    else if (a == "--only") only.push_back(argv[++i]);
    else bench_util::die("%s", ("unknown option " + a).c_str());
  }
  const int fd = bench_util::make_pattern_file(dir, kFileBytes, pattern);
  const run_cfg cfg{fd, duration};
  std::vector<cell> cells = {
      {"completions, QD 1", "liburing", [](const run_cfg &c) { return run_liburing(c, 1); }, {}},
      {"completions, QD 1", "liburing+thread",
       [](const run_cfg &c) { return run_liburing_thread(c, 1); }, {}},
      {"completions, QD 1", "aio2_uring", [](const run_cfg &c) { return run_aio2(c, 1); }, {}},
      {"completions, QD 32", "liburing", [](const run_cfg &c) { return run_liburing(c, 32); }, {}},
      {"completions, QD 32", "liburing+thread",
       [](const run_cfg &c) { return run_liburing_thread(c, 32); }, {}},
      {"completions, QD 32", "aio2_uring", [](const run_cfg &c) { return run_aio2(c, 32); }, {}},
  };
  // Block names must outlive the cells (they are compared by content).
  std::vector<std::string> names;
  std::vector<unsigned> counts;
  for (unsigned t = min_threads; t < max_threads; t *= 2) counts.push_back(t);
  counts.push_back(std::max(min_threads, max_threads));
  names.reserve(counts.size());
  const size_t first_threads_cell = cells.size();
  for (unsigned t : counts) {
    names.push_back(std::to_string(t) + " submitting thread" + (t == 1 ? "" : "s") +
                    ", QD 16 each");
    for (const auto &[name, how] : {std::pair{"ctx-each", sharing::ctx_each},
                                    std::pair{"shared", sharing::shared},
                                    std::pair{"shared-greedy", sharing::greedy},
                                    std::pair{"shared-1ring", sharing::one_ring},
                                    std::pair{"shared-inst", sharing::per_thread}})
      cells.push_back({names.back().c_str(), name,
                       [t, how = how](const run_cfg &c) { return run_threads(c, t, how); }, {}});
  }
  if (!only.empty()) {
    std::vector<cell> kept;
    for (cell &c : cells)
      if (std::find(only.begin(), only.end(), c.name) != only.end()) kept.push_back(std::move(c));
    if (kept.empty()) bench_util::die("--only names no row");
    cells = std::move(kept);
  }
  for (unsigned r = 0; r < reps; r++) {
    for (size_t k = 0; k < cells.size(); k++) {
      cell &c = cells[(k + r) % cells.size()];
      c.reps.push_back(c.run(cfg));
      std::fprintf(stderr, "  rep %u %-34s %-16s %10.0f ops/s\n", r + 1, c.block, c.name,
                   c.reps.back());
    }
  }
  std::printf("uring_share_bench: 4 KiB random reads of a cached 64 MiB file, %.2f s windows, "
              "median of %u\n",
              duration, reps);
  const char *block = "";
  double base = 0;
  for (const cell &c : cells) {
    const double m = bench_util::median(c.reps);
    if (std::strcmp(block, c.block) != 0) {
      block = c.block;
      base = m;
      std::printf("\n%s\n  %-16s %12s %8s\n", block, "engine", "ops/s", "ratio");
    }
    std::printf("  %-16s %12.0f %7.2fx  (reps:", c.name, m, m / base);
    for (double v : c.reps) std::printf(" %.0f", v);
    std::printf(")\n");
  }
  // The threads blocks again, one row per T: each way of sharing against
  // a context each (all rows ran, unless --only chose some).
  if (!only.empty()) {
    close(fd);
    return 0;
  }
  std::printf("\nsubmitting threads on one context (QD 16 each), ratio to a context each\n"
              "  %7s %14s %8s %14s %14s %12s\n",
              "threads", "ctx_each_ops/s", "shared", "shared-greedy", "shared-1ring", "shared-inst");
  for (size_t k = 0; k < counts.size(); k++) {
    const auto med = [&](size_t j) {
      return bench_util::median(cells[first_threads_cell + 5 * k + j].reps);
    };
    const double each = med(0);
    std::printf("  %7u %14.0f %7.2fx %13.2fx %13.2fx %11.2fx\n", counts[k], each, med(1) / each,
                med(2) / each, med(3) / each, med(4) / each);
  }
  close(fd);
  return 0;
}
