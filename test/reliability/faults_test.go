package reliability

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// faults are the upstream misbehaviours of the suite; Stall is a latency, not a fault kind.
var faults = []struct {
	name    string
	fault   lab.Fault
	latency lab.Latency
}{
	{name: "blackhole", fault: lab.Fault{Kind: lab.BlackHole}},
	{name: "reset", fault: lab.Fault{Kind: lab.Reset}},
	{name: "garbage", fault: lab.Fault{Kind: lab.Garbage}},
	{name: "wrongid", fault: lab.Fault{Kind: lab.WrongID}},
	// Idle connections are closed after 300 ms; the load is slow enough to let them idle.
	{name: "idleclose", fault: lab.Fault{Kind: lab.IdleClose, After: 300 * time.Millisecond}},
	{name: "stall", latency: lab.Latency{Dist: lab.Fixed, Median: time.Millisecond, StallProb: 1, Stall: 10 * time.Second}},
	{name: "servfail", fault: lab.Fault{Kind: lab.ServFail}},
}

// TestUpstreamFaults runs a steady bounded load of cache misses over UDP and the socket
// through racetls with three lab upstreams while one, then two of them misbehave. With one
// healthy upstream no client may see a failure. racetls races all three upstreams (`race
// all`) so that every query meets the faulty ones; the default race of the two fastest
// learns to avoid them (the soak runs it too).
func TestUpstreamFaults(t *testing.T) {
	modes := []string{"race all"}
	if soak() {
		modes = append(modes, "") // the default: race the two fastest

	}
	for _, mode := range modes {
		t.Run(strings.ReplaceAll(cmp.Or(mode, "default"), " ", "_"), func(t *testing.T) { upstreamFaults(t, mode) })
	}
}

func upstreamFaults(t *testing.T, mode string) {
	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: 2 * time.Millisecond}})
	s := startChain(t, ups, "success 10000", mode)
	base := Measure(t, s)
	load := kit.Load{Conns: 4, Count: scale(300, 500), Rate: scale(300.0, 500)}

	// healthy clears every fault and, under `race all`, waits until racetls uses every
	// upstream again: a fault that broke connections may leave an upstream in backoff.
	healthy := func(t *testing.T, after string) {
		for _, u := range ups {
			u.SetFault(lab.Fault{})
			u.SetLatency(lab.Latency{Dist: lab.Fixed, Median: 2 * time.Millisecond})
		}
		if mode != "race all" {
			return
		}
		start := time.Now()
		before := make([]int64, len(ups))
		for i, u := range ups {
			before[i] = u.Stats().Queries
		}
		probe := kit.Load{Network: "udp", Addr: s.DNS, Conns: 1, Count: 1, Next: next(misses())}
		for used := 0; used < len(ups); {
			runLoad(context.Background(), probe)
			used = 0
			for i, u := range ups {
				if u.Stats().Queries > before[i] {
					used++
				}
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("racetls does not use every healthy upstream again within 30s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Logf("%s: every upstream used again %v after the fault was cleared", after, d.Round(time.Millisecond))
		}
	}
	for _, f := range faults {
		for bad := 1; bad <= 2; bad++ {
			t.Run(f.name+"/"+string(rune('0'+bad)), func(t *testing.T) {
				healthy(t, "before")
				defer healthy(t, fmt.Sprintf("%d of 3 upstreams %s", bad, f.name))
				for _, u := range ups[:bad] {
					u.SetFault(f.fault)
					if f.latency.Median > 0 {
						u.SetLatency(f.latency)
					}
					if f.fault.Kind == lab.IdleClose {
						// The lab draws IdleClose per connection at accept: make racetls redial.
						u.Down()
						if err := u.Up(); err != nil {
							t.Fatal(err)
						}
					}
				}
				// hits counts what reached the faulty upstreams: faults, or queries for a stall.
				hits := func() (n int64) {
					for _, u := range ups[:bad] {
						if st := u.Stats(); f.fault.Kind == lab.None {
							n += st.Queries
						} else {
							n += st.Faults
						}
					}
					return n
				}
				before := hits()
				l := load
				l.Next = next(misses())
				if f.fault.Kind == lab.IdleClose {
					l.Rate, l.Count = 2, scale(8, 16)
				}
				udp, sock := both(s, l)
				injected := hits() - before
				if injected == 0 && mode == "race all" {
					t.Errorf("the %s fault was never injected: racetls did not use the faulty upstreams", f.name)
				}
				us, ss := udp.Stats(), sock.Stats()
				t.Logf("%d of 3 upstreams %s: %d faults injected", bad, f.name, injected)
				t.Logf("%d of 3 upstreams %s: udp  %v", bad, f.name, us)
				t.Logf("%d of 3 upstreams %s: sock %v", bad, f.name, ss)
				if us.Failed+ss.Failed > 0 {
					t.Errorf("%d client-visible failures with a healthy upstream (udp %v, socket %v)",
						us.Failed+ss.Failed, us.Fails, ss.Fails)
				}
			})
		}
	}
	healthy(t, "end")
	checkSettled(t, s, base, 10)
}
