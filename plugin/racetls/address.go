package racetls

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// target is one parsed upstream: SCHEME://IP[:port][/path][%servername], or a bare
// IP[:port] (dns://).
type target struct {
	scheme     string // tls, quic, https or dns
	addr       string // IP:port
	serverName string // empty: tls_servername, else the IP
	path       string // https only; empty: https_path
}

// defaultPorts are the schemes' ports, as CoreDNS's pkg/transport has them.
var defaultPorts = map[string]string{"tls": "853", "quic": "853", "https": "443", "dns": "53"}

// parseTarget parses an upstream. IPv6 addresses need brackets when a port follows
// (tls://[2620:fe::fe]:853%dns.quad9.net). Host names are refused: a forwarder must
// not depend on the resolver it provides.
func parseTarget(s string) (target, error) {
	var t target
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "dns", s
	}
	t.scheme = strings.ToLower(scheme)
	if _, ok := defaultPorts[t.scheme]; !ok {
		return target{}, fmt.Errorf("upstream '%s': scheme '%s' is not one of tls://, quic://, https://, dns://", s, scheme)
	}
	// The server name may only follow the address (and path): SCHEME://IP[:port][/path]%name.
	if i := strings.LastIndexByte(rest, '%'); i >= 0 {
		if t.scheme == "dns" {
			return target{}, fmt.Errorf("upstream '%s': a server name needs tls://, quic:// or https://", s)
		}
		t.serverName = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if t.serverName == "" {
			return target{}, fmt.Errorf("upstream '%s': empty server name after '%%'", s)
		}
		if _, ok := dns.IsDomainName(t.serverName); !ok || strings.ContainsAny(t.serverName, ":/[]") {
			return target{}, fmt.Errorf("upstream '%s': invalid server name '%s'", s, t.serverName)
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		if t.scheme != "https" {
			return target{}, fmt.Errorf("upstream '%s': only https:// takes a path", s)
		}
		t.path = rest[i:]
		rest = rest[:i]
		if strings.ContainsAny(t.path, "?#% ") {
			return target{}, fmt.Errorf("upstream '%s': invalid path '%s'", s, t.path)
		}
	}
	host, port := rest, defaultPorts[t.scheme]
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

// isFile reports whether a TO argument names a resolv.conf-style file rather than an
// upstream, as forward takes /etc/resolv.conf: a path, or an existing file.
func isFile(s string) bool {
	if strings.Contains(s, "://") {
		return false
	}
	if strings.Contains(s, "/") {
		return true
	}
	_, err := parseTarget(s)
	if err == nil {
		return false
	}
	fi, err := os.Stat(s)
	return err == nil && fi.Mode().IsRegular()
}
