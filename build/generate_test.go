package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"

	"github.com/dnscache/dnscache/build/gen"
)

// TestGeneratedFilesFresh fails when zdirectives.go or zplugin.go no longer match plugin.cfg.
func TestGeneratedFilesFresh(t *testing.T) {
	cfg, err := os.ReadFile("plugin.cfg")
	if err != nil {
		t.Fatal(err)
	}
	files, err := gen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		have, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("%s is stale: run `go generate ./build`", name)
		}
	}
}

// TestDirectiveOrder checks the placement rules of DESIGN.md §4 against the running order.
func TestDirectiveOrder(t *testing.T) {
	pos := map[string]int{}
	for i, d := range dnsserver.Directives {
		pos[d] = i
	}
	for _, must := range []string{"cache", "forward", "kubernetes", "prometheus", "log", "reload"} {
		if _, ok := pos[must]; !ok {
			t.Errorf("directive %q missing", must)
		}
	}
	if i, ok := pos["unixsock"]; ok && i != 0 {
		t.Errorf("unixsock at %d, want first", i)
	}
	if i, ok := pos["warmcache"]; ok && i != pos["cache"]+1 && i != pos["cache"]-1 {
		t.Errorf("warmcache at %d, want beside cache (%d)", i, pos["cache"])
	}
	if i, ok := pos["racetls"]; ok && i != pos["forward"]+1 && i != pos["forward"]-1 {
		t.Errorf("racetls at %d, want beside forward (%d)", i, pos["forward"])
	}
}
