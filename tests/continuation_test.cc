// SPDX-License-Identifier: MIT
// The parts of the inline and io_uring paths that only show at their edges:
// a read the page cache serves in part (the RWF_NOWAIT attempt reads the
// cached prefix and the rest continues from there, on io_uring or a worker),
// the end of the file, the ring flag that tells reapers of the ring in
// memory to call in while io_uring holds requests, the eventfd, and many
// reapers waiting while completions come from io_uring, the pool and the
// submitting thread at once.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs_util.h"
#include "test_util.h"

namespace {

using aio2_test::ctx_ptr;

constexpr size_t kPage = 4096;

// A temporary file of `bytes` with byte i = (i * 7 + i / 4096) & 0xff, out
// of the page cache, readahead off; unlinked on destruction.
struct pattern_file {
  int fd = -1;
  size_t size = 0;
  std::string path;
  explicit pattern_file(size_t bytes) : size(bytes) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    path = std::string(dir) + "/aio2-cont-XXXXXX";
    fd = mkstemp(path.data());
    EXPECT_GE(fd, 0);
    std::vector<unsigned char> data(bytes);
    for (size_t i = 0; i < bytes; i++) data[i] = byte_at(i);
    EXPECT_EQ(pwrite(fd, data.data(), bytes, 0), static_cast<ssize_t>(bytes));
    EXPECT_EQ(fdatasync(fd), 0);
    evict();
    EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
  }
  ~pattern_file() {
    close(fd);
    unlink(path.c_str());
  }
  static unsigned char byte_at(size_t i) { return static_cast<unsigned char>(i * 7 + i / kPage); }
  void evict() const {
    aio2_test::pattern_file::evict_range(fd, size, 0, size);
    EXPECT_EQ(aio2_test::pattern_file::resident_bytes(fd, size, 0, size), 0u);
  }
  // Brings page `n` (only) into the page cache.
  void warm_page(size_t n) const {
    unsigned char junk[kPage];
    EXPECT_EQ(pread(fd, junk, kPage, static_cast<off_t>(n * kPage)), static_cast<ssize_t>(kPage));
  }
  bool matches(const unsigned char *buf, size_t off, size_t len) const {
    for (size_t i = 0; i < len; i++)
      if (buf[i] != byte_at(off + i)) return false;
    return true;
  }
};

ctx_ptr make(uint32_t policy, uint32_t flags = 0) {
  aio2_params p{};
  p.policy = policy;
  p.flags = flags;
  return aio2_test::make_ctx(p);
}

bool has_uring(aio2_ctx *c) {
  aio2_params p{};
  p.size = sizeof p;
  // The features are only reported at setup; a second context tells.
  (void)c;
  aio2_ctx *probe = nullptr;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &probe) != 0) return false;
  aio2_destroy(probe);
  return (p.features & AIO2_FEAT_URING) != 0;
}

struct result {
  int64_t res = 0;
  uint32_t path = 0;
  uint16_t cache_status = 0xffff;
  aio2_attr_cache cache{};
};

// Submits `io` (built with room for executor and cache attributes) and
// returns its event's result, path and cache outcome.
result run(aio2_ctx *c, aio2_iocb *io, size_t cap) {
  aio2_attr_add(io, cap, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
  aio2_attr_add(io, cap, AIO2_ATTR_CACHE, 0, nullptr, 0);
  EXPECT_EQ(aio2_submit(c, io, io->len), static_cast<ssize_t>(io->len));
  result r;
  aio2_test::for_events(c, 1, [&](const aio2_event *ev) {
    r.res = ev->res;
    const auto *x = static_cast<const aio2_attr_executor *>(
        aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof(aio2_attr_executor), nullptr));
    if (x) r.path = x->path;
    const void *cp = aio2_event_attr_payload(ev, AIO2_ATTR_CACHE, sizeof r.cache, &r.cache_status);
    if (cp) {
      std::memcpy(&r.cache, cp, sizeof r.cache);
      r.cache_status = AIO2_ATTR_OK;
    }
  });
  return r;
}

