/* lookup.c: one name lookup through the socket, with glibc's search rules
 * and glibc 2.36 nss_dns's status mapping.
 *
 * Per candidate of the search plan, A and AAAA go out pipelined on the one
 * connection of this lookup.  Anything that means "the cache is not there"
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
	const struct dc_plan *plan;
	int nq;
	uint16_t qtype[2];
	bool hostent;
	struct dc_conn conn;
	bool opened;
	enum dc_io io;
	uint8_t *buf[3];
	size_t len[2];
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
	const char *name = w->plan->names[i];
	uint8_t qwire[DC_MAXCDNAME + 1];
	uint8_t q[2][512];
	const uint8_t *qp[2] = {q[0], q[1]};
	size_t ql[2];
	uint16_t ids[2];

	w->present[0] = w->present[1] = false;
	if (dc_name_to_wire(name, qwire, sizeof qwire) < 0)
		return DC_Q_UNAVAIL;
	if (!w->opened) {
		w->io = dc_conn_open(&w->conn);
		if (w->io != DC_IO_OK)
			return DC_Q_UNAVAIL;
		w->opened = true;
	}
	for (int k = 0; k < w->nq; k++) {
		do
			ids[k] = dc_random_id();
		while (k == 1 && ids[1] == ids[0]);
		int n = dc_build_query(q[k], sizeof q[k], ids[k], name, w->qtype[k]);
		if (n < 0)
			return DC_Q_UNAVAIL;
		ql[k] = (size_t)n;
	}
	uint8_t *out[2] = {w->buf[0], w->buf[1]};
	w->conn.rx = w->buf[2];
	w->io = dc_exchange(&w->conn, w->nq, qp, ql, ids, out, w->len);
	w->buf[0] = out[0];
	w->buf[1] = out[1];
	w->buf[2] = w->conn.rx;
	if (w->io != DC_IO_OK) {
		dc_debug("%s: %s", name, w->io == DC_IO_TIMEOUT ? "timeout" : "connection failed");
		return DC_Q_UNAVAIL;
	}
	int nfail = 0;
	for (int k = 0; k < w->nq; k++) {
		if (dc_parse_reply(w->buf[k], w->len[k], ids[k], w->qtype[k], qwire, w->hostent,
		                   w->ans[k]) < 0 || w->ans[k]->tc) {
			dc_debug("%s: malformed or truncated reply", name);
			return DC_Q_UNAVAIL;
		}
		w->present[k] = true;
		if (w->ans[k]->rcode == DC_REFUSED || w->ans[k]->rcode == DC_NOTIMP ||
		    w->ans[k]->rcode == DC_FORMERR)
			return DC_Q_UNAVAIL;
		nfail += failing(w->ans[k]->rcode);
	}
	if (nfail == w->nq)
		return DC_Q_SERVFAIL;
	/* send_dg/send_vc: a SERVFAIL next to a usable reply is dropped. */
	for (int k = 0; k < w->nq; k++)
		if (failing(w->ans[k]->rcode))
			w->present[k] = false;
	int first = -1, second = -1;
	for (int k = 0; k < w->nq; k++) {
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

static void add_addrs(struct dc_result *r, const struct dc_answer *a, int family)
{
	for (int i = 0; i < a->naddrs && r->naddrs < 2 * DC_MAX_ADDRS; i++) {
		r->addrs[r->naddrs].family = family;
		memcpy(r->addrs[r->naddrs].addr, a->addrs[i], (size_t)a->addrlen);
		r->naddrs++;
	}
}

static void finish(struct walk *w, int family, struct dc_result *r)
{
	r->naddrs = 0;
	r->naliases = 0;
	r->canon[0] = 0;
	r->ttl = INT32_MAX;
	if (family == AF_UNSPEC) {
		int s = NSS_STATUS_NOTFOUND;
		bool canon_from_first = false;
		if (w->present[0]) {
			s = slice(w->ans[0]);
			if (s == NSS_STATUS_SUCCESS) {
				add_addrs(r, w->ans[0], w->qtype[0] == DC_T_A ? AF_INET : AF_INET6);
				strcpy(r->canon, w->ans[0]->canon);
				canon_from_first = true;
			}
		}
		if (w->nq == 2 && w->present[1]) {
			int s2 = slice(w->ans[1]);
			if (s2 == NSS_STATUS_SUCCESS) {
				add_addrs(r, w->ans[1], AF_INET6);
				if (!canon_from_first)
					strcpy(r->canon, w->ans[1]->canon);
			}
			if (s != NSS_STATUS_SUCCESS && s2 != NSS_STATUS_NOTFOUND)
				s = s2;
		}
		for (int k = 0; k < w->nq; k++)
			if (w->present[k] && w->ans[k]->ttl < r->ttl)
				r->ttl = w->ans[k]->ttl;
		r->status = s;
		r->herrno = s == NSS_STATUS_SUCCESS ? NETDB_SUCCESS : HOST_NOT_FOUND;
		r->err = 0;
		return;
	}
	/* getanswer_r and gethostbyname3_context. */
	const struct dc_answer *a = w->ans[0];
	r->ttl = a->ttl;
	if (a->rcode == DC_NXDOMAIN || !a->qname_hnok) {
		r->status = NSS_STATUS_NOTFOUND;
		r->herrno = HOST_NOT_FOUND;
		r->err = ENOENT;
		return;
	}
	if (a->naddrs == 0) {
		r->status = NSS_STATUS_TRYAGAIN;
		r->herrno = NO_RECOVERY;
		r->err = ENOENT;
		return;
	}
	add_addrs(r, a, family);
	memcpy(r->names, a->names, sizeof r->names);
	memcpy(r->alias_off, a->alias_off, sizeof r->alias_off);
	r->naliases = a->naliases;
	r->status = NSS_STATUS_SUCCESS;
	r->herrno = NETDB_SUCCESS;
	r->err = 0;
}

static void unavail(struct dc_result *r)
{
	r->status = NSS_STATUS_UNAVAIL;
	r->herrno = TRY_AGAIN;
	r->err = 0;
	r->naddrs = 0;
}

void dc_lookup(const char *name, int family, struct dc_result *r)
{
	const struct dc_config *cfg = dc_config();
	r->family = family;
	r->hostent = family != AF_UNSPEC;
	if (cfg->disabled || dc_breaker_open()) {
		unavail(r);
		return;
	}
	/* check_name in nss_dns: no query for a name that is not a host name. */
	if (!dc_name_hnok(name)) {
		if (strchr(name, '\\')) {
			unavail(r); /* escapes: glibc's parser handles them */
			return;
		}
		r->status = NSS_STATUS_NOTFOUND;
		r->herrno = HOST_NOT_FOUND;
		r->err = 0;
		r->naddrs = 0;
		return;
	}
	const struct dc_resconf *rc = dc_resconf_get();
	struct dc_plan *plan = malloc(sizeof *plan);
	struct walk w = {.plan = plan, .hostent = r->hostent, .conn = {.fd = -1}};
	for (int k = 0; k < 3; k++)
		w.buf[k] = malloc(DC_MAXFRAME + 2);
	w.ans[0] = malloc(sizeof(struct dc_answer));
	w.ans[1] = malloc(sizeof(struct dc_answer));
	if (!plan || !w.buf[0] || !w.buf[1] || !w.buf[2] || !w.ans[0] || !w.ans[1]) {
		unavail(r);
		goto out;
	}
	if (family == AF_UNSPEC) {
		w.qtype[0] = DC_T_A;
		w.qtype[1] = DC_T_AAAA;
		w.nq = rc->noaaaa ? 1 : 2;
	} else {
		w.qtype[0] = family == AF_INET ? DC_T_A : DC_T_AAAA;
		w.nq = 1;
	}
	dc_search_plan(rc, name, plan);
	w.conn.deadline = dc_now_ms() + cfg->timeout_ms;
	int herrno = HOST_NOT_FOUND;
	int idx = dc_search_walk(plan, query, &w, &herrno);
	dc_breaker_record(w.io);
	if (idx == -2) {
		unavail(r);
	} else if (idx == -1) {
		r->naddrs = 0;
		r->herrno = herrno;
		r->status = herrno == TRY_AGAIN ? NSS_STATUS_TRYAGAIN : NSS_STATUS_NOTFOUND;
		r->err = herrno == TRY_AGAIN ? EAGAIN : 0;
	} else {
		finish(&w, family, r);
	}
	dc_debug("%s family %d: status %d herrno %d, %d addresses", name, family, r->status,
	         r->herrno, r->naddrs);
out:
	dc_conn_close(&w.conn);
	for (int k = 0; k < 3; k++)
		free(w.buf[k]);
	free(w.ans[0]);
	free(w.ans[1]);
	free(plan);
}
