package reliability

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestSocketConnLimit fills the socket with idle connections of one uid: 1100, more than the
// default max_connections (1024). A client of another uid must be answered meanwhile: that uid
// has its own share of max_connections (DESIGN §7). It reports what a new client of the first
// uid gets (closed at once: the shim then falls back to UDP) and checks that the server reaps
// the idle connections after idle_timeout and serves new clients of that uid again.
func TestSocketConnLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a client of another uid needs root to start")
	}
	kit.CheckFDs(t)
	ups := startLabs(t, 1, lab.Config{})
	s := kit.Start(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}} {
        idle_timeout 2s
    }
    warmcache
    forward . %s
}
`, udpAddrs(ups)))
	other := relayAs(t, 65534, s)
	warm(t, s, 10)
	base := Measure(t, s)
	rejected := func() float64 {
		return s.Metric(t, "coredns_unixsock_errors_total", map[string]string{"kind": "max_connections_per_uid"})
	}
	before := rejected()

	conns, a := OpenConns("unix", s.Sock, 1100) // uid 0, the test's own
	defer CloseAll(conns)
	same := kit.Load{Network: "unix", Addr: s.Sock, Conns: 1, Count: 20, Next: next(hotNames(10)), Timeout: time.Second}
	sameHeld := runLoad(context.Background(), same).Stats()
	otherHeld := runLoad(context.Background(), kit.Load{Network: "tcp", Addr: other, Conns: 1, Count: 20, Next: next(hotNames(10)), Timeout: time.Second}).Stats()
	t.Logf("1100 idle connections of uid 0 (%d dialled, %d refused, %.0f closed at once by max_connections_per_uid)", a.Opened, a.Refused, rejected()-before)
	t.Logf("meanwhile a new client of uid 0: %v", sameHeld)
	t.Logf("meanwhile a client of uid 65534: %v", otherHeld)
	if otherHeld.Sent != 20 || otherHeld.Failed != 0 {
		t.Errorf("a client of another uid is locked out by one uid's idle connections: %v", otherHeld)
	}

	closed := ClosedByServer(conns, 5*time.Second)
	t.Logf("idle connections closed by the server within 5 s: %d of %d", closed, len(conns))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := runLoad(context.Background(), same).Stats()
		if st.Failed == 0 {
			t.Logf("after idle_timeout, a new client of uid 0: %v", st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new clients still fail 10 s after the idle connections should have been reaped: %v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	CloseAll(conns)
	checkSettled(t, s, base, 5)
}

// relayAs runs socat as uid (gid the same, no supplementary groups), relaying a loopback TCP
// port to s's socket, one socket connection per TCP connection: a DNS-over-TCP client of the
// relay is a socket client of that uid to the server (SO_PEERCRED). It returns the port's
// address once the relay accepts; t.Cleanup kills the relay by its PID.
func relayAs(t *testing.T, uid int, s *kit.CoreDNS) string {
	t.Helper()
	// The kit's directory is private to root; other uids must be able to reach the socket in it.
	if err := os.Chmod(s.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	addr := kit.FreeAddr(t)
	id := strconv.Itoa(uid)
	p, err := kit.StartProcess("socat as uid "+id, "", "setpriv", "--reuid="+id, "--regid="+id, "--clear-groups",
		"--pdeathsig", "KILL", // setuid clears the one kit sets
		"socat", "TCP-LISTEN:"+strings.TrimPrefix(addr, "127.0.0.1:")+",bind=127.0.0.1,reuseaddr,fork", "UNIX-CONNECT:"+s.Sock)
	if err != nil {
		t.Fatalf("%v (socat: scripts/deps.sh)", err)
	}
	t.Cleanup(p.Kill)
	for range 100 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if done, _ := p.Exited(); done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("socat does not listen on %s:\n%s", addr, p.Log())
	return ""
}
