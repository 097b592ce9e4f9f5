// SPDX-License-Identifier: MIT
// A system call with six arguments that returns the kernel's own result:
// a value, or -errno. No errno, no libc wrapper in between, so a result of -1
// that is not an error cannot be confused with one.
#pragma once

#include <cstdint>

namespace aio2::sys {

inline int64_t raw_syscall(long nr, const uint64_t a[6]) noexcept {
  // Read the arguments first: register variables are only guaranteed to
  // hold their value up to the asm if no call comes between, and sanitizer
  // builds instrument each memory load with a call.
  const uint64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5];
#if defined(__x86_64__)
  register uint64_t r10 __asm__("r10") = a3;
  register uint64_t r8 __asm__("r8") = a4;
  register uint64_t r9 __asm__("r9") = a5;
  int64_t ret;
  __asm__ __volatile__("syscall"
                       : "=a"(ret)
                       : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                       : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register uint64_t x8 __asm__("x8") = static_cast<uint64_t>(nr);
  register uint64_t x0 __asm__("x0") = a0;
  register uint64_t x1 __asm__("x1") = a1;
  register uint64_t x2 __asm__("x2") = a2;
  register uint64_t x3 __asm__("x3") = a3;
  register uint64_t x4 __asm__("x4") = a4;
  register uint64_t x5 __asm__("x5") = a5;
  __asm__ __volatile__("svc 0"
                       : "+r"(x0)
                       : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                       : "memory");
  return static_cast<int64_t>(x0);
#else
#error "aio2: add this architecture's system call sequence"
#endif
}

}  // namespace aio2::sys
