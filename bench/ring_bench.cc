// SPDX-License-Identifier: MIT
//
// ring_bench - throughput of the aio2 record ring (include/aio2/ring.h) next
// to two well-known lock-free queues, in the same run.
//
// What is measured
//   Records per second and bytes per second for a whole transfer of N records
//   from P producer threads to C reaper threads:
//     configurations   1P1C (1 producer, 1 reaper) and 2P2C (2 and 2);
//     record sizes     24, 64 and 4096 bytes. The size is the WHOLE record,
//                      aio2's 8-byte header included; the peers carry a POD
//                      struct of exactly that size (word 0 holds a len/flags
//                      word like aio2's header, word 1 the sequence number),
//                      so every engine moves the same bytes per record;
//     engines          aio2_spsc_zero_copy  ring F_SINGLE_PRODUCER|F_SINGLE_REAPER,
//                                           push / peek + consume (1P1C)
//                      aio2_spsc_copy       same ring, push / reap into a
//                                           4 KiB buffer (1P1C)
//                      aio2_mpmc            ring with flags 0, push / reap
//                                           into a 4 KiB buffer (1P1C, 2P2C)
//                      aio2_sp_copy         ring F_SINGLE_PRODUCER: the
//                                           producer takes no lock, the
//                                           reapers still claim by CAS (1P1C;
//                                           beside aio2_mpmc it shows what the
//                                           multi-producer lock costs)
//                      boost_spsc           boost::lockfree::spsc_queue, push /
//                                           pop(T *, n) in bulk (1P1C)
//                      moodycamel           moodycamel::ConcurrentQueue with
//                                           tokens, try_enqueue /
//                                           try_dequeue_bulk (1P1C, 2P2C)
//                      aio2_mpmc_b16        aio2_mpmc whose producers push 16
//                                           records at a time: one
//                                           reservation, aio2_ring_commit_split
//                                           (2P2C)
//                      moodycamel_b16       moodycamel whose producers push 16
//                                           at a time, try_enqueue_bulk (2P2C);
//                                           the _b16 rows' ratios are to each
//                                           other
//   The aio2 ring has 1 MiB of data for 24- and 64-byte records and 4 MiB
//   for 4 KiB records; the peers get the same capacity in records
//   (data bytes / record size: 43690, 16384 and 1024 records).
//   N is 2,000,000 records (24 and 64 bytes) or 200,000 (4 KiB), split evenly
//   over the producers. Each producer stamps a sequence number (1..N, unique
//   over all producers) in the first payload word; each reaper reads that
//   word of every record and sums it. After every iteration the record count
//   and the sum are checked (and, with one producer and one reaper, that the
//   sequence arrived in order); a mismatch fails the benchmark.
//
// How it is timed (manual time)
//   Every iteration (one transfer) builds a fresh queue (storage pre-faulted,
//   outside the timing), starts the threads, and each producer pushes its
//   first record before it reaches the start barrier (so every moodycamel
//   producer owns a block before the race starts; done for all engines
//   alike). The clock is a steady clock from the release of the start barrier
//   to the moment the last reaper has seen all producers finish and the queue
//   empty. Full / empty queue: every engine uses the same backoff, 64 x pause
//   and then sched_yield(), because 2P2C runs 4 spinning threads on 2 cores.
//   Threads are pinned: producer i to CPU 2i mod n, reaper i to CPU 2i+1
//   mod n (1P1C: producer and reaper on different CPUs; 2P2C on 2 CPUs: one
//   producer and one reaper per CPU). An iteration that takes over 20 s is
//   aborted and reported as an error.
//
// Output
//   Each benchmark runs 9 repetitions of 1 transfer (--benchmark_repetitions
//   overrides the 9), in random order interleaved with the other benchmarks
//   (--benchmark_enable_random_interleaving=false turns that off), and shows
//   the mean, median, stddev and cv over the repetitions: items_per_second =
//   records/s, bytes_per_second, recs_per_reap (records per successful reap
//   call, a hint of how full the queue ran) and, for aio2 engines, pad_frac
//   (share of the bytes the ring's tail advanced over that were PAD records).
//   --benchmark_out files get every repetition. The ring_bench_stats build
//   (same source, AIO2_RING_BENCH_STATS) adds, for aio2 engines, the ring's
//   slow steps per record: lock_spin (failed CAS on the tail lock),
//   lock_yield, head_load (producers reading head), full (-EAGAIN), reap_lost
//   (reaps that lost the CAS on head), reap_wasted (records those copied),
//   reap_busy (reaps stopped at a BUSY record), pads. Then a ratio table of the
//   medians: each engine's records/s divided by boost_spsc's (1P1C) and
//   moodycamel's (both configurations) for the same configuration and size,
//   with pad_frac, the cv, and the cross-CPU cache-line round trip measured
//   before and after the run (on a VM it drifts; compare only numbers from
//   the same run). The exit status is 1 if any check failed.
//
// How to run
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAIO2_BUILD_BENCH=ON
//   make -C build-bench ring_bench -j2
//   ./build-bench/bin/ring_bench                                # all, < 1 min
//   ./build-bench/bin/ring_bench --benchmark_filter='1P1C/64/'  # a subset
//   ./build-bench/bin/ring_bench --benchmark_format=json        # table -> stderr
//   ./build-bench/bin/ring_bench --benchmark_out=r.json --benchmark_out_format=json

#include <cstdint>

