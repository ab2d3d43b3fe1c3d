/* keep: what programs do to file descriptors, against the kept connection.
 * Usage: keep MODE NAME...  Each mode resolves the names (getaddrinfo,
 * AF_INET), does something to the process's fds, resolves them again, and
 * prints the answers (the shell compares them with glibc's) plus "ok" or
 * "FAIL why" lines.  Modes:
 *   fork       a child resolves while the parent does
 *   exec       re-executes itself: no socket may survive exec
 *   closefrom  close_range(3, ~0) then a file takes the freed numbers
 *   dup2       a file dup2'ed over every socket fd
 *   rlimit     RLIMIT_NOFILE 4: the program's own open() still succeeds
 *   threads N  N threads resolving at once; sockets left open are counted */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int fails;
#define FAIL(...) (fails++, printf("FAIL " __VA_ARGS__), printf("\n"))

static void resolve(const char *tag, const char *name, char *out, size_t outlen)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(name, NULL, &hints, &res);
	size_t o = (size_t)snprintf(out, outlen, "%s %s:", tag, name);
	if (rc != 0) {
		snprintf(out + o, outlen - o, " error %d", rc);
		return;
	}
	for (struct addrinfo *a = res; a && o < outlen; a = a->ai_next) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, s, sizeof s);
		o += (size_t)snprintf(out + o, outlen - o, " %s", s);
	}
	freeaddrinfo(res);
}

static void all(const char *tag, int argc, char **argv)
{
	char line[1024];
	for (int i = 0; i < argc; i++) {
		resolve(tag, argv[i], line, sizeof line);
		printf("%s\n", line);
	}
	fflush(stdout);
}

/* sockets lists the process's socket fds into fds (returns how many). */
static int sockets(int *fds, int max)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[300], l[64];
		snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(p, l, sizeof l - 1);
		if (k > 0) {
			l[k] = 0;
			if (strncmp(l, "socket:", 7) == 0 && n < max)
				fds[n++] = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return n;
}

static const char *payload = "the program's own file\n";

static int own_file(void)
{
	char path[] = "/tmp/dnscache-keepXXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (fd < 0 || write(fd, payload, strlen(payload)) != (ssize_t)strlen(payload))
		FAIL("own file");
	return fd;
}

static void check_file(int fd, const char *what)
{
	char buf[256] = {0};
	off_t end = lseek(fd, 0, SEEK_CUR);
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (end != (off_t)strlen(payload) || n != (ssize_t)strlen(payload) || strcmp(buf, payload) != 0)
		FAIL("%s: the program's file was written to (offset %ld, %zd bytes)", what, (long)end, n);
	else
		printf("ok %s: the program's file is untouched\n", what);
}

static int nthreads_names;
static char **thread_names;
static void *worker(void *arg)
{
	char line[1024];
	long i = (long)arg;
	for (int k = 0; k < 3; k++) {
		const char *name = thread_names[(i + k) % nthreads_names];
		resolve("t", name, line, sizeof line);
		if (strstr(line, "error"))
			__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1];
	int fds[64];
	if (strcmp(mode, "exec2") == 0) {
		int n = sockets(fds, 64);
		if (n)
			FAIL("exec: %d socket(s) survived exec (fd %d)", n, fds[0]);
		else
			printf("ok exec: no socket survived exec\n");
		all("after", argc - 2, argv + 2);
		return fails != 0;
	}
	if (strcmp(mode, "threads") == 0) {
		int nt = atoi(argv[2]);
		thread_names = argv + 3;
		nthreads_names = argc - 3;
		all("before", argc - 3, argv + 3);
		pthread_t *t = calloc((size_t)nt, sizeof *t);
		int started = 0;
		for (int i = 0; i < nt; i++) {
			pthread_attr_t a;
			pthread_attr_init(&a);
			pthread_attr_setstacksize(&a, 256 * 1024);
			if (pthread_create(&t[i], &a, worker, (void *)(long)i) == 0)
				started++;
			pthread_attr_destroy(&a);
		}
		for (int i = 0; i < nt; i++)
			pthread_join(t[i], NULL);
		int n = sockets(fds, 64);
		printf("%s threads: %d started, %d lookups failed, %d socket(s) left open\n",
		       fails ? "FAIL" : "ok", started, fails, n);
		printf("sockets %d\n", n);
		all("after", argc - 3, argv + 3);
		return fails != 0;
	}
	char **names = argv + 2;
	int nn = argc - 2;
	all("before", nn, names);
	if (strcmp(mode, "fork") == 0) {
		pid_t p = fork();
		if (p == 0) {
			all("child", nn, names);
			_exit(0);
		}
		all("parent", nn, names);
		int st;
		waitpid(p, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			FAIL("fork: child status %d", st);
	} else if (strcmp(mode, "exec") == 0) {
		char **args = calloc((size_t)argc + 1, sizeof *args);
		args[0] = argv[0];
		args[1] = "exec2";
		for (int i = 2; i < argc; i++)
			args[i] = argv[i];
		execv("/proc/self/exe", args);
		FAIL("exec: %s", strerror(errno));
	} else if (strcmp(mode, "closefrom") == 0) {
		if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
			FAIL("close_range: %s", strerror(errno));
		int fd = own_file(); /* takes the lowest number: a kept socket's */
		all("after", nn, names);
		check_file(fd, "closefrom");
	} else if (strcmp(mode, "dup2") == 0) {
		int fd = own_file();
		int n = sockets(fds, 64);
		for (int i = 0; i < n; i++)
			dup2(fd, fds[i]);
		printf("dup2 over %s socket\n", n ? "a" : "no");
		all("after", nn, names);
		check_file(fd, "dup2");
	} else if (strcmp(mode, "rlimit") == 0) {
		struct rlimit rl = {4, 4};
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			FAIL("setrlimit");
		for (int r = 0; r < 3; r++) {
			all("after", nn, names);
			int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				FAIL("rlimit: the program's open() failed after lookups: %s", strerror(errno));
			else
				close(fd);
		}
		printf("%s rlimit: open() after lookups\n", fails ? "FAIL" : "ok");
	}
	return fails != 0;
}
