/* gai_bench: getaddrinfo(AF_UNSPEC) latency for one name.
 * Usage: gai_bench NAME [ITERATIONS]; prints one line with
 * n, mean, p50, p90, p99 and max in microseconds.  Run it with and without
 * LD_PRELOAD=libnss_dnscache.so.2 against the same server to compare the
 * shim with glibc's UDP resolver. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: gai_bench NAME [ITERATIONS]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 1000;
	if (n < 1)
		n = 1;
	double *us = calloc((size_t)n, sizeof *us), sum = 0;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int rc = getaddrinfo(argv[1], "443", &hints, &res);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc != 0) {
			fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(rc));
			return 1;
		}
		freeaddrinfo(res);
		us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
		sum += us[i];
	}
	qsort(us, (size_t)n, sizeof *us, cmp);
	printf("n=%d mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n", n, sum / n,
	       us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[n - 1]);
	free(us);
	return 0;
}