#ifdef AIO2_RING_BENCH_STATS
// ring_bench_stats: the same program, counting the ring's slow steps
// (AIO2_RING_STAT in aio2/ring.h) per thread; the counts are added up when
// each thread ends and reported per record. Thread-local, so counting adds
// no shared cache line; use this build for the counts, ring_bench for time.
namespace ring_stats {
constexpr int kEvents = 8;
inline thread_local uint64_t local[kEvents];
}  // namespace ring_stats
#define AIO2_RING_STAT(event, n) (ring_stats::local[(event)] += (uint64_t)(n))
#endif

#include "aio2/ring.h"

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// Third-party headers: their warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <boost/lockfree/spsc_queue.hpp>
#include <concurrentqueue/concurrentqueue.h>
#pragma GCC diagnostic pop

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Parameters

constexpr uint64_t kMiB = 1024 * 1024;
// Reapers that copy (aio2 reap, moodycamel bulk) take at most this many bytes
// of records per call: 170 x 24-byte, 64 x 64-byte or 1 x 4 KiB record.
constexpr size_t kBatchBytes = 4096;
// An iteration that takes longer than this is aborted and reported as an
// error (a lost record would otherwise hang the run).
constexpr double kIterationTimeoutSeconds = 20.0;

constexpr uint64_t ring_data_bytes(size_t rec_size) { return rec_size >= 4096 ? 4 * kMiB : kMiB; }
constexpr uint64_t total_records(size_t rec_size) { return rec_size >= 4096 ? 200000 : 2000000; }

// ---------------------------------------------------------------------------
// Backoff, identical for every engine: spin a little, then give the core away.

