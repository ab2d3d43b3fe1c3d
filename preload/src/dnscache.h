/* dnscache.h: internal interfaces of libnss_dnscache.so.2.
 *
 * One object is both a glibc NSS module ("dnscache") and an LD_PRELOAD
 * library that inserts that module into the process's hosts line.  It
 * resolves names over a Unix stream socket speaking DNS wire messages with
 * RFC 1035 §4.2.2 two-byte length framing.  Files by concern:
 *   preload.c    constructor: rewrite the hosts line (__nss_configure_lookup)
 *   nss.c        the exported NSS entry points, buffer filling, ERANGE cache
 *   lookup.c     one lookup: search list walk, status mapping
 *   batch.c      the candidates' queries and replies on the lookup's connection
 *   resconf.c    /etc/resolv.conf, LOCALDOMAIN, RES_OPTIONS, search plan
 *   wire.c       query building and the bounded reply parser
 *   transport.c  socket, deadline, framing, circuit breaker, environment
 *   negcache.c   per-process cache of NXDOMAIN search candidates
 *   nssdns.c     glibc's own dns module, found at run time: the fallback
 * Everything not exported is hidden (-fvisibility=hidden). */
#ifndef DNSCACHE_H
#define DNSCACHE_H

#include <netdb.h>
#if defined(__GLIBC__)
#include <nss.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DC_API __attribute__((visibility("default")))

/* statx(2) by its kernel layout: glibc's wrapper needs GLIBC_2.28 and
 * musl 1.2.3 has none; the syscall is called directly. */
struct dc_statx {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, spare0;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct { int64_t tv_sec; uint32_t tv_nsec; int32_t reserved; } stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t spare[14];
};
#define DC_STATX_TYPE 0x1u
#define DC_STATX_MTIME 0x40u
#define DC_STATX_INO 0x100u
#define DC_STATX_SIZE 0x200u
#define DC_AT_EMPTY_PATH 0x1000

#define DC_MAXDNAME 256      /* MAXHOSTNAMELEN incl. NUL, presentation form */
#define DC_MAXCDNAME 255     /* RFC 1035 §2.3.4: wire form of a name */
#define DC_MAX_ADDRS 128     /* addresses kept per reply */
#define DC_MAX_ALIASES 16    /* names kept per reply (qname + CNAME targets) */
#define DC_MAX_CNAMES 16     /* a longer chain is treated as malformed */
#define DC_NAMES_BYTES 2048  /* arena for alias strings */
#define DC_MAXNDOTS 15       /* RES_MAXNDOTS */
#define DC_MAXFRAME 65535

#define DC_T_A 1
#define DC_T_CNAME 5
#define DC_T_SOA 6
#define DC_T_OPT 41
#define DC_T_AAAA 28
#define DC_C_IN 1

#define DC_NOERROR 0
#define DC_FORMERR 1
#define DC_SERVFAIL 2
#define DC_NXDOMAIN 3
#define DC_NOTIMP 4
#define DC_REFUSED 5

/* ---- wire.c ---- */

/* dc_answer is one parsed reply, reduced the way glibc's nss_dns reduces it. */
struct dc_answer {
	int rcode;
	int ancount;
	bool tc;
	bool qname_hnok;     /* the question name is a valid host name */
	int32_t ttl;         /* minimum TTL of CNAME and address records */
	int32_t negttl;      /* no answers: RFC 2308 TTL from the SOA, else -1 */
	int naddrs;
	uint8_t addrs[DC_MAX_ADDRS][16];
	int addrlen;         /* 4 or 16 */
	char canon[DC_MAXDNAME]; /* getaddrinfo's canonical name */
	int naliases;        /* hostent: qname then hnok CNAME targets */
	uint16_t alias_off[DC_MAX_ALIASES];
	char names[DC_NAMES_BYTES];
};

int dc_name_to_wire(const char *name, uint8_t *out, size_t outlen);
bool dc_wire_hnok(const uint8_t *wire);
bool dc_name_hnok(const char *name);
int dc_build_query(uint8_t *buf, size_t buflen, uint16_t id, const char *name, uint16_t qtype);
/* dc_parse_reply returns 0, or -1 when the reply is malformed or does not
 * answer (id, qtype, qwire).  hostent selects glibc's getanswer_r rules
 * (class IN only), else gaih_getanswer_slice rules. */
