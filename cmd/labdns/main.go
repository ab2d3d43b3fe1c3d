// Command labdns runs lab upstreams (package test/lab) by hand: DNS over UDP, TCP and TLS on
// loopback with a synthetic zone, latency and faults, until SIGINT or SIGTERM.
//
//	labdns [-ca-dir DIR] [-n N] [-spec ITEMS] [-json] [-stats 10s] [UPSTREAM-SPEC ...]
//
// Each UPSTREAM-SPEC describes one upstream with lab.ParseSpec's comma-separated items, e.g.
//
//	labdns -ca-dir /tmp/lab 'tls:8853,lognormal:8ms:0.5' 'tls:8854,lognormal:20ms:0.8,stall:0.03:300ms' 'fault:garbage:0.1'
//
// Without one, it runs N upstreams. -spec items apply to every upstream first. All upstreams
// share one CA; -ca-dir writes ca.pem, cert.pem and key.pem there.
//
//	labdns metric HOST:PORT NAME [LABEL=VALUE ...]
//
// prints the sum of the samples of metric NAME on http://HOST:PORT/metrics whose labels
// include every LABEL=VALUE (kit.Sum), for the shell tests of the preload shim.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// addrs is what labdns prints per upstream.
type addrs struct {
	Index int    `json:"index"`
	UDP   string `json:"udp"`
	TCP   string `json:"tcp"`
	TLS   string `json:"tls"`
	Unix  string `json:"unix,omitempty"`
	DoH   string `json:"doh,omitempty"`
	DoQ   string `json:"doq,omitempty"`
	Name  string `json:"server_name"`
	Spec  string `json:"spec"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "metric" {
		os.Exit(metric(os.Stdout, os.Args[2:]))
	}
	os.Exit(labdns())
}

// metric prints the sum of one metric's samples (see the package comment).
func metric(w io.Writer, args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: labdns metric HOST:PORT NAME [LABEL=VALUE ...]")
		return 2
	}
	labels := map[string]string{}
	for _, kv := range args[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "labdns metric: %q is not LABEL=VALUE\n", kv)
			return 2
		}
		labels[k] = v
	}
	fams, err := kit.ScrapeAddr(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "labdns metric: %v\n", err)
		return 1
	}
	fmt.Fprintf(w, "%.0f\n", fams.Sum(args[1], labels))
	return 0
}

func labdns() int {
	log.SetFlags(0)
	log.SetPrefix("labdns: ")
	var (
		caDir    = flag.String("ca-dir", "", "write ca.pem, cert.pem and key.pem into this directory")
		n        = flag.Int("n", 1, "number of upstreams when no UPSTREAM-SPEC is given")
		common   = flag.String("spec", "", "items applied to every upstream (see lab.ParseSpec)")
		asJSON   = flag.Bool("json", false, "print one JSON object per upstream")
		interval = flag.Duration("stats", 0, "print counters every interval (0: only at exit)")
		name     = flag.String("name", lab.DefaultServerName, "TLS server name of the certificates")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: labdns [flags] [UPSTREAM-SPEC ...]\n\n"+
			"UPSTREAM-SPEC items: fixed:D lognormal:MEDIAN:SIGMA stall:P:D fault:KIND[:P[:AFTER]]\n"+
			"  ttl:N idle:D seed:N name:NAME udp:ADDR tcp:ADDR tls:ADDR unix:PATH (ADDR: port, host:port or -)\n"+
			"fault kinds: none idleclose reset blackhole garbage wrongid wrongquestion servfail refused\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	specs := flag.Args()
	if len(specs) == 0 {
		for range *n {
			specs = append(specs, "")
		}
	}
	ups, err := run(*name, *caDir, *common, specs)
	defer func() {
		for _, u := range ups {
			u.Close()
		}
	}()
	if err != nil {
		log.Print(err)
		return 1
	}
	for i, u := range ups {
		a := addrs{Index: i, UDP: u.UDPAddr(), TCP: u.TCPAddr(), TLS: u.TLSAddr(), Unix: u.UnixPath(), DoH: u.DoHAddr(), DoQ: u.DoQAddr(), Name: u.ServerName(), Spec: specs[i]}
		if *asJSON {
			b, _ := json.Marshal(a)
			fmt.Println(string(b))
		} else {
			fmt.Printf("upstream %d udp=%s tcp=%s tls=%s%%%s unix=%s spec=%q\n", i, a.UDP, a.TCP, a.TLS, a.Name, a.Unix, a.Spec)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			printStats(ups)
		case <-sig:
			printStats(ups)
			return 0
		}
	}
}

// run starts one upstream per spec, sharing one CA.
func run(name, caDir, common string, specs []string) ([]*lab.Upstream, error) {
	ca, err := lab.NewCA(name)
	if err != nil {
		return nil, err
	}
	if caDir != "" {
		if err := os.MkdirAll(caDir, 0o755); err != nil {
			return nil, err
		}
		if err := ca.WriteFiles(caDir); err != nil {
			return nil, err
		}
	}
	var ups []*lab.Upstream
	for _, s := range specs {
		cfg := lab.Config{CA: ca, ServerName: name}
		if err := lab.ParseSpec(common, &cfg); err != nil {
			return ups, err
		}
		if err := lab.ParseSpec(s, &cfg); err != nil {
			return ups, err
		}
		u, err := lab.Start(cfg)
		if err != nil {
			return ups, fmt.Errorf("upstream %q: %w", s, err)
		}
		ups = append(ups, u)
	}
	return ups, nil
}

func printStats(ups []*lab.Upstream) {
	for i, u := range ups {
		s := u.Stats()
		log.Printf("upstream %d: queries %d (udp %d tcp %d tls %d unix %d) replies %d faults %d conns %d open %d handshakes %d resumed %d",
			i, s.Queries, s.QueriesUDP, s.QueriesTCP, s.QueriesTLS, s.QueriesUnix, s.Replies, s.Faults, s.Conns, s.OpenConns, s.Handshakes, s.Resumed)
	}
}
