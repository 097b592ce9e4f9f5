/* SPDX-License-Identifier: MIT */
/* The ring's public header used from C11: build a ring, push, peek, reap. */
#include <stdio.h>
#include <string.h>

#include "aio2/ring.h"

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
	puts("c_header_test: ok");
	return 0;
}
