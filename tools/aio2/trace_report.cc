// SPDX-License-Identifier: MIT
// `aio2 trace`: what the attributes said, summarised (summarize), printed
// (print_report), as JSON (report_json), and as a Chrome trace
// (write_chrome_trace).

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>

#include "trace.h"

namespace aio2_tool::trace {

namespace {

// Status columns: AIO2_ATTR_OK..AIO2_ATTR_ERROR, then missing, then other.
constexpr unsigned kStatusColumns = 7, kMissingColumn = 5, kOtherColumn = 6;

unsigned status_column(uint8_t st) {
  if (st <= AIO2_ATTR_ERROR) return st;
  return st == kStatusMissing ? kMissingColumn : kOtherColumn;
}

const char *cache_outcome_name(uint32_t outcome) {
  switch (outcome) {
    case AIO2_CACHE_HIT: return "hit";
    case AIO2_CACHE_PARTIAL: return "partial";
    case AIO2_CACHE_MISS: return "miss";
    default: return "unknown";
  }
}

// What went wrong with a request, or "" when nothing did.
std::string error_kind(const record &r, int64_t ppid) {
  if (!r.done) return "no event";
  if (r.ev_flags & AIO2_EVENT_CANCELED) return "cancelled";
  if (r.res < 0) {
    const char *name = strerrorname_np(static_cast<int>(-r.res));
    return name ? name : "errno " + std::to_string(-r.res);
  }
  switch (r.o.kind) {
    case op_kind::read:
    case op_kind::write:
      if (r.res != static_cast<int64_t>(r.o.len))
        return std::string("short ") + op_kind_name(r.o.kind);
      break;
    case op_kind::fsync:
      if (r.res != 0) return "unexpected fsync result";
      break;
    case op_kind::getppid:
      if (r.res != ppid) return "unexpected getppid result";
      break;
    case op_kind::poll:  // the events it found
    case op_kind::other:
      break;
  }
  if (r.data_bad) return "wrong data";
  return "";
}

// Values per group name, groups in the order first seen.
class grouped_values {
 public:
  void add(const std::string &group, uint64_t v) {
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const auto &g) { return g.first == group; });
    if (it == groups_.end()) it = groups_.insert(groups_.end(), {group, {}});
    it->second.push_back(v);
  }
  // Distributions in microseconds, "all" (every value) first.
  dist_groups dists(bool with_all) {
    dist_groups out;
    if (with_all) {
      std::vector<uint64_t> all;
      for (const auto &g : groups_) all.insert(all.end(), g.second.begin(), g.second.end());
      out.emplace_back("all", dist_of(all));
    }
    for (auto &g : groups_) out.emplace_back(g.first, dist_of(g.second));
    return out;
  }

 private:
  static dist dist_of(std::vector<uint64_t> &v) {
    dist d;
    d.count = v.size();
    if (v.empty()) return d;
    std::sort(v.begin(), v.end());
    const auto rank = [&](double q) {
      const size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
      return static_cast<double>(v[std::clamp<size_t>(k, 1, v.size()) - 1]) / 1000.0;
    };
    d.p50 = rank(0.50);
    d.p90 = rank(0.90);
    d.p99 = rank(0.99);
    d.max = static_cast<double>(v.back()) / 1000.0;
    return d;
  }
  std::vector<std::pair<std::string, std::vector<uint64_t>>> groups_;
};

uint64_t minus_or_zero(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// Sorts counts by name into a vector, most frequent first.
std::vector<std::pair<std::string, uint64_t>> by_count(const std::map<std::string, uint64_t> &m) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
  return v;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

}  // namespace

const char *attr_name(unsigned slot) {
  static const char *const names[kAttrs] = {"timing", "cache", "executor", "tag"};
  return slot < kAttrs ? names[slot] : "?";
}

const char *status_name(unsigned column) {
  static const char *const names[kStatusColumns] = {
      "ok", "unsupported", "not_applicable", "unavailable", "error", "missing", "other"};
  return column < kStatusColumns ? names[column] : "?";
}

std::string path_name(uint32_t path) {
  static const std::pair<uint32_t, const char *> bits[] = {
      {AIO2_PATH_INLINE, "inline"}, {AIO2_PATH_URING, "uring"}, {AIO2_PATH_POOL, "pool"},
      {AIO2_PATH_CALL, "call"}};
  std::string s;
  for (const auto &[bit, name] : bits)
    if (path & bit) s += (s.empty() ? "" : "+") + std::string(name);
  if (path & ~uint32_t{AIO2_PATH_ALL}) s += (s.empty() ? "" : "+") + std::string("other");
  return s.empty() ? "none" : s;
}

