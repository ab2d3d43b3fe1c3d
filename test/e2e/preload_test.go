package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// preloadLib returns the built shim; it fails (not skips) when it is missing.
func preloadLib(t *testing.T) string {
	t.Helper()
	p := filepath.Join(kit.RepoRoot(t), "preload", "build", "libnss_dnscache.so.2")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shim: %v (run `make build`)", err)
	}
	return p
}

// startShimServer runs bin/coredns with unixsock and warmcache in front of a
// lab upstream over UDP, and returns the server and the lab.
func startShimServer(t *testing.T) (*kit.CoreDNS, *lab.Upstream) {
	t.Helper()
	u := lab.StartTest(t, lab.Config{TTL: 300})
	s := kit.Start(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    log
    warmcache
    forward . %s
}
`, u.UDPAddr()))
	return s, u
}

// shimCmd runs a program with the shim preloaded against s's socket.  The
// names used end in a dot, so the host's resolv.conf search list and its
// (unreachable here) nameserver play no part.
func shimCmd(t *testing.T, s *kit.CoreDNS, lib string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "DNSCACHE_SOCKET="+s.Sock, "DNSCACHE_TIMEOUT_MS=2000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// labAddrs asks the lab directly for name's A and AAAA records.
func labAddrs(t *testing.T, u *lab.Upstream, name string) []string {
	t.Helper()
	var addrs []string
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qt)
		r, err := dns.Exchange(m, u.UDPAddr())
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				addrs = append(addrs, v.A.String())
			case *dns.AAAA:
				addrs = append(addrs, v.AAAA.String())
			}
		}
	}
	return addrs
}

func TestPreloadRealPrograms(t *testing.T) {
	lib := preloadLib(t)
	s, u := startShimServer(t)

	name := "www.preload-e2e.example."
	want := labAddrs(t, u, name)
	if len(want) != 2 {
		t.Fatalf("lab answers %v", want)
	}
	for _, db := range []string{"hosts", "ahosts", "ahostsv4", "ahostsv6"} {
		out := shimCmd(t, s, lib, "getent", db, name)
		for _, a := range want {
			v6 := strings.Contains(a, ":")
			if (db == "ahostsv4" && v6) || (db == "ahostsv6" && !v6) || (db == "hosts" && !v6) {
				continue
			}
			if !strings.Contains(out, a) {
				t.Errorf("getent %s %s: %q lacks %s", db, name, out, a)
			}
		}
	}
	py := shimCmd(t, s, lib, "python3", "-c", `import socket, sys
n = sys.argv[1]
print(socket.gethostbyname(n))
print(socket.gethostbyname_ex(n))
print(sorted({a[4][0] for a in socket.getaddrinfo(n, 80)}))`, "cname2-py.example.")
	for _, a := range labAddrs(t, u, "cname2-py.example.") {
		if !strings.Contains(py, a) {
			t.Errorf("python3: %q lacks %s", py, a)
		}
	}

	// ERANGE: gethostbyname_r with an 8-byte buffer, grown by the caller.
	bin := filepath.Join(t.TempDir(), "erange")
	src := filepath.Join(kit.RepoRoot(t), "preload", "test", "erange.c")
	if out, err := exec.Command("cc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	out := shimCmd(t, s, lib, bin, "big-erange.example.")
	if !strings.Contains(out, "addr=") || strings.Contains(out, "retries=0") {
		t.Errorf("erange: %s", out)
	}

	// curl by name to a loopback HTTP server (lab loop* names are 127.0.0.1 and ::1).
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello-dnscache")
	}))
	defer hs.Close()
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	if got := shimCmd(t, s, lib, "curl", "-4", "-s", "http://loop-curl.example.:"+port+"/"); got != "hello-dnscache" {
		t.Errorf("curl: %q", got)
	}

	// The queries arrived on the socket (the log plugin prints them), and a
	// repeated lookup is answered by warmcache, not the upstream.
	for _, n := range []string{"www.preload-e2e.example.", "cname2-py.example.", "big-erange.example.", "loop-curl.example."} {
		if !strings.Contains(s.Log(), n) {
			t.Errorf("server log lacks %s", n)
		}
	}
	before := u.Count(name)
	shimCmd(t, s, lib, "getent", "ahosts", name)
	if after := u.Count(name); after != before {
		t.Errorf("upstream saw %d more queries for %s: warmcache did not answer", after-before, name)
	}
	s.Stop(t)
}

// TestPreloadServerGone: with the socket gone, lookups fall back (here to
// nothing reachable, so they fail fast instead of hanging on the socket).
func TestPreloadServerGone(t *testing.T) {
	lib := preloadLib(t)
	s, _ := startShimServer(t)
	out := shimCmd(t, s, lib, "getent", "ahosts", "loop-gone.example.")
	if !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("getent: %q", out)
	}
	s.Stop(t)
	cmd := exec.Command("getent", "hosts", "localhost")
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "DNSCACHE_SOCKET="+s.Sock)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "localhost") {
		t.Fatalf("getent localhost after stop: %v %q", err, out)
	}
}
