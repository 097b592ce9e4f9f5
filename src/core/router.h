// SPDX-License-Identifier: MIT
// The router: where a parsed request runs. A pure function of the request,
// the facts of the descriptors it names, and the context's policy and
// capabilities; it runs nothing and changes nothing. Every routing rule is
// here, and tests/router_test.cc checks each one against a table.
//
// The rules, in order (docs/design.md, "Paths"):
//   - The request's policy (AIO2_IOCB_POLICY, else the context's): POOL and
//     INLINE are taken as asked; URING takes io_uring when it answers like
//     the call, else the pool.
//   - AUTO takes the cheapest path on which every attribute of the request
//     can be honoured: inline for calls that cannot block (by nature, or by
//     O_NONBLOCK on descriptors that are not files or block devices, or a preadv2
//     with RWF_NOWAIT); a nowait-first read starting in the submitting
//     thread where the context plans those (no io_uring, or a small call
//     whose reads hit: core/nowait_adapt.h); io_uring when it
//     answers like the call; else the pool.
//   - io_uring answers like the call except: on O_NONBLOCK descriptors where
//     the call honours the flag; for positioned calls on descriptors without
//     an offset (pipes, sockets: -ESPIPE); for reads and writes of a regular
//     file at its position (io_uring skips the position lock); for stream
//     writes to pipes and sockets (io_uring writes what fits); for opens
//     that could wait on a FIFO.
//   - On io_uring, a read that carries an attribute measuring its RWF_NOWAIT
//     attempt is a nowait-first read made by io_uring itself.
//   - On the pool, a call that may wait for ever goes to an unbounded
//     worker.
#pragma once

#include <cstdint>

#include "core/parse.h"
#include "exec/request.h"
#include "sys/fd_facts.h"

namespace aio2::core {

// What the router knows of the context.
struct router_env {
  uint32_t policy = AIO2_POLICY_AUTO;  // the context's AIO2_POLICY_*
  // AUTO may plan nowait-first reads that start in the submitting thread.
  // A RING context does so without io_uring, and with it for the calls
  // core/nowait_adapt.h chooses (small calls while reads hit: where
  // io_uring runs a batch of reads, it tries them without blocking inside
  // io_uring_enter, docs/design.md). A LEGACY context does so always: a
  // cached read that completes in the caller costs no io_uring completion
  // for its collector thread to harvest.
  bool nowait_in_submitter = false;
  // Whether io_uring runs `nr` with `args` as the call would, writing its
  // submission entry into `sqe` (64 bytes) when it does. nullptr: no
  // io_uring.
  bool (*uring_translate)(const void *uring, uint32_t nr, const uint64_t *args,
                          void *sqe) = nullptr;
  const void *uring = nullptr;
};

// The plan for `pr`. Descriptor facts come from `fds`. When the plan's path
// is io_uring, `sqe` holds the translated entry.
exec::plan route(const parsed_request &pr, sys::fd_lookup &fds, const router_env &env,
                 void *sqe) noexcept;

}  // namespace aio2::core
