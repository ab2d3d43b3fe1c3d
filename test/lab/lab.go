// Package lab implements lab upstreams for tests and benchmarks: a DNS server on loopback
// over UDP, TCP, DNS-over-TLS and optionally a Unix socket (RFC 1035 §4.2.2 framing), that
// answers a synthetic zone with a configurable latency distribution and injected faults.
//
// Stream connections are pipelined (RFC 7766 §6.2.1.1): queries are read in a loop and
// answered concurrently, each after its own delay, so replies may leave out of order.
// The lab honours edns-tcp-keepalive (RFC 7828), counts queries, connections and TLS
// handshakes (full and resumed), and can go down and come back on the same ports.
//
// StartUnbound runs Debian's unbound as a real DoT server in front of a lab upstream.
package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// Config describes a lab upstream. The zero value is usable.
type Config struct {
	CA         *CA    // signs the DoT certificate; a new CA when nil
	ServerName string // the DoT certificate's name; DefaultServerName when empty

	Latency Latency
	Fault   Fault

	TTL     uint32              // TTL of synthetic answers; 300 when 0
	Records map[string][]dns.RR // exact-name overrides (any case, with or without the final dot)

	// Listen addresses; "127.0.0.1:0" (a free port) when empty. "-" does not serve that
	// transport (its address method then returns "-").
	UDP, TCP, TLS string // when UDP and TCP are both empty they share one free port
	Unix          string // optional Unix socket path (SOCK_STREAM, 2-byte framing)
	// DoH (RFC 8484 over HTTP/2, TCP) and DoQ (RFC 9250, UDP) are served only when set:
	// "127.0.0.1:0" for a free port. DoHPath is the DoH path, "/dns-query" when empty.
	DoH, DoQ string
	DoHPath  string

	// IdleTimeout closes stream connections idle that long (nothing in flight); it is also
	// the value the lab announces in edns-tcp-keepalive. 10s when 0.
	IdleTimeout time.Duration

	// Seed makes latency and fault draws reproducible; 0 seeds at random.
	Seed uint64
}

// Upstream is a running lab server.
type Upstream struct {
	zone    zone
	tlsConf *tls.Config
	rnd     *random
	idle    time.Duration
	ca      *CA

	serverName string

	udpAddr, tcpAddr, tlsAddr, unixPath string
	dohAddr, doqAddr, dohPath           string

	mu       sync.Mutex
	latency  Latency
	fault    Fault
	faultGen uint64
	up       bool
	closed   bool
	stop     chan struct{} // closed by Down: aborts pending delays
	udp      net.PacketConn
	lns      []net.Listener
	conns    map[*conn]struct{}
	doqLn    *quic.EarlyListener
	doqTr    *quic.Transport
	doqConns map[*doqConn]struct{}

	wg sync.WaitGroup // every goroutine the lab runs

	stats   counters
	countMu sync.Mutex
	counts  map[string]int64
}