// The two routes that continue a partly cached read: io_uring (probe with
// RWF_NOWAIT, the rest again without), and, without io_uring, the split
// read (RWF_NOWAIT in the submitting thread, the rest on a worker).
struct route {
  const char *name;
  uint32_t policy;
  uint32_t flags;
  uint32_t want_path;  // executor path when the read did not finish at once
};
const route kRoutes[] = {
    {"Uring", AIO2_POLICY_URING, 0, AIO2_PATH_URING},
    {"SplitWithoutUring", AIO2_POLICY_AUTO, AIO2_SETUP_NO_URING,
     AIO2_PATH_INLINE | AIO2_PATH_POOL},
};

void PrintTo(const route &r, std::ostream *os) { *os << r.name; }

class Continuation : public ::testing::TestWithParam<route> {
 protected:
  void SetUp() override {
    ctx_ = make(GetParam().policy, GetParam().flags);
    ASSERT_TRUE(ctx_);
    if (GetParam().policy == AIO2_POLICY_URING && !has_uring(ctx_.get()))
      GTEST_SKIP() << "io_uring is not available here";
  }
  // Runs `io` with only page `page` of `f` cached, until its RWF_NOWAIT
  // attempt reads part of it. The attempt may also start the read of the
  // next page, and on a fast device find it cached before it returns: then
  // the whole read was served at once, which is right but does not
  // continue anything, so the page is evicted and the read run again.
  // *whole: every try read everything at once (the device always won the
  // race); the data was still checked by the caller.
  result run_partly_cached(const pattern_file &f, size_t page, aio2_iocb *io, size_t cap,
                           bool *whole) {
    result r;
    for (int i = 0; i < 50; i++) {
      f.evict();
      f.warm_page(page);
      r = run(ctx_.get(), io, cap);
      if (r.cache.outcome != AIO2_CACHE_HIT) break;
    }
    *whole = r.cache.outcome == AIO2_CACHE_HIT;
    return r;
  }
  ctx_ptr ctx_;
};

