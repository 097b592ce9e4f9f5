// SPDX-License-Identifier: MIT
// executor: which path ran the request, which worker, and the CPU and NUMA
// node it started on (getcpu(3), just before the call).
#include <sched.h>

#include <cstring>

#include "attr/builtins.h"

namespace aio2::attr {

namespace {

int before(aio2_attr_hook *h) {
  aio2_attr_executor e{};
  e.path = h->path;
  e.worker = h->worker;
  unsigned cpu = 0, node = 0;
  // glibc's getcpu() reads the kernel's per-thread rseq area or the vDSO: no
  // kernel entry, unlike syscall(SYS_getcpu) (about 4 ns against 200).
  if (getcpu(&cpu, &node) == 0) {
    e.cpu = cpu;
    e.node = node;
  } else {
    h->status = AIO2_ATTR_ERROR;
  }
  std::memcpy(h->result, &e, sizeof e);
  return 0;
}

}  // namespace

const aio2_attr_handler executor_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_EXECUTOR, 0, 0, 0, sizeof(aio2_attr_executor),
    AIO2_PATH_ALL, "executor", nullptr, before, nullptr, not_applicable_unless_started, nullptr};

}  // namespace aio2::attr
