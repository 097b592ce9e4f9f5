// SPDX-License-Identifier: MIT
// The ring protocol of aio2/ring.h under relacy, a model checker for the C11
// memory model: the real inline code of ring.h runs with every __atomic_*
// builtin redirected to a relacy atomic, with the memory order ring.h passes.
//
// How the redirection works: before ring.h is included, the __atomic_*
// builtins it calls are macros that land in model::load/store/cas below. The
// ring lives in an ordinary byte array; each of its 8-byte words has a
// shadow rl::atomic<uint64_t>, and an atomic operation on a word goes to its
// shadow, which relacy explores under the C11 rules (a relaxed load may see
// any store not yet ordered before it). Stores also write the byte array, so
// ring.h's plain accesses (the geometry, producer_head, reaper_tail, the
// length consume reads back) see the last value written. Those plain
// accesses are therefore not checked for races here; ThreadSanitizer checks
// them in ring_stress_test. Payloads are copied word by word with relaxed
// atomics (AIO2__WORD_COPIES, as in ThreadSanitizer builds), so a reaper that
// reads a payload not ordered after its writes can see old words, and the
// stamp check below catches it.
//
// Scenarios (each is a relacy test suite; see run() for the search):
//   reap     2 producers, 2 copying reapers (aio2_ring_reap: copy, then CAS
//            on head), one reaper taking one record per call and the other
//            as many as fit.
//   peek     2 producers, 1 zero-copy reaper (aio2_ring_peek / consume).
//   die_locked, die_headers, die_busy
//            as reap, but producer 0 dies in its second operation: holding
//            the tail lock before writing anything, holding it after writing
//            the BUSY (and PAD) headers, or after reserve and before commit.
//            Producer 1 must take the lock over; the reapers call
//            aio2_ring_reclaim when they make no progress and must get past
//            the dead record, which is never delivered.
// Producer ids and liveness: aio2_ring_producer_id / _alive are system calls
// in the library; here AIO2__RING_SELF and AIO2__RING_ALIVE give each
// simulated thread its own id, and a dead thread's flag is set with a release
// store as it dies and read with an acquire load, as a system call that
// reports a thread gone orders the dead thread's stores before it returns.
// AIO2__RING_SPINS and _YIELDS are 2 and 1, so that a waiter asks about the
// holder soon; the protocol is the same.
// Each producer pushes or reserves + writes + commits, reserves + discards,
// and reserves once for two records it commits together
// (aio2_ring_commit_split: the second record's header is written into the
// reservation before the first header's release), with records of 16 and
// 24 bytes in a 64-byte ring, so the ring fills (-EAGAIN, retried), wraps,
// and needs a PAD record at the wrap. Producer 0 dies (die_* scenarios) in
// its split reservation.
// Invariants: every committed record reaped exactly once, with its length,
// user flags and every payload word intact; no discarded record or PAD ever
// delivered; no reap or peek error on this sound ring; head never passes tail
// (checked after every step); at the end the ring is empty.
//
// Mutations (--weaken N, for the mutation tests): the shim weakens one
// order ring.h asks for, and main() then succeeds only if the checker
// reports an invariant failure:
//   1  R2: the commit's release store of a record header becomes relaxed
//   2  A2: the reapers' acquire load of a record header becomes relaxed
//   3  R1: the release store of tail becomes relaxed
//   4  A3/A4: the acquire loads of head (producers', copying reapers')
//      become relaxed. relacy does not model a load reordered after a later
//      store (load buffering), so A3's weakening cannot show here; A4's
//      shows in the reap scenario, as a spurious -EUCLEAN.
//   5  the producer of a split reservation writes the second record after
//      aio2_ring_commit_split instead of before (a misuse of the ring, not
//      an order of ring.h): reapers then read a header not yet written.
//      The long scenarios only (the small ones split nothing).

#include <sched.h>
#include <setjmp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include <relacy/relacy.hpp>