inline void cpu_pause()
{
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

class Backoff {
 public:
  void wait()
  {
    if (spins_ < kSpinLimit) {
      ++spins_;
      cpu_pause();
    } else {
      spins_ = 0;
      sched_yield();
    }
  }
  void reset() { spins_ = 0; }

 private:
  static constexpr unsigned kSpinLimit = 64;
  unsigned spins_ = 0;
};

// ---------------------------------------------------------------------------
// Records

// The peers' record: the same bytes as an aio2 record of S bytes. w[0] plays
// aio2's header (len | flags << 32), w[1] the first payload word.
template <size_t S>
struct Rec {
  static_assert(S % 8 == 0 && S >= 16, "record size");
  uint64_t w[S / 8];
};
static_assert(sizeof(Rec<24>) == 24 && sizeof(Rec<64>) == 64 && sizeof(Rec<4096>) == 4096);

// What a reaper does with each record's sequence number.
struct Sink {
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t last = 0;
  bool ordered = false;  // one producer and one reaper: seq must be last + 1
  bool order_ok = true;

  void take(uint64_t seq)
  {
    ++count;
    sum += seq;
    if (ordered) {
      order_ok &= seq == last + 1;
      last = seq;
    }
  }
};

// The ring's slow-step counts of the threads of the current iteration
// (ring_bench_stats only; zero otherwise).
struct RingStats {
  std::atomic<uint64_t> n[8] = {};
  void flush()
  {
#ifdef AIO2_RING_BENCH_STATS
    for (int i = 0; i < ring_stats::kEvents; i++) {
      n[i].fetch_add(ring_stats::local[i], std::memory_order_relaxed);
      ring_stats::local[i] = 0;
    }
#endif
  }
};

RingStats &ring_stats_total()
{
  static RingStats s;
  return s;
}

// Zero-filled, so that the pages are faulted in before the timed run.
void *prefaulted_alloc(size_t bytes)
{
  void *p = ::operator new(bytes, std::align_val_t{128});
  std::memset(p, 0, bytes);
  return p;
}

void prefaulted_free(void *p) { ::operator delete(p, std::align_val_t{128}); }

template <class T>
struct PrefaultAllocator {
  using value_type = T;
  PrefaultAllocator() = default;
  template <class U>
  explicit PrefaultAllocator(const PrefaultAllocator<U> &) {}
  T *allocate(size_t n) { return static_cast<T *>(prefaulted_alloc(n * sizeof(T))); }
  void deallocate(T *p, size_t) { prefaulted_free(p); }
  template <class U>
  bool operator==(const PrefaultAllocator<U> &) const { return true; }
  template <class U>
  bool operator!=(const PrefaultAllocator<U> &) const { return false; }
};

// ---------------------------------------------------------------------------
// Engines. Each has a constructor (data_bytes, capacity_records), error(),
// bytes_advanced() (aio2 only), and nested Producer / Reaper classes built in
// their own threads:
//   int     Producer::try_push(seq)  1 pushed, 0 full, < 0 -errno
//   int64_t Reaper::try_reap(sink)   records taken (> 0), 0 empty, < 0 -errno

enum class Aio2Reap { kZeroCopy, kCopy };

template <size_t S, uint32_t Flags, Aio2Reap Mode, size_t PushBatch = 1>
class Aio2Engine {
 public:
  static constexpr bool kIsAio2 = true;
  static constexpr size_t kPushBatch = PushBatch;

  Aio2Engine(uint64_t data_bytes, size_t /*capacity_records*/)
  {
    err_ = aio2_ring_new(data_bytes, Flags, 0, &r_);
    if (err_ == 0) {
      // Pre-fault the data area (fresh anonymous memory) before the run.
      std::memset(reinterpret_cast<unsigned char *>(r_) + AIO2_RING_HDR_BYTES, 0, data_bytes);
      tail_start_ = tail();
    }
  }
  ~Aio2Engine()
  {
    if (err_ == 0) aio2_ring_unmap(r_);
  }
  Aio2Engine(const Aio2Engine &) = delete;
  Aio2Engine &operator=(const Aio2Engine &) = delete;

  int error() const { return err_; }
  // Bytes the tail moved over: records plus PAD records.
  uint64_t bytes_advanced() const { return tail() - tail_start_; }

  class Producer {
   public:
    explicit Producer(Aio2Engine &e) : r_(e.r_)
    {
      // Each batched record's header, written once; the payload words but
      // the sequence stay 0.
      if constexpr (PushBatch > 1)
        for (size_t i = 0; i < PushBatch; i++)
          batch_[i * (S / 8)] = aio2__rec_word(static_cast<uint32_t>(S), 0);
    }
    int try_push(uint64_t seq)
    {
      payload_[0] = seq;
      const int err = aio2_ring_push(r_, 0, payload_, static_cast<uint32_t>(S));
      return err == 0 ? 1 : err == -EAGAIN ? 0 : err;
    }
    // n records (n <= PushBatch) in one reservation, committed at once
    // (aio2_ring_commit_split): the second and later records' headers are
    // written into the reservation with their payloads.
    int try_push_n(uint64_t seq, size_t n)
    {
      // Only the sequence words change, as in moodycamel_b16's batch.
      for (size_t i = 0; i < n; i++) batch_[i * (S / 8) + 1] = seq + i;
      aio2_ring_rec *rec = nullptr;
      const int err = aio2_ring_reserve(r_, static_cast<uint32_t>(n * S), &rec);
      if (err != 0) return err == -EAGAIN ? 0 : err;
      aio2_ring_write(r_, rec, 0, batch_ + 1, n * S - AIO2_RING_REC_HDR);
      aio2_ring_commit_split(r_, rec, static_cast<uint32_t>(S), 0);
      return 1;
    }

   private:
    aio2_ring *r_;
    uint64_t payload_[(S - AIO2_RING_REC_HDR) / 8] = {};
    uint64_t batch_[PushBatch > 1 ? PushBatch * S / 8 : 1] = {};
  };

  class Reaper {
   public:
    explicit Reaper(Aio2Engine &e) : r_(e.r_) {}
    int64_t try_reap(Sink &sink)
    {
      if constexpr (Mode == Aio2Reap::kZeroCopy) {
        aio2_ring_rec *rec = nullptr;
        const int got = aio2_ring_peek(r_, &rec);
        if (got <= 0) return got;
        uint64_t seq;
        std::memcpy(&seq, reinterpret_cast<const unsigned char *>(rec) + AIO2_RING_REC_HDR, 8);
        benchmark::DoNotOptimize(seq);
        if (rec->len != S) return -EBADMSG;
        sink.take(seq);
        aio2_ring_consume(r_, rec);
        return 1;
      } else {
        // Batch cap: kBatchBytes (4 KiB), at least one record of any size
        // benchmarked here; max_recs 0 = as many as fit.
        const int64_t bytes = aio2_ring_reap(r_, buf_, sizeof buf_, 0);
        if (bytes <= 0) return bytes;
        benchmark::DoNotOptimize(buf_);  // as for the peers (no-op here: atomic loads)
        int64_t n = 0;
        for (int64_t off = 0; off < bytes;) {
          aio2_ring_rec hdr;
          uint64_t seq;
          std::memcpy(&hdr, buf_ + off, sizeof hdr);
          std::memcpy(&seq, buf_ + off + AIO2_RING_REC_HDR, 8);
          benchmark::DoNotOptimize(seq);
          if (hdr.len != S) return -EBADMSG;
          sink.take(seq);
          off += hdr.len;
          ++n;
        }
        return n;
      }
    }

   private:
    aio2_ring *r_;
    alignas(64) unsigned char buf_[Mode == Aio2Reap::kCopy ? kBatchBytes : 8];
  };

 private:
  uint64_t tail() const { return __atomic_load_n(&r_->tail, __ATOMIC_ACQUIRE) & ~uint64_t{7}; }

  aio2_ring *r_ = nullptr;
  int err_ = 0;
  uint64_t tail_start_ = 0;
};

template <size_t S>
Rec<S> peer_template()
{
  Rec<S> r{};
  r.w[0] = static_cast<uint64_t>(S);  // "len = S, flags = 0", as aio2's header
  return r;
}

template <size_t S>
class BoostSpscEngine {
  using Queue = boost::lockfree::spsc_queue<
      Rec<S>, boost::lockfree::allocator<PrefaultAllocator<Rec<S>>>>;

 public:
  static constexpr bool kIsAio2 = false;
  static constexpr size_t kPushBatch = 1;
  static constexpr size_t kBatch = kBatchBytes / S;  // 170, 64, 1 records
  static_assert(kBatch >= 1);

  BoostSpscEngine(uint64_t /*data_bytes*/, size_t capacity_records) : q_(capacity_records) {}
  int error() const { return 0; }
  uint64_t bytes_advanced() const { return 0; }

  class Producer {
   public:
    explicit Producer(BoostSpscEngine &e) : q_(e.q_), rec_(peer_template<S>()) {}
    int try_push(uint64_t seq)
    {
      rec_.w[1] = seq;
      return q_.push(rec_) ? 1 : 0;
    }

   private:
    Queue &q_;
    Rec<S> rec_;
  };

  // Pops up to kBatch elements in one call (spsc_queue::pop(T *, size)), the
  // same batch as moodycamel's try_dequeue_bulk and aio2's 4 KiB reap.
  class Reaper {
   public:
    explicit Reaper(BoostSpscEngine &e) : q_(e.q_) {}
    int64_t try_reap(Sink &sink)
    {
      const size_t n = q_.pop(buf_, kBatch);  // copies the elements out
      if (n == 0) return 0;
      // The whole copy is observable, so the compiler cannot trim it to the
      // two words read below.
      benchmark::DoNotOptimize(buf_);
      for (size_t i = 0; i < n; i++) {
        uint64_t seq = buf_[i].w[1];
        benchmark::DoNotOptimize(seq);
        if (buf_[i].w[0] != S) return -EBADMSG;
        sink.take(seq);
      }
      return static_cast<int64_t>(n);
    }

   private:
    Queue &q_;
    Rec<S> buf_[kBatch];
  };

 private:
  Queue q_;
};

// moodycamel traits: storage pre-faulted like the others, and an explicit
// producer's block index large enough to hold every pre-allocated block
// (the default, 32 entries, caps a producer at 32 x 32 = 1024 elements when
// try_enqueue may not allocate, which would shrink the queue below the
// capacity the other engines get).
struct MoodyTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const size_t EXPLICIT_INITIAL_INDEX_SIZE = 2048;
  static inline void *malloc(size_t size)
  {
    void *p = std::malloc(size);
    if (p != nullptr) std::memset(p, 0, size);
    return p;
  }
  static inline void free(void *p) { std::free(p); }
};

