/* mprobe: the musl oracle's client, linked with musl (make build/musl-mprobe).
 * For each name: getaddrinfo with each AI_* flag and family combination
 * (services: none, numeric, by name), gethostbyname, gethostbyname2
 * (AF_INET6) and gethostbyname_r grown on ERANGE; every error code, h_errno
 * and the canonical name.  "mprobe threads N NAME..." resolves in N threads
 * at once, "mprobe fork NAME..." in a child and the parent; both print the
 * same lines, sorted by the caller.  The oracle compares the output with
 * and without libdnscache-musl.so. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each line is built whole and written with one call: threads print
 * at once. */
static __thread char line[8192];
static __thread size_t lo;
#pragma GCC diagnostic ignored "-Wformat-truncation"
#define out(...) (lo += (size_t)snprintf(line + lo, lo < sizeof line ? sizeof line - lo : 0, __VA_ARGS__))
static void flush(void)
{
	if (lo > sizeof line - 2)
		lo = sizeof line - 2;
	line[lo++] = '\n';
	fwrite(line, 1, lo, stdout);
	lo = 0;
}

static void ai_line(const char *n, const char *what, int family, int flags, const char *serv)
{
	struct addrinfo h = {.ai_family = family, .ai_flags = flags}, *res = NULL;
	int rc = getaddrinfo(n, serv, &h, &res);
	out("%s %s: rc=%d", n, what, rc);
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char s[INET6_ADDRSTRLEN] = "?";
		int port;
		if (a->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, s, sizeof s);
			port = ntohs(((struct sockaddr_in *)a->ai_addr)->sin_port);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, s, sizeof s);
			port = ntohs(((struct sockaddr_in6 *)a->ai_addr)->sin6_port);
		}
		out(" %s/%d/%d/%d", s, port, a->ai_socktype, a->ai_protocol);
		if (a == res && a->ai_canonname)
			out("(%s)", a->ai_canonname);
	}
	flush();
	if (res)
		freeaddrinfo(res);
}

static void hent(const char *n, const char *what, struct hostent *h, int herr)
{
	out("%s %s:", n, what);
	if (!h) {
		out(" h_errno=%d", herr);
		flush();
		return;
	}
	out(" name=%s", h->h_name);
	for (char **a = h->h_aliases; *a; a++)
		out(" alias=%s", *a);
	for (char **a = h->h_addr_list; *a; a++) {
		char s[INET6_ADDRSTRLEN];
		inet_ntop(h->h_addrtype, *a, s, sizeof s);
		out(" %s", s);
	}
	flush();
}

static void probe(const char *n, bool all)
{
	ai_line(n, "unspec", AF_UNSPEC, 0, NULL);
	if (!all)
		return;
	ai_line(n, "canon", AF_UNSPEC, AI_CANONNAME, "80");
	ai_line(n, "inet/http", AF_INET, 0, "http");
	ai_line(n, "inet6", AF_INET6, 0, NULL);
	ai_line(n, "v4mapped", AF_INET6, AI_V4MAPPED, NULL);
	ai_line(n, "v4mapped-all", AF_INET6, AI_V4MAPPED | AI_ALL, "53");
	ai_line(n, "addrconfig", AF_UNSPEC, AI_ADDRCONFIG, NULL);
	ai_line(n, "numericserv", AF_UNSPEC, AI_NUMERICSERV, "domain");
	ai_line(n, "numerichost", AF_UNSPEC, AI_NUMERICHOST, NULL);
	ai_line(n, "passive", AF_UNSPEC, AI_PASSIVE, "8080");
	ai_line(n, "badflags", AF_UNSPEC, 0x10000, NULL);
	ai_line(n, "badfamily", 12345, 0, NULL);
	hent(n, "gethostbyname", gethostbyname(n), h_errno);
	hent(n, "gethostbyname2/6", gethostbyname2(n, AF_INET6), h_errno);
	size_t len = 8;
	char *buf = malloc(len);
	struct hostent he, *r = NULL;
	int herr = 0, rc, retries = 0;
	while ((rc = gethostbyname_r(n, &he, buf, len, &r, &herr)) == ERANGE) {
		retries++;
		buf = realloc(buf, len *= 2);
	}
	out("%s gethostbyname_r: rc=%d retries=%d", n, rc, retries > 0);
	flush();
	hent(n, "gethostbyname_r", rc ? NULL : r, herr);
	free(buf);
}

static char **names;
static int nnames;
static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < nnames; i++)
		probe(names[i], false);
	return NULL;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && strcmp(argv[1], "threads") == 0) {
		int n = atoi(argv[2]);
		names = argv + 3;
		nnames = argc - 3;
		pthread_t t[64];
		for (int i = 0; i < n && i < 64; i++)
			pthread_create(&t[i], NULL, worker, NULL);
		for (int i = 0; i < n && i < 64; i++)
			pthread_join(t[i], NULL);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "fork") == 0) {
		for (int i = 2; i < argc; i++)
			probe(argv[i], false);
		pid_t p = fork();
		for (int i = 2; i < argc; i++)
			probe(argv[i], false);
		if (p == 0)
			_exit(0);
		int st;
		waitpid(p, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	for (int i = 1; i < argc; i++)
		probe(argv[i], true);
	return 0;
}
