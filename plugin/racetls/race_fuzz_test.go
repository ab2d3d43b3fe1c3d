package racetls

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// FuzzResolve races one query over three fake upstreams, each of which reads
// the query and answers with an arbitrary byte stream, then hangs up. The
// race must return a reply whose ID and question match the query: one of the
// upstreams' first frames with the query's ID that carries its question, is
// NOERROR or NXDOMAIN and unpacks when there is one, else the best failure
// reply (forward's FORMERR for a frame without the question) or errNoReply. Garbage never
// wins, every upstream gets the query with its own connection's ID, and
// nothing hangs or leaks once the upstreams are closed.
//
// qsel selects the query (bits 0-1) among fuzzQueries and how many upstreams
// are asked at once (bits 2-3: 1, 2, 3 or 1), the others after a failure or a
// 100 µs hedge delay.
func FuzzResolve(f *testing.F) {
	for _, s := range resolveSeeds() {
		f.Add(s.qsel, s.streams[0], s.streams[1], s.streams[2])
	}
	f.Fuzz(func(t *testing.T, qsel uint8, s0, s1, s2 []byte) {
		fq := fuzzQueries[int(qsel&3)%len(fuzzQueries)]
		streams := [][]byte{s0, s1, s2}
		// The upstreams' hanging up ends every race, long before its timeout.
		width := 1 + int(qsel>>2&3)%len(streams)
		opts := fuzzOptions(width)
		opts.timeout = time.Minute
		if width < len(streams) {
			opts.hedge = 100 * time.Microsecond
		}
		rt := &RaceTLS{opts: *opts}
		conns := make([]*conn, len(streams))
		served := make([][]byte, len(streams)) // the query each upstream read
		var servers sync.WaitGroup
		for i, stream := range streams {
			u := newFuzzUpstream(&rt.opts, i+1)
			tc, sc := tlsPipe(t)
			conns[i] = attach(u, tc)
			rt.upstreams = append(rt.upstreams, u)
			servers.Add(1)
			go func() { defer servers.Done(); served[i] = serveOnce(sc, stream) }()
		}
		var got struct {
			m   *dns.Msg
			err error
		}
		// ID 0, as every connection's first query: the replies carry it, and so does the
		// FORMERR made for a reply without the question (from the request, as forward's).
		req := fq.msg()
		req.Id = 0
		resolved, closed := make(chan struct{}), make(chan struct{})
		go func() {
			got.m, _, got.err = rt.resolve(context.Background(), &test.ResponseWriter{}, req, "")
			close(resolved)
		}()
		go func() {
			// Once every upstream asked has hung up nothing more can arrive, and
			// closing fails what still waits. A race won early leaves some not asked.
			for _, c := range conns {
				select {
				case <-c.done:
				case <-resolved:
				}
			}
			for _, u := range rt.upstreams {
				u.close()
			}
			close(closed)
		}()
		within(t, resolved, "resolve")
		within(t, closed, "closing the upstreams")
		serversDone := make(chan struct{})
		go func() { servers.Wait(); close(serversDone) }()
		within(t, serversDone, "the fake upstreams")

		query, err := req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		ql, _ := wire.QuestionLen(query)
		question := query[wire.HeaderLen : wire.HeaderLen+ql]

		var winners, failures []*dns.Msg
		// An upstream is asked when the race hands it the query; its connection's writer
		// may not have written it yet when the race is decided and the upstreams close.
		bestRank, asked := -1, 0
		for _, u := range rt.upstreams {
			if u.tally.queries.Load() > 0 {
				asked++
			}
		}
		for i, stream := range streams {
			// Each upstream that read the query read it packed once, with ID 0 (its
			// connection's first).
			q := served[i]
			if q == nil {
				continue
			}
			if string(q) != string(query) {
				t.Fatalf("upstream %d read %x, want %x", i, q, query)
			}
			want := replay(stream, map[uint16][]byte{0: question})
			frame, ok := want.delivered[0]
			if !ok {
				continue
			}
			m := new(dns.Msg)
			if m.Unpack(frame) != nil {
				m = nil
			}
			res := result{rcode: wire.Rcode(frame), wrong: !questionMatches(question, frame)}
			if res.wrong {
				// Answered as forward answers a reply that does not match: FORMERR.
				m = new(dns.Msg)
				m.SetRcode(req, dns.RcodeFormatError)
			} else if rc := res.rcode; rc == dns.RcodeSuccess || rc == dns.RcodeNameError {
				if m != nil {
					winners = append(winners, m)
				}
				continue
			}
			switch r := modelRank(res); {
			case r > bestRank:
				bestRank, failures = r, []*dns.Msg{m}
			case r == bestRank:
				failures = append(failures, m)
			}
		}

		if m := got.m; m != nil && (m.Id != 0 || !m.Response || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, fq.name) ||
			m.Question[0].Qtype != fq.qtype || m.Question[0].Qclass != dns.ClassINET) {
			t.Fatalf("reply %v does not match the query %s %s", got.m, fq.name, dns.TypeToString[fq.qtype])
		}
		switch {
		case len(winners) > 0:
			if got.err != nil || !oneOf(got.m, winners) {
				t.Fatalf("got %v (%v), want one of the winning replies %v", got.m, got.err, winners)
			}
		case got.err != nil:
			// No failure reply, or the best one does not unpack.
			if !errors.Is(got.err, errNoReply) || (len(failures) > 0 && !oneOf(nil, failures)) {
				t.Fatalf("got %v, want one of the failure replies %v", got.err, failures)
			}
		case !oneOf(got.m, failures):
			t.Fatalf("got %v, want one of the best failure replies %v", got.m, failures)
		}

		var wins uint64
		for i, u := range rt.upstreams {
			tl := u.tally
			wins += tl.wins.Load()
			if tl.late.Load() > 1 {
				t.Errorf("upstream %d: %d late replies to one query", i, tl.late.Load())
			}
		}
		if want := uint64(len(winners)); min(want, 1) != wins {
			t.Errorf("%d wins counted, %d winning replies", wins, want)
		}
		if asked < width || (len(winners) == 0 && asked < len(streams)) {
			t.Errorf("%d upstreams asked, want at least %d, and all without a winner", asked, width)
		}
		if t.Failed() {
			t.Logf("streams %x %x %x", s0, s1, s2)
		}
	})
}

