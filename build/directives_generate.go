//go:build ignore

// directives_generate turns plugin.cfg into zdirectives.go and zplugin.go, as CoreDNS's own
// directives_generate.go does, for a main package that lives outside the CoreDNS tree.
//
// Run it from this directory with `go generate`. With -check it writes nothing and exits 1
// when the committed files differ from what plugin.cfg produces.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/dnscache/dnscache/build/gen"
)

func main() {
	check := flag.Bool("check", false, "report stale generated files instead of writing them")
	flag.Parse()

	cfg, err := os.ReadFile("plugin.cfg")
	if err != nil {
		log.Fatalf("read plugin.cfg: %v", err)
	}
	files, err := gen.Generate(cfg)
	if err != nil {
		log.Fatalf("plugin.cfg: %v", err)
	}
	stale := false
	for name, want := range files {
		have, _ := os.ReadFile(name)
		if bytes.Equal(have, want) {
			continue
		}
		if *check {
			fmt.Fprintf(os.Stderr, "%s is stale: run `go generate ./build`\n", name)
			stale = true
			continue
		}
		if err := os.WriteFile(name, want, 0o644); err != nil {
			log.Fatalf("write %s: %v", name, err)
		}
	}
	if stale {
		os.Exit(1)
	}
}
