/* transport.c: Unix stream connections to the server, framed DNS messages,
 * a few of them kept across lookups (DESIGN §8).
 *
 * Contracts kept here: SOCK_CLOEXEC (no fd leaks into exec'd children),
 * SOCK_NONBLOCK plus poll against one absolute deadline (a lookup never
 * blocks past DNSCACHE_TIMEOUT_MS), MSG_NOSIGNAL (a dead server never
 * raises SIGPIPE in the app), EINTR retried, lengths from the wire checked
 * against the frame (RFC 1035 §4.2.2 framing). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "dnscache.h"

#define DC_POOL 16 /* the most connections kept (DNSCACHE_CONNS, default 4) */

/* The configuration: one immutable snapshot per process, read from the
 * environment at the first call (the constructor's, in practice) and
 * published with a compare-and-swap.  Threads that race on the first call
 * each read a copy and the loser frees its own; nobody waits, so a child
 * forked in the middle cannot hang, and no thread keeps a copy of its own
 * (issue 13: the footprint of every thread). */
static _Atomic(struct dc_config *) config;
/* Used when even the snapshot cannot be allocated: the shim stands aside
 * (glibc's dns, or musl's own resolver, answers). */
static const struct dc_config disabled = {.disabled = true, .fallback = true, .timeout_ms = 1};

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
	c->conns = env_int("DNSCACHE_CONNS", 4, 0, DC_POOL);
	c->spin_us = env_int("DNSCACHE_SPIN_US", 50, 0, 1000);
}

const struct dc_config *dc_config(void)
{
	struct dc_config *c = atomic_load_explicit(&config, memory_order_acquire);
	if (c)
		return c;
	struct dc_config *mine = malloc(sizeof *mine);
	if (!mine)
		return &disabled;
	read_config(mine);
	if (atomic_compare_exchange_strong_explicit(&config, &c, mine, memory_order_acq_rel,
	                                            memory_order_acquire))
		return mine;
	free(mine); /* another thread published first: c is its snapshot */
	return c;
}

/* dc_debug writes one line to stderr with DNSCACHE_DEBUG set.  Its
 * formatter knows %s, %d and %% (what the messages use; the format
 * attribute checks the arguments): libc's printf takes 2 KiB of stack
 * (issue 13: a lookup's stack stays small even when debugging). */
static size_t put_str(char *buf, size_t o, size_t cap, const char *s)
{
	while (*s && o < cap)
		buf[o++] = *s++;
	return o;
}

static size_t put_int(char *buf, size_t o, size_t cap, long v)
{
	char d[24];
	int n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0 && o < cap)
		buf[o++] = '-';
	while (n > 0 && o < cap)
		buf[o++] = d[--n];
	return o;
}

void dc_debug(const char *fmt, ...)
{
	if (!dc_config()->debug)
		return;
	int saved = errno;
	enum { CAP = 511 };
	char *buf = malloc(CAP + 1);
	if (!buf) {
		errno = saved;
		return;
	}
	size_t o = put_str(buf, 0, CAP, "dnscache[");
	o = put_int(buf, o, CAP, (long)getpid());
	o = put_str(buf, o, CAP, "]: ");
	va_list ap;
	va_start(ap, fmt);
	for (const char *f = fmt; *f && o < CAP; f++) {
		if (*f != '%' || !f[1]) {
			buf[o++] = *f;
			continue;
		}
		f++;
		if (*f == 's') {
			const char *s = va_arg(ap, const char *);
			o = put_str(buf, o, CAP, s ? s : "(null)");
		} else if (*f == 'd') {
			o = put_int(buf, o, CAP, va_arg(ap, int));
		} else {
			buf[o++] = *f; /* %% */
		}
	}
	va_end(ap);
	buf[o++] = '\n';
	ssize_t w = write(2, buf, o);
	(void)w;
	free(buf);
	errno = saved;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
	if (r == DC_IO_RESET)
		r = DC_IO_UNAVAIL;
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

static void conn_close(struct dc_conn *c);

/* identity: statx on the fd itself (no GLIBC_2.33 fstat needed). */
static bool identity(int fd, struct dc_statx *st)
{
	return syscall(SYS_statx, fd, "", DC_AT_EMPTY_PATH, DC_STATX_INO | DC_STATX_TYPE, st) == 0 &&
	       S_ISSOCK(st->stx_mode);
}

/* spare_fds: a kept fd must never be the one a program with a small
 * RLIMIT_NOFILE needs for itself: keep it only with 16 numbers above it. */
static bool spare_fds(int fd)
{
	struct rlimit rl;
	return getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	       (rl.rlim_cur == RLIM_INFINITY || (rlim_t)fd + 16 < rl.rlim_cur);
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

/* conn_open connects c->fd (nonblocking, close-on-exec) before c->deadline. */
static enum dc_io conn_open(struct dc_conn *c)
{
	const struct dc_config *cfg = dc_config();
	c->rpos = c->rlen = 0;
	c->nstale = 0;
	c->spin_until = 0;
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
			conn_close(c);
			return DC_IO_TIMEOUT;
		}
		if (w < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err)
			r = -1;
		else
			r = 0;
	}
	if (r < 0) {
		/* Not strerror: its message catalogue lookup takes 2 KiB of stack. */
		int e = errno;
		dc_debug("connect %s: %s (errno %d)", cfg->socket,
		         e == ENOENT ? "no such file" : e == ECONNREFUSED ? "refused" :
		         e == EACCES ? "permission denied" : e == EAGAIN ? "backlog full" : "failed", e);
		conn_close(c);
		return DC_IO_UNAVAIL; /* ENOENT, ECONNREFUSED, EAGAIN (backlog full) */
	}
	/* Identity for the checks before each reuse, and whether keeping it
	 * leaves the program enough fds: a kept fd must never be the one an
	 * application with a small RLIMIT_NOFILE needed. */
	struct dc_statx st;
	c->pid = (int)getpid();
	c->keepable = identity(c->fd, &st) && spare_fds(c->fd);
	c->dev = c->keepable ? ((uint64_t)st.stx_dev_major << 32 | st.stx_dev_minor) : 0;
	c->ino = c->keepable ? st.stx_ino : 0;
	return DC_IO_OK;
}

