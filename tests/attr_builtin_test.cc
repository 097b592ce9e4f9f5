// SPDX-License-Identifier: MIT
// The cache, ioprio and rusage attributes proved true, not only present, on
// the pool and on aio2_call:
//   cache   - against the kernel's own answer (mincore over a mapping of the
//             file, taken just before each request): MISS, HIT and PARTIAL
//             with the exact byte count, the file position for read and
//             readv, the end of the file, the vector forms, what is not
//             applicable, and the RWF_NOWAIT fallback;
//   ioprio  - a user attribute after it reads the executing thread's I/O
//             priority inside the request, and the same worker shows the
//             old one on the next request;
//   rusage  - major faults taken by the kernel copying from a cold mapping
//             count in the executing thread; a getppid takes none;
// and every result comes back once, in request order, with all attributes
// on one request.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"
#include "fs_util.h"
#include "test_util.h"
#include "proc_util.h"

namespace aio2::attr {
// In the library (src/attr/cache.cc): use the RWF_NOWAIT method even where
// cachestat works.
void cache_force_nowait_for_test(bool on) noexcept;
}  // namespace aio2::attr

namespace {

using aio2_test::ctx_ptr;
using aio2_test::make_ctx;
using aio2_test::now_ns;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;
constexpr uint16_t kProbeAttr = 0x8a10;   // this test's user attribute
constexpr uint16_t kUnknownAttr = 0x7ff0;  // nobody registers it
constexpr int kWhoProcess = 1;             // IOPRIO_WHO_PROCESS
constexpr uint32_t kBe6 = (2u << 13) | 6u;  // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 6)

uint64_t page_size() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

long my_ioprio() { return syscall(SYS_ioprio_get, kWhoProcess, 0); }


using request = aio2_test::req_buf;  // a request with attributes, 8-aligned

using event = aio2_test::event_copy;

event copy_event(const aio2_event *ev) {
  event e;
  e.words.resize(ev->len / 8);
  std::memcpy(e.words.data(), ev, ev->len);
  return e;
}

// Reaps `n` events from `c`.
std::vector<event> reap(aio2_ctx *c, unsigned n) {
  std::vector<event> out;
  aio2_test::for_events(c, n, [&](const aio2_event *ev) { out.push_back(copy_event(ev)); });
  return out;
}

const char *path_name(uint32_t path) { return path == AIO2_PATH_POOL ? "Pool" : "Call"; }

// Runs requests on one path: through a RING context's pool (aio2_submit,
// aio2_getevents) or with aio2_call on the process-wide SYNC context.
class runner {
 public:
  explicit runner(uint32_t path, uint32_t bounded_workers = 0) : path_(path) {
    if (path == AIO2_PATH_POOL) ctx_ = aio2_test::make_pool_ctx(bounded_workers);
  }
  // Returns the request's event (empty when it was refused).
  event run(request &r) {
    if (path_ == AIO2_PATH_CALL) {
      event e;
      e.words.resize(512);
      const ssize_t n = aio2_call(nullptr, r.io(), e.words.data(), e.words.size() * 8);
      EXPECT_GT(n, 0) << aio2_strerror(static_cast<int>(n));
      e.words.resize(n > 0 ? static_cast<size_t>(n) / 8 : 0);
      return e;
    }
    const ssize_t n = aio2_submit(ctx_.get(), r.b, r.len());
    EXPECT_EQ(n, static_cast<ssize_t>(r.len())) << aio2_strerror(static_cast<int>(n));
    if (n <= 0) return {};
    auto evs = reap(ctx_.get(), 1);
    return evs.empty() ? event{} : evs[0];
  }
  // What submitting (or calling) the request returns, when it is refused.
  ssize_t refused(request &r) {
    alignas(8) unsigned char ev[1024];
    if (path_ == AIO2_PATH_CALL) return aio2_call(nullptr, r.io(), ev, sizeof ev);
    return aio2_submit(ctx_.get(), r.b, r.len());
  }
  aio2_ctx *ctx() { return ctx_.get(); }

 private:
  uint32_t path_;
  ctx_ptr ctx_;
};

// ---- the test file ------------------------------------------------------------

// The directory of the test file (fs_util.h's evicting_dir) and its file
// system's type, for the log.
std::string pick_dir(long *fs_type) {
  std::string dir = aio2_test::evicting_dir();
  struct statfs sf {};
  *fs_type = statfs(dir.c_str(), &sf) == 0 ? static_cast<long>(sf.f_type) : 0;
  return dir;
}

// A 4 MiB file of a known pattern, written and synced, unlinked at once (the
// descriptor keeps it).
class test_file {
 public:
  static constexpr uint64_t kSize = 4 * MiB;

