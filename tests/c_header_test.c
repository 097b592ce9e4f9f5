/* SPDX-License-Identifier: MIT */
/* The public headers used from C11: the ring (build, push, peek, reap), and
 * a context (setup, submit with an attribute, getevents, call, destroy). */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aio2/aio2.h"

#define CHECK(c)                                                   \
	do {                                                       \
		if (!(c)) {                                        \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
			return 1;                                  \
		}                                                  \
	} while (0)

int main(void)
{
	struct aio2_ring *r = NULL;
	struct aio2_ring_rec *rec = NULL;
	const char msg[16] = "hello, ring";
	unsigned char buf[64];

	CHECK(aio2_ring_new(4096, 0, UINT64_MAX - 15, &r) == 0);
	CHECK(aio2_ring_push(r, 3, msg, 8 + sizeof msg) == 0);
	CHECK(aio2_ring_push(r, 4, msg, 8 + sizeof msg) == 0);
	CHECK(aio2_ring_peek(r, &rec) == 1);
	CHECK(rec->len == 24 && rec->flags == 3);
	CHECK(memcmp((const unsigned char *)rec + 8, msg, sizeof msg) == 0);
	aio2_ring_consume(r, rec);
	CHECK(aio2_ring_reap(r, buf, sizeof buf, 0) == 24);
	CHECK(memcmp(buf + 8, msg, sizeof msg) == 0);
	CHECK(aio2_ring_push(r, 0, msg, 12) == -EINVAL);
	CHECK(strlen(aio2_ring_strerror(-EBADMSG)) > 0);
	CHECK(aio2_ring_unmap(r) == 0);

	{
		struct aio2_params p;
		aio2_ctx *ctx = NULL;
		_Alignas(8) unsigned char req[128];
		_Alignas(8) unsigned char evs[256];
		struct aio2_iocb *io = (struct aio2_iocb *)(void *)req;
		const struct aio2_event *ev;
		const struct timespec ts = {10, 0};
		ssize_t got;

		memset(&p, 0, sizeof p);
		p.size = sizeof p;
		CHECK(aio2_setup(AIO2_ABI_VERSION, &p, &ctx) == 0);
		aio2_prep(io, SYS_getppid, 7, 0, 0, 0, 0, 0, 0);
		CHECK(aio2_attr_add(io, sizeof req, 500, 0, "tag", 3) != NULL);
		CHECK(aio2_submit(ctx, req, io->len) == (ssize_t)io->len);
		got = aio2_getevents(ctx, 1, evs, sizeof evs, &ts);
		CHECK(got == 32);
		ev = aio2_event_next(evs, (size_t)got, NULL);
		CHECK(ev != NULL && ev->user_data == 7 && ev->res == getppid());
		CHECK(aio2_event_attr(ev, 0) != NULL && aio2_event_attr(ev, 0)->status == AIO2_ATTR_UNSUPPORTED);
		CHECK(aio2_event_next(evs, (size_t)got, ev) == NULL);
		CHECK(aio2_call(NULL, io, evs, sizeof evs) == 32);
		CHECK(aio2_destroy(ctx) == 0);
	}
	puts("c_header_test: ok");
	return 0;
}
