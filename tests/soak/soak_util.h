// SPDX-License-Identifier: MIT
// What the soak's modes share (tests/soak/): options, failure reports,
// counters, the data file and its pattern, the signal storm, and the
// process's descriptor and thread counts.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace soak {

struct options {
  double seconds = 10;      // how long each mode runs
  std::string mode = "all";  // core, libaio, posix or all
  uint32_t fault_ppm = 0;    // allocation failures per million calls at each site
  uint64_t seed = 1;
  bool no_uring = false;     // io_uring_setup refused by a seccomp filter
  std::string dir;           // where the data files go
  std::string libaio_path;   // the libaio replacement (libaio.so.1)
  std::string posix_path;    // the POSIX AIO replacement (libaio2-posix.so)
};

// Failures, counted and the first few printed.
extern std::atomic<uint64_t> g_failures;
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Named counters, printed at the end of each mode. Adding takes a mutex:
// counters are bumped per batch, not per byte.
class counters {
 public:
  void add(const std::string &name, uint64_t n = 1);
  uint64_t get(const std::string &name);
  void print(const char *mode, double seconds);

 private:
  std::mutex mu_;
  std::map<std::string, uint64_t> c_;  // guarded by mu_
};

// The data file: `bytes` of a pattern that depends on the offset, read by
// every mode and never written.
constexpr uint64_t kDataBytes = 8u << 20;
inline unsigned char data_byte(uint64_t off) {
  return static_cast<unsigned char>((off * 131 + 7) ^ (off >> 11));
}
// Bytes a write lays down: a pattern that depends on the writer's key too,
// so a block left by an earlier round is told apart.
inline unsigned char written_byte(uint64_t key, uint64_t i) {
  return static_cast<unsigned char>((key * 0x9e3779b97f4a7c15ull + i * 151) >> 24);
}
// Index of the first byte of `p` that is not the data file's at `off`, or
// `len` when all are.
size_t data_mismatch(const unsigned char *p, uint64_t off, size_t len);
size_t written_mismatch(const unsigned char *p, uint64_t key, size_t len);

// Creates (once) and opens the data file in `dir`; its path in *path.
int open_data_file(const std::string &dir, std::string *path);

// Open descriptors (/proc/self/fd) and threads (/proc/self/task).
size_t fd_count();
size_t thread_count();
// Waits until the thread count is back to `base` (threads of the library and
// of io_uring exit a little after the call that ends them returns); false
// when it is not within `seconds`.
bool threads_back_to(size_t base, int seconds);

// A thread sending SIGUSR1 (its handler is installed without SA_RESTART, so
// a blocked call returns EINTR) to the threads that enrolled, at random
// short intervals, while it runs.
class signal_storm {
 public:
  static void install_handler();
  explicit signal_storm(uint64_t seed);
  ~signal_storm();
  // The calling thread receives signals until leave(); leave() returns only
  // when no signal can be sent to it any more.
  void enrol();
  void leave();
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  void main_loop(uint64_t seed);
  std::mutex mu_;
  std::vector<pthread_t> targets_;  // guarded by mu_
  // Set by the destructor; the storm thread stops when it sees it. Relaxed:
  // it publishes nothing else, and join() orders the rest.
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};  // signals sent (relaxed counter)
  std::thread thread_;
};

// A small generator per thread.
using rng = std::mt19937_64;
inline uint64_t pick(rng &r, uint64_t n) { return n ? r() % n : 0; }
inline bool chance(rng &r, unsigned percent) { return r() % 100 < percent; }

// The modes; each returns when its time is up, with its checks done.
void run_core(const options &o, counters &c);
void run_libaio(const options &o, counters &c);
void run_posix(const options &o, counters &c);

}  // namespace soak
