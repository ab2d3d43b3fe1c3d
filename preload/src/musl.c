/* musl.c: libdnscache-musl.so, the shim for musl programs (Alpine), which
 * have no NSS: getaddrinfo, gethostbyname{,2}{,_r} are interposed, and
 * freeaddrinfo and getnameinfo passed to musl's own (RTLD_NEXT).
 *
 * Only the DNS step is the shim's: the rules are musl 1.2.3's
 * (src/network/lookup_name.c, resolvconf.c), written out here:
 * - resolv.conf: "options" lines give ndots (the first "ndots:" followed by
 *   a digit, at most 15); the last "search" or "domain" line gives the
 *   search list (every word of it); lines over 255 bytes are ignored; no
 *   LOCALDOMAIN, RES_OPTIONS or host name domain;
 * - a name with ndots dots or more, or a final dot, is asked as-is only;
 *   else each search domain in order, then the name as-is;
 * - per candidate, A then AAAA (as the family asks); any SERVFAIL or
 *   missing reply is EAI_AGAIN, any NXDOMAIN means "next candidate", any
 *   other error rcode EAI_FAIL, all of them ending the search; otherwise
 *   the A and AAAA records of both answer sections (at most 48), and the
 *   canonical name from the last valid CNAME target, or EAI_NONAME (which
 *   also ends the search: NODATA is final in musl);
 * - RFC 6724 sorting as musl does it (precedence, scope, label, common
 *   prefix with the source its routing would pick; rules 3, 4, 7 omitted).
 * Everything else goes to musl's own functions, so it is musl's by
 * construction: numeric hosts, names in /etc/hosts, AI_NUMERICHOST, bad
 * flags or families, service names (musl resolves the service of a
 * template lookup and the shim copies its socket types and ports).  The
 * results are laid out as musl 1.2's getaddrinfo lays them out (its
 * struct aibuf), so musl's freeaddrinfo frees them.  When the cache cannot
 * answer (no socket, timeout, bad reply, SERVFAIL), musl's own getaddrinfo
 * or gethostbyname2_r does the whole lookup over UDP, unless
 * DNSCACHE_FALLBACK=0 (tests). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnscache.h"

#define MAXADDRS 48 /* musl's */
#define UNAVAIL (-10000) /* the cache could not answer: musl's own does it */

struct maddr {
	int family;
	unsigned scopeid;
	uint8_t addr[16];
	int sortkey;
};

/* musl 1.2's struct aibuf: musl's freeaddrinfo frees what we build. */
struct aibuf {
	struct addrinfo ai;
	union {
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} sa;
	volatile int lock[1];
	short slot, ref;
};

static void *next(const char *sym)
{
	return dlsym(RTLD_NEXT, sym);
}

/* ---- resolv.conf, musl's way ---- */

struct mconf {
	int ndots;
	char search[256];
	char line[256];
};

static void read_conf(struct mconf *c)
{
	c->ndots = 1;
	c->search[0] = 0;
	size_t len;
	char *text = dc_read_file("/etc/resolv.conf", &len);
	for (char *p = text, *end = text + len; text && p < end;) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((eol ? eol + 1 : end) - p);
		char *line = c->line;
		if (l < sizeof c->line) { /* longer lines are ignored, as fgets does in musl */
			memcpy(line, p, l);
			line[l] = 0;
			if (!strncmp(line, "options", 7) && isspace((unsigned char)line[7])) {
				/* Not strstr: musl's takes 2 KiB of stack for it. */
				char *n = line;
				while ((n = strchr(n, 'n')) && strncmp(n, "ndots:", 6))
					n++;
				if (n && isdigit((unsigned char)n[6])) {
					unsigned long x = strtoul(n + 6, NULL, 10);
					c->ndots = x > 15 ? 15 : (int)x;
				}
			} else if ((!strncmp(line, "domain", 6) || !strncmp(line, "search", 6)) &&
			           isspace((unsigned char)line[6])) {
				char *v = line + 7;
				while (isspace((unsigned char)*v))
					v++;
				/* A bounded copy: no printf machinery on a lookup's stack. */
				size_t n = strnlen(v, sizeof c->search - 1);
				memcpy(c->search, v, n);
				c->search[n] = 0;
			}
		}
		p += l;
	}
	free(text);
}

/* in_hosts: whether musl's name_from_hosts could answer name (a line
 * naming it, whitespace-delimited, case-sensitive): then musl's own
 * getaddrinfo does the lookup. */
