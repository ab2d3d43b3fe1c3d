package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// runShim measures getaddrinfo(AF_UNSPEC) through the preload shim over the unixsock socket
// against glibc's resolver over UDP to the same bin/coredns, with the preload's own bench
// (preload/bench/run.sh -s SOCKET -u ADDR, which runs preload/build/gai_bench): an absolute
// name, a short cluster name and an external name expanded through 3 search domains under
// ndots:5, all cache hits.
func runShim(ctx context.Context, s *suite) error {
	pre := filepath.Join(s.repo, "preload")
	lib := filepath.Join(pre, "build/libnss_dnscache.so.2")
	gai := filepath.Join(pre, "build/gai_bench")
	script := filepath.Join(pre, "bench/run.sh")
	zone := filepath.Join(pre, "bench/cluster.local.db")
	t := s.rep.table("5. Shim lookup latency: getaddrinfo(AF_UNSPEC), cache hits, same server",
		"preload/bench/run.sh (gai_bench) against bin/coredns (unixsock, warmcache, the cluster zone, racetls to a lab upstream): "+
			"glibc's dns module over UDP vs LD_PRELOAD=libnss_dnscache.so.2 over the socket; search list of 3 domains, ndots:5. "+
			"external: www.example.com, 3 NXDOMAIN candidates then the name; short: kubernetes, the first candidate answers.",
		"case", "name", "candidates", "glibc p50", "glibc p99", "shim p50", "shim p99", "shim/glibc p50")
	reason := ""
	switch {
	case !s.has("unixsock", "warmcache"):
		reason = s.missing("unixsock", "warmcache")
	case !exists(lib):
		reason = "n/a (component missing: preload/build/libnss_dnscache.so.2)"
	case !exists(script) || !exists(zone):
		reason = "n/a (component missing: preload/bench/run.sh, cluster.local.db)"
	}
	if reason == "" && !exists(gai) {
		if out, err := exec.Command("make", "-s", "-C", pre, "build/gai_bench").CombinedOutput(); err != nil {
			reason = "n/a (component missing: preload gai_bench: " + strings.TrimSpace(string(out)) + ")"
		}
	}
	if reason != "" {
		t.add("all", reason, "", "", "", "", "", "")
		s.rep.target("shim external (search-expanded) name p50 vs glibc", "≤ 0.60×", "-", reason)
		s.rep.target("shim absolute name p50 vs glibc", "≤ 1.00×", "-", reason)
		fmt.Println("  ", reason)
		return nil
	}

	labs, err := s.startLabs(lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: time.Millisecond}, UDP: "-", TCP: "-"})
	if err != nil {
		return err
	}
	defer labs.close()
	ch := chain{unixsock: true, cache: "warmcache", upstream: s.oursUpstream(), extra: []string{"file " + zone + " cluster.local"}}
	srv, err := s.startCoreDNS("shim", ch.corefile(), labs.tls(), nil)
	if err != nil {
		return err
	}
	defer srv.stop()

	cmd := exec.CommandContext(ctx, "sh", script, "-s", srv.Sock, "-u", srv.DNS)
	if s.clientCPU != "" {
		cmd = exec.CommandContext(ctx, "taskset", "-c", s.clientCPU, "sh", script, "-s", srv.Sock, "-u", srv.DNS)
	}
	cmd.Env = append(os.Environ(), "BENCH_N="+strconv.Itoa(pick(s, 1000, 5000)), "BENCH_LIB="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("preload/bench/run.sh: %w\n%s", err, out)
	}
	res := parseShim(string(out))
	for _, c := range []string{"absolute", "short", "external"} {
		r := res[c]
		if r == nil {
			return fmt.Errorf("preload/bench/run.sh: no %s case in:\n%s", c, out)
		}
		t.add(c, r["name"], r["candidates"], r["glibc_p50_us"]+"µs", r["glibc_p99_us"]+"µs", r["shim_p50_us"]+"µs", r["shim_p99_us"]+"µs", r["ratio_p50"]+"×")
		fmt.Printf("   %-9s glibc p50 %sµs p99 %sµs, shim p50 %sµs p99 %sµs\n", c, r["glibc_p50_us"], r["glibc_p99_us"], r["shim_p50_us"], r["shim_p99_us"])
	}
	for _, tg := range []struct{ name, c, goal string }{
		{"shim external (search-expanded) name p50 vs glibc", "external", "≤ 0.60×"},
		{"shim absolute name p50 vs glibc", "absolute", "≤ 1.00×"},
	} {
		r := res[tg.c]
		ratio, _ := strconv.ParseFloat(r["ratio_p50"], 64)
		limit := map[string]float64{"≤ 0.60×": 0.6, "≤ 1.00×": 1.0}[tg.goal]
		s.rep.ratioTarget(tg.name, tg.goal, ratio, limit, true, r["shim_p50_us"]+"µs vs "+r["glibc_p50_us"]+"µs")
	}
	if !s.quick {
		s.profileShim(ctx, srv, gai, lib)
	}
	return srv.stop()
}

// profileShim profiles the server while the shim resolves the external name in a loop.
func (s *suite) profileShim(ctx context.Context, srv *server, gai, lib string) {
	err := s.profileDuring(srv, "shim-external", "the server under the shim's search-expanded lookups (a socket connection per lookup, 8 queries each)", 2*time.Second, func() error {
		cmd := exec.CommandContext(ctx, gai, "-n", "8000", "-w", "10", "-l", "shim", "www.example.com")
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "DNSCACHE_SOCKET="+srv.Sock,
			"LOCALDOMAIN=default.svc.cluster.local svc.cluster.local cluster.local", "RES_OPTIONS=ndots:5 timeout:1 attempts:1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("gai_bench: %w: %s", err, out)
		}
		return nil
	})
	if err != nil {
		s.rep.errorf("profile shim-external: %v", err)
	}
}

// parseShim reads preload/bench/run.sh's "preload_bench case=C key=value ..." lines, by case.
func parseShim(out string) map[string]map[string]string {
	res := map[string]map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "preload_bench" {
			continue
		}
		kv := map[string]string{}
		for _, p := range f[1:] {
			if k, v, ok := strings.Cut(p, "="); ok {
				kv[k] = v
			}
		}
		if kv["case"] != "" {
			res[kv["case"]] = kv
		}
	}
	return res
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
