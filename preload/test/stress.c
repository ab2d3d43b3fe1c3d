/* stress: THREADS threads x N getaddrinfo lookups, with fork children
 * resolving meanwhile; fails on any lookup error or an fd count change. */
#define _GNU_SOURCE
#include <dirent.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_per_thread = 500;
static const char *names[] = {"www.example.com.", "v4-s.example.com.", "v6-s.example.com.",
                              "cname2-s.example.com.", "big-s.example.com.", "kubernetes"};
static int failures;

static int fd_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int resolve(int i)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	const char *name = names[i % (sizeof names / sizeof names[0])];
	int rc = getaddrinfo(name, "80", &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", name, gai_strerror(rc));
		return 1;
	}
	freeaddrinfo(res);
	return 0;
}

/* child_resolve is resolve for a child forked from the threaded parent:
 * POSIX allows only async-signal-safe calls there, and glibc's getaddrinfo
 * takes an internal lock (__check_pf, for RFC 6724 sorting) that a fork can
 * leave held by a parent thread, so children use gethostbyname2_r, which
 * reaches the shim through NSS (glibc resets NSS state at fork). */
static int child_resolve(int i)
{
	const char *name = names[i % (sizeof names / sizeof names[0])];
	char buf[8192];
	struct hostent h, *res;
	int herr, rc = gethostbyname2_r(name, AF_INET, &h, buf, sizeof buf, &res, &herr);
	if (rc == 0 && res == NULL && herr == NO_DATA)
		rc = gethostbyname2_r(name, AF_INET6, &h, buf, sizeof buf, &res, &herr);
	if (rc != 0 || res == NULL) {
		fprintf(stderr, "child: %s: rc %d h_errno %d\n", name, rc, herr);
		return 1;
	}
	return 0;
}

static void *worker(void *arg)
{
	int f = 0;
	for (int i = 0; i < n_per_thread; i++)
		f += resolve(i + (int)(long)arg);
	__atomic_add_fetch(&failures, f, __ATOMIC_SEQ_CST);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 8;
	if (argc > 2)
		n_per_thread = atoi(argv[2]);
	resolve(0); /* warm up: first-use allocations are not leaks */
	int before = fd_count();
	pthread_t t[64];
	for (int i = 0; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, worker, (void *)(long)i);
	int child_fail = 0;
	for (int k = 0; k < 8; k++) {
		pid_t p = fork();
		if (p == 0) {
			alarm(30); /* a hung child fails the test instead of hanging it */
			int f = 0;
			for (int i = 0; i < 50; i++)
				f += child_resolve(i);
			_exit(f ? 1 : 0);
		}
		int st;
		waitpid(p, &st, 0);
		child_fail += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	for (int i = 0; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	int after = fd_count();
	printf("lookups=%d failures=%d child_failures=%d fds_before=%d fds_after=%d\n",
	       threads * n_per_thread, failures, child_fail, before, after);
	return failures || child_fail || before != after;
}
