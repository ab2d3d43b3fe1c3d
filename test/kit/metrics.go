package kit

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a scrape of /metrics: every metric family by name.
type Families map[string]*dto.MetricFamily

// ScrapeAddr fetches http://addr/metrics and parses the Prometheus text format.
func ScrapeAddr(addr string) (Families, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape: parse: %w", err)
	}
	return fams, nil
}

// Sum adds the samples of the named family whose labels include all of labels (nil matches
// every sample): a counter or gauge value, or a histogram's or summary's count. It returns 0
// when no sample matches.
func (f Families) Sum(name string, labels map[string]string) float64 { return Sum(f, name, labels) }

// Sum adds the samples of one family whose labels include labels (see Families.Sum).
func Sum(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	return Families(fams).SumWhere(name, func(got map[string]string) bool {
		for k, v := range labels {
			if got[k] != v {
				return false
			}
		}
		return true
	})
}

// SumWhere adds the samples of the named family whose labels where accepts (see Sum).
func (f Families) SumWhere(name string, where func(labels map[string]string) bool) float64 {
	fam, ok := f[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		labels := make(map[string]string, len(m.GetLabel()))
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if !where(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// Scrape returns every metric family on the server's /metrics; it fails the test when the
// scrape fails.
func (c *CoreDNS) Scrape(t testing.TB) Families {
	t.Helper()
	return must[Families](t)(ScrapeAddr(c.Metrics))
}

// Metric returns the sum of the samples of the named metric whose labels include labels
// (see Sum).
func (c *CoreDNS) Metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	return Sum(c.Scrape(t), name, labels)
}

// Exists reports whether the server exports the named family, for tests that check names.
func (c *CoreDNS) Exists(t testing.TB, name string) error {
	t.Helper()
	if _, ok := c.Scrape(t)[name]; !ok {
		return fmt.Errorf("metric %s not on /metrics", name)
	}
	return nil
}

// Flat flattens the families whose names start with prefix into one number per series, keyed
// "name{l1=v1,l2=v2}" with the labels sorted: counters and gauges by value, histograms by
// _count, _sum and cumulative _bucket{le=…}, or by _count alone for the families named in
// countOnly (durations, which differ from run to run). keep, if not nil, picks the metrics by
// their labels; label, if not nil, rewrites a label's value, or leaves the label out of the
// key when it returns false.
func (f Families) Flat(prefix string, keep func(labels map[string]string) bool,
	label func(name, value string) (string, bool), countOnly ...string) map[string]float64 {
	out := map[string]float64{}
	for name, fam := range f {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if keep != nil && !keep(labels) {
				continue
			}
			var ls []string
			for k, v := range labels {
				if label != nil {
					var ok bool
					if v, ok = label(k, v); !ok {
						continue
					}
				}
				ls = append(ls, k+"="+v)
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				h := m.Histogram
				out[key+"_count"] = float64(h.GetSampleCount())
				if slices.Contains(countOnly, name) {
					continue
				}
				out[key+"_sum"] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[fmt.Sprintf("%s_bucket{le=%g}", key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}
