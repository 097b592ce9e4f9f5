// SPDX-License-Identifier: MIT
// Each system call io_uring implements, run under the URING policy and
// under the POOL policy, with the same arguments on fresh, identical state:
// the results and every side effect must be the same (a file created with
// the same mode and flags, bytes moved, the file position advanced for a
// read at offset -1, offsets written back for splice, addresses and lengths
// written back for accept and recvfrom, control data for recvmsg...). The
// executor attribute must say exactly where each request ran: under the
// URING policy, URING for the arguments and descriptors io_uring takes and
// POOL for those aio2 keeps off it (docs/syscalls.md, "Where each call
// goes"); under POOL, POOL. Each scenario describes what it saw in a
// string; the two descriptions must be equal. Without AIO2_FEAT_URING both
// runs would be on the pool, so every test is skipped.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "aio2/aio2.h"
#include "fs_util.h"
#include "test_util.h"

namespace {

using namespace aio2_test;

constexpr uint64_t KiB = 1024;
uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }
uint64_t u(int fd) { return static_cast<uint64_t>(fd); }
const uint64_t kCwd = static_cast<uint64_t>(AT_FDCWD);

mode_t current_umask() {
  const mode_t m = umask(0);
  umask(m);
  return m;
}

std::string slurp(const std::string &path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<" + std::string(std::strerror(errno)) + ">";
  std::string s;
  char b[4096];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) s.append(b, static_cast<size_t>(n));
  close(fd);
  return s;
}

void put(const std::string &path, const std::string &data) {
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
}

bool exists(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string fd_flags(int fd) {
  std::ostringstream o;
  const int fdf = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
  o << "cloexec=" << ((fdf & FD_CLOEXEC) != 0) << " nonblock=" << ((fl & O_NONBLOCK) != 0)
    << " accmode=" << (fl & O_ACCMODE) << " append=" << ((fl & O_APPEND) != 0);
  return o.str();
}

std::string pattern(size_t n, size_t from = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>(pattern_at(from + i));
  return s;
}

class UringPath : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_[AIO2_POLICY_URING] = make_policy_ctx(AIO2_POLICY_URING, {}, &params_);
    ctx_[AIO2_POLICY_POOL] = make_pool_ctx();
    ASSERT_NE(ctx_[AIO2_POLICY_URING], nullptr);
    ASSERT_NE(ctx_[AIO2_POLICY_POOL], nullptr);
    if (!uring())
      GTEST_SKIP() << "io_uring is not available here (AIO2_FEAT_URING missing): the URING "
                      "policy would run on the pool, and compare the pool with itself";
  }
  bool uring() const { return (params_.features & AIO2_FEAT_URING) != 0; }

  // Runs `r` under `policy` (with an executor attribute) and checks its
  // path: under URING, io_uring when `uring_takes` (its arguments and
  // descriptors are ones io_uring takes), else the pool; under POOL, the pool.
  event_copy run(uint32_t policy, req_buf &r, bool uring_takes = true) {
    r.attr(AIO2_ATTR_EXECUTOR);
    event_copy e = submit_wait(ctx_[policy].get(), r, 5);
    if (e.empty()) return e;
    const uint32_t path = e.path();
    std::ostringstream call;
    call << "nr " << r.io()->nr << " (";
    for (int i = 0; i < 6; i++) call << (i ? ", " : "") << std::hex << "0x" << r.io()->args[i] << std::dec;
    call << ") res " << e.res();
    EXPECT_TRUE(path_is(policy, uring_takes ? kUringCall : kPoolCall, uring(), path)) << call.str();
    return e;
  }
  // The result of a call io_uring takes with these arguments.
  int64_t res(uint32_t policy, long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
              uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0) {
    req_buf r(nr, 1, a0, a1, a2, a3, a4, a5);
    return run(policy, r).res();
  }
  // The result of a call aio2 keeps off io_uring with these arguments or
  // descriptors (io_uring would answer differently): the pool under both
  // policies.
  int64_t pool_res(uint32_t policy, long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                   uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0) {
    req_buf r(nr, 1, a0, a1, a2, a3, a4, a5);
    return run(policy, r, false).res();
  }

  // Runs the scenario under both policies; their descriptions must match.
  void both(const std::function<std::string(uint32_t)> &scenario) {
    const std::string on_uring = scenario(AIO2_POLICY_URING);
    const std::string on_pool = scenario(AIO2_POLICY_POOL);
    EXPECT_EQ(on_uring, on_pool) << "URING policy (first) and POOL policy (second) differ";
  }

  aio2_params params_{};
  std::map<uint32_t, ctx_ptr> ctx_;
};

// ---- opening and closing -------------------------------------------------------------

