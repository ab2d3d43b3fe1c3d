package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// block renders a Corefile of one server block whose directives start at line 3.
func block(lines ...string) string {
	return ".:{{.Port}} {\n    bind 127.0.0.1\n    " + strings.Join(lines, "\n    ") + "\n    whoami\n}\n"
}

// configErrorCases are broken Corefiles for our three plugins. Each must stop bin/coredns at
// start, with a non-zero exit and an error that names the Corefile, the line and what is wrong.
// In the Corefiles, {{.Dir}} holds "file" (a regular file), "empty-resolv.conf" (no
// nameserver) and nothing else.
var configErrorCases = []struct {
	name     string
	corefile string
	line     int    // the line the error names
	want     string // what it says
}{
	// warmcache: the TTL argument.
	{"warmcache/ttl-duration", block("warmcache 30s"), 3, "TTL must be a whole number of seconds, got '30s'"},
	{"warmcache/ttl-fraction", block("warmcache 1.5 example.org"), 3, "TTL must be a whole number of seconds"},
	{"warmcache/ttl-zero", block("warmcache 0"), 3, "TTL must be a positive number of seconds"},
	{"warmcache/ttl-negative", block("warmcache -5"), 3, "TTL must be a positive number of seconds"},
	// warmcache: options.
	{"warmcache/success-arity", block("warmcache {", "    success", "}"), 4, "success: wrong number of arguments"},
	{"warmcache/success-capacity-word", block("warmcache {", "    success x", "}"), 4, `success: capacity must be a positive integer: "x"`},
	{"warmcache/success-capacity-zero", block("warmcache {", "    success 0", "}"), 4, "success: capacity must be a positive integer"},
	{"warmcache/success-ttl-duration", block("warmcache {", "    success 100 1h", "}"), 4, `success: TTL must be a positive integer: "1h"`},
	{"warmcache/success-min-above-max", block("warmcache {", "    success 100 60 120", "}"), 4, "success: minimum TTL 2m0s above maximum TTL 1m0s"},
	{"warmcache/success-min-above-later-max", block("warmcache {", "    success 100 60 30", "    success 100 20", "}"), 3, "success: minimum TTL 30s above maximum TTL 20s"},
	{"warmcache/denial-min-duration", block("warmcache {", "    denial 100 30 5s", "}"), 4, "denial: minimum TTL must be a non-negative number of seconds"},
	{"warmcache/denial-capacity-negative", block("warmcache {", "    denial -1", "}"), 4, "denial: capacity must be a positive integer"},
	{"warmcache/servfail-number", block("warmcache {", "    servfail 5", "}"), 4, `servfail: time: missing unit in duration "5"`},
	{"warmcache/servfail-over-5m", block("warmcache {", "    servfail 10m", "}"), 4, "servfail: caching SERVFAIL over 5 minutes is not permitted"},
	{"warmcache/servfail-arity", block("warmcache {", "    servfail 1s 2s", "}"), 4, "servfail: wrong number of arguments"},
	{"warmcache/max_bytes-zero", block("warmcache {", "    max_bytes 0", "}"), 4, "max_bytes: size must be a positive number of bytes"},
	{"warmcache/max_bytes-suffix", block("warmcache {", "    max_bytes 10X", "}"), 4, "max_bytes: size must be a positive number of bytes"},
	{"warmcache/prefetch-negative", block("warmcache {", "    prefetch -1", "}"), 4, "prefetch: amount must be a non-negative integer"},
	{"warmcache/prefetch-duration-number", block("warmcache {", "    prefetch 2 10", "}"), 4, `prefetch: time: missing unit in duration "10"`},
	{"warmcache/prefetch-percentage-high", block("warmcache {", "    prefetch 2 1m 95%", "}"), 4, "prefetch: percentage must be 1% to 90%"},
	{"warmcache/prefetch-percentage-sign", block("warmcache {", "    prefetch 2 1m 10", "}"), 4, "prefetch: percentage must be 1% to 90%"},
	{"warmcache/sweep-short", block("warmcache {", "    sweep 10ms", "}"), 4, "sweep: duration must be at least 100ms"},
	{"warmcache/sweep-number", block("warmcache {", "    sweep 1", "}"), 4, "sweep: time: missing unit"},
	{"warmcache/refreshes-zero", block("warmcache {", "    refreshes 0", "}"), 4, "refreshes: maximum must be a positive integer"},
	{"warmcache/refreshes-rate-duration", block("warmcache {", "    refreshes 8 10s", "}"), 4, `refreshes: rate must be a positive integer: "10s"`},
	{"warmcache/serve_stale-number", block("warmcache {", "    serve_stale 10", "}"), 4, "serve_stale: time: missing unit"},
	{"warmcache/serve_stale-wait-negative", block("warmcache {", "    serve_stale 1h -1s", "}"), 4, "serve_stale: duration must be at least 0s"},
	{"warmcache/serve_stale-arity", block("warmcache {", "    serve_stale 1h 1s 1", "}"), 4, "serve_stale: wrong number of arguments"},
	{"warmcache/flush_on_reload-arg", block("warmcache {", "    flush_on_reload yes", "}"), 4, "flush_on_reload: wrong number of arguments"},
	{"warmcache/front_door-word", block("warmcache {", "    front_door maybe", "}"), 4, "front_door needs on or off"},
	{"warmcache/shards-not-power", block("warmcache {", "    shards 3", "}"), 4, "shards: count must be a power of two up to 4096"},
	{"warmcache/shards-too-many", block("warmcache {", "    shards 8192", "}"), 4, "shards: count must be a power of two up to 4096"},
	{"warmcache/unknown-property", block("warmcache {", "    succes 100", "}"), 4, "unknown property 'succes'"},
	{"warmcache/duplicated", block("warmcache", "warmcache 60"), 4, "this plugin can only be used once per Server Block"},

	// unixsock: parsing.
	{"unixsock/arity", block("unixsock /run/a.sock /run/b.sock"), 3, "Wrong argument count"},
	{"unixsock/relative-path", block("unixsock dns_cache/dns.sock"), 3, "socket path 'dns_cache/dns.sock' is not absolute"},
	{"unixsock/path-too-long", block("unixsock /" + strings.Repeat("a", 120)), 3, "is longer than 107 bytes"},
	{"unixsock/mode-not-octal", block("unixsock {{.Sock}} {", "    mode 0999", "}"), 4, "mode '0999' is not an octal permission"},
	{"unixsock/mode-word", block("unixsock {{.Sock}} {", "    mode rw", "}"), 4, "mode 'rw' is not an octal permission"},
	{"unixsock/mode-arity", block("unixsock {{.Sock}} {", "    mode", "}"), 4, "Wrong argument count"},
	{"unixsock/max_connections-zero", block("unixsock {{.Sock}} {", "    max_connections 0", "}"), 4, "max_connections: '0' is not a positive integer"},
	{"unixsock/max_connections-negative", block("unixsock {{.Sock}} {", "    max_connections -1", "}"), 4, "max_connections: '-1' is not a positive integer"},
	{"unixsock/max_connections_per_uid-zero", block("unixsock {{.Sock}} {", "    max_connections_per_uid 0", "}"), 4, "max_connections_per_uid: '0' is not a positive integer"},
	{"unixsock/max_connections_per_uid-over-max", block("unixsock {{.Sock}} {", "    max_connections 10", "    max_connections_per_uid 20", "}"), 5, "max_connections_per_uid 20 is more than max_connections 10"},
	{"unixsock/max_inflight-duration", block("unixsock {{.Sock}} {", "    max_inflight 10s", "}"), 4, "max_inflight: '10s' is not a positive integer"},
	{"unixsock/idle_timeout-number", block("unixsock {{.Sock}} {", "    idle_timeout 10", "}"), 4, "idle_timeout '10' is not a positive duration"},
	{"unixsock/read_timeout-zero", block("unixsock {{.Sock}} {", "    read_timeout 0s", "}"), 4, "read_timeout '0s' is not a positive duration"},
	{"unixsock/write_timeout-negative", block("unixsock {{.Sock}} {", "    write_timeout -1s", "}"), 4, "write_timeout '-1s' is not a positive duration"},
	{"unixsock/unknown-property", block("unixsock {{.Sock}} {", "    max_conns 10", "}"), 4, "unknown property 'max_conns'"},
	{"unixsock/duplicated", block("unixsock {{.Sock}}", "unixsock {{.Dir}}/b.sock"), 4, "this plugin can only be used once per Server Block"},
	{"unixsock/options-differ", ".:{{.Port}} {\n    bind 127.0.0.1\n    unixsock {{.Sock}}\n    whoami\n}\nexample.org:{{.Port}} {\n    bind 127.0.0.1\n    unixsock {{.Sock}} {\n        mode 0600\n    }\n    whoami\n}\n",
		8, "options differ from the first server block that names it"},
	// unixsock: start-up, when the socket is bound.
	{"unixsock/directory-missing", block("unixsock {{.Dir}}/missing/dns.sock"), 3, "/missing does not exist"},
	{"unixsock/path-regular-file", block("unixsock {{.Dir}}/file"), 3, "/file exists and is not a socket"},
	{"unixsock/path-directory", block("unixsock {{.Dir}}"), 3, "exists and is not a socket"},
	{"unixsock/parent-regular-file", block("unixsock {{.Dir}}/file/dns.sock"), 3, "not a directory"},
	{"unixsock/later-block-start", ".:{{.Port}} {\n    bind 127.0.0.1\n    whoami\n}\n\nexample.org:{{.Port}} {\n    bind 127.0.0.1\n    unixsock {{.Dir}}/missing/dns.sock\n    whoami\n}\n",
		8, "/missing does not exist"},

	// racetls: the upstreams.
	{"racetls/no-args", block("racetls"), 3, "Wrong argument count"},
	{"racetls/no-upstream", block("racetls ."), 3, "Wrong argument count"},
	{"racetls/bad-transport", block("racetls . udp://127.0.0.1"), 3, "scheme 'udp' is not one of tls://, quic://, https://, dns://"},
	{"racetls/host-name", block("racetls . tls://dns.google"), 3, "'dns.google' is not an IP address"},
	{"racetls/host-name-in-block", block("racetls . tls://dns.google {", "    timeout 1s", "}"), 3, "'dns.google' is not an IP address"},
	{"racetls/port-too-big", block("racetls . tls://127.0.0.1:99999"), 3, "invalid port '99999'"},
	{"racetls/port-zero", block("racetls . quic://127.0.0.1:0"), 3, "invalid port '0'"},
	{"racetls/port-word", block("racetls . https://127.0.0.1:https"), 3, "invalid port 'https'"},
	{"racetls/ipv6-bracket", block("racetls . tls://[::1"), 3, "missing ']'"},
	{"racetls/server-name-plain-dns", block("racetls . dns://127.0.0.1%dns.test"), 3, "a server name needs tls://, quic:// or https://"},
	{"racetls/server-name-empty", block("racetls . tls://127.0.0.1%"), 3, "empty server name after '%'"},
	{"racetls/path-not-https", block("racetls . tls://127.0.0.1/dns-query"), 3, "only https:// takes a path"},
	{"racetls/https-path-query", block("racetls . https://127.0.0.1/dns-query?dns=x"), 3, "invalid path"},
	{"racetls/listed-twice", block("racetls . tls://127.0.0.1 tls://127.0.0.1:853"), 3, "upstream 'tls://127.0.0.1:853' listed twice"},
	{"racetls/too-many", block("racetls . 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9"), 3, "more than 8 upstreams: 9"},
	{"racetls/resolv.conf-missing", block("racetls . {{.Dir}}/resolv.conf {", "    timeout 1s", "}"), 3, "/resolv.conf: open "},
	{"racetls/resolv.conf-no-nameserver", block("racetls . {{.Dir}}/empty-resolv.conf"), 3, "no nameserver"},
	// racetls: options.
	{"racetls/tls-ca-missing", block("racetls . tls://127.0.0.1 {", "    tls {{.Dir}}/ca.pem", "}"), 4, "tls: "},
	{"racetls/tls-cert-key-missing", block("racetls . tls://127.0.0.1 {", "    tls {{.Dir}}/cert.pem {{.Dir}}/key.pem", "}"), 4, "tls: "},
	{"racetls/tls-arity", block("racetls . tls://127.0.0.1 {", "    tls a b c d", "}"), 4, "Wrong argument count"},
	{"racetls/tls_min_version", block("racetls . tls://127.0.0.1 {", "    tls_min_version 1.1", "}"), 4, "tls_min_version: want 1.2 or 1.3, got '1.1'"},
	{"racetls/tls_servername-arity", block("racetls . tls://127.0.0.1 {", "    tls_servername", "}"), 4, "tls_servername: want exactly one argument, got 0"},
	{"racetls/timeout-number", block("racetls . tls://127.0.0.1 {", "    timeout 2", "}"), 4, "timeout: want a positive duration, got '2'"},
	{"racetls/timeout-zero", block("racetls . tls://127.0.0.1 {", "    timeout 0s", "}"), 4, "timeout: want a positive duration, got '0s'"},
	{"racetls/timeout-long", block("racetls . tls://127.0.0.1 {", "    timeout 2m", "}"), 4, "timeout: 2m0s is more than a minute"},
	{"racetls/hedge-negative", block("racetls . tls://127.0.0.1 {", "    hedge -1ms", "}"), 4, "hedge: want a positive duration"},
	{"racetls/hedge-not-below-timeout", block("racetls . tls://127.0.0.1 {", "    timeout 1s", "    hedge 1s", "}"), 3, "hedge (1s) must be less than timeout (1s)"},
	{"racetls/keepalive-word", block("racetls . tls://127.0.0.1 {", "    keepalive often", "}"), 4, "keepalive: want a positive duration, got 'often'"},
	{"racetls/stats-number", block("racetls . tls://127.0.0.1 {", "    stats 60", "}"), 4, "stats: want a positive duration, got '60'"},
	{"racetls/conns-zero", block("racetls . tls://127.0.0.1 {", "    conns 0", "}"), 4, "conns: want a number in [1, 64], got '0'"},
	{"racetls/max_conns-below-conns", block("racetls . tls://127.0.0.1 {", "    conns 4", "    max_conns 2", "}"), 3, "max_conns (2) must not be less than conns (4)"},
	{"racetls/max_inflight-duration", block("racetls . tls://127.0.0.1 {", "    max_inflight 10s", "}"), 4, "max_inflight: want a number in [1, 65535], got '10s'"},
	{"racetls/race-zero", block("racetls . tls://127.0.0.1 {", "    race 0", "}"), 4, "race: want 'all' or a number of upstreams >= 1, got '0'"},
	{"racetls/race-above-upstreams", block("racetls . tls://127.0.0.1 {", "    race 2", "}"), 3, "race 2: only 1 upstreams"},
	{"racetls/https_path-relative", block("racetls . https://127.0.0.1 {", "    https_path dns-query", "}"), 4, "https_path: want an absolute path without query"},
	{"racetls/force_tcp-arg", block("racetls . 127.0.0.1 {", "    force_tcp yes", "}"), 4, "Wrong argument count"},
	{"racetls/except-arity", block("racetls . tls://127.0.0.1 {", "    except", "}"), 4, "Wrong argument count"},
	{"racetls/unknown-property", block("racetls . tls://127.0.0.1 {", "    policy random", "}"), 4, "unknown property 'policy'"},
	{"racetls/duplicated", block("racetls . tls://127.0.0.1", "racetls . tls://127.0.0.2"), 4, "this plugin can only be used once per Server Block"},
}

