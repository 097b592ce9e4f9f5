// SPDX-License-Identifier: MIT
// Helpers the context tests share: a context that destroys itself (with a
// policy, or pinned to the pool), the monotonic clock, reaping exactly n
// events, a request builder and event copies, and the exact path each
// policy must give a request.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "aio2/aio2.h"

namespace aio2_test {

struct ctx_deleter {
  void operator()(aio2_ctx *c) const { aio2_destroy(c); }
};
using ctx_ptr = std::unique_ptr<aio2_ctx, ctx_deleter>;

// A context with parameters `p` (size filled in); fails the test on error.
inline ctx_ptr make_ctx(aio2_params p = {}) {
  p.size = sizeof p;
  aio2_ctx *c = nullptr;
  const int err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  EXPECT_EQ(err, 0) << aio2_strerror(err);
  return ctx_ptr(c);
}

// A context of `p`, whose setup's answers (features, what it read back)
// stay in `p` for the test to look at.
inline ctx_ptr make_ctx_answering(aio2_params &p) {
  p.size = sizeof p;
  aio2_ctx *c = nullptr;
  const int err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  EXPECT_EQ(err, 0) << aio2_strerror(err);
  return ctx_ptr(c);
}

// A context with at most `bounded_workers` bounded workers (default policy).
inline ctx_ptr make_ctx(uint32_t bounded_workers) {
  aio2_params p{};
  p.bounded_workers = bounded_workers;
  return make_ctx(p);
}

// A context with policy `policy` (AIO2_POLICY_*) and the other parameters
// from `p`; `in_force`, when given, receives what aio2_setup wrote back.
inline ctx_ptr make_policy_ctx(uint32_t policy, aio2_params p = {},
                               aio2_params *in_force = nullptr) {
  p.policy = policy;
  p.size = sizeof p;
  aio2_ctx *c = nullptr;
  const int err = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  EXPECT_EQ(err, 0) << aio2_strerror(err);
  if (in_force) *in_force = p;
  return ctx_ptr(c);
}

// A context that runs every request on the thread pool, with at most
// `bounded_workers` bounded workers (0: the default): for tests of the
// pool's own behaviour (workers, queueing, signals to blocked threads).
inline ctx_ptr make_pool_ctx(uint32_t bounded_workers = 0) {
  aio2_params p{};
  p.bounded_workers = bounded_workers;
  return make_policy_ctx(AIO2_POLICY_POOL, p);
}

// CLOCK_MONOTONIC now, in nanoseconds.
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Calls fn(const aio2_event *) for each of the next `n` events, waiting up
// to 10 s for each batch (a test failure, not a hang, when they never come).
template <class Fn>
void for_events(aio2_ctx *c, unsigned n, Fn fn) {
  alignas(8) unsigned char buf[8192];
  for (unsigned seen = 0; seen < n;) {
    const timespec ts{10, 0};
    const ssize_t got = aio2_getevents(c, 1, buf, sizeof buf, &ts);
    EXPECT_GT(got, 0) << aio2_strerror(static_cast<int>(got));
    if (got <= 0) return;
    for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
         ev = aio2_event_next(buf, static_cast<size_t>(got), ev), seen++)
      fn(ev);
  }
}

// The next `n` events, as copies.
inline std::vector<std::vector<unsigned char>> wait_events(aio2_ctx *c, unsigned n) {
  std::vector<std::vector<unsigned char>> out;
  for_events(c, n, [&](const aio2_event *ev) {
    const auto *p = reinterpret_cast<const unsigned char *>(ev);
    out.emplace_back(p, p + ev->len);
  });
  return out;
}

// ---- policies and paths ------------------------------------------------------

// "Auto", "Inline", "Uring", "Pool": for parametrized test names.
inline const char *policy_name(uint32_t policy) {
  switch (policy) {
    case AIO2_POLICY_AUTO: return "Auto";
    case AIO2_POLICY_INLINE: return "Inline";
    case AIO2_POLICY_URING: return "Uring";
    case AIO2_POLICY_POOL: return "Pool";
  }
  return "Unknown";
}

inline std::string policy_param_name(const ::testing::TestParamInfo<uint32_t> &info) {
  return policy_name(info.param);
}

// "INLINE|URING" for executor paths in messages.
inline std::string path_str(uint32_t path) {
  static const char *const names[] = {"CALL", "POOL", "INLINE", "URING"};
  std::string s;
  for (unsigned i = 0; i < 4; i++)
    if (path & (1u << i)) s += (s.empty() ? "" : "|") + std::string(names[i]);
  if (path & ~AIO2_PATH_ALL) s += (s.empty() ? "" : "|") + std::string("?");
  return s.empty() ? "0" : s;
}

