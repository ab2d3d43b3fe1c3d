package unixsock

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"go.uber.org/goleak"
)

func TestParse(t *testing.T) {
	long := "/" + strings.Repeat("a", maxPathLen)
	tests := []struct {
		input   string
		wantErr string // substring; "" means no error
		path    string
		opts    options
	}{
		{input: `unixsock`, path: DefaultPath, opts: New("").opts},
		{input: `unixsock /run/dns.sock`, path: "/run/dns.sock", opts: New("").opts},
		{input: `unixsock /run//x/../dns.sock`, path: "/run/dns.sock", opts: New("").opts},
		{
			input: `unixsock /run/dns.sock {
				mode 0600
				max_connections 10
				max_inflight 4
				idle_timeout 3s
				read_timeout 1s
				write_timeout 2s
			}`,
			path: "/run/dns.sock",
			opts: options{mode: 0o600, maxConns: 10, maxConnsUID: 5, maxInflight: 4, idleTimeout: 3 * time.Second, readTimeout: time.Second, writeTimeout: 2 * time.Second},
		},
		{input: "unixsock /run/dns.sock {\nmax_connections 3\n}", path: "/run/dns.sock", opts: func() options { o := New("").opts; o.maxConns, o.maxConnsUID = 3, 2; return o }()},
		{input: "unixsock /run/dns.sock {\nmax_connections 1\n}", path: "/run/dns.sock", opts: func() options { o := New("").opts; o.maxConns, o.maxConnsUID = 1, 1; return o }()},
		{input: "unixsock /run/dns.sock {\nmax_connections_per_uid 1024\n}", path: "/run/dns.sock", opts: func() options { o := New("").opts; o.maxConnsUID = 1024; return o }()},
		{input: "unixsock /run/dns.sock {\nmax_connections_per_uid 7\nmax_connections 8\n}", path: "/run/dns.sock", opts: func() options { o := New("").opts; o.maxConns, o.maxConnsUID = 8, 7; return o }()},
		{input: "unixsock /run/dns.sock {\nmode 0\n}", path: "/run/dns.sock", opts: func() options { o := New("").opts; o.mode = 0; return o }()},
		{input: `unixsock a b`, wantErr: "Wrong argument count"},
		{input: `unixsock dns.sock`, wantErr: "not absolute"},
		{input: "unixsock " + long, wantErr: "longer than"},
		{input: "unixsock /x {\nbogus 1\n}", wantErr: "unknown property 'bogus'"},
		{input: "unixsock /x {\nbogus\n}", wantErr: "unknown property 'bogus'"},
		{input: "unixsock /x {\nmode 0999\n}", wantErr: "mode '0999'"},
		{input: "unixsock /x {\nmode 01777\n}", wantErr: "mode '01777'"},
		{input: "unixsock /x {\nmode rw\n}", wantErr: "mode 'rw'"},
		{input: "unixsock /x {\nmode\n}", wantErr: "Wrong argument count"},
		{input: "unixsock /x {\nmax_connections 0\n}", wantErr: "max_connections"},
		{input: "unixsock /x {\nmax_connections -1\n}", wantErr: "max_connections"},
		{input: "unixsock /x {\nmax_connections_per_uid 0\n}", wantErr: "Testfile:2 - Error during parsing: max_connections_per_uid: '0' is not a positive integer"},
		{input: "unixsock /x {\nmax_connections_per_uid x\n}", wantErr: "max_connections_per_uid: 'x'"},
		{input: "unixsock /x {\nmax_connections_per_uid\n}", wantErr: "Wrong argument count"},
		{input: "unixsock /x {\nmax_connections_per_uid 1025\n}", wantErr: "Testfile:2 - Error during parsing: max_connections_per_uid 1025 is more than max_connections 1024"},
		{input: "unixsock /x {\nmax_connections_per_uid 20\nmax_connections 10\n}", wantErr: "Testfile:2 - Error during parsing: max_connections_per_uid 20 is more than max_connections 10"},
		{input: "unixsock /x {\nmax_inflight many\n}", wantErr: "max_inflight"},
		{input: "unixsock /x {\nidle_timeout 0s\n}", wantErr: "idle_timeout '0s'"},
		{input: "unixsock /x {\nread_timeout 5\n}", wantErr: "read_timeout '5'"},
		{input: "unixsock /x {\nwrite_timeout -1s\n}", wantErr: "write_timeout '-1s'"},
		{input: "unixsock /x {\nwrite_timeout 1s 2s\n}", wantErr: "Wrong argument count"},
		{input: "unixsock /x\nunixsock /y", wantErr: "Testfile:2 - Error during parsing: this plugin can only be used once"},
	}
	for _, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		u, err := parse(c)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: want error containing %q, got %v", tc.input, tc.wantErr, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "Testfile:") {
				t.Errorf("%q: error %q does not name the file and line", tc.input, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: unexpected error %v", tc.input, err)
			continue
		}
		if u.path != tc.path || u.opts != tc.opts || u.addr != "unix://"+tc.path {
			t.Errorf("%q: got path %q addr %q opts %+v, want %q %+v", tc.input, u.path, u.addr, u.opts, tc.path, tc.opts)
		}
	}
}

