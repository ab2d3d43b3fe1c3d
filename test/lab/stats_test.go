package lab

import (
	"crypto/tls"
	"encoding/binary"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestStats(t *testing.T) {
	u := start(t, Config{})
	ask(t, u, "udp", "a.example.", dns.TypeA)
	ask(t, u, "udp", "A.example.", dns.TypeAAAA)
	ask(t, u, "tcp", "b.example.", dns.TypeA)
	ask(t, u, "tls", "b.example.", dns.TypeA)
	ask(t, u, "tls", "c.example.", dns.TypeA)
	want := Stats{Queries: 5, QueriesUDP: 2, QueriesTCP: 1, QueriesTLS: 2, Replies: 5, Conns: 3, Handshakes: 2}
	s := eventually(t, u, func(s Stats) bool { return s.OpenConns == 0 })
	s.Resumed = 0 // the clients here have separate session caches; see TestResumption
	if s != want {
		t.Errorf("stats %+v\nwant  %+v", s, want)
	}
	for name, n := range map[string]int64{"a.example.": 2, "B.EXAMPLE": 2, "c.example.": 1, "d.example.": 0} {
		if got := u.Count(name); got != n {
			t.Errorf("Count(%s) = %d, want %d", name, got, n)
		}
	}
}

// eventually waits until cond holds for u's stats (connections close asynchronously).
func eventually(t *testing.T, u *Upstream, cond func(Stats) bool) Stats {
	t.Helper()
	for range 200 {
		if s := u.Stats(); cond(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := u.Stats()
	t.Fatalf("stats %+v: condition not reached", s)
	return s
}

func TestResumption(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		u := start(t, Config{})
		cfg := u.ClientTLS() // one session cache for all three connections
		cfg.MaxVersion = v
		for range 3 {
			c, err := tls.Dial("tcp", u.TLSAddr(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// A query: TLS 1.3 tickets arrive after the handshake, with the first read.
			send(t, c, 7, "www.example.")
			if _, err := recv(c, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		s := eventually(t, u, func(s Stats) bool { return s.OpenConns == 0 })
		if s.Handshakes != 3 || s.Resumed != 2 {
			t.Errorf("%s: %d handshakes, %d resumed; want 3 and 2", tls.VersionName(v), s.Handshakes, s.Resumed)
		}
	}
}

func TestPipelining(t *testing.T) {
	// Delays from 1 ms to ~100 ms: replies overtake each other.
	u := start(t, Config{Latency: Latency{Dist: LogNormal, Median: 10 * time.Millisecond, Sigma: 1}, Seed: 3})
	c := dialStream(t, u, "tls")
	const n = 30
	for i := range n {
		send(t, c, uint16(i), "www.example.")
	}
	seen := map[uint16]bool{}
	inOrder := true
	for i := range n {
		b, err := recv(c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		id := binary.BigEndian.Uint16(b)
		seen[id] = true
		inOrder = inOrder && id == uint16(i)
	}
	if len(seen) != n {
		t.Errorf("%d distinct replies, want %d", len(seen), n)
	}
	if inOrder {
		t.Errorf("replies in query order: queries were not answered concurrently")
	}
	if s := u.Stats(); s.Conns != 1 || s.QueriesTLS != n {
		t.Errorf("stats %+v, want 1 connection and %d queries", s, n)
	}
}

// TestRuntimeChanges changes fault and latency while pipelined queries run; -race checks it.
func TestRuntimeChanges(t *testing.T) {
	u := start(t, Config{Latency: Latency{Median: time.Millisecond}})
	c := dialStream(t, u, "tls")
	done := make(chan struct{})
	go func() {
		defer close(done)
		kinds := []FaultKind{None, WrongID, ServFail, Refused, WrongQuestion, IdleClose}
		for i := range 60 {
			u.SetFault(Fault{Kind: kinds[i%len(kinds)], After: time.Minute})
			u.SetLatency(Latency{Dist: Dist(i % 2), Median: time.Duration(i%3) * time.Millisecond, Sigma: 0.5})
			u.Stats()
			time.Sleep(time.Millisecond)
		}
	}()
	const n = 60
	for i := range n {
		send(t, c, uint16(i), "www.example.")
	}
	for range n {
		if _, err := recv(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if s := u.Stats(); s.QueriesTLS != n || s.Replies != n {
		t.Errorf("stats %+v, want %d queries and replies", s, n)
	}
}
