/* nss.c: the exported glibc NSS entry points of the "dnscache" module.
 *
 * Contracts (glibc nss/nss_module.c, nss/getXXbyYY_r.c, getaddrinfo.c):
 * - a result that does not fit in buflen returns NSS_STATUS_TRYAGAIN with
 *   *errnop = ERANGE and *h_errnop = NETDB_INTERNAL; the caller retries
 *   with a bigger buffer.  The result is kept (process-wide, by thread) so
 *   that the retry costs no second round trip.
 * - errno is preserved unless a failure is reported through *errnop.
 * - cancellation is disabled for the duration of the lookup, so a cancelled
 *   thread never leaks the connection or the buffers (it is acted upon at
 *   the caller's next cancellation point).
 * - when the cache cannot answer, glibc's own dns module (nssdns.c) gets
 *   the caller's arguments and its return is ours, byte for byte: the
 *   module sits in dns's place on the hosts line. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <nss.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnscache.h"

/* glibc's ERANGE retry: a result that did not fit in the caller's buffer
 * (or the decision to ask glibc's dns) is kept for the retry that follows
 * at once with a bigger buffer, so that it costs no second round trip.
 * Kept process-wide, not per thread (issue 13: no result lives in a
 * thread's storage): a few slots, chosen by the calling thread, each
 * holding a result by an atomic pointer.  A thread takes a slot's result
 * with an exchange, so a result has one owner at a time and nothing waits
 * (a child forked meanwhile finds the slot empty or the parent's entry,
 * which its pid does not match).  A result another thread left behind is
 * freed when its slot is reused; one older than two seconds is never used. */
#define KEEP_SLOTS 16
#define KEEP_MS 2000
struct kept {
	pthread_t thread;
	int pid;
	int family;
	int64_t at;
	struct dc_result *r;
	char name[];
};
static _Atomic(struct kept *) keep[KEEP_SLOTS];

static _Atomic(struct kept *) *slot_of(pthread_t self)
{
	uint64_t h = (uint64_t)(uintptr_t)self;
	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15u;
	return &keep[(h >> 32) % KEEP_SLOTS];
}

static void drop(struct kept *k)
{
	if (k) {
		free(k->r);
		free(k);
	}
}

/* take returns the result kept for this thread's (name, family), taking it
 * out of its slot, or NULL. */
static struct dc_result *take(const char *name, int family)
{
	pthread_t self = pthread_self();
	_Atomic(struct kept *) *s = slot_of(self);
	if (!atomic_load_explicit(s, memory_order_relaxed))
		return NULL;
	struct kept *k = atomic_exchange_explicit(s, NULL, memory_order_acquire);
	if (!k)
		return NULL;
	if (pthread_equal(k->thread, self) && k->pid == (int)getpid()) {
		struct dc_result *r = NULL;
		if (k->family == family && dc_now_ms() - k->at < KEEP_MS && strcmp(k->name, name) == 0) {
			r = k->r;
			k->r = NULL;
		}
		drop(k); /* ours: used now, or stale */
		return r;
	}
	/* Another thread's: put it back unless the slot was taken meanwhile. */
	struct kept *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(s, &none, k, memory_order_release,
	                                             memory_order_relaxed))
		drop(k);
	return NULL;
}

/* put keeps r for this thread's retry of (name, family), or frees it. */
static void put(const char *name, int family, struct dc_result *r)
{
	size_t l = strlen(name) + 1;
	struct kept *k = malloc(sizeof *k + l);
	if (!k) {
		free(r);
		return;
	}
	k->thread = pthread_self();
	k->pid = (int)getpid();
	k->family = family;
	k->at = dc_now_ms();
	k->r = r;
	memcpy(k->name, name, l);
	drop(atomic_exchange_explicit(slot_of(k->thread), k, memory_order_acq_rel));
}

/* lookup returns the result for (name, family): the one kept for an
 * ERANGE retry, or a new one (NULL: out of memory, ask glibc's dns). */
static struct dc_result *lookup(const char *name, int family)
{
	struct dc_result *r = take(name, family);
	if (r)
		return r;
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	r = dc_lookup(name, family);
	pthread_setcancelstate(old, NULL);
	return r;
}

static enum nss_status erange(int *errnop, int *h_errnop)
{
	*errnop = ERANGE;
	*h_errnop = NETDB_INTERNAL;
	return NSS_STATUS_TRYAGAIN;
}

