package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// shimTargets are issue 13's goals for group 5, on the glibc rows: p50 ratios per case, and the
// p99 ratio of every case.
var shimTargets = []struct{ name, c, goal string }{
	{"shim absolute name p50 vs glibc", "absolute", "≤ 0.70×"},
	{"shim short cluster name p50 vs glibc", "short", "≤ 0.70×"},
	{"shim external name (ndots:5, 3 search domains) p50 vs glibc", "external", "≤ 0.30×"},
}

const shimP99Target = "shim p99 vs glibc, every case"

// runShim measures getaddrinfo(AF_UNSPEC) through the preload shim over the unixsock socket
// against glibc's resolver over UDP to the same bin/coredns, with the preload's own bench
// (preload/bench/run.sh -s SOCKET -u ADDR, which runs preload/build/gai_bench): an absolute
// name, a short cluster name and an external name expanded through 3 search domains under
// ndots:5, all cache hits; and the same for libdnscache-musl.so against musl's resolver. musl's
// resolver asks port 53 of resolv.conf's nameservers only, so (as root) the server listens on
// port 53 of a random 127/8 address and the script runs in a private mount namespace whose
// /etc/resolv.conf names it.
func runShim(ctx context.Context, s *suite) error {
	pre := filepath.Join(s.repo, "preload")
	lib := filepath.Join(pre, "build/libnss_dnscache.so.2")
	gai := filepath.Join(pre, "build/gai_bench")
	script := filepath.Join(pre, "bench/run.sh")
	zone := filepath.Join(pre, "bench/cluster.local.db")
	n, rounds := pick(s, 1000, 5000), pick(s, 10, 20)
	t := s.rep.table("5. Shim lookup latency: getaddrinfo(AF_UNSPEC), cache hits, same server",
		fmt.Sprintf("preload/bench/run.sh (gai_bench) against bin/coredns (unixsock, warmcache, the cluster zone, racetls to a lab upstream): "+
			"the libc's resolver over UDP (glibc's dns module; musl rows: musl's own) vs the shim over the socket "+
			"(LD_PRELOAD=libnss_dnscache.so.2; musl rows: libdnscache-musl.so); search list of 3 domains, ndots:5. "+
			"external: www.example.com, 3 NXDOMAIN candidates then the name; short: kubernetes, the first candidate answers. "+
			"%d lookups per case and client in %d rounds, the two taking turns (order alternating), samples pooled; "+
			"client on CPU %s, server on CPU %s. CPU: the client's user+system time per lookup; sleeps: its voluntary "+
			"context switches per lookup (waits for a reply); load: 1-minute load average before-after the case.",
			n, rounds, orDash(s.clientCPU), orDash(s.serverCPU)),
		"case", "resolver p50", "resolver p99", "shim p50", "shim p99", "shim/resolver p50", "shim/resolver p99",
		"CPU resolver/shim", "sleeps resolver/shim", "load")
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
		t.add("all", reason, "", "", "", "", "", "", "", "")
		for _, tg := range shimTargets {
			s.rep.target(tg.name, tg.goal, "-", reason)
		}
		s.rep.target(shimP99Target, "≤ 1.00×", "-", reason)
		fmt.Println("  ", reason)
		return nil
	}
	musl := shimMusl(pre)

	labs, err := s.startLabs(lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: time.Millisecond}, UDP: "-", TCP: "-"})
	if err != nil {
		return err
	}
	defer labs.close()
	ch := chain{unixsock: true, cache: "warmcache", upstream: s.oursUpstream(), extra: []string{"file " + zone + " cluster.local"}}
	srv, udp, err := s.startShimServer(ch, labs, musl == "")
	if err != nil {
		return err
	}
	defer srv.stop()

	args := []string{"sh", script, "-s", srv.Sock, "-u", udp}
	if musl == "" {
		resolv, err := shimResolvConf(udp)
		if err != nil {
			return err
		}
		defer os.Remove(resolv)
		// A private mount namespace whose /etc/resolv.conf names the server: musl reads nothing else.
		args = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv}, args...)
	}
	if s.clientCPU != "" {
		args = append([]string{"taskset", "-c", s.clientCPU}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "BENCH_N="+strconv.Itoa(n), "BENCH_ROUNDS="+strconv.Itoa(rounds), "BENCH_LIB="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("preload/bench/run.sh: %w\n%s", err, out)
	}
	res := parseShim(string(out))
	cases := []string{"absolute", "short", "external"}
	if musl == "" {
		cases = append(cases, "musl-absolute", "musl-short", "musl-external")
	}
	for _, c := range cases {
		r := res[c]
		if r == nil {
			return fmt.Errorf("preload/bench/run.sh: no %s case in:\n%s", c, out)
		}
		t.add(strings.ReplaceAll(c, "-", " ")+" ("+r["name"]+")", r["glibc_p50_us"]+"µs", r["glibc_p99_us"]+"µs",
			r["shim_p50_us"]+"µs", r["shim_p99_us"]+"µs", r["ratio_p50"]+"×", r["ratio_p99"]+"×",
			r["glibc_cpu_us"]+" / "+r["shim_cpu_us"]+"µs", r["glibc_sleeps"]+" / "+r["shim_sleeps"], r["load"])
		fmt.Printf("   %-13s resolver p50 %sµs p99 %sµs, shim p50 %sµs p99 %sµs (load %s)\n", c,
			r["glibc_p50_us"], r["glibc_p99_us"], r["shim_p50_us"], r["shim_p99_us"], r["load"])
	}
	if musl != "" {
		t.add("musl", musl, "", "", "", "", "", "", "", "")
	}
	for _, tg := range shimTargets {
		r := res[tg.c]
		ratio, _ := strconv.ParseFloat(r["ratio_p50"], 64)
		limit, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(tg.goal, "≤ "), "×"), 64)
		s.rep.ratioTarget(tg.name, tg.goal, ratio, limit, true, r["shim_p50_us"]+"µs vs "+r["glibc_p50_us"]+"µs, load "+r["load"])
	}
	worst, detail := 0.0, []string{}
	for _, c := range cases[:3] {
		ratio, _ := strconv.ParseFloat(res[c]["ratio_p99"], 64)
		worst = max(worst, ratio)
		detail = append(detail, c+" "+res[c]["ratio_p99"]+"×")
	}
	s.rep.ratioTarget(shimP99Target, "≤ 1.00×", worst, 1, true, "worst; "+strings.Join(detail, ", "))
	if !s.quick {
		s.profileShim(ctx, srv, gai, lib)
	}
	return srv.stop()
}