summary summarize(const std::vector<record> &recs) {
  summary s;
  s.requests = recs.size();
  const int64_t ppid = getppid();
  std::map<std::string, uint64_t> errors, paths;
  std::vector<std::string> path_order;
  grouped_values queueing, service, post, service_by_cache, service_by_op;
  for (const record &r : recs) {
    s.ops[static_cast<unsigned>(r.o.kind)]++;
    if (const std::string e = error_kind(r, ppid); !e.empty()) {
      s.errors++;
      errors[e]++;
    }
    if (!r.done) continue;
    s.completed++;
    for (unsigned a = 0; a < kAttrs; a++) s.status[a][status_column(r.status[a])]++;
    s.tag_mismatches += r.status[kTag] == AIO2_ATTR_OK && !r.tag_ok;
    s.data_mismatches += r.data_bad;

    const bool cache_ok = r.status[kCache] == AIO2_ATTR_OK;
    if (cache_ok) {
      s.cache_hits += r.cache.outcome == AIO2_CACHE_HIT;
      s.cache_partial += r.cache.outcome == AIO2_CACHE_PARTIAL;
      s.cache_misses += r.cache.outcome == AIO2_CACHE_MISS;
      s.cache_by_cachestat += r.cache.method == AIO2_CACHE_BY_CACHESTAT;
      s.cache_by_nowait += r.cache.method == AIO2_CACHE_BY_NOWAIT;
      s.bytes_cached += r.cache.bytes_cached;
      s.bytes_requested += r.cache.bytes_requested;
    }
    std::string path = "path unknown";
    if (r.status[kExecutor] == AIO2_ATTR_OK) {
      path = path_name(r.executor.path);
      if (paths[path]++ == 0) path_order.push_back(path);
    }
    if (r.status[kTiming] != AIO2_ATTR_OK) continue;
    const aio2_attr_timing &t = r.timing;
    if (t.started_ns == 0) {
      s.never_ran++;
      continue;
    }
    queueing.add(path, minus_or_zero(t.started_ns, t.submitted_ns));
    service.add(path, minus_or_zero(t.finished_ns, t.started_ns));
    post.add(path, minus_or_zero(t.posted_ns, t.finished_ns));
    service_by_op.add(op_kind_name(r.o.kind), minus_or_zero(t.finished_ns, t.started_ns));
    if (cache_ok)
      service_by_cache.add(std::string("cache ") + cache_outcome_name(r.cache.outcome),
                           minus_or_zero(t.finished_ns, t.started_ns));
  }
  s.error_kinds = by_count(errors);
  for (const std::string &p : path_order) s.paths.emplace_back(p, paths[p]);
  std::stable_sort(s.paths.begin(), s.paths.end(),
                   [](const auto &a, const auto &b) { return a.second > b.second; });
  s.queueing = queueing.dists(true);
  s.service = service.dists(true);
  s.post = post.dists(true);
  s.service_by_cache = service_by_cache.dists(false);
  s.service_by_op = service_by_op.dists(false);
  return s;
}

// ---------------------------------------------------------------------------
// The readable report

namespace {

std::string feature_names(uint64_t f) {
  static const std::pair<uint64_t, const char *> names[] = {
      {AIO2_FEAT_RING, "ring"},       {AIO2_FEAT_SYNC, "sync"},   {AIO2_FEAT_EVENTFD, "eventfd"},
      {AIO2_FEAT_OVERFLOW, "overflow"}, {AIO2_FEAT_POOL, "pool"}, {AIO2_FEAT_CANCEL, "cancel"},
      {AIO2_FEAT_INLINE, "inline"},   {AIO2_FEAT_URING, "uring"},   {AIO2_FEAT_LEGACY, "legacy"}};
  std::string s;
  for (const auto &[bit, name] : names)
    if (f & bit) s += (s.empty() ? "" : " ") + std::string(name);
  return s.empty() ? "none" : s;
}

std::string uring_note(const run_info &info) {
  if (info.features & AIO2_FEAT_URING)
    return "io_uring in use (" + std::to_string(info.uring_entries) + " entries)";
  std::string s = "io_uring not in use (the context lacks AIO2_FEAT_URING)";
  if (info.policy == "uring") s += ": policy uring falls back to the pool";
  return s;
}

std::string file_line(const run_info &info) {
  if (info.file.empty()) return "none";
  std::string s = info.file + ", " + format_size(info.file_bytes);
  if (info.temporary) s += ", temporary (unlinked at creation)";
  if (info.direct) s += ", reads with O_DIRECT";
  return s;
}

void print_dists(FILE *out, const char *title, const dist_groups &groups) {
  bool first = true;
  for (const auto &[name, d] : groups) {
    std::fprintf(out, "  %-12s %-16s %8" PRIu64 " %9.1f %9.1f %9.1f %9.1f\n", first ? title : "",
                 name.c_str(), d.count, d.p50, d.p90, d.p99, d.max);
    first = false;
  }
}

}  // namespace

