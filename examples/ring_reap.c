/* SPDX-License-Identifier: MIT */
/*
 * Reaping straight from the mapped completion ring, without a call into the
 * library while the ring has events.
 *
 * The context's ring is small (4096 bytes) and far more requests are in
 * flight than it can hold, so completions also wait on the overflow list:
 * a reaper that finds the ring empty gets -EAGAIN and must then call
 * aio2_getevents, which drains that list (and harvests io_uring).
 *
 *   1. One reaper, zero copy: aio2_peek_event / aio2_consume_event.
 *   2. Four threads at once, copying: aio2_reap_events.
 *
 * Each request carries the executor attribute; each part checks that every
 * request's event came exactly once, with its own result and an executor
 * result, and says how many events came from the ring and how many through
 * aio2_getevents.
 *
 *   build/bin/example_ring_reap
 *
 * Exits 0 when both parts checked every event.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aio2/aio2.h"

#define REQUESTS 2000
#define REAPERS 4
#define REQ_BYTES (sizeof(struct aio2_iocb) + sizeof(struct aio2_attr))

static aio2_ctx *ctx;
static struct aio2_ring *ring;
static unsigned seen[REQUESTS];
static unsigned done; /* events checked, all reapers together */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Every request is getppid or a 1 ms nanosleep, by user_data, so that some
 * run inline and some on the pool, and they finish in a mixed order. */
static const struct timespec one_ms = {0, 1000000};