int dc_parse_reply(const uint8_t *pkt, size_t len, uint16_t id, uint16_t qtype,
                   const uint8_t *qwire, bool hostent, struct dc_answer *out);
static inline const char *dc_alias(const struct dc_answer *a, int i)
{
	return a->names + a->alias_off[i];
}

/* ---- resconf.c ---- */

/* dc_resconf is what res_init makes of resolv.conf and the environment,
 * as far as it decides which names are queried.  The search list has no
 * limit, as in glibc's resolv_conf (the legacy _res.dnsrch's 6 do not
 * apply to the search walk). */
struct dc_resconf {
	int ndots;
	bool notldquery;
	bool noaaaa;
	int nsearch, cap;
	char **search;       /* malloc'd strings */
	char *hostaliases;   /* HOSTALIASES, malloc'd, or NULL */
	int nsort;           /* sortlist: address/mask pairs, network order */
	struct dc_sort { uint32_t addr, mask; } *sort;
};

/* dc_resconf_parse parses resolv.conf text plus the LOCALDOMAIN and RES_OPTIONS
 * values (either may be NULL) and the host name (for the default domain).
 * dc_resconf_clear frees what it allocated. */
void dc_resconf_parse(struct dc_resconf *rc, const char *text, size_t len,
                      const char *localdomain, const char *res_options, const char *hostname);
void dc_resconf_clear(struct dc_resconf *rc);
/* dc_addrsort orders n IPv4 addresses (4 bytes each, stride bytes apart)
 * by the sortlist, as nss_dns's addrsort does for gethostbyname's A
 * results. */
void dc_addrsort(const struct dc_resconf *rc, uint8_t *addrs, size_t stride, int n);
/* dc_hostalias returns the HOSTALIASES target of a dotless name into dst
 * (__res_context_hostalias), or NULL. */
const char *dc_hostalias(const struct dc_resconf *rc, const char *name, char *dst, size_t len);
/* dc_read_file returns the whole file, malloc'd (NULL when unreadable). */
char *dc_read_file(const char *path, size_t *len);
/* dc_resconf_acquire returns the process's parsed /etc/resolv.conf (re-read
 * when its inode, size or mtime changed), or NULL when out of memory;
 * dc_resconf_release(token) gives it back. */
const struct dc_resconf *dc_resconf_acquire(const void **token);
void dc_resconf_release(const void *token);

struct dc_plan {
	int n;
	char (*names)[DC_MAXDNAME]; /* absolute names, no trailing dot; malloc'd */
	int as_is_first;   /* 1: names[0] is the name as-is, tried first */
	int as_is_last;    /* 1: names[n-1] is the name as-is, tried last */
	bool trailing_dot;
};
/* dc_search_plan lists the names res_nsearch would query, in order;
 * false when out of memory.  dc_plan_free frees the list. */
bool dc_search_plan(const struct dc_resconf *rc, const char *name, struct dc_plan *p);
void dc_plan_free(struct dc_plan *p);

/* Outcome of one candidate, as __res_context_query would report it. */
enum dc_qres { DC_Q_ANSWER, DC_Q_NXDOMAIN, DC_Q_NODATA, DC_Q_SERVFAIL, DC_Q_UNAVAIL };
/* dc_search_walk runs the plan with glibc's stopping rules; query is called
 * per candidate index.  Returns the index of the answering candidate, or -1
 * with *herrno set (HOST_NOT_FOUND, NO_DATA, TRY_AGAIN) or -2 on UNAVAIL.
 * *servfail gets DC_SF_SEEN when a candidate answered SERVFAIL, and
 * DC_SF_LAST when the last one asked did (glibc then ends with errno
 * ETIMEDOUT from res_send, which nss_dns maps to UNAVAIL). */
#define DC_SF_SEEN 1
#define DC_SF_LAST 2
int dc_search_walk(const struct dc_plan *p, enum dc_qres (*query)(void *ctx, int i),
                   void *ctx, int *herrno, int *servfail);

/* ---- transport.c ---- */

