/* SPDX-License-Identifier: MIT */
/*
 * posix_preload_prog - a program linked against glibc alone, as any
 * program using POSIX AIO is, that checks whose aio_* it runs:
 *
 *   posix_preload_prog aio2 [TRACE]   expects libaio2-posix.so (LD_PRELOAD)
 *   posix_preload_prog glibc          expects glibc's own
 *
 * It checks (1) where every name binds, through the program's own
 * references: the default versions (GLIBC_2.34) and the compat ones a
 * program built against an older glibc holds (GLIBC_2.2.5, and GLIBC_2.4
 * for lio_listio); (2) behaviour only aio2 has: a read on a socket whose
 * write is blocked completes, where glibc queues it behind the write; (3)
 * with TRACE (AIO2_TRACE), that the trace file gets a record for each
 * request.
 * Exit 0 when everything is as expected, 1 otherwise.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* References to the compat versions, as an older program has them. */
extern int aio_read_2_2_5(struct aiocb *);
extern int aio_error_2_2_5(const struct aiocb *);
extern int aio_suspend64_2_2_5(const struct aiocb64 *const[], int, const struct timespec *);
extern int lio_listio_2_2_5(int, struct aiocb *const[], int, struct sigevent *);
extern int lio_listio_2_4(int, struct aiocb *const[], int, struct sigevent *);
extern int lio_listio64_2_4(int, struct aiocb64 *const[], int, struct sigevent *);
__asm__(".symver aio_read_2_2_5,aio_read@GLIBC_2.2.5");
__asm__(".symver aio_error_2_2_5,aio_error@GLIBC_2.2.5");
__asm__(".symver aio_suspend64_2_2_5,aio_suspend64@GLIBC_2.2.5");
__asm__(".symver lio_listio_2_2_5,lio_listio@GLIBC_2.2.5");
__asm__(".symver lio_listio_2_4,lio_listio@GLIBC_2.4");
__asm__(".symver lio_listio64_2_4,lio_listio64@GLIBC_2.4");

static int failures;

static void expect(int ok, const char *what) {
	if (!ok) {
		fprintf(stderr, "posix_preload_prog: FAILED: %s\n", what);
		failures++;
	}
}

static void check_binding(const char *name, void *fn, int want_aio2) {
	Dl_info info;
	char what[256];
	const char *file = "?";
	if (dladdr(fn, &info) != 0 && info.dli_fname != NULL)
		file = info.dli_fname;
	const int is_aio2 = strstr(file, "libaio2-posix") != NULL;
	snprintf(what, sizeof what, "%s binds to %s, expected %s", name, file,
		 want_aio2 ? "libaio2-posix.so" : "libc");
	expect(is_aio2 == want_aio2 && (want_aio2 || strstr(file, "libc.so") != NULL), what);
}

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to `seconds` for `cb`, with the compat aio_error; 1 when done. */
static int wait_done(struct aiocb *cb, double seconds) {
	const double end = now_s() + seconds;
	const struct aiocb *list[1] = {cb};
	while (aio_error_2_2_5(cb) == EINPROGRESS) {
		if (now_s() > end)
			return 0;
		const struct timespec step = {0, 10 * 1000 * 1000};
		aio_suspend(list, 1, &step);
	}
	return 1;
}

/* 1 when a read on a socket whose aio_write is blocked completes within
 * 300 ms (aio2), 0 when it waits behind the write (glibc). */
static int read_passes_blocked_write(void) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	const int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	static char big[256 * 1024];
	struct aiocb w, r;
	memset(&w, 0, sizeof w);
	memset(&r, 0, sizeof r);
	w.aio_fildes = sv[0];
	w.aio_buf = big;
	w.aio_nbytes = sizeof big;
	w.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (aio_write(&w) != 0)
		return -1;
	struct timespec pause = {0, 30 * 1000 * 1000};
	nanosleep(&pause, NULL);
	char c = 0;
	if (write(sv[1], "r", 1) != 1)
		return -1;
	r.aio_fildes = sv[0];
	r.aio_buf = &c;
	r.aio_nbytes = 1;
	r.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (aio_read_2_2_5(&r) != 0)
		return -1;
	const int passed = wait_done(&r, 0.3);
	/* Drain so that the write finishes, then everything is done. */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	static char sink[65536];
	const double end = now_s() + 10;
	while ((aio_error(&w) == EINPROGRESS || aio_error(&r) == EINPROGRESS) && now_s() < end) {
		while (read(sv[1], sink, sizeof sink) > 0) {
		}
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	}
	expect(aio_error(&w) == 0 && aio_return(&w) == (ssize_t)sizeof big, "the blocked write completes");
	expect(aio_error(&r) == 0 && aio_return(&r) == 1 && c == 'r', "the read completes");
	close(sv[0]);
	close(sv[1]);
	return passed;
}

