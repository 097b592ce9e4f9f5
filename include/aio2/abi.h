/* SPDX-License-Identifier: MIT */
/*
 * aio2/abi.h - the aio2 ABI: requests, attributes, events, setup parameters.
 *
 * Every structure here is a fixed-layout host-endian struct of explicit
 * widths, 8-byte aligned, with its size and every offset checked below.
 * Every variable-length record is a multiple of 8 bytes and states its own
 * length in bytes first. Reserved fields must be zero: that is how the ABI
 * grows without breaking old callers, so non-zero reserved bits are refused.
 *
 * Who writes what: "caller" is the program using aio2, "aio2" the library.
 */
#ifndef AIO2_ABI_H
#define AIO2_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "aio2/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. Pass it to aio2_setup(); a library
 * that does not implement the version you were built for refuses it. */
#define AIO2_ABI_VERSION 1u

/* ---- Requests --------------------------------------------------------- */

/* One request: run system call `nr` with `args`. Written by the caller.
 * Requests are concatenated in the buffer given to aio2_submit(); each one
 * starts 8-byte aligned, `len` bytes after the previous one. */
struct aio2_iocb {
	uint32_t len;       /* bytes of this request, attributes included;
			     * a multiple of 8, at least 72 */
	uint32_t nr;        /* system call number, this architecture's numbering */
	uint64_t user_data; /* echoed in the event; also names it for cancel */
	uint64_t args[6];   /* the system call's arguments, as it takes them */
	uint32_t flags;     /* AIO2_IOCB_* executor hints */
	uint32_t reserved;  /* must be zero */
	/* attributes (struct aio2_attr records) from byte 72 to len */
};

/* Executor hints. Unknown bits are refused with -EINVAL. */
/* The call may wait without bound (a read on a pipe, a futex wait): run it
 * on an unbounded worker, whatever the system-call table says. */
#define AIO2_IOCB_UNBOUNDED 0x1u
/* The call finishes (regular-file I/O): run it on a bounded worker, whatever
 * the kinds of its descriptors. */
#define AIO2_IOCB_BOUNDED 0x2u
/* The policy for this request, overriding the context's
 * (aio2_params.policy): AIO2_IOCB_POLICY(AIO2_POLICY_*), in bits 2..4. The
 * field holds the policy plus one, so that zero, the default, means "the
 * context's policy". A policy chooses among paths; the paths themselves
 * are the AIO2_PATH_* bits that results report. */
#define AIO2_IOCB_POLICY_SHIFT 2u
#define AIO2_IOCB_POLICY_MASK 0x1cu
#define AIO2_IOCB_POLICY(policy) ((((uint32_t)(policy)) + 1u) << AIO2_IOCB_POLICY_SHIFT)
#define AIO2_IOCB_ALL 0x1fu

/* Policies: how aio2 chooses a request's path (docs/design.md, "Paths").
 * AUTO: run it in the submitting thread when it cannot block (a call the
 *   system-call table marks non-blocking; a read the page cache can serve,
 *   tried with RWF_NOWAIT when io_uring is not in use), else on io_uring
 *   when this kernel implements the call there, else on the pool.
 * INLINE: run the call in the submitting thread, inside aio2_submit, even
 *   when it blocks; the event still goes to the ring.
 * URING: io_uring when it implements the call, else the pool (no inline
 *   attempt).
 * POOL: a worker of the thread pool. */
#define AIO2_POLICY_AUTO 0u
#define AIO2_POLICY_INLINE 1u
#define AIO2_POLICY_URING 2u
#define AIO2_POLICY_POOL 3u

/* ---- Attributes -------------------------------------------------------- */

/* An attribute of a request: an 8-byte header, then `len - 8` bytes of
 * payload whose layout the attribute `id` defines. Written by the caller. */
struct aio2_attr {
	uint16_t id;    /* AIO2_ATTR_* or a user-defined id */
	uint16_t flags; /* AIO2_ATTR_F_* */
	uint32_t len;   /* bytes including this header; multiple of 8, >= 8 */
};

