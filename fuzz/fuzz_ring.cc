// SPDX-License-Identifier: MIT
// Fuzz target: aio2_ring_attach over an arbitrary header and data area, then,
// when it accepts, both reaper kinds of aio2/ring.h (peek/consume, and
// reap's copy then claim) with producers pushing between reaps; or, in the
// scribbler mode, a second thread writing arbitrary values into the shared
// positions, owner and setup flags and data area while this thread reaps,
// as a hostile peer process sharing the memory could.
//
// The ring ends exactly at a PROT_NONE guard page, so a reaper that reads
// past the data area faults; AddressSanitizer catches the rest.
// Checks (abort on failure): attach answers 0 or one of its documented
// errors; every result of peek and reap is a documented one; every record
// they hand over lies whole inside the data area (peek) or the caller's
// buffer (reap), is sound, and is neither BUSY nor PAD; without a
// scribbler, bytes in use never exceed data_bytes and a successful push
// leaves tail 8-aligned.
//
// Not scribbled: data_bytes, magic, version, hdr_bytes. The inline hot path
// reads data_bytes from the shared header on every call (the ABI has no
// local copy), so a peer that rewrites it after attach can move the
// reapers' index mask; docs/testing.md says so.

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "aio2/ring.h"
#include "fuzz_input.h"

namespace {

using aio2_fuzz::input;

constexpr unsigned kMinShift = 6, kMaxShift = 12;  // 64 .. 4096 data bytes

// One mapping per data size, reused by every input: [ring][guard page].
struct arena {
  unsigned char *ring = nullptr;  // 64-aligned, ends at the guard page
  size_t mem = 0;
};

arena &arena_for(unsigned shift) {
  static arena arenas[kMaxShift + 1];
  arena &a = arenas[shift];
  if (a.ring == nullptr) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t mem = AIO2_RING_HDR_BYTES + (size_t{1} << shift);
    const size_t usable = (mem + page - 1) / page * page;
    void *m = mmap(nullptr, usable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    AIO2_FUZZ_CHECK(m != MAP_FAILED);
    auto *base = static_cast<unsigned char *>(m);
    AIO2_FUZZ_CHECK(mprotect(base + usable, page, PROT_NONE) == 0);
    a.ring = base + usable - mem;  // mem is a multiple of 64
    a.mem = mem;
  }
  return a;
}

// The hostile peer: a thread that runs one script per input.
struct scribbler {
  std::mutex m;
  std::condition_variable cv;
  aio2_ring *ring = nullptr;
  std::vector<uint64_t> script;  // (selector, value) pairs
  bool go = false, done = true;
  // Published by the scribbler (release) when a pass over its script is
  // finished, read by the reaper (acquire) to know the peer has written at
  // least once; it stops at `stop` (relaxed: a plain request to return).
  std::atomic<unsigned> passes{0};
  std::atomic<bool> stop{false};
  std::thread t;

  scribbler() : t([this] { run(); }) { t.detach(); }

  void run() {
    for (;;) {
      std::unique_lock<std::mutex> hold(m);
      cv.wait(hold, [this] { return go; });
      go = false;
      hold.unlock();
      // Up to 64 passes, or until the reaper is done.
      for (unsigned pass = 0; pass < 64 && !stop.load(std::memory_order_relaxed); pass++) {
        for (size_t i = 0; i + 1 < script.size(); i += 2) write(script[i], script[i + 1]);
        passes.fetch_add(1, std::memory_order_release);
      }
      hold.lock();
      done = true;
      cv.notify_all();
    }
  }

  // Relaxed atomic stores: the peer's writes are arbitrary values, not
  // synchronisation; atomics keep this harness itself free of torn writes.
  void write(uint64_t sel, uint64_t v) {
    aio2_ring *r = ring;
    switch (sel % 8) {
      case 0: __atomic_store_n(&r->head, v, __ATOMIC_RELAXED); break;
      case 1: __atomic_store_n(&r->tail, v, __ATOMIC_RELAXED); break;
      case 2: __atomic_store_n(&r->reaper_tail, v, __ATOMIC_RELAXED); break;
      case 3: __atomic_store_n(&r->producer_head, v, __ATOMIC_RELAXED); break;
      case 4: __atomic_store_n(&r->owner_flags, static_cast<uint32_t>(v), __ATOMIC_RELAXED); break;
      case 5: __atomic_store_n(&r->setup_flags, static_cast<uint32_t>(v) & AIO2_RING_F_SINGLE_REAPER,
                               __ATOMIC_RELAXED);
        break;
      default: {  // a data word: record headers, lengths, PADs, payloads
        const uint64_t size = r->data_bytes;
        auto *w = reinterpret_cast<uint64_t *>(aio2__ring_data(r) + ((sel >> 3) & (size - 1) & ~uint64_t{7}));
        __atomic_store_n(w, v, __ATOMIC_RELAXED);
      }
    }
  }

