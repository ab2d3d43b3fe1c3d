package unixsock

import (
	"encoding/binary"
	"fmt"
	golog "log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

func TestPipelinedOutOfOrder(t *testing.T) {
	up := upstream(t, 300*time.Millisecond)
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nerrors\nforward . %s\n}", sock, up))

	c := dial(t, sock)
	c.send(query(1, "slow.example.", dns.TypeA), query(2, "fast.example.", dns.TypeA))
	first, second := c.recv(), c.recv()
	if first.Id != 2 || second.Id != 1 {
		t.Fatalf("want the fast reply (id 2) before the slow one (id 1), got %d then %d", first.Id, second.Id)
	}
	if first.Question[0].Name != "fast.example." || second.Question[0].Name != "slow.example." {
		t.Fatalf("replies do not match their queries: %v / %v", first.Question, second.Question)
	}
	if len(second.Answer) != 1 || second.Rcode != dns.RcodeSuccess {
		t.Fatalf("bad slow reply: %v", second)
	}
}

func TestManyPipelined(t *testing.T) {
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\n}", sock))
	addr := "unix://" + sock
	before := value(requestsTotal.WithLabelValues(addr))

	const n = 300 // more than max_inflight: the reader must stop and resume
	c := dial(t, sock)
	var msgs [][]byte
	for i := range n {
		msgs = append(msgs, query(uint16(i+1), fmt.Sprintf("q%d.example.", i+1), dns.TypeA))
	}
	c.send(msgs...)
	seen := map[uint16]bool{}
	for range n {
		m := c.recv()
		if want := fmt.Sprintf("q%d.example.", m.Id); m.Question[0].Name != want || seen[m.Id] {
			t.Fatalf("reply id %d for %s (seen before: %v)", m.Id, m.Question[0].Name, seen[m.Id])
		}
		seen[m.Id] = true
		// whoami answers with the client's address and transport: the synthetic TCP address.
		if len(m.Extra) != 2 || !strings.Contains(m.Extra[0].String(), "127.0.0.1") || !strings.Contains(m.Extra[1].String(), "_tcp.") {
			t.Fatalf("whoami did not see a TCP client on 127.0.0.1: %v", m.Extra)
		}
	}
	if got := value(requestsTotal.WithLabelValues(addr)) - before; got != n {
		t.Errorf("requests_total grew by %v, want %d", got, n)
	}
	if got := value(connections.WithLabelValues(addr)); got != 1 {
		t.Errorf("connections = %v, want 1", got)
	}
}

func TestBadFrames(t *testing.T) {
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\n}", sock))
	addr := "unix://" + sock
	errs := func(kind string) float64 { return value(errorsCount.WithLabelValues(addr, kind)) }

	// Frames the server cannot answer: the connection is closed.
	closing := []struct {
		name, kind string
		data       []byte
	}{
		{"zero length", "zero_frame", []byte{0, 0}},
		{"shorter than a header", "short_frame", frame([]byte{1, 2, 3, 4, 5})},
		{"truncated frame", "read", []byte{0, 40, 1, 2, 3}},
	}
	for _, tc := range closing {
		before := errs(tc.kind)
		c := dial(t, sock)
		c.Write(tc.data)
		if tc.kind == "read" {
			c.Conn.(interface{ CloseWrite() error }).CloseWrite()
		}
		if !c.closed() {
			t.Errorf("%s: connection not closed", tc.name)
		}
		if errs(tc.kind) != before+1 {
			t.Errorf("%s: errors_total{kind=%q} not counted", tc.name, tc.kind)
		}
	}

	// Frames with a header get an answer with their ID; the connection stays usable.
	garbage := append(query(7, "x.example.", dns.TypeA)[:12], 0xff, 0xff, 0xff)
	noQuestion := query(8, "x.example.", dns.TypeA)
	noQuestion[5] = 0 // QDCOUNT 0
	update := query(9, "x.example.", dns.TypeA)
	update[2] |= dns.OpcodeUpdate << 3
	response := query(10, "x.example.", dns.TypeA)
	response[2] |= 0x80 // QR: a response is ignored, never answered
	answered := []struct {
		name  string
		msg   []byte
		rcode int
	}{
		{"garbage body", garbage, dns.RcodeFormatError},
		{"no question", noQuestion, dns.RcodeFormatError},
		{"update", update, dns.RcodeNotImplemented},
	}
	c := dial(t, sock)
	for _, tc := range answered {
		c.send(tc.msg)
		m := c.recv()
		if m.Id != binary.BigEndian.Uint16(tc.msg) || m.Rcode != tc.rcode || !m.Response {
			t.Errorf("%s: got id %d rcode %s, want id %d rcode %s", tc.name, m.Id, dns.RcodeToString[m.Rcode], binary.BigEndian.Uint16(tc.msg), dns.RcodeToString[tc.rcode])
		}
	}
	ignored := errs("ignored")
	c.send(response, query(11, "ok.example.", dns.TypeA))
	if m := c.recv(); m.Id != 11 || m.Rcode != dns.RcodeSuccess {
		t.Errorf("after an ignored response: got id %d rcode %d, want id 11 NOERROR", m.Id, m.Rcode)
	}
	// Were the response answered, its reply would come before the next query's.
	c.send(query(12, "ok.example.", dns.TypeA))
	if m := c.recv(); m.Id != 12 {
		t.Errorf("after an ignored response: got id %d, want 12: the response was answered", m.Id)
	}
	if errs("ignored") != ignored+1 {
		t.Errorf("ignored response not counted")
	}
}

