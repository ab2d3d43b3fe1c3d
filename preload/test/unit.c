/* unit: tests of the reply parser, the resolv.conf parser, the search plan
 * and walk (glibc res_nsearch rules) and the hosts line rewrite.  Built with
 * ASan and UBSan; compiled together with the library's sources. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnscache.h"

static int failures, checks;
#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		checks++;                                                    \
		if (!(cond)) {                                               \
			failures++;                                          \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                 \
			printf("\n");                                        \
		}                                                            \
	} while (0)

/* parse frees what the previous parse into rc allocated (rc starts zeroed). */
static void parse(struct dc_resconf *rc, const char *text, const char *ld, const char *ro, const char *host)
{
	dc_resconf_clear(rc);
	dc_resconf_parse(rc, text, strlen(text), ld, ro, host);
}

static void test_resconf(void)
{
	struct dc_resconf rc = {0};
	parse(&rc, "nameserver 10.0.0.10\nsearch ns.svc.cluster.local svc.cluster.local\tcluster.local\noptions ndots:5\n", NULL, NULL, "h");
	CHECK(rc.nsearch == 3 && strcmp(rc.search[2], "cluster.local") == 0, "nsearch=%d", rc.nsearch);
	CHECK(rc.ndots == 5, "ndots=%d", rc.ndots);
	parse(&rc, "search a b\ndomain c.d e\n", NULL, NULL, "h");
	CHECK(rc.nsearch == 1 && strcmp(rc.search[0], "c.d") == 0, "domain after search wins: %d", rc.nsearch);
	parse(&rc, "domain c.d\nsearch a b\n# search x\n;search y\n", NULL, NULL, "h");
	CHECK(rc.nsearch == 2 && strcmp(rc.search[1], "b") == 0, "search after domain wins");
	parse(&rc, "search a b\n", "x.y  z", NULL, "h");
	CHECK(rc.nsearch == 2 && strcmp(rc.search[0], "x.y") == 0 && strcmp(rc.search[1], "z") == 0, "LOCALDOMAIN");
	parse(&rc, "", NULL, NULL, "node1.corp.example");
	CHECK(rc.nsearch == 1 && strcmp(rc.search[0], "corp.example") == 0, "host name domain");
	parse(&rc, "", NULL, NULL, "node1");
	CHECK(rc.nsearch == 0 && rc.ndots == 1, "defaults");
	parse(&rc, "options ndots:3\n", NULL, "ndots:20 no-tld-query no-aaaa", "h");
	CHECK(rc.ndots == 15 && rc.notldquery && rc.noaaaa, "RES_OPTIONS after file: ndots=%d", rc.ndots);
	parse(&rc, "searchx a\noptions\tndots:2\n", NULL, NULL, "h");
	CHECK(rc.nsearch == 0 && rc.ndots == 2, "keyword needs a blank");
	/* res_setoptions compares by prefix; "ndots:" alone is atoi("") = 0. */
	parse(&rc, "options ndots:3 no-tld-query-x no-aaaa2\n", NULL, NULL, "h");
	CHECK(rc.ndots == 3 && rc.notldquery && rc.noaaaa, "prefix options");
	parse(&rc, "options ndot:2 no_tld_query\noptions ndots:\n", NULL, NULL, "h");
	CHECK(rc.ndots == 0 && rc.notldquery, "ndots: without a number: %d", rc.ndots);
	parse(&rc, "options ndots:-1\n", NULL, NULL, "h");
	CHECK(rc.ndots == 15, "ndots:-1 in _res's 4 bits: %d", rc.ndots);
	/* LOCALDOMAIN: its first word as it starts, the others after blanks. */
	parse(&rc, "search a\n", " x\t\ty ", NULL, "h");
	CHECK(rc.nsearch == 3 && rc.search[0][0] == 0 && strcmp(rc.search[2], "y") == 0, "LOCALDOMAIN blanks: %d", rc.nsearch);
	parse(&rc, "search a\n", "", NULL, "h.example");
	CHECK(rc.nsearch == 1 && rc.search[0][0] == 0, "empty LOCALDOMAIN: the root");
	parse(&rc, "", NULL, NULL, "node1.");
	CHECK(rc.nsearch == 1 && rc.search[0][0] == 0, "host name with a final dot");
	parse(&rc, "domain\nsearch\t\nsearch  a\ndomain  \n", NULL, NULL, "h");
	CHECK(rc.nsearch == 1 && strcmp(rc.search[0], "a") == 0, "empty domain/search lines are ignored");
	/* No limit on the search list (glibc's resolv_conf has none). */
	char big[8192] = "search";
	for (int i = 0; i < 40; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), " d%d.example", i);
	parse(&rc, big, NULL, NULL, "h");
	CHECK(rc.nsearch == 40 && strcmp(rc.search[39], "d39.example") == 0, "40 domains: %d", rc.nsearch);
	/* A file over 16 KiB: the options at its end still count. */
	size_t n = 20000;
	char *huge = malloc(n + 32);
	memset(huge, '#', n);
	for (size_t i = 100; i < n; i += 100)
		huge[i] = '\n';
	strcpy(huge + n, "\noptions ndots:4\n");
	parse(&rc, huge, NULL, NULL, "h");
	CHECK(rc.ndots == 4, "options after 16 KiB: ndots=%d", rc.ndots);
	free(huge);
	/* HOSTALIASES: "alias target" lines, names compared as ns_samename. */
	char path[] = "/tmp/dnscache-unit-aliasesXXXXXX";
	int fd = mkstemp(path);
	const char *al = "web  www.example.com extra\nDb. db.example.org\nnoblank\nlate x.y\n";
	CHECK(fd >= 0 && write(fd, al, strlen(al)) == (ssize_t)strlen(al), "aliases file");
	close(fd);
	rc.hostaliases = strdup(path);
	char dst[256];
	const char *t = dc_hostalias(&rc, "WEB", dst, sizeof dst);
	CHECK(t && strcmp(t, "www.example.com") == 0, "alias: %s", t ? t : "(none)");
	t = dc_hostalias(&rc, "db", dst, sizeof dst);
	CHECK(t && strcmp(t, "db.example.org") == 0, "alias with a final dot: %s", t ? t : "(none)");
	CHECK(!dc_hostalias(&rc, "late", dst, sizeof dst), "a line without a blank ends the file");
	CHECK(!dc_hostalias(&rc, "web.x", dst, sizeof dst), "dotted names have no alias");
	unlink(path);
	dc_resconf_clear(&rc);
}

