package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// socketCorefile is the stock chain behind the Unix socket, with a connection limit above
// the abuse test's 10k connections, all of one uid (the test's own, as its good client's).
func socketCorefile(ups []*lab.Upstream) string {
	return fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}} {
        max_connections 12000
        max_connections_per_uid 12000
    }
    cache 300
    forward . %s {
        expire 1s
    }
}
`, udpAddrs(ups))
}

// TestAbuseStream abuses the Unix socket and the TCP port in turn: 10k idle connections,
// slowloris clients, garbage frames, maximum-size frames and half-closed connections, each
// while a well-formed client resolves hot names over the same transport on fresh
// connections. The client must get every answer; afterwards the server must hold no more
// goroutines or fds than before.
func TestAbuseStream(t *testing.T) {
	RaiseFDLimit(t, 12000)
	kit.CheckFDs(t)
	ups := startLabs(t, 1, lab.Config{})
	s := kit.Start(t, socketCorefile(ups))
	if lim := FDLimit(t, s.PID()); lim < 11000 {
		t.Fatalf("server's RLIMIT_NOFILE is %d, below the 10k connections of this test", lim)
	}
	const hot = 200
	warm(t, s, hot)
	for _, tr := range []struct{ net, addr string }{{"unix", s.Sock}, {"tcp", s.DNS}} {
		t.Run(tr.net, func(t *testing.T) {
			abuseStream(t, s, tr.net, tr.addr, hot)
		})
	}
	s.Stop(t)
}

func abuseStream(t *testing.T, s *kit.CoreDNS, network, addr string, hot int) {
	good := kit.Load{Network: network, Addr: addr, Conns: 4, Count: scale(2000, 10000), Next: next(hotNames(hot))}
	normal := runLoad(context.Background(), good).Stats()
	t.Logf("normal: %v", normal)
	if normal.Failed > 0 {
		t.Fatalf("normal load failed: %v", normal)
	}
	base := Measure(t, s)

	// during runs abuse and, at the same time, the good load; it reports both.
	during := func(name string, abuse func() Abuse) {
		t.Helper()
		var (
			wg sync.WaitGroup
			a  Abuse
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a = abuse()
		}()
		time.Sleep(50 * time.Millisecond) // let the abuse begin
		st := runLoad(context.Background(), good).Stats()
		wg.Wait()
		t.Logf("%-12s abuse %+v", name+":", a)
		t.Logf("%-12s good  %v (p99 %.1fx normal)", name+":", st, float64(st.P99)/float64(normal.P99))
		if st.Failed > 0 {
			t.Errorf("%s: %d of %d well-formed queries failed: %v", name, st.Failed, st.Sent, st.Fails)
		}
	}

	n := scale(10000, 10000)
	conns, a := OpenConns(network, addr, n)
	held := Measure(t, s)
	t.Logf("%d connections held: %+v; server %v (%.1f KiB RSS per connection)",
		n, a, held, float64(held.RSS-base.RSS)/1024/float64(max(a.Opened, 1)))
	if a.Opened < n {
		t.Errorf("only %d of %d connections opened", a.Opened, n)
	}
	during("10k conns", func() Abuse { return Abuse{Opened: a.Opened} })
	CloseAll(conns)

	during("slowloris", func() Abuse {
		return Slowloris(context.Background(), network, addr, 200, 100*time.Millisecond, scale(3*time.Second, 6*time.Second))
	})
	during("garbage", func() Abuse { return GarbageFrames(network, addr, scale(300, 3000), 1) })
	during("max frames", func() Abuse { return MaxFrames(network, addr, scale(20, 200), 2) })
	during("half-closed", func() Abuse { return HalfClosed(network, addr, scale(200, 2000)) })

	checkSettled(t, s, base, 5)
}
