// Package racetls implements a forwarder that races DNS upstreams of every
// transport (DoT, DoQ, DoH, plain DNS) over long-lived, pipelined, resumed
// connections.
//
// Each upstream keeps a few connections open; queries are multiplexed on them
// by message ID (RFC 7766 §6.2.1.1, RFC 7858 §3.3). The transports plug in
// below one interface (transport.go), so that pipelining, reconnects,
// keepalive, resumption and stats live once. A client query is
// packed once, sent to the K upstreams with the lowest latency EWMA (or all of
// them, or one at a time with a hedge delay) and the first NOERROR or NXDOMAIN
// reply whose question matches wins. Failures and silence escalate to the
// upstreams not asked yet.
package racetls

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/dnstap"
	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/plugin/metrics"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

var log = clog.NewWithPlugin("racetls")

// options are the tunables shared by a RaceTLS and its upstreams.
type options struct {
	timeout     time.Duration // overall deadline of a client query
	hedge       time.Duration // silence before one more upstream is asked; 0 = automatic
	width       int           // upstreams asked at once
	conns       int           // connections kept open per upstream
	maxConns    int           // connections per upstream, on demand
	maxInflight int           // outstanding queries per connection
	keepalive   time.Duration // idle time before a probe
	tick        time.Duration // watchdog period
	stats       time.Duration // stats table interval; 0 = off
}

// RaceTLS is the racetls plugin.
type RaceTLS struct {
	Next plugin.Handler

	from      string
	ignored   []string
	upstreams []*upstream // as parsed; the set in use is cur
	opts      options
	files     []string  // resolv.conf-style sources of dns:// upstreams, re-read on change
	settings  *settings // to build the upstreams a file lists later

	cur atomic.Pointer[[]*upstream]

	server     string // the block's server label: connection metrics, requests without a server
	tapPlugins []*dnstap.Dnstap
	stop       chan struct{}
	wg         sync.WaitGroup
	started    atomic.Bool // between OnStartup and OnShutdown
}

var errNotStarted = errors.New("not started")

// New returns a RaceTLS with the default options and no upstreams.
func New() *RaceTLS {
	return &RaceTLS{
		from: ".",
		opts: options{
			timeout:     defaultTimeout,
			conns:       defaultConns,
			maxConns:    defaultMaxConns,
			maxInflight: defaultMaxInflight,
			keepalive:   defaultKeepalive,
		},
	}
}

// Defaults: no option needs setting on a production node.
const (
	defaultTimeout     = 2 * time.Second
	defaultRace        = 2
	defaultConns       = 2
	defaultMaxConns    = 4
	defaultMaxInflight = 100
	defaultKeepalive   = 5 * time.Second // below the ~10 s idle timeout of some providers
)

// Name implements plugin.Handler.
func (rt *RaceTLS) Name() string { return "racetls" }

// ServeDNS implements plugin.Handler.
func (rt *RaceTLS) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	if !rt.match(state) {
		return plugin.NextOrFailure(rt.Name(), rt.Next, ctx, w, r)
	}
	// A listener may hand a query to a chain whose startup has not run, or whose
	// shutdown has (a reload's old instance): fail it rather than touch torn-down state.
	if !rt.started.Load() {
		return dns.RcodeServerFailure, plugin.Error(rt.Name(), errNotStarted)
	}
	ret, u, err := rt.resolve(ctx, w, r, metrics.WithServer(ctx))
	if err != nil {
		return dns.RcodeServerFailure, plugin.Error(rt.Name(), err)
	}
	metadata.SetValueFunc(ctx, "racetls/upstream", u.nameFunc)
	// The client gets its own ID and question, 0x20 case included.
	ret.Id = r.Id
	ret.Question = append(ret.Question[:0], r.Question...)
	w.WriteMsg(ret)
	return 0, nil
}

func (rt *RaceTLS) match(state request.Request) bool {
	name := state.Name()
	if !plugin.Name(rt.from).Matches(name) {
		return false
	}
	if dns.Name(name) == dns.Name(rt.from) {
		return true
	}
	for _, ignore := range rt.ignored {
		if plugin.Name(ignore).Matches(name) {
			return false
		}
	}
	return true
}

// OnStartup starts dialling every upstream and returns at once: it never
// fails and never delays the server. Queries that arrive while a first dial
// is in progress wait for it (within their deadline); an unreachable upstream
// is retried in the background and used once it answers.
func (rt *RaceTLS) OnStartup() error {
	rt.stop = make(chan struct{})
	ups := rt.upstreams
	rt.cur.Store(&ups)
	for _, u := range ups {
		u.start(rt.server)
	}
	if len(rt.files) > 0 {
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); rt.watchFiles(rt.stop) }()
	}
	if rt.opts.stats > 0 {
		rt.wg.Add(1)
		go func() { defer rt.wg.Done(); rt.statsLoop(rt.opts.stats, rt.stop) }()
	}
	rt.started.Store(true)
	return nil
}

// OnShutdown closes every connection and waits for the goroutines.
func (rt *RaceTLS) OnShutdown() error {
	if rt.stop == nil {
		return nil
	}
	rt.started.Store(false)
	close(rt.stop)
	rt.wg.Wait() // the file watcher and what it retires
	for _, u := range rt.ups() {
		u.close()
	}
	rt.stop = nil
	return nil
}

// serverLabel is the metrics' server label of the block, as the dnsserver
// package spells a server's address ("dns://:53").
func serverLabel(cfg *dnsserver.Config) string {
	host := ""
	if len(cfg.ListenHosts) > 0 {
		host = cfg.ListenHosts[0]
	}
	addr := net.JoinHostPort(host, cfg.Port)
	if a, err := net.ResolveTCPAddr("tcp", addr); err == nil {
		addr = a.String()
	}
	return cfg.Transport + "://" + addr
}
