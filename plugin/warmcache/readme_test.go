package warmcache

import (
	"os"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
)

// TestReadme parses every warmcache directive in README.md's corefile blocks.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, part := range strings.Split(string(b), "~~~ corefile\n")[1:] {
		block, _, ok := strings.Cut(part, "~~~")
		if !ok {
			t.Fatal("unterminated corefile block")
		}
		blocks++
		if err := parseCorefile(block); err != nil {
			t.Errorf("README block %d: %v\n%s", blocks, err, block)
		}
	}
	if blocks < 3 {
		t.Errorf("%d corefile blocks in README.md, want at least 3", blocks)
	}
}

// parseCorefile checks a Corefile's syntax and runs our parser on each warmcache stanza.
func parseCorefile(corefile string) error {
	blocks, err := caddyfile.Parse("README.md", strings.NewReader(corefile), nil)
	if err != nil {
		return err
	}
	for _, sb := range blocks {
		if toks, ok := sb.Tokens["warmcache"]; ok {
			c := caddy.NewTestController("dns", "")
			c.Dispenser = caddyfile.NewDispenserTokens("README.md", toks)
			c.ServerBlockKeys = sb.Keys
			if _, err := parse(c); err != nil {
				return err
			}
		}
	}
	return nil
}
