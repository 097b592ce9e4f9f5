// SPDX-License-Identifier: MIT
// clock_calls.so - counts a program's clock_gettime calls (callgrind does
// not see them: the vDSO runs outside its count). Preloaded, it prints the
// count to stderr when the program exits; the difference between two runs
// of different sizes, over the difference in requests, is the calls per
// request at the margin:
//   cc -O2 -shared -fPIC -o clock_calls.so bench/clock_calls.c -ldl
//   AIO2_N=10000 AIO2_QD=32 LD_PRELOAD=./clock_calls.so ./requests pread auto plain attrs
//   AIO2_N=30000 AIO2_QD=32 LD_PRELOAD=./clock_calls.so ./requests pread auto plain attrs
// (./requests: bench/callgrind_requests.c, built as bench/callgrind_requests.sh does.)
// Built with -DCLOCK_COST instead, it is a program that times the call:
//   cc -O2 -DCLOCK_COST -o clock_cost bench/clock_calls.c && ./clock_cost
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#ifdef CLOCK_COST
int main(void)
{
	enum { kCalls = 10000000 };
	struct timespec a, b, t;
	unsigned long sink = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < kCalls; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		sink += (unsigned long)t.tv_nsec;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	const double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
	printf("%.1f ns per clock_gettime(CLOCK_MONOTONIC) (%lu)\n", ns / kCalls, sink & 1);
	return 0;
}
#else
static unsigned long calls;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t c, struct timespec *t)
{
	if (!real_clock_gettime)
		real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	return real_clock_gettime(c, t);
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "clock_gettime calls: %lu\n", calls);
}
#endif
