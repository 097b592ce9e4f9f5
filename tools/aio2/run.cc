// SPDX-License-Identifier: MIT
// `aio2 run`: finds the replacements, runs the program with them and with
// AIO2_TRACE naming a trace file, waits for it, converts the trace file's
// records into `aio2 trace`'s (trace.h) and hands them to trace_report.cc.

#include "run.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <linux/aio_abi.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "workload.h"

extern char **environ;

namespace aio2_tool {

namespace {

const char kUsage[] =
    "usage: aio2 run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM, unmodified, on aio2's replacement for libaio (libaio.so.1,\n"
    "found through LD_LIBRARY_PATH) and for POSIX AIO (libaio2-posix.so, preloaded\n"
    "when it is there), with every request observed: its timing, page-cache\n"
    "outcome and execution path go to a trace file (AIO2_TRACE). When PROGRAM has\n"
    "exited, prints the report of 'aio2 trace' on its requests: how many reads the\n"
    "page cache served, and where their time went.\n"
    "\n"
    "Options:\n"
    "  --trace FILE   write the trace file to FILE, created afresh, and keep it;\n"
    "                 otherwise it is a temporary file in $TMPDIR or /tmp,\n"
    "                 removed at the end\n"
    "  --report       print the report when PROGRAM has exited\n"
    "  --json FILE    write the report as JSON\n"
    "  --chrome FILE  write the Chrome trace, one slice per request (open it in\n"
    "                 https://ui.perfetto.dev)\n"
    "  --compat DIR   the directory holding libaio.so.1 (default: ../compat or\n"
    "                 ../lib/aio2 beside this command)\n"
    "  -h, --help     this text\n"
    "\n"
    "Exit status: PROGRAM's, or 128 + N when signal N ended it; 127 when it\n"
    "cannot be run; 2 for bad arguments; 1 when PROGRAM succeeded but the trace\n"
    "could not be read or the report written. docs/compat.md says more.\n";

[[noreturn]] void bad(const std::string &msg) { throw tool_error(msg); }

// The program could not be started (exit status 127, as a shell's).
class spawn_error : public tool_error {
 public:
  explicit spawn_error(const std::string &what) : tool_error(what, false) {}
};

struct options {
  std::string trace_path, json_path, chrome_path, compat;
  bool report = false;
  std::vector<std::string> argv;
};

options parse_args(int argc, char **argv) {
  options o;
  int i = 1;
  for (; i < argc; i++) {
    std::string arg = argv[i], value;
    if (arg == "--") {
      i++;
      break;
    }
    if (arg.rfind("-", 0) != 0 || arg == "-") break;  // the program
    const size_t eq = arg.find('=');
    const bool inline_value = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto take_path = [&](std::string &dst) {
      if (!inline_value) {
        if (i + 1 >= argc) bad(arg + " needs a file name");
        value = argv[++i];
      }
      if (value.empty()) bad(arg + " needs a file name");
      dst = value;
    };
    if (arg == "--trace") {
      take_path(o.trace_path);
    } else if (arg == "--json") {
      take_path(o.json_path);
    } else if (arg == "--chrome") {
      take_path(o.chrome_path);
    } else if (arg == "--compat") {
      take_path(o.compat);
    } else if (arg == "--report") {
      if (inline_value) bad("--report takes no value");
      o.report = true;
    } else {
      bad("unknown option '" + arg + "' (see 'aio2 run --help')");
    }
  }
  for (; i < argc; i++) o.argv.emplace_back(argv[i]);
  if (o.argv.empty()) bad("no program to run (usage: aio2 run [OPTIONS] [--] PROGRAM [ARGS...])");
  const std::pair<const std::string *, const char *> outs[] = {
      {&o.trace_path, "--trace"}, {&o.json_path, "--json"}, {&o.chrome_path, "--chrome"}};
  for (const auto &[a, an] : outs)
    for (const auto &[b, bn] : outs)
      if (a < b && !a->empty() && *a == *b)
        bad(std::string(an) + " and " + bn + " name the same file");
  return o;
}

bool is_dir(const std::string &p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool has_libaio(const std::string &dir) {
  return access((dir + "/libaio.so.1").c_str(), R_OK) == 0;
}

std::string absolute(const std::string &p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// The directory of the replacements: --compat, or one beside this command.
std::string find_compat(const options &o) {
  if (!o.compat.empty()) {
    struct stat st {};
    if (stat(o.compat.c_str(), &st) != 0)
      bad("--compat " + o.compat + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) bad("--compat " + o.compat + " is not a directory");
    if (!has_libaio(o.compat))
      bad("--compat " + o.compat + " holds no libaio.so.1 (aio2's libaio replacement)");
    return absolute(o.compat);
  }
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) bad(std::string("cannot find this command's directory: ") + std::strerror(errno));
  exe[n] = '\0';
  std::string bin = exe;
  bin.resize(bin.rfind('/') == std::string::npos ? 0 : bin.rfind('/'));
  // The build tree (build/bin/aio2, build/compat), then the installed
  // layout (<prefix>/bin/aio2, <prefix>/<libdir>/aio2).
  std::vector<std::string> tried = {bin + "/../compat", bin + "/../" AIO2_INSTALL_LIBDIR "/aio2"};
  if (tried.back() != bin + "/../lib/aio2") tried.push_back(bin + "/../lib/aio2");
  std::string list;
  for (const std::string &d : tried) {
    if (is_dir(d) && has_libaio(d)) return absolute(d);
    list += (list.empty() ? "" : ", ") + d;
  }
  bad("cannot find aio2's libaio replacement (libaio.so.1) in " + list +
      ": build it (AIO2_BUILD_COMPAT) or name its directory with --compat");
}

// The trace file: --trace, created afresh, or a temporary one, removed when
// this object goes.
class trace_file {
 public:
  explicit trace_file(const std::string &given) {
    if (!given.empty()) {
      const int fd = ::open(given.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
      if (fd < 0) bad("cannot create " + given + ": " + std::strerror(errno));
      ::close(fd);
      path_ = absolute(given);
      return;
    }
    const char *tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/aio2-run-XXXXXX";
    const int fd = mkostemp(t.data(), O_CLOEXEC);
    if (fd < 0) throw tool_error("cannot create a temporary trace file " + t + ": " +
                                     std::strerror(errno), false);
    ::close(fd);
    path_ = absolute(t);
    temporary_ = true;
  }
  ~trace_file() {
    if (temporary_) unlink(path_.c_str());
  }
  trace_file(const trace_file &) = delete;
  trace_file &operator=(const trace_file &) = delete;
  const std::string &path() const { return path_; }
  bool temporary() const { return temporary_; }

 private:
  std::string path_;
  bool temporary_ = false;
};

// An output file, written beside its name and renamed into place once
// complete; created before the program runs, so a bad path fails first.
class output_file {
 public:
  explicit output_file(const std::string &path) : path_(path), tmp_(path + ".XXXXXX") {
    const int fd = mkostemp(tmp_.data(), O_CLOEXEC);
    if (fd < 0) bad("cannot create " + path + ": " + std::strerror(errno));
    const mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    f_ = fdopen(fd, "w");
    if (!f_) {
      ::close(fd);
      unlink(tmp_.c_str());
      throw tool_error("cannot write " + path + ": " + std::strerror(errno), false);
    }
  }
  ~output_file() {
    if (f_) {
      std::fclose(f_);
      unlink(tmp_.c_str());
    }
  }
  output_file(const output_file &) = delete;
  output_file &operator=(const output_file &) = delete;
  FILE *file() const { return f_; }
  void commit() {
    const bool ok = std::fflush(f_) == 0 && !std::ferror(f_);
    const int err = errno;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || !closed || rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = ok && closed ? errno : err;
      unlink(tmp_.c_str());
      throw tool_error("writing " + path_ + ": " + std::strerror(e), false);
    }
  }

 private:
  std::string path_, tmp_;
  FILE *f_ = nullptr;
};

// ---------------------------------------------------------------------------
// Running the program. While it runs, SIGINT and SIGQUIT (which a terminal
// sends to the program too) are ignored here, and SIGTERM and SIGHUP are
// passed on to it; the report follows its exit either way.

volatile sig_atomic_t g_child = 0;

extern "C" void forward_signal(int sig) {
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

struct child_status {
  int exit_code = 0;  // as a shell reports it: 128 + N for signal N
  std::string text;   // "exit status 0", "killed by signal 9 (SIGKILL)"
};

// A variable of the environment with `dir` in front of its value.
std::string prepended(const char *name, const std::string &dir, char sep) {
  const char *old = std::getenv(name);
  return std::string(name) + "=" + dir + (old && *old ? std::string(1, sep) + old : "");
}

child_status run_program(const std::vector<std::string> &args, const std::string &compat,
                         const std::string &trace_path) {
  std::vector<std::string> env_s;
  for (char **e = environ; *e; e++) {
    const std::string v = *e;
    if (v.rfind("LD_LIBRARY_PATH=", 0) == 0 || v.rfind("LD_PRELOAD=", 0) == 0 ||
        v.rfind("AIO2_TRACE=", 0) == 0)
      continue;
    env_s.push_back(v);
  }
  env_s.push_back(prepended("LD_LIBRARY_PATH", compat, ':'));
  // The POSIX AIO replacement interposes on glibc's own symbols: preloaded.
  const std::string posix = compat + "/libaio2-posix.so";
  if (access(posix.c_str(), R_OK) == 0) env_s.push_back(prepended("LD_PRELOAD", posix, ' '));
  else if (const char *pre = std::getenv("LD_PRELOAD")) env_s.push_back(std::string("LD_PRELOAD=") + pre);
  env_s.push_back("AIO2_TRACE=" + trace_path);
  std::vector<char *> envp, argv;
  for (std::string &e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_copy = args;
  for (std::string &a : args_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  struct sigaction ign {}, fwd {}, old_int {}, old_quit {}, old_term {}, old_hup {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  fwd.sa_handler = forward_signal;
  sigemptyset(&fwd.sa_mask);
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  sigaction(SIGTERM, &fwd, &old_term);
  sigaction(SIGHUP, &fwd, &old_hup);
  const auto restore = [&] {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
  };

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t def, none;
  sigemptyset(&def);
  for (int s : {SIGINT, SIGQUIT, SIGTERM, SIGHUP}) sigaddset(&def, s);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    restore();
    throw spawn_error("cannot run " + args[0] + ": " + std::strerror(rc));
  }
  g_child = pid;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      const int err = errno;
      restore();
      throw tool_error("waiting for " + args[0] + ": " + std::strerror(err), false);
    }
  }
  g_child = 0;
  restore();
  child_status cs;
  if (WIFEXITED(st)) {
    cs.exit_code = WEXITSTATUS(st);
    cs.text = "exit status " + std::to_string(cs.exit_code);
  } else if (WIFSIGNALED(st)) {
    const int sig = WTERMSIG(st);
    cs.exit_code = 128 + sig;
    const char *name = sigabbrev_np(sig);
    cs.text = "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return cs;
}

std::string command_line(const std::vector<std::string> &args) {
  std::string s;
  for (const std::string &a : args) {
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?;&|<>()[]{}#~!") == std::string::npos;
    s += (s.empty() ? "" : " ") + (plain ? a : "'" + a + "'");
  }
  if (s.size() > 160) s = s.substr(0, 157) + "...";
  return s;
}

std::string plural(uint64_t n, const char *one, const char *many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

namespace run {

namespace {

op_kind kind_of(const aio2_compat::trace_request &r) {
  if (r.op_space == aio2_compat::kOpIocb) {
    switch (r.op) {
      case IOCB_CMD_PREAD:
      case IOCB_CMD_PREADV: return op_kind::read;
      case IOCB_CMD_PWRITE:
      case IOCB_CMD_PWRITEV: return op_kind::write;
      case IOCB_CMD_FSYNC:
      case IOCB_CMD_FDSYNC: return op_kind::fsync;
      case IOCB_CMD_POLL: return op_kind::poll;
      default: return op_kind::other;
    }
  }
  if (r.op_space == aio2_compat::kOpSyscall) {
    switch (r.op) {
      case SYS_read:
      case SYS_pread64:
      case SYS_readv:
      case SYS_preadv:
      case SYS_preadv2: return op_kind::read;
      case SYS_write:
      case SYS_pwrite64:
      case SYS_writev:
      case SYS_pwritev:
      case SYS_pwritev2: return op_kind::write;
      case SYS_fsync:
      case SYS_fdatasync: return op_kind::fsync;
      default: return op_kind::other;
    }
  }
  return op_kind::other;
}

}  // namespace

converted convert(const aio2_compat::trace_contents &t) {
  converted c;
  c.processes = t.processes.size();
  c.contexts = t.contexts.size();
  c.ended = t.ends.size();
  for (const auto &x : t.contexts) {
    c.features |= x.features;
    c.uring_entries = std::max(c.uring_entries, x.uring_entries);
  }
  for (const auto &e : t.ends) {
    c.requests += e.requests;
    c.dropped += e.dropped;
    c.unobserved += e.unobserved;
    c.unmatched += e.unmatched;
  }
  c.recs.reserve(t.requests.size());
  for (const auto &r : t.requests) {
    trace::record x;
    x.o.kind = kind_of(r);
    x.o.offset = r.offset;
    const bool vectored = r.flags & aio2_compat::kReqVectored;
    // A vectored request's length is its iovec count: what it moved stands in.
    const uint64_t len = vectored ? (r.res > 0 ? static_cast<uint64_t>(r.res) : 0) : r.nbytes;
    x.o.len = static_cast<uint32_t>(std::min<uint64_t>(len, UINT32_MAX));
    x.done = true;
    x.res = r.res;
    x.ev_flags = (r.flags & aio2_compat::kReqCanceled) ? AIO2_EVENT_CANCELED : 0;
    x.status[trace::kTiming] = r.status[aio2_compat::kAttrTiming];
    x.status[trace::kCache] = r.status[aio2_compat::kAttrCache];
    x.status[trace::kExecutor] = r.status[aio2_compat::kAttrExecutor];
    x.status[trace::kTag] = trace::kStatusMissing;
    x.timing = r.timing;
    x.cache.outcome = r.cache_outcome;
    x.cache.method = r.cache_method;
    x.cache.bytes_cached = r.bytes_cached;
    x.cache.bytes_requested = r.bytes_requested;
    x.executor = r.executor;
    if (x.status[trace::kTiming] == AIO2_ATTR_OK)
      x.client_submit_ns = r.timing.submitted_ns;
    c.recs.push_back(x);
  }
  // In order of submission; those without a time last.
  const auto when = [](const trace::record &r) {
    return r.status[trace::kTiming] == AIO2_ATTR_OK ? r.timing.submitted_ns : UINT64_MAX;
  };
  std::stable_sort(c.recs.begin(), c.recs.end(),
                   [&](const trace::record &a, const trace::record &b) { return when(a) < when(b); });
  // The most requests in flight together (submitted to posted), and the span.
  std::vector<std::pair<uint64_t, int>> edges;
  uint64_t first = UINT64_MAX, last = 0;
  for (const auto &r : c.recs) {
    if (r.status[trace::kTiming] != AIO2_ATTR_OK || r.timing.submitted_ns == 0) continue;
    const uint64_t end = std::max(r.timing.posted_ns, r.timing.submitted_ns);
    edges.emplace_back(r.timing.submitted_ns, 1);
    edges.emplace_back(end, -1);
    first = std::min(first, r.timing.submitted_ns);
    last = std::max(last, end);
  }
  std::sort(edges.begin(), edges.end());  // at a tie the end (-1) comes first
  int now = 0;
  for (const auto &[at, d] : edges) {
    now += d;
    c.max_in_flight = std::max(c.max_in_flight, static_cast<unsigned>(std::max(now, 0)));
  }
  if (last > first) c.elapsed_s = static_cast<double>(last - first) / 1e9;
  return c;
}

}  // namespace run

namespace {

void report(const options &o, const child_status &cs, const trace_file &trace,
            std::optional<output_file> &json, std::optional<output_file> &chrome);

int run_cmd(const options &o) {
  const std::string compat = find_compat(o);
  // Outputs first: a bad path fails before the program runs.
  trace_file trace(o.trace_path);
  std::optional<output_file> json, chrome;
  if (!o.json_path.empty()) json.emplace(o.json_path);
  if (!o.chrome_path.empty()) chrome.emplace(o.chrome_path);

  std::fflush(stdout);
  const child_status cs = run_program(o.argv, compat, trace.path());
  if (!o.report && !json && !chrome) {
    if (!trace.temporary()) std::printf("trace file: %s\n", trace.path().c_str());
    return cs.exit_code;
  }
  try {
    report(o, cs, trace, json, chrome);
  } catch (const std::exception &e) {
    // The program's status stands; a failed report fails a run that passed.
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 run: %s\n", e.what());
    return cs.exit_code ? cs.exit_code : 1;
  }
  return cs.exit_code;
}

void report(const options &o, const child_status &cs, const trace_file &trace,
            std::optional<output_file> &json, std::optional<output_file> &chrome) {

  aio2_compat::trace_contents contents;
  if (const std::string err = aio2_compat::read_trace_file(trace.path(), contents); !err.empty())
    throw tool_error(err, false);
  const run::converted c = run::convert(contents);

  trace::run_info info;
  info.tool = "aio2 run";
  info.workload = command_line(o.argv);
  info.policy = "auto";
  info.tagged = false;
  info.features = c.features;
  info.uring_entries = c.uring_entries;
  info.qd = c.max_in_flight;
  info.elapsed_s = c.elapsed_s;
  info.stray_events = c.unmatched;
  info.header.emplace_back("program", cs.text);
  std::string where = trace.temporary() ? "temporary file" : trace.path();
  where += ": " + plural(c.recs.size(), "request", "requests") + " from " +
           plural(c.processes, "process", "processes") + ", " +
           plural(c.contexts, "context", "contexts");
  info.header.emplace_back("trace", where);
  // The end records count the requests submitted; a context without one
  // (its process ended with _exit or was killed) has only its records.
  std::string seen = std::to_string(c.recs.size()) +
                     (c.ended == c.contexts ? " of " + std::to_string(c.requests) : std::string()) +
                     " requests recorded";
  if (c.dropped) seen += "; " + std::to_string(c.dropped) + " events dropped (the aio2 ring was full)";
  if (c.unobserved)
    seen += "; " + std::to_string(c.unobserved) + " unobserved (dropped, or in flight at the end)";
  if (c.ended < c.contexts)
    seen += "; " + plural(c.contexts - c.ended, "context", "contexts") +
            " without an end record (the process ended with _exit or was killed: requests then in"
            " flight have no record, nor, where the trace file could not be mapped, the last"
            " ones buffered)";
  if (contents.trailing_bytes) seen += "; a partial record at the end (a write was cut short)";
  info.header.emplace_back("observed", seen);

  const trace::summary s = trace::summarize(c.recs);
  if (c.recs.empty())
    std::fprintf(stderr,
                 "aio2 run: no requests were observed: %s made no libaio call through the "
                 "replacement (it may not link libaio.so.1, or make the io_* system calls itself)"
                 " and no POSIX AIO call through libaio2-posix.so\n",
                 o.argv[0].c_str());
  if (o.report && !c.recs.empty()) {
    std::printf("\n");
    trace::print_report(stdout, info, s);
    std::fflush(stdout);
  }
  if (json) {
    auto j = nlohmann::ordered_json::parse(trace::report_json(info, s));
    // A program's run has no file, seed or data check of the tool's.
    for (const char *k : {"file", "file_bytes", "temporary_file", "direct", "seed", "interrupted",
                          "tag_mismatches", "data_mismatches"})
      j.erase(k);
    nlohmann::ordered_json out = {
        {"tool", "aio2 run"},
        {"program", {{"argv", o.argv}, {"status", cs.text}, {"exit_code", cs.exit_code}}},
        {"trace",
         {{"file", trace.temporary() ? "" : trace.path()},
          {"processes", c.processes},
          {"contexts", c.contexts},
          {"contexts_ended", c.ended},
          {"records", c.recs.size()},
          {"requests_submitted", c.requests},
          {"dropped", c.dropped},
          {"unobserved", c.unobserved},
          {"unmatched", c.unmatched},
          {"partial_record", contents.trailing_bytes != 0}}}};
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value();
    const std::string doc = out.dump(2) + "\n";
    std::fwrite(doc.data(), 1, doc.size(), json->file());
    json->commit();
  }
  if (chrome) {
    trace::write_chrome_trace(chrome->file(), info, c.recs);
    chrome->commit();
    std::printf("\nchrome trace written to %s: open it in https://ui.perfetto.dev\n",
                o.chrome_path.c_str());
  }
  if (json) std::printf("JSON report written to %s\n", o.json_path.c_str());
  if (!trace.temporary()) std::printf("trace file: %s\n", trace.path().c_str());
}

}  // namespace

int run_main(int argc, char **argv) {
  // --help only among the options, not in the program's arguments.
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--" || a.rfind("-", 0) != 0) break;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--trace" || a == "--json" || a == "--chrome" || a == "--compat") i++;
  }
  try {
    return run_cmd(parse_args(argc, argv));
  } catch (const tool_error &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 run: %s\n", e.what());
    if (e.bad_input()) return 2;
    return dynamic_cast<const spawn_error *>(&e) ? 127 : 1;
  } catch (const std::exception &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aio2 run: %s\n", e.what());
    return 1;
  }
}

}  // namespace aio2_tool
