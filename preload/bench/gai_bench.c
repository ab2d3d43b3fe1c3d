/* gai_bench: getaddrinfo(AF_UNSPEC) latency for one name.
 *
 * Usage: gai_bench [-n ITERATIONS] [-w WARMUP] [-u IPV4:PORT] [-l LABEL] [-o FILE] NAME
 * -o appends every sample (microseconds, one per line) to FILE.  Prints one line:
 *   LABEL name=NAME n=N mean_us=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. cpu_us=.. sleeps=..
 * cpu_us is the process's CPU time (user + system, getrusage) per timed lookup,
 * sleeps its voluntary context switches per timed lookup: how often a lookup
 * went to sleep waiting for a reply (each one a wakeup to pay).
 * Run it with and without LD_PRELOAD=libnss_dnscache.so.2 against the same
 * server to compare the shim with glibc's UDP resolver.  -u points glibc's
 * resolver at a server on any port: resolv.conf cannot name a port, so the
 * program patches the thread's resolver state (glibc keeps an application's
 * changes to _res instead of reloading resolv.conf over them).  The search
 * list and ndots come from resolv.conf, LOCALDOMAIN and RES_OPTIONS, which
 * glibc and the shim both read.  WARMUP lookups (default 50) are not timed:
 * they fill the server's cache. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* use_server points glibc's resolver at IPV4:PORT.  musl has no _res: its
 * build (make build/musl-gai_bench) uses resolv.conf's nameservers (port 53)
 * and accepts only -u with port 53 of the first one. */
static int use_server(const char *hostport)
{
#ifndef __GLIBC__
	const char *colon = strrchr(hostport, ':');
	return colon && atoi(colon + 1) != 53 ? -1 : 0;
#else
	char host[64];
	const char *colon = strrchr(hostport, ':');
	size_t hl = colon ? (size_t)(colon - hostport) : strlen(hostport);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, hostport, hl);
	host[hl] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	if (res_init() != 0)
		return -1;
	_res.nscount = 1;
	_res.nsaddr_list[0].sin_family = AF_INET;
	_res.nsaddr_list[0].sin_addr = a;
	_res.nsaddr_list[0].sin_port = htons(colon ? (uint16_t)atoi(colon + 1) : 53);
	return 0;
#endif
}

static double tv_us(const struct timeval *t)
{
	return (double)t->tv_sec * 1e6 + (double)t->tv_usec;
}

static int lookup(const char *name, double *us)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = getaddrinfo(name, "443", &hints, &res);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rc != 0) {
		fprintf(stderr, "gai_bench: %s: %s\n", name, gai_strerror(rc));
		return -1;
	}
	freeaddrinfo(res);
	*us = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
	return 0;
}

int main(int argc, char **argv)
{
	int n = 1000, warm = 50, opt;
	const char *label = "gai", *out = NULL;
	while ((opt = getopt(argc, argv, "n:w:u:l:o:")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'w':
			warm = atoi(optarg);
			break;
		case 'u':
			if (use_server(optarg) != 0) {
				fprintf(stderr, "gai_bench: bad -u %s (want IPV4:PORT)\n", optarg);
				return 2;
			}
			break;
		case 'l':
			label = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	const char *name = argv[optind];
	if (n < 1)
		n = 1;
	double *us = calloc((size_t)n, sizeof *us), sum = 0, t;
	if (!us)
		return 1;
	for (int i = 0; i < warm; i++)
		if (lookup(name, &t) != 0)
			return 1;
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	for (int i = 0; i < n; i++) {
		if (lookup(name, &us[i]) != 0)
			return 1;
		sum += us[i];
	}
	getrusage(RUSAGE_SELF, &r1);
	double cpu = tv_us(&r1.ru_utime) - tv_us(&r0.ru_utime) + tv_us(&r1.ru_stime) - tv_us(&r0.ru_stime);
	double sleeps = (double)(r1.ru_nvcsw - r0.ru_nvcsw);
	if (out) {
		FILE *f = fopen(out, "a");
		if (!f) {
			perror(out);
			return 1;
		}
		for (int i = 0; i < n; i++)
			fprintf(f, "%.1f\n", us[i]);
		fclose(f);
	}
	qsort(us, (size_t)n, sizeof *us, cmp);
	printf("%s name=%s n=%d mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f cpu_us=%.1f sleeps=%.2f\n",
	       label, name, n, sum / n, us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[n - 1], cpu / n, sleeps / n);
	free(us);
	return 0;
usage:
	fprintf(stderr, "usage: gai_bench [-n ITERATIONS] [-w WARMUP] [-u IPV4:PORT] [-l LABEL] [-o FILE] NAME\n");
	return 2;
}
