// SPDX-License-Identifier: MIT
// A destination buffer whose pages userfaultfd(2) holds: the kernel's copy
// into them (a read's copy_to_user) waits inside the system call, in the
// thread that makes it, until the test releases the buffer. So "the request
// is running right now" is a state a test waits for (touched()), not a
// moment it guesses with a sleep.
//
//   aio2_test::held_buffer hb(bytes, held_from);
//   if (!hb.ok()) GTEST_SKIP() << hb.why();
//   ... submit a read into hb.data() ...
//   ASSERT_TRUE(hb.wait_touched());   // a thread waits in the copy now
//   ... cancel it ...
//   hb.release();                     // the copy goes on
//
// Pages before `held_from` are ordinary memory (touched at construction);
// from there on they are missing until release() maps them (zero-filled),
// after which the copy that waited, and every later access, proceeds. The
// test's own thread must not touch the held part before release(), and
// nor may a read made in the submitting thread (a nowait attempt of cached
// pages): such a thread would wait for itself. A watchdog releases the
// buffer 10 s after the first touch, so a wrong route fails the test
// (auto_released()) instead of hanging it.
//
// Needs userfaultfd for faults in kernel mode: root, or
// vm.unprivileged_userfaultfd=1 (without either ok() is false: skip).
#pragma once

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

namespace aio2_test {

class held_buffer {
 public:
  explicit held_buffer(size_t bytes, size_t held_from = 0) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    bytes_ = (bytes + page - 1) / page * page;
    held_from_ = held_from / page * page;
    if (held_from_ >= bytes_) {
      why_ = "nothing to hold";
      return;
    }
    uffd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (uffd_ < 0) {
      why_ = std::string("userfaultfd: ") + std::strerror(errno);
      return;
    }
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_THREAD_ID;
    if (ioctl(uffd_, UFFDIO_API, &api) != 0) {
      why_ = std::string("UFFDIO_API: ") + std::strerror(errno);
      return;
    }
    void *m = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      why_ = std::string("mmap: ") + std::strerror(errno);
      return;
    }
    base_ = static_cast<char *>(m);
    if (held_from_) std::memset(base_, 0, held_from_);  // ordinary pages
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(base_ + held_from_);
    reg.range.len = bytes_ - held_from_;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) {
      why_ = std::string("UFFDIO_REGISTER: ") + std::strerror(errno);
      return;
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) {
      why_ = std::string("eventfd: ") + std::strerror(errno);
      return;
    }
    watcher_ = std::thread([this] { watch(); });
    ok_ = true;
  }

  ~held_buffer() {
    if (watcher_.joinable()) {
      release();
      const uint64_t one = 1;
      (void)!write(stop_fd_, &one, sizeof one);
      watcher_.join();
    }
    if (stop_fd_ >= 0) close(stop_fd_);
    if (base_) munmap(base_, bytes_);
    if (uffd_ >= 0) close(uffd_);
  }
  held_buffer(const held_buffer &) = delete;
  held_buffer &operator=(const held_buffer &) = delete;

  bool ok() const { return ok_; }
  const std::string &why() const { return why_; }
  char *data() const { return base_; }
  size_t size() const { return bytes_; }

  // Waits until a thread waits in a copy into the held part; false when
  // none has within `timeout` (a liveness bound, not a measurement).
  bool wait_touched(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [this] { return touched_; });
  }

  // Maps every held page (zero-filled): the copy that waits goes on.
  // Idempotent.
  void release() {
    std::lock_guard lk(mu_);
    release_locked();
  }

  // The thread that first waited in a copy (0 before).
  pid_t toucher() const {
    std::lock_guard lk(mu_);
    return toucher_;
  }

  // The watchdog had to release the buffer: nobody did within 10 s of the
  // first touch.
  bool auto_released() const {
    std::lock_guard lk(mu_);
    return auto_released_;
  }

 private:
  void release_locked() {
    if (released_ || !ok_) return;
    released_ = true;
    uffdio_range range{};
    range.start = reinterpret_cast<uint64_t>(base_ + held_from_);
    range.len = bytes_ - held_from_;
    // Maps what is still missing (pages a copy already filled stay as they
    // are: -EEXIST for them is expected) and wakes every waiting thread.
    uffdio_zeropage z{};
    z.range = range;
    (void)ioctl(uffd_, UFFDIO_ZEROPAGE, &z);
    (void)ioctl(uffd_, UFFDIO_UNREGISTER, &range);
    (void)ioctl(uffd_, UFFDIO_WAKE, &range);
  }

  // Reads the fault messages; wakes wait_touched(); releases the buffer
  // 10 s after the first touch if the test has not.
  void watch() {
    using clock = std::chrono::steady_clock;
    clock::time_point first{};
    for (;;) {
      pollfd p[2] = {{uffd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      (void)poll(p, 2, 100);
      if (p[1].revents) return;
      if (p[0].revents & POLLIN) {
        uffd_msg msg;
        while (read(uffd_, &msg, sizeof msg) == static_cast<ssize_t>(sizeof msg)) {
          if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
          std::lock_guard lk(mu_);
          if (!touched_) first = clock::now();
          if (!touched_) toucher_ = static_cast<pid_t>(msg.arg.pagefault.feat.ptid);
          touched_ = true;
          cv_.notify_all();
        }
      }
      std::lock_guard lk(mu_);
      if (touched_ && !released_ && clock::now() - first > std::chrono::seconds(10)) {
        auto_released_ = true;
        release_locked();
      }
    }
  }

  size_t bytes_ = 0, held_from_ = 0;
  char *base_ = nullptr;
  int uffd_ = -1, stop_fd_ = -1;
  bool ok_ = false;
  std::string why_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool touched_ = false;        // guarded by mu_
  pid_t toucher_ = 0;           // guarded by mu_: the first thread that waited
  bool released_ = false;       // guarded by mu_
  bool auto_released_ = false;  // guarded by mu_
  std::thread watcher_;
};

// A file to read into a held buffer from another thread: /proc/self/cmdline,
// which has no RWF_NOWAIT (a nowait first try fails with -EOPNOTSUPP before
// any copy, so nothing waits in the submitting thread) and which io_uring
// reads on one of its workers (a file like /proc/version it reads inside
// io_uring_enter). `bytes` is what a read of it returns.
struct worker_read_file {
  int fd = -1;
  std::string bytes;
  worker_read_file() {
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    char probe[4096];
    const ssize_t n = fd < 0 ? -1 : pread(fd, probe, sizeof probe, 0);
    if (n > 0) bytes.assign(probe, static_cast<size_t>(n));
  }
  ~worker_read_file() {
    if (fd >= 0) close(fd);
  }
  worker_read_file(const worker_read_file &) = delete;
  worker_read_file &operator=(const worker_read_file &) = delete;
  bool ok() const { return !bytes.empty(); }
  ssize_t size() const { return static_cast<ssize_t>(bytes.size()); }
};

}  // namespace aio2_test