/* Fail the request with -EOPNOTSUPP, before it runs, when this attribute
 * cannot be honoured, instead of reporting UNSUPPORTED in the event. */
#define AIO2_ATTR_F_REQUIRED 0x1u
#define AIO2_ATTR_F_ALL 0x1u

/* ---- Events ------------------------------------------------------------ */

/* The completion of one request. Written by aio2 into the completion ring
 * (or the overflow list). Its first 8 bytes are the generic ring's record
 * header: `len` is the record length, and the ring owns the top two bits of
 * `flags` (AIO2_RING_REC_BUSY, AIO2_RING_REC_PAD), which a reaped event never
 * has set. */
struct aio2_event {
	uint32_t len;       /* bytes of this event, attribute results included */
	uint32_t flags;     /* AIO2_EVENT_* */
	uint64_t user_data; /* the request's user_data */
	int64_t res;        /* the system call's return value, or -errno */
	/* attribute results (struct aio2_attr_ret) from byte 24 to len, one per
	 * attribute of the request, in request order */
};

/* The request never ran: it was cancelled while queued (res -ECANCELED). */
#define AIO2_EVENT_CANCELED 0x1u

/* The result of one attribute, in the event. Written by aio2. */
struct aio2_attr_ret {
	uint16_t id;     /* the attribute's id */
	uint16_t status; /* AIO2_ATTR_* status below */
	uint32_t len;    /* bytes including this header; multiple of 8 */
	/* result payload, as the attribute defines it (none unless OK) */
};

/* Attribute result status. */
#define AIO2_ATTR_OK 0u             /* honoured; the payload holds the result */
#define AIO2_ATTR_UNSUPPORTED 1u    /* this build does not know the id */
#define AIO2_ATTR_NOT_APPLICABLE 2u /* known, but means nothing for this call */
#define AIO2_ATTR_UNAVAILABLE 3u    /* known, but this execution path cannot provide it */
#define AIO2_ATTR_ERROR 4u          /* tried and failed */

/* Execution paths, as bits (a handler's `paths`) and as values (the
 * executor attribute's `path`). */
#define AIO2_PATH_CALL 0x1u   /* aio2_call, in the calling thread */
#define AIO2_PATH_POOL 0x2u   /* a worker of the system-call thread pool */
#define AIO2_PATH_INLINE 0x4u /* the submitting thread, inside aio2_submit */
#define AIO2_PATH_URING 0x8u  /* io_uring */
#define AIO2_PATH_ALL 0xfu

/* Attribute ids. 1..0x7fff belong to aio2; 0x8000..0xffff to users
 * (aio2_attr_register). docs/attributes.md is the catalogue. */
#define AIO2_ATTR_USER_MIN 0x8000u

/* timing: when the request was submitted, started, finished and posted.
 * Request payload: none. Result: struct aio2_attr_timing. Queueing time is
 * started - submitted, service time finished - started. */
#define AIO2_ATTR_TIMING 1u
struct aio2_attr_timing {
	uint64_t submitted_ns; /* CLOCK_MONOTONIC, each; one per submit call */
	uint64_t started_ns;   /* 0 when the call never started */
	uint64_t finished_ns;  /* 0 when the call never started */
	uint64_t posted_ns;
};

/* tag: opaque bytes echoed back, for correlation with a tracing system.
 * Request payload: 1..AIO2_TAG_MAX bytes. Result: AIO2_TAG_MAX bytes, the
 * tag padded with zeros. A longer tag is refused at submit with -EINVAL. */
#define AIO2_ATTR_TAG 2u
#define AIO2_TAG_MAX 64u

/* deadline: if the request has not started by `deadline_ns`
 * (CLOCK_MONOTONIC), it completes with -ETIME and the call does not run.
 * Request payload: struct aio2_attr_deadline. Result:
 * struct aio2_attr_deadline_ret. */
