package racetls

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// target is one parsed upstream: tls://IP[:port][%servername].
type target struct {
	addr       string // IP:port
	serverName string // empty: tls_servername, else the IP
}

// parseTarget parses tls://IP[:port][%servername]; IPv6 addresses need
// brackets when a port follows (tls://[2620:fe::fe]:853%dns.quad9.net).
// Host names are refused: a forwarder must not depend on the resolver it
// provides.
func parseTarget(s string) (target, error) {
	rest, ok := strings.CutPrefix(strings.ToLower(s), "tls://")
	if !ok {
		return target{}, fmt.Errorf("upstream '%s': only tls://IP[:port][%%servername] is supported", s)
	}
	var t target
	// The server name may only follow the address: tls://IP[:port]%name.
	if i := strings.LastIndexByte(rest, '%'); i >= 0 {
		t.serverName = rest[i+1:]
		rest = rest[:i]
		if t.serverName == "" {
			return target{}, fmt.Errorf("upstream '%s': empty server name after '%%'", s)
		}
		if _, ok := dns.IsDomainName(t.serverName); !ok || strings.ContainsAny(t.serverName, ":/[]") {
			return target{}, fmt.Errorf("upstream '%s': invalid server name '%s'", s, t.serverName)
		}
	}
	host, port := rest, "853"
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return target{}, fmt.Errorf("upstream '%s': missing ']'", s)
		}
		host = rest[1:end]
		if tail := rest[end+1:]; tail != "" {
			p, ok := strings.CutPrefix(tail, ":")
			if !ok {
				return target{}, fmt.Errorf("upstream '%s': unexpected '%s' after ']'", s, tail)
			}
			port = p
		}
	case strings.Count(rest, ":") == 1:
		host, port, _ = strings.Cut(rest, ":")
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return target{}, fmt.Errorf("upstream '%s': '%s' is not an IP address", s, host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return target{}, fmt.Errorf("upstream '%s': invalid port '%s'", s, port)
	}
	t.addr = net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(n)))
	return t, nil
}
