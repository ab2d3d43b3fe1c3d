// Package promtext reads a server's /metrics in the Prometheus text format for the programs
// that run bin/coredns outside a test (make bench, make demo): every sample keyed by its
// series text, `name{labels}`. Tests use test/harness, which parses with expfmt.
package promtext

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Scrape fetches http://addr/metrics and returns every sample by its series text.
func Scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// Sum adds the samples of metric name whose labels include every `k="v"` in match.
func Sum(samples map[string]float64, name string, match ...string) float64 {
	var t float64
	for series, v := range samples {
		n, labels, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range match {
			if !strings.Contains(labels, l) {
				ok = false
				break
			}
		}
		if ok {
			t += v
		}
	}
	return t
}
