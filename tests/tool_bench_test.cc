// SPDX-License-Identifier: MIT
// `aio2 bench` end to end: the built aio2 command (AIO2_TOOL_PATH) runs on a
// tiny file in a temporary directory; its JSON, CSV and plot are parsed and
// checked, its argument errors must be one line and leave nothing behind.
// No test asserts a timing.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tool_util.h"

namespace {

using aio2_tool_test::read_file;
using aio2_tool_test::run_aio2;
using aio2_tool_test::run_result;
using aio2_tool_test::temp_dir;
using json = nlohmann::json;

// One CSV line split into fields ("" quoting, as RFC 4180).
std::vector<std::string> csv_fields(const std::string &line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); i++) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', i++;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

size_t count_lines(const std::string &s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// The short run every end-to-end test starts from.
std::vector<std::string> tiny(const temp_dir &d, std::vector<std::string> more) {
  std::vector<std::string> a = {"bench", "--size", "8M", "--duration", "0.05", "--warmup", "0.01",
                                "--reps", "1", "--dir", d.path().string()};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

TEST(ToolBench, EndToEndJsonCsvPng) {
  temp_dir d;
  const run_result r =
      run_aio2(tiny(d, {"--engines", "aio2,aio2_pool,sync,sync_nowait,liburing", "--workloads",
                        "cached_randread_qd1,syscall_getppid", "--json", d / "out.json", "--csv",
                        d / "out.csv", "--plot", d / "out.png"}),
               d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("cached_randread_qd1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vs_liburing"), std::string::npos) << r.out;

  const json rows = json::parse(read_file(d / "out.json"));
  ASSERT_TRUE(rows.is_array());
  ASSERT_EQ(rows.size(), 10u);  // 2 workloads x 5 engines, all of them applicable
  std::set<std::string> workloads, engines;
  for (const json &row : rows) {
    for (const char *k : {"workload", "engine", "attrs", "ops_per_s", "p50_us", "p99_us", "qd", "status"})
      ASSERT_TRUE(row.contains(k)) << k << " missing in " << row.dump();
    EXPECT_EQ(row["status"], "ok") << row.dump();
    EXPECT_EQ(row["attrs"], "") << row.dump();
    EXPECT_GT(row["ops_per_s"].get<double>(), 0) << row.dump();
    EXPECT_LE(row["p50_us"].get<double>(), row["p99_us"].get<double>()) << row.dump();
    workloads.insert(row["workload"].get<std::string>());
    engines.insert(row["engine"].get<std::string>());
  }
  EXPECT_EQ(workloads, (std::set<std::string>{"cached_randread_qd1", "syscall_getppid"}));
  EXPECT_EQ(engines, (std::set<std::string>{"aio2", "aio2_pool", "sync", "sync_nowait", "liburing"}));

  const std::vector<std::string> csv = lines_of(read_file(d / "out.csv"));
  ASSERT_EQ(csv.size(), rows.size() + 1);
  const std::vector<std::string> header = csv_fields(csv[0]);
  for (const char *k : {"workload", "engine", "attrs", "ops_per_s", "p50_us", "p99_us"})
    EXPECT_NE(std::find(header.begin(), header.end(), k), header.end()) << k;
  for (size_t i = 1; i < csv.size(); i++) EXPECT_EQ(csv_fields(csv[i]).size(), header.size()) << csv[i];

  const std::string png = read_file(d / "out.png");
  ASSERT_GE(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  // Only the outputs remain: the temporary files are gone.
  EXPECT_EQ(d.entries(), (std::vector<std::string>{"out.csv", "out.json", "out.png"}));
}

TEST(ToolBench, AttributeSetsNotApplicableRowsAndSvg) {
  temp_dir d;
  const run_result r = run_aio2(
      tiny(d, {"--engines", "aio2_pool,posix_aio,sync", "--workloads", "syscall_getppid", "--attrs",
               "none", "--attrs", "timing,cache", "--qd", "4", "--json", d / "out.json", "--csv",
               d / "out.csv", "--plot", d / "out.svg"}),
      d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(read_file(d / "out.json"));
  ASSERT_TRUE(rows.is_array());
  // aio2_pool once per attribute set, posix_aio (n/a), sync.
  ASSERT_EQ(rows.size(), 4u);
  std::multiset<std::string> pool_attrs;
  for (const json &row : rows) {
    ASSERT_TRUE(row.contains("attrs")) << row.dump();
    if (row["engine"] == "aio2_pool") {
      pool_attrs.insert(row["attrs"].get<std::string>());
      EXPECT_EQ(row["status"], "ok");
      EXPECT_EQ(row["qd"], 4);
      if (row["attrs"] == "timing,cache") {
        EXPECT_NE(row["attr_status"].get<std::string>().find("timing:"), std::string::npos)
            << row.dump();
      }
    } else if (row["engine"] == "posix_aio") {
      EXPECT_EQ(row["status"], "n/a");
      EXPECT_TRUE(row["ops_per_s"].is_null());
    } else {
      EXPECT_EQ(row["engine"], "sync");
      EXPECT_EQ(row["qd"], 1);
    }
  }
  EXPECT_EQ(pool_attrs, (std::multiset<std::string>{"", "timing,cache"}));
  EXPECT_NE(r.out.find("n/a"), std::string::npos);

  // The CSV quotes the comma inside "timing,cache".
  const std::vector<std::string> csv = lines_of(read_file(d / "out.csv"));
  ASSERT_EQ(csv.size(), rows.size() + 1);
  const std::vector<std::string> header = csv_fields(csv[0]);
  const auto attrs_col = static_cast<size_t>(std::find(header.begin(), header.end(), "attrs") - header.begin());
  ASSERT_LT(attrs_col, header.size());
  bool found = false;
  for (size_t i = 1; i < csv.size(); i++) {
    const std::vector<std::string> f = csv_fields(csv[i]);
    ASSERT_EQ(f.size(), header.size()) << csv[i];
    found = found || f[attrs_col] == "timing,cache";
  }
  EXPECT_TRUE(found);

  const std::string svg = read_file(d / "out.svg");
  const bool svg_start = svg.rfind("<?xml", 0) == 0 || svg.rfind("<svg", 0) == 0;
  EXPECT_TRUE(svg_start) << svg.substr(0, 64);
  EXPECT_EQ(d.entries(), (std::vector<std::string>{"out.csv", "out.json", "out.svg"}));
}

// These three run a longer window than tiny()'s 0.05 s (0.3 s: the last
// value given wins), so that a machine loaded by other builds still completes
// requests inside it; nothing is timed.
//
// The rows' path column and labels come from what the requests reported:
// getppid under AUTO runs inline (and says it is synchronous), POOL runs on
// the pool, and the context without io_uring never reports io_uring.
TEST(ToolBench, PathsMeasuredAndLabelled) {
  temp_dir d;
  const run_result r = run_aio2(tiny(d, {"--duration", "0.3", "--engines",
                                         "aio2,aio2_pool,aio2_no_uring,aio2_registered,sync",
                                         "--workloads",
                                         "cached_randread_qd1,syscall_getppid", "--qd", "4",
                                         "--json", d / "out.json"}),
                                d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(read_file(d / "out.json"));
  ASSERT_EQ(rows.size(), 10u);
  for (const json &row : rows) {
    ASSERT_TRUE(row.contains("path") && row.contains("vs_liburing_tuned")) << row.dump();
    EXPECT_EQ(row["status"], "ok") << row.dump();
    const std::string path = row["path"].get<std::string>();
    const std::string note = row["note"].get<std::string>();
    if (row["engine"] == "sync") {
      EXPECT_EQ(path, "") << row.dump();
    } else if (row["engine"] == "aio2_pool") {
      EXPECT_EQ(path, "pool") << row.dump();
    } else if (row["engine"] == "aio2_no_uring") {
      EXPECT_FALSE(path.empty()) << row.dump();
      EXPECT_EQ(path.find("uring"), std::string::npos) << row.dump();
    } else if (row["workload"] == "syscall_getppid") {
      EXPECT_EQ(path, "inline") << row.dump();
      EXPECT_NE(note.find("synchronous"), std::string::npos) << row.dump();
    }
  }
}

// Where io_uring runs: aio2_uring's getppid (which io_uring lacks) is
// labelled with the pool it really ran on, and liburing_tuned is a peer of
// its own (vs_tuned 1.0 for itself).
TEST(ToolBench, UringRowsLabelledAndTunedPeer) {
  temp_dir d;
  const run_result r = run_aio2(tiny(d, {"--duration", "0.3", "--engines",
                                         "aio2_uring,liburing,liburing_tuned", "--workloads",
                                         "cached_randread_qd32,syscall_getppid", "--qd", "4",
                                         "--json", d / "out.json"}),
                                d.path().string());
  if (r.status != 0 && r.err.find("cannot run here") != std::string::npos) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(read_file(d / "out.json"));
  ASSERT_EQ(rows.size(), 6u);
  for (const json &row : rows) {
    const std::string note = row["note"].get<std::string>();
    if (row["engine"] == "aio2_uring" && row["workload"] == "syscall_getppid") {
      EXPECT_EQ(row["path"], "pool") << row.dump();
      EXPECT_NE(note.find("not io_uring"), std::string::npos) << row.dump();
    } else if (row["engine"] == "aio2_uring") {
      EXPECT_EQ(row["path"], "uring") << row.dump();
    } else if (row["engine"] == "liburing_tuned") {
      EXPECT_EQ(row["vs_liburing_tuned"], 1.0) << row.dump();
      EXPECT_FALSE(row["path"].get<std::string>().empty()) << row.dump();
    }
    if (row["workload"] == "syscall_getppid" && row["engine"] != "aio2_uring") {
      EXPECT_NE(note.find("IORING_OP_NOP"), std::string::npos) << row.dump();
    }
  }
}

// --scale with --plot DIR: the three curves' CSV files hold every point
// asked for, with positive costs and rates, and every SVG is well-formed
// XML (xmllint) with drawn lines. Nothing here is a timing threshold.
TEST(ToolBench, ScaleCurvesPlotDirectory) {
  temp_dir d;
  const std::string plots = d / "plots";
  const run_result r = run_aio2(tiny(d, {"--duration", "0.3", "--engines", "aio2,sync", "--workloads",
                                         "cached_randread_qd1", "--qd", "4", "--scale", "--scale-inflight", "1024",
                                         "--scale-threads", "2", "--scale-ops", "400", "--plot", plots}),
                                d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("scale curves"), std::string::npos);
  const std::vector<std::string> files = {"inflight.csv", "inflight.svg", "latency.svg", "reapers.csv",
                                          "reapers.svg",  "threads.csv",  "threads.svg"};
  std::vector<std::string> got;
  for (const auto &e : std::filesystem::directory_iterator(plots)) got.push_back(e.path().filename());
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got, files);
  for (const std::string &f : files) {
    const std::string path = plots + "/" + f;
    if (f.size() > 4 && f.substr(f.size() - 4) == ".svg") {
      const std::string svg = read_file(path);
      EXPECT_NE(svg.find("<svg"), std::string::npos) << f;
      EXPECT_NE(svg.find("<path"), std::string::npos) << f;
      const std::string cmd = "xmllint --noout '" + path + "' 2>&1";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << f << " is not well-formed XML";
    }
  }
  auto check_csv = [&](const std::string &f, std::vector<std::string> xs) {
    const std::vector<std::string> l = lines_of(read_file(plots + "/" + f));
    ASSERT_EQ(l.size(), xs.size() + 1) << f;
    const size_t cols = csv_fields(l[0]).size();
    for (size_t i = 0; i < xs.size(); i++) {
      const std::vector<std::string> v = csv_fields(l[i + 1]);
      ASSERT_EQ(v.size(), cols) << f << ": " << l[i + 1];
      EXPECT_EQ(v[0], xs[i]) << f;
      // ns per request and ops/s are positive (the in-flight file's bytes
      // columns, after the two ns columns, may be any sign).
      const size_t positive = f == "inflight.csv" ? 3 : cols;
      for (size_t c = 1; c < positive; c++) EXPECT_GT(std::stod(v[c]), 0) << f << ": " << l[i + 1];
    }
  };
  check_csv("inflight.csv", {"1", "4", "16", "64", "256", "1024"});
  check_csv("threads.csv", {"1", "2"});
  check_csv("reapers.csv", {"1", "2"});
}

// --file is only read: its bytes do not change, and mixed_rw_fsync writes
// into a temporary file of its own, which is gone afterwards.
TEST(ToolBench, UserFileIsReadOnly) {
  temp_dir d;
  const std::string file = d / "data.bin";
  {
    std::string bytes(4u << 20, '\0');
    for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
    std::ofstream(file, std::ios::binary) << bytes;
  }
  const std::string before = read_file(file);
  const run_result r = run_aio2({"bench", "--file", file, "--duration", "0.05", "--warmup", "0.01",
                                 "--reps", "1", "--engines", "aio2_pool,sync", "--workloads",
                                 "cached_randread_qd32,mixed_rw_fsync", "--qd", "4", "--json",
                                 d / "out.json"},
                                d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(file), before);
  const json rows = json::parse(read_file(d / "out.json"));
  ASSERT_EQ(rows.size(), 4u);
  for (const json &row : rows) EXPECT_EQ(row["status"], "ok") << row.dump();
  EXPECT_EQ(d.entries(), (std::vector<std::string>{"data.bin", "out.json"}));
}

TEST(ToolBench, HelpDocumentsEveryOption) {
  temp_dir d;
  const run_result r = run_aio2({"bench", "--help"}, d.path().string());
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char *opt : {"--quick", "--file", "--size", "--dir", "--qd", "--duration", "--warmup",
                          "--reps", "--engines", "--workloads", "--attrs", "--workers",
                          "--aio2-no-hint", "--posix-aio-dup-fds", "--json", "--csv", "--plot",
                          "--scale", "--scale-inflight", "--scale-threads", "--scale-ops",
                          "aio2_no_uring", "liburing_tuned"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  EXPECT_TRUE(d.entries().empty());
}

// Bad input: non-zero exit, exactly one line on stderr, nothing left behind
// (not even the --json file asked for).
class ToolBenchBadInput : public testing::TestWithParam<std::vector<std::string>> {};

TEST_P(ToolBenchBadInput, OneLineNonZeroNothingLeft) {
  temp_dir d;
  std::vector<std::string> args = tiny(d, {"--json", d / "out.json", "--csv", d / "out.csv"});
  for (std::string a : GetParam()) {
    if (a.rfind("@/", 0) == 0) a = d / a.substr(2);
    args.push_back(a);
  }
  const run_result r = run_aio2(args, d.path().string());
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_GT(r.status, 0) << "killed by a signal?\n" << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("aio2 bench: ", 0), 0u) << r.err;
  EXPECT_TRUE(d.entries().empty()) << "left behind: " << (d.entries().empty() ? "" : d.entries()[0]);
}

// The cases: arguments added to a tiny run ("@/" stands for its directory).
const std::vector<std::vector<std::string>> kBadInputs = {
    {"--engines", "aio2,nosuch"}, {"--workloads", "nosuch"},       {"--qd", "0"},
    {"--qd", "100000"},           {"--size", "0"},                 {"--file", "@/missing.bin"},
    {"--attrs", "timing,nosuch"}, {"--plot", "@/out.jpg"},         {"--duration", "0"},
    {"--unknown-option"},         {"--scale-inflight", "0"},       {"--scale-threads", "0"},
    {"--scale-ops", "10"},
};
const char *const kBadInputNames[] = {"UnknownEngine", "UnknownWorkload", "QdZero",
                                      "QdTooLarge",    "SizeZero",        "MissingFile",
                                      "UnknownAttr",   "PlotExtension",   "DurationZero",
                                      "UnknownOption", "ScaleInflightZero", "ScaleThreadsZero",
                                      "ScaleOpsTooFew"};

std::string bad_input_name(const testing::TestParamInfo<std::vector<std::string>> &p) {
  return kBadInputNames[p.index];
}

INSTANTIATE_TEST_SUITE_P(Errors, ToolBenchBadInput, testing::ValuesIn(kBadInputs), bad_input_name);

}  // namespace
