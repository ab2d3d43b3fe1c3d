/* resconf.c: /etc/resolv.conf and the search list, as glibc 2.36 applies them.
 *
 * Parsing follows resolv/res_init.c (domain/search: last one wins, LOCALDOMAIN
 * overrides both, the host name's domain is the default, RES_OPTIONS is read
 * after the file's options).  The walk follows __res_context_search in
 * resolv/res_query.c statement by statement. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dnscache.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* MATCH in res_init.c: the keyword followed by a blank. */
static const char *match(const char *line, const char *end, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(end - line) <= n || strncmp(line, kw, n) != 0 || !is_blank(line[n]))
		return NULL;
	return line + n;
}

static bool push(struct dc_resconf *rc, const char *w, size_t l)
{
	if (rc->nsearch == rc->cap) {
		int cap = rc->cap ? rc->cap * 2 : 8;
		char **n = realloc(rc->search, (size_t)cap * sizeof *n);
		if (!n)
			return false;
		rc->search = n;
		rc->cap = cap;
	}
	char *c = malloc(l + 1);
	if (!c)
		return false;
	memcpy(c, w, l);
	c[l] = 0;
	rc->search[rc->nsearch++] = c;
	return true;
}

static void clear_search(struct dc_resconf *rc)
{
	for (int i = 0; i < rc->nsearch; i++)
		free(rc->search[i]);
	rc->nsearch = 0;
}

/* set_search replaces the search list with the words of [p, end) as
 * res_vinit_1 splits them: the first word is taken as it starts (so a
 * LOCALDOMAIN that starts with a blank, or is empty, lists the root
 * domain ""), the others after runs of blanks (' ' and '\t' only). */
static void set_search(struct dc_resconf *rc, const char *p, const char *end)
{
	clear_search(rc);
	const char *w = p;
	while (p < end && !is_blank(*p))
		p++;
	push(rc, w, (size_t)(p - w));
	while (p < end) {
		while (p < end && is_blank(*p))
			p++;
		w = p;
		while (p < end && !is_blank(*p))
			p++;
		if (p > w)
			push(rc, w, (size_t)(p - w));
	}
}

/* res_setoptions: each word is compared by prefix ("no-aaaa-x" is
 * no-aaaa, "ndots:" is ndots:0), as glibc does with strncmp; words run to
 * the next blank, so a newline belongs to the last word.  Only the options
 * that change which names are queried matter here; the others (timeout,
 * attempts, rotate, single-request, use-vc, edns0, trust-ad, no-reload)
 * govern glibc's conversation with nameservers, not with the socket. */
static void set_options(struct dc_resconf *rc, const char *p, const char *end)
{
	while (p < end) {
		while (p < end && is_blank(*p))
			p++;
		const char *w = p;
		while (p < end && !is_blank(*p))
			p++;
		size_t l = (size_t)(p - w);
		if (l >= 6 && strncmp(w, "ndots:", 6) == 0) {
			char num[24] = {0};
			memcpy(num, w + 6, l - 6 < sizeof num - 1 ? l - 6 : sizeof num - 1);
			int i = atoi(num);
			/* i <= RES_MAXNDOTS is stored in _res's 4-bit ndots. */
			rc->ndots = i <= DC_MAXNDOTS ? (i & 15) : DC_MAXNDOTS;
		} else if ((l >= 12 && strncmp(w, "no-tld-query", 12) == 0) ||
		           (l >= 12 && strncmp(w, "no_tld_query", 12) == 0)) {
			rc->notldquery = true;
		} else if (l >= 7 && strncmp(w, "no-aaaa", 7) == 0) {
			rc->noaaaa = true;
		}
	}
}

/* net_mask in res_init.c: the classful mask of an address. */
static uint32_t net_mask(uint32_t a)
{
	uint32_t i = ntohl(a);
	if (IN_CLASSA(i))
		return htonl(IN_CLASSA_NET);
	if (IN_CLASSB(i))
		return htonl(IN_CLASSB_NET);
	return htonl(IN_CLASSC_NET);
}

static bool aton(const char *p, size_t l, uint32_t *out)
{
	char b[64];
	struct in_addr a;
	if (l == 0 || l >= sizeof b)
		return false;
	memcpy(b, p, l);
	b[l] = 0;
	if (!inet_aton(b, &a))
		return false;
	*out = a.s_addr;
	return true;
}

static bool sort_char(char c)
{
	return c == '/' || c == '&';
}

static bool ends_net(char c)
{
	return c == ';' || (unsigned char)c > 127 || space(c);
}