void print_report(FILE *out, const run_info &info, const summary &s) {
  std::fprintf(out, "%s: %s\n", info.tool.c_str(), info.workload.c_str());
  const double rate = info.elapsed_s > 0 ? static_cast<double>(s.completed) / info.elapsed_s : 0.0;
  if (info.header.empty()) {
    std::fprintf(out, "  file       %s\n", file_line(info).c_str());
    std::fprintf(out, "  policy     %s; %s\n", info.policy.c_str(), uring_note(info).c_str());
    std::fprintf(out, "  features   %s\n", feature_names(info.features).c_str());
    std::fprintf(out, "  requests   %" PRIu64 " at queue depth %u in %.3f s (%.0f/s), seed %" PRIu64 "%s\n",
                 s.requests, info.qd, info.elapsed_s, rate, info.seed,
                 info.interrupted ? "; INTERRUPTED: the rest was not submitted" : "");
  } else {
    for (const auto &[label, text] : info.header)
      std::fprintf(out, "  %-10s %s\n", label.c_str(), text.c_str());
    std::fprintf(out, "  features   %s; %s\n", feature_names(info.features).c_str(),
                 uring_note(info).c_str());
    std::fprintf(out, "  requests   %" PRIu64 ", at most %u submitted and not yet completed, in %.3f s (%.0f/s)\n",
                 s.requests, info.qd, info.elapsed_s, rate);
  }
  std::string ops;
  for (unsigned k = 0; k < kOpKinds; k++)
    if (s.ops[k])
      ops += (ops.empty() ? "" : ", ") + std::string(op_kind_name(static_cast<op_kind>(k))) + " " +
             std::to_string(s.ops[k]);
  std::fprintf(out, "  ops        %s\n", ops.c_str());
  std::string errs = std::to_string(s.errors);
  for (size_t i = 0; i < s.error_kinds.size(); i++)
    errs += (i ? ", " : " (") + std::to_string(s.error_kinds[i].second) + " " +
            s.error_kinds[i].first + (i + 1 == s.error_kinds.size() ? ")" : "");
  if (info.stray_events) errs += "; " + std::to_string(info.stray_events) + " stray events";
  std::fprintf(out, "  errors     %s\n", errs.c_str());

  std::fprintf(out, "\nattribute results, of %" PRIu64 " events\n", s.completed);
  for (unsigned a = 0; a < kAttrs; a++) {
    if (a == kTag && !info.tagged) continue;
    std::string line;
    for (unsigned c = 0; c < kStatusColumns; c++)
      if (s.status[a][c])
        line += (line.empty() ? "" : ", ") + std::string(status_name(c)) + " " +
                std::to_string(s.status[a][c]);
    if (a == kTag && s.status[a][AIO2_ATTR_OK])
      line += s.tag_mismatches ? "; " + std::to_string(s.tag_mismatches) + " tags did not match"
                               : "; every tag echoed its request's index";
    std::fprintf(out, "  %-10s %s\n", attr_name(a), line.empty() ? "none" : line.c_str());
  }

  const uint64_t with_cache = s.cache_hits + s.cache_partial + s.cache_misses;
  std::fprintf(out, "\ncache (over %" PRIu64 " requests with a cache result)\n", with_cache);
  if (with_cache) {
    std::fprintf(out, "  hits %" PRIu64 ", partial %" PRIu64 ", misses %" PRIu64 ": hit ratio %.1f%%\n",
                 s.cache_hits, s.cache_partial, s.cache_misses, percent(s.cache_hits, with_cache));
    std::fprintf(out, "  %s of %s requested were cached (%.1f%%); method: cachestat %" PRIu64
                      ", nowait %" PRIu64 "\n",
                 mib(s.bytes_cached).c_str(), mib(s.bytes_requested).c_str(),
                 percent(s.bytes_cached, s.bytes_requested), s.cache_by_cachestat, s.cache_by_nowait);
  } else {
    std::fprintf(out, "  none: see the cache attribute's statuses above\n");
  }

  uint64_t with_path = 0;
  for (const auto &p : s.paths) with_path += p.second;
  std::fprintf(out, "\nexecution paths (over %" PRIu64 " requests with an executor result)\n",
               with_path);
  for (const auto &[name, n] : s.paths)
    std::fprintf(out, "  %-14s %8" PRIu64 "  %5.1f%%\n", name.c_str(), n, percent(n, with_path));

  std::fprintf(out, "\ntimes in microseconds%s\n",
               s.never_ran ? (" (" + std::to_string(s.never_ran) + " requests never ran)").c_str()
                           : "");
  std::fprintf(out, "  %-12s %-16s %8s %9s %9s %9s %9s\n", "", "", "count", "p50", "p90", "p99",
               "max");
  print_dists(out, "queueing", s.queueing);
  print_dists(out, "service", s.service);
  if (s.service_by_op.size() > 1) print_dists(out, "", s.service_by_op);
  print_dists(out, "", s.service_by_cache);
  print_dists(out, "post delay", s.post);
  std::fprintf(out,
               "  (queueing: started - submitted; service: finished - started;"
               " post delay: posted - finished)\n");
}

