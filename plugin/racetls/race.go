package racetls

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/coredns/coredns/plugin/dnstap"
	"github.com/miekg/dns"
)

var (
	errTimeout = errors.New("no reply before the deadline")
	errNoReply = errors.New("no upstream replied")
)

// result is one upstream's outcome for one race: a reply or an error.
type result struct {
	u     *upstream
	ctr   *counters // the call's
	local net.Addr  // the local address of the connection that carried the query
	msg   []byte
	m     *dns.Msg // msg unpacked, for the reply that claimed the race (see conn.reply)
	bad   bool     // msg may have won but does not unpack (counted as garbage)
	rcode int
	wrong bool // a reply to the query's ID without its question
	err   error
}

// race collects the results of one client query. ch holds one slot per
// upstream and every upstream delivers at most one result, so delivering
// never blocks, even after the race is over.
type race struct {
	ch      chan result
	wake    chan struct{} // an asked upstream's connection broke: ask the next one now
	done    atomic.Bool
	claimed atomic.Bool // a reader is unpacking a reply that may win

	// The rest is the resolving goroutine's own. It lives here, on the heap with the race,
	// rather than in resolve's frame: each UDP query runs on a new goroutine whose stack
	// starts small, and a deep frame under the sends made the runtime copy it to a bigger
	// one for every query.
	rt                *RaceTLS
	order             []*upstream
	scratch           [8]*upstream
	next, outstanding int
	q                 []byte // the packed query
	qlen              int    // its question section's length
	start, deadline   time.Time
	server            string  // the request's server label
	best              *result // the best failure so far
	t                 *time.Timer
	escalate          time.Duration // silence asks one more upstream after this
	escAt             time.Time
	taps              []*dnstap.Dnstap
	waiting           []waitingTap // asked at a time when no connection had room
	ctx               context.Context
	w                 dns.ResponseWriter
	req               *dns.Msg
}

// deliver hands r to the race; it reports false when the race was already decided.
func (rs *race) deliver(r result) bool {
	if rs.done.Load() {
		return false
	}
	rs.ch <- r
	return true
}

func (rs *race) finished() bool { return rs.done.Load() }

// claim reports whether the caller, a connection's reader with a reply that may win,
// is the first: it unpacks that reply for the race (see conn.reply). A claim whose reply
// does not unpack is given back with unclaim.
func (rs *race) claim() bool { return !rs.done.Load() && rs.claimed.CompareAndSwap(false, true) }

func (rs *race) unclaim() { rs.claimed.Store(false) }