__attribute__((noinline)) static bool in_hosts(const char *name)
{
	size_t len, nl = strlen(name);
	char *text = dc_read_file("/etc/hosts", &len);
	bool found = false;
	for (char *p = text, *end = text + len; text && p < end && !found;) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		char *e = eol ? eol : end;
		char *hash = memchr(p, '#', (size_t)(e - p));
		if (hash)
			e = hash;
		for (char *q = p + 1; q + nl <= e && !found; q++)
			found = memcmp(q, name, nl) == 0 && isspace((unsigned char)q[-1]) &&
			        (q + nl == e || isspace((unsigned char)q[nl]));
		p = eol ? eol + 1 : end;
	}
	free(text);
	return found;
}

/* numeric: __lookup_ipliteral's forms (inet_aton's, and IPv6 with a
 * %scope) are musl's own business. */
__attribute__((noinline)) static bool numeric(const char *name)
{
	struct in_addr a4;
	return inet_aton(name, &a4) || strchr(name, ':');
}

/* ---- the replies, musl's way ---- */

/* expand reads a compressed name within the first 512 bytes (musl's
 * __dn_expand bound) into dotted form. */
static bool expand(const uint8_t *pkt, size_t len, size_t off, char *out, size_t outlen)
{
	size_t o = 0;
	int hops = 0;
	if (len > 512)
		len = 512;
	for (;;) {
		if (off >= len)
			return false;
		uint8_t l = pkt[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= len || ++hops > 64)
				return false;
			off = (size_t)((l & 0x3f) << 8 | pkt[off + 1]);
			continue;
		}
		if (l & 0xc0)
			return false;
		if (l == 0)
			break;
		if (off + 1 + l > len || o + l + 2 > outlen)
			return false;
		if (o)
			out[o++] = '.';
		memcpy(out + o, pkt + off + 1, l);
		o += l;
		off += 1 + (size_t)l;
	}
	out[o] = 0;
	return o > 0;
}

static bool valid_hostname(const char *h)
{
	size_t n = strnlen(h, 255);
	if (n - 1 >= 254)
		return false;
	for (const unsigned char *s = (const void *)h; *s; s++)
		if (!(*s >= 0x80 || *s == '.' || *s == '-' || isalnum(*s)))
			return false;
	return true;
}

struct found {
	int cnt;
	struct maddr *addrs;
	char *canon;
};

/* parse walks the answer section as musl's __dns_parse does (type by its
 * low byte, no owner check) and keeps what dns_parse_callback keeps. */
static void parse(const uint8_t *r, size_t rlen, struct found *f)
{
	if (rlen > 512)
		rlen = 512; /* musl 1.2.3 reads at most 512 bytes */
	if (rlen < 12 || (r[3] & 15))
		return;
	const uint8_t *p = r + 12;
	int qd = r[4] * 256 + r[5], an = r[6] * 256 + r[7];
	if (qd + an > 64)
		return;
	while (qd--) {
		while ((size_t)(p - r) < rlen && *p - 1U < 127)
			p++;
		if (p > r + rlen - 6 || *p > 193 || (*p == 193 && p[1] > 254))
			return;
		p += 5 + !!*p;
	}
	while (an--) {
		while ((size_t)(p - r) < rlen && *p - 1U < 127)
			p++;
		if (p > r + rlen - 6 || *p > 193 || (*p == 193 && p[1] > 254))
			return;
		p += 1 + !!*p;
		if (p + 10 > r + rlen)
			return;
		int len = p[8] * 256 + p[9];
		if (p + 10 + len > r + rlen)
			return;
		if (f->cnt >= MAXADDRS)
			return;
		const uint8_t *data = p + 10;
		if (p[1] == DC_T_A || p[1] == DC_T_AAAA) {
			int want = p[1] == DC_T_A ? 4 : 16;
			if (len != want)
				return;
			struct maddr *a = &f->addrs[f->cnt++];
			a->family = want == 4 ? AF_INET : AF_INET6;
			a->scopeid = 0;
			memcpy(a->addr, data, (size_t)want);
		} else if (p[1] == DC_T_CNAME) {
			char tmp[256];
			if (expand(r, rlen, (size_t)(data - r), tmp, sizeof tmp) && valid_hostname(tmp))
				strcpy(f->canon, tmp);
		}
		p += 10 + len;
	}
}