namespace model {

constexpr size_t kHdr = 384;  // AIO2_RING_HDR_BYTES, checked below
constexpr size_t kData = 64;  // AIO2_RING_MIN_DATA: the smallest ring wraps soonest
constexpr size_t kMem = kHdr + kData;
constexpr size_t kWords = kMem / 8;
constexpr size_t kHeadOff = 128;  // offsetof(struct aio2_ring, head), checked below
constexpr size_t kTailOff = 256;  // offsetof(struct aio2_ring, tail), checked below

// The current iteration's ring bytes and their shadow atomics (set by the
// suite's before(); relacy runs every simulated thread on one OS thread).
unsigned char *g_bytes;
rl::atomic<uint64_t> *g_cells;

inline size_t offset_of(const volatile void *p) {
  const uintptr_t off = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(g_bytes);
  if (off >= kMem || (off & 7) != 0) {
    std::fprintf(stderr, "model: atomic access outside the ring's words (offset %zu)\n",
                 static_cast<size_t>(off));
    std::abort();
  }
  return off;
}

// The builtins' __ATOMIC_* values are relacy's mo_* in the same order.
static_assert(__ATOMIC_RELAXED == rl::mo_relaxed && __ATOMIC_ACQUIRE == rl::mo_acquire &&
                  __ATOMIC_RELEASE == rl::mo_release && __ATOMIC_SEQ_CST == rl::mo_seq_cst,
              "memory order numbering");

// The mutation --weaken chose (0: none). Set once by main() before any
// simulation; relacy runs every modelled thread on the one OS thread.
int g_weaken = 0;

inline rl::memory_order load_order(size_t off, int mo) {
  if (g_weaken == 2 && off >= kHdr && mo == __ATOMIC_ACQUIRE) return rl::mo_relaxed;
  if (g_weaken == 4 && off == kHeadOff && mo == __ATOMIC_ACQUIRE) return rl::mo_relaxed;
  return static_cast<rl::memory_order>(mo);
}

inline rl::memory_order store_order(size_t off, int mo) {
  if (g_weaken == 1 && off >= kHdr && mo == __ATOMIC_RELEASE) return rl::mo_relaxed;
  if (g_weaken == 3 && off == kTailOff && mo == __ATOMIC_RELEASE) return rl::mo_relaxed;
  return static_cast<rl::memory_order>(mo);
}

template <class T>
T load(const T *p, int mo, rl::debug_info_param info) {
  static_assert(sizeof(T) == 8 || sizeof(T) == 4, "ring atomics are 32 or 64 bits");
  if constexpr (sizeof(T) != 8) {
    // Only the owner flags are 32-bit, and no scenario uses them.
    std::fprintf(stderr, "model: 32-bit atomics are not modelled\n");
    std::abort();
  } else {
    const size_t off = offset_of(p);
    return static_cast<T>(g_cells[off / 8].load(load_order(off, mo), info));
  }
}

template <class T, class V>
void store(T *p, V v, int mo, rl::debug_info_param info) {
  static_assert(sizeof(T) == 8, "ring stores are 64-bit");
  const size_t off = offset_of(p);
  const uint64_t value = static_cast<uint64_t>(v);
  g_cells[off / 8].store(value, store_order(off, mo), info);
  std::memcpy(g_bytes + off, &value, 8);
}

template <class T, class V>
bool cas(T *p, T *expected, V desired, bool weak, int smo, int fmo, rl::debug_info_param info) {
  static_assert(sizeof(T) == 8, "ring CAS is 64-bit");
  const size_t off = offset_of(p);
  uint64_t cmp = static_cast<uint64_t>(*expected);
  const uint64_t value = static_cast<uint64_t>(desired);
  rl::atomic<uint64_t> &c = g_cells[off / 8];
  const bool ok = weak ? c.compare_exchange_weak(cmp, value, store_order(off, smo), info,
                                                 load_order(off, fmo), info)
                       : c.compare_exchange_strong(cmp, value, store_order(off, smo), info,
                                                   load_order(off, fmo), info);
  if (ok)
    std::memcpy(g_bytes + off, &value, 8);
  else
    *expected = static_cast<T>(cmp);
  return ok;
}

template <class T, class V>
T fetch_add(T *p, V v, int mo, rl::debug_info_param info) {
  static_assert(sizeof(T) == 8, "ring RMWs are 64-bit");
  const size_t off = offset_of(p);
  const uint64_t old = g_cells[off / 8].fetch_add(static_cast<uint64_t>(v), static_cast<rl::memory_order>(mo), info);
  const uint64_t value = old + static_cast<uint64_t>(v);
  std::memcpy(g_bytes + off, &value, 8);
  return static_cast<T>(old);
}

template <class T, class V>
T fetch_unmodelled(T *, V, int) {
  std::fprintf(stderr, "model: owner-flag RMWs are not modelled\n");
  std::abort();
}

// Producer deaths. g_die_at: where producer 0 dies in its second operation
// (0: never). g_dead[i]: thread i has died (release as it dies, acquire in
// alive()).
enum { kDieNever = 0, kDieLocked = 1, kDieHeaders = 2, kDieBusy = 3 };
constexpr uint32_t kIdBase = 100;
int g_die_at;
bool g_victim_armed;
rl::atomic<unsigned> *g_dead;
// The victim's way out of ring.h when it dies: a longjmp back to produce()
// (relacy's fibers do not unwind exceptions; ring.h holds no resources).
jmp_buf g_victim_exit;

inline uint32_t self_id() { return kIdBase + static_cast<uint32_t>(rl::ctx().current_thread()); }

inline int alive(uint32_t id, rl::debug_info_param info) {
  if (id < kIdBase || id >= kIdBase + 4) {
    std::fprintf(stderr, "model: unknown producer id %u\n", id);
    std::abort();
  }
  return g_dead[id - kIdBase].load(rl::mo_acquire, info) == 0;
}

inline void die(rl::debug_info_param info) {
  g_victim_armed = false;
  g_dead[rl::ctx().current_thread()].store(1, rl::mo_release, info);
  longjmp(g_victim_exit, 1);
}

// AIO2_RING_TEST_HOOK: the armed victim (thread 0) dies at its chosen point.
inline void hook(int point, rl::debug_info_param info) {
  if (g_victim_armed && rl::ctx().current_thread() == 0 && point == g_die_at) die(info);
}

// A spinning thread lets the others run (the pause and sched_yield of the
// tail lock's spin).
inline void relax(rl::debug_info_param info) { rl::yield(1, info); }

}  // namespace model