func TestMaxConnections(t *testing.T) {
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_connections 2\nmax_connections_per_uid 2\n}\nwhoami\n}", sock))
	before := value(errorsCount.WithLabelValues("unix://"+sock, "max_connections"))

	a, b := dial(t, sock), dial(t, sock)
	for _, c := range []*client{a, b} { // both accepted and served
		c.send(query(1, "a.example.", dns.TypeA))
		c.recv()
	}
	over := dial(t, sock)
	if !over.closed() {
		t.Fatal("third connection was not closed")
	}
	if got := value(errorsCount.WithLabelValues("unix://"+sock, "max_connections")); got != before+1 {
		t.Errorf("max_connections errors = %v, want %v", got, before+1)
	}
	// Closing one makes room again.
	a.Close()
	for range 100 {
		c := dial(t, sock)
		c.send(query(2, "b.example.", dns.TypeA))
		if m, err := c.tryRecv(); err == nil && m.Id == 2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no connection accepted after one was closed")
}

func TestMaxInflight(t *testing.T) {
	up := upstream(t, 200*time.Millisecond)
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_inflight 1\n}\nforward . %s\n}", sock, up))

	// One query in flight: the fast one is not even read until the slow one is answered.
	c := dial(t, sock)
	c.send(query(1, "slow.example.", dns.TypeA), query(2, "fast.example.", dns.TypeA))
	first, second := c.recv(), c.recv()
	if first.Id != 1 || second.Id != 2 {
		t.Fatalf("want replies in query order with max_inflight 1, got %d then %d", first.Id, second.Id)
	}
	if len(first.Answer) != 1 || len(second.Answer) != 1 {
		t.Fatalf("want answers from the upstream, got %v / %v", first, second)
	}
}

func TestTimeouts(t *testing.T) {
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nidle_timeout 200ms\nread_timeout 200ms\n}\nwhoami\n}", sock))

	idle := dial(t, sock)
	idle.send(query(1, "a.example.", dns.TypeA))
	idle.recv()
	if !idle.closed() {
		t.Error("idle connection not closed")
	}

	before := value(errorsCount.WithLabelValues("unix://"+sock, "read_timeout"))
	slow := dial(t, sock)
	slow.Write([]byte{0, 30, 0}) // a frame that never completes
	if !slow.closed() {
		t.Error("connection with an incomplete frame not closed")
	}
	if got := value(errorsCount.WithLabelValues("unix://"+sock, "read_timeout")); got != before+1 {
		t.Errorf("read_timeout errors = %v, want %v", got, before+1)
	}
}

func TestPeerMetadataInLog(t *testing.T) {
	var buf syncBuffer
	golog.SetOutput(&buf)
	t.Cleanup(func() { golog.SetOutput(os.Stderr) })

	sock := sockPath(t)
	start(t, fmt.Sprintf(`.:0 {
	bind 127.0.0.1
	unixsock %s
	metadata
	log . "{type} {name} {proto} {remote} pid={/unixsock/pid} uid={/unixsock/uid} gid={/unixsock/gid}"
	whoami
}`, sock))
	c := dial(t, sock)
	c.send(query(1, "peer.example.", dns.TypeAAAA))
	c.recv()

	want := fmt.Sprintf("AAAA peer.example. tcp 127.0.0.1 pid=%d uid=%d gid=%d", os.Getpid(), os.Getuid(), os.Getgid())
	for range 100 {
		if strings.Contains(buf.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("log does not contain %q:\n%s", want, buf.String())
}

func TestZoneRouting(t *testing.T) {
	sock := sockPath(t)
	// Two keys in the block: both zones are served over the socket; other names are refused,
	// as dnsserver.Server refuses them on the block's port.
	start(t, fmt.Sprintf("a.example.:0 b.example.:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\n}", sock))
	c := dial(t, sock)
	for i, tc := range []struct {
		qname string
		rcode int
	}{{"x.a.example.", dns.RcodeSuccess}, {"b.example.", dns.RcodeSuccess}, {"c.example.", dns.RcodeRefused}} {
		c.send(query(uint16(i+1), tc.qname, dns.TypeA))
		if m := c.recv(); m.Rcode != tc.rcode {
			t.Errorf("%s: rcode %s, want %s", tc.qname, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
		}
	}
}

// syncBuffer collects log output written by the server's goroutines.
type syncBuffer = kit.Buffer

func TestWriteTimeout(t *testing.T) {
	sock := sockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nwrite_timeout 200ms\n}\nwhoami\n}", sock))
	before := value(errorsCount.WithLabelValues("unix://"+sock, "write"))

	// A client that sends and never reads: once the socket buffer is full, the server's write
	// times out and it closes the connection.
	c := dial(t, sock)
	done := make(chan error, 1)
	go func() {
		q := frame(query(1, "w.example.", dns.TypeA))
		var err error
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < 100000 && err == nil; i++ {
			_, err = c.Write(q)
		}
		done <- err
	}()
	if err := <-done; err == nil || isTimeout(err) {
		t.Fatalf("client writes did not fail on a closed connection: %v", err)
	}
	if got := value(errorsCount.WithLabelValues("unix://"+sock, "write")); got != before+1 {
		t.Errorf("write errors = %v, want %v", got, before+1)
	}
	// The server is unaffected.
	ok := dial(t, sock)
	ok.send(query(2, "ok.example.", dns.TypeA))
	if m := ok.recv(); m.Id != 2 {
		t.Fatalf("got id %d", m.Id)
	}
}
