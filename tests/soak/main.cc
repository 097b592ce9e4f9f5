// SPDX-License-Identifier: MIT
// aio2_soak: a long mixed workload with faults, checked for conservation
// (docs/testing.md, "Soak"). Modes: core (aio2's own interface), libaio
// (the libaio replacement, libaio.so.1) and posix (the POSIX AIO
// replacement, libaio2-posix.so), one after the other for "all".
//
//   aio2_soak [--seconds S | --minutes M] [--mode core|libaio|posix|all]
//             [--faults PPM] [--seed N] [--no-uring] [--dir DIR]
//             [--libaio PATH] [--posix PATH]
//
// --faults arms the allocation-failure injector (a library built with
// AIO2_FAULT_INJECT, as the AddressSanitizer build is) at PPM failures per
// million calls at every allocation site; --no-uring installs a seccomp
// filter that refuses io_uring_setup with EPERM before any thread starts.
// Prints each mode's counts; exits 0 when every check passed, 1 otherwise,
// 2 on bad arguments.

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "soak_util.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

namespace {

// io_uring_setup (x86_64 and x32 numbers) fails with EPERM; all else runs.
bool forbid_io_uring() {
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup | __X32_SYSCALL_BIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

int usage(const char *why) {
  std::fprintf(stderr,
               "aio2_soak: %s\nusage: aio2_soak [--seconds S | --minutes M] "
               "[--mode core|libaio|posix|all] [--faults PPM] [--seed N] [--no-uring] "
               "[--dir DIR] [--libaio PATH] [--posix PATH]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  soak::options o;
  o.dir = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
#ifdef AIO2_SOAK_LIBAIO
  o.libaio_path = AIO2_SOAK_LIBAIO;
#endif
#ifdef AIO2_SOAK_POSIX
  o.posix_path = AIO2_SOAK_POSIX;
#endif
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    char *end = nullptr;
    if ((a == "--seconds" || a == "--minutes") && has) {
      const double v = std::strtod(argv[++i], &end);
      if (*end || !(v > 0)) return usage("the duration must be a positive number");
      o.seconds = a == "--minutes" ? v * 60 : v;
    } else if (a == "--mode" && has) {
      o.mode = argv[++i];
      if (o.mode != "core" && o.mode != "libaio" && o.mode != "posix" && o.mode != "all")
        return usage("unknown mode");
    } else if (a == "--faults" && has) {
      const unsigned long v = std::strtoul(argv[++i], &end, 10);
      if (*end || v > 1000000) return usage("--faults takes failures per million, 0 to 1000000");
      o.fault_ppm = static_cast<uint32_t>(v);
    } else if (a == "--seed" && has) {
      o.seed = std::strtoull(argv[++i], &end, 10);
      if (*end) return usage("--seed takes a number");
    } else if (a == "--no-uring") {
      o.no_uring = true;
    } else if (a == "--dir" && has) {
      o.dir = argv[++i];
    } else if (a == "--libaio" && has) {
      o.libaio_path = argv[++i];
    } else if (a == "--posix" && has) {
      o.posix_path = argv[++i];
    } else {
      return usage(("unknown or incomplete argument " + a).c_str());
    }
  }
  // First, before any thread: the filter holds for threads made after it.
  if (o.no_uring && !forbid_io_uring()) {
    std::fprintf(stderr, "aio2_soak: cannot install the seccomp filter: %s\n", std::strerror(errno));
    return 1;
  }
  soak::signal_storm::install_handler();
  std::printf("aio2_soak: mode %s, %.1f s each, faults %u ppm, seed %llu%s\n", o.mode.c_str(),
              o.seconds, o.fault_ppm, static_cast<unsigned long long>(o.seed),
              o.no_uring ? ", io_uring refused by seccomp" : "");
  std::fflush(stdout);
  // The modes run one after the other; each has its own counts.
  if (o.mode == "core" || o.mode == "all") {
    soak::counters c;
    soak::run_core(o, c);
  }
  if ((o.mode == "libaio" || o.mode == "all") && soak::g_failures.load() == 0) {
    soak::counters c;
    soak::run_libaio(o, c);
  }
  if ((o.mode == "posix" || o.mode == "all") && soak::g_failures.load() == 0) {
    soak::counters c;
    soak::run_posix(o, c);
  }
  const uint64_t failures = soak::g_failures.load();
  std::printf("aio2_soak: %llu failures\n", static_cast<unsigned long long>(failures));
  return failures ? 1 : 0;
}
