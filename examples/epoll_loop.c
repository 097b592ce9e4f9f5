/* SPDX-License-Identifier: MIT */
/*
 * An epoll loop that aio2 joins through its context's eventfd
 * (AIO2_SETUP_EVENTFD). The loop watches two descriptors: the eventfd,
 * signalled whenever aio2 posts events, and a timerfd of its own. A round
 * of requests is 32 reads of a file at known offsets and one read of a
 * pipe; the loop submits one round at startup and another each time the
 * timer fires, when it also writes to the pipe, so that a pipe read stays
 * pending from one tick to the next. When the eventfd is readable the loop
 * reaps from the mapped ring: aio2_reap_events until the ring is empty, and
 * aio2_getevents with a zero timeout when the ring answers -EAGAIN (events
 * on the overflow list, or completions io_uring holds, as the pending pipe
 * reads are when the context uses io_uring). Nothing in the loop blocks but
 * epoll_wait.
 *
 *   build/bin/example_epoll_loop [--no-uring]
 *
 * Exits 0 when every file read returned the bytes the file holds at its
 * offset, every pipe read the bytes written, each event came exactly once,
 * and the timer drove every round.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "aio2/aio2.h"

#define ROUNDS 4     /* one at startup, the others on timer ticks */
#define READS 32     /* per round */
#define BLOCK 512    /* bytes per read */
#define EVENTS (ROUNDS * (READS + 1))
#define PIPE_MSG "aio2pipe" /* 8 bytes, written once a tick */
#define TAG_EVENTFD 1u
#define TAG_TIMER 2u

static unsigned char file_data[READS * BLOCK];
static unsigned char bufs[ROUNDS][READS + 1][BLOCK]; /* [READS]: the pipe read */
static unsigned seen[ROUNDS][READS + 1];
static int from_ring, from_call; /* events reaped each way */

/* The byte at `off` in the file: a pattern no two blocks share. */
static unsigned char pattern(size_t off)
{
	return (unsigned char)(off * 7u + off / BLOCK);
}

/* user_data: round * (READS + 1) + i, i = READS for the pipe read. */
static int submit_round(aio2_ctx *ctx, int fd, int pipe_rd, unsigned round)
{
	_Alignas(8) struct aio2_iocb io[READS + 1];
	const uint64_t base = (uint64_t)round * (READS + 1);
	ssize_t n;
	unsigned i;

	for (i = 0; i < READS; i++)
		aio2_prep(&io[i], SYS_pread64, base + i, (uint64_t)fd,
			  (uint64_t)(uintptr_t)bufs[round][i], BLOCK, (uint64_t)i * BLOCK, 0, 0);
	aio2_prep(&io[READS], SYS_read, base + READS, (uint64_t)pipe_rd,
		  (uint64_t)(uintptr_t)bufs[round][READS], sizeof PIPE_MSG - 1, 0, 0, 0);
	n = aio2_submit(ctx, io, sizeof io);
	if (n != (ssize_t)sizeof io) {
		fprintf(stderr, "submit: %s\n", n < 0 ? aio2_strerror((int)n) : "partly refused");
		return -1;
	}
	return 0;
}

/* Checks one event; returns 0 when its read is right and new. */
static int check(const struct aio2_event *ev)
{
	const unsigned round = (unsigned)(ev->user_data / (READS + 1));
	const unsigned i = (unsigned)(ev->user_data % (READS + 1));
	unsigned b;

	if (ev->user_data >= EVENTS || seen[round][i]++) {
		fprintf(stderr, "unexpected event %llu\n", (unsigned long long)ev->user_data);
		return -1;
	}
	if (i == READS) {
		if (ev->res != sizeof PIPE_MSG - 1 ||
		    memcmp(bufs[round][READS], PIPE_MSG, sizeof PIPE_MSG - 1) != 0) {
			fprintf(stderr, "pipe read %u: res %lld\n", round, (long long)ev->res);
			return -1;
		}
		return 0;
	}
	if (ev->res != BLOCK) {
		fprintf(stderr, "read %u.%u: res %lld\n", round, i, (long long)ev->res);
		return -1;
	}
	for (b = 0; b < BLOCK; b++)
		if (bufs[round][i][b] != pattern((size_t)i * BLOCK + b)) {
			fprintf(stderr, "read %u.%u: wrong byte at %u\n", round, i, b);
			return -1;
		}
	return 0;
}

/* Checks the events in buf[0..n); returns how many, or -1. */
static int check_all(const void *buf, size_t n)
{
	const struct aio2_event *ev;
	int count = 0;

	for (ev = aio2_event_next(buf, n, NULL); ev; ev = aio2_event_next(buf, n, ev)) {
		if (check(ev))
			return -1;
		count++;
	}
	return count;
}

/* The eventfd fired: reset it, then reap everything there is. Returns the
 * events reaped, or -1. */