static void conn_close(struct dc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->pid = 0;
	c->rpos = c->rlen = 0;
	c->nstale = 0;
}

/* The pool: a slot is taken by storing the taker's pid in holder (0:
 * free), never waited for.  A holder pid that is not ours was inherited
 * through fork from a thread of the parent, so the slot is free for us. */
struct slot {
	atomic_int holder;
	struct dc_conn c;
};
static struct slot pool[DC_POOL];
static __thread unsigned hint;

static bool take_slot(struct slot *s, int me)
{
	int h = atomic_load_explicit(&s->holder, memory_order_relaxed);
	if (h == me)
		return false; /* another thread of ours */
	return atomic_compare_exchange_strong_explicit(&s->holder, &h, me, memory_order_acquire,
	                                               memory_order_relaxed);
}

/* still_ours checks a kept fd before use: opened by this process, still the
 * socket we opened (a program may have closed it, dup2'ed over it or run
 * closefrom/close_range: then the number is not ours and is left alone),
 * and the peer has not hung up (a restarted server). */
static bool still_ours(struct dc_conn *c, int me)
{
	if (c->pid == 0 || c->fd < 0) {
		c->fd = -1; /* never opened (a zeroed slot: fd 0 is not ours) */
		return false;
	}
	struct dc_statx st;
	bool same = identity(c->fd, &st) && st.stx_ino == c->ino &&
	            ((uint64_t)st.stx_dev_major << 32 | st.stx_dev_minor) == c->dev;
	if (!same) {
		dc_debug("kept fd %d is no longer ours", c->fd);
		c->fd = -1; /* not ours to close */
		conn_close(c);
		return false;
	}
	if (c->pid != me || !spare_fds(c->fd)) {
		/* Inherited through fork: the parent's connection, shared with
		 * it; our copy of the descriptor is closed, theirs stays.  Or
		 * the program lowered RLIMIT_NOFILE since: give the fd back. */
		conn_close(c);
		return false;
	}
	struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
	if (poll(&p, 1, 0) != 0) {
		/* Readable is fine (replies of earlier lookups); hung up is not. */
		if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
			conn_close(c);
			return false;
		}
	}
	return true;
}

/* Connections beyond the kept ones are private to a lookup and closed
 * after it; at most DC_MAX_PRIVATE are open at once per process, so that a
 * program with a thousand threads does not take a thousand of the server's
 * connections.  The count is stamped with the pid: a child does not inherit
 * its parent's lookups in flight. */
#define DC_MAX_PRIVATE 16
static _Atomic uint64_t privates; /* pid << 32 | open private connections */

static bool take_private(int me)
{
	uint64_t v = atomic_load(&privates);
	for (;;) {
		uint64_t n;
		if ((int)(v >> 32) != me)
			n = (uint64_t)(uint32_t)me << 32 | 1;
		else if ((v & 0xffffffffu) < DC_MAX_PRIVATE)
			n = v + 1;
		else
			return false;
		if (atomic_compare_exchange_weak(&privates, &v, n))
			return true;
	}
}

