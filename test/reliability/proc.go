package reliability

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// Sample is the server process's footprint at one moment: from /proc (RSS, fds, threads)
// and from its /metrics (goroutines).
type Sample struct {
	At         time.Duration // since the sampler started
	RSS        int64         // bytes
	FDs        int
	Threads    int
	Goroutines int
}

func (s Sample) String() string {
	return fmt.Sprintf("t=%3.0fs rss=%5.1fMiB fds=%4d threads=%3d goroutines=%5d",
		s.At.Seconds(), float64(s.RSS)/(1<<20), s.FDs, s.Threads, s.Goroutines)
}

// Measure samples the server now. The server's Corefile must use {{.Std}} (prometheus).
func Measure(t testing.TB, s *kit.CoreDNS) Sample {
	t.Helper()
	var m Sample
	m.FDs = s.ServerFDs(t)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "Threads":
			m.Threads = int(n)
		}
	}
	m.Goroutines = int(s.Metric(t, "go_goroutines", nil))
	return m
}

// Settle samples the server until its goroutines and fds fall back to at most base's plus
// slack, or until wait passes, and returns the last sample. Connections the server closes
// take a moment to be reaped.
func Settle(t testing.TB, s *kit.CoreDNS, base Sample, slack int, wait time.Duration) Sample {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		m := Measure(t, s)
		if (m.Goroutines <= base.Goroutines+slack && m.FDs <= base.FDs+slack) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FDLimit returns the soft RLIMIT_NOFILE of a process, from /proc/PID/limits.
func FDLimit(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) > 0 {
				n, err := strconv.Atoi(f[0])
				if err == nil {
					return n
				}
				return 1 << 30 // unlimited
			}
		}
	}
	t.Fatalf("no open-files limit in /proc/%d/limits", pid)
	return 0
}

// RaiseFDLimit raises this process's soft RLIMIT_NOFILE to at least n (up to the hard
// limit) and fails the test when it cannot reach n. The Go runtime already raises the soft
// limit to the hard one at start; this checks it.
func RaiseFDLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d this test needs", lim.Max, n)
	}
}
