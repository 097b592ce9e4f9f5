// SPDX-License-Identifier: MIT
//
// copy_tree: copies a directory tree, every entry at once, with C++20
// coroutines over one aio2 context (aio2/co.hpp). Each directory is listed
// with getdents64, each entry examined with statx, each file opened with
// openat, copied with read and write, given its mode with fchmod and closed
// with close; links are read with readlinkat and made with symlinkat.
// Every one of those system calls is a request that a coroutine awaits,
// and one thread drives all the coroutines. Each request carries the
// executor attribute, whose result says which path ran it; the summary
// counts them by call and path.
//
//   build/bin/example_copy_tree SRC DST
//
// SRC is a directory; DST must not exist. Directories, regular files and
// symbolic links are copied with their modes (a directory's with the
// owner's write and search permission added); anything else is skipped and
// counted. At most 64 files and directories are open at a time. Exits 0 when
// the tree was copied, 1 with a message when a call failed, 2 for bad
// arguments.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <coroutine>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "aio2/co.hpp"

namespace {

using aio2::co::driver;
using aio2::co::event;
using aio2::co::task;

constexpr std::size_t kChunk = 64 * 1024;  // bytes per read
constexpr int kOpenFiles = 64;             // files and directories open at a time

// What the copy did.
struct totals {
  unsigned long dirs = 0, files = 0, links = 0, skipped = 0;
  unsigned long long bytes = 0;
  std::size_t peak_in_flight = 0;
  std::map<std::string, std::map<std::string, unsigned long>> paths;  // call -> path -> count
};

const char *path_name(uint32_t path) {
  switch (path) {
    case AIO2_PATH_INLINE: return "inline";
    case AIO2_PATH_URING: return "uring";
    case AIO2_PATH_POOL: return "pool";
    case AIO2_PATH_INLINE | AIO2_PATH_POOL: return "inline+pool";
    default: return "other";
  }
}

// limiter - at most `n` holders at a time; the others wait in order, and a
// release hands the place to the first of them through driver::post.
class limiter {
 public:
  limiter(driver &d, int n) : d_(d), free_(n) {}
  struct acquire_awaiter {
    limiter &l;
    bool await_ready() const noexcept {
      if (l.free_ == 0) return false;
      l.free_--;
      return true;
    }
    void await_suspend(std::coroutine_handle<> h) { l.waiting_.push_back(h); }
    void await_resume() const noexcept {}
  };
  acquire_awaiter acquire() { return acquire_awaiter{*this}; }
  void release() {
    if (waiting_.empty()) {
      free_++;
      return;
    }
    d_.post(waiting_.front());  // the place passes to it
    waiting_.pop_front();
  }

 private:
  driver &d_;
  int free_;
  std::deque<std::coroutine_handle<>> waiting_;
};

// A held place of a limiter, released when the holder ends in any way.
struct place {
  limiter &l;
  ~place() { l.release(); }
};

class copier {
 public:
  copier(driver &d, totals &t) : d_(d), t_(t), files_(d, kOpenFiles) {}

  // copy_entry - copy `src` to `dst`, whatever it is.
  task<void> copy_entry(std::string src, std::string dst) {
    struct statx stx {};
    check(co_await call("statx", SYS_statx, AT_FDCWD, src.c_str(), AT_SYMLINK_NOFOLLOW,
                        STATX_TYPE | STATX_MODE | STATX_SIZE, &stx),
          "statx", src);
    const mode_t mode = stx.stx_mode & 07777;
    switch (stx.stx_mode & S_IFMT) {
      case S_IFDIR: co_await copy_dir(std::move(src), std::move(dst), mode); break;
      case S_IFREG: co_await copy_file(std::move(src), std::move(dst), mode); break;
      case S_IFLNK: co_await copy_link(std::move(src), std::move(dst)); break;
      default: t_.skipped++; break;
    }
  }

 private:
  // The request for `nr` with its arguments and the executor attribute;
  // returns the result after counting the path that ran it.
  template <class... Args>
  task<int64_t> call(const char *name, long nr, Args... args) {
    aio2::request_builder b;
    b.add(nr, 0, {arg(args)...});
    b.attr(AIO2_ATTR_EXECUTOR, {});
    const event ev = co_await d_.submit(b);
    t_.peak_in_flight = std::max(t_.peak_in_flight, d_.in_flight() + 1);
    if (const auto x = ev.attr_as<aio2_attr_executor>(AIO2_ATTR_EXECUTOR))
      t_.paths[name][path_name(x->path)]++;
    co_return ev.res();
  }

  template <class A>
  static uint64_t arg(A a) {
    if constexpr (std::is_pointer_v<A>)
      return reinterpret_cast<uintptr_t>(a);
    else
      return static_cast<uint64_t>(a);
  }

  // check - the result, or std::system_error naming the call and the path.
  static int64_t check(int64_t res, const char *what, const std::string &path) {
    if (res < 0)
      throw std::system_error(static_cast<int>(-res), std::generic_category(), what + (" " + path));
    return res;
  }

