// SPDX-License-Identifier: MIT
// The trace file of the replacements (AIO2_TRACE=FILE): what every request
// of an unmodified program did, one fixed-size record per completed request,
// written by the libaio and POSIX AIO replacements and read by `aio2 run`.
// docs/compat.md ("Observing a program") describes the format.
//
// The file is a sequence of 128-byte records in the machine's byte order.
// Each begins with a 32-bit kind. The first record of the file is the header
// (kind kTraceMagic, the bytes "A2TR"), with the format's version and the
// record size. Any number of processes write one file, and every record
// names its process. A process writes a process record before its other
// records, a context record when a context is set up, a request record per
// completion, and a context-end record with the context's counts (how many
// events were dropped) when the context goes away or the process exits.
//
// How records reach a regular file: each writer reserves a chunk of 1 MiB
// at the file's end (fallocate, under an open-file-description lock on the
// whole file, so that the processes writing one file never reserve the same
// bytes), maps it MAP_SHARED and copies its records into it. A record is in
// the page cache as soon as it is copied: nothing waits in the process, so
// a program that ends with _exit or is killed loses none, and a record costs
// no system call. The unused end of a chunk (and the gap to the page
// boundary where a chunk starts) stays zero: records of kind kTracePadding,
// which readers skip. Where the file cannot be reserved or mapped, records
// are buffered and appended in whole batches with O_APPEND (under the same
// lock), written when the buffer is full, on flush() and at exit; a file
// that is not a regular one (a pipe, a terminal: AIO2_TRACE=/dev/stderr)
// gets each record in one write(2) of its own, which a pipe keeps whole.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "aio2/abi.h"

namespace aio2_compat {

// Record kinds.
constexpr uint32_t kTracePadding = 0;  // unused room in a mapped chunk: skipped
constexpr uint32_t kTraceMagic = 0x52543241;  // "A2TR": the header
constexpr uint32_t kTraceRequest = 1;
constexpr uint32_t kTraceProcess = 2;
constexpr uint32_t kTraceContext = 3;
constexpr uint32_t kTraceContextEnd = 4;

constexpr uint16_t kTraceVersion = 1;
constexpr uint16_t kTraceRecordSize = 128;

// What a request's `op` means.
constexpr uint8_t kOpUnknown = 0;  // the event matched no submitted request
constexpr uint8_t kOpIocb = 1;     // IOCB_CMD_* of <linux/aio_abi.h>
constexpr uint8_t kOpSyscall = 2;  // a system call number (SYS_pread64, ...)

// Request flags.
constexpr uint8_t kReqVectored = 0x1;  // nbytes is the iovec count (PREADV, PWRITEV)
constexpr uint8_t kReqCanceled = 0x2;  // the event says the request never ran

// A status byte for an attribute whose result the event did not carry.
constexpr uint8_t kStatusMissing = 0xff;
enum trace_attr : unsigned { kAttrTiming, kAttrCache, kAttrExecutor, kTraceAttrs };

// Which replacement wrote a record. Both may be loaded in one process, each
// with its own writer: a context is named by (pid, source, ctx).
constexpr uint32_t kSourceLibaio = 1;
constexpr uint32_t kSourcePosix = 2;

// How a context's record stream ended.
constexpr uint32_t kEndDestroyed = 1;  // io_destroy (or its equivalent)
constexpr uint32_t kEndExit = 2;       // the process exited with the context alive

struct trace_header {
  uint32_t kind;  // kTraceMagic
  uint16_t version;
  uint16_t record_size;
  char text[24];  // "aio2 trace file\n", for file(1) and people
  unsigned char reserved[96];
};

// The first record of a process, before its others.
struct trace_process {
  uint32_t kind;  // kTraceProcess
  uint32_t pid;
  uint32_t ppid;
  uint32_t source;         // kSource* of the replacement that wrote it
  uint64_t monotonic_ns;   // CLOCK_MONOTONIC, the clock of every time stamp ...
  uint64_t realtime_ns;    // ... and CLOCK_REALTIME at the same moment
  char comm[16];           // the process's name (/proc/self/comm), NUL-padded
  unsigned char reserved[80];
};

// A context was set up.
struct trace_context {
  uint32_t kind;  // kTraceContext
  uint32_t pid;
  uint32_t ctx;  // the context's number within the process, from 1
  uint32_t source;
  uint32_t max_events;     // what io_setup asked for (0 when it does not apply)
  uint32_t uring_entries;  // aio2_params.uring_entries (0: no io_uring)
  uint64_t features;       // aio2_params.features
  uint64_t ring_bytes;     // the aio2 ring the events were read from
  uint64_t opened_ns;      // CLOCK_MONOTONIC
  unsigned char reserved[80];
};

// A context's stream ended. requests = records + unobserved.
struct trace_context_end {
  uint32_t kind;  // kTraceContextEnd
  uint32_t pid;
  uint32_t ctx;
  uint32_t how;         // kEnd*
  uint64_t requests;    // requests submitted and accepted
  uint64_t records;     // request records written for it
  uint64_t dropped;     // events the aio2 ring had no room for (no record)
  uint64_t unobserved;  // requests with no record: dropped, or in flight at the end
  uint64_t unmatched;   // records whose event matched no submitted request
  uint64_t closed_ns;   // CLOCK_MONOTONIC
  uint32_t source;
  unsigned char reserved[60];
};

// One completed request.
struct trace_request {
  uint32_t kind;  // kTraceRequest
  uint32_t pid;
  uint32_t ctx;
  uint16_t op;       // IOCB_CMD_* or a system call number, per op_space
  uint8_t op_space;  // kOpIocb, kOpSyscall or kOpUnknown
  uint8_t flags;     // kReq*
  int32_t fd;        // -1 when unknown
  uint8_t status[kTraceAttrs];  // AIO2_ATTR_* per trace_attr, or kStatusMissing
  uint8_t source;               // kSource*
  uint64_t offset;
  uint64_t nbytes;     // bytes asked for (iovecs with kReqVectored)
  int64_t res;         // the result the program saw: bytes, or -errno
  uint64_t user_data;  // the program's handle of the request: its iocb's address
  aio2_attr_timing timing;  // valid when status[kAttrTiming] is AIO2_ATTR_OK
  uint32_t cache_outcome;   // AIO2_CACHE_*, when status[kAttrCache] is OK
  uint32_t cache_method;    // AIO2_CACHE_BY_*
  uint64_t bytes_cached;
  uint64_t bytes_requested;
  aio2_attr_executor executor;  // valid when status[kAttrExecutor] is OK
};

static_assert(sizeof(trace_header) == kTraceRecordSize);
static_assert(sizeof(trace_process) == kTraceRecordSize);
static_assert(sizeof(trace_context) == kTraceRecordSize);
static_assert(sizeof(trace_context_end) == kTraceRecordSize);
static_assert(sizeof(trace_request) == kTraceRecordSize);
static_assert(offsetof(trace_request, timing) == 56);
static_assert(offsetof(trace_request, executor) == 112);

// Fills a request record's results from an aio2 event carrying the timing,
// cache and executor attributes: res, the canceled flag, and each
// attribute's status and payload. The request's own fields are left alone.
void fill_results(trace_request &rec, const aio2_event &ev) noexcept;

// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t trace_now_ns() noexcept;

// The process's trace writer (see the top of this file for how records
// reach the file). Any number of threads may use it; after fork() the child
// writes under its own pid, with its own process record, into chunks of its
// own (it opens the file again, so that its lock is not the parent's).
class trace_writer {
 public:
  // The writer of AIO2_TRACE, opened on the first call (later calls return
  // the same, whatever the environment says then); nullptr when AIO2_TRACE
  // is unset or empty, or when the file cannot be used: then one line on
  // standard error says why, starting with `who` ("aio2 libaio"). `source`
  // is kSource* of the caller.
  static trace_writer *from_env(const char *who, uint32_t source) noexcept;

