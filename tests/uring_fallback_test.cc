// SPDX-License-Identifier: MIT
// io_uring forbidden for real: before any thread exists, main installs a
// seccomp filter that makes io_uring_setup(2) fail with EPERM (argument
// "eperm") or ENOSYS ("enosys"), as a container runtime's profile or an old
// kernel would. Then every context must still work, without io_uring:
// aio2_setup succeeds under every policy, features lack AIO2_FEAT_URING,
// uring_entries reads back 0, and reads of a file with known contents,
// getppid, writes, pipe reads, cancel and destroy all work, each on the
// exact path its policy gives it without io_uring (never URING). Exits 0
// when every check passed.
//
// A program of its own (no gtest): the filter is per thread and inherited
// only by threads created after it, so it must come first.

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aio2/aio2.h"

namespace {

int failures = 0;

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      failures++;                                                     \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                              \
      std::fprintf(stderr, "\n");                                     \
    }                                                                 \
  } while (0)

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

// io_uring_setup (x86_64 and x32 numbers) fails with `err`; all else runs.
bool forbid_io_uring(int err) {
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup | __X32_SYSCALL_BIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

const char *policy_name(uint32_t p) {
  static const char *const names[] = {"AUTO", "INLINE", "URING", "POOL"};
  return p < 4 ? names[p] : "?";
}

uint64_t u(const void *p) { return reinterpret_cast<uint64_t>(p); }
uint64_t u(int fd) { return static_cast<uint64_t>(fd); }

unsigned char pattern_at(uint64_t off) { return static_cast<unsigned char>((off * 7 + 3) ^ (off >> 9)); }

// A request with an executor attribute.
struct req {
  alignas(8) unsigned char b[256] = {};
  aio2_iocb *io() { return reinterpret_cast<aio2_iocb *>(b); }
  req(long nr, uint64_t ud, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
    aio2_prep(io(), nr, ud, a0, a1, a2, a3, 0, 0);
    aio2_attr_add(io(), sizeof b, AIO2_ATTR_EXECUTOR, 0, nullptr, 0);
  }
};

struct result {
  bool got = false;
  uint64_t user_data = 0;
  int64_t res = 0;
  uint32_t path = 0;
};

result one_event(aio2_ctx *c) {
  alignas(8) unsigned char buf[1024];
  const timespec ts{10, 0};
  const ssize_t n = aio2_getevents(c, 1, buf, sizeof buf, &ts);
  result r;
  if (n <= 0) return r;
  const aio2_event *ev = aio2_event_next(buf, static_cast<size_t>(n), nullptr);
  CHECK(aio2_event_next(buf, static_cast<size_t>(n), ev) == nullptr, "more than one event");
  r.got = true;
  r.user_data = ev->user_data;
  r.res = ev->res;
  aio2_attr_executor x{};
  if (const void *p = aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof x, nullptr)) {
    std::memcpy(&x, p, sizeof x);
    r.path = x.path;
  }
  return r;
}

result submit_one(aio2_ctx *c, req &r) {
  const ssize_t n = aio2_submit(c, r.b, r.io()->len);
  CHECK(n == static_cast<ssize_t>(r.io()->len), "submit: %s", aio2_strerror(static_cast<int>(n)));
  if (n <= 0) return {};
  result e = one_event(c);
  CHECK(e.got, "no event for request %llu", static_cast<unsigned long long>(r.io()->user_data));
  return e;
}

// The path a policy must give a call without io_uring, where AUTO gives it
// `auto_path`: INLINE for getppid and the like and for a read at an offset
// that its RWF_NOWAIT attempt finishes (INLINE|POOL when the rest goes to the
// pool), POOL for everything else. URING has nothing to send to io_uring.
uint32_t want_path(uint32_t policy, uint32_t auto_path) {
  switch (policy) {
    case AIO2_POLICY_INLINE: return AIO2_PATH_INLINE;
    case AIO2_POLICY_URING:
    case AIO2_POLICY_POOL: return AIO2_PATH_POOL;
    case AIO2_POLICY_AUTO: return auto_path;
  }
  return 0;
}