  test_file() {
    long fs_type = 0;
    dir_ = pick_dir(&fs_type);
    std::string path = dir_ + "/aio2_attr_builtin_XXXXXX";
    fd_ = mkstemp(path.data());
    if (fd_ < 0) return;
    unlink(path.c_str());
    std::vector<unsigned char> data(kSize);
    for (uint64_t i = 0; i < kSize; i++) data[i] = byte_at(i);
    ok_ = pwrite(fd_, data.data(), kSize, 0) == static_cast<ssize_t>(kSize) && fsync(fd_) == 0;
    static bool said = false;
    if (!said) {
      said = true;
      std::printf("[ info ] test file in %s (file system type 0x%lx)\n", dir_.c_str(), fs_type);
    }
  }
  ~test_file() {
    if (fd_ >= 0) close(fd_);
  }
  test_file(const test_file &) = delete;
  test_file &operator=(const test_file &) = delete;

  int fd() const { return fd_; }
  bool ok() const { return ok_; }
  static unsigned char byte_at(uint64_t off) { return aio2_test::pattern_at(off); }
  // Whether `buf` holds the file's bytes from `off`.
  static bool holds(const unsigned char *buf, uint64_t off, uint64_t len) {
    return aio2_test::pattern_holds(buf, off, len);
  }

  // Drops [off, off + len) from the page cache.
  void evict(uint64_t off, uint64_t len) const {
    aio2_test::pattern_file::evict_range(fd_, kSize, off, len);
  }
  // Brings [off, off + len) into the page cache.
  void warm(uint64_t off, uint64_t len) const {
    std::vector<unsigned char> buf(len);
    EXPECT_EQ(pread(fd_, buf.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  }

  // The oracle: bytes of [off, off + len), clipped to the file, whose pages
  // mincore(2) finds in the page cache.
  uint64_t resident(uint64_t off, uint64_t len) const {
    const uint64_t n = aio2_test::pattern_file::resident_bytes(fd_, kSize, off, len);
    EXPECT_NE(n, ~0ull) << "mmap or mincore failed";
    return n == ~0ull ? 0 : n;
  }

  // Whether eviction works here at all.
  bool evictable() const {
    evict(0, kSize);
    return resident(0, kSize) == 0;
  }

 private:
  std::string dir_;
  int fd_ = -1;
  bool ok_ = false;
};

// ---- the probe: a user attribute that looks at the executing thread ------------

// Its result: the thread's I/O priority in its before hook, and `ran` as
// its on_post hook saw it (whether the system call itself ran).
struct probe_result {
  int64_t ioprio;
  uint64_t ran;
};

int probe_before(aio2_attr_hook *h) {
  probe_result r{my_ioprio(), 0};
  std::memcpy(h->result, &r, sizeof r);
  return 0;
}

void probe_post(aio2_attr_hook *h) {
  probe_result r;
  std::memcpy(&r, h->result, sizeof r);
  r.ran = h->ran;
  std::memcpy(h->result, &r, sizeof r);
}

void register_probe() {
  static const int rc = [] {
    aio2_attr_handler h{};
    h.size = sizeof h;
    h.id = kProbeAttr;
    h.result_size = sizeof(probe_result);
    h.paths = AIO2_PATH_POOL | AIO2_PATH_CALL;
    h.name = "ioprio-probe";
    h.before = probe_before;
    h.on_post = probe_post;
    return aio2_attr_register(&h);
  }();
  ASSERT_EQ(rc, 0);
}

// ---- cache ------------------------------------------------------------------------

class Cache : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    register_probe();
    ASSERT_TRUE(file_.ok()) << "cannot write the test file";
    if (!file_.evictable())
      GTEST_SKIP() << "POSIX_FADV_DONTNEED does not evict here: cache outcomes cannot be seen";
  }
  int fd() const { return file_.fd(); }

  // pread64 of [off, off + len) with the cache attribute; checks the data.
  event pread_cached(uint64_t off, uint64_t len, uint64_t ud = 1) {
    buf_.assign(len, 0);
    request r(SYS_pread64, ud, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(buf_.data()),
              len, off);
    r.attr(AIO2_ATTR_CACHE).attr(kProbeAttr);
    event e = run_.run(r);
    const uint64_t want = off >= test_file::kSize ? 0 : std::min(len, test_file::kSize - off);
    EXPECT_EQ(e.res(), static_cast<int64_t>(want));
    EXPECT_TRUE(test_file::holds(buf_.data(), off, want));
    return e;
  }

  // Checks the cache result against the oracle value taken before the call.
  static void expect_cache(const event &e, uint32_t outcome, uint64_t cached, uint64_t requested,
                           uint32_t method = AIO2_CACHE_BY_CACHESTAT) {
    const auto c = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
    EXPECT_EQ(c.outcome, outcome);
    EXPECT_EQ(c.method, method);
    EXPECT_EQ(c.bytes_cached, cached);
    EXPECT_EQ(c.bytes_requested, requested);
    EXPECT_EQ(c.reserved, 0u);
  }