// ---------------------------------------------------------------------------
// The JSON report

std::string report_json(const run_info &info, const summary &s) {
  using json = nlohmann::ordered_json;
  json errors = json::object();
  for (const auto &[k, n] : s.error_kinds) errors[k] = n;
  json j = {{"workload", info.workload},
            {"file", info.file},
            {"file_bytes", info.file_bytes},
            {"temporary_file", info.temporary},
            {"direct", info.direct},
            {"policy", info.policy},
            {"features",
             {{"bits", info.features},
              {"names", feature_names(info.features)},
              {"uring", (info.features & AIO2_FEAT_URING) != 0},
              {"inline", (info.features & AIO2_FEAT_INLINE) != 0},
              {"uring_entries", info.uring_entries}}},
            {"queue_depth", info.qd},
            {"seed", info.seed},
            {"elapsed_s", info.elapsed_s},
            {"interrupted", info.interrupted},
            {"requests", s.requests},
            {"completed", s.completed},
            {"errors", s.errors},
            {"error_kinds", errors},
            {"stray_events", info.stray_events},
            {"never_ran", s.never_ran}};
  j["ops"] = json::object();
  for (unsigned k = 0; k < kOpKinds; k++) j["ops"][op_kind_name(static_cast<op_kind>(k))] = s.ops[k];
  j["attribute_status"] = json::object();
  for (unsigned a = 0; a < kAttrs; a++) {
    if (a == kTag && !info.tagged) continue;
    json st = json::object();
    for (unsigned c = 0; c < kStatusColumns; c++) st[status_name(c)] = s.status[a][c];
    j["attribute_status"][attr_name(a)] = st;
  }
  j["tag_mismatches"] = s.tag_mismatches;
  j["data_mismatches"] = s.data_mismatches;
  const uint64_t with_cache = s.cache_hits + s.cache_partial + s.cache_misses;
  j["cache"] = {{"with_result", with_cache},
                {"hits", s.cache_hits},
                {"partial", s.cache_partial},
                {"misses", s.cache_misses},
                {"hit_ratio", with_cache ? static_cast<double>(s.cache_hits) /
                                               static_cast<double>(with_cache)
                                         : 0.0},
                {"bytes_cached", s.bytes_cached},
                {"bytes_requested", s.bytes_requested},
                {"by_cachestat", s.cache_by_cachestat},
                {"by_nowait", s.cache_by_nowait}};
  j["paths"] = json::array();
  uint64_t with_path = 0;
  for (const auto &p : s.paths) with_path += p.second;
  for (const auto &[name, n] : s.paths)
    j["paths"].push_back({{"path", name}, {"count", n}, {"percent", percent(n, with_path)}});
  const auto dists = [](const dist_groups &groups) {
    json o = json::object();
    for (const auto &[name, d] : groups)
      o[name] = {{"count", d.count}, {"p50", d.p50}, {"p90", d.p90}, {"p99", d.p99}, {"max", d.max}};
    return o;
  };
  j["times_us"] = {{"queueing", dists(s.queueing)},
                   {"service", dists(s.service)},
                   {"post_delay", dists(s.post)},
                   {"service_by_cache", dists(s.service_by_cache)},
                   {"service_by_op", dists(s.service_by_op)}};
  return j.dump(2) + "\n";
}

