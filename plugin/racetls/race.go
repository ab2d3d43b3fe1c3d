package racetls

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

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
	rcode int
	wrong bool // a reply to the query's ID without its question
	err   error
}

// race collects the results of one client query. ch holds one slot per
// upstream and every upstream delivers at most one result, so delivering
// never blocks, even after the race is over.
type race struct {
	ch   chan result
	wake chan struct{} // an asked upstream's connection broke: ask the next one now
	done atomic.Bool
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
	r := withoutHopByHop(req)
	// Packed once; every upstream gets a copy with its connection's ID.
	q, err := r.Pack()
	if err != nil {
		return nil, nil, err
	}
	qlen, err := wire.QuestionLen(q)
	if err != nil {
		return nil, nil, err
	}
	taps := rt.taps()
	now := time.Now()
	deadline := now.Add(rt.opts.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	var scratch [8]*upstream
	order := rt.order(scratch[:0])
	rs := &race{ch: make(chan result, len(order)), wake: make(chan struct{}, 1)}
	defer rs.done.Store(true)

	// A query that waits for a connection is tapped once its connection is known: with
	// its result, or when the race ends without one.
	var waiting []waitingTap
	if taps != nil {
		defer func() {
			for _, wt := range waiting {
				tapQuery(ctx, taps, wt.u, nil, w, req, q, wt.at)
			}
		}()
	}
	next, outstanding := 0, 0
	ask := func() bool {
		for next < len(order) {
			u := order[next]
			next++
			buf := make([]byte, 2+len(q))
			binary.BigEndian.PutUint16(buf, uint16(len(q)))
			copy(buf[2:], q)
			ctr := u.forServer(server)
			local, err := u.send(&call{buf: buf, qlen: qlen, rs: rs, ctr: ctr, deadline: deadline})
			if err != nil {
				ctr.errorf(sendKind(err))
				continue
			}
			ctr.query()
			switch {
			case taps == nil:
			case local == nil:
				waiting = append(waiting, waitingTap{u, time.Now()})
			default:
				tapQuery(ctx, taps, u, local, w, req, q, time.Now())
			}
			outstanding++
			return true
		}
		return false
	}
	for range rt.opts.width {
		if !ask() {
			break
		}
	}

	// One timer serves both the escalation of silence and the deadline.
	escalate := rt.escalation(order)
	escAt := now.Add(escalate)
	wake := func() time.Duration {
		if next < len(order) && escAt.Before(deadline) {
			return time.Until(escAt)
		}
		return time.Until(deadline)
	}
	t := time.NewTimer(wake())
	defer t.Stop()

	var best *result
	for outstanding > 0 || ask() {
		select {
		case res := <-rs.ch:
			outstanding--
			if taps != nil {
				if i := slices.IndexFunc(waiting, func(wt waitingTap) bool { return wt.u == res.u }); i >= 0 {
					tapQuery(ctx, taps, res.u, res.local, w, req, q, waiting[i].at)
					waiting = slices.Delete(waiting, i, i+1)
				}
				if res.err == nil {
					tapReply(ctx, taps, res.u, res.local, w, req, res.msg, now)
				}
			}
			if res.err == nil && !res.wrong && isWinner(res.rcode) {
				m := new(dns.Msg)
				if m.Unpack(res.msg) == nil {
					res.ctr.win()
					return m, res.u, nil
				}
				res.ctr.errorf(kindGarbage)
			} else if res.err == nil && (best == nil || failRank(&res) > failRank(best)) {
				best = &res
			}
			// A failure escalates at once to the next upstream.
			ask()
		case <-rs.wake:
			ask()
		case <-t.C:
			now := time.Now()
			if !now.Before(deadline) {
				return bestFailure(best, req)
			}
			if !now.Before(escAt) {
				// Silence escalates too.
				ask()
				escAt = now.Add(escalate)
			}
			t.Reset(wake())
		case <-ctx.Done():
			return bestFailure(best, req)
		}
	}
	return bestFailure(best, req)
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