  test_file file_;
  runner run_{GetParam()};
  std::vector<unsigned char> buf_;
};

TEST_P(Cache, ColdRangeIsAMissThenAHit) {
  const uint64_t off = 1 * MiB, len = 1 * MiB;
  ASSERT_EQ(file_.resident(off, len), 0u);
  expect_cache(pread_cached(off, len), AIO2_CACHE_MISS, 0, len);
  ASSERT_EQ(file_.resident(off, len), len);
  expect_cache(pread_cached(off, len), AIO2_CACHE_HIT, len, len);
}

TEST_P(Cache, HalfEvictedRangeIsPartialWithTheRightByteCount) {
  const uint64_t off = 1 * MiB, len = 1 * MiB;
  file_.warm(off, len);
  file_.evict(off + len / 2, len / 2);
  ASSERT_EQ(file_.resident(off, len), len / 2);
  expect_cache(pread_cached(off, len), AIO2_CACHE_PARTIAL, len / 2, len);
}

// A range that starts and ends inside pages: the first and last pages count
// only their bytes inside the range, whether cached or not.
TEST_P(Cache, UnalignedPartialRangeCountsBytesExactly) {
  const uint64_t ps = page_size();
  const uint64_t off = 1 * MiB + 100, len = 1 * MiB + 1000;
  // First and last pages cached, holes in the middle.
  file_.warm(0, test_file::kSize);
  file_.evict(1 * MiB + 64 * KiB, 64 * KiB);
  file_.evict(1 * MiB + 512 * KiB, 2 * ps);
  uint64_t want = file_.resident(off, len);
  ASSERT_EQ(want, len - 64 * KiB - 2 * ps);
  expect_cache(pread_cached(off, len), AIO2_CACHE_PARTIAL, want, len);
  // First and last pages evicted, the middle cached.
  file_.warm(0, test_file::kSize);
  file_.evict(off / ps * ps, ps);
  file_.evict((off + len - 1) / ps * ps, ps);
  want = file_.resident(off, len);
  ASSERT_EQ(want, len - (ps - off % ps) - (off + len) % ps);
  expect_cache(pread_cached(off, len), AIO2_CACHE_PARTIAL, want, len);
}

TEST_P(Cache, ReadAndReadvUseTheFilePosition) {
  file_.warm(0, test_file::kSize);
  file_.evict(2 * MiB, 1 * MiB);
  std::vector<unsigned char> buf(64 * KiB);
  auto read_at = [&](uint64_t pos, uint64_t len) {
    EXPECT_EQ(lseek(fd(), static_cast<off_t>(pos), SEEK_SET), static_cast<off_t>(pos));
    request r(SYS_read, 2, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(buf.data()), len);
    r.attr(AIO2_ATTR_CACHE);
    const event e = run_.run(r);
    EXPECT_EQ(e.res(), static_cast<int64_t>(len));
    EXPECT_TRUE(test_file::holds(buf.data(), pos, len));
    EXPECT_EQ(lseek(fd(), 0, SEEK_CUR), static_cast<off_t>(pos + len));
    return e;
  };
  expect_cache(read_at(0, 64 * KiB), AIO2_CACHE_HIT, 64 * KiB, 64 * KiB);
  ASSERT_EQ(file_.resident(2 * MiB, 64 * KiB), 0u);
  expect_cache(read_at(2 * MiB, 64 * KiB), AIO2_CACHE_MISS, 0, 64 * KiB);

  // readv across the edge of the evicted range, 16 KiB each side, in two
  // iovecs; it reads from the position and moves it.
  file_.warm(0, test_file::kSize);
  file_.evict(3 * MiB, 1 * MiB);
  const uint64_t pos = 3 * MiB - 16 * KiB;
  ASSERT_EQ(file_.resident(pos, 32 * KiB), 16 * KiB);
  ASSERT_EQ(lseek(fd(), static_cast<off_t>(pos), SEEK_SET), static_cast<off_t>(pos));
  iovec iov[2] = {{buf.data(), 10 * KiB}, {buf.data() + 10 * KiB, 22 * KiB}};
  request r(SYS_readv, 3, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(iov), 2);
  r.attr(AIO2_ATTR_CACHE);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), static_cast<int64_t>(32 * KiB));
  EXPECT_TRUE(test_file::holds(buf.data(), pos, 32 * KiB));
  EXPECT_EQ(lseek(fd(), 0, SEEK_CUR), static_cast<off_t>(pos + 32 * KiB));
  expect_cache(e, AIO2_CACHE_PARTIAL, 16 * KiB, 32 * KiB);

  // preadv2 at offset -1 reads from the position too.
  ASSERT_EQ(lseek(fd(), 0, SEEK_SET), 0);
  request r2(SYS_preadv2, 4, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(iov), 2,
             static_cast<uint64_t>(-1), 0, 0);
  r2.attr(AIO2_ATTR_CACHE);
  const event e2 = run_.run(r2);
  EXPECT_EQ(e2.res(), static_cast<int64_t>(32 * KiB));
  EXPECT_TRUE(test_file::holds(buf.data(), 0, 32 * KiB));
  expect_cache(e2, AIO2_CACHE_HIT, 32 * KiB, 32 * KiB);
}

