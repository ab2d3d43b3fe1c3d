package lab

import (
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	var c Config
	err := ParseSpec("tls:8853, udp:-, tcp:127.0.0.2:53,lognormal:8ms:0.5,stall:0.03:300ms,fault:idleclose:0.5:10s,ttl:30,idle:3s,seed:9,name:x.test,unix:/tmp/s", &c)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		TLS: "127.0.0.1:8853", UDP: "-", TCP: "127.0.0.2:53", Unix: "/tmp/s",
		Latency:     Latency{Dist: LogNormal, Median: 8 * time.Millisecond, Sigma: 0.5, StallProb: 0.03, Stall: 300 * time.Millisecond},
		Fault:       Fault{Kind: IdleClose, Prob: 0.5, After: 10 * time.Second},
		TTL:         30,
		IdleTimeout: 3 * time.Second,
		Seed:        9,
		ServerName:  "x.test",
	}
	if c.TLS != want.TLS || c.UDP != want.UDP || c.TCP != want.TCP || c.Unix != want.Unix || c.Latency != want.Latency ||
		c.Fault != want.Fault || c.TTL != want.TTL || c.IdleTimeout != want.IdleTimeout || c.Seed != want.Seed || c.ServerName != want.ServerName {
		t.Errorf("parsed %+v\nwant   %+v", c, want)
	}
	if s := c.Latency.String(); s != "lognormal:8ms:0.5,stall:0.03:300ms" {
		t.Errorf("Latency.String() = %q", s)
	}
	if s := c.Fault.String(); s != "fault:idleclose:0.5:10s" {
		t.Errorf("Fault.String() = %q", s)
	}
	for _, bad := range []string{"bogus:1", "fault:nonsense", "lognormal:8ms", "stall:2:1s", "fixed:-1ms", "ttl:x", "tls:nope", "fault:reset:0.5:1s:x"} {
		if err := ParseSpec(bad, &Config{}); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}