static int drain(aio2_ctx *ctx, struct aio2_ring *ring, int efd)
{
	static const struct timespec zero = {0, 0};
	_Alignas(8) unsigned char buf[4096];
	uint64_t ticks;
	int total = 0;

	/* Reset it first: a post after this read signals it again. */
	if (read(efd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) {
		perror("read eventfd");
		return -1;
	}
	for (;;) {
		int64_t n = aio2_reap_events(ring, buf, sizeof buf);
		int *from = &from_ring, got;

		if (n == -EAGAIN) {
			from = &from_call;
			/* The ring is empty, but aio2 holds events elsewhere or
			 * needs a call: ask without waiting. */
			n = aio2_getevents(ctx, 0, buf, sizeof buf, &zero);
			if (n == 0)
				return total; /* nothing yet: the eventfd will say */
		}
		if (n < 0) {
			fprintf(stderr, "reap: %s\n", aio2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			return total;
		if ((got = check_all(buf, (size_t)n)) < 0)
			return -1;
		*from += got;
		total += got;
	}
}

int main(int argc, char **argv)
{
	struct aio2_params p;
	struct epoll_event ev;
	struct itimerspec every = {{0, 5000000}, {0, 5000000}}; /* 5 ms */
	char path[] = "/tmp/aio2-epoll-XXXXXX";
	unsigned rounds = 1, writes = 0, i;
	int reaped = 0, err, fd, efd, tfd, ep, pipe_fds[2];
	struct aio2_ring *ring;
	aio2_ctx *ctx;

	memset(&p, 0, sizeof p);
	p.size = sizeof p;
	p.flags = AIO2_SETUP_EVENTFD;
	if (argc > 1 && strcmp(argv[1], "--no-uring") == 0)
		p.flags |= AIO2_SETUP_NO_URING;
	else if (argc > 1) {
		fprintf(stderr, "usage: %s [--no-uring]\n", argv[0]);
		return 2;
	}
	if ((err = aio2_setup(AIO2_ABI_VERSION, &p, &ctx)) != 0) {
		fprintf(stderr, "setup: %s\n", aio2_strerror(err));
		return 1;
	}
	printf("io_uring %s\n", p.features & AIO2_FEAT_URING ? "in use" : "not in use");
	efd = aio2_eventfd(ctx); /* the context owns it: never closed here */
	ring = aio2_ring_get(ctx);
	if (efd < 0 || ring == NULL || efd != p.eventfd) {
		fprintf(stderr, "no eventfd or ring\n");
		return 1;
	}

	for (i = 0; i < sizeof file_data; i++)
		file_data[i] = pattern(i);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, file_data, sizeof file_data) != (ssize_t)sizeof file_data) {
		perror("temporary file");
		return 1;
	}
	unlink(path);

	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return perror("pipe2"), 1;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &every, NULL) != 0) {
		perror("timerfd/epoll");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.u32 = TAG_EVENTFD;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0)
		return perror("epoll_ctl"), 1;
	ev.data.u32 = TAG_TIMER;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) != 0)
		return perror("epoll_ctl"), 1;

	if (submit_round(ctx, fd, pipe_fds[0], 0))
		return 1;
	while (reaped < EVENTS) {
		struct epoll_event got[2];
		int n = epoll_wait(ep, got, 2, 10000), k;

		if (n == 0) {
			fprintf(stderr, "no event in 10 s: %d of %d reaped\n", reaped, EVENTS);
			return 1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return perror("epoll_wait"), 1;
		}
		for (k = 0; k < n; k++) {
			if (got[k].data.u32 == TAG_TIMER) {
				uint64_t ticks;
				if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
					return perror("read timerfd"), 1;
				/* Feed the pipe read of an earlier round, then
				 * submit the next round. */
				if (writes < rounds) {
					if (write(pipe_fds[1], PIPE_MSG, sizeof PIPE_MSG - 1) !=
					    sizeof PIPE_MSG - 1)
						return perror("write pipe"), 1;
					writes++;
				}
				if (rounds < ROUNDS && submit_round(ctx, fd, pipe_fds[0], rounds++))
					return 1;
			} else {
				const int r = drain(ctx, ring, efd);
				if (r < 0)
					return 1;
				reaped += r;
			}
		}
	}
	printf("%u rounds of %d file reads and a pipe read: %d events reaped when the eventfd "
	       "fired, %d from the ring, %d through aio2_getevents\n",
	       rounds, READS, reaped, from_ring, from_call);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	close(ep);
	close(tfd);
	close(fd);
	if ((err = aio2_destroy(ctx)) != 0) {
		fprintf(stderr, "destroy: %s\n", aio2_strerror(err));
		return 1;
	}
	return rounds == ROUNDS && writes == ROUNDS && reaped == EVENTS ? 0 : 1;
}
