package unixsock

import "time"

// The connections of one socket are shared between the uids of its peers (SO_PEERCRED at
// accept), so that one local process, or one user, cannot take them all and lock the others
// out: a uid holds at most max_connections_per_uid. When max_connections are open, a newcomer
// of a uid that holds at least two fewer than the uids that hold the most takes the place of
// their connection idle the longest.

// admit, called with l.mu held, returns "" when a new connection of p is served, else the kind
// of error that closes it: the listener is closing or max_connections are open
// ("max_connections"), or p's uid holds its share ("max_connections_per_uid").
func (l *listener) admit(u *Unixsock, p *peer) string {
	uid, share := p.key(), u.opts.maxConnsUID
	switch {
	case l.closed:
		return "max_connections"
	case l.uids[uid] >= share && share < u.opts.maxConns:
		if now := time.Now(); now.Sub(l.warned) >= warnEvery {
			l.warned = now
			log.Warningf("%s: uid %s holds max_connections_per_uid (%d): closing its new connections", l.path, p.uidString(), share)
		}
		return "max_connections_per_uid"
	case l.open >= u.opts.maxConns && !l.evict(u, uid):
		return "max_connections"
	}
	return ""
}

// warnEvery spaces the warnings about a uid at its share: a client that keeps dialling must not
// flood the log.
const warnEvery = 10 * time.Second

// evict, called with l.mu held, makes room for a connection of uid when max_connections are
// open. Among the connections of the uids that hold the most, if that is at least two more than
// uid holds, it closes the one idle the longest: its reader waits for the next query, none is in
// flight, and its last frame read or reply written is the oldest. A connection that is reading
// a frame or serving a query is never evicted. The evicted one stops reading at once and no
// longer counts.
func (l *listener) evict(u *Unixsock, uid int64) bool {
	most := 0
	for _, n := range l.uids {
		most = max(most, n)
	}
	if most <= l.uids[uid]+1 {
		return false
	}
	var victim *conn
	var since int64
	for c := range l.conns {
		if c.evicted || l.uids[c.uid] != most {
			continue
		}
		// The reader holds one slot of sem while it waits; a query in flight holds another.
		if !c.waiting.Load() || len(c.sem) > 1 {
			continue
		}
		s := c.active.Load()
		if victim == nil || s < since {
			victim, since = c, s
		}
	}
	if victim == nil {
		return false
	}
	l.release(victim)
	victim.evicted = true
	victim.stopReading()
	errorsCount.WithLabelValues(u.addr, "evicted").Inc()
	return true
}

// release, called with l.mu held, stops counting c, unless it was evicted (then it is not
// counted already).
func (l *listener) release(c *conn) {
	if c.evicted {
		return
	}
	l.open--
	if l.uids[c.uid]--; l.uids[c.uid] == 0 {
		delete(l.uids, c.uid)
	}
}
