package unixsock

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	// Real plugins for the chains under test.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/erratic"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	_ "github.com/dnscache/dnscache/plugin/warmcache"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func init() {
	// As build/plugin.cfg: unixsock first, so the whole chain is below it, and warmcache after
	// cache.
	dirs := []string{name}
	for _, d := range dnsserver.Directives {
		dirs = append(dirs, d)
		if d == "cache" {
			dirs = append(dirs, "warmcache")
		}
	}
	if err := dnsserver.SetDirectives(dirs); err != nil {
		panic(err)
	}
}

// start starts an in-process CoreDNS with corefile; t.Cleanup shuts it down as SIGTERM does.
func start(t *testing.T, corefile string) *caddy.Instance {
	t.Helper()
	inst, err := caddy.Start(input(corefile))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { stop(inst) })
	return inst
}

func stop(inst *caddy.Instance) {
	inst.ShutdownCallbacks()
	inst.Stop()
}

func input(corefile string) caddy.CaddyfileInput {
	return caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"}
}

// sockPath returns a socket path in a fresh temporary directory.
func sockPath(t *testing.T) string { return filepath.Join(t.TempDir(), "dns.sock") }

// upstream starts a DNS server on loopback (UDP and TCP on one port) for forward: names whose
// first label starts with "slow" are answered after delay, everything else at once, with an A.
func upstream(t *testing.T, delay time.Duration) string {
	t.Helper()
	var wg sync.WaitGroup
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		wg.Add(1)
		defer wg.Done()
		if strings.HasPrefix(r.Question[0].Name, "slow") {
			time.Sleep(delay)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	t.Cleanup(wg.Wait) // runs after both shutdowns
	return ln.Addr().String()
}

// client is a test client of the socket: framed writes, framed reads.
type client struct {
	t *testing.T
	net.Conn
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

func frame(b []byte) []byte {
	f, err := wire.AppendFrame(nil, b)
	if err != nil {
		panic(err)
	}
	return f
}

func query(id uint16, qname string, qtype uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// send writes all messages, framed, in one write: they arrive pipelined.
func (c *client) send(msgs ...[]byte) {
	c.t.Helper()
	var buf []byte
	for _, m := range msgs {
		buf = append(buf, frame(m)...)
	}
	if _, err := c.Write(buf); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one framed reply; it fails the test on a timeout or error.
func (c *client) recv() *dns.Msg {
	c.t.Helper()
	m, err := c.tryRecv()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *client) tryRecv() (*dns.Msg, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf, err := wire.ReadFrame(c, nil)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	return m, m.Unpack(buf)
}

// closed reports whether the server closed the connection (EOF or reset) within 10 s.
func (c *client) closed() bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	return err == nil || !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// value reads a counter or a gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