static void plan(const char *search, const char *opts, const char *name, const char *want, int first, int last)
{
	struct dc_resconf rc = {0};
	char text[512];
	snprintf(text, sizeof text, "search %s\noptions %s\n", search, opts);
	parse(&rc, text, NULL, NULL, "h");
	struct dc_plan p;
	dc_search_plan(&rc, name, &p);
	dc_resconf_clear(&rc);
	char got[2048] = "";
	for (int i = 0; i < p.n; i++) {
		strcat(got, p.names[i]);
		if (i + 1 < p.n)
			strcat(got, ",");
	}
	CHECK(strcmp(got, want) == 0 && p.as_is_first == first && p.as_is_last == last,
	      "%s: got %s first=%d last=%d", name, got, p.as_is_first, p.as_is_last);
	dc_plan_free(&p);
}

static void test_plan(void)
{
	const char *k8s = "ns.svc.cluster.local svc.cluster.local cluster.local";
	plan(k8s, "ndots:5", "web", "web.ns.svc.cluster.local,web.svc.cluster.local,web.cluster.local,web", 0, 1);
	plan(k8s, "ndots:5", "example.com", "example.com.ns.svc.cluster.local,example.com.svc.cluster.local,example.com.cluster.local,example.com", 0, 1);
	plan(k8s, "ndots:5", "a.b.c.d.e.f", "a.b.c.d.e.f,a.b.c.d.e.f.ns.svc.cluster.local,a.b.c.d.e.f.svc.cluster.local,a.b.c.d.e.f.cluster.local", 1, 0);
	plan(k8s, "ndots:5", "example.com.", "example.com", 1, 0);
	plan(k8s, "ndots:1", "example.com", "example.com,example.com.ns.svc.cluster.local,example.com.svc.cluster.local,example.com.cluster.local", 1, 0);
	plan("a .", "ndots:1", "web", "web.a,web.", 0, 0);
	plan("a", "ndots:1 no-tld-query", "web", "web.a", 0, 0);
	plan("a", "ndots:2 no-tld-query", "x.y", "x.y.a,x.y", 0, 1);
}