// startShimServer starts group 5's server. With port53 (root, for the musl rows) its block
// listens on port 53 of a random 127/8 address (a few tries: another may hold one); it returns
// the server and its UDP address.
func (s *suite) startShimServer(ch chain, labs labSet, port53 bool) (*server, string, error) {
	if !port53 {
		srv, err := s.startCoreDNS("shim", ch.corefile(), labs.tls(), nil)
		if err != nil {
			return nil, "", err
		}
		return srv, srv.DNS, nil
	}
	const head = ".:{{.Port}} {\n    bind 127.0.0.1\n"
	var err error
	for range 3 {
		ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(254))
		corefile := strings.Replace(ch.corefile(), head, ".:53 {\n    bind "+ip+"\n", 1)
		var srv *server
		if srv, err = s.startCoreDNS("shim", corefile, labs.tls(), nil); err == nil {
			return srv, ip + ":53", nil
		}
	}
	return nil, "", err
}

// shimMusl returns "" when the musl rows can run (root for port 53 and a private mount
// namespace, unshare, the musl library and musl-linked gai_bench, built here if missing), else
// why not.
func shimMusl(pre string) string {
	if os.Geteuid() != 0 {
		return "n/a (needs root: port 53 and a private /etc/resolv.conf for musl's resolver)"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return "n/a (unshare missing)"
	}
	if out, err := exec.Command("make", "-s", "-C", pre, "build/libdnscache-musl.so", "build/musl-gai_bench").CombinedOutput(); err != nil {
		return "n/a (component missing: musl build: " + strings.TrimSpace(string(out)) + ")"
	}
	return ""
}

// shimResolvConf writes the resolv.conf of the musl rows: the server at udp, the search list
// and options of preload/bench/run.sh.
func shimResolvConf(udp string) (string, error) {
	f, err := os.CreateTemp("", "dnsbench-resolv-")
	if err != nil {
		return "", err
	}
	host, _, _ := strings.Cut(udp, ":")
	_, err = fmt.Fprintf(f, "nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n", host)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// profileShim profiles the server while the shim resolves the external name in a loop.
func (s *suite) profileShim(ctx context.Context, srv *server, gai, lib string) {
	err := s.profileDuring(srv, "shim-external", "the server under the shim's search-expanded lookups (one kept connection)", 2*time.Second, func() error {
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