template <size_t S, size_t PushBatch = 1>
class MoodyEngine {
  using Queue = moodycamel::ConcurrentQueue<Rec<S>, MoodyTraits>;

 public:
  static constexpr bool kIsAio2 = false;
  static constexpr size_t kPushBatch = PushBatch;
  static constexpr size_t kBatch = kBatchBytes / S;  // 170, 64, 1 records
  static_assert(kBatch >= 1);

  // The capacity constructor: ceil(capacity / 32) blocks of 32 elements,
  // shared by all producers.
  MoodyEngine(uint64_t /*data_bytes*/, size_t capacity_records) : q_(capacity_records) {}
  int error() const { return 0; }
  uint64_t bytes_advanced() const { return 0; }

  // try_enqueue (never allocates; spins with the common backoff when full),
  // so the queue stays bounded like the rings.
  class Producer {
   public:
    explicit Producer(MoodyEngine &e) : q_(e.q_), tok_(e.q_), rec_(peer_template<S>())
    {
      for (Rec<S> &r : batch_) r = rec_;
    }
    int try_push(uint64_t seq)
    {
      rec_.w[1] = seq;
      return q_.try_enqueue(tok_, rec_) ? 1 : 0;
    }
    // n records (n <= PushBatch) with try_enqueue_bulk: all or none.
    // GCC 12 reports a store of size 0 inside moodycamel's enqueue_bulk
    // once inlined here (-Wstringop-overflow, a false positive of its
    // range analysis on the block index).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    int try_push_n(uint64_t seq, size_t n)
    {
      // Only the sequence words change, as in aio2_mpmc_b16's batch.
      for (size_t i = 0; i < n; i++) batch_[i].w[1] = seq + i;
      return q_.try_enqueue_bulk(tok_, batch_, n) ? 1 : 0;
    }
#pragma GCC diagnostic pop

   private:
    Queue &q_;
    moodycamel::ProducerToken tok_;
    Rec<S> rec_;
    Rec<S> batch_[PushBatch];
  };

  class Reaper {
   public:
    explicit Reaper(MoodyEngine &e) : q_(e.q_), tok_(e.q_) {}
    int64_t try_reap(Sink &sink)
    {
      const size_t n = q_.try_dequeue_bulk(tok_, buf_, kBatch);
      if (n == 0) return 0;
      benchmark::DoNotOptimize(buf_);  // keep the whole copy, as for boost_spsc
      for (size_t i = 0; i < n; i++) {
        uint64_t seq = buf_[i].w[1];
        benchmark::DoNotOptimize(seq);
        if (buf_[i].w[0] != S) return -EBADMSG;
        sink.take(seq);
      }
      return static_cast<int64_t>(n);
    }

   private:
    Queue &q_;
    moodycamel::ConsumerToken tok_;
    Rec<S> buf_[kBatch];
  };

 private:
  Queue q_;
};

// ---------------------------------------------------------------------------
// One timed transfer of `total` records.

struct alignas(128) Control {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> abort{false};
  std::atomic<int> producers_done{0};
  std::atomic<int> reapers_done{0};
  std::atomic<int> first_err{0};

  void fail(int err)
  {
    int zero = 0;
    first_err.compare_exchange_strong(zero, err);
    abort.store(true, std::memory_order_relaxed);
  }
  void wait_go() const
  {
    Backoff b;
    while (!go.load(std::memory_order_acquire)) b.wait();
  }
};

struct alignas(128) ReaperOut {
  Sink sink;
  uint64_t reaps = 0;  // calls that returned records
  Clock::time_point end{};
};

struct IterResult {
  double seconds = 0;
  uint64_t count = 0;
  uint64_t sum = 0;
  uint64_t reaps = 0;
  bool order_ok = true;
  std::string error;
};

// Calls try_push() (1 pushed, 0 full, < 0 -errno) until it pushes, with the
// common backoff while the queue is full; false on an error or an abort.
template <class TryPush>
bool push_until_done(TryPush try_push, Control &ctl)
{
  Backoff b;
  for (;;) {
    const int rc = try_push();
    if (rc > 0) return true;
    if (rc < 0) {
      ctl.fail(rc);
      return false;
    }
    if (ctl.abort.load(std::memory_order_relaxed)) return false;
    b.wait();
  }
}