static const enum dc_qres *outcomes;
static int last_sf;
static int calls;
static enum dc_qres fake(void *ctx, int i)
{
	(void)ctx;
	calls++;
	return outcomes[i];
}

static void walk(const char *name, const char *opts, const enum dc_qres *o, int want, int want_herrno, int want_calls)
{
	struct dc_resconf rc = {0};
	char text[256];
	snprintf(text, sizeof text, "search a b c\noptions %s\n", opts);
	parse(&rc, text, NULL, NULL, "h");
	struct dc_plan p;
	dc_search_plan(&rc, name, &p);
	dc_resconf_clear(&rc);
	outcomes = o;
	calls = 0;
	int herrno = -1;
	int r = dc_search_walk(&p, fake, NULL, &herrno, &last_sf);
	CHECK(r == want && (r == -1 ? herrno == want_herrno : 1) && calls == want_calls,
	      "%s: r=%d herrno=%d calls=%d", name, r, herrno, calls);
	dc_plan_free(&p);
}

static void test_walk(void)
{
	enum dc_qres nx = DC_Q_NXDOMAIN, nd = DC_Q_NODATA, sf = DC_Q_SERVFAIL, an = DC_Q_ANSWER, un = DC_Q_UNAVAIL;
	walk("web", "ndots:5", (enum dc_qres[]){nx, an, nx, nx}, 1, 0, 2);
	walk("web", "ndots:5", (enum dc_qres[]){nx, nx, nx, an}, 3, 0, 4);
	walk("web", "ndots:5", (enum dc_qres[]){nx, nd, nx, nx}, -1, NO_DATA, 4);
	walk("web", "ndots:5", (enum dc_qres[]){sf, nx, nx, nx}, -1, TRY_AGAIN, 4);
	walk("web", "ndots:5", (enum dc_qres[]){nx, nx, nx, nd}, -1, NO_DATA, 4);
	walk("web", "ndots:5", (enum dc_qres[]){nx, un, nx, nx}, -2, 0, 2);
	walk("x.y", "ndots:1", (enum dc_qres[]){nd, nx, nx, nx}, -1, NO_DATA, 4);
	walk("x.y", "ndots:1", (enum dc_qres[]){nx, nd, nx, nx}, -1, HOST_NOT_FOUND, 4);
	walk("x.y", "ndots:1", (enum dc_qres[]){nx, nx, an, nx}, 2, 0, 3);
	walk("x.y.", "ndots:5", (enum dc_qres[]){nx}, -1, HOST_NOT_FOUND, 1);
	/* SERVFAIL bookkeeping: seen, and whether the last one asked failed
	 * (glibc's errno ETIMEDOUT, so nss_dns's UNAVAIL). */
	walk("web", "ndots:5", (enum dc_qres[]){sf, nx, nx, nx}, -1, TRY_AGAIN, 4);
	CHECK(last_sf == DC_SF_SEEN, "SERVFAIL then NXDOMAIN: %d", last_sf);
	walk("web", "ndots:5", (enum dc_qres[]){nx, nx, nx, sf}, -1, TRY_AGAIN, 4);
	CHECK(last_sf == (DC_SF_SEEN | DC_SF_LAST), "last SERVFAIL: %d", last_sf);
	walk("web", "ndots:5", (enum dc_qres[]){nx, an, nx, nx}, 1, 0, 2);
	CHECK(last_sf == 0, "no SERVFAIL: %d", last_sf);
}

/* Message builder for parser tests. */
struct msg {
	uint8_t b[4096];
	size_t n;
};
static void put(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}
static void u16(struct msg *m, unsigned v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(m, x, 2);
}
static void u32(struct msg *m, unsigned v)
{
	u16(m, v >> 16);
	u16(m, v & 0xffff);
}
static void name(struct msg *m, const char *n)
{
	uint8_t w[256];
	int l = dc_name_to_wire(n, w, sizeof w);
	put(m, w, (size_t)l);
}
static void header(struct msg *m, unsigned id, unsigned rcode, unsigned an, const char *q, unsigned qtype)
{
	m->n = 0;
	u16(m, id);
	u16(m, 0x8180 | rcode);
	u16(m, 1);
	u16(m, an);
	u16(m, 0);
	u16(m, 0);
	name(m, q);
	u16(m, qtype);
	u16(m, 1);
}
static void rr_hdr(struct msg *m, unsigned type, unsigned ttl, unsigned rdlen)
{
	u16(m, type);
	u16(m, 1);
	u32(m, ttl);
	u16(m, rdlen);
}

