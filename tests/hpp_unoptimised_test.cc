// SPDX-License-Identifier: MIT
// aio2.hpp's classes built without optimisation, so that nothing of them is
// inlined away, against the static library: the public aio2::context and
// the library's own types must not share a name (one definition rule), or
// the program would call the library's destructor on the wrapper.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "aio2/aio2.hpp"

int main() {
  int failures = 0;
  for (int i = 0; i < 3; i++) {
    aio2::context ctx;
    alignas(8) unsigned char ev[256];
    aio2_iocb req;
    aio2_prep(&req, SYS_getppid, 7, 0, 0, 0, 0, 0, 0);
    const ssize_t n = aio2_call(ctx.native_handle(), &req, ev, sizeof ev);
    const auto *e = reinterpret_cast<const aio2_event *>(ev);
    if (n <= 0 || e->res != getppid() || e->user_data != 7) failures++;
  }
  std::printf("%s\n", failures ? "FAIL" : "ok");
  return failures ? 1 : 0;
}