// Start starts a lab upstream as configured.
func Start(cfg Config) (*Upstream, error) {
	if cfg.CA == nil {
		ca, err := NewCA(cfg.ServerName)
		if err != nil {
			return nil, err
		}
		cfg.CA = ca
	}
	if cfg.ServerName == "" {
		cfg.ServerName = DefaultServerName
	}
	if cfg.TTL == 0 {
		cfg.TTL = 300
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	u := &Upstream{
		zone:       zone{ttl: cfg.TTL, records: map[string][]dns.RR{}},
		tlsConf:    cfg.CA.ServerTLS(cfg.ServerName),
		rnd:        newRandom(cfg.Seed),
		idle:       cfg.IdleTimeout,
		ca:         cfg.CA,
		serverName: cfg.ServerName,
		latency:    cfg.Latency,
		fault:      cfg.Fault,
		counts:     map[string]int64{},
		conns:      map[*conn]struct{}{},
		doqConns:   map[*doqConn]struct{}{},
		dohAddr:    cfg.DoH,
		doqAddr:    cfg.DoQ,
		dohPath:    cfg.DoHPath,
	}
	if u.dohPath == "" {
		u.dohPath = "/dns-query"
	}
	for name, rrs := range cfg.Records {
		u.zone.records[dns.Fqdn(strings.ToLower(name))] = rrs
	}
	if cfg.UDP == "" && cfg.TCP == "" {
		// One port for UDP and TCP, as a DNS server has, so that a client given one
		// address (forward without prefer_udp, dig, dnsperf) reaches both transports.
		if addr, err := kit.Addr(); err == nil {
			cfg.UDP, cfg.TCP = addr, addr
		}
	}
	u.udpAddr, u.tcpAddr, u.tlsAddr, u.unixPath = def(cfg.UDP), def(cfg.TCP), def(cfg.TLS), cfg.Unix
	if err := u.Up(); err != nil {
		return nil, err
	}
	return u, nil
}

// StartTest starts a lab upstream for t: it fails t on error and closes the upstream in
// t.Cleanup.
func StartTest(t testing.TB, cfg Config) *Upstream {
	t.Helper()
	u, err := Start(cfg)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// StartPort53 starts a lab upstream for t serving plain DNS (UDP and TCP) on port 53 of a
// random 127/8 address, as a node's resolver listed in a resolv.conf, which has no port. It
// skips t when no such address is free (binding port 53 needs root or CAP_NET_BIND_SERVICE).
func StartPort53(t testing.TB) *Upstream {
	t.Helper()
	var last error
	for range 10 {
		addr := fmt.Sprintf("127.%d.%d.%d:53", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(250))
		u, err := Start(Config{UDP: addr, TCP: addr, TLS: "-"})
		if err == nil {
			t.Cleanup(func() { u.Close() })
			return u
		}
		last = err
	}
	t.Skipf("no loopback address with a free port 53 (needs root): %v", last)
	return nil
}

func def(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Up binds the listeners and serves. After Down it binds the same addresses again.
func (u *Upstream) Up() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errors.New("lab: upstream closed")
	}
	if u.up {
		return nil
	}
	var lns []net.Listener
	var pc net.PacketConn
	var doq *quic.EarlyListener
	var doqTr *quic.Transport
	fail := func(err error) error {
		for _, l := range lns {
			l.Close()
		}
		if pc != nil {
			pc.Close()
		}
		if doq != nil {
			doq.Close()
		}
		if doqTr != nil {
			doqTr.Close()
			doqTr.Conn.Close()
		}
		return err
	}
	stop := make(chan struct{})
	if u.udpAddr != "-" {
		var err error
		if pc, err = net.ListenPacket("udp", u.udpAddr); err != nil {
			return fail(err)
		}
		u.udpAddr = pc.LocalAddr().String()
	}
	for _, l := range []struct {
		addr      *string
		network   string
		transport string
	}{{&u.tcpAddr, "tcp", "tcp"}, {&u.tlsAddr, "tcp", "tls"}, {&u.unixPath, "unix", "unix"}} {
		if *l.addr == "-" || *l.addr == "" {
			continue
		}
		if l.network == "unix" {
			os.Remove(*l.addr) // a stale socket from a previous run or from Down
		}
		ln, err := net.Listen(l.network, *l.addr)
		if err != nil {
			return fail(err)
		}
		if l.network == "unix" {
			ln.(*net.UnixListener).SetUnlinkOnClose(true)
		} else {
			*l.addr = ln.Addr().String()
		}
		lns = append(lns, ln)
		u.wg.Add(1)
		go u.accept(ln, l.transport, stop)
	}
	if u.dohAddr != "" && u.dohAddr != "-" {
		ln, err := net.Listen("tcp", u.dohAddr)
		if err != nil {
			return fail(err)
		}
		u.dohAddr = ln.Addr().String()
		lns = append(lns, ln)
		u.wg.Add(1)
		go u.acceptDoH(ln, stop)
	}
	if u.doqAddr != "" && u.doqAddr != "-" {
		conf := u.tlsConf.Clone()
		conf.NextProtos = []string{"doq"}
		conf.MinVersion = tls.VersionTLS13
		// A transport of its own over a socket of its own, so that Down frees the port at
		// once (a single-use listener keeps it while closed connections drain).
		qpc, err := net.ListenPacket("udp", u.doqAddr)
		if err != nil {
			return fail(err)
		}
		doqTr = &quic.Transport{Conn: qpc}
		if doq, err = doqTr.ListenEarly(conf, &quic.Config{MaxIdleTimeout: u.idle, Allow0RTT: true}); err != nil {
			return fail(err)
		}
		u.doqAddr = qpc.LocalAddr().String()
		u.wg.Add(1)
		go u.serveDoQ(doq, stop)
	}
	if pc != nil {
		u.wg.Add(1)
		go u.serveUDP(pc, stop)
	}
	u.udp, u.lns, u.doqLn, u.doqTr, u.stop, u.up = pc, lns, doq, doqTr, stop, true
	return nil
}

// Down stops serving: it closes the listeners, the UDP socket and every open connection,
// and waits for the lab's goroutines. Clients get "connection refused" until Up.
func (u *Upstream) Down() {
	u.mu.Lock()
	if !u.up {
		u.mu.Unlock()
		return
	}
	u.up = false
	close(u.stop)
	if u.udp != nil {
		u.udp.Close()
	}
	for _, l := range u.lns {
		l.Close()
	}
	conns := make([]*conn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	qconns := make([]*doqConn, 0, len(u.doqConns))
	for c := range u.doqConns {
		qconns = append(qconns, c)
	}
	doq, doqTr := u.doqLn, u.doqTr
	u.udp, u.lns, u.doqLn, u.doqTr = nil, nil, nil, nil
	u.mu.Unlock()
	for _, c := range conns { // outside the lock: a TLS close_notify may take a while
		c.close()
	}
	for _, c := range qconns {
		c.close(DoQNoError, "down")
	}
	if doq != nil {
		doq.Close()
		doqTr.Close()
		doqTr.Conn.Close()
	}
	u.wg.Wait()
}

// Close stops the upstream for good.
func (u *Upstream) Close() error {
	u.Down()
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	return nil
}

// UDPAddr returns the UDP address, "127.0.0.1:port".
func (u *Upstream) UDPAddr() string { return u.udpAddr }

// TCPAddr returns the plain TCP address.
func (u *Upstream) TCPAddr() string { return u.tcpAddr }

// TLSAddr returns the DNS-over-TLS address.
func (u *Upstream) TLSAddr() string { return u.tlsAddr }

// DoHAddr returns the DNS-over-HTTPS address ("" when not served); DoHPath its path.
func (u *Upstream) DoHAddr() string { return u.dohAddr }

// DoHPath returns the DoH path.
func (u *Upstream) DoHPath() string { return u.dohPath }

// DoQAddr returns the DNS-over-QUIC address ("" when not served).
func (u *Upstream) DoQAddr() string { return u.doqAddr }

// UnixPath returns the Unix socket path, or "" when none is served.
func (u *Upstream) UnixPath() string { return u.unixPath }

// CA returns the CA that signed the DoT certificate.
func (u *Upstream) CA() *CA { return u.ca }

// ClientTLS returns a client configuration for the DoT port: the CA's pool, the server name
// and a session cache, so that reconnections resume.
func (u *Upstream) ClientTLS() *tls.Config { return u.ca.ClientTLS(u.serverName) }

// ServerName returns the name of the DoT certificate.
func (u *Upstream) ServerName() string { return u.serverName }

// SetFault changes the injected fault; it applies to queries read from now on.
func (u *Upstream) SetFault(f Fault) {
	u.mu.Lock()
	u.fault = f
	u.faultGen++
	u.mu.Unlock()
}

// SetLatency changes the latency; it applies to queries read from now on.
func (u *Upstream) SetLatency(l Latency) {
	u.mu.Lock()
	u.latency = l
	u.mu.Unlock()
}

func (u *Upstream) current() (Latency, Fault, uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.latency, u.fault, u.faultGen
}