/* remember_nx puts a candidate whose replies were all NXDOMAIN into the
 * negative cache (RFC 2308 §5 TTL from the SOA, as the glibc build does),
 * so that the next lookup skips it: NXDOMAIN means "next candidate" in
 * musl too. */
static void remember_nx(struct dc_batch *b, int i)
{
	struct dc_cand *cd = &b->cand[i];
	uint8_t qwire[DC_MAXCDNAME + 1];
	struct dc_answer *a = malloc(sizeof *a);
	int32_t ttl = INT32_MAX;
	bool all = a && dc_name_to_wire(b->plan->names[i], qwire, sizeof qwire) > 0;
	for (int k = 0; k < b->nq && all; k++)
		all = dc_parse_reply(cd->frame[k], cd->len[k], cd->ids[k], b->qtype[k], qwire, false, a) == 0 &&
		      a->rcode == DC_NXDOMAIN && a->negttl >= 0 && ((ttl = a->negttl < ttl ? a->negttl : ttl), true);
	if (all)
		dc_negcache_put(b->plan->names[i], ttl);
	free(a);
}

/* next_word returns the start of the next blank-separated word of s and
 * its length in *len, or NULL at the end. */
static const char *next_word(const char *s, size_t *len)
{
	while (isspace((unsigned char)*s))
		s++;
	const char *z = s;
	while (*z && !isspace((unsigned char)*z))
		z++;
	*len = (size_t)(z - s);
	return z == s ? NULL : s;
}

/* dns_search: name_from_dns_search over the socket.  Returns the number of
 * addresses, an EAI_* code, or UNAVAIL. */
static int dns_search(const char *name, int family, struct maddr *addrs, char *canon)
{
	const struct dc_config *cfg = dc_config();
	if (cfg->disabled || dc_breaker_open())
		return UNAVAIL;
	size_t l = strlen(name), dots = 0;
	for (size_t i = 0; i < l; i++)
		dots += name[i] == '.';
	if (l == 0)
		return EAI_NONAME;
	bool trailing = name[l - 1] == '.';
	if (trailing)
		l--;
	if (!l || name[l - 1] == '.' || l >= 256)
		return EAI_NONAME;
	struct mconf *mc = malloc(sizeof *mc);
	if (!mc)
		return UNAVAIL;
	read_conf(mc);
	if ((int)dots >= mc->ndots || trailing)
		mc->search[0] = 0;

	/* The candidates: name.domain for each search word that fits, then
	 * the name. */
	int ncand = 1;
	size_t wl;
	for (const char *p = mc->search; (p = next_word(p, &wl)); p += wl)
		ncand++;
	struct dc_plan plan = {.n = 0, .as_is_last = 1};
	plan.names = malloc((size_t)ncand * sizeof *plan.names);
	struct dc_batch b = {.plan = &plan, .pipeline = cfg->pipeline, .io = DC_IO_UNAVAIL};
	b.cand = calloc((size_t)ncand, sizeof *b.cand);
	b.used = calloc(4 * (size_t)ncand, sizeof *b.used);
	int rc = UNAVAIL;
	bool servfail = false;
	if (!plan.names || !b.cand || !b.used)
		goto out;
	for (const char *p = mc->search; (p = next_word(p, &wl)); p += wl) {
		if (wl < 256 - l - 1) {
			char *o = plan.names[plan.n++];
			memcpy(o, name, l);
			o[l] = '.';
			memcpy(o + l + 1, p, wl);
			o[l + 1 + wl] = 0;
		}
	}
	memcpy(plan.names[plan.n], name, l);
	plan.names[plan.n++][l] = 0;
	b.dotted = memchr(name, '.', l) != NULL;
	if (family != AF_INET6)
		b.qtype[b.nq++] = DC_T_A;
	if (family != AF_INET)
		b.qtype[b.nq++] = DC_T_AAAA;
	b.deadline = dc_now_ms() + cfg->timeout_ms;

	for (int i = 0; i < plan.n; i++) {
		int st = dc_batch_replies(&b, i);
		if (st == DC_C_NEGCACHED)
			continue; /* NXDOMAIN: the next candidate */
		if (st == DC_C_BAD) {
			rc = EAI_NONAME; /* res_mkquery refused the name */
			break;
		}
		if (st != DC_C_SENT) {
			rc = UNAVAIL;
			break;
		}
		struct dc_cand *cd = &b.cand[i];
		int verdict = 0; /* 0: look at the answers */
		bool nx = false;
		for (int k = 0; k < b.nq && !verdict && !nx; k++) {
			const uint8_t *f = cd->frame[k];
			int code = cd->len[k] < 4 ? DC_SERVFAIL : (f[3] & 15);
			if (code == DC_SERVFAIL) {
				verdict = EAI_AGAIN;
				servfail = true;
			} else if (code == DC_NXDOMAIN) {
				nx = true;
			} else if (code != DC_NOERROR) {
				verdict = EAI_FAIL;
			}
		}
		if (verdict) {
			rc = verdict;
			break;
		}
		if (nx) {
			remember_nx(&b, i);
			continue;
		}
		struct found fd = {.addrs = addrs, .canon = canon};
		strcpy(canon, plan.names[i]);
		for (int k = 0; k < b.nq; k++)
			parse(cd->frame[k], cd->len[k], &fd);
		rc = fd.cnt ? fd.cnt : EAI_NONAME;
		break;
	}
	if (rc == UNAVAIL && b.io == DC_IO_OK)
		rc = EAI_NONAME; /* every candidate NXDOMAIN */
	if (servfail && cfg->fallback)
		rc = UNAVAIL;
out:
	dc_breaker_record(b.io, servfail && cfg->fallback);
	if (rc == UNAVAIL && !cfg->fallback)
		rc = EAI_AGAIN; /* musl with no answer from its nameservers */
	dc_batch_free(&b);
	free(b.cand);
	free(b.used);
	free(plan.names);
	free(mc);
	dc_debug("%s family %d: %d", name, family, rc);
	return rc;
}

