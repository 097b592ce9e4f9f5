// SPDX-License-Identifier: MIT
// Helpers for the tests of the core's parts on their own (the executors and
// the completion queue, through the internal headers): a completion_sink
// that records what reaches it, requests owned by the test, and a wait for
// a thread of this process to be blocked inside a given system call (read
// from /proc/self/task/*/syscall), so that tests need no sleeps.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "exec/executor.h"
#include "exec/request.h"

namespace aio2_test {

inline pid_t this_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// A completion_sink that keeps what it is given (thread-safe).
class recording_sink final : public aio2::exec::completion_sink {
 public:
  struct completion {
    aio2::exec::request *r;
    uint64_t user_data;
    int64_t res;
    uint32_t flags;
    pid_t tid;  // the thread that completed it
  };

  void complete(aio2::exec::request *r) noexcept override {
    std::lock_guard lk(mu_);
    done_.push_back({r, r->io.user_data, r->res, r->event_flags, this_tid()});
    unannounced_[this_tid()]++;
    cv_.notify_all();
  }
  void complete_many(aio2::exec::request *const *rs, size_t n) noexcept override {
    for (size_t i = 0; i < n; i++) complete(rs[i]);
  }
  void batch_done(bool collected) noexcept override {
    std::lock_guard lk(mu_);
    (collected ? batches_signalled_ : batches_)++;
    unannounced_.erase(this_tid());
  }
  // Completions that no batch_done from the thread that made them has
  // followed yet (reapers would not be woken for them).
  size_t unannounced() {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (const auto &[tid, count] : unannounced_) n += count;
    return n;
  }

  size_t count() {
    std::lock_guard lk(mu_);
    return done_.size();
  }
  // Waits up to `limit` for at least `n` completions; returns whether they came.
  bool wait_for_count(size_t n, std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return done_.size() >= n; });
  }
  // Completions so far with this user_data.
  std::vector<completion> of(uint64_t user_data) {
    std::lock_guard lk(mu_);
    std::vector<completion> out;
    for (const completion &c : done_)
      if (c.user_data == user_data) out.push_back(c);
    return out;
  }
  // Waits up to `limit` for the completion of `user_data`; false if it never came.
  bool wait_for(uint64_t user_data, completion *out,
                std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock lk(mu_);
    const auto found = [&] {
      for (const completion &c : done_)
        if (c.user_data == user_data) {
          *out = c;
          return true;
        }
      return false;
    };
    return cv_.wait_for(lk, limit, found);
  }
  std::vector<completion> all() {
    std::lock_guard lk(mu_);
    return done_;
  }
  // How many times each user_data completed.
  std::map<uint64_t, int> tally() {
    std::lock_guard lk(mu_);
    std::map<uint64_t, int> t;
    for (const completion &c : done_) t[c.user_data]++;
    return t;
  }
  unsigned batches(bool signalled) {
    std::lock_guard lk(mu_);
    return signalled ? batches_signalled_ : batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<completion> done_;
  unsigned batches_ = 0, batches_signalled_ = 0;
  std::map<pid_t, size_t> unannounced_;  // per thread
};

// Requests owned by a test; each is prepared with no attributes (unless the
// test adds some) for `path`.
class request_set {
 public:
  aio2::exec::request *add(long nr, uint64_t user_data, std::initializer_list<uint64_t> args,
                           uint32_t path = AIO2_PATH_POOL, bool unbounded = false) {
    auto r = std::make_unique<aio2::exec::request>();
    r->io.len = sizeof r->io;
    r->io.nr = static_cast<uint32_t>(nr);
    r->io.user_data = user_data;
    size_t i = 0;
    for (uint64_t a : args) r->io.args[i++] = a;
    r->plan.path = path;
    r->plan.unbounded = unbounded;
    EXPECT_EQ(r->nowait.reset(true), 0);  // tests may make it nowait-first
    EXPECT_EQ(r->attrs.prepare(r->io, nullptr, 0, path, false), 0);
    r->generation.fetch_add(1, std::memory_order_relaxed);
    reqs_.push_back(std::move(r));
    return reqs_.back().get();
  }
  size_t size() const { return reqs_.size(); }
  aio2::exec::request *operator[](size_t i) const { return reqs_[i].get(); }

