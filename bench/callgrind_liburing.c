// SPDX-License-Identifier: MIT
// The baseline of bench/callgrind_requests.c: the same cached 4 KiB
// pread64s of a 1 MiB file (20000, or the environment's AIO2_N, at QD 32
// or AIO2_QD), on raw liburing with its default setup, submitting what the
// queue has room for and reaping every completion there is after waiting
// for one, so that callgrind counts the user-space instructions io_uring
// itself asks for per request.
#define _GNU_SOURCE
#include "callgrind_common.h"
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
  struct ir_run run;
  if (ir_setup(&run) != 0) return 1;
  const int n = run.n, qd = run.qd, fd = run.fd;
  struct io_uring ring;
  if (io_uring_queue_init(64, &ring, 0) != 0) return 1;
  static char bufs[32][4096];
  int done = 0, sent = 0;
  while (done < n) {
    int k = 0;
    while (sent - done + k < qd && sent + k < n) {
      struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
      io_uring_prep_read(sqe, fd, bufs[k], 4096, (unsigned long)((sent + k) % 256) * 4096);
      k++;
    }
    if (k) { if (io_uring_submit(&ring) != k) return 2; sent += k; }
    struct io_uring_cqe *cqe;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) return 3;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      if (cqe->res != 4096) return 4;  /* every read is whole, or the count means nothing */
      seen++;
    }
    io_uring_cq_advance(&ring, seen);
    done += (int)seen;
  }
  io_uring_queue_exit(&ring); printf("%d\n", done); return 0;
}
