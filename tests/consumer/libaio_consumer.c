/* SPDX-License-Identifier: MIT */
/* A program built against libaio (<libaio.h>, -laio), run on aio2's
 * libaio.so.1 with LD_LIBRARY_PATH: it checks that io_setup is the one in
 * the directory argv[1] names, then reads the first 4 KiB of its own
 * executable with io_submit and io_getevents and compares them with
 * pread's. Exits 0 when both hold. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <libaio.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: libaio_consumer DIR\n");
		return 2;
	}
	Dl_info info;
	void *fn = dlsym(RTLD_DEFAULT, "io_setup");
	char from[PATH_MAX], want[PATH_MAX];
	if (!fn || !dladdr(fn, &info) || !info.dli_fname || !realpath(info.dli_fname, from) ||
	    !realpath(argv[1], want) || strcmp(dirname(from), want) != 0) {
		fprintf(stderr, "libaio_consumer: io_setup is not from %s\n", argv[1]);
		return 1;
	}

	const int fd = open("/proc/self/exe", O_RDONLY);
	static char got[4096], expect[4096];
	if (fd < 0 || pread(fd, expect, sizeof expect, 0) != (ssize_t)sizeof expect) {
		perror("libaio_consumer: pread");
		return 1;
	}
	io_context_t ctx = 0;
	int rc = io_setup(8, &ctx);
	if (rc != 0) {
		fprintf(stderr, "libaio_consumer: io_setup: %s\n", strerror(-rc));
		return 1;
	}
	struct iocb cb;
	struct iocb *cbs[1] = {&cb};
	io_prep_pread(&cb, fd, got, sizeof got, 0);
	struct io_event ev;
	rc = io_submit(ctx, 1, cbs);
	const int n = rc == 1 ? io_getevents(ctx, 1, 1, &ev, NULL) : rc;
	io_destroy(ctx);
	close(fd);
	if (n != 1 || ev.obj != &cb || ev.res != sizeof got || memcmp(got, expect, sizeof got) != 0) {
		fprintf(stderr, "libaio_consumer: io_submit %d, io_getevents %d\n", rc, n);
		return 1;
	}
	return 0;
}
