// SPDX-License-Identifier: MIT
// Where AUTO makes a read's RWF_NOWAIT attempt on a context with io_uring:
// in the submitting thread, or inside io_uring. What it learns decides it,
// per context and cheaply:
//   - whether reads attempted in the submitter were served by the page
//     cache (a score, moved by each outcome);
//   - the size of the aio2_submit call.
// A call of at most kSmallCall requests whose reads mostly hit makes them
// here: a read the cache serves then costs one preadv2 and no io_uring
// round trip, and its event is in the ring when aio2_submit returns. A
// larger call goes to io_uring, whose one io_uring_enter serves the whole
// batch. While reads mostly miss (each miss here is a wasted preadv2), one
// small call in kProbeEvery still makes its attempts here, so that the
// score follows a file that becomes cached. Nothing runs twice: a read
// whose attempt here found nothing goes to io_uring with the whole call,
// as any other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace aio2::core {

class nowait_adapt {
 public:
  static constexpr size_t kSmallCall = 4;
  static constexpr uint32_t kProbeEvery = 16;
  static constexpr uint32_t kScoreMax = 1024;
  static constexpr uint32_t kHitsLikely = kScoreMax / 2;

  // Whether a call of `requests` requests makes its reads' attempts in the
  // submitter.
  bool here(size_t requests) noexcept {
    if (requests > kSmallCall) return false;
    if (score_.load(std::memory_order_relaxed) >= kHitsLikely) return true;
    return probe_.fetch_add(1, std::memory_order_relaxed) % kProbeEvery == 0;
  }
  // An attempt here was served whole (`hit`) or not: the score moves an
  // eighth of the way toward kScoreMax or toward 0.
  void outcome(bool hit) noexcept {
    const uint32_t s = score_.load(std::memory_order_relaxed);
    score_.store(hit ? s + (kScoreMax - s + 7) / 8 : s - (s + 7) / 8, std::memory_order_relaxed);
  }
  uint32_t score() const noexcept { return score_.load(std::memory_order_relaxed); }

 private:
  // Relaxed, and a plain load and store: a hint that threads may update at
  // once and lose an update of; nothing is published through it.
  std::atomic<uint32_t> score_{kScoreMax};
  // Calls counted for probing. Relaxed: a counter.
  std::atomic<uint32_t> probe_{0};
};

}  // namespace aio2::core
