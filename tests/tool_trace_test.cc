// SPDX-License-Identifier: MIT
// `aio2 trace` end to end: runs the command (AIO2_TOOL_PATH) on small sizes, parses
// its Chrome trace and JSON report, and checks their shape and that their
// numbers are sane; bad arguments and input give one line on stderr, a
// non-zero exit and no files left behind. No timing thresholds.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_util.h"

namespace {

using aio2_tool_test::run_result;
using aio2_tool_test::temp_dir;
using json = nlohmann::json;

// The entries of `dir` but for `except`.
std::vector<std::string> entries_except(const temp_dir &dir, const std::vector<std::string> &except) {
  std::vector<std::string> out;
  for (const std::string &name : dir.entries())
    if (std::find(except.begin(), except.end(), name) == except.end()) out.push_back(name);
  return out;
}

// Runs `aio2 trace ARGS...` with TMPDIR set to `dir`, where the command's
// temporary file would be seen if it stayed.
run_result run_trace(const temp_dir &dir, std::vector<std::string> args) {
  args.insert(args.begin(), "trace");
  return aio2_tool_test::run_aio2(args, dir.path().string());
}

json parse_file(const std::string &path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path << " was not written";
  try {
    return json::parse(in);
  } catch (const json::exception &e) {
    ADD_FAILURE() << path << " is not valid JSON: " << e.what();
    return json::object();
  }
}

// Slices are compared in microseconds written with three decimals; parsing
// them as doubles may be off by a rounding error.
constexpr double kEps = 1e-3;

double num(const json &v) {
  EXPECT_TRUE(v.is_number()) << v.dump();
  return v.is_number() ? v.get<double>() : NAN;
}

// The shape of a Chrome trace of `requests` requests (see docs/trace.md):
// finite non-negative X events; one "request" slice per request with its
// "queued" and "service" phases nested inside on the same lane; lanes that
// never overlap and are named.
void check_chrome_trace(const json &doc, uint64_t requests) {
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.value("displayTimeUnit", ""), "ns");
  ASSERT_TRUE(doc.contains("traceEvents") && doc["traceEvents"].is_array());
  const json &events = doc["traceEvents"];
  ASSERT_FALSE(events.empty());

  struct slice {
    double ts, dur;
    int64_t tid;
  };
  std::map<uint64_t, slice> parents;                   // by user_data
  std::map<uint64_t, std::map<std::string, slice>> phases;
  std::map<int64_t, std::vector<slice>> lanes;
  std::map<int64_t, std::string> lane_names;
  for (const json &e : events) {
    ASSERT_TRUE(e.is_object());
    const std::string ph = e.value("ph", "");
    ASSERT_TRUE(e.contains("pid") && e.contains("tid") && e.contains("name")) << e.dump();
    if (ph == "M") {
      if (e["name"] == "thread_name") lane_names[e["tid"].get<int64_t>()] = e["args"]["name"];
      continue;
    }
    ASSERT_EQ(ph, "X") << "every request has a timing result here: " << e.dump();
    const double ts = num(e["ts"]), dur = num(e["dur"]);
    ASSERT_TRUE(std::isfinite(ts) && std::isfinite(dur)) << e.dump();
    EXPECT_GE(ts, 0) << e.dump();
    EXPECT_GE(dur, 0) << e.dump();
    ASSERT_TRUE(e.contains("args") && e["args"].contains("user_data")) << e.dump();
    const uint64_t ud = e["args"]["user_data"].get<uint64_t>();
    const slice s{ts, dur, e["tid"].get<int64_t>()};
    const std::string cat = e.value("cat", "");
    if (cat == "request") {
      EXPECT_TRUE(parents.emplace(ud, s).second) << "two slices for request " << ud;
      lanes[s.tid].push_back(s);
      EXPECT_TRUE(e["args"].contains("res") && e["args"].contains("path") &&
                  e["args"].contains("cache"))
          << e.dump();
    } else {
      ASSERT_EQ(cat, "phase") << e.dump();
      EXPECT_TRUE(phases[ud].emplace(e["name"].get<std::string>(), s).second) << e.dump();
    }
  }
  EXPECT_EQ(parents.size(), requests);
  for (const auto &[ud, p] : parents) {
    ASSERT_TRUE(phases.count(ud)) << "request " << ud << " has no phases";
    const auto &ph = phases[ud];
    ASSERT_TRUE(ph.count("queued") && ph.count("service")) << "request " << ud;
    const slice &q = ph.at("queued"), &sv = ph.at("service");
    EXPECT_EQ(q.tid, p.tid);
    EXPECT_EQ(sv.tid, p.tid);
    EXPECT_GE(q.ts, p.ts - kEps) << "request " << ud;
    EXPECT_LE(q.ts + q.dur, sv.ts + kEps) << "request " << ud;
    EXPECT_LE(sv.ts + sv.dur, p.ts + p.dur + kEps) << "request " << ud;
  }
  EXPECT_EQ(phases.size(), parents.size());
  for (auto &[tid, v] : lanes) {
    EXPECT_TRUE(lane_names.count(tid)) << "lane " << tid << " has no thread_name";
    std::sort(v.begin(), v.end(), [](const slice &a, const slice &b) { return a.ts < b.ts; });
    for (size_t i = 1; i < v.size(); i++)
      EXPECT_LE(v[i - 1].ts + v[i - 1].dur, v[i].ts + kEps) << "slices overlap on lane " << tid;
  }
}

