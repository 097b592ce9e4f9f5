/* SPDX-License-Identifier: MIT */
/*
 * aio2/ring.h - a ring of variable-length records, for any kind of record.
 *
 * This header defines:
 *   - struct aio2_ring       the shared header that precedes the data area;
 *   - struct aio2_ring_rec   the 8-byte header of every record;
 *   - setup calls (library): aio2_ring_init, aio2_ring_attach, aio2_ring_new,
 *     aio2_ring_memfd_create, aio2_ring_map_fd, aio2_ring_unmap,
 *     aio2_ring_strerror;
 *   - the hot path (inline, no call into the library): reserve / commit /
 *     push for producers, peek / consume for a single zero-copy reaper, and
 *     reap for any number of reapers (copy, then claim by CAS).
 *
 * The ring knows nothing about AIO. aio2's completion events are one kind
 * of record (their first 8 bytes are the record header); trace records or
 * IPC messages are others.
 *
 * Geometry
 *   The data area is a power of two bytes, `data_bytes`. `head` (next byte to
 *   reap) and `tail` (end of the last reserved record) are free-running
 *   64-bit byte positions, masked with data_bytes - 1 only to index. Unsigned
 *   subtraction is modulo 2^64, so `tail - head` is the bytes in use and is
 *   always in [0, data_bytes] for a sound ring; anything else is corruption.
 *   Because positions never repeat in practice (2^64 bytes), a reaper's CAS
 *   on `head` cannot succeed against a value that wrapped round: no ABA.
 *
 * Records
 *   Every record is a multiple of 8 bytes, at least 8, starts 8-aligned, and
 *   is contiguous in memory. A record that would cross the end of the data
 *   area is preceded by a PAD record that fills the rest of the area; reapers
 *   skip PAD records. Why pad and not a double mapping of the data pages:
 *   see docs/ring.md ("Contiguity"). The largest record is data_bytes / 2,
 *   which guarantees that any legal record fits in an empty ring.
 *
 * Concurrency (who may run what at the same time)
 *
 *   operation            | concurrent with itself | with the others
 *   ---------------------+------------------------+------------------------
 *   reserve/commit/push  | yes, unless the ring   | yes
 *                        | is SINGLE_PRODUCER     |
 *   reap (copy + CAS)    | yes                    | yes, but not with
 *                        |                        | peek/consume
 *   peek/consume         | no: one reaper         | yes with producers
 *   reclaim              | as the ring's reapers: | yes with producers
 *                        | reap, or the one peeker|
 *   owner flag set/clear | yes                    | yes
 *   init                 | no                     | no: before any other
 *
 *   A ring is reaped either by one zero-copy reaper (peek/consume) or by any
 *   number of copying reapers (reap); never both at once, because consume
 *   advances `head` with a plain store.
 *
 * Memory ordering. Labels pair each release with its acquires:
 *   R1  producer: store-release `tail` after writing the reserved record's
 *       header (and a PAD header).          pairs with A1 (reapers load tail)
 *   R2  producer: store-release the record header with BUSY clear, after
 *       writing the payload.                 pairs with A2 (reapers load hdr)
 *   R5  producer: store-release tail_owner = 0 (unlock), after R1.
 *                                             pairs with A5 (the next holder's
 *       CAS): the headers and tail it wrote come before the next holder's
 *   R3  reaper: store-release / CAS-release `head` after reading the records
 *       it frees.                            pairs with A3 (producers load
 *       head before they overwrite freed space) and A4 (a copying reaper
 *       loads head, then tail: it must not see a tail older than head)
 *   In SINGLE_PRODUCER mode R1 is issued at commit and does R2's job too.
 *
 * Errors are negative errno values; aio2_ring_strerror() says what each
 * means for a ring:
 *   -EINVAL           bad argument: length not a multiple of 8 or below 8,
 *                     ring-owned flag bits, bad geometry or alignment
 *   -E2BIG            record larger than aio2_ring_max_record()
 *   -EAGAIN           no room now (the ring never blocks and never drops:
 *                     its owner decides what to do)
 *   -ENOBUFS          the caller's buffer cannot hold the next record
 *   -ENOEXEC          mapped header has the wrong magic
 *   -EPROTONOSUPPORT  mapped header has a version this build does not know
 *   -EMSGSIZE         mapped header sizes are wrong (header size, data size
 *                     not a power of two, or larger than the mapping)
 *   -EUCLEAN          positions are corrupt: unaligned (tail's bit 0, the
 *                     reservation lock, aside), tail - head outside
 *                     [0, data_bytes], the producers' cached head past
 *                     head, or the single reaper's cached tail past tail
 *   -EBADMSG          a record header met while reaping is corrupt (length
 *                     not a multiple of 8, below 8, past tail or past the
 *                     end of the data area). Nothing is consumed.
 */
#ifndef AIO2_RING_H
#define AIO2_RING_H

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#define AIO2__STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define AIO2__STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "aio2 ring: the record header word layout assumes a little-endian host"
#endif

/* "A2RG" read as a little-endian 32-bit word. */
#define AIO2_RING_MAGIC 0x47523241u
/* 2: the reservation lock is the tail_owner word and records its holder
 * (version 1 used bit 0 of tail, which version 2 producers would not
 * respect: the two never share a ring). */
#define AIO2_RING_VERSION 2u

