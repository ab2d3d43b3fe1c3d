package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// perfResult is what one dnsperf run reported.
type perfResult struct {
	Sent, Completed, Lost int64
	QPS                   float64
	Avg                   time.Duration
	Rcodes                map[string]int64
	Latency               kit.Histogram // per-query latencies, with verbose runs only
}

// perfRun describes a dnsperf run.
type perfRun struct {
	Port     int
	File     string        // input: "name type" lines
	Duration time.Duration // -l
	Rate     int           // -Q; 0 for saturation
	Clients  int           // -c
	Threads  int           // -T
	Inflight int           // -q
	Verbose  bool          // -v: per-query latencies for percentiles
}

// dnsperf runs dnsperf on the client core and parses its output.
func (s *suite) dnsperf(ctx context.Context, r perfRun) (*perfResult, error) {
	args := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(r.Port), "-d", r.File,
		"-l", strconv.FormatFloat(r.Duration.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(max(r.Clients, 1)), "-T", strconv.Itoa(max(r.Threads, 1)),
		"-q", strconv.Itoa(max(r.Inflight, 1)), "-t", "2"}
	if r.Rate > 0 {
		args = append(args, "-Q", strconv.Itoa(r.Rate))
	}
	if r.Verbose {
		args = append(args, "-v")
	}
	name := "dnsperf"
	if s.clientCPU != "" {
		args = append([]string{"-c", s.clientCPU, name}, args...)
		name = "taskset"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dnsperf: %w", err)
	}
	res, perr := parseDnsperf(stdout)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dnsperf %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	if perr != nil {
		return nil, perr
	}
	return res, nil
}

// parseDnsperf reads dnsperf 2.x output: with -v one line per reply ("> NOERROR name type
// 0.000123"), then the "Statistics:" block.
func parseDnsperf(r io.Reader) (*perfResult, error) {
	res := &perfResult{Rcodes: map[string]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var stats bool
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			f := strings.Fields(line)
			if len(f) >= 5 && f[1] != "T" {
				if sec, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
					res.Latency.Record(time.Duration(sec * float64(time.Second)))
				}
			}
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		first := strings.Fields(val + " ")
		switch key {
		case "Statistics":
			stats = true
		case "Queries sent":
			res.Sent, _ = strconv.ParseInt(first[0], 10, 64)
		case "Queries completed":
			res.Completed, _ = strconv.ParseInt(first[0], 10, 64)
		case "Queries lost":
			res.Lost, _ = strconv.ParseInt(first[0], 10, 64)
		case "Queries per second":
			res.QPS, _ = strconv.ParseFloat(first[0], 64)
		case "Average Latency (s)":
			sec, _ := strconv.ParseFloat(first[0], 64)
			res.Avg = time.Duration(sec * float64(time.Second))
		case "Response codes":
			// "NOERROR 999995 (100.00%), NXDOMAIN 5 (0.00%)"
			for _, part := range strings.Split(val, ",") {
				f := strings.Fields(part)
				if len(f) >= 2 {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					res.Rcodes[f[0]] = n
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !stats {
		return nil, fmt.Errorf("dnsperf: no statistics in output")
	}
	return res, nil
}
