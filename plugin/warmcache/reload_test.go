package warmcache

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	// Plugins of the Corefiles under test.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/forward"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

func init() {
	caddy.Quiet, dnsserver.Quiet = true, true
	// As build/plugin.cfg: warmcache right after cache.
	if !slices.Contains(dnsserver.Directives, "warmcache") {
		i := slices.Index(dnsserver.Directives, "cache")
		if err := dnsserver.SetDirectives(slices.Insert(slices.Clone(dnsserver.Directives), i+1, "warmcache")); err != nil {
			panic(err)
		}
	}
}

// server is an in-process CoreDNS whose Corefile tests reload, as SIGUSR1 and the reload
// plugin do.
type server struct {
	t    *testing.T
	inst *caddy.Instance
}

func startServer(t *testing.T, corefile string) *server {
	t.Helper()
	inst, err := caddy.Start(corefileInput(corefile))
	if err != nil {
		t.Fatalf("start: %v\n%s", err, corefile)
	}
	s := &server{t: t, inst: inst}
	t.Cleanup(s.stop)
	return s
}

func corefileInput(corefile string) caddy.CaddyfileInput {
	return caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"}
}

// reload restarts the server with corefile and reports the error of a failed reload, after
// which the old instance serves on.
func (s *server) reload(corefile string) error {
	inst, err := s.inst.Restart(corefileInput(corefile))
	s.inst = inst
	return err
}

// stop shuts the server down as SIGTERM does.
func (s *server) stop() {
	if s.inst != nil {
		s.inst.ShutdownCallbacks()
		s.inst.Stop()
		s.inst = nil
	}
}

// addr returns the server's UDP address.
func (s *server) addr() string {
	s.t.Helper()
	for _, sl := range s.inst.Servers() {
		if a, ok := sl.LocalAddr().(*net.UDPAddr); ok {
			return a.String()
		}
	}
	s.t.Fatal("no UDP server")
	return ""
}

