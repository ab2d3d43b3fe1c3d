package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestSocketConnLimit fills the socket's connection limit (the default 1024) with idle
// connections. It reports what a new well-formed client gets while they are held (the
// shim then falls back to UDP) and checks that the server reaps them after idle_timeout
// and serves new clients again.
func TestSocketConnLimit(t *testing.T) {
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
	warm(t, s, 10)
	base := Measure(t, s)
	conns, a := OpenConns("unix", s.Sock, 1100)
	defer CloseAll(conns)
	good := kit.Load{Network: "unix", Addr: s.Sock, Conns: 1, Count: 20, Next: next(hotNames(10)), Timeout: time.Second}
	held := runLoad(context.Background(), good).Stats()
	t.Logf("1100 idle connections (%d dialled, %d refused); a new client meanwhile: %v", a.Opened, a.Refused, held)

	closed := ClosedByServer(conns, 5*time.Second)
	t.Logf("idle connections closed by the server within 5 s: %d of %d", closed, len(conns))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := runLoad(context.Background(), good).Stats()
		if st.Failed == 0 {
			t.Logf("after idle_timeout: %v", st)
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
