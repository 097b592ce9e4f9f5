// SPDX-License-Identifier: MIT
// timing: CLOCK_MONOTONIC timestamps at submit, start, finish and post, so
// queueing time (started - submitted) and service time (finished - started)
// come back separately. Honoured on every path. The requests of one submit
// call share its submit stamp, and on io_uring those of one batch of entries
// their start stamp (docs/attributes.md).
#include <cstring>

#include "attr/builtins.h"

namespace aio2::attr {

namespace {

// Stores `ns` into the timestamp at `offset` of the result.
void stamp(aio2_attr_hook *h, size_t offset, uint64_t ns = monotonic_ns()) {
  std::memcpy(static_cast<unsigned char *>(h->result) + offset, &ns, sizeof ns);
}

// The requests of one submit call share one reading (submit_ns): the
// caller handed them over together.
int on_submit(aio2_attr_hook *h) {
  stamp(h, offsetof(aio2_attr_timing, submitted_ns), submit_ns());
  return 0;
}

// On io_uring, the entries queued together share one reading (start_ns).
int before(aio2_attr_hook *h) {
  stamp(h, offsetof(aio2_attr_timing, started_ns), start_ns());
  return 0;
}

void after(aio2_attr_hook *h) { stamp(h, offsetof(aio2_attr_timing, finished_ns)); }

void on_post(aio2_attr_hook *h) { stamp(h, offsetof(aio2_attr_timing, posted_ns)); }

}  // namespace

const aio2_attr_handler timing_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_TIMING, 0, 0, 0, sizeof(aio2_attr_timing),
    AIO2_PATH_ALL, "timing", on_submit, before, after, on_post, nullptr};

}  // namespace aio2::attr
