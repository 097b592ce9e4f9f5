/* SPDX-License-Identifier: MIT */
/*
 * aio2/aio2.h - aio2's entry points, and inline helpers that need no call
 * into the library.
 *
 * aio2 runs any system call asynchronously. A request (struct aio2_iocb)
 * names a system call and its arguments and may carry attributes; its
 * completion (struct aio2_event) arrives in a ring of variable-length
 * records that any number of threads can reap, with a result for every
 * attribute. See aio2/abi.h for the layouts.
 *
 * All entry points return a negative errno on failure and never throw.
 *
 * fork(): in the child, a context set up before the fork belongs to the
 * parent (its worker threads, its io_uring requests and its events stay
 * there). Every entry point given one answers -ECHILD (aio2_ring_get and
 * aio2_legacy_ring: NULL; aio2_legacy_observe_dropped: 0), and never
 * waits; aio2_destroy closes the child's copies of its descriptors (the
 * eventfd, io_uring's), answers 0, and frees nothing (the parent's threads
 * may hold its locks). Contexts the child sets up work as usual. The
 * parent's contexts are untouched by the child, whatever it calls.
 *
 * Which calls may run at the same time, on one context:
 *
 *   call                  | with itself | with the others
 *   ----------------------+-------------+-----------------------------------
 *   aio2_submit           | yes         | yes
 *   aio2_getevents        | yes         | yes
 *   aio2_reap_events      | yes         | yes (it is what aio2_getevents uses)
 *   aio2_peek_event /     | no          | yes with submit, cancel, call; no
 *     aio2_consume_event  |             |   with getevents or reap_events
 *   aio2_call             | yes         | yes
 *   aio2_cancel           | yes         | yes
 *   aio2_restrict         | yes         | yes (one call wins; see there)
 *   aio2_register_fds     | yes         | yes (a request names out[i] only after)
 *   aio2_register_buffers | yes         | yes (one call wins: -EBUSY after)
 *   aio2_ring_get,        | yes         | yes
 *     aio2_eventfd        |             |
 *   aio2_destroy          | yes (one    | yes with the entry points: a call
 *                         | answers 0,  |   already inside returns (a waiting
 *                         | the others  |   getevents with what it took, or
 *                         | -EBADF)     |   -EBADF), destroy waits for it,
 *                         |             |   and later calls answer -EBADF;
 *                         |             |   no with aio2_reap_events,
 *                         |             |   aio2_peek_event and
 *                         |             |   aio2_consume_event (the ring is
 *                         |             |   unmapped)
 *
 * After aio2_destroy returns, the handle answers -EBADF only until a later
 * aio2_setup reuses it: a thread that may still call with it must be done
 * before the program sets up another context.
 */
#ifndef AIO2_AIO2_H
#define AIO2_AIO2_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "aio2/abi.h"
#include "aio2/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aio2_ctx aio2_ctx;

/* aio2_setup - create a context.
 * `version`: AIO2_ABI_VERSION as the caller was built; `p`: in/out
 * parameters (see struct aio2_params), NULL for all defaults; `out`: the new
 * context. Returns 0, or
 *   -EPROTONOSUPPORT  `version` is not one this library implements
 *   -EINVAL           out is NULL; p->size below AIO2_PARAMS_SIZE_MIN;
 *                     unknown type, flags or policy; ring_bytes not a power
 *                     of two in [4096, 2^32]; uring_entries not a power of
 *                     two up to 32768; uring_instances above 64;
 *                     non-zero reserved fields;
 *                     AIO2_SETUP_EVENTFD on a SYNC context
 *   -E2BIG            p->size is larger than this library knows and the
 *                     extra bytes are not all zero
 *   -EINVAL           also: AIO2_CTX_LEGACY with max_inflight 0
 *   -EBUSY            the cancel signal (SIGRTMAX - 2) has a handler that
 *                     is not aio2's
 *   -ENOMEM, -EMFILE, -ENFILE  out of memory or file descriptors
 * io_uring that cannot be set up is not an error: the context then works
 * without it, and p->features lacks AIO2_FEAT_URING. */
int aio2_setup(unsigned version, struct aio2_params *p, aio2_ctx **out);

/* aio2_destroy - cancel what is queued (interrupt what runs, on the pool and
 * on io_uring), wait for every request to finish, free everything. Unreaped
 * events are discarded. Threads inside other entry points on the context
 * are woken and waited for (see the table above). Returns 0 or -EBADF (NULL
 * or already destroyed context, or a destroy running in another thread). */
