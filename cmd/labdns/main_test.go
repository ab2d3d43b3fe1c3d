package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ups, err := run("lab.test", dir, "ttl:42", []string{"fixed:1ms", "fault:refused"})
	for _, u := range ups {
		defer u.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	r, _, err := c.Exchange(m, ups[0].UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 42 {
		t.Errorf("upstream 0: %v, want one answer with TTL 42", r)
	}
	if r, _, err = c.Exchange(m, ups[1].UDPAddr()); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("upstream 1: %v %v, want REFUSED", r, err)
	}
	if _, err := run("lab.test", "", "", []string{"bogus:1"}); err == nil {
		t.Error("a bad spec was accepted")
	}
}
