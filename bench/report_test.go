package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"gonum.org/v1/plot"
)

func TestReportMarkdown(t *testing.T) {
	r := &report{machine: [][2]string{{"machine", "2 cores"}}, elapsed: 90 * time.Second}
	tb := r.table("1. Hits", "a note", "case", "QPS")
	tb.add("floor", "100")
	tb.add("cache | x", "90")
	r.ratioTarget("cache vs floor", "≥ 0.97×", 0.9, 0.97, false, "90 vs 100")
	r.ratioTarget("p99 ratio", "≤ 0.50×", 0.3, 0.5, true, "3 vs 10")
	r.target("missing", "x", "-", "n/a (component missing: y)")
	md := r.markdown("img", true)
	for _, want := range []string{
		"| machine | 2 cores |", caveat, "| cache vs floor | ≥ 0.97× | 0.90× (90 vs 100) | **NOT met** |",
		"| p99 ratio | ≤ 0.50× | 0.30× (3 vs 10) | **met** |", "n/a (component missing: y)",
		"**1. Hits**", "| case | QPS |", "|---|---:|", `| cache \| x | 90 |`, "a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var txt strings.Builder
	r.printSummary(&txt)
	if !strings.Contains(txt.String(), "NOT met") || !strings.Contains(txt.String(), "-- 1. Hits") {
		t.Errorf("summary:\n%s", txt.String())
	}
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	if err := bars(dir, "b.png", "t", "qps", []string{"a", "b"}, []float64{1, 2}); err != nil {
		t.Fatal(err)
	}
	var h kit.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	ticks := []plot.Tick{{Value: nines(0.5), Label: "p50"}, {Value: nines(0.99), Label: "p99"}}
	if err := lines(dir, "l.png", "t", "q", "ms", true, ticks, []series{quantileCurve("x", &h)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"b.png", "l.png"} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
			t.Errorf("%s: %v", f, b)
		}
	}
	if c := quantileCurve("x", &h); c.xy[2].Y < 450 || c.xy[2].Y > 550 {
		t.Errorf("p50 of 1..1000 ms plotted at %v ms", c.xy[2].Y)
	}
}