template <class E>
void producer_main(E &e, Control &ctl, uint64_t first_seq, uint64_t count)
{
  typename E::Producer prod(e);
  uint64_t seq = first_seq;
  const uint64_t end = first_seq + count;
  constexpr size_t kB = E::kPushBatch;
  // The next push: one record, or a batch of up to kB.
  const auto push = [&]() {
    if constexpr (kB == 1) {
      const uint64_t s = seq++;
      return push_until_done([&] { return prod.try_push(s); }, ctl);
    } else {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kB, end - seq));
      const uint64_t s = seq;
      seq += n;
      return push_until_done([&] { return prod.try_push_n(s, n); }, ctl);
    }
  };
  // First push before the barrier (see the header comment).
  bool ok = count == 0 || push();
  ctl.ready.fetch_add(1, std::memory_order_acq_rel);
  ctl.wait_go();
  while (ok && seq < end) ok = push();
  ring_stats_total().flush();
  ctl.producers_done.fetch_add(1, std::memory_order_acq_rel);
}

template <class E>
void reaper_main(E &e, Control &ctl, int producers, bool ordered, ReaperOut &out)
{
  typename E::Reaper reaper(e);
  Sink sink;
  sink.ordered = ordered;
  ctl.ready.fetch_add(1, std::memory_order_acq_rel);
  ctl.wait_go();
  Backoff b;
  uint64_t reaps = 0;
  for (;;) {
    int64_t n = reaper.try_reap(sink);
    if (n == 0 && ctl.producers_done.load(std::memory_order_acquire) == producers) {
      // Every push happened before this point: one more look decides.
      n = reaper.try_reap(sink);
      if (n == 0) break;
    }
    if (n > 0) {
      ++reaps;
      b.reset();
      continue;
    }
    if (n < 0) {
      ctl.fail(static_cast<int>(n));
      break;
    }
    if (ctl.abort.load(std::memory_order_relaxed)) break;
    b.wait();
  }
  out.end = Clock::now();
  benchmark::DoNotOptimize(sink.sum);
  out.sink = sink;
  out.reaps = reaps;
  ring_stats_total().flush();
  ctl.reapers_done.fetch_add(1, std::memory_order_acq_rel);
}

// The CPUs this process may run on.
const std::vector<int> &allowed_cpus()
{
  static const std::vector<int> cpus = [] {
    std::vector<int> v;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) v.push_back(c);
    return v;
  }();
  return cpus;
}

// Thread slot k runs on allowed CPU k mod n: producer i is slot 2i, reaper i
// slot 2i + 1, so with 2 CPUs each CPU has one producer and one reaper, and
// 1P1C always runs on two different CPUs (no migrations mid-transfer).
void pin(std::thread &t, int slot)
{
  const std::vector<int> &cpus = allowed_cpus();
  if (cpus.size() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[static_cast<size_t>(slot) % cpus.size()], &set);
  pthread_setaffinity_np(t.native_handle(), sizeof set, &set);  // best effort
}

