package reliability

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// TestReloadUnderLoad reloads the server with a changed Corefile (a different cache size
// and racetls options each time) while clients resolve hot and new names over UDP and the
// socket. No query may fail, and the reloads must leave no goroutines or fds behind.
func TestReloadUnderLoad(t *testing.T) {
	kit.CheckFDs(t)
	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 2 * time.Millisecond}})
	s := startChain(t, ups, "success 10000", "")
	const hot = 200
	warm(t, s, hot)
	base := Measure(t, s)

	reloads := scale(4, 20)
	every := 700 * time.Millisecond
	run := time.Duration(reloads+1) * every
	mixed := misses()
	query := func(i int) (string, uint16) {
		if i%4 == 0 {
			return mixed(i)
		}
		return hotNames(hot)(i)
	}
	var (
		wg        sync.WaitGroup
		udp, sock *kit.Result
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		udp, sock = both(s, kit.Load{Conns: 4, Rate: 400, Duration: run, Next: next(query)})
	}()
	for i := range reloads {
		time.Sleep(every / 2)
		s.Reload(t, dnscacheCorefile(ups, fmt.Sprintf("success %d", 10000+i), fmt.Sprintf("conns %d\n        timeout %dms", 1+i%2, 1500+100*i)))
		time.Sleep(every / 2)
	}
	wg.Wait()
	for name, r := range map[string]*kit.Result{"udp": udp, "unix": sock} {
		st := r.Stats()
		t.Logf("%d reloads, %s: %v", reloads, name, st)
		t.Logf("%d reloads, %s: before the first reload %v", reloads, name, r.Window(0, every/2))
		if st.Failed > 0 {
			t.Errorf("%s: %d of %d queries failed across %d reloads: %v", name, st.Failed, st.Sent, reloads, st.Fails)
		}
	}
	checkSettled(t, s, base, 10)
	s.Stop(t)
}