// Where a request must run under each policy, by the routing rules
// (docs/design.md, "Paths"; docs/syscalls.md, "Where each call goes").
// INLINE and POOL run every request where they say; URING and AUTO depend
// on the call, its arguments and descriptors, and whether the context has
// io_uring.
struct route {
  uint32_t auto_uring;     // AUTO's executor path on a context with AIO2_FEAT_URING
  uint32_t auto_no_uring;  // AUTO's executor path on a context without it
  bool uring_takes;        // URING on a context with io_uring: io_uring, else the pool
};

// A call the system-call table marks non-blocking (getppid, gettid, uname):
// inline under AUTO; io_uring has no operation for it.
constexpr route kNonblockingCall{AIO2_PATH_INLINE, AIO2_PATH_INLINE, false};
// A call io_uring takes with these arguments and descriptors (fsync, statx,
// pwrite64 of a regular file, an O_DIRECTORY open) and that is not a read
// a nowait-first read that starts in the submitter serves: the pool without io_uring.
constexpr route kUringCall{AIO2_PATH_URING, AIO2_PATH_POOL, true};
// A call io_uring has no operation for (nanosleep, getdents64), or one it
// would answer differently for these arguments (a read at a regular file's
// position, a write to a blocking pipe, an open that could wait on a FIFO).
constexpr route kPoolCall{AIO2_PATH_POOL, AIO2_PATH_POOL, false};
// A read at an offset >= 0 of a regular file read through the page cache,
// whose RWF_NOWAIT attempt reads all of it, submitted alone: the split
// route, which finishes it inline, with or without io_uring (a context
// with io_uring makes the attempt in the submitter for calls of a few
// requests while its reads mostly hit: core/nowait_adapt.h).
constexpr route kCachedRead{AIO2_PATH_INLINE, AIO2_PATH_INLINE, true};
// The same read when that attempt does not read all of it: the rest goes
// to io_uring, or to the pool without it. (After several such reads a
// context with io_uring sends most of them to io_uring whole: tests that
// expect this route make few of them per context.)
constexpr route kUncachedRead{AIO2_PATH_INLINE | AIO2_PATH_URING, AIO2_PATH_INLINE | AIO2_PATH_POOL,
                              true};
// A read or write (or recvfrom, sendto, accept...) whose every descriptor
// is an O_NONBLOCK pipe or socket: it cannot block, so AUTO runs it inline,
// with or without io_uring; io_uring would wait where the call returns
// -EAGAIN, so URING sends it to the pool.
constexpr route kNonblockingDescriptor{AIO2_PATH_INLINE, AIO2_PATH_INLINE, false};

// The executor path `policy` must give a request of route `r`; `uring`: the
// context has AIO2_FEAT_URING.
inline uint32_t expected_path(uint32_t policy, const route &r, bool uring) {
  switch (policy) {
    case AIO2_POLICY_INLINE: return AIO2_PATH_INLINE;
    case AIO2_POLICY_POOL: return AIO2_PATH_POOL;
    case AIO2_POLICY_URING: return uring && r.uring_takes ? AIO2_PATH_URING : AIO2_PATH_POOL;
    case AIO2_POLICY_AUTO: return uring ? r.auto_uring : r.auto_no_uring;
  }
  return 0;
}