#define AIO2_ATTR_DEADLINE 3u
struct aio2_attr_deadline {
	uint64_t deadline_ns;
};
struct aio2_attr_deadline_ret {
	uint32_t expired;  /* 1: the call did not run (res is -ETIME) */
	uint32_t reserved;
	int64_t slack_ns;  /* deadline - start time (negative when expired) */
};

/* executor: where the request ran. Request payload: none. Result:
 * struct aio2_attr_executor. */
#define AIO2_ATTR_EXECUTOR 4u
struct aio2_attr_executor {
	uint32_t path;   /* AIO2_PATH_* bits of every path that ran part of it:
			  * INLINE|POOL for a nowait-first read whose
			  * RWF_NOWAIT attempt in the submitting thread found
			  * only part of it cached, the rest read by a worker */
	uint32_t worker; /* worker number within the context's pool (pool path) */
	uint32_t cpu;    /* CPU the call started on */
	uint32_t node;   /* that CPU's NUMA node */
};

/* cache: the page-cache outcome of a read (read, pread64, readv, preadv,
 * preadv2) of a regular file, found just before the call. Request payload:
 * none. Result: struct aio2_attr_cache. NOT_APPLICABLE for any other call. */
#define AIO2_ATTR_CACHE 5u
#define AIO2_CACHE_HIT 1u     /* every requested byte was cached */
#define AIO2_CACHE_PARTIAL 2u /* some were */
#define AIO2_CACHE_MISS 3u    /* none were */
#define AIO2_CACHE_BY_CACHESTAT 1u /* cachestat(2) over the range (Linux 6.5+) */
#define AIO2_CACHE_BY_NOWAIT 2u    /* a RWF_NOWAIT first attempt */
struct aio2_attr_cache {
	uint32_t outcome;         /* AIO2_CACHE_HIT, PARTIAL or MISS */
	uint32_t method;          /* AIO2_CACHE_BY_* */
	uint64_t bytes_cached;    /* bytes of the range found in the page cache */
	uint64_t bytes_requested; /* bytes asked for, clipped to the file's end */
	uint64_t reserved;
};

/* ioprio: run the call at an I/O priority (an ioprio_set(2) value) and say
 * whether it was applied. Request payload: struct aio2_attr_ioprio.
 * Result: struct aio2_attr_ioprio_ret. */
#define AIO2_ATTR_IOPRIO 6u
struct aio2_attr_ioprio {
	uint32_t ioprio;   /* IOPRIO_PRIO_VALUE(class, data) */
	uint32_t reserved; /* zero */
};
struct aio2_attr_ioprio_ret {
	uint32_t applied;  /* 1 when the call ran at `ioprio` */
	int32_t error;     /* -errno from ioprio_set when not applied */
	uint32_t previous; /* the thread's priority before, restored after */
	uint32_t reserved;
};

/* rusage: resource use of the executing thread during the call
 * (getrusage(RUSAGE_THREAD) before and after). Request payload: none.
 * Result: struct aio2_attr_rusage. UNAVAILABLE on paths without a thread of
 * their own for the call (io_uring). */
#define AIO2_ATTR_RUSAGE 7u
struct aio2_attr_rusage {
	uint64_t minflt;  /* minor page faults */
	uint64_t majflt;  /* major page faults */
	uint64_t nvcsw;   /* voluntary context switches */
	uint64_t nivcsw;  /* involuntary context switches */
	uint64_t inblock; /* block input operations */
	uint64_t oublock; /* block output operations */
};

/* ---- Contexts ------------------------------------------------------------ */

/* Context types. */
#define AIO2_CTX_RING 0u   /* asynchronous: completions go to the ring */
#define AIO2_CTX_SYNC 1u   /* no ring: only aio2_call() */
/* The old ABI: struct iocb in, libaio's 32-byte struct io_event out, into a
 * ring laid out like the kernel's struct aio_ring (aio2_legacy_ring);
 * max_inflight is io_setup's nr_events. See aio2_legacy_submit. */
#define AIO2_CTX_LEGACY 2u

