// SPDX-License-Identifier: MIT
// Fuzz target: aio2_submit (and aio2_call) over arbitrary requests and
// attribute records, on real RING contexts (one with io_uring where the
// kernel allows it, one without), then every event reaped.
//
// The harness, not aio2, decides which system calls can run: each request's
// `nr` is taken from a fixed list of harmless calls (getppid, getpid, gettid,
// sched_yield, read/pread64/write/pwrite64/readv/lseek/fsync on a private
// memfd, getcwd into a private buffer) or numbers no kernel implements, and
// its descriptor and buffer arguments are forced onto the memfd, an invalid
// descriptor and a private buffer. Everything else — flags, reserved word,
// offsets, counts within the buffer, the attribute records (ids, flags,
// lengths, payloads) and the request's own length field — comes from the
// input. A request's length is either its true length or a lie aio2 must
// refuse (below 72, not a multiple of 8, past the buffer); after a lie the
// buffer holds only words that read as a refused request, so no byte the
// fuzzer chose is ever parsed as a system call number.
//
// Checks (abort on failure): aio2_submit accepts a prefix of whole requests
// and never a lie; each accepted request yields exactly one event, with its
// user_data, within 10 s; no event comes for a refused request, none twice;
// each event carries one attribute result per request attribute, with the
// same ids in the same order; aio2_call never writes past a short event
// buffer (AddressSanitizer: the buffer is exactly that long).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aio2/aio2.h"
#include "fuzz_input.h"