// Checks an executor path against expected_path().
inline ::testing::AssertionResult path_is(uint32_t policy, const route &r, bool uring,
                                          uint32_t path) {
  const uint32_t want = expected_path(policy, r, uring);
  if (path == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "policy " << policy_name(policy) << (uring ? " with" : " without")
         << " io_uring: path " << path_str(path) << ", want " << path_str(want);
}

// ---- requests and events -----------------------------------------------------

// A request without attributes.
inline aio2_iocb req(long nr, uint64_t ud, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                     uint64_t a3 = 0) {
  aio2_iocb io;
  aio2_prep(&io, nr, ud, a0, a1, a2, a3, 0, 0);
  return io;
}

// A request with attributes, in its own 8-aligned buffer.
struct req_buf {
  alignas(8) unsigned char b[1024] = {};
  aio2_iocb *io() { return reinterpret_cast<aio2_iocb *>(b); }
  req_buf(long nr, uint64_t ud, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
          uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0) {
    aio2_prep(io(), nr, ud, a0, a1, a2, a3, a4, a5);
  }
  req_buf &attr(uint16_t id, const void *payload = nullptr, size_t n = 0, uint16_t flags = 0) {
    // Hidden from the optimizer: GCC 12 with -fsanitize=thread otherwise
    // takes the attribute written at io + io->len for a write into io->len.
    aio2_iocb *p = io();
    __asm__("" : "+r"(p));
    EXPECT_NE(aio2_attr_add(p, sizeof b, id, flags, payload, n), nullptr);
    return *this;
  }
  template <class T>
  req_buf &attr_of(uint16_t id, const T &payload, uint16_t flags = 0) {
    return attr(id, &payload, sizeof payload, flags);
  }
  // Overrides the context's policy for this request.
  req_buf &path(uint32_t policy) {
    io()->flags |= AIO2_IOCB_POLICY(policy);
    return *this;
  }
  uint32_t len() { return io()->len; }
};

// A copy of one event, 8-aligned; empty when there was none.
struct event_copy {
  std::vector<uint64_t> words;
  bool empty() const { return words.empty(); }
  const aio2_event *ev() const { return reinterpret_cast<const aio2_event *>(words.data()); }
  int64_t res() const { return words.empty() ? INT64_MIN : ev()->res; }
  uint64_t user_data() const { return words.empty() ? ~0ull : ev()->user_data; }
  uint16_t status(uint16_t id) const {
    const aio2_attr_ret *r = words.empty() ? nullptr : aio2_event_find_attr(ev(), id);
    return r ? r->status : 0xffff;
  }
  // The result of `id`; a test failure when its status is not OK.
  template <class T>
  T get(uint16_t id) const {
    uint16_t st = 0xffff;
    const void *p = words.empty() ? nullptr : aio2_event_attr_payload(ev(), id, sizeof(T), &st);
    EXPECT_NE(p, nullptr) << "attribute " << id << " status " << st;
    T t{};
    if (p) std::memcpy(&t, p, sizeof t);
    return t;
  }
  // The executor attribute's path, or 0 when the event has none.
  uint32_t path() const {
    uint16_t st;
    const void *p = words.empty() ? nullptr
                                  : aio2_event_attr_payload(ev(), AIO2_ATTR_EXECUTOR,
                                                            sizeof(aio2_attr_executor), &st);
    if (!p) return 0;
    aio2_attr_executor e;
    std::memcpy(&e, p, sizeof e);
    return e.path;
  }
};

inline event_copy copy_event(const aio2_event *ev) {
  event_copy e;
  e.words.resize(ev->len / 8);
  std::memcpy(e.words.data(), ev, ev->len);
  return e;
}

// The next `n` events of `c`, as copies.
inline std::vector<event_copy> reap(aio2_ctx *c, unsigned n) {
  std::vector<event_copy> out;
  for_events(c, n, [&](const aio2_event *ev) { out.push_back(copy_event(ev)); });
  return out;
}

// Submits `r` to `c` and reaps its event (empty when refused or lost).
inline event_copy submit_one(aio2_ctx *c, req_buf &r) {
  const ssize_t n = aio2_submit(c, r.b, r.len());
  EXPECT_EQ(n, static_cast<ssize_t>(r.len())) << aio2_strerror(static_cast<int>(n));
  if (n != static_cast<ssize_t>(r.len())) return {};
  auto evs = reap(c, 1);
  if (evs.empty()) return {};
  EXPECT_EQ(evs[0].user_data(), r.io()->user_data);
  return evs[0];
}

// Submits `r` to `c` and waits up to `wait_s` seconds for its event (the
// only one in flight). When none comes: a test failure, the request is
// cancelled and its event reaped, and the result is empty (res() INT64_MIN),
// so that a call that waits where it should not costs seconds, not a hang.
inline event_copy submit_wait(aio2_ctx *c, req_buf &r, long wait_s) {
  const ssize_t n = aio2_submit(c, r.b, r.len());
  EXPECT_EQ(n, static_cast<ssize_t>(r.len())) << aio2_strerror(static_cast<int>(n));
  if (n != static_cast<ssize_t>(r.len())) return {};
  alignas(8) unsigned char buf[2048];
  const timespec ts{wait_s, 0};
  ssize_t got;
  while ((got = aio2_getevents(c, 1, buf, sizeof buf, &ts)) == -EINTR) {
  }
  if (got > 0) {
    const aio2_event *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr);
    EXPECT_EQ(aio2_event_next(buf, static_cast<size_t>(got), ev), nullptr) << "more than one event";
    EXPECT_EQ(ev->user_data, r.io()->user_data);
    return copy_event(ev);
  }
  ADD_FAILURE() << "no event within " << wait_s << " s for system call " << r.io()->nr
                << " (cancelling it): " << aio2_strerror(static_cast<int>(got));
  aio2_cancel(c, r.io()->user_data);
  for_events(c, 1, [](const aio2_event *) {});
  return {};
}

// Runs `r` synchronously with aio2_call (the reference for a call's result).
inline event_copy call_one(req_buf &r) {
  event_copy e;
  e.words.resize(512);
  const ssize_t n = aio2_call(nullptr, r.io(), e.words.data(), e.words.size() * 8);
  EXPECT_GT(n, 0) << aio2_strerror(static_cast<int>(n));
  e.words.resize(n > 0 ? static_cast<size_t>(n) / 8 : 0);
  return e;
}

}  // namespace aio2_test
