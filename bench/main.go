// Command dnsbench is the benchmark suite behind `make bench`: it runs the stock CoreDNS chain
// (cache + forward) and dnscache's (warmcache + racetls, unixsock) side by side in one
// bin/coredns against lab DNS-over-TLS upstreams on loopback, drives them with dnsperf and
// the test/load generator, and writes a table, a Markdown report and plots under bench/out.
//
// The server under test runs on one core (taskset) and everything else (load generators,
// lab upstreams, this program) on the other. Figures are noisy; only ratios taken within
// one run are comparable.
//
//	dnsbench [-quick] [-out bench/out] [-coredns bin/coredns] [-only hit,miss,...]
//	dnsbench floor -addr 127.0.0.1:PORT   (the floor responder, started by the suite)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// suite is one run of the benchmark suite.
type suite struct {
	quick      bool
	out        string
	coredns    string
	repo       string
	serverCPU  string // taskset list for servers, "" to not pin
	clientCPU  string // taskset list for dnsperf
	plugins    map[string]bool
	ca         *lab.CA
	caFile     string
	serverName string
	rep        *report
	only       map[string]bool
	peers      map[string]bool // the peers group's cases to run, by short name; nil: all
	rounds     int             // the peers group's rounds; 0: its default
}

// group is one measurement group of the suite.
type group struct {
	name string
	run  func(context.Context, *suite) error
}

var groups = []group{
	{"hit", runHit},
	{"peers", runPeers},
	{"miss", runMiss},
	{"transport", runTransport},
	{"link", runLink},
	{"warm", runWarm},
	{"shim", runShim},
	{"mem", runMem},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	s := &suite{}
	var only string
	flag.BoolVar(&s.quick, "quick", os.Getenv("BENCH_QUICK") == "1", "short runs (BENCH_QUICK=1)")
	flag.StringVar(&s.out, "out", "bench/out", "output directory")
	flag.StringVar(&s.coredns, "coredns", "bin/coredns", "CoreDNS binary under test")
	flag.StringVar(&s.serverCPU, "server-cpu", "0", "taskset CPU list for the servers under test (empty: no pinning)")
	flag.StringVar(&s.clientCPU, "client-cpu", "1", "taskset CPU list for dnsperf (empty: no pinning)")
	flag.StringVar(&only, "only", "", "comma-separated groups to run: hit,peers,miss,transport,link,warm,shim,mem (default all)")
	var peers string
	flag.StringVar(&peers, "peers", "", "comma-separated cases of the peers group to run: cache,warmcache,front door,unbound,dnsdist,kresd (default all)")
	flag.IntVar(&s.rounds, "rounds", 0, "rounds of the peers group (default 3)")
	flag.Parse()
	if peers != "" {
		s.peers = map[string]bool{}
		for _, p := range strings.Split(peers, ",") {
			s.peers[strings.TrimSpace(p)] = true
		}
	}
	if only != "" {
		s.only = map[string]bool{}
		for _, g := range strings.Split(only, ",") {
			s.only[strings.TrimSpace(g)] = true
		}
	}
	if err := s.main(); err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func (s *suite) main() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	if s.repo, err = os.Getwd(); err != nil {
		return err
	}
	if s.coredns, err = filepath.Abs(s.coredns); err != nil {
		return err
	}
	if _, err := os.Stat(s.coredns); err != nil {
		return fmt.Errorf("%w (run `make build`)", err)
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	if s.plugins, err = listPlugins(s.coredns); err != nil {
		return err
	}
	s.serverName = lab.DefaultServerName
	if s.ca, err = lab.NewCA(s.serverName); err != nil {
		return err
	}
	caDir, err := os.MkdirTemp("", "dnsbench-ca-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(caDir)
	if err := s.ca.WriteFiles(caDir); err != nil {
		return err
	}
	s.caFile = filepath.Join(caDir, lab.CAFile)

	s.rep = newReport(s)
	s.rep.printHeader(os.Stdout)
	start := time.Now()
	var failed []string
	for _, g := range groups {
		if s.only != nil && !s.only[g.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		fmt.Printf("\n== %s\n", g.name)
		if err := g.run(ctx, s); err != nil {
			failed = append(failed, g.name)
			s.rep.errorf("%s: %v", g.name, err)
			fmt.Printf("   error: %v\n", err)
		}
		fmt.Printf("   (%s took %v; load average %s)\n", g.name, time.Since(t0).Round(time.Second), loadavg())
	}
	s.rep.elapsed = time.Since(start)
	s.rep.endLoad = loadavg()
	if err := s.rep.write(s.out); err != nil {
		return err
	}
	s.rep.printSummary(os.Stdout)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(failed) > 0 {
		return fmt.Errorf("groups failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// listPlugins returns the plugins compiled into the binary (`coredns -plugins`).
func listPlugins(bin string) (map[string]bool, error) {
	out, err := exec.Command(bin, "-plugins").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -plugins: %w", bin, err)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		// Plain names in CoreDNS 1.15 ("cache"); "dns.cache" in older releases.
		p := strings.TrimPrefix(strings.TrimSpace(l), "dns.")
		if p != "" && !strings.HasSuffix(p, ":") {
			m[p] = true
		}
	}
	return m, nil
}

// has reports whether every named plugin is compiled in; missing returns the report text for
// a case whose component has not landed.
func (s *suite) has(plugins ...string) bool {
	for _, p := range plugins {
		if !s.plugins[p] {
			return false
		}
	}
	return true
}

func (s *suite) missing(plugins ...string) string {
	var m []string
	for _, p := range plugins {
		if !s.plugins[p] {
			m = append(m, p)
		}
	}
	return "n/a (component missing: " + strings.Join(m, ", ") + ")"
}

// pick returns quick in quick mode, full otherwise.
func pick[T any](s *suite, quick, full T) T {
	if s.quick {
		return quick
	}
	return full
}