TEST_P(Cache, VectorReadsSumTheirIovecs) {
  file_.warm(0, test_file::kSize);
  file_.evict(1 * MiB, 1 * MiB);
  std::vector<unsigned char> buf(128 * KiB);
  iovec iov[3] = {{buf.data(), 4 * KiB}, {buf.data() + 4 * KiB, 100}, {buf.data() + 8 * KiB, 60 * KiB}};
  const uint64_t total = 4 * KiB + 100 + 60 * KiB;
  auto check_data = [&](uint64_t off) {
    EXPECT_TRUE(test_file::holds(buf.data(), off, 4 * KiB));
    EXPECT_TRUE(test_file::holds(buf.data() + 4 * KiB, off + 4 * KiB, 100));
    EXPECT_TRUE(test_file::holds(buf.data() + 8 * KiB, off + 4 * KiB + 100, 60 * KiB));
  };
  request r(SYS_preadv, 5, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(iov), 3, 0, 0);
  r.attr(AIO2_ATTR_CACHE);
  event e = run_.run(r);
  EXPECT_EQ(e.res(), static_cast<int64_t>(total));
  check_data(0);
  expect_cache(e, AIO2_CACHE_HIT, total, total);

  ASSERT_EQ(file_.resident(1 * MiB, total), 0u);
  request r2(SYS_preadv2, 6, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(iov), 3, 1 * MiB,
             0, 0);
  r2.attr(AIO2_ATTR_CACHE);
  e = run_.run(r2);
  EXPECT_EQ(e.res(), static_cast<int64_t>(total));
  check_data(1 * MiB);
  expect_cache(e, AIO2_CACHE_MISS, 0, total);
}

// A read at or past the end asks for nothing: HIT with 0 of 0. A read across
// the end asks for the bytes up to it.
TEST_P(Cache, TheEndOfTheFileClipsTheRequest) {
  file_.warm(0, test_file::kSize);
  expect_cache(pread_cached(test_file::kSize + 4096, 4096), AIO2_CACHE_HIT, 0, 0);
  expect_cache(pread_cached(test_file::kSize, 4096), AIO2_CACHE_HIT, 0, 0);
  expect_cache(pread_cached(test_file::kSize - 1000, 4096), AIO2_CACHE_HIT, 1000, 1000);
  file_.evict(test_file::kSize - 8192, 8192);
  expect_cache(pread_cached(test_file::kSize - 1000, 4096), AIO2_CACHE_MISS, 0, 1000);
}