/* ---- RFC 6724, musl's subset ---- */

struct policy {
	uint8_t addr[16];
	uint8_t len, mask, prec, label;
};
static const struct policy policies[] = {
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 15, 0xff, 50, 0},
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 11, 0xff, 35, 4},
	{{0x20, 2}, 1, 0xff, 30, 2},
	{{0x20, 1}, 3, 0xff, 5, 5},
	{{0xfc}, 0, 0xfe, 3, 13},
	{{0}, 0, 0, 40, 1},
};

static const struct policy *policy_of(const uint8_t *a)
{
	for (int i = 0;; i++) {
		const struct policy *p = &policies[i];
		if (memcmp(a, p->addr, p->len) == 0 && (a[p->len] & p->mask) == p->addr[p->len])
			return p;
	}
}

static int scope_of(const uint8_t *a)
{
	static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (a[0] == 0xff)
		return a[1] & 15;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 2;
	if (memcmp(a, lo, 16) == 0)
		return 2;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return 5;
	return 14;
}

static int common_prefix(const uint8_t *s, const uint8_t *d)
{
	int i = 0;
	while (i < 128 && !((s[i / 8] ^ d[i / 8]) & (128 >> (i % 8))))
		i++;
	return i;
}

/* by_key sorts by descending key: an insertion sort, not musl's qsort,
 * whose smoothsort takes 2.5 KiB of stack (issue 13); keys are unique (the
 * position is in them), so the order is the same. */
static void by_key(struct maddr *a, int cnt)
{
	for (int i = 1; i < cnt; i++) {
		struct maddr t = a[i];
		int j = i;
		for (; j > 0 && a[j - 1].sortkey < t.sortkey; j--)
			a[j] = a[j - 1];
		a[j] = t;
	}
}

