package unixsock

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/dnstap"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/view"
)

// TestReadme parses every corefile block of README.md and runs every directive's setup.
func TestReadme(t *testing.T) {
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var blocks []string
	var cur *strings.Builder
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "~~~ corefile"):
			cur = &strings.Builder{}
		case cur != nil && strings.HasPrefix(line, "~~~"):
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatal("no corefile blocks in README.md")
	}
	// The check can fail: an unknown property is an error.
	if err := caddy.ValidateAndExecuteDirectives(input(". {\nunixsock /x {\nbogus 1\n}\n}\n"), nil, true); err == nil {
		t.Fatal("validation accepted an unknown property")
	}
	for i, b := range blocks {
		if err := caddy.ValidateAndExecuteDirectives(input(b), nil, true); err != nil {
			t.Errorf("block %d: %v\n%s", i, err, b)
		}
	}
}
