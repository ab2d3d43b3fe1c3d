package warmcache

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/dnscache/dnscache/plugin/pkg/frontdoor"

	"github.com/miekg/dns"
)

// The front door (DESIGN §6.3, package frontdoor): a block whose plugins above warmcache
// are all ones a hit may skip gets a group of UDP sockets of its own on each of its
// addresses, opened at startup before CoreDNS binds. Groups live in a registry keyed by
// address, so that a reload keeps them: the new instance's door replaces the old one's
// when the old cache shuts down, once the new instance serves.
var doors = struct {
	sync.Mutex
	m map[string]*doorSlot
}{m: map[string]*doorSlot{}}

type doorSlot struct {
	g         *frontdoor.Group
	cur, next *WarmCache
}

// frontDoor is a cache's part in the front door.
type frontDoor struct {
	on    bool     // the front_door option
	addrs []string // the block's UDP addresses, host:port
	label string   // the block's server label, for metrics
	why   string   // why the block has none, for the startup log
	cfgs  []*dnsserver.Config
	door  *frontdoor.Door
}

// prepareDoor decides, at OnStartup, whether c's block gets a front door, and opens or
// adopts its sockets.
func (c *WarmCache) prepareDoor(cfgs []*dnsserver.Config) error {
	fd := &c.fd
	cfg := cfgs[0]
	if !fd.on {
		fd.why = "front_door off"
		return nil
	}
	if cfg.Transport != "dns" {
		fd.why = "transport " + cfg.Transport
		return nil
	}
	hs := cfg.Handlers()
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name()
	}
	if ok, why := frontdoor.Eligible(names, c.Name()); !ok {
		fd.why = why
		return nil
	}
	if len(cfg.FilterFuncs) > 0 {
		fd.why = "view"
		return nil
	}
	hosts := cfg.ListenHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	fd.addrs = fd.addrs[:0]
	for _, h := range hosts {
		fd.addrs = append(fd.addrs, net.JoinHostPort(h, cfg.Port))
	}
	fd.label = "dns://" + fd.addrs[0]
	if len(hosts) > 1 {
		fd.why = "several bind addresses" // one server label per address: not done yet
		fd.addrs = nil
		return nil
	}
	srv, err := dnsserver.NewServer(fd.label, cfgs)
	if err != nil {
		return err
	}
	d := &frontdoor.Door{Cache: c, Server: srv, Label: fd.label, Rotate: slices.Contains(names, "loadbalance")}
	if h, ok := cfg.Handler("prometheus").(*metrics.Metrics); ok {
		d.Report = &frontdoor.Reporter{Server: fd.label, Proto: "udp", Zones: h.ZoneNames, Plugin: frontdoor.After(names, "prometheus"),
			Scrubbed: func(rc int) bool { return !c.rawFor(context.Background(), rc, true) }}
	}
	fd.door, fd.cfgs = d, cfgs

	doors.Lock()
	defer doors.Unlock()
	addr := fd.addrs[0]
	s := doors.m[addr]
	if s != nil {
		s.next = c
		return nil
	}
	if running(c) {
		// CoreDNS's socket for this address may already be in the reuseport group, where
		// ours would not come first.
		fd.why = "turned on by a reload: takes effect at the next start"
		fd.door = nil
		return nil
	}
	g, err := frontdoor.Open(addr, sockets())
	if err != nil {
		fd.why = "open: " + err.Error()
		fd.door = nil
		return nil
	}
	doors.m[addr] = &doorSlot{g: g, next: c}
	return nil
}

// running reports whether a cache of an earlier instance still serves: c starts in a reload.
func running(c *WarmCache) bool {
	registry.Lock()
	defer registry.Unlock()
	for _, s := range registry.m {
		if s.cur != nil && s.cur.inst != c.inst {
			return true
		}
	}
	return false
}

// sockets is how many front-door sockets an address gets: one per two CPUs, at least one.
func sockets() int { return max(1, min(4, runtime.NumCPU()/2)) }

// openDoor starts serving c's front door, given the verdict on the Corefile: foreign is
// the reason another block shares its address, if one does.
func (c *WarmCache) openDoor(shared string) {
	fd := &c.fd
	if fd.door == nil {
		return
	}
	addr := fd.addrs[0]
	doors.Lock()
	s := doors.m[addr]
	doors.Unlock()
	if s != nil && s.cur == c && shared == "" {
		return // in a reload, the cache c replaces handed it over as it shut down
	}
	if s == nil || s.next != c && s.cur != c {
		// Another block's cache took the address (and will close it): the Corefile shares it.
		fd.door = nil
		if fd.why = shared; fd.why == "" {
			fd.why = "another server block on " + addr
		}
		return
	}
	if shared == "" && fd.door.Rotate && !c.lbPlain.Load() {
		shared = "loadbalance with a policy other than round_robin"
	}
	if shared != "" {
		fd.why = shared
		c.closeDoor()
		return
	}
	if err := s.g.Serve(fd.door); err != nil {
		fd.why = "steer: " + err.Error()
		c.closeDoor()
		return
	}
	doors.Lock()
	s.cur, s.next = c, nil
	doors.Unlock()
}