static void sort_addrs(struct maddr *a, int cnt, int family)
{
	int i;
	if (cnt < 2 || family == AF_INET)
		return;
	for (i = 0; i < cnt && a[i].family == AF_INET; i++)
		;
	if (i == cnt)
		return;
	int cs;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	for (i = 0; i < cnt; i++) {
		uint8_t d6[16], s6[16] = {0};
		struct sockaddr_in6 da6 = {.sin6_family = AF_INET6, .sin6_port = 65535,
		                           .sin6_scope_id = a[i].scopeid}, sa6 = {0};
		struct sockaddr_in da4 = {.sin_family = AF_INET, .sin_port = 65535}, sa4 = {0};
		void *da, *sa;
		socklen_t dl, sl;
		if (a[i].family == AF_INET6) {
			memcpy(d6, a[i].addr, 16);
			memcpy(&da6.sin6_addr, a[i].addr, 16);
			da = &da6, dl = sizeof da6, sa = &sa6, sl = sizeof sa6;
		} else {
			memcpy(d6, mapped, 12);
			memcpy(d6 + 12, a[i].addr, 4);
			memcpy(s6, mapped, 12);
			memcpy(&da4.sin_addr, a[i].addr, 4);
			da = &da4, dl = sizeof da4, sa = &sa4, sl = sizeof sa4;
		}
		const struct policy *dp = policy_of(d6);
		int dscope = scope_of(d6), key = 0, prefix = 0;
		int fd = socket(a[i].family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
		if (fd >= 0) {
			if (!connect(fd, da, dl)) {
				key |= 0x40000000; /* usable */
				if (!getsockname(fd, sa, &sl)) {
					if (a[i].family == AF_INET)
						memcpy(s6 + 12, &sa4.sin_addr, 4);
					else
						memcpy(s6, &sa6.sin6_addr, 16);
					if (dscope == scope_of(s6))
						key |= 0x20000000;
					if (dp->label == policy_of(s6)->label)
						key |= 0x10000000;
					prefix = common_prefix(s6, d6);
				}
			}
			close(fd);
		}
		key |= dp->prec << 20;
		key |= (15 - dscope) << 16;
		key |= prefix << 8;
		key |= (MAXADDRS - i);
		a[i].sortkey = key;
	}
	by_key(a, cnt);
	pthread_setcancelstate(cs, NULL);
}

/* lookup: __lookup_name's DNS branch, with AI_V4MAPPED and sorting. */
static int lookup(const char *name, int family, int flags, struct maddr *addrs, char *canon)
{
	if (flags & AI_V4MAPPED) {
		if (family == AF_INET6)
			family = AF_UNSPEC;
		else
			flags &= ~AI_V4MAPPED;
	}
	int cnt = dns_search(name, family, addrs, canon);
	if (cnt <= 0)
		return cnt; /* an EAI_* code, or UNAVAIL */
	if (flags & AI_V4MAPPED) {
		int i, j;
		if (!(flags & AI_ALL)) {
			for (i = 0; i < cnt && addrs[i].family != AF_INET6; i++)
				;
			if (i < cnt) {
				for (j = 0; i < cnt; i++)
					if (addrs[i].family == AF_INET6)
						addrs[j++] = addrs[i];
				cnt = j;
			}
		}
		for (i = 0; i < cnt; i++) {
			if (addrs[i].family != AF_INET)
				continue;
			memmove(addrs[i].addr + 12, addrs[i].addr, 4);
			memcpy(addrs[i].addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
			addrs[i].family = AF_INET6;
		}
	}
	sort_addrs(addrs, cnt, family);
	return cnt;
}

/* ---- the interposed functions ---- */

/* found: one lookup's addresses and canonical name, on the heap (issue 13:
 * a call's stack stays small; musl's own getaddrinfo, which the services
 * are expanded with, takes 3.7 KiB of it already). */
struct mres {
	struct maddr addrs[MAXADDRS];
	char canon[256];
};

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

/* addrconfig: musl's AI_ADDRCONFIG test (a UDP socket of the family can
 * connect to its loopback address).  Returns 0, or an EAI_* code. */
__attribute__((noinline)) static int addrconfig(int *family)
{
	static const struct sockaddr_in lo4 = {.sin_family = AF_INET, .sin_port = 65535,
	                                       .sin_addr.s_addr = 0x0100007f};
	static const struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_port = 65535,
	                                        .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	const int tf[2] = {AF_INET, AF_INET6};
	const void *ta[2] = {&lo4, &lo6};
	const socklen_t tl[2] = {sizeof lo4, sizeof lo6};
	for (int i = 0; i < 2; i++) {
		if (*family == tf[1 - i])
			continue;
		int s = socket(tf[i], SOCK_CLOEXEC | SOCK_DGRAM, IPPROTO_UDP);
		if (s >= 0) {
			int r = connect(s, ta[i], tl[i]);
			int e = errno;
			close(s);
			if (!r)
				continue;
			errno = e;
		}
		switch (errno) {
		case EADDRNOTAVAIL:
		case EAFNOSUPPORT:
		case EHOSTUNREACH:
		case ENETDOWN:
		case ENETUNREACH:
			break;
		default:
			return EAI_SYSTEM;
		}
		if (*family == tf[i])
			return EAI_NONAME;
		*family = tf[1 - i];
	}
	return 0;
}

/* gai_answer is getaddrinfo after the services were expanded into tmpl
 * (which it frees): the lookup, then the results laid out as musl's. */
__attribute__((noinline)) static int gai_answer(gai_fn real, const char *host, const char *serv,
                                                const struct addrinfo *hint, int family, int flags,
                                                struct addrinfo *tmpl, struct addrinfo **res,
                                                int saved)
{
	struct mres *m = malloc(sizeof *m);
	if (!m) {
		freeaddrinfo(tmpl);
		return EAI_MEMORY;
	}
	struct maddr *addrs = m->addrs;
	const char *canon = m->canon;
	int n = lookup(host, family, flags, addrs, m->canon);
	if (n == UNAVAIL) {
		free(m);
		freeaddrinfo(tmpl);
		errno = saved;
		return real(host, serv, hint, res);
	}
	if (n < 0) {
		free(m);
		freeaddrinfo(tmpl);
		return n;
	}
	int ns = 0;
	for (struct addrinfo *t = tmpl; t; t = t->ai_next)
		ns++;
	size_t clen = strlen(canon);
	struct aibuf *out = calloc(1, (size_t)(n * ns) * sizeof *out + clen + 1);
	if (!out) {
		free(m);
		freeaddrinfo(tmpl);
		return EAI_MEMORY;
	}
	char *oc = clen ? memcpy((char *)&out[n * ns], canon, clen + 1) : NULL;
	int k = 0;
	for (int i = 0; i < n; i++) {
		for (struct addrinfo *t = tmpl; t; t = t->ai_next, k++) {
			uint16_t port = ((struct sockaddr_in *)t->ai_addr)->sin_port;
			out[k].slot = (short)k;
			out[k].ai = (struct addrinfo){
			    .ai_family = addrs[i].family,
			    .ai_socktype = t->ai_socktype,
			    .ai_protocol = t->ai_protocol,
			    .ai_addrlen = addrs[i].family == AF_INET ? sizeof(struct sockaddr_in)
			                                             : sizeof(struct sockaddr_in6),
			    .ai_addr = (void *)&out[k].sa,
			    .ai_canonname = oc};
			if (k)
				out[k - 1].ai.ai_next = &out[k].ai;
			if (addrs[i].family == AF_INET) {
				out[k].sa.sin.sin_family = AF_INET;
				out[k].sa.sin.sin_port = port;
				memcpy(&out[k].sa.sin.sin_addr, addrs[i].addr, 4);
			} else {
				out[k].sa.sin6.sin6_family = AF_INET6;
				out[k].sa.sin6.sin6_port = port;
				out[k].sa.sin6.sin6_scope_id = addrs[i].scopeid;
				memcpy(&out[k].sa.sin6.sin6_addr, addrs[i].addr, 16);
			}
		}
	}
	out[0].ref = (short)(n * ns);
	free(m);
	freeaddrinfo(tmpl);
	errno = saved;
	*res = &out->ai;
	return 0;
}

DC_API int getaddrinfo(const char *host, const char *serv, const struct addrinfo *hint,
                       struct addrinfo **res)
{
	gai_fn real = (gai_fn)next("getaddrinfo");
	if (!real)
		return EAI_SYSTEM;
	int family = hint ? hint->ai_family : AF_UNSPEC, flags = hint ? hint->ai_flags : 0;
	const int mask = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL |
	                 AI_ADDRCONFIG | AI_NUMERICSERV;
	if (!host || (flags & mask) != flags || (flags & AI_NUMERICHOST) ||
	    (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) || numeric(host) ||
	    strnlen(host, 255) - 1 >= 254 || in_hosts(host))
		return real(host, serv, hint, res);
	int saved = errno;
	if (flags & AI_ADDRCONFIG) {
		int e = addrconfig(&family);
		if (e)
			return e;
	}
	/* The services, as musl expands them: a template lookup of a numeric
	 * host gives the socket types, protocols and ports.  musl's
	 * getaddrinfo takes 3.7 KiB of stack for it: this frame stays small
	 * (the rest is in gai_answer). */
	struct addrinfo th = {.ai_family = AF_INET, .ai_socktype = hint ? hint->ai_socktype : 0,
	                      .ai_protocol = hint ? hint->ai_protocol : 0,
	                      .ai_flags = AI_NUMERICHOST | (flags & AI_NUMERICSERV)}, *tmpl;
	int e = real("0.0.0.0", serv, &th, &tmpl);
	if (e)
		return e;
	return gai_answer(real, host, serv, hint, family, flags, tmpl, res, saved);
}

DC_API void freeaddrinfo(struct addrinfo *p)
{
	void (*real)(struct addrinfo *) = (void (*)(struct addrinfo *))next("freeaddrinfo");
	if (real)
		real(p);
}

DC_API int getnameinfo(const struct sockaddr *sa, socklen_t sl, char *host, socklen_t hl,
                       char *serv, socklen_t svl, int flags)
{
	/* Reverse lookups are musl's own (PTR over UDP). */
	int (*real)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int) =
	    (int (*)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int))next("getnameinfo");
	return real ? real(sa, sl, host, hl, serv, svl, flags) : EAI_SYSTEM;
}