namespace {

using aio2_fuzz::input;

constexpr size_t kBufBytes = 4096;
// The u32 39 (a length below 72, refused) at every 4-byte position.
constexpr uint32_t kRefusedWord = 39;

struct world {
  aio2_ctx *ctx[2] = {nullptr, nullptr};
  int memfd = -1;
  unsigned char *buf = nullptr;  // kBufBytes, the only memory requests touch
  iovec iov[4] = {};
};

world &the_world() {
  static world *w = [] {
    auto *n = new world;
    for (int i = 0; i < 2; i++) {
      aio2_params p{};
      p.size = sizeof p;
      p.type = AIO2_CTX_RING;
      p.flags = i ? AIO2_SETUP_NO_URING : 0;
      p.ring_bytes = 4096;  // small: completions spill onto the overflow list
      AIO2_FUZZ_CHECK(aio2_setup(AIO2_ABI_VERSION, &p, &n->ctx[i]) == 0);
    }
    // Sealed at three pages: writes at any offset cannot grow it.
    n->memfd = memfd_create("aio2-fuzz-submit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    AIO2_FUZZ_CHECK(n->memfd >= 0);
    AIO2_FUZZ_CHECK(ftruncate(n->memfd, 3 * kBufBytes) == 0);
    AIO2_FUZZ_CHECK(fcntl(n->memfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) == 0);
    n->buf = static_cast<unsigned char *>(::operator new(kBufBytes));
    return n;
  }();
  return *w;
}

const long kCalls[] = {SYS_getppid, SYS_getpid, SYS_gettid, SYS_sched_yield, SYS_read,
                       SYS_pread64, SYS_write,  SYS_pwrite64, SYS_readv,     SYS_lseek,
                       SYS_fsync,   SYS_getcwd, 4999,         0x7fffffff};

struct built {
  size_t start = 0, len = 0;    // where and how long (true length)
  bool lie = false;             // len field is a lie aio2 must refuse
  uint64_t user_data = 0;
  std::vector<uint16_t> attr_ids;  // the request's attributes, in order
  bool attrs_sound = true;         // our own walk of them found no fault
};

uint64_t fd_arg(world &w, uint8_t sel) {
  switch (sel % 4) {
    case 0: case 1: return static_cast<uint64_t>(w.memfd);
    case 2: return static_cast<uint64_t>(-1);
    default: return 1u << 20;  // never open
  }
}

// Fills args[] for `nr` so that whatever runs touches only the memfd and the
// private buffer.
void fill_args(world &w, long nr, input &in, uint64_t args[6]) {
  const uint8_t fdsel = in.get<uint8_t>();
  const size_t off = in.get<uint16_t>() % kBufBytes;
  const size_t count = in.get<uint16_t>() % (kBufBytes - off + 1);
  const auto pos = static_cast<int64_t>(in.get<uint32_t>()) - 256;  // some negative
  const uint64_t raw = in.get<uint64_t>();
  for (int i = 0; i < 6; i++) args[i] = 0;
  switch (nr) {
    case SYS_read: case SYS_write: case SYS_pread64: case SYS_pwrite64:
      args[0] = fd_arg(w, fdsel);
      args[1] = reinterpret_cast<uintptr_t>(w.buf + off);
      args[2] = count;
      args[3] = static_cast<uint64_t>(pos);
      break;
    case SYS_readv: {
      const unsigned n = fdsel % 5;
      for (unsigned i = 0; i < n; i++) w.iov[i] = {w.buf + i * 1024, (count + i) % 1025};
      args[0] = fd_arg(w, fdsel >> 2);
      args[1] = reinterpret_cast<uintptr_t>(w.iov);
      args[2] = n;
      break;
    }
    case SYS_lseek:
      args[0] = fd_arg(w, fdsel);
      args[1] = static_cast<uint64_t>(pos);
      args[2] = raw % 6;  // SEEK_SET .. SEEK_HOLE, and one unknown
      break;
    case SYS_fsync: args[0] = fd_arg(w, fdsel); break;
    case SYS_getcwd:
      args[0] = reinterpret_cast<uintptr_t>(w.buf + off);
      args[1] = count;
      break;
    default:  // getppid & co. ignore their arguments; unknown numbers too
      for (int i = 0; i < 6; i++) args[i] = raw * (i + 1);
  }
}

// Our own walk of attribute bytes, as aio2 documents their format.
void walk_attrs(const unsigned char *p, size_t bytes, built &b) {
  size_t off = 0;
  while (off < bytes) {
    if (bytes - off < sizeof(aio2_attr)) {
      b.attrs_sound = false;
      return;
    }
    aio2_attr a;
    std::memcpy(&a, p + off, sizeof a);
    if (a.len < sizeof a || a.len % 8 || a.len > bytes - off) {
      b.attrs_sound = false;
      return;
    }
    b.attr_ids.push_back(a.id);
    off += a.len;
  }
}

void append_refused_words(std::vector<uint64_t> &req_words, size_t words) {
  const uint64_t w = kRefusedWord | (uint64_t{kRefusedWord} << 32);
  for (size_t i = 0; i < words; i++) req_words.push_back(w);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  world &w = the_world();
  input in(data, size);
  const auto head = in.get<uint8_t>();
  aio2_ctx *ctx = w.ctx[head & 1];
  const unsigned n_reqs = 1 + (head >> 1) % 16;
  static uint64_t serial = 0;

  std::vector<uint64_t> words;  // the submission buffer, 8-aligned
  std::vector<built> reqs;
  for (unsigned i = 0; i < n_reqs && !in.empty(); i++) {
    built b;
    const auto kind = in.get<uint8_t>();
    const long nr = kCalls[kind % (sizeof kCalls / sizeof kCalls[0])];
    aio2_iocb io{};
    io.nr = static_cast<uint32_t>(nr);
    io.user_data = b.user_data = (++serial << 8) | i;
    fill_args(w, nr, in, io.args);
    io.flags = in.get<uint8_t>() & 0x80 ? in.get<uint32_t>() : in.get<uint8_t>() & AIO2_IOCB_ALL;
    io.reserved = in.get<uint8_t>() == 0xff ? in.get<uint32_t>() : 0;
    // Attribute bytes: whole 8-byte words, straight from the input.
    const size_t attr_words = in.get<uint8_t>() % 24;
    std::vector<unsigned char> attrs(attr_words * 8);
    in.bytes(attrs.data(), attrs.size());
    walk_attrs(attrs.data(), attrs.size(), b);
    b.start = words.size() * 8;
    b.len = sizeof io + attrs.size();
    const auto lie = in.get<uint8_t>();
    io.len = static_cast<uint32_t>(b.len);
    if (lie >= 0xf0) {
      b.lie = true;
      switch (lie % 3) {
        case 0: io.len = in.get<uint8_t>() % 72; break;               // too short
        case 1: io.len = static_cast<uint32_t>(b.len) + 1 + in.get<uint8_t>() % 7; break;
        default: io.len = static_cast<uint32_t>(b.len) + 8 * (1 + in.get<uint16_t>()); break;
      }
    }
    words.resize(words.size() + b.len / 8);
    std::memcpy(reinterpret_cast<unsigned char *>(words.data()) + b.start, &io, sizeof io);
    if (!attrs.empty())
      std::memcpy(reinterpret_cast<unsigned char *>(words.data()) + b.start + sizeof io, attrs.data(),
                  attrs.size());
    reqs.push_back(std::move(b));
    if (reqs.back().lie) {
      // Whatever aio2 might wrongly make of the lie lands on refused words.
      append_refused_words(words, 8);
      break;
    }
  }
  if (reqs.empty()) return 0;
  size_t bytes = words.size() * 8;
  // Sometimes cut the buffer short, inside the last request.
  if (!reqs.back().lie && in.get<uint8_t>() == 0x55 && reqs.back().len > 8) {
    bytes = reqs.back().start + reqs.back().len - 8 * (1 + in.get<uint8_t>() % (reqs.back().len / 8));
    reqs.back().lie = true;
  }

  // aio2_call on the first request (when true-length), into an event buffer
  // of arbitrary room, exactly that long.
  if (!reqs[0].lie && (head & 0x20)) {
    const size_t cap = (in.get<uint16_t>() % 512) & ~size_t{7};
    auto *ev = static_cast<unsigned char *>(::operator new(cap ? cap : 8));
    const ssize_t rc = aio2_call((head & 0x40) ? ctx : nullptr,
                                 reinterpret_cast<const aio2_iocb *>(words.data()), ev, cap);
    AIO2_FUZZ_CHECK(rc < 0 || (static_cast<size_t>(rc) <= cap && rc >= 24 && rc % 8 == 0), rc, cap);
    if (rc > 0) {
      aio2_event e;
      std::memcpy(&e, ev, sizeof e);
      AIO2_FUZZ_CHECK(e.len == rc && e.user_data == reqs[0].user_data);
    }
    ::operator delete(ev);
  }

  const ssize_t acc = aio2_submit(ctx, words.data(), bytes);
  // What was accepted is a prefix of whole true-length requests.
  size_t n_acc = 0;
  if (acc > 0) {
    size_t end = 0;
    while (n_acc < reqs.size() && end < static_cast<size_t>(acc)) {
      AIO2_FUZZ_CHECK(!reqs[n_acc].lie, static_cast<long long>(n_acc));
      AIO2_FUZZ_CHECK(reqs[n_acc].attrs_sound, static_cast<long long>(n_acc));
      end += reqs[n_acc].len;
      n_acc++;
    }
    AIO2_FUZZ_CHECK(end == static_cast<size_t>(acc), static_cast<long long>(end), acc);
  } else {
    AIO2_FUZZ_CHECK(acc < 0 || bytes == 0, acc, bytes);  // 0: nothing was submitted
  }

  // Reap: every accepted request exactly once, nothing else.
  std::vector<int> seen(n_acc, 0);
  size_t got = 0;
  alignas(8) static unsigned char evbuf[65536];
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += 10;
  while (got < n_acc) {
    const timespec slice{0, 100 * 1000 * 1000};
    const ssize_t n = aio2_getevents(ctx, 1, evbuf, sizeof evbuf, &slice);
    AIO2_FUZZ_CHECK(n >= 0 || n == -EINTR, n);
    for (const aio2_event *ev = aio2_event_next(evbuf, n > 0 ? static_cast<size_t>(n) : 0, nullptr); ev;
         ev = aio2_event_next(evbuf, static_cast<size_t>(n), ev)) {
      size_t k = 0;
      while (k < n_acc && reqs[k].user_data != ev->user_data) k++;
      AIO2_FUZZ_CHECK(k < n_acc, static_cast<long long>(ev->user_data));  // unknown or refused
      AIO2_FUZZ_CHECK(seen[k] == 0, static_cast<long long>(k));           // twice
      seen[k] = 1;
      got++;
      size_t j = 0;
      for (const aio2_attr_ret *r = aio2_attr_next(ev, nullptr); r; r = aio2_attr_next(ev, r), j++) {
        AIO2_FUZZ_CHECK(j < reqs[k].attr_ids.size(), static_cast<long long>(j));
        AIO2_FUZZ_CHECK(r->id == reqs[k].attr_ids[j], r->id, reqs[k].attr_ids[j]);
      }
      AIO2_FUZZ_CHECK(j == reqs[k].attr_ids.size(), static_cast<long long>(j),
                      static_cast<long long>(reqs[k].attr_ids.size()));
    }
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    AIO2_FUZZ_CHECK(now.tv_sec < deadline.tv_sec ||
                        (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec),
                    static_cast<long long>(got), static_cast<long long>(n_acc));  // lost events
  }
  const timespec zero{0, 0};
  AIO2_FUZZ_CHECK(aio2_getevents(ctx, 0, evbuf, sizeof evbuf, &zero) == 0);  // nothing extra
  return 0;
}
