// SPDX-License-Identifier: MIT
// The system-call table: for every system call number of this architecture,
// its name, which arguments are file descriptors, how long it can block
// (which decides where aio2 runs it), the io_uring opcode that implements it
// natively, and whether aio2 refuses it. docs/syscalls.md is the user's view.
//
// The table is keyed by the <sys/syscall.h> __NR_* macros and is built at
// compile time (constant-initialized, no allocation). The table is x86_64's;
// docs/syscalls.md ("Adding an architecture") says what another one needs.
#pragma once

#include <cstdint>

namespace aio2::sys {

// How long a call can block, which decides bounded vs unbounded workers.
// Each class is the worst case over the call's arguments: flags such as
// O_NONBLOCK, MSG_DONTWAIT, WNOHANG or a zero timeout are not looked at.
enum class blocking : uint8_t {
  // Cannot block at all, apart from faulting in its own argument memory
  // (getpid, getppid, gettid, clock_gettime, uname...): may run inline in the
  // submitting thread, else on a bounded worker. Thread-relative answers
  // (gettid, getcpu, CLOCK_THREAD_CPUTIME_ID) may therefore describe either.
  never,
  // May block, but finishes (regular-file I/O, fsync, stat, open of a regular
  // file, close...): a bounded worker.
  finite,
  // Finite when every descriptor in fd_args is a regular file or a block
  // device, may wait forever on anything else (pipes, FIFOs, sockets, ttys and
  // other character devices, eventfd and other anonymous-inode files): read,
  // write, readv, pread64, ioctl, sendfile... aio2 checks the descriptors'
  // types with fstat. The positioned calls (pread64, preadv...) are here too:
  // pipes and sockets refuse them at once (-ESPIPE), but a character device
  // may accept them and wait. Calls that only accept sockets or pipes
  // (recvfrom, sendmsg, splice, tee...) are `forever` instead: that check
  // could only ever answer "unbounded".
  fd_dependent,
  // May wait without bound whatever the arguments (poll, ppoll, select,
  // pselect6, epoll_wait, epoll_pwait(2), futex, nanosleep, clock_nanosleep,
  // accept, accept4, connect, wait4, waitid, pause, msgrcv, semop,
  // semtimedop, io_getevents, flock, fcntl, rt_sigtimedwait...): an unbounded
  // worker.
  forever,
};

struct syscall_info {
  // "pread64"; nullptr when the number is not a system call here.
  const char *name;
  // Bit i set: args[i] is a file descriptor of this process (read: bit 0;
  // splice: bits 0 and 2; openat: bit 0, the dirfd, where AT_FDCWD is
  // allowed). Marked when the prototype declares a descriptor, even if some
  // flags make it unused (mmap's fd with MAP_ANONYMOUS); not marked when an
  // argument is a descriptor only for some commands (ioctl's and fcntl's
  // third argument, waitid's id with P_PIDFD) or a descriptor number in
  // another process (kcmp, pidfd_getfd).
  uint8_t fd_args;
  blocking blocks;
  // The io_uring opcode (IORING_OP_*) that implements this call natively, or
  // -1. Several need their arguments translated (read: IORING_OP_READ with
  // offset -1; fdatasync: IORING_OP_FSYNC with IORING_FSYNC_DATASYNC): each
  // entry in syscall_table.cc says how, and docs/syscalls.md lists them all.
  // The running kernel may not support the opcode: probe it before use.
  int16_t uring_op;
  // nullptr: allowed; otherwise the one-sentence reason it is refused (aio2
  // returns -EPERM).
  const char *refused;
  // The call does not look at its caller's credentials: it acts on a
  // descriptor whose access the kernel checked when it was opened (reads,
  // fsync), or on nothing (getpid). Such a request may run in any thread,
  // whatever credentials it has, so aio2 takes no snapshot of its
  // submitter's (exec/request.h). False for everything else, writes
  // included: a write clears a file's set-user-ID bit unless the writer has
  // CAP_FSETID, and may use blocks reserved for CAP_SYS_RESOURCE.
  bool creds_free = false;
};

// The entry for `nr`, or nullptr when nr is negative, beyond the table, or
// not a system call on this architecture (aio2 returns -ENOSYS). O(1).
const syscall_info *lookup(long nr) noexcept;

// Number of slots in the table (max nr + 1) for iteration in tests/docs.
long table_size() noexcept;

// Find by name ("pread64", as in __NR_pread64) for tools and tests, or -1.
// A linear search: not for the submission path.
long number_of(const char *name) noexcept;

}  // namespace aio2::sys