/* Separation of the header's hot words. 128 bytes, not 64: x86's adjacent
 * line prefetcher pulls 64-byte lines in pairs, so words 64 bytes apart can
 * still false-share. */
#define AIO2_RING_LINE 128u
/* Bytes from the start of struct aio2_ring to the data area. */
#define AIO2_RING_HDR_BYTES 384u
/* Smallest and largest data area. */
#define AIO2_RING_MIN_DATA 64u
#define AIO2_RING_MAX_DATA (1ull << 40)

/* Setup flags (struct aio2_ring.setup_flags), fixed at init. */
/* Only one thread ever produces: reserve skips the tail lock. */
#define AIO2_RING_F_SINGLE_PRODUCER 0x1u
/* Only one thread ever reaps: producers may copy payloads with memcpy,
 * since no stale copying reaper can be reading the space they reuse. */
#define AIO2_RING_F_SINGLE_REAPER 0x2u
#define AIO2_RING_F_ALL 0x3u

/* Record header flags. The top two bits belong to the ring. */
#define AIO2_RING_REC_BUSY 0x80000000u /* reserved, payload not committed */
#define AIO2_RING_REC_PAD 0x40000000u  /* filler at the wrap; reapers skip */
#define AIO2_RING_REC_RING_MASK 0xc0000000u
#define AIO2_RING_REC_USER_MASK 0x3fffffffu
#define AIO2_RING_REC_HDR 8u

/* The header of every record. Read as one little-endian 64-bit word:
 * low half len, high half flags, so one atomic load or store covers both. */
struct aio2_ring_rec {
	uint32_t len;   /* bytes including this header; multiple of 8, >= 8 */
	uint32_t flags; /* BUSY and PAD belong to the ring, the rest to the user */
	/* len - 8 bytes of payload follow */
};

/* The ring header, in front of the data area (possibly in shared memory). */
struct aio2_ring {
	/* Written once by aio2_ring_init, read-only afterwards. */
	uint32_t magic;       /* AIO2_RING_MAGIC */
	uint16_t version;     /* AIO2_RING_VERSION */
	uint16_t hdr_bytes;   /* AIO2_RING_HDR_BYTES: offset of the data area */
	uint32_t setup_flags; /* AIO2_RING_F_* */
	/* Owner's flags (aio2 contexts: OVERFLOW, NEED_GETEVENTS). Atomic;
	 * written with RMW operations by the owner, read by anyone. */
	uint32_t owner_flags;
	uint64_t data_bytes;  /* power of two in [MIN_DATA, MAX_DATA] */
	uint64_t reserved0[(AIO2_RING_LINE - 24) / 8];
	/* Reapers' position: next byte to reap. Written by reapers (store or
	 * CAS, R3), read by producers (A3) to compute free space. */
	uint64_t head;
	/* The single reaper's last view of tail (SINGLE_REAPER peek only), so it
	 * reads the producers' line only when it has caught up. Written and read
	 * by that reaper alone; a stale value only hides records, never shows
	 * unpublished ones. */
	uint64_t reaper_tail;
	uint64_t reserved1[(AIO2_RING_LINE - 16) / 8];
	/* Producers' position: end of the last reserved record, a multiple of
	 * 8 (reapers ignore bits 0-2, which version 1 used as the lock).
	 * Written by the tail_owner (R1), read by reapers (A1). */
	uint64_t tail;
	/* The producers' last view of head, so they read the reapers' line only
	 * when the ring looks full. Written and read under the tail lock (or by
	 * the single producer). A stale value only understates free space. */
	uint64_t producer_head;
	/* The reservation lock: 0 when free, else the holder's producer id
	 * (aio2_ring_producer_id), so that a holder that died can be known and
	 * its lock taken over. Taken by CAS (A5), released by a store (R5). */
	uint64_t tail_owner;
	uint64_t reserved2[(AIO2_RING_LINE - 24) / 8];
	/* the data area follows */
};

AIO2__STATIC_ASSERT(sizeof(struct aio2_ring_rec) == 8, "record header is 8 bytes");
AIO2__STATIC_ASSERT(sizeof(struct aio2_ring) == AIO2_RING_HDR_BYTES, "ring header size");
AIO2__STATIC_ASSERT(offsetof(struct aio2_ring, data_bytes) == 16, "data_bytes offset");
AIO2__STATIC_ASSERT(offsetof(struct aio2_ring, head) == AIO2_RING_LINE, "head alone on its lines");
AIO2__STATIC_ASSERT(offsetof(struct aio2_ring, tail) == 2 * AIO2_RING_LINE, "tail alone on its lines");
AIO2__STATIC_ASSERT(offsetof(struct aio2_ring, tail) - offsetof(struct aio2_ring, head) >= AIO2_RING_LINE,
		    "head and tail must not share a prefetch pair");

/* ---------------------------------------------------------------------- */
/* Setup (in the library)                                                 */

/* Bytes of memory a ring with `data_bytes` of data needs (header + data). */
static inline size_t aio2_ring_mem_bytes(uint64_t data_bytes)
{
	return (size_t)(AIO2_RING_HDR_BYTES + data_bytes);
}