int aio2_destroy(aio2_ctx *ctx);

/* aio2_submit - queue the requests in `reqs` (`bytes` long, 8-byte aligned,
 * requests back to back). Each request is validated completely before it is
 * queued; submission stops at the first request that is malformed, refused,
 * or over the in-flight limit. Returns the bytes accepted (a prefix of whole
 * requests), or, when the first request fails, its error:
 *   -EBADF       NULL or destroyed context
 *   -EBADFD      the context is not a RING context
 *   -EINVAL      reqs NULL with bytes > 0; reqs misaligned; a request shorter
 *                than 72 bytes, not a multiple of 8, or longer than what is
 *                left of the buffer; non-zero reserved field; unknown
 *                AIO2_IOCB_* flags (or both BOUNDED and UNBOUNDED, or a
 *                path field above AIO2_IOCB_POLICY(AIO2_POLICY_POOL)); an
 *                attribute shorter than 8 bytes, not a multiple of 8,
 *                running past its request, or with unknown flags; a known
 *                attribute's payload of a size its handler does not accept
 *   -E2BIG       a request longer than 65536 bytes
 *   -ENOSYS      `nr` is not a system call on this architecture
 *   -EPERM       `nr` is refused (docs/syscalls.md gives each reason), or
 *                outside the context's allowlist, or so is one of the
 *                request's attribute ids (aio2_restrict)
 *   -EOPNOTSUPP  an attribute marked AIO2_ATTR_F_REQUIRED is unknown, or its
 *                handler cannot serve the path chosen for the request
 *   -EAGAIN      the in-flight limit (aio2_params.max_inflight) is reached
 *   -ENOMEM      no memory for a request slot
 *   other        an attribute's on_submit hook refused the request
 * Ring space never limits submission: completions that find the ring full
 * wait on the overflow list. Every accepted request produces one event.
 * A request runs with the credentials its submitting thread has when it
 * submits it, or its event has res -EPERM and it did not run (a pool
 * worker with other credentials: docs/design.md, "Credentials").
 * Requests routed to the inline path (docs/design.md, "Paths") run inside
 * this call, and under AIO2_POLICY_INLINE may block it. */
ssize_t aio2_submit(aio2_ctx *ctx, const void *reqs, size_t bytes);

/* aio2_getevents - copy whole events into `buf` (`bytes` long, 8-byte
 * aligned): first from the ring, then from the overflow list, oldest first.
 * Waits until at least `min_events` were copied or `timeout` (relative,
 * CLOCK_MONOTONIC) passes; timeout NULL waits for ever, zero polls. Returns
 * the bytes written (0 when the timeout passed with nothing), or
 *   -EBADF   NULL or destroyed context, or destroyed while this call
 *            waited with nothing taken;  -EBADFD  not a RING context
 *   -EINVAL  buf NULL or misaligned, or timeout invalid, or `bytes` cannot
 *            hold the next event: then, when bytes >= 4, the first 4 bytes
 *            of buf receive (as a uint32_t) the bytes that event needs
 *   -EINTR   a signal handler ran while the call waited, before any event
 *            was taken; one installed with SA_RESTART too (the call is
 *            never restarted, as io_getevents(2)). After an event was
 *            taken, a signal ends the wait and the call returns its bytes
 *   -ECHILD  the context was set up before fork(), in the parent
 * Never returns part of an event. Clears AIO2_RING_OVERFLOW once the
 * overflow list is empty. */
ssize_t aio2_getevents(aio2_ctx *ctx, unsigned min_events, void *buf, size_t bytes,
		       const struct timespec *timeout);

/* aio2_call - run one request synchronously in the calling thread, with its
 * attributes, and write its event into `ev` (`ev_bytes` long, 8-aligned).
 * `req->len` must be the request's true length: aio2 reads that many bytes.
 * `ctx` NULL uses a process-wide SYNC context; a RING context works too (the
 * event goes to `ev`, not to the ring). Returns the event's length, or the
 * errors of aio2_submit for the request (it does not run then), or -ENOBUFS
 * when `ev_bytes` cannot hold its event (it does not run then either). The
 * system call's own result is in the event's `res`. */