/* res_vinit_1's sortlist: "net[/&mask]" items; no mask: the classful one. */
static void set_sortlist(struct dc_resconf *rc, const char *p, const char *end)
{
	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		if (p >= end || *p == ';')
			return;
		const char *net = p;
		while (p < end && !sort_char(*p) && !ends_net(*p))
			p++;
		struct dc_sort e;
		bool ok = aton(net, (size_t)(p - net), &e.addr);
		if (ok) {
			if (p < end && sort_char(*p)) {
				const char *m = ++p;
				while (p < end && !ends_net(*p))
					p++;
				if (!aton(m, (size_t)(p - m), &e.mask))
					e.mask = net_mask(e.addr);
			} else {
				e.mask = net_mask(e.addr);
			}
			struct dc_sort *n = realloc(rc->sort, (size_t)(rc->nsort + 1) * sizeof *n);
			if (!n)
				return;
			rc->sort = n;
			rc->sort[rc->nsort++] = e;
		}
		if (p < end && !is_blank(*p))
			return; /* a separator glibc would stop at (or loop on) */
	}
}

void dc_addrsort(const struct dc_resconf *rc, uint8_t *addrs, size_t stride, int num)
{
	short aval[48]; /* MAX_NR_ADDRS */
	int needsort = 0;
	if (num > 48)
		num = 48;
	for (int i = 0; i < num; i++) {
		uint32_t a;
		memcpy(&a, addrs + (size_t)i * stride, 4);
		int j;
		for (j = 0; j < rc->nsort; j++)
			if (rc->sort[j].addr == (a & rc->sort[j].mask))
				break;
		aval[i] = (short)j;
		if (needsort == 0 && i > 0 && j < aval[i - 1])
			needsort = i;
	}
	if (!needsort)
		return;
	while (needsort++ < num)
		for (int j = needsort - 2; j >= 0; j--) {
			if (aval[j] <= aval[j + 1])
				break;
			short t = aval[j];
			aval[j] = aval[j + 1];
			aval[j + 1] = t;
			uint8_t tmp[4];
			memcpy(tmp, addrs + (size_t)j * stride, 4);
			memcpy(addrs + (size_t)j * stride, addrs + (size_t)(j + 1) * stride, 4);
			memcpy(addrs + (size_t)(j + 1) * stride, tmp, 4);
		}
}

void dc_resconf_clear(struct dc_resconf *rc)
{
	clear_search(rc);
	free(rc->sort);
	free(rc->search);
	free(rc->hostaliases);
	memset(rc, 0, sizeof *rc);
}