/* aio2_ring_init - lay a new, empty ring over `mem` (`mem_bytes` long, 64-byte
 * aligned). `data_bytes` must be a power of two in [MIN_DATA, MAX_DATA] and
 * fit: aio2_ring_mem_bytes(data_bytes) <= mem_bytes. `start_pos` (a multiple
 * of 8) is where head and tail begin; 0 is normal, tests start just below
 * 2^32 or 2^64 to prove wrap-around. Returns 0 or -EINVAL. Must not race with
 * any other use of the memory. */
int aio2_ring_init(void *mem, size_t mem_bytes, uint64_t data_bytes, uint32_t flags,
		   uint64_t start_pos);

/* aio2_ring_attach - validate a ring header this process did not create
 * (for example in a memfd mapped from another process). Returns 0, or
 * -ENOEXEC (magic), -EPROTONOSUPPORT (version), -EMSGSIZE (sizes),
 * -EINVAL (unknown setup flags or misaligned memory), -EUCLEAN (positions). */
int aio2_ring_attach(const void *mem, size_t mem_bytes);

/* aio2_ring_new - a private ring in fresh anonymous memory. Returns 0 and sets
 * *out, or -errno. Free with aio2_ring_unmap. */
int aio2_ring_new(uint64_t data_bytes, uint32_t flags, uint64_t start_pos,
		  struct aio2_ring **out);

/* aio2_ring_memfd_create - a ring in a new memfd (close-on-exec unless
 * `fd_inherit` is non-zero), mapped shared here. Another process maps
 * it with aio2_ring_map_fd. Returns 0 and sets *fd and *out, or -errno. */
int aio2_ring_memfd_create(const char *name, uint64_t data_bytes, uint32_t flags,
			   uint64_t start_pos, int fd_inherit, int *fd,
			   struct aio2_ring **out);

/* aio2_ring_map_fd - map a ring made by aio2_ring_memfd_create (in any
 * process) and validate it as aio2_ring_attach does. Returns 0 or -errno. */
int aio2_ring_map_fd(int fd, struct aio2_ring **out);

/* aio2_ring_unmap - undo aio2_ring_new / memfd_create / map_fd: unmaps the
 * length that call mapped (remembered in this process; the header's
 * data_bytes, which a peer may have rewritten, is not read). Returns 0, or
 * -EINVAL for NULL or memory those calls did not map (or already unmapped). */
int aio2_ring_unmap(struct aio2_ring *r);

/* aio2_ring_strerror - a sentence for a ring's -errno result. */
const char *aio2_ring_strerror(int err);

/* ---------------------------------------------------------------------- */
/* Inline helpers shared by the hot paths (not part of the API).          */

static inline unsigned char *aio2__ring_data(const struct aio2_ring *r)
{
	return (unsigned char *)r + AIO2_RING_HDR_BYTES;
}

static inline uint64_t *aio2__ring_word(const struct aio2_ring *r, uint64_t pos)
{
	return (uint64_t *)(void *)(aio2__ring_data(r) + (pos & (r->data_bytes - 1)));
}

static inline uint64_t aio2__rec_word(uint32_t len, uint32_t flags)
{
	return (uint64_t)len | ((uint64_t)flags << 32);
}

static inline void aio2__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A record header is sound when it is at least a header, 8-aligned, ends at
 * or before `avail` bytes past its start (the published tail), and ends at or
 * before the end of the data area (records are contiguous). */
static inline int aio2__rec_sound(uint32_t len, uint64_t off, uint64_t avail, uint64_t size)
{
	return len >= AIO2_RING_REC_HDR && (len & 7u) == 0 && len <= avail && off + len <= size;
}

/* Payload copies where a copying reaper may read bytes that a producer is
 * overwriting. Such a reaper's copy is thrown away (its CAS on head fails),
 * so the values it read never matter: this is the seqlock pattern, for which
 * C and C++ have no efficient primitive yet (WG21 P1478 proposes one). In
 * ThreadSanitizer builds the copies are word-wise relaxed atomics, so that
 * TSan checks the rest of the protocol without reporting this benign race;
 * elsewhere they are memcpy, which is 3-6x faster for large records (word
 * atomics are never vectorised). Measured in docs/ring.md. */
#if defined(__SANITIZE_THREAD__)
#define AIO2__WORD_COPIES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIO2__WORD_COPIES 1
#endif
#endif
#ifndef AIO2__WORD_COPIES
#define AIO2__WORD_COPIES 0
#endif

static inline void aio2__store_words(void *dst, const void *src, size_t bytes)
{
	uint64_t *d = (uint64_t *)dst;
	const unsigned char *s = (const unsigned char *)src;
	size_t i, n = bytes / 8;
	uint64_t v;

	if (!AIO2__WORD_COPIES) {
		memcpy(dst, src, bytes);
		return;
	}
	for (i = 0; i < n; i++) {
		memcpy(&v, s + 8 * i, 8);
		__atomic_store_n(&d[i], v, __ATOMIC_RELAXED);
	}
	if (bytes & 7) {
		/* Merge the last bytes into their word: only this producer
		 * writes it, so load-merge-store loses nothing. */
		v = __atomic_load_n(&d[n], __ATOMIC_RELAXED);
		memcpy(&v, s + 8 * n, bytes & 7);
		__atomic_store_n(&d[n], v, __ATOMIC_RELAXED);
	}
}

