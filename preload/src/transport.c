/* transport.c: one Unix stream connection per lookup, framed DNS messages.
 *
 * Contracts kept here: SOCK_CLOEXEC (no fd leaks into exec'd children),
 * SOCK_NONBLOCK plus poll against one absolute deadline (a lookup never
 * blocks past DNSCACHE_TIMEOUT_MS), MSG_NOSIGNAL (a dead server never
 * raises SIGPIPE in the app), EINTR retried, lengths from the wire checked
 * against the frame (RFC 1035 §4.2.2 framing). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dnscache.h"

static struct dc_config config;
static atomic_int config_state; /* 0 unread, 1 reading, 2 ready */

static int env_int(const char *name, int def, int min, int max)
{
	const char *v = secure_getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	long n = strtol(v, &end, 10);
	if (*end || n < min || n > max)
		return def;
	return (int)n;
}

static bool env_bool(const char *name)
{
	const char *v = secure_getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

static void read_config(struct dc_config *c)
{
	const char *p = secure_getenv("DNSCACHE_SOCKET");
	if (!p || !*p || strlen(p) >= sizeof c->socket)
		p = "/dns_cache/dns.sock";
	strcpy(c->socket, p);
	c->timeout_ms = env_int("DNSCACHE_TIMEOUT_MS", 1500, 1, 60000);
	c->breaker_ms = env_int("DNSCACHE_BREAKER_MS", 5000, 0, 3600000);
	c->breaker_after = env_int("DNSCACHE_BREAKER_AFTER", 2, 1, 1000);
	c->disabled = env_bool("DNSCACHE_DISABLE");
	c->debug = env_bool("DNSCACHE_DEBUG");
	c->negcache_ms = env_int("DNSCACHE_NEGCACHE_MS", 5000, 0, 3600000);
	const char *pl = secure_getenv("DNSCACHE_PIPELINE");
	c->pipeline = !pl || !*pl || strcmp(pl, "0") != 0;
	const char *fb = secure_getenv("DNSCACHE_FALLBACK");
	c->fallback = !fb || !*fb || strcmp(fb, "0") != 0;
	c->servfail_after = env_int("DNSCACHE_SERVFAIL_AFTER", 8, 1, 100000);
}

/* dc_config reads the environment once (the constructor's call, in
 * practice).  A thread that finds another one reading it reads its own
 * copy instead of waiting, so a child forked meanwhile cannot hang. */
const struct dc_config *dc_config(void)
{
	static __thread struct dc_config mine;
	int s = atomic_load_explicit(&config_state, memory_order_acquire);
	if (s == 2)
		return &config;
	s = 0;
	if (atomic_compare_exchange_strong(&config_state, &s, 1)) {
		read_config(&config);
		atomic_store_explicit(&config_state, 2, memory_order_release);
		return &config;
	}
	read_config(&mine);
	return &mine;
}

void dc_debug(const char *fmt, ...)
{
	if (!dc_config()->debug)
		return;
	int saved = errno;
	char buf[512];
	int n = snprintf(buf, sizeof buf, "dnscache[%d]: ", (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2));
	buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
	errno = saved;
}

int64_t dc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The circuit breaker: after breaker_after consecutive timed-out lookups,
 * or servfail_after consecutive lookups the cache answered with SERVFAIL
 * (its upstreams are down: asking it first would double the load of every
 * failure), the socket is skipped (glibc's dns answers at once) for
 * breaker_ms; then one lookup probes it. */
static atomic_int timeouts, servfails;
static _Atomic int64_t open_until;

bool dc_breaker_open(void)
{
	int64_t u = atomic_load(&open_until);
	if (u == 0)
		return false;
	int64_t now = dc_now_ms();
	if (now < u)
		return true;
	/* Half-open: exactly one caller gets to probe for the next period. */
	int64_t next = now + dc_config()->breaker_ms;
	return !atomic_compare_exchange_strong(&open_until, &u, next);
}

static void trip(const char *why)
{
	atomic_store(&open_until, dc_now_ms() + dc_config()->breaker_ms);
	dc_debug("breaker open for %d ms (%s)", dc_config()->breaker_ms, why);
}

void dc_breaker_record(enum dc_io r, bool servfail)
{
	if (r == DC_IO_TIMEOUT) {
		if (atomic_fetch_add(&timeouts, 1) + 1 >= dc_config()->breaker_after)
			trip("timeouts");
	} else if (r == DC_IO_OK && servfail) {
		atomic_store(&timeouts, 0);
		/* A probe (the breaker was open) that gets SERVFAIL trips it again. */
		if (atomic_fetch_add(&servfails, 1) + 1 >= dc_config()->servfail_after ||
		    atomic_load(&open_until) != 0) {
			atomic_store(&servfails, 0);
			trip("SERVFAIL");
		}
	} else if (r == DC_IO_OK) {
		atomic_store(&timeouts, 0);
		atomic_store(&servfails, 0);
		atomic_store(&open_until, 0);
	}
}

static __thread uint64_t rng;

uint16_t dc_random_id(void)
{
	if (rng == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ ((uint64_t)getpid() << 16) ^
		      (uint64_t)(uintptr_t)&rng;
		rng |= 1;
	}
	/* xorshift64*: ids only need to differ within one connection. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint16_t)((rng * 2685821657736338717ULL) >> 48);
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - dc_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = ev};
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		return 1;
	}
}

enum dc_io dc_conn_open(struct dc_conn *c)
{
	const struct dc_config *cfg = dc_config();
	c->rpos = c->rlen = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return DC_IO_UNAVAIL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, cfg->socket, strlen(cfg->socket) + 1);
	int r;
	do
		r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EINPROGRESS) {
		int w = wait_fd(c->fd, POLLOUT, c->deadline);
		int err = 0;
		socklen_t l = sizeof err;
		if (w == 0) {
			dc_conn_close(c);
			return DC_IO_TIMEOUT;
		}
		if (w < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err)
			r = -1;
		else
			r = 0;
	}
	if (r < 0) {
		dc_debug("connect %s: %s", cfg->socket, strerror(errno));
		dc_conn_close(c);
		return DC_IO_UNAVAIL; /* ENOENT, ECONNREFUSED, EAGAIN (backlog full) */
	}
	return DC_IO_OK;
}

void dc_conn_close(struct dc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static enum dc_io send_all(struct dc_conn *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(c->fd, POLLOUT, c->deadline);
			if (w == 0)
				return DC_IO_TIMEOUT;
			if (w < 0)
				return DC_IO_UNAVAIL;
			continue;
		}
		return DC_IO_UNAVAIL;
	}
	return DC_IO_OK;
}

