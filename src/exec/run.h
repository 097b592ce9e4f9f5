// SPDX-License-Identifier: MIT
// Running one request in this thread, between its attribute hooks: the
// steps every executor shares, so that each path orders them alike:
//   begin (before hooks) -> the call -> finish (combine a nowait-first
//   read, after hooks).
#pragma once

#include <cerrno>
#include <cstdint>

#include "exec/request.h"

namespace aio2::exec {

// Runs the before hooks. Returns false when a hook completed the request
// without the call (a deadline passed, say): finish() has then run too.
bool begin(request *r, uint32_t worker) noexcept;

// Ends a request whose call (or the rest of a nowait-first read) returned
// `res`: combines a nowait-first read, sets r->res and r->event_flags, runs
// the after hooks.
void finish(request *r, int64_t res, uint32_t worker) noexcept;

// Ends a request that never ran (or whose rest never ran) with `res` and
// `event_flags`, or, for a nowait-first read, with the bytes its attempt
// already read. No after hooks run.
void end_unrun(request *r, int64_t res, uint32_t event_flags) noexcept;

// end_unrun with -ECANCELED and AIO2_EVENT_CANCELED.
inline void cancelled(request *r) noexcept {
  end_unrun(r, -ECANCELED, AIO2_EVENT_CANCELED);
}

// Runs the request here: the whole call between begin and finish, or only
// the rest of a nowait-first read (its before hooks already ran), unless
// cancellation asked first.
void run_here(request *r, uint32_t worker) noexcept;

// The nowait-first attempt in this thread (plan attempt::submitter): before
// hooks, then the read with RWF_NOWAIT. Returns true when that finished the
// request (finish() ran); false when the rest must run on plan.path.
// `made`: the caller already made the read with RWF_NOWAIT, which returned
// *made (a request without attributes: no hook had to run before it).
bool attempt_here(request *r, const int64_t *made = nullptr) noexcept;

}  // namespace aio2::exec
