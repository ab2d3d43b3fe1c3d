package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
)

// TestUnixsockNewPathOnSIGUSR1 moves the socket to a new path with a SIGUSR1 reload. caddy's
// SIGUSR1 handler drops every event hook before it reloads, so this fails if unixsock relied
// on a hook registered once at init to start serving a path that a reload adds.
func TestUnixsockNewPathOnSIGUSR1(t *testing.T) {
	kit.CheckFDs(t)
	up := lab.StartTest(t, lab.Config{})
	const corefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock %s
    forward . %s
}
`
	s := kit.Prepare(t)
	first, second := s.Sock, filepath.Join(s.Dir, "second.sock")
	s.Run(t, fmt.Sprintf(corefile, first, up.UDPAddr()))
	if r := unixsockAskTimeout(t, first); r == nil {
		t.Fatal("no answer on the first socket")
	}
	for i, path := range []string{second, first, second} {
		s.Reload(t, fmt.Sprintf(corefile, path, up.UDPAddr()))
		if r := unixsockAskTimeout(t, path); r == nil {
			t.Fatalf("reload %d: no answer on %s:\n%s", i+1, path, s.Log())
		}
	}
	s.Stop(t)
}

// unixsockAskTimeout asks for an A record on a new connection and returns nil when nothing
// answers within 3 s (a socket that is bound but never accepted holds clients in its backlog).
func unixsockAskTimeout(t *testing.T, path string) *dns.Msg {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 3*time.Second)
	if err != nil {
		t.Logf("dial %s: %v", path, err)
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion("reload.example.org.", dns.TypeA)
	if err := unixsockWrite(c, q); err != nil {
		t.Logf("write %s: %v", path, err)
		return nil
	}
	r, err := unixsockRead(c)
	if err != nil {
		t.Logf("read %s: %v", path, err)
		return nil
	}
	return r
}