// ---------------------------------------------------------------------------
// The Chrome trace

namespace {

// Nanoseconds as microseconds with three decimals: exact, and finite.
std::string us(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIu64 ".%03u", ns / 1000, static_cast<unsigned>(ns % 1000));
  return buf;
}

std::string request_name(const op &o) {
  std::string s = op_kind_name(o.kind);
  if (o.kind == op_kind::read || o.kind == op_kind::write)
    s += " " + std::to_string(o.len) + "@" + std::to_string(o.offset);
  return s;
}

// Whether the request's slice can be drawn: its timing result is there.
bool has_slice(const record &r) {
  return r.done && r.status[kTiming] == AIO2_ATTR_OK && r.timing.submitted_ns != 0;
}

// The end of a request's slice: finished, or posted when it never ran.
uint64_t slice_end(const record &r) {
  const aio2_attr_timing &t = r.timing;
  return std::max(t.started_ns ? t.finished_ns : t.posted_ns, t.submitted_ns);
}

// Lanes (from 1) so that no two slices on a lane overlap: each request, in
// order of submission, takes the lowest lane whose last slice ended by the
// time it was submitted. 0 for requests without a slice.
std::vector<uint32_t> assign_lanes(const std::vector<record> &recs, uint32_t &lanes) {
  std::vector<size_t> order;
  for (size_t i = 0; i < recs.size(); i++)
    if (has_slice(recs[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return recs[a].timing.submitted_ns < recs[b].timing.submitted_ns;
  });
  using busy_lane = std::pair<uint64_t, uint32_t>;  // (end, lane)
  std::priority_queue<busy_lane, std::vector<busy_lane>, std::greater<>> busy;
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> free_lanes;
  std::vector<uint32_t> lane(recs.size(), 0);
  lanes = 0;
  for (const size_t i : order) {
    const uint64_t start = recs[i].timing.submitted_ns;
    while (!busy.empty() && busy.top().first <= start) {
      free_lanes.push(busy.top().second);
      busy.pop();
    }
    uint32_t l;
    if (free_lanes.empty()) {
      l = ++lanes;
    } else {
      l = free_lanes.top();
      free_lanes.pop();
    }
    lane[i] = l;
    busy.emplace(slice_end(recs[i]), l);
  }
  return lane;
}

class event_writer {
 public:
  explicit event_writer(FILE *out) : out_(out) {}
  // Starts an event object; the caller writes its fields after the comma.
  void begin() {
    std::fputs(first_ ? "\n" : ",\n", out_);
    first_ = false;
  }
  void metadata(const char *name, uint32_t tid, const char *key, const std::string &json_value) {
    begin();
    std::fprintf(out_, R"({"name":"%s","ph":"M","pid":1,"tid":%u,"args":{"%s":%s}})", name, tid,
                 key, json_value.c_str());
  }
  void slice(const std::string &name, const char *cat, uint32_t tid, uint64_t ts, uint64_t dur,
             const std::string &args) {
    begin();
    std::fprintf(out_, R"({"name":%s,"cat":"%s","ph":"X","pid":1,"tid":%u,"ts":%s,"dur":%s,"args":%s})",
                 quoted(name).c_str(), cat, tid, us(ts).c_str(), us(dur).c_str(), args.c_str());
  }
  void instant(const std::string &name, uint32_t tid, uint64_t ts, const std::string &args) {
    begin();
    std::fprintf(out_, R"({"name":%s,"cat":"request","ph":"i","s":"t","pid":1,"tid":%u,"ts":%s,"args":%s})",
                 quoted(name).c_str(), tid, us(ts).c_str(), args.c_str());
  }
  static std::string quoted(const std::string &s) { return nlohmann::json(s).dump(); }

 private:
  FILE *out_;
  bool first_ = true;
};

// The args of a request's parent slice.
std::string request_args(size_t idx, const record &r, int64_t ppid) {
  nlohmann::ordered_json a;
  a["user_data"] = idx;
  a["res"] = r.res;
  if (const std::string e = error_kind(r, ppid); !e.empty()) a["error"] = e;
  if (r.status[kExecutor] == AIO2_ATTR_OK) {
    a["path"] = path_name(r.executor.path);
    a["worker"] = r.executor.worker;
    a["cpu"] = r.executor.cpu;
    a["node"] = r.executor.node;
  } else {
    a["path"] = status_name(status_column(r.status[kExecutor]));
  }
  if (r.status[kCache] == AIO2_ATTR_OK) {
    a["cache"] = cache_outcome_name(r.cache.outcome);
    a["bytes_cached"] = r.cache.bytes_cached;
    a["bytes_requested"] = r.cache.bytes_requested;
  } else {
    a["cache"] = status_name(status_column(r.status[kCache]));
  }
  if (r.status[kTiming] == AIO2_ATTR_OK) {
    const aio2_attr_timing &t = r.timing;
    if (t.started_ns) {
      a["queued_us"] = static_cast<double>(minus_or_zero(t.started_ns, t.submitted_ns)) / 1000.0;
      a["service_us"] = static_cast<double>(minus_or_zero(t.finished_ns, t.started_ns)) / 1000.0;
      a["post_delay_us"] = static_cast<double>(minus_or_zero(t.posted_ns, t.finished_ns)) / 1000.0;
    } else {
      a["never_ran"] = true;
    }
  } else {
    a["timing"] = status_name(status_column(r.status[kTiming]));
  }
  return a.dump();
}

}  // namespace