TEST_P(Cache, NotApplicableToWhatIsNotAFileRead) {
  alignas(4096) unsigned char buf[4096] = {};
  auto status_for = [&](request &&r, int64_t want_res) {
    r.attr(AIO2_ATTR_CACHE);
    const event e = run_.run(r);
    EXPECT_EQ(e.res(), want_res);
    return e.status(AIO2_ATTR_CACHE);
  };
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  EXPECT_EQ(status_for(request(SYS_write, 1, static_cast<uint64_t>(devnull),
                               reinterpret_cast<uint64_t>(buf), sizeof buf),
                       sizeof buf),
            AIO2_ATTR_NOT_APPLICABLE);
  EXPECT_EQ(status_for(request(SYS_getppid, 2), getppid()), AIO2_ATTR_NOT_APPLICABLE);
  // A write to the very file is not a read either.
  EXPECT_EQ(status_for(request(SYS_pwrite64, 3, static_cast<uint64_t>(fd()),
                               reinterpret_cast<uint64_t>(buf), 0, 0),
                       0),
            AIO2_ATTR_NOT_APPLICABLE);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(status_for(request(SYS_pread64, 4, static_cast<uint64_t>(p[0]),
                               reinterpret_cast<uint64_t>(buf), sizeof buf, 0),
                       -ESPIPE),
            AIO2_ATTR_NOT_APPLICABLE);
  EXPECT_EQ(status_for(request(SYS_pread64, 5, 999999, reinterpret_cast<uint64_t>(buf), sizeof buf, 0),
                       -EBADF),
            AIO2_ATTR_NOT_APPLICABLE);
  // The same file opened write-only, and a bad iovec array.
  const std::string self = "/proc/self/fd/" + std::to_string(fd());
  const int wronly = open(self.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(wronly, 0);
  EXPECT_EQ(status_for(request(SYS_pread64, 6, static_cast<uint64_t>(wronly),
                               reinterpret_cast<uint64_t>(buf), sizeof buf, 0),
                       -EBADF),
            AIO2_ATTR_NOT_APPLICABLE);
  EXPECT_EQ(status_for(request(SYS_preadv, 7, static_cast<uint64_t>(fd()), 8, 2, 0, 0), -EFAULT),
            AIO2_ATTR_NOT_APPLICABLE);
  EXPECT_EQ(status_for(request(SYS_preadv, 8, static_cast<uint64_t>(fd()),
                               reinterpret_cast<uint64_t>(buf), 5000, 0, 0),
                       -EINVAL),
            AIO2_ATTR_NOT_APPLICABLE);
  // O_DIRECT reads bypass the page cache.
  const int direct = open(self.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (direct >= 0) {
    EXPECT_EQ(status_for(request(SYS_pread64, 9, static_cast<uint64_t>(direct),
                                 reinterpret_cast<uint64_t>(buf), sizeof buf, 0),
                         sizeof buf),
              AIO2_ATTR_NOT_APPLICABLE);
    close(direct);
  }
  close(wronly);
  close(p[0]);
  close(p[1]);
  close(devnull);
}

// Sets the RWF_NOWAIT method for its life.
struct force_nowait {
  force_nowait() { aio2::attr::cache_force_nowait_for_test(true); }
  ~force_nowait() { aio2::attr::cache_force_nowait_for_test(false); }
};

TEST_P(Cache, NowaitFallbackSkipsTheCallOnAHitAtAnOffset) {
  force_nowait nowait;
  const uint64_t off = 1 * MiB, len = 1 * MiB;
  ASSERT_EQ(file_.resident(off, len), 0u);
  // The attempt starts the read of what is missing and, on a fast device,
  // may find some of it there before it returns: evicted and run again.
  event e = pread_cached(off, len);
  for (int i = 0; i < 50 && e.get<aio2_attr_cache>(AIO2_ATTR_CACHE).outcome != AIO2_CACHE_MISS;
       i++) {
    file_.evict(off, len);
    e = pread_cached(off, len);
  }
  if (e.get<aio2_attr_cache>(AIO2_ATTR_CACHE).outcome != AIO2_CACHE_MISS)
    GTEST_SKIP() << "every RWF_NOWAIT attempt found part of its own read done";
  expect_cache(e, AIO2_CACHE_MISS, 0, len, AIO2_CACHE_BY_NOWAIT);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ran, 1u);

  ASSERT_EQ(file_.resident(off, len), len);
  e = pread_cached(off, len);
  expect_cache(e, AIO2_CACHE_HIT, len, len, AIO2_CACHE_BY_NOWAIT);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ran, 0u);  // the probe read it all

  // The first attempt stops at the first page that is not cached (or not
  // yet: its own readahead may bring a few more in while it copies, and on
  // a fast device all of them: then the half is evicted and read again).
  auto c = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  for (int i = 0; i < 50; i++) {
    file_.evict(off + len / 2, len / 2);
    ASSERT_EQ(file_.resident(off, len), len / 2);
    e = pread_cached(off, len);
    c = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
    if (c.outcome != AIO2_CACHE_HIT) break;
  }
  if (c.outcome == AIO2_CACHE_HIT)
    GTEST_SKIP() << "every RWF_NOWAIT attempt found its own read of the evicted half done";
  EXPECT_EQ(c.outcome, AIO2_CACHE_PARTIAL);
  EXPECT_EQ(c.method, AIO2_CACHE_BY_NOWAIT);
  EXPECT_GE(c.bytes_cached, len / 2);
  EXPECT_LT(c.bytes_cached, len);
  EXPECT_EQ(c.bytes_requested, len);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ran, 1u);

  // At the file position the call always runs, and moves it once.
  file_.warm(0, test_file::kSize);
  std::vector<unsigned char> buf(64 * KiB);
  ASSERT_EQ(lseek(fd(), static_cast<off_t>(off), SEEK_SET), static_cast<off_t>(off));
  request r(SYS_read, 2, static_cast<uint64_t>(fd()), reinterpret_cast<uint64_t>(buf.data()),
            buf.size());
  r.attr(AIO2_ATTR_CACHE).attr(kProbeAttr);
  e = run_.run(r);
  EXPECT_EQ(e.res(), static_cast<int64_t>(buf.size()));
  EXPECT_TRUE(test_file::holds(buf.data(), off, buf.size()));
  EXPECT_EQ(lseek(fd(), 0, SEEK_CUR), static_cast<off_t>(off + buf.size()));
  expect_cache(e, AIO2_CACHE_HIT, buf.size(), buf.size(), AIO2_CACHE_BY_NOWAIT);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ran, 1u);
}

// ---- ioprio --------------------------------------------------------------------------

class Ioprio : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override { register_probe(); }
  // One bounded worker: every pool request runs on the same thread.
  runner run_{GetParam(), 1};
};