/* Setup flags. Unknown bits are refused with -EINVAL. */
/* Create an eventfd that is signalled whenever events are posted. */
#define AIO2_SETUP_EVENTFD 0x1u
/* Never use io_uring, even where the kernel allows it (the pool and the
 * inline path only). */
#define AIO2_SETUP_NO_URING 0x2u
/* LEGACY contexts only: observe every request. Each carries the timing,
 * cache and executor attributes, and each completion's aio2 event, with
 * their results, is also posted to the context's aio2 ring (ring_bytes;
 * aio2_ring_get, aio2_getevents), where an observer reads it; the program's
 * io_event ring is unchanged. When the aio2 ring is full the aio2 event is
 * dropped, never the io_event, and counted (aio2_legacy_observe_dropped). */
#define AIO2_SETUP_LEGACY_OBSERVE 0x4u
#define AIO2_SETUP_ALL 0x7u

/* Feature bits this build supports, returned in aio2_params.features. */
#define AIO2_FEAT_RING 0x1ull     /* RING contexts */
#define AIO2_FEAT_SYNC 0x2ull     /* SYNC contexts and aio2_call */
#define AIO2_FEAT_EVENTFD 0x4ull  /* AIO2_SETUP_EVENTFD */
#define AIO2_FEAT_OVERFLOW 0x8ull /* completions beyond the ring wait on an overflow list */
#define AIO2_FEAT_POOL 0x10ull    /* the generic system-call thread pool */
#define AIO2_FEAT_CANCEL 0x20ull  /* aio2_cancel, including interrupting running calls */
#define AIO2_FEAT_INLINE 0x40ull  /* the inline path */
/* This context sends calls io_uring implements to io_uring. Missing when
 * io_uring is unavailable (not built in, kernel.io_uring_disabled, seccomp,
 * too old) or AIO2_SETUP_NO_URING was given: those calls then run on the
 * pool, or inline (docs/design.md, "Paths"). */
#define AIO2_FEAT_URING 0x80ull
#define AIO2_FEAT_LEGACY 0x100ull /* LEGACY contexts */
#define AIO2_FEAT_RESTRICT 0x200ull /* aio2_restrict: a context's allowlist */

/* Owner flags aio2 sets in its completion ring's header
 * (aio2_ring_owner_flags()). A reaper that finds the ring empty while either
 * is set must call aio2_getevents(). */
#define AIO2_RING_OVERFLOW 0x1u       /* events are waiting on the overflow list */
#define AIO2_RING_NEED_GETEVENTS 0x2u /* aio2 needs a call to make progress */

/* Parameters of aio2_setup(). Zero means "the default" for every input but
 * `size`, which the caller sets to sizeof(struct aio2_params) as compiled;
 * a shorter struct from an older header keeps working (missing fields take
 * their defaults and are not written back), a longer one from a newer
 * header is accepted when its unknown tail is all zero (-E2BIG otherwise). */
struct aio2_params {
	uint32_t size;              /* caller: bytes of this struct it knows */
	uint32_t type;              /* caller: AIO2_CTX_* */
	uint32_t flags;             /* caller: AIO2_SETUP_* */
	uint32_t max_inflight;      /* caller: most requests submitted and not yet
				     * completed into the ring (default 65536);
				     * aio2: the value in force */
	uint64_t ring_bytes;        /* caller: completion ring data bytes, a power
				     * of two (default 65536); aio2: in force */
	uint32_t bounded_workers;   /* caller: most bounded workers (default:
				     * 4 x CPUs); aio2: in force */
	uint32_t unbounded_workers; /* caller: most unbounded workers (default
				     * 4096); aio2: in force */
	uint32_t idle_ms;           /* caller: an idle worker exits after this
				     * (default 2000); aio2: in force */
	int32_t eventfd;            /* aio2: the context's eventfd, or -1 */
	uint64_t features;          /* aio2: AIO2_FEAT_* of this context */
	uint32_t policy;            /* caller: AIO2_POLICY_* default for requests
				     * (default AUTO) */
	uint32_t uring_entries;     /* caller: io_uring submission queue entries,
				     * a power of two up to 32768 (default 256);
				     * aio2: in force (0 without io_uring) */
	uint32_t uring_instances;   /* caller: io_uring instances that a RING
				     * context's submitting threads spread over,
				     * at most 64 (default: twice the CPUs this
				     * process may run on, at most 16); aio2:
				     * made (1 for LEGACY, 0 without io_uring) */
	uint32_t reserved;          /* must be zero */
};

