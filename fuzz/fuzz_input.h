// SPDX-License-Identifier: MIT
// Reading a fuzzer's input as a stream of little-endian fields; past the end
// every field reads as zero, so any input, however short, is a whole case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace aio2_fuzz {

class input {
 public:
  input(const uint8_t *data, size_t size) : p_(data), left_(data ? size : 0) {}

  template <class T>
  T get() {
    T v{};
    const size_t n = left_ < sizeof v ? left_ : sizeof v;
    if (n) std::memcpy(&v, p_, n);
    p_ += n;
    left_ -= n;
    return v;
  }
  // Up to `n` bytes into `out`; the rest of `out` is zero. Returns bytes read.
  size_t bytes(void *out, size_t n) {
    const size_t k = left_ < n ? left_ : n;
    if (n == 0) return 0;
    std::memset(out, 0, n);
    if (k) std::memcpy(out, p_, k);
    p_ += k;
    left_ -= k;
    return k;
  }
  size_t left() const { return left_; }
  bool empty() const { return left_ == 0; }

 private:
  const uint8_t *p_;
  size_t left_;
};

// A broken invariant: say which, then abort (libFuzzer records the input).
[[noreturn]] inline void fail(const char *what, long long a = 0, long long b = 0) {
  std::fprintf(stderr, "aio2 fuzz: invariant broken: %s (%lld, %lld)\n", what, a, b);
  std::abort();
}

#define AIO2_FUZZ_CHECK(cond, ...) \
  do {                             \
    if (!(cond)) ::aio2_fuzz::fail(#cond, ##__VA_ARGS__); \
  } while (0)

}  // namespace aio2_fuzz
