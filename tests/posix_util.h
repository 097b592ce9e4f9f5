// SPDX-License-Identifier: MIT
// The POSIX AIO calls of one implementation, as function pointers: glibc's
// own (libc.so.6, version GLIBC_2.34) or libaio2-posix.so's (loaded with
// RTLD_LOCAL, so that it replaces nothing in the test process). Each
// pointer is checked to come from the library it was asked of.
#pragma once

#include <aio.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace aio2_test {

// glibc's POSIX AIO starts its threads from inside libc, where
// ThreadSanitizer does not see them: its notifications (signals, threads)
// cannot be checked in such a build.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif

struct posix_api {
  const char *name = "";
  bool ours = false;  // libaio2-posix.so
  int (*read)(struct aiocb *) = nullptr;
  int (*write)(struct aiocb *) = nullptr;
  int (*fsync)(int, struct aiocb *) = nullptr;
  int (*error)(const struct aiocb *) = nullptr;
  ssize_t (*ret)(struct aiocb *) = nullptr;
  int (*suspend)(const struct aiocb *const[], int, const struct timespec *) = nullptr;
  int (*cancel)(int, struct aiocb *) = nullptr;
  int (*listio)(int, struct aiocb *const[], int, struct sigevent *) = nullptr;
  void (*init)(const struct aioinit *) = nullptr;
  int (*read64)(struct aiocb64 *) = nullptr;
  int (*write64)(struct aiocb64 *) = nullptr;
  int (*fsync64)(int, struct aiocb64 *) = nullptr;
  int (*error64)(const struct aiocb64 *) = nullptr;
  ssize_t (*ret64)(struct aiocb64 *) = nullptr;
  int (*suspend64)(const struct aiocb64 *const[], int, const struct timespec *) = nullptr;
  int (*cancel64)(int, struct aiocb64 *) = nullptr;
  int (*listio64)(int, struct aiocb64 *const[], int, struct sigevent *) = nullptr;
  bool complete = false;  // every pointer found, each in the right library
  std::string problem;    // otherwise, what is wrong
};

namespace detail {

// The file that defines `fn`, by dladdr.
inline std::string defined_in(void *fn) {
  Dl_info info{};
  if (fn == nullptr || dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

template <class F>
void take(posix_api &api, F &field, void *handle, const char *sym, const char *version,
          const char *lib_part) {
  void *p = version ? dlvsym(handle, sym, version) : dlsym(handle, sym);
  if (p == nullptr) {
    api.problem += std::string(sym) + " missing; ";
    return;
  }
  const std::string where = defined_in(p);
  if (where.find(lib_part) == std::string::npos) {
    api.problem += std::string(sym) + " comes from " + where + "; ";
    return;
  }
  field = reinterpret_cast<F>(p);
}

inline posix_api load(void *handle, const char *name, bool ours, const char *version,
                      const char *lib_part) {
  posix_api api;
  api.name = name;
  api.ours = ours;
  if (handle == nullptr) {
    api.problem = std::string("cannot load: ") + dlerror();
    return api;
  }
  take(api, api.read, handle, "aio_read", version, lib_part);
  take(api, api.write, handle, "aio_write", version, lib_part);
  take(api, api.fsync, handle, "aio_fsync", version, lib_part);
  take(api, api.error, handle, "aio_error", version, lib_part);
  take(api, api.ret, handle, "aio_return", version, lib_part);
  take(api, api.suspend, handle, "aio_suspend", version, lib_part);
  take(api, api.cancel, handle, "aio_cancel", version, lib_part);
  take(api, api.listio, handle, "lio_listio", version, lib_part);
  take(api, api.init, handle, "aio_init", version, lib_part);
  take(api, api.read64, handle, "aio_read64", version, lib_part);
  take(api, api.write64, handle, "aio_write64", version, lib_part);
  take(api, api.fsync64, handle, "aio_fsync64", version, lib_part);
  take(api, api.error64, handle, "aio_error64", version, lib_part);
  take(api, api.ret64, handle, "aio_return64", version, lib_part);
  take(api, api.suspend64, handle, "aio_suspend64", version, lib_part);
  take(api, api.cancel64, handle, "aio_cancel64", version, lib_part);
  take(api, api.listio64, handle, "lio_listio64", version, lib_part);
  api.complete = api.problem.empty();
  return api;
}

}  // namespace detail

// glibc's calls, at the version programs built against glibc 2.36 bind.
inline const posix_api &glibc_api() {
  static const posix_api api = detail::load(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "glibc",
                                            false, "GLIBC_2.34", "libc.so");
  return api;
}

// libaio2-posix.so's calls, from its own handle.
inline const posix_api &aio2_api() {
  static const posix_api api = detail::load(dlopen(AIO2_POSIX_LIB, RTLD_NOW | RTLD_LOCAL), "aio2",
                                            true, nullptr, "libaio2-posix");
  return api;
}

// Waits until `cb` is no longer in progress (at most `seconds`), through the
// implementation's own aio_suspend. Returns false on time-out.
inline bool wait_done(const posix_api &api, struct aiocb *cb, int seconds = 10) {
  const struct aiocb *list[1] = {cb};
  for (int i = 0; i < seconds * 20; i++) {
    if (api.error(cb) != EINPROGRESS) return true;
    const struct timespec step = {0, 50 * 1000 * 1000};
    api.suspend(list, 1, &step);
  }
  return api.error(cb) != EINPROGRESS;
}

// A control block for `fd`, zeroed, with SIGEV_NONE.
inline struct aiocb make_cb(int fd, void *buf, size_t len, off_t off) {
  struct aiocb cb;
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = fd;
  cb.aio_buf = buf;
  cb.aio_nbytes = len;
  cb.aio_offset = off;
  cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  return cb;
}

}  // namespace aio2_test
