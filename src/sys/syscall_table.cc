// SPDX-License-Identifier: MIT
// The x86_64 system-call table. One entry per system call in the kernel
// headers, in number order, each named by its __NR_* macro and compiled in
// only where <sys/syscall.h> defines that macro, so older headers (and the
// legacy calls other architectures lack) simply leave entries out. The table
// is built from the entries at compile time; static_asserts below check it.
//
// Per entry: ALLOW(name, descriptor arguments, blocking class, io_uring
// opcode or -1) or REFUSE(name, descriptor arguments, blocking class,
// "reason"). A comment before an entry gives the io_uring argument
// translation ("READ: fd, addr=buf, len=count, off=-1" means IORING_OP_READ
// with sqe->fd = args[0], sqe->addr = buf, sqe->len = count and sqe->off =
// -1, the names being the call's own parameters; unnamed sqe fields stay
// zero) and the reason for any classification that is not obvious. The
// translations follow the kernel's io_uring prep functions and liburing's
// io_uring_prep_* helpers. io_uring holds lengths in the 32-bit sqe->len:
// where the call itself caps a length (MAX_RW_COUNT for reads and writes),
// capping it gives the same result; elsewhere a longer one needs a worker.

#include "syscall_table.h"

#include <sys/syscall.h>

#include <array>
#include <cstddef>
#include <cstring>

// The kernel's UAPI header and liburing's copy of it (liburing/io_uring.h,
// which needs liburing/compat.h first) define the same IORING_OP_* values.
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#else
#include <liburing/compat.h>
#include <liburing/io_uring.h>
#endif

// The entries are keyed by __NR_* names, so they compile anywhere, but only
// x86_64's classification has been reviewed (docs/syscalls.md, "Adding an
// architecture"). x32 numbers carry __X32_SYSCALL_BIT and need their own table.
#if !defined(__x86_64__) || defined(__ILP32__)
#error "aio2's system-call table has been reviewed for x86_64 (LP64) only"
#endif