// nudge tells the race that a query it sent is being re-sent after its connection
// broke: the re-send goes on, and the race escalates without waiting for silence.
func (rs *race) nudge() {
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

// isWinner reports whether a reply with this RCODE may win a race.
func isWinner(rc int) bool { return rc == dns.RcodeSuccess || rc == dns.RcodeNameError }

func rcodeKind(rc int) string {
	switch rc {
	case dns.RcodeServerFailure:
		return kindServfail
	case dns.RcodeRefused:
		return kindRefused
	case dns.RcodeFormatError:
		return kindFormerr
	}
	return kindRcode
}

// failRank orders failure replies: the best one is returned at the deadline. A reply
// without the query's question ranks last: any upstream's own failure says more.
func failRank(r *result) int {
	switch {
	case r.wrong:
		return 0
	case r.rcode == dns.RcodeServerFailure:
		return 3
	case r.rcode == dns.RcodeRefused:
		return 2
	}
	return 1
}

// resolve races the query r over the upstreams and returns the winning reply and
// its upstream, or the best failure reply when nothing won before the deadline.
// Metrics count under server, the request's server label.
func (rt *RaceTLS) resolve(ctx context.Context, w dns.ResponseWriter, req *dns.Msg, server string) (*dns.Msg, *upstream, error) {
	rs, err := rt.newRace(ctx, w, req, server)
	if err != nil {
		return nil, nil, err
	}
	return rs.decide()
}

// decide returns the race's winner, unpacked, or its best failure, and ends the race.
func (rs *race) decide() (*dns.Msg, *upstream, error) {
	defer rs.end()
	for {
		res, ok := rs.wait()
		if !ok {
			return rs.bestFailure()
		}
		m := res.m
		if m == nil {
			// Another reply held the claim when this one was read: unpack it here.
			m = new(dns.Msg)
			if m.Unpack(res.msg) != nil {
				res.ctr.errorf(kindGarbage)
				rs.ask()
				continue
			}
		}
		res.ctr.win()
		return m, res.u, nil
	}
}

// newRace packs the query r, asks the first upstreams and starts the race's timer.
func (rt *RaceTLS) newRace(ctx context.Context, w dns.ResponseWriter, req *dns.Msg, server string) (*race, error) {
	r := withoutHopByHop(req)
	// Packed once; every upstream gets a copy with its connection's ID.
	q, err := r.Pack()
	if err != nil {
		return nil, err
	}
	qlen, err := wire.QuestionLen(q)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rs := &race{rt: rt, q: q, qlen: qlen, start: now, deadline: now.Add(rt.opts.timeout), server: server,
		taps: rt.taps(), ctx: ctx, w: w, req: req}
	if d, ok := ctx.Deadline(); ok && d.Before(rs.deadline) {
		rs.deadline = d
	}
	rs.order = rt.order(rs.scratch[:0])
	rs.ch, rs.wake = make(chan result, len(rs.order)), make(chan struct{}, 1)
	for range rt.opts.width {
		if !rs.ask() {
			break
		}
	}
	rs.escalate = rt.escalation(rs.order)
	rs.escAt = now.Add(rs.escalate)
	// One timer serves both the escalation of silence and the deadline.
	rs.t = getTimer(rs.wakeIn())
	return rs, nil
}

// end ends the race: later results are late. A query that waited for a connection is
// tapped once its connection is known, with its result, or here without one.
func (rs *race) end() {
	putTimer(rs.t)
	if rs.taps != nil {
		rs.tapWaiting()
	}
	rs.done.Store(true)
}

// wait waits for the results of the race rs, asks more upstreams on failures and
// silence, and returns the next reply that may win, or false when the race is over
// without one.
func (rs *race) wait() (result, bool) {
	for rs.outstanding > 0 || rs.ask() {
		select {
		case res := <-rs.ch:
			rs.outstanding--
			if rs.candidate(&res) {
				return res, true
			}
			// A failure escalates at once to the next upstream.
			rs.ask()
		case <-rs.wake:
			rs.ask()
		case <-rs.t.C:
			now := time.Now()
			if !now.Before(rs.deadline) {
				return result{}, false
			}
			if !now.Before(rs.escAt) {
				// Silence escalates too.
				rs.ask()
				rs.escAt = now.Add(rs.escalate)
			}
			rs.t.Reset(rs.wakeIn())
		case <-rs.ctx.Done():
			return result{}, false
		}
	}
	return result{}, false
}

// wakeIn returns how long the race may wait before it escalates (while an upstream
// is left to ask) or reaches its deadline.
func (rs *race) wakeIn() time.Duration {
	if rs.next < len(rs.order) && rs.escAt.Before(rs.deadline) {
		return time.Until(rs.escAt)
	}
	return time.Until(rs.deadline)
}

// ask sends the query to the next upstream that takes it, and reports whether one did.
func (rs *race) ask() bool {
	for rs.next < len(rs.order) {
		u := rs.order[rs.next]
		rs.next++
		buf := make([]byte, 2+len(rs.q))
		binary.BigEndian.PutUint16(buf, uint16(len(rs.q)))
		copy(buf[2:], rs.q)
		ctr := u.forServer(rs.server)
		local, err := u.send(&call{buf: buf, qlen: rs.qlen, rs: rs, ctr: ctr, deadline: rs.deadline})
		if err != nil {
			ctr.errorf(sendKind(err))
			continue
		}
		ctr.query()
		switch {
		case rs.taps == nil:
		case local == nil:
			rs.waiting = append(rs.waiting, waitingTap{u, time.Now()})
		default:
			tapQuery(rs.ctx, rs.taps, u, local, rs.w, rs.req, rs.q, time.Now())
		}
		rs.outstanding++
		return true
	}
	return false
}

// candidate takes one upstream's result: it reports whether the reply may win, or
// keeps it when it is the best failure so far.
func (rs *race) candidate(res *result) bool {
	if rs.taps != nil {
		rs.tapResult(res)
	}
	if res.err != nil || res.bad {
		return false
	}
	if !res.wrong && isWinner(res.rcode) {
		return true
	}
	if rs.best == nil || failRank(res) > failRank(rs.best) {
		best := *res
		rs.best = &best
	}
	return false
}

// tapResult sends res to dnstap: the query if it waited for its connection, and the reply.
func (rs *race) tapResult(res *result) {
	if i := slices.IndexFunc(rs.waiting, func(wt waitingTap) bool { return wt.u == res.u }); i >= 0 {
		tapQuery(rs.ctx, rs.taps, res.u, res.local, rs.w, rs.req, rs.q, rs.waiting[i].at)
		rs.waiting = slices.Delete(rs.waiting, i, i+1)
	}
	if res.err == nil {
		tapReply(rs.ctx, rs.taps, res.u, res.local, rs.w, rs.req, res.msg, rs.start)
	}
}

// tapWaiting taps the queries still waiting for a connection when the race ends.
func (rs *race) tapWaiting() {
	for _, wt := range rs.waiting {
		tapQuery(rs.ctx, rs.taps, wt.u, nil, rs.w, rs.req, rs.q, wt.at)
	}
}

// bestFailure returns the best failure reply of the race.
func (rs *race) bestFailure() (*dns.Msg, *upstream, error) {
	return bestFailure(rs.best, rs.req)
}

// timers holds stopped timers for races: one per query otherwise. A stopped timer
// delivers nothing afterwards (Go 1.23 timers), so it is reused as new.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

func getTimer(d time.Duration) *time.Timer {
	t := timers.Get().(*time.Timer)
	t.Reset(d)
	return t
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// waitingTap is a query asked of u at a time when no connection had room for it.
type waitingTap struct {
	u  *upstream
	at time.Time
}

// bestFailure returns the best failure reply of the race, for the request req.
func bestFailure(best *result, req *dns.Msg) (*dns.Msg, *upstream, error) {
	if best == nil {
		return nil, nil, errNoReply
	}
	m := new(dns.Msg)
	if best.wrong {
		// As forward answers a reply that does not match the request (state.Match):
		// FORMERR with the request's ID, opcode, RD, CD and question, nothing of the reply.
		m.SetRcode(req, dns.RcodeFormatError)
		return m, best.u, nil
	}
	if err := m.Unpack(best.msg); err != nil {
		return nil, nil, errNoReply
	}
	return m, best.u, nil
}

func sendKind(err error) string {
	if errors.Is(err, errBusy) {
		return kindBusy
	}
	return kindDown
}

// order returns the upstreams, reachable ones first, fastest (EWMA) first.
// Upstreams not measured yet sort first so that they get measured.
func (rt *RaceTLS) order(buf []*upstream) []*upstream {
	type key struct {
		down  bool
		score time.Duration
	}
	less := func(a, b key) bool {
		if a.down != b.down {
			return !a.down
		}
		return a.score < b.score
	}
	var kb [8]key
	keys := kb[:0]
	for _, u := range rt.ups() {
		k := key{u.down(), u.score()}
		i := len(buf)
		buf = append(buf, u)
		keys = append(keys, k)
		for ; i > 0 && less(k, keys[i-1]); i-- {
			buf[i], keys[i] = buf[i-1], keys[i-1]
		}
		buf[i], keys[i] = u, k
	}
	return buf
}

// escalation returns how long the race waits in silence before it asks one
// more upstream: hedge when set, else three times the EWMA of the fastest
// upstream, within [minEscalation, timeout/4].
func (rt *RaceTLS) escalation(order []*upstream) time.Duration {
	if rt.opts.hedge > 0 {
		return rt.opts.hedge
	}
	d := 3 * order[0].score()
	if d < minEscalation {
		d = minEscalation
	}
	if hi := rt.opts.timeout / 4; d > hi {
		d = hi
	}
	return d
}

const minEscalation = 50 * time.Millisecond

// withoutHopByHop returns r, or a copy of it without the EDNS options that concern the
// client's own connection: edns-tcp-keepalive (RFC 7828 §3.2.1) is hop by hop, and DoQ
// forbids it outright (RFC 9250 §5.5.2). r itself is never changed: other plugins hold it.
func withoutHopByHop(r *dns.Msg) *dns.Msg {
	o := r.IsEdns0()
	if o == nil || !slices.ContainsFunc(o.Option, isKeepalive) {
		return r
	}
	r = r.Copy()
	o = r.IsEdns0()
	o.Option = slices.DeleteFunc(o.Option, isKeepalive)
	return r
}

func isKeepalive(e dns.EDNS0) bool { return e.Option() == dns.EDNS0TCPKEEPALIVE }