/* `bytes` is a multiple of 8 (records are). */
static inline void aio2__load_words(void *dst, const void *src, size_t bytes)
{
	unsigned char *d = (unsigned char *)dst;
	const uint64_t *s = (const uint64_t *)src;
	size_t i;

	if (!AIO2__WORD_COPIES) {
		/* Small payloads, the common case, in two overlapping fixed-size
		 * copies the compiler inlines: a call to memcpy and its size
		 * dispatch cost more than the copy (ring_bench's 24-byte
		 * records: 16 bytes each). Both stay within [src, src + bytes). */
		const unsigned char *sb = (const unsigned char *)src;
		if (bytes == 8) {
			memcpy(d, sb, 8);
		} else if (bytes >= 16 && bytes <= 32) {
			memcpy(d, sb, 16);
			memcpy(d + bytes - 16, sb + bytes - 16, 16);
		} else if (bytes > 32 && bytes <= 64) {
			memcpy(d, sb, 32);
			memcpy(d + bytes - 32, sb + bytes - 32, 32);
		} else {
			memcpy(dst, src, bytes);
		}
		return;
	}
	for (i = 0; i < bytes / 8; i++) {
		const uint64_t v = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
		memcpy(d + 8 * i, &v, 8);
	}
}

/* Producer identities (in the library).
 * aio2_ring_producer_id - the calling thread's id as a producer: its kernel
 * thread id (never 0, below 2^30), cached per thread and renewed in the
 * child of a fork. The tail lock's owner word holds it, and so does the
 * BUSY header of a record it reserved, until it commits.
 * aio2_ring_producer_alive - 0 when the thread `id` is gone (the kernel no
 * longer knows it, or it is a zombie), 1 when it may still run or this
 * cannot tell. Ids are those of the caller's pid namespace: every process
 * sharing a ring must see the same ids. A recycled id reads as alive, and
 * so does a thread that has just exited until the kernel releases it
 * (pthread_join may return a moment before): both only delay recovery. */
uint32_t aio2_ring_producer_id(void);
int aio2_ring_producer_alive(uint32_t id);

/* The model checker (tests/model/) stands in its own threads for these, and
 * shortens the spin; test programs stop a producer inside its critical
 * section with AIO2_RING_TEST_HOOK(point). Nothing else defines them. */
#ifndef AIO2__RING_SELF
#define AIO2__RING_SELF() aio2_ring_producer_id()
#endif
#ifndef AIO2__RING_ALIVE
#define AIO2__RING_ALIVE(id) aio2_ring_producer_alive(id)
#endif
#ifndef AIO2__RING_SPINS
#define AIO2__RING_SPINS 128u /* pauses before a yield */
#endif
#ifndef AIO2__RING_YIELDS
#define AIO2__RING_YIELDS 64u /* yields before asking whether the holder lives */
#endif
#define AIO2_RING_HOOK_LOCKED 1  /* lock taken, nothing written */
#define AIO2_RING_HOOK_HEADERS 2 /* BUSY (and PAD) headers written, tail not */
#ifndef AIO2_RING_TEST_HOOK
#define AIO2_RING_TEST_HOOK(point) ((void)0)
#endif
/* Contention counts: a benchmark that defines AIO2_RING_STAT(event, n)
 * before including this header learns how often each slow step happens
 * (bench/ring_bench.cc, the ring_bench_stats build). Nothing else does. */
#define AIO2_RING_STAT_LOCK_SPIN 0   /* a failed CAS on tail_owner */
#define AIO2_RING_STAT_LOCK_YIELD 1  /* a waiter gave its CPU away */
#define AIO2_RING_STAT_HEAD_LOAD 2   /* producer_head too old: head loaded */
#define AIO2_RING_STAT_REAP_LOST 3   /* a reap lost its CAS on head */
#define AIO2_RING_STAT_REAP_WASTED 4 /* records copied by a lost reap (n) */
#define AIO2_RING_STAT_REAP_BUSY 5   /* a reap stopped at a BUSY record */
#define AIO2_RING_STAT_PAD 6         /* a PAD record written at the wrap */
#define AIO2_RING_STAT_FULL 7        /* a reserve found no room (-EAGAIN) */
#ifndef AIO2_RING_STAT
#define AIO2_RING_STAT(event, n) ((void)0)
#endif

/* Take the reservation lock: tail_owner from 0 to `self`. The critical
 * section is two stores (a header, maybe a PAD header) and the release of
 * tail, so spinning is right; after a while we yield in case the holder was
 * preempted (two cores and many producers make that likely), and now and
 * then ask whether the holder is still alive. A holder that died (a process
 * killed inside the critical section) has written nothing below tail, and
 * tail changes in one store, so the ring is consistent whatever point it
 * reached: we take its lock over. Returns tail. */