TEST_F(UringPath, OpenatCreatesWithTheModeAndFlags) {
  const mode_t mask = current_umask();
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    EXPECT_TRUE(d.ok());
    const std::string a = d / "a";
    // Opens that could wait on a FIFO stay on the pool; O_DIRECTORY and
    // O_PATH ones go to io_uring.
    const int64_t fa = pool_res(pol, SYS_openat, kCwd, u(a.c_str()), O_CREAT | O_RDWR | O_CLOEXEC, 0640);
    EXPECT_GE(fa, 0);
    struct stat st {};
    fstat(static_cast<int>(fa), &st);
    EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask);
    o << "a: " << (fa >= 0) << " mode=" << std::oct << (st.st_mode & 07777) << std::dec << " "
      << fd_flags(static_cast<int>(fa));
    (void)!write(static_cast<int>(fa), "hello", 5);
    close(static_cast<int>(fa));
    // Relative to a directory descriptor, without O_CLOEXEC, O_APPEND.
    const int64_t fb = pool_res(pol, SYS_openat, u(d.fd()), u("b"), O_CREAT | O_WRONLY | O_APPEND, 0600);
    EXPECT_GE(fb, 0);
    o << " | b: " << (fb >= 0) << " " << fd_flags(static_cast<int>(fb)) << " exists=" << exists(d / "b");
    close(static_cast<int>(fb));
    // An existing file, read-only, and O_TRUNC.
    const int64_t fr = pool_res(pol, SYS_openat, u(d.fd()), u("a"), O_RDONLY | O_CLOEXEC, 0);
    char buf[8] = {};
    o << " | r: " << (fr >= 0) << " read=" << read(static_cast<int>(fr), buf, sizeof buf) << " "
      << std::string(buf, 5) << " " << fd_flags(static_cast<int>(fr));
    close(static_cast<int>(fr));
    const int64_t ft = pool_res(pol, SYS_openat, u(d.fd()), u("a"), O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
    close(static_cast<int>(ft));
    o << " | t: " << (ft >= 0) << " size=" << slurp(a).size();
    // A directory, with O_DIRECTORY and O_PATH.
    const int64_t fd = res(pol, SYS_openat, kCwd, u(d.path().c_str()), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    const int64_t fp = res(pol, SYS_openat, u(d.fd()), u("a"), O_PATH | O_CLOEXEC, 0);
    o << " | dir: " << (fd >= 0) << " path: " << (fp >= 0) << " "
      << (fp >= 0 ? read(static_cast<int>(fp), buf, 1) == -1 && errno == EBADF : false);
    close(static_cast<int>(fd));
    close(static_cast<int>(fp));
    return o.str();
  });
}

TEST_F(UringPath, Openat2HonoursResolveFlags) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    mkdir((d / "sub").c_str(), 0700);
    put(d / "sub/f", "in sub");
    symlinkat("f", d.fd(), "sub/link");
    const int sub = open((d / "sub").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH;
    const int64_t f = pool_res(pol, SYS_openat2, u(sub), u("f"), u(&how), sizeof how);
    char buf[16] = {};
    o << "f: " << (f >= 0) << " " << read(static_cast<int>(f), buf, sizeof buf) << " " << buf << " "
      << fd_flags(static_cast<int>(f));
    close(static_cast<int>(f));
    o << " | escape: " << pool_res(pol, SYS_openat2, u(sub), u("../sub/f"), u(&how), sizeof how);
    how.resolve = RESOLVE_NO_SYMLINKS;
    o << " | nosymlinks: " << pool_res(pol, SYS_openat2, u(sub), u("link"), u(&how), sizeof how);
    open_how create{};
    create.flags = O_CREAT | O_WRONLY | O_CLOEXEC;
    create.mode = 0600;
    const int64_t c = pool_res(pol, SYS_openat2, u(sub), u("new"), u(&create), sizeof create);
    struct stat st {};
    fstat(static_cast<int>(c), &st);
    o << " | create: " << (c >= 0) << " mode=" << std::oct << (st.st_mode & 07777) << std::dec;
    close(static_cast<int>(c));
    close(sub);
    return o.str();
  });
}

TEST_F(UringPath, CloseClosesTheDescriptor) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    o << "close=" << res(pol, SYS_close, u(fd));
    o << " open-after=" << (fcntl(fd, F_GETFD) != -1);
    o << " again=" << res(pol, SYS_close, u(fd));
    return o.str();
  });
}

// ---- metadata ---------------------------------------------------------------------------

