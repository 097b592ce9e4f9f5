// SPDX-License-Identifier: MIT
//
// pool_bench - aio2's system-call thread pool next to glibc POSIX AIO,
// libuv's thread pool and plain synchronous calls: `aio2 bench` with these
// engines and workloads chosen, the same thread count in every pool, queue
// depth 32.
//
//   pool_bench [OPTIONS]  =  aio2 bench --engines aio2_pool,posix_aio,libuv,sync
//                               --workloads cached_randread_qd32,syscall_getppid
//                               [OPTIONS]
//
// No liburing row (so it runs where io_uring is disabled): the vs_liburing
// column stays empty. Any option of `aio2 bench` may follow (see
// `aio2 bench --help` and docs/bench.md; later options win, so --engines and
// --workloads replace the choice above), e.g. --duration, --warmup, --reps,
// --workers, --json, --aio2-no-hint, --posix-aio-dup-fds and --dir. The
// engines, the harness and the reports live in bench/engines/.

#include <string>
#include <vector>

#include "engines/bench_main.h"

int main(int argc, char **argv) {
  std::vector<std::string> args = {"pool_bench", "--engines", "aio2_pool,posix_aio,libuv,sync",
                                   "--workloads", "cached_randread_qd32,syscall_getppid"};
  for (int i = 1; i < argc; i++) args.emplace_back(argv[i]);
  std::vector<char *> av;
  for (std::string &a : args) av.push_back(a.data());
  av.push_back(nullptr);
  return aio2_tool::bench_main("pool_bench", static_cast<int>(args.size()), av.data());
}