namespace aio2::sys {
namespace {

struct entry {
  long nr;
  syscall_info info;
};

// fds(0, 2): args[0] and args[2] are file descriptors.
template <typename... I>
constexpr uint8_t fds(I... index) {
  return static_cast<uint8_t>((0u | ... | (1u << index)));
}

constexpr int16_t uring(int op) { return static_cast<int16_t>(op); }

#define ALLOW(name, fdmask, blk, op) \
  entry { __NR_##name, syscall_info{#name, fdmask, blocking::blk, uring(op), nullptr} }
#define REFUSE(name, fdmask, blk, why) \
  entry { __NR_##name, syscall_info{#name, fdmask, blocking::blk, -1, why} }

constexpr entry k_entries[] = {
#ifdef __NR_read
    // READ: fd, addr=buf, len=count (capped at MAX_RW_COUNT, as the call caps it), off=-1 (current
    // position)
    ALLOW(read, fds(0), fd_dependent, IORING_OP_READ),
#endif
#ifdef __NR_write
    // WRITE: fd, addr=buf, len=count (capped at MAX_RW_COUNT), off=-1 (current position)
    ALLOW(write, fds(0), fd_dependent, IORING_OP_WRITE),
#endif
#ifdef __NR_open
    // OPENAT: fd=AT_FDCWD, addr=path, open_flags=flags, len=mode. Finite, though opening a FIFO or
    // tty can wait: see docs/syscalls.md
    ALLOW(open, fds(), finite, IORING_OP_OPENAT),
#endif
#ifdef __NR_close
    // CLOSE: fd
    ALLOW(close, fds(0), finite, IORING_OP_CLOSE),
#endif
#ifdef __NR_stat
    ALLOW(stat, fds(), finite, -1),
#endif
#ifdef __NR_fstat
    // Finite on every kind of descriptor: it never waits for data
    ALLOW(fstat, fds(0), finite, -1),
#endif
#ifdef __NR_lstat
    ALLOW(lstat, fds(), finite, -1),
#endif
#ifdef __NR_poll
    // The descriptors are inside the pollfd array, not arguments
    ALLOW(poll, fds(), forever, -1),
#endif
#ifdef __NR_lseek
    ALLOW(lseek, fds(0), finite, -1),
#endif
#ifdef __NR_mmap
    // args[4] is ignored with MAP_ANONYMOUS
    ALLOW(mmap, fds(4), finite, -1),
#endif
#ifdef __NR_mprotect
    ALLOW(mprotect, fds(), finite, -1),
#endif
#ifdef __NR_munmap
    ALLOW(munmap, fds(), finite, -1),
#endif
#ifdef __NR_brk
    ALLOW(brk, fds(), finite, -1),
#endif
#ifdef __NR_rt_sigaction
    // Process-wide; changing aio2's cancellation signal breaks aio2_cancel
    ALLOW(rt_sigaction, fds(), never, -1),
#endif
#ifdef __NR_rt_sigprocmask
    REFUSE(rt_sigprocmask, fds(), never,
           "rt_sigprocmask changes the signal mask of the calling thread only, so it would alter "
           "a worker's mask (which aio2 relies on to deliver cancellation) and leave the caller's "
           "unchanged."),
#endif
#ifdef __NR_rt_sigreturn
    REFUSE(rt_sigreturn, fds(), never,
           "rt_sigreturn reloads the calling thread's registers from a signal frame on its stack, "
           "and outside a signal handler it would wreck the worker that ran it."),
#endif
#ifdef __NR_ioctl
    // args[2] may be anything, descriptors included, depending on the request
    ALLOW(ioctl, fds(0), fd_dependent, -1),
#endif
#ifdef __NR_pread64
    // READ: fd, addr=buf, len=count (capped at MAX_RW_COUNT), off=offset; an offset < 0 must fail
    // with -EINVAL first (io_uring reads -1 as the current position). fd_dependent: see the note in
    // syscall_table.h
    ALLOW(pread64, fds(0), fd_dependent, IORING_OP_READ),
#endif
#ifdef __NR_pwrite64
    // WRITE: fd, addr=buf, len=count (capped at MAX_RW_COUNT), off=offset; an offset < 0 must fail
    // with -EINVAL first
    ALLOW(pwrite64, fds(0), fd_dependent, IORING_OP_WRITE),
#endif
#ifdef __NR_readv
    // READV: fd, addr=iov, len=iovcnt, off=-1 (current position)
    ALLOW(readv, fds(0), fd_dependent, IORING_OP_READV),
#endif
#ifdef __NR_writev
    // WRITEV: fd, addr=iov, len=iovcnt, off=-1 (current position)
    ALLOW(writev, fds(0), fd_dependent, IORING_OP_WRITEV),
#endif
#ifdef __NR_access
    ALLOW(access, fds(), finite, -1),
#endif
#ifdef __NR_pipe
    ALLOW(pipe, fds(), finite, -1),
#endif
#ifdef __NR_select
    ALLOW(select, fds(), forever, -1),
#endif
#ifdef __NR_sched_yield
    ALLOW(sched_yield, fds(), never, -1),
#endif
#ifdef __NR_mremap
    ALLOW(mremap, fds(), finite, -1),
#endif
#ifdef __NR_msync
    ALLOW(msync, fds(), finite, -1),
#endif
#ifdef __NR_mincore
    ALLOW(mincore, fds(), finite, -1),
#endif
#ifdef __NR_madvise
    // MADVISE: fd=-1, addr, len=length (must fit 32 bits, else use a worker), fadvise_advice=advice
    ALLOW(madvise, fds(), finite, IORING_OP_MADVISE),
#endif
#ifdef __NR_shmget
    ALLOW(shmget, fds(), finite, -1),
#endif
#ifdef __NR_shmat
    ALLOW(shmat, fds(), finite, -1),
#endif
#ifdef __NR_shmctl
    ALLOW(shmctl, fds(), finite, -1),
#endif
#ifdef __NR_dup
    ALLOW(dup, fds(0), finite, -1),
#endif
#ifdef __NR_dup2
    ALLOW(dup2, fds(0, 1), finite, -1),
#endif
#ifdef __NR_pause
    ALLOW(pause, fds(), forever, -1),
#endif
#ifdef __NR_nanosleep
    // The argument bounds it, but can be arbitrarily long
    ALLOW(nanosleep, fds(), forever, -1),
#endif
#ifdef __NR_getitimer
    ALLOW(getitimer, fds(), never, -1),
#endif
#ifdef __NR_alarm
    ALLOW(alarm, fds(), never, -1),
#endif
#ifdef __NR_setitimer
    ALLOW(setitimer, fds(), never, -1),
#endif
#ifdef __NR_getpid
    ALLOW(getpid, fds(), never, -1),
#endif
#ifdef __NR_sendfile
    // Out_fd may be a socket or pipe
    ALLOW(sendfile, fds(0, 1), fd_dependent, -1),
#endif
#ifdef __NR_socket
    // SOCKET: fd=domain, off=type, len=protocol, rw_flags=0
    ALLOW(socket, fds(), finite, IORING_OP_SOCKET),
#endif
#ifdef __NR_connect
    // CONNECT: fd, addr=addr, off=addrlen
    ALLOW(connect, fds(0), forever, IORING_OP_CONNECT),
#endif
#ifdef __NR_accept
    // ACCEPT: fd, addr=addr, addr2=addrlen pointer, accept_flags=0
    ALLOW(accept, fds(0), forever, IORING_OP_ACCEPT),
#endif
#ifdef __NR_sendto
    // Not on io_uring: a blocking stream socket takes a send whole from the call and only what
    // fits from io_uring, and an O_NONBLOCK one runs inline. Forever: sockets only
    ALLOW(sendto, fds(0), forever, -1),
#endif
#ifdef __NR_recvfrom
    // RECV: fd, addr=buf, len (capped at INT_MAX), msg_flags=flags; only when src_addr is NULL, as
    // RECV cannot return the address (else RECVMSG with a msghdr built from the arguments, writing
    // msg_namelen back to *addrlen, or a worker). Forever: sockets only
    ALLOW(recvfrom, fds(0), forever, IORING_OP_RECV),
#endif
#ifdef __NR_sendmsg
    // Not on io_uring, as sendto
    ALLOW(sendmsg, fds(0), forever, -1),
#endif
#ifdef __NR_recvmsg
    // RECVMSG: fd, addr=msg, msg_flags=flags
    ALLOW(recvmsg, fds(0), forever, IORING_OP_RECVMSG),
#endif
#ifdef __NR_shutdown
    // SHUTDOWN: fd, len=how
    ALLOW(shutdown, fds(0), finite, IORING_OP_SHUTDOWN),
#endif
#ifdef __NR_bind
    ALLOW(bind, fds(0), finite, -1),
#endif
#ifdef __NR_listen
    ALLOW(listen, fds(0), finite, -1),
#endif
#ifdef __NR_getsockname
    ALLOW(getsockname, fds(0), finite, -1),
#endif
#ifdef __NR_getpeername
    ALLOW(getpeername, fds(0), finite, -1),
#endif
#ifdef __NR_socketpair
    ALLOW(socketpair, fds(), finite, -1),
#endif
#ifdef __NR_setsockopt
    ALLOW(setsockopt, fds(0), finite, -1),
#endif
#ifdef __NR_getsockopt
    ALLOW(getsockopt, fds(0), finite, -1),
#endif
#ifdef __NR_clone
    REFUSE(clone, fds(), finite,
           "clone would start the new thread or process from a worker's registers and stack, so "
           "the child would resume inside aio2's worker loop instead of the caller's code."),
#endif
#ifdef __NR_fork
    REFUSE(fork, fds(), finite,
           "fork from a worker makes a child that is a copy of that worker alone, which resumes "
           "inside aio2's worker loop and never returns to the caller's code."),
#endif
#ifdef __NR_vfork
    REFUSE(vfork, fds(), finite,
           "vfork suspends the worker while the child borrows the worker's stack and returns into "
           "aio2's worker code, not into the caller's."),
#endif
#ifdef __NR_execve
    REFUSE(execve, fds(), finite,
           "execve replaces the whole process image from a worker, killing the submitting thread "
           "and every other request in flight, its own completion included."),
#endif
#ifdef __NR_exit
    REFUSE(exit, fds(), never,
           "exit ends only the calling thread, so it would silently end a worker instead of the "
           "program."),
#endif
#ifdef __NR_wait4
    ALLOW(wait4, fds(), forever, -1),
#endif
#ifdef __NR_kill
    ALLOW(kill, fds(), never, -1),
#endif
#ifdef __NR_uname
    ALLOW(uname, fds(), never, -1),
#endif
#ifdef __NR_semget
    ALLOW(semget, fds(), finite, -1),
#endif
#ifdef __NR_semop
    ALLOW(semop, fds(), forever, -1),
#endif
#ifdef __NR_semctl
    ALLOW(semctl, fds(), finite, -1),
#endif
#ifdef __NR_shmdt
    ALLOW(shmdt, fds(), finite, -1),
#endif
#ifdef __NR_msgget
    ALLOW(msgget, fds(), finite, -1),
#endif
#ifdef __NR_msgsnd
    // Waits while the queue is full unless IPC_NOWAIT
    ALLOW(msgsnd, fds(), forever, -1),
#endif
#ifdef __NR_msgrcv
    ALLOW(msgrcv, fds(), forever, -1),
#endif
#ifdef __NR_msgctl
    ALLOW(msgctl, fds(), finite, -1),
#endif
#ifdef __NR_fcntl
    // F_SETLKW and F_OFD_SETLKW wait for a lock without bound
    ALLOW(fcntl, fds(0), forever, -1),
#endif
#ifdef __NR_flock
    ALLOW(flock, fds(0), forever, -1),
#endif
#ifdef __NR_fsync
    // FSYNC: fd, fsync_flags=0
    ALLOW(fsync, fds(0), finite, IORING_OP_FSYNC),
#endif
#ifdef __NR_fdatasync
    // FSYNC: fd, fsync_flags=IORING_FSYNC_DATASYNC
    ALLOW(fdatasync, fds(0), finite, IORING_OP_FSYNC),
#endif
#ifdef __NR_truncate
    ALLOW(truncate, fds(), finite, -1),
#endif
#ifdef __NR_ftruncate
    ALLOW(ftruncate, fds(0), finite, -1),
#endif
#ifdef __NR_getdents
    ALLOW(getdents, fds(0), finite, -1),
#endif
#ifdef __NR_getcwd
    ALLOW(getcwd, fds(), finite, -1),
#endif
#ifdef __NR_chdir
    ALLOW(chdir, fds(), finite, -1),
#endif
#ifdef __NR_fchdir
    ALLOW(fchdir, fds(0), finite, -1),
#endif
#ifdef __NR_rename
    // RENAMEAT: fd=AT_FDCWD, addr=oldpath, len=AT_FDCWD, addr2=newpath, rename_flags=0
    ALLOW(rename, fds(), finite, IORING_OP_RENAMEAT),
#endif
#ifdef __NR_mkdir
    // MKDIRAT: fd=AT_FDCWD, addr=path, len=mode
    ALLOW(mkdir, fds(), finite, IORING_OP_MKDIRAT),
#endif
#ifdef __NR_rmdir
    // UNLINKAT: fd=AT_FDCWD, addr=path, unlink_flags=AT_REMOVEDIR
    ALLOW(rmdir, fds(), finite, IORING_OP_UNLINKAT),
#endif
#ifdef __NR_creat
    // Not on io_uring: its flags (O_CREAT|O_WRONLY|O_TRUNC) could wait for a reader on an
    // existing FIFO, where io_uring's open does not wait. Finite, though that wait is not: see
    // docs/syscalls.md
    ALLOW(creat, fds(), finite, -1),
#endif
#ifdef __NR_link
    // LINKAT: fd=AT_FDCWD, addr=oldpath, len=AT_FDCWD, addr2=newpath, hardlink_flags=0
    ALLOW(link, fds(), finite, IORING_OP_LINKAT),
#endif
#ifdef __NR_unlink
    // UNLINKAT: fd=AT_FDCWD, addr=path, unlink_flags=0
    ALLOW(unlink, fds(), finite, IORING_OP_UNLINKAT),
#endif
#ifdef __NR_symlink
    // SYMLINKAT: fd=AT_FDCWD, addr=target, addr2=linkpath
    ALLOW(symlink, fds(), finite, IORING_OP_SYMLINKAT),
#endif
#ifdef __NR_readlink
    ALLOW(readlink, fds(), finite, -1),
#endif
#ifdef __NR_chmod
    ALLOW(chmod, fds(), finite, -1),
#endif
#ifdef __NR_fchmod
    ALLOW(fchmod, fds(0), finite, -1),
#endif
#ifdef __NR_chown
    ALLOW(chown, fds(), finite, -1),
#endif
#ifdef __NR_fchown
    ALLOW(fchown, fds(0), finite, -1),
#endif
#ifdef __NR_lchown
    ALLOW(lchown, fds(), finite, -1),
#endif
#ifdef __NR_umask
    ALLOW(umask, fds(), never, -1),
#endif
#ifdef __NR_gettimeofday
    ALLOW(gettimeofday, fds(), never, -1),
#endif
#ifdef __NR_getrlimit
    ALLOW(getrlimit, fds(), never, -1),
#endif
#ifdef __NR_getrusage
    // RUSAGE_THREAD describes whichever thread runs it
    ALLOW(getrusage, fds(), never, -1),
#endif
#ifdef __NR_sysinfo
    ALLOW(sysinfo, fds(), never, -1),
#endif
#ifdef __NR_times
    ALLOW(times, fds(), never, -1),
#endif
#ifdef __NR_ptrace
    REFUSE(ptrace, fds(), finite,
           "A tracee belongs to the thread that attached it: later ptrace requests must come from "
           "that same thread and the tracee is detached when it exits, but aio2 runs requests on "
           "any worker and lets idle workers exit."),
#endif
#ifdef __NR_getuid
    ALLOW(getuid, fds(), never, -1),
#endif
#ifdef __NR_syslog
    // SYSLOG_ACTION_READ waits for new kernel messages
    ALLOW(syslog, fds(), forever, -1),
#endif
#ifdef __NR_getgid
    ALLOW(getgid, fds(), never, -1),
#endif
#ifdef __NR_setuid
    REFUSE(setuid, fds(), finite,
           "The raw setuid changes the user IDs of the calling thread only (the C library's "
           "wrapper repeats it in every thread), so a worker would run later requests with other "
           "credentials than the process."),
#endif
#ifdef __NR_setgid
    REFUSE(setgid, fds(), finite,
           "The raw setgid changes the group IDs of the calling thread only (the C library's "
           "wrapper repeats it in every thread), so one worker's group credentials would differ "
           "from the process's."),
#endif
#ifdef __NR_geteuid
    ALLOW(geteuid, fds(), never, -1),
#endif
#ifdef __NR_getegid
    ALLOW(getegid, fds(), never, -1),
#endif
#ifdef __NR_setpgid
    ALLOW(setpgid, fds(), finite, -1),
#endif
#ifdef __NR_getppid
    ALLOW(getppid, fds(), never, -1),
#endif
#ifdef __NR_getpgrp
    ALLOW(getpgrp, fds(), never, -1),
#endif
#ifdef __NR_setsid
    ALLOW(setsid, fds(), finite, -1),
#endif
#ifdef __NR_setreuid
    REFUSE(setreuid, fds(), finite,
           "The raw setreuid changes the real and effective user IDs of the calling thread only, "
           "leaving one worker with user IDs that differ from the rest of the process."),
#endif
#ifdef __NR_setregid
    REFUSE(setregid, fds(), finite,
           "The raw setregid changes the real and effective group IDs of the calling thread only, "
           "leaving one worker with group IDs that differ from the rest of the process."),
#endif
#ifdef __NR_getgroups
    ALLOW(getgroups, fds(), never, -1),
#endif
#ifdef __NR_setgroups
    REFUSE(setgroups, fds(), finite,
           "The raw setgroups replaces the supplementary group list of the calling thread only, "
           "so one worker would pass permission checks the process would fail, or the reverse."),
#endif
#ifdef __NR_setresuid
    REFUSE(setresuid, fds(), finite,
           "The raw setresuid sets the real, effective and saved user IDs of the calling thread "
           "only, so a worker could keep or gain privileges the process has dropped."),
#endif
#ifdef __NR_getresuid
    ALLOW(getresuid, fds(), never, -1),
#endif
#ifdef __NR_setresgid
    REFUSE(setresgid, fds(), finite,
           "The raw setresgid sets the real, effective and saved group IDs of the calling thread "
           "only, so a worker could keep or gain group privileges the process has dropped."),
#endif
#ifdef __NR_getresgid
    ALLOW(getresgid, fds(), never, -1),
#endif
#ifdef __NR_getpgid
    ALLOW(getpgid, fds(), never, -1),
#endif
#ifdef __NR_setfsuid
    REFUSE(setfsuid, fds(), finite,
           "setfsuid changes the user ID the calling thread's file accesses are checked against, "
           "so one worker's file operations would run as a different user from the process."),
#endif
#ifdef __NR_setfsgid
    REFUSE(setfsgid, fds(), finite,
           "setfsgid changes the group ID the calling thread's file accesses are checked against, "
           "so one worker's file operations would run with a different group from the process."),
#endif
#ifdef __NR_getsid
    ALLOW(getsid, fds(), never, -1),
#endif
#ifdef __NR_capget
    ALLOW(capget, fds(), never, -1),
#endif
#ifdef __NR_capset
    REFUSE(capset, fds(), finite,
           "capset changes the capability sets of the calling thread only, so a worker would run "
           "later requests with more or fewer privileges than the process."),
#endif
#ifdef __NR_rt_sigpending
    ALLOW(rt_sigpending, fds(), never, -1),
#endif
#ifdef __NR_rt_sigtimedwait
    ALLOW(rt_sigtimedwait, fds(), forever, -1),
#endif
#ifdef __NR_rt_sigqueueinfo
    ALLOW(rt_sigqueueinfo, fds(), never, -1),
#endif
#ifdef __NR_rt_sigsuspend
    REFUSE(rt_sigsuspend, fds(), forever,
           "rt_sigsuspend swaps in a signal mask for the calling thread and waits for a signal "
           "that thread handles, which in a worker changes and waits on the wrong thread; use "
           "rt_sigtimedwait or a signalfd."),
#endif
#ifdef __NR_sigaltstack
    REFUSE(sigaltstack, fds(), never,
           "sigaltstack sets or queries the alternate signal stack of the calling thread only, so "
           "it would configure a worker's stack and not the caller's."),
#endif
#ifdef __NR_utime
    ALLOW(utime, fds(), finite, -1),
#endif
#ifdef __NR_mknod
    ALLOW(mknod, fds(), finite, -1),
#endif
#ifdef __NR_uselib
    ALLOW(uselib, fds(), finite, -1),
#endif
#ifdef __NR_personality
    REFUSE(personality, fds(), never,
           "The execution domain is kept per thread, so personality would read or change a "
           "worker's (and leak the change into later requests on it), not the process's."),
#endif
#ifdef __NR_ustat
    ALLOW(ustat, fds(), finite, -1),
#endif
#ifdef __NR_statfs
    ALLOW(statfs, fds(), finite, -1),
#endif
#ifdef __NR_fstatfs
    ALLOW(fstatfs, fds(0), finite, -1),
#endif
#ifdef __NR_sysfs
    ALLOW(sysfs, fds(), finite, -1),
#endif
#ifdef __NR_getpriority
    // PRIO_PROCESS with who 0 means the thread that runs it
    ALLOW(getpriority, fds(), never, -1),
#endif
#ifdef __NR_setpriority
    // PRIO_PROCESS with who 0 means the worker: pass an explicit thread ID
    ALLOW(setpriority, fds(), finite, -1),
#endif
#ifdef __NR_sched_setparam
    // pid 0 means the worker: pass an explicit thread ID
    ALLOW(sched_setparam, fds(), finite, -1),
#endif
#ifdef __NR_sched_getparam
    ALLOW(sched_getparam, fds(), never, -1),
#endif
#ifdef __NR_sched_setscheduler
    // pid 0 means the worker: pass an explicit thread ID
    ALLOW(sched_setscheduler, fds(), finite, -1),
#endif
#ifdef __NR_sched_getscheduler
    ALLOW(sched_getscheduler, fds(), never, -1),
#endif
#ifdef __NR_sched_get_priority_max
    ALLOW(sched_get_priority_max, fds(), never, -1),
#endif
#ifdef __NR_sched_get_priority_min
    ALLOW(sched_get_priority_min, fds(), never, -1),
#endif
#ifdef __NR_sched_rr_get_interval
    ALLOW(sched_rr_get_interval, fds(), never, -1),
#endif
#ifdef __NR_mlock
    ALLOW(mlock, fds(), finite, -1),
#endif
#ifdef __NR_munlock
    ALLOW(munlock, fds(), finite, -1),
#endif
#ifdef __NR_mlockall
    ALLOW(mlockall, fds(), finite, -1),
#endif
#ifdef __NR_munlockall
    ALLOW(munlockall, fds(), finite, -1),
#endif
#ifdef __NR_vhangup
    // Acts on the process's controlling terminal, not on the thread
    ALLOW(vhangup, fds(), finite, -1),
#endif
#ifdef __NR_modify_ldt
    // The LDT belongs to the address space, not to a thread
    ALLOW(modify_ldt, fds(), finite, -1),
#endif
#ifdef __NR_pivot_root
    ALLOW(pivot_root, fds(), finite, -1),
#endif
#ifdef __NR__sysctl
    // Removed in Linux 5.5 (-ENOSYS); finite where it exists
    ALLOW(_sysctl, fds(), finite, -1),
#endif
#ifdef __NR_prctl
    REFUSE(prctl, fds(), finite,
           "Many prctl options act on the calling thread only (name, capability bounding set, "
           "securebits, no_new_privs, seccomp, parent-death signal, timer slack), and aio2 does "
           "not decode options, so the whole call is refused."),
#endif
#ifdef __NR_arch_prctl
    REFUSE(arch_prctl, fds(), never,
           "arch_prctl reads or sets per-thread processor state such as the FS and GS bases that "
           "hold thread-local storage, so it would act on a worker, and setting FS would break "
           "that worker."),
#endif
#ifdef __NR_adjtimex
    ALLOW(adjtimex, fds(), finite, -1),
#endif
#ifdef __NR_setrlimit
    ALLOW(setrlimit, fds(), finite, -1),
#endif
#ifdef __NR_chroot
    // Threads share the file-system context (CLONE_FS), so this is process-wide
    ALLOW(chroot, fds(), finite, -1),
#endif
#ifdef __NR_sync
    ALLOW(sync, fds(), finite, -1),
#endif
#ifdef __NR_acct
    ALLOW(acct, fds(), finite, -1),
#endif
#ifdef __NR_settimeofday
    ALLOW(settimeofday, fds(), finite, -1),
#endif
#ifdef __NR_mount
    ALLOW(mount, fds(), finite, -1),
#endif
#ifdef __NR_umount2
    ALLOW(umount2, fds(), finite, -1),
#endif
#ifdef __NR_swapon
    ALLOW(swapon, fds(), finite, -1),
#endif
#ifdef __NR_swapoff
    ALLOW(swapoff, fds(), finite, -1),
#endif
#ifdef __NR_reboot
    // Not thread-specific: the kernel's own permission check applies
    ALLOW(reboot, fds(), finite, -1),
#endif
#ifdef __NR_sethostname
    ALLOW(sethostname, fds(), finite, -1),
#endif
#ifdef __NR_setdomainname
    ALLOW(setdomainname, fds(), finite, -1),
#endif
#ifdef __NR_iopl
    REFUSE(iopl, fds(), finite,
           "iopl changes the I/O privilege level of the calling thread only, so one worker would "
           "gain port access that the calling thread does not have."),
#endif
#ifdef __NR_ioperm
    REFUSE(ioperm, fds(), finite,
           "ioperm sets the I/O port permission bitmap of the calling thread only, so it would "
           "grant port access to one worker instead of the caller."),
#endif
#ifdef __NR_create_module
    // Removed from the kernel: returns -ENOSYS at once
    ALLOW(create_module, fds(), never, -1),
#endif
#ifdef __NR_init_module
    ALLOW(init_module, fds(), finite, -1),
#endif
#ifdef __NR_delete_module
    ALLOW(delete_module, fds(), finite, -1),
#endif
#ifdef __NR_get_kernel_syms
    // Removed from the kernel: returns -ENOSYS at once
    ALLOW(get_kernel_syms, fds(), never, -1),
#endif
#ifdef __NR_query_module
    // Removed from the kernel: returns -ENOSYS at once
    ALLOW(query_module, fds(), never, -1),
#endif
#ifdef __NR_quotactl
    ALLOW(quotactl, fds(), finite, -1),
#endif
#ifdef __NR_nfsservctl
    // Removed from the kernel: returns -ENOSYS at once
    ALLOW(nfsservctl, fds(), never, -1),
#endif
#ifdef __NR_getpmsg
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(getpmsg, fds(), never, -1),
#endif
#ifdef __NR_putpmsg
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(putpmsg, fds(), never, -1),
#endif
#ifdef __NR_afs_syscall
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(afs_syscall, fds(), never, -1),
#endif
#ifdef __NR_tuxcall
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(tuxcall, fds(), never, -1),
#endif
#ifdef __NR_security
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(security, fds(), never, -1),
#endif
#ifdef __NR_gettid
    // Never, so it may run in the submitting thread or a worker: which ID it returns is not fixed
    ALLOW(gettid, fds(), never, -1),
#endif
#ifdef __NR_readahead
    ALLOW(readahead, fds(0), finite, -1),
#endif
#ifdef __NR_setxattr
    // SETXATTR: addr=name, addr2=value, addr3=path, len=size (above XATTR_SIZE_MAX: -E2BIG, as the
    // call), xattr_flags=flags
    ALLOW(setxattr, fds(), finite, IORING_OP_SETXATTR),
#endif
#ifdef __NR_lsetxattr
    ALLOW(lsetxattr, fds(), finite, -1),
#endif
#ifdef __NR_fsetxattr
    // FSETXATTR: fd, addr=name, addr2=value, len=size (above XATTR_SIZE_MAX: -E2BIG, as the call),
    // xattr_flags=flags
    ALLOW(fsetxattr, fds(0), finite, IORING_OP_FSETXATTR),
#endif
#ifdef __NR_getxattr
    // GETXATTR: addr=name, addr2=value, addr3=path, len=size (capped at XATTR_SIZE_MAX, as the call
    // caps it)
    ALLOW(getxattr, fds(), finite, IORING_OP_GETXATTR),
#endif
#ifdef __NR_lgetxattr
    ALLOW(lgetxattr, fds(), finite, -1),
#endif
#ifdef __NR_fgetxattr
    // FGETXATTR: fd, addr=name, addr2=value, len=size (capped at XATTR_SIZE_MAX)
    ALLOW(fgetxattr, fds(0), finite, IORING_OP_FGETXATTR),
#endif
#ifdef __NR_listxattr
    ALLOW(listxattr, fds(), finite, -1),
#endif
#ifdef __NR_llistxattr
    ALLOW(llistxattr, fds(), finite, -1),
#endif
#ifdef __NR_flistxattr
    ALLOW(flistxattr, fds(0), finite, -1),
#endif
#ifdef __NR_removexattr
    ALLOW(removexattr, fds(), finite, -1),
#endif
#ifdef __NR_lremovexattr
    ALLOW(lremovexattr, fds(), finite, -1),
#endif
#ifdef __NR_fremovexattr
    ALLOW(fremovexattr, fds(0), finite, -1),
#endif
#ifdef __NR_tkill
    ALLOW(tkill, fds(), never, -1),
#endif
#ifdef __NR_time
    ALLOW(time, fds(), never, -1),
#endif
#ifdef __NR_futex
    // PI operations record the running thread as owner: see docs
    ALLOW(futex, fds(), forever, -1),
#endif
#ifdef __NR_sched_setaffinity
    // pid 0 means the worker: pass an explicit thread ID
    ALLOW(sched_setaffinity, fds(), finite, -1),
#endif
#ifdef __NR_sched_getaffinity
    ALLOW(sched_getaffinity, fds(), never, -1),
#endif
#ifdef __NR_set_thread_area
    REFUSE(set_thread_area, fds(), finite,
           "set_thread_area installs a thread-local-storage descriptor for the calling thread "
           "only, which would change one worker and could break that worker's own TLS."),
#endif
#ifdef __NR_io_setup
    ALLOW(io_setup, fds(), finite, -1),
#endif
#ifdef __NR_io_destroy
    // Waits for the context's in-flight requests, which complete
    ALLOW(io_destroy, fds(), finite, -1),
#endif
#ifdef __NR_io_getevents
    ALLOW(io_getevents, fds(), forever, -1),
#endif
#ifdef __NR_io_submit
    // Forever: an IOCB_CMD_PREAD on a socket or pipe runs, and waits, inside io_submit
    ALLOW(io_submit, fds(), forever, -1),
#endif
#ifdef __NR_io_cancel
    ALLOW(io_cancel, fds(), finite, -1),
#endif
#ifdef __NR_get_thread_area
    ALLOW(get_thread_area, fds(), never, -1),
#endif
#ifdef __NR_lookup_dcookie
    ALLOW(lookup_dcookie, fds(), finite, -1),
#endif
#ifdef __NR_epoll_create
    ALLOW(epoll_create, fds(), finite, -1),
#endif
#ifdef __NR_epoll_ctl_old
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(epoll_ctl_old, fds(), never, -1),
#endif
#ifdef __NR_epoll_wait_old
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(epoll_wait_old, fds(), never, -1),
#endif
#ifdef __NR_remap_file_pages
    ALLOW(remap_file_pages, fds(), finite, -1),
#endif
#ifdef __NR_getdents64
    ALLOW(getdents64, fds(0), finite, -1),
#endif
#ifdef __NR_set_tid_address
    REFUSE(set_tid_address, fds(), never,
           "set_tid_address replaces the calling thread's clear-child-TID pointer, which the C "
           "library owns to know when that worker has exited."),
#endif
#ifdef __NR_restart_syscall
    REFUSE(restart_syscall, fds(), finite,
           "restart_syscall resumes the calling thread's last interrupted system call, which in a "
           "worker would be some earlier request, not anything of the caller's."),
#endif
#ifdef __NR_semtimedop
    ALLOW(semtimedop, fds(), forever, -1),
#endif
#ifdef __NR_fadvise64
    // FADVISE: fd, off=offset, len (must fit 32 bits, else use a worker; 0 means to the end),
    // fadvise_advice=advice
    ALLOW(fadvise64, fds(0), finite, IORING_OP_FADVISE),
#endif
#ifdef __NR_timer_create
    ALLOW(timer_create, fds(), finite, -1),
#endif
#ifdef __NR_timer_settime
    ALLOW(timer_settime, fds(), finite, -1),
#endif
#ifdef __NR_timer_gettime
    ALLOW(timer_gettime, fds(), never, -1),
#endif
#ifdef __NR_timer_getoverrun
    ALLOW(timer_getoverrun, fds(), never, -1),
#endif
#ifdef __NR_timer_delete
    ALLOW(timer_delete, fds(), finite, -1),
#endif
#ifdef __NR_clock_settime
    ALLOW(clock_settime, fds(), finite, -1),
#endif
#ifdef __NR_clock_gettime
    // CLOCK_THREAD_CPUTIME_ID measures whichever thread runs it
    ALLOW(clock_gettime, fds(), never, -1),
#endif
#ifdef __NR_clock_getres
    ALLOW(clock_getres, fds(), never, -1),
#endif
#ifdef __NR_clock_nanosleep
    ALLOW(clock_nanosleep, fds(), forever, -1),
#endif
#ifdef __NR_exit_group
    REFUSE(exit_group, fds(), never,
           "exit_group would end the whole process from a worker while other requests are in "
           "flight and before any completion could be reported."),
#endif
#ifdef __NR_epoll_wait
    ALLOW(epoll_wait, fds(0), forever, -1),
#endif
#ifdef __NR_epoll_ctl
    // EPOLL_CTL: fd=epfd, len=op, off=fd, addr=event
    ALLOW(epoll_ctl, fds(0, 2), finite, IORING_OP_EPOLL_CTL),
#endif
#ifdef __NR_tgkill
    ALLOW(tgkill, fds(), never, -1),
#endif
#ifdef __NR_utimes
    ALLOW(utimes, fds(), finite, -1),
#endif
#ifdef __NR_vserver
    // Not implemented on x86_64: the kernel returns -ENOSYS at once
    ALLOW(vserver, fds(), never, -1),
#endif
#ifdef __NR_mbind
    ALLOW(mbind, fds(), finite, -1),
#endif
#ifdef __NR_set_mempolicy
    REFUSE(set_mempolicy, fds(), finite,
           "set_mempolicy sets the NUMA memory policy of the calling thread only, so a worker "
           "would allocate under a policy the caller never set; use mbind for address ranges."),
#endif
#ifdef __NR_get_mempolicy
    ALLOW(get_mempolicy, fds(), finite, -1),
#endif
#ifdef __NR_mq_open
    ALLOW(mq_open, fds(), finite, -1),
#endif
#ifdef __NR_mq_unlink
    ALLOW(mq_unlink, fds(), finite, -1),
#endif
#ifdef __NR_mq_timedsend
    // A message-queue descriptor is a file descriptor on Linux
    ALLOW(mq_timedsend, fds(0), forever, -1),
#endif
#ifdef __NR_mq_timedreceive
    ALLOW(mq_timedreceive, fds(0), forever, -1),
#endif
#ifdef __NR_mq_notify
    ALLOW(mq_notify, fds(0), finite, -1),
#endif
#ifdef __NR_mq_getsetattr
    ALLOW(mq_getsetattr, fds(0), finite, -1),
#endif
#ifdef __NR_kexec_load
    ALLOW(kexec_load, fds(), finite, -1),
#endif
#ifdef __NR_waitid
    // args[1] is a pidfd only with P_PIDFD, so it is not marked
    ALLOW(waitid, fds(), forever, -1),
#endif
#ifdef __NR_add_key
    REFUSE(add_key, fds(), finite,
           "add_key resolves, and may create, the thread, process and session keyrings held in "
           "the calling thread's credentials, so in a worker it would use or change the worker's "
           "keyrings."),
#endif
#ifdef __NR_request_key
    REFUSE(request_key, fds(), finite,
           "request_key searches, and may create, the keyrings held in the calling thread's "
           "credentials, so in a worker it would use the worker's thread, process and session "
           "keyrings."),
#endif
#ifdef __NR_keyctl
    REFUSE(keyctl, fds(), finite,
           "Several keyctl operations read or replace keyrings held in the calling thread's "
           "credentials (joining a session keyring, the default request-key keyring, the thread "
           "keyring), so a worker's credentials would diverge from the process's."),
#endif
#ifdef __NR_ioprio_set
    // IOPRIO_WHO_PROCESS with who 0 means the worker: pass an explicit thread ID
    ALLOW(ioprio_set, fds(), finite, -1),
#endif
#ifdef __NR_ioprio_get
    ALLOW(ioprio_get, fds(), never, -1),
#endif
#ifdef __NR_inotify_init
    ALLOW(inotify_init, fds(), finite, -1),
#endif
#ifdef __NR_inotify_add_watch
    ALLOW(inotify_add_watch, fds(0), finite, -1),
#endif
#ifdef __NR_inotify_rm_watch
    ALLOW(inotify_rm_watch, fds(0), finite, -1),
#endif
#ifdef __NR_migrate_pages
    ALLOW(migrate_pages, fds(), finite, -1),
#endif
#ifdef __NR_openat
    // OPENAT: fd=dirfd, addr=path, open_flags=flags, len=mode. Finite, though opening a FIFO or tty
    // can wait: see docs/syscalls.md
    ALLOW(openat, fds(0), finite, IORING_OP_OPENAT),
#endif
#ifdef __NR_mkdirat
    // MKDIRAT: fd=dirfd, addr=path, len=mode
    ALLOW(mkdirat, fds(0), finite, IORING_OP_MKDIRAT),
#endif
#ifdef __NR_mknodat
    ALLOW(mknodat, fds(0), finite, -1),
#endif
#ifdef __NR_fchownat
    ALLOW(fchownat, fds(0), finite, -1),
#endif
#ifdef __NR_futimesat
    ALLOW(futimesat, fds(0), finite, -1),
#endif
#ifdef __NR_newfstatat
    ALLOW(newfstatat, fds(0), finite, -1),
#endif
#ifdef __NR_unlinkat
    // UNLINKAT: fd=dirfd, addr=path, unlink_flags=flags
    ALLOW(unlinkat, fds(0), finite, IORING_OP_UNLINKAT),
#endif
#ifdef __NR_renameat
    // RENAMEAT: fd=olddirfd, addr=oldpath, len=newdirfd, addr2=newpath, rename_flags=0
    ALLOW(renameat, fds(0, 2), finite, IORING_OP_RENAMEAT),
#endif
#ifdef __NR_linkat
    // LINKAT: fd=olddirfd, addr=oldpath, len=newdirfd, addr2=newpath, hardlink_flags=flags
    ALLOW(linkat, fds(0, 2), finite, IORING_OP_LINKAT),
#endif
#ifdef __NR_symlinkat
    // SYMLINKAT: fd=newdirfd, addr=target, addr2=linkpath
    ALLOW(symlinkat, fds(1), finite, IORING_OP_SYMLINKAT),
#endif
#ifdef __NR_readlinkat
    ALLOW(readlinkat, fds(0), finite, -1),
#endif
#ifdef __NR_fchmodat
    ALLOW(fchmodat, fds(0), finite, -1),
#endif
#ifdef __NR_faccessat
    ALLOW(faccessat, fds(0), finite, -1),
#endif
#ifdef __NR_pselect6
    ALLOW(pselect6, fds(), forever, -1),
#endif
#ifdef __NR_ppoll
    ALLOW(ppoll, fds(), forever, -1),
#endif
#ifdef __NR_unshare
    REFUSE(unshare, fds(), finite,
           "unshare gives the calling thread its own file table, file-system context or "
           "namespaces, so the change would apply to one worker instead of the process."),
#endif
#ifdef __NR_set_robust_list
    REFUSE(set_robust_list, fds(), never,
           "set_robust_list replaces the calling thread's robust-futex list, which the C library "
           "owns for every thread, the worker included."),
#endif
#ifdef __NR_get_robust_list
    ALLOW(get_robust_list, fds(), never, -1),
#endif
#ifdef __NR_splice
    // SPLICE: splice_fd_in=fd_in, splice_off_in=*off_in (-1 when off_in is NULL), fd=fd_out,
    // off=*off_out (-1 when NULL), len (capped at MAX_RW_COUNT), splice_flags=flags; io_uring takes
    // the offsets by value, so add the result to *off_in and *off_out afterwards as the call would.
    // Forever: one end is always a pipe
    ALLOW(splice, fds(0, 2), forever, IORING_OP_SPLICE),
#endif
#ifdef __NR_tee
    // TEE: splice_fd_in=fd_in, fd=fd_out, len (capped at MAX_RW_COUNT), splice_flags=flags.
    // Forever: both ends are pipes
    ALLOW(tee, fds(0, 1), forever, IORING_OP_TEE),
#endif
#ifdef __NR_sync_file_range
    // SYNC_FILE_RANGE: fd, off=offset, len=nbytes (must fit 32 bits, else use a worker; 0 means to
    // the end), sync_range_flags=flags
    ALLOW(sync_file_range, fds(0), finite, IORING_OP_SYNC_FILE_RANGE),
#endif
#ifdef __NR_vmsplice
    // Forever: the descriptor is always a pipe
    ALLOW(vmsplice, fds(0), forever, -1),
#endif
#ifdef __NR_move_pages
    ALLOW(move_pages, fds(), finite, -1),
#endif
#ifdef __NR_utimensat
    ALLOW(utimensat, fds(0), finite, -1),
#endif
#ifdef __NR_epoll_pwait
    ALLOW(epoll_pwait, fds(0), forever, -1),
#endif
#ifdef __NR_signalfd
    ALLOW(signalfd, fds(0), finite, -1),
#endif
#ifdef __NR_timerfd_create
    ALLOW(timerfd_create, fds(), finite, -1),
#endif
#ifdef __NR_eventfd
    ALLOW(eventfd, fds(), finite, -1),
#endif
#ifdef __NR_fallocate
    // FALLOCATE: fd, len=mode, off=offset, addr=len
    ALLOW(fallocate, fds(0), finite, IORING_OP_FALLOCATE),
#endif
#ifdef __NR_timerfd_settime
    ALLOW(timerfd_settime, fds(0), finite, -1),
#endif
#ifdef __NR_timerfd_gettime
    ALLOW(timerfd_gettime, fds(0), never, -1),
#endif
#ifdef __NR_accept4
    // ACCEPT: fd, addr=addr, addr2=addrlen pointer, accept_flags=flags
    ALLOW(accept4, fds(0), forever, IORING_OP_ACCEPT),
#endif
#ifdef __NR_signalfd4
    ALLOW(signalfd4, fds(0), finite, -1),
#endif
#ifdef __NR_eventfd2
    ALLOW(eventfd2, fds(), finite, -1),
#endif
#ifdef __NR_epoll_create1
    ALLOW(epoll_create1, fds(), finite, -1),
#endif
#ifdef __NR_dup3
    ALLOW(dup3, fds(0, 1), finite, -1),
#endif
#ifdef __NR_pipe2
    ALLOW(pipe2, fds(), finite, -1),
#endif
#ifdef __NR_inotify_init1
    ALLOW(inotify_init1, fds(), finite, -1),
#endif
#ifdef __NR_preadv
    // READV: fd, addr=iov, len=iovcnt, off=args[3] (on 64-bit pos_l holds the whole offset and
    // pos_h is ignored); an offset < 0 must fail with -EINVAL first
    ALLOW(preadv, fds(0), fd_dependent, IORING_OP_READV),
#endif
#ifdef __NR_pwritev
    // WRITEV: fd, addr=iov, len=iovcnt, off=args[3] (pos_h ignored); an offset < 0 must fail with
    // -EINVAL first
    ALLOW(pwritev, fds(0), fd_dependent, IORING_OP_WRITEV),
#endif
#ifdef __NR_rt_tgsigqueueinfo
    ALLOW(rt_tgsigqueueinfo, fds(), never, -1),
#endif
#ifdef __NR_perf_event_open
    // pid 0 means the worker: pass an explicit thread ID
    ALLOW(perf_event_open, fds(3), finite, -1),
#endif
#ifdef __NR_recvmmsg
    ALLOW(recvmmsg, fds(0), forever, -1),
#endif
#ifdef __NR_fanotify_init
    ALLOW(fanotify_init, fds(), finite, -1),
#endif
#ifdef __NR_fanotify_mark
    ALLOW(fanotify_mark, fds(0, 3), finite, -1),
#endif
#ifdef __NR_prlimit64
    ALLOW(prlimit64, fds(), finite, -1),
#endif
#ifdef __NR_name_to_handle_at
    ALLOW(name_to_handle_at, fds(0), finite, -1),
#endif
#ifdef __NR_open_by_handle_at
    // Finite, though opening a FIFO or tty can wait: see docs/syscalls.md
    ALLOW(open_by_handle_at, fds(0), finite, -1),
#endif
#ifdef __NR_clock_adjtime
    ALLOW(clock_adjtime, fds(), finite, -1),
#endif
#ifdef __NR_syncfs
    ALLOW(syncfs, fds(0), finite, -1),
#endif
#ifdef __NR_sendmmsg
    ALLOW(sendmmsg, fds(0), forever, -1),
#endif
#ifdef __NR_setns
    REFUSE(setns, fds(0), finite,
           "setns moves the calling thread alone into another namespace, so one worker would run "
           "later requests in a different mount, network or user namespace."),
#endif
#ifdef __NR_getcpu
    ALLOW(getcpu, fds(), never, -1),
#endif
#ifdef __NR_process_vm_readv
    ALLOW(process_vm_readv, fds(), finite, -1),
#endif
#ifdef __NR_process_vm_writev
    ALLOW(process_vm_writev, fds(), finite, -1),
#endif
#ifdef __NR_kcmp
    // idx1/idx2 are descriptors of the compared processes, not of this one
    ALLOW(kcmp, fds(), finite, -1),
#endif
#ifdef __NR_finit_module
    ALLOW(finit_module, fds(0), finite, -1),
#endif
#ifdef __NR_sched_setattr
    // pid 0 means the worker: pass an explicit thread ID
    ALLOW(sched_setattr, fds(), finite, -1),
#endif
#ifdef __NR_sched_getattr
    ALLOW(sched_getattr, fds(), never, -1),
#endif
#ifdef __NR_renameat2
    // RENAMEAT: fd=olddirfd, addr=oldpath, len=newdirfd, addr2=newpath, rename_flags=flags
    ALLOW(renameat2, fds(0, 2), finite, IORING_OP_RENAMEAT),
#endif
#ifdef __NR_seccomp
    REFUSE(seccomp, fds(), finite,
           "seccomp installs a filter on the calling thread (and threads it later creates) only, "
           "so it would confine one worker and not the process."),
#endif
#ifdef __NR_getrandom
    // Waits only until the kernel's random pool is first initialised
    ALLOW(getrandom, fds(), finite, -1),
#endif
#ifdef __NR_memfd_create
    ALLOW(memfd_create, fds(), finite, -1),
#endif
#ifdef __NR_kexec_file_load
    ALLOW(kexec_file_load, fds(0, 1), finite, -1),
#endif
#ifdef __NR_bpf
    ALLOW(bpf, fds(), finite, -1),
#endif
#ifdef __NR_execveat
    REFUSE(execveat, fds(0), finite,
           "execveat replaces the whole process image from a worker, just as execve does, killing "
           "the submitting thread and every request in flight."),
#endif
#ifdef __NR_userfaultfd
    ALLOW(userfaultfd, fds(), finite, -1),
#endif
#ifdef __NR_membarrier
    ALLOW(membarrier, fds(), finite, -1),
#endif
#ifdef __NR_mlock2
    ALLOW(mlock2, fds(), finite, -1),
#endif
#ifdef __NR_copy_file_range
    // Finite: regular files only (-EINVAL otherwise)
    ALLOW(copy_file_range, fds(0, 2), finite, -1),
#endif
#ifdef __NR_preadv2
    // READV: fd, addr=iov, len=iovcnt, off=args[3] (-1 means the current position in both),
    // rw_flags=args[5]; other offsets < 0 must fail with -EINVAL first
    ALLOW(preadv2, fds(0), fd_dependent, IORING_OP_READV),
#endif
#ifdef __NR_pwritev2
    // WRITEV: fd, addr=iov, len=iovcnt, off=args[3] (-1 means the current position in both),
    // rw_flags=args[5]; other offsets < 0 must fail with -EINVAL first
    ALLOW(pwritev2, fds(0), fd_dependent, IORING_OP_WRITEV),
#endif
#ifdef __NR_pkey_mprotect
    ALLOW(pkey_mprotect, fds(), finite, -1),
#endif
#ifdef __NR_pkey_alloc
    REFUSE(pkey_alloc, fds(), finite,
           "pkey_alloc sets the new key's initial access rights in the calling thread's PKRU "
           "register only, so the worker, whose later copies to and from user memory obey that "
           "register, would keep rights the caller does not have."),
#endif
#ifdef __NR_pkey_free
    ALLOW(pkey_free, fds(), finite, -1),
#endif
#ifdef __NR_statx
    // STATX: fd=dirfd, addr=path, statx_flags=flags, len=mask, addr2=statxbuf
    ALLOW(statx, fds(0), finite, IORING_OP_STATX),
#endif
#ifdef __NR_io_pgetevents
    ALLOW(io_pgetevents, fds(), forever, -1),
#endif
#ifdef __NR_rseq
    REFUSE(rseq, fds(), never,
           "rseq registers or unregisters the calling thread's restartable-sequences area, which "
           "the C library already owns for every thread, the worker included."),
#endif
#ifdef __NR_uretprobe
    // X86_64 number 335 since Linux 6.11
    REFUSE(uretprobe, fds(), never,
           "uretprobe may only be executed by the kernel's uretprobe trampoline; called from "
           "anywhere else the kernel sends the calling thread SIGILL."),
#endif
#ifdef __NR_pidfd_send_signal
    ALLOW(pidfd_send_signal, fds(0), never, -1),
#endif
#ifdef __NR_io_uring_setup
    // Allowed: see docs on rings used from workers
    ALLOW(io_uring_setup, fds(), finite, -1),
#endif
#ifdef __NR_io_uring_enter
    ALLOW(io_uring_enter, fds(0), forever, -1),
#endif
#ifdef __NR_io_uring_register
    // Some operations quiesce the ring, waiting for every request in it
    ALLOW(io_uring_register, fds(0), forever, -1),
#endif
#ifdef __NR_open_tree
    ALLOW(open_tree, fds(0), finite, -1),
#endif
#ifdef __NR_move_mount
    ALLOW(move_mount, fds(0, 2), finite, -1),
#endif
#ifdef __NR_fsopen
    ALLOW(fsopen, fds(), finite, -1),
#endif
#ifdef __NR_fsconfig
    // args[4] is a descriptor only for some commands, so it is not marked
    ALLOW(fsconfig, fds(0), finite, -1),
#endif
#ifdef __NR_fsmount
    ALLOW(fsmount, fds(0), finite, -1),
#endif
#ifdef __NR_fspick
    ALLOW(fspick, fds(0), finite, -1),
#endif
#ifdef __NR_pidfd_open
    ALLOW(pidfd_open, fds(), finite, -1),
#endif
#ifdef __NR_clone3
    REFUSE(clone3, fds(), finite,
           "clone3, like clone, would start the child from a worker's registers, so it would "
           "resume inside aio2's worker loop instead of the caller's code."),
#endif
#ifdef __NR_close_range
    // Its arguments bound a range of descriptors, they are not descriptors
    ALLOW(close_range, fds(), finite, -1),
#endif
#ifdef __NR_openat2
    // OPENAT2: fd=dirfd, addr=path, addr2=how, len=size. Finite, though opening a FIFO or tty can
    // wait: see docs/syscalls.md
    ALLOW(openat2, fds(0), finite, IORING_OP_OPENAT2),
#endif
#ifdef __NR_pidfd_getfd
    // args[1] is a descriptor of the other process
    ALLOW(pidfd_getfd, fds(0), finite, -1),
#endif
#ifdef __NR_faccessat2
    ALLOW(faccessat2, fds(0), finite, -1),
#endif
#ifdef __NR_process_madvise
    ALLOW(process_madvise, fds(0), finite, -1),
#endif
#ifdef __NR_epoll_pwait2
    ALLOW(epoll_pwait2, fds(0), forever, -1),
#endif
#ifdef __NR_mount_setattr
    ALLOW(mount_setattr, fds(0), finite, -1),
#endif
#ifdef __NR_quotactl_fd
    ALLOW(quotactl_fd, fds(0), finite, -1),
#endif
#ifdef __NR_landlock_create_ruleset
    ALLOW(landlock_create_ruleset, fds(), finite, -1),
#endif
#ifdef __NR_landlock_add_rule
    ALLOW(landlock_add_rule, fds(0), finite, -1),
#endif
#ifdef __NR_landlock_restrict_self
    REFUSE(landlock_restrict_self, fds(0), finite,
           "landlock_restrict_self enforces the ruleset on the calling thread only, so it would "
           "sandbox one worker and leave the rest of the process unrestricted."),
#endif
#ifdef __NR_memfd_secret
    ALLOW(memfd_secret, fds(), finite, -1),
#endif
#ifdef __NR_process_mrelease
    ALLOW(process_mrelease, fds(0), finite, -1),
#endif
#ifdef __NR_futex_waitv
    ALLOW(futex_waitv, fds(), forever, -1),
#endif
#ifdef __NR_set_mempolicy_home_node
    // Acts on an address range, not on the thread
    ALLOW(set_mempolicy_home_node, fds(), finite, -1),
#endif

    // Calls newer than the kernel headers this was written against (Linux 6.1): like every entry
    // above, each is compiled in only where <sys/syscall.h> defines its number.
#ifdef __NR_cachestat
    ALLOW(cachestat, fds(0), finite, -1),
#endif
#ifdef __NR_fchmodat2
    ALLOW(fchmodat2, fds(0), finite, -1),
#endif
#ifdef __NR_map_shadow_stack
    // Maps memory; it does not enable a shadow stack for the thread
    ALLOW(map_shadow_stack, fds(), finite, -1),
#endif
#ifdef __NR_futex_wake
    ALLOW(futex_wake, fds(), finite, -1),
#endif
#ifdef __NR_futex_wait
    ALLOW(futex_wait, fds(), forever, -1),
#endif
#ifdef __NR_futex_requeue
    ALLOW(futex_requeue, fds(), finite, -1),
#endif
#ifdef __NR_statmount
    ALLOW(statmount, fds(), finite, -1),
#endif
#ifdef __NR_listmount
    ALLOW(listmount, fds(), finite, -1),
#endif
#ifdef __NR_lsm_get_self_attr
    ALLOW(lsm_get_self_attr, fds(), finite, -1),
#endif
#ifdef __NR_lsm_set_self_attr
    REFUSE(lsm_set_self_attr, fds(), finite,
           "lsm_set_self_attr sets security-module attributes of the calling thread only (such as "
           "the label for new files or sockets), so one worker's security context would diverge "
           "from the process's."),
#endif
#ifdef __NR_lsm_list_modules
    ALLOW(lsm_list_modules, fds(), never, -1),
#endif
#ifdef __NR_mseal
    ALLOW(mseal, fds(), finite, -1),
#endif
#ifdef __NR_setxattrat
    ALLOW(setxattrat, fds(0), finite, -1),
#endif
#ifdef __NR_getxattrat
    ALLOW(getxattrat, fds(0), finite, -1),
#endif
#ifdef __NR_listxattrat
    ALLOW(listxattrat, fds(0), finite, -1),
#endif
#ifdef __NR_removexattrat
    ALLOW(removexattrat, fds(0), finite, -1),
#endif
#ifdef __NR_open_tree_attr
    ALLOW(open_tree_attr, fds(0), finite, -1),
#endif
#ifdef __NR_file_getattr
    ALLOW(file_getattr, fds(0), finite, -1),
#endif
#ifdef __NR_file_setattr
    ALLOW(file_setattr, fds(0), finite, -1),
#endif
};

#undef ALLOW
#undef REFUSE

constexpr long max_nr() {
  long m = -1;
  for (const entry &e : k_entries)
    if (e.nr > m) m = e.nr;
  return m;
}

constexpr long k_size = max_nr() + 1;

// The calls whose behaviour does not depend on their caller's credentials
// (syscall_info::creds_free). Reads check access when the descriptor is
// opened: the kernel's read handlers use the file's credentials, never the
// reader's. The identifiers and the clock read nothing a credential
// guards. Anything not listed carries its submitter's credentials.
constexpr long k_creds_free[] = {
    __NR_read,  __NR_pread64, __NR_readv,  __NR_preadv, __NR_preadv2, __NR_fsync,
    __NR_fdatasync, __NR_getpid, __NR_getppid, __NR_gettid, __NR_clock_gettime,
};

constexpr std::array<syscall_info, k_size> build() {
  std::array<syscall_info, k_size> t{};
  for (syscall_info &s : t) s = syscall_info{nullptr, 0, blocking::never, -1, nullptr};
  for (const entry &e : k_entries) t[static_cast<size_t>(e.nr)] = e.info;
  for (const long nr : k_creds_free)
    if (nr >= 0 && nr < k_size) t[static_cast<size_t>(nr)].creds_free = true;
  return t;
}

constexpr std::array<syscall_info, k_size> k_table = build();

// ---- Compile-time checks of the entries ------------------------------------

constexpr size_t length(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

constexpr bool numbers_valid_and_unique() {
  for (const entry &e : k_entries) {
    if (e.nr < 0) return false;
    size_t same = 0;
    for (const entry &f : k_entries) same += f.nr == e.nr ? 1 : 0;
    if (same != 1) return false;
  }
  return true;
}

// Descriptors are among the six arguments; a call whose class depends on its
// descriptors names at least one.
constexpr bool fd_args_valid() {
  for (const entry &e : k_entries) {
    if (e.info.fd_args >= (1u << 6)) return false;
    if (e.info.blocks == blocking::fd_dependent && e.info.fd_args == 0) return false;
  }
  return true;
}

// A refused call has no io_uring path, and its reason is one sentence.
constexpr bool refusals_valid() {
  for (const entry &e : k_entries) {
    if (e.info.refused == nullptr) continue;
    const size_t n = length(e.info.refused);
    if (e.info.uring_op != -1 || n < 20 || e.info.refused[n - 1] != '.') return false;
    for (size_t i = 0; i + 1 < n; i++)
      if (e.info.refused[i] == '.' && e.info.refused[i + 1] == ' ') return false;
  }
  return true;
}

constexpr bool uring_ops_valid() {
  for (const entry &e : k_entries)
    if (e.info.uring_op < -1 || e.info.uring_op >= IORING_OP_LAST) return false;
  return true;
}

static_assert(numbers_valid_and_unique(), "every entry needs its own non-negative number");
static_assert(fd_args_valid(), "fd_args: bits 0-5 only, and fd_dependent needs a descriptor");
static_assert(refusals_valid(), "a refused call has uring_op -1 and a one-sentence reason");
static_assert(uring_ops_valid(), "uring_op is -1 or an IORING_OP_* of the installed header");

constexpr bool creds_free_valid() {
  for (const long nr : k_creds_free)
    if (nr < 0 || nr >= k_size || k_table[static_cast<size_t>(nr)].name == nullptr ||
        k_table[static_cast<size_t>(nr)].refused != nullptr)
      return false;
  return true;
}
static_assert(creds_free_valid(), "k_creds_free names allowed calls of the table");
static_assert(k_size > __NR_read && k_table[__NR_read].name != nullptr, "the table is empty");

}  // namespace

const syscall_info *lookup(long nr) noexcept {
  if (nr < 0 || nr >= k_size) return nullptr;
  const syscall_info &s = k_table[static_cast<size_t>(nr)];
  return s.name != nullptr ? &s : nullptr;
}

long table_size() noexcept { return k_size; }

long number_of(const char *name) noexcept {
  if (name == nullptr) return -1;
  for (long nr = 0; nr < k_size; nr++) {
    const char *n = k_table[static_cast<size_t>(nr)].name;
    if (n != nullptr && std::strcmp(n, name) == 0) return nr;
  }
  return -1;
}

}  // namespace aio2::sys
