// SPDX-License-Identifier: MIT
// The inline executor: runs requests in the submitting thread, inside
// aio2_submit, for calls that cannot block (and for every call under
// AIO2_POLICY_INLINE). It is the cheapest path: no hand-off, no wake-up.
// Requests complete before submit() returns, so there is nothing to cancel
// and nothing to wait for at shutdown. The RWF_NOWAIT attempt of a
// nowait-first read that starts in the submitter is exec::attempt_here
// (exec/run.h), which the context calls before it hands the rest on.
#pragma once

#include "exec/executor.h"

namespace aio2::exec {

class inline_executor final : public executor {
 public:
  explicit inline_executor(completion_sink &sink) noexcept : sink_(sink) {}

  // Runs each request now and hands it to the sink; wakes nobody (the
  // caller ends its batch with sink.batch_done()).
  void submit(request *const *reqs, size_t n) noexcept override;
  cancel_result cancel(uint64_t) noexcept override { return cancel_result::not_found; }
  void shutdown() noexcept override {}

 private:
  completion_sink &sink_;
};

}  // namespace aio2::exec