TEST_F(UringPath, StatxFillsTheBuffer) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", pattern(12345));
    symlinkat("f", d.fd(), "l");
    struct stat ref {};
    stat((d / "f").c_str(), &ref);
    struct statx sx {};
    o << "res=" << res(pol, SYS_statx, u(d.fd()), u("f"), 0, STATX_BASIC_STATS, u(&sx));
    EXPECT_EQ(sx.stx_ino, ref.st_ino);
    o << " size=" << sx.stx_size << " mode=" << std::oct << sx.stx_mode << std::dec
      << " nlink=" << sx.stx_nlink << " ino-ok=" << (sx.stx_ino == ref.st_ino)
      << " mask-basic=" << ((sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
    // Through a descriptor, with AT_EMPTY_PATH.
    const int fd = open((d / "f").c_str(), O_RDONLY | O_CLOEXEC);
    struct statx sy {};
    o << " | fd res=" << res(pol, SYS_statx, u(fd), u(""), AT_EMPTY_PATH, STATX_SIZE, u(&sy))
      << " size=" << sy.stx_size << " ino-ok=" << (sy.stx_ino == ref.st_ino);
    close(fd);
    // A symlink, not followed, then followed.
    struct statx sl {}, sf {};
    o << " | nofollow res=" << res(pol, SYS_statx, u(d.fd()), u("l"), AT_SYMLINK_NOFOLLOW, STATX_TYPE, u(&sl))
      << " link=" << S_ISLNK(sl.stx_mode);
    o << " | follow res=" << res(pol, SYS_statx, u(d.fd()), u("l"), 0, STATX_TYPE, u(&sf))
      << " reg=" << S_ISREG(sf.stx_mode);
    return o.str();
  });
}

TEST_F(UringPath, Renameat2RenamesAndHonoursItsFlags) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "a", "AAA");
    put(d / "b", "BBB");
    put(d / "c", "CCC");
    o << "rename=" << res(pol, SYS_renameat2, u(d.fd()), u("a"), u(d.fd()), u("x"), 0)
      << " a=" << exists(d / "a") << " x=" << slurp(d / "x");
    o << " | noreplace=" << res(pol, SYS_renameat2, u(d.fd()), u("x"), u(d.fd()), u("b"), RENAME_NOREPLACE)
      << " x=" << slurp(d / "x") << " b=" << slurp(d / "b");
    o << " | exchange=" << res(pol, SYS_renameat2, u(d.fd()), u("b"), u(d.fd()), u("c"), RENAME_EXCHANGE)
      << " b=" << slurp(d / "b") << " c=" << slurp(d / "c");
    const std::string from = d / "c", to = d / "y";
    o << " | absolute=" << res(pol, SYS_renameat2, kCwd, u(from.c_str()), kCwd, u(to.c_str()), 0)
      << " y=" << slurp(to);
    return o.str();
  });
}

TEST_F(UringPath, UnlinkatRemovesFilesAndDirectories) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", "x");
    mkdir((d / "dir").c_str(), 0700);
    o << "file=" << res(pol, SYS_unlinkat, u(d.fd()), u("f"), 0) << " gone=" << !exists(d / "f");
    o << " | dir=" << res(pol, SYS_unlinkat, u(d.fd()), u("dir"), AT_REMOVEDIR)
      << " gone=" << !exists(d / "dir");
    o << " | again=" << res(pol, SYS_unlinkat, u(d.fd()), u("f"), 0);
    return o.str();
  });
}

TEST_F(UringPath, MkdiratCreatesWithTheMode) {
  const mode_t mask = current_umask();
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    o << "res=" << res(pol, SYS_mkdirat, u(d.fd()), u("new"), 0750);
    struct stat st {};
    stat((d / "new").c_str(), &st);
    EXPECT_EQ(st.st_mode & 07777, 0750u & ~mask);
    o << " dir=" << S_ISDIR(st.st_mode) << " mode=" << std::oct << (st.st_mode & 07777) << std::dec;
    const std::string abs = d / "new/deeper";
    o << " | abs=" << res(pol, SYS_mkdirat, kCwd, u(abs.c_str()), 0700) << " " << exists(abs);
    return o.str();
  });
}

TEST_F(UringPath, SymlinkatAndLinkatMakeLinks) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", "target data");
    o << "symlink=" << res(pol, SYS_symlinkat, u("f"), u(d.fd()), u("s"));
    char buf[64] = {};
    o << " readlink=" << std::string(buf, static_cast<size_t>(std::max<ssize_t>(
                                              0, readlinkat(d.fd(), "s", buf, sizeof buf))));
    o << " | link=" << res(pol, SYS_linkat, u(d.fd()), u("f"), u(d.fd()), u("h"), 0);
    struct stat f {}, h {};
    stat((d / "f").c_str(), &f);
    stat((d / "h").c_str(), &h);
    o << " nlink=" << f.st_nlink << " same=" << (f.st_ino == h.st_ino);
    // Through the symlink, followed.
    o << " | follow=" << res(pol, SYS_linkat, u(d.fd()), u("s"), u(d.fd()), u("h2"), AT_SYMLINK_FOLLOW);
    struct stat h2 {};
    lstat((d / "h2").c_str(), &h2);
    o << " reg=" << S_ISREG(h2.st_mode) << " same=" << (h2.st_ino == f.st_ino);
    return o.str();
  });
}

