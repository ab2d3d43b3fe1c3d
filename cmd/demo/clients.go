package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// shimEnv is the environment of a program resolving through the shim.
func (d *demo) shimEnv() []string {
	return append(os.Environ(), "LD_PRELOAD="+d.lib, "DNSCACHE_SOCKET="+d.srv.Sock)
}

// runTool runs a tool under the shim and returns its trimmed output and wall time.
func (d *demo) runTool(name string, args ...string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = d.shimEnv()
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	el := time.Since(t0)
	if err != nil {
		return strings.TrimSpace(string(out)), el, fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), el, nil
}

func (d *demo) shimLookups() {
	web := "loop-web.demo.example"
	py := `import socket,sys; print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 443)})))`
	// IPv4 only, with the canonical name (the CNAME chain's target). Not `getent ahostsv4`:
	// getent sets AI_ADDRCONFIG, and glibc then refuses AF_INET outright (before any lookup,
	// /etc/hosts included) in a network namespace that has no IPv4 address but loopback's.
	py4 := `import socket,sys; r = socket.getaddrinfo(sys.argv[1], 443, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_CANONNAME); print(r[0][3], " ".join(sorted({a[4][0] for a in r})))`
	steps := []struct {
		client, name string
		args         []string
	}{
		{"getent ahosts", "www.example.com", []string{"getent", "ahosts", "www.example.com"}},
		{"getent ahosts (again)", "www.example.com", []string{"getent", "ahosts", "www.example.com"}},
		{"python3 getaddrinfo v4", "cname2-api.example.org", []string{"python3", "-c", py4, "cname2-api.example.org"}},
		{"python3 getaddrinfo", "api.example.net", []string{"python3", "-c", py, "api.example.net"}},
		{"python3 getaddrinfo", "nx-missing.example.com", []string{"python3", "-c", py, "nx-missing.example.com"}},
		{"curl", web, []string{"curl", "-sS", "--max-time", "5", "http://" + web + ":" + d.web + "/"}},
	}
	rows := [][]string{{"client", "name", "took", "answered from", "answer"}}
	for _, s := range steps {
		before := d.snapshot()
		out, el, err := d.runTool(s.args[0], s.args[1:]...)
		from := d.source(before)
		answer := firstLine(out)
		switch {
		case strings.HasPrefix(s.name, "nx-"):
			// getaddrinfo fails: NXDOMAIN through the shim is a definite "not found".
			if err == nil || !strings.Contains(out, "gaierror") {
				d.fail("%s %s: want a lookup failure, got %q", s.client, s.name, out)
			}
			answer = "not found (NXDOMAIN), as expected"
		case err != nil:
			d.fail("%s %s: %v", s.client, s.name, err)
			answer = "error"
		case s.client == "curl" && !strings.Contains(out, "hello from the dnscache demo"):
			d.fail("curl: unexpected page %q", out)
		}
		rows = append(rows, []string{s.client, s.name, fmtDur(el), from, answer})
	}
	printRows(rows)
	fmt.Println("  (took: the whole program's run time, start-up included. answered from: warmcache hits and")
	fmt.Println("   racetls wins counted in /metrics around the lookup; getaddrinfo asks A and AAAA)")
}

var kdigTime = regexp.MustCompile(`in ([0-9.]+) ms`)

func (d *demo) kdigLookups() {
	names := []struct{ name, qtype string }{
		{"www.example.com", "A"},     // asked through the socket above: the same cache
		{"mail.example.org", "AAAA"}, // a miss: raced over the three upstreams
		{"mail.example.org", "AAAA"}, // now a hit
		{"nx-gone.example.com", "A"}, // NXDOMAIN
	}
	if !d.quick {
		names = append(names, struct{ name, qtype string }{"big-list.example.com", "A"})
	}
	rows := [][]string{{"query", "rcode", "took", "answered from", "answer"}}
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		before := d.snapshot()
		out, err := exec.CommandContext(ctx, "kdig", "@127.0.0.1", "-p", strconv.Itoa(d.srv.Port), n.name, n.qtype).CombinedOutput()
		cancel()
		from := d.source(before)
		if err != nil {
			d.fail("kdig %s %s: %v: %s", n.name, n.qtype, err, out)
			continue
		}
		rcode, answers := parseKdig(string(out))
		took := "-"
		if m := kdigTime.FindStringSubmatch(string(out)); m != nil {
			took = m[1] + " ms"
		}
		answer := strings.Join(answers, " ")
		if len(answers) > 3 {
			answer = strings.Join(answers[:3], " ") + fmt.Sprintf(" (+%d more)", len(answers)-3)
		}
		rows = append(rows, []string{n.name + " " + n.qtype, rcode, took, from, answer})
		want := "NOERROR"
		if strings.HasPrefix(n.name, "nx-") {
			want = "NXDOMAIN"
		}
		if rcode != want {
			d.fail("kdig %s: rcode %s, want %s", n.name, rcode, want)
		}
	}
	printRows(rows)
}

// parseKdig returns the rcode ("status: X") and the answer section's record data.
func parseKdig(out string) (string, []string) {
	rcode := "?"
	if i := strings.Index(out, "status: "); i >= 0 {
		rcode = strings.TrimRight(strings.Fields(out[i+8:])[0], ";,")
	}
	var answers []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, ";; ANSWER SECTION"):
			in = true
		case strings.HasPrefix(l, ";;"):
			in = false
		case in && strings.TrimSpace(l) != "":
			f := strings.Fields(l)
			answers = append(answers, f[len(f)-1])
		}
	}
	return rcode, answers
}

// burst sends 2000 pipelined queries over the socket with the load generator.
func (d *demo) burst() {
	res, err := kit.Load{
		Network: "unix", Addr: d.srv.Sock, Conns: 2, InFlight: 32, Count: 2000, Duration: 20 * time.Second,
		Next: func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("burst%d.example.com", i%200)} },
	}.Run(context.Background())
	if err != nil {
		d.fail("burst: %v", err)
		return
	}
	printRows([][]string{{"answered", "timeouts", "queries/s", "p50", "p99"},
		{strconv.FormatInt(res.Answered, 10), strconv.FormatInt(res.Timeouts, 10), fmt.Sprintf("%.0f", res.QPS()),
			fmtDur(res.Latency.Quantile(0.5)), fmtDur(res.Latency.Quantile(0.99))}})
	if res.Answered != 2000 {
		d.fail("burst: %s", res)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.Join(strings.Fields(l), " ")
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}
