package lab

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// dialStream opens a raw TCP or TLS connection to u.
func dialStream(t *testing.T, u *Upstream, transport string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if transport == "tls" {
		c, err = tls.Dial("tcp", u.TLSAddr(), u.ClientTLS())
	} else {
		c, err = net.Dial("tcp", u.TCPAddr())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send writes one framed query for name with id.
func send(t *testing.T, c net.Conn, id uint16, name string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = id
	b, _ := m.Pack()
	if err := wire.WriteFrame(c, b); err != nil {
		t.Fatal(err)
	}
}

// recv reads one framed message's bytes.
func recv(c net.Conn, timeout time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	return wire.ReadFrame(c, nil)
}

func TestFaultReset(t *testing.T) {
	u := start(t, Config{Fault: Fault{Kind: Reset}})
	for _, tr := range []string{"tcp", "tls"} {
		c := dialStream(t, u, tr)
		send(t, c, 1, "www.example.")
		_, err := recv(c, 2*time.Second)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: read after Reset: %v, want ECONNRESET", tr, err)
		}
	}
	// UDP: the datagram is lost.
	c, addr := client(u, "udp")
	c.Timeout = 200 * time.Millisecond
	if _, _, err := c.Exchange(question("www.example."), addr); !isTimeout(err) {
		t.Errorf("udp under Reset: %v, want a timeout", err)
	}
	if s := u.Stats(); s.Faults != 3 || s.Replies != 0 {
		t.Errorf("stats %+v, want 3 faults and no replies", s)
	}
}

func question(name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	return m
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFaultBlackHole(t *testing.T) {
	u := start(t, Config{Fault: Fault{Kind: BlackHole}})
	for _, tr := range []string{"udp", "tcp", "tls"} {
		c, addr := client(u, tr)
		c.Timeout = 200 * time.Millisecond
		if _, _, err := c.Exchange(question("www.example."), addr); !isTimeout(err) {
			t.Errorf("%s: %v, want a timeout", tr, err)
		}
	}
	// The connection stays open: a later query on it is answered once the fault is off.
	c := dialStream(t, u, "tcp")
	send(t, c, 1, "www.example.")
	if _, err := recv(c, 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("black-holed query: %v, want a read timeout", err)
	}
	u.SetFault(Fault{})
	send(t, c, 2, "www.example.")
	b, err := recv(c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(b) != 2 {
		t.Errorf("reply id %d, want 2", binary.BigEndian.Uint16(b))
	}
}

func TestFaultIdleClose(t *testing.T) {
	const after = 300 * time.Millisecond
	u := start(t, Config{Fault: Fault{Kind: IdleClose, After: after}})
	for _, tr := range []string{"tcp", "tls"} {
		c := dialStream(t, u, tr)
		send(t, c, 1, "www.example.")
		if _, err := recv(c, 2*time.Second); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		answered := time.Now()
		if _, err := recv(c, 5*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: idle connection: %v, want EOF", tr, err)
		}
		if d := time.Since(answered); d < after-20*time.Millisecond { // deadline granularity
			t.Errorf("%s: closed after %v idle, want at least %v", tr, d, after)
		}
	}
	// UDP ignores the fault.
	ask(t, u, "udp", "www.example.", dns.TypeA)
}

func TestIdleTimeout(t *testing.T) {
	u := start(t, Config{IdleTimeout: 200 * time.Millisecond})
	c := dialStream(t, u, "tcp")
	if _, err := recv(c, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
}

func TestFaultGarbage(t *testing.T) {
	u := start(t, Config{Fault: Fault{Kind: Garbage}})
	for i := range 20 {
		c := dialStream(t, u, []string{"tcp", "tls"}[i%2])
		send(t, c, 1, "www.example.")
		b, err := recv(c, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := new(dns.Msg).Unpack(b); err == nil {
			t.Fatalf("garbage %x parses", b)
		}
	}
	pc, err := net.Dial("udp", u.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	q, _ := question("www.example.").Pack()
	pc.Write(q)
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 1500)
	n, err := pc.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := new(dns.Msg).Unpack(b[:n]); err == nil {
		t.Fatalf("UDP garbage %x parses", b[:n])
	}
}

func TestFaultAnswers(t *testing.T) {
	u := start(t, Config{})
	tests := []struct {
		kind  FaultKind
		check func(q, r *dns.Msg) bool
	}{
		{WrongID, func(q, r *dns.Msg) bool { return r.Id != q.Id && r.Question[0] == q.Question[0] }},
		{WrongQuestion, func(q, r *dns.Msg) bool {
			return r.Id == q.Id && r.Question[0].Name != q.Question[0].Name && len(r.Answer) > 0 && r.Answer[0].Header().Name == r.Question[0].Name
		}},
		{ServFail, func(q, r *dns.Msg) bool {
			return r.Id == q.Id && r.Rcode == dns.RcodeServerFailure && len(r.Answer) == 0
		}},
		{Refused, func(q, r *dns.Msg) bool { return r.Id == q.Id && r.Rcode == dns.RcodeRefused && len(r.Answer) == 0 }},
	}
	for _, tc := range tests {
		u.SetFault(Fault{Kind: tc.kind})
		for _, tr := range []string{"udp", "tcp", "tls"} {
			// A dns.Conn, not a dns.Client: the client rejects a mismatched ID itself.
			c, addr := client(u, tr)
			conn, err := c.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			q := question("www.example.")
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			if err := conn.WriteMsg(q); err != nil {
				t.Fatal(err)
			}
			r, err := conn.ReadMsg()
			conn.Close()
			if err != nil {
				t.Fatalf("%s %s: %v", tc.kind, tr, err)
			}
			if !tc.check(q, r) {
				t.Errorf("%s %s: query %v\nreply %v", tc.kind, tr, q, r)
			}
		}
	}
}

func TestFaultProb(t *testing.T) {
	u := start(t, Config{Fault: Fault{Kind: ServFail, Prob: 0.3}, Seed: 1})
	const n = 200
	fails := 0
	for range n {
		if ask(t, u, "udp", "www.example.", dns.TypeA).Rcode == dns.RcodeServerFailure {
			fails++
		}
	}
	// Binomial(200, 0.3): mean 60, sd 6.5; the seed makes the count fixed anyway.
	if fails < 30 || fails > 90 {
		t.Errorf("%d of %d SERVFAIL at Prob 0.3", fails, n)
	}
	if s := u.Stats(); s.Faults != int64(fails) {
		t.Errorf("Faults = %d, want %d", s.Faults, fails)
	}
}

func TestDownUp(t *testing.T) {
	u := start(t, Config{})
	udp, tcp, dot := u.UDPAddr(), u.TCPAddr(), u.TLSAddr()
	open := dialStream(t, u, "tcp")
	send(t, open, 1, "www.example.")
	if _, err := recv(open, 2*time.Second); err != nil {
		t.Fatal(err)
	}

	u.Down()
	if _, err := recv(open, 2*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("open connection after Down: %v, want EOF", err)
	}
	for _, tr := range []string{"udp", "tcp", "tls"} {
		c, addr := client(u, tr)
		if _, _, err := c.Exchange(question("www.example."), addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s while down: %v, want ECONNREFUSED", tr, err)
		}
	}
	if s := u.Stats(); s.OpenConns != 0 {
		t.Errorf("OpenConns = %d after Down", s.OpenConns)
	}

	if err := u.Up(); err != nil {
		t.Fatal(err)
	}
	if u.UDPAddr() != udp || u.TCPAddr() != tcp || u.TLSAddr() != dot {
		t.Errorf("addresses changed: %s %s %s, want %s %s %s", u.UDPAddr(), u.TCPAddr(), u.TLSAddr(), udp, tcp, dot)
	}
	for _, tr := range []string{"udp", "tcp", "tls"} {
		ask(t, u, tr, "www.example.", dns.TypeA)
	}
}
