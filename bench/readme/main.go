// Command readme replaces the part of a Markdown file between the markers
// "<!-- bench:begin -->" and "<!-- bench:end -->" with the contents of another file: it is
// how `scripts/bench.sh --readme` puts the latest benchmark table into bench/README.md.
//
//	readme TARGET.md SUMMARY.md
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: readme TARGET.md SUMMARY.md [IMAGE-PREFIX]")
		os.Exit(2)
	}
	prefix := ""
	if len(os.Args) == 4 {
		prefix = os.Args[3] // where bench/img is seen from TARGET.md, e.g. "bench/"
	}
	if err := refresh(os.Args[1], os.Args[2], prefix); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func refresh(target, summary, prefix string) error {
	doc, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(summary)
	if err != nil {
		return err
	}
	out, err := splice(string(doc), strings.ReplaceAll(string(body), "](img/", "]("+prefix+"img/"))
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	return os.WriteFile(target, []byte(out), 0o644)
}
