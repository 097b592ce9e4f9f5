// SPDX-License-Identifier: MIT
// Credentials: a request runs with the credentials its submitting thread
// had when it submitted it, on every path, or not at all (-EPERM).
//
// Run as root (skipped otherwise), each case in a forked child so that the
// test process keeps root. A directory of mode 0700 owned by root holds a
// subdirectory; openat and statx of the subdirectory succeed as root and
// fail with -EACCES as nobody. Each route is forced per request
// (AIO2_IOCB_POLICY) and checked by the executor attribute:
//   - the process drops to nobody with the C library's setgroups, setgid and
//     setuid (every thread changes): after the drop, -EACCES on the inline
//     path, on io_uring (whose workers were started as root) and on the pool
//     (whose workers were started as root);
//   - a request queued on the pool as nobody (seteuid) behind a blocked
//     worker, the process back to root before it runs: -EPERM, not run as
//     root;
//   - one thread drops with the raw system calls (that thread alone): its
//     requests get -EACCES inline and on io_uring (a personality with its
//     credentials), -EPERM on the pool (the workers are still root), and the
//     other threads' requests still succeed;
//   - in such a thread, a call whose result does not depend on who runs it
//     (a pread of a descriptor opened as root: the kernel checked it at
//     open) carries no snapshot and runs on the pool, while a pwrite (a
//     write's effects depend on the writer's capabilities) still gets
//     -EPERM there.
#include <fcntl.h>
#include <grp.h>
#include <linux/stat.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "aio2/aio2.h"
#include "proc_util.h"
#include "test_util.h"

namespace {

// Checks in the forked child: gtest's assertions would be lost there, so
// each failure is printed and counted, and the exit status says.
int failures = 0;
#define CHILD_CHECK(cond, ...)                                        \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                              \
      std::fputc('\n', stderr);                                       \
      failures++;                                                     \
    }                                                                 \
  } while (0)

struct outcome {
  int64_t res = INT64_MIN;
  uint32_t path = 0;
};

// Submits `io` (with an executor attribute) and waits for its event.
// The next event of `c` (10 s at most): its result and path.
outcome reap_one(aio2_ctx *c) {
  outcome o;
  alignas(8) unsigned char buf[1024];
  const timespec ts{10, 0};
  ssize_t got;
  while ((got = aio2_getevents(c, 1, buf, sizeof buf, &ts)) == -EINTR) {
  }
  if (got <= 0) return o;
  const aio2_event *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr);
  o.res = ev->res;
  uint16_t st;
  if (const void *p = aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof(aio2_attr_executor),
                                              &st)) {
    aio2_attr_executor e;
    std::memcpy(&e, p, sizeof e);
    o.path = e.path;
  }
  return o;
}

outcome run(aio2_ctx *c, aio2_test::req_buf &r) {
  const ssize_t n = aio2_submit(c, r.b, r.len());
  if (n != static_cast<ssize_t>(r.len())) {
    outcome o;
    o.res = n;  // refused at submit
    return o;
  }
  return reap_one(c);
}

const uint32_t kRoutes[] = {AIO2_POLICY_INLINE, AIO2_POLICY_URING, AIO2_POLICY_POOL};
const uint32_t kRoutePath[] = {AIO2_PATH_INLINE, AIO2_PATH_URING, AIO2_PATH_POOL};

// openat and statx of `path` on each route; `want` is the result each must
// give (0 for success: a descriptor, which is closed), `pool_want` the
// pool's when it differs.
void each_route(aio2_ctx *c, const std::string &path, int64_t want, int64_t pool_want,
                const char *who) {
  for (size_t i = 0; i < std::size(kRoutes); i++) {
    const int64_t expect = kRoutes[i] == AIO2_POLICY_POOL ? pool_want : want;
    aio2_test::req_buf open_req(SYS_openat, 1, static_cast<uint64_t>(AT_FDCWD),
                                reinterpret_cast<uint64_t>(path.c_str()),
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    open_req.path(kRoutes[i]).attr(AIO2_ATTR_EXECUTOR);
    const outcome o = run(c, open_req);
    if (expect == 0) {
      CHILD_CHECK(o.res >= 0, "%s: openat on route %s: %lld", who,
                  aio2_test::policy_name(kRoutes[i]), (long long)o.res);
      if (o.res >= 0) close(static_cast<int>(o.res));
    } else {
      CHILD_CHECK(o.res == expect, "%s: openat on route %s: %lld, want %lld", who,
                  aio2_test::policy_name(kRoutes[i]), (long long)o.res, (long long)expect);
    }
    // A request refused with -EPERM never ran: no path to report.
    if (o.res != -EPERM)
      CHILD_CHECK(o.path == kRoutePath[i], "%s: openat ran on path %u, not %u", who, o.path,
                  kRoutePath[i]);

    struct statx stx {};
    aio2_test::req_buf stat_req(SYS_statx, 2, static_cast<uint64_t>(AT_FDCWD),
                                reinterpret_cast<uint64_t>(path.c_str()), 0, STATX_BASIC_STATS,
                                reinterpret_cast<uint64_t>(&stx));
    stat_req.path(kRoutes[i]).attr(AIO2_ATTR_EXECUTOR);
    const outcome s = run(c, stat_req);
    CHILD_CHECK(s.res == expect, "%s: statx on route %s: %lld, want %lld", who,
                aio2_test::policy_name(kRoutes[i]), (long long)s.res, (long long)expect);
    if (s.res != -EPERM)
      CHILD_CHECK(s.path == kRoutePath[i], "%s: statx ran on path %u, not %u", who, s.path,
                  kRoutePath[i]);
  }
}

aio2_ctx *setup() {
  aio2_params p{};
  p.size = sizeof p;
  p.bounded_workers = 1;
  aio2_ctx *c = nullptr;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &c) != 0) return nullptr;
  if (!(p.features & AIO2_FEAT_URING)) {
    std::fprintf(stderr, "io_uring is not available: its route cannot be checked\n");
    failures++;
  }
  return c;
}

