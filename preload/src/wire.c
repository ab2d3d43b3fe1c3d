/* wire.c: DNS messages (RFC 1035 §4) built and parsed with explicit bounds.
 *
 * The reply parser never trusts a length from the wire: every read is
 * checked against the message end, compression pointers are followed a
 * bounded number of times, and answers are reduced with the same rules as
 * glibc 2.36's nss_dns (getanswer_r for hostent, gaih_getanswer_slice for
 * getaddrinfo) so that results are identical to the dns module's. */
#include <string.h>

#include "dnscache.h"

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* dc_name_to_wire converts a presentation name without escapes to wire
 * form.  A single trailing dot is allowed.  Returns the wire length or -1. */
int dc_name_to_wire(const char *name, uint8_t *out, size_t outlen)
{
	size_t o = 0;
	const char *p = name;
	if (strcmp(name, ".") == 0) {
		if (outlen < 1)
			return -1;
		out[0] = 0;
		return 1;
	}
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63)
			return -1;
		if (o + 1 + l + 1 > outlen || o + 1 + l + 1 > DC_MAXCDNAME)
			return -1;
		out[o++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++) {
			if (p[i] == '\\')
				return -1; /* escapes: left to glibc */
			out[o++] = (uint8_t)p[i];
		}
		if (!dot)
			break;
		p = dot + 1;
	}
	out[o++] = 0;
	return (int)o;
}

/* glibc resolv/res-name-checking.c: labels of [A-Za-z0-9_-], the first
 * label not starting with '-'. */