static int submit_all(void)
{
	static _Alignas(8) unsigned char reqs[REQUESTS][REQ_BYTES];
	size_t off = 0;
	unsigned i;

	for (i = 0; i < REQUESTS; i++) {
		struct aio2_iocb *io = (struct aio2_iocb *)(void *)reqs[i];
		if (i % 4 == 0)
			aio2_prep(io, SYS_nanosleep, i, (uint64_t)(uintptr_t)&one_ms, 0, 0, 0, 0, 0);
		else
			aio2_prep(io, SYS_getppid, i, 0, 0, 0, 0, 0, 0);
		if (!aio2_attr_add(io, REQ_BYTES, AIO2_ATTR_EXECUTOR, 0, NULL, 0))
			return -1;
	}
	while (off < sizeof reqs) {
		/* Each request is REQ_BYTES long, so the buffer is one array. */
		const ssize_t n = aio2_submit(ctx, (unsigned char *)reqs + off, sizeof reqs - off);
		if (n < 0) {
			fprintf(stderr, "submit: %s\n", aio2_strerror((int)n));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Checks one event; returns 0 when it is right and new. */
static int check(const struct aio2_event *ev)
{
	const struct aio2_attr_executor *x;
	uint16_t status;
	int fresh;

	if (ev->user_data >= REQUESTS) {
		fprintf(stderr, "unknown event %llu\n", (unsigned long long)ev->user_data);
		return -1;
	}
	pthread_mutex_lock(&mu);
	fresh = seen[ev->user_data]++ == 0;
	done++;
	pthread_mutex_unlock(&mu);
	if (!fresh) {
		fprintf(stderr, "event %llu came twice\n", (unsigned long long)ev->user_data);
		return -1;
	}
	if (ev->user_data % 4 == 0 ? ev->res != 0 : ev->res != getppid()) {
		fprintf(stderr, "event %llu: res %lld\n", (unsigned long long)ev->user_data,
			(long long)ev->res);
		return -1;
	}
	x = aio2_event_attr_payload(ev, AIO2_ATTR_EXECUTOR, sizeof *x, &status);
	if (x == NULL || x->path == 0) {
		fprintf(stderr, "event %llu: no executor result (status %u)\n",
			(unsigned long long)ev->user_data, status);
		return -1;
	}
	return 0;
}

static int check_buffer(const void *buf, size_t n, unsigned *count)
{
	const struct aio2_event *ev;

	for (ev = aio2_event_next(buf, n, NULL); ev; ev = aio2_event_next(buf, n, ev)) {
		if (check(ev))
			return -1;
		++*count;
	}
	return 0;
}

static unsigned events_done(void)
{
	unsigned d;
	pthread_mutex_lock(&mu);
	d = done;
	pthread_mutex_unlock(&mu);
	return d;
}

/* The call every reaper makes when the ring has nothing for it: waits up to
 * 10 ms for an event (the ring's flags say whether one is held elsewhere;
 * either way this call is how a reaper waits). Returns bytes or -errno. */
static ssize_t wait_events(void *buf, size_t bytes)
{
	const struct timespec ten_ms = {0, 10000000};
	return aio2_getevents(ctx, 1, buf, bytes, &ten_ms);
}

/* Part 1: the only reaper, zero copy. */
static int single_reaper(unsigned *from_ring, unsigned *from_call)
{
	_Alignas(8) unsigned char buf[4096];
	const struct aio2_event *ev;

	while (events_done() < REQUESTS) {
		const int rc = aio2_peek_event(ring, &ev);
		ssize_t n;

		if (rc == 1) {
			/* The event is read in place, then released. */
			const int bad = check(ev);
			aio2_consume_event(ring, ev);
			if (bad)
				return -1;
			++*from_ring;
			continue;
		}
		if (rc < 0 && rc != -EAGAIN) {
			fprintf(stderr, "peek: %s\n", aio2_strerror(rc));
			return -1;
		}
		/* Empty (0), or -EAGAIN: events wait on the overflow list or
		 * io_uring holds completions. No other thread reaps, so this
		 * call does not run beside a peek. */
		n = wait_events(buf, sizeof buf);
		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "getevents: %s\n", aio2_strerror((int)n));
			return -1;
		}
		if (n > 0 && check_buffer(buf, (size_t)n, from_call))
			return -1;
	}
	return 0;
}

struct reaper {
	pthread_t thread;
	unsigned from_ring, from_call;
	int failed;
};

/* Part 2: one of several copying reapers. */
static void *copying_reaper(void *arg)
{
	struct reaper *r = arg;
	_Alignas(8) unsigned char buf[2048];

	while (events_done() < REQUESTS) {
		int64_t n = aio2_reap_events(ring, buf, sizeof buf);
		unsigned *count = &r->from_ring;

		if (n == 0 || n == -EAGAIN) {
			n = wait_events(buf, sizeof buf);
			count = &r->from_call;
			if (n == -EINTR)
				continue;
		}
		if (n < 0) {
			fprintf(stderr, "reap: %s\n", aio2_strerror((int)n));
			r->failed = 1;
			break;
		}
		if (check_buffer(buf, (size_t)n, count)) {
			r->failed = 1;
			break;
		}
	}
	return NULL;
}

static void reset(void)
{
	memset(seen, 0, sizeof seen);
	done = 0;
}

static int all_seen(void)
{
	unsigned i;
	for (i = 0; i < REQUESTS; i++)
		if (seen[i] != 1) {
			fprintf(stderr, "event %u came %u times\n", i, seen[i]);
			return 0;
		}
	return 1;
}

int main(void)
{
	struct reaper reapers[REAPERS];
	struct aio2_params p;
	unsigned from_ring = 0, from_call = 0, i;
	int err, failed = 0;

	memset(&p, 0, sizeof p);
	p.size = sizeof p;
	p.ring_bytes = 4096; /* the smallest: about 100 events with their results */
	if ((err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx)) != 0) {
		fprintf(stderr, "setup: %s\n", aio2_strerror(err));
		return 1;
	}
	ring = aio2_ring_get(ctx);
	if (ring == NULL)
		return fprintf(stderr, "no ring\n"), 1;

	if (submit_all() || single_reaper(&from_ring, &from_call) || !all_seen())
		return 1;
	printf("one zero-copy reaper: %u events from the ring, %u through aio2_getevents\n",
	       from_ring, from_call);
	if (from_ring == 0)
		return fprintf(stderr, "no event came from the ring\n"), 1;

	reset();
	if (submit_all())
		return 1;
	memset(reapers, 0, sizeof reapers);
	for (i = 0; i < REAPERS; i++)
		if (pthread_create(&reapers[i].thread, NULL, copying_reaper, &reapers[i]) != 0)
			return fprintf(stderr, "pthread_create failed\n"), 1;
	from_ring = from_call = 0;
	for (i = 0; i < REAPERS; i++) {
		pthread_join(reapers[i].thread, NULL);
		failed |= reapers[i].failed;
		from_ring += reapers[i].from_ring;
		from_call += reapers[i].from_call;
	}
	if (failed || !all_seen())
		return 1;
	printf("%d copying reapers: %u events from the ring, %u through aio2_getevents\n", REAPERS,
	       from_ring, from_call);
	if (from_ring == 0)
		return fprintf(stderr, "no event came from the ring\n"), 1;

	if ((err = aio2_destroy(ctx)) != 0) {
		fprintf(stderr, "destroy: %s\n", aio2_strerror(err));
		return 1;
	}
	return 0;
}