#define __atomic_load_n(p, mo) model::load((p), (mo), RL_INFO)
#define __atomic_store_n(p, v, mo) model::store((p), (v), (mo), RL_INFO)
#define __atomic_compare_exchange_n(p, e, d, w, smo, fmo) \
  model::cas((p), (e), (d), (w) != 0, (smo), (fmo), RL_INFO)
#define __atomic_fetch_add(p, v, mo) model::fetch_add((p), (v), (mo), RL_INFO)
#define __atomic_fetch_or(p, v, mo) model::fetch_unmodelled((p), (v), (mo))
#define __atomic_fetch_and(p, v, mo) model::fetch_unmodelled((p), (v), (mo))
#define __builtin_ia32_pause() model::relax(RL_INFO)
#undef sched_yield  // relacy's own, replaced by the same yield, named here
#define sched_yield() (model::relax(RL_INFO), 0)
#define AIO2__RING_SELF() model::self_id()
#define AIO2__RING_ALIVE(id) model::alive((id), RL_INFO)
#define AIO2__RING_SPINS 2u
#define AIO2__RING_YIELDS 1u
#define AIO2_RING_TEST_HOOK(point) model::hook(point, RL_INFO)
// Payloads as word-wise relaxed atomics, so that the model sees them.
#define AIO2__WORD_COPIES 1

#include "aio2/ring.h"

static_assert(AIO2_RING_HDR_BYTES == model::kHdr, "header size");
static_assert(offsetof(struct aio2_ring, head) == model::kHeadOff, "head offset");
static_assert(offsetof(struct aio2_ring, tail) == model::kTailOff, "tail offset");