ssize_t aio2_call(aio2_ctx *ctx, const struct aio2_iocb *req, void *ev, size_t ev_bytes);

/* aio2_cancel - cancel the oldest outstanding request with `user_data`.
 * Returns
 *   0          it was queued: it will not run; its event has res -ECANCELED
 *              and flag AIO2_EVENT_CANCELED
 *   -EALREADY  it is running: it was interrupted where that is possible (a
 *              pool worker gets a signal; io_uring is asked to cancel it),
 *              and its event carries whatever the call returned (-EINTR
 *              for a call blocked in the kernel, or its result if it had
 *              finished)
 *   -ENOENT    no outstanding request has this user_data (it may have
 *              completed already; it ran inline; or it is a nowait-first
 *              read still inside its aio2_submit call)
 * The rest of a nowait-first read, cancelled while queued, completes with
 * the bytes its first try read (no AIO2_EVENT_CANCELED) when there were
 * any. docs/api.md has the table of every route.
 *   -EBADF, -EBADFD  as for aio2_submit */
int aio2_cancel(aio2_ctx *ctx, uint64_t user_data);

/* aio2_restrict - fix, once and for good, what the context may run: the
 * `n` entries at `r` name the system calls (AIO2_RESTRICT_SYSCALL) and the
 * attribute ids (AIO2_RESTRICT_ATTR) allowed; everything else is refused
 * with -EPERM from then on, as aio2_submit, aio2_call and
 * aio2_legacy_submit report a refused request. `n` 0 allows nothing. The
 * allowlist only narrows: a system call aio2 refuses always stays refused.
 * On a LEGACY context the system call is the one each iocb becomes
 * (docs/compat.md) and IOCB_FLAG_IOPRIO needs AIO2_ATTR_IOPRIO; the
 * attributes AIO2_SETUP_LEGACY_OBSERVE adds are not checked. Requests
 * accepted before the call returns are not affected. Returns 0, or
 *   -EBUSY   the context's allowlist is already fixed (a concurrent call
 *            won, or an earlier one)
 *   -EINVAL  r NULL with n > 0; an entry with an unknown kind, a non-zero
 *            reserved field, a number that is not a system call on this
 *            architecture, or an attribute id above 0xffff (nothing is
 *            fixed then: the call may be made again)
 *   -ENOMEM  out of memory
 *   -EBADF   NULL or destroyed context */
int aio2_restrict(aio2_ctx *ctx, const struct aio2_restriction *r, size_t n);

/* aio2_register_fds - registered descriptors: for each of the `nr`
 * descriptors at `fds` (regular files or block devices), the context makes
 * a descriptor of its own for the same open file (F_DUPFD_CLOEXEC) and
 * writes its number to out[i]. Requests that name out[i], on any context,
 * are routed on the facts taken now (open flags, kind), with no system call
 * of aio2's own: a submit of any size and requests with attributes make
 * only their own calls. The caller may close fds[i] at once; out[i] stays
 * the same file until aio2_destroy, which closes it after the context's
 * last request, and must not be closed by the caller. Flags changed later
 * with F_SETFL on the open file (O_DIRECT, O_NONBLOCK, through any of its
 * descriptors) are not seen: AUTO keeps routing on those of registration.
 * All or nothing. Returns 0 (nr 0 included), or
 *   -EINVAL  fds or out NULL with nr > 0; a descriptor that is not a
 *            regular file or a block device, or is O_PATH
 *   -EBADF   a descriptor in fds is not open; NULL or destroyed context
 *   -EMFILE  no descriptor left (RLIMIT_NOFILE), or the new one is at or
 *            above 65536
 *   -ENOMEM  out of memory
 *   -ECHILD  the context was set up before fork(), in the parent */
int aio2_register_fds(aio2_ctx *ctx, const int *fds, int *out, unsigned nr);

/* aio2_register_buffers - registered buffers: the `nr` buffers at `iov`
 * are registered with the context's io_uring instances (their pages pinned
 * once, now), and a read or write (read, pread64, write, pwrite64) the
 * context submits to io_uring whose whole buffer lies in one of them names
 * it (IORING_OP_READ_FIXED, WRITE_FIXED): the kernel does not pin the
 * pages per request, which O_DIRECT I/O otherwise does. Requests on other
 * paths, and with other buffers, run as before. The buffers must stay
 * mapped until aio2_destroy. Once per context, all or nothing. Returns 0, or
 *   -EINVAL      iov NULL, nr 0 or above 1024, a NULL or empty buffer, one
 *                above 1 GiB, or two that overlap
 *   -EBUSY       buffers are registered on this context already
 *   -EOPNOTSUPP  the context does not use io_uring
 *   -ENOMEM      out of memory, or the pages would pass RLIMIT_MEMLOCK
 *   -EFAULT      a buffer is not mapped (the kernel's answer)
 *   -EBADF       NULL or destroyed context
 *   -ECHILD      the context was set up before fork(), in the parent */
