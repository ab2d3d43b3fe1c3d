package racetls

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/dnstap"
	pkgtls "github.com/coredns/coredns/plugin/pkg/tls"
)

func init() {
	plugin.Register("racetls", setup)
	// Like forward, racetls passes queries of any class upstream: the server
	// refuses classes other than IN unless a plugin of the block asks otherwise.
	dnsserver.EnableChaos["racetls"] = struct{}{}
}

func setup(c *caddy.Controller) error {
	rt, err := parse(c)
	if err != nil {
		return plugin.Error("racetls", err)
	}
	cfg := dnsserver.GetConfig(c)
	cfg.AddPlugin(func(next plugin.Handler) plugin.Handler {
		rt.Next = next
		return rt
	})
	c.OnStartup(func() error {
		rt.server = serverLabel(cfg)
		if h := cfg.Handler("dnstap"); h != nil {
			if t, ok := h.(*dnstap.Dnstap); ok {
				rt.setTaps(t)
			}
		}
		return rt.OnStartup()
	})
	c.OnShutdown(rt.OnShutdown)
	return nil
}

func parse(c *caddy.Controller) (*RaceTLS, error) {
	var rt *RaceTLS
	for c.Next() {
		if rt != nil {
			return nil, c.Err(plugin.ErrOnce.Error())
		}
		var err error
		if rt, err = parseStanza(c); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// settings holds what the block sets before the upstreams can be built; upstreams
// read from a file later are built with them too.
type settings struct {
	tlsConfig     *tls.Config
	tlsServerName string
	minVersion    uint16
	race          int // 0: not set; -1: all
	maxConnsSet   bool
	httpsPath     string
	forceTCP      bool
}

// newUpstream builds the upstream t with its transport.
func (s *settings) newUpstream(t target, opts *options) *upstream {
	if t.scheme == "dns" {
		if s.forceTCP {
			return newUpstream(t.addr, &streamTransport{addr: t.addr, timeout: opts.timeout}, opts)
		}
		return newUpstream(t.addr, &udpTransport{addr: t.addr, timeout: opts.timeout}, opts)
	}
	tc := s.tlsConfig.Clone()
	tc.MinVersion = s.minVersion
	tc.ServerName = s.tlsServerName
	if t.serverName != "" {
		tc.ServerName = t.serverName
	}
	// Shared by the upstream's connections: reconnects resume.
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	switch t.scheme {
	case "quic":
		tc.MinVersion = tls.VersionTLS13 // RFC 9001 §4.2
		tc.NextProtos = []string{"doq"}  // RFC 9250 §4.1.1
		return newUpstream(t.addr, &quicTransport{addr: t.addr, tlsConfig: tc, opts: opts}, opts)
	case "https":
		path := t.path
		if path == "" {
			path = s.httpsPath
		}
		tc.NextProtos = []string{"h2"} // RFC 8484 §5.2: HTTP/2 is the minimum
		return newUpstream(t.addr, newHTTPSTransport(t.addr, path, tc, opts), opts)
	}
	return newUpstream(t.addr, &streamTransport{addr: t.addr, tlsConfig: tc, timeout: opts.timeout}, opts)
}

func parseStanza(c *caddy.Controller) (*RaceTLS, error) {
	rt := New()
	if !c.NextArg() {
		return nil, c.ArgErr()
	}
	zones := plugin.Host(c.Val()).NormalizeExact()
	if len(zones) == 0 {
		return nil, c.Errf("unable to normalize '%s'", c.Val())
	}
	rt.from = zones[0]
	to := c.RemainingArgs()
	if len(to) == 0 {
		return nil, c.ArgErr()
	}
	// What is checked after the block (the upstreams, options against each other) is an error
	// at the directive's line, not at the closing brace.
	file, line := c.File(), c.Line()
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d - Error during parsing: %s", file, line, fmt.Sprintf(format, args...))
	}

	s := &settings{minVersion: tls.VersionTLS13, httpsPath: "/dns-query"}
	for c.NextBlock() {
		if err := parseBlock(c, rt, s); err != nil {
			return nil, err
		}
	}
	if !s.maxConnsSet {
		rt.opts.maxConns = max(rt.opts.maxConns, rt.opts.conns)
	}
	if rt.opts.maxConns < rt.opts.conns {
		return nil, errf("max_conns (%d) must not be less than conns (%d)", rt.opts.maxConns, rt.opts.conns)
	}
	if rt.opts.hedge >= rt.opts.timeout {
		return nil, errf("hedge (%s) must be less than timeout (%s)", rt.opts.hedge, rt.opts.timeout)
	}

	if s.tlsConfig == nil {
		tc, err := pkgtls.NewTLSConfigFromArgs()
		if err != nil {
			return nil, errf("tls: %s", err)
		}
		s.tlsConfig = tc
	}
	seen := map[string]bool{}
	for _, arg := range to {
		if isFile(arg) {
			path := arg
			if root := dnsserver.GetConfig(c).Root; !filepath.IsAbs(path) && root != "" {
				path = filepath.Join(root, path)
			}
			addrs, err := readResolvConf(path)
			if err != nil {
				return nil, errf("%s: %s", arg, err)
			}
			rt.files = append(rt.files, path)
			for _, a := range addrs {
				if seen["dns://"+a] {
					continue
				}
				seen["dns://"+a] = true
				u := s.newUpstream(target{scheme: "dns", addr: a}, &rt.opts)
				u.fromFile = true
				rt.upstreams = append(rt.upstreams, u)
			}
			continue
		}
		t, err := parseTarget(arg)
		if err != nil {
			return nil, errf("%s", err)
		}
		if seen[t.scheme+"://"+t.addr] {
			return nil, errf("upstream '%s' listed twice", arg)
		}
		seen[t.scheme+"://"+t.addr] = true
		rt.upstreams = append(rt.upstreams, s.newUpstream(t, &rt.opts))
	}
	rt.settings = s
	if len(rt.upstreams) == 0 {
		return nil, errf("no upstream: %s lists no nameserver", strings.Join(rt.files, ", "))
	}
	if len(rt.upstreams) > maxUpstreams {
		return nil, errf("more than %d upstreams: %d", maxUpstreams, len(rt.upstreams))
	}

	switch {
	case s.race == -1:
		rt.opts.width = len(rt.upstreams)
	case s.race > len(rt.upstreams):
		return nil, errf("race %d: only %d upstreams", s.race, len(rt.upstreams))
	case s.race > 0:
		rt.opts.width = s.race
	case rt.opts.hedge > 0:
		rt.opts.width = 1
	default:
		rt.opts.width = min(defaultRace, len(rt.upstreams))
	}
	rt.opts.tick = min(250*time.Millisecond, rt.opts.keepalive/2, rt.opts.timeout/4)
	return rt, nil
}

// maxUpstreams bounds a block's upstreams; the race keeps per-query state on the stack up to it.
const maxUpstreams = 8

func parseBlock(c *caddy.Controller, rt *RaceTLS, s *settings) error {
	opt := c.Val()
	switch opt {
	case "except":
		ignore := c.RemainingArgs()
		if len(ignore) == 0 {
			return c.ArgErr()
		}
		for _, name := range ignore {
			rt.ignored = append(rt.ignored, plugin.Host(name).NormalizeExact()...)
		}
	case "tls":
		args := c.RemainingArgs()
		if len(args) > 3 {
			return c.ArgErr()
		}
		root := dnsserver.GetConfig(c).Root
		for i := range args {
			if !filepath.IsAbs(args[i]) && root != "" {
				args[i] = filepath.Join(root, args[i])
			}
		}
		tc, err := pkgtls.NewTLSConfigFromArgs(args...)
		if err != nil {
			return c.Errf("tls: %s", err)
		}
		s.tlsConfig = tc
	case "tls_servername":
		v, err := oneArg(c)
		if err != nil {
			return err
		}
		s.tlsServerName = v
	case "tls_min_version":
		v, err := oneArg(c)
		if err != nil {
			return err
		}
		switch v {
		case "1.2":
			s.minVersion = tls.VersionTLS12
		case "1.3":
			s.minVersion = tls.VersionTLS13
		default:
			return c.Errf("tls_min_version: want 1.2 or 1.3, got '%s'", v)
		}
	case "timeout", "hedge", "keepalive", "stats":
		d, err := duration(c, opt)
		if err != nil {
			return err
		}
		switch opt {
		case "timeout":
			rt.opts.timeout = d
		case "hedge":
			rt.opts.hedge = d
		case "keepalive":
			rt.opts.keepalive = d
		case "stats":
			rt.opts.stats = d
		}
	case "https_path":
		v, err := oneArg(c)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?#% ") {
			return c.Errf("https_path: want an absolute path without query, got '%s'", v)
		}
		s.httpsPath = v
	case "force_tcp":
		if c.NextArg() {
			return c.ArgErr()
		}
		s.forceTCP = true
	case "race":
		v, err := oneArg(c)
		if err != nil {
			return err
		}
		if v == "all" {
			s.race = -1
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c.Errf("race: want 'all' or a number of upstreams >= 1, got '%s'", v)
		}
		s.race = n
	case "conns", "max_conns", "max_inflight":
		v, err := oneArg(c)
		if err != nil {
			return err
		}
		hi := 64
		if opt == "max_inflight" {
			hi = 65535
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > hi {
			return c.Errf("%s: want a number in [1, %d], got '%s'", opt, hi, v)
		}
		switch opt {
		case "conns":
			rt.opts.conns = n
		case "max_conns":
			rt.opts.maxConns = n
			s.maxConnsSet = true
		case "max_inflight":
			rt.opts.maxInflight = n
		}
	default:
		return c.Errf("unknown property '%s'", opt)
	}
	return nil
}

func oneArg(c *caddy.Controller) (string, error) {
	opt := c.Val()
	args := c.RemainingArgs()
	if len(args) != 1 {
		return "", c.Errf("%s: want exactly one argument, got %d", opt, len(args))
	}
	return args[0], nil
}

// duration parses the option's one positive duration argument.
func duration(c *caddy.Controller, opt string) (time.Duration, error) {
	v, err := oneArg(c)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, c.Errf("%s: want a positive duration, got '%s'", opt, v)
	}
	if opt != "stats" && d > time.Minute {
		return 0, c.Errf("%s: %s is more than a minute", opt, d)
	}
	return d, nil
}