TEST_P(Ioprio, TheCallRunsAtThePriorityAndTheThreadGetsItsOwnBack) {
  const long caller_before = my_ioprio();
  ASSERT_GE(caller_before, 0);
  const aio2_attr_ioprio want{kBe6, 0};
  request r(SYS_getppid, 1);
  r.io()->flags = AIO2_IOCB_BOUNDED;
  // ioprio first: the probe's before hook runs after ioprio's, inside it.
  r.attr_of(AIO2_ATTR_IOPRIO, want).attr(kProbeAttr).attr(AIO2_ATTR_EXECUTOR);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), getppid());
  const auto ret = e.get<aio2_attr_ioprio_ret>(AIO2_ATTR_IOPRIO);
  EXPECT_EQ(ret.applied, 1u);
  EXPECT_EQ(ret.error, 0);
  EXPECT_EQ(ret.reserved, 0u);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ioprio, static_cast<int64_t>(kBe6));
  ASSERT_NE(ret.previous, kBe6) << "the thread already had the test's priority";

  // The same thread, next request, no ioprio attribute: its own priority.
  request again(SYS_getppid, 2);
  again.io()->flags = AIO2_IOCB_BOUNDED;
  again.attr(kProbeAttr).attr(AIO2_ATTR_EXECUTOR);
  const event e2 = run_.run(again);
  EXPECT_EQ(e2.get<probe_result>(kProbeAttr).ioprio, static_cast<int64_t>(ret.previous));
  EXPECT_EQ(e2.get<aio2_attr_executor>(AIO2_ATTR_EXECUTOR).worker,
            e.get<aio2_attr_executor>(AIO2_ATTR_EXECUTOR).worker);
  if (GetParam() == AIO2_PATH_CALL) {
    EXPECT_EQ(ret.previous, static_cast<uint32_t>(caller_before));
  }
  EXPECT_EQ(my_ioprio(), caller_before);
}

// A value ioprio_set refuses: the call runs at the thread's own priority,
// and the result says so (status OK, applied 0, the error).
TEST_P(Ioprio, ARefusedValueIsReportedAndNotApplied) {
  const aio2_attr_ioprio bad{(7u << 13) | 1u, 0};  // no class 7
  request r(SYS_getppid, 1);
  r.io()->flags = AIO2_IOCB_BOUNDED;
  r.attr_of(AIO2_ATTR_IOPRIO, bad).attr(kProbeAttr);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), getppid());
  EXPECT_EQ(e.status(AIO2_ATTR_IOPRIO), AIO2_ATTR_OK);
  const auto ret = e.get<aio2_attr_ioprio_ret>(AIO2_ATTR_IOPRIO);
  EXPECT_EQ(ret.applied, 0u);
  EXPECT_EQ(ret.error, -EINVAL);
  EXPECT_EQ(e.get<probe_result>(kProbeAttr).ioprio, static_cast<int64_t>(ret.previous));
}

TEST_P(Ioprio, NonZeroReservedOrAWrongSizeIsRefused) {
  const aio2_attr_ioprio bad{kBe6, 1};
  request r(SYS_getppid, 1);
  r.attr_of(AIO2_ATTR_IOPRIO, bad);
  EXPECT_EQ(run_.refused(r), -EINVAL);
  const uint64_t sixteen[2] = {kBe6, 0};
  request r2(SYS_getppid, 2);
  r2.attr_of(AIO2_ATTR_IOPRIO, sixteen);
  EXPECT_EQ(run_.refused(r2), -EINVAL);
  request r3(SYS_getppid, 3);
  r3.attr(AIO2_ATTR_IOPRIO);
  EXPECT_EQ(run_.refused(r3), -EINVAL);
}

// ---- rusage ----------------------------------------------------------------------------

class Rusage : public ::testing::TestWithParam<uint32_t> {
 protected:
  runner run_{GetParam()};
};

// write(2) from a cold file mapping: the kernel copies from user memory and
// takes the page faults, major ones since the pages must be read, in the
// thread that runs the call.
TEST_P(Rusage, FaultsTakenByTheCallCountInTheExecutingThread) {
  test_file file;
  ASSERT_TRUE(file.ok());
  if (!file.evictable()) GTEST_SKIP() << "POSIX_FADV_DONTNEED does not evict here";
  const size_t len = 2 * MiB;
  void *m = mmap(nullptr, len, PROT_READ, MAP_SHARED, file.fd(), 0);
  ASSERT_NE(m, MAP_FAILED);
  const int sink = static_cast<int>(syscall(SYS_memfd_create, "aio2-rusage-sink", 0));
  ASSERT_GE(sink, 0);
  ASSERT_EQ(file.resident(0, len), 0u);
  request r(SYS_write, 1, static_cast<uint64_t>(sink), reinterpret_cast<uint64_t>(m), len);
  r.attr(AIO2_ATTR_RUSAGE);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), static_cast<int64_t>(len));
  const auto u = e.get<aio2_attr_rusage>(AIO2_ATTR_RUSAGE);
  EXPECT_GT(u.majflt, 0u);
  EXPECT_GT(u.inblock, 0u);  // the reads the faults started
  std::printf("[ info ] %s: write from a cold 2 MiB mapping: minflt %llu majflt %llu inblock %llu "
              "nvcsw %llu\n",
              path_name(GetParam()), static_cast<unsigned long long>(u.minflt),
              static_cast<unsigned long long>(u.majflt), static_cast<unsigned long long>(u.inblock),
              static_cast<unsigned long long>(u.nvcsw));
  // The data went through.
  std::vector<unsigned char> back(len);
  ASSERT_EQ(pread(sink, back.data(), len, 0), static_cast<ssize_t>(len));
  EXPECT_TRUE(test_file::holds(back.data(), 0, len));
  close(sink);
  munmap(m, len);
}