struct dc_config {
	char socket[108];
	int timeout_ms;
	int breaker_ms;
	int breaker_after;
	bool disabled;
	bool debug;
	int negcache_ms;     /* cap of a negative-cache entry's life; 0: off */
	bool pipeline;       /* send a search list's candidates in one write */
	bool fallback;       /* DNSCACHE_FALLBACK: ask glibc's dns when the cache cannot answer */
	int conns;           /* DNSCACHE_CONNS: connections kept across lookups (0: none) */
	int spin_us;         /* DNSCACHE_SPIN_US: how long a reply is waited for by yielding before sleeping */
	int servfail_after;  /* consecutive SERVFAIL fallbacks that open the breaker */
};
const struct dc_config *dc_config(void);
void dc_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t dc_now_ms(void);

#define DC_MAX_STALE 64
/* dc_conn is one connection to the socket.  A kept one (DESIGN §8) lives in
 * a small process-wide pool and carries its identity (who opened it, which
 * socket inode) and the IDs of replies still to come for earlier lookups. */
struct dc_conn {
	int fd;
	int64_t deadline;    /* of the current lookup */
	int64_t spin_until;  /* CLOCK_MONOTONIC ns: until then, wait for a reply by yielding */
	bool kept;           /* from the pool: survives the lookup */
	bool keepable;       /* opened with fds to spare (RLIMIT_NOFILE) */
	int pid;             /* the process that opened fd */
	uint64_t dev, ino;   /* the socket's identity, from statx at open */
	int nstale;
	uint16_t stale[DC_MAX_STALE];
	size_t rpos, rlen;   /* unread bytes of rbuf: several replies per recv */
	uint8_t rbuf[2048];
};
/* DC_IO_RESET: the peer went away (EPIPE, ECONNRESET, EOF): a kept
 * connection is reopened once. */
enum dc_io { DC_IO_OK, DC_IO_UNAVAIL, DC_IO_TIMEOUT, DC_IO_RESET };
bool dc_breaker_open(void);
/* dc_breaker_record counts a lookup's outcome: r for the socket, servfail
 * when the cache answered SERVFAIL (and the lookup fell back). */
void dc_breaker_record(enum dc_io r, bool servfail);
/* dc_conn_acquire returns a connection for one lookup, open, or NULL with
 * *io set: a kept one when a pool slot is free (checked first: same
 * process, still our socket, peer still there), else a private one.
 * *reused tells whether it was open before.  dc_conn_release gives it back:
 * healthy false closes it; outstanding lists the IDs whose replies were not
 * read (they are dropped when they come). */
struct dc_conn *dc_conn_acquire(int64_t deadline, enum dc_io *io, bool *reused);
void dc_conn_release(struct dc_conn *c, bool healthy, const uint16_t *outstanding, int n);
/* dc_conn_reopen replaces a connection the peer closed by a new one. */
enum dc_io dc_conn_reopen(struct dc_conn *c);
/* dc_conn_stale reports (and forgets) a reply ID of an earlier lookup. */
bool dc_conn_stale(struct dc_conn *c, uint16_t id);
/* dc_send writes buf (framed queries) whole before the deadline. */
enum dc_io dc_send(struct dc_conn *c, const uint8_t *buf, size_t len);
/* dc_recv_frame reads the next framed reply into *frame (malloc'd, exactly
 * *len bytes, at least a DNS header); the caller matches it by id. */
enum dc_io dc_recv_frame(struct dc_conn *c, uint8_t **frame, size_t *len);
uint16_t dc_random_id(void);

/* ---- batch.c ---- */

enum dc_cand_state { DC_C_UNSENT, DC_C_SENT, DC_C_NEGCACHED, DC_C_BAD };

/* dc_cand is one candidate name of the search plan. */
struct dc_cand {
	enum dc_cand_state state;
	uint16_t ids[2];
	uint8_t *frame[2]; /* its replies, malloc'd, as they arrive */
	size_t len[2];
};

