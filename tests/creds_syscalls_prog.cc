// SPDX-License-Identifier: MIT
// The requests tests/creds_syscalls.sh counts system calls of, under
// strace: `creds_syscalls_prog POLICY CALL N` submits N requests, 16 per
// aio2_submit, on one context of policy AUTO, URING or POOL, and reaps each
// batch before the next. CALL is `read` (a 4 KiB pread of a cached file:
// its result does not depend on who runs it) or `open` (an openat of the
// same file, which the kernel checks against the caller's credentials).
// Every result is checked; exit 0 when all were right.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "aio2/aio2.h"

namespace {

constexpr unsigned kBatch = 16;
constexpr size_t kBlock = 4096;

int fail(const char *what, long v) {
  std::fprintf(stderr, "creds_syscalls_prog: %s: %ld\n", what, v);
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 4) return fail("usage: creds_syscalls_prog AUTO|URING|POOL read|open N", argc);
  const std::string policy = argv[1], call = argv[2];
  const long n = std::strtol(argv[3], nullptr, 10);
  const uint32_t pol = policy == "URING" ? AIO2_POLICY_URING
                       : policy == "POOL" ? AIO2_POLICY_POOL
                                          : AIO2_POLICY_AUTO;
  char path[] = "/tmp/aio2-creds-syscalls-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return fail("mkstemp", errno);
  std::vector<unsigned char> block(kBlock * kBatch, 0x5a);
  if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()))
    return fail("write", errno);
  if (pread(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()))
    return fail("pread", errno);  // in the page cache now
  aio2_params p{};
  p.size = sizeof p;
  p.policy = pol;
  aio2_ctx *ctx = nullptr;
  if (const int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx); rc < 0) return fail("aio2_setup", rc);
  if (pol == AIO2_POLICY_URING && !(p.features & AIO2_FEAT_URING)) return fail("no io_uring", 0);
  aio2_iocb reqs[kBatch];
  alignas(8) unsigned char evbuf[kBatch * 64];
  for (long done = 0; done < n;) {
    const unsigned k = static_cast<unsigned>(n - done < kBatch ? n - done : kBatch);
    for (unsigned i = 0; i < k; i++) {
      if (call == "open")
        aio2_prep(&reqs[i], SYS_openat, i, static_cast<uint64_t>(AT_FDCWD),
                  reinterpret_cast<uint64_t>(path), O_RDONLY | O_CLOEXEC, 0, 0, 0);
      else
        aio2_prep(&reqs[i], SYS_pread64, i, static_cast<uint64_t>(fd),
                  reinterpret_cast<uint64_t>(block.data() + i * kBlock), kBlock, i * kBlock, 0, 0);
    }
    const ssize_t rc = aio2_submit(ctx, reqs, k * sizeof reqs[0]);
    if (rc != static_cast<ssize_t>(k * sizeof reqs[0])) return fail("aio2_submit", rc);
    for (unsigned got = 0; got < k;) {
      const timespec ts{10, 0};
      const ssize_t len = aio2_getevents(ctx, 1, evbuf, sizeof evbuf, &ts);
      if (len == -EINTR) continue;
      if (len <= 0) return fail("aio2_getevents", len);
      for (const aio2_event *ev = aio2_event_next(evbuf, static_cast<size_t>(len), nullptr); ev;
           ev = aio2_event_next(evbuf, static_cast<size_t>(len), ev), got++) {
        if (call == "open") {
          if (ev->res < 0) return fail("openat", ev->res);
          close(static_cast<int>(ev->res));
        } else if (ev->res != static_cast<int64_t>(kBlock)) {
          return fail("pread64", ev->res);
        }
      }
    }
    done += k;
  }
  aio2_destroy(ctx);
  close(fd);
  unlink(path);
  return 0;
}