TEST_P(Rusage, GetppidTakesNoMajorFaultAndDoesNoIo) {
  request r(SYS_getppid, 1);
  r.attr(AIO2_ATTR_RUSAGE);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), getppid());
  const auto u = e.get<aio2_attr_rusage>(AIO2_ATTR_RUSAGE);
  EXPECT_EQ(u.majflt, 0u);
  EXPECT_EQ(u.inblock, 0u);
  EXPECT_EQ(u.oublock, 0u);
  EXPECT_EQ(u.nvcsw, 0u);
}

TEST_P(Rusage, SleepingIsAVoluntaryContextSwitch) {
  static const timespec nap{0, 5000000};
  request r(SYS_nanosleep, 1, reinterpret_cast<uint64_t>(&nap));
  r.attr(AIO2_ATTR_RUSAGE);
  const event e = run_.run(r);
  EXPECT_EQ(e.res(), 0);
  EXPECT_GE(e.get<aio2_attr_rusage>(AIO2_ATTR_RUSAGE).nvcsw, 1u);
}

// ---- all together --------------------------------------------------------------------

class Combined : public ::testing::TestWithParam<uint32_t> {
 protected:
  runner run_{GetParam()};
};

TEST_P(Combined, EveryResultOnceInRequestOrder) {
  test_file file;
  ASSERT_TRUE(file.ok());
  file.warm(0, 64 * KiB);
  std::vector<unsigned char> buf(64 * KiB);
  request r(SYS_pread64, 77, static_cast<uint64_t>(file.fd()), reinterpret_cast<uint64_t>(buf.data()),
            buf.size(), 0);
  const char tag[] = "abc";
  const aio2_attr_deadline dl{now_ns() + 3600ull * 1000000000u};
  const aio2_attr_ioprio prio{kBe6, 0};
  r.attr(AIO2_ATTR_TIMING)
      .attr(AIO2_ATTR_TAG, tag, 3)
      .attr_of(AIO2_ATTR_DEADLINE, dl)
      .attr(AIO2_ATTR_EXECUTOR)
      .attr(AIO2_ATTR_CACHE)
      .attr_of(AIO2_ATTR_IOPRIO, prio)
      .attr(AIO2_ATTR_RUSAGE)
      .attr(kUnknownAttr);
  const event e = run_.run(r);
  ASSERT_FALSE(e.words.empty());
  EXPECT_EQ(e.ev()->user_data, 77u);
  EXPECT_EQ(e.res(), static_cast<int64_t>(buf.size()));
  EXPECT_TRUE(test_file::holds(buf.data(), 0, buf.size()));

  struct want {
    uint16_t id, status;
    size_t len;
  };
  const want wants[] = {
      {AIO2_ATTR_TIMING, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_timing)},
      {AIO2_ATTR_TAG, AIO2_ATTR_OK, 8 + AIO2_TAG_MAX},
      {AIO2_ATTR_DEADLINE, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_deadline_ret)},
      {AIO2_ATTR_EXECUTOR, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_executor)},
      {AIO2_ATTR_CACHE, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_cache)},
      {AIO2_ATTR_IOPRIO, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_ioprio_ret)},
      {AIO2_ATTR_RUSAGE, AIO2_ATTR_OK, 8 + sizeof(aio2_attr_rusage)},
      {kUnknownAttr, AIO2_ATTR_UNSUPPORTED, 8},
  };
  uint32_t total = sizeof(aio2_event);
  unsigned i = 0;
  for (const aio2_attr_ret *ret = aio2_attr_next(e.ev(), nullptr); ret;
       ret = aio2_attr_next(e.ev(), ret), i++) {
    ASSERT_LT(i, std::size(wants));
    EXPECT_EQ(ret->id, wants[i].id) << i;
    EXPECT_EQ(ret->status, wants[i].status) << i;
    EXPECT_EQ(ret->len, wants[i].len) << i;
    total += ret->len;
  }
  EXPECT_EQ(i, std::size(wants));
  EXPECT_EQ(e.ev()->len, total);
  for (const want &w : wants) {  // each id exactly once
    unsigned n = 0;
    for (const aio2_attr_ret *ret = aio2_attr_next(e.ev(), nullptr); ret;
         ret = aio2_attr_next(e.ev(), ret))
      n += ret->id == w.id;
    EXPECT_EQ(n, 1u) << w.id;
  }

  const auto t = e.get<aio2_attr_timing>(AIO2_ATTR_TIMING);
  EXPECT_LE(t.submitted_ns, t.started_ns);
  EXPECT_LE(t.started_ns, t.finished_ns);
  EXPECT_LE(t.finished_ns, t.posted_ns);
  const auto tg = e.get<uint64_t>(AIO2_ATTR_TAG);
  EXPECT_EQ(std::memcmp(&tg, "abc\0\0\0\0\0", 8), 0);
  const auto d = e.get<aio2_attr_deadline_ret>(AIO2_ATTR_DEADLINE);
  EXPECT_EQ(d.expired, 0u);
  EXPECT_GT(d.slack_ns, 0);
  EXPECT_EQ(e.get<aio2_attr_executor>(AIO2_ATTR_EXECUTOR).path, GetParam());
  const auto c = e.get<aio2_attr_cache>(AIO2_ATTR_CACHE);
  EXPECT_EQ(c.outcome, AIO2_CACHE_HIT);
  EXPECT_EQ(c.bytes_cached, buf.size());
  EXPECT_EQ(c.bytes_requested, buf.size());
  const auto p = e.get<aio2_attr_ioprio_ret>(AIO2_ATTR_IOPRIO);
  EXPECT_EQ(p.applied, 1u);
  EXPECT_EQ(e.get<aio2_attr_rusage>(AIO2_ATTR_RUSAGE).majflt, 0u);  // a cached read
}