int aio2_register_buffers(aio2_ctx *ctx, const struct iovec *iov, unsigned nr);

/* aio2_ring_get - the context's completion ring, for reaping without a call
 * (see the helpers below). NULL for a bad or non-RING context. */
struct aio2_ring *aio2_ring_get(aio2_ctx *ctx);

/* aio2_eventfd - the context's eventfd (AIO2_SETUP_EVENTFD); -ENOENT when
 * the context has none, -EBADF for a bad context. The context owns it: do
 * not close it. Its counter counts events: each event adds exactly 1, on
 * every path (inline, the pool, io_uring, the overflow list, LEGACY
 * contexts), written once the event can be reaped, one write per batch of
 * events; nothing else is counted (aio2's own io_uring entries, a
 * nowait-first read's first try). So what reads of it add up to is the
 * number of events posted; a program may wait on it alone, never calling
 * in (a context with an eventfd and io_uring runs one thread that collects
 * io_uring's completions). */
int aio2_eventfd(aio2_ctx *ctx);

/* ---- The old ABI: LEGACY contexts ------------------------------------------- */

/* A LEGACY context (aio2_params.type AIO2_CTX_LEGACY, max_inflight the
 * nr_events of io_setup) speaks the old kernel AIO ABI of <linux/aio_abi.h>:
 * struct iocb in, struct io_event out, into a ring laid out like the
 * kernel's struct aio_ring, magic 0xa10a10a1, which programs may reap in
 * user space. Its requests run on aio2's paths (inline, io_uring, the
 * pool), so buffered I/O is asynchronous. Events reach the ring and each
 * IOCB_FLAG_RESFD eventfd is signalled without any call into the library.
 * The answers are the kernel's io_submit(2), io_getevents(2) and
 * io_cancel(2) answers; src/compat/libaio builds libaio on them and
 * docs/compat.md says where they differ. */
struct iocb;
struct io_event;

/* aio2_legacy_submit - io_submit(2): queues `nr` iocbs. Returns how many
 * were queued, or the first one's error: -EINVAL (nr < 0, unknown opcode
 * (IOCB_CMD_NOOP included), non-zero aio_reserved2, a bad ioprio on a read
 * or write, IOCB_FLAG_RESFD's descriptor not an eventfd, FSYNC or FDSYNC
 * of a pipe or socket), -EOPNOTSUPP (aio_rw_flags no kernel knows),
 * -EFAULT (iocbs or an iocb NULL or outside user space), -EBADF (the descriptor or
 * IOCB_FLAG_RESFD's is not open, or not open for the transfer), -EAGAIN
 * (nr_events requests in flight or unreaped), -EBADFD (not a LEGACY
 * context), -EBADF (bad context). aio_flags bits other than
 * IOCB_FLAG_RESFD and IOCB_FLAG_IOPRIO are ignored, as by the kernel. */
long aio2_legacy_submit(aio2_ctx *ctx, long nr, struct iocb **iocbs);

/* aio2_legacy_getevents - io_getevents(2) and, with `sigmask`, io_pgetevents
 * (a sigset_t *; NULL: the thread's mask): copies between min_nr and nr events, waiting
 * up to `timeout` (relative; NULL: no limit) for min_nr. Returns the count,
 * or -EINVAL (min_nr < 0, nr < 0, min_nr > nr, a bad timeout), -EFAULT
 * (events NULL, or events, timeout or sigmask outside user space), -EINTR
 * (a signal before any event), -EINVAL also when aio2_destroy ran while it
 * waited with nothing taken (the kernel's answer after io_destroy). */
long aio2_legacy_getevents(aio2_ctx *ctx, long min_nr, long nr, struct io_event *events,
			   const struct timespec *timeout, const void *sigmask);