// ---- syncing and space -------------------------------------------------------------------

TEST_F(UringPath, FsyncFdatasyncAndSyncFileRange) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    const int fd = open((d / "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    const std::string data = pattern(64 * KiB);
    (void)!write(fd, data.data(), data.size());
    o << "fsync=" << res(pol, SYS_fsync, u(fd));
    (void)!pwrite(fd, "x", 1, 0);
    o << " fdatasync=" << res(pol, SYS_fdatasync, u(fd));
    (void)!pwrite(fd, "y", 1, 4096);
    o << " sfr=" << res(pol, SYS_sync_file_range, u(fd), 0, 0,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    o << " sfr-range=" << res(pol, SYS_sync_file_range, u(fd), 4096, 8192, SYNC_FILE_RANGE_WRITE);
    o << " fsync-dir=" << res(pol, SYS_fsync, u(d.fd()));
    close(fd);
    return o.str();
  });
}

TEST_F(UringPath, FallocateAllocatesKeepsSizeAndPunches) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    const int fd = open((d / "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    struct stat st {};
    o << "alloc=" << res(pol, SYS_fallocate, u(fd), 0, 0, 1024 * KiB);
    fstat(fd, &st);
    o << " size=" << st.st_size;
    const int64_t keep = res(pol, SYS_fallocate, u(fd), FALLOC_FL_KEEP_SIZE, 1024 * KiB, 1024 * KiB);
    fstat(fd, &st);
    o << " | keep=" << keep << " size=" << st.st_size
      << " blocks>=2MiB=" << (keep != 0 || st.st_blocks * 512 >= static_cast<off_t>(2048 * KiB));
    const std::string data(64 * KiB, 'z');
    (void)!pwrite(fd, data.data(), data.size(), 0);
    const int64_t punch = res(pol, SYS_fallocate, u(fd), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              16 * KiB, 16 * KiB);
    std::string back(64 * KiB, '?');
    (void)!pread(fd, back.data(), back.size(), 0);
    const bool zeros = punch != 0 || back.substr(16 * KiB, 16 * KiB) == std::string(16 * KiB, '\0');
    o << " | punch=" << punch << " zeroed=" << zeros << " kept=" << (back.substr(0, 16 * KiB) == data.substr(0, 16 * KiB));
    close(fd);
    return o.str();
  });
}

TEST_F(UringPath, Fadvise64DropsPagesFromTheCache) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    pattern_file f(1024 * KiB);
    EXPECT_TRUE(f.ok());
    // Readahead off and the file re-read, so that its pages sit in small
    // folios that a range can be evicted from.
    EXPECT_EQ(posix_fadvise(f.fd(), 0, 0, POSIX_FADV_RANDOM), 0);
    const bool evicts = f.evictable();  // and warm again
    o << "willneed=" << res(pol, SYS_fadvise64, u(f.fd()), 0, 0, POSIX_FADV_WILLNEED);
    f.warm(0, f.size());
    o << " | range=" << res(pol, SYS_fadvise64, u(f.fd()), 256 * KiB, 256 * KiB, POSIX_FADV_DONTNEED);
    if (evicts) {
      EXPECT_EQ(f.resident(256 * KiB, 256 * KiB), 0u);
      o << " evicted=" << (f.resident(256 * KiB, 256 * KiB) == 0)
        << " kept=" << (f.resident(0, 256 * KiB) == 256 * KiB);
    }
    o << " | all=" << res(pol, SYS_fadvise64, u(f.fd()), 0, 0, POSIX_FADV_DONTNEED);
    if (evicts) {
      EXPECT_EQ(f.resident(0, f.size()), 0u);
      o << " evicted=" << (f.resident(0, f.size()) == 0);
    }
    o << " | sequential=" << res(pol, SYS_fadvise64, u(f.fd()), 0, 4096, POSIX_FADV_SEQUENTIAL);
    return o.str();
  });
}

TEST_F(UringPath, MadviseDontneedZeroesAnonymousPages) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    const size_t len = 4 * 4096;
    auto *m = static_cast<unsigned char *>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(m, MAP_FAILED);
    std::memset(m, 0xab, len);
    o << "dontneed=" << res(pol, SYS_madvise, u(m) + 4096, 2 * 4096, MADV_DONTNEED);
    o << " first=" << int{m[0]} << " second=" << int{m[4096]} << " third=" << int{m[8192]}
      << " fourth=" << int{m[12288]};
    o << " | willneed=" << res(pol, SYS_madvise, u(m), len, MADV_WILLNEED);
    munmap(m, len);
    return o.str();
  });
}

// ---- reads and writes ------------------------------------------------------------------------

