// SPDX-License-Identifier: MIT
// `aio2 bench`: options, the files, which engines can run, the repetitions,
// progress, and the reports. docs/bench.md describes the method.

#include <aio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "bench_main.h"

namespace aio2_bench {

using bench_util::die;

namespace {

constexpr const char kHelp[] =
    "usage: aio2 bench [OPTIONS]\n"
    "\n"
    "Compares aio2 with the other ways a Linux program does asynchronous I/O, side\n"
    "by side in one run: the same file, the same queue depth, the same requests.\n"
    "Prints a table per workload with each engine's requests per second, median and\n"
    "99th-percentile latency, CPU time and context switches per request, and its\n"
    "ratio to raw liburing with default and with tuned settings, and for aio2 the\n"
    "path its requests took (measured). docs/bench.md tells more.\n"
    "\n"
    "Engines (--engines; default all, where they can run):\n"
    "  aio2        aio2, context policy AUTO (inline when the call cannot block,\n"
    "              else io_uring when aio2 uses it, else its thread pool)\n"
    "  aio2_pool   aio2, policy POOL: its system-call thread pool\n"
    "  aio2_uring  aio2, policy URING: needs a context with AIO2_FEAT_URING\n"
    "              (skipped with a note by default; an error when asked for)\n"
    "  aio2_no_uring  aio2, AUTO on a context set up with AIO2_SETUP_NO_URING:\n"
    "              what aio2 does where io_uring is forbidden (inline and pool)\n"
    "  aio2_registered  aio2, AUTO, with the file registered (aio2_register_fds):\n"
    "              the same paths, no fcntl per call or per request with attributes\n"
    "  liburing    io_uring through liburing, default setup: vs_liburing's base\n"
    "  liburing_tuned  the same with COOP_TASKRUN|TASKRUN_FLAG, SINGLE_ISSUER|\n"
    "              DEFER_TASKRUN and a registered ring fd, plus a registered file\n"
    "              and buffers for O_DIRECT: vs_tuned's base\n"
    "  libaio      Linux kernel AIO (io_submit / io_getevents); on buffered files\n"
    "              the kernel runs reads and writes inside io_submit (labelled)\n"
    "  posix_aio   glibc POSIX AIO (aio_read / aio_write / aio_fsync, aio_suspend)\n"
    "  libuv       libuv's thread pool (uv_fs_read / uv_fs_write / uv_fs_fsync;\n"
    "              uv_queue_work for getppid)\n"
    "  sync        plain pread / pwrite / fsync / getppid, one at a time\n"
    "  sync_nowait the same, each read first as preadv2(RWF_NOWAIT) and, when\n"
    "              that is short or answers EAGAIN (or EOPNOTSUPP), as pread:\n"
    "              the floor of any path that tries a read without blocking\n"
    "              first, as aio2's inline path does\n"
    "\n"
    "Workloads (--workloads; default all):\n"
    "  cached_randread_qd1   4 KiB reads at random 4 KiB-aligned offsets of a file\n"
    "                        the page cache holds, one request in flight\n"
    "  cached_randread_qd32  the same with --qd (32) in flight\n"
    "  direct_randread_qd32  4 KiB O_DIRECT reads at random offsets, --qd in flight\n"
    "                        (the device; 4 KiB-aligned buffers)\n"
    "  syscall_getppid       getppid(), --qd in flight: the machinery alone. liburing\n"
    "                        runs IORING_OP_NOP (no system call); posix_aio and\n"
    "                        libaio cannot: n/a\n"
    "  mixed_rw_fsync        --qd in flight of: 70% 4 KiB random reads, 30% 4 KiB\n"
    "                        random writes, and an fsync after every 32 writes,\n"
    "                        on a temporary file of its own (never --file)\n"
    "\n"
    "Options:\n"
    "  --quick              a short run: --size 64M --duration 0.3 --warmup 0.05\n"
    "                       --reps 2 (the whole default matrix in under a minute);\n"
    "                       options given explicitly still win\n"
    "  --file PATH          read this existing file (opened read-only, never\n"
    "                       written) instead of a temporary one\n"
    "  --size N             bytes of the file, with K, M or G (powers of 1024): from\n"
    "                       1M to 64G, a multiple of 4K. Default 256M (--quick 64M);\n"
    "                       with --file, its first N bytes (default: all of it)\n"
    "  --dir DIR            where temporary files go; default: the directory of\n"
    "                       --file when given, else $TMPDIR when set, else the\n"
    "                       current directory. Each is unlinked as soon as it is open\n"
    "  --qd N               requests in flight in the *_qd32, getppid and mixed\n"
    "                       workloads, 1 to 1024 (default 32; names stay the same,\n"
    "                       the rows' qd says the depth)\n"
    "  --duration S         measured window of each cell, seconds (default 2)\n"
    "  --warmup S           warm-up before each window, not counted (default 0.25)\n"
    "  --reps N             repetitions of the whole matrix, 1 to 1000 (default 3)\n"
    "  --engines LIST       engines, comma-separated\n"
    "  --workloads LIST     workloads, comma-separated\n"
    "  --attrs LIST         attributes on every request of the aio2 engines,\n"
    "                       comma-separated: timing, tag, deadline, executor, cache,\n"
    "                       ioprio, rusage; 'all' for the seven, 'none' for no\n"
    "                       attribute. Repeatable: each --attrs is one set, and each\n"
    "                       aio2 engine runs once per set (rows differ in attrs),\n"
    "                       e.g. --attrs none --attrs timing,cache. Default: none\n"
    "  --workers N          threads of each thread pool, 1 to 1024: aio2's\n"
    "                       bounded_workers, libuv's UV_THREADPOOL_SIZE, glibc's\n"
    "                       aio_threads (default 4 x the CPUs, aio2's own default)\n"
    "  --aio2-no-hint       aio2 file requests without AIO2_IOCB_BOUNDED (aio2 then\n"
    "                       classifies the descriptor itself)\n"
    "  --posix-aio-dup-fds  a dup() of the descriptor for each posix_aio slot (glibc\n"
    "                       runs the requests of one descriptor one at a time)\n"
    "  --json FILE          write the rows as a JSON array of objects: workload,\n"
    "                       engine, attrs, qd, status (ok or n/a), note, ops_per_s,\n"
    "                       p50_us, p99_us, vs_liburing, cpu_us_per_op, ctxsw_per_op,\n"
    "                       reps, ops_per_s_each, attr_status; n/a rows have null\n"
    "                       numbers\n"
    "  --csv FILE           the same rows and columns as CSV, with a header line\n"
    "  --plot FILE|DIR      latency distributions (CDF, log x axis), one panel per\n"
    "                       workload; PNG or SVG by the name's extension; needs\n"
    "                       gnuplot (Debian: gnuplot-nox). A name without an\n"
    "                       extension (or an existing directory) is a directory,\n"
    "                       created when missing: latency.svg goes there, and with\n"
    "                       --scale inflight, threads and reapers .svg and .csv\n"
    "  --scale              after the table, aio2's scale curves: ns and bytes per\n"
    "                       request against requests in flight, throughput against\n"
    "                       submitting threads on one context, and against reapers\n"
    "  --scale-inflight N   the in-flight curve's largest point, 1 to 16777216\n"
    "                       (default 1048576; points 1, 4, 16 ... N)\n"
    "  --scale-threads N    the threads and reapers curves' largest point, 1 to 1024\n"
    "                       (default 4 x the CPUs; points 1, 2, 4 ... N)\n"
    "  --scale-ops N        requests per point of those two, 100 to 1000000000\n"
    "                       (default 200000)\n"
    "  -h, --help           this text\n"
    "\n"
    "Method: each cell (workload x engine x attribute set) runs a warm-up, then the\n"
    "measured window; when the window closes nothing more is submitted and what is in\n"
    "flight is drained, not counted. ops/s = requests reaped inside the window / its\n"
    "length. Latency = the clock when the request's completion was reaped minus the\n"
    "clock just before it was submitted, one reading per request at each end, for\n"
    "every engine alike; p50 and p99 come from all latencies of the window. CPU per\n"
    "request: getrusage across the window only (setup and teardown outside). A repetition runs\n"
    "every cell once, the engines of a workload in turn, the first one rotating with\n"
    "the repetition; the table gives medians over the repetitions. Every read's first\n"
    "8 bytes are checked against the file's, every result against what the call must\n"
    "return; a mismatch stops the run. The file is written with a pattern, fsync'ed,\n"
    "evicted from the page cache (when direct_randread_qd32 runs) and read once whole\n"
    "(when a cached workload runs).\n"
    "\n"
    "Path: after each aio2 cell, a few more of its requests carry the executor\n"
    "attribute; the path column gives the paths they reported, and a row whose path\n"
    "is not what its engine's name says is labelled in the note.\n"
    "\n"
    "Output: a header (CPUs, kernel, file, file system, settings), then one block per\n"
    "workload. Progress goes to stderr when it is a terminal. Engines that cannot run\n"
    "here are skipped with a note, or are an error when --engines names them.\n"
    "\n"
    "Exit status: 0 done; 1 a failure (one line on stderr); 2 bad arguments.\n";

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMinSize = kMiB;
constexpr uint64_t kMaxSize = 64ull << 30;
constexpr unsigned kMaxQD = 1024;

struct options {
  std::string file, dir, json, csv, plot;
  bool plot_dir = false;  // --plot names a directory
  bool scale = false;
  scale_options sc;
  std::optional<uint64_t> size;
  std::optional<double> duration, warmup;
  std::optional<unsigned> reps;
  unsigned qd = 32;
  unsigned workers = 0;  // 0: 4 x CPUs
  bool quick = false;
  bool aio2_hint = true;
  bool posix_dup = false;
  bool engines_given = false, workloads_given = false;
  std::vector<engine> engines;
  std::vector<workload> workloads;
  std::vector<attr_set> attr_sets;
  bool help = false;
};

[[noreturn]] void bad(const std::string &msg) { bench_util::usage(msg); }

__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: note: ", bench_util::g_prog);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

std::string size_text(uint64_t b) {
  char t[32];
  if (b % (1ull << 30) == 0) std::snprintf(t, sizeof t, "%" PRIu64 " GiB", b >> 30);
  else if (b % kMiB == 0) std::snprintf(t, sizeof t, "%" PRIu64 " MiB", b >> 20);
  else std::snprintf(t, sizeof t, "%" PRIu64 " KiB", b >> 10);
  return t;
}

// N, NK, NM, NG (also NKiB, NMB ...), powers of 1024.
uint64_t parse_size(const char *v) {
  const std::string what = std::string("bad value for --size: ") + v +
                           " (from 1M to 64G, a multiple of 4K)";
  char *end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (errno || end == v || v[0] == '-') bad(what);
  std::string suffix(end);
  for (char &ch : suffix) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (suffix.size() > 1 && (suffix.substr(1) == "IB" || suffix.substr(1) == "B"))
    suffix = suffix.substr(0, 1);
  unsigned shift = 0;
  if (suffix == "K") shift = 10;
  else if (suffix == "M") shift = 20;
  else if (suffix == "G") shift = 30;
  else if (!suffix.empty() && suffix != "B") bad(what);
  if (n > (kMaxSize >> shift)) bad(what);
  const uint64_t bytes = static_cast<uint64_t>(n) << shift;
  if (bytes < kMinSize || bytes % kBlock) bad(what);
  return bytes;
}

template <typename T, size_t N>
std::vector<T> parse_names(const char *opt, const char *kind, const std::string &v, const T (&all)[N]) {
  std::vector<bool> want(N, false);
  size_t pos = 0;
  do {
    const size_t comma = v.find(',', pos);
    const std::string item = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? v.size() + 1 : comma + 1;
    bool found = false;
    for (size_t k = 0; k < N; k++)
      if (item == name(all[k])) want[k] = found = true;
    if (!found) {
      std::string known;
      for (T x : all) known += (known.empty() ? "" : ", ") + std::string(name(x));
      bad(std::string("unknown ") + kind + " '" + item + "' in " + opt + " (known: " + known + ")");
    }
  } while (pos <= v.size());
  std::vector<T> out;  // in the canonical order
  for (size_t k = 0; k < N; k++)
    if (want[k]) out.push_back(all[k]);
  return out;
}

attr_set parse_attrs(const std::string &v) {
  attr_set as;
  if (v == "none") return as;
  size_t pos = 0;
  do {
    const size_t comma = v.find(',', pos);
    const std::string item = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? v.size() + 1 : comma + 1;
    std::vector<uint16_t> ids;
    if (item == "all") ids = all_attr_ids();
    else if (const uint16_t id = attr_id(item)) ids.push_back(id);
    else if (item == "none") bad("--attrs: 'none' stands alone, not in a list");
    else
      bad("unknown attribute '" + item + "' in --attrs (known: timing, tag, deadline, executor, "
          "cache, ioprio, rusage, all, none)");
    for (uint16_t id : ids)
      if (std::find(as.ids.begin(), as.ids.end(), id) == as.ids.end()) as.ids.push_back(id);
  } while (pos <= v.size());
  for (uint16_t id : as.ids) as.label += (as.label.empty() ? "" : ",") + std::string(attr_name(id));
  return as;
}

options parse(int argc, char **argv) {
  options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto val = [&]() -> const char * {
      // A value that is empty or looks like the next option is missing.
      if (i + 1 >= argc || argv[i + 1][0] == '\0' || std::strncmp(argv[i + 1], "--", 2) == 0)
        bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--quick") o.quick = true;
    else if (a == "--file") o.file = val();
    else if (a == "--size") o.size = parse_size(val());
    else if (a == "--dir") o.dir = val();
    else if (a == "--qd") o.qd = bench_util::parse_uint("--qd", val(), 1, kMaxQD);
    else if (a == "--duration") o.duration = bench_util::parse_seconds("--duration", val(), 0.01);
    else if (a == "--warmup") o.warmup = bench_util::parse_seconds("--warmup", val(), 0);
    else if (a == "--reps") o.reps = bench_util::parse_uint("--reps", val(), 1, 1000);
    else if (a == "--workers") o.workers = bench_util::parse_uint("--workers", val(), 1, 1024);
    else if (a == "--engines") {
      o.engines = parse_names("--engines", "engine", val(), kEngines);
      o.engines_given = true;
    } else if (a == "--workloads") {
      o.workloads = parse_names("--workloads", "workload", val(), kWorkloads);
      o.workloads_given = true;
    } else if (a == "--attrs") {
      attr_set as = parse_attrs(val());
      bool dup = false;
      for (const attr_set &x : o.attr_sets) dup = dup || x.label == as.label;
      if (!dup) o.attr_sets.push_back(std::move(as));
    } else if (a == "--aio2-no-hint") o.aio2_hint = false;
    else if (a == "--posix-aio-dup-fds") o.posix_dup = true;
    else if (a == "--json") o.json = val();
    else if (a == "--csv") o.csv = val();
    else if (a == "--plot") o.plot = val();
    else if (a == "--scale") o.scale = true;
    else if (a == "--scale-inflight")
      o.sc.max_inflight = bench_util::parse_uint("--scale-inflight", val(), 1, 1u << 24);
    else if (a == "--scale-threads") o.sc.max_threads = bench_util::parse_uint("--scale-threads", val(), 1, 1024);
    else if (a == "--scale-ops") o.sc.ops = bench_util::parse_uint("--scale-ops", val(), 100, 1'000'000'000);
    else bad("unknown argument '" + a + "' (see 'aio2 bench --help')");
  }
  if (!o.engines_given) o.engines.assign(std::begin(kEngines), std::end(kEngines));
  if (!o.workloads_given) o.workloads.assign(std::begin(kWorkloads), std::end(kWorkloads));
  if (o.attr_sets.empty()) o.attr_sets.push_back(attr_set{});
  return o;
}

std::string dir_of(const std::string &path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string shown_path(const std::string &p) {
  char *real = realpath(p.c_str(), nullptr);
  std::string out = real ? real : p;
  std::free(real);
  return out;
}

// An output file must be writable where it goes: checked before the run.
void check_output(const char *opt, const std::string &path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) die("%s %s: is a directory", opt, path.c_str());
    if (access(path.c_str(), W_OK) != 0) die("%s %s: %s", opt, path.c_str(), std::strerror(errno));
    return;
  }
  const std::string dir = dir_of(path);
  if (access(dir.c_str(), W_OK | X_OK) != 0)
    die("%s %s: cannot write in %s: %s", opt, path.c_str(), dir.c_str(), std::strerror(errno));
}

bool in_path(const char *prog) {
  const char *path = std::getenv("PATH");
  std::string p = path && *path ? path : "/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= p.size()) {
    const size_t colon = p.find(':', pos);
    std::string dir = p.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    pos = colon == std::string::npos ? p.size() + 1 : colon + 1;
    if (dir.empty()) dir = ".";
    if (access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string fs_of(int fd) {
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) != 0) return "unknown";
  return bench_util::fs_name(static_cast<long>(sfs.f_type));
}

void check_space(const std::string &dir, uint64_t bytes) {
  struct statvfs v {};
  if (statvfs(dir.c_str(), &v) != 0) die("%s: %s", dir.c_str(), std::strerror(errno));
  const uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  if (avail < bytes + 64 * kMiB)
    die("not enough free space in %s for %s of temporary files (%s free)", dir.c_str(),
        size_text(bytes).c_str(), size_text(avail / kMiB * kMiB).c_str());
}

// The first 8 bytes of block b of a temporary file.
uint64_t pattern(uint64_t b) { return (b + 1) * 0x9e3779b97f4a7c15ull ^ 0x6169326265636e68ull; }

bool has(const std::vector<workload> &v, workload w) {
  return std::find(v.begin(), v.end(), w) != v.end();
}

void drop(std::vector<workload> &v, workload w) { v.erase(std::remove(v.begin(), v.end(), w), v.end()); }

// Progress on stderr, on a terminal only: one line rewritten in place.
class progress {
 public:
  progress(unsigned total, double cell_s) : tty_(isatty(STDERR_FILENO) == 1), total_(total), cell_s_(cell_s) {}
  void show(unsigned done, unsigned rep, unsigned reps, const row &r, const std::string &attrs) {
    if (!tty_) return;
    const double left = (total_ - done) * cell_s_;
    std::fprintf(stderr, "\r\033[K[%u/%u] rep %u/%u  %s  %s%s%s%s  about %.0f s left", done + 1,
                 total_, rep + 1, reps, name(r.wl), name(r.en), attrs.empty() ? "" : " [",
                 attrs.c_str(), attrs.empty() ? "" : "]", left);
    std::fflush(stderr);
  }
  void clear() {
    if (tty_) std::fputs("\r\033[K", stderr);
  }

