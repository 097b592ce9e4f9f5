// SPDX-License-Identifier: MIT
// `aio2 bench`: the table (stdout), --json, --csv and --plot (gnuplot, run as
// a child on a temporary data file and script, both removed afterwards).

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "aio2/abi.h"
#include "bench.h"

extern char **environ;

namespace aio2_bench {

using bench_util::die;
using bench_util::median;

namespace {

const row *find_row(const report_input &in, workload wl, engine en) {
  for (const row &r : *in.rows)
    if (r.wl == wl && r.en == en) return &r;
  return nullptr;
}

std::string attrs_label(const report_input &in, const row &r) {
  return r.attrs < 0 ? "" : (*in.attr_sets)[static_cast<size_t>(r.attrs)].label;
}

// Whether every result of every attribute of the row was OK.
bool attrs_all_ok(const row &r) {
  for (const auto &counts : r.attr_status)
    for (unsigned s = 1; s < counts.size(); s++)
      if (counts[s]) return false;
  return true;
}

// v rounded to `decimals` places (divided, so the result prints short).
double round_to(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

std::string fmt(const char *f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

double ratio_vs(const report_input &in, const row &r, engine peer) {
  const row *u = find_row(in, r.wl, peer);
  if (r.na || u == nullptr || u->na || u->ops.empty() || r.ops.empty()) return 0;
  return r.ops_med() / u->ops_med();
}

double ratio_vs_liburing(const report_input &in, const row &r) {
  return ratio_vs(in, r, engine::liburing);
}

std::string path_text(const row &r) {
  if (r.probed > 0) {  // liburing, libaio: done by the time the submitting call returned
    if (r.in_submit == r.probed) return "in_submit";
    if (r.in_submit == 0) return "async";
    const double pc = 100.0 * static_cast<double>(r.in_submit) / static_cast<double>(r.probed);
    return fmt("in_submit:%.0f%%", pc) + fmt(",async:%.0f%%", 100 - pc);
  }
  uint64_t total = 0;
  for (uint64_t n : r.paths) total += n;
  if (total == 0) return "";
  std::vector<unsigned> order;
  for (unsigned k = 0; k < kPathKinds; k++)
    if (r.paths[k]) order.push_back(k);
  std::stable_sort(order.begin(), order.end(),
                   [&](unsigned a, unsigned b) { return r.paths[a] > r.paths[b]; });
  if (order.size() == 1) return name(static_cast<path_kind>(order[0]));
  std::string out;
  for (unsigned k : order) {
    // Whole percent, and "<1%" rather than a misleading 0%.
    const double pc = 100.0 * static_cast<double>(r.paths[k]) / static_cast<double>(total);
    out += (out.empty() ? "" : ",") + std::string(name(static_cast<path_kind>(k))) +
           (pc < 1 ? std::string(":<1%") : fmt(":%.0f%%", pc));
  }
  return out;
}

std::string path_note(const row &r) {
  uint64_t total = 0;
  for (uint64_t n : r.paths) total += n;
  std::string note;
  if (total > 0) {
    const std::string ran = path_text(r);
    switch (r.en) {
      case engine::aio2_uring:
        if (r.paths[path_uring] != total) note = "ran on " + ran + ", not io_uring";
        break;
      case engine::aio2_pool:
        if (r.paths[path_pool] != total) note = "ran on " + ran + ", not the pool";
        break;
      case engine::aio2_no_uring:
        if (r.paths[path_uring] != 0) note = "ran on " + ran + ", io_uring despite NO_URING";
        break;
      default:  // AUTO names no path; say so when it is the caller's own thread
        if (r.paths[path_inline] == total) note = "synchronous: ran inline in aio2_submit";
        break;
    }
  }
  // Kernel AIO is asynchronous by name; on buffered files it is not.
  if (r.en == engine::libaio && r.probed > 0 && r.in_submit * 2 > r.probed)
    note = r.in_submit == r.probed ? "synchronous: complete when io_submit returns"
                                   : "mostly synchronous: " + path_text(r);
  if (!r.path_label.empty()) note += (note.empty() ? "" : "; ") + r.path_label;
  return note;
}

namespace {
// "timing:OK cache:OK"; statuses that differ between events are joined by
// '+', most frequent first. only_odd: only the attributes with a status
// other than OK.
std::string attr_text(const row &r, const std::vector<attr_set> &sets, bool only_odd) {
  if (r.attrs < 0) return "";
  const attr_set &as = sets[static_cast<size_t>(r.attrs)];
  std::string out;
  for (size_t k = 0; k < as.ids.size() && k < r.attr_status.size(); k++) {
    const auto &counts = r.attr_status[k];
    std::vector<unsigned> order;
    for (unsigned s = 0; s < counts.size(); s++)
      if (counts[s]) order.push_back(s);
    std::stable_sort(order.begin(), order.end(),
                     [&](unsigned a, unsigned b) { return counts[a] > counts[b]; });
    if (only_odd && order.size() == 1 && order[0] == AIO2_ATTR_OK) continue;
    if (!out.empty()) out += ' ';
    out += attr_name(as.ids[k]);
    out += ':';
    for (size_t j = 0; j < order.size(); j++)
      out += (j ? "+" : "") + std::string(bench_util::attr_status_name(order[j]));
    if (order.empty()) out += '-';
  }
  return out;
}
}  // namespace

std::string attr_status_text(const row &r, const std::vector<attr_set> &sets) {
  return attr_text(r, sets, false);
}

// ---------------------------------------------------------------------------
// The table

void print_table(const report_input &in) {
  size_t aw = 5;  // the attrs column: as wide as its longest label
  for (const attr_set &as : *in.attr_sets) aw = std::max(aw, as.label.size());
  const int w = static_cast<int>(aw);
  for (workload wl : in.workloads) {
    const unsigned qd = deep(wl) ? in.qd : 1;
    std::printf("\n%s: %s, QD %u\n", name(wl), describe(wl), qd);
    std::printf("  %-14s %-*s %11s %9s %9s %11s %8s %9s %8s  %-13s %s\n", "engine", w, "attrs",
                "ops/s", "p50_us", "p99_us", "vs_liburing", "vs_tuned", "cpu_us/op", "ctxsw/op",
                "path", "note");
    for (const row &r : *in.rows) {
      if (r.wl != wl) continue;
      std::string label = attrs_label(in, r);
      if (r.attrs < 0) label = "-";
      else if (label.empty()) label = "none";
      std::string note = r.note;
      if (const std::string pn = path_note(r); !pn.empty()) note += (note.empty() ? "" : "; ") + pn;
      if (!r.na && r.attrs >= 0 && !attrs_all_ok(r)) {
        if (!note.empty()) note += "; ";
        note += attr_text(r, *in.attr_sets, true);
      }
      if (r.na || r.ops.empty()) {
        std::printf("  %-14s %-*s %11s %9s %9s %11s %8s %9s %8s  %-13s %s\n", name(r.en), w,
                    label.c_str(), "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "-", note.c_str());
        continue;
      }
      const double ratio = ratio_vs_liburing(in, r);
      const double tuned = ratio_vs(in, r, engine::liburing_tuned);
      const std::string rs = ratio > 0 ? fmt("%.2fx", ratio) : "-";
      const std::string ts = tuned > 0 ? fmt("%.2fx", tuned) : "-";
      const std::string path = path_text(r);
      std::printf("  %-14s %-*s %11.0f %9.2f %9.2f %11s %8s %9.2f %8.2f  %-13s %s\n", name(r.en), w,
                  label.c_str(), r.ops_med(), median(r.p50), median(r.p99), rs.c_str(), ts.c_str(),
                  median(r.cpu), median(r.cs), path.empty() ? "-" : path.c_str(), note.c_str());
    }
  }
  std::printf(
      "\nops/s: requests completed per second inside the measured window; p50_us,\n"
      "p99_us: latency from just before a request's submission to its reap, one clock\n"
      "reading per request at each end, in microseconds; vs_liburing, vs_tuned: ops/s\n"
      "over liburing's and liburing_tuned's on the same workload; cpu_us/op, ctxsw/op:\n"
      "CPU time (user + system, every thread of the process) and context switches per\n"
      "request, getrusage across the window only; path: measured by a probe after\n"
      "each window, for aio2 the paths its executor attribute reported, for liburing\n"
      "and libaio whether requests had completed when the submitting call returned\n"
      "(in_submit) or later (async). Medians of %u repetition%s. n/a: the engine\n"
      "cannot run that workload.\n",
      in.reps, in.reps == 1 ? "" : "s");
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// JSON and CSV: one row per table row, same columns. n/a rows are kept,
// with "status": "n/a" and null (JSON) or empty (CSV) numbers.

namespace {

using ojson = nlohmann::ordered_json;

ojson row_json(const report_input &in, const row &r) {
  ojson j;
  j["workload"] = name(r.wl);
  j["engine"] = name(r.en);
  j["attrs"] = attrs_label(in, r);
  j["qd"] = is_sync(r.en) || !deep(r.wl) ? 1 : in.qd;
  const bool ok = !r.na && !r.ops.empty();
  j["status"] = ok ? "ok" : "n/a";
  {
    std::string note = r.note;
    if (const std::string pn = path_note(r); !pn.empty()) note += (note.empty() ? "" : "; ") + pn;
    j["note"] = note;
  }
  j["path"] = path_text(r);
  if (ok) {
    const double ratio = ratio_vs_liburing(in, r);
    const double tuned = ratio_vs(in, r, engine::liburing_tuned);
    j["ops_per_s"] = round_to(r.ops_med(), 1);
    j["p50_us"] = round_to(median(r.p50), 2);
    j["p99_us"] = round_to(median(r.p99), 2);
    j["vs_liburing"] = ratio > 0 ? ojson(round_to(ratio, 3)) : ojson(nullptr);
    j["vs_liburing_tuned"] = tuned > 0 ? ojson(round_to(tuned, 3)) : ojson(nullptr);
    j["cpu_us_per_op"] = round_to(median(r.cpu), 3);
    j["ctxsw_per_op"] = round_to(median(r.cs), 3);
    j["reps"] = r.ops.size();
    ojson each = ojson::array();
    for (double v : r.ops) each.push_back(round_to(v, 1));
    j["ops_per_s_each"] = each;
  } else {
    for (const char *k : {"ops_per_s", "p50_us", "p99_us", "vs_liburing", "vs_liburing_tuned",
                          "cpu_us_per_op", "ctxsw_per_op"})
      j[k] = nullptr;
    j["reps"] = 0;
    j["ops_per_s_each"] = ojson::array();
  }
  j["attr_status"] = attr_status_text(r, *in.attr_sets);
  return j;
}

// Writes `text` to `path` whole, or fails. The path stays registered for
// removal: the caller keeps it once every output is written.
void write_file(const std::string &path, const std::string &text) {
  cleanup_add(path);
  FILE *f = std::fopen(path.c_str(), "w");
  if (f == nullptr) die("cannot write %s: %s", path.c_str(), std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) die("writing %s: %s", path.c_str(), std::strerror(errno));
}

std::string csv_field(const std::string &v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char ch : v) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

}  // namespace

void write_json(const report_input &in, const std::string &path) {
  ojson all = ojson::array();
  for (const row &r : *in.rows) all.push_back(row_json(in, r));
  write_file(path, all.dump(2) + "\n");
}

void write_csv(const report_input &in, const std::string &path) {
  static const char *const kCols[] = {"workload",       "engine",
                                      "attrs",          "qd",
                                      "status",         "note",
                                      "path",           "ops_per_s",
                                      "p50_us",         "p99_us",
                                      "vs_liburing",    "vs_liburing_tuned",
                                      "cpu_us_per_op",  "ctxsw_per_op",
                                      "reps",           "ops_per_s_each",
                                      "attr_status"};
  std::string text;
  for (const char *c : kCols) text += (text.empty() ? "" : ",") + std::string(c);
  text += "\n";
  for (const row &r : *in.rows) {
    const ojson j = row_json(in, r);
    std::string line;
    bool first = true;
    for (const char *c : kCols) {
      const ojson &v = j[c];
      std::string s;
      if (v.is_string()) s = v.get<std::string>();
      else if (v.is_array()) {
        for (const ojson &x : v) s += (s.empty() ? "" : ";") + x.dump();
      } else if (!v.is_null()) s = v.dump();
      line += (first ? "" : ",") + csv_field(s);
      first = false;
    }
    text += line + "\n";
  }
  write_file(path, text);
}

// ---------------------------------------------------------------------------
// The plot: one panel per workload, the latency CDF of every measured row on
// a log x axis.

namespace {

// A temporary file in `dir`, registered for removal; returns its path.
std::string temp_path(const std::string &dir, const char *stem, int *fd) {
  std::string t = dir + "/" + stem + ".XXXXXX";
  std::vector<char> tmpl(t.begin(), t.end());
  tmpl.push_back('\0');
  *fd = mkstemp(tmpl.data());
  if (*fd < 0) die("--plot: cannot create a temporary file in %s: %s", dir.c_str(), std::strerror(errno));
  cleanup_add(tmpl.data());
  return tmpl.data();
}

void write_fd(int fd, const std::string &path, const std::string &text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("--plot: writing %s: %s", path.c_str(), std::strerror(errno));
    done += static_cast<size_t>(w);
  }
  if (close(fd) != 0) die("--plot: writing %s: %s", path.c_str(), std::strerror(errno));
}

}  // namespace

std::string gp_quote(const std::string &s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

namespace {

bool ends_with(const std::string &s, const char *suffix) {
  const size_t n = std::strlen(suffix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; i++)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - n + i])) != suffix[i]) return false;
  return true;
}

}  // namespace

std::string run_gnuplot(const std::string &script) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) die("--plot: pipe: %s", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  std::string arg0 = "gnuplot";
  std::string arg1 = script;
  char *argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "gnuplot", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    die("--plot: cannot run gnuplot: %s (Debian: apt-get install gnuplot-nox)", std::strerror(rc));
  }
  std::string err;
  char b[4096];
  for (;;) {
    const ssize_t n = read(pipefd[0], b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (err.size() < 65536) err.append(b, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("--plot: waitpid: %s", std::strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  // The first line that says something.
  size_t pos = 0;
  while (pos < err.size()) {
    const size_t nl = err.find('\n', pos);
    std::string line = err.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? err.size() : nl + 1;
    if (line.find_first_not_of(" \t^") != std::string::npos) return line;
  }
  return WIFEXITED(status) ? "gnuplot exited with status " + std::to_string(WEXITSTATUS(status))
                           : std::string("gnuplot was killed by a signal");
}

bool plot_format_ok(const std::string &path) { return ends_with(path, ".png") || ends_with(path, ".svg"); }

namespace {
// Line colours, in the order of enum engine.
constexpr const char *kColours[10] = {"#d62728", "#ff7f0e", "#bcbd22", "#e377c2", "#1f77b4",
                                      "#8c564b", "#17becf", "#9467bd", "#2ca02c", "#000000"};
}  // namespace

void write_plot(const report_input &in, const std::string &path, const std::string &tmp_dir) {
  const bool svg = ends_with(path, ".svg");
  std::string data;
  unsigned index = 0, panels = 0;
  std::vector<std::string> panel_cmds;
  for (workload wl : in.workloads) {
    std::string cmd;
    for (const row &r : *in.rows) {
      if (r.wl != wl || r.na || r.ops.empty()) continue;
      uint64_t total = 0;
      for (uint64_t c : r.hist) total += c;
      if (total == 0) continue;
      // The CDF: (upper edge of each non-empty bin, share at or below it).
      uint64_t cum = 0;
      bool first = true;
      for (unsigned k = 0; k < r.hist.size(); k++) {
        if (!r.hist[k]) continue;
        if (first) data += fmt("%.4f", k ? hist_edge_us(k - 1) : kHistMinNs / 1000.0) + " 0\n";
        first = false;
        cum += r.hist[k];
        data += fmt("%.4f", hist_edge_us(k)) + " " +
                fmt("%.6f", static_cast<double>(cum) / static_cast<double>(total)) + "\n";
      }
      data += "\n\n";  // the next index
      std::string title = name(r.en);
      const std::string al = attrs_label(in, r);
      // The attribute set, where there is one or several.
      if (r.attrs >= 0 && (in.attr_sets->size() > 1 || !al.empty()))
        title += " [" + (al.empty() ? std::string("none") : al) + "]";
      if (is_liburing(r.en) && wl == workload::getppid) title += " (NOP)";
      // One colour per engine in every panel; a dash pattern per attribute set.
      const std::string style = std::string(" lc rgb '") + kColours[static_cast<unsigned>(r.en) % 10] +
                                "' dt " + std::to_string(r.attrs > 0 ? r.attrs % 5 + 2 : 1);
      cmd += std::string(cmd.empty() ? "plot " : ", ") + "DATA index " + std::to_string(index) +
             " using 1:2 with steps lw 2" + style + " title " + gp_quote(title);
      index++;
    }
    if (cmd.empty()) continue;
    const unsigned qd = deep(wl) ? in.qd : 1;
    panel_cmds.push_back("set title " + gp_quote(std::string(name(wl)) + " (QD " +
                                                 std::to_string(qd) + ")") + "\n" + cmd + "\n");
    panels++;
  }
  if (panels == 0) die("--plot: nothing was measured, so there is nothing to plot");
  const unsigned cols = panels > 1 ? 2 : 1;
  const unsigned rows_n = (panels + cols - 1) / cols;

  int dfd = -1, sfd = -1;
  const std::string dpath = temp_path(tmp_dir, "aio2-bench-plot-data", &dfd);
  const std::string spath = temp_path(tmp_dir, "aio2-bench-plot-script", &sfd);
  write_fd(dfd, dpath, data);
  std::string s;
  const std::string size = " size " + std::to_string(cols * 640) + "," + std::to_string(rows_n * 420);
  if (svg)
    s += "set terminal svg dynamic noenhanced font 'sans,11'" + size + "\n";
  else  // cairo when this gnuplot has it, else libgd
    s += "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n  set terminal pngcairo noenhanced font 'sans,10'" +
         size + "\n} else {\n  set terminal png noenhanced" + size + "\n}\n";
  s += "set output " + gp_quote(path) + "\n";
  s += "DATA = " + gp_quote(dpath) + "\n";
  s += "set logscale x\nset format x '%g'\nset grid xtics ytics mxtics\n";
  s += "set xlabel 'latency, submit to reap (us)'\nset ylabel 'share of requests'\n";
  s += "set yrange [0:1]\nset key bottom right font ',8'\n";
  s += "set multiplot layout " + std::to_string(rows_n) + "," + std::to_string(cols) +
       " title 'aio2 bench: latency distribution (CDF)'\n";
  for (const std::string &p : panel_cmds) s += p;
  s += "unset multiplot\nset output\n";
  write_fd(sfd, spath, s);

  cleanup_add(path);  // a failed or interrupted plot leaves nothing
  const std::string err = run_gnuplot(spath);
  unlink(dpath.c_str());
  unlink(spath.c_str());
  cleanup_remove(dpath);
  cleanup_remove(spath);
  if (!err.empty()) die("--plot: gnuplot failed: %s", err.c_str());
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || st.st_size == 0) die("--plot: gnuplot wrote no %s", path.c_str());
}

}  // namespace aio2_bench