  // A descriptor closed with close(2) through aio2, or at once when the
  // coroutine ends by an exception (or is destroyed) before that.
  struct fd_guard {
    int fd = -1;
    ~fd_guard() {
      if (fd >= 0) ::close(fd);
    }
  };
  task<void> close_fd(fd_guard &g, const std::string &path) {
    const int fd = std::exchange(g.fd, -1);
    check(co_await call("close", SYS_close, fd), "close", path);
  }

  task<void> copy_dir(std::string src, std::string dst, mode_t mode) {
    // Its mode, with the owner's write and search permission added so that
    // its entries can be made in it (umask does not apply to fchmodat).
    check(co_await call("mkdirat", SYS_mkdirat, AT_FDCWD, dst.c_str(), 0700), "mkdirat", dst);
    check(co_await call("fchmodat", SYS_fchmodat, AT_FDCWD, dst.c_str(), mode | S_IWUSR | S_IXUSR),
          "fchmodat", dst);
    t_.dirs++;
    co_await files_.acquire();
    const place held{files_};
    fd_guard dir;
    dir.fd = static_cast<int>(check(co_await call("openat", SYS_openat, AT_FDCWD, src.c_str(),
                                                  O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0),
                                    "openat", src));
    std::vector<uint64_t> buf(32 * 1024 / 8);  // 8-aligned, as linux_dirent64 is
    for (;;) {
      const int64_t n = check(co_await call("getdents64", SYS_getdents64, dir.fd, buf.data(),
                                            buf.size() * 8),
                              "getdents64", src);
      if (n == 0) break;
      const auto *p = reinterpret_cast<const unsigned char *>(buf.data());
      for (int64_t off = 0; off < n;) {
        // struct linux_dirent64: d_ino, d_off, d_reclen, d_type, d_name.
        uint16_t reclen;
        std::memcpy(&reclen, p + off + 16, sizeof reclen);
        const char *name = reinterpret_cast<const char *>(p + off + 19);
        off += reclen;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
        d_.spawn(copy_entry(src + "/" + name, dst + "/" + name));
      }
    }
    co_await close_fd(dir, src);
  }

  task<void> copy_file(std::string src, std::string dst, mode_t mode) {
    co_await files_.acquire();
    const place held{files_};
    fd_guard in, out;
    in.fd = static_cast<int>(check(
        co_await call("openat", SYS_openat, AT_FDCWD, src.c_str(), O_RDONLY | O_CLOEXEC, 0),
        "openat", src));
    out.fd = static_cast<int>(check(co_await call("openat", SYS_openat, AT_FDCWD, dst.c_str(),
                                                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600),
                                    "openat", dst));
    std::vector<unsigned char> buf(kChunk);
    for (;;) {
      const int64_t got =
          check(co_await call("read", SYS_read, in.fd, buf.data(), buf.size()), "read", src);
      if (got == 0) break;
      for (int64_t put = 0; put < got;)  // a write may be short
        put += check(co_await call("write", SYS_write, out.fd, buf.data() + put, got - put),
                     "write", dst);
      t_.bytes += static_cast<unsigned long long>(got);
    }
    check(co_await call("fchmod", SYS_fchmod, out.fd, mode), "fchmod", dst);
    co_await close_fd(in, src);
    co_await close_fd(out, dst);
    t_.files++;
  }

  task<void> copy_link(std::string src, std::string dst) {
    std::vector<char> target(4097);
    const int64_t n = check(co_await call("readlinkat", SYS_readlinkat, AT_FDCWD, src.c_str(),
                                          target.data(), target.size() - 1),
                            "readlinkat", src);
    target[static_cast<std::size_t>(n)] = '\0';
    check(co_await call("symlinkat", SYS_symlinkat, target.data(), AT_FDCWD, dst.c_str()),
          "symlinkat", dst);
    t_.links++;
  }

  driver &d_;
  totals &t_;
  limiter files_;
};

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SRC DST\n", argv[0]);
    return 2;
  }
  struct stat st {};
  if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "copy_tree: %s is not a directory\n", argv[1]);
    return 2;
  }
  totals t;
  try {
    aio2::context ctx;
    driver d(ctx);
    copier c(d, t);
    d.run(c.copy_entry(argv[1], argv[2]));
    std::printf("copied %lu directories, %lu files (%llu bytes), %lu links; skipped %lu\n",
                t.dirs, t.files, t.bytes, t.links, t.skipped);
    std::printf("io_uring %s; at most %zu requests in flight\n",
                ctx.params().features & AIO2_FEAT_URING ? "in use" : "not in use",
                t.peak_in_flight);
    for (const auto &[call, by_path] : t.paths) {
      std::printf("  %-11s", call.c_str());
      for (const auto &[path, n] : by_path) std::printf(" %s %lu", path.c_str(), n);
      std::printf("\n");
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "copy_tree: %s\n", e.what());
    return 1;
  }
  return 0;
}
