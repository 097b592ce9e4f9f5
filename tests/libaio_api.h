// SPDX-License-Identifier: MIT
// libaio's calls, loaded with dlopen from a given libaio.so.1 and bound by
// symbol version with dlvsym, the way a program linked against libaio 0.3.113
// binds them: the real one (kernel AIO) and aio2's replacement side by side
// in one process, neither linked. Types are <linux/aio_abi.h>'s, which
// libaio's struct iocb and struct io_event match.
#pragma once

#include <dlfcn.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <time.h>

#include <string>

namespace aio2_test {

// What io_context_t points at: the kernel's struct aio_ring (fs/aio.c).
struct aio_ring_view {
  unsigned id, nr, head, tail;
  unsigned magic, compat_features, incompat_features, header_length;
  struct io_event events[];
};
constexpr unsigned kAioRingMagic = 0xa10a10a1;

typedef struct io_context *io_context_t;
typedef void (*io_callback_t)(io_context_t ctx, struct iocb *iocb, long res, long res2);

struct libaio_api {
  std::string name;  // "kernel" or "aio2"
  std::string error;  // why loading failed; empty when every call is bound
  void *dl = nullptr;
  int (*io_setup)(int, io_context_t *) = nullptr;
  int (*io_destroy)(io_context_t) = nullptr;
  int (*io_submit)(io_context_t, long, struct iocb **) = nullptr;
  int (*io_getevents)(io_context_t, long, long, struct io_event *, struct timespec *) = nullptr;
  int (*io_getevents_0_1)(io_context_t, long, struct io_event *, const struct timespec *) =
      nullptr;
  int (*io_cancel)(io_context_t, struct iocb *, struct io_event *) = nullptr;
  int (*io_cancel_0_1)(io_context_t, struct iocb *) = nullptr;
  int (*io_queue_init)(int, io_context_t *) = nullptr;
  int (*io_queue_run)(io_context_t) = nullptr;
  int (*io_queue_release)(io_context_t) = nullptr;
  int (*io_queue_wait)(io_context_t, struct timespec *) = nullptr;
  int (*io_queue_wait_0_1)(io_context_t, struct timespec *) = nullptr;
  int (*io_pgetevents)(io_context_t, long, long, struct io_event *, struct timespec *,
                       sigset_t *) = nullptr;

  bool ok() const { return error.empty(); }

  // Loads `path` (RTLD_NOW | RTLD_LOCAL) and binds every call by version.
  static libaio_api load(const std::string &name, const char *path) {
    libaio_api a;
    a.name = name;
    a.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (a.dl == nullptr) {
      const char *e = dlerror();
      a.error = std::string(path) + ": " + (e ? e : "dlopen failed");
      return a;
    }
    a.bind(a.io_setup, "io_setup", "LIBAIO_0.4");
    a.bind(a.io_destroy, "io_destroy", "LIBAIO_0.4");
    a.bind(a.io_submit, "io_submit", "LIBAIO_0.1");
    a.bind(a.io_getevents, "io_getevents", "LIBAIO_0.4");
    a.bind(a.io_getevents_0_1, "io_getevents", "LIBAIO_0.1");
    a.bind(a.io_cancel, "io_cancel", "LIBAIO_0.4");
    a.bind(a.io_cancel_0_1, "io_cancel", "LIBAIO_0.1");
    a.bind(a.io_queue_init, "io_queue_init", "LIBAIO_0.1");
    a.bind(a.io_queue_run, "io_queue_run", "LIBAIO_0.1");
    a.bind(a.io_queue_release, "io_queue_release", "LIBAIO_0.1");
    a.bind(a.io_queue_wait, "io_queue_wait", "LIBAIO_0.4");
    a.bind(a.io_queue_wait_0_1, "io_queue_wait", "LIBAIO_0.1");
    a.bind(a.io_pgetevents, "io_pgetevents", "LIBAIO_0.5");
    return a;
  }

 private:
  template <class Fn>
  void bind(Fn &fn, const char *sym, const char *version) {
    fn = reinterpret_cast<Fn>(dlvsym(dl, sym, version));
    if (fn == nullptr && error.empty()) error = std::string(sym) + "@" + version + " not found";
  }
};

}  // namespace aio2_test
