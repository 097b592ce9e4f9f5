// SPDX-License-Identifier: MIT
// `aio2 trace`: runs a workload with the timing, cache, executor and tag
// attributes on every request and reports what they say (trace.cc runs it,
// trace_report.cc summarises it and writes the report, the JSON report and
// the Chrome trace). docs/trace.md describes the command.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "aio2/abi.h"
#include "workload.h"

namespace aio2_tool {

// `aio2 trace`: returns the process exit status.
int trace_main(int argc, char **argv);
// Its --help text.
std::string trace_usage();

namespace trace {

// An attribute's result status as recorded: AIO2_ATTR_* or this when the
// event carried no result for the attribute.
constexpr uint8_t kStatusMissing = 0xff;

// The attributes every request carries, in request order.
enum attr_slot : unsigned { kTiming, kCache, kExecutor, kTag, kAttrs };

// One request and what its event said.
struct record {
  op o;
  bool done = false;        // its event arrived
  bool data_bad = false;    // a read of the pattern file returned other bytes
  bool tag_ok = false;      // the tag came back as the request's index
  uint8_t status[kAttrs] = {kStatusMissing, kStatusMissing, kStatusMissing, kStatusMissing};
  uint32_t ev_flags = 0;
  int64_t res = 0;
  uint64_t client_submit_ns = 0;  // CLOCK_MONOTONIC just before aio2_submit
  aio2_attr_timing timing{};      // valid when status[kTiming] is OK
  aio2_attr_cache cache{};        // valid when status[kCache] is OK
  aio2_attr_executor executor{};  // valid when status[kExecutor] is OK
};

// What was run, for the report's header.
struct run_info {
  std::string tool = "aio2 trace";  // the command, in the report's title and the Chrome trace
  std::string workload;       // a workload's name, or "ops FILE"
  std::string file;           // the path, or "" without a file
  uint64_t file_bytes = 0;
  bool temporary = false;     // the file is the temporary pattern file
  bool direct = false;        // reads use O_DIRECT
  std::string policy;         // auto, uring, pool, inline
  uint64_t features = 0;      // aio2_params.features of the context
  uint32_t uring_entries = 0;
  unsigned qd = 0;
  uint64_t seed = 0;
  double elapsed_s = 0;       // first submit to last event
  bool interrupted = false;   // SIGINT or SIGTERM stopped submission early
  uint64_t stray_events = 0;  // events naming no outstanding request
  // Whether requests carried the tag attribute (its line and checks).
  bool tagged = true;
  // Lines (label, text) that describe what ran, in place of the file,
  // policy and seed of a workload: `aio2 run`'s program and trace file.
  std::vector<std::pair<std::string, std::string>> header;
};

// The distribution of one time, in microseconds (nearest-rank percentiles).
struct dist {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// A time distribution per group: "all" first, then each path (or cache
// outcome) in the order first seen.
using dist_groups = std::vector<std::pair<std::string, dist>>;

struct summary {
  uint64_t requests = 0, completed = 0, errors = 0, never_ran = 0;
  uint64_t ops[kOpKinds] = {};
  std::vector<std::pair<std::string, uint64_t>> error_kinds;  // most frequent first
  // status counts per attribute: OK, UNSUPPORTED, NOT_APPLICABLE,
  // UNAVAILABLE, ERROR, missing (no result), other.
  uint64_t status[kAttrs][7] = {};
  uint64_t tag_mismatches = 0, data_mismatches = 0;
  uint64_t cache_hits = 0, cache_partial = 0, cache_misses = 0;
  uint64_t cache_by_cachestat = 0, cache_by_nowait = 0;
  uint64_t bytes_cached = 0, bytes_requested = 0;
  std::vector<std::pair<std::string, uint64_t>> paths;  // executor path mix
  dist_groups queueing, service, post, service_by_cache, service_by_op;
};

// The names of attribute slots and of status columns.
const char *attr_name(unsigned slot);
const char *status_name(unsigned column);
// "inline", "pool", "inline+uring", ...: the AIO2_PATH_* bits of `path`.
std::string path_name(uint32_t path);

summary summarize(const std::vector<record> &recs);
// The readable report.
void print_report(FILE *out, const run_info &info, const summary &s);
// The report as a JSON document.
std::string report_json(const run_info &info, const summary &s);
// The Chrome Trace Event Format document: one slice per request with its
// queued and service phases, on lanes where no two slices overlap.
void write_chrome_trace(FILE *out, const run_info &info, const std::vector<record> &recs);

}  // namespace trace
}  // namespace aio2_tool
