package warmcache

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// FuzzSetup parses arbitrary text after the warmcache directive: parse must return a
// plugin or an error, never panic. Inputs naming device or proc files are skipped (a tls
// option reads the files it names).
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		"",
		"300 example.org {\n success 10000 300 5\n denial 1000\n servfail 5s\n max_bytes 64M\n prefetch 2 10s 10%\n sweep 1s\n refreshes 8 100\n serve_stale 1h 1800ms\n shards 64\n}",
		"{\n unknown 1\n}",
		"{\n}\nwarmcache",
		"{",
		`""`, // an empty first argument once panicked in notZone
		`300 ""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, "/dev") || strings.Contains(in, "/proc") || strings.Contains(in, "/sys") {
			t.Skip()
		}
		parse(caddy.NewTestController("dns", "warmcache "+in))
	})
}