void write_chrome_trace(FILE *out, const run_info &info, const std::vector<record> &recs) {
  uint32_t lanes = 0;
  const std::vector<uint32_t> lane = assign_lanes(recs, lanes);
  // Time 0 is the first submission (aio2's clock, or ours before the call
  // for a request without a timing result).
  uint64_t base = UINT64_MAX;
  bool untimed = false;
  for (const record &r : recs) {
    if (has_slice(r)) {
      base = std::min<uint64_t>(base, r.timing.submitted_ns);
    } else if (r.client_submit_ns) {
      base = std::min<uint64_t>(base, static_cast<uint64_t>(r.client_submit_ns));
      untimed = true;
    }
  }
  const int64_t ppid = getppid();

  std::fprintf(out, R"({"displayTimeUnit":"ns","otherData":{"tool":%s,"workload":%s,)"
                    R"("policy":%s,"queue_depth":%u},"traceEvents":[)",
               event_writer::quoted(info.tool).c_str(), event_writer::quoted(info.workload).c_str(),
               event_writer::quoted(info.policy).c_str(), info.qd);
  event_writer w(out);
  w.metadata("process_name", 0, "name", event_writer::quoted(info.tool + ": " + info.workload));
  for (uint32_t l = 1; l <= lanes; l++) {
    w.metadata("thread_name", l, "name", event_writer::quoted("lane " + std::to_string(l)));
    w.metadata("thread_sort_index", l, "sort_index", std::to_string(l));
  }
  if (untimed) w.metadata("thread_name", 0, "name", "\"requests without a timing result\"");

  for (size_t i = 0; i < recs.size(); i++) {
    const record &r = recs[i];
    const std::string args = request_args(i, r, ppid);
    if (!has_slice(r)) {
      if (r.client_submit_ns)
        w.instant(request_name(r.o), 0, minus_or_zero(static_cast<uint64_t>(r.client_submit_ns), base),
                  args);
      continue;
    }
    const aio2_attr_timing &t = r.timing;
    const uint64_t ts = t.submitted_ns - base, end = slice_end(r) - base;
    const std::string idx = R"({"user_data":)" + std::to_string(i) + "}";
    if (t.started_ns == 0) {  // never ran: a queued-only slice up to its posting
      w.slice(request_name(r.o) + " (never ran)", "request", lane[i], ts, end - ts, args);
      w.slice("queued", "phase", lane[i], ts, end - ts, idx);
      continue;
    }
    const uint64_t started = std::clamp<uint64_t>(t.started_ns - std::min(t.started_ns, base), ts, end);
    w.slice(request_name(r.o), "request", lane[i], ts, end - ts, args);
    w.slice("queued", "phase", lane[i], ts, started - ts, idx);
    w.slice("service", "phase", lane[i], started, end - started, idx);
  }
  std::fputs("\n]}\n", out);
}

}  // namespace aio2_tool::trace