// modelRank orders failure replies as the race must, written apart from failRank so that
// it can disagree with it: SERVFAIL, then REFUSED, then any other RCODE, and a reply
// without the query's question last.
func modelRank(r result) int {
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

// serveOnce plays a fake upstream on sc: it reads one query, writes stream
// and hangs up. It returns the query, nil when none came. It drains what the
// client writes after the query (its close_notify alert) as a socket buffer
// would: net.Pipe has none.
func serveOnce(sc io.ReadWriteCloser, stream []byte) []byte {
	defer sc.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(sc, hdr[:]); err != nil {
		return nil
	}
	q := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(sc, q); err != nil {
		return nil
	}
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, sc); close(drained) }()
	sc.Write(stream)
	sc.Close()
	<-drained
	return q
}

func oneOf(m *dns.Msg, ms []*dns.Msg) bool {
	for _, x := range ms {
		if reflect.DeepEqual(m, x) {
			return true
		}
	}
	return false
}

type resolveSeed struct {
	qsel    uint8
	streams [3][]byte
}

func resolveSeeds() []resolveSeed {
	q0, q1 := fuzzQueries[0], fuzzQueries[1]
	ok0, nx0 := q0.reply(0, dns.RcodeSuccess), q0.reply(0, dns.RcodeNameError)
	sf0, rf0 := q0.reply(0, dns.RcodeServerFailure), q0.reply(0, dns.RcodeRefused)
	garbage := append([]byte(nil), ok0...)
	garbage[2] &^= 0x80
	badWinner := ok0[:len(ok0)-1] // the answer's RDATA cut short: matches, but does not unpack
	return []resolveSeed{
		{8, [3][]byte{frame(ok0), frame(ok0), frame(ok0)}},
		{0, [3][]byte{frame(ok0), frame(ok0), frame(ok0)}},
		{4, [3][]byte{frame(sf0), frame(nx0), nil}},
		{0, [3][]byte{nil, nil, frame(nx0)}}, // silence: hedged
		{8, [3][]byte{frame(sf0), frame(rf0), frame(q0.reply(0, dns.RcodeNotImplemented))}},
		{8, [3][]byte{frame(garbage, ok0), frame(q1.reply(0, dns.RcodeSuccess)), frame(q0.reply(1, dns.RcodeSuccess), ok0)}},
		{8, [3][]byte{frame(badWinner), frame(ok0)[:9], {0xFF, 0xFF, 0}}},
		{1 | 4, [3][]byte{frame(q1.reply(0, dns.RcodeSuccess)), nil, frame(q1.reply(0, dns.RcodeServerFailure))}},
		{8, [3][]byte{frame(q1.reply(0, dns.RcodeSuccess)), frame(rf0), nil}}, // another question: ranks below REFUSED
		{2 | 8, [3][]byte{nil, nil, nil}},
	}
}
