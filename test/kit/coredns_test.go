package kit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

// TestServerLifecycle runs bin/coredns with stock plugins, queries it with kdig, dig and the
// Go client, scrapes a metric, reloads it and stops it.
func TestServerLifecycle(t *testing.T) {
	kit.CheckFDs(t)
	const corefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    whoami
}
`
	s := kit.Start(t, corefile)
	if out := s.Kdig(t, "+tcp", "example.org", "A"); !strings.Contains(out, "status: NOERROR") {
		t.Errorf("kdig:\n%s", out)
	}
	if out := s.Dig(t, "example.org", "A"); !strings.Contains(out, "status: NOERROR") {
		t.Errorf("dig:\n%s", out)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeA)
	if r := s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeSuccess || len(r.Extra) == 0 {
		t.Errorf("exchange: %v", r)
	}
	if n := s.Metric(t, "coredns_dns_requests_total", map[string]string{"proto": "udp"}); n < 2 {
		t.Errorf("coredns_dns_requests_total{proto=udp} = %v, want >= 2", n)
	}
	s.Reload(t, corefile+"# reloaded\n")
	if r := s.Exchange(t, m, "tcp"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("exchange after reload: %v", r)
	}
	s.Stop(t)
}

func TestProcessStopReportsPanic(t *testing.T) {
	p, err := kit.StartProcess("sh", t.TempDir(), "sh", "-c", "echo 'panic: boom'; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "panic:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Stop(5 * time.Second); err == nil || !strings.Contains(err.Error(), "panic:") {
		t.Errorf("Stop = %v, want the panic reported", err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Error("not exited after Stop")
	}
}

func TestBufferMax(t *testing.T) {
	b := &kit.Buffer{Max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if b.String() != "abcde" {
		t.Errorf("kept %q, want the first 5 bytes", b.String())
	}
}