/* recv_full reads exactly len bytes before the deadline, through c->rbuf
 * so that the replies already queued on the socket come in one recv. */
static enum dc_io recv_full(struct dc_conn *c, uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		if (c->rpos < c->rlen) {
			size_t n = c->rlen - c->rpos < len - off ? c->rlen - c->rpos : len - off;
			memcpy(buf + off, c->rbuf + c->rpos, n);
			c->rpos += n;
			off += n;
			continue;
		}
		/* A large rest goes straight into buf. */
		bool direct = len - off >= sizeof c->rbuf;
		ssize_t n = recv(c->fd, direct ? buf + off : c->rbuf, direct ? len - off : sizeof c->rbuf, 0);
		if (n > 0) {
			if (direct) {
				off += (size_t)n;
			} else {
				c->rpos = 0;
				c->rlen = (size_t)n;
			}
			continue;
		}
		if (n == 0)
			return DC_IO_UNAVAIL; /* server closed */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(c->fd, POLLIN, c->deadline);
			if (w == 0)
				return DC_IO_TIMEOUT;
			if (w < 0)
				return DC_IO_UNAVAIL;
			continue;
		}
		return DC_IO_UNAVAIL;
	}
	return DC_IO_OK;
}

enum dc_io dc_send(struct dc_conn *c, const uint8_t *buf, size_t len)
{
	return send_all(c, buf, len);
}

/* dc_recv_frame reads one framed message into a buffer of its exact size
 * (the caller frees it).  A frame too short for a DNS header means the
 * peer is not a DNS server. */
enum dc_io dc_recv_frame(struct dc_conn *c, uint8_t **frame, size_t *flen)
{
	uint8_t hdr[2];
	*frame = NULL;
	enum dc_io r = recv_full(c, hdr, 2);
	if (r != DC_IO_OK)
		return r;
	size_t len = (size_t)hdr[0] << 8 | hdr[1];
	if (len < 12)
		return DC_IO_UNAVAIL;
	uint8_t *b = malloc(len);
	if (!b)
		return DC_IO_UNAVAIL;
	r = recv_full(c, b, len);
	if (r != DC_IO_OK) {
		free(b);
		return r;
	}
	*frame = b;
	*flen = len;
	return DC_IO_OK;
}
