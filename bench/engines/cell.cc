// SPDX-License-Identifier: MIT
// `aio2 bench`: names, one cell (operations, verification, the clock),
// measuring a cell, the latency histogram, and the paths removed at exit.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "aio2/aio2.h"
#include "bench.h"

namespace aio2_bench {

using bench_util::die;
using bench_util::now_ns;
using bench_util::verify_failed;

// ---------------------------------------------------------------------------
// Names

const char *name(workload w) {
  switch (w) {
    case workload::cached_qd1: return "cached_randread_qd1";
    case workload::cached_qd32: return "cached_randread_qd32";
    case workload::direct_qd32: return "direct_randread_qd32";
    case workload::getppid: return "syscall_getppid";
    case workload::mixed: return "mixed_rw_fsync";
  }
  return "?";
}

const char *name(engine e) {
  switch (e) {
    case engine::aio2: return "aio2";
    case engine::aio2_pool: return "aio2_pool";
    case engine::aio2_uring: return "aio2_uring";
    case engine::aio2_no_uring: return "aio2_no_uring";
    case engine::aio2_registered: return "aio2_registered";
    case engine::liburing: return "liburing";
    case engine::liburing_tuned: return "liburing_tuned";
    case engine::libaio: return "libaio";
    case engine::posix_aio: return "posix_aio";
    case engine::libuv: return "libuv";
    case engine::sync: return "sync";
    case engine::sync_nowait: return "sync_nowait";
  }
  return "?";
}

const char *name(path_kind k) {
  switch (k) {
    case path_inline: return "inline";
    case path_uring: return "uring";
    case path_pool: return "pool";
    case path_several: return "inline+pool";
    case path_unknown: return "unknown";
    case kPathKinds: break;
  }
  return "?";
}

const char *describe(workload w) {
  switch (w) {
    case workload::cached_qd1: return "4 KiB reads at random aligned offsets, page cache warm";
    case workload::cached_qd32: return "4 KiB reads at random aligned offsets, page cache warm";
    case workload::direct_qd32: return "4 KiB O_DIRECT reads at random aligned offsets (from the device)";
    case workload::getppid: return "getppid(): the asynchronous machinery alone";
    case workload::mixed:
      return "70% 4 KiB random reads, 30% 4 KiB random writes, an fsync after every 32 writes";
  }
  return "?";
}

uint16_t attr_id(const std::string &n) {
  for (const bench_util::attr_entry &a : bench_util::kBuiltinAttrs)
    if (n == a.name) return a.id;
  return 0;
}

const std::vector<uint16_t> &all_attr_ids() {
  static const std::vector<uint16_t> ids = [] {
    std::vector<uint16_t> v;
    for (const bench_util::attr_entry &a : bench_util::kBuiltinAttrs) v.push_back(a.id);
    return v;
  }();
  return ids;
}

// ---------------------------------------------------------------------------
// The cell

namespace {
constexpr unsigned kWritesPerFsync = 32;  // mixed_rw_fsync: an fsync after every 32 writes
constexpr unsigned kWritePercent = 30;    // mixed_rw_fsync: of the reads and writes

// splitmix64: cheap, good enough to pick blocks and operations.
uint64_t next_random(uint64_t &s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

cell::cell(const bench_env &env, workload wl, engine en, const attr_set *attrs, uint64_t seed,
           cell_result &out)
    : env_(env), wl_(wl), en_(en), attrs_(attrs), out_(out), rng_(seed) {
  file_ = wl == workload::getppid ? nullptr
          : wl == workload::mixed ? env.mixed_file
                                  : env.read_file;
  fd_ = file_ == nullptr                 ? -1
        : wl == workload::direct_qd32 ? file_->direct_fd
                                       : file_->fd;
  if (file_ != nullptr && fd_ < 0) die("%s: no file descriptor for %s", name(en), name(wl));
  // sync runs one call at a time, whatever the workload's depth.
  qd_ = deep(wl) && !is_sync(en) ? env.qd : 1;
  slots_.resize(qd_);
  void *p = nullptr;
  if (const int rc = posix_memalign(&p, kBlock, static_cast<size_t>(qd_) * kBlock); rc != 0)
    die("posix_memalign: %s", std::strerror(rc));
  bufs_ = static_cast<unsigned char *>(p);
  std::memset(bufs_, 0, static_cast<size_t>(qd_) * kBlock);
  if (attrs_ != nullptr) out_.attr_status.assign(attrs_->ids.size(), {});
  // glibc runs the requests of one descriptor one after the other:
  // --posix-aio-dup-fds gives each slot a descriptor of its own.
  if (en == engine::posix_aio && env.posix_dup_fds && fd_ >= 0)
    for (unsigned i = 0; i < qd_; i++) {
      const int d = dup(fd_);
      if (d < 0) die("dup: %s", std::strerror(errno));
      dups_.push_back(d);
    }
  start_clock();
}

void cell::start_clock() {
  start_ = now_ns() + env_.warmup_ns;
  end_ = start_ + env_.duration_ns;
}

cell::~cell() {
  for (int d : dups_) close(d);
  std::free(bufs_);
}

int cell::posix_fd(unsigned slot) const { return dups_.empty() ? fd_ : dups_[slot]; }

const op &cell::begin(unsigned i) {
  slot_state &s = slots_[i];
  if (s.busy) verify_failed("%s/%s: slot %u began while in flight", name(wl_), name(en_), i);
  s.busy = true;
  op &o = s.o;
  if (wl_ == workload::getppid) {
    o.kind = op_kind::trivial;
    o.block = 0;
    return o;
  }
  const uint64_t r = next_random(rng_);
  o.block = r % file_->blocks;
  o.kind = op_kind::read;
  if (wl_ == workload::mixed) {
    if (writes_since_fsync_ == kWritesPerFsync) {
      o.kind = op_kind::fsync;
      writes_since_fsync_ = 0;
    } else if ((r >> 40) % 100 < kWritePercent) {
      o.kind = op_kind::write;
      writes_since_fsync_++;
      // The block's own bytes: the file never changes, so reads always
      // find the pattern, even next to a write of the same block.
      bench_util::fill_pattern_block(buf(i), o.block, file_->pattern);
    }
  }
  return o;
}

bool cell::complete(unsigned i, int64_t res, int64_t t) {
  if (i >= qd_ || !slots_[i].busy)
    verify_failed("%s/%s: completion for slot %u, which is not in flight", name(wl_), name(en_), i);
  slot_state &s = slots_[i];
  s.busy = false;
  const char *what = "";
  int64_t want = 0;
  switch (s.o.kind) {
    case op_kind::read: what = "read"; want = static_cast<int64_t>(kBlock); break;
    case op_kind::write: what = "write"; want = static_cast<int64_t>(kBlock); break;
    case op_kind::fsync: what = "fsync"; want = 0; break;
    case op_kind::trivial:
      // liburing has no getppid: it runs IORING_OP_NOP, which returns 0.
      what = is_liburing(en_) ? "nop" : "getppid";
      want = is_liburing(en_) ? 0 : env_.ppid;
      break;
  }
  if (res != want) {
    if (res < 0 && s.o.kind != op_kind::trivial)
      verify_failed("%s/%s: %s of block %" PRIu64 " failed: %s", name(wl_), name(en_), what,
                    s.o.block, std::strerror(static_cast<int>(-res)));
    verify_failed("%s/%s: %s returned %" PRId64 ", expected %" PRId64, name(wl_), name(en_), what,
                  res, want);
  }
  if (s.o.kind == op_kind::read) {
    uint64_t got;
    std::memcpy(&got, buf(i), sizeof got);
    if (got != file_->expected[s.o.block])
      verify_failed("%s/%s: block %" PRIu64 " starts with 0x%016" PRIx64 ", expected 0x%016" PRIx64,
                    name(wl_), name(en_), s.o.block, got, file_->expected[s.o.block]);
  }
  out_.all_ops++;
  if (ru_taken_ == 0 && t >= start_) getrusage(RUSAGE_SELF, &ru_[ru_taken_++]);
  if (ru_taken_ == 1 && t >= end_) getrusage(RUSAGE_SELF, &ru_[ru_taken_++]);
  if (t >= start_ && t < end_) {
    out_.ops++;
    const int64_t d = t - s.t_sub;
    out_.lat_ns.push_back(d <= 0 ? 0u : d >= UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(d));
  }
  return t < end_;
}

double cell::window_cpu_us() const {
  return ru_taken_ == 2 ? bench_util::cpu_us(ru_[1]) - bench_util::cpu_us(ru_[0]) : 0;
}

double cell::window_ctxsw() const {
  if (ru_taken_ != 2) return 0;
  return static_cast<double>(ru_[1].ru_nvcsw - ru_[0].ru_nvcsw + ru_[1].ru_nivcsw - ru_[0].ru_nivcsw);
}

void cell::stalled(unsigned inflight) const {
  verify_failed("%s/%s: no completion in %" PRId64 " s with %u requests in flight", name(wl_),
                name(en_), kStallNs / 1'000'000'000, inflight);
}

void cell::check_drained() const {
  for (unsigned i = 0; i < qd_; i++)
    if (slots_[i].busy) verify_failed("%s/%s: slot %u never completed", name(wl_), name(en_), i);
}

// ---------------------------------------------------------------------------
// Measuring a cell

void run_cell(cell &c) {
  cell_result &out = c.out();
  switch (c.en()) {
    case engine::aio2:
    case engine::aio2_pool:
    case engine::aio2_uring:
    case engine::aio2_no_uring:
    case engine::aio2_registered: run_aio2(c); break;
    case engine::liburing:
    case engine::liburing_tuned: run_liburing(c); break;
    case engine::libaio: run_libaio(c); break;
    case engine::posix_aio: run_posix_aio(c); break;
    case engine::libuv: run_libuv(c); break;
    case engine::sync:
    case engine::sync_nowait: run_sync(c); break;
  }
  const double seconds = static_cast<double>(c.env().duration_ns) / 1e9;
  if (out.ops == 0)
    verify_failed("%s/%s: no request completed inside the %.3f s window (try a longer --duration)",
                  name(c.wl()), c.engine_name(), seconds);
  if (out.lat_ns.size() != out.ops)
    verify_failed("%s/%s: %zu latencies for %" PRIu64 " requests", name(c.wl()), c.engine_name(),
                  out.lat_ns.size(), out.ops);
  const auto ops = static_cast<double>(out.ops);
  out.cpu_us_per_op = c.window_cpu_us() / ops;
  out.ctxsw_per_op = c.window_ctxsw() / ops;
  out.ops_per_s = static_cast<double>(out.ops) / seconds;
  std::sort(out.lat_ns.begin(), out.lat_ns.end());
  auto pct = [&](double q) {  // nearest rank
    const size_t n = out.lat_ns.size();
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
    k = k == 0 ? 0 : k - 1;
    return out.lat_ns[std::min(k, n - 1)] / 1000.0;
  };
  out.p50_us = pct(0.50);
  out.p99_us = pct(0.99);
}

// ---------------------------------------------------------------------------
// Latency histogram

namespace {
double edge_ns(unsigned k) {
  return kHistMinNs * std::pow(10.0, static_cast<double>(k) / kHistPerDecade);
}
}  // namespace

double hist_edge_us(unsigned k) { return edge_ns(k + 1) / 1000.0; }

void hist_add(std::vector<uint64_t> &hist, const std::vector<uint32_t> &sorted_ns) {
  if (hist.size() != kHistBins) hist.assign(kHistBins, 0);
  // Latencies are sorted: walk the bins once.
  unsigned k = 0;
  double upper = edge_ns(1);
  for (uint32_t v : sorted_ns) {
    while (k + 1 < kHistBins && static_cast<double>(v) >= upper) upper = edge_ns(++k + 1);
    hist[k]++;
  }
}

// ---------------------------------------------------------------------------
// Paths removed at exit

namespace {
constexpr unsigned kCleanupSlots = 16;
struct cleanup_slot {
  char path[PATH_MAX];
  volatile sig_atomic_t used;
};
cleanup_slot g_cleanup[kCleanupSlots];

void cleanup_all() {
  for (cleanup_slot &s : g_cleanup)
    if (s.used) {
      unlink(s.path);  // async-signal-safe
      s.used = 0;
    }
}

extern "C" void cleanup_on_signal(int sig) {
  cleanup_all();
  signal(sig, SIG_DFL);
  raise(sig);
}
}  // namespace

void cleanup_install() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  std::atexit(cleanup_all);
  struct sigaction sa {};
  sa.sa_handler = cleanup_on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

void cleanup_add(const std::string &path) {
  if (path.size() >= PATH_MAX) die("path too long: %s", path.c_str());
  for (cleanup_slot &s : g_cleanup)
    if (!s.used) {
      std::memcpy(s.path, path.c_str(), path.size() + 1);
      s.used = 1;
      return;
    }
  die("internal: too many temporary paths");
}

void cleanup_remove(const std::string &path) {
  for (cleanup_slot &s : g_cleanup)
    if (s.used && path == s.path) s.used = 0;
}

}  // namespace aio2_bench
