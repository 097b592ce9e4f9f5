// SPDX-License-Identifier: MIT
// rusage: what the executing thread used during the call, as the difference
// of getrusage(RUSAGE_THREAD) just before and just after it. The result
// buffer holds the "before" counters until the after hook replaces them with
// the differences, so the result is exactly struct aio2_attr_rusage.
//
// The window runs from this attribute's before hook to its after hook, so it
// also covers the hooks of the attributes that follow it in the request
// (before hooks run in request order, after hooks in reverse): put rusage
// first to measure everything the thread did for the request, or last to
// measure the system call alone.
//
// Honoured where the call has a thread of its own: the pool and aio2_call.
// A request cancelled before it ran was measured by no thread:
// NOT_APPLICABLE. A request whose call a hook skipped (an expired deadline)
// reports what its hooks used, which is next to nothing.
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "attr/builtins.h"

namespace aio2::attr {

namespace {

bool sample(aio2_attr_rusage *out) noexcept {
  rusage u{};
  if (getrusage(RUSAGE_THREAD, &u) != 0) return false;
  out->minflt = static_cast<uint64_t>(u.ru_minflt);
  out->majflt = static_cast<uint64_t>(u.ru_majflt);
  out->nvcsw = static_cast<uint64_t>(u.ru_nvcsw);
  out->nivcsw = static_cast<uint64_t>(u.ru_nivcsw);
  out->inblock = static_cast<uint64_t>(u.ru_inblock);
  out->oublock = static_cast<uint64_t>(u.ru_oublock);
  return true;
}

int before(aio2_attr_hook *h) {
  aio2_attr_rusage r{};
  if (!sample(&r)) h->status = AIO2_ATTR_ERROR;
  std::memcpy(h->result, &r, sizeof r);
  return 0;
}

void after(aio2_attr_hook *h) {
  aio2_attr_rusage was, now{};
  std::memcpy(&was, h->result, sizeof was);
  if (!sample(&now)) {
    h->status = AIO2_ATTR_ERROR;
    return;
  }
  // The counters only grow, on the thread that read them both.
  now.minflt -= was.minflt;
  now.majflt -= was.majflt;
  now.nvcsw -= was.nvcsw;
  now.nivcsw -= was.nivcsw;
  now.inblock -= was.inblock;
  now.oublock -= was.oublock;
  std::memcpy(h->result, &now, sizeof now);
}


}  // namespace

const aio2_attr_handler rusage_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_RUSAGE, AIO2_ATTR_HANDLER_THREAD, 0, 0,
    sizeof(aio2_attr_rusage), AIO2_PATH_POOL | AIO2_PATH_CALL | AIO2_PATH_INLINE, "rusage", nullptr, before, after, not_applicable_unless_started, nullptr};

}  // namespace aio2::attr
