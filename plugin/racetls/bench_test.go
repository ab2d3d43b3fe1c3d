package racetls

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// echoDoT is a DoT responder that answers every query at once with the query
// itself turned into an empty NOERROR reply, reusing its buffers, so that a
// benchmark's allocs/op are the client's. Replies of one connection are
// written in order, which pipelining allows.
type echoDoT struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startEcho(tb testing.TB, ca *lab.CA) *echoDoT {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLS())
	if err != nil {
		tb.Fatal(err)
	}
	e := &echoDoT{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() { defer e.wg.Done(); defer c.Close(); echo(c) }()
		}
	}()
	tb.Cleanup(func() { ln.Close(); e.wg.Wait() })
	return e
}

func echo(c net.Conn) {
	buf := make([]byte, 2+65535)
	for {
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(buf))
		if _, err := io.ReadFull(c, buf[2:2+n]); err != nil {
			return
		}
		buf[2+2] |= 0x80 // QR
		if _, err := c.Write(buf[:2+n]); err != nil {
			return
		}
	}
}

// BenchmarkServeDNS measures the per-query path (pack, ID patch, pipelined
// write, demultiplexed read, winner unpack, client reply) over pipelined
// connections to one upstream.
func BenchmarkServeDNS(b *testing.B) {
	ls := newLabs(b)
	e := startEcho(b, ls.ca)
	rt := startRT(b, fmt.Sprintf("racetls . tls://%s {\n tls %s\n tls_servername %s\n}", e.ln.Addr(), ls.caPEM, lab.DefaultServerName))
	waitFor(b, "connections", func() bool { return openConns(rt.upstreams[0]) == 2 })
	m := new(dns.Msg)
	m.SetQuestion("bench.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &test.ResponseWriter{}
		for pb.Next() {
			rec := dnstest.NewRecorder(w)
			if _, err := rt.ServeDNS(context.Background(), rec, m.Copy()); err != nil || rec.Rcode != dns.RcodeSuccess {
				b.Errorf("rcode %d: %v", rec.Rcode, err)
				return
			}
		}
	})
}

func BenchmarkSameQuestion(b *testing.B) {
	m := new(dns.Msg)
	m.SetQuestion("www.Example.com.", dns.TypeAAAA)
	q, _ := m.Pack()
	m.Response = true
	m.Question[0].Name = "WWW.example.COM."
	r, _ := m.Pack()
	ql, _ := wire.QuestionLen(q)
	b.ReportAllocs()
	for b.Loop() {
		if !wire.SameQuestion(q[wire.HeaderLen:wire.HeaderLen+ql], r) {
			b.Fatal("mismatch")
		}
	}
}
