// SPDX-License-Identifier: MIT
// The producing half of the two-process test: maps the ring from an inherited
// memfd and produces stamped records into it.
//   ring_child FD PRODUCER_ID COUNT SPREAD
// Exit 0 when all records were pushed, 2 on bad arguments, 3 when the ring
// does not validate, 4 on a push error.

#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "aio2/ring.h"
#include "stamp.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: ring_child FD PRODUCER_ID COUNT SPREAD\n");
    return 2;
  }
  const int fd = std::atoi(argv[1]);
  const auto id = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10));
  const uint64_t count = std::strtoull(argv[3], nullptr, 10);
  const auto spread = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
  aio2_ring *r = nullptr;
  const int err = aio2_ring_map_fd(fd, &r);
  if (err) {
    std::fprintf(stderr, "ring_child: %s\n", aio2_ring_strerror(err));
    return 3;
  }
  unsigned char payload[8 * 1024];
  for (uint64_t seq = 0; seq < count; seq++) {
    const uint32_t len = aio2_test::stamp_len(id, seq, spread);
    aio2_test::stamp_fill(payload, len, id, seq);
    int rc;
    while ((rc = aio2_ring_push(r, aio2_test::stamp_flags(id, seq), payload, len)) == -EAGAIN)
      sched_yield();
    if (rc) {
      std::fprintf(stderr, "ring_child: push: %s\n", aio2_ring_strerror(rc));
      return 4;
    }
  }
  aio2_ring_unmap(r);
  return 0;
}
