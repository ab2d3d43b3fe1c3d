package warmcache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/forward"
	"github.com/coredns/coredns/plugin/pkg/proxy"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

// clock is a fake clock for the cache.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// recorder is a client-side writer that keeps what the cache sends.
type recorder struct {
	test.ResponseWriter
	mu  sync.Mutex
	raw [][]byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.raw = append(r.raw, append([]byte(nil), b...))
	r.mu.Unlock()
	return len(b), nil
}

func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}

// reply returns the last message written, unpacked.
func (r *recorder) reply(t *testing.T) *dns.Msg {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.raw) == 0 {
		t.Fatal("no reply written")
	}
	m := new(dns.Msg)
	if err := m.Unpack(r.raw[len(r.raw)-1]); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

// startLab starts a lab upstream that the test stops.
func startLab(t testing.TB, cfg lab.Config) *lab.Upstream {
	t.Helper()
	u, err := lab.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// newForward returns CoreDNS's forward plugin sending to the lab's UDP (and TCP) port.
func newForward(t testing.TB, u *lab.Upstream) *forward.Forward {
	t.Helper()
	f := forward.New()
	// The lab's TCP port differs from its UDP port: prefer_udp keeps TCP clients on UDP.
	f.SetProxyOptions(proxy.Options{PreferUDP: true, HCRecursionDesired: true, HCDomain: "."})
	f.SetProxy(proxy.NewProxy("forward", u.UDPAddr(), transport.DNS))
	t.Cleanup(func() { f.OnShutdown() })
	return f
}

// newCache parses a warmcache Corefile snippet and puts forward to u behind it, on a
// fake clock. The sweeper does not run: tests call sweep.
func newCache(t testing.TB, corefile string, u *lab.Upstream) (*WarmCache, *clock) {
	t.Helper()
	c, err := parse(caddy.NewTestController("dns", corefile))
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	c.now = clk.Now
	if u != nil {
		c.Next = newForward(t, u)
	}
	t.Cleanup(func() {
		c.shutdown()
		c.store.close()
	})
	return c, clk
}

// query sends one question through c and returns the reply.
func query(t *testing.T, c *WarmCache, w *recorder, name string, qtype uint16, edit ...func(*dns.Msg)) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	for _, f := range edit {
		f(r)
	}
	// The server wraps every writer in a ScrubWriter, which adds the OPT record and
	// truncates replies written with WriteMsg.
	if _, err := c.ServeDNS(context.Background(), request.NewScrubWriter(r, w), r); err != nil {
		t.Fatalf("ServeDNS(%s): %v", name, err)
	}
	m := w.reply(t)
	if m.Id != r.Id {
		t.Errorf("reply ID %d, want %d", m.Id, r.Id)
	}
	return m
}

func withDO(r *dns.Msg) { r.SetEdns0(4096, true) }
func withCD(r *dns.Msg) { r.CheckingDisabled = true }
func withEDNS(size uint16) func(*dns.Msg) {
	return func(r *dns.Msg) { r.SetEdns0(size, false) }
}

// tcpRecorder is a recorder whose client is on TCP.
func tcpRecorder() *recorder { return &recorder{ResponseWriter: test.ResponseWriter{TCP: true}} }