// What AUTO gives a pread at `off` of a file meant to be cached: INLINE
// when a RWF_NOWAIT read of the range reads all of it, else INLINE|POOL.
uint32_t cached_pread_path(int fd, uint64_t off, size_t len) {
  std::vector<unsigned char> b(len);
  const iovec iov{b.data(), len};
  const bool whole = preadv2(fd, &iov, 1, static_cast<off_t>(off), RWF_NOWAIT) ==
                     static_cast<ssize_t>(len);
  return whole ? AIO2_PATH_INLINE : AIO2_PATH_INLINE | AIO2_PATH_POOL;
}

void check_policy(uint32_t policy, uint32_t entries, int file, const std::string &dir) {
  aio2_params p{};
  p.size = sizeof p;
  p.policy = policy;
  p.uring_entries = entries;
  aio2_ctx *c = nullptr;
  const int rc = aio2_setup(AIO2_ABI_VERSION, &p, &c);
  CHECK(rc == 0, "%s: aio2_setup: %s", policy_name(policy), aio2_strerror(rc));
  if (rc != 0) return;
  CHECK(!(p.features & AIO2_FEAT_URING), "%s: features has AIO2_FEAT_URING", policy_name(policy));
  CHECK(p.features & AIO2_FEAT_POOL, "%s: no AIO2_FEAT_POOL", policy_name(policy));
  CHECK(p.features & AIO2_FEAT_INLINE, "%s: no AIO2_FEAT_INLINE", policy_name(policy));
  CHECK(p.uring_entries == 0, "%s: uring_entries %u", policy_name(policy), p.uring_entries);
  CHECK(p.policy == policy, "%s: policy read back as %u", policy_name(policy), p.policy);
  const char *pn = policy_name(policy);

  // getppid.
  req g(SYS_getppid, 1);
  result e = submit_one(c, g);
  CHECK(e.res == getppid(), "%s: getppid %lld", pn, static_cast<long long>(e.res));
  CHECK(e.path == want_path(policy, AIO2_PATH_INLINE), "%s: getppid path 0x%x", pn, e.path);

  // preads of the file, at several offsets; the data checked.
  std::vector<unsigned char> buf(16384);
  for (uint64_t off : {0ull, 4096ull, 100000ull, 262144ull - 16384ull}) {
    const uint32_t want = want_path(policy, cached_pread_path(file, off, buf.size()));
    std::memset(buf.data(), 0, buf.size());
    req r(SYS_pread64, 2, u(file), u(buf.data()), buf.size(), off);
    e = submit_one(c, r);
    CHECK(e.res == static_cast<int64_t>(buf.size()), "%s: pread64 %lld", pn, static_cast<long long>(e.res));
    bool same = true;
    for (size_t i = 0; i < buf.size() && same; i++) same = buf[i] == pattern_at(off + i);
    CHECK(same, "%s: pread64 at %llu read the wrong bytes", pn, static_cast<unsigned long long>(off));
    CHECK(e.path == want, "%s: pread64 path 0x%x, want 0x%x", pn, e.path, want);
  }

  // A read at the file position moves it.
  lseek(file, 8192, SEEK_SET);
  req rd(SYS_read, 3, u(file), u(buf.data()), 4096);
  e = submit_one(c, rd);
  CHECK(e.res == 4096 && buf[0] == pattern_at(8192) && buf[4095] == pattern_at(8192 + 4095),
        "%s: read %lld", pn, static_cast<long long>(e.res));
  CHECK(lseek(file, 0, SEEK_CUR) == 8192 + 4096, "%s: position not moved", pn);
  CHECK(e.path == want_path(policy, AIO2_PATH_POOL), "%s: read path 0x%x", pn, e.path);

  // A write, read back.
  const std::string out_path = dir + "/out-" + pn + "-" + std::to_string(entries);
  const int out = open(out_path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  CHECK(out >= 0, "%s: open %s", pn, out_path.c_str());
  const char msg[] = "written without io_uring";
  req w(SYS_pwrite64, 4, u(out), u(msg), sizeof msg, 10);
  e = submit_one(c, w);
  CHECK(e.res == static_cast<int64_t>(sizeof msg), "%s: pwrite64 %lld", pn, static_cast<long long>(e.res));
  CHECK(e.path == want_path(policy, AIO2_PATH_POOL), "%s: pwrite64 path 0x%x", pn, e.path);
  char back[sizeof msg] = {};
  CHECK(pread(out, back, sizeof back, 10) == static_cast<ssize_t>(sizeof back) &&
            std::memcmp(back, msg, sizeof msg) == 0,
        "%s: the write did not land", pn);
  req fs(SYS_fsync, 5, u(out));
  e = submit_one(c, fs);
  CHECK(e.res == 0, "%s: fsync %lld", pn, static_cast<long long>(e.res));
  CHECK(e.path == want_path(policy, AIO2_PATH_POOL), "%s: fsync path 0x%x", pn, e.path);
  close(out);

  // A per-request io_uring path also falls back to the pool.
  req o(SYS_pread64, 6, u(file), u(buf.data()), 4096, 0);
  o.io()->flags = AIO2_IOCB_POLICY(AIO2_POLICY_URING);
  e = submit_one(c, o);
  CHECK(e.res == 4096 && e.path == AIO2_PATH_POOL, "%s: URING override: res %lld path 0x%x", pn,
        static_cast<long long>(e.res), e.path);

  if (policy != AIO2_POLICY_INLINE) {
    // A pipe read waits for its data, and a cancelled one for nothing.
    int pp[2];
    CHECK(pipe2(pp, O_CLOEXEC) == 0, "pipe");
    char a[8] = {}, b[8] = {};
    req r1(SYS_read, 7, u(pp[0]), u(a), 8), r2(SYS_read, 8, u(pp[0]), u(b), 8);
    CHECK(aio2_submit(c, r1.b, r1.io()->len) == r1.io()->len, "%s: submit read", pn);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int cr = aio2_cancel(c, 7);
    CHECK(cr == 0 || cr == -EALREADY, "%s: cancel: %s", pn, aio2_strerror(cr));
    e = one_event(c);
    CHECK(e.got && e.user_data == 7 && (e.res == -ECANCELED || e.res == -EINTR),
          "%s: cancelled read: %lld", pn, static_cast<long long>(e.res));
    CHECK(aio2_submit(c, r2.b, r2.io()->len) == r2.io()->len, "%s: submit read", pn);
    CHECK(write(pp[1], "pipedata", 8) == 8, "write");
    e = one_event(c);
    CHECK(e.got && e.user_data == 8 && e.res == 8 && std::memcmp(b, "pipedata", 8) == 0,
          "%s: pipe read: %lld", pn, static_cast<long long>(e.res));
    CHECK(e.path == AIO2_PATH_POOL, "%s: pipe read path 0x%x", pn, e.path);
    // And destroy with one in flight returns.
    req r3(SYS_read, 9, u(pp[0]), u(a), 8);
    CHECK(aio2_submit(c, r3.b, r3.io()->len) == r3.io()->len, "%s: submit read", pn);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(aio2_destroy(c) == 0, "%s: destroy", pn);  // the read still waits: it is interrupted
    close(pp[0]);
    close(pp[1]);
    c = nullptr;
  }

  // Many mixed requests: each completes once with its result.
  if (c == nullptr) {
    CHECK(aio2_setup(AIO2_ABI_VERSION, &p, &c) == 0, "%s: setup again", pn);
    if (c == nullptr) return;
  }
  constexpr unsigned kN = 2000;
  std::vector<unsigned char> bufs(kN * 64);
  std::vector<aio2_iocb> batch(kN);
  for (unsigned i = 0; i < kN; i++) {
    if (i % 2)
      aio2_prep(&batch[i], SYS_pread64, i, u(file), u(&bufs[i * 64]), 64, i * 97, 0, 0);
    else
      aio2_prep(&batch[i], SYS_getppid, i, 0, 0, 0, 0, 0, 0);
  }
  size_t off = 0;
  const size_t bytes = batch.size() * sizeof(aio2_iocb);
  while (off < bytes) {
    const ssize_t n = aio2_submit(c, reinterpret_cast<unsigned char *>(batch.data()) + off, bytes - off);
    CHECK(n > 0, "%s: batch submit: %s", pn, aio2_strerror(static_cast<int>(n)));
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::vector<int> seen(kN);
  unsigned events = 0, wrong = 0;
  alignas(8) unsigned char evbuf[8192];
  while (events < kN) {
    const timespec ts{10, 0};
    const ssize_t n = aio2_getevents(c, 1, evbuf, sizeof evbuf, &ts);
    CHECK(n > 0, "%s: getevents after %u events: %zd", pn, events, n);
    if (n <= 0) break;
    for (auto *ev = aio2_event_next(evbuf, static_cast<size_t>(n), nullptr); ev;
         ev = aio2_event_next(evbuf, static_cast<size_t>(n), ev)) {
      events++;
      if (ev->user_data >= kN) {
        wrong++;
        continue;
      }
      const unsigned i = static_cast<unsigned>(ev->user_data);
      seen[i]++;
      bool ok = i % 2 ? ev->res == 64 : ev->res == getppid();
      for (unsigned k = 0; ok && i % 2 && k < 64; k++) ok = bufs[i * 64 + k] == pattern_at(i * 97 + k);
      wrong += !ok;
    }
  }
  unsigned twice = 0;
  for (int s : seen) twice += s != 1;
  CHECK(wrong == 0 && twice == 0, "%s: %u wrong results, %u requests without exactly one event", pn,
        wrong, twice);
  CHECK(aio2_destroy(c) == 0, "%s: destroy", pn);
}

}  // namespace

int main(int argc, char **argv) {
  const std::string mode = argc > 1 ? argv[1] : "eperm";
  if (mode != "eperm" && mode != "enosys") {
    std::fprintf(stderr, "usage: %s eperm|enosys\n", argv[0]);
    return 2;
  }
  const int err = mode == "eperm" ? EPERM : ENOSYS;
  if (!forbid_io_uring(err)) {
    std::fprintf(stderr, "cannot install the seccomp filter: %s\n", std::strerror(errno));
    return 1;
  }
  // The filter works: io_uring_setup itself fails as told.
  unsigned char params[120] = {};
  errno = 0;
  const long fd = syscall(SYS_io_uring_setup, 4, params);
  CHECK(fd == -1 && errno == err, "io_uring_setup returned %ld (%s)", fd, std::strerror(errno));

  // A file of known contents.
  char dir[] = "/tmp/aio2-fallback-XXXXXX";
  if (!mkdtemp(dir)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string file_path = std::string(dir) + "/data";
  const int file = open(file_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  std::vector<unsigned char> data(262144);
  for (size_t i = 0; i < data.size(); i++) data[i] = pattern_at(i);
  CHECK(file >= 0 && pwrite(file, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()),
        "cannot write %s", file_path.c_str());

  for (uint32_t policy = AIO2_POLICY_AUTO; policy <= AIO2_POLICY_POOL; policy++)
    for (uint32_t entries : {0u, 64u}) check_policy(policy, entries, file, dir);

  // NO_URING on top changes nothing.
  aio2_params p{};
  p.size = sizeof p;
  p.flags = AIO2_SETUP_NO_URING;
  aio2_ctx *c = nullptr;
  CHECK(aio2_setup(AIO2_ABI_VERSION, &p, &c) == 0 && !(p.features & AIO2_FEAT_URING) &&
            p.uring_entries == 0,
        "NO_URING context");
  if (c) aio2_destroy(c);

  close(file);
  unlink(file_path.c_str());
  const std::string cmd_dir = dir;
  for (const char *pn : {"AUTO", "INLINE", "URING", "POOL"})
    for (const char *en : {"0", "64"}) unlink((cmd_dir + "/out-" + pn + "-" + en).c_str());
  rmdir(dir);
  if (failures) {
    std::fprintf(stderr, "uring_fallback_test %s: %d check(s) failed\n", mode.c_str(), failures);
    return 1;
  }
  std::printf("uring_fallback_test %s: every check passed\n", mode.c_str());
  return 0;
}
