package warmcache

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/metadata"

	"github.com/miekg/dns"
)

// A refresh by the sweeper has no client, but the chain below may need what a client's
// request carries: the server, for pkg/upstream to re-enter it (CNAME chasing, ExternalName),
// the view, and the loop key. So an entry remembers the context of a real request for it
// as a small index into a per-cache table of distinct (server, view, loop) triples.

// origin is what a refresh takes from a real request: its context's server, view and loop
// key, and its client's transport, which plugins the refresh re-enters see (log, metrics,
// and the reply size limits of pkg/upstream's nonwriter), as cache's prefetch runs with the
// client's writer.
type origin struct {
	server *dnsserver.Server
	view   any
	loop   any
	udp    bool
	v6     bool
	// The request's RD bit and EDNS (presence and UDP size), which a refresh asks with, as
	// cache's prefetch re-sends a client's request.
	rd, edns bool
	size     uint16
}

// origins interns origins; index 0 means none.
type origins struct {
	mu  sync.Mutex
	idx map[origin]uint32
	all []origin
}

// maxOrigins bounds the table; a request with a new origin past it is not remembered.
const maxOrigins = 1024

// of returns the index of the origin of a request with context ctx and writer w, 0 when it
// has no server.
func (o *origins) of(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) uint32 {
	s, _ := ctx.Value(dnsserver.Key{}).(*dnsserver.Server)
	if s == nil {
		return 0
	}
	k := origin{server: s, view: ctx.Value(dnsserver.ViewKey{}), loop: ctx.Value(dnsserver.LoopKey{})}
	k.rd, k.edns, k.size = true, true, udpSize
	if r != nil {
		k.rd, k.edns, k.size = r.RecursionDesired, false, 0
		if opt := r.IsEdns0(); opt != nil {
			k.edns, k.size = true, opt.UDPSize()
		}
	}
	if w != nil {
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			k.udp, k.v6 = true, a.IP.To4() == nil
		case *net.TCPAddr:
			k.v6 = a.IP.To4() == nil
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if i, ok := o.idx[k]; ok {
		return i
	}
	if len(o.all) >= maxOrigins {
		return 0
	}
	if o.idx == nil {
		o.idx = make(map[origin]uint32)
	}
	o.all = append(o.all, k)
	i := uint32(len(o.all)) // #nosec G115 -- bounded by maxOrigins
	o.idx[k] = i
	return i
}

// context returns a context for a refresh that carries origin i, marked as coming from
// this cache and with fresh metadata, and a writer with the origin's transport (nil: TCP).
func (o *origins) context(i uint32) (context.Context, dns.ResponseWriter, *origin) {
	ctx := context.Background()
	var w dns.ResponseWriter
	var org *origin
	if i > 0 {
		o.mu.Lock()
		k := o.all[i-1]
		o.mu.Unlock()
		org = &k
		ip := net.IPv4(127, 0, 0, 1)
		if k.v6 {
			ip = net.IPv6loopback
		}
		if k.udp {
			w = &refreshWriter{local: &net.UDPAddr{IP: ip}, remote: &net.UDPAddr{IP: ip}}
		} else {
			w = &refreshWriter{local: &net.TCPAddr{IP: ip}, remote: &net.TCPAddr{IP: ip}}
		}
		ctx = context.WithValue(ctx, dnsserver.Key{}, k.server)
		if k.loop != nil {
			ctx = context.WithValue(ctx, dnsserver.LoopKey{}, k.loop)
		}
		if k.view != nil {
			ctx = context.WithValue(ctx, dnsserver.ViewKey{}, k.view)
		}
	}
	return metadata.ContextWithMetadata(down(ctx)), w, org
}

// refreshWriter stands for the client of a refresh: it has addresses and writes nothing
// (the captureWriter over it keeps the reply).
type refreshWriter struct{ local, remote net.Addr }

func (w *refreshWriter) LocalAddr() net.Addr         { return w.local }
func (w *refreshWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *refreshWriter) WriteMsg(*dns.Msg) error     { return nil }
func (w *refreshWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *refreshWriter) Close() error                { return nil }
func (w *refreshWriter) TsigStatus() error           { return nil }
func (w *refreshWriter) TsigTimersOnly(bool)         {}
func (w *refreshWriter) Hijack()                     {}

// remember records ctx as the origin of the entry r names, whose origin is cur, if it has none.
func (c *WarmCache) remember(ctx context.Context, r ref, cur uint32) {
	if cur == 0 {
		if i := c.origins.of(ctx, nil, nil); i > 0 {
			c.store.with(r, func(rec *record) { rec.origin.CompareAndSwap(0, i) })
		}
	}
}

// Caches wait for a verdict on the whole Corefile before they write raw bytes: whether a
// block without warmcache re-enters the server (see foreignReentry). caddy hands the
// instance, and so the Corefile, to event hooks once it has started.
var verdicts = struct {
	sync.Mutex
	pending []*WarmCache
}{}

func init() { registerVerdictHook() }

// registerVerdictHook registers verdictHook unless it is there. caddy's SIGUSR1 handler drops
// every event hook before it reloads and restores them only when the reload fails (see
// unixsock's registerHook), so a hook registered once would be gone from the first SIGUSR1
// on: no verdict, no raw bytes, no front door started by the new instance. Each cache
// registers it again as it starts; caddy says "already registered" with a panic, which is
// the expected case here.
func registerVerdictHook() {
	defer func() { _ = recover() }()
	caddy.RegisterEventHook("warmcache", verdictHook)
}

// verdictHook hands the pending caches the verdict on the Corefile of the instance that
// started.
func verdictHook(ev caddy.EventName, info any) error {
	if ev != caddy.InstanceStartupEvent {
		return nil
	}
	inst, ok := info.(*caddy.Instance)
	if !ok {
		return nil
	}
	verdicts.Lock()
	pending := verdicts.pending
	verdicts.pending = nil
	verdicts.Unlock()
	foreign, known := true, false
	var cbs []caddyBlock
	if in := inst.Caddyfile(); in != nil {
		if blocks, err := caddyfile.Parse(in.Path(), bytes.NewReader(in.Body()), dnsserver.Directives); err == nil {
			dirs := make([][]string, len(blocks))
			for i, b := range blocks {
				for d := range b.Tokens {
					dirs[i] = append(dirs[i], d)
				}
				cb := caddyBlock{keys: b.Keys, dirs: dirs[i]}
				for _, tok := range b.Tokens["loadbalance"] {
					cb.lb = append(cb.lb, tok.Text)
				}
				cbs = append(cbs, cb)
			}
			foreign, known = foreignReentry(dirs), true
		}
	}
	for _, c := range pending {
		shared := "the Corefile could not be read"
		if known {
			shared = sharedAddress(c, cbs)
			c.lbPlain.Store(roundRobin(c, cbs))
		}
		c.openDoor(shared)
		c.decide(foreign)
	}
	return nil
}

// await queues c for the verdict on its Corefile.
func (c *WarmCache) await() {
	registerVerdictHook()
	verdicts.Lock()
	verdicts.pending = append(verdicts.pending, c)
	verdicts.Unlock()
}

// decide sets c's raw mode once the Corefile is known.
func (c *WarmCache) decide(foreign bool) {
	mode, why := c.blockMode, c.blockWhy
	if foreign && mode != rawNever {
		mode, why = rawNever, "a server block without warmcache that re-enters the server"
	}
	c.mode.Store(uint32(mode))
	log.Info(describe(c.keys, mode, why))
	if c.fd.door != nil {
		log.Infof("Front door of %s: on, %d UDP sockets on %s", strings.Join(c.keys, " "), sockets(), c.fd.addrs[0])
	} else {
		log.Infof("Front door of %s: off (%s)", strings.Join(c.keys, " "), c.fd.why)
	}
}
