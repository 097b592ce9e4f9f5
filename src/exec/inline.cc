// SPDX-License-Identifier: MIT
#include "exec/inline.h"

#include "exec/run.h"

namespace aio2::exec {

void inline_executor::submit(request *const *reqs, size_t n) noexcept {
  for (size_t i = 0; i < n; i++) {
    run_here(reqs[i], 0);
    sink_.complete(reqs[i]);
  }
}

}  // namespace aio2::exec