static bool label_ok(const uint8_t *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = l[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool dc_wire_hnok(const uint8_t *w)
{
	if (w[0] > 0 && w[1] == '-')
		return false;
	while (*w) {
		if (!label_ok(w + 1, *w))
			return false;
		w += 1 + *w;
	}
	return true;
}

bool dc_name_hnok(const char *name)
{
	uint8_t w[DC_MAXCDNAME + 1];
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	if (dc_name_to_wire(name, w, sizeof w) < 0)
		return false;
	return dc_wire_hnok(w);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* dc_build_query writes a query with RD and an RFC 6891 OPT record. */
int dc_build_query(uint8_t *buf, size_t buflen, uint16_t id, const char *name, uint16_t qtype)
{
	if (buflen < 12)
		return -1;
	memset(buf, 0, 12);
	put16(buf, id);
	buf[2] = 0x01; /* RD */
	put16(buf + 4, 1);
	put16(buf + 10, 1);
	int n = dc_name_to_wire(name, buf + 12, buflen - 12);
	if (n < 0)
		return -1;
	size_t o = 12 + (size_t)n;
	if (o + 4 + 11 > buflen)
		return -1;
	put16(buf + o, qtype);
	put16(buf + o + 2, DC_C_IN);
	o += 4;
	/* OPT: root owner, type 41, class = UDP payload size, TTL 0, RDLEN 0. */
	buf[o] = 0;
	put16(buf + o + 1, DC_T_OPT);
	put16(buf + o + 3, 1232);
	memset(buf + o + 5, 0, 6);
	return (int)(o + 11);
}

/* unpack reads a possibly compressed name at off into wire form (lower
 * case is not applied).  Returns the offset after the name in the record,
 * or -1. */
static long unpack(const uint8_t *pkt, size_t len, size_t off, uint8_t *out)
{
	size_t o = 0, end = 0;
	int hops = 0;
	bool jumped = false;
	for (;;) {
		if (off >= len)
			return -1;
		uint8_t l = pkt[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= len || ++hops > 64)
				return -1;
			if (!jumped)
				end = off + 2;
			jumped = true;
			off = (size_t)((l & 0x3f) << 8 | pkt[off + 1]);
			continue;
		}
		if (l & 0xc0)
			return -1; /* RFC 6891 §5: extended label types are obsolete */
		if (off + 1 + l > len || o + 1 + l + (l ? 1 : 0) > DC_MAXCDNAME)
			return -1;
		memcpy(out + o, pkt + off, 1 + (size_t)l);
		o += 1 + (size_t)l;
		off += 1 + (size_t)l;
		if (l == 0)
			break;
	}
	return (long)(jumped ? end : off);
}

static bool same_name(const uint8_t *a, const uint8_t *b)
{
	while (*a == *b) {
		if (*a == 0)
			return true;
		for (int i = 1; i <= *a; i++)
			if (lower(a[i]) != lower(b[i]))
				return false;
		b += 1 + *b;
		a += 1 + *a;
	}
	return false;
}

/* ntop for host-name-valid names: labels joined by dots, no final dot.
 * Fails when out (outlen bytes) cannot hold the name and its NUL. */
static int hn_ntop(const uint8_t *w, char *out, size_t outlen)
{
	size_t o = 0;
	if (*w == 0) {
		if (outlen < 2)
			return -1;
		strcpy(out, ".");
		return 1;
	}
	while (*w) {
		if (o + (o ? 1 : 0) + *w + 1 > outlen)
			return -1;
		if (o)
			out[o++] = '.';
		memcpy(out + o, w + 1, *w);
		o += *w;
		w += 1 + *w;
	}
	out[o] = 0;
	return (int)o;
}

/* add_alias appends a host-name-valid name to the answer's aliases,
 * converted in place (no copy on the stack).  0: not a host name (skipped),
 * -1: no room (the reply is treated as malformed, as glibc's ERANGE). */
static int add_alias(struct dc_answer *a, const uint8_t *w, size_t *used)
{
	if (!dc_wire_hnok(w))
		return 0;
	if (a->naliases >= DC_MAX_ALIASES)
		return -1;
	int n = hn_ntop(w, a->names + *used, sizeof a->names - *used);
	if (n < 0)
		return -1;
	a->alias_off[a->naliases++] = (uint16_t)*used;
	*used += (size_t)n + 1;
	return 1;
}

/* soa_negttl returns the negative-caching TTL of a reply without answers
 * whose authority section starts at off: RFC 2308 §5, the smaller of the
 * SOA record's TTL and its MINIMUM field; -1 without an SOA (§5: such a
 * reply is not cached).  The authority section plays no other part in the
 * result, so a malformed one only means "not cacheable". */
static int32_t soa_negttl(const uint8_t *pkt, size_t len, size_t off, uint8_t *owner)
{
	int ns = get16(pkt + 8);
	for (int i = 0; i < ns; i++) {
		long o = unpack(pkt, len, off, owner);
		if (o < 0 || (size_t)o + 10 > len)
			return -1;
		uint16_t type = get16(pkt + o), class = get16(pkt + o + 2);
		uint32_t ttl = get32(pkt + o + 4);
		uint16_t rdlen = get16(pkt + o + 8);
		size_t rdata = (size_t)o + 10;
		if (rdata + rdlen > len)
			return -1;
		if (type == DC_T_SOA && class == DC_C_IN && rdlen >= 22) {
			uint32_t min = get32(pkt + rdata + rdlen - 4);
			uint32_t t = ttl < min ? ttl : min;
			return t > INT32_MAX ? INT32_MAX : (int32_t)t;
		}
		off = rdata + rdlen;
	}
	return -1;
}

int dc_parse_reply(const uint8_t *pkt, size_t len, uint16_t id, uint16_t qtype,
                   const uint8_t *qwire, bool hostent, struct dc_answer *a)
{
	/* Two names in wire form: the owner a record must have (the question
	 * name, then each CNAME target), and the name at hand (the question,
	 * an owner, a target).  The canonical name is kept as its offset in
	 * the reply and converted once. */
	uint8_t expected[DC_MAXCDNAME + 1], nm[DC_MAXCDNAME + 1];
	size_t used = 0, canon_off = 12;

	a->naddrs = 0;
	a->naliases = 0;
	a->canon[0] = 0;
	a->ttl = INT32_MAX;
	a->negttl = -1;
	a->addrlen = qtype == DC_T_A ? 4 : 16;
	if (len < 12 || get16(pkt) != id || !(pkt[2] & 0x80) || (pkt[2] & 0x78) != 0)
		return -1;
	a->tc = (pkt[2] & 0x02) != 0;
	a->rcode = pkt[3] & 0x0f;
	if (get16(pkt + 4) != 1)
		return -1;
	a->ancount = get16(pkt + 6);
	long off = unpack(pkt, len, 12, nm);
	if (off < 0 || (size_t)off + 4 > len)
		return -1;
	/* RFC 5452 §9.1 / res_queriesmatch: the question must be ours. */
	if (!same_name(nm, qwire) || get16(pkt + off) != qtype || get16(pkt + off + 2) != DC_C_IN)
		return -1;
	off += 4;
	a->qname_hnok = dc_wire_hnok(nm);
	if (hostent && a->qname_hnok && add_alias(a, nm, &used) < 0)
		return -1;
	memcpy(expected, nm, sizeof nm);
	bool store_canon = true;
	int cnames = 0;
	for (int i = 0; i < a->ancount; i++) {
		off = unpack(pkt, len, (size_t)off, nm); /* the owner */
		if (off < 0 || (size_t)off + 10 > len)
			return -1;
		uint16_t type = get16(pkt + off), class = get16(pkt + off + 2);
		uint32_t ttl = get32(pkt + off + 4);
		uint16_t rdlen = get16(pkt + off + 8);
		size_t rdata = (size_t)off + 10;
		if (rdata + rdlen > len)
			return -1;
		off = (long)(rdata + rdlen);
		if (hostent && class != DC_C_IN)
			continue;
		if ((type == DC_T_CNAME || type == qtype) && (int64_t)a->ttl > (int64_t)(int32_t)ttl)
			a->ttl = (int32_t)ttl;
		if (type == DC_T_CNAME) {
			/* glibc: no owner check for CNAME, by historic precedent. */
			long e = unpack(pkt, len, rdata, nm); /* the target */
			if (e < 0 || (size_t)e > rdata + rdlen || ++cnames > DC_MAX_CNAMES)
				return -1;
			memcpy(expected, nm, sizeof nm);
			if (hostent) {
				if (add_alias(a, nm, &used) < 0)
					return -1;
			} else if (store_canon && dc_wire_hnok(nm)) {
				canon_off = rdata;
			}
		} else if (type == qtype && same_name(nm, expected) && rdlen == a->addrlen) {
			if (a->naddrs >= DC_MAX_ADDRS)
				return -1;
			if (!hostent && store_canon) {
				if (unpack(pkt, len, canon_off, nm) < 0 ||
				    hn_ntop(nm, a->canon, sizeof a->canon) < 0)
					a->canon[0] = 0;
				store_canon = false;
			}
			memcpy(a->addrs[a->naddrs++], pkt + rdata, rdlen);
		}
	}
	if (a->ancount == 0)
		a->negttl = soa_negttl(pkt, len, (size_t)off, nm);
	return 0;
}
