package harness

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Exchange sends m to the server over "udp" or "tcp" with the Go client.
func (s *Server) Exchange(t testing.TB, m *dns.Msg, network string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, s.DNS)
	if err != nil {
		t.Fatalf("exchange %s over %s: %v", m.Question[0].Name, network, err)
	}
	return r
}

// Kdig runs Knot's kdig against the server with the given arguments.
func (s *Server) Kdig(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "kdig", append([]string{"@127.0.0.1", "-p", strconv.Itoa(s.Port)}, args...)...)
}

// Dig runs BIND's dig against the server with the given arguments.
func (s *Server) Dig(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "dig", append([]string{"@127.0.0.1", "-p", strconv.Itoa(s.Port)}, args...)...)
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