TEST_F(UringPath, ReadAndWriteUseAndMoveTheFilePosition) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", pattern(64 * KiB));
    const int fd = open((d / "f").c_str(), O_RDWR | O_CLOEXEC);
    lseek(fd, 100, SEEK_SET);
    std::string buf(256, '\0');
    // At the position: the pool; at an offset: io_uring.
    o << "read=" << pool_res(pol, SYS_read, u(fd), u(buf.data()), 50)
      << " data=" << (buf.substr(0, 50) == pattern(50, 100)) << " pos=" << lseek(fd, 0, SEEK_CUR);
    lseek(fd, 0, SEEK_END);
    o << " | eof=" << pool_res(pol, SYS_read, u(fd), u(buf.data()), 50) << " pos=" << lseek(fd, 0, SEEK_CUR);
    lseek(fd, 64 * KiB - 10, SEEK_SET);
    o << " | short=" << pool_res(pol, SYS_read, u(fd), u(buf.data()), 50) << " pos=" << lseek(fd, 0, SEEK_CUR);
    lseek(fd, 10, SEEK_SET);
    o << " | write=" << pool_res(pol, SYS_write, u(fd), u("abc"), 3) << " pos=" << lseek(fd, 0, SEEK_CUR)
      << " write=" << pool_res(pol, SYS_write, u(fd), u("def"), 3) << " pos=" << lseek(fd, 0, SEEK_CUR)
      << " file=" << (slurp(d / "f").substr(8, 10) == pattern(2, 8) + "abcdef" + pattern(2, 16));
    close(fd);
    // O_APPEND: a write goes to the end, wherever the position was.
    const int ap = open((d / "f").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    lseek(ap, 0, SEEK_SET);
    o << " | append=" << pool_res(pol, SYS_write, u(ap), u("END"), 3)
      << " tail=" << slurp(d / "f").substr(64 * KiB) << " pos=" << lseek(ap, 0, SEEK_CUR);
    close(ap);
    // pread64 and pwrite64 leave the position alone.
    const int p = open((d / "f").c_str(), O_RDWR | O_CLOEXEC);
    lseek(p, 7, SEEK_SET);
    o << " | pread=" << res(pol, SYS_pread64, u(p), u(buf.data()), 100, 1000)
      << " data=" << (buf.substr(0, 100) == pattern(100, 1000))
      << " pwrite=" << res(pol, SYS_pwrite64, u(p), u("PW"), 2, 2000) << " pos=" << lseek(p, 0, SEEK_CUR)
      << " file=" << slurp(d / "f").substr(2000, 2);
    close(p);
    return o.str();
  });
}

TEST_F(UringPath, ReadvAndWritevUseAndMoveTheFilePosition) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", pattern(64 * KiB));
    const int fd = open((d / "f").c_str(), O_RDWR | O_CLOEXEC);
    lseek(fd, 300, SEEK_SET);
    std::string a(10, '\0'), b(4000, '\0');
    iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    o << "readv=" << pool_res(pol, SYS_readv, u(fd), u(iov), 2) << " data=" << (a + b == pattern(4010, 300))
      << " pos=" << lseek(fd, 0, SEEK_CUR);
    std::string w1 = "vec", w2 = "tor";
    iovec wv[2] = {{w1.data(), 3}, {w2.data(), 3}};
    lseek(fd, 50, SEEK_SET);
    o << " | writev=" << pool_res(pol, SYS_writev, u(fd), u(wv), 2) << " pos=" << lseek(fd, 0, SEEK_CUR)
      << " file=" << slurp(d / "f").substr(50, 6);
    // preadv/pwritev at an offset leave the position alone.
    lseek(fd, 5, SEEK_SET);
    o << " | preadv=" << res(pol, SYS_preadv, u(fd), u(iov), 2, 8192, 0)
      << " data=" << (a + b == pattern(4010, 8192)) << " pos=" << lseek(fd, 0, SEEK_CUR);
    o << " pwritev=" << res(pol, SYS_pwritev, u(fd), u(wv), 2, 9000, 0) << " pos=" << lseek(fd, 0, SEEK_CUR)
      << " file=" << slurp(d / "f").substr(9000, 6);
    close(fd);
    return o.str();
  });
}