static void test_parser(void)
{
	static struct dc_answer a;
	struct msg m;
	uint8_t qw[256];
	dc_name_to_wire("www.Example.com", qw, sizeof qw);

	/* CNAME chain with compression, TTL minimum, canonical name. */
	header(&m, 7, 0, 3, "www.Example.com", DC_T_A);
	u16(&m, 0xc00c); /* www.Example.com */
	rr_hdr(&m, DC_T_CNAME, 300, 6);
	put(&m, "\x03" "cdn", 4);
	u16(&m, 0xc00c + 4); /* cdn.Example.com */
	size_t cdn = m.n - 6;
	u16(&m, (unsigned)(0xc000 | cdn));
	rr_hdr(&m, DC_T_A, 60, 4);
	put(&m, "\xc6\x12\x00\x01", 4);
	u16(&m, (unsigned)(0xc000 | cdn));
	rr_hdr(&m, DC_T_A, 120, 4);
	put(&m, "\xc6\x12\x00\x02", 4);
	CHECK(dc_parse_reply(m.b, m.n, 7, DC_T_A, qw, false, &a) == 0, "parse");
	CHECK(a.naddrs == 2 && a.addrs[1][3] == 2, "addrs %d", a.naddrs);
	CHECK(strcmp(a.canon, "cdn.Example.com") == 0, "canon %s", a.canon);
	CHECK(a.ttl == 60, "ttl %d", a.ttl);
	CHECK(dc_parse_reply(m.b, m.n, 7, DC_T_A, qw, true, &a) == 0 && a.naliases == 2 &&
	      strcmp(dc_alias(&a, 0), "www.Example.com") == 0 && strcmp(dc_alias(&a, 1), "cdn.Example.com") == 0,
	      "aliases %d", a.naliases);
	CHECK(dc_parse_reply(m.b, m.n, 8, DC_T_A, qw, false, &a) < 0, "wrong id accepted");
	CHECK(dc_parse_reply(m.b, m.n, 7, DC_T_AAAA, qw, false, &a) < 0, "wrong qtype accepted");
	uint8_t other[256];
	dc_name_to_wire("www.example.org", other, sizeof other);
	CHECK(dc_parse_reply(m.b, m.n, 7, DC_T_A, other, false, &a) < 0, "wrong qname accepted");
	for (size_t cut = 0; cut < m.n; cut++)
		CHECK(dc_parse_reply(m.b, cut, 7, DC_T_A, qw, false, &a) < 0, "truncated at %zu accepted", cut);

	/* Records not on the chain and of the wrong length are ignored. */
	header(&m, 9, 0, 2, "www.Example.com", DC_T_A);
	name(&m, "evil.example");
	rr_hdr(&m, DC_T_A, 10, 4);
	put(&m, "\x01\x02\x03\x04", 4);
	u16(&m, 0xc00c);
	rr_hdr(&m, DC_T_A, 10, 5);
	put(&m, "\x01\x02\x03\x04\x05", 5);
	CHECK(dc_parse_reply(m.b, m.n, 9, DC_T_A, qw, false, &a) == 0 && a.naddrs == 0, "off-chain %d", a.naddrs);

	/* A compression loop and a forward pointer chain are rejected. */
	header(&m, 10, 0, 1, "www.Example.com", DC_T_A);
	size_t here = m.n;
	u16(&m, (unsigned)(0xc000 | here));
	rr_hdr(&m, DC_T_A, 10, 4);
	put(&m, "\x01\x02\x03\x04", 4);
	CHECK(dc_parse_reply(m.b, m.n, 10, DC_T_A, qw, false, &a) < 0, "pointer loop accepted");

	/* NXDOMAIN, TC. */
	header(&m, 11, DC_NXDOMAIN, 0, "www.Example.com", DC_T_A);
	CHECK(dc_parse_reply(m.b, m.n, 11, DC_T_A, qw, false, &a) == 0 && a.rcode == DC_NXDOMAIN, "nx");
	m.b[2] |= 0x02;
	CHECK(dc_parse_reply(m.b, m.n, 11, DC_T_A, qw, false, &a) == 0 && a.tc, "tc");

	/* A CNAME chain longer than DC_MAX_CNAMES is malformed. */
	header(&m, 12, 0, DC_MAX_CNAMES + 1, "www.Example.com", DC_T_A);
	for (int i = 0; i <= DC_MAX_CNAMES; i++) {
		u16(&m, 0xc00c);
		rr_hdr(&m, DC_T_CNAME, 10, 2);
		u16(&m, 0xc00c);
	}
	CHECK(dc_parse_reply(m.b, m.n, 12, DC_T_A, qw, false, &a) < 0, "endless chain accepted");

	/* A CNAME target that is not a host name is not an alias. */
	header(&m, 13, 0, 2, "www.Example.com", DC_T_A);
	u16(&m, 0xc00c);
	rr_hdr(&m, DC_T_CNAME, 10, 5);
	put(&m, "\x03" "a b\0", 5);
	name(&m, "a b");
	rr_hdr(&m, DC_T_A, 10, 4);
	put(&m, "\x01\x02\x03\x04", 4);
	CHECK(dc_parse_reply(m.b, m.n, 13, DC_T_A, qw, true, &a) == 0 && a.naliases == 1 && a.naddrs == 1,
	      "aliases %d addrs %d", a.naliases, a.naddrs);
	CHECK(dc_parse_reply(m.b, m.n, 13, DC_T_A, qw, false, &a) == 0 && strcmp(a.canon, "www.Example.com") == 0,
	      "canon %s", a.canon);
}