// A request cancelled while queued never reached a thread: cache, ioprio
// and rusage have nothing to say.
TEST(Cancelled, WhileQueuedTheNewAttributesAreNotApplicable) {
  test_file file;
  ASSERT_TRUE(file.ok());
  auto c = aio2_test::make_pool_ctx(1);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  // Occupy the only bounded worker with a read that waits for the pipe.
  char byte = 0;
  request block(SYS_read, 1, static_cast<uint64_t>(p[0]), reinterpret_cast<uint64_t>(&byte), 1);
  block.io()->flags = AIO2_IOCB_BOUNDED;
  ASSERT_EQ(aio2_submit(c.get(), block.b, block.len()), block.len());
  const auto t0 = std::chrono::steady_clock::now();
  while (!aio2_test::thread_blocked_in(SYS_read, p[0])) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<unsigned char> buf(4096);
  request victim(SYS_pread64, 2, static_cast<uint64_t>(file.fd()),
                 reinterpret_cast<uint64_t>(buf.data()), buf.size(), 0);
  victim.io()->flags = AIO2_IOCB_BOUNDED;
  const aio2_attr_ioprio prio{kBe6, 0};
  victim.attr(AIO2_ATTR_CACHE).attr_of(AIO2_ATTR_IOPRIO, prio).attr(AIO2_ATTR_RUSAGE);
  ASSERT_EQ(aio2_submit(c.get(), victim.b, victim.len()), victim.len());
  ASSERT_EQ(aio2_cancel(c.get(), 2), 0);
  ASSERT_EQ(write(p[1], "x", 1), 1);
  unsigned seen = 0;
  for (const event &e : reap(c.get(), 2)) {
    if (e.ev()->user_data != 2) continue;
    seen++;
    EXPECT_EQ(e.res(), -ECANCELED);
    EXPECT_EQ(e.status(AIO2_ATTR_CACHE), AIO2_ATTR_NOT_APPLICABLE);
    EXPECT_EQ(e.status(AIO2_ATTR_IOPRIO), AIO2_ATTR_NOT_APPLICABLE);
    EXPECT_EQ(e.status(AIO2_ATTR_RUSAGE), AIO2_ATTR_NOT_APPLICABLE);
  }
  EXPECT_EQ(seen, 1u);
  close(p[0]);
  close(p[1]);
}

std::string param_name(const ::testing::TestParamInfo<uint32_t> &info) {
  return path_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Paths, Cache, ::testing::Values(AIO2_PATH_POOL, AIO2_PATH_CALL), param_name);
INSTANTIATE_TEST_SUITE_P(Paths, Ioprio, ::testing::Values(AIO2_PATH_POOL, AIO2_PATH_CALL), param_name);
INSTANTIATE_TEST_SUITE_P(Paths, Rusage, ::testing::Values(AIO2_PATH_POOL, AIO2_PATH_CALL), param_name);
INSTANTIATE_TEST_SUITE_P(Paths, Combined, ::testing::Values(AIO2_PATH_POOL, AIO2_PATH_CALL),
                         param_name);

}  // namespace