TEST_F(UringPath, Preadv2AndPwritev2AtTheFilePositionAndAtAnOffset) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", pattern(64 * KiB));
    const int fd = open((d / "f").c_str(), O_RDWR | O_CLOEXEC);
    const uint64_t here = static_cast<uint64_t>(-1);
    std::string a(100, '\0'), b(100, '\0');
    iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    lseek(fd, 1000, SEEK_SET);
    o << "preadv2(-1)=" << pool_res(pol, SYS_preadv2, u(fd), u(iov), 2, here, 0, 0)
      << " data=" << (a + b == pattern(200, 1000)) << " pos=" << lseek(fd, 0, SEEK_CUR);
    o << " | preadv2(4096)=" << res(pol, SYS_preadv2, u(fd), u(iov), 2, 4096, 0, 0)
      << " data=" << (a + b == pattern(200, 4096)) << " pos=" << lseek(fd, 0, SEEK_CUR);
    std::string w = "pwritev2";
    iovec wv[1] = {{w.data(), w.size()}};
    o << " | pwritev2(-1)=" << pool_res(pol, SYS_pwritev2, u(fd), u(wv), 1, here, 0, 0)
      << " pos=" << lseek(fd, 0, SEEK_CUR) << " file=" << slurp(d / "f").substr(1200, 8);
    o << " | pwritev2(20000)=" << res(pol, SYS_pwritev2, u(fd), u(wv), 1, 20000, 0, 0)
      << " pos=" << lseek(fd, 0, SEEK_CUR) << " file=" << slurp(d / "f").substr(20000, 8);
    // The flags argument is honoured: RWF_APPEND writes at the end.
    o << " | append=" << res(pol, SYS_pwritev2, u(fd), u(wv), 1, 0, 0, RWF_APPEND)
      << " size=" << slurp(d / "f").size() << " tail=" << slurp(d / "f").substr(64 * KiB)
      << " head-kept=" << (slurp(d / "f").substr(0, 8) == pattern(8));
    // And RWF_NOWAIT on a cached read succeeds.
    o << " | nowait=" << res(pol, SYS_preadv2, u(fd), u(iov), 1, 0, 0, RWF_NOWAIT)
      << " data=" << (a == pattern(100));
    close(fd);
    return o.str();
  });
}

TEST_F(UringPath, ReadAndWriteOnAPipe) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    // A blocking pipe: the write stays on the pool (the call writes it
    // whole), the read goes to io_uring.
    o << "write=" << pool_res(pol, SYS_write, u(p[1]), u("0123456789"), 10);
    char buf[64] = {};
    o << " read=" << res(pol, SYS_read, u(p[0]), u(buf), sizeof buf) << " " << buf;
    close(p[0]);
    close(p[1]);
    return o.str();
  });
}

// ---- sockets ---------------------------------------------------------------------------------

TEST_F(UringPath, SendmsgAndRecvmsgWithDataAndADescriptor) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    int s[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    const int efd = eventfd(0, EFD_CLOEXEC);
    // Two iovecs and an SCM_RIGHTS message carrying the eventfd.
    char h[] = "head-", t[] = "tail";
    iovec out[2] = {{h, 5}, {t, 4}};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = out;
    m.msg_iovlen = 2;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &efd, sizeof efd);
    // Sends to a blocking stream socket stay on the pool; receives go to
    // io_uring.
    o << "sendmsg=" << pool_res(pol, SYS_sendmsg, u(s[0]), u(&m), 0);
    char a[3] = {}, b[16] = {};
    iovec in[2] = {{a, 3}, {b, sizeof b}};
    alignas(cmsghdr) char rctl[CMSG_SPACE(sizeof(int)) + 64] = {};
    msghdr r{};
    r.msg_iov = in;
    r.msg_iovlen = 2;
    r.msg_control = rctl;
    r.msg_controllen = sizeof rctl;
    r.msg_flags = 0x7fff0000;  // must be overwritten
    o << " recvmsg=" << res(pol, SYS_recvmsg, u(s[1]), u(&r), MSG_CMSG_CLOEXEC)
      << " data=" << std::string(a, 3) << std::string(b) << " controllen=" << r.msg_controllen
      << " flags=" << r.msg_flags;
    const cmsghdr *rc = CMSG_FIRSTHDR(&r);
    int got = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) std::memcpy(&got, CMSG_DATA(rc), sizeof got);
    o << " rights=" << (got >= 0);
    if (got >= 0) {  // the same eventfd: what is written to one is read from the other
      const uint64_t one = 1;
      (void)!write(got, &one, 8);
      uint64_t v = 0;
      o << " same=" << (read(efd, &v, 8) == 8 && v == 1) << " cloexec=" << ((fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
      close(got);
    }
    // A control buffer too small: MSG_CTRUNC comes back in msg_flags.
    o << " | again=" << pool_res(pol, SYS_sendmsg, u(s[0]), u(&m), 0);
    alignas(cmsghdr) char tiny[sizeof(cmsghdr)] = {};
    r.msg_control = tiny;
    r.msg_controllen = sizeof tiny;
    r.msg_flags = 0;
    o << " recvmsg=" << res(pol, SYS_recvmsg, u(s[1]), u(&r), 0)
      << " ctrunc=" << ((r.msg_flags & MSG_CTRUNC) != 0) << " controllen=" << r.msg_controllen;
    close(efd);
    close(s[0]);
    close(s[1]);
    return o.str();
  });
}

