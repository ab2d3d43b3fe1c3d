/* stackuse: the stack a lookup really uses, measured on a painted stack.
 *
 * Each case runs in a new thread whose stack (1 MiB, mmap'd) is filled with
 * a pattern before the thread starts; after the call, still in the thread,
 * the lowest byte that no longer holds the pattern is the high-water mark.
 * The figure printed is its depth below the stack pointer at the call: the
 * stack the called function and everything under it touched (the shim's
 * frames and the libc calls it makes, or, for glibc's dns module and musl's
 * own resolver, theirs), and nothing of this program's (its buffers are
 * allocated before the thread starts, results freed after it ends).
 *
 *   stackuse CASE:NAME...    prints "CASE:NAME BYTES rc=RC" per argument
 *
 * Cases, glibc build (the NSS entry points, called directly as glibc's NSS
 * code calls them; the shim preloaded):
 *   gh4      _nss_dnscache_gethostbyname4_r (getaddrinfo's A+AAAA)
 *   gh3      _nss_dnscache_gethostbyname3_r AF_INET6
 *   gh2      _nss_dnscache_gethostbyname2_r AF_INET
 *   gh       _nss_dnscache_gethostbyname_r
 *   erange   _nss_dnscache_gethostbyname_r from 8 bytes, doubled on ERANGE
 *   gba      _nss_dnscache_gethostbyaddr2_r (NAME is an IPv4 address)
 *   dns4 dns3 dnsgba   the same calls to glibc's own dns module
 *                      (_nss_dns_*): the reference for the fallback path
 * Cases, both builds (the public functions):
 *   gai      getaddrinfo AF_UNSPEC, AI_CANONNAME
 *   gai6     getaddrinfo AF_INET6, AI_V4MAPPED|AI_ALL
 *   ghbnr    gethostbyname_r, grown on ERANGE from 8 bytes
 *   ghbn2    gethostbyname2(AF_INET6)
 *   gni      getnameinfo of the IPv4 address NAME, NI_NAMEREQD (a PTR lookup)
 * The test (sections.sh t_footprint) compares the figures with the limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#if defined(__GLIBC__)
#include <nss.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define STACK (1u << 20)
#define PAINT 0xa5

#define BUF 65536

struct job {
	const char *kind, *name;
	void *fn;            /* the NSS function of the case (glibc) */
	char *buf;           /* BUF bytes for the result */
	struct addrinfo *ai; /* getaddrinfo's result, freed after the thread */
	int rc;
	uintptr_t top;       /* the stack pointer at the call */
	uintptr_t deepest;   /* the lowest byte touched */
	unsigned char *stk;
};

/* sp is the stack pointer; MARK records it just before the measured call
 * (this function's frame and locals are above it). */
__attribute__((always_inline)) static inline uintptr_t sp(void)
{
	uintptr_t s;
#if defined(__x86_64__)
	__asm__ volatile("mov %%rsp, %0" : "=r"(s));
#elif defined(__aarch64__)
	__asm__ volatile("mov %0, sp" : "=r"(s));
#else
	s = (uintptr_t)__builtin_frame_address(0);
#endif
	return s;
}
#define MARK(j) ((j)->top = sp())

#if defined(__GLIBC__)
typedef enum nss_status (*gh4_fn)(const char *, struct gaih_addrtuple **, char *, size_t, int *,
                                  int *, int32_t *);
typedef enum nss_status (*gh3_fn)(const char *, int, struct hostent *, char *, size_t, int *,
                                  int *, int32_t *, char **);
typedef enum nss_status (*gh2_fn)(const char *, int, struct hostent *, char *, size_t, int *,
                                  int *);
typedef enum nss_status (*gh_fn)(const char *, struct hostent *, char *, size_t, int *, int *);
typedef enum nss_status (*gba_fn)(const void *, socklen_t, int, struct hostent *, char *, size_t,
                                  int *, int *, int32_t *);

static void *sym(const char *prefix, const char *fn)
{
	char n[128];
	snprintf(n, sizeof n, "_nss_%s_%s", prefix, fn);
	void *f = dlsym(RTLD_DEFAULT, n);
	if (!f) {
		fprintf(stderr, "stackuse: %s not found (is the shim preloaded?)\n", n);
		exit(2);
	}
	return f;
}

/* nss runs one NSS case; the functions are looked up before the thread
 * starts (dlsym's own stack is not the lookup's). */
