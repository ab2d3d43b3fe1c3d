package racetls

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

func TestSetup(t *testing.T) {
	c := caddy.NewTestController("dns", "racetls . tls://127.0.0.1 tls://[::1]:8853%one.example")
	if err := setup(c); err != nil {
		t.Fatalf("setup: %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		input string
		err   string // substring of the error; "" for none
		check func(t *testing.T, rt *RaceTLS)
	}{
		{input: "racetls . tls://1.1.1.1%cloudflare-dns.com tls://8.8.8.8%dns.google tls://9.9.9.9%dns.quad9.net", check: func(t *testing.T, rt *RaceTLS) {
			o := rt.opts
			if o.timeout != 2*time.Second || o.width != 2 || o.conns != 2 || o.maxConns != 4 || o.maxInflight != 100 || o.keepalive != 5*time.Second || o.hedge != 0 || o.stats != 0 {
				t.Errorf("defaults: %+v", o)
			}
			if o.conns*o.maxInflight < 200 || o.maxConns > 4 {
				t.Errorf("200 concurrent queries must fit in at most 4 connections: %+v", o)
			}
			names := []string{"cloudflare-dns.com", "dns.google", "dns.quad9.net"}
			for i, u := range rt.upstreams {
				if tlsOf(u).ServerName != names[i] || tlsOf(u).MinVersion != tls.VersionTLS13 || tlsOf(u).ClientSessionCache == nil {
					t.Errorf("upstream %d tls: name %q min %x", i, tlsOf(u).ServerName, tlsOf(u).MinVersion)
				}
			}
			if rt.upstreams[0].addr != "1.1.1.1:853" {
				t.Errorf("addr %q", rt.upstreams[0].addr)
			}
		}},
		{input: "racetls example.org tls://127.0.0.1:5353 {\n except a.example.org b.example.org\n tls_servername lab.test\n}", check: func(t *testing.T, rt *RaceTLS) {
			if rt.from != "example.org." || len(rt.ignored) != 2 || tlsOf(rt.upstreams[0]).ServerName != "lab.test" {
				t.Errorf("from %q ignored %v", rt.from, rt.ignored)
			}
			if rt.opts.width != 1 {
				t.Errorf("width %d with one upstream", rt.opts.width)
			}
		}},
		{input: "racetls . tls://127.0.0.1%a.test tls://127.0.0.2 {\n tls_servername b.test\n}", check: func(t *testing.T, rt *RaceTLS) {
			if tlsOf(rt.upstreams[0]).ServerName != "a.test" || tlsOf(rt.upstreams[1]).ServerName != "b.test" {
				t.Error("per-upstream server name must override tls_servername")
			}
		}},
		{input: "racetls . tls://127.0.0.1 tls://127.0.0.2 tls://127.0.0.3 {\n race all\n timeout 1s\n conns 1\n max_conns 8\n max_inflight 50\n keepalive 3s\n stats 1m\n tls_min_version 1.2\n}", check: func(t *testing.T, rt *RaceTLS) {
			o := rt.opts
			if o.width != 3 || o.timeout != time.Second || o.conns != 1 || o.maxConns != 8 || o.maxInflight != 50 || o.keepalive != 3*time.Second || o.stats != time.Minute {
				t.Errorf("options: %+v", o)
			}
			if tlsOf(rt.upstreams[0]).MinVersion != tls.VersionTLS12 {
				t.Error("tls_min_version 1.2 not applied")
			}
		}},
		{input: "racetls . tls://127.0.0.1 tls://127.0.0.2 {\n hedge 20ms\n}", check: func(t *testing.T, rt *RaceTLS) {
			if rt.opts.width != 1 || rt.opts.hedge != 20*time.Millisecond {
				t.Errorf("hedge: %+v", rt.opts)
			}
		}},
		{input: "racetls . tls://127.0.0.1 tls://127.0.0.2 tls://127.0.0.3 {\n hedge 20ms\n race 2\n}", check: func(t *testing.T, rt *RaceTLS) {
			if rt.opts.width != 2 {
				t.Errorf("race 2 with hedge: width %d", rt.opts.width)
			}
		}},

		// Errors, each naming what is wrong.
		{input: "racetls", err: "Wrong argument count"},
		{input: "racetls .", err: "Wrong argument count"},
		{input: "racetls . udp://127.0.0.1", err: "scheme 'udp' is not one of"},
		{input: "racetls . dns://127.0.0.1%name.test", err: "a server name needs"},
		{input: "racetls . tls://127.0.0.1/path", err: "only https:// takes a path"},
		{input: "racetls . https://127.0.0.1/a?b", err: "invalid path"},
		{input: "racetls . https://127.0.0.1 {\n https_path dns-query\n}", err: "https_path: want an absolute path"},
		{input: "racetls . 127.0.0.1 {\n force_tcp 1\n}", err: "Wrong argument count"},
		{input: "racetls . /nonexistent/resolv.conf", err: "/nonexistent/resolv.conf: "},
		{input: "racetls . tls://dns.google", err: "not an IP address"},
		{input: "racetls . tls://127.0.0.1:0", err: "invalid port"},
		{input: "racetls . tls://127.0.0.1:99999", err: "invalid port"},
		{input: "racetls . tls://[::1", err: "missing ']'"},
		{input: "racetls . tls://[::1]x", err: "after ']'"},
		{input: "racetls . tls://127.0.0.1%", err: "empty server name"},
		{input: "racetls . tls://127.0.0.1%a:b", err: "invalid server name"},
		{input: "racetls . tls://127.0.0.1 tls://127.0.0.1:853", err: "listed twice"},
		{input: "racetls . tls://127.0.0.1 {\n bogus 1\n}", err: "unknown property 'bogus'"},
		{input: "racetls . tls://127.0.0.1 {\n except\n}", err: "Wrong argument count"},
		{input: "racetls . tls://127.0.0.1 {\n timeout\n}", err: "timeout: want exactly one argument"},
		{input: "racetls . tls://127.0.0.1 {\n timeout 0s\n}", err: "timeout: want a positive duration"},
		{input: "racetls . tls://127.0.0.1 {\n timeout soon\n}", err: "timeout: want a positive duration"},
		{input: "racetls . tls://127.0.0.1 {\n timeout 2m\n}", err: "timeout: 2m0s is more than a minute"},
		{input: "racetls . tls://127.0.0.1 {\n hedge -1s\n}", err: "hedge: want a positive duration"},
		{input: "racetls . tls://127.0.0.1 {\n hedge 3s\n}", err: "hedge (3s) must be less than timeout"},
		{input: "racetls . tls://127.0.0.1 {\n keepalive x\n}", err: "keepalive: want a positive duration"},
		{input: "racetls . tls://127.0.0.1 {\n stats 0\n}", err: "stats: want a positive duration"},
		{input: "racetls . tls://127.0.0.1 {\n race 0\n}", err: "race: want 'all' or a number"},
		{input: "racetls . tls://127.0.0.1 {\n race some\n}", err: "race: want 'all' or a number"},
		{input: "racetls . tls://127.0.0.1 {\n race 2\n}", err: "race 2: only 1 upstreams"},
		{input: "racetls . tls://127.0.0.1 {\n conns 0\n}", err: "conns: want a number in [1, 64]"},
		{input: "racetls . tls://127.0.0.1 {\n conns 5\n max_conns 4\n}", err: "max_conns (4) must not be less than conns (5)"},
		{input: "racetls . tls://127.0.0.1 {\n conns 6\n}", check: func(t *testing.T, rt *RaceTLS) {
			if rt.opts.maxConns != 6 {
				t.Errorf("max_conns %d, want it raised to conns", rt.opts.maxConns)
			}
		}},
		{input: "racetls . tls://127.0.0.1 {\n max_conns 65\n}", err: "max_conns: want a number in [1, 64]"},
		{input: "racetls . tls://127.0.0.1 {\n max_inflight 0\n}", err: "max_inflight: want a number in [1, 65535]"},
		{input: "racetls . tls://127.0.0.1 {\n max_inflight 1 2\n}", err: "max_inflight: want exactly one argument"},
		{input: "racetls . tls://127.0.0.1 {\n tls_servername\n}", err: "tls_servername: want exactly one argument"},
		{input: "racetls . tls://127.0.0.1 {\n tls_min_version 1.1\n}", err: "tls_min_version: want 1.2 or 1.3"},
		{input: "racetls . tls://127.0.0.1 {\n tls /nonexistent/ca.pem\n}", err: "tls: "},
		{input: "racetls . tls://127.0.0.1 {\n tls a b c d\n}", err: "Wrong argument count"},
		{input: "racetls . tls://127.0.0.1\nracetls . tls://127.0.0.2", err: "only be used once"},
		{input: "racetls . tls://127.0.0.1 tls://127.0.0.2 tls://127.0.0.3 tls://127.0.0.4 tls://127.0.0.5 tls://127.0.0.6 tls://127.0.0.7 tls://127.0.0.8 tls://127.0.0.9", err: "more than 8 upstreams"},
	}
	for _, tc := range tests {
		rt, err := parse(caddy.NewTestController("dns", tc.input))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.input, err, tc.err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "Testfile:") {
				t.Errorf("%q: error %q does not name the file and line", tc.input, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.input, err)
			continue
		}
		tc.check(t, rt)
	}
}