class Creds : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: it drops to nobody in a forked child";
    const passwd *pw = getpwnam("nobody");
    if (pw == nullptr) GTEST_SKIP() << "no user nobody";
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    char t[] = "/tmp/aio2-creds-XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    dir_ = t;
    ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
    ASSERT_EQ(chown(dir_.c_str(), 0, 0), 0);
    sub_ = dir_ + "/sub";
    ASSERT_EQ(mkdir(sub_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!sub_.empty()) rmdir(sub_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  // Runs `body` in a forked child and expects it to exit 0.
  template <class Fn>
  void in_child(Fn body) {
    fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      body();
      _exit(failures == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "the child died: status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "checks failed in the child (its stderr says which)";
  }
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string dir_, sub_;
};

TEST_F(Creds, ProcessDropReachesEveryPath) {
  in_child([&] {
    aio2_ctx *c = setup();
    if (c == nullptr) {
      failures++;
      return;
    }
    each_route(c, sub_, 0, 0, "root");  // workers and io-wq started as root
    CHILD_CHECK(setgroups(0, nullptr) == 0, "setgroups: %s", strerror(errno));
    CHILD_CHECK(setgid(gid_) == 0, "setgid: %s", strerror(errno));
    CHILD_CHECK(setuid(uid_) == 0, "setuid: %s", strerror(errno));
    each_route(c, sub_, -EACCES, -EACCES, "nobody");
    aio2_destroy(c);
  });
}

TEST_F(Creds, QueuedRequestNeverRunsWithLaterCredentials) {
  in_child([&] {
    aio2_ctx *c = setup();
    int fds[2];
    if (c == nullptr || pipe(fds) != 0) {
      failures++;
      return;
    }
    // The only bounded worker waits in this read until the pipe is written.
    char byte = 0;
    aio2_test::req_buf blocker(SYS_read, 10, static_cast<uint64_t>(fds[0]),
                               reinterpret_cast<uint64_t>(&byte), 1);
    blocker.path(AIO2_POLICY_POOL);
    blocker.io()->flags |= AIO2_IOCB_BOUNDED;
    CHILD_CHECK(aio2_submit(c, blocker.b, blocker.len()) == blocker.len(), "blocker refused");
    // Started as root: the worker is inside the read before anything
    // changes (it would refuse a request whose credentials changed first).
    while (!aio2_test::thread_blocked_in(SYS_read, fds[0])) std::this_thread::yield();
    // Queued behind it as nobody (effective IDs only: root can come back).
    CHILD_CHECK(setegid(gid_) == 0 && seteuid(uid_) == 0, "seteuid: %s", strerror(errno));
    aio2_test::req_buf open_req(SYS_openat, 11, static_cast<uint64_t>(AT_FDCWD),
                                reinterpret_cast<uint64_t>(sub_.c_str()),
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    open_req.path(AIO2_POLICY_POOL);
    CHILD_CHECK(aio2_submit(c, open_req.b, open_req.len()) == open_req.len(), "open refused");
    CHILD_CHECK(seteuid(0) == 0 && setegid(0) == 0, "back to root: %s", strerror(errno));
    CHILD_CHECK(write(fds[1], "x", 1) == 1, "write");
    alignas(8) unsigned char buf[1024];
    int seen = 0;
    while (seen < 2) {
      const timespec ts{10, 0};
      const ssize_t got = aio2_getevents(c, 1, buf, sizeof buf, &ts);
      if (got == -EINTR) continue;
      CHILD_CHECK(got > 0, "no event: %zd", got);
      if (got <= 0) break;
      for (auto *ev = aio2_event_next(buf, static_cast<size_t>(got), nullptr); ev;
           ev = aio2_event_next(buf, static_cast<size_t>(got), ev), seen++) {
        if (ev->user_data == 10) CHILD_CHECK(ev->res == 1, "read: %lld", (long long)ev->res);
        if (ev->user_data == 11) {
          // Run as root it would have opened the directory.
          CHILD_CHECK(ev->res == -EPERM, "open queued as nobody, run after root came back: %lld",
                      (long long)ev->res);
          if (ev->res >= 0) close(static_cast<int>(ev->res));
        }
      }
    }
    aio2_destroy(c);
  });
}

TEST_F(Creds, RawSyscallChangesOneThreadOnly) {
  in_child([&] {
    aio2_ctx *c = setup();
    if (c == nullptr) {
      failures++;
      return;
    }
    each_route(c, sub_, 0, 0, "root");
    std::thread t([&] {
      // The raw calls: this thread alone becomes nobody.
      CHILD_CHECK(syscall(SYS_setgroups, 0, nullptr) == 0, "setgroups: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setgid, gid_) == 0, "setgid: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setuid, uid_) == 0, "setuid: %s", strerror(errno));
      // Inline and io_uring: this thread's credentials (-EACCES); the pool's
      // workers are root and refuse to run it (-EPERM).
      each_route(c, sub_, -EACCES, -EPERM, "one thread nobody");
    });
    t.join();
    each_route(c, sub_, 0, 0, "root again, other thread");
    aio2_destroy(c);
  });
}

TEST_F(Creds, OnlyCredentialSensitiveCallsCarryThem) {
  const std::string file = dir_ + "/data";
  in_child([&] {
    aio2_ctx *c = setup();
    // Root's file in root's 0700 directory, opened as root.
    const int fd = c ? open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || pwrite(fd, "abcd", 4, 0) != 4) {
      failures++;
      return;
    }
    // The pool's one bounded worker starts now, as root (a thread started
    // by the dropped one below would be nobody like it).
    aio2_test::req_buf warm(SYS_getppid, 19);
    warm.path(AIO2_POLICY_POOL).attr(AIO2_ATTR_EXECUTOR);
    const outcome w = run(c, warm);
    CHILD_CHECK(w.res == getppid() && w.path == AIO2_PATH_POOL, "getppid on the pool: %lld",
                (long long)w.res);
    std::thread t([&] {
      CHILD_CHECK(syscall(SYS_setgroups, 0, nullptr) == 0, "setgroups: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setgid, gid_) == 0, "setgid: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setuid, uid_) == 0, "setuid: %s", strerror(errno));
      for (size_t i = 0; i < std::size(kRoutes); i++) {
        char got[4] = {};
        aio2_test::req_buf rd(SYS_pread64, 20, static_cast<uint64_t>(fd),
                              reinterpret_cast<uint64_t>(got), sizeof got, 0);
        rd.path(kRoutes[i]).attr(AIO2_ATTR_EXECUTOR);
        const outcome o = run(c, rd);
        CHILD_CHECK(o.res == 4 && std::memcmp(got, "abcd", 4) == 0,
                    "pread as nobody of root's open file on route %s: %lld",
                    aio2_test::policy_name(kRoutes[i]), (long long)o.res);
        CHILD_CHECK(o.path == kRoutePath[i], "pread ran on path %u, not %u", o.path,
                    kRoutePath[i]);
      }
    });
    t.join();
    // Submitted as nobody, reaped as root: neither the root worker nor this
    // root thread running queued work while it waits (exec/pool) may run
    // it.
    std::thread u([&] {
      CHILD_CHECK(syscall(SYS_setgroups, 0, nullptr) == 0, "setgroups: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setgid, gid_) == 0, "setgid: %s", strerror(errno));
      CHILD_CHECK(syscall(SYS_setuid, uid_) == 0, "setuid: %s", strerror(errno));
      aio2_test::req_buf wr(SYS_pwrite64, 21, static_cast<uint64_t>(fd),
                            reinterpret_cast<uint64_t>("efgh"), 4, 0);
      wr.path(AIO2_POLICY_POOL);
      CHILD_CHECK(aio2_submit(c, wr.b, wr.len()) == static_cast<ssize_t>(wr.len()),
                  "pwrite refused at submit");
    });
    u.join();
    const outcome o = reap_one(c);
    CHILD_CHECK(o.res == -EPERM, "pwrite on the pool as nobody, run as root: %lld",
                (long long)o.res);
    close(fd);
    aio2_destroy(c);
  });
  unlink(file.c_str());
}

}  // namespace
