package harness

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// CheckFDs records the test process's open file descriptors and, at cleanup, fails the test
// if more remain open once the test's servers and clients have closed (after a grace period
// for closes that race with cleanup).
func CheckFDs(t testing.TB) {
	t.Helper()
	before := countFDs(t)
	t.Cleanup(func() {
		var after int
		for range 50 {
			if after = countFDs(t); after <= before {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("fd leak: %d open before the test, %d after", before, after)
	})
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// ServerFDs returns the number of fds the server process holds.
func (s *Server) ServerFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(s.PID()) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
