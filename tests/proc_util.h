// SPDX-License-Identifier: MIT
// Looking at this process's threads through /proc, for tests that must wait
// until a worker is really inside a system call, or count threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>

namespace aio2_test {

// How many threads of this process are inside system call `nr` with first
// argument `arg0`: lines of /proc/self/task/*/syscall that start "nr 0xarg0 ".
inline size_t threads_blocked_in(long nr, long arg0) {
  char prefix[64];
  std::snprintf(prefix, sizeof prefix, "%ld 0x%lx ", nr, static_cast<unsigned long>(arg0));
  size_t n = 0;
  std::error_code ec;
  for (const auto &task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream f(task.path() / "syscall");  // a task may exit meanwhile
    std::string line;
    if (std::getline(f, line) && line.rfind(prefix, 0) == 0) n++;
  }
  return n;
}

// Whether some thread of this process is inside `nr` with first argument `arg0`.
inline bool thread_blocked_in(long nr, long arg0) { return threads_blocked_in(nr, arg0) > 0; }

// The number of threads of this process that user space made. io_uring's
// own workers (io-wq's "iou-wrk-*", the SQ poller's "iou-sqp-*") are tasks
// of the process too, but the kernel starts them for blocking requests and
// ends them on its own time, also after the ring that made them is gone:
// counted, a worker left by an earlier test that exits meanwhile would look
// like a thread of ours gone, or one still running like a thread of ours
// leaked.
inline size_t thread_count() {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream f(it->path() / "comm");  // a task may exit meanwhile
    std::string comm;
    std::getline(f, comm);
    if (comm.rfind("iou-", 0) != 0) n++;
  }
  return n;
}

// thread_count() once the threads that were ending have gone: a thread
// joined a moment ago (an earlier test's worker) can still be listed for a
// while, more so on a loaded machine. Sampled until it holds for 50 ms, or
// 2 s have passed.
inline size_t settled_thread_count() {
  size_t n = thread_count();
  for (int stable = 0, tries = 0; stable < 5 && tries < 200; tries++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const size_t now = thread_count();
    stable = now == n ? stable + 1 : 0;
    n = now;
  }
  return n;
}

}  // namespace aio2_test