void dc_resconf_parse(struct dc_resconf *rc, const char *text, size_t len,
                      const char *localdomain, const char *res_options, const char *hostname)
{
	memset(rc, 0, sizeof *rc);
	rc->ndots = 1;
	bool haveenv = localdomain != NULL;
	if (haveenv)
		set_search(rc, localdomain, localdomain + strcspn(localdomain, "\n"));
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *v;
		if (*p == ';' || *p == '#') {
			/* comment */
		} else if ((v = match(p, eol, "domain")) || (v = match(p, eol, "search"))) {
			bool domain = p[0] == 'd';
			while (v < eol && is_blank(*v))
				v++;
			if (!haveenv && v < eol) {
				const char *e = domain ? v + strcspn(v, " \t\n") : eol;
				if (domain) {
					clear_search(rc);
					push(rc, v, (size_t)((e < eol ? e : eol) - v));
				} else {
					set_search(rc, v, eol);
				}
			}
		} else if ((v = match(p, eol, "sortlist"))) {
			set_sortlist(rc, v, eol);
		} else if ((v = match(p, eol, "options"))) {
			set_options(rc, v, eol);
		}
		p = eol + 1;
	}
	/* domain_from_hostname: everything after the first dot, even "". */
	if (rc->nsearch == 0 && hostname) {
		const char *dot = strchr(hostname, '.');
		if (dot)
			push(rc, dot + 1, strlen(dot + 1));
	}
	if (res_options)
		set_options(rc, res_options, res_options + strlen(res_options));
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* ns_samename for plain names: case-insensitive, one trailing dot ignored. */
static bool samename(const char *a, size_t al, const char *b)
{
	size_t bl = strlen(b);
	if (al && a[al - 1] == '.')
		al--;
	if (bl && b[bl - 1] == '.')
		bl--;
	if (al != bl)
		return false;
	for (size_t i = 0; i < al; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

const char *dc_hostalias(const struct dc_resconf *rc, const char *name, char *dst, size_t dlen)
{
	if (!rc->hostaliases || strchr(name, '.'))
		return NULL;
	size_t len;
	char *text = dc_read_file(rc->hostaliases, &len);
	const char *r = NULL;
	for (const char *p = text, *end = text + len; text && p < end && !r;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *a = p, *c = p;
		while (c < eol && !space(*c))
			c++;
		if (c == eol)
			break; /* glibc stops at a line without a blank */
		if (samename(a, (size_t)(c - a), name)) {
			while (c < eol && space(*c))
				c++;
			if (c == eol)
				break;
			const char *t = c;
			while (c < eol && !space(*c))
				c++;
			size_t l = (size_t)(c - t) < dlen - 1 ? (size_t)(c - t) : dlen - 1;
			memcpy(dst, t, l);
			dst[l] = 0;
			r = dst;
		}
		p = eol + 1;
	}
	free(text);
	return r;
}

char *dc_read_file(const char *path, size_t *len)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	while (b) {
		if (n == cap) {
			char *nb = cap < (1u << 24) ? realloc(b, cap * 2) : NULL;
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return b;
}

/* One parsed copy per process, shared by the threads: a snapshot with a
 * reference count, replaced when the file's inode, size or mtime changed
 * (statx, which carries no GLIBC_2.33 version).  The lock guards only
 * taking a reference (a few instructions, never I/O); a thread that cannot
 * get it at once (or a child forked while another thread held it) parses
 * a private copy instead, so nothing ever waits on it. */
struct snap {
	atomic_int refs;
	bool valid;
	uint64_t ino, size;
	int64_t msec;
	uint32_t mnsec;
	struct dc_resconf rc;
};
static struct snap *current;
static atomic_int lock;

static bool try_lock(void)
{
	for (int i = 0; i < 100; i++) {
		int z = 0;
		if (atomic_compare_exchange_weak_explicit(&lock, &z, 1, memory_order_acquire,
		                                          memory_order_relaxed))
			return true;
	}
	return false;
}

static void unlock(void)
{
	atomic_store_explicit(&lock, 0, memory_order_release);
}

void dc_resconf_release(const void *token)
{
	struct snap *sn = (struct snap *)token;
	if (sn && atomic_fetch_sub(&sn->refs, 1) == 1) {
		dc_resconf_clear(&sn->rc);
		free(sn);
	}
}

static struct snap *parse_snap(const struct dc_statx *st, bool have, int refs)
{
	struct snap *sn = calloc(1, sizeof *sn);
	if (!sn)
		return NULL;
	size_t len;
	char *text = dc_read_file("/etc/resolv.conf", &len);
	char host[256] = {0};
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = 0;
	dc_resconf_parse(&sn->rc, text ? text : "", len, secure_getenv("LOCALDOMAIN"),
	                 secure_getenv("RES_OPTIONS"), host);
	free(text);
	const char *ha = secure_getenv("HOSTALIASES");
	sn->rc.hostaliases = ha ? strdup(ha) : NULL;
	atomic_init(&sn->refs, refs);
	sn->valid = have;
	if (have) {
		sn->ino = st->stx_ino;
		sn->size = st->stx_size;
		sn->msec = st->stx_mtime.tv_sec;
		sn->mnsec = st->stx_mtime.tv_nsec;
	}
	return sn;
}

const struct dc_resconf *dc_resconf_acquire(const void **token)
{
	struct dc_statx st;
	bool have = syscall(SYS_statx, AT_FDCWD, "/etc/resolv.conf", 0,
	                    DC_STATX_INO | DC_STATX_SIZE | DC_STATX_MTIME, &st) == 0;
	struct snap *sn = NULL;
	if (try_lock()) {
		struct snap *c = current;
		if (c && c->valid && have && st.stx_ino == c->ino && st.stx_size == c->size &&
		    st.stx_mtime.tv_sec == c->msec && (uint32_t)st.stx_mtime.tv_nsec == c->mnsec) {
			atomic_fetch_add(&c->refs, 1);
			sn = c;
		}
		unlock();
		if (!sn && (sn = parse_snap(&st, have, 2)) != NULL) {
			struct snap *old = NULL;
			if (try_lock()) {
				old = current;
				current = sn;
				unlock();
			} else {
				atomic_fetch_sub(&sn->refs, 1); /* not published */
			}
			dc_resconf_release(old);
		}
	} else {
		sn = parse_snap(&st, have, 1);
	}
	*token = sn;
	return sn ? &sn->rc : NULL;
}

static void add(struct dc_plan *p, const char *name, const char *domain)
{
	char *out = p->names[p->n];
	size_t nl = strlen(name);
	if (!domain) {
		/* __res_context_querydomain: strip one trailing dot. */
		if (nl > 0 && name[nl - 1] == '.')
			nl--;
		if (nl >= DC_MAXDNAME)
			nl = DC_MAXDNAME - 1; /* too long for the wire anyway */
		memcpy(out, name, nl);
		out[nl] = 0;
	} else {
		size_t dl = strlen(domain);
		if (nl + 1 + dl >= DC_MAXDNAME) {
			out[0] = 0; /* cannot be a valid query name */
		} else {
			memcpy(out, name, nl);
			out[nl] = '.';
			memcpy(out + nl + 1, domain, dl + 1);
		}
	}
	p->n++;
}

void dc_plan_free(struct dc_plan *p)
{
	free(p->names);
	p->names = NULL;
	p->n = 0;
}

bool dc_search_plan(const struct dc_resconf *rc, const char *name, struct dc_plan *p)
{
	int dots = 0;
	size_t len = strlen(name);
	for (const char *c = name; *c; c++)
		dots += *c == '.';
	p->n = 0;
	p->as_is_first = p->as_is_last = 0;
	p->trailing_dot = len > 0 && name[len - 1] == '.';
	p->names = malloc((size_t)(rc->nsearch + 2) * sizeof *p->names);
	if (!p->names)
		return false;
	bool tried_as_is = false, searched = false, root_on_list = false;
	if (dots >= rc->ndots || p->trailing_dot) {
		add(p, name, NULL);
		p->as_is_first = 1;
		tried_as_is = true;
		if (p->trailing_dot)
			return true;
	}
	/* RES_DEFNAMES and RES_DNSRCH are always set. */
	if (!dots || !p->trailing_dot) {
		for (int i = 0; i < rc->nsearch; i++) {
			const char *d = rc->search[i];
			searched = true;
			if (d[0] == '.')
				d++;
			if (d[0] == 0)
				root_on_list = true;
			add(p, name, d);
		}
	}
	if ((dots || !searched || !rc->notldquery) && !(tried_as_is || root_on_list)) {
		add(p, name, NULL);
		p->as_is_last = 1;
	}
	return true;
}

static int herrno_of(enum dc_qres r)
{
	switch (r) {
	case DC_Q_NODATA:
		return NO_DATA;
	case DC_Q_SERVFAIL:
		return TRY_AGAIN;
	default:
		return HOST_NOT_FOUND;
	}
}

int dc_search_walk(const struct dc_plan *p, enum dc_qres (*query)(void *ctx, int i),
                   void *ctx, int *herrno, int *servfail)
{
	int saved = -1, got_nodata = 0, got_servfail = 0, last = HOST_NOT_FOUND;
	int i = 0;
	enum dc_qres r;
	*servfail = 0;
#define ASK(idx)                                                                 \
	do {                                                                     \
		r = query(ctx, (idx));                                           \
		*servfail = (*servfail & DC_SF_SEEN) |                           \
		            (r == DC_Q_SERVFAIL ? DC_SF_SEEN | DC_SF_LAST : 0);  \
	} while (0)
	if (p->as_is_first) {
		ASK(0);
		if (r == DC_Q_ANSWER)
			return 0;
		if (r == DC_Q_UNAVAIL)
			return -2;
		last = saved = herrno_of(r);
		if (p->trailing_dot) {
			*herrno = saved;
			return -1;
		}
		i = 1;
	}
	for (; i < p->n - p->as_is_last; i++) {
		ASK(i);
		if (r == DC_Q_ANSWER)
			return i;
		if (r == DC_Q_UNAVAIL)
			return -2;
		last = herrno_of(r);
		/* NO_DATA and HOST_NOT_FOUND keep searching, and so does a
		 * SERVFAIL; nothing else can reach here. */
		got_nodata += r == DC_Q_NODATA;
		got_servfail += r == DC_Q_SERVFAIL;
	}
	if (p->as_is_last) {
		ASK(p->n - 1);
		if (r == DC_Q_ANSWER)
			return p->n - 1;
		if (r == DC_Q_UNAVAIL)
			return -2;
		last = herrno_of(r);
	}
#undef ASK
	if (saved != -1)
		*herrno = saved;
	else if (got_nodata)
		*herrno = NO_DATA;
	else if (got_servfail)
		*herrno = TRY_AGAIN;
	else
		*herrno = last;
	return -1;
}
