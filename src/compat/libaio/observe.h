// SPDX-License-Identifier: MIT
// Observation of the libaio replacement's contexts (AIO2_TRACE=FILE): each
// observed context is set up with AIO2_SETUP_LEGACY_OBSERVE, so every
// completion's aio2 event, with its timing, cache and executor results,
// also goes to the context's aio2 ring. One observer thread per process
// reads those rings from user memory and writes a trace record per event
// (compat/trace_file.h).
//
// The event names its request by the iocb's address only, and a program may
// rewrite or free an iocb as soon as it has its io_event, so io_submit
// copies what a record needs (opcode, descriptor, offset, length) into a
// table of the context, keyed by the iocb's address and stamped with the
// submission's time; the observer takes the entry back with the event (the
// latest entry for that address submitted no later than the event says).
#pragma once

#include <linux/aio_abi.h>

#include <cstdint>

#include "aio2/aio2.h"

namespace aio2_libaio {

struct observed;

// At io_setup: whether new contexts are observed (AIO2_TRACE, read on the
// first call). When they are, adds AIO2_SETUP_LEGACY_OBSERVE and the aio2
// ring's size to `p`.
bool observe_prepare(aio2_params &p) noexcept;

// After aio2_setup succeeded with the parameters observe_prepare made:
// starts observing `ctx` (and the observer thread, the first time).
// nullptr when it cannot (a line on standard error says so); the context
// then runs unobserved.
observed *observe_attach(aio2_ctx *ctx, const aio2_params &p, uint32_t max_events) noexcept;

// io_submit of an observed context: before_submit records the iocbs that
// aio2_legacy_submit may accept and returns the submission's stamp;
// after_submit forgets those it did not accept (`rc` is its result).
uint64_t observe_before_submit(observed *o, long nr, struct iocb **ios) noexcept;
void observe_after_submit(observed *o, long nr, struct iocb **ios, long rc,
                          uint64_t stamp) noexcept;

// io_destroy, before aio2_destroy: records what is left (requests still in
// flight are cancelled and waited for, a short while), writes the context's
// end record, flushes the trace and frees `o`.
void observe_detach(observed *o) noexcept;

}  // namespace aio2_libaio