static void test_names(void)
{
	CHECK(dc_name_hnok("www.example.com") && dc_name_hnok("a_b.example") && dc_name_hnok("x-1."), "hnok");
	CHECK(!dc_name_hnok("-x.example") && !dc_name_hnok("a b") && !dc_name_hnok("a..b") && !dc_name_hnok("a\\.b"), "!hnok");
	uint8_t q[512];
	int n = dc_build_query(q, sizeof q, 0xbeef, "www.example.com", DC_T_AAAA);
	CHECK(n == 12 + 17 + 4 + 11 && q[0] == 0xbe && q[2] == 0x01 && q[11] == 1, "query %d", n);
	char l63[80];
	memset(l63, 'a', 64);
	l63[64] = 0;
	CHECK(dc_name_to_wire(l63, q, sizeof q) < 0, "64-byte label accepted");
}

static void replace(const char *line, const char *want)
{
	char out[256];
	bool r = dc_hosts_replace(line, out, sizeof out);
	CHECK(want ? (r && strcmp(out, want) == 0) : !r, "'%s' -> '%s'", line, r ? out : "(unchanged)");
}

static void select_line(const char *conf, const char *want)
{
	char out[256];
	dc_hosts_select(conf, strlen(conf), "dns [!UNAVAIL=return] files", out, sizeof out);
	CHECK(strcmp(out, want) == 0, "select: '%s'", out);
}

static void test_hosts_line(void)
{
	replace("files dns", "files dnscache");
	replace("files mdns4_minimal [NOTFOUND=return] dns myhostname",
	        "files mdns4_minimal [NOTFOUND=return] dnscache myhostname");
	replace("files resolve [!UNAVAIL=return] dns", "files resolve [!UNAVAIL=return] dnscache");
	replace("files dnsx [ NOTFOUND = dns ] dns[UNAVAIL=return] files",
	        "files dnsx [ NOTFOUND = dns ] dnscache[UNAVAIL=return] files");
	replace("dns [!UNAVAIL=return] files", "dnscache [!UNAVAIL=return] files");
	replace("files dnscache dns", NULL);
	replace("files myhostname", NULL);
	select_line("passwd: files\n", "dns [!UNAVAIL=return] files");
	select_line("hosts: files\nhosts:dns files\n", "dns files");
	select_line("hosts: files dns\nhosts: dns\t", "files dns");
	select_line("  hosts :: files dns # c\n", "files dns # c");
	select_line("hostsx: files\n#hosts: dns\n", "dns [!UNAVAIL=return] files");
}

