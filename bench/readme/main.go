// Command readme replaces the part of a Markdown file between the markers
// "<!-- bench:begin -->" and "<!-- bench:end -->" with the contents of another file: it is
// how `scripts/bench.sh --readme` puts the latest benchmark table into bench/README.md.
//
//	readme TARGET.md SUMMARY.md
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: readme TARGET.md SUMMARY.md")
		os.Exit(2)
	}
	if err := refresh(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func refresh(target, summary string) error {
	doc, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(summary)
	if err != nil {
		return err
	}
	out, err := splice(string(doc), string(body))
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	return os.WriteFile(target, []byte(out), 0o644)
}
