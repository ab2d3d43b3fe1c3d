package racetls

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// resolvConfCheck is how often a resolv.conf-style source is looked at for changes.
var resolvConfCheck = 2 * time.Second

// readResolvConf returns the nameservers of a resolv.conf-style file as IP:port, as
// forward reads /etc/resolv.conf (parse.HostPortOrFile): every nameserver line, an
// IPv6 zone dropped. Names that are not IP addresses are skipped.
func readResolvConf(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, s := range cc.Servers {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		a := net.JoinHostPort(ip.WithZone("").Unmap().String(), cc.Port)
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no nameserver")
	}
	return addrs, nil
}

// ups returns the upstreams in use.
func (rt *RaceTLS) ups() []*upstream {
	if p := rt.cur.Load(); p != nil {
		return *p
	}
	return rt.upstreams
}

// watchFiles re-reads the resolv.conf-style sources when they change and swaps the
// upstreams they list: new ones are started first, those no longer listed are closed
// once the queries that may still use them are over.
func (rt *RaceTLS) watchFiles(stop <-chan struct{}) {
	last := make([][]byte, len(rt.files))
	for i, f := range rt.files {
		last[i], _ = os.ReadFile(f)
	}
	t := time.NewTicker(resolvConfCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		changed := false
		for i, f := range rt.files {
			b, err := os.ReadFile(f)
			if err != nil || bytes.Equal(b, last[i]) {
				continue
			}
			last[i], changed = b, true
		}
		if changed {
			rt.reloadFiles()
		}
	}
}

// reloadFiles rebuilds the set of upstreams from the block's TO list with the files'
// current contents. A file that cannot be read or lists no nameserver keeps its old
// upstreams.
func (rt *RaceTLS) reloadFiles() {
	old := rt.ups()
	byName := map[string]*upstream{}
	for _, u := range old {
		byName[u.name] = u
	}
	var next []*upstream
	keep := map[*upstream]bool{}
	add := func(u *upstream) {
		if len(next) < maxUpstreams && !keep[u] {
			next = append(next, u)
			keep[u] = true
		}
	}
	for _, u := range rt.upstreams {
		if !u.fromFile {
			add(u)
		}
	}
	for _, f := range rt.files {
		addrs, err := readResolvConf(f)
		if err != nil {
			log.Warningf("%s: %s; keeping its upstreams", f, err)
			for _, u := range old {
				if u.fromFile {
					add(u)
				}
			}
			continue
		}
		for _, a := range addrs {
			if u, ok := byName["dns://"+a]; ok {
				add(u)
				continue
			}
			u := rt.settings.newUpstream(target{scheme: "dns", addr: a}, &rt.opts)
			u.fromFile = true
			u.start(rt.server)
			byName[u.name] = u
			add(u)
		}
	}
	var gone []*upstream
	for _, u := range old {
		if !keep[u] {
			gone = append(gone, u)
		}
	}
	for _, u := range byName {
		if !keep[u] && !slices.Contains(old, u) {
			gone = append(gone, u) // started above but over the limit
		}
	}
	rt.cur.Store(&next)
	log.Infof("%s changed: upstreams %s", rt.files, names(next))
	if len(gone) == 0 {
		return
	}
	// Races that started before the swap may still use the old upstreams: close them
	// after a query's deadline.
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		select {
		case <-time.After(rt.opts.timeout):
		case <-rt.stop:
		}
		for _, u := range gone {
			u.close()
		}
	}()
}

func names(us []*upstream) []string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.name
	}
	return s
}
