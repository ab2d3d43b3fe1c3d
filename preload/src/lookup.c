/* lookup.c: one name lookup through the socket, with glibc's search rules
 * and glibc 2.36 nss_dns's status mapping.
 *
 * Per candidate of the search plan, A and AAAA go out pipelined on the one
 * connection of this lookup, and a dotted name's search-list candidates go
 * out together (batch.c); candidates the negative cache knows to be
 * NXDOMAIN are not sent at all.  Anything that means "the cache is not there"
 * (no socket, refused, timeout, TC, malformed or unexpected reply,
 * REFUSED/NOTIMP/FORMERR) ends the lookup with NSS_STATUS_UNAVAIL so that
 * glibc falls back to its dns source, which then does the whole job. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <nss.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnscache.h"

struct walk {
	struct dc_batch b;
	bool hostent;
	bool noaaaa6;        /* no-aaaa: an AAAA lookup asks A, answers without data */
	const struct dc_resconf *rc;
	bool present[2];
	struct dc_answer *ans[2];
};

static bool failing(int rcode)
{
	return rcode == DC_SERVFAIL || rcode == DC_NOTIMP || rcode == DC_REFUSED;
}

static enum dc_qres query(void *ctx, int i)
{
	struct walk *w = ctx;
	struct dc_batch *b = &w->b;
	const char *name = b->plan->names[i];
	struct dc_cand *cd = &b->cand[i];
	uint8_t qwire[DC_MAXCDNAME + 1];

	w->present[0] = w->present[1] = false;
	switch (dc_batch_replies(b, i)) {
	case DC_C_NEGCACHED:
		dc_debug("%s: NXDOMAIN (negative cache)", name);
		return DC_Q_NXDOMAIN;
	case DC_C_SENT:
		break;
	case DC_C_BAD:
		return DC_Q_UNAVAIL;
	default:
		dc_debug("%s: %s", name, b->io == DC_IO_TIMEOUT ? "timeout" : "connection failed");
		return DC_Q_UNAVAIL;
	}
	if (dc_name_to_wire(name, qwire, sizeof qwire) < 0)
		return DC_Q_UNAVAIL;
	int nfail = 0, nnx = 0;
	int32_t negttl = INT32_MAX;
	for (int k = 0; k < b->nq; k++) {
		if (dc_parse_reply(cd->frame[k], cd->len[k], cd->ids[k], b->qtype[k], qwire, w->hostent,
		                   w->ans[k]) < 0 || w->ans[k]->tc) {
			dc_debug("%s: malformed or truncated reply", name);
			return DC_Q_UNAVAIL;
		}
		w->present[k] = true;
		if (w->noaaaa6) {
			/* __res_handle_no_aaaa: the A reply, its answer hidden. */
			w->ans[k]->ancount = 0;
			w->ans[k]->naddrs = 0;
			w->ans[k]->negttl = -1;
		}
		if (w->ans[k]->rcode == DC_REFUSED || w->ans[k]->rcode == DC_NOTIMP ||
		    w->ans[k]->rcode == DC_FORMERR)
			return DC_Q_UNAVAIL;
		nfail += failing(w->ans[k]->rcode);
		if (w->ans[k]->rcode == DC_NXDOMAIN) {
			nnx++;
			if (w->ans[k]->negttl < negttl)
				negttl = w->ans[k]->negttl;
		}
	}
	if (nnx == b->nq && negttl >= 0)
		dc_negcache_put(name, negttl);
	if (nfail == w->b.nq)
		return DC_Q_SERVFAIL;
	/* send_dg/send_vc: a SERVFAIL next to a usable reply is dropped. */
	for (int k = 0; k < w->b.nq; k++)
		if (failing(w->ans[k]->rcode))
			w->present[k] = false;
	int first = -1, second = -1;
	for (int k = 0; k < w->b.nq; k++) {
		if (!w->present[k])
			continue;
		const struct dc_answer *a = w->ans[k];
		if (a->rcode == DC_NOERROR && a->ancount > 0)
			return DC_Q_ANSWER;
		if (first < 0)
			first = k;
		else
			second = k;
	}
	int rc = w->ans[first]->rcode;
	if (rc == DC_NOERROR && second >= 0)
		rc = w->ans[second]->rcode;
	if (rc == DC_NXDOMAIN)
		return DC_Q_NXDOMAIN;
	if (rc == DC_NOERROR)
		return DC_Q_NODATA;
	return DC_Q_UNAVAIL;
}

/* slice is gaih_getanswer_slice's status for one reply. */
static int slice(const struct dc_answer *a)
{
	if (a->ancount == 0 || !a->qname_hnok || a->naddrs == 0)
		return NSS_STATUS_NOTFOUND;
	return NSS_STATUS_SUCCESS;
}

