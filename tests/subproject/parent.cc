// SPDX-License-Identifier: MIT
// A program of a project that builds aio2 with add_subdirectory: one context,
// one getppid run through aio2_call, the result checked.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "aio2/aio2.h"

int main() {
  aio2_params p{};
  p.size = sizeof p;
  aio2_ctx *ctx = nullptr;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &ctx) != 0) {
    std::fprintf(stderr, "parent: aio2_setup failed\n");
    return 1;
  }
  alignas(8) unsigned char req[64];
  alignas(8) unsigned char ev[256];
  auto *io = reinterpret_cast<aio2_iocb *>(req);
  aio2_prep(io, SYS_getppid, 1, 0, 0, 0, 0, 0, 0);
  const ssize_t n = aio2_call(ctx, io, ev, sizeof ev);
  const auto *e = reinterpret_cast<const aio2_event *>(ev);
  const bool ok = n > 0 && e->res == getppid();
  aio2_destroy(ctx);
  if (!ok) std::fprintf(stderr, "parent: aio2_call(getppid) returned %zd\n", n);
  return ok ? 0 : 1;
}
