package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// unixsockCorefile serves a lab upstream on the block's port and on the socket; the log line
// carries the peer credentials that unixsock publishes through metadata.
const unixsockCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}} {
        mode %s
    }
    metadata
    log . "%s {type} {name} {rcode} {proto} {remote} pid={/unixsock/pid} uid={/unixsock/uid}"
    forward . %s {
        prefer_udp
    }
}
`

// TestUnixsock runs bin/coredns with unixsock, log, prometheus and forward to a lab upstream:
// pipelined queries over the socket are answered and matched by ID, the log shows them with
// the client's pid and uid, the metrics count them, a SIGUSR1 reload under a client loop loses
// no query and keeps the same socket, and SIGTERM removes the socket file.
func TestUnixsock(t *testing.T) {
	kit.CheckFDs(t)
	up := lab.StartTest(t, lab.Config{})
	s := kit.Start(t, fmt.Sprintf(unixsockCorefile, "0666", "before", up.UDPAddr()))
	server := map[string]string{"server": "unix://" + s.Sock}

	fi, err := os.Lstat(s.Sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino

	// Pipelined: A and AAAA for several names, all written before any reply is read.
	c := unixsockDial(t, s.Sock)
	var queries []*dns.Msg
	for i := range 10 {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("pipe%d.example.org.", i), qt)
			m.Id = uint16(len(queries) + 1)
			queries = append(queries, m)
		}
	}
	nx := new(dns.Msg)
	nx.SetQuestion("nxpipe.example.org.", dns.TypeA)
	nx.Id = uint16(len(queries) + 1)
	queries = append(queries, nx)
	unixsockSend(t, c, queries...)
	for range queries {
		r := unixsockRecv(t, c)
		q := queries[r.Id-1]
		if r.Question[0] != q.Question[0] {
			t.Fatalf("reply %d is for %v, query was %v", r.Id, r.Question[0], q.Question[0])
		}
		if q == nx {
			if r.Rcode != dns.RcodeNameError {
				t.Fatalf("%s: %s", q.Question[0].Name, dns.RcodeToString[r.Rcode])
			}
			continue
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != q.Question[0].Qtype {
			t.Fatalf("bad reply to %v: %v", q.Question[0], r)
		}
	}
	c.Close()

	// The same name over UDP gets the same answer: one block behind both listeners.
	viaUDP := new(dns.Msg)
	viaUDP.SetQuestion("pipe0.example.org.", dns.TypeA)
	if r := s.Exchange(t, viaUDP, "udp"); len(r.Answer) != 1 || r.Answer[0].String() != unixsockAsk(t, s.Sock, "pipe0.example.org.").Answer[0].String() {
		t.Fatalf("UDP and socket answers differ: %v", r)
	}

	// The log shows the socket queries, over "tcp", with our pid and uid.
	want := fmt.Sprintf("before AAAA pipe9.example.org. NOERROR tcp 127.0.0.1 pid=%d uid=%d", os.Getpid(), os.Getuid())
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), want) }, "log line %q\n%s", want, s.Log)
	wantUDP := "before A pipe0.example.org. NOERROR udp 127.0.0.1 pid=- uid=-"
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), wantUDP) }, "log line %q\n%s", wantUDP, s.Log)

	// Metrics count them: unixsock's own and CoreDNS's, labelled with the socket.
	if got := s.Metric(t, "coredns_unixsock_requests_total", server); got != float64(len(queries)+1) {
		t.Errorf("coredns_unixsock_requests_total = %v, want %d", got, len(queries)+1)
	}
	if got := s.Metric(t, "coredns_dns_requests_total", server); got != float64(len(queries)+1) {
		t.Errorf("coredns_dns_requests_total{server=unix://...} = %v, want %d", got, len(queries)+1)
	}
	if got := s.Metric(t, "coredns_unixsock_connections_total", server); got != 2 {
		t.Errorf("coredns_unixsock_connections_total = %v, want 2", got)
	}

	// Many short connections leave no fd behind in the server.
	fds := s.ServerFDs(t)
	for i := range 200 {
		unixsockAsk(t, s.Sock, fmt.Sprintf("fd%d.example.org.", i))
	}
	unixsockEventually(t, func() bool { return s.ServerFDs(t) <= fds }, "server fds: %d before, more after", fds)

	// Reload under a client loop: no query lost, same socket file (no rebind), new mode and chain.
	l := unixsockStartLoad(s.Sock)
	l.WaitOK(t, 100)
	s.Reload(t, fmt.Sprintf(unixsockCorefile, "0660", "after", up.UDPAddr()))
	l.WaitOK(t, l.OK()+100)
	l.Finish(t)
	fi, err = os.Lstat(s.Sock)
	if err != nil || fi.Sys().(*syscall.Stat_t).Ino != ino || fi.Mode().Perm() != 0o660 {
		t.Fatalf("after reload: %v %v, want the same inode %d with mode 0660", fi, err, ino)
	}
	unixsockAsk(t, s.Sock, "afterreload.example.org.")
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), "after A afterreload.example.org. NOERROR tcp") }, "the new chain did not log:\n%s", s.Log)

	s.Stop(t)
	if _, err := os.Lstat(s.Sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left after SIGTERM: %v", err)
	}
}

func unixsockEventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	for i, a := range args {
		if f, ok := a.(func() string); ok {
			args[i] = f()
		}
	}
	t.Fatalf("timed out waiting for "+format, args...)
}

func unixsockDial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func unixsockSend(t *testing.T, c net.Conn, msgs ...*dns.Msg) {
	t.Helper()
	if err := unixsockWrite(c, msgs...); err != nil {
		t.Fatal(err)
	}
}

func unixsockWrite(c net.Conn, msgs ...*dns.Msg) error {
	var buf []byte
	for _, m := range msgs {
		b, err := m.Pack()
		if err != nil {
			return err
		}
		if buf, err = wire.AppendFrame(buf, b); err != nil {
			return err
		}
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(buf)
	return err
}

func unixsockRecv(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	m, err := unixsockRead(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func unixsockRead(c net.Conn) (*dns.Msg, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := wire.ReadFrame(c, nil)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(b)
}

// unixsockAsk asks for name's A record on a fresh connection.
func unixsockAsk(t *testing.T, path, name string) *dns.Msg {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	unixsockSend(t, c, q)
	r := unixsockRecv(t, c)
	if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("%s: %v", name, r)
	}
	return r
}

// unixsockStartLoad queries the socket until finished, from one client on a long-lived
// connection and three that open a connection per query, and counts queries that got no
// NOERROR answer.
func unixsockStartLoad(path string) *kit.Background {
	next := func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("load%d.example.org.", i%50)} }
	return kit.StartBackground(
		kit.Load{Network: "unix", Addr: path, Next: next},
		kit.Load{Network: "unix", Addr: path, Conns: 3, ConnQueries: 1, Next: next},
	)
}
