package warmcache

import (
	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// probe is one request's lookup: its key, and what to do with a usable entry, all done
// under the shard's read lock so that the entry's bytes are copied before anything can
// free them.
type probe struct {
	// The key: the question name as the client sent it (qwire, wire format) or in
	// presentation format (name).
	qwire         []byte
	name          string
	qtype, qclass uint16
	do, cd        bool
	now           int64

	// A fresh entry is rendered as raw bytes into dst as a reply to rt (renderTo) when raw
	// allows it for the entry's rcode; else, when req is set, it is unpacked into reply, a
	// reply to req (whose OPT is opt) for WriteMsg. Either counts as a request answered
	// by the entry.
	raw   rawMode
	rt    replyTo
	limit int
	req   *dns.Msg
	opt   *dns.OPT
	// staleFor is how many seconds past its expiry an entry may be served stale; such an
	// entry is copied out into stale and counts as answering the request.
	staleFor int64

	// What was found.
	found    bool
	ref      ref    // a fresh entry's, with req
	origin   uint32 // a fresh entry's, with req
	rem      int64  // seconds of TTL left, negative once expired
	rcode    int
	ad       bool
	hits     int64 // an expired entry's request count, before this request
	rendered bool  // dst holds the reply
	reply    *dns.Msg
	err      error // from unpacking reply
	stale    *entry
}

// lookup looks up p's key under h and does what p asks, appending to dst.
func (s *store) lookup(h uint64, p *probe, dst []byte) []byte {
	sh := s.shard(h)
	sh.mu.RLock()
	out := s.lookupLocked(sh, h, p, dst)
	sh.mu.RUnlock()
	return out
}

func (s *store) lookupLocked(sh *shard, h uint64, p *probe, dst []byte) []byte {
	if sh.closed {
		return dst
	}
	slot, _, ok := sh.find(h)
	if !ok {
		return dst
	}
	r := sh.rec(slot)
	pl := s.payload(r)
	msg := pl[:r.msgLen]
	if r.qtype(pl) != p.qtype || r.qclass(pl) != p.qclass || (r.flags&recDO != 0) != p.do || (r.flags&recCD != 0) != p.cd {
		return dst
	}
	if p.qwire != nil {
		if !foldEqual(p.qwire, msg[wire.HeaderLen:r.qEnd-4]) {
			return dst
		}
	} else if !nameEqual(msg, wire.HeaderLen, p.name) {
		return dst
	}
	p.found = true
	p.rem = r.remaining(p.now)
	p.rcode, p.ad = int(r.rcode), r.flags&recAD != 0
	if p.rem > 0 {
		if p.raw == rawAlways || (p.raw == rawNoError && r.rcode == dns.RcodeSuccess && p.opt == nil) {
			out, ok := renderMsg(dst, msg, pl[r.msgLen:], int(r.qEnd), p.ad, &p.rt, uint32(p.rem), p.limit) // #nosec G115 -- 0 < rem <= ttl
			if ok {
				r.touch(p.now)
				p.rendered = true
				if p.req != nil { // ServeDNS remembers the request's origin (origins.go)
					p.ref, p.origin = ref{h, slot, r.gen}, r.origin.Load()
				}
				return out
			}
		}
		if p.req != nil {
			// Unpack copies what it reads, so the reply outlives the lock.
			r.touch(p.now)
			p.ref, p.origin = ref{h, slot, r.gen}, r.origin.Load()
			p.reply, p.err = replyMsg(msg, p.ad, p.req, p.opt, uint32(p.rem)) // #nosec G115 -- 0 < rem <= ttl
		}
		return dst
	}
	p.hits = r.hits.Load()
	if p.staleFor > 0 && r.class != classFailure && -p.rem < p.staleFor {
		r.touch(p.now)
		p.stale = s.copyOut(sh, slot, new(entry), true)
	}
	return dst
}
