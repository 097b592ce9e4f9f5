// SPDX-License-Identifier: MIT
// `aio2 bench`, inside: the names of workloads and engines, one cell (one
// workload on one engine, with one attribute set, for one repetition), the
// engines' loops, and the reports. docs/bench.md describes the method.
#pragma once

#include <sys/resource.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"

namespace aio2_bench {

using bench_util::kBlock;

// ---------------------------------------------------------------------------
// Names

enum class workload : uint8_t { cached_qd1, cached_qd32, direct_qd32, getppid, mixed };
enum class engine : uint8_t {
  aio2,
  aio2_pool,
  aio2_uring,
  aio2_no_uring,
  aio2_registered,
  liburing,
  liburing_tuned,
  libaio,
  posix_aio,
  libuv,
  sync,
  sync_nowait
};

inline constexpr workload kWorkloads[] = {workload::cached_qd1, workload::cached_qd32,
                                          workload::direct_qd32, workload::getppid, workload::mixed};
inline constexpr engine kEngines[] = {engine::aio2,          engine::aio2_pool,
                                      engine::aio2_uring,    engine::aio2_no_uring,
                                      engine::aio2_registered,
                                      engine::liburing,      engine::liburing_tuned,
                                      engine::libaio,        engine::posix_aio,
                                      engine::libuv,         engine::sync,
                                      engine::sync_nowait};

const char *name(workload w);
const char *name(engine e);
// One line on what the workload does, for the table and --help.
const char *describe(workload w);
inline bool is_aio2(engine e) {
  return e == engine::aio2 || e == engine::aio2_pool || e == engine::aio2_uring ||
         e == engine::aio2_no_uring || e == engine::aio2_registered;
}
inline bool is_liburing(engine e) { return e == engine::liburing || e == engine::liburing_tuned; }
// One call at a time in the calling thread, whatever the workload's depth.
inline bool is_sync(engine e) { return e == engine::sync || e == engine::sync_nowait; }
// Whether the workload runs at --qd (else at depth 1).
inline bool deep(workload w) { return w != workload::cached_qd1; }

// The attributes of aio2's requests in one set of cells: "" is none.
struct attr_set {
  std::string label;          // names joined by ',' in the order given
  std::vector<uint16_t> ids;  // AIO2_ATTR_* in the same order
};
using bench_util::attr_name;
// The id of a built-in attribute's name, or 0.
uint16_t attr_id(const std::string &name);
// The built-in attributes, in abi.h's order.
const std::vector<uint16_t> &all_attr_ids();

// ---------------------------------------------------------------------------
// What the cells share

// A file the read workloads read (or the one mixed_rw_fsync reads and
// writes). expected[b] holds the first 8 bytes of block b, checked on every
// read; writes write a block's own bytes back (pattern files only), so the
// content never changes.
struct bench_file {
  int fd = -1;         // buffered
  int direct_fd = -1;  // O_DIRECT, or -1
  uint64_t blocks = 0;
  std::vector<uint64_t> expected;
  uint64_t (*pattern)(uint64_t) = nullptr;  // pattern files: what writes write
};

// Settings every cell reads.
struct bench_env {
  const bench_file *read_file = nullptr;   // the cached and direct workloads
  const bench_file *mixed_file = nullptr;  // mixed_rw_fsync
  unsigned qd = 32;                        // depth of the deep workloads
  unsigned workers = 0;                    // aio2 bounded_workers; 0: aio2's default
  bool aio2_hint = true;                   // AIO2_IOCB_BOUNDED on file requests
  bool posix_dup_fds = false;              // --posix-aio-dup-fds: a dup() per posix_aio slot
  int64_t warmup_ns = 0;
  int64_t duration_ns = 0;
  long ppid = 0;
};

// One operation of a workload.
enum class op_kind : uint8_t { read, write, fsync, trivial };
struct op {
  op_kind kind = op_kind::read;
  uint64_t block = 0;
};

// The paths an aio2 request can report (the executor attribute's bits): one
// of inline, uring, pool; more than one (a nowait-first read finished by a
// worker); or no executor result.
enum path_kind : unsigned { path_inline, path_uring, path_pool, path_several, path_unknown, kPathKinds };
const char *name(path_kind k);

// What one cell measured.
struct cell_result {
  uint64_t ops = 0;              // requests reaped in the window
  uint64_t all_ops = 0;          // requests reaped in the whole cell
  uint64_t reaps = 0;            // reap batches in the window
  std::vector<uint32_t> lat_ns;  // one per request reaped in the window, sorted at the end
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
  // getrusage from the first completion reaped in the window to the first
  // reaped after it, over the requests reaped in the window: the engine's
  // setup, warm-up, drain and teardown are outside.
  double cpu_us_per_op = 0, ctxsw_per_op = 0;
  // aio2 only: for each attribute of the set, how many events had each
  // status (AIO2_ATTR_OK..AIO2_ATTR_ERROR; the last slot counts others).
  std::vector<std::array<uint64_t, 6>> attr_status;
  // What the engine found it ran on, when that is not what its name says
  // (measured or set up by the engine: see docs/bench.md, "Labels"); "": as named.
  std::string path_label;
  // aio2 engines: requests of the path probe (after the window, on the
  // cell's context) by the path their executor attribute reported.
  std::array<uint64_t, kPathKinds> paths{};
  // liburing and libaio: requests of the submit probe (after the window), and
  // how many of them had completed when the submitting call returned.
  uint64_t probed = 0, in_submit = 0;
};

// A completion, as an engine hands it to the loop.
struct completion {
  unsigned slot;
  int64_t res;
};

// One workload on one engine for one window: the operations, their buffers,
// verification and the clock. Engines drive it: begin(i) gives slot i its next
// operation, stamp(i, t) records its submission, complete(i, res, t) checks and
// records its completion and says whether the slot goes on.
class cell {
 public:
  cell(const bench_env &env, workload wl, engine en, const attr_set *attrs, uint64_t seed,
       cell_result &out);
  ~cell();
  cell(const cell &) = delete;
  cell &operator=(const cell &) = delete;

