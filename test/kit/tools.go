package kit

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Exchange sends m to the server over "udp" or "tcp" with the Go client; it fails the test
// on an error.
func (c *CoreDNS) Exchange(t testing.TB, m *dns.Msg, network string) *dns.Msg {
	t.Helper()
	cl := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := cl.Exchange(m, c.DNS)
	if err != nil {
		t.Fatalf("exchange %s over %s: %v", m.Question[0].Name, network, err)
	}
	return r
}

// Kdig runs Knot's kdig against the server with the given arguments.
func (c *CoreDNS) Kdig(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "kdig", append([]string{"@127.0.0.1", "-p", strconv.Itoa(c.Port)}, args...)...)
}

// Dig runs BIND's dig against the server with the given arguments.
func (c *CoreDNS) Dig(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "dig", append([]string{"@127.0.0.1", "-p", strconv.Itoa(c.Port)}, args...)...)
}

// Run runs a tool from PATH and returns its combined output. It fails the test when the tool
// is missing (run `make deps`) or exits non-zero.
func Run(t testing.TB, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not installed (run `make deps`): %v", tool, err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

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