static int nss(struct job *j)
{
	void *f = j->fn;
	char *buf = j->buf;
	size_t len = BUF;
	int err = 0, herr = 0, rc = -1;
	int32_t ttl = INT32_MAX;
	struct hostent h;
	struct gaih_addrtuple *pat = NULL;
	char *canon = NULL;
	struct in_addr a;
	const char *k = j->kind;
	inet_pton(AF_INET, j->name, &a);
	if (!strcmp(k, "gh4") || !strcmp(k, "dns4")) {
		MARK(j);
		rc = ((gh4_fn)f)(j->name, &pat, buf, len, &err, &herr, &ttl);
	} else if (!strcmp(k, "gh3") || !strcmp(k, "dns3")) {
		MARK(j);
		rc = ((gh3_fn)f)(j->name, AF_INET6, &h, buf, len, &err, &herr, &ttl, &canon);
	} else if (!strcmp(k, "gh2")) {
		MARK(j);
		rc = ((gh2_fn)f)(j->name, AF_INET, &h, buf, len, &err, &herr);
	} else if (!strcmp(k, "gh")) {
		MARK(j);
		rc = ((gh_fn)f)(j->name, &h, buf, len, &err, &herr);
	} else if (!strcmp(k, "erange")) {
		/* glibc's retry protocol: the same call with a bigger buffer. */
		len = 8;
		MARK(j);
		while ((rc = ((gh_fn)f)(j->name, &h, buf, len, &err, &herr)) == NSS_STATUS_TRYAGAIN &&
		       err == ERANGE && len < BUF)
			len *= 2;
	} else if (!strcmp(k, "gba") || !strcmp(k, "dnsgba")) {
		MARK(j);
		rc = ((gba_fn)f)(&a, sizeof a, AF_INET, &h, buf, len, &err, &herr, &ttl);
	}
	return rc;
}

static void *nss_fn(const char *kind)
{
	static const struct { const char *kind, *prefix, *fn; } t[] = {
	    {"gh4", "dnscache", "gethostbyname4_r"}, {"gh3", "dnscache", "gethostbyname3_r"},
	    {"gh2", "dnscache", "gethostbyname2_r"}, {"gh", "dnscache", "gethostbyname_r"},
	    {"erange", "dnscache", "gethostbyname_r"}, {"gba", "dnscache", "gethostbyaddr2_r"},
	    {"dns4", "dns", "gethostbyname4_r"},     {"dns3", "dns", "gethostbyname3_r"},
	    {"dnsgba", "dns", "gethostbyaddr2_r"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(kind, t[i].kind))
			return sym(t[i].prefix, t[i].fn);
	return NULL;
}
#endif

static int public(struct job *j)
{
	const char *k = j->kind;
	if (!strcmp(k, "gai") || !strcmp(k, "gai6")) {
		struct addrinfo h = {.ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME};
		if (!strcmp(k, "gai6")) {
			h.ai_family = AF_INET6;
			h.ai_flags = AI_V4MAPPED | AI_ALL;
		}
		MARK(j);
		return getaddrinfo(j->name, "80", &h, &j->ai);
	}
	if (!strcmp(k, "ghbnr")) {
		size_t len = 8;
		struct hostent h, *res = NULL;
		int herr = 0, rc;
		MARK(j);
		while ((rc = gethostbyname_r(j->name, &h, j->buf, len, &res, &herr)) == ERANGE && len < BUF)
			len *= 2;
		return rc ? rc : res ? 0 : -herr;
	}
	if (!strcmp(k, "ghbn2")) {
		MARK(j);
		struct hostent *h = gethostbyname2(j->name, AF_INET6);
		return h ? 0 : -h_errno;
	}
	if (!strcmp(k, "gni")) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		char host[256];
		inet_pton(AF_INET, j->name, &sa.sin_addr);
		MARK(j);
		return getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, NULL, 0, NI_NAMEREQD);
	}
	fprintf(stderr, "stackuse: unknown case %s\n", k);
	exit(2);
}

static void *run(void *p)
{
	struct job *j = p;
#if defined(__GLIBC__)
	j->rc = j->fn ? nss(j) : public(j);
#else
	j->rc = public(j);
#endif
	/* The high-water mark, read before the thread's exit runs. */
	size_t low = 0;
	while (low < STACK && j->stk[low] == PAINT)
		low++;
	j->deepest = (uintptr_t)j->stk + low;
	return NULL;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char *buf = malloc(BUF);
	if (!buf)
		return 2;
	for (int i = 1; i < argc; i++) {
		char kind[32];
		const char *colon = strchr(argv[i], ':');
		if (!colon || (size_t)(colon - argv[i]) >= sizeof kind) {
			fprintf(stderr, "usage: stackuse CASE:NAME...\n");
			return 2;
		}
		memcpy(kind, argv[i], (size_t)(colon - argv[i]));
		kind[colon - argv[i]] = 0;
		struct job j = {.kind = kind, .name = colon + 1, .buf = buf};
#if defined(__GLIBC__)
		j.fn = nss_fn(kind);
#endif
		j.stk = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (j.stk == MAP_FAILED)
			return 2;
		memset(j.stk, PAINT, STACK);
		pthread_attr_t a;
		pthread_t t;
		pthread_attr_init(&a);
		pthread_attr_setstack(&a, j.stk, STACK);
		if (pthread_create(&t, &a, run, &j) != 0)
			return 2;
		pthread_join(t, NULL);
		pthread_attr_destroy(&a);
		if (j.ai)
			freeaddrinfo(j.ai);
		printf("%s %ld rc=%d\n", argv[i], (long)(j.top - j.deepest), j.rc);
		munmap(j.stk, STACK);
	}
	free(buf);
	return 0;
}
