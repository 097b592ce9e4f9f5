// SPDX-License-Identifier: MIT
// `aio2 run` and the trace files of the replacements, end to end: fio's
// libaio and posixaio engines run by the built command (AIO2_TOOL_PATH) on
// the built replacements (AIO2_COMPAT_DIR). The JSON report must add up, and
// the trace file must hold one record per request fio counted; bad
// arguments give one line on stderr and leave nothing behind. The trace
// writer is also tested alone: many threads, fork, a file that is not a
// trace. No timing thresholds.

#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "compat/trace_file.h"
#include "tool_util.h"

#ifndef AIO2_COMPAT_DIR
#error "AIO2_COMPAT_DIR must name the directory of the built libaio replacement"
#endif

namespace {

using aio2_tool_test::run_result;
using aio2_tool_test::temp_dir;
using json = nlohmann::json;
namespace tf = aio2_compat;

constexpr uint64_t kFileBytes = 16u << 20;

using aio2_tool_test::spawn;

run_result run_aio2(const temp_dir &dir, std::vector<std::string> args) {
  args.insert(args.begin(), "run");
  return aio2_tool_test::run_aio2(args, dir.path().string());
}

// A fio job of the libaio engine on `file`, its JSON output to `fio_json`.
std::vector<std::string> fio_job(const std::string &file, const std::string &fio_json,
                                 std::vector<std::string> extra) {
  std::vector<std::string> v = {"fio", "--name=t", "--ioengine=libaio", "--filename=" + file,
                                "--size=" + std::to_string(kFileBytes), "--bs=4k",
                                "--time_based=1", "--runtime=2", "--output-format=json",
                                "--output=" + fio_json};
  v.insert(v.end(), extra.begin(), extra.end());
  return v;
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

// The I/Os of each fio job (reads and writes), from its JSON output.
std::vector<uint64_t> fio_ios(const std::string &fio_json) {
  std::vector<uint64_t> v;
  const json j = parse_file(fio_json);
  if (!j.contains("jobs")) {
    ADD_FAILURE() << fio_json << " has no jobs";
    return v;
  }
  for (const json &job : j["jobs"])
    v.push_back(job["read"]["total_ios"].get<uint64_t>() + job["write"]["total_ios"].get<uint64_t>());
  return v;
}

uint64_t sum(const std::vector<uint64_t> &v) {
  uint64_t s = 0;
  for (uint64_t x : v) s += x;
  return s;
}

void require_fio() {
  ASSERT_EQ(system("command -v fio >/dev/null"), 0) << "fio is not installed (scripts/deps.sh tests)";
}

// ---------------------------------------------------------------------------
// The report

TEST(ToolRun, ReportOfFioRandomReadsAddsUp) {
  require_fio();
  temp_dir dir;
  const std::string file = dir / "data", fj = dir / "fio.json", rj = dir / "report.json";
  // fio lays the file out with write(2), so the page cache holds it: the
  // reads mostly hit (invalidate=0 keeps it).
  const run_result r = run_aio2(dir, {"--report", "--json", rj, "--",
                                      "fio", "--name=t", "--ioengine=libaio", "--filename=" + file,
                                      "--size=16m", "--bs=4k", "--rw=randread", "--iodepth=16",
                                      "--invalidate=0", "--time_based=1", "--runtime=2",
                                      "--output-format=json", "--output=" + fj});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("aio2 run: fio --name=t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hit ratio"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("service"), std::string::npos) << r.out;
  const uint64_t ios = sum(fio_ios(fj));
  ASSERT_GT(ios, 0u);

  const json j = parse_file(rj);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["tool"], "aio2 run");
  EXPECT_EQ(j["program"]["exit_code"], 0);
  EXPECT_EQ(j["program"]["argv"][0], "fio");
  const uint64_t requests = j["requests"].get<uint64_t>();
  EXPECT_EQ(requests, ios) << "one record per request fio counted";
  EXPECT_EQ(j["trace"]["records"].get<uint64_t>(), requests);
  EXPECT_EQ(j["trace"]["requests_submitted"].get<uint64_t>(), requests);
  EXPECT_EQ(j["trace"]["dropped"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["trace"]["unobserved"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["trace"]["processes"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["trace"]["contexts"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["trace"]["contexts_ended"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["completed"].get<uint64_t>(), requests);
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << j["error_kinds"].dump();
  EXPECT_EQ(j["ops"]["read"].get<uint64_t>(), requests);
  EXPECT_FALSE(j["attribute_status"].contains("tag")) << "fio's requests carry no tag";
  for (const char *a : {"timing", "cache", "executor"})
    EXPECT_EQ(j["attribute_status"][a]["ok"].get<uint64_t>(), requests) << a;
  EXPECT_LE(j["queue_depth"].get<uint64_t>(), 16u);
  EXPECT_GT(j["queue_depth"].get<uint64_t>(), 0u);

  const json &c = j["cache"];
  const uint64_t hits = c["hits"], partial = c["partial"], misses = c["misses"];
  EXPECT_EQ(hits + partial + misses, c["with_result"].get<uint64_t>());
  EXPECT_EQ(c["with_result"].get<uint64_t>(), requests);
  EXPECT_EQ(c["by_cachestat"].get<uint64_t>() + c["by_nowait"].get<uint64_t>(), requests);
  EXPECT_GT(hits, 0u) << "the file fio just wrote is cached";
  EXPECT_LE(c["bytes_cached"].get<uint64_t>(), c["bytes_requested"].get<uint64_t>());
  EXPECT_EQ(c["bytes_requested"].get<uint64_t>(), requests * 4096);
  EXPECT_NEAR(c["hit_ratio"].get<double>(),
              static_cast<double>(hits) / static_cast<double>(requests), 1e-9);

  ASSERT_TRUE(j["paths"].is_array());
  ASSERT_FALSE(j["paths"].empty());
  uint64_t on_paths = 0;
  double percent = 0;
  for (const json &p : j["paths"]) {
    EXPECT_FALSE(p["path"].get<std::string>().empty());
    EXPECT_NE(p["path"], "none");
    on_paths += p["count"].get<uint64_t>();
    percent += p["percent"].get<double>();
  }
  EXPECT_EQ(on_paths, requests);
  EXPECT_NEAR(percent, 100.0, 0.01);
  EXPECT_EQ(j["times_us"]["service"]["all"]["count"].get<uint64_t>(), requests);
  uint64_t by_cache = 0;
  for (const auto &[k, d] : j["times_us"]["service_by_cache"].items()) by_cache += d["count"].get<uint64_t>();
  EXPECT_EQ(by_cache, requests);
  // Nothing left in TMPDIR but what the test made: the trace was temporary.
  std::set<std::string> left;
  for (const std::string &e : dir.entries()) left.insert(e);
  EXPECT_EQ(left, (std::set<std::string>{"data", "fio.json", "report.json"}));
}

TEST(ToolRun, ChromeTraceHasASlicePerRequest) {
  require_fio();
  temp_dir dir;
  const std::string file = dir / "data", fj = dir / "fio.json", ct = dir / "chrome.json";
  const run_result r = run_aio2(dir, {"--chrome", ct, "--", "fio", "--name=t", "--ioengine=libaio",
                                      "--filename=" + file, "--size=4m", "--bs=4k",
                                      "--rw=randread", "--iodepth=8", "--number_ios=500",
                                      "--output-format=json", "--output=" + fj});
  ASSERT_EQ(r.status, 0) << r.err;
  const uint64_t ios = sum(fio_ios(fj));
  const json doc = parse_file(ct);
  ASSERT_TRUE(doc.contains("traceEvents"));
  EXPECT_EQ(doc["otherData"]["tool"], "aio2 run");
  uint64_t slices = 0;
  std::set<uint64_t> ids;
  for (const json &e : doc["traceEvents"]) {
    if (e.value("cat", "") != "request") continue;
    slices++;
    ids.insert(e["args"]["user_data"].get<uint64_t>());
    EXPECT_EQ(e["args"]["res"].get<int64_t>(), 4096) << e.dump();
    EXPECT_TRUE(e["name"].get<std::string>().rfind("read 4096@", 0) == 0) << e.dump();
  }
  EXPECT_EQ(slices, ios);
  EXPECT_EQ(ids.size(), ios);
}

// ---------------------------------------------------------------------------
// The trace file: complete, and right in every field

// Checks a trace of fio jobs of 4 KiB reads and writes over kFileBytes, one
// context per job, against fio's own counts.
void check_fio_trace(const std::string &path, const std::vector<uint64_t> &job_ios,
                     uint64_t processes) {
  tf::trace_contents t;
  ASSERT_EQ(tf::read_trace_file(path, t), "");
  EXPECT_EQ(t.unknown_records, 0u);
  EXPECT_EQ(t.trailing_bytes, 0u);
  EXPECT_EQ(t.processes.size(), processes);
  ASSERT_EQ(t.contexts.size(), job_ios.size());
  ASSERT_EQ(t.ends.size(), job_ios.size()) << "every context wrote its end record";
  EXPECT_EQ(t.requests.size(), sum(job_ios)) << "a record per request fio counted";

  std::set<uint32_t> pids;
  for (const auto &p : t.processes) {
    EXPECT_TRUE(pids.insert(p.pid).second) << "one process record per process";
    EXPECT_EQ(p.source, tf::kSourceLibaio);
    EXPECT_STREQ(p.comm, "fio");
  }
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> per_ctx;  // (pid, ctx) -> records
  for (const auto &c : t.contexts) {
    EXPECT_TRUE(pids.count(c.pid)) << "a context of a process without a process record";
    EXPECT_EQ(c.source, tf::kSourceLibaio);
    EXPECT_TRUE(per_ctx.emplace(std::make_pair(c.pid, c.ctx), 0).second);
    EXPECT_GT(c.ring_bytes, 0u);
    EXPECT_TRUE(c.features & AIO2_FEAT_LEGACY);
  }
  for (const auto &r : t.requests) {
    SCOPED_TRACE("request at offset " + std::to_string(r.offset));
    auto it = per_ctx.find({r.pid, r.ctx});
    ASSERT_NE(it, per_ctx.end()) << "a request of an unknown context";
    it->second++;
    ASSERT_EQ(r.op_space, tf::kOpIocb);
    EXPECT_EQ(r.source, tf::kSourceLibaio);
    EXPECT_TRUE(r.op == IOCB_CMD_PREAD || r.op == IOCB_CMD_PWRITE) << r.op;
    EXPECT_GE(r.fd, 0);
    EXPECT_EQ(r.nbytes, 4096u);
    EXPECT_EQ(r.offset % 4096, 0u);
    EXPECT_LT(r.offset, kFileBytes);
    EXPECT_EQ(r.res, 4096);
    EXPECT_NE(r.user_data, 0u);
    EXPECT_EQ(r.flags, 0u);
    EXPECT_EQ(r.status[tf::kAttrTiming], AIO2_ATTR_OK);
    EXPECT_EQ(r.status[tf::kAttrExecutor], AIO2_ATTR_OK);
    // The cache attribute is about reads.
    EXPECT_EQ(r.status[tf::kAttrCache],
              r.op == IOCB_CMD_PREAD ? AIO2_ATTR_OK : AIO2_ATTR_NOT_APPLICABLE);
    EXPECT_LE(r.timing.submitted_ns, r.timing.started_ns);
    EXPECT_LE(r.timing.started_ns, r.timing.finished_ns);
    EXPECT_LE(r.timing.finished_ns, r.timing.posted_ns);
    EXPECT_NE(r.executor.path, 0u);
    if (r.op == IOCB_CMD_PREAD) {
      EXPECT_TRUE(r.cache_outcome >= AIO2_CACHE_HIT && r.cache_outcome <= AIO2_CACHE_MISS);
      EXPECT_LE(r.bytes_cached, r.bytes_requested);
    }
  }
  std::vector<uint64_t> ctx_counts, ended_counts, fio_counts = job_ios;
  for (const auto &[k, n] : per_ctx) ctx_counts.push_back(n);
  for (const auto &e : t.ends) {
    EXPECT_EQ(e.how, tf::kEndDestroyed) << "fio destroys its contexts";
    EXPECT_EQ(e.source, tf::kSourceLibaio);
    EXPECT_EQ(e.requests, e.records);
    EXPECT_EQ(e.unobserved, 0u);
    EXPECT_EQ(e.dropped, 0u);
    EXPECT_EQ(e.unmatched, 0u);
    ended_counts.push_back(e.records);
    EXPECT_EQ(per_ctx.at({e.pid, e.ctx}), e.records);
  }
  std::sort(ctx_counts.begin(), ctx_counts.end());
  std::sort(ended_counts.begin(), ended_counts.end());
  std::sort(fio_counts.begin(), fio_counts.end());
  EXPECT_EQ(ctx_counts, fio_counts) << "each context's records are its job's I/Os";
  EXPECT_EQ(ended_counts, fio_counts);
}

TEST(ToolRun, TraceFileOfTwoProcessesIsComplete) {
  require_fio();
  temp_dir dir;
  const std::string file = dir / "data", fj = dir / "fio.json", trace = dir / "t.trace";
  std::vector<std::string> args = {"--trace", trace, "--"};
  for (const std::string &a : fio_job(file, fj, {"--rw=randrw", "--iodepth=32", "--numjobs=2"}))
    args.push_back(a);
  const run_result r = run_aio2(dir, args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("trace file: " + trace), std::string::npos) << r.out;
  const std::vector<uint64_t> ios = fio_ios(fj);
  ASSERT_EQ(ios.size(), 2u);
  check_fio_trace(trace, ios, 2);
}

TEST(ToolRun, TraceFileOfThreadsReapingTheRingIsComplete) {
  require_fio();
  temp_dir dir;
  const std::string file = dir / "data", fj = dir / "fio.json", trace = dir / "t.trace";
  std::vector<std::string> args = {"--trace", trace, "--"};
  for (const std::string &a :
       fio_job(file, fj, {"--rw=randread", "--iodepth=64", "--numjobs=2", "--thread",
                          "--userspace_reap=1", "--iodepth_batch_complete_min=0"}))
    args.push_back(a);
  const run_result r = run_aio2(dir, args);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<uint64_t> ios = fio_ios(fj);
  ASSERT_EQ(ios.size(), 2u);
  check_fio_trace(trace, ios, 1);
}

// fio's posixaio engine on libaio2-posix.so, which `aio2 run` preloads:
// reads, writes and fsyncs, each verified (crc32c). The report counts what
// fio says it issued, op by op, though fio's job process ends with _exit
// (no end record: what the trace has is what the report counts).
TEST(ToolRun, ReportOfFioPosixaioCountsEveryRequestFioIssued) {
  require_fio();
  ASSERT_EQ(access(AIO2_COMPAT_DIR "/libaio2-posix.so", R_OK), 0) << "libaio2-posix.so is not built";
  temp_dir dir;
  const std::string file = dir / "data", out = dir / "fio.out", rj = dir / "report.json",
                    trace = dir / "t.trace";
  const run_result r = run_aio2(
      dir, {"--report", "--json", rj, "--trace", trace, "--", "fio", "--name=t",
            "--ioengine=posixaio", "--filename=" + file, "--size=4m", "--bs=4k", "--rw=randrw",
            "--iodepth=16", "--fsync=8", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
            "--verify_state_save=0", "--output=" + out});
  ASSERT_EQ(r.status, 0) << r.err << aio2_tool_test::read_file(out);
  // fio's "issued rwts: total=READS,WRITES,TRIMS,SYNCS" (verification reads
  // are reads).
  const std::string fio_out = aio2_tool_test::read_file(out);
  const size_t at = fio_out.find("issued rwts: total=");
  ASSERT_NE(at, std::string::npos) << fio_out;
  uint64_t reads = 0, writes = 0, trims = 0, syncs = 0;
  ASSERT_EQ(std::sscanf(fio_out.c_str() + at, "issued rwts: total=%" SCNu64 ",%" SCNu64 ",%" SCNu64
                        ",%" SCNu64, &reads, &writes, &trims, &syncs), 4);
  const uint64_t issued = reads + writes + syncs;
  ASSERT_GT(reads, 0u);
  ASSERT_GT(writes, 0u);
  ASSERT_GT(syncs, 0u);

  EXPECT_NE(r.out.find("requests   " + std::to_string(issued) + ","), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cache (over " + std::to_string(reads) + " requests"), std::string::npos)
      << r.out;
  const json j = parse_file(rj);
  EXPECT_EQ(j["requests"].get<uint64_t>(), issued);
  EXPECT_EQ(j["ops"]["read"].get<uint64_t>(), reads);
  EXPECT_EQ(j["ops"]["write"].get<uint64_t>(), writes);
  EXPECT_EQ(j["ops"]["fsync"].get<uint64_t>(), syncs);
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << j["error_kinds"].dump();
  for (const char *a : {"timing", "executor"})
    EXPECT_EQ(j["attribute_status"][a]["ok"].get<uint64_t>(), issued) << a;
  EXPECT_EQ(j["attribute_status"]["cache"]["ok"].get<uint64_t>(), reads);
  EXPECT_EQ(j["cache"]["with_result"].get<uint64_t>(), reads);
  EXPECT_EQ(j["trace"]["records"].get<uint64_t>(), issued);

  tf::trace_contents t;
  ASSERT_EQ(tf::read_trace_file(trace, t), "");
  EXPECT_EQ(t.unknown_records, 0u);
  EXPECT_EQ(t.trailing_bytes, 0u);
  ASSERT_EQ(t.contexts.size(), 1u) << "one engine, in fio's job process";
  EXPECT_EQ(t.contexts[0].source, tf::kSourcePosix);
  EXPECT_EQ(t.contexts[0].max_events, 0u);
  for (const auto &p : t.processes) EXPECT_EQ(p.source, tf::kSourcePosix);
  std::set<uint32_t> pids;
  for (const auto &p : t.processes) pids.insert(p.pid);
  EXPECT_TRUE(pids.count(t.contexts[0].pid));
  std::map<uint16_t, uint64_t> by_op;
  for (const auto &q : t.requests) {
    by_op[q.op]++;
    ASSERT_EQ(q.op_space, tf::kOpSyscall);
    EXPECT_EQ(q.source, tf::kSourcePosix);
    EXPECT_EQ(q.pid, t.contexts[0].pid);
    EXPECT_EQ(q.ctx, t.contexts[0].ctx);
    EXPECT_GE(q.fd, 0);
    EXPECT_NE(q.user_data, 0u) << "the aiocb's address";
    EXPECT_EQ(q.flags, 0u);
    EXPECT_EQ(q.status[tf::kAttrTiming], AIO2_ATTR_OK);
    EXPECT_EQ(q.status[tf::kAttrExecutor], AIO2_ATTR_OK);
    if (q.op == SYS_fsync) {
      EXPECT_EQ(q.res, 0);
      EXPECT_EQ(q.nbytes, 0u);
    } else {
      EXPECT_TRUE(q.op == SYS_pread64 || q.op == SYS_pwrite64) << q.op;
      EXPECT_EQ(q.res, 4096);
      EXPECT_EQ(q.nbytes, 4096u);
      EXPECT_EQ(q.offset % 4096, 0u);
      EXPECT_LT(q.offset, 4u << 20);
      EXPECT_EQ(q.status[tf::kAttrCache],
                q.op == SYS_pread64 ? AIO2_ATTR_OK : AIO2_ATTR_NOT_APPLICABLE);
    }
  }
  EXPECT_EQ(by_op, (std::map<uint16_t, uint64_t>{
                       {SYS_pread64, reads}, {SYS_pwrite64, writes}, {SYS_fsync, syncs}}));
}

// ---------------------------------------------------------------------------
// The program's exit status, and bad arguments

TEST(ToolRun, ExitStatusIsTheProgramsAndNothingIsLeftBehind) {
  temp_dir dir;
  run_result r = run_aio2(dir, {"--", "sh", "-c", "exit 3"});
  EXPECT_EQ(r.status, 3) << r.err;
  r = run_aio2(dir, {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(r.status, 128 + 9) << r.err;
  // A program that makes no libaio call: said on one line, status kept.
  r = run_aio2(dir, {"--report", "--", "true"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("aio2 run: no requests were observed: true made no libaio call"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(dir.entries().empty()) << "the temporary trace files are removed";
}

// Each refusal: its status, one line on stderr that holds `message`,
// nothing on stdout and nothing left in TMPDIR.
void expect_refused(const std::vector<std::string> &args, const std::string &message,
                    int status = 2) {
  temp_dir dir;
  std::vector<std::string> a;
  for (const std::string &x : args) a.push_back(x == "@" ? dir.path().string() : x);
  const run_result r = run_aio2(dir, a);
  EXPECT_EQ(r.status, status) << r.err;
  EXPECT_EQ(r.err.rfind("aio2 run: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(dir.entries().empty());
}

TEST(ToolRunErrors, NoProgram) {
  expect_refused({}, "no program to run");
  expect_refused({"--report", "--"}, "no program to run");
}
TEST(ToolRunErrors, UnknownOption) {
  expect_refused({"--frobnicate", "--", "true"}, "unknown option '--frobnicate'");
  expect_refused({"--report=yes", "--", "true"}, "--report takes no value");
}
TEST(ToolRunErrors, MissingValue) {
  expect_refused({"--json"}, "--json needs a file name");
  expect_refused({"--trace="}, "--trace needs a file name");
}
TEST(ToolRunErrors, SameFileTwice) {
  expect_refused({"--json", "x", "--chrome", "x", "--", "true"}, "--json and --chrome name the same file");
}
TEST(ToolRunErrors, MissingCompatDirectory) {
  expect_refused({"--compat", "/nonexistent/aio2-compat", "--", "true"},
                 "--compat /nonexistent/aio2-compat: No such file or directory");
  expect_refused({"--compat", "@", "--", "true"}, "holds no libaio.so.1");
  expect_refused({"--compat", "/etc/passwd", "--", "true"}, "is not a directory");
}
TEST(ToolRunErrors, NoCompatDirectoryBesideTheCommand) {
  // A copy of the command in a directory with no ../compat or ../lib/aio2.
  temp_dir dir, tmp;
  std::filesystem::create_directories(dir.path() / "bin");
  std::filesystem::copy_file(AIO2_TOOL_PATH, dir.path() / "bin" / "aio2");
  const run_result r = spawn({(dir.path() / "bin" / "aio2").string(), "run", "--", "true"}, {},
                             tmp.path().string());
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("aio2 run: cannot find aio2's libaio replacement (libaio.so.1) in " +
                       (dir.path() / "bin").string() + "/../compat"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--compat"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(tmp.entries().empty());
}
TEST(ToolRunErrors, OutputInAMissingDirectory) {
  expect_refused({"--json", "/nonexistent/dir/r.json", "--", "true"},
                 "cannot create /nonexistent/dir/r.json");
  expect_refused({"--trace", "/nonexistent/dir/t.trace", "--", "true"},
                 "cannot create /nonexistent/dir/t.trace");
}
TEST(ToolRunErrors, ProgramThatCannotRun) {
  expect_refused({"--", "/nonexistent/program"}, "cannot run /nonexistent/program", 127);
}

// ---------------------------------------------------------------------------
// AIO2_TRACE and the writer, without the command

TEST(TraceWriter, FileThatIsNotATraceIsLeftAloneAndTheProgramRuns) {
  require_fio();
  temp_dir dir;
  const std::string other = dir / "notes.txt";
  { std::ofstream(other) << "not a trace\n"; }
  const run_result r =
      spawn({"fio", "--name=t", "--ioengine=libaio", "--filename=" + (dir / "data"), "--size=1m",
             "--bs=4k", "--rw=randread", "--number_ios=10", "--output-format=terse"},
            {"AIO2_TRACE=" + other, std::string("LD_LIBRARY_PATH=") + AIO2_COMPAT_DIR},
            dir.path().string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("aio2 libaio: AIO2_TRACE=" + other +
                       ": it exists and is not an aio2 trace file (remove it or name another); "
                       "not tracing"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(aio2_tool_test::read_file(other), "not a trace\n");
}

// Runs fn in a child process (the writer is once per process) and expects
// it to exit 0.
template <class Fn>
void in_child(Fn fn) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    fn();
    std::exit(0);  // the writer flushes at exit
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
}

tf::trace_request numbered(uint32_t ctx, uint64_t n) {
  tf::trace_request r{};
  r.ctx = ctx;
  r.op_space = tf::kOpSyscall;
  r.offset = n;
  r.user_data = n;
  return r;
}

TEST(TraceWriter, ManyThreadsAndAForkedChildAppendWholeRecords) {
  temp_dir dir;
  const std::string path = dir / "t.trace";
  constexpr unsigned kThreads = 8, kEach = 3000;
  in_child([&] {
    setenv("AIO2_TRACE", path.c_str(), 1);
    tf::trace_writer *w = tf::trace_writer::from_env("test", tf::kSourcePosix);
    if (!w) std::_Exit(10);
    if (tf::trace_writer::from_env("test", tf::kSourcePosix) != w) std::_Exit(11);
    const uint32_t ctx = w->context_opened(aio2_params{}, 0);
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < kThreads; t++)
      ts.emplace_back([&, t] {
        for (unsigned i = 0; i < kEach; i++) {
          const tf::trace_request r = numbered(ctx, uint64_t{t} * kEach + i);
          w->append(&r, 1);
        }
      });
    for (auto &t : ts) t.join();
    // Records still in the buffer at fork() are the parent's alone.
    const pid_t child = fork();
    if (child == 0) {
      const tf::trace_request r = numbered(1, 1u << 30);
      if (w->pid() != getpid()) std::_Exit(12);
      w->append(&r, 1);
      std::exit(0);
    }
    int st = 0;
    waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) std::_Exit(13);
  });
  tf::trace_contents t;
  ASSERT_EQ(tf::read_trace_file(path, t), "");
  EXPECT_EQ(t.trailing_bytes, 0u);
  EXPECT_EQ(t.processes.size(), 2u) << "the child writes its own process record";
  EXPECT_EQ(t.contexts.size(), 1u);
  ASSERT_EQ(t.requests.size(), kThreads * kEach + 1);
  std::set<uint64_t> seen;
  std::set<uint32_t> pids;
  for (const auto &p : t.processes) pids.insert(p.pid);
  for (const auto &r : t.requests) {
    EXPECT_EQ(r.offset, r.user_data) << "a record was torn";
    EXPECT_EQ(r.kind, tf::kTraceRequest);
    EXPECT_EQ(r.source, tf::kSourcePosix);
    EXPECT_TRUE(pids.count(r.pid)) << "the writer names the process";
    EXPECT_TRUE(seen.insert(r.user_data).second) << "record " << r.user_data << " twice";
  }
  EXPECT_TRUE(seen.count(1u << 30));
  for (const auto &p : t.processes) EXPECT_EQ(p.source, tf::kSourcePosix);
}

TEST(TraceWriter, FillResultsReadsEachAttributeAndItsStatus) {
  alignas(8) unsigned char buf[256] = {};
  auto *ev = reinterpret_cast<aio2_event *>(buf);
  ev->user_data = 7;
  ev->res = -ECANCELED;
  ev->flags = AIO2_EVENT_CANCELED;
  size_t off = sizeof(aio2_event);
  const auto add = [&](uint16_t id, uint16_t status, const void *payload, uint32_t len) {
    auto *ret = reinterpret_cast<aio2_attr_ret *>(buf + off);
    ret->id = id;
    ret->status = status;
    ret->len = static_cast<uint32_t>(sizeof *ret) + len;
    if (len) std::memcpy(ret + 1, payload, len);
    off += ret->len;
  };
  const aio2_attr_timing timing{10, 0, 0, 40};
  add(AIO2_ATTR_TIMING, AIO2_ATTR_OK, &timing, sizeof timing);
  add(AIO2_ATTR_CACHE, AIO2_ATTR_NOT_APPLICABLE, nullptr, 0);
  ev->len = static_cast<uint32_t>(off);
  tf::trace_request r{};
  tf::fill_results(r, *ev);
  EXPECT_EQ(r.res, -ECANCELED);
  EXPECT_EQ(r.flags, tf::kReqCanceled);
  EXPECT_EQ(r.status[tf::kAttrTiming], AIO2_ATTR_OK);
  EXPECT_EQ(r.timing.submitted_ns, 10u);
  EXPECT_EQ(r.timing.posted_ns, 40u);
  EXPECT_EQ(r.status[tf::kAttrCache], AIO2_ATTR_NOT_APPLICABLE);
  EXPECT_EQ(r.status[tf::kAttrExecutor], tf::kStatusMissing);
}

TEST(TraceWriter, ReaderRefusesWhatIsNotATrace) {
  temp_dir dir;
  tf::trace_contents t;
  EXPECT_NE(tf::read_trace_file(dir / "missing", t).find("cannot open"), std::string::npos);
  { std::ofstream(dir / "short") << "A2TR"; }
  EXPECT_NE(tf::read_trace_file(dir / "short", t).find("too short"), std::string::npos);
  {
    std::ofstream f(dir / "other", std::ios::binary);
    f << std::string(256, 'x');
  }
  EXPECT_NE(tf::read_trace_file(dir / "other", t).find("is not an aio2 trace file"), std::string::npos);
  {
    tf::trace_header h{};
    h.kind = tf::kTraceMagic;
    h.version = tf::kTraceVersion + 1;
    h.record_size = tf::kTraceRecordSize;
    std::ofstream f(dir / "newer", std::ios::binary);
    f.write(reinterpret_cast<const char *>(&h), sizeof h);
  }
  EXPECT_NE(tf::read_trace_file(dir / "newer", t).find("of version 2"), std::string::npos);
  { std::ofstream(dir / "empty"); }
  EXPECT_EQ(tf::read_trace_file(dir / "empty", t), "");
  EXPECT_TRUE(t.requests.empty());
}

}  // namespace