  void start(aio2_ring *r, std::vector<uint64_t> s) {
    std::lock_guard<std::mutex> hold(m);
    ring = r;
    script = std::move(s);
    stop.store(false, std::memory_order_relaxed);
    done = false;
    go = true;
    cv.notify_all();
  }

  void finish() {
    stop.store(true, std::memory_order_relaxed);
    std::unique_lock<std::mutex> hold(m);
    cv.wait(hold, [this] { return done; });
  }
};

bool rec_ok(uint64_t w, uint64_t max_len) {
  const auto len = static_cast<uint32_t>(w);
  const auto flags = static_cast<uint32_t>(w >> 32);
  return len >= 8 && len % 8 == 0 && len <= max_len && !(flags & AIO2_RING_REC_RING_MASK);
}

// One reap step by either kind. Returns false when the reaper says it has
// nothing more (empty, BUSY or an error), true after progress.
bool reap_step(aio2_ring *r, bool zero_copy, size_t cap, unsigned max_recs, bool hostile) {
  const uint64_t size = r->data_bytes;
  const unsigned char *data = aio2__ring_data(r);
  if (zero_copy) {
    aio2_ring_rec *rec = nullptr;
    const int rc = aio2_ring_peek(r, &rec);
    AIO2_FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EUCLEAN || rc == -EBADMSG, rc);
    if (rc != 1) return false;
    const auto *b = reinterpret_cast<const unsigned char *>(rec);
    AIO2_FUZZ_CHECK(b >= data && b + 8 <= data + size && (b - data) % 8 == 0, b - data);
    const uint64_t w = __atomic_load_n(reinterpret_cast<const uint64_t *>(b), __ATOMIC_ACQUIRE);
    if (!hostile) {
      // What peek validated is still there: check it whole, read it all.
      AIO2_FUZZ_CHECK(rec_ok(w, data + size - b), static_cast<long long>(w));
      uint64_t sum = 0;
      for (uint32_t i = 0; i < rec->len; i++) sum += b[i];
      volatile uint64_t sink = sum;
      (void)sink;
    }
    aio2_ring_consume(r, rec);
    return true;
  }
  std::vector<uint64_t> buf((cap + 7) / 8);
  const int64_t got = aio2_ring_reap(r, buf.data(), cap & ~size_t{7}, max_recs);
  AIO2_FUZZ_CHECK(got >= 0 || got == -ENOBUFS || got == -EUCLEAN || got == -EBADMSG, got);
  if (got <= 0) return false;
  AIO2_FUZZ_CHECK(static_cast<uint64_t>(got) <= (cap & ~size_t{7}) && got % 8 == 0, got);
  // The copies are a sequence of whole sound records, whatever the peer did.
  const auto *out = reinterpret_cast<const unsigned char *>(buf.data());
  int64_t off = 0;
  unsigned n = 0;
  while (off < got) {
    uint64_t w;
    std::memcpy(&w, out + off, 8);
    AIO2_FUZZ_CHECK(rec_ok(w, static_cast<uint64_t>(got - off)) && static_cast<uint32_t>(w) <= size,
                    static_cast<long long>(w), off);
    off += static_cast<uint32_t>(w);
    n++;
  }
  AIO2_FUZZ_CHECK(max_recs == 0 || n <= max_recs, n, max_recs);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in(data, size);
  const auto mode = in.get<uint8_t>();
  const unsigned shift = kMinShift + in.get<uint8_t>() % (kMaxShift - kMinShift + 1);
  const bool zero_copy = mode & 1, hostile = mode & 2, raw_geometry = mode & 4;
  arena &a = arena_for(shift);
  auto *r = reinterpret_cast<aio2_ring *>(a.ring);
  const uint64_t data_bytes = uint64_t{1} << shift;

