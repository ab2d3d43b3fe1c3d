package kit

import (
	"fmt"
	"net/http"
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
