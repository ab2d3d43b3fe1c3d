package reliability

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestAbuseUDP sends the UDP port 10k datagrams a second of random bytes, truncated headers, replies and queries
// with trailing garbage while a well-formed client resolves hot names. The client must get
// every answer, and the server must hold no more goroutines or fds afterwards.
func TestAbuseUDP(t *testing.T) {
	kit.CheckFDs(t)
	ups := startLabs(t, 1, lab.Config{})
	s := kit.Start(t, stockCorefile(ups))
	const hot = 200
	warm(t, s, hot)
	good := kit.Load{Network: "udp", Addr: s.DNS, Conns: 4, Count: scale(4000, 40000), Next: next(hotNames(hot)),
		Timeout: 500 * time.Millisecond, Retries: 2}
	normal := runLoad(context.Background(), good).Stats()
	t.Logf("normal:      %v", normal)
	base := Measure(t, s)

	var (
		wg    sync.WaitGroup
		abuse Abuse
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		abuse = RandomUDP(s.DNS, scale(20000, 100000), 10000, 1)
	}()
	during := runLoad(context.Background(), good).Stats()
	wg.Wait()
	t.Logf("under abuse: %v", during)
	t.Logf("abuse: %+v", abuse)
	t.Logf("p99 under abuse / normal p99 = %.2f", float64(during.P99)/float64(normal.P99))
	if during.Failed > 0 {
		t.Errorf("%d of %d well-formed queries failed under UDP abuse: %v", during.Failed, during.Sent, during.Fails)
	}
	checkSettled(t, s, base, 5)
	s.Stop(t)
}