  const char *engine_name() const { return name(en_); }
  workload wl() const { return wl_; }
  engine en() const { return en_; }
  const bench_env &env() const { return env_; }
  const attr_set *attrs() const { return attrs_; }
  cell_result &out() { return out_; }
  unsigned qd() const { return qd_; }
  // The descriptor this cell's operations use (slot: for --posix-aio-dup-fds).
  int fd() const { return fd_; }
  int posix_fd(unsigned slot) const;

  // The warm-up starts now, then the window: engines call it once their
  // context, ring or loop is set up, just before the first submission.
  void start_clock();
  // Slot i takes the workload's next operation (a write's buffer is filled).
  const op &begin(unsigned i);
  const op &op_of(unsigned i) const { return slots_[i].o; }
  unsigned char *buf(unsigned i) { return bufs_ + static_cast<size_t>(i) * kBlock; }
  void stamp(unsigned i, int64_t t) { slots_[i].t_sub = t; }
  // Slot i completed with `res` (-errno on failure), reaped at `t`: checks
  // it, records it; returns whether the slot submits another operation. The
  // first completion inside the window and the first after it each take a
  // getrusage sample (cpu_us/op and ctxsw/op are their difference).
  bool complete(unsigned i, int64_t res, int64_t t);
  // The CPU time and context switches between the two samples (0 before).
  double window_cpu_us() const;
  double window_ctxsw() const;
  // The engine reaped a batch at `t`.
  void batch(int64_t t) {
    if (t >= start_ && t < end_) out_.reaps++;
  }
  // Nothing completed for the stall timeout: fails.
  [[noreturn]] void stalled(unsigned inflight) const;
  // At the end: every slot completed.
  void check_drained() const;

  static constexpr int64_t kStallNs = 10'000'000'000;  // no completion for 10 s: give up

