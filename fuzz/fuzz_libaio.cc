// SPDX-License-Identifier: MIT
// Fuzz target: the libaio replacement's argument parsing. aio2's
// libaio.so.1 is loaded with dlopen (RTLD_LOCAL) and its calls bound by
// symbol version, as a program linked against libaio binds them; arrays of
// struct iocb with arbitrary opcodes, flags, priorities, rw_flags, reserved
// words, offsets and counts go to io_submit (with NULL entries, repeated
// entries and arbitrary counts), then io_getevents (both versions) gets
// arbitrary min_nr, nr and timeouts, then everything is drained.
//
// Only harmless descriptors are named: a private sealed memfd, /dev/null, an
// eventfd of ours for IOCB_FLAG_RESFD, and descriptors that are not open;
// buffers are private. Checks (abort on failure): io_submit's result is in
// [-errno, nr]; each accepted iocb yields exactly one event (obj and data
// its own) within 10 s, none for a refused one, none twice; io_getevents
// never returns more than nr or writes past its array (AddressSanitizer:
// the array is exactly nr long); io_setup with any count answers 0 or an
// error, and a context it made is destroyed cleanly.

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.h"

// libaio's handle type, as the library defines it (UBSan checks that calls
// through the bound pointers use the definitions' own types).
typedef struct io_context *io_context_t;