  // A new context: writes its context record and returns its number.
  uint32_t context_opened(const aio2_params &p, uint32_t max_events) noexcept;
  // Appends records; their kind, pid and source are set here, the rest
  // (ctx included) is the caller's.
  void append(const trace_request *recs, size_t n) noexcept;
  // A context's end record; kind, pid and source are set here.
  void context_closed(const trace_context_end &end) noexcept;
  // Every record appended before the call is in the file (or lost to a
  // write error, reported once) when it returns: it writes what a batch
  // holds, and costs nothing when records are mapped or written at once.
  void flush() noexcept;
  // Flushes when records have waited longer than `ns` (the observer's idle
  // flush, so a long quiet run still reaches the file).
  void flush_if_older(uint64_t ns) noexcept;

  // How records reach the file.
  enum class mode { mapped, batched, each };
  mode how() const noexcept;
  pid_t pid() const noexcept { return pid_; }
  // Records a write error dropped (with the records lost after it).
  uint64_t lost() const noexcept;

  trace_writer(const trace_writer &) = delete;
  trace_writer &operator=(const trace_writer &) = delete;

 private:
  trace_writer(int fd, std::string path, std::string who, uint32_t source, mode how) noexcept;
  void add_locked(const void *rec) noexcept;
  bool take_chunk_locked() noexcept;
  void write_locked() noexcept;
  void fail_locked(const char *what, int err) noexcept;
  void process_record_locked() noexcept;
  static void at_fork_prepare() noexcept;
  static void at_fork_parent() noexcept;
  static void at_fork_child() noexcept;
  static void at_exit() noexcept;

  // 1 MiB: few reservations for a long run, little zeroed room left in the
  // file by each process that ends.
  static constexpr size_t kChunk = size_t{1} << 20;

  mutable std::mutex mu_;  // guards every field below but pid_, written only at fork
  int fd_;
  std::string path_, who_;
  uint32_t source_;
  pid_t pid_;
  mode how_;
  bool process_written_ = false;
  bool failed_ = false;  // a write failed: nothing more is written
  uint32_t next_ctx_ = 1;
  uint64_t lost_ = 0;
  uint64_t oldest_ns_ = 0;  // batched: when the oldest buffered record was appended
  unsigned char *chunk_ = nullptr;  // mapped: the chunk records go to, or none yet
  size_t chunk_used_ = 0;           // mapped: bytes of it holding records
  std::vector<unsigned char> buf_;  // batched and each: records not yet written
  size_t used_ = 0;
};

// ---------------------------------------------------------------------------
// Reading a trace file

struct trace_contents {
  std::vector<trace_process> processes;
  std::vector<trace_context> contexts;
  std::vector<trace_context_end> ends;
  std::vector<trace_request> requests;
  uint64_t unknown_records = 0;  // kinds this reader does not know (skipped)
  uint64_t padding_records = 0;  // kTracePadding: unused room of mapped chunks (skipped)
  uint64_t trailing_bytes = 0;   // a partial record at the end (a write cut short)
};

// Reads the trace file at `path`. Returns "" or a one-line error (the file
// cannot be read, is not a trace file, or has another version or record
// size). An empty file is a trace with nothing in it.
std::string read_trace_file(const std::string &path, trace_contents &out);

}  // namespace aio2_compat
