// SPDX-License-Identifier: MIT
#include "sys/fd_facts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>

namespace aio2::sys {

namespace {

// One word per descriptor number below kSlots: bit 63 valid, bit 62
// pinned, bit 32 regular, bit 33 positionable, bits 40-47 the uses left on
// trust (trusted_cached_read), low 32 bits the flags. Relaxed: each word is
// a self-contained hint, re-checked against fcntl's answer before it is
// used, or by the caller's RWF_NOWAIT read when taken on trust; a pinned
// word is the facts of a descriptor aio2 owns, written by pin_fd before
// aio2_register_fds hands the number out (the caller's own ordering then
// carries it to any submitting thread: it learns the number after).
constexpr int kSlots = kFactSlots;
std::atomic<uint64_t> g_slots[kSlots];

constexpr uint64_t kValid = uint64_t{1} << 63;
constexpr uint64_t kPinned = uint64_t{1} << 62;
constexpr uint64_t kRegular = uint64_t{1} << 32;
constexpr uint64_t kPositionable = uint64_t{1} << 33;
constexpr int kUsesShift = 40;
constexpr uint64_t kUses = uint64_t{0xff} << kUsesShift;

fd_facts facts_of_word(uint64_t w) noexcept {
  return fd_facts{static_cast<int>(static_cast<uint32_t>(w)), (w & kRegular) != 0,
                  (w & kPositionable) != 0};
}

// A fresh word for `f`, with its uses on trust when its reads go through
// the page cache.
uint64_t word_of(const fd_facts &f) noexcept {
  const uint64_t uses = reads_through_cache(f) ? uint64_t{kTrustedUses} << kUsesShift : 0;
  return kValid | (f.regular ? kRegular : 0) | (f.positionable ? kPositionable : 0) | uses |
         static_cast<uint32_t>(f.flags);
}

}  // namespace

int get_fd_facts(int fd, fd_facts *out) noexcept {
  const bool slotted = fd >= 0 && fd < kSlots;
  uint64_t w = slotted ? g_slots[fd].load(std::memory_order_relaxed) : 0;
  if (w & kPinned) {
    *out = facts_of_word(w);
    return 0;
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  out->flags = flags;
  // The word is replaced only if it is still the one read above: a pin made
  // meanwhile stays.
  if ((w & kValid) && static_cast<uint32_t>(w) == static_cast<uint32_t>(flags)) {
    *out = facts_of_word(w);
    // Checked again: the uses on trust start over.
    if (const uint64_t fresh = word_of(*out); fresh != w)
      g_slots[fd].compare_exchange_strong(w, fresh, std::memory_order_relaxed);
    return 0;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return -errno;
  out->regular = S_ISREG(st.st_mode);
  out->positionable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  if (slotted) g_slots[fd].compare_exchange_strong(w, word_of(*out), std::memory_order_relaxed);
  return 0;
}

bool trusted_cached_read(int fd, fd_facts *out) noexcept {
  if (fd < 0 || fd >= kSlots) return false;
  uint64_t w = g_slots[fd].load(std::memory_order_relaxed);
  if ((w & kPinned) && (w & kUses)) {  // pinned: no use is counted
    *out = facts_of_word(w);
    return true;
  }
  if (!(w & kValid) || !(w & kUses)) return false;
  // One use taken; a lost race sends the caller the checked way.
  if (!g_slots[fd].compare_exchange_strong(w, w - (uint64_t{1} << kUsesShift),
                                           std::memory_order_relaxed))
    return false;
  *out = facts_of_word(w);
  return true;
}

void distrust(int fd) noexcept {
  if (fd < 0 || fd >= kSlots) return;
  uint64_t w = g_slots[fd].load(std::memory_order_relaxed);
  // A pinned word stays: its descriptor is aio2's (a read failing on it is
  // the request's own error, a bad buffer say), and only unpin_fd ends it.
  while (!(w & kPinned) && w != 0 &&
         !g_slots[fd].compare_exchange_weak(w, 0, std::memory_order_relaxed)) {
  }
}

int pin_fd(int fd) noexcept {
  if (fd < 0) return -EBADF;
  if (fd >= kSlots) return -EMFILE;
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  struct stat st {};
  if (fstat(fd, &st) != 0) return -errno;
  if ((flags & O_PATH) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) return -EINVAL;
  const fd_facts f{flags, S_ISREG(st.st_mode), true};
  // Reads that go through the page cache keep uses on trust for ever
  // (trusted_cached_read counts none on a pinned word).
  g_slots[fd].store(word_of(f) | kPinned, std::memory_order_relaxed);
  return 0;
}

void unpin_fd(int fd) noexcept {
  if (fd >= 0 && fd < kSlots) g_slots[fd].store(0, std::memory_order_relaxed);
}

bool read_on_trust(int fd, void *buf, size_t len, int64_t off, fd_memo &memo,
                   int64_t *n) noexcept {
  if (len > static_cast<size_t>(SSIZE_MAX) || off < 0) return false;
  fd_facts f{};
  if (!trusted_cached_read(fd, &f)) return false;
  iovec one{buf, len};
  const long got = syscall(SYS_preadv2, fd, &one, 1, static_cast<long>(off), 0L, RWF_NOWAIT);
  if (got < 0 && errno != EAGAIN) {
    distrust(fd);
    return false;
  }
  *n = got < 0 ? -EAGAIN : got;
  memo.seed(fd, f);
  return true;
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

void fd_memo::seed(int fd, const fd_facts &f) noexcept {
  for (unsigned i = 0; i < n_; i++) {
    if (fds_[i] != fd) continue;
    facts_[i] = f;
    err_[i] = 0;
    return;
  }
  const unsigned i = n_ < kSize ? n_++ : next_++ % kSize;
  fds_[i] = fd;
  facts_[i] = f;
  err_[i] = 0;
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