/* result allocates a result with room for naddrs addresses and nbytes of
 * names, its header copied from h. */
static struct dc_result *result(const struct dc_result *h, int naddrs, size_t nbytes)
{
	size_t addrs = (size_t)naddrs * sizeof(struct dc_addr);
	struct dc_result *r = malloc(sizeof *r + addrs + nbytes);
	if (!r)
		return NULL;
	*r = *h;
	r->naddrs = 0;
	r->names = (char *)r->addrs + addrs;
	r->canon = "";
	return r;
}

static void add_addrs(struct dc_result *r, const struct dc_answer *a, int family)
{
	for (int i = 0; i < a->naddrs; i++) {
		r->addrs[r->naddrs].family = family;
		memcpy(r->addrs[r->naddrs].addr, a->addrs[i], (size_t)a->addrlen);
		r->naddrs++;
	}
}

/* finish builds the result of the answering candidate. */
static struct dc_result *finish(struct walk *w, int family, struct dc_result *h)
{
	struct dc_result *r;
	h->ttl = INT32_MAX;
	h->err = 0;
	if (family == AF_UNSPEC) {
		int s = NSS_STATUS_NOTFOUND, s2 = NSS_STATUS_NOTFOUND;
		const struct dc_answer *a0 = NULL, *a1 = NULL;
		if (w->present[0] && (s = slice(w->ans[0])) == NSS_STATUS_SUCCESS)
			a0 = w->ans[0];
		if (w->b.nq == 2 && w->present[1]) {
			s2 = slice(w->ans[1]);
			if (s2 == NSS_STATUS_SUCCESS)
				a1 = w->ans[1];
			if (s != NSS_STATUS_SUCCESS && s2 != NSS_STATUS_NOTFOUND)
				s = s2;
		}
		for (int k = 0; k < w->b.nq; k++)
			if (w->present[k] && w->ans[k]->ttl < h->ttl)
				h->ttl = w->ans[k]->ttl;
		h->status = s;
		h->herrno = s == NSS_STATUS_SUCCESS ? NETDB_SUCCESS : HOST_NOT_FOUND;
		/* The canonical name of the first reply that has addresses. */
		const char *canon = a0 ? a0->canon : a1 ? a1->canon : "";
		size_t clen = strlen(canon) + 1;
		r = result(h, (a0 ? a0->naddrs : 0) + (a1 ? a1->naddrs : 0), clen);
		if (!r)
			return NULL;
		if (a0)
			add_addrs(r, a0, w->b.qtype[0] == DC_T_A ? AF_INET : AF_INET6);
		if (a1)
			add_addrs(r, a1, AF_INET6);
		memcpy((char *)r->names, canon, clen);
		r->canon = r->names;
		return r;
	}
	/* getanswer_r and gethostbyname3_context. */
	const struct dc_answer *a = w->ans[0];
	h->ttl = a->ttl;
	if (a->rcode == DC_NXDOMAIN || !a->qname_hnok) {
		h->status = NSS_STATUS_NOTFOUND;
		h->herrno = HOST_NOT_FOUND;
		h->err = ENOENT;
		return result(h, 0, 0);
	}
	if (a->naddrs == 0) {
		h->status = NSS_STATUS_TRYAGAIN;
		h->herrno = NO_RECOVERY;
		h->err = ENOENT;
		return result(h, 0, 0);
	}
	size_t nbytes = a->naliases ? a->alias_off[a->naliases - 1] +
	                              strlen(dc_alias(a, a->naliases - 1)) + 1 : 0;
	h->status = NSS_STATUS_SUCCESS;
	h->herrno = NETDB_SUCCESS;
	h->naliases = a->naliases;
	memcpy(h->alias_off, a->alias_off, sizeof h->alias_off);
	r = result(h, a->naddrs, nbytes);
	if (!r)
		return NULL;
	add_addrs(r, a, family);
	/* getanswer_r: A results are ordered by the sortlist. */
	if (family == AF_INET && r->naddrs > 1 && w->rc->nsort > 0)
		dc_addrsort(w->rc, r->addrs[0].addr, sizeof r->addrs[0], r->naddrs);
	memcpy((char *)r->names, a->names, nbytes);
	return r;
}

/* unavail: the cache could not answer; glibc's dns module will (nss.c). */
static struct dc_result *unavail(struct dc_result *h)
{
	h->status = NSS_STATUS_UNAVAIL;
	h->herrno = TRY_AGAIN;
	h->err = 0;
	h->fallback = true;
	return result(h, 0, 0);
}