static enum nss_status failed(const struct dc_result *r, int *errnop, int *h_errnop)
{
	if (r->err)
		*errnop = r->err;
	*h_errnop = r->herrno;
	return (enum nss_status)r->status;
}

/* no_dns: the cache could not answer and glibc's dns is not to be asked
 * (DNSCACHE_FALLBACK=0) or not found: UNAVAIL, as nss_dns without a
 * reachable server. */
static enum nss_status no_dns(int *errnop, int *h_errnop)
{
	*errnop = EAGAIN;
	*h_errnop = TRY_AGAIN;
	return NSS_STATUS_UNAVAIL;
}

/* done ends a call with status st: the result is kept for the retry that
 * follows an ERANGE, else freed. */
static enum nss_status done(const char *name, int family, struct dc_result *r, enum nss_status st,
                            const int *errnop)
{
	int saved = errno; /* free and malloc leave it alone, but not before glibc 2.33 */
	if (st == NSS_STATUS_TRYAGAIN && *errnop == ERANGE && r)
		put(name, family, r);
	else
		free(r);
	errno = saved;
	return st;
}

static void set_ttl(int32_t *ttlp, int32_t ttl)
{
	if (ttlp && *ttlp > ttl)
		*ttlp = ttl;
}

DC_API enum nss_status _nss_dnscache_gethostbyname4_r(const char *name, struct gaih_addrtuple **pat,
                                                      char *buffer, size_t buflen, int *errnop,
                                                      int *h_errnop, int32_t *ttlp)
{
	int saved = errno;
	struct dc_result *r = lookup(name, AF_UNSPEC);
	errno = saved;
	if (!r || r->fallback) {
		dc_gh4_fn dns = dc_config()->fallback ? (dc_gh4_fn)dc_dns_fn(DC_DNS_GH4) : NULL;
		if (!dns) {
			free(r);
			return no_dns(errnop, h_errnop);
		}
		enum nss_status st = dns(name, pat, buffer, buflen, errnop, h_errnop, ttlp);
		dc_debug("%s: glibc's dns said %d", name, st);
		return done(name, AF_UNSPEC, r, st, errnop);
	}
	if (r->status != NSS_STATUS_SUCCESS)
		return done(name, AF_UNSPEC, r, failed(r, errnop, h_errnop), errnop);

	/* Tuples first (aligned), then the canonical name. */
	size_t pad = (alignof(struct gaih_addrtuple) -
	              (uintptr_t)buffer % alignof(struct gaih_addrtuple)) % alignof(struct gaih_addrtuple);
	size_t own = (size_t)r->naddrs - (*pat != NULL ? 1 : 0);
	size_t clen = r->canon[0] ? strlen(r->canon) + 1 : 0;
	if (buflen < pad || buflen - pad < own * sizeof(struct gaih_addrtuple) + clen)
		return done(name, AF_UNSPEC, r, erange(errnop, h_errnop), errnop);
	struct gaih_addrtuple *t = (struct gaih_addrtuple *)(buffer + pad);
	char *cname = (char *)(t + own);
	if (clen)
		memcpy(cname, r->canon, clen);
	struct gaih_addrtuple **link = pat;
	for (int i = 0; i < r->naddrs; i++) {
		struct gaih_addrtuple *n = (i == 0 && *pat) ? *pat : t++;
		memset(n, 0, sizeof *n);
		n->family = r->addrs[i].family;
		n->name = i == 0 && clen ? cname : NULL;
		memcpy(n->addr, r->addrs[i].addr, n->family == AF_INET ? 4 : 16);
		*link = n;
		link = &n->next;
	}
	*link = NULL;
	set_ttl(ttlp, r->ttl);
	*h_errnop = NETDB_SUCCESS;
	return done(name, AF_UNSPEC, r, NSS_STATUS_SUCCESS, errnop);
}

