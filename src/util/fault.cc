// SPDX-License-Identifier: MIT
#include "util/fault.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace aio2::fault {

namespace {

constexpr unsigned kSites = static_cast<unsigned>(site::count);

// The arming. Each word is a value on its own: a hook that reads a stale one
// fails a call more or less, which is all arming promises while requests
// run, so every access is relaxed and pairs with nothing. `g_epoch` changes
// at each arming so that threads reseed their generators.
std::atomic<uint32_t> g_ppm{0};
std::atomic<uint64_t> g_nth{0};
std::atomic<uint64_t> g_seed{0};
std::atomic<uint64_t> g_epoch{0};
std::atomic<bool> g_armed{false};
// The one site aio2_fault_arm_site armed, or kSites for every site
// (relaxed, like the words above).
std::atomic<unsigned> g_site{kSites};
// Calls counted since arming (all sites), to find the nth. Relaxed: a
// counter, nothing is published through it.
std::atomic<uint64_t> g_calls_total{0};
// Per-site counts, read by aio2_fault_counts. Relaxed counters.
std::atomic<uint64_t> g_calls[kSites];
std::atomic<uint64_t> g_failed[kSites];

// Per-thread xorshift64*, reseeded when the arming changes.
thread_local uint64_t t_state = 0;
thread_local uint64_t t_epoch = ~uint64_t{0};
std::atomic<uint64_t> g_thread_no{0};  // relaxed: only makes seeds differ

uint64_t next_random() noexcept {
  const uint64_t epoch = g_epoch.load(std::memory_order_relaxed);
  if (t_epoch != epoch) {
    t_epoch = epoch;
    t_state = g_seed.load(std::memory_order_relaxed) * 0x9e3779b97f4a7c15ull +
              g_thread_no.fetch_add(1, std::memory_order_relaxed) + 1;
    if (t_state == 0) t_state = 1;
  }
  t_state ^= t_state >> 12;
  t_state ^= t_state << 25;
  t_state ^= t_state >> 27;
  return t_state * 0x2545f4914f6cdd1dull;
}

// AIO2_FAULT_INJECT=ppm[,nth[,seed]] or =site:NAME,nth: arms the process
// as it loads the library, for programs that cannot call aio2_fault_arm or
// aio2_fault_arm_site (a replacement library loaded into another program).
struct from_environment {
  from_environment() noexcept {
    const char *v = std::getenv("AIO2_FAULT_INJECT");
    if (v == nullptr || *v == 0) return;
    char *end = nullptr;
    if (std::strncmp(v, "site:", 5) == 0) {
      const char *name = v + 5;
      const char *comma = std::strchr(name, ',');
      if (comma == nullptr) return;
      const unsigned long long nth = std::strtoull(comma + 1, &end, 10);
      for (unsigned i = 0; i < kSites; i++) {
        const char *known = site_name(static_cast<site>(i));
        if (std::strlen(known) == static_cast<size_t>(comma - name) &&
            std::strncmp(known, name, static_cast<size_t>(comma - name)) == 0 && nth >= 1)
          aio2_fault_arm_site(i, nth);
      }
      return;
    }
    const unsigned long ppm = std::strtoul(v, &end, 10);
    unsigned long long nth = 0, seed = 1;
    if (*end == ',') nth = std::strtoull(end + 1, &end, 10);
    if (*end == ',') seed = std::strtoull(end + 1, &end, 10);
    aio2_fault_arm(static_cast<uint32_t>(ppm > 1000000 ? 1000000 : ppm), nth, seed);
  }
};
const from_environment g_from_environment;

}  // namespace

const char *site_name(site s) noexcept {
  static const char *const names[kSites] = {
      "context_new", "slots_chunk",  "attr_bytes",        "event_bytes",
      "attr_state",  "attr_handler", "rest_iov",          "ring_map",
      "legacy_map",  "uring_setup",  "uring_cancel_tags", "thread_create",
      "eventfd",     "wake_eventfd", "compat_alloc",      "compat_thread",
      "compat_container"};
  const auto i = static_cast<unsigned>(s);
  return i < kSites ? names[i] : "?";
}

bool fail(site s) noexcept {
  if (!g_armed.load(std::memory_order_relaxed)) return false;
  const auto i = static_cast<unsigned>(s);
  const uint64_t at_site = g_calls[i].fetch_add(1, std::memory_order_relaxed) + 1;
  const unsigned only = g_site.load(std::memory_order_relaxed);
  if (only != kSites) {
    const bool hit = only == i && at_site == g_nth.load(std::memory_order_relaxed);
    if (hit) g_failed[i].fetch_add(1, std::memory_order_relaxed);
    return hit;
  }
  const uint64_t n = g_calls_total.fetch_add(1, std::memory_order_relaxed) + 1;
  const uint64_t nth = g_nth.load(std::memory_order_relaxed);
  const uint32_t ppm = g_ppm.load(std::memory_order_relaxed);
  const bool failing = n == nth || (ppm != 0 && next_random() % 1000000 < ppm);
  if (failing) g_failed[i].fetch_add(1, std::memory_order_relaxed);
  return failing;
}

}  // namespace aio2::fault

using namespace aio2::fault;

extern "C" void aio2_fault_arm(uint32_t ppm, uint64_t nth, uint64_t seed) {
  for (unsigned i = 0; i < kSites; i++) {
    g_calls[i].store(0, std::memory_order_relaxed);
    g_failed[i].store(0, std::memory_order_relaxed);
  }
  g_calls_total.store(0, std::memory_order_relaxed);
  g_site.store(kSites, std::memory_order_relaxed);
  g_ppm.store(ppm, std::memory_order_relaxed);
  g_nth.store(nth, std::memory_order_relaxed);
  g_seed.store(seed, std::memory_order_relaxed);
  g_epoch.fetch_add(1, std::memory_order_relaxed);
  g_armed.store(ppm != 0 || nth != 0, std::memory_order_relaxed);
}

extern "C" void aio2_fault_arm_site(unsigned s, uint64_t nth) {
  aio2_fault_arm(0, nth, 0);
  g_site.store(s < kSites ? s : kSites, std::memory_order_relaxed);
  g_armed.store(s < kSites && nth != 0, std::memory_order_relaxed);
}

extern "C" void aio2_fault_disarm(void) { g_armed.store(false, std::memory_order_relaxed); }

extern "C" void aio2_fault_counts(unsigned s, uint64_t *calls, uint64_t *failed) {
  const bool ok = s < kSites;
  if (calls) *calls = ok ? g_calls[s].load(std::memory_order_relaxed) : 0;
  if (failed) *failed = ok ? g_failed[s].load(std::memory_order_relaxed) : 0;
}