TEST_F(UringPath, SendtoAndRecvfromWithoutAnAddress) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    int s[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    // Sends to a blocking stream socket stay on the pool; receives go to
    // io_uring.
    o << "sendto=" << pool_res(pol, SYS_sendto, u(s[0]), u("hello world"), 11, 0, 0, 0);
    char buf[32] = {};
    o << " peek=" << res(pol, SYS_recvfrom, u(s[1]), u(buf), 5, MSG_PEEK, 0, 0) << " " << buf;
    std::memset(buf, 0, sizeof buf);
    o << " recv=" << res(pol, SYS_recvfrom, u(s[1]), u(buf), sizeof buf, 0, 0, 0) << " " << buf;
    o << " empty=" << res(pol, SYS_recvfrom, u(s[1]), u(buf), sizeof buf, MSG_DONTWAIT, 0, 0);
    o << " | waitall: " << pool_res(pol, SYS_sendto, u(s[0]), u("abcdef"), 6, 0, 0, 0);
    std::memset(buf, 0, sizeof buf);
    o << " " << res(pol, SYS_recvfrom, u(s[1]), u(buf), 6, MSG_WAITALL, 0, 0) << " " << buf;
    close(s[0]);
    close(s[1]);
    return o.str();
  });
}

// With a destination or source address: io_uring's SEND takes none and its
// RECV cannot return one, so both run on the pool; the address and its
// length must come back.
TEST_F(UringPath, SendtoAndRecvfromWithAnAddressOverUdp) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    const int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(rx, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    EXPECT_EQ(bind(tx, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(rx, reinterpret_cast<sockaddr *>(&a), &len);
    sockaddr_in me{};
    len = sizeof me;
    getsockname(tx, reinterpret_cast<sockaddr *>(&me), &len);
    req_buf s(SYS_sendto, 1, u(tx), u("datagram"), 8, 0, u(&a), sizeof a);
    o << "sendto=" << run(pol, s, false).res();
    char buf[32] = {};
    sockaddr_in from{};
    socklen_t from_len = sizeof from + 8;  // larger than needed: must be written back
    req_buf r(SYS_recvfrom, 2, u(rx), u(buf), sizeof buf, 0, u(&from), u(&from_len));
    o << " recvfrom=" << run(pol, r, false).res() << " " << buf << " addrlen=" << from_len
      << " port-ok=" << (from.sin_port == me.sin_port) << " family=" << from.sin_family;
    close(rx);
    close(tx);
    return o.str();
  });
}

TEST_F(UringPath, Accept4AndConnectOverLoopbackTcp) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    aio2_ctx *c = ctx_[pol].get();
    const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
    EXPECT_EQ(listen(l, 4), 0);
    socklen_t len = sizeof a;
    getsockname(l, reinterpret_cast<sockaddr *>(&a), &len);
    // The accept first: it waits for the connect that follows.
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer + 4;
    req_buf acc(SYS_accept4, 1, u(l), u(&peer), u(&peer_len), SOCK_CLOEXEC | SOCK_NONBLOCK);
    acc.attr(AIO2_ATTR_EXECUTOR);
    EXPECT_EQ(aio2_submit(c, acc.b, acc.len()), acc.len());
    const int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    req_buf con(SYS_connect, 2, u(cl), u(&a), sizeof a);
    con.attr(AIO2_ATTR_EXECUTOR);
    EXPECT_EQ(aio2_submit(c, con.b, con.len()), con.len());
    int64_t fd = -1, cres = 1;
    for (const event_copy &e : reap(c, 2)) {
      EXPECT_TRUE(path_is(pol, kUringCall, uring(), e.path())) << e.user_data();
      (e.user_data() == 1 ? fd : cres) = e.res();
    }
    sockaddr_in mine{};
    len = sizeof mine;
    getsockname(cl, reinterpret_cast<sockaddr *>(&mine), &len);
    o << "accept=" << (fd >= 0) << " " << (fd >= 0 ? fd_flags(static_cast<int>(fd)) : "")
      << " addrlen=" << peer_len << " peer-ok=" << (peer.sin_port == mine.sin_port)
      << " connect=" << cres;
    if (fd >= 0) {
      (void)!write(cl, "ping", 4);
      char buf[8] = {};
      for (int i = 0; i < 1000 && read(static_cast<int>(fd), buf, 4) < 0; i++) usleep(1000);
      o << " data=" << buf;
      close(static_cast<int>(fd));
    }
    // A second accept on a socket with nothing pending, non-blocking: -EAGAIN.
    // io_uring would wait instead, so a call on an O_NONBLOCK socket goes
    // to the pool under URING.
    fcntl(l, F_SETFL, O_NONBLOCK);
    req_buf empty(SYS_accept4, 1, u(l), 0, 0, 0);
    empty.attr(AIO2_ATTR_EXECUTOR);
    const event_copy e = submit_wait(c, empty, 5);
    EXPECT_EQ(e.path(), AIO2_PATH_POOL) << path_str(e.path());
    o << " | empty=" << e.res();
    close(cl);
    close(l);
    return o.str();
  });
}