// TestConfigErrors runs bin/coredns on each broken Corefile of configErrorCases: it must exit
// non-zero at start, without a panic, with an error that names the Corefile and the line,
// and says what is wrong. A regular file at a socket path is left as it was.
func TestConfigErrors(t *testing.T) {
	for _, tc := range configErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := kit.Prepare(t)
			s.Bin = kit.Binary(t)
			file := filepath.Join(s.Dir, "file")
			if err := os.WriteFile(file, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.Dir, "empty-resolv.conf"), []byte("search example.org\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := s.Launch(tc.corefile, nil)
			if err == nil {
				s.Process.Stop(5 * time.Second)
				t.Fatalf("bin/coredns started on a broken Corefile:\n%s", s.Text())
			}
			exited, werr := s.Exited()
			var exit *exec.ExitError
			if !exited || !errors.As(werr, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("bin/coredns did not exit non-zero (exited %v: %v): %v", exited, werr, err)
			}
			out := s.Log()
			at := fmt.Sprintf("%s:%d - ", s.Corefile, tc.line)
			if !strings.Contains(out, at) || !strings.Contains(out, tc.want) {
				t.Errorf("want an error naming %q and saying %q; bin/coredns printed:\n%s\nCorefile:\n%s", at, tc.want, out, s.Text())
			}
			if strings.Contains(out, "panic") {
				t.Errorf("panic:\n%s", out)
			}
			if b, err := os.ReadFile(file); err != nil || string(b) != "precious\n" {
				t.Errorf("the regular file %s was changed: %q %v", file, b, err)
			}
		})
	}
}

