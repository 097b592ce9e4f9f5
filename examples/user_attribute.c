/* SPDX-License-Identifier: MIT */
/*
 * A user-defined ("driver specific") attribute: the CPU time the executing
 * thread spent inside the system call, measured with
 * CLOCK_THREAD_CPUTIME_ID just before and just after it. The result comes
 * back in the completion event like any built-in attribute's.
 *
 *   build/bin/example_user_attribute
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aio2/aio2.h"

#define ATTR_THREAD_CPU 0x8200u /* in the user range, >= AIO2_ATTR_USER_MIN */

struct thread_cpu_result {
	uint64_t cpu_ns; /* CPU time of the executing thread during the call */
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The result buffer is ours between the hooks: keep the start there. */
static int before(struct aio2_attr_hook *h)
{
	const uint64_t start = thread_cpu_ns();
	memcpy(h->result, &start, sizeof start);
	return 0; /* run the call */
}

static void after(struct aio2_attr_hook *h)
{
	uint64_t start, spent;
	memcpy(&start, h->result, sizeof start);
	spent = thread_cpu_ns() - start;
	memcpy(h->result, &spent, sizeof spent);
}

int main(void)
{
	static const struct aio2_attr_handler handler = {
		.size = sizeof(struct aio2_attr_handler),
		.id = ATTR_THREAD_CPU,
		.result_size = sizeof(struct thread_cpu_result),
		.paths = AIO2_PATH_POOL | AIO2_PATH_CALL,
		.name = "thread-cpu",
		.before = before,
		.after = after,
	};
	_Alignas(8) unsigned char req[256];
	_Alignas(8) unsigned char evs[256];
	struct aio2_iocb *io = (struct aio2_iocb *)(void *)req;
	static char buf[1 << 16];
	const struct timespec forever = {60, 0};
	const struct aio2_event *ev;
	const struct thread_cpu_result *r;
	aio2_ctx *ctx;
	uint16_t status;
	ssize_t n;
	int err, fd;

	if ((err = aio2_attr_register(&handler)) != 0) {
		fprintf(stderr, "register: %s\n", aio2_strerror(err));
		return 1;
	}
	if ((err = aio2_setup(AIO2_ABI_VERSION, NULL, &ctx)) != 0) {
		fprintf(stderr, "setup: %s\n", aio2_strerror(err));
		return 1;
	}
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC); /* the kernel generates it: real CPU work */
	aio2_prep(io, SYS_read, 1, (uint64_t)fd, (uint64_t)(uintptr_t)buf, sizeof buf, 0, 0, 0);
	aio2_attr_add(io, sizeof req, ATTR_THREAD_CPU, AIO2_ATTR_F_REQUIRED, NULL, 0);
	aio2_attr_add(io, sizeof req, AIO2_ATTR_EXECUTOR, 0, NULL, 0);
	if ((n = aio2_submit(ctx, req, io->len)) != (ssize_t)io->len) {
		fprintf(stderr, "submit: %s\n", aio2_strerror((int)n));
		return 1;
	}
	n = aio2_getevents(ctx, 1, evs, sizeof evs, &forever);
	ev = aio2_event_next(evs, n > 0 ? (size_t)n : 0, NULL);
	if (ev == NULL) {
		fprintf(stderr, "getevents: %s\n", aio2_strerror((int)n));
		return 1;
	}
	r = aio2_event_attr_payload(ev, ATTR_THREAD_CPU, sizeof *r, &status);
	if (r == NULL) {
		fprintf(stderr, "no thread-cpu result (status %u)\n", status);
		return 1;
	}
	printf("read(/proc/self/maps) returned %lld bytes; the worker spent %llu ns of CPU in it\n",
	       (long long)ev->res, (unsigned long long)r->cpu_ns);
	close(fd);
	aio2_destroy(ctx);
	return ev->res > 0 && r->cpu_ns > 0 ? 0 : 1;
}