// Percentiles in order, counts consistent.
void check_dists(const json &groups, const char *what) {
  ASSERT_TRUE(groups.is_object()) << what;
  for (const auto &[name, d] : groups.items()) {
    SCOPED_TRACE(std::string(what) + " " + name);
    EXPECT_GT(d["count"].get<uint64_t>(), 0u);
    const double p50 = num(d["p50"]), p90 = num(d["p90"]), p99 = num(d["p99"]), max = num(d["max"]);
    EXPECT_GE(p50, 0);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    EXPECT_LE(p99, max);
  }
}

// What every report must satisfy; returns the report.
json check_report(const json &r, uint64_t requests) {
  EXPECT_EQ(r["requests"].get<uint64_t>(), requests);
  EXPECT_EQ(r["completed"].get<uint64_t>(), requests);
  EXPECT_EQ(r["errors"].get<uint64_t>(), 0u) << r["error_kinds"].dump();
  EXPECT_EQ(r["stray_events"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["tag_mismatches"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["data_mismatches"].get<uint64_t>(), 0u);
  EXPECT_FALSE(r["interrupted"].get<bool>());
  uint64_t ops = 0;
  for (const auto &[k, n] : r["ops"].items()) ops += n.get<uint64_t>();
  EXPECT_EQ(ops, requests);
  for (const auto &[attr, st] : r["attribute_status"].items()) {
    uint64_t sum = 0;
    for (const auto &[k, n] : st.items()) sum += n.get<uint64_t>();
    EXPECT_EQ(sum, requests) << attr;
    EXPECT_EQ(st["missing"].get<uint64_t>(), 0u) << attr;
  }
  EXPECT_EQ(r["attribute_status"]["timing"]["ok"].get<uint64_t>(), requests);
  EXPECT_EQ(r["attribute_status"]["tag"]["ok"].get<uint64_t>(), requests);
  const json &c = r["cache"];
  EXPECT_EQ(c["hits"].get<uint64_t>() + c["partial"].get<uint64_t>() + c["misses"].get<uint64_t>(),
            r["attribute_status"]["cache"]["ok"].get<uint64_t>());
  EXPECT_LE(r["attribute_status"]["cache"]["ok"].get<uint64_t>(), r["ops"]["read"].get<uint64_t>());
  EXPECT_LE(c["bytes_cached"].get<uint64_t>(), c["bytes_requested"].get<uint64_t>());
  uint64_t with_path = 0;
  for (const json &p : r["paths"]) with_path += p["count"].get<uint64_t>();
  EXPECT_EQ(with_path, r["attribute_status"]["executor"]["ok"].get<uint64_t>());
  for (const char *t : {"queueing", "service", "post_delay", "service_by_cache", "service_by_op"})
    check_dists(r["times_us"][t], t);
  EXPECT_EQ(r["times_us"]["queueing"]["all"]["count"].get<uint64_t>(), requests - r["never_ran"].get<uint64_t>());
  return r;
}

// Runs one trace with --chrome-trace and --json, checks both, returns the
// report.
json traced_run(const temp_dir &dir, std::vector<std::string> args, uint64_t requests) {
  const std::string trace = dir / "trace.json", report = dir / "report.json";
  args.insert(args.end(), {"--chrome-trace", trace, "--json", report});
  const run_result r = run_trace(dir, args);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("cache"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("execution paths"), std::string::npos) << r.out;
  check_chrome_trace(parse_file(trace), requests);
  const json rep = check_report(parse_file(report), requests);
  // Nothing left behind but what was asked for (the temporary file is
  // unlinked at creation; outputs are renamed into place).
  EXPECT_EQ(entries_except(dir, {"trace.json", "report.json", "ops.txt"}), std::vector<std::string>{});
  return rep;
}

TEST(ToolTrace, ColdThenWarmOnThePoolShowsMissesThenHits) {
  temp_dir dir;
  const json r = traced_run(dir, {"--size", "4M", "--count", "2000", "--policy", "pool"}, 2000);
  EXPECT_EQ(r["workload"], "cold_then_warm_randread");
  EXPECT_EQ(r["ops"]["read"].get<uint64_t>(), 2000u);
  // On the pool every read of a regular file has a cache result.
  EXPECT_EQ(r["attribute_status"]["cache"]["ok"].get<uint64_t>(), 2000u);
  EXPECT_EQ(r["attribute_status"]["executor"]["ok"].get<uint64_t>(), 2000u);
  ASSERT_EQ(r["paths"].size(), 1u);
  EXPECT_EQ(r["paths"][0]["path"], "pool");
  // 1000 blocks read twice: every second read of a block hits, but for the
  // few whose two reads were in flight together (at most the queue depth).
  EXPECT_GT(r["cache"]["hits"].get<uint64_t>(), 0u);
  EXPECT_GE(r["cache"]["hits"].get<uint64_t>(), 1000u - 32u);
}

TEST(ToolTrace, MixedReadWriteFsyncWithTheDefaultPolicy) {
  temp_dir dir;
  const json r = traced_run(dir, {"--workload", "mixed_rw_fsync", "--size", "4M", "--count", "2000"}, 2000);
  const uint64_t reads = r["ops"]["read"], writes = r["ops"]["write"], fsyncs = r["ops"]["fsync"];
  EXPECT_GT(reads, writes);
  EXPECT_GT(writes, 0u);
  EXPECT_GT(fsyncs, 0u);
  EXPECT_LE(fsyncs, writes / 32 + 1);
  // No cache result for a write or an fsync.
  EXPECT_LE(r["attribute_status"]["cache"]["ok"].get<uint64_t>(), reads);
}

TEST(ToolTrace, GetppidHasNoCacheResult) {
  temp_dir dir;
  const json r =
      traced_run(dir, {"--workload", "syscall_getppid", "--count", "500", "--policy", "pool"}, 500);
  EXPECT_EQ(r["ops"]["getppid"].get<uint64_t>(), 500u);
  EXPECT_EQ(r["attribute_status"]["cache"]["not_applicable"].get<uint64_t>(), 500u);
  EXPECT_EQ(r["file"], "");
}

TEST(ToolTrace, OpsFileRunsEveryLineOnce) {
  temp_dir dir;
  std::ofstream(dir / "ops.txt") << "# a comment, then a blank line\n\n"
                                        "read 0 4096\n"
                                        "read 4K 8K   # two blocks\n"
                                        "write 0x3000 4096\n"
                                        "read 100 1000\n"
                                        "fsync\n"
                                        "getppid\n"
                                        "  read 1M 4K\n";
  const json r = traced_run(dir, {"--ops", dir / "ops.txt", "--size", "2M", "--qd", "4"}, 7);
  EXPECT_EQ(r["ops"]["read"].get<uint64_t>(), 4u);
  EXPECT_EQ(r["ops"]["write"].get<uint64_t>(), 1u);
  EXPECT_EQ(r["ops"]["fsync"].get<uint64_t>(), 1u);
  EXPECT_EQ(r["ops"]["getppid"].get<uint64_t>(), 1u);
  EXPECT_EQ(r["queue_depth"].get<unsigned>(), 4u);
}

TEST(ToolTrace, ReadsAnExistingFileReadOnly) {
  temp_dir dir;
  {
    std::ofstream f(dir / "data.bin", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 64; i++) f << block;
  }
  const std::string report = dir / "report.json";
  const run_result r = run_trace(dir, {"--file", dir / "data.bin", "--workload", "cached_randread_qd32",
                                   "--count", "300", "--json", report});
  ASSERT_EQ(r.status, 0) << r.err;
  const json rep = check_report(parse_file(report), 300);
  EXPECT_EQ(rep["file"], dir / "data.bin");
  EXPECT_FALSE(rep["temporary_file"].get<bool>());
}

TEST(ToolTrace, HelpDescribesEveryOptionAndWorkload) {
  temp_dir dir;
  const run_result r = run_trace(dir, {"--help"});
  EXPECT_EQ(r.status, 0);
  for (const char *s :
       {"--workload", "--ops", "--file", "--size", "--qd", "--count", "--duration", "--policy",
        "--seed", "--chrome-trace", "--json", "cold_then_warm_randread", "cached_randread_qd1",
        "cached_randread_qd32", "direct_randread_qd32", "syscall_getppid", "mixed_rw_fsync",
        "read OFFSET LEN", "perfetto"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

// A bad argument or input: a non-zero exit, one line on stderr that
// contains `names`, nothing on stdout, and no file left behind.
void expect_refused(std::vector<std::string> args, const std::string &names,
                    const std::string &ops = "") {
  temp_dir dir;
  SCOPED_TRACE(names);
  if (!ops.empty()) std::ofstream(dir / "ops.txt") << ops;
  for (auto &a : args)
    if (a == "OPS") a = dir / "ops.txt";
  // Outputs first, so that an option missing its value stays last.
  args.insert(args.begin(), {"--json", dir / "report.json", "--chrome-trace", dir / "trace.json"});
  const run_result r = run_trace(dir, args);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, -1) << "it did not exit normally";
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_NE(r.err.find(names), std::string::npos) << r.err;
  EXPECT_EQ(entries_except(dir, {"ops.txt"}), std::vector<std::string>{});
}

TEST(ToolTraceErrors, UnknownWorkload) { expect_refused({"--workload", "frobnicate"}, "unknown workload 'frobnicate'"); }
TEST(ToolTraceErrors, QueueDepthOutOfRange) {
  expect_refused({"--qd", "0"}, "--qd 0 is out of range");
  expect_refused({"--qd", "4097"}, "--qd 4097 is out of range");
  expect_refused({"--qd", "x"}, "--qd x is out of range");
}
TEST(ToolTraceErrors, SizeOutOfRange) {
  expect_refused({"--size", "0"}, "--size 0 is out of range");
  expect_refused({"--size", "5000"}, "--size 5000 is out of range");
  expect_refused({"--size", "1T"}, "--size 1T is out of range");
}
TEST(ToolTraceErrors, MissingFile) {
  expect_refused({"--file", "/nonexistent/aio2-trace-test"}, "cannot open /nonexistent/aio2-trace-test");
  expect_refused({"--ops", "/nonexistent/ops.txt"}, "cannot open ops file /nonexistent/ops.txt");
}
TEST(ToolTraceErrors, FileThatIsADirectory) { expect_refused({"--file", "/"}, "/ is not a regular file"); }
TEST(ToolTraceErrors, MalformedOpsLineIsNamedByNumber) {
  expect_refused({"--ops", "OPS"}, "ops.txt:3: unknown operation 'rd'", "read 0 4096\n# ok\nrd 0 4096\n");
  expect_refused({"--ops", "OPS"}, "ops.txt:2: read takes OFFSET and LEN", "fsync\nread 0\n");
  expect_refused({"--ops", "OPS", "--size", "1M"}, "ops.txt:1: read of 4096 bytes at 1048576 runs past the end",
                 "read 1M 4096\n");
  expect_refused({"--ops", "OPS"}, "ops.txt:1: LEN 0 is out of range", "write 0 0\n");
  expect_refused({"--ops", "OPS"}, "ops.txt:1: bad OFFSET 'x'", "read x 4096\n");
  expect_refused({"--ops", "OPS"}, "holds no operation", "# nothing\n\n");
}
TEST(ToolTraceErrors, WritesToAReadOnlyFileAreRefused) {
  expect_refused({"--ops", "OPS", "--file", "/etc/passwd"}, "ops.txt:1: write: the file is opened read-only",
                 "write 0 1\n");
  expect_refused({"--workload", "mixed_rw_fsync", "--file", "/etc/passwd"}, "mixed_rw_fsync writes");
}
TEST(ToolTraceErrors, ConflictingAndUnknownOptions) {
  expect_refused({"--frobnicate"}, "unknown option '--frobnicate'");
  expect_refused({"--count", "5", "--duration", "1"}, "--count and --duration exclude each other");
  expect_refused({"--policy", "fast"}, "unknown policy 'fast'");
  expect_refused({"--count"}, "--count needs a value");
  expect_refused({"extra"}, "unexpected argument 'extra'");
}
TEST(ToolTraceErrors, OutputInAMissingDirectory) {
  temp_dir dir;
  const run_result r = run_trace(dir, {"--count", "10", "--size", "64K", "--json", "/nonexistent/dir/r.json"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("cannot create /nonexistent/dir/r.json"), std::string::npos) << r.err;
  EXPECT_EQ(entries_except(dir, {}), std::vector<std::string>{});
}

}  // namespace
