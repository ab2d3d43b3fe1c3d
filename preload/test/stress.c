/* stress: THREADS threads x N getaddrinfo lookups, with fork children
 * resolving meanwhile; fails on any lookup error, or when more fds are open
 * at the end than the kept connections account for (DNSCACHE_CONNS, 4). */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
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

/* child_resolve is resolve for a child forked from the threaded parent,
 * through the shim's own NSS entry point.  Not through glibc's
 * gethostbyname2_r or getaddrinfo: POSIX allows only async-signal-safe calls
 * there, and glibc's resolver is not one.  Measured (this test's old flake,
 * about 1 run in 30): the child hung in gethostbyname2_r ->
 * __resolv_context_get -> __lll_lock_wait_private, on the lock of glibc's
 * resolv_conf, which a parent thread held inside getaddrinfo at the fork
 * and which glibc does not reset in the child.  Called directly, the shim
 * shows what is its own: state inherited mid-lookup (pool slots, kept
 * connections, counters) must not hang or mislead the child. */
typedef int (*gh2_fn)(const char *, int, struct hostent *, char *, size_t, int *, int *);
static gh2_fn shim_gh2;

static int child_resolve(int i)
{
	const char *name = names[i % (sizeof names / sizeof names[0])];
	char buf[8192];
	struct hostent h;
	int err = 0, herr = 0;
	int st = shim_gh2(name, AF_INET, &h, buf, sizeof buf, &err, &herr);
	if (st == 0 /* NSS_STATUS_NOTFOUND */ && herr == NO_DATA)
		st = shim_gh2(name, AF_INET6, &h, buf, sizeof buf, &err, &herr);
	if (st != 1 /* NSS_STATUS_SUCCESS */) {
		fprintf(stderr, "child: %s: status %d h_errno %d errno %d\n", name, st, herr, err);
		return 1;
	}
	return 0;
}

/* on_fault: a child that hangs (SIGALRM) or crashes says where. */
static void on_fault(int sig)
{
	void *pc[32];
	char msg[64];
	int n = snprintf(msg, sizeof msg, "child %d: signal %d at:\n", (int)getpid(), sig);
	ssize_t w = write(2, msg, (size_t)n);
	(void)w;
	backtrace_symbols_fd(pc, backtrace(pc, 32), 2);
	_exit(3);
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
	shim_gh2 = (gh2_fn)dlsym(RTLD_DEFAULT, "_nss_dnscache_gethostbyname2_r");
	if (!shim_gh2) {
		fprintf(stderr, "stress: run it under the shim (LD_PRELOAD)\n");
		return 2;
	}
	resolve(0); /* warm up: first-use allocations are not leaks */
	void *pc[1];
	backtrace(pc, 1); /* loads libgcc_s now, not in a signal handler */
	int before = fd_count();
	pthread_t t[64];
	for (int i = 0; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, worker, (void *)(long)i);
	int child_fail = 0;
	for (int k = 0; k < 8; k++) {
		pid_t p = fork();
		if (p == 0) {
			signal(SIGALRM, on_fault);
			signal(SIGSEGV, on_fault);
			signal(SIGABRT, on_fault);
			alarm(20); /* a hung child fails the test instead of hanging it */
			int f = 0;
			for (int i = 0; i < 50; i++)
				f += child_resolve(i);
			_exit(f ? 1 : 0);
		}
		int st;
		waitpid(p, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			child_fail++;
			fprintf(stderr, "child %d: %s %d\n", (int)p, WIFEXITED(st) ? "exit" : "signal",
			        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		}
	}
	for (int i = 0; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	int after = fd_count();
	printf("lookups=%d failures=%d child_failures=%d fds_before=%d fds_after=%d\n",
	       threads * n_per_thread, failures, child_fail, before, after);
	const char *kc = getenv("DNSCACHE_CONNS");
	int kept = kc ? atoi(kc) : 4;
	return failures || child_fail || after > before + kept;
}