template <class E>
IterResult run_iteration(E &e, int producers, int reapers, uint64_t total)
{
  Control ctl;
  std::vector<ReaperOut> outs(static_cast<size_t>(reapers));
  std::vector<std::thread> threads;
  const uint64_t per = total / static_cast<uint64_t>(producers);
  const bool ordered = producers == 1 && reapers == 1;

  for (int c = 0; c < reapers; c++) {
    threads.emplace_back(reaper_main<E>, std::ref(e), std::ref(ctl), producers, ordered,
                         std::ref(outs[static_cast<size_t>(c)]));
    pin(threads.back(), 2 * c + 1);
  }
  for (int p = 0; p < producers; p++) {
    threads.emplace_back(producer_main<E>, std::ref(e), std::ref(ctl),
                         1 + static_cast<uint64_t>(p) * per, per);
    pin(threads.back(), 2 * p);
  }

  const int nthreads = producers + reapers;
  while (ctl.ready.load(std::memory_order_acquire) < nthreads) sched_yield();
  const Clock::time_point t0 = Clock::now();
  ctl.go.store(true, std::memory_order_release);

  IterResult res;
  const auto deadline = t0 + std::chrono::duration<double>(kIterationTimeoutSeconds);
  while (ctl.reapers_done.load(std::memory_order_acquire) < reapers) {
    if (Clock::now() > deadline) {
      ctl.abort.store(true, std::memory_order_relaxed);
      res.error = "timeout: the reapers did not finish";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto &t : threads) t.join();

  Clock::time_point end = t0;
  for (const ReaperOut &o : outs) {
    end = std::max(end, o.end);
    res.count += o.sink.count;
    res.sum += o.sink.sum;
    res.reaps += o.reaps;
    res.order_ok = res.order_ok && o.sink.order_ok;
  }
  res.seconds = std::chrono::duration<double>(end - t0).count();
  if (const int err = ctl.first_err.load(); err != 0 && res.error.empty())
    res.error = std::string("queue error: ") + aio2_ring_strerror(err);
  return res;
}

// Failed checks, by benchmark name, kept here as well as reported with
// SkipWithError: with aggregate-only reporting a failed repetition must still
// show up in the table and in the exit status.
std::map<std::string, std::string> &failures()
{
  static std::map<std::string, std::string> m;
  return m;
}

void fail_run(benchmark::State &state, const std::string &name, const std::string &msg)
{
  failures().emplace(name, msg);  // keeps the first message
  state.SkipWithError(msg.c_str());
}

template <class E, size_t S>
void bench_engine(benchmark::State &state, const std::string &name, int producers, int reapers)
{
  const uint64_t data_bytes = ring_data_bytes(S);
  const size_t capacity = static_cast<size_t>(data_bytes / S);
  const uint64_t total = total_records(S);
  const uint64_t want_sum = total * (total + 1) / 2;
  uint64_t advanced = 0;
  uint64_t reaps = 0;
  for (auto &c : ring_stats_total().n) c.store(0, std::memory_order_relaxed);

  for (auto _ : state) {
    E e(data_bytes, capacity);
    if (e.error() != 0) {
      fail_run(state, name, std::string("setup: ") + aio2_ring_strerror(e.error()));
      break;
    }
    const IterResult r = run_iteration(e, producers, reapers, total);
    if (!r.error.empty()) {
      fail_run(state, name, r.error);
      break;
    }
    if (r.count != total || r.sum != want_sum || !r.order_ok) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "check failed: reaped %" PRIu64 " of %" PRIu64 " records, seq sum %" PRIu64
                    " (want %" PRIu64 "), order %s",
                    r.count, total, r.sum, want_sum, r.order_ok ? "ok" : "BROKEN");
      fail_run(state, name, msg);
      break;
    }
    state.SetIterationTime(r.seconds);
    reaps += r.reaps;
    if constexpr (E::kIsAio2) advanced += e.bytes_advanced();
  }
  if (state.error_occurred()) return;
  const auto iters = static_cast<int64_t>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(total) * iters);
  state.SetBytesProcessed(static_cast<int64_t>(total * S) * iters);
  // Records per successful reap call: 1 for single-record reapers; for the
  // batching ones, how full the queue tends to be when the reaper looks.
  state.counters["recs_per_reap"] =
      reaps > 0 ? static_cast<double>(total) * static_cast<double>(iters) / static_cast<double>(reaps)
                : 0.0;
  if constexpr (E::kIsAio2) {
    const double rec_bytes = static_cast<double>(total * S) * static_cast<double>(iters);
    const double adv = static_cast<double>(advanced);
    state.counters["pad_frac"] = adv > 0 ? (adv - rec_bytes) / adv : 0.0;
#ifdef AIO2_RING_BENCH_STATS
    // Per record: failed CAS on the tail lock, yields while waiting for it,
    // loads of head, reaps that lost the CAS on head, records copied by
    // those and thrown away, reaps stopped at a BUSY record, PAD records,
    // reserves that found the ring full.
    const double recs = static_cast<double>(total) * static_cast<double>(iters);
    static const char *const kNames[] = {"lock_spin", "lock_yield", "head_load", "reap_lost",
                                         "reap_wasted", "reap_busy", "pads", "full"};
    for (int i = 0; i < ring_stats::kEvents; i++)
      state.counters[kNames[i]] =
          static_cast<double>(ring_stats_total().n[i].load(std::memory_order_relaxed)) / recs;
#endif
  }
}

// Cache-line ping-pong between the two CPUs the threads are pinned to: the
// cost every cross-core queue pays per hand-off. Printed with the results,
// because on a VM it changes from minute to minute. Returns ns per round
// trip, or -1 with fewer than 2 CPUs.
double cross_cpu_round_trip_ns()
{
  if (allowed_cpus().size() < 2) return -1;
  constexpr long kTrips = 100000;
  struct alignas(128) Line {
    std::atomic<long> v{0};
  };
  Line ping, pong;
  std::atomic<bool> start{false};
  double ns = -1;
  std::thread echo([&] {
    for (long i = 1; i <= kTrips; i++) {
      while (ping.v.load(std::memory_order_acquire) != i) cpu_pause();
      pong.v.store(i, std::memory_order_release);
    }
  });
  std::thread caller([&] {
    while (!start.load(std::memory_order_acquire)) sched_yield();
    const Clock::time_point t0 = Clock::now();
    for (long i = 1; i <= kTrips; i++) {
      ping.v.store(i, std::memory_order_release);
      while (pong.v.load(std::memory_order_acquire) != i) cpu_pause();
    }
    ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kTrips;
  });
  pin(caller, 0);
  pin(echo, 1);
  start.store(true, std::memory_order_release);
  caller.join();
  echo.join();
  return ns;
}

std::string format_ns(double ns)
{
  if (ns < 0) return "n/a (fewer than 2 CPUs)";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f ns", ns);
  return b;
}

// ---------------------------------------------------------------------------
// Registration

struct Entry {
  std::string config;
  size_t size;
  std::string engine;
  std::string name() const { return config + "/" + std::to_string(size) + "/" + engine; }
};

std::vector<Entry> &entries()
{
  static std::vector<Entry> v;
  return v;
}

// Each benchmark: kRepetitions repetitions of kIterations transfers; the
// report shows mean / median / stddev / cv over the repetitions, and the
// ratio table uses the medians (this machine is a 2-vCPU VM: run-to-run noise
// is large, see the cv column and the cross-CPU round trip).
constexpr int kIterations = 1;
constexpr int kRepetitions = 9;
bool g_user_repetitions = false;  // --benchmark_repetitions given: use it

