package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// scrape fetches the server's /metrics and returns every sample by its full series text
// (`name{labels}`).
func (srv *server) scrape() (map[string]float64, error) {
	resp, err := http.Get("http://" + srv.Metrics + "/metrics")
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
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the samples of metric name whose labels include every "k=\"v\"" in match.
func sum(samples map[string]float64, name string, match ...string) float64 {
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
