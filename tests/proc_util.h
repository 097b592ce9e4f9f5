// SPDX-License-Identifier: MIT
// Looking at this process's threads through /proc, for tests that must wait
// until a worker is really inside a system call, or count threads.
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

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

// The number of threads in this process.
inline size_t thread_count() {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       it != std::filesystem::directory_iterator(); it.increment(ec))
    n++;
  return n;
}

}  // namespace aio2_test
