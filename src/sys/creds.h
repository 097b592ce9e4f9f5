// SPDX-License-Identifier: MIT
// A thread's credentials, as the kernel checks them: real, effective, saved
// and file-system user and group IDs, the supplementary groups and the
// capability sets. Linux keeps them per thread: the C library's setuid()
// and its kin change every thread of the process (glibc signals each one),
// but the raw system calls, setfsuid() and capset() change only the
// calling thread. A request that runs in another thread than the one that
// submitted it carries a snapshot of its submitter's, and the executing
// thread compares (exec/pool), so that it never runs with other
// credentials than its submitter had when it submitted it.
#pragma once

#include <cstdint>

namespace aio2::sys {

struct creds {
  uint32_t uid[4] = {};  // real, effective, saved, file system
  uint32_t gid[4] = {};  // the same
  uint32_t cap[6] = {};  // effective, permitted, inheritable: two 32-bit words each
  uint32_t ngroups = 0;  // supplementary groups
  uint32_t reserved = 0;  // zero: the struct has no padding, compared bytewise
  // FNV-1a over the group list, in the kernel's order: two different lists
  // of one length compare equal only by a 64-bit collision, and only a
  // process with CAP_SETGID, which may set any list anyway, chooses them.
  uint64_t groups_hash = 0;
};

// The calling thread's credentials (six system calls). Returns 0, or -errno
// when one of them fails (it does not for a live thread).
int thread_creds(creds *out) noexcept;

bool same_creds(const creds &a, const creds &b) noexcept;

}  // namespace aio2::sys