struct dc_result *dc_lookup(const char *name, int family)
{
	const struct dc_config *cfg = dc_config();
	struct dc_result h = {.family = family, .hostent = family != AF_UNSPEC};
	if (cfg->disabled || dc_breaker_open())
		return unavail(&h);
	/* check_name in nss_dns: no query for a name that is not a host name. */
	if (!dc_name_hnok(name)) {
		if (strchr(name, '\\'))
			return unavail(&h); /* escapes: glibc's parser handles them */
		h.status = NSS_STATUS_NOTFOUND;
		h.herrno = HOST_NOT_FOUND;
		return result(&h, 0, 0);
	}
	const void *rctoken;
	const struct dc_resconf *rc = dc_resconf_acquire(&rctoken);
	if (!rc)
		return unavail(&h);
	struct dc_result *r = NULL;
	/* HOSTALIASES (nss_dns, then __res_context_search): a dotless name's
	 * alias is searched instead; an alias that is itself a dotless alias
	 * is asked as-is only. */
	char *alias = rc->hostaliases ? malloc(2 * DC_MAXDNAME) : NULL;
	bool as_is_only = false;
	if (alias && dc_hostalias(rc, name, alias, DC_MAXDNAME))
		name = alias;
	if (alias && dc_hostalias(rc, name, alias + DC_MAXDNAME, DC_MAXDNAME)) {
		name = alias + DC_MAXDNAME;
		as_is_only = true;
	}
	struct dc_plan *plan = calloc(1, sizeof *plan);
	const char *dot = strchr(name, '.');
	struct walk w = {.hostent = h.hostent, .rc = rc,
	                 .b = {.plan = plan, .pipeline = cfg->pipeline,
	                       .dotted = dot && dot[1], .io = DC_IO_UNAVAIL}};
	w.ans[0] = malloc(sizeof(struct dc_answer));
	w.ans[1] = malloc(sizeof(struct dc_answer));
	if (!plan || !w.ans[0] || !w.ans[1] || (rc->hostaliases && !alias))
		goto out;
	if (as_is_only) {
		struct dc_resconf one = {.ndots = 0};
		if (!dc_search_plan(&one, name, plan))
			goto out;
		plan->n = 1;
		plan->as_is_last = 0;
		plan->trailing_dot = true; /* the walk stops after it */
	} else if (!dc_search_plan(rc, name, plan)) {
		goto out;
	}
	w.b.cand = calloc((size_t)plan->n, sizeof *w.b.cand);
	w.b.used = calloc(4 * (size_t)plan->n, sizeof *w.b.used); /* twice: one reopen */
	if (!w.b.cand || !w.b.used)
		goto out;
	if (family == AF_UNSPEC) {
		w.b.qtype[0] = DC_T_A;
		w.b.qtype[1] = DC_T_AAAA;
		w.b.nq = rc->noaaaa ? 1 : 2;
	} else {
		w.b.qtype[0] = family == AF_INET ? DC_T_A : DC_T_AAAA;
		w.b.nq = 1;
		if (family == AF_INET6 && rc->noaaaa) {
			w.b.qtype[0] = DC_T_A;
			w.noaaaa6 = true;
		}
	}
	w.b.deadline = dc_now_ms() + cfg->timeout_ms;
	int herrno = HOST_NOT_FOUND, servfail = 0;
	int idx = dc_search_walk(plan, query, &w, &herrno, &servfail);
	bool sf_fallback = idx != -2 && servfail && cfg->fallback;
	dc_breaker_record(w.b.io, sf_fallback);
	if (idx == -2 || sf_fallback) {
		r = unavail(&h);
	} else if (idx == -1) {
		/* _nss_dns_gethostbyname{3,4}_r after a failed res_search: a
		 * last candidate that got SERVFAIL leaves errno ETIMEDOUT
		 * (res_send), which maps to UNAVAIL; otherwise NOTFOUND. */
		h.herrno = herrno;
		h.status = (servfail & DC_SF_LAST) ? NSS_STATUS_UNAVAIL : NSS_STATUS_NOTFOUND;
		h.err = herrno == TRY_AGAIN ? EAGAIN : 0;
		r = result(&h, 0, 0);
	} else {
		r = finish(&w, family, &h);
	}
	if (r)
		dc_debug("%s family %d: status %d herrno %d, %d addresses", name, family, r->status,
		         r->herrno, r->naddrs);
out:
	if (!r && !h.fallback)
		r = unavail(&h); /* out of memory: glibc's dns does it */
	dc_batch_free(&w.b);
	free(w.b.cand);
	free(w.b.used);
	free(w.ans[0]);
	free(w.ans[1]);
	if (plan)
		dc_plan_free(plan);
	free(plan);
	free(alias);
	dc_resconf_release(rctoken);
	return r;
}