template <class E, size_t S>
void add(const char *config, int producers, int reapers, const char *engine)
{
  Entry en{config, S, engine};
  entries().push_back(en);
  const std::string name = en.name();
  benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
      name.c_str(), [name, producers, reapers](benchmark::State &st) {
        bench_engine<E, S>(st, name, producers, reapers);
      });
  b->UseManualTime()->Iterations(kIterations)->DisplayAggregatesOnly(true)->Unit(
      benchmark::kMillisecond);
  if (!g_user_repetitions) b->Repetitions(kRepetitions);
}

constexpr uint32_t kSpsc = AIO2_RING_F_SINGLE_PRODUCER | AIO2_RING_F_SINGLE_REAPER;
// Records per push of the batched producers (the _b16 engines).
constexpr size_t kPushBatch = 16;

template <size_t S>
void register_1p1c()
{
  add<Aio2Engine<S, kSpsc, Aio2Reap::kZeroCopy>, S>("1P1C", 1, 1, "aio2_spsc_zero_copy");
  add<Aio2Engine<S, kSpsc, Aio2Reap::kCopy>, S>("1P1C", 1, 1, "aio2_spsc_copy");
  add<Aio2Engine<S, 0, Aio2Reap::kCopy>, S>("1P1C", 1, 1, "aio2_mpmc");
  add<Aio2Engine<S, AIO2_RING_F_SINGLE_PRODUCER, Aio2Reap::kCopy>, S>("1P1C", 1, 1, "aio2_sp_copy");
  add<BoostSpscEngine<S>, S>("1P1C", 1, 1, "boost_spsc");
  add<MoodyEngine<S>, S>("1P1C", 1, 1, "moodycamel");
}

template <size_t S>
void register_2p2c()
{
  add<Aio2Engine<S, 0, Aio2Reap::kCopy>, S>("2P2C", 2, 2, "aio2_mpmc");
  add<MoodyEngine<S>, S>("2P2C", 2, 2, "moodycamel");
  // Producers with batches: 16 records per push, each peer's bulk call.
  add<Aio2Engine<S, 0, Aio2Reap::kCopy, kPushBatch>, S>("2P2C", 2, 2, "aio2_mpmc_b16");
  add<MoodyEngine<S, kPushBatch>, S>("2P2C", 2, 2, "moodycamel_b16");
}

void register_all()
{
  register_1p1c<24>();
  register_1p1c<64>();
  register_1p1c<4096>();
  register_2p2c<24>();
  register_2p2c<64>();
  register_2p2c<4096>();
}

// ---------------------------------------------------------------------------
// Capturing the results, and the ratio table

struct Captured {
  double items_per_s = 0;
  double bytes_per_s = 0;
  double pad_frac = -1;  // < 0: not an aio2 run
  double items_cv = -1;  // < 0: unknown (a single repetition)
  bool from_median = false;
  std::string error;
};

std::map<std::string, Captured> &captured()
{
  static std::map<std::string, Captured> m;
  return m;
}

void capture(const std::vector<benchmark::BenchmarkReporter::Run> &runs)
{
  using Run = benchmark::BenchmarkReporter::Run;
  for (const Run &run : runs) {
    Captured &c = captured()[run.run_name.function_name];
    if (run.error_occurred) {
      if (c.error.empty()) c.error = run.error_message;
      continue;
    }
    const auto get = [&run](const char *key, double dflt) {
      const auto it = run.counters.find(key);
      return it == run.counters.end() ? dflt : static_cast<double>(it->second);
    };
    const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    const bool single = run.run_type == Run::RT_Iteration && !c.from_median;
    if (median || single) {
      c.items_per_s = get("items_per_second", 0);
      c.bytes_per_s = get("bytes_per_second", 0);
      c.pad_frac = get("pad_frac", -1);
      c.from_median = median;
    } else if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "cv") {
      c.items_cv = get("items_per_second", -1);
    }
  }
}

// The default console report, plus capture.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  using benchmark::ConsoleReporter::ConsoleReporter;
  void ReportRuns(const std::vector<Run> &reports) override
  {
    capture(reports);
    benchmark::ConsoleReporter::ReportRuns(reports);
  }
};

// For --benchmark_format=json|csv: the library's reporter for that format,
// plus capture.
class CaptureTee : public benchmark::BenchmarkReporter {
 public:
  explicit CaptureTee(benchmark::BenchmarkReporter *inner) : inner_(inner) {}
  bool ReportContext(const Context &context) override { return inner_->ReportContext(context); }
  void ReportRuns(const std::vector<Run> &reports) override
  {
    capture(reports);
    inner_->ReportRuns(reports);
  }
  void Finalize() override { inner_->Finalize(); }

 private:
  benchmark::BenchmarkReporter *inner_;
};