typedef int (*ghbn2r_fn)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);

DC_API int gethostbyname2_r(const char *name, int af, struct hostent *h, char *buf, size_t buflen,
                            struct hostent **res, int *err)
{
	ghbn2r_fn real = (ghbn2r_fn)next("gethostbyname2_r");
	if (!real)
		return ENOSYS;
	if (!name || (af != AF_INET && af != AF_INET6) || numeric(name) ||
	    strnlen(name, 255) - 1 >= 254 || in_hosts(name))
		return real(name, af, h, buf, buflen, res, err);
	*res = NULL;
	int saved = errno;
	struct mres *m = malloc(sizeof *m);
	if (!m) {
		*err = NO_RECOVERY;
		return ENOMEM;
	}
	struct maddr *addrs = m->addrs;
	char *canon = m->canon;
	int cnt = lookup(name, af, AI_CANONNAME, addrs, canon);
	if (cnt == UNAVAIL) {
		free(m);
		errno = saved;
		return real(name, af, h, buf, buflen, res, err);
	}
	if (cnt < 0) {
		free(m);
		switch (cnt) {
		case EAI_NONAME:
			*err = HOST_NOT_FOUND;
			return ENOENT;
		case EAI_AGAIN:
			*err = TRY_AGAIN;
			return EAGAIN;
		default:
			*err = NO_RECOVERY;
			return EBADMSG;
		}
	}
	h->h_addrtype = af;
	h->h_length = af == AF_INET6 ? 16 : 4;
	size_t align = -(uintptr_t)buf & (sizeof(char *) - 1);
	size_t need = 4 * sizeof(char *) + (size_t)(cnt + 1) * (sizeof(char *) + (size_t)h->h_length) +
	              strlen(name) + 1 + strlen(canon) + 1 + align;
	if (need > buflen) {
		free(m);
		return ERANGE;
	}
	buf += align;
	h->h_aliases = (void *)buf;
	buf += 3 * sizeof(char *);
	h->h_addr_list = (void *)buf;
	buf += (size_t)(cnt + 1) * sizeof(char *);
	int i;
	for (i = 0; i < cnt; i++) {
		h->h_addr_list[i] = buf;
		buf += h->h_length;
		memcpy(h->h_addr_list[i], addrs[i].addr, (size_t)h->h_length);
	}
	h->h_addr_list[i] = NULL;
	h->h_name = h->h_aliases[0] = buf;
	strcpy(h->h_name, canon);
	buf += strlen(canon) + 1;
	if (strcmp(h->h_name, name)) {
		h->h_aliases[1] = buf;
		strcpy(buf, name);
	} else {
		h->h_aliases[1] = NULL;
	}
	h->h_aliases[2] = NULL;
	free(m);
	errno = saved;
	*res = h;
	return 0;
}

DC_API int gethostbyname_r(const char *name, struct hostent *h, char *buf, size_t buflen,
                           struct hostent **res, int *err)
{
	return gethostbyname2_r(name, AF_INET, h, buf, buflen, res, err);
}

/* gethostbyname2: musl's static buffer, grown until the result fits. */
DC_API struct hostent *gethostbyname2(const char *name, int af)
{
	static struct hostent *h;
	size_t size = 63;
	struct hostent *res;
	int err;
	do {
		free(h);
		h = malloc(size += size + 1);
		if (!h) {
			h_errno = NO_RECOVERY;
			return NULL;
		}
		err = gethostbyname2_r(name, af, h, (void *)(h + 1), size - sizeof *h, &res, &h_errno);
	} while (err == ERANGE);
	return res;
}

DC_API struct hostent *gethostbyname(const char *name)
{
	return gethostbyname2(name, AF_INET);
}
