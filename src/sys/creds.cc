// SPDX-License-Identifier: MIT
#include "sys/creds.h"

#include <linux/capability.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <memory>
#include <new>

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

}  // namespace aio2::sys