/* aio2_legacy_cancel - io_cancel(2): cancels the request of `iocb`, also a
 * running one (its blocked call is interrupted). Returns -EINPROGRESS: the
 * request's event arrives through the ring, as the kernel delivers it
 * (res -ECANCELED when it had not started, else what the call returned,
 * -EINTR when it was interrupted); -EINVAL when no outstanding request has
 * this iocb; -EFAULT for an iocb NULL or outside user space. `result` is not written and may be
 * NULL, as with the kernel. */
int aio2_legacy_cancel(aio2_ctx *ctx, struct iocb *iocb, struct io_event *result);

/* aio2_legacy_ring - a LEGACY context's struct aio_ring (what libaio's
 * io_context_t points at), or NULL for a bad or other context. It stays
 * mapped until aio2_destroy. */
void *aio2_legacy_ring(aio2_ctx *ctx);

/* aio2_legacy_observe_dropped - aio2 events of an AIO2_SETUP_LEGACY_OBSERVE
 * context dropped because its aio2 ring was full (0 for other contexts). */
uint64_t aio2_legacy_observe_dropped(aio2_ctx *ctx);

/* aio2_strerror - a sentence for any -errno aio2 returns, in aio2's terms. */
const char *aio2_strerror(int err);

/* ---- Attributes: user-defined handlers ---------------------------------- */

/* What an attribute hook sees, for one attribute of one request. */
struct aio2_attr_hook {
	const struct aio2_iocb *req; /* the request's fixed part */
	const void *payload;         /* the attribute's request payload */
	uint32_t payload_len;        /* its length in bytes */
	uint32_t path;               /* AIO2_PATH_* running the request */
	void *result;                /* result_size bytes, zeroed at submit */
	uint32_t result_len;         /* the handler's result_size */
	uint16_t status;             /* AIO2_ATTR_* to report; OK unless set */
	uint16_t ran;                /* after, post: 1 when the system call ran */
	int64_t res;                 /* before: the result to report when it
				      * returns 1; after, post: the call's result */
	uint32_t worker;             /* pool path: the worker's number (from 1; UINT32_MAX: a thread in aio2_getevents) */
	uint16_t started;            /* after, post: 1 when this attribute's
				      * before turn came (0: the request was
				      * cancelled while queued, or an earlier
				      * attribute stopped the call) */
	uint16_t nowait_first;       /* 1 when the read runs as a nowait-first
				      * read: a RWF_NOWAIT attempt, then the
				      * rest without it (docs/design.md) */
	void *user;                  /* the handler's `user` */
	int64_t nowait_done;         /* after, post, with nowait_first: bytes
				      * the RWF_NOWAIT attempt read (what the
				      * page cache served), or -1 when it was
				      * not made (the request never ran) */
	int32_t ioprio;              /* before, on io_uring: set to an I/O
				      * priority (ioprio_set(2) encoding) to
				      * have the request's entry carry it;
				      * -1, the default, leaves it alone */
	uint32_t reserved;           /* zero */
};

/* An attribute handler. Hooks may be NULL. `before` and `after` run just
 * before and just after the system call (after hooks in reverse order of the
 * request's attributes), in the thread that runs it; on io_uring, before
 * runs in the submitting thread and after in the one that harvests the
 * completion (see AIO2_ATTR_HANDLER_THREAD for nowait-first reads). `on_submit`
 * runs in the submitting thread; `on_post` when the event is written. */
struct aio2_attr_handler {
	uint32_t size;        /* sizeof(struct aio2_attr_handler) */
	uint16_t id;          /* AIO2_ATTR_USER_MIN..0xffff for users */
	uint16_t flags;       /* AIO2_ATTR_HANDLER_* */
	uint32_t payload_min; /* accepted request payload sizes, in bytes; */
	uint32_t payload_max; /* others are refused at submit with -EINVAL */
	uint32_t result_size; /* result payload bytes when OK; a multiple of 8 */
	uint32_t paths;       /* AIO2_PATH_* bits where it can be honoured;
			       * elsewhere its status is UNAVAILABLE */
	const char *name;     /* for tools and messages */
	/* Returns 0, or -errno to refuse the request (submit returns it). */
	int (*on_submit)(struct aio2_attr_hook *h);
	/* Returns 0 to run the call, or 1 to complete it with h->res unrun. */
	int (*before)(struct aio2_attr_hook *h);
	void (*after)(struct aio2_attr_hook *h);
	void (*on_post)(struct aio2_attr_hook *h);
	void *user;
};

