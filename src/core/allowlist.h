// SPDX-License-Identifier: MIT
// A context's allowlist (aio2_restrict): the system calls and attribute ids
// its requests may use, fixed once. It is built from the caller's entries
// and then only read, so checking a request is two bit tests per system
// call and one per attribute, with no lock. Nothing here knows about
// contexts: the functions are pure, so that a fuzz target can feed them
// arbitrary bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "aio2/abi.h"

namespace aio2::core {

class allowlist {
 public:
  // Bits of the system call numbers an allowlist can name (x86_64 numbers
  // are below 512; a larger one is refused by build()).
  static constexpr uint32_t kSyscalls = 1024;
  static constexpr uint32_t kAttrs = 65536;

  // Fills the allowlist from `n` entries. Returns 0, or -EINVAL for an
  // unknown kind, a non-zero reserved field, a system call number that is
  // not one of this architecture's, or an attribute id above 0xffff; the
  // allowlist is then empty (it allows nothing).
  int build(const aio2_restriction *r, size_t n) noexcept;

  bool syscall_allowed(uint64_t nr) const noexcept {
    return nr < kSyscalls && (sys_[nr / 64] >> (nr % 64) & 1u) != 0;
  }
  bool attr_allowed(uint32_t id) const noexcept {
    return id < kAttrs && (attrs_[id / 64] >> (id % 64) & 1u) != 0;
  }

  // Whether a request may run: its system call `nr` and every attribute id
  // among the `attr_bytes` bytes of attribute records at `attrs` are
  // allowed. 0 or -EPERM; -EINVAL when the records are malformed (a record
  // shorter than its header, not a multiple of 8, or running past the end),
  // which parsing has refused before on the submission path.
  int check(uint64_t nr, const unsigned char *attrs, size_t attr_bytes) const noexcept;

 private:
  uint64_t sys_[kSyscalls / 64] = {};
  uint64_t attrs_[kAttrs / 64] = {};
};

// The pure function over bytes, for fuzzing: `rbytes` bytes at `restrictions`
// (back-to-back struct aio2_restriction, the tail shorter than one ignored)
// build an allowlist, and the `len` bytes at `req` are one request (struct
// aio2_iocb then attribute records, as aio2_submit takes them; `len` bounds
// what is read, whatever the request's own len says). Returns 0 (the
// request would be admitted), -EPERM (refused by the allowlist), or -EINVAL
// (the entries or the request are malformed).
int allowlist_check_bytes(const void *restrictions, size_t rbytes, const void *req,
                          size_t len) noexcept;

}  // namespace aio2::core