// ask sends an A query over UDP and returns the reply.
func (s *server) ask(name string) *dns.Msg {
	s.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := new(dns.Client).Exchange(m, s.addr())
	if err != nil {
		s.t.Fatalf("%s: %v", name, err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		s.t.Fatalf("%s: %v", name, r)
	}
	return r
}

// serving returns the cache registered for the only server block, and checks that no
// reload is pending.
func serving(t *testing.T) *WarmCache {
	t.Helper()
	registry.Lock()
	defer registry.Unlock()
	if len(registry.m) != 1 {
		t.Fatalf("%d server blocks in the registry, want 1", len(registry.m))
	}
	for _, s := range registry.m {
		if s.cur == nil || s.next != nil {
			t.Fatalf("registry slot cur %p next %p, want only a current cache", s.cur, s.next)
		}
		return s.cur
	}
	return nil
}

func registered() int {
	registry.Lock()
	defer registry.Unlock()
	return len(registry.m)
}

// sweeping reports whether c's sweeper runs.
func sweeping(c *WarmCache) bool {
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func reloadCorefile(u *lab.Upstream, options string) string {
	return fmt.Sprintf(".:0 {\n bind 127.0.0.1\n warmcache {\n  sweep 100ms\n  %s\n }\n forward . %s\n}\n", options, u.UDPAddr())
}

func TestReloadKeepsEntries(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 300})
	s := startServer(t, reloadCorefile(u, "success 100"))
	hot := func(i int) string { return fmt.Sprintf("hot%d.example.org.", i) }
	cold := func(i int) string { return fmt.Sprintf("cold%d.example.org.", i) }
	for i := range 5 {
		for range 3 {
			s.ask(hot(i))
		}
	}
	for i := range 20 {
		s.ask(cold(i))
	}
	old := serving(t)
	if !sweeping(old) {
		t.Fatal("sweeper not started")
	}

	// Clients keep asking through the reload (the race detector watches the handover).
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		answers atomic.Int64
	)
	addr := s.addr()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &dns.Client{Timeout: time.Second}
		for i := 0; !stop.Load() && i < 2000; i++ {
			m := new(dns.Msg)
			m.SetQuestion(hot(i%5), dns.TypeA)
			if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess {
				answers.Add(1)
			}
		}
	}()
	time.Sleep(1100 * time.Millisecond) // TTLs go down by a second
	if err := s.reload(reloadCorefile(u, "success 10")); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if answers.Load() == 0 {
		t.Error("no answers during the reload")
	}

	c := serving(t)
	if c == old {
		t.Fatal("the reload kept the old cache")
	}
	if sweeping(old) || !sweeping(c) {
		t.Errorf("after the reload: old sweeper running %v, new %v; want only the new one", sweeping(old), sweeping(c))
	}
	if n := c.store.count[classSuccess].Load(); n != 10 {
		t.Errorf("%d entries after a reload to capacity 10, want 10", n)
	}
	// The old store's memory is outside the Go heap: the shutdown returns it.
	if n, mapped := old.store.len(), old.store.slab.mapped(); n != 0 || mapped != 0 {
		t.Errorf("old store after the reload: %d entries, %d bytes mapped; want it closed", n, mapped)
	}
	for i := range 5 {
		r := s.ask(hot(i))
		if ttl := r.Answer[0].Header().Ttl; ttl >= 300 || ttl < 290 {
			t.Errorf("%s: TTL %d after the reload, want a little below 300", hot(i), ttl)
		}
		if n := u.Count(hot(i)); n != 1 {
			t.Errorf("%s: upstream asked %d times, want once (a hit after the reload)", hot(i), n)
		}
	}

	// flush_on_reload starts empty.
	if err := s.reload(reloadCorefile(u, "flush_on_reload")); err != nil {
		t.Fatal(err)
	}
	if n := serving(t).store.len(); n != 0 {
		t.Errorf("%d entries after a reload with flush_on_reload", n)
	}
	s.ask(hot(0))
	if n := u.Count(hot(0)); n != 2 {
		t.Errorf("upstream asked %d times after flush_on_reload, want 2", n)
	}

	// The final shutdown stops the sweeper and frees the registry.
	last := serving(t)
	s.stop()
	if sweeping(last) || registered() != 0 {
		t.Errorf("after shutdown: sweeper running %v, %d slots registered", sweeping(last), registered())
	}
}

func TestReloadFailedKeepsOldCache(t *testing.T) {
	u := startLab(t, lab.Config{TTL: 300})
	s := startServer(t, reloadCorefile(u, ""))
	s.ask("kept.example.org.")
	old := serving(t)

	// A second block on a busy port makes the new instance fail after warmcache started.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	failing := reloadCorefile(u, "success 5") + fmt.Sprintf(".:%s {\n bind 127.0.0.1\n warmcache\n forward . %s\n}\n", port, u.UDPAddr())
	if err := s.reload(failing); err == nil {
		t.Fatal("reload onto a busy port succeeded")
	}
	if c := serving(t); c != old || !sweeping(old) {
		t.Fatalf("after a failed reload: serving %p (old %p), sweeping %v", c, old, sweeping(old))
	}
	s.ask("kept.example.org.")
	if n := u.Count("kept.example.org."); n != 1 {
		t.Errorf("upstream asked %d times, want once", n)
	}

	// A reload that adds a server block starts that block's cache.
	added := reloadCorefile(u, "") + fmt.Sprintf("example.net:0 {\n bind 127.0.0.1\n warmcache\n forward . %s\n}\n", u.UDPAddr())
	if err := s.reload(added); err != nil {
		t.Fatal(err)
	}
	registry.Lock()
	var caches []*WarmCache
	for _, sl := range registry.m {
		if sl.next != nil {
			t.Errorf("a cache still pending after the reload")
		}
		caches = append(caches, sl.cur)
	}
	registry.Unlock()
	if len(caches) != 2 {
		t.Fatalf("%d caches registered, want 2", len(caches))
	}
	for _, c := range caches {
		if !sweeping(c) {
			t.Errorf("cache of %q has no sweeper", c.id)
		}
	}
	s.stop()
	if registered() != 0 {
		t.Errorf("%d slots left after shutdown", registered())
	}
}