TEST_P(Continuation, PartlyCachedPreadReadsTheRestAndSaysPartial) {
  pattern_file f(16 * kPage);
  std::vector<unsigned char> buf(2 * kPage + 100, 0);
  alignas(8) unsigned char req[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  aio2_prep(io, SYS_pread64, 1, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(buf.data()),
            2 * kPage, 2 * kPage, 0, 0);
  bool whole = false;
  const result r = run_partly_cached(f, 2, io, sizeof req, &whole);  // page 2 cached, 3 not
  ASSERT_EQ(r.res, static_cast<int64_t>(2 * kPage));
  EXPECT_TRUE(f.matches(buf.data(), 2 * kPage, 2 * kPage)) << "data read in two parts";
  EXPECT_EQ(buf[2 * kPage], 0) << "nothing written past the request";
  if (whole) GTEST_SKIP() << "every RWF_NOWAIT attempt found its own read of page 3 done";
  ASSERT_EQ(r.cache_status, AIO2_ATTR_OK);
  EXPECT_EQ(r.cache.method, AIO2_CACHE_BY_NOWAIT);
  EXPECT_EQ(r.cache.outcome, AIO2_CACHE_PARTIAL);
  EXPECT_EQ(r.cache.bytes_cached, kPage);
  EXPECT_EQ(r.cache.bytes_requested, 2 * kPage);
  EXPECT_EQ(r.path, GetParam().want_path) << aio2_test::path_str(r.path);
}

TEST_P(Continuation, PartlyCachedReadvContinuesInsideAnIovec) {
  pattern_file f(16 * kPage);
  // 1000 + 5000 + 2192 bytes: the cached first page ends inside iovec 1.
  std::vector<unsigned char> a(1000), b(5000), c(2192);
  iovec iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  alignas(8) unsigned char req[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  aio2_prep(io, SYS_preadv, 2, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(iov), 3, 0,
            0, 0);
  bool whole = false;
  const result r = run_partly_cached(f, 0, io, sizeof req, &whole);
  ASSERT_EQ(r.res, static_cast<int64_t>(2 * kPage));
  EXPECT_TRUE(f.matches(a.data(), 0, a.size()));
  EXPECT_TRUE(f.matches(b.data(), 1000, b.size()));
  EXPECT_TRUE(f.matches(c.data(), 6000, c.size()));
  if (whole) GTEST_SKIP() << "every RWF_NOWAIT attempt found its own read of page 1 done";
  EXPECT_EQ(r.cache.outcome, AIO2_CACHE_PARTIAL);
  EXPECT_EQ(r.cache.bytes_cached, kPage);
}

TEST_P(Continuation, ReadAtThePositionMovesItOnceByTheWholeLength) {
  pattern_file f(16 * kPage);
  f.warm_page(1);
  ASSERT_EQ(lseek(f.fd, static_cast<off_t>(kPage), SEEK_SET), static_cast<off_t>(kPage));
  std::vector<unsigned char> buf(3 * kPage);
  alignas(8) unsigned char req[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  aio2_prep(io, SYS_read, 3, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(buf.data()),
            buf.size(), 0, 0, 0);
  const result r = run(ctx_.get(), io, sizeof req);
  ASSERT_EQ(r.res, static_cast<int64_t>(buf.size()));
  EXPECT_TRUE(f.matches(buf.data(), kPage, buf.size()));
  EXPECT_EQ(lseek(f.fd, 0, SEEK_CUR), static_cast<off_t>(4 * kPage));
  EXPECT_EQ(r.cache.outcome, AIO2_CACHE_PARTIAL);
}

TEST_P(Continuation, UncachedIsAMissAndCachedIsAHit) {
  pattern_file f(4 * kPage);
  std::vector<unsigned char> buf(kPage);
  for (uint32_t want : {AIO2_CACHE_MISS, AIO2_CACHE_HIT}) {
    alignas(8) unsigned char req[256];
    auto *io = reinterpret_cast<aio2_iocb *>(req);
    aio2_prep(io, SYS_pread64, 4, static_cast<uint64_t>(f.fd),
              reinterpret_cast<uint64_t>(buf.data()), kPage, kPage, 0, 0);
    // The cold read's attempt may find its own read of the page finished
    // before it returns (a fast device): evicted and run again then.
    result r = run(ctx_.get(), io, sizeof req);
    for (int i = 0; i < 50 && want == AIO2_CACHE_MISS && r.cache.outcome != want; i++) {
      f.evict();
      r = run(ctx_.get(), io, sizeof req);
    }
    ASSERT_EQ(r.res, static_cast<int64_t>(kPage));
    EXPECT_TRUE(f.matches(buf.data(), kPage, kPage));
    if (want == AIO2_CACHE_MISS && r.cache.outcome == AIO2_CACHE_HIT)
      GTEST_SKIP() << "every RWF_NOWAIT attempt found its own read of the page done";
    EXPECT_EQ(r.cache.outcome, want);
    EXPECT_EQ(r.cache.bytes_cached, want == AIO2_CACHE_HIT ? kPage : 0);
    // A hit finishes at once: inline for the split read, on io_uring there.
    if (want == AIO2_CACHE_HIT && (GetParam().flags & AIO2_SETUP_NO_URING)) {
      EXPECT_EQ(r.path, AIO2_PATH_INLINE) << aio2_test::path_str(r.path);
    }
  }
}

TEST_P(Continuation, TheEndOfTheFileClipsTheRequest) {
  pattern_file f(6000);
  std::vector<unsigned char> junk(8192);
  ASSERT_EQ(pread(f.fd, junk.data(), junk.size(), 0), 6000);  // all cached
  std::vector<unsigned char> buf(8192);
  alignas(8) unsigned char req[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  aio2_prep(io, SYS_pread64, 5, static_cast<uint64_t>(f.fd), reinterpret_cast<uint64_t>(buf.data()),
            buf.size(), 0, 0, 0);
  const result r = run(ctx_.get(), io, sizeof req);
  ASSERT_EQ(r.res, 6000);
  EXPECT_TRUE(f.matches(buf.data(), 0, 6000));
  EXPECT_EQ(r.cache.outcome, AIO2_CACHE_HIT);
  EXPECT_EQ(r.cache.bytes_requested, 6000u);
}

TEST_P(Continuation, AFailedReadKeepsItsErrorAndNeedsNoCacheAnswer) {
  alignas(8) unsigned char req[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  static unsigned char buf[64];
  aio2_prep(io, SYS_pread64, 6, 987654, reinterpret_cast<uint64_t>(buf), sizeof buf, 0, 0, 0);
  const result r = run(ctx_.get(), io, sizeof req);
  EXPECT_EQ(r.res, -EBADF);
  EXPECT_EQ(r.cache_status, AIO2_ATTR_NOT_APPLICABLE);
}

INSTANTIATE_TEST_SUITE_P(Routes, Continuation, ::testing::ValuesIn(kRoutes),
                         [](const auto &p) { return std::string(p.param.name); });

// ---- io_uring and the ring in memory -----------------------------------------

class UringRing : public ::testing::Test {
 protected:
  void SetUp() override {
    aio2_params p{};
    p.policy = AIO2_POLICY_URING;
    p.flags = AIO2_SETUP_EVENTFD;
    p.size = sizeof p;
    ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &raw_), 0);
    ctx_.reset(raw_);
    if (!(p.features & AIO2_FEAT_URING)) GTEST_SKIP() << "io_uring is not available here";
    efd_ = p.eventfd;
    ASSERT_EQ(pipe2(pipe_, O_CLOEXEC), 0);
  }
  void TearDown() override {
    if (pipe_[0] >= 0) close(pipe_[0]);
    if (pipe_[1] >= 0) close(pipe_[1]);
  }
  aio2_ctx *raw_ = nullptr;
  ctx_ptr ctx_;
  int efd_ = -1;
  int pipe_[2] = {-1, -1};
};

TEST_F(UringRing, ReapersInMemoryAreToldToCallInWhileIoUringHoldsRequests) {
  aio2_ring *ring = aio2_ring_get(ctx_.get());
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(aio2_ring_owner_flags(ring) & AIO2_RING_NEED_GETEVENTS, 0u);
  static char buf[16];
  aio2_iocb io;
  aio2_prep(&io, SYS_read, 7, static_cast<uint64_t>(pipe_[0]), reinterpret_cast<uint64_t>(buf),
            sizeof buf, 0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
  EXPECT_NE(aio2_ring_owner_flags(ring) & AIO2_RING_NEED_GETEVENTS, 0u);
  alignas(8) unsigned char out[256];
  EXPECT_EQ(aio2_reap_events(ring, out, sizeof out), -EAGAIN);
  // The eventfd is quiet until the read completes, then signals.
  pollfd pfd{efd_, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  ASSERT_EQ(write(pipe_[1], "ping", 4), 4);
  EXPECT_EQ(poll(&pfd, 1, 10000), 1) << "the eventfd signals an io_uring completion";
  // aio2_getevents harvests it; afterwards the flag is clear.
  const timespec ts{10, 0};
  const ssize_t got = aio2_getevents(ctx_.get(), 1, out, sizeof out, &ts);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof(aio2_event)));
  EXPECT_EQ(reinterpret_cast<aio2_event *>(out)->res, 4);
  EXPECT_EQ(std::memcmp(buf, "ping", 4), 0);
  EXPECT_EQ(aio2_ring_owner_flags(ring) & AIO2_RING_NEED_GETEVENTS, 0u);
}

TEST_F(UringRing, CachedReadsArePostedBySubmitItself) {
  pattern_file f(8 * kPage);
  std::vector<unsigned char> junk(8 * kPage);
  ASSERT_EQ(pread(f.fd, junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
  std::vector<unsigned char> buf(kPage);
  aio2_iocb io;
  aio2_prep(&io, SYS_pread64, 8, static_cast<uint64_t>(f.fd),
            reinterpret_cast<uint64_t>(buf.data()), kPage, 0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
  // io_uring served it inside io_uring_enter; submit harvested it. (A
  // kernel may punt even a cached read to a worker; then there is nothing
  // to check here.)
  aio2_ring *ring = aio2_ring_get(ctx_.get());
  alignas(8) unsigned char out[256];
  const int64_t n = aio2_reap_events(ring, out, sizeof out);
  if (n == -EAGAIN) GTEST_SKIP() << "this kernel completed the cached read asynchronously";
  ASSERT_EQ(n, static_cast<int64_t>(sizeof(aio2_event)));
  EXPECT_EQ(reinterpret_cast<aio2_event *>(out)->res, static_cast<int64_t>(kPage));
  EXPECT_TRUE(f.matches(buf.data(), 0, kPage));
}

// Many reapers wait while completions come from io_uring (pipe reads fed
// later), the pool (getdents64) and the submitting thread (getppid): every
// event is reaped exactly once and nobody sleeps through one. The reapers
// alternate between the io_uring waiter's role and the futex.
TEST(Waiters, EveryCompletionWakesSomeReaperWhateverPathPostedIt) {
  auto ctx = make(AIO2_POLICY_AUTO);
  ASSERT_TRUE(ctx);
  constexpr unsigned kRounds = 300, kPerRound = 3, kTotal = kRounds * kPerRound;
  std::vector<std::atomic<unsigned>> seen(kTotal);
  std::atomic<unsigned> reaped{0}, missed{0}, alive{3};
  std::atomic<bool> stop{false};
  std::vector<std::thread> reapers;
  for (int t = 0; t < 3; t++) {
    reapers.emplace_back([&] {
      alignas(8) unsigned char buf[1024];
      while (!stop.load()) {
        // A long timeout: returning empty-handed while requests are still
        // outstanding means a wake-up was lost (counted, not timed).
        const timespec ts{10, 0};
        const ssize_t got = aio2_getevents(ctx.get(), 1, buf, sizeof buf, &ts);
        if (got == 0 && reaped.load() < kTotal) missed++;
        if (got <= 0) continue;
        for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
             ev = aio2_event_next(buf, static_cast<size_t>(got), ev)) {
          if (ev->user_data < kTotal) {
            seen[ev->user_data]++;
            reaped++;
          }
        }
      }
      alive--;
    });
  }
  const int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  static char pipebuf[kRounds][8];
  static char dents[kRounds][1024];
  for (unsigned i = 0; i < kRounds; i++) {
    aio2_iocb io[3];
    aio2_prep(&io[0], SYS_read, i * 3, static_cast<uint64_t>(p[0]),
              reinterpret_cast<uint64_t>(pipebuf[i]), 1, 0, 0, 0);
    aio2_prep(&io[1], SYS_getdents64, i * 3 + 1, static_cast<uint64_t>(dir),
              reinterpret_cast<uint64_t>(dents[i]), sizeof dents[i], 0, 0, 0);
    aio2_prep(&io[2], SYS_getppid, i * 3 + 2, 0, 0, 0, 0, 0, 0);
    ASSERT_EQ(aio2_submit(ctx.get(), io, sizeof io), static_cast<ssize_t>(sizeof io));
    // Feed the pipe read a little later, from another path in time.
    if (i % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    ASSERT_EQ(write(p[1], "x", 1), 1);
    lseek(dir, 0, SEEK_SET);
  }
  while (reaped.load() < kTotal && missed.load() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Wake every reaper with events of no interest until all have left.
  stop = true;
  for (uint64_t extra = kTotal; alive.load() != 0; extra++) {
    aio2_iocb io;
    aio2_prep(&io, SYS_getppid, extra, 0, 0, 0, 0, 0, 0);
    aio2_submit(ctx.get(), &io, sizeof io);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto &t : reapers) t.join();
  EXPECT_EQ(missed.load(), 0u) << "a reaper slept through pending completions";
  EXPECT_EQ(reaped.load(), kTotal);
  for (unsigned i = 0; i < kTotal; i++) EXPECT_EQ(seen[i].load(), 1u) << "request " << i;
  close(p[0]);
  close(p[1]);
  close(dir);
}

}  // namespace

namespace {

// Edge cases, each pinned down by one test: a way io_uring could answer
// differently from the call, or a wake-up that could be lost.
class Review : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    aio2_params p{};
    p.size = sizeof p;
    p.policy = GetParam();
    ASSERT_EQ(aio2_setup(AIO2_ABI_VERSION, &p, &raw_), 0);
    ctx_.reset(raw_);
  }
  // Submits `io` and waits for its event; returns res.
  int64_t one(aio2_iocb &io) {
    EXPECT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
    int64_t res = INT64_MIN;
    aio2_test::for_events(ctx_.get(), 1, [&](const aio2_event *ev) { res = ev->res; });
    return res;
  }
  aio2_ctx *raw_ = nullptr;
  ctx_ptr ctx_;
};

// A reaper waiting for two events holds the io_uring waiter's role; after
// the first is harvested nothing is in flight, then a second request goes
// to io_uring and completes. The reaper must still see it: holding the
// role, it waits on io_uring, not on the futex, where nobody would harvest
// for it.
TEST_P(Review, AReaperWaitingForMoreSeesIoUringWorkSubmittedLater) {
  int a[2], b[2];
  ASSERT_EQ(pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(b, O_CLOEXEC), 0);
  static char buf_a[8], buf_b[8];
  aio2_iocb io;
  aio2_prep(&io, SYS_read, 1, static_cast<uint64_t>(a[0]), reinterpret_cast<uint64_t>(buf_a), 1,
            0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
  std::atomic<ssize_t> got{-1};
  std::atomic<unsigned> events{0};
  std::thread reaper([&] {
    alignas(8) unsigned char out[512];
    const ssize_t n = aio2_getevents(ctx_.get(), 2, out, sizeof out, nullptr);
    unsigned k = 0;
    for (auto *ev = n > 0 ? aio2_event_next(out, static_cast<size_t>(n), nullptr) : nullptr; ev;
         ev = aio2_event_next(out, static_cast<size_t>(n), ev))
      k++;
    events = k;
    got = n;
  });
  // The reaper waits on io_uring; the read completes and the reaper itself
  // harvests it, so nothing is in flight while it still waits for one more.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(write(a[1], "a", 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  aio2_prep(&io, SYS_read, 2, static_cast<uint64_t>(b[0]), reinterpret_cast<uint64_t>(buf_b), 1,
            0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // nobody left to harvest it?
  ASSERT_EQ(write(b[1], "b", 1), 1);
  // A watchdog, not a timing check: the answer takes milliseconds; a reaper
  // that slept through the completion would wait for ever. Then a request
  // of its own wakes it, so that the test ends either way.
  const uint64_t give_up = aio2_test::now_ns() + 10ull * 1000 * 1000 * 1000;
  while (got.load() < 0 && aio2_test::now_ns() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const bool answered = got.load() >= 0;
  EXPECT_TRUE(answered) << "the reaper slept through an io_uring completion";
  if (!answered) {
    aio2_prep(&io, SYS_getppid, 3, 0, 0, 0, 0, 0, 0);
    aio2_submit(ctx_.get(), &io, sizeof io);
  }
  reaper.join();
  if (answered) {
    EXPECT_EQ(events.load(), 2u) << "getevents returned " << got.load();
  }
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

// Reads at the file position, many at once: each reads its own block and
// the position moves by all of them (io_uring moves it without the file's
// position lock, so these stay off it).
TEST_P(Review, ConcurrentReadsAtThePositionReadDistinctBlocks) {
  constexpr size_t kBlk = 64 * 1024, kN = 8;
  pattern_file f(kBlk * kN);
  ASSERT_EQ(lseek(f.fd, 0, SEEK_SET), 0);
  std::vector<std::vector<unsigned char>> bufs(kN, std::vector<unsigned char>(kBlk));
  std::vector<aio2_iocb> ios(kN);
  for (size_t i = 0; i < kN; i++)
    aio2_prep(&ios[i], SYS_read, i, static_cast<uint64_t>(f.fd),
              reinterpret_cast<uint64_t>(bufs[i].data()), kBlk, 0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), ios.data(), kN * sizeof(aio2_iocb)),
            static_cast<ssize_t>(kN * sizeof(aio2_iocb)));
  std::vector<bool> block_seen(kN, false);
  aio2_test::for_events(ctx_.get(), kN, [&](const aio2_event *ev) {
    ASSERT_EQ(ev->res, static_cast<int64_t>(kBlk));
    const auto &b = bufs[ev->user_data];
    // Which block did it read? The pattern says (byte i*7 + i/4096).
    size_t which = kN;
    for (size_t k = 0; k < kN; k++)
      if (f.matches(b.data(), k * kBlk, kBlk)) which = k;
    ASSERT_LT(which, kN) << "request " << ev->user_data << " read no whole block";
    EXPECT_FALSE(block_seen[which]) << "block " << which << " read twice";
    block_seen[which] = true;
  });
  EXPECT_EQ(lseek(f.fd, 0, SEEK_CUR), static_cast<off_t>(kBlk * kN));
}

// A write to a blocking pipe writes everything, waiting for the reader, as
// the call does (io_uring stops at what fits).
TEST_P(Review, AWriteToABlockingPipeIsWhole) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::vector<char> data(200000, 'z');
  std::thread drain([&] {
    char sink[4096];
    size_t total = 0;
    while (total < data.size()) {
      const ssize_t n = read(p[0], sink, sizeof sink);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
  });
  aio2_iocb io;
  aio2_prep(&io, SYS_write, 1, static_cast<uint64_t>(p[1]), reinterpret_cast<uint64_t>(data.data()),
            data.size(), 0, 0, 0);
  EXPECT_EQ(one(io), static_cast<int64_t>(data.size()));
  close(p[1]);
  drain.join();
  close(p[0]);
}

// Opening a FIFO for writing waits for a reader, as the call does
// (io_uring's first, non-blocking attempt fails it with -ENXIO).
TEST_P(Review, OpeningAFifoForWritingWaitsForAReader) {
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  std::string path = std::string(dir) + "/aio2-fifo-" + std::to_string(getpid()) + "-" +
                     std::to_string(GetParam());
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  aio2_iocb io;
  aio2_prep(&io, SYS_openat, 1, static_cast<uint64_t>(AT_FDCWD),
            reinterpret_cast<uint64_t>(path.c_str()), O_WRONLY | O_CLOEXEC, 0, 0, 0);
  ASSERT_EQ(aio2_submit(ctx_.get(), &io, sizeof io), static_cast<ssize_t>(sizeof io));
  const int rd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(rd, 0);
  int64_t res = INT64_MIN;
  aio2_test::for_events(ctx_.get(), 1, [&](const aio2_event *ev) { res = ev->res; });
  EXPECT_GE(res, 0) << "openat gave " << res;
  if (res >= 0) close(static_cast<int>(res));
  close(rd);
  unlink(path.c_str());
}

// preadv2 at the position on an O_NONBLOCK pipe with nothing in it: -EAGAIN
// at once, as the call gives.
TEST_P(Review, Preadv2OnAnEmptyNonBlockingPipeIsEagain) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  char c;
  iovec v{&c, 1};
  aio2_iocb io;
  aio2_prep(&io, SYS_preadv2, 1, static_cast<uint64_t>(p[0]), reinterpret_cast<uint64_t>(&v), 1,
            static_cast<uint64_t>(-1), 0, 0);
  EXPECT_EQ(one(io), -EAGAIN);
  close(p[0]);
  close(p[1]);
}

INSTANTIATE_TEST_SUITE_P(Policies, Review,
                         ::testing::Values(AIO2_POLICY_AUTO, AIO2_POLICY_URING, AIO2_POLICY_POOL),
                         [](const auto &p) { return aio2_test::policy_name(p.param); });

}  // namespace
