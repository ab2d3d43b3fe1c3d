/* nss.c: the exported glibc NSS entry points of the "dnscache" module.
 *
 * Contracts (glibc nss/nss_module.c, nss/getXXbyYY_r.c, getaddrinfo.c):
 * - a result that does not fit in buflen returns NSS_STATUS_TRYAGAIN with
 *   *errnop = ERANGE and *h_errnop = NETDB_INTERNAL; the caller retries
 *   with a bigger buffer.  The last result is kept thread-locally so that
 *   the retry costs no second round trip.
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
#include <string.h>
#include <sys/socket.h>

#include "dnscache.h"

static __thread struct {
	bool valid;
	int family;
	int64_t at;
	char name[DC_MAXDNAME];
	struct dc_result r;
} last;

/* result returns the lookup result for (name, family), reusing the one
 * kept from an ERANGE return for up to two seconds. */
static struct dc_result *result(const char *name, int family)
{
	int64_t now = dc_now_ms();
	if (last.valid && last.family == family && now - last.at < 2000 &&
	    strcmp(last.name, name) == 0)
		return &last.r;
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	dc_lookup(name, family, &last.r);
	pthread_setcancelstate(old, NULL);
	/* Kept for glibc's ERANGE retry: a result, or the decision to ask dns. */
	last.valid = (last.r.status == NSS_STATUS_SUCCESS || last.r.fallback) &&
	             strlen(name) < sizeof last.name;
	if (last.valid) {
		strcpy(last.name, name);
		last.family = family;
		last.at = now;
	}
	return &last.r;
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
	last.valid = false;
	*errnop = EAGAIN;
	*h_errnop = TRY_AGAIN;
	return NSS_STATUS_UNAVAIL;
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
	struct dc_result *r = result(name, AF_UNSPEC);
	errno = saved;
	if (r->fallback) {
		dc_gh4_fn dns = dc_config()->fallback ? (dc_gh4_fn)dc_dns_fn(DC_DNS_GH4) : NULL;
		if (!dns)
			return no_dns(errnop, h_errnop);
		enum nss_status st = dns(name, pat, buffer, buflen, errnop, h_errnop, ttlp);
		if (st != NSS_STATUS_TRYAGAIN || *errnop != ERANGE)
			last.valid = false;
		dc_debug("%s: glibc's dns said %d", name, st);
		return st;
	}
	if (r->status != NSS_STATUS_SUCCESS)
		return failed(r, errnop, h_errnop);

	/* Tuples first (aligned), then the canonical name. */
	size_t pad = (alignof(struct gaih_addrtuple) -
	              (uintptr_t)buffer % alignof(struct gaih_addrtuple)) % alignof(struct gaih_addrtuple);
	size_t own = (size_t)r->naddrs - (*pat != NULL ? 1 : 0);
	size_t clen = r->canon[0] ? strlen(r->canon) + 1 : 0;
	if (buflen < pad || buflen - pad < own * sizeof(struct gaih_addrtuple) + clen)
		return erange(errnop, h_errnop);
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
	last.valid = false;
	return NSS_STATUS_SUCCESS;
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
	struct dc_result *r = result(name, af);
	errno = saved;
	if (r->fallback) {
		dc_gh3_fn dns = dc_config()->fallback ? (dc_gh3_fn)dc_dns_fn(DC_DNS_GH3) : NULL;
		if (!dns)
			return no_dns(errnop, h_errnop);
		enum nss_status st = dns(name, af, h, buffer, buflen, errnop, h_errnop, ttlp, canonp);
		if (st != NSS_STATUS_TRYAGAIN || *errnop != ERANGE)
			last.valid = false;
		dc_debug("%s: glibc's dns said %d", name, st);
		return st;
	}
	if (r->status != NSS_STATUS_SUCCESS)
		return failed(r, errnop, h_errnop);

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
		return erange(errnop, h_errnop);
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
	last.valid = false;
	return NSS_STATUS_SUCCESS;
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
