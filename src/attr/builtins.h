// SPDX-License-Identifier: MIT
// The built-in attribute handlers, one file each (src/attr/<name>.cc).
#pragma once

#include "aio2/aio2.h"

namespace aio2::attr {

extern const aio2_attr_handler timing_handler;
extern const aio2_attr_handler tag_handler;
extern const aio2_attr_handler deadline_handler;
extern const aio2_attr_handler executor_handler;
extern const aio2_attr_handler cache_handler;
extern const aio2_attr_handler ioprio_handler;
extern const aio2_attr_handler rusage_handler;

// An on_post hook for attributes that only mean something once the call
// reached them: NOT_APPLICABLE when their before turn never came.
void not_applicable_unless_started(aio2_attr_hook *h) noexcept;

// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t monotonic_ns() noexcept;
// CLOCK_MONOTONIC when the submit call that carries the request began
// handing its requests over: inside a one_shared_reading(submit) scope
// (registry.h), the scope's one reading, taken at its first use; elsewhere,
// now.
uint64_t submit_ns() noexcept;
// CLOCK_MONOTONIC when the request started: inside a
// one_shared_reading(queue) scope (a batch of io_uring entries), the
// scope's one reading, taken at its first use; elsewhere, now.
uint64_t start_ns() noexcept;

}  // namespace aio2::attr
