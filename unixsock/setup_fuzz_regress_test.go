package unixsock

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// FuzzSetup parses arbitrary text after the unixsock directive: parse must return a
// plugin or an error, never panic. Inputs naming device or proc files are skipped (a tls
// option reads the files it names).
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		"",
		"/dns_cache/dns.sock {\n mode 0666\n max_connections 1024\n max_inflight 64\n idle_timeout 10s\n read_timeout 2s\n write_timeout 5s\n}",
		"{\n unknown 1\n}",
		"{\n}\nunixsock",
		"{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, "/dev") || strings.Contains(in, "/proc") || strings.Contains(in, "/sys") {
			t.Skip()
		}
		parse(caddy.NewTestController("dns", "unixsock "+in))
	})
}