/* dc_batch is the candidates of one lookup on its one connection. */
struct dc_batch {
	const struct dc_plan *plan;
	int nq;              /* queries per candidate: A, or A and AAAA */
	uint16_t qtype[2];
	bool pipeline;       /* DNSCACHE_PIPELINE */
	bool dotted;         /* the name has a dot other than a trailing one */
	struct dc_conn *conn; /* acquired on the first send */
	bool reused;         /* conn was open before this lookup */
	bool retried;        /* a reset connection was reopened once already */
	bool broken;         /* an I/O error or timeout: conn is not reusable */
	int64_t deadline;
	enum dc_io io;       /* DC_IO_UNAVAIL until the socket answers or times out */
	int nids;
	uint16_t *used;       /* 2 * plan->n ids */
	struct dc_cand *cand; /* plan->n candidates */
};
/* dc_batch_replies makes candidate i's replies available in cand[i].frame,
 * sending its batch first when needed, and returns DC_C_SENT; or
 * DC_C_NEGCACHED (known NXDOMAIN, nothing sent), DC_C_BAD (no valid query
 * name), or -1 when the connection failed (io says how). */
int dc_batch_replies(struct dc_batch *b, int i);
/* dc_batch_free closes the connection and frees the replies. */
void dc_batch_free(struct dc_batch *b);

/* ---- negcache.c ---- */

/* dc_negcache_has reports whether name (absolute, no trailing dot) is
 * known not to exist; dc_negcache_put records that for ttl seconds (RFC 2308
 * §5 TTL), capped by DNSCACHE_NEGCACHE_MS. */
bool dc_negcache_has(const char *name);
void dc_negcache_put(const char *name, int32_t ttl);

/* ---- preload.c ---- */

/* dc_hosts_select copies the hosts sources glibc would use from
 * nsswitch.conf text (the last hosts line; glibc's default without one). */
void dc_hosts_select(const char *text, size_t len, const char *def, char *out, size_t outlen);
/* dc_hosts_replace writes line with every "dns" source replaced by
 * "dnscache", actions kept.  Returns false when there is nothing to replace
 * or the line names dnscache already. */
bool dc_hosts_replace(const char *line, char *out, size_t outlen);

/* ---- nssdns.c (glibc) ---- */
#if defined(__GLIBC__)

typedef enum nss_status (*dc_gh4_fn)(const char *, struct gaih_addrtuple **, char *, size_t,
                                     int *, int *, int32_t *);
typedef enum nss_status (*dc_gh3_fn)(const char *, int, struct hostent *, char *, size_t, int *,
                                     int *, int32_t *, char **);
typedef enum nss_status (*dc_gba2_fn)(const void *, socklen_t, int, struct hostent *, char *,
                                      size_t, int *, int *, int32_t *);
typedef enum nss_status (*dc_gba_fn)(const void *, socklen_t, int, struct hostent *, char *,
                                     size_t, int *, int *);
enum dc_dns_fn { DC_DNS_GH4, DC_DNS_GH3, DC_DNS_GBA2, DC_DNS_GBA, DC_DNS_NFN };
/* dc_dns_fn returns glibc's _nss_dns_<which>, or NULL when not found. */
void *dc_dns_fn(enum dc_dns_fn which);
#endif

/* ---- lookup.c ---- */

/* dc_result is one lookup's outcome, malloc'd to its size: the addresses
 * and names it has, nothing more (a thread carries no result between
 * lookups; nss.c keeps one only for glibc's ERANGE retry). */
struct dc_result {
	int status;    /* enum nss_status */
	int herrno;
	int err;       /* errno to report when status is not SUCCESS */
	bool fallback; /* the cache could not answer: ask glibc's dns module */
	int32_t ttl;
	bool hostent;  /* aliases valid (gethostbyname3 rules) */
	int family;    /* AF_UNSPEC for gethostbyname4, else AF_INET/AF_INET6 */
	int naliases;
	uint16_t alias_off[DC_MAX_ALIASES];
	const char *canon; /* getaddrinfo's canonical name ("" when none) */
	const char *names; /* the aliases' strings (hostent) */
	int naddrs;
	struct dc_addr { int family; uint8_t addr[16]; } addrs[]; /* naddrs */
};
/* dc_lookup resolves name for family (AF_UNSPEC: A and AAAA, gaih rules)
 * and returns the result, malloc'd (the caller frees it), or NULL when out
 * of memory (then the cache could not answer: ask glibc's dns). */
struct dc_result *dc_lookup(const char *name, int family);

#endif