/* The handler's before and after hooks must run in the same thread, around
 * the call (they change or measure thread state: an I/O priority, resource
 * use). Without it, a read may run as a nowait-first read that starts in
 * the submitting thread: its before hooks run there before a RWF_NOWAIT
 * attempt, and when the attempt does not finish it, the after hooks run in
 * the thread that finishes it (io_uring's harvester or a pool worker). A
 * request with such an attribute never starts in the submitting thread. */
#define AIO2_ATTR_HANDLER_THREAD 0x1u
/* The handler measures a read's RWF_NOWAIT attempt (nowait_first and
 * nowait_done in its hooks): a read that carries it and runs on io_uring is
 * submitted with RWF_NOWAIT first, and what that does not read is read again
 * without it. The cache attribute is one. */
#define AIO2_ATTR_HANDLER_NOWAIT 0x2u
#define AIO2_ATTR_HANDLER_ALL 0x3u

/* aio2_attr_register - add a handler for the process's life. Returns 0, or
 * -EINVAL (NULL, bad size, unknown flags, result_size not a multiple of 8
 * or above 4096, payload_min > payload_max, no paths), -ERANGE (id below
 * AIO2_ATTR_USER_MIN), -EEXIST (id taken). Requests submitted before the
 * registration answer UNSUPPORTED for it. */
int aio2_attr_register(const struct aio2_attr_handler *h);

/* aio2_event_attr_payload - the result payload of attribute `id` in `ev`
 * when its status is OK and it holds at least `size` bytes; NULL otherwise
 * (then *status, if not NULL, says why: its status, or UNSUPPORTED when the
 * event has no result for `id`). */
static inline const void *aio2_event_attr_payload(const struct aio2_event *ev, uint16_t id,
						  size_t size, uint16_t *status);

/* ---- Inline helpers: building requests --------------------------------- */

/* aio2_prep - fill a request with no attributes. */
static inline void aio2_prep(struct aio2_iocb *io, long nr, uint64_t user_data, uint64_t a0,
			     uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	memset(io, 0, sizeof *io);
	io->len = (uint32_t)sizeof *io;
	io->nr = (uint32_t)nr;
	io->user_data = user_data;
	io->args[0] = a0;
	io->args[1] = a1;
	io->args[2] = a2;
	io->args[3] = a3;
	io->args[4] = a4;
	io->args[5] = a5;
}

/* aio2_attr_add - append an attribute with `payload_len` payload bytes
 * (rounded up to 8, zero-filled) to the request, which must have `cap`
 * bytes of room from its start. Returns a pointer to the payload, or NULL
 * when it does not fit. */
static inline void *aio2_attr_add(struct aio2_iocb *io, size_t cap, uint16_t id, uint16_t flags,
				  const void *payload, size_t payload_len)
{
	const size_t len = sizeof(struct aio2_attr) + ((payload_len + 7u) & ~(size_t)7u);
	unsigned char *at = (unsigned char *)io + io->len;
	struct aio2_attr a;

	if (io->len + len > cap || io->len + len > 0xffffffffu)
		return NULL;
	a.id = id;
	a.flags = flags;
	a.len = (uint32_t)len;
	memcpy(at, &a, sizeof a);
	memset(at + sizeof a, 0, len - sizeof a);
	if (payload_len)
		memcpy(at + sizeof a, payload, payload_len);
	io->len += (uint32_t)len;
	return at + sizeof a;
}

/* ---- Inline helpers: walking events ---------------------------------------- */

/* aio2_event_next - the event after `ev` in a buffer of `bytes` filled by
 * aio2_getevents or aio2_reap_events starting at `buf`, or the first one when
 * `ev` is NULL; NULL at the end, and at an event whose length is not sound
 * (below 24, not a multiple of 8, or past the buffer). */
static inline const struct aio2_event *aio2_event_next(const void *buf, size_t bytes,
							const struct aio2_event *ev)
{
	const unsigned char *b = (const unsigned char *)buf;
	const size_t off = ev ? (size_t)((const unsigned char *)ev - b) + ev->len : 0;
	const struct aio2_event *next;

	if (off > bytes || bytes - off < sizeof(struct aio2_event))
		return NULL;
	next = (const struct aio2_event *)(const void *)(b + off);
	if (next->len < sizeof *next || (next->len & 7u) || next->len > bytes - off)
		return NULL;
	return next;
}