/* The smallest struct aio2_params accepted: size, type, flags, max_inflight. */
#define AIO2_PARAMS_SIZE_MIN 16u
#define AIO2_PARAMS_SIZE_V1 64u

/* ---- Allowlists (aio2_restrict) ------------------------------------------ */

/* One entry of a context's allowlist: a system call number (this
 * architecture's) or an attribute id that the context may run. */
struct aio2_restriction {
	uint16_t kind;     /* AIO2_RESTRICT_* */
	uint16_t reserved; /* zero */
	uint32_t value;    /* the system call number, or the attribute id */
};
#define AIO2_RESTRICT_SYSCALL 1u /* value: a system call number */
#define AIO2_RESTRICT_ATTR 2u    /* value: an attribute id (up to 0xffff) */

/* ---- Layout checks --------------------------------------------------------- */

AIO2__STATIC_ASSERT(sizeof(struct aio2_iocb) == 72, "aio2_iocb is 72 bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_iocb, nr) == 4, "iocb.nr");
AIO2__STATIC_ASSERT(offsetof(struct aio2_iocb, user_data) == 8, "iocb.user_data");
AIO2__STATIC_ASSERT(offsetof(struct aio2_iocb, args) == 16, "iocb.args");
AIO2__STATIC_ASSERT(offsetof(struct aio2_iocb, flags) == 64, "iocb.flags");
AIO2__STATIC_ASSERT(offsetof(struct aio2_iocb, reserved) == 68, "iocb.reserved");
AIO2__STATIC_ASSERT(sizeof(struct aio2_attr) == 8, "aio2_attr is 8 bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_attr, flags) == 2, "attr.flags");
AIO2__STATIC_ASSERT(offsetof(struct aio2_attr, len) == 4, "attr.len");
AIO2__STATIC_ASSERT(sizeof(struct aio2_event) == 24, "aio2_event is 24 bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_event, flags) == offsetof(struct aio2_ring_rec, flags),
		    "an event's first 8 bytes are the ring record header");
AIO2__STATIC_ASSERT(offsetof(struct aio2_event, user_data) == 8, "event.user_data");
AIO2__STATIC_ASSERT(offsetof(struct aio2_event, res) == 16, "event.res");
AIO2__STATIC_ASSERT(sizeof(struct aio2_attr_ret) == 8, "aio2_attr_ret is 8 bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_attr_ret, status) == 2, "attr_ret.status");
AIO2__STATIC_ASSERT(offsetof(struct aio2_attr_ret, len) == 4, "attr_ret.len");
AIO2__STATIC_ASSERT(sizeof(struct aio2_params) == AIO2_PARAMS_SIZE_V1, "aio2_params v1 size");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, max_inflight) == 12, "params.max_inflight");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, ring_bytes) == 16, "params.ring_bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, eventfd) == 36, "params.eventfd");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, features) == 40, "params.features");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, policy) == 48, "params.policy");
AIO2__STATIC_ASSERT(offsetof(struct aio2_params, uring_entries) == 52, "params.uring_entries");
AIO2__STATIC_ASSERT(sizeof(struct aio2_restriction) == 8, "aio2_restriction is 8 bytes");
AIO2__STATIC_ASSERT(offsetof(struct aio2_restriction, value) == 4, "restriction.value");
AIO2__STATIC_ASSERT((AIO2_EVENT_CANCELED & AIO2_RING_REC_RING_MASK) == 0,
		    "event flags stay out of the ring's bits");

#ifdef __cplusplus
}
#endif

#endif /* AIO2_ABI_H */