 private:
  struct slot_state {
    op o;
    int64_t t_sub = 0;
    bool busy = false;
  };
  const bench_env &env_;
  workload wl_;
  engine en_;
  const attr_set *attrs_;
  cell_result &out_;
  const bench_file *file_;
  unsigned qd_;
  int fd_;
  int64_t start_, end_;
  uint64_t rng_;
  unsigned writes_since_fsync_ = 0;
  std::vector<slot_state> slots_;
  int ru_taken_ = 0;     // getrusage samples taken: 0, 1 (window open) or 2
  rusage ru_[2]{};       // at the window's first completion, and after it
  unsigned char *bufs_ = nullptr;  // qd_ blocks, 4096-aligned (O_DIRECT)
  std::vector<int> dups_;          // posix_aio with --posix-aio-dup-fds: one per slot
};

// The engines: each runs one cell to its end (the window closes, every
// request in flight completes). run_cell picks one and measures around it.
void run_aio2(cell &c);
void run_liburing(cell &c);
void run_libaio(cell &c);
void run_posix_aio(cell &c);
void run_libuv(cell &c);
void run_sync(cell &c);
void run_cell(cell &c);

// The engines' loops for requests submitted and reaped in batches. E has
//   void prep(unsigned slot, const op &o, unsigned char *buf);  queue one
//   void submit();                          send what prep queued (may defer)
//   unsigned reap(completion *out, unsigned max);  wait for >= 1 (0: stalled)
// After the window, probe_submit runs rounds of the workload's requests
// (kProbeRequests at least, one round of qd at a time) and counts how many
// had completed when the engine's submitting call returned: E also has
//   unsigned submit_and_count();  submit what prep queued, without waiting;
//                                 returns how many have completed already
inline constexpr unsigned kProbeRequests = 64;
template <typename E>
void probe_submit(cell &c, E &eng) {
  const unsigned qd = c.qd();
  std::vector<completion> done(qd);
  for (unsigned probed = 0; probed < kProbeRequests; probed += qd) {
    for (unsigned i = 0; i < qd; i++) eng.prep(i, c.begin(i), c.buf(i));
    c.out().in_submit += eng.submit_and_count();
    c.out().probed += qd;
    for (unsigned left = qd; left;) {
      const unsigned n = eng.reap(done.data(), left);
      if (n == 0) c.stalled(left);
      for (unsigned k = 0; k < n; k++) c.complete(done[k].slot, done[k].res, bench_util::now_ns());
      left -= n;
    }
  }
  c.check_drained();
}

// Completed slots are refilled and submitted together, once per reap. Every
// request is stamped on its own, just before it is prepared (and, for
// engines whose prep submits, submitted), and every completion just before
// it is checked: one clock reading per request at each end, as the libuv and
// sync loops do.
template <typename E>
void run_batched(cell &c, E &eng) {
  const unsigned qd = c.qd();
  std::vector<unsigned> pending(qd);  // slots begun and not yet submitted
  std::vector<completion> done(qd);
  unsigned npending = 0, inflight = 0;
  auto flush = [&] {
    for (unsigned k = 0; k < npending; k++) {
      const unsigned i = pending[k];
      c.stamp(i, bench_util::now_ns());
      eng.prep(i, c.op_of(i), c.buf(i));
    }
    eng.submit();
    inflight += npending;
    npending = 0;
  };
  c.start_clock();
  for (unsigned i = 0; i < qd; i++) {
    c.begin(i);
    pending[npending++] = i;
  }
  flush();
  while (inflight) {
    const unsigned n = eng.reap(done.data(), qd);
    if (n == 0) c.stalled(inflight);
    c.batch(bench_util::now_ns());
    for (unsigned k = 0; k < n; k++) {
      inflight--;
      if (c.complete(done[k].slot, done[k].res, bench_util::now_ns())) {
        c.begin(done[k].slot);
        pending[npending++] = done[k].slot;
      }
    }
    if (npending) flush();
  }
  c.check_drained();
}

// Probes: "" when the engine can run here, else why not.
std::string probe_aio2(engine e, bool *uses_uring);
std::string probe_liburing();
// liburing_tuned: "" when it can run; *flags: the setup flags this kernel takes.
std::string probe_liburing_tuned(std::string *flags);
std::string probe_libaio();
// Whether kernel AIO accepts IOCB_CMD_FSYNC on `fd`: "" or why not.
std::string probe_libaio_fsync(int fd);
// Releases what an engine keeps for the process (libuv's loop).
void libuv_shutdown();

// ---------------------------------------------------------------------------
// Rows and reports

// One row of the table: a workload on an engine with an attribute set, over
// every repetition.
struct row {
  workload wl;
  engine en;
  int attrs = -1;      // index into the attribute sets; -1: not an aio2 engine
  bool na = false;     // not applicable: no measurement, `note` says why
  std::string note;    // a label for the table and the JSON
  std::vector<double> ops, p50, p99, cpu, cs;  // one per repetition
  std::vector<uint64_t> hist;                   // latency histogram, all repetitions
  std::vector<std::array<uint64_t, 6>> attr_status;
  std::array<uint64_t, kPathKinds> paths{};  // aio2: the path probes of every repetition
  uint64_t probed = 0, in_submit = 0;         // liburing, libaio: the submit probes
  std::string path_label;                    // the cells' labels, distinct ones joined by "; "
  double ops_med() const { return bench_util::median(ops); }
};

// Log-spaced latency histogram: kHistPerDecade bins per decade from
// kHistMinNs up; the last bin holds everything above.
inline constexpr unsigned kHistPerDecade = 20;
inline constexpr double kHistMinNs = 100;
inline constexpr unsigned kHistBins = 8 * kHistPerDecade + 1;  // 100 ns .. 10 s
void hist_add(std::vector<uint64_t> &hist, const std::vector<uint32_t> &lat_ns);
// Upper edge of bin k, in microseconds.
double hist_edge_us(unsigned k);

struct report_input {
  const std::vector<row> *rows;
  const std::vector<attr_set> *attr_sets;
  std::vector<workload> workloads;
  unsigned qd;
  unsigned reps;
};

// The table, on stdout.
void print_table(const report_input &in);
// The files; each writes the whole file or fails with one line. Each
// output stays registered for removal at exit (cleanup_add), so that a
// failure in a later one leaves none behind: the caller keeps them
// (cleanup_remove) once all are written.
void write_json(const report_input &in, const std::string &path);
void write_csv(const report_input &in, const std::string &path);
// `tmp_dir` holds gnuplot's data file and script while it runs.
void write_plot(const report_input &in, const std::string &path, const std::string &tmp_dir);
// Whether --plot's file name ends in .png or .svg (any case).
bool plot_format_ok(const std::string &path);

// A gnuplot single-quoted string ('' stands for ').
std::string gp_quote(const std::string &s);
// Runs gnuplot on `script`; returns "" or the first line it printed on failure.
std::string run_gnuplot(const std::string &script);

// --scale: the curves of aio2 alone (scale.cc says how each is measured).
struct scale_options {
  uint64_t max_inflight = 1u << 20;  // the in-flight curve: 1, 4, 16 ... this
  unsigned max_threads = 0;          // submitters and reapers: 1, 2, 4 ... this
  uint64_t ops = 200'000;            // requests per point of those two
};
// Prints the curves; with plot_dir, writes inflight, threads and reapers
// .csv and .svg files into it (each registered for removal until the
// caller keeps them), and appends their paths to *written.
void run_scale(const bench_env &env, const scale_options &o, const std::string &plot_dir,
               std::vector<std::string> *written);

// A row's values as the JSON and CSV give them.
double ratio_vs_liburing(const report_input &in, const row &r);  // 0: none
double ratio_vs(const report_input &in, const row &r, engine peer);  // 0: none
// The paths the row's aio2 requests reported ("" for other engines), and the
// labels: what the measured path or the engine's setup says beyond the name.
std::string path_text(const row &r);
std::string path_note(const row &r);
std::string attr_status_text(const row &r, const std::vector<attr_set> &sets);

// ---------------------------------------------------------------------------
// Paths removed when the process exits before it is done (also on SIGINT,
// SIGTERM, SIGHUP): temporary files, and outputs being written.
void cleanup_install();
void cleanup_add(const std::string &path);
void cleanup_remove(const std::string &path);  // keep it after all

}  // namespace aio2_bench
