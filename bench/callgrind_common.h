// SPDX-License-Identifier: MIT
// What bench/callgrind_requests.c and its liburing baseline share: how many
// requests to run and at what depth, from the environment (AIO2_N, default
// 20000; AIO2_QD, 1 to 32, default 32), and the 1 MiB file they read.
#pragma once
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ir_run {
  int n, qd, fd;
};

/* Reads the counts and makes the file; 0, or -1 when the file cannot be made. */
static inline int ir_setup(struct ir_run *run) {
  const char *n_env = getenv("AIO2_N"), *qd_env = getenv("AIO2_QD");
  static char blk[1 << 20];
  run->n = n_env && atoi(n_env) > 0 ? atoi(n_env) : 20000;
  run->qd = qd_env && atoi(qd_env) >= 1 && atoi(qd_env) <= 32 ? atoi(qd_env) : 32;
  run->fd = open("ir-file.tmp", O_RDWR | O_CREAT, 0600);
  if (run->fd < 0) return -1;
  memset(blk, 7, sizeof blk);
  return pwrite(run->fd, blk, sizeof blk, 0) == (ssize_t)sizeof blk ? 0 : -1;
}