TEST_F(UringPath, ShutdownEndsTheStream) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    int s[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    o << "wr=" << res(pol, SYS_shutdown, u(s[0]), SHUT_WR);
    char c;
    o << " eof=" << read(s[1], &c, 1);
    o << " write-after=" << (send(s[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    o << " | rd=" << res(pol, SYS_shutdown, u(s[1]), SHUT_RD);
    close(s[0]);
    close(s[1]);
    return o.str();
  });
}

// ---- pipes and epoll -------------------------------------------------------------------------

TEST_F(UringPath, SpliceMovesBytesAndWritesOffsetsBack) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    scratch_dir d;
    put(d / "f", pattern(64 * KiB));
    const int fd = open((d / "f").c_str(), O_RDWR | O_CLOEXEC);
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    // File to pipe, with an offset: the offset moves, the position does not.
    // (io_uring takes offsets by value: with loff_t pointers the pool runs it.)
    loff_t in = 100;
    req_buf sin(SYS_splice, 1, u(fd), u(&in), u(p[1]), 0, 1000, 0);
    o << "in=" << run(pol, sin, false).res() << " off=" << in
      << " pos=" << lseek(fd, 0, SEEK_CUR);
    std::string got(1000, '\0');
    (void)!read(p[0], got.data(), got.size());
    o << " data=" << (got == pattern(1000, 100));
    // File to pipe at the file position, which moves.
    lseek(fd, 5000, SEEK_SET);
    o << " | pos-in=" << res(pol, SYS_splice, u(fd), 0, u(p[1]), 0, 300, 0)
      << " pos=" << lseek(fd, 0, SEEK_CUR);
    // Pipe to file, with an offset.
    loff_t out = 30000;
    req_buf sout(SYS_splice, 2, u(p[0]), 0, u(fd), u(&out), 300, 0);
    o << " | out=" << run(pol, sout, false).res() << " off=" << out
      << " file=" << (slurp(d / "f").substr(30000, 300) == pattern(300, 5000));
    // Pipe to pipe, SPLICE_F_NONBLOCK on an empty pipe.
    int q[2];
    EXPECT_EQ(pipe2(q, O_CLOEXEC), 0);
    (void)!write(p[1], "through", 7);
    o << " | pipe=" << res(pol, SYS_splice, u(p[0]), 0, u(q[1]), 0, 100, 0);
    char buf[16] = {};
    (void)!read(q[0], buf, sizeof buf);
    o << " " << buf << " empty=" << res(pol, SYS_splice, u(p[0]), 0, u(q[1]), 0, 100, SPLICE_F_NONBLOCK);
    for (int x : {p[0], p[1], q[0], q[1], fd}) close(x);
    return o.str();
  });
}

TEST_F(UringPath, TeeDuplicatesWithoutConsuming) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    int a[2], b[2];
    EXPECT_EQ(pipe2(a, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(b, O_CLOEXEC), 0);
    (void)!write(a[1], "0123456789", 10);
    o << "tee=" << res(pol, SYS_tee, u(a[0]), u(b[1]), 100, 0);
    char x[16] = {}, y[16] = {};
    (void)!read(b[0], y, sizeof y);
    (void)!read(a[0], x, sizeof x);
    o << " copy=" << y << " original=" << x;
    o << " | empty=" << res(pol, SYS_tee, u(a[0]), u(b[1]), 100, SPLICE_F_NONBLOCK);
    for (int f : {a[0], a[1], b[0], b[1]}) close(f);
    return o.str();
  });
}

TEST_F(UringPath, EpollCtlAddsModifiesAndDeletes) {
  both([&](uint32_t pol) {
    std::ostringstream o;
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    const int efd = eventfd(1, EFD_CLOEXEC);  // readable and writable
    auto wait = [&] {
      epoll_event ev{};
      const int n = epoll_wait(ep, &ev, 1, 0);
      std::ostringstream w;
      w << n;
      if (n == 1) w << ":" << ev.data.u64 << ":" << ev.events;
      return w.str();
    };
    epoll_event in{};
    in.events = EPOLLIN;
    in.data.u64 = 42;
    o << "add=" << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_ADD, u(efd), u(&in)) << " " << wait();
    epoll_event mod{};
    mod.events = EPOLLOUT;
    mod.data.u64 = 43;
    o << " | mod=" << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_MOD, u(efd), u(&mod)) << " " << wait();
    o << " | del=" << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_DEL, u(efd), 0) << " " << wait();
    o << " | again=" << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_DEL, u(efd), 0);
    o << " | twice=" << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_ADD, u(efd), u(&in))
      << res(pol, SYS_epoll_ctl, u(ep), EPOLL_CTL_ADD, u(efd), u(&in));
    close(efd);
    close(ep);
    return o.str();
  });
}

}  // namespace
