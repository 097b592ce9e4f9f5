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

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

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

// Snapshots shared by the requests that carry them: a request holds a
// pointer to one, not a copy. Almost every program has one set of
// credentials at a time, so the table holds one entry, or a few after
// setuid and its kin; an entry no request holds is reused for the next
// new set, so the table never grows beyond the sets in flight at once.
class creds_table {
 public:
  // An entry equal to `c` with one more holder (a new one when none is),
  // or nullptr when no memory was left for a new entry.
  const creds *hold(const creds &c) noexcept;
  // One more holder of `held`, which the caller holds already.
  static void hold_again(const creds *held) noexcept;
  // One holder less of an entry hold() returned.
  static void drop(const creds *held) noexcept;

 private:
  struct entry {
    creds c;  // first: a creds* of an entry is the entry's address
    // Requests that hold the entry. Raised under mu_ by hold() (or by a
    // holder, hold_again); lowered by drop() without the lock, with
    // release, so that an entry hold() sees at 0 (acquire) is read by no
    // one and may be overwritten.
    std::atomic<uint32_t> holders{0};
  };
  std::mutex mu_;
  std::vector<std::unique_ptr<entry>> entries_;  // guarded by mu_; entries never move
};

}  // namespace aio2::sys
