/* batch.c: the candidates of one lookup on its one connection.
 *
 * Queries go out framed (RFC 1035 §4.2.2), many per write; replies are
 * matched by ID in whatever order they come, and kept until the search walk
 * asks for their candidate, so the walk's order, not the arrival order,
 * decides the result.  IDs are unique within the connection, and differ
 * from those of earlier lookups whose replies are still to come on a kept
 * connection (those replies are dropped when they arrive).  A kept
 * connection that the peer closed (a restarted server) is reopened once and
 * the unanswered queries sent again. */
#include <stdlib.h>
#include <string.h>

#include "dnscache.h"

static uint16_t fresh_id(struct dc_batch *b)
{
	for (;;) {
		uint16_t id = dc_random_id();
		bool dup = false;
		for (int k = 0; k < b->nids && !dup; k++)
			dup = b->used[k] == id;
		for (int k = 0; k < b->conn->nstale && !dup; k++)
			dup = b->conn->stale[k] == id;
		if (!dup) {
			b->used[b->nids++] = id;
			return id;
		}
	}
}

/* batch_end is one past the last candidate sent together with candidate i.
 * With pipelining, the search-list candidates of a name that has a dot go
 * out in one write: they are mostly NXDOMAIN for such names (an external
 * name under ndots:5), so the round trips they would cost one by one are
 * saved.  A dotless name is mostly a service of the pod's own namespace,
 * answered by the first candidate: sending the others would only load the
 * server.  The name as-is (before or after the list) always goes alone, as
 * glibc sends it, so no name glibc would not ask about leaves the node
 * because of a batch.  Results do not depend on batching: the walk still
 * takes candidates in order. */
static int batch_end(const struct dc_batch *b, int i)
{
	const struct dc_plan *p = b->plan;
	int lo = p->as_is_first, hi = p->n - p->as_is_last;
	if (!b->pipeline || !b->dotted || i < lo || i >= hi)
		return i + 1;
	return hi;
}

/* send_batch sends, in one write, the queries of candidates i up to
 * batch_end(i) that are not known to be NXDOMAIN.  A candidate whose query
 * cannot be built ends the batch (the walk stops there with UNAVAIL). */
static bool send_batch(struct dc_batch *b, int i)
{
	int end = batch_end(b, i);
	size_t cap = (size_t)(end - i) * (size_t)b->nq * (2 + 512), fl = 0;
	if (!b->conn) {
		b->conn = dc_conn_acquire(b->deadline, &b->io, &b->reused);
		if (!b->conn)
			return false;
	}
	uint8_t *frames = malloc(cap);
	if (!frames)
		return false;
	for (int j = i; j < end; j++) {
		struct dc_cand *cd = &b->cand[j];
		if (cd->state != DC_C_UNSENT)
			continue;
		if (!b->plan->names[j][0]) {
			cd->state = DC_C_BAD; /* name plus domain too long: NO_RECOVERY in glibc */
			break;
		}
		if (dc_negcache_has(b->plan->names[j])) {
			cd->state = DC_C_NEGCACHED;
			continue;
		}
		size_t start = fl;
		cd->state = DC_C_SENT;
		for (int k = 0; k < b->nq; k++) {
			cd->ids[k] = fresh_id(b);
			int n = dc_build_query(frames + fl + 2, 512, cd->ids[k], b->plan->names[j], b->qtype[k]);
			if (n < 0) {
				cd->state = DC_C_BAD;
				fl = start;
				break;
			}
			frames[fl] = (uint8_t)(n >> 8);
			frames[fl + 1] = (uint8_t)n;
			fl += 2 + (size_t)n;
		}
		if (cd->state == DC_C_BAD)
			break;
	}
	bool r = true;
	if (fl > 0) {
		b->io = dc_send(b->conn, frames, fl);
		r = b->io == DC_IO_OK;
	}
	free(frames);
	return r;
}

/* receive reads replies until candidate i has all of its replies; replies
 * of other candidates are kept for when the walk reaches them. */
static bool receive(struct dc_batch *b, int i)
{
	struct dc_cand *want = &b->cand[i];
	for (;;) {
		int missing = 0;
		for (int k = 0; k < b->nq; k++)
			missing += want->frame[k] == NULL;
		if (!missing)
			return true;
		uint8_t *f;
		size_t len;
		b->io = dc_recv_frame(b->conn, &f, &len);
		if (b->io != DC_IO_OK)
			return false;
		uint16_t id = (uint16_t)(f[0] << 8 | f[1]);
		if (dc_conn_stale(b->conn, id)) {
			free(f); /* an earlier lookup's */
			continue;
		}
		bool kept = false;
		for (int j = 0; j < b->plan->n && !kept; j++) {
			struct dc_cand *cd = &b->cand[j];
			for (int k = 0; k < b->nq && cd->state == DC_C_SENT; k++) {
				if (cd->ids[k] == id && cd->frame[k] == NULL) {
					cd->frame[k] = f;
					cd->len[k] = len;
					kept = true;
					break;
				}
			}
		}
		if (!kept)
			free(f); /* an unknown id is dropped */
	}
}

/* retry decides after a failed send or receive: a kept connection the
 * peer closed is reopened once, and the candidates still waiting for a
 * reply go out again on the new one. */
static bool retry(struct dc_batch *b)
{
	if (b->io != DC_IO_RESET || !b->reused || b->retried) {
		b->broken = true;
		return false;
	}
	b->retried = true;
	b->reused = false;
	dc_debug("kept connection closed by the server: reopening");
	for (int j = 0; j < b->plan->n; j++) {
		struct dc_cand *cd = &b->cand[j];
		if (cd->state != DC_C_SENT || (cd->frame[0] && (b->nq < 2 || cd->frame[1])))
			continue;
		for (int k = 0; k < 2; k++) {
			free(cd->frame[k]);
			cd->frame[k] = NULL;
		}
		cd->state = DC_C_UNSENT;
	}
	b->io = dc_conn_reopen(b->conn);
	if (b->io != DC_IO_OK) {
		b->broken = true;
		return false;
	}
	return true;
}

int dc_batch_replies(struct dc_batch *b, int i)
{
	struct dc_cand *cd = &b->cand[i];
	for (;;) {
		if (cd->state == DC_C_UNSENT && !send_batch(b, i)) {
			if (b->conn && retry(b))
				continue;
			return -1;
		}
		if (cd->state != DC_C_SENT)
			return (int)cd->state;
		if (receive(b, i))
			return DC_C_SENT;
		if (!retry(b))
			return -1;
	}
}

void dc_batch_free(struct dc_batch *b)
{
	uint16_t out[DC_MAX_STALE];
	int n = 0;
	bool fits = true;
	for (int j = 0; b->cand && b->plan && j < b->plan->n; j++) {
		struct dc_cand *cd = &b->cand[j];
		for (int k = 0; k < b->nq && cd->state == DC_C_SENT; k++) {
			if (cd->frame[k])
				continue;
			if (n < DC_MAX_STALE)
				out[n++] = cd->ids[k];
			else
				fits = false;
		}
		for (int k = 0; k < 2; k++) {
			free(cd->frame[k]);
			cd->frame[k] = NULL;
		}
	}
	dc_conn_release(b->conn, !b->broken && fits, out, n);
	b->conn = NULL;
}
