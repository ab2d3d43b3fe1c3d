package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// series is one named line of a chart.
type series struct {
	name string
	xy   plotter.XYs
}

// bars draws a bar chart into dir/file.
func bars(dir, file, title, ylabel string, labels []string, values []float64) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	b, err := plotter.NewBarChart(plotter.Values(values), vg.Points(40))
	if err != nil {
		return err
	}
	b.Color = color.RGBA{R: 0x33, G: 0x66, B: 0xcc, A: 0xff}
	p.Add(b, plotter.NewGrid())
	p.NominalX(labels...)
	return p.Save(vg.Length(120+len(labels)*90), 4*vg.Inch, filepath.Join(dir, file))
}

// lines draws line series into dir/file; logY uses a logarithmic Y axis, xticks (when
// set) labels the X axis. Series come in groups of dash styles of three.
func lines(dir, file, title, xlabel, ylabel string, logY bool, xticks []plot.Tick, ss []series) error {
	p := plot.New()
	if xticks != nil {
		p.X.Tick.Marker = plot.ConstantTicks(xticks)
	}
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, s := range ss {
		if len(s.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 3)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, file))
}

// plotHit draws the hit QPS chart.
func (r *report) plotHit(cases []hitCase, res map[string]*hitResult) {
	var labels []string
	var vals []float64
	for _, c := range cases {
		if x := res[c.name]; x != nil {
			labels = append(labels, c.short+", UDP")
			vals = append(vals, x.sat.QPS)
			if x.goUnix != nil {
				labels = append(labels, c.short+", socket")
				vals = append(vals, x.goUnix.QPS())
			}
		}
	}
	r.addPlot("hit-qps.png", func(dir, file string) error {
		return bars(dir, file, "Cache-hit throughput: dnsperf over UDP, Go generator over the socket (higher is better)", "queries/s", labels, vals)
	})
}

// addPlot registers a plot drawn when the report is written.
func (r *report) addPlot(file string, draw func(dir, file string) error) {
	r.plots = append(r.plots, file)
	r.draws = append(r.draws, func(dir string) error { return draw(dir, file) })
}