  // The header: sound geometry unless raw_geometry, positions always from
  // the input (a base plus small offsets, or raw words), data from the input.
  std::memset(a.ring, 0, a.mem);
  r->magic = AIO2_RING_MAGIC;
  r->version = AIO2_RING_VERSION;
  r->hdr_bytes = AIO2_RING_HDR_BYTES;
  r->data_bytes = data_bytes;
  r->setup_flags = in.get<uint8_t>() & AIO2_RING_F_ALL;
  if (raw_geometry) {
    r->magic = in.get<uint8_t>() ? in.get<uint32_t>() : AIO2_RING_MAGIC;
    r->version = in.get<uint16_t>();
    r->hdr_bytes = in.get<uint16_t>();
    r->data_bytes = in.get<uint64_t>();
    r->setup_flags = in.get<uint32_t>();
  }
  const auto base = in.get<uint64_t>() & ~uint64_t{7};
  const bool raw_pos = in.get<uint8_t>() & 1;
  auto pos = [&](void) -> uint64_t {
    return raw_pos ? in.get<uint64_t>() : base + (in.get<uint16_t>() & (2 * data_bytes - 1));
  };
  r->head = pos();
  r->tail = pos();
  r->reaper_tail = pos();
  r->producer_head = pos();
  r->owner_flags = in.get<uint32_t>();
  // The length attach is told: the mapping's, or less (a caller that says
  // more than it mapped is lying about its own memory, not fuzzing aio2).
  const auto mem_bytes = static_cast<size_t>(in.get<uint8_t>() & 1 ? a.mem : in.get<uint16_t>() % (a.mem + 1));
  const size_t cap = in.get<uint16_t>() % (2 * data_bytes + 8);
  const unsigned max_recs = in.get<uint8_t>() % 4;
  // Data area: 8-byte words from the input, but PAD/len-shaped words are
  // the interesting ones, so each word is either raw or a header.
  unsigned char *area = aio2__ring_data(r);
  for (uint64_t off = 0; off < data_bytes && !in.empty(); off += 8) {
    const auto kind = in.get<uint8_t>();
    uint64_t w;
    if (kind & 1) {
      w = in.get<uint64_t>();
    } else {
      const uint32_t len = (in.get<uint8_t>() & 0x7f) * 8u;
      const uint32_t fl = (kind & 2 ? AIO2_RING_REC_PAD : 0) | (kind & 4 ? AIO2_RING_REC_BUSY : 0);
      w = aio2__rec_word(len, fl);
    }
    std::memcpy(area + off, &w, 8);
  }

  const int err = aio2_ring_attach(r, mem_bytes);
  AIO2_FUZZ_CHECK(err == 0 || err == -EINVAL || err == -ENOEXEC || err == -EPROTONOSUPPORT ||
                      err == -EMSGSIZE || err == -EUCLEAN,
                  err);
  if (err) return 0;
  AIO2_FUZZ_CHECK(mem_bytes >= AIO2_RING_HDR_BYTES && r->data_bytes <= mem_bytes - AIO2_RING_HDR_BYTES);
  // Attach accepted: the geometry is that of the arena (anything else was
  // refused), so the guard page sits right after the data area.
  AIO2_FUZZ_CHECK(r->data_bytes <= data_bytes, static_cast<long long>(r->data_bytes));

  if (!hostile) {
    const bool locked = (__atomic_load_n(&r->tail, __ATOMIC_RELAXED) & 1) != 0;
    for (int step = 0; step < 64 && !in.empty(); step++) {
      const auto op = in.get<uint8_t>();
      if (op & 1 && !locked) {
        const uint32_t len = static_cast<uint32_t>(in.get<uint16_t>() % (data_bytes + 16));
        unsigned char payload[4096 + 16] = {};
        const int rc = aio2_ring_push(r, in.get<uint8_t>() & 0x3f, payload, len);
        AIO2_FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -EAGAIN || rc == -EUCLEAN, rc);
        // A record pushed starts and ends 8-aligned, so tail stays a
        // multiple of 8 (a misaligned tail let through would put the next
        // record header off its word).
        if (rc == 0)
          AIO2_FUZZ_CHECK((__atomic_load_n(&r->tail, __ATOMIC_RELAXED) & 7) == 0,
                          static_cast<long long>(r->tail));
      } else {
        while (reap_step(r, zero_copy, cap, max_recs, false)) {
        }
      }
      AIO2_FUZZ_CHECK(aio2_ring_used(r) <= data_bytes, static_cast<long long>(aio2_ring_used(r)));
      (void)aio2_ring_next_len(r);
    }
    // Drain: each step moves head forwards by at least 8 bytes, so this ends.
    for (uint64_t i = 0; i <= data_bytes / 8 && reap_step(r, zero_copy, cap, max_recs, false); i++) {
    }
    return 0;
  }

  static scribbler *peer = new scribbler;
  std::vector<uint64_t> script;
  while (in.left() >= 16 && script.size() < 64) {
    script.push_back(in.get<uint64_t>());
    script.push_back(in.get<uint64_t>());
  }
  peer->start(r, std::move(script));
  for (int i = 0; i < 256; i++) {
    reap_step(r, zero_copy, cap, max_recs, true);
    (void)aio2_ring_next_len(r);
    (void)aio2_ring_used(r);
    if (i > 8 && peer->passes.load(std::memory_order_acquire) > 0 && (i & 31) == 0) break;
  }
  peer->finish();
  return 0;
}
