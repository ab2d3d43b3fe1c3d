/* negcache.c: a small per-process cache of names the server said do not
 * exist, so that search-list candidates known to be NXDOMAIN cost nothing.
 *
 * Only whole-name NXDOMAIN is kept (every query of the candidate answered
 * NXDOMAIN; RFC 8020: then no type exists at the name), never NODATA, so a
 * cached candidate is exactly what a fresh query would report to the search
 * walk.  Lifetime: RFC 2308 §5 (the smaller of the SOA's TTL and MINIMUM),
 * capped by DNSCACHE_NEGCACHE_MS (default 5 s; 0 disables); replies without
 * an SOA are not cached.
 *
 * Thread safety without locks that can block: each slot has a busy flag
 * taken with a compare-and-swap; a reader or writer that finds it busy
 * treats the slot as a miss or skips the insert, never waits.  Fork safety
 * follows: a child forked while a slot was busy merely loses that slot. */
#include <stdatomic.h>
#include <string.h>

#include "dnscache.h"

#define SLOTS 64 /* direct-mapped by name hash */

struct slot {
	atomic_int busy;
	int64_t expires; /* CLOCK_MONOTONIC ms */
	char name[DC_MAXDNAME];
};

static struct slot slots[SLOTS];

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static struct slot *slot_of(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (uint32_t)lower((unsigned char)*p)) * 16777619u;
	return &slots[h % SLOTS];
}

static bool take(struct slot *s)
{
	int z = 0;
	return atomic_compare_exchange_strong_explicit(&s->busy, &z, 1, memory_order_acquire,
	                                               memory_order_relaxed);
}

static void give(struct slot *s)
{
	atomic_store_explicit(&s->busy, 0, memory_order_release);
}

static bool same(const char *a, const char *b)
{
	for (; *a && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
		;
	return *a == 0 && *b == 0;
}

bool dc_negcache_has(const char *name)
{
	if (dc_config()->negcache_ms == 0 || !*name)
		return false;
	struct slot *s = slot_of(name);
	if (!take(s))
		return false;
	bool hit = s->expires > dc_now_ms() && same(s->name, name);
	give(s);
	return hit;
}

void dc_negcache_put(const char *name, int32_t ttl)
{
	int cap = dc_config()->negcache_ms;
	size_t l = strlen(name);
	if (cap == 0 || ttl <= 0 || l == 0 || l >= DC_MAXDNAME)
		return;
	int64_t ms = (int64_t)ttl * 1000 < cap ? (int64_t)ttl * 1000 : cap;
	struct slot *s = slot_of(name);
	if (!take(s))
		return;
	memcpy(s->name, name, l + 1);
	s->expires = dc_now_ms() + ms;
	give(s);
}
