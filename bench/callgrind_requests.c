// SPDX-License-Identifier: MIT
// Instructions per request, for callgrind: 20000 requests (or the
// environment's AIO2_N) at QD 32 (or AIO2_QD, 1 to 32) through
// one context (policy AUTO, or POOL or URING with a second argument "pool"
// or "uring"; with a third, "restrict", under an allowlist of the two
// calls; with a fourth, "attrs", each request carries the timing and cache
// attributes): cached 4 KiB pread64s of a 1 MiB file, or getppid. bench/callgrind_requests.sh
// builds it against a tree's libaio2.a and runs it under callgrind.
#define _GNU_SOURCE
#include "callgrind_common.h"
#include <aio2/aio2.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
/* N requests (AIO2_N) at QD 32 (or AIO2_QD) through one context: cached 4 KiB preads, or getppid. */
int main(int argc, char **argv) {
  const int getppid_mode = argc > 1 && strcmp(argv[1], "getppid") == 0;
  struct ir_run run;
  if (ir_setup(&run) != 0) return 1;
  const int n = run.n, qd = run.qd, fd = run.fd;
  aio2_ctx *c; struct aio2_params p; memset(&p, 0, sizeof p); p.size = sizeof p;
  if (argc > 2 && strcmp(argv[2], "pool") == 0) p.policy = AIO2_POLICY_POOL;
  if (argc > 2 && strcmp(argv[2], "uring") == 0) p.policy = AIO2_POLICY_URING;
  const int attrs = argc > 4 && strcmp(argv[4], "attrs") == 0;
  if (aio2_setup(AIO2_ABI_VERSION, &p, &c)) return 1;
#ifdef AIO2_FEAT_RESTRICT
  /* A third argument "restrict": the context's allowlist holds the two calls. */
  if (argc > 3 && strcmp(argv[3], "restrict") == 0) {
    const struct aio2_restriction allow[] = {{AIO2_RESTRICT_SYSCALL, 0, SYS_pread64},
                                             {AIO2_RESTRICT_SYSCALL, 0, SYS_getppid}};
    if (aio2_restrict(c, allow, 2)) return 1;
  }
#endif
  /* Each request in a slot of its own, room for two attributes. */
  enum { kSlot = 256 };
  _Alignas(8) static unsigned char reqs[32 * kSlot]; static char bufs[32][4096];
  _Alignas(8) static unsigned char evs[32 * 256];
  int done = 0, sent = 0;
  while (done < n) {
    int k = 0;
    size_t bytes = 0;
    while (sent - done + k < qd && sent + k < n) {
      struct aio2_iocb *io = (struct aio2_iocb *)(reqs + bytes);
      if (getppid_mode) aio2_prep(io, SYS_getppid, 1, 0, 0, 0, 0, 0, 0);
      else aio2_prep(io, SYS_pread64, 1, fd, (unsigned long)bufs[k], 4096, (unsigned long)((sent + k) % 256) * 4096, 0, 0);
      if (attrs && (!aio2_attr_add(io, kSlot, AIO2_ATTR_TIMING, 0, NULL, 0) ||
                    !aio2_attr_add(io, kSlot, AIO2_ATTR_CACHE, 0, NULL, 0))) return 3;
      bytes += io->len;
      k++;
    }
    if (k) { if (aio2_submit(c, reqs, bytes) != (ssize_t)bytes) return 2; sent += k; }
    ssize_t b = aio2_getevents(c, 1, evs, sizeof evs, NULL);
    if (b < 0) return 4;
    for (const struct aio2_event *e = aio2_event_next(evs, (size_t)b, NULL); e; e = aio2_event_next(evs, (size_t)b, e)) {
      if (e->res < 0 || (!getppid_mode && e->res != 4096)) return 5;  /* a failed request is no work */
      done++;
    }
  }
  aio2_destroy(c); printf("%d\n", done); return 0;
}