/* Requests through the compat names and lio_listio's three versions. */
static void compat_calls(void) {
	char path[] = "/tmp/posix-preload-XXXXXX";
	const int fd = mkstemp(path);
	if (fd < 0) {
		expect(0, "a scratch file");
		return;
	}
	unlink(path);
	static char data[4][512];
	struct aiocb cbs[4];
	struct aiocb *list[4];
	for (int i = 0; i < 4; i++) {
		memset(&cbs[i], 0, sizeof cbs[i]);
		memset(data[i], 'a' + i, sizeof data[i]);
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = data[i];
		cbs[i].aio_nbytes = sizeof data[i];
		cbs[i].aio_offset = (off_t)(i * 512);
		cbs[i].aio_lio_opcode = LIO_WRITE;
		list[i] = &cbs[i];
	}
	expect(lio_listio(LIO_WAIT, list, 1, NULL) == 0, "lio_listio@@GLIBC_2.34");
	expect(lio_listio_2_4(LIO_WAIT, list + 1, 1, NULL) == 0, "lio_listio@GLIBC_2.4");
	expect(lio_listio_2_2_5(LIO_WAIT, list + 2, 1, NULL) == 0, "lio_listio@GLIBC_2.2.5");
	expect(lio_listio64_2_4(LIO_WAIT, (struct aiocb64 *const *)(list + 3), 1, NULL) == 0,
	       "lio_listio64@GLIBC_2.4");
	char back[2048];
	expect(pread(fd, back, sizeof back, 0) == 2048 && back[0] == 'a' && back[1023] == 'b' &&
		       back[1024] == 'c' && back[2047] == 'd',
	       "the lio_listio writes landed");
	struct aiocb64 rd;
	memset(&rd, 0, sizeof rd);
	char got[16];
	rd.aio_fildes = fd;
	rd.aio_buf = got;
	rd.aio_nbytes = sizeof got;
	rd.aio_offset = 1536;
	expect(aio_read64(&rd) == 0, "aio_read64");
	const struct aiocb64 *l64[1] = {&rd};
	while (aio_error64(&rd) == EINPROGRESS)
		aio_suspend64_2_2_5(l64, 1, NULL);
	expect(aio_return64(&rd) == 16 && got[0] == 'd', "aio_read64 read back");
	close(fd);
}

/* Request records (kind 1 of the trace file's 128-byte records, the first
 * of them the header) in `path`; the zero records that pad each process's
 * chunk of the file are not counted. */
static int trace_requests(const char *path) {
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return 0;
	int n = 0;
	unsigned char rec[128];
	while (fread(rec, sizeof rec, 1, f) == 1) {
		uint32_t kind;
		memcpy(&kind, rec, sizeof kind);
		if (kind == 1)
			n++;
	}
	fclose(f);
	return n;
}

int main(int argc, char **argv) {
	if (argc < 2 || (strcmp(argv[1], "aio2") != 0 && strcmp(argv[1], "glibc") != 0)) {
		fprintf(stderr, "usage: posix_preload_prog aio2|glibc [TRACE]\n");
		return 2;
	}
	const int want_aio2 = strcmp(argv[1], "aio2") == 0;
	const char *trace = argc > 2 ? argv[2] : NULL;
	if (trace != NULL) {
		const int t = open(trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (t >= 0)
			close(t);
	}

	check_binding("aio_read", (void *)aio_read, want_aio2);
	check_binding("aio_read64", (void *)aio_read64, want_aio2);
	check_binding("aio_write", (void *)aio_write, want_aio2);
	check_binding("aio_write64", (void *)aio_write64, want_aio2);
	check_binding("aio_fsync", (void *)aio_fsync, want_aio2);
	check_binding("aio_fsync64", (void *)aio_fsync64, want_aio2);
	check_binding("aio_error", (void *)aio_error, want_aio2);
	check_binding("aio_error64", (void *)aio_error64, want_aio2);
	check_binding("aio_return", (void *)aio_return, want_aio2);
	check_binding("aio_return64", (void *)aio_return64, want_aio2);
	check_binding("aio_suspend", (void *)aio_suspend, want_aio2);
	check_binding("aio_suspend64", (void *)aio_suspend64, want_aio2);
	check_binding("aio_cancel", (void *)aio_cancel, want_aio2);
	check_binding("aio_cancel64", (void *)aio_cancel64, want_aio2);
	check_binding("lio_listio", (void *)lio_listio, want_aio2);
	check_binding("lio_listio64", (void *)lio_listio64, want_aio2);
	check_binding("aio_init", (void *)aio_init, want_aio2);
	check_binding("aio_read@GLIBC_2.2.5", (void *)aio_read_2_2_5, want_aio2);
	check_binding("aio_error@GLIBC_2.2.5", (void *)aio_error_2_2_5, want_aio2);
	check_binding("aio_suspend64@GLIBC_2.2.5", (void *)aio_suspend64_2_2_5, want_aio2);
	check_binding("lio_listio@GLIBC_2.2.5", (void *)lio_listio_2_2_5, want_aio2);
	check_binding("lio_listio@GLIBC_2.4", (void *)lio_listio_2_4, want_aio2);
	check_binding("lio_listio64@GLIBC_2.4", (void *)lio_listio64_2_4, want_aio2);

	const int passed = read_passes_blocked_write();
	expect(passed >= 0, "the socket test ran");
	if (want_aio2)
		expect(passed == 1, "aio2 runs a read beside a blocked write on its descriptor");
	else
		expect(passed == 0, "glibc queues a read behind a blocked write on its descriptor");
	compat_calls();

	if (trace != NULL) {
		/* 2 socket requests, 4 lio_listio writes, 1 aio_read64. */
		const int want = 7;
		int got = 0;
		for (int i = 0; i < 300 && (got = trace_requests(trace)) < want; i++)
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
		char what[128];
		snprintf(what, sizeof what, "the trace has %d request records, expected %d", got, want);
		expect(want_aio2 ? got == want : got == 0, what);
	}
	if (failures == 0)
		printf("posix_preload_prog: %s: every check passed\n", argv[1]);
	return failures == 0 ? 0 : 1;
}