// Prints the table; returns the number of benchmarks that failed a check.
int print_ratio_table(FILE *out, double rtt_start_ns, double rtt_end_ns)
{
  std::fprintf(out,
               "\nratio table (records/s, higher is better; median over the repetitions, "
               "default %d x %d transfer; GB = 1e9 bytes)\n",
               kRepetitions, kIterations);
  std::fprintf(out, "cross-CPU cache-line round trip: %s before the benchmarks, %s after\n",
               format_ns(rtt_start_ns).c_str(), format_ns(rtt_end_ns).c_str());
  std::fprintf(out, "%-6s %-5s %-20s %9s %8s %14s %14s %10s %7s\n", "config", "size", "engine",
               "Mrec/s", "GB/s", "vs boost_spsc", "vs moodycamel", "pad_frac", "cv");
  const auto &m = captured();
  int failed = 0;
  for (const Entry &en : entries()) {
    const auto it = m.find(en.name());
    const auto f = failures().find(en.name());
    if (f != failures().end() || (it != m.end() && !it->second.error.empty())) {
      const std::string &msg = f != failures().end() ? f->second : it->second.error;
      std::fprintf(out, "%-6s %-5zu %-20s ERROR: %s\n", en.config.c_str(), en.size,
                   en.engine.c_str(), msg.c_str());
      ++failed;
      continue;
    }
    if (it == m.end()) continue;  // filtered out
    const Captured &c = it->second;
    // A batched engine (_b16) is compared with the peer's batched row.
    const bool batched = en.engine.size() > 4 && en.engine.compare(en.engine.size() - 4, 4, "_b16") == 0;
    const auto ratio = [&](const char *peer) -> std::string {
      const std::string peer_name =
          Entry{en.config, en.size, std::string(peer) + (batched ? "_b16" : "")}.name();
      const auto p = m.find(peer_name);
      if (p == m.end() || !p->second.error.empty() || failures().count(peer_name) != 0 ||
          p->second.items_per_s <= 0)
        return "-";
      char b[32];
      std::snprintf(b, sizeof b, "%.2fx", c.items_per_s / p->second.items_per_s);
      return b;
    };
    char pad[32] = "-";
    if (c.pad_frac >= 0) std::snprintf(pad, sizeof pad, "%.2e", c.pad_frac);
    char cv[32] = "-";
    if (c.items_cv >= 0) std::snprintf(cv, sizeof cv, "%.0f%%", 100.0 * c.items_cv);
    std::fprintf(out, "%-6s %-5zu %-20s %9.2f %8.2f %14s %14s %10s %7s\n", en.config.c_str(),
                 en.size, en.engine.c_str(), c.items_per_s / 1e6, c.bytes_per_s / 1e9,
                 ratio("boost_spsc").c_str(), ratio("moodycamel").c_str(), pad, cv);
  }
  std::fprintf(out,
               "pad_frac: share of the bytes the aio2 tail advanced over that were PAD records.\n"
               "cv: coefficient of variation of records/s over the repetitions.\n");
  if (failed == 0)
    std::fprintf(out, "checks: every transfer reaped exactly the records produced "
                      "(count, sequence sum, and order for 1P1C)\n");
  else
    std::fprintf(out, "checks: %d benchmark(s) FAILED (see ERROR rows)\n", failed);
  std::fflush(out);
  return failed;
}

// The flags we must know before benchmark::Initialize() consumes them.
struct DisplayFlags {
  std::string format = "console";
  std::string color = "auto";
  bool tabular = false;
  bool repetitions = false;
};

bool truthy(std::string_view v) { return v == "true" || v == "yes" || v == "on" || v == "1"; }

DisplayFlags scan_flags(int argc, char **argv)
{
  DisplayFlags f;
  for (int i = 1; i < argc; i++) {
    const std::string_view a = argv[i];
    const auto value = [&a](std::string_view flag, std::string &outv) {
      if (a.substr(0, flag.size()) != flag) return false;
      outv = std::string(a.substr(flag.size()));
      return true;
    };
    std::string v;
    if (value("--benchmark_format=", v)) f.format = v;
    else if (value("--benchmark_color=", v)) f.color = v;
    else if (value("--benchmark_counters_tabular=", v)) f.tabular = truthy(v);
    else if (value("--benchmark_repetitions=", v)) f.repetitions = true;
  }
  return f;
}

}  // namespace

int main(int argc, char **argv)
{
  const DisplayFlags flags = scan_flags(argc, argv);
  // Default: run the repetitions of all benchmarks in random interleaved
  // order, so that slow drifts of the machine (a VM here) hit every engine
  // alike. --benchmark_enable_random_interleaving=false turns it off.
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  std::vector<char *> args(argv, argv + argc);
  const bool user_set = std::any_of(args.begin() + 1, args.end(), [](const char *a) {
    return std::string_view(a).substr(0, 38) == "--benchmark_enable_random_interleaving";
  });
  if (!user_set) args.insert(args.begin() + 1, interleave);
  int nargs = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&nargs, args.data());
  if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;
  g_user_repetitions = flags.repetitions;
  register_all();

  const double rtt_start = cross_cpu_round_trip_ns();
  benchmark::AddCustomContext("cross_cpu_round_trip", format_ns(rtt_start));
  int failed = 0;
  if (flags.format == "console") {
    const bool color = flags.color == "auto" ? isatty(STDOUT_FILENO) != 0 : truthy(flags.color);
    int opts = benchmark::ConsoleReporter::OO_None;
    if (color) opts |= benchmark::ConsoleReporter::OO_Color;
    if (flags.tabular) opts |= benchmark::ConsoleReporter::OO_Tabular;
    TableReporter reporter(static_cast<benchmark::ConsoleReporter::OutputOptions>(opts));
    benchmark::RunSpecifiedBenchmarks(&reporter);
    failed = print_ratio_table(stdout, rtt_start, cross_cpu_round_trip_ns());
  } else {
    // The library owns the default display reporter; it must not be deleted.
    CaptureTee tee(benchmark::CreateDefaultDisplayReporter());
    benchmark::RunSpecifiedBenchmarks(&tee);
    // Keep stdout machine-readable.
    failed = print_ratio_table(stderr, rtt_start, cross_cpu_round_trip_ns());
  }
  benchmark::Shutdown();
  return failed == 0 ? 0 : 1;
}
