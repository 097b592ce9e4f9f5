/* SPDX-License-Identifier: MIT */
/* A program of a project outside aio2, in C: one context, a getppid
 * submitted and reaped from the ring, another run by aio2_call, both
 * results checked. Exits 0 when both are this process's parent. */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <aio2/aio2.h>

int main(void) {
	struct aio2_params p = {0};
	p.size = sizeof p;
	aio2_ctx *ctx = NULL;
	int rc = aio2_setup(AIO2_ABI_VERSION, &p, &ctx);
	if (rc != 0) {
		fprintf(stderr, "consumer: aio2_setup: %s\n", aio2_strerror(rc));
		return 1;
	}
	const long parent = (long)getppid();
	int ok = 1;

	struct aio2_iocb io;
	aio2_prep(&io, SYS_getppid, 1, 0, 0, 0, 0, 0, 0);
	const ssize_t sent = aio2_submit(ctx, &io, sizeof io);
	_Alignas(8) unsigned char evs[256];
	const ssize_t n = sent == (ssize_t)sizeof io ? aio2_getevents(ctx, 1, evs, sizeof evs, NULL) : -1;
	const struct aio2_event *ev = n > 0 ? aio2_event_next(evs, (size_t)n, NULL) : NULL;
	if (!ev || ev->user_data != 1 || ev->res != parent) {
		fprintf(stderr, "consumer: aio2_submit %zd, aio2_getevents %zd\n", sent, n);
		ok = 0;
	}

	aio2_prep(&io, SYS_getppid, 2, 0, 0, 0, 0, 0, 0);
	const ssize_t len = aio2_call(ctx, &io, evs, sizeof evs);
	ev = (const struct aio2_event *)evs;
	if (len <= 0 || ev->res != parent) {
		fprintf(stderr, "consumer: aio2_call returned %zd\n", len);
		ok = 0;
	}
	aio2_destroy(ctx);
	return ok ? 0 : 1;
}
