// SPDX-License-Identifier: MIT
// What aio2 needs to know about a descriptor, asked in one place: its open
// flags and its kind. The router decides with it where a call runs (and
// which pool workers take it), and the cache attribute whether it applies. fcntl(F_GETFL) every time (one cheap system call); fstat
// only when the flags differ from what this process last saw on that
// descriptor number, so a busy read loop makes one system call here, not two.
//
// Limit, said plainly: a descriptor closed and reopened on a different kind
// of file with identical open flags keeps the old answer about its kind.
// Regular files opened with open(2) carry O_LARGEFILE and pipes and sockets
// do not, so the case needs a character device opened like the regular file
// it replaced (then the cache attribute's label can be wrong, and a pread of
// that device goes to io_uring, which answers like read instead of -ESPIPE
// when the device is not seekable).
#pragma once

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

}  // namespace aio2::sys
