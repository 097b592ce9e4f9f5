// SPDX-License-Identifier: MIT
// Fuzz target: the POSIX AIO replacement's argument parsing. aio2's
// libaio2-posix.so is loaded with dlopen (RTLD_LOCAL), so that it replaces
// nothing in this process, and its calls are looked up in it; aiocbs with
// arbitrary opcodes, priorities, offsets, counts and sigevents go to
// aio_read, aio_write, aio_fsync (arbitrary operation) and lio_listio
// (arbitrary mode, NULL and LIO_NOP entries, a list sigevent), then every
// one is waited for with aio_suspend and collected with aio_return.
//
// Only harmless descriptors (a private sealed memfd, /dev/null, descriptors
// that are not open) and private buffers; a signal notification always
// names SIGURG (ignored by default) and a thread notification a function
// of ours, so no notification can hurt the fuzzer; sigev_notify itself and
// the other fields are arbitrary. Checks (abort on failure): each call
// answers 0 or -1 with errno set; every aiocb handed over leaves
// EINPROGRESS within 10 s; aio_error then gives 0 or a positive errno and
// aio_return agrees with it (>= 0 exactly when aio_error is 0).

#include <aio.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "fuzz_input.h"

namespace {

using aio2_fuzz::input;

struct api {
  int (*read)(struct aiocb *) = nullptr;
  int (*write)(struct aiocb *) = nullptr;
  int (*fsync)(int, struct aiocb *) = nullptr;
  int (*error)(const struct aiocb *) = nullptr;
  ssize_t (*ret)(struct aiocb *) = nullptr;
  int (*suspend)(const struct aiocb *const[], int, const struct timespec *) = nullptr;
  int (*listio)(int, struct aiocb *const[], int, struct sigevent *) = nullptr;
  int memfd = -1, devnull = -1;
  unsigned char *buf = nullptr;
};

constexpr size_t kBufBytes = 4096;
constexpr int kMax = 12;

// Counted by thread notifications (relaxed: a tally nobody waits for).
std::atomic<unsigned long> g_notified{0};
void on_notify(union sigval) { g_notified.fetch_add(1, std::memory_order_relaxed); }

template <class Fn>
void bind(void *dl, Fn &fn, const char *sym) {
  fn = reinterpret_cast<Fn>(dlsym(dl, sym));
  AIO2_FUZZ_CHECK(fn != nullptr);
}

api &the_api() {
  static api *a = [] {
    auto *n = new api;
    void *dl = dlopen(AIO2_POSIX_PATH, RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) aio2_fuzz::fail(dlerror());
    bind(dl, n->read, "aio_read");
    bind(dl, n->write, "aio_write");
    bind(dl, n->fsync, "aio_fsync");
    bind(dl, n->error, "aio_error");
    bind(dl, n->ret, "aio_return");
    bind(dl, n->suspend, "aio_suspend");
    bind(dl, n->listio, "lio_listio");
    n->memfd = memfd_create("aio2-fuzz-posix", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    AIO2_FUZZ_CHECK(n->memfd >= 0 && ftruncate(n->memfd, 3 * kBufBytes) == 0);
    AIO2_FUZZ_CHECK(fcntl(n->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) == 0);
    n->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    AIO2_FUZZ_CHECK(n->devnull >= 0);
    n->buf = static_cast<unsigned char *>(::operator new(kBufBytes));
    return n;
  }();
  return *a;
}

int pick_fd(const api &a, uint8_t sel) {
  switch (sel % 5) {
    case 0: case 1: return a.memfd;
    case 2: return a.devnull;
    case 3: return -1;
    default: return 1 << 20;
  }
}

void fill_sigevent(input &in, struct sigevent &sev) {
  std::memset(&sev, 0, sizeof sev);
  const auto k = in.get<uint8_t>();
  switch (k % 5) {
    case 0: sev.sigev_notify = SIGEV_NONE; break;
    case 1: sev.sigev_notify = SIGEV_SIGNAL; break;
    case 2:
      sev.sigev_notify = SIGEV_THREAD;
      sev.sigev_notify_function = on_notify;
      break;
    case 3:
      sev.sigev_notify = SIGEV_THREAD_ID;
      sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
      break;
    default:
      // Any other value, but never one of the four kinds above with
      // arguments we did not choose.
      sev.sigev_notify = static_cast<int>(in.get<uint32_t>() | 0x100);
  }
  sev.sigev_signo = SIGURG;
  sev.sigev_value.sival_int = static_cast<int>(in.get<uint32_t>());
}

void fill_aiocb(api &a, input &in, struct aiocb &cb) {
  std::memset(&cb, 0, sizeof cb);
  cb.aio_fildes = pick_fd(a, in.get<uint8_t>());
  const auto op = in.get<uint8_t>();
  cb.aio_lio_opcode = op & 0x80 ? static_cast<int>(in.get<uint32_t>()) : op % 4;  // READ WRITE NOP ?
  cb.aio_reqprio = static_cast<int>(in.get<int8_t>());
  const size_t off = in.get<uint16_t>() % kBufBytes;
  cb.aio_buf = a.buf + off;
  cb.aio_nbytes = in.get<uint16_t>() % (kBufBytes - off + 1);
  cb.aio_offset = static_cast<off_t>(in.get<uint32_t>()) - 256;
  fill_sigevent(in, cb.aio_sigevent);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  api &a = the_api();
  input in(data, size);
  static struct aiocb cbs[kMax];
  const auto head = in.get<uint8_t>();
  const int n = 1 + in.get<uint8_t>() % kMax;
  for (int i = 0; i < n; i++) fill_aiocb(a, in, cbs[i]);
  bool handed[kMax] = {};

  if (head & 1) {
    // One lio_listio over the whole list.
    struct aiocb *list[kMax];
    for (int i = 0; i < n; i++) {
      const auto sel = in.get<uint8_t>();
      list[i] = sel == 0xff ? nullptr : &cbs[i];
      // Only reads and writes are queued; NULL and LIO_NOP entries are
      // skipped and other opcodes fail with EINVAL in their aiocb.
      handed[i] = list[i] != nullptr &&
                  (cbs[i].aio_lio_opcode == LIO_READ || cbs[i].aio_lio_opcode == LIO_WRITE);
    }
    const auto msel = in.get<uint8_t>();
    const int mode = msel % 3 == 0 ? LIO_WAIT : msel % 3 == 1 ? LIO_NOWAIT : static_cast<int>(msel);
    struct sigevent sev;
    fill_sigevent(in, sev);
    const int nent = static_cast<int>(in.get<uint8_t>() % (n + 2)) - 1;  // -1 .. n
    errno = 0;
    const int rc = a.listio(mode, list, nent, (msel & 0x80) ? nullptr : &sev);
    AIO2_FUZZ_CHECK(rc == 0 || (rc == -1 && errno > 0), rc, errno);
    for (int i = nent < 0 ? 0 : nent; i < n; i++) handed[i] = false;
    // EINVAL for the call as a whole (mode, count, list sigevent): nothing
    // was looked at.
    if (rc == -1 && errno == EINVAL)
      for (int i = 0; i < n; i++) handed[i] = false;
  } else {
    // One call per aiocb.
    for (int i = 0; i < n; i++) {
      const auto sel = in.get<uint8_t>();
      errno = 0;
      int rc;
      if (sel % 3 == 0) rc = a.read(&cbs[i]);
      else if (sel % 3 == 1) rc = a.write(&cbs[i]);
      else rc = a.fsync(sel & 0x80 ? static_cast<int>(in.get<uint32_t>()) : (sel & 8 ? O_DSYNC : O_SYNC), &cbs[i]);
      AIO2_FUZZ_CHECK(rc == 0 || (rc == -1 && errno > 0), rc, errno);
      handed[i] = rc == 0;
    }
  }

  // Every aiocb handed over finishes, and says how consistently.
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += 10;
  for (int i = 0; i < n; i++) {
    if (!handed[i]) continue;
    int err;
    while ((err = a.error(&cbs[i])) == EINPROGRESS) {
      const struct aiocb *one[1] = {&cbs[i]};
      const timespec slice{0, 100 * 1000 * 1000};
      (void)a.suspend(one, 1, &slice);
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      AIO2_FUZZ_CHECK(now.tv_sec < deadline.tv_sec ||
                          (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec),
                      i);
    }
    AIO2_FUZZ_CHECK(err >= 0, err);
    const ssize_t r = a.ret(&cbs[i]);
    if (err == 0) AIO2_FUZZ_CHECK(r >= 0, static_cast<long long>(r));
    else AIO2_FUZZ_CHECK(r == -1, static_cast<long long>(r), err);
  }
  return 0;
}