 private:
  std::vector<std::unique_ptr<aio2::exec::request>> reqs_;
};

// A request for io_uring (an exec::uring, or anything with its translate),
// translated into its SQE.
template <class Uring>
aio2::exec::request *add_for_uring(request_set &set, Uring &ring, long nr, uint64_t user_data,
                                   std::initializer_list<uint64_t> args) {
  aio2::exec::request *r = set.add(nr, user_data, args, AIO2_PATH_URING);
  EXPECT_TRUE(ring.translate(r->io.nr, r->io.args, r->sqe)) << "nr " << nr;
  return r;
}

// Harvests `c` (waiting on its descriptor between tries) until `sink` has
// `n` completions; false after a generous limit.
inline bool harvest_until(aio2::exec::collected_executor &c, recording_sink &sink, size_t n) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sink.count() < n) {
    if (std::chrono::steady_clock::now() > end) return false;
    if (c.harvest(true) != 0) continue;
    pollfd pfd{c.fd(), POLLIN, 0};
    poll(&pfd, 1, 100);
  }
  return true;
}

// Whether a thread of this process other than the caller is inside system
// call `nr` with first argument `arg0` (as /proc/self/task/*/syscall shows
// a blocked thread).
inline bool thread_in_syscall(long nr, uint64_t arg0) {
  DIR *d = opendir("/proc/self/task");
  if (d == nullptr) return false;
  bool found = false;
  const pid_t me = this_tid();
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == me) continue;
    const std::string path = std::string("/proc/self/task/") + e->d_name + "/syscall";
    FILE *f = std::fopen(path.c_str(), "r");
    if (f == nullptr) continue;
    long n = -1;
    unsigned long long a0 = 0;
    if (std::fscanf(f, "%ld 0x%llx", &n, &a0) == 2 && n == nr && a0 == arg0) found = true;
    std::fclose(f);
    if (found) break;
  }
  closedir(d);
  return found;
}

// Waits (up to `limit`, polling) until some other thread is blocked in
// system call `nr` on `arg0`; returns whether it happened.
inline bool wait_in_syscall(long nr, uint64_t arg0,
                            std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!thread_in_syscall(nr, arg0)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The same for a given thread.
inline bool tid_in_syscall(pid_t tid, long nr) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  FILE *f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return false;
  long n = -1;
  const bool ok = std::fscanf(f, "%ld", &n) == 1 && n == nr;
  std::fclose(f);
  return ok;
}

inline bool wait_tid_in_syscall(pid_t tid, long nr,
                                std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!tid_in_syscall(tid, nr)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Runs fn() in another thread and waits for it to return. After a generous
// limit it calls unblock() (which must make fn return: it writes to the
// pipes fn's requests wait on, say), so a call that does not return fails
// the test instead of hanging it. Returns whether fn returned by itself.
template <class Fn, class Unblock>
bool returns_by_itself(Fn fn, Unblock unblock,
                       std::chrono::seconds limit = std::chrono::seconds(60)) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    fn();
    done = true;
  });
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done.load() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const bool by_itself = done.load();
  if (!by_itself) unblock();
  t.join();
  return by_itself;
}

// A pipe whose ends close with it.
struct test_pipe {
  int rd = -1, wr = -1;
  test_pipe() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      rd = p[0];
      wr = p[1];
    }
  }
  ~test_pipe() {
    if (rd >= 0) close(rd);
    if (wr >= 0) close(wr);
  }
  test_pipe(const test_pipe &) = delete;
  test_pipe &operator=(const test_pipe &) = delete;
  bool ok() const { return rd >= 0; }
};

}  // namespace aio2_test