// TestConfigGood: a Corefile that sets every option of the three plugins starts, answers over
// UDP and over the socket, and stops cleanly; with warmcache given a TTL in whole seconds.
func TestConfigGood(t *testing.T) {
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	up := lab.StartTest(t, lab.Config{CA: ca, ServerName: "lab.test"})
	s := kit.Prepare(t)
	if err := ca.WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Run(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}} {
        mode 0660
        max_connections 100
        max_inflight 32
        idle_timeout 30s
        read_timeout 2s
        write_timeout 5s
    }
    warmcache 30 {
        success 1000 300 5
        denial 100 60 1
        servfail 5s
        max_bytes 16M
        prefetch 2 1m 10%%
        sweep 1s
        refreshes 8 100
        serve_stale 1h 100ms
        flush_on_reload
        front_door off
        shards 8
    }
    racetls . tls://%s %s {
        tls {{.CA}}
        tls_servername lab.test
        tls_min_version 1.3
        except local.example.
        timeout 2s
        hedge 100ms
        race all
        conns 1
        max_conns 2
        max_inflight 64
        keepalive 5s
        stats 1m
        https_path /dns-query
    }
}
`, up.TLSAddr(), "{{.Dir}}/resolv.conf"))
	m := new(dns.Msg)
	m.SetQuestion("good.example.", dns.TypeA)
	for _, net := range []string{"udp", "tcp"} {
		r := s.Exchange(t, m, net)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%s: %v", net, r)
		}
	}
	c := unixsockDial(t, s.Sock)
	defer c.Close()
	unixsockSend(t, c, m)
	if r := unixsockRecv(t, c); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("socket: %v", r)
	}
	s.Stop(t)
}
