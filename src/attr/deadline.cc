// SPDX-License-Identifier: MIT
// deadline: a request that has not started by its CLOCK_MONOTONIC deadline
// completes with -ETIME and its system call never runs. Checked in the
// executing thread just before the call, on every path.
#include <cerrno>
#include <cstring>

#include "attr/builtins.h"

namespace aio2::attr {

namespace {

int before(aio2_attr_hook *h) {
  aio2_attr_deadline d;
  std::memcpy(&d, h->payload, sizeof d);
  aio2_attr_deadline_ret r{};
  const uint64_t now = monotonic_ns();
  r.slack_ns = static_cast<int64_t>(d.deadline_ns - now);
  r.expired = now > d.deadline_ns;
  std::memcpy(h->result, &r, sizeof r);
  if (!r.expired) return 0;
  h->res = -ETIME;
  return 1;  // do not run the call
}

}  // namespace

const aio2_attr_handler deadline_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_DEADLINE, 0, sizeof(aio2_attr_deadline),
    sizeof(aio2_attr_deadline), sizeof(aio2_attr_deadline_ret), AIO2_PATH_ALL, "deadline",
    nullptr, before, nullptr, nullptr, nullptr};

}  // namespace aio2::attr
