/* resconf.c: /etc/resolv.conf and the search list, as glibc 2.36 applies them.
 *
 * Parsing follows resolv/res_init.c (domain/search: last one wins, LOCALDOMAIN
 * overrides both, the host name's domain is the default, RES_OPTIONS is read
 * after the file's options).  The walk follows __res_context_search in
 * resolv/res_query.c statement by statement. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dnscache.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* MATCH in res_init.c: the keyword followed by a blank. */
static const char *match(const char *line, const char *end, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(end - line) <= n || strncmp(line, kw, n) != 0 || !is_blank(line[n]))
		return NULL;
	return line + n;
}

/* set_search replaces the search list with the blank-separated words of
 * [p, end). */
static void set_search(struct dc_resconf *rc, const char *p, const char *end)
{
	size_t o = 0;
	rc->nsearch = 0;
	while (p < end) {
		while (p < end && is_blank(*p))
			p++;
		const char *w = p;
		while (p < end && !is_blank(*p) && *p != '\n')
			p++;
		size_t l = (size_t)(p - w);
		if (l == 0 || rc->nsearch >= DC_MAX_SEARCH || o + l + 1 > sizeof rc->searchbuf)
			break;
		memcpy(rc->searchbuf + o, w, l);
		rc->searchbuf[o + l] = 0;
		rc->search[rc->nsearch++] = rc->searchbuf + o;
		o += l + 1;
	}
}

/* res_setoptions: only the options that change what is queried. */
static void set_options(struct dc_resconf *rc, const char *p, const char *end)
{
	while (p < end && *p != '\n') {
		while (p < end && is_blank(*p))
			p++;
		const char *w = p;
		while (p < end && !is_blank(*p) && *p != '\n')
			p++;
		size_t l = (size_t)(p - w);
		if (l > 6 && strncmp(w, "ndots:", 6) == 0) {
			char num[16] = {0};
			memcpy(num, w + 6, l - 6 < 15 ? l - 6 : 15);
			int i = atoi(num);
			rc->ndots = i <= DC_MAXNDOTS ? i : DC_MAXNDOTS;
		} else if (l == 12 && strncmp(w, "no-tld-query", 12) == 0) {
			rc->notldquery = true;
		} else if (l == 7 && strncmp(w, "no-aaaa", 7) == 0) {
			rc->noaaaa = true;
		}
	}
}

void dc_resconf_parse(struct dc_resconf *rc, const char *text, size_t len,
                      const char *localdomain, const char *res_options, const char *hostname)
{
	memset(rc, 0, sizeof *rc);
	rc->ndots = 1;
	bool haveenv = localdomain != NULL;
	bool havesearch = false;
	if (haveenv) {
		const char *e = localdomain + strcspn(localdomain, "\n");
		set_search(rc, localdomain, e);
	}
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
				set_search(rc, v, e < eol ? e : eol);
				havesearch = true;
			}
		} else if ((v = match(p, eol, "options"))) {
			set_options(rc, v, eol);
		}
		p = eol + 1;
	}
	if (!haveenv && !havesearch && hostname) {
		const char *dot = strchr(hostname, '.');
		if (dot && dot[1])
			set_search(rc, dot + 1, dot + 1 + strlen(dot + 1));
	}
	if (res_options)
		set_options(rc, res_options, res_options + strlen(res_options));
}

/* Thread-local copy: no lock is ever held, and a change of the file (by
 * inode, size or mtime, checked with statx, which carries no GLIBC_2.33
 * version) is seen on the next lookup. */
static __thread struct {
	bool valid;
	uint64_t ino, size;
	int64_t msec;
	uint32_t mnsec;
	struct dc_resconf rc;
} cache;

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

const struct dc_resconf *dc_resconf_get(void)
{
	struct statx st;
	bool have = syscall(SYS_statx, AT_FDCWD, "/etc/resolv.conf", 0,
	                    STATX_INO | STATX_SIZE | STATX_MTIME, &st) == 0;
	if (cache.valid && have && st.stx_ino == cache.ino && st.stx_size == cache.size &&
	    st.stx_mtime.tv_sec == cache.msec && st.stx_mtime.tv_nsec == cache.mnsec)
		return &cache.rc;
	size_t len;
	char *text = dc_read_file("/etc/resolv.conf", &len);
	char host[256] = {0};
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = 0;
	dc_resconf_parse(&cache.rc, text ? text : "", len, secure_getenv("LOCALDOMAIN"),
	                 secure_getenv("RES_OPTIONS"), host);
	free(text);
	cache.valid = have;
	if (have) {
		cache.ino = st.stx_ino;
		cache.size = st.stx_size;
		cache.msec = st.stx_mtime.tv_sec;
		cache.mnsec = st.stx_mtime.tv_nsec;
	}
	return &cache.rc;
}

static void add(struct dc_plan *p, const char *name, const char *domain)
{
	if (p->n >= DC_PLAN_MAX)
		return;
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

void dc_search_plan(const struct dc_resconf *rc, const char *name, struct dc_plan *p)
{
	int dots = 0;
	size_t len = strlen(name);
	for (const char *c = name; *c; c++)
		dots += *c == '.';
	p->n = 0;
	p->as_is_first = p->as_is_last = 0;
	p->trailing_dot = len > 0 && name[len - 1] == '.';
	bool tried_as_is = false, searched = false, root_on_list = false;
	if (dots >= rc->ndots || p->trailing_dot) {
		add(p, name, NULL);
		p->as_is_first = 1;
		tried_as_is = true;
		if (p->trailing_dot)
			return;
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