namespace {

using aio2_fuzz::input;

struct api {
  int (*setup)(int, io_context_t *) = nullptr;
  int (*destroy)(io_context_t) = nullptr;
  int (*submit)(io_context_t, long, struct iocb **) = nullptr;
  int (*getevents)(io_context_t, long, long, struct io_event *, struct timespec *) = nullptr;
  int (*getevents_0_1)(io_context_t, long, struct io_event *, const struct timespec *) = nullptr;
  io_context_t ctx = nullptr;
  int memfd = -1, devnull = -1, efd = -1;
  unsigned char *buf = nullptr;
  iovec iov[4] = {};
};

template <class Fn>
void bind(void *dl, Fn &fn, const char *sym, const char *version) {
  fn = reinterpret_cast<Fn>(dlvsym(dl, sym, version));
  AIO2_FUZZ_CHECK(fn != nullptr);
}

constexpr size_t kBufBytes = 4096;
constexpr int kMaxIocbs = 16;

api &the_api() {
  static api *a = [] {
    auto *n = new api;
    void *dl = dlopen(AIO2_LIBAIO_PATH, RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) aio2_fuzz::fail(dlerror());
    bind(dl, n->setup, "io_setup", "LIBAIO_0.4");
    bind(dl, n->destroy, "io_destroy", "LIBAIO_0.4");
    bind(dl, n->submit, "io_submit", "LIBAIO_0.1");
    bind(dl, n->getevents, "io_getevents", "LIBAIO_0.4");
    bind(dl, n->getevents_0_1, "io_getevents", "LIBAIO_0.1");
    AIO2_FUZZ_CHECK(n->setup(256, &n->ctx) == 0);
    n->memfd = memfd_create("aio2-fuzz-libaio", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    AIO2_FUZZ_CHECK(n->memfd >= 0 && ftruncate(n->memfd, 3 * kBufBytes) == 0);
    AIO2_FUZZ_CHECK(fcntl(n->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) == 0);
    n->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    n->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    AIO2_FUZZ_CHECK(n->devnull >= 0 && n->efd >= 0);
    n->buf = static_cast<unsigned char *>(::operator new(kBufBytes));
    return n;
  }();
  return *a;
}

uint32_t pick_fd(const api &a, uint8_t sel) {
  switch (sel % 5) {
    case 0: case 1: return static_cast<uint32_t>(a.memfd);
    case 2: return static_cast<uint32_t>(a.devnull);
    case 3: return 0xffffffffu;
    default: return 1u << 20;
  }
}

void fill_iocb(api &a, input &in, struct iocb &cb, uint64_t data) {
  std::memset(&cb, 0, sizeof cb);
  cb.aio_data = data;
  const auto op = in.get<uint8_t>();
  cb.aio_lio_opcode = static_cast<uint16_t>(op & 0x80 ? in.get<uint16_t>() : op % 12);
  cb.aio_reqprio = in.get<int16_t>();
  cb.aio_fildes = pick_fd(a, in.get<uint8_t>());
  const size_t off = in.get<uint16_t>() % kBufBytes;
  const size_t count = in.get<uint16_t>() % (kBufBytes - off + 1);
  if (cb.aio_lio_opcode == IOCB_CMD_PREADV || cb.aio_lio_opcode == IOCB_CMD_PWRITEV) {
    const unsigned n = static_cast<unsigned>(count % 5);
    for (unsigned i = 0; i < n; i++) a.iov[i] = {a.buf + i * 1024, (off + i) % 1025};
    cb.aio_buf = reinterpret_cast<uintptr_t>(a.iov);
    cb.aio_nbytes = n;
  } else if (cb.aio_lio_opcode == IOCB_CMD_POLL) {
    // The poll events mask, always with POLLIN: a regular file or
    // /dev/null is always readable, while a mask without it or POLLOUT
    // waits for ever (as with the kernel's IOCB_CMD_POLL).
    cb.aio_buf = in.get<uint16_t>() | POLLIN;
  } else {
    cb.aio_buf = reinterpret_cast<uintptr_t>(a.buf + off);
    cb.aio_nbytes = count;
  }
  cb.aio_offset = static_cast<int64_t>(in.get<uint32_t>()) - 256;
  const auto extra = in.get<uint8_t>();
  if (extra & 1) cb.aio_rw_flags = static_cast<int>(in.get<uint32_t>());
  if (extra & 2) cb.aio_reserved2 = in.get<uint64_t>();
  if (extra & 4) cb.aio_key = in.get<uint32_t>();
  if (extra & 8) {
    cb.aio_flags = in.get<uint8_t>() & 0x7;  // RESFD, IOPRIO and an unknown bit
    const auto rsel = in.get<uint8_t>() % 3;
    cb.aio_resfd = rsel == 0 ? static_cast<uint32_t>(a.efd)
                             : rsel == 1 ? static_cast<uint32_t>(a.memfd) : 0xffffffffu;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  api &a = the_api();
  input in(data, size);
  const auto head = in.get<uint8_t>();

  // Sometimes a context of an arbitrary size, set up and torn down.
  if (head & 0x80) {
    const int nr = static_cast<int>(in.get<int32_t>() % 70000);
    io_context_t c = nullptr;
    const int rc = a.setup(nr, &c);
    AIO2_FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EAGAIN || rc == -ENOMEM, rc, nr);
    if (rc == 0) AIO2_FUZZ_CHECK(a.destroy(c) == 0);
    io_context_t bogus = reinterpret_cast<io_context_t>(a.buf);
    AIO2_FUZZ_CHECK(a.submit(bogus, 0, nullptr) == -EINVAL);
  }

  static struct iocb cbs[kMaxIocbs];
  static uint64_t serial = 0;
  const int n_cbs = 1 + in.get<uint8_t>() % kMaxIocbs;
  for (int i = 0; i < n_cbs; i++) fill_iocb(a, in, cbs[i], (++serial << 8) | static_cast<unsigned>(i));
  // The array: each entry one of ours (maybe repeated) or NULL.
  struct iocb *list[kMaxIocbs];
  for (int i = 0; i < n_cbs; i++) {
    const auto sel = in.get<uint8_t>();
    list[i] = sel == 0xff ? nullptr : &cbs[sel == 0xfe ? 0 : i];
  }
  const long nr = static_cast<long>(in.get<uint8_t>() % (n_cbs + 3)) - 2;  // -2 .. n_cbs
  const int rc = a.submit(a.ctx, nr, list);
  AIO2_FUZZ_CHECK(rc <= nr || rc < 0, rc, nr);
  AIO2_FUZZ_CHECK(rc >= -4095, rc);
  const int accepted = rc > 0 ? rc : 0;
  std::vector<int> want(kMaxIocbs, 0);  // events due per iocb
  for (int i = 0; i < accepted; i++) {
    AIO2_FUZZ_CHECK(list[i] != nullptr, i);  // a NULL entry is never accepted
    want[list[i] - cbs]++;
  }

  int due = accepted;
  auto take = [&](const struct io_event *ev, int n) {
    for (int i = 0; i < n; i++) {
      const auto *cb = reinterpret_cast<const struct iocb *>(static_cast<uintptr_t>(ev[i].obj));
      AIO2_FUZZ_CHECK(cb >= cbs && cb < cbs + n_cbs, static_cast<long long>(ev[i].obj));
      const long k = cb - cbs;
      AIO2_FUZZ_CHECK(want[k] > 0, k);  // refused, or once too often
      AIO2_FUZZ_CHECK(ev[i].data == cb->aio_data, static_cast<long long>(ev[i].data));
      want[k]--;
      due--;
    }
  };

  // io_getevents with arbitrary arguments; it must not wait long: a NULL
  // timeout only with min_nr <= 0 (LIBAIO_0.4), otherwise at most 1 ms (or
  // invalid).
  {
    const long min_nr = static_cast<long>(in.get<uint8_t>() % 20) - 2;
    const long max = static_cast<long>(in.get<uint8_t>() % 20) - 2;
    const auto tsel = in.get<uint8_t>();
    timespec ts{0, static_cast<long>(in.get<uint32_t>() % 1000000)};
    if (tsel % 4 == 1) ts.tv_nsec = 1000000000L + (tsel >> 2);
    if (tsel % 4 == 2) ts.tv_nsec = -1 - (tsel >> 2);
    if (tsel % 4 == 3) ts.tv_sec = -1;
    // The LIBAIO_0.1 call has no min_nr: it waits for one event.
    timespec *tp = (tsel & 0x80) && min_nr <= 0 && !(tsel & 0x20) ? nullptr : &ts;
    const size_t cap = max > 0 ? static_cast<size_t>(max) : 0;
    auto *ev = static_cast<struct io_event *>(::operator new(cap ? cap * sizeof(io_event) : 1));
    const bool null_events = (tsel & 0x40) != 0;
    int got;
    if (tsel & 0x20)
      got = a.getevents_0_1(a.ctx, max, null_events ? nullptr : ev, tp);
    else
      got = a.getevents(a.ctx, min_nr, max, null_events ? nullptr : ev, tp);
    // libaio answers 0 at once for a zero timeout on an empty ring, before
    // it looks at the other arguments; so may aio2's.
    AIO2_FUZZ_CHECK(got <= 0 || got <= max, got, max);
    AIO2_FUZZ_CHECK(got >= -4095, got);
    if (got > 0) {
      AIO2_FUZZ_CHECK(!null_events, got);
      take(ev, got);
    }
    ::operator delete(ev);
  }

  // Drain what is due.
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += 10;
  while (due > 0) {
    struct io_event ev[kMaxIocbs];
    timespec slice{0, 100 * 1000 * 1000};
    const int got = a.getevents(a.ctx, 1, kMaxIocbs, ev, &slice);
    AIO2_FUZZ_CHECK(got >= 0 || got == -EINTR, got);
    if (got > 0) take(ev, got);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    AIO2_FUZZ_CHECK(now.tv_sec < deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec),
                    due);
  }
  AIO2_FUZZ_CHECK(due == 0, due);
  struct io_event extra[1];
  timespec zero{0, 0};
  AIO2_FUZZ_CHECK(a.getevents(a.ctx, 0, 1, extra, &zero) == 0);
  // The eventfd's count is not checked here; empty it so it cannot saturate.
  uint64_t v;
  while (read(a.efd, &v, sizeof v) == sizeof v) {
  }
  return 0;
}