namespace model {

// Failed invariants say MODEL-INVARIANT, which the mutation tests look for.
#define MODEL_CHECK(cond) \
  RL_ASSERT_IMPL((cond), rl::test_result_user_assert_failed, "MODEL-INVARIANT: " #cond, RL_INFO)

constexpr unsigned kProducers = 2;
// Per producer: push, reserve+commit, reserve+discard, and two records in
// one reservation (aio2_ring_commit_split).
constexpr unsigned kOps = 4;

// What producer p's operation i does. `split`: operation i and i + 1 are
// one reservation of both lengths, committed at once as two records.
struct op {
  uint32_t len;
  bool discard;
  bool push;
  bool split;
};
// The long scenarios: four operations each, so the ring fills, wraps and
// needs a PAD record at the wrap whatever the order.
constexpr op kPlanLong[kProducers][kOps] = {
    {{16, false, true, false}, {16, false, false, true}, {16, false, false, false},
     {16, true, false, false}},
    {{24, false, false, false}, {16, true, false, false}, {16, false, false, true},
     {16, false, false, false}},
};
// The small scenarios, for the exhaustive searches: one record each, the
// first one at data offset 48 (positions start 16 below 2^64). Producer 0's
// 24 bytes do not fit in the 16 left before the end: when it goes first it
// writes a PAD record and its record at offset 0, crossing 2^64; when
// producer 1's 16 bytes go first they end exactly at the end, and producer
// 0's record starts the next lap with no PAD. The two reapers race for
// the same records, so the CAS on head fails and is retried.
constexpr op kPlanSmall[kProducers][kOps] = {
    {{24, false, true, false}, {}, {}, {}},
    {{16, false, false, false}, {}, {}, {}},
};

// The current scenario's plan (set by the suite's before()): the
// operations, how many each producer does, which one the victim dies in.
const op (*g_plan)[kOps] = kPlanLong;
unsigned g_ops = kOps;
unsigned g_victim_op = 1;
// Calls each reaper makes in the small scenarios (see reaper_continues).
constexpr unsigned kSmallReapTries = 2;

// Whether producer p's operation i happens (the victim does not finish the
// operation it dies in, nor start a later one).
bool happens(unsigned p, unsigned i) {
  return i < g_ops && !(g_die_at != kDieNever && p == 0 && i >= g_victim_op);
}

unsigned committed_total() {
  unsigned n = 0;
  for (unsigned p = 0; p < kProducers; p++)
    for (unsigned i = 0; i < g_ops; i++) n += !g_plan[p][i].discard && happens(p, i) ? 1 : 0;
  return n;
}

// Payload word w of producer p's record i; never 0, the ring's initial
// contents, and different in every record and word.
constexpr uint64_t stamp(unsigned p, unsigned i, unsigned w) {
  return 0x5a00000000000000ull | (uint64_t{p} << 40) | (uint64_t{i} << 20) | (w + 1u);
}
constexpr uint32_t user_flags(unsigned p, unsigned i) { return 0x100u * (p + 1) + i; }

// The harness's bookkeeping is plain memory: the simulated threads run one at
// a time on one OS thread.
struct ledger {
  unsigned seen[kProducers][kOps];
  unsigned reaped;
};
ledger g_ledger;

// Checks one delivered record (its 8-byte header and payload words, copied
// out or read in place with loadw) and counts it.
template <class LoadWord>
void account(uint32_t len, uint32_t flags, LoadWord loadw) {
  MODEL_CHECK((flags & AIO2_RING_REC_RING_MASK) == 0);  // no PAD, no BUSY delivered
  MODEL_CHECK(len >= 16);
  const uint64_t first = loadw(0);
  const unsigned p = static_cast<unsigned>((first >> 40) & 0xff);
  const unsigned i = static_cast<unsigned>((first >> 20) & 0xfffff);
  MODEL_CHECK(p < kProducers && i < kOps);
  if (p >= kProducers || i >= kOps) return;
  MODEL_CHECK(happens(p, i));
  MODEL_CHECK(!g_plan[p][i].discard);
  MODEL_CHECK(len == g_plan[p][i].len);
  MODEL_CHECK(flags == user_flags(p, i));
  for (unsigned w = 0; w < (len - 8) / 8; w++) MODEL_CHECK(loadw(w) == stamp(p, i, w));
  g_ledger.seen[p][i]++;
  MODEL_CHECK(g_ledger.seen[p][i] == 1);
  g_ledger.reaped++;
}

// The victim's last operation: it dies inside reserve (at the test hook)
// or after it, before commit, and comes back here by longjmp.
__attribute__((noinline)) void victim_op(struct aio2_ring *r, uint32_t len) {
  g_victim_armed = true;
  if (setjmp(g_victim_exit) != 0) return;
  struct aio2_ring_rec *rec = nullptr;
  int err;
  while ((err = aio2_ring_reserve(r, len, &rec)) == -EAGAIN) rl::yield(1, RL_INFO);
  MODEL_CHECK(err == 0 && g_die_at == kDieBusy);
  die(RL_INFO);  // reserved, never committed
}

void produce(struct aio2_ring *r, unsigned p) {
  for (unsigned i = 0; i < g_ops; i++) {
    const op &o = g_plan[p][i];
    if (p == 0 && i == g_victim_op && g_die_at != kDieNever) {
      victim_op(r, o.split ? o.len + g_plan[p][i + 1].len : o.len);
      return;
    }
    uint64_t payload[3];
    for (unsigned w = 0; w < 3; w++) payload[w] = stamp(p, i, w);
    for (;;) {
      int err;
      if (o.split) {
        // Record i, then record i + 1's header and payload, in one
        // reservation; committed together.
        const op &next = g_plan[p][i + 1];
        uint64_t rest[4] = {aio2__rec_word(next.len, user_flags(p, i + 1))};
        for (unsigned w = 0; w < (next.len - 8) / 8; w++) rest[1 + w] = stamp(p, i + 1, w);
        struct aio2_ring_rec *rec = nullptr;
        err = aio2_ring_reserve(r, o.len + next.len, &rec);
        if (err == 0) {
          aio2_ring_write(r, rec, 0, payload, o.len - 8);
          if (g_weaken != 5) aio2_ring_write(r, rec, o.len - 8, rest, next.len);
          aio2_ring_commit_split(r, rec, o.len, user_flags(p, i));
          if (g_weaken == 5) aio2_ring_write(r, rec, o.len - 8, rest, next.len);
        }
      } else if (o.push) {
        err = aio2_ring_push(r, user_flags(p, i), payload, o.len);
      } else {
        struct aio2_ring_rec *rec = nullptr;
        err = aio2_ring_reserve(r, o.len, &rec);
        if (err == 0) {
          if (o.discard) {
            aio2_ring_discard(r, rec);
          } else {
            aio2_ring_write(r, rec, 0, payload, o.len - 8);
            aio2_ring_commit(r, rec, user_flags(p, i));
          }
        }
      }
      MODEL_CHECK(err == 0 || err == -EAGAIN);
      if (err != -EAGAIN) break;
      rl::yield(1, RL_INFO);  // full: wait for the reapers
    }
    if (o.split) i++;  // the next record went with this one
  }
}

// Accounts for the records of a copying reap (`got` bytes in `buf`).
void account_copies(const uint64_t *buf, size_t got) {
  size_t at = 0;
  while (at < got) {
    uint32_t len, flags;
    std::memcpy(&len, reinterpret_cast<const unsigned char *>(buf) + at, 4);
    std::memcpy(&flags, reinterpret_cast<const unsigned char *>(buf) + at + 4, 4);
    MODEL_CHECK(len >= 8 && at + len <= got);
    if (len < 8 || at + len > got) return;
    const uint64_t *words = buf + at / 8 + 1;
    account(len, flags, [words](unsigned w) { return words[w]; });
    at += len;
  }
}

// How many calls each reaper makes at most in the small scenarios (0: until
// every record is reaped). The exhaustive searches need every thread to
// end after a bounded number of steps: a reaper that spins on an empty
// ring multiplies the schedules without end. What the reapers leave is
// reaped, checked and counted after the threads end (ring_suite::after).
unsigned g_reap_tries = 0;

bool reaper_continues(unsigned tries) {
  return g_ledger.reaped < committed_total() && (g_reap_tries == 0 || tries < g_reap_tries);
}

// Copying reaper: `max_recs` records per call at most, into a `cap`-byte buffer.
void reap_loop(struct aio2_ring *r, unsigned max_recs, size_t cap) {
  for (unsigned tries = 0; reaper_continues(tries); tries++) {
    uint64_t buf[8];
    const int64_t got = aio2_ring_reap(r, buf, cap, max_recs);
    MODEL_CHECK(got >= 0);
    if (got <= 0) {
      // No progress: perhaps a dead producer's record is at head.
      MODEL_CHECK(aio2_ring_reclaim(r) >= 0);
      rl::yield(1, RL_INFO);
      continue;
    }
    account_copies(buf, static_cast<size_t>(got));
  }
}

// Zero-copy reaper: reads each record in place, then consumes it.
void peek_loop(struct aio2_ring *r) {
  for (unsigned tries = 0; reaper_continues(tries); tries++) {
    struct aio2_ring_rec *rec = nullptr;
    const int n = aio2_ring_peek(r, &rec);
    MODEL_CHECK(n >= 0);
    if (n <= 0) {
      rl::yield(1, RL_INFO);
      continue;
    }
    uint64_t *w = reinterpret_cast<uint64_t *>(static_cast<void *>(rec));
    const uint64_t hdr = __atomic_load_n(w, __ATOMIC_RELAXED);
    account(static_cast<uint32_t>(hdr), static_cast<uint32_t>(hdr >> 32),
            [w](unsigned i) { return __atomic_load_n(&w[1 + i], __ATOMIC_RELAXED); });
    aio2_ring_consume(r, rec);
  }
}

// The state every suite shares: the ring's bytes and shadows.
template <class Derived, unsigned Threads>
struct ring_suite : rl::test_suite<Derived, Threads> {
  // The ring's memory, 64-byte aligned by hand: relacy allocates the suite
  // without honouring alignas.
  unsigned char storage[kMem + 64];
  unsigned char *bytes = nullptr;
  rl::atomic<uint64_t> cells[kWords];
  rl::atomic<unsigned> dead[4];
  uint32_t setup_flags = 0;
  static constexpr int kDieAt = kDieNever;
  // The small plan (one record each, the first at the end of the data
  // area) instead of the long one.
  static constexpr bool kSmall = false;

  struct aio2_ring *ring() { return reinterpret_cast<struct aio2_ring *>(bytes); }

  void before() {
    bytes = storage + (64 - reinterpret_cast<uintptr_t>(storage) % 64) % 64;
    g_bytes = bytes;
    g_cells = cells;
    g_dead = dead;
    g_die_at = Derived::kDieAt;
    g_plan = Derived::kSmall ? kPlanSmall : kPlanLong;
    g_ops = Derived::kSmall ? 1 : kOps;
    g_victim_op = Derived::kSmall ? 0 : 1;
    g_reap_tries = Derived::kSmall ? kSmallReapTries : 0;
    g_victim_armed = false;
    for (unsigned i = 0; i < 4; i++) dead[i]($) = 0;
    std::memset(&g_ledger, 0, sizeof g_ledger);
    std::memset(bytes, 0, kMem);
    // aio2_ring_init is library code with real atomics, run before any
    // simulated thread; its result becomes the shadows' initial values.
    // Positions start just below 2^64, so the run also crosses the wrap of
    // the 64-bit counters.
    const uint64_t start = Derived::kSmall ? ~uint64_t{0} - 15 : ~uint64_t{0} - 63;
    MODEL_CHECK(aio2_ring_init(bytes, kMem, kData, setup_flags, start) == 0);
    for (size_t w = 0; w < kWords; w++) {
      uint64_t v;
      std::memcpy(&v, bytes + 8 * w, 8);
      cells[w]($) = v;
    }
  }

  // Head never passes tail: the bytes in use stay in [0, data_bytes].
  void invariant() {
    uint64_t h, t;
    std::memcpy(&h, bytes + offsetof(struct aio2_ring, head), 8);
    std::memcpy(&t, bytes + offsetof(struct aio2_ring, tail), 8);
    MODEL_CHECK(((t & ~uint64_t{7}) - h) <= kData);
  }

  // Every committed record was delivered once, none discarded was, and
  // what is left is only PAD or discarded records.
  void after() {
    uint64_t buf[8];
    // What the reapers of a small scenario left (the producers are done,
    // so one reap takes every committed record left).
    if (Derived::kSmall) {
      const int64_t got = aio2_ring_reap(ring(), buf, sizeof buf, 0);
      MODEL_CHECK(got >= 0);
      if (got > 0) account_copies(buf, static_cast<size_t>(got));
      // A dead producer's record may be at head, before committed ones.
      if (aio2_ring_reclaim(ring()) == 1) {
        const int64_t more = aio2_ring_reap(ring(), buf, sizeof buf, 0);
        MODEL_CHECK(more >= 0);
        if (more > 0) account_copies(buf, static_cast<size_t>(more));
      }
    }
    for (unsigned p = 0; p < kProducers; p++)
      for (unsigned i = 0; i < kOps; i++)
        MODEL_CHECK(g_ledger.seen[p][i] == (!happens(p, i) || g_plan[p][i].discard ? 0u : 1u));
    // A dead producer's record may still be there, behind a PAD at the
    // wrap: a reap finds nothing committed (and moves head past PADs), then
    // reclaim drops the dead record at head.
    int dropped = 0;
    for (int k = 0; k < 3; k++) {
      MODEL_CHECK(aio2_ring_reap(ring(), buf, sizeof buf, 0) == 0);
      if (aio2_ring_reclaim(ring()) != 1) break;
      dropped++;
    }
    MODEL_CHECK(dropped <= 1);
    MODEL_CHECK(aio2_ring_used(ring()) == 0);
  }
};

// Two producers; a reaper with a 64-byte buffer and one with 40.
template <class Derived>
struct reap_body : ring_suite<Derived, 4> {
  void thread(unsigned idx) {
    if (idx < kProducers)
      produce(this->ring(), idx);
    else if (idx == kProducers)
      reap_loop(this->ring(), 1, 64);
    else
      reap_loop(this->ring(), 0, 40);
  }
};
struct reap_suite : reap_body<reap_suite> {};

// The victim is producer 0; both reapers copy and reclaim.
template <class Derived>
struct die_suite : ring_suite<Derived, 4> {
  void thread(unsigned idx) {
    if (idx < kProducers)
      produce(this->ring(), idx);
    else if (idx == kProducers)
      reap_loop(this->ring(), 1, 64);
    else
      reap_loop(this->ring(), 0, 40);
  }
};
struct die_locked_suite : die_suite<die_locked_suite> {
  static constexpr int kDieAt = kDieLocked;
};
struct die_headers_suite : die_suite<die_headers_suite> {
  static constexpr int kDieAt = kDieHeaders;
};
struct die_busy_suite : die_suite<die_busy_suite> {
  static constexpr int kDieAt = kDieBusy;
};

// Two producers and one zero-copy reaper.
template <class Derived>
struct peek_body : ring_suite<Derived, 3> {
  void thread(unsigned idx) {
    if (idx < kProducers)
      produce(this->ring(), idx);
    else
      peek_loop(this->ring());
  }
};
struct peek_suite : peek_body<peek_suite> {};

// The small scenarios, for the exhaustive searches (see kPlanSmall).
struct wrap_reap_suite : reap_body<wrap_reap_suite> {
  static constexpr bool kSmall = true;
};
struct wrap_peek_suite : peek_body<wrap_peek_suite> {
  static constexpr bool kSmall = true;
};
// Producer 0 dies in its only operation (its 24 bytes would need the PAD).
template <class Derived>
struct wrap_die_suite : die_suite<Derived> {
  static constexpr bool kSmall = true;
};
struct wrap_die_locked_suite : wrap_die_suite<wrap_die_locked_suite> {
  static constexpr int kDieAt = kDieLocked;
};
struct wrap_die_headers_suite : wrap_die_suite<wrap_die_headers_suite> {
  static constexpr int kDieAt = kDieHeaders;
};
struct wrap_die_busy_suite : wrap_die_suite<wrap_die_busy_suite> {
  static constexpr int kDieAt = kDieBusy;
};

}  // namespace model

namespace {

// Runs one suite; returns 0 when the checker found no failure, 1 when it
// found one (printing relacy's report), 2 on a bad argument.
template <class Suite>
int run(const char *name, const std::string &search, unsigned long n, bool quiet_failure) {
  rl::test_params p;
  // relacy prints to std::cout: a failed check with the execution that
  // broke it, or the iterations of a clean run. (Not a string stream: relacy
  // takes over the heap while it simulates, and a stream buffer growing then
  // is freed by the wrong allocator.)
  (void)quiet_failure;
  if (search == "random") {
    p.search_type = rl::random_scheduler_type;
    p.iteration_count = n;
  } else if (search == "bound") {
    p.search_type = rl::fair_context_bound_scheduler_type;
    p.context_bound = static_cast<unsigned>(n);
  } else if (search == "full") {
    p.search_type = rl::fair_full_search_scheduler_type;
  } else {
    return 2;
  }
  const bool ok = rl::simulate<Suite>(p);
  std::printf("%s: %s search%s%lu: %s after %llu executions\n", name, search.c_str(),
              search == "random" ? ", iterations " : search == "bound" ? ", context bound " : "",
              search == "full" ? 0ul : n, ok ? "no failure" : "FAILURE",
              static_cast<unsigned long long>(p.stop_iteration));
  if (!ok) std::printf("result: %s\n", rl::test_result_str(p.test_result));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

// ring_model [--weaken M] [SCENARIO [SEARCH N]]
//   --weaken M  mutation M (1 to 5, above): succeeds only if caught
//   SCENARIO  reap, peek, die_locked, die_headers, die_busy or all (the
//             default)
//   SEARCH N  random N (N random schedules, the default with N = 20000),
//             bound N (every schedule with at most N preemptions), full
int main(int argc, char **argv) {
  if (argc > 2 && std::string(argv[1]) == "--weaken") {
    model::g_weaken = std::atoi(argv[2]);
    if (model::g_weaken < 1 || model::g_weaken > 5) {
      std::fprintf(stderr, "ring_model: --weaken takes 1 to 5, not %s\n", argv[2]);
      return 2;
    }
    argc -= 2;
    argv += 2;
  }
  const std::string scenario = argc > 1 ? argv[1] : "all";
  const std::string search = argc > 2 ? argv[2] : "random";
  const unsigned long n = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 20000;
  const bool mutant = model::g_weaken != 0;
  // `all` is the long scenarios, `small` the small ones.
  const struct {
    const char *key;
    bool small;
    const char *name;
    int (*fn)(const char *, const std::string &, unsigned long, bool);
  } scenarios[] = {
      {"reap", false, "reap (2 producers, 2 copying reapers)", run<model::reap_suite>},
      {"peek", false, "peek (2 producers, 1 zero-copy reaper)", run<model::peek_suite>},
      {"die_locked", false, "die_locked (producer killed holding the lock)", run<model::die_locked_suite>},
      {"die_headers", false, "die_headers (killed after writing headers)", run<model::die_headers_suite>},
      {"die_busy", false, "die_busy (killed between reserve and commit)", run<model::die_busy_suite>},
      {"wrap_reap", true, "wrap_reap (1 record each at the wrap, 2 copying reapers)",
       run<model::wrap_reap_suite>},
      {"wrap_peek", true, "wrap_peek (1 record each at the wrap, 1 zero-copy reaper)",
       run<model::wrap_peek_suite>},
      {"wrap_die_locked", true, "wrap_die_locked (killed holding the lock, at the wrap)",
       run<model::wrap_die_locked_suite>},
      {"wrap_die_headers", true, "wrap_die_headers (killed after writing BUSY and PAD)",
       run<model::wrap_die_headers_suite>},
      {"wrap_die_busy", true, "wrap_die_busy (killed between reserve and commit, at the wrap)",
       run<model::wrap_die_busy_suite>},
  };
  int failed = 0, ran = 0;
  for (const auto &sc : scenarios) {
    if (scenario != sc.key && !(scenario == "all" && !sc.small) && !(scenario == "small" && sc.small))
      continue;
    ran++;
    const int rc = sc.fn(sc.name, search, n, mutant);
    if (rc == 2) return 2;
    failed += rc;
  }
  if (ran == 0) {
    std::fprintf(stderr,
                 "usage: ring_model [--weaken 1-5] [reap|peek|die_locked|die_headers|die_busy|all|\n"
                 "                   wrap_reap|wrap_peek|wrap_die_locked|wrap_die_headers|"
                 "wrap_die_busy|small] [random N|bound N|full]\n");
    return 2;
  }
  if (!mutant) return failed ? 1 : 0;
  // A weakened order must be caught, in every scenario run.
  std::printf("mutation %d: %s\n", model::g_weaken,
              failed == ran ? "caught by the checker" : "NOT caught");
  return failed == ran ? 0 : 1;
}