/* NXDOMAIN with an SOA in the authority section: RFC 2308 §5 TTL, the
 * smaller of the SOA's TTL and MINIMUM. */
static void soa_reply(struct msg *m, unsigned ttl, unsigned minimum)
{
	header(m, 9, DC_NXDOMAIN, 0, "nx.example.com", DC_T_A);
	m->b[9] = 1; /* NSCOUNT */
	u16(m, 0xc00c + 3); /* example.com */
	rr_hdr(m, DC_T_SOA, ttl, 2 + 2 + 20);
	u16(m, 0xc00c + 3);
	u16(m, 0xc00c + 3);
	u32(m, 1);
	u32(m, 3600);
	u32(m, 600);
	u32(m, 86400);
	u32(m, minimum);
}

static void test_negttl(void)
{
	static struct dc_answer a;
	struct msg m;
	uint8_t qw[256];
	dc_name_to_wire("nx.example.com", qw, sizeof qw);
	soa_reply(&m, 60, 30);
	CHECK(dc_parse_reply(m.b, m.n, 9, DC_T_A, qw, false, &a) == 0 && a.rcode == DC_NXDOMAIN, "parse");
	CHECK(a.negttl == 30, "MINIMUM below TTL: negttl %d", a.negttl);
	soa_reply(&m, 10, 30);
	CHECK(dc_parse_reply(m.b, m.n, 9, DC_T_A, qw, false, &a) == 0 && a.negttl == 10, "TTL below MINIMUM: %d", a.negttl);
	header(&m, 9, DC_NXDOMAIN, 0, "nx.example.com", DC_T_A);
	CHECK(dc_parse_reply(m.b, m.n, 9, DC_T_A, qw, false, &a) == 0 && a.negttl == -1, "no SOA: %d", a.negttl);
	soa_reply(&m, 60, 30);
	m.n -= 5; /* SOA cut short: not cacheable, but the reply still counts */
	CHECK(dc_parse_reply(m.b, m.n, 9, DC_T_A, qw, false, &a) == 0 && a.negttl == -1, "cut SOA: %d", a.negttl);
}

static void test_negcache(void)
{
	/* The library's constructor has read the environment already. */
	((struct dc_config *)dc_config())->negcache_ms = 300;
	CHECK(!dc_negcache_has("nx1.example.com"), "empty cache hit");
	dc_negcache_put("nx1.example.com", 30);
	CHECK(dc_negcache_has("nx1.example.com") && dc_negcache_has("NX1.Example.COM"), "miss after put");
	CHECK(!dc_negcache_has("nx2.example.com") && !dc_negcache_has("nx1.example.co"), "wrong name hit");
	dc_negcache_put("nx3.example.com", 0);
	CHECK(!dc_negcache_has("nx3.example.com"), "TTL 0 cached");
	/* The cap (DNSCACHE_NEGCACHE_MS, 300 ms here) bounds a 30 s TTL. */
	struct timespec ts = {0, 400 * 1000 * 1000};
	nanosleep(&ts, NULL);
	CHECK(!dc_negcache_has("nx1.example.com"), "entry outlived the cap");
	/* Colliding names replace each other; neither is ever confused. */
	char n[64];
	for (int i = 0; i < 200; i++) {
		snprintf(n, sizeof n, "c%d.example.com", i);
		dc_negcache_put(n, 30);
	}
	int hits = 0, wrong = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(n, sizeof n, "c%d.example.com", i);
		hits += dc_negcache_has(n);
		snprintf(n, sizeof n, "d%d.example.com", i);
		wrong += dc_negcache_has(n);
	}
	CHECK(hits > 0 && hits <= 64 && wrong == 0, "hits %d wrong %d", hits, wrong);
}

int main(void)
{

	test_resconf();
	test_plan();
	test_walk();
	test_parser();
	test_names();
	test_hosts_line();
	test_negttl();
	test_negcache();
	printf("unit: %d checks, %d failed\n", checks, failures);
	return failures != 0;
}
