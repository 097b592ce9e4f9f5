// SPDX-License-Identifier: MIT
// Allocation failures on demand, for tests. Built with AIO2_FAULT_INJECT
// (the CMake option of that name; the AddressSanitizer build turns it on),
// every place in the library that allocates memory, maps pages, creates a
// descriptor or a thread, or sets up io_uring first asks fail(site) and,
// when told to, fails the way that allocation can fail. Disarmed, which is
// the state a process starts in, each question is one relaxed load; without
// the option it is a constant false and compiles away.
//
// Arming (tests only, not part of the ABI, not exported by libaio2.so):
//   aio2_fault_arm(ppm, nth, seed): each call at any site fails with
//     probability ppm per million (a per-thread generator seeded from
//     seed), and the nth call counted from arming fails (0: none);
//   AIO2_FAULT_INJECT=ppm[,nth[,seed]] in the environment arms a process
//     (or a replacement library loaded into it) when the library is loaded.
#pragma once

#include <cstdint>

namespace aio2::fault {

// Every allocation point, by what it allocates.
enum class site : unsigned {
  context_new,        // api.cc: the context object and its handle
  slots_chunk,        // core/slots: a chunk of request slots
  attr_bytes,         // attr/registry: a request's copy of its attribute records
  event_bytes,        // attr/registry: the room for a request's large event
  attr_state,         // attr/registry: per-request attribute state
  attr_handler,       // attr/registry: a user attribute's handler copy
  rest_iov,           // exec/run: the iovecs left after a nowait attempt
  ring_map,           // ring: a ring's pages (mmap, memfd)
  legacy_map,         // core/legacy_queue: the old ABI's ring pages
  uring_setup,        // exec/uring: io_uring_setup
  uring_cancel_tags,  // exec/uring: the tags cancelled one by one
  thread_create,      // exec/pool: a worker; core/legacy_queue: the collector
  eventfd,            // core/context: the context's eventfd
  wake_eventfd,       // core/waiter, core/legacy_queue: the reapers' eventfds
  compat_alloc,       // src/compat: the replacements' own allocations
  compat_thread,      // src/compat: the replacements' own threads
  compat_container,   // src/compat/posix: a standard container about to grow
                      // (std::bad_alloc thrown where the container would)
  count
};

const char *site_name(site s) noexcept;

#ifdef AIO2_FAULT_INJECT
bool fail(site s) noexcept;
#else
constexpr bool fail(site) noexcept { return false; }
#endif

}  // namespace aio2::fault

// The control functions (defined only with AIO2_FAULT_INJECT).
extern "C" {
void aio2_fault_arm(uint32_t ppm, uint64_t nth, uint64_t seed);
// Fails only the nth call at `site` counted from now (nth >= 1).
void aio2_fault_arm_site(unsigned site, uint64_t nth);
void aio2_fault_disarm(void);
// Calls at `site` since arming, and how many of them were failed.
void aio2_fault_counts(unsigned site, uint64_t *calls, uint64_t *failed);
}
