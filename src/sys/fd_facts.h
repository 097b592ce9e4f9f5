// SPDX-License-Identifier: MIT
// What aio2 needs to know about a descriptor, asked in one place: its open
// flags and its kind. The router decides with it where a call runs (and
// which pool workers take it), and the cache attribute whether it applies.
// fcntl(F_GETFL) every time (one cheap system call); fstat only when the
// flags differ from what this process last saw on that descriptor number,
// so a busy read loop makes one system call here, not two. The old ABI's
// plain reads of a cached file make none on most submits: they take the
// facts on trust and check them with the read itself
// (trusted_cached_read).
//
// Limit, said plainly: a descriptor closed and reopened on a different kind
// of file with identical open flags keeps the old answer about its kind.
// Regular files opened with open(2) carry O_LARGEFILE and pipes and sockets
// do not, so the case needs a character device opened like the regular file
// it replaced (then the cache attribute's label can be wrong, and a pread of
// that device goes to io_uring, which answers like read instead of -ESPIPE
// when the device is not seekable).
#pragma once

#include <cstddef>
#include <cstdint>

namespace aio2::sys {

struct fd_facts {
  int flags;          // fcntl(F_GETFL)
  bool regular;       // S_ISREG
  // S_ISREG or S_ISBLK: pread/pwrite take its offset, and calls on it
  // finish (everything else may wait for ever: pipes, sockets, ttys...).
  bool positionable;
};

// Returns 0 and fills *out, or -errno (EBADF for a closed descriptor).
int get_fd_facts(int fd, fd_facts *out) noexcept;

// A source of descriptor facts: get() returns 0 and fills *out, or -errno.
// The router takes one, so that its tests can answer with made-up facts.
class fd_lookup {
 public:
  virtual int get(int fd, fd_facts *out) noexcept = 0;

 protected:
  ~fd_lookup() = default;
};

// The facts of the few descriptors one aio2_submit call names, asked once
// each: a batch of 32 reads of one file costs one fcntl, not 32. (Another
// thread closing and reopening a descriptor in the middle of a submit that
// uses it races with the submit either way.)
class fd_memo final : public fd_lookup {
 public:
  int get(int fd, fd_facts *out) noexcept override;
  // Answers get(fd) with `f` from now on (facts the caller already has).
  void seed(int fd, const fd_facts &f) noexcept;

 private:
  static constexpr unsigned kSize = 4;
  int fds_[kSize] = {};
  fd_facts facts_[kSize] = {};
  int err_[kSize] = {};
  unsigned n_ = 0, next_ = 0;
};

// While it lives, facts_of() in this thread answers from `memo`: aio2_submit
// opens one around its loop, so that attribute hooks running inside it (the
// cache attribute's) share the submit's answers.
class fd_memo_scope {
 public:
  explicit fd_memo_scope(fd_memo &memo) noexcept;
  ~fd_memo_scope();
  fd_memo_scope(const fd_memo_scope &) = delete;
  fd_memo_scope &operator=(const fd_memo_scope &) = delete;

 private:
  fd_memo *saved_;
};

// get_fd_facts, through this thread's current fd_memo when there is one.
int facts_of(int fd, fd_facts *out) noexcept;

// Whether a read of `f` goes through the page cache: a regular file open for
// reading, not O_PATH, not O_DIRECT.
bool reads_through_cache(const fd_facts &f) noexcept;

// Facts taken on trust, for a caller that checks them by trying: when the
// last get_fd_facts() of `fd` found a file whose reads go through the page
// cache, fills *out with those facts without a system call and returns
// true, at most kTrustedUses times per get_fd_facts() of that descriptor
// (whichever thread makes it). The caller must make the read with
// RWF_NOWAIT first and call distrust() on any answer but bytes or -EAGAIN:
// a descriptor closed, or reused for a pipe, a socket, a directory or a
// file opened for writing only, answers -EBADF, -ESPIPE, -EISDIR or
// -EINVAL there. What trying cannot show is a file reopened (or switched
// with F_SETFL) to O_DIRECT: such a read then waits for the device in the
// caller's thread, for kTrustedUses reads at most; its result is right.
constexpr unsigned kTrustedUses = 63;
bool trusted_cached_read(int fd, fd_facts *out) noexcept;
// Forgets what get_fd_facts() learnt of `fd`: its next use asks again. A
// pinned descriptor keeps its facts (pin_fd).
void distrust(int fd) noexcept;

// Registered descriptors (aio2_register_fds): `fd`, a descriptor aio2
// owns, has its facts taken now and answered from then on without a
// system call, by get_fd_facts() and trusted_cached_read() alike, until
// unpin_fd(fd). Only regular files and block devices, whose kind never
// changes: -EINVAL for anything else or O_PATH, -EMFILE when `fd` is
// beyond the table, -EBADF when closed. What pinning cannot see is F_SETFL
// on the open file (through any descriptor of it) after the pin: the flags
// stay those it found.
int pin_fd(int fd) noexcept;
void unpin_fd(int fd) noexcept;
// The table's size: descriptors from 0 to kFactSlots - 1 can be pinned.
constexpr int kFactSlots = 65536;

// A submitter's cached read made on trust, checked by itself: when
// trusted_cached_read() gives `fd`'s facts, reads `len` bytes at `off`
// into `buf` with preadv2(RWF_NOWAIT). Bytes or -EAGAIN: the facts held;
// `memo` is seeded with them (the router plans with them, no system call)
// and *n is that answer, true. Any other answer: the facts were wrong,
// distrust(fd), false: the caller takes the checked way (which asks the
// kernel again and gets its own answer). False without reading when the
// facts are not on trust, or `len` or `off` is one the call refuses.
bool read_on_trust(int fd, void *buf, size_t len, int64_t off, fd_memo &memo,
                   int64_t *n) noexcept;

}  // namespace aio2::sys