 private:
  bool tty_;
  unsigned total_;
  double cell_s_;
};

// A file with its expected bytes: the temporary pattern file (`pattern` is
// set) or the user's.
struct opened_file {
  bench_file f;
  std::string where;  // for the header
  std::string fs;
  bool temporary = false;  // created here and unlinked at once
  double resident = -1;
};

int main_impl(const char *prog, int argc, char **argv) {
  bench_util::g_prog = prog;
  bench_util::g_usage = "";  // errors are one line
  options o = parse(argc, argv);
  if (o.help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const uint64_t default_size = o.quick ? 64 * kMiB : 256 * kMiB;
  const double duration = o.duration.value_or(o.quick ? 0.3 : 2.0);
  const double warmup = o.warmup.value_or(o.quick ? 0.05 : 0.25);
  const unsigned reps = o.reps.value_or(o.quick ? 2 : 3);
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  const unsigned workers = o.workers ? o.workers : 4 * cpus;

  // Outputs, before anything runs: a bad path fails now, not after the run.
  if (!o.json.empty()) check_output("--json", o.json);
  if (!o.csv.empty()) check_output("--csv", o.csv);
  if (!o.plot.empty()) {
    struct stat st {};
    const std::string last = o.plot.substr(o.plot.rfind('/') == std::string::npos ? 0 : o.plot.rfind('/') + 1);
    if (stat(o.plot.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      o.plot_dir = true;
      if (access(o.plot.c_str(), W_OK | X_OK) != 0) die("--plot %s: %s", o.plot.c_str(), std::strerror(errno));
    } else if (!last.empty() && last.find('.') == std::string::npos) {
      if (stat(o.plot.c_str(), &st) == 0) die("--plot %s: not a directory", o.plot.c_str());
      o.plot_dir = true;
      const std::string parent = dir_of(o.plot);
      if (access(parent.c_str(), W_OK | X_OK) != 0)
        die("--plot %s: cannot create it in %s: %s", o.plot.c_str(), parent.c_str(), std::strerror(errno));
    } else {
      check_output("--plot", o.plot);
      if (!plot_format_ok(o.plot))
        bad("--plot " + o.plot + ": the name must end in .png or .svg, or name a directory");
    }
    if (!in_path("gnuplot")) die("--plot needs gnuplot, which is not installed (Debian: gnuplot-nox)");
  }
  if (o.sc.max_threads == 0) o.sc.max_threads = 4 * cpus;
  cleanup_install();

  // Every pool gets the same number of threads, set before libuv or glibc
  // start theirs.
  const std::string wstr = std::to_string(workers);
  if (setenv("UV_THREADPOOL_SIZE", wstr.c_str(), 1) != 0)
    die("setenv UV_THREADPOOL_SIZE: %s", std::strerror(errno));
  aioinit ai{};
  ai.aio_threads = static_cast<int>(workers);
  ai.aio_num = static_cast<int>(o.qd);
  ai.aio_idle_time = 1;
  aio_init(&ai);

  // Which engines can run here.
  std::vector<engine> engines;
  bool auto_uring = false;
  bool auto_probed = false;
  std::string tuned_flags;  // liburing_tuned: the setup flags this kernel takes
  for (engine e : o.engines) {
    std::string why;
    bool uring = false;
    if (is_aio2(e)) {
      why = probe_aio2(e, &uring);
      if (e == engine::aio2) {
        auto_uring = uring;
        auto_probed = true;
      }
    } else if (e == engine::liburing) {
      why = probe_liburing();
    } else if (e == engine::liburing_tuned) {
      why = probe_liburing();
      if (why.empty()) why = probe_liburing_tuned(&tuned_flags);
    } else if (e == engine::libaio) {
      why = probe_libaio();
    }
    if (why.empty()) engines.push_back(e);
    else if (o.engines_given) die("engine %s cannot run here: %s", name(e), why.c_str());
    else note("skipping engine %s: %s", name(e), why.c_str());
  }
  if (engines.empty()) die("no engine can run here");

  // The files.
  std::vector<workload> workloads = o.workloads;
  const bool want_cached = has(workloads, workload::cached_qd1) || has(workloads, workload::cached_qd32);
  bool want_direct = has(workloads, workload::direct_qd32);
  std::string tmp_dir = o.dir;
  if (tmp_dir.empty()) {
    const char *t = std::getenv("TMPDIR");
    tmp_dir = !o.file.empty() ? dir_of(o.file) : t && *t ? t : ".";
  }
  if (!o.dir.empty()) {
    struct stat st {};
    if (stat(o.dir.c_str(), &st) != 0) die("--dir %s: %s", o.dir.c_str(), std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) die("--dir %s: not a directory", o.dir.c_str());
  }
  const bool tmp_writable = access(tmp_dir.c_str(), W_OK | X_OK) == 0;
  const int tmp_errno = errno;

  opened_file rf;  // the read workloads' file
  uint64_t region = o.size.value_or(default_size);
  const bool want_read = want_cached || want_direct;
  if (!o.file.empty()) {
    rf.f.fd = open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (rf.f.fd < 0) die("cannot open %s: %s", o.file.c_str(), std::strerror(errno));
    struct stat st {};
    if (fstat(rf.f.fd, &st) != 0) die("fstat %s: %s", o.file.c_str(), std::strerror(errno));
    if (!S_ISREG(st.st_mode)) die("%s is not a regular file", o.file.c_str());
    const uint64_t whole = static_cast<uint64_t>(st.st_size) / kBlock * kBlock;
    if (o.size && *o.size > whole)
      die("%s holds %" PRIu64 " bytes, less than --size %s", o.file.c_str(),
          static_cast<uint64_t>(st.st_size), size_text(*o.size).c_str());
    region = o.size.value_or(whole);
    if (region < kMinSize) die("%s is too small: it needs at least 1 MiB", o.file.c_str());
    if (region > kMaxSize) die("%s is larger than 64 GiB: pass --size to use a part of it", o.file.c_str());
    rf.where = shown_path(o.file);
    rf.fs = fs_of(rf.f.fd);
    if (want_direct) {
      rf.f.direct_fd = open(o.file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
      if (rf.f.direct_fd < 0) {
        const std::string why = errno == EINVAL ? "O_DIRECT not supported on " + rf.where + " (" + rf.fs + ")"
                                                : "open " + rf.where + " with O_DIRECT: " + std::strerror(errno);
        if (o.workloads_given) die("%s", why.c_str());
        note("skipping workload %s: %s", name(workload::direct_qd32), why.c_str());
        drop(workloads, workload::direct_qd32);
        want_direct = false;
      }
    }
    // Read it whole: the first 8 bytes of every block, for verification;
    // the page cache holds it afterwards (as far as memory allows).
    rf.f.blocks = region / kBlock;
    if (want_read) {
      rf.f.expected.resize(rf.f.blocks);
      bench_util::read_blocks(rf.f.fd, o.file, region,
                              [&](uint64_t b, uint64_t first) { rf.f.expected[b] = first; });
    }
  } else if (want_read) {
    if (!tmp_writable) die("cannot create temporary files in %s: %s", tmp_dir.c_str(), std::strerror(tmp_errno));
    check_space(tmp_dir, region * (has(workloads, workload::mixed) ? 2 : 1));
    int derr = 0;
    rf.f.fd = bench_util::create_temp_file(tmp_dir, "aio2-bench", want_direct ? O_RDONLY | O_DIRECT : -1,
                                           &rf.f.direct_fd, &derr);
    rf.where = "a temporary file in " + shown_path(tmp_dir);
    rf.temporary = true;
    rf.fs = fs_of(rf.f.fd);
    if (want_direct && rf.f.direct_fd < 0) {
      const std::string why = derr == EINVAL
                                  ? "O_DIRECT not supported on " + shown_path(tmp_dir) + " (" + rf.fs + ")"
                                  : std::string("open with O_DIRECT: ") + std::strerror(derr);
      if (o.workloads_given) die("%s", why.c_str());
      note("skipping workload %s: %s", name(workload::direct_qd32), why.c_str());
      drop(workloads, workload::direct_qd32);
      want_direct = false;
    }
    bench_util::write_pattern_file(rf.f.fd, tmp_dir, region, pattern);
    // Written and fsync'ed: O_DIRECT reads find nothing dirty to write back.
    // Evicted, so they start from a clean slate, then read whole (and
    // checked) when a cached workload needs it warm.
    if (want_direct) posix_fadvise(rf.f.fd, 0, static_cast<off_t>(region), POSIX_FADV_DONTNEED);
    if (want_cached) bench_util::check_pattern_file(rf.f.fd, region, pattern);
    rf.f.blocks = region / kBlock;
    rf.f.pattern = pattern;
    rf.f.expected.resize(rf.f.blocks);
    for (uint64_t b = 0; b < rf.f.blocks; b++) rf.f.expected[b] = pattern(b);
  }
  if (rf.f.fd >= 0) rf.resident = bench_util::resident_percent(rf.f.fd, region);

  // mixed_rw_fsync writes: always into a temporary file of its own.
  opened_file mf;
  std::string libaio_fsync_na;
  if (has(workloads, workload::mixed)) {
    const uint64_t msize = o.size ? *o.size : std::min(region, default_size);
    if (!tmp_writable) {
      const std::string why = "cannot create temporary files in " + tmp_dir + ": " + std::strerror(tmp_errno);
      if (o.workloads_given) die("%s", why.c_str());
      note("skipping workload %s: %s", name(workload::mixed), why.c_str());
      drop(workloads, workload::mixed);
    } else {
      if (!o.file.empty() || !want_read) check_space(tmp_dir, msize);
      mf.f.fd = bench_util::create_temp_file(tmp_dir, "aio2-bench-mixed");
      bench_util::write_pattern_file(mf.f.fd, tmp_dir, msize, pattern);
      bench_util::check_pattern_file(mf.f.fd, msize, pattern);
      mf.f.blocks = msize / kBlock;
      mf.f.pattern = pattern;
      mf.f.expected.resize(mf.f.blocks);
      for (uint64_t b = 0; b < mf.f.blocks; b++) mf.f.expected[b] = pattern(b);
      mf.where = "a temporary file in " + shown_path(tmp_dir);
      mf.temporary = true;
      mf.fs = fs_of(mf.f.fd);
      if (std::find(engines.begin(), engines.end(), engine::libaio) != engines.end())
        libaio_fsync_na = probe_libaio_fsync(mf.f.fd);
    }
  }
  if (workloads.empty()) die("no workload can run here");

  bench_env env;
  env.read_file = &rf.f;
  env.mixed_file = &mf.f;
  env.qd = o.qd;
  env.workers = workers;
  env.aio2_hint = o.aio2_hint;
  env.posix_dup_fds = o.posix_dup;
  env.warmup_ns = static_cast<int64_t>(warmup * 1e9);
  env.duration_ns = static_cast<int64_t>(duration * 1e9);
  env.ppid = static_cast<long>(getppid());

  // The rows: one per workload x engine, and per attribute set for aio2.
  std::vector<row> rows;
  for (workload wl : workloads)
    for (engine en : engines) {
      const int nsets = is_aio2(en) ? static_cast<int>(o.attr_sets.size()) : 0;
      for (int k = is_aio2(en) ? 0 : -1; k < nsets; k++) {
        row r{};
        r.wl = wl;
        r.en = en;
        r.attrs = k;
        if (wl == workload::getppid && en == engine::posix_aio) {
          r.na = true;
          r.note = "POSIX AIO cannot run getppid";
        } else if (wl == workload::getppid && en == engine::libaio) {
          r.na = true;
          r.note = "kernel AIO cannot run getppid";
        } else if (wl == workload::mixed && en == engine::libaio && !libaio_fsync_na.empty()) {
          r.na = true;
          r.note = libaio_fsync_na;
        } else if (wl == workload::getppid && is_liburing(en)) {
          r.note = "IORING_OP_NOP: no system call";
        } else if (is_sync(en) && deep(wl)) {
          r.note = "one call at a time (QD 1)";
        } else if (en == engine::posix_aio && deep(wl) && !o.posix_dup) {
          r.note = "glibc: one request per descriptor at a time";
        }
        rows.push_back(std::move(r));
      }
    }

  // The header.
  utsname u{};
  uname(&u);
  std::vector<size_t> runnable;
  for (size_t i = 0; i < rows.size(); i++)
    if (!rows[i].na) runnable.push_back(i);
  const double cell_s = duration + warmup;
  const unsigned total = static_cast<unsigned>(runnable.size()) * reps;
  std::printf("aio2 bench: %u CPUs, %s %s %s\n", cpus, u.sysname, u.release, u.machine);
  if (rf.f.fd >= 0)
    std::printf("  file: %s (%s)%s, %s used; %.0f%% in the page cache before the runs%s\n",
                rf.where.c_str(), rf.fs.c_str(), rf.temporary ? ", unlinked" : "",
                size_text(region).c_str(), rf.resident,
                rf.fs == "tmpfs" || rf.fs == "ramfs" ? " (memory only: no device behind O_DIRECT)" : "");
  if (mf.f.fd >= 0)
    std::printf("  mixed_rw_fsync file: %s (%s), unlinked, %s\n", mf.where.c_str(), mf.fs.c_str(),
                size_text(mf.f.blocks * kBlock).c_str());
  std::printf("  queue depth %u (cached_randread_qd1 and sync: 1); %.2f s window after %.2f s "
              "warm-up per cell; %u repetition%s, engines rotating; about %.0f s\n",
              o.qd, duration, warmup, reps, reps == 1 ? "" : "s", total * cell_s);
  std::printf("  threads per pool: %u (aio2 bounded_workers, libuv UV_THREADPOOL_SIZE, glibc "
              "aio_threads)",
              workers);
  if (auto_probed) std::printf("; aio2 (AUTO) uses io_uring: %s", auto_uring ? "yes" : "no");
  std::printf("\n");
  if (!tuned_flags.empty())
    std::printf("  liburing_tuned: setup flags %s, ring fd registered; O_DIRECT: file and "
                "buffers registered\n",
                tuned_flags.c_str());
  std::string sets;
  for (const attr_set &as : o.attr_sets)
    sets += (sets.empty() ? "" : " | ") + (as.label.empty() ? std::string("none") : as.label);
  std::printf("  aio2 attributes: %s%s\n", sets.c_str(),
              o.aio2_hint ? "" : "; file requests without AIO2_IOCB_BOUNDED");
  std::fflush(stdout);

  // The repetitions.
  progress bar(total, cell_s);
  std::vector<size_t> hint(rows.size(), 1u << 20);
  unsigned done = 0;
  for (unsigned rep = 0; rep < reps; rep++) {
    for (workload wl : workloads) {
      std::vector<size_t> cells;
      for (size_t i : runnable)
        if (rows[i].wl == wl) cells.push_back(i);
      const uint64_t seed = 0x9e3779b97f4a7c15ull * (rep + 1) + static_cast<uint64_t>(wl) * 7919;
      for (size_t k = 0; k < cells.size(); k++) {
        row &r = rows[cells[(k + rep) % cells.size()]];
        const attr_set *as = r.attrs < 0 ? nullptr : &o.attr_sets[static_cast<size_t>(r.attrs)];
        bar.show(done, rep, reps, r, as ? (as->label.empty() ? "none" : as->label) : "");
        cell_result res;
        size_t &h = hint[static_cast<size_t>(&r - rows.data())];
        res.lat_ns.reserve(h);
        {
          cell c(env, wl, r.en, as, seed, res);
          run_cell(c);
        }
        h = static_cast<size_t>(static_cast<double>(res.ops) * 1.25) + 1024;
        r.ops.push_back(res.ops_per_s);
        r.p50.push_back(res.p50_us);
        r.p99.push_back(res.p99_us);
        r.cpu.push_back(res.cpu_us_per_op);
        r.cs.push_back(res.ctxsw_per_op);
        hist_add(r.hist, res.lat_ns);
        for (size_t p = 0; p < r.paths.size(); p++) r.paths[p] += res.paths[p];
        r.probed += res.probed;
        r.in_submit += res.in_submit;
        if (!res.path_label.empty() && r.path_label.find(res.path_label) == std::string::npos)
          r.path_label += (r.path_label.empty() ? "" : "; ") + res.path_label;
        if (r.attr_status.size() != res.attr_status.size()) r.attr_status.assign(res.attr_status.size(), {});
        for (size_t a = 0; a < res.attr_status.size(); a++)
          for (size_t s = 0; s < res.attr_status[a].size(); s++) r.attr_status[a][s] += res.attr_status[a][s];
        done++;
      }
    }
  }
  bar.clear();

  report_input in{&rows, &o.attr_sets, workloads, o.qd, reps};
  print_table(in);
  if (!o.json.empty()) write_json(in, o.json);
  if (!o.csv.empty()) write_csv(in, o.csv);
  std::string latency_plot = o.plot;
  if (o.plot_dir) {
    // Made only now, after the table: a run that fails before leaves none.
    if (mkdir(o.plot.c_str(), 0777) != 0 && errno != EEXIST) die("--plot: mkdir %s: %s", o.plot.c_str(), std::strerror(errno));
    latency_plot = o.plot + "/latency.svg";
  }
  if (!o.plot.empty()) {
    std::string pdir = o.dir;
    if (pdir.empty()) {
      const char *t = std::getenv("TMPDIR");
      pdir = t && *t ? t : "/tmp";
    }
    write_plot(in, latency_plot, pdir);
  }
  std::vector<std::string> scale_files;
  if (o.scale) {
    run_scale(env, o.sc, o.plot_dir ? o.plot : std::string(), &scale_files);
  }
  // Every output is written: keep them.
  for (const std::string *out : {&o.json, &o.csv, &latency_plot})
    if (!out->empty()) cleanup_remove(*out);
  for (const std::string &f : scale_files) cleanup_remove(f);

  libuv_shutdown();
  for (int fd : {rf.f.fd, rf.f.direct_fd, mf.f.fd})
    if (fd >= 0) close(fd);
  return 0;
}

}  // namespace
}  // namespace aio2_bench

namespace aio2_tool {

int bench_main(const char *prog, int argc, char **argv) {
  try {
    return aio2_bench::main_impl(prog, argc, argv);
  } catch (const std::exception &e) {
    bench_util::die("%s", e.what());
  }
}

}  // namespace aio2_tool