static inline uint64_t aio2__tail_lock(struct aio2_ring *r, uint32_t self)
{
	unsigned spins = 0, yields = 0;
	for (;;) {
		uint64_t o = 0;
		/* A5: pairs with the previous holder's R5, so its header and tail
		 * stores happen before ours. */
		if (__atomic_compare_exchange_n(&r->tail_owner, &o, (uint64_t)self, 1, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			break;
		AIO2_RING_STAT(AIO2_RING_STAT_LOCK_SPIN, 1);
		if (++spins < AIO2__RING_SPINS) {
			aio2__cpu_relax();
			continue;
		}
		spins = 0;
		AIO2_RING_STAT(AIO2_RING_STAT_LOCK_YIELD, 1);
		sched_yield();
		/* The lock is not re-entrant, so an owner word equal to our own id
		 * was left by a dead thread whose id the kernel has given us. */
		if (o != 0 && ++yields % AIO2__RING_YIELDS == 0 &&
		    (o == self || !AIO2__RING_ALIVE((uint32_t)o))) {
			uint64_t dead = o;
			/* Take over; the CAS fails if another waiter did first.
			 * Learning of the death (a system call) orders the dead
			 * holder's stores before ours. */
			if (__atomic_compare_exchange_n(&r->tail_owner, &dead, (uint64_t)self, 0,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				break;
		}
	}
	/* A5 (or the death) orders the last holder's R1 before this load.
	 * Acquire: after a takeover it also pairs with the dead holder's R1. */
	return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------------- */
/* Producers                                                              */

/* aio2_ring_max_record - the largest record this ring accepts. */
static inline uint32_t aio2_ring_max_record(const struct aio2_ring *r)
{
	uint64_t m = r->data_bytes / 2;
	return m > 0xfffffff8u ? 0xfffffff8u : (uint32_t)m;
}

/* aio2_ring_reserve - reserve a record of `len` bytes (header included) and
 * return its address in *out; write the payload after the 8-byte header, then
 * call aio2_ring_commit (or aio2_ring_discard) exactly once. Reapers stop at
 * a reserved record until it is committed, so commit soon.
 * Returns 0, -EINVAL (len below 8 or not a multiple of 8), -E2BIG (len above
 * aio2_ring_max_record), -EAGAIN (no room now), -EUCLEAN (corrupt positions).
 * With copying reapers, write the payload with aio2_ring_write (a stale
 * reaper may be reading the same bytes; see aio2__store_words). */
static inline int aio2_ring_reserve(struct aio2_ring *r, uint32_t len, struct aio2_ring_rec **out)
{
	const uint64_t size = r->data_bytes;
	const int single = (r->setup_flags & AIO2_RING_F_SINGLE_PRODUCER) != 0;
	uint32_t self = 0;
	uint64_t t, h, off, pad;

	if (len < AIO2_RING_REC_HDR || (len & 7u))
		return -EINVAL;
	if (len > aio2_ring_max_record(r))
		return -E2BIG;
	/* Single producer: tail is ours, nobody else writes it, and a BUSY
	 * record is never seen (tail moves at commit), so it carries no id. */
	if (single) {
		t = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	} else {
		self = AIO2__RING_SELF();
		t = aio2__tail_lock(r, self);
		AIO2_RING_TEST_HOOK(AIO2_RING_HOOK_LOCKED);
	}
	if (t & 7u) {
		/* A sound producer never leaves tail off a multiple of 8: a record
		 * written there would be misaligned. */
		if (!single) /* R5: unlock */
			__atomic_store_n(&r->tail_owner, 0, __ATOMIC_RELEASE);
		return -EUCLEAN;
	}
	off = t & (size - 1);
	pad = off + len > size ? size - off : 0;
	/* Free space by our last view of head first: it only ever understates
	 * it, and reading head costs a cache miss whenever a reaper moved it. */
	h = r->producer_head;
	if (t - h > size || pad + len > size - (t - h)) {
		/* A3: pairs with R3; the reapers are done reading what lies below
		 * head. A later producer that uses producer_head is ordered after
		 * this load by the tail lock. */
		AIO2_RING_STAT(AIO2_RING_STAT_HEAD_LOAD, 1);
		h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		if (t - h > size || (h & 7u) || pad + len > size - (t - h)) {
			if (!single) /* R5: unlock */
				__atomic_store_n(&r->tail_owner, 0, __ATOMIC_RELEASE);
			AIO2_RING_STAT(AIO2_RING_STAT_FULL, 1);
			return t - h > size || (h & 7u) ? -EUCLEAN : -EAGAIN;
		}
		r->producer_head = h;
	}
	if (pad) {
		AIO2_RING_STAT(AIO2_RING_STAT_PAD, 1);
		__atomic_store_n(aio2__ring_word(r, t), aio2__rec_word((uint32_t)pad, AIO2_RING_REC_PAD),
				 __ATOMIC_RELAXED);
	}
	/* BUSY, with our id in the user bits until commit, so that reapers
	 * can tell whether the record's producer still lives. */
	__atomic_store_n(aio2__ring_word(r, t + pad), aio2__rec_word(len, AIO2_RING_REC_BUSY | self),
			 __ATOMIC_RELAXED);
	/* R1: publish the BUSY (and PAD) headers; then R5 releases the lock.
	 * Single producer: tail is published at commit instead. */
	if (!single) {
		AIO2_RING_TEST_HOOK(AIO2_RING_HOOK_HEADERS);
		__atomic_store_n(&r->tail, t + pad + len, __ATOMIC_RELEASE);
		__atomic_store_n(&r->tail_owner, 0, __ATOMIC_RELEASE);
	}
	*out = (struct aio2_ring_rec *)(void *)aio2__ring_word(r, t + pad);
	return 0;
}

/* aio2_ring_write - copy `bytes` into a reserved record's payload at payload
 * offset `off`; safe beside copying reapers (see aio2__store_words). */
static inline void aio2_ring_write(const struct aio2_ring *r, struct aio2_ring_rec *rec, size_t off,
				   const void *src, size_t bytes)
{
	unsigned char *dst = (unsigned char *)rec + AIO2_RING_REC_HDR + off;
	if (bytes == 0)
		return; /* src may be NULL then; memcpy must not see it */
	/* Word copies only matter in TSan builds; a single-reaper ring has no
	 * stale reaper, and an unaligned offset cannot use them. */
	if ((r->setup_flags & AIO2_RING_F_SINGLE_REAPER) || (off & 7u))
		memcpy(dst, src, bytes);
	else
		aio2__store_words(dst, src, bytes);
}

/* Shared tail of commit, commit_split and discard: the reservation's header
 * becomes a record of `first` bytes (0: all of it) with `flags`. */
static inline void aio2__ring_publish_as(struct aio2_ring *r, struct aio2_ring_rec *rec, uint32_t first,
					 uint32_t flags)
{
	uint64_t *w = (uint64_t *)(void *)rec;
	const uint32_t len = (uint32_t)__atomic_load_n(w, __ATOMIC_RELAXED);
	const uint64_t word = aio2__rec_word(first ? first : len, flags);

	if (!(r->setup_flags & AIO2_RING_F_SINGLE_PRODUCER)) {
		/* R2: the payload stores happen before the header says "done". */
		__atomic_store_n(w, word, __ATOMIC_RELEASE);
	} else {
		const uint64_t mask = r->data_bytes - 1;
		const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
		const uint64_t rec_off = (uint64_t)((unsigned char *)rec - aio2__ring_data(r));
		/* The record sits at tail, or at 0 after a PAD that fills the
		 * rest of the area: the distance is ((rec_off - tail) mod size). */
		const uint64_t gap = (rec_off - (t & mask)) & mask;
		__atomic_store_n(w, word, __ATOMIC_RELAXED);
		/* R1 (single producer): publish header, PAD and payload at once. */
		__atomic_store_n(&r->tail, t + gap + len, __ATOMIC_RELEASE);
	}
}

static inline void aio2__ring_publish(struct aio2_ring *r, struct aio2_ring_rec *rec, uint32_t flags)
{
	aio2__ring_publish_as(r, rec, 0, flags);
}

/* aio2_ring_commit - make a reserved record visible to reapers with the user
 * flags `flags` (the ring's two top bits are ignored). */
static inline void aio2_ring_commit(struct aio2_ring *r, struct aio2_ring_rec *rec, uint32_t flags)
{
	aio2__ring_publish(r, rec, flags & AIO2_RING_REC_USER_MASK);
}

/* aio2_ring_commit_split - make one reservation visible as several records
 * at once: the first, of `first_len` bytes with the user flags `flags`, and
 * the records the producer wrote, headers and payloads, into the rest of the
 * reservation (with aio2_ring_write, at payload offset first_len - 8 on).
 * Those must be whole records back to back, ending where the reservation
 * ends, with user flags only (or PAD). The producer pays one reservation
 * (one turn of the tail lock) for many records; reapers see all of them
 * once the first header is published (its release orders every store into
 * the reservation before it), and none before. `first_len` is a multiple
 * of 8, at least 8 and at most the reservation's length (which is then a
 * plain commit); the caller guarantees it, as reserve checked the whole. */
static inline void aio2_ring_commit_split(struct aio2_ring *r, struct aio2_ring_rec *rec, uint32_t first_len,
					  uint32_t flags)
{
	aio2__ring_publish_as(r, rec, first_len, flags & AIO2_RING_REC_USER_MASK);
}

/* aio2_ring_discard - give back a reserved record: it becomes a PAD that
 * reapers skip. */
static inline void aio2_ring_discard(struct aio2_ring *r, struct aio2_ring_rec *rec)
{
	aio2__ring_publish(r, rec, AIO2_RING_REC_PAD);
}

/* aio2_ring_push - reserve, copy `len - 8` payload bytes, commit. Returns 0 or
 * the errors of aio2_ring_reserve, or -EINVAL for ring-owned bits in flags. */
static inline int aio2_ring_push(struct aio2_ring *r, uint32_t flags, const void *payload, uint32_t len)
{
	struct aio2_ring_rec *rec;
	int err;

	if (flags & AIO2_RING_REC_RING_MASK)
		return -EINVAL;
	err = aio2_ring_reserve(r, len, &rec);
	if (err)
		return err;
	aio2_ring_write(r, rec, 0, payload, len - AIO2_RING_REC_HDR);
	aio2__ring_publish(r, rec, flags);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Reapers                                                                */

/* aio2_ring_peek - single reaper, zero copy: the next committed record, or
 * nothing. Returns 1 and sets *out, 0 when the ring is empty or the next
 * record is still BUSY, -EUCLEAN or -EBADMSG on corruption (nothing is
 * consumed). PAD records are consumed on the way. The record stays valid
 * until aio2_ring_consume. */
static inline int aio2_ring_peek(struct aio2_ring *r, struct aio2_ring_rec **out)
{
	const uint64_t size = r->data_bytes;
	/* The single reaper is the only writer of head. */
	uint64_t h = __atomic_load_n(&r->head, __ATOMIC_RELAXED);

	for (;;) {
		uint64_t t = r->reaper_tail, w;
		uint32_t len, flags;

		if (t == h || t - h > size) {
			/* A1: pairs with R1; headers below tail are written. */
			t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~(uint64_t)7;
			r->reaper_tail = t;
		}
		if (t == h)
			return 0;
		if (t - h > size || (h & 7u))
			return -EUCLEAN;
		/* A2: pairs with R2; a record seen not BUSY has its payload. */
		w = __atomic_load_n(aio2__ring_word(r, h), __ATOMIC_ACQUIRE);
		len = (uint32_t)w;
		flags = (uint32_t)(w >> 32);
		if (flags & AIO2_RING_REC_BUSY)
			return 0;
		if (!aio2__rec_sound(len, h & (size - 1), t - h, size))
			return -EBADMSG;
		if (!(flags & AIO2_RING_REC_PAD)) {
			*out = (struct aio2_ring_rec *)(void *)aio2__ring_word(r, h);
			return 1;
		}
		h += len;
		/* R3: the PAD is free space again. */
		__atomic_store_n(&r->head, h, __ATOMIC_RELEASE);
	}
}

/* aio2_ring_consume - single reaper: release the record returned by the last
 * aio2_ring_peek. Its memory may be reused at once. */
static inline void aio2_ring_consume(struct aio2_ring *r, const struct aio2_ring_rec *rec)
{
	const uint64_t h = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	/* R3: our reads of the record happen before producers reuse it (A3). */
	__atomic_store_n(&r->head, h + rec->len, __ATOMIC_RELEASE);
}

/* aio2_ring_reap - any number of reapers: copy up to `max_recs` committed
 * records (0: no limit), whole, into `buf` (`cap` bytes, 8-aligned), then
 * claim them all with one CAS on head; on a lost race, try again. PAD
 * records are skipped, never copied. Returns the bytes written (a sequence
 * of whole records), 0 when nothing is ready, -ENOBUFS when the next record
 * does not fit in `cap` (aio2_ring_next_len says how much it needs),
 * -EUCLEAN or -EBADMSG on corruption; records before the corrupt one are
 * returned first, and the corrupt one is never consumed. */
static inline int64_t aio2_ring_reap(struct aio2_ring *r, void *buf, size_t cap, unsigned max_recs)
{
	const uint64_t size = r->data_bytes;
	unsigned char *out = (unsigned char *)buf;

	for (;;) {
		/* A4: pairs with R3 of the reaper that moved head here. That
		 * reaper had seen tail at or past h, so the tail we load next is
		 * too; with a relaxed load, a weakly ordered CPU may read an
		 * older tail below h and report sound positions as -EUCLEAN.
		 * (The CAS below proves head did not move while we copied.) */
		const uint64_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
		/* A1: pairs with R1. */
		const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~(uint64_t)7;
		uint64_t p = h;
		size_t got = 0;
		unsigned n = 0;
		int err = 0;

		if (t - h > size || (h & 7u))
			err = -EUCLEAN;
		while (!err && p != t && (max_recs == 0 || n < max_recs)) {
			/* A2: pairs with R2. */
			/* The mask from the size read once: the acquire loads would
			 * make the compiler read data_bytes again for every record. */
			const uint64_t off = p & (size - 1);
			const unsigned char *rec = aio2__ring_data(r) + off;
			const uint64_t w = __atomic_load_n((const uint64_t *)(const void *)rec, __ATOMIC_ACQUIRE);
			const uint32_t len = (uint32_t)w;
			const uint32_t flags = (uint32_t)(w >> 32);

			if (flags & AIO2_RING_REC_BUSY) {
				AIO2_RING_STAT(AIO2_RING_STAT_REAP_BUSY, 1);
				break;
			}
			if (!aio2__rec_sound(len, off, t - p, size)) {
				err = -EBADMSG;
				break;
			}
			if (!(flags & AIO2_RING_REC_PAD)) {
				if (len > cap - got) {
					err = -ENOBUFS;
					break;
				}
				memcpy(out + got, &w, 8);
				aio2__load_words(out + got + 8, rec + 8, len - 8);
				got += len;
				n++;
			}
			p += len;
		}
		if (p != h) {
			uint64_t expect = h;
			/* R3: our copies are complete before producers may reuse the
			 * space (A3). Success proves head stayed at h throughout, so
			 * no producer touched [h, p) while we copied. A single reaper
			 * has no rival: a plain release store does. */
			if (r->setup_flags & AIO2_RING_F_SINGLE_REAPER)
				__atomic_store_n(&r->head, p, __ATOMIC_RELEASE);
			else if (!__atomic_compare_exchange_n(&r->head, &expect, p, 0, __ATOMIC_RELEASE,
							      __ATOMIC_RELAXED)) {
				AIO2_RING_STAT(AIO2_RING_STAT_REAP_LOST, 1);
				AIO2_RING_STAT(AIO2_RING_STAT_REAP_WASTED, n);
				continue;
			}
			if (got || !err)
				return (int64_t)got;
			/* Only PADs were claimed before the error: fall through. */
		}
		if (!err)
			return 0;
		/* Errors seen while head moved may be a stale read, not damage.
		 * A read-modify-write reads the newest head (a plain load may
		 * return the same stale value we started from, and report a
		 * sound ring as corrupt); this is the error path only. If head
		 * is still p, tail (A1) ordered the record's header for this
		 * lap before our read, and no later lap can have begun, so the
		 * error is real. Acquire: pairs with R3, as A4. */
		if (__atomic_fetch_add(&r->head, 0, __ATOMIC_ACQUIRE) != p)
			continue;
		return err;
	}
}

/* aio2_ring_next_len - bytes of the next committed non-PAD record, 0 if none
 * is ready (a hint: with many reapers another may take it first). */
static inline uint32_t aio2_ring_next_len(struct aio2_ring *r)
{
	const uint64_t size = r->data_bytes;
	uint64_t p = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~(uint64_t)7;

	/* A head off its 8-byte grid (a corrupt or hostile peer) names no
	 * record, and a word read there could cross the end of the data area. */
	if (p & 7u)
		return 0;
	while (p != t && t - p <= size) {
		const uint64_t w = __atomic_load_n(aio2__ring_word(r, p), __ATOMIC_ACQUIRE);
		const uint32_t len = (uint32_t)w;
		if ((w >> 32) & AIO2_RING_REC_BUSY || !aio2__rec_sound(len, p & (size - 1), t - p, size))
			return 0;
		if (!((w >> 32) & AIO2_RING_REC_PAD))
			return len;
		p += len;
	}
	return 0;
}

/* Whether head has moved from h: what a reaper asks before it reports
 * corruption, which a stale h can fake. A read-modify-write reads the newest
 * head, where a plain load may return the same stale value again; this is
 * the error path only. Acquire: pairs with R3, as A4. */
static inline int aio2__head_moved(struct aio2_ring *r, uint64_t h)
{
	return __atomic_fetch_add(&r->head, 0, __ATOMIC_ACQUIRE) != h;
}

/* aio2_ring_reclaim - drop the record at head if its producer died before
 * committing it (its BUSY header names the producer; see
 * aio2_ring_producer_alive), so that reapers are not stopped there for
 * ever. The record is never delivered: its payload was never finished. A
 * reaper that makes no progress while aio2_ring_used() is not 0 calls this
 * now and then (it makes a system call when the record at head is BUSY).
 * Returns 1 when it dropped a record (call again: the next may be another),
 * 0 when the record at head is not one to drop (none, committed, or its
 * producer may be alive), -EUCLEAN or -EBADMSG on corruption. It is a
 * reaper operation: any copying reaper may call it, or the single zero-copy
 * reaper itself (never beside it). */
static inline int aio2_ring_reclaim(struct aio2_ring *r)
{
	const uint64_t size = r->data_bytes;
	/* A4: pairs with R3, so the tail loaded next is not older than h. */
	const uint64_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	/* A1: pairs with R1; the header at h is written. */
	const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~(uint64_t)7;
	uint64_t w, expect = h;
	uint32_t len, id;

	if (t == h)
		return 0;
	if (t - h > size || (h & 7u))
		return aio2__head_moved(r, h) ? 0 : -EUCLEAN;
	/* A2: pairs with R2. */
	w = __atomic_load_n(aio2__ring_word(r, h), __ATOMIC_ACQUIRE);
	len = (uint32_t)w;
	id = (uint32_t)(w >> 32) & AIO2_RING_REC_USER_MASK;
	if (!((w >> 32) & AIO2_RING_REC_BUSY) || id == 0)
		return 0;
	if (!aio2__rec_sound(len, h & (size - 1), t - h, size))
		return aio2__head_moved(r, h) ? 0 : -EBADMSG;
	if (AIO2__RING_ALIVE(id))
		return 0;
	/* The producer is gone, and learning so ordered all its stores before
	 * this load: if it committed before dying, the header says so now. */
	if (__atomic_load_n(aio2__ring_word(r, h), __ATOMIC_ACQUIRE) != w)
		return 0;
	/* R3: frees the record. Success proves head stayed at h (positions
	 * never repeat), so the header we judged is the one at head. */
	if (r->setup_flags & AIO2_RING_F_SINGLE_REAPER) {
		__atomic_store_n(&r->head, h + len, __ATOMIC_RELEASE);
		return 1;
	}
	return __atomic_compare_exchange_n(&r->head, &expect, h + len, 0, __ATOMIC_RELEASE,
					   __ATOMIC_RELAXED)
		       ? 1
		       : 0;
}

/* aio2_ring_used - bytes reserved and not yet reaped (a snapshot). */
static inline uint64_t aio2_ring_used(const struct aio2_ring *r)
{
	const uint64_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) & ~(uint64_t)7;
	return t - h;
}

/* Owner flags: a word the ring's owner uses to talk to reapers (aio2 sets
 * OVERFLOW and NEED_GETEVENTS here). Set/clear are release RMWs; the load is
 * acquire: whatever the owner wrote before setting a flag is visible to a
 * reaper that sees the flag. */
static inline uint32_t aio2_ring_owner_flags(const struct aio2_ring *r)
{
	return __atomic_load_n(&r->owner_flags, __ATOMIC_ACQUIRE);
}

static inline void aio2_ring_owner_flags_set(struct aio2_ring *r, uint32_t bits)
{
	__atomic_fetch_or(&r->owner_flags, bits, __ATOMIC_RELEASE);
}

static inline void aio2_ring_owner_flags_clear(struct aio2_ring *r, uint32_t bits)
{
	__atomic_fetch_and(&r->owner_flags, ~bits, __ATOMIC_RELEASE);
}

#ifdef __cplusplus
}
#endif

#endif /* AIO2_RING_H */