/* aio2_attr_next - the attribute result after `r` in `ev`, or the first one
 * when `r` is NULL; NULL at the end or at a result that is not sound. */
static inline const struct aio2_attr_ret *aio2_attr_next(const struct aio2_event *ev,
							  const struct aio2_attr_ret *r)
{
	const unsigned char *p = r ? (const unsigned char *)r + r->len
				   : (const unsigned char *)ev + sizeof *ev;
	const unsigned char *end = (const unsigned char *)ev + ev->len;
	const struct aio2_attr_ret *next;

	if (p > end || (size_t)(end - p) < sizeof *next)
		return NULL;
	next = (const struct aio2_attr_ret *)(const void *)p;
	if (next->len < sizeof *next || (next->len & 7u) || next->len > (size_t)(end - p))
		return NULL;
	return next;
}

/* aio2_event_attr - the result for the `index`-th attribute of the request
 * (0-based, request order) in `ev`, or NULL when there are fewer. */
static inline const struct aio2_attr_ret *aio2_event_attr(const struct aio2_event *ev, unsigned index)
{
	const struct aio2_attr_ret *r = aio2_attr_next(ev, NULL);
	while (r && index--)
		r = aio2_attr_next(ev, r);
	return r;
}

/* aio2_event_find_attr - the first result with attribute `id`, or NULL. */
static inline const struct aio2_attr_ret *aio2_event_find_attr(const struct aio2_event *ev, uint16_t id)
{
	const struct aio2_attr_ret *r;
	for (r = aio2_attr_next(ev, NULL); r != NULL; r = aio2_attr_next(ev, r))
		if (r->id == id)
			return r;
	return NULL;
}

static inline const void *aio2_event_attr_payload(const struct aio2_event *ev, uint16_t id,
						  size_t size, uint16_t *status)
{
	const struct aio2_attr_ret *r = aio2_event_find_attr(ev, id);
	if (status)
		*status = r ? r->status : (uint16_t)AIO2_ATTR_UNSUPPORTED;
	if (!r || r->status != AIO2_ATTR_OK || r->len - sizeof *r < size)
		return NULL;
	return (const unsigned char *)r + sizeof *r;
}

/* ---- Inline helpers: reaping from user memory, no call ------------------------ */

/* aio2_reap_events - any number of threads: copy whole events from the
 * context's ring (aio2_ring_get) into `buf`, claimed with one CAS. Returns
 * the bytes copied, 0 when the ring is empty, -EAGAIN when the ring is empty
 * but aio2 holds events elsewhere or needs a call (OVERFLOW or
 * NEED_GETEVENTS): call aio2_getevents then. Other errors as aio2_ring_reap. */
static inline int64_t aio2_reap_events(struct aio2_ring *ring, void *buf, size_t bytes)
{
	const int64_t got = aio2_ring_reap(ring, buf, bytes, 0);
	if (got != 0)
		return got;
	if (aio2_ring_owner_flags(ring) & (AIO2_RING_OVERFLOW | AIO2_RING_NEED_GETEVENTS))
		return -EAGAIN;
	return 0;
}

/* aio2_peek_event - a single reaper, zero copy: the next event in place.
 * Returns 1 and sets *ev, 0 when empty, -EAGAIN as for aio2_reap_events,
 * or a ring error. Release it with aio2_consume_event. Only when no other
 * thread reaps this context (aio2_getevents included). */
static inline int aio2_peek_event(struct aio2_ring *ring, const struct aio2_event **ev)
{
	struct aio2_ring_rec *rec;
	const int rc = aio2_ring_peek(ring, &rec);
	if (rc == 1)
		*ev = (const struct aio2_event *)(const void *)rec;
	if (rc == 0 && (aio2_ring_owner_flags(ring) & (AIO2_RING_OVERFLOW | AIO2_RING_NEED_GETEVENTS)))
		return -EAGAIN;
	return rc;
}

/* aio2_consume_event - release the event returned by aio2_peek_event. */
static inline void aio2_consume_event(struct aio2_ring *ring, const struct aio2_event *ev)
{
	aio2_ring_consume(ring, (const struct aio2_ring_rec *)(const void *)ev);
}

#ifdef __cplusplus
}
#endif

#endif /* AIO2_AIO2_H */