// handDoor passes the front door of c, which shuts down, to the cache of the new instance
// if there is one; else it closes it.
func (c *WarmCache) handDoor() {
	if len(c.fd.addrs) == 0 {
		return
	}
	doors.Lock()
	s := doors.m[c.fd.addrs[0]]
	doors.Unlock()
	if s == nil || s.cur != c {
		return
	}
	if n := s.next; n != nil && n.fd.door != nil {
		if err := s.g.Serve(n.fd.door); err == nil {
			doors.Lock()
			s.cur, s.next = n, nil
			doors.Unlock()
			return
		}
	}
	c.closeDoor()
}

// closeDoor closes the group of c's address: CoreDNS's socket answers everything.
func (c *WarmCache) closeDoor() {
	doors.Lock()
	s := doors.m[c.fd.addrs[0]]
	if s != nil && (s.cur == c || s.next == c) {
		delete(doors.m, c.fd.addrs[0])
	} else {
		s = nil
	}
	doors.Unlock()
	c.fd.door = nil
	if s != nil {
		s.g.Close()
	}
}

// sharedAddress returns why c's front door can't serve: another server block of the
// Corefile listens on its port (the server routes between them by zone and by view: a
// block with a view has the same keys as the block it falls through to), or "".
func sharedAddress(c *WarmCache, blocks []caddyBlock) string {
	if len(c.fd.addrs) == 0 {
		return ""
	}
	_, port, _ := net.SplitHostPort(c.fd.addrs[0])
	n := 0
	for _, b := range blocks {
		for _, k := range b.keys {
			if keyPort(k) == port {
				n++
				break
			}
		}
	}
	if n > 1 {
		return "another server block on port " + port
	}
	return ""
}

// caddyBlock is a server block of the Corefile: its keys and directives, and the tokens of
// its loadbalance directive.
type caddyBlock struct {
	keys []string
	dirs []string
	lb   []string
}

// roundRobin reports whether every block of the Corefile with c's keys that has
// loadbalance gives it no arguments but round_robin and no options: the policy the front
// door reproduces.
func roundRobin(c *WarmCache, blocks []caddyBlock) bool {
	mine := normKeys(c.keys)
	for _, b := range blocks {
		if normKeys(b.keys) != mine || len(b.lb) == 0 {
			continue
		}
		if !slices.Equal(b.lb, []string{"loadbalance"}) && !slices.Equal(b.lb, []string{"loadbalance", "round_robin"}) {
			return false
		}
	}
	return true
}

// normKeys returns server block keys as one comparable string: lower case, with the dns://
// scheme, a fully qualified zone and the port (53 by default) made explicit, as CoreDNS
// writes them ("dns://example.org.:53") whatever the Corefile says ("example.org").
func normKeys(keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		k = strings.ToLower(k)
		scheme := "dns"
		if j := strings.Index(k, "://"); j >= 0 {
			scheme, k = k[:j], k[j+3:]
		}
		port := keyPort(scheme + "://" + k)
		if j := strings.LastIndex(k, ":"); j >= 0 && !strings.Contains(k[j:], "]") {
			k = k[:j]
		}
		out[i] = scheme + "://" + dns.Fqdn(k) + ":" + port
	}
	return strings.Join(out, " ")
}

// RoundRobin reports whether loadbalance, if the block has it, is known to use the policy the
// front door reproduces; false until the Corefile has been read.
func (c *WarmCache) RoundRobin() bool { return c.lbPlain.Load() }

// keyPort returns the port of a server block key ("example.org:1053", "dns://.:53",
// ".", "tls://.:853"), with CoreDNS's default 53; "" for transports other than dns.
func keyPort(k string) string {
	if i := strings.Index(k, "://"); i >= 0 {
		if k[:i] != "dns" {
			return ""
		}
		k = k[i+3:]
	}
	if i := strings.LastIndex(k, ":"); i >= 0 && !strings.Contains(k[i:], "]") {
		return k[i+1:]
	}
	return "53"
}

// forgetDoors drops what a failed reload prepared: the old caches keep their doors, and a
// group only the failed instance opened is closed.
func forgetDoors() {
	doors.Lock()
	var closing []*frontdoor.Group
	for addr, s := range doors.m {
		s.next = nil
		if s.cur == nil {
			closing = append(closing, s.g)
			delete(doors.m, addr)
		}
	}
	doors.Unlock()
	for _, g := range closing {
		g.Close()
	}
}

// FrontDoorOn reports whether the front_door option lets listeners answer hits before the
// chain (the socket's readers do, see unixsock).
func (c *WarmCache) FrontDoorOn() bool { return c.fd.on }
