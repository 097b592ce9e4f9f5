// SPDX-License-Identifier: MIT
#include "sys/fd_facts.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace aio2::sys {

namespace {

// One word per descriptor number below kSlots: bit 63 valid, bit 32
// regular, low 32 bits the flags. Relaxed: each word is a self-contained
// hint, re-checked against fcntl's answer before it is used.
constexpr int kSlots = 65536;
std::atomic<uint64_t> g_slots[kSlots];

constexpr uint64_t kValid = uint64_t{1} << 63;
constexpr uint64_t kRegular = uint64_t{1} << 32;
constexpr uint64_t kPositionable = uint64_t{1} << 33;

}  // namespace

int get_fd_facts(int fd, fd_facts *out) noexcept {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  out->flags = flags;
  if (fd < kSlots) {
    const uint64_t w = g_slots[fd].load(std::memory_order_relaxed);
    if ((w & kValid) && static_cast<uint32_t>(w) == static_cast<uint32_t>(flags)) {
      out->regular = (w & kRegular) != 0;
      out->positionable = (w & kPositionable) != 0;
      return 0;
    }
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return -errno;
  out->regular = S_ISREG(st.st_mode);
  out->positionable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  if (fd < kSlots)
    g_slots[fd].store(kValid | (out->regular ? kRegular : 0) |
                          (out->positionable ? kPositionable : 0) | static_cast<uint32_t>(flags),
                      std::memory_order_relaxed);
  return 0;
}

bool reads_through_cache(const fd_facts &f) noexcept {
  return f.regular && !(f.flags & O_PATH) && (f.flags & O_ACCMODE) != O_WRONLY &&
         !(f.flags & O_DIRECT);
}

int fd_memo::get(int fd, fd_facts *out) noexcept {
  for (unsigned i = 0; i < n_; i++) {
    if (fds_[i] != fd) continue;
    *out = facts_[i];
    return err_[i];
  }
  const int err = get_fd_facts(fd, out);
  const unsigned i = n_ < kSize ? n_++ : next_++ % kSize;
  fds_[i] = fd;
  facts_[i] = *out;
  err_[i] = err;
  return err;
}

namespace {
thread_local fd_memo *t_memo = nullptr;
}  // namespace

fd_memo_scope::fd_memo_scope(fd_memo &memo) noexcept : saved_(t_memo) { t_memo = &memo; }
fd_memo_scope::~fd_memo_scope() { t_memo = saved_; }

int facts_of(int fd, fd_facts *out) noexcept {
  return t_memo ? t_memo->get(fd, out) : get_fd_facts(fd, out);
}

}  // namespace aio2::sys