DC_API enum nss_status _nss_dnscache_gethostbyname3_r(const char *name, int af, struct hostent *h,
                                                      char *buffer, size_t buflen, int *errnop,
                                                      int *h_errnop, int32_t *ttlp, char **canonp)
{
	if (af != AF_INET && af != AF_INET6) {
		*errnop = EAFNOSUPPORT;
		*h_errnop = NO_DATA;
		return NSS_STATUS_UNAVAIL;
	}
	int saved = errno;
	struct dc_result *r = lookup(name, af);
	errno = saved;
	if (!r || r->fallback) {
		dc_gh3_fn dns = dc_config()->fallback ? (dc_gh3_fn)dc_dns_fn(DC_DNS_GH3) : NULL;
		if (!dns) {
			free(r);
			return no_dns(errnop, h_errnop);
		}
		enum nss_status st = dns(name, af, h, buffer, buflen, errnop, h_errnop, ttlp, canonp);
		dc_debug("%s: glibc's dns said %d", name, st);
		return done(name, af, r, st, errnop);
	}
	if (r->status != NSS_STATUS_SUCCESS)
		return done(name, af, r, failed(r, errnop, h_errnop), errnop);

	/* Layout: h_addr_list[n+1], h_aliases[naliases] (the last alias is
	 * h_name, its slot holds the NULL), address bytes, alias strings. */
	size_t alen = af == AF_INET ? 4 : 16;
	size_t n = (size_t)r->naddrs, na = (size_t)r->naliases;
	size_t pad = (alignof(char *) - (uintptr_t)buffer % alignof(char *)) % alignof(char *);
	size_t strs = 0;
	for (size_t i = 0; i < na; i++)
		strs += strlen(r->names + r->alias_off[i]) + 1;
	size_t need = (n + 1 + na) * sizeof(char *) + n * alen + strs;
	if (na == 0 || buflen < pad || buflen - pad < need)
		return done(name, af, r, erange(errnop, h_errnop), errnop);
	char **addrs = (char **)(buffer + pad);
	char **aliases = addrs + n + 1;
	char *p = (char *)(aliases + na);
	for (size_t i = 0; i < n; i++) {
		memcpy(p, r->addrs[i].addr, alen);
		addrs[i] = p;
		p += alen;
	}
	addrs[n] = NULL;
	for (size_t i = 0; i < na; i++) {
		size_t l = strlen(r->names + r->alias_off[i]) + 1;
		memcpy(p, r->names + r->alias_off[i], l);
		if (i + 1 < na)
			aliases[i] = p;
		else
			h->h_name = p;
		p += l;
	}
	aliases[na - 1] = NULL;
	h->h_aliases = aliases;
	h->h_addr_list = addrs;
	h->h_addrtype = af;
	h->h_length = (int)alen;
	if (canonp)
		*canonp = h->h_name;
	set_ttl(ttlp, r->ttl);
	*h_errnop = NETDB_SUCCESS;
	return done(name, af, r, NSS_STATUS_SUCCESS, errnop);
}

DC_API enum nss_status _nss_dnscache_gethostbyname2_r(const char *name, int af, struct hostent *h,
                                                      char *buffer, size_t buflen, int *errnop,
                                                      int *h_errnop)
{
	return _nss_dnscache_gethostbyname3_r(name, af, h, buffer, buflen, errnop, h_errnop, NULL,
	                                      NULL);
}

DC_API enum nss_status _nss_dnscache_gethostbyname_r(const char *name, struct hostent *h,
                                                     char *buffer, size_t buflen, int *errnop,
                                                     int *h_errnop)
{
	return _nss_dnscache_gethostbyname3_r(name, AF_INET, h, buffer, buflen, errnop, h_errnop,
	                                      NULL, NULL);
}

/* Reverse lookups are dns's: the module in dns's place passes them on, so
 * that a hosts line's actions see dns's status (without these entry points
 * glibc would treat the module as UNAVAIL and go on to the next source). */
DC_API enum nss_status _nss_dnscache_gethostbyaddr2_r(const void *addr, socklen_t len, int af,
                                                      struct hostent *h, char *buffer, size_t buflen,
                                                      int *errnop, int *h_errnop, int32_t *ttlp)
{
	dc_gba2_fn f = (dc_gba2_fn)dc_dns_fn(DC_DNS_GBA2);
	if (!f) {
		*errnop = ENOENT;
		*h_errnop = NO_RECOVERY;
		return NSS_STATUS_UNAVAIL;
	}
	return f(addr, len, af, h, buffer, buflen, errnop, h_errnop, ttlp);
}

DC_API enum nss_status _nss_dnscache_gethostbyaddr_r(const void *addr, socklen_t len, int af,
                                                     struct hostent *h, char *buffer, size_t buflen,
                                                     int *errnop, int *h_errnop)
{
	dc_gba_fn f = (dc_gba_fn)dc_dns_fn(DC_DNS_GBA);
	if (!f) {
		*errnop = ENOENT;
		*h_errnop = NO_RECOVERY;
		return NSS_STATUS_UNAVAIL;
	}
	return f(addr, len, af, h, buffer, buflen, errnop, h_errnop);
}
