package racetls

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/dnscache/dnscache/test/lab"
)

// TestReadme parses README.md's corefile blocks, and every racetls stanza in
// them with this plugin's parser. The CA file of the examples is swapped for
// a real one.
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	// A resolv.conf of our own, so that the examples parse on any machine.
	resolv := dir + "/resolv.conf"
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)~~~ corefile\n(.*?)~~~").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d corefile blocks", len(blocks))
	}
	for _, blk := range blocks {
		text := strings.ReplaceAll(blk[1], "/etc/coredns/ca.pem", dir+"/"+lab.CAFile)
		text = strings.ReplaceAll(text, "/etc/resolv.conf", resolv)
		sbs, err := caddyfile.Parse("README.md", strings.NewReader(text), []string{"racetls"})
		if err != nil || len(sbs) != 1 {
			t.Errorf("corefile does not parse (%d blocks): %v\n%s", len(sbs), err, text)
			continue
		}
		// The stanza from "racetls" to before the server block's closing brace.
		stanza := text[strings.Index(text, "racetls"):]
		stanza = stanza[:strings.LastIndex(stanza, "}")]
		if _, err := parse(caddy.NewTestController("dns", stanza)); err != nil {
			t.Errorf("racetls stanza: %v\n%s", err, stanza)
		}
	}
}
