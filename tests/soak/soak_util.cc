// SPDX-License-Identifier: MIT
#include "soak_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <filesystem>

namespace soak {

std::atomic<uint64_t> g_failures{0};  // relaxed counter, read after every thread joined

void fail(const char *fmt, ...) {
  const uint64_t n = g_failures.fetch_add(1, std::memory_order_relaxed);
  if (n >= 20) return;  // the first ones say enough
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "aio2_soak: FAIL: %s\n", text);
}

void counters::add(const std::string &name, uint64_t n) {
  std::lock_guard lk(mu_);
  c_[name] += n;
}

uint64_t counters::get(const std::string &name) {
  std::lock_guard lk(mu_);
  auto it = c_.find(name);
  return it == c_.end() ? 0 : it->second;
}

void counters::print(const char *mode, double seconds) {
  std::lock_guard lk(mu_);
  std::printf("%s: %.1f s\n", mode, seconds);
  for (const auto &[name, n] : c_)
    std::printf("  %-28s %llu\n", name.c_str(), static_cast<unsigned long long>(n));
  std::fflush(stdout);
}

size_t data_mismatch(const unsigned char *p, uint64_t off, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != data_byte(off + i)) return i;
  return len;
}

size_t written_mismatch(const unsigned char *p, uint64_t key, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != written_byte(key, i)) return i;
  return len;
}

int open_data_file(const std::string &dir, std::string *path) {
  *path = dir + "/aio2_soak.data";
  int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == kDataBytes) {
    // Made by an earlier run: its contents are checked before use.
    std::vector<unsigned char> b(1 << 20);
    bool ok = true;
    for (uint64_t off = 0; ok && off < kDataBytes; off += b.size())
      ok = pread(fd, b.data(), b.size(), static_cast<off_t>(off)) ==
               static_cast<ssize_t>(b.size()) &&
           data_mismatch(b.data(), off, b.size()) == b.size();
    if (ok) return fd;
  }
  if (fd >= 0) close(fd);
  const std::string tmp = *path + "." + std::to_string(getpid());  // renamed when whole
  const int w = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w < 0) return -errno;
  std::vector<unsigned char> b(1 << 20);
  for (uint64_t off = 0; off < kDataBytes; off += b.size()) {
    for (size_t i = 0; i < b.size(); i++) b[i] = data_byte(off + i);
    if (pwrite(w, b.data(), b.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(b.size())) {
      close(w);
      return -EIO;
    }
  }
  fsync(w);
  close(w);
  if (rename(tmp.c_str(), path->c_str()) != 0) return -errno;
  fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

namespace {
size_t entries(const char *dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       it != std::filesystem::directory_iterator(); it.increment(ec))
    n++;
  return n;
}
}  // namespace

size_t fd_count() { return entries("/proc/self/fd"); }
size_t thread_count() { return entries("/proc/self/task"); }

bool threads_back_to(size_t base, int seconds) {
  for (int i = 0; i < seconds * 100; i++) {
    if (thread_count() <= base) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return thread_count() <= base;
}

namespace {
void on_storm_signal(int) {}
}  // namespace

void signal_storm::install_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_storm_signal;  // no SA_RESTART: blocked calls return EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
}

signal_storm::signal_storm(uint64_t seed) : thread_(&signal_storm::main_loop, this, seed) {}

signal_storm::~signal_storm() {
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
}

void signal_storm::enrol() {
  std::lock_guard lk(mu_);
  targets_.push_back(pthread_self());
}

void signal_storm::leave() {
  std::lock_guard lk(mu_);  // the storm sends under mu_: none after this
  for (size_t i = 0; i < targets_.size(); i++)
    if (pthread_equal(targets_[i], pthread_self())) {
      targets_.erase(targets_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
}

void signal_storm::main_loop(uint64_t seed) {
  // The storm thread itself takes no SIGUSR1.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  rng r(seed);
  while (!stop_.load(std::memory_order_relaxed)) {
    {
      std::lock_guard lk(mu_);
      if (!targets_.empty()) {
        pthread_kill(targets_[pick(r, targets_.size())], SIGUSR1);
        sent_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50 + pick(r, 500)));
  }
}

}  // namespace soak
