package reliability

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestStartUnderSocketLoad starts the server while clients are already knocking on the
// socket path, as the shim's apps do when the node cache restarts: the first queries reach
// the chain while it is being started. The server must not crash and, once up, must answer.
func TestStartUnderSocketLoad(t *testing.T) {
	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: time.Millisecond}})
	s := kit.Prepare(t)
	if err := ups[0].CA().WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	results := make([]*kit.Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Workers re-dial after every failure (no socket yet, refused), so the first
			// accepted connection carries a query at once.
			results[i] = runLoad(ctx, kit.Load{Network: "unix", Addr: s.Sock, Conns: 4, Duration: time.Minute,
				Timeout: time.Second, Next: next(misses())})
		}()
	}
	s.Run(t, dnscacheCorefile(ups, "success 10000", ""))
	time.Sleep(time.Second) // and a second of load once it is up
	cancel()
	wg.Wait()
	var answered int
	fails := map[string]int{}
	for _, r := range results {
		st := r.Stats()
		answered += st.Sent - st.Failed
		for k, v := range st.Fails {
			fails[k] += v
		}
	}
	// Failures before the socket exists (nosocket, refused) are expected: the shim falls
	// back on them. SERVFAIL is not: it reaches the application as EAI_AGAIN.
	t.Logf("queries answered by the socket while and after the server started: %d; failures %v", answered, fails)
	if fails["SERVFAIL"] > 0 {
		t.Errorf("%d queries got SERVFAIL while the server started (the shim turns it into EAI_AGAIN)", fails["SERVFAIL"])
	}
	if answered == 0 {
		t.Error("no query answered over the socket")
	}
	s.Stop(t) // fails on a panic in the server's output
}