func TestSetup(t *testing.T) {
	c := caddy.NewTestController("dns", `unixsock /run/a.sock`)
	c.ServerBlockKeys = []string{"."}
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	// A second block of the same Corefile on the same path joins the first: the socket routes
	// between both blocks' configs. Different options there are an error.
	first := c.Get(pathsKey{}).(map[string]*Unixsock)["/run/a.sock"]
	c2 := caddy.NewTestController("dns", `unixsock /run/a.sock`)
	c2.ServerBlockIndex = 1
	c2.ServerBlockKeys = []string{"example.org."}
	c2.Set(pathsKey{}, c.Get(pathsKey{}))
	if err := setup(c2); err != nil {
		t.Fatalf("second block on the same path: %v", err)
	}
	if len(first.configs) != 2 || first.configs[1] != dnsserver.GetConfig(c2) {
		t.Fatalf("the first block's instance has %d configs, want its own and the second block's", len(first.configs))
	}
	c3 := caddy.NewTestController("dns", "unixsock /run/a.sock {\nmode 0600\n}")
	c3.ServerBlockIndex = 2
	c3.Set(pathsKey{}, c.Get(pathsKey{}))
	if err := setup(c3); err == nil || !strings.Contains(err.Error(), "options differ") {
		t.Fatalf("want an options error, got %v", err)
	}
	if err := setup(caddy.NewTestController("dns", "unixsock /x {\nnope\n}")); err == nil || !strings.HasPrefix(err.Error(), "plugin/unixsock: ") {
		t.Fatalf("want a plugin.Error, got %v", err)
	}
}

// TestStartupErrorLine: a socket that cannot be bound fails the start with an error that names
// the Corefile and the directive's line, and what is wrong with the path.
func TestStartupErrorLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing", "dns.sock"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{file, file + " exists and is not a socket"},
		{dir, dir + " exists and is not a socket"},
		{filepath.Join(file, "dns.sock"), "not a directory"},
	} {
		_, err := caddy.Start(input(fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\n}", tc.path)))
		if err == nil || !strings.HasPrefix(err.Error(), "plugin/unixsock: Corefile:3 - ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error at Corefile:3 containing %q, got %v", tc.path, tc.want, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("the regular file at the socket path was touched: %q %v", b, err)
	}
}

func TestMain(m *testing.M) {
	// forward's Proxy.Stop leaves its transport's connManager to a finalizer (CoreDNS v1.15.0,
	// plugin/pkg/proxy): not ours.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/coredns/coredns/plugin/pkg/proxy.(*Transport).connManager"))
}