// TestParseErrorLine: an error names the option's line, or the directive's for what is
// checked after the block (the upstreams, options against each other), never the closing brace.
func TestParseErrorLine(t *testing.T) {
	tests := []struct{ input, want string }{
		{"racetls . tls://127.0.0.1 {\n timeout 1s\n conns 0\n}", "Testfile:3 - "},
		{"racetls . /nonexistent/resolv.conf {\n timeout 1s\n}", "Testfile:1 - "},
		{"\nracetls . tls://dns.google {\n timeout 1s\n}", "Testfile:2 - "},
		{"racetls . tls://127.0.0.1 {\n hedge 1s\n timeout 1s\n}", "Testfile:1 - "},
		{"racetls . tls://127.0.0.1 {\n race 2\n}", "Testfile:1 - "},
		{"racetls . tls://127.0.0.1\n\nracetls . tls://127.0.0.2", "Testfile:3 - "},
	}
	for _, tc := range tests {
		_, err := parse(caddy.NewTestController("dns", tc.input))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one starting %q", tc.input, err, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct{ in, addr, name string }{
		{"tls://1.1.1.1", "1.1.1.1:853", ""},
		{"TLS://1.1.1.1:8853", "1.1.1.1:8853", ""},
		{"tls://1.1.1.1%Cloudflare-DNS.com", "1.1.1.1:853", "cloudflare-dns.com"},
		{"tls://1.1.1.1:853%cloudflare-dns.com", "1.1.1.1:853", "cloudflare-dns.com"},
		{"tls://2620:fe::fe", "[2620:fe::fe]:853", ""},
		{"tls://[2620:fe::fe]%dns.quad9.net", "[2620:fe::fe]:853", "dns.quad9.net"},
		{"tls://[2620:fe::fe]:8853%dns.quad9.net", "[2620:fe::fe]:8853", "dns.quad9.net"},
		{"tls://[::ffff:127.0.0.1]:853", "127.0.0.1:853", ""},
	}
	for _, tc := range tests {
		got, err := parseTarget(tc.in)
		if err != nil || got.addr != tc.addr || got.serverName != tc.name {
			t.Errorf("%s: got %+v, %v; want %s %q", tc.in, got, err, tc.addr, tc.name)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"tls://1.1.1.1", "tls://[::1]:853%a.b", "tls://1.2.3.4:5%x", "tls://%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseTarget(s)
		if err == nil && tg.addr == "" {
			t.Errorf("%q: no address and no error", s)
		}
	})
}

// tlsOf returns the TLS configuration of u's transport.
func tlsOf(u *upstream) *tls.Config {
	switch t := u.tr.(type) {
	case *streamTransport:
		return t.tlsConfig
	case *quicTransport:
		return t.tlsConfig
	case *httpsTransport:
		return t.tlsConfig
	}
	return nil
}
