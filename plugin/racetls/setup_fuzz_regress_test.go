package racetls

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// FuzzSetup parses arbitrary text after the racetls directive: parse must return a
// plugin or an error, never panic. Inputs naming device or proc files are skipped (a tls
// option reads the files it names).
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		"",
		". tls://127.0.0.1:853%dns.example tls://[::1]:853 {\n tls_servername x.example\n race 2\n hedge 20ms\n timeout 2s\n conns 2\n max_conns 4\n}",
		"{\n unknown 1\n}",
		"{\n}\nracetls",
		"{",
		". 127.0.0.1 {\n tls_servername\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, "/dev") || strings.Contains(in, "/proc") || strings.Contains(in, "/sys") {
			t.Skip()
		}
		parse(caddy.NewTestController("dns", "racetls "+in))
	})
}
