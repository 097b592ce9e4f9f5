// SPDX-License-Identifier: MIT
#include "sys/creds.h"

#include <linux/capability.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>

#include "sys/raw_syscall.h"

namespace aio2::sys {

namespace {

int64_t call(long nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0) noexcept {
  const uint64_t a[6] = {a0, a1, a2, 0, 0, 0};
  return raw_syscall(nr, a);
}

uint64_t addr(const void *p) noexcept { return reinterpret_cast<uint64_t>(p); }

}  // namespace

int thread_creds(creds *out) noexcept {
  creds c;
  int64_t rc = call(SYS_getresuid, addr(&c.uid[0]), addr(&c.uid[1]), addr(&c.uid[2]));
  if (rc == 0) rc = call(SYS_getresgid, addr(&c.gid[0]), addr(&c.gid[1]), addr(&c.gid[2]));
  if (rc != 0) return static_cast<int>(rc);
  // setfsuid and setfsgid return the current value; -1 is no ID, so nothing
  // changes.
  c.uid[3] = static_cast<uint32_t>(call(SYS_setfsuid, static_cast<uint32_t>(-1)));
  c.gid[3] = static_cast<uint32_t>(call(SYS_setfsgid, static_cast<uint32_t>(-1)));
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if ((rc = call(SYS_capget, addr(&hdr), addr(data))) != 0) return static_cast<int>(rc);
  for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
    c.cap[i] = data[i].effective;
    c.cap[2 + i] = data[i].permitted;
    c.cap[4 + i] = data[i].inheritable;
  }
  // The usual few groups fit on the stack; more (up to NGROUPS_MAX, 65536)
  // are read into the heap. Another thread's setgroups() (the C library's
  // changes every thread) can change the count between two calls: the
  // second then fails with -EINVAL and both are made again.
  uint32_t small[64];
  const uint32_t *list = small;
  std::unique_ptr<uint32_t[]> many;
  int64_t count = call(SYS_getgroups, std::size(small), addr(small));
  for (int tries = 0; count == -EINVAL && tries < 8; tries++) {
    const int64_t total = call(SYS_getgroups, 0, 0);
    if (total < 0) return static_cast<int>(total);
    many.reset(new (std::nothrow) uint32_t[static_cast<size_t>(total) + 1]);
    if (!many) return -ENOMEM;
    count = call(SYS_getgroups, static_cast<uint64_t>(total), addr(many.get()));
    list = many.get();
  }
  if (count < 0) return static_cast<int>(count);
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < count; i++) {
    uint32_t g = list[i];
    for (int b = 0; b < 4; b++, g >>= 8) {
      h ^= g & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  c.ngroups = static_cast<uint32_t>(count);
  c.groups_hash = h;
  *out = c;
  return 0;
}

bool same_creds(const creds &a, const creds &b) noexcept {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

const creds *creds_table::hold(const creds &c) noexcept {
  static_assert(std::is_standard_layout_v<entry>, "an entry's creds is at its address");
  std::lock_guard lk(mu_);
  entry *unused = nullptr;
  for (const std::unique_ptr<entry> &e : entries_) {
    // Acquire pairs with drop's release: at 0, the last holder is done.
    const uint32_t n = e->holders.load(std::memory_order_acquire);
    if (n == 0) {
      if (unused == nullptr) unused = e.get();
    } else if (same_creds(e->c, c)) {
      e->holders.fetch_add(1, std::memory_order_relaxed);
      return &e->c;
    }
  }
  if (unused == nullptr) {
    try {
      entries_.push_back(std::make_unique<entry>());
    } catch (...) {
      return nullptr;
    }
    unused = entries_.back().get();
  }
  // Only hold() raises a count from 0, under mu_: nobody else writes it.
  unused->c = c;
  unused->holders.store(1, std::memory_order_relaxed);
  return &unused->c;
}

void creds_table::hold_again(const creds *held) noexcept {
  // Relaxed: the caller's own hold keeps the entry from being reused.
  reinterpret_cast<entry *>(const_cast<creds *>(held))->holders.fetch_add(1, std::memory_order_relaxed);
}

void creds_table::drop(const creds *held) noexcept {
  // Release: this holder's reads of the entry come before a reuse (the
  // acquire in hold()).
  reinterpret_cast<entry *>(const_cast<creds *>(held))->holders.fetch_sub(1, std::memory_order_release);
}

}  // namespace aio2::sys