/* Waiting for a connection: a futex on a counter of releases (no lock, so
 * nothing a fork could leave held; a release while a waiter was about to
 * sleep changes the counter, and the waiter does not sleep). */
static atomic_int releases, waiters;
#define DC_FUTEX_WAIT_PRIVATE 128 /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG */
#define DC_FUTEX_WAKE_PRIVATE 129

static void wait_release(int seen, int64_t deadline)
{
	int64_t left = deadline - dc_now_ms();
	if (left <= 0)
		return;
	if (left > 20)
		left = 20;
	struct timespec ts = {0, (long)left * 1000000};
	atomic_fetch_add(&waiters, 1);
	syscall(SYS_futex, &releases, DC_FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
	atomic_fetch_sub(&waiters, 1);
}

static void released(void)
{
	atomic_fetch_add(&releases, 1);
	if (atomic_load(&waiters) > 0)
		syscall(SYS_futex, &releases, DC_FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void give_private(void)
{
	uint64_t v = atomic_load(&privates);
	while ((int)(v >> 32) == (int)getpid() && (v & 0xffffffffu) > 0 &&
	       !atomic_compare_exchange_weak(&privates, &v, v - 1))
		;
}

struct dc_conn *dc_conn_acquire(int64_t deadline, enum dc_io *io, bool *reused)
{
	const struct dc_config *cfg = dc_config();
	int me = (int)getpid();
	struct dc_conn *c = NULL;
	*reused = false;
	while (!c) {
		int seen = atomic_load(&releases);
		for (int k = 0; k < cfg->conns; k++) {
			unsigned i = (hint + (unsigned)k) % (unsigned)cfg->conns;
			if (take_slot(&pool[i], me)) {
				hint = i;
				c = &pool[i].c;
				c->kept = true;
				*reused = still_ours(c, me);
				break;
			}
		}
		if (c)
			break;
		if (take_private(me)) {
			c = malloc(sizeof *c);
			if (!c) {
				give_private();
				*io = DC_IO_UNAVAIL;
				return NULL;
			}
			c->kept = false;
			c->fd = -1;
			break;
		}
		/* Every connection is busy: wait for one, within the deadline. */
		if (dc_now_ms() >= deadline) {
			*io = DC_IO_TIMEOUT;
			return NULL;
		}
		wait_release(seen, deadline);
	}
	c->deadline = deadline;
	if (*reused) {
		*io = DC_IO_OK;
		return c;
	}
	*io = conn_open(c);
	if (*io != DC_IO_OK) {
		dc_conn_release(c, false, NULL, 0);
		return NULL;
	}
	return c;
}

enum dc_io dc_conn_reopen(struct dc_conn *c)
{
	conn_close(c);
	return conn_open(c);
}

void dc_conn_release(struct dc_conn *c, bool healthy, const uint16_t *outstanding, int n)
{
	if (!c)
		return;
	if (!c->kept) {
		conn_close(c);
		free(c);
		give_private();
		released();
		return;
	}
	if (!healthy || !c->keepable || c->nstale + n > DC_MAX_STALE) {
		conn_close(c);
	} else {
		memcpy(c->stale + c->nstale, outstanding, (size_t)n * sizeof *outstanding);
		c->nstale += n;
	}
	struct slot *s = (struct slot *)((char *)c - offsetof(struct slot, c));
	atomic_store_explicit(&s->holder, 0, memory_order_release);
	released();
}

bool dc_conn_stale(struct dc_conn *c, uint16_t id)
{
	for (int i = 0; i < c->nstale; i++)
		if (c->stale[i] == id) {
			c->stale[i] = c->stale[--c->nstale];
			return true;
		}
	return false;
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
		if (n < 0 && off == 0 && (errno == EPIPE || errno == ECONNRESET))
			return DC_IO_RESET;
		return DC_IO_UNAVAIL;
	}
	/* A cache hit comes back within tens of microseconds: waiting for it
	 * by yielding the CPU, not by sleeping in poll, spares the reply a
	 * wakeup (on another CPU most of a round trip: 57 vs 9 us measured),
	 * and a server that shares this CPU runs at once. */
	int spin = dc_config()->spin_us;
	c->spin_until = spin > 0 ? now_ns() + (int64_t)spin * 1000 : 0;
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
			return DC_IO_RESET; /* server closed */
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return DC_IO_RESET;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (c->spin_until && now_ns() < c->spin_until) {
				sched_yield();
				continue;
			}
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
