package racetls

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
)

// answerFor returns a correct packed reply to the packed query q.
func answerFor(t *testing.T, q []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		t.Errorf("query: %v", err)
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(m)
	if m.Question[0].Qtype == dns.TypeA {
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: lab.AddrA(m.Question[0].Name)}}
	}
	b, _ := r.Pack()
	return b
}

// badDoH serves DoH over HTTP/2 (net/http with the lab certificate) and misbehaves by
// path: /5xx answers 503 (with a reply), /ctype the right body with text/html, /big a body longer than
// a DNS message, /garbage 200 with bytes that are no DNS reply; the probe (". NS") is
// answered correctly everywhere, so that the connection stays up.
func badDoH(t *testing.T, ls *labSet) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: ls.ca.ServerTLS(lab.DefaultServerName),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q, _ := io.ReadAll(io.LimitReader(r.Body, 65536))
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != dohMime || len(q) < wire.HeaderLen || binary.BigEndian.Uint16(q) != 0 {
				t.Errorf("DoH request: %s %s %q, ID %x; want POST of %s with ID 0", r.Method, r.URL, r.Header.Get("Content-Type"), q[:2], dohMime)
			}
			m := new(dns.Msg)
			if m.Unpack(q) == nil && m.Question[0].Qtype == dns.TypeNS {
				w.Header().Set("Content-Type", dohMime)
				w.Write(answerFor(t, q))
				return
			}
			switch r.URL.Path {
			case "/5xx": // with the DoH media type and a reply: only the status says it failed
				w.Header().Set("Content-Type", dohMime)
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write(answerFor(t, q))
			case "/ctype":
				w.Header().Set("Content-Type", "text/html")
				w.Write(answerFor(t, q))
			case "/big":
				w.Header().Set("Content-Type", dohMime)
				b := answerFor(t, q)
				w.Write(append(b, make([]byte, 0x10000)...))
			case "/garbage":
				w.Header().Set("Content-Type", dohMime)
				w.Write([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1})
			default:
				w.Header().Set("Content-Type", dohMime)
				w.Write(answerFor(t, q))
			}
		}),
	}
	srv.TLSConfig.NextProtos = []string{"h2"}
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// TestDoHBadUpstream: a DoH upstream that answers 5xx, the wrong content type, an
// oversized body or garbage never wins; each query fails on its own stream (the
// connection stays) and counts once, and the other upstream answers.
func TestDoHBadUpstream(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	addr := badDoH(t, ls)
	for _, c := range []struct{ path, kind string }{{"/5xx", kindHTTP}, {"/ctype", kindHTTP}, {"/big", kindHTTP}, {"/garbage", kindGarbage}, {"/dns-query", ""}} {
		t.Run(c.path, func(t *testing.T) {
			rt := startRT(t, fmt.Sprintf("racetls . https://%s%s tls://%s {\n tls %s\n tls_servername %s\n race all\n conns 1\n}",
				addr, c.path, ls.ups[0].TLSAddr(), ls.caPEM, lab.DefaultServerName))
			bad := rt.upstreams[0]
			for i := range 5 {
				mustNoError(t, rt, fmt.Sprintf("b%d.example.com.", i))
			}
			waitFor(t, "the DoH replies", func() bool {
				return bad.tally.queries.Load() == 5 && bad.tally.errors.Load()+bad.tally.late.Load()+bad.tally.wins.Load() >= 5
			})
			if c.kind == "" {
				return
			}
			if w := bad.tally.wins.Load(); w != 0 {
				t.Errorf("the bad DoH upstream won %d races", w)
			}
			if n := testutil.ToFloat64(errorCount.WithLabelValues(rt.server, bad.name, "https", c.kind)); n != 5 {
				t.Errorf("errors_total{kind=%q} = %v, want 5", c.kind, n)
			}
			if h := bad.tally.full.Load() + bad.tally.resumed.Load(); h != 1 {
				t.Errorf("%d handshakes: a failed query must not cost the connection", h)
			}
		})
	}
}

// resetDoQ is a DoQ server (quic-go, ALPN doq) that answers the probe and resets every
// other query's stream after half a reply (RFC 9250 §4.3: DOQ_INTERNAL_ERROR).
func resetDoQ(t *testing.T, ls *labSet) string {
	tc := ls.ca.ServerTLS(lab.DefaultServerName)
	tc.NextProtos = []string{"doq"}
	ln, err := quic.ListenAddr("127.0.0.1:0", tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			qc, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer qc.CloseWithError(0, "")
				for {
					st, err := qc.AcceptStream(ctx)
					if err != nil {
						return
					}
					q, err := wire.ReadFrame(st, nil)
					if err != nil {
						st.CancelWrite(quic.StreamErrorCode(doqProtocolError))
						continue
					}
					r, _ := wire.AppendFrame(nil, answerFor(t, q))
					m := new(dns.Msg)
					if m.Unpack(q) == nil && m.Question[0].Qtype == dns.TypeNS {
						st.Write(r)
						st.Close()
						continue
					}
					st.Write(r[:len(r)/2])
					st.CancelWrite(quic.StreamErrorCode(doqInternalError))
				}
			}()
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestDoQStreamReset: a QUIC stream reset in the middle of a reply fails that query
// alone: it never wins, counts as reset, the connection stays, and the other upstream
// answers.
func TestDoQStreamReset(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	addr := resetDoQ(t, ls)
	rt := startRT(t, fmt.Sprintf("racetls . quic://%s tls://%s {\n tls %s\n tls_servername %s\n race all\n conns 1\n}",
		addr, ls.ups[0].TLSAddr(), ls.caPEM, lab.DefaultServerName))
	bad := rt.upstreams[0]
	for i := range 5 {
		mustNoError(t, rt, fmt.Sprintf("q%d.example.com.", i))
	}
	waitFor(t, "the resets", func() bool {
		return testutil.ToFloat64(errorCount.WithLabelValues(rt.server, bad.name, "quic", kindReset)) == 5
	})
	if w := bad.tally.wins.Load(); w != 0 {
		t.Errorf("the resetting DoQ upstream won %d races", w)
	}
	if d := bad.dials.Load(); d != 1 {
		t.Errorf("%d QUIC connections: a reset stream must not cost the connection", d)
	}
}
