// Command demo runs the whole dnscache system on loopback, with no internet, and narrates it:
// three lab DNS-over-TLS upstreams with different latencies, bin/coredns with unixsock,
// warmcache and racetls, lookups by getent, python3 and curl through the preload shim
// (LD_PRELOAD, Unix socket) and by kdig over UDP, then the racetls stats table, the cache
// counters and where each answer came from. It stops everything it started and exits
// non-zero if a step failed. `make demo` runs it; DEMO_QUICK=1 (or -quick) is the short
// form that `make test` checks with scripts/demo-check.sh.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// demo is one run.
type demo struct {
	quick   bool
	coredns string
	lib     string
	dir     string
	labs    []*lab.Upstream
	names   []string // the upstreams' names, in order
	srv     *kit.CoreDNS
	web     string // the loopback HTTP server's port
	stops   []func()
	failed  []string
}

func main() {
	d := &demo{}
	flag.BoolVar(&d.quick, "quick", os.Getenv("DEMO_QUICK") == "1", "the short form (DEMO_QUICK=1)")
	flag.StringVar(&d.coredns, "coredns", "bin/coredns", "CoreDNS binary")
	flag.StringVar(&d.lib, "lib", "preload/build/libnss_dnscache.so.2", "the preload shim")
	flag.Parse()
	code := d.run()
	os.Exit(code)
}

func (d *demo) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.failed = append(d.failed, msg)
	fmt.Println("  FAIL", msg)
}

func heading(s string) { fmt.Printf("\n== %s\n", s) }

func (d *demo) run() int {
	start := time.Now()
	var err error
	if d.dir, err = os.MkdirTemp("", "dnscache-demo-"); err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	defer os.RemoveAll(d.dir)
	defer d.stop()
	for _, p := range []*string{&d.coredns, &d.lib} {
		if *p, err = filepath.Abs(*p); err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		if _, err := os.Stat(*p); err != nil {
			fmt.Printf("FAIL %v (run `make build`)\n", err)
			return 1
		}
	}
	mode := "full"
	if d.quick {
		mode = "quick"
	}
	fmt.Printf("dnscache demo (%s): everything on loopback, no internet\n", mode)

	heading("1. Lab upstreams: DNS over TLS, different latencies")
	if err := d.startLabs(); err != nil {
		fmt.Println("  FAIL", err)
		return 1
	}
	heading("2. bin/coredns: unixsock + warmcache + racetls, metrics on")
	if err := d.startServer(); err != nil {
		fmt.Println("  FAIL", err)
		return 1
	}
	d.startWeb()

	heading("3. Lookups through the shim (LD_PRELOAD=libnss_dnscache.so.2, Unix socket)")
	d.shimLookups()
	heading("4. Lookups over UDP (kdig)")
	d.kdigLookups()
	if !d.quick {
		heading("5. A burst of 2000 lookups over the socket (200 names, 10 times each)")
		d.burst()
	}

	heading("racetls stats (the plugin's own table, from the log)")
	d.racetlsTable()
	heading("Cache counters (/metrics)")
	d.cacheCounters()
	heading("Where the answers came from")
	d.sources()

	heading("Stopping")
	n := len(d.labs)
	d.stop()
	fmt.Printf("  stopped coredns, the web server and %d lab upstreams (%v)\n", n, time.Since(start).Round(100*time.Millisecond))
	if len(d.failed) > 0 {
		fmt.Printf("\ndemo: %d step(s) failed\n", len(d.failed))
		return 1
	}
	fmt.Println("\ndemo: ok")
	return 0
}

// startLabs starts three DoT upstreams, fast to slow.
func (d *demo) startLabs() error {
	ca, err := lab.NewCA(lab.DefaultServerName)
	if err != nil {
		return err
	}
	if err := ca.WriteFiles(d.dir); err != nil {
		return err
	}
	specs := []struct {
		name string
		lat  lab.Latency
	}{
		{"fast", lab.Latency{Dist: lab.LogNormal, Median: 5 * time.Millisecond, Sigma: 0.3}},
		{"medium", lab.Latency{Dist: lab.LogNormal, Median: 20 * time.Millisecond, Sigma: 0.3}},
		{"slow", lab.Latency{Dist: lab.LogNormal, Median: 50 * time.Millisecond, Sigma: 0.3, StallProb: 0.05, Stall: 300 * time.Millisecond}},
	}
	rows := [][]string{{"upstream", "DoT address", "latency"}}
	for _, s := range specs {
		u, err := lab.Start(lab.Config{CA: ca, ServerName: lab.DefaultServerName, Latency: s.lat, UDP: "-", TCP: "-"})
		if err != nil {
			return err
		}
		d.labs = append(d.labs, u)
		d.names = append(d.names, s.name)
		lat := fmt.Sprintf("lognormal, median %v", s.lat.Median)
		if s.lat.StallProb > 0 {
			lat += fmt.Sprintf(", stalls %v on %.0f %%", s.lat.Stall, 100*s.lat.StallProb)
		}
		rows = append(rows, []string{s.name, u.TLSAddr(), lat})
	}
	printRows(rows)
	return nil
}

// startWeb serves one page on loopback for curl, reached by a lab loop* name.
func (d *demo) startWeb() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.fail("web server: %v", err)
		return
	}
	_, d.web, _ = net.SplitHostPort(ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the dnscache demo (Host: %s)\n", r.Host)
	})}
	go srv.Serve(ln)
	d.stops = append(d.stops, func() { srv.Close() })
}

func (d *demo) stop() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	d.stops = nil
	if d.srv != nil {
		if err := d.srv.Process.Stop(10 * time.Second); err != nil {
			d.fail("coredns: %v", err)
		}
		d.srv = nil
	}
	for _, u := range d.labs {
		u.Close()
	}
	d.labs = d.labs[:0:0]
}

// printRows prints rows with aligned columns, the first row as the header.
func printRows(rows [][]string) {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for ri, r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		fmt.Println(strings.TrimRight(b.String(), " "))
		if ri == 0 {
			var u strings.Builder
			u.WriteString("  ")
			for i := range r {
				u.WriteString(strings.Repeat("-", widths[i]))
				if i < len(r)-1 {
					u.WriteString("  ")
				}
			}
			fmt.Println(u.String())
		}
	}
}
