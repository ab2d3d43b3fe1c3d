package racetls

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	_ "github.com/coredns/coredns/plugin/template"
	"github.com/coredns/coredns/plugin/test"
	_ "github.com/coredns/coredns/plugin/tls" // the server blocks' tls directive
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// coreDNSServers starts CoreDNS's own DoQ (quic://) and DoH (https://) server blocks in
// this process, the code bin/coredns serves them with, each answering every A query with
// coreDNSAnswer (template). It returns their addresses.
func coreDNSServers(t *testing.T, ls *labSet) (doq, doh string) {
	t.Helper()
	dir := filepath.Dir(ls.caPEM)
	qp, hp := freeUDPTCPPort(t), freeUDPTCPPort(t)
	body := fmt.Sprintf("tls %s %s\n template IN A {\n  answer \"{{ .Name }} 60 IN A %s\"\n }\n template IN NS {\n  rcode NOERROR\n }",
		filepath.Join(dir, lab.CertFile), filepath.Join(dir, lab.KeyFile), coreDNSAnswer)
	serve(t, fmt.Sprintf("quic://.:%d {\n %s\n}\nhttps://.:%d {\n %s\n}", qp, body, hp, body))
	return fmt.Sprintf("127.0.0.1:%d", qp), fmt.Sprintf("127.0.0.1:%d", hp)
}

const coreDNSAnswer = "192.0.2.53"

// TestTransportsCoreDNS: quic:// and https:// upstreams answer through CoreDNS's own DoQ
// and DoH servers, over one connection each (many streams), and a reconnect resumes.
func TestTransportsCoreDNS(t *testing.T) {
	ls := newLabs(t)
	doq, doh := coreDNSServers(t, ls)
	for _, up := range []string{"quic://" + doq, "https://" + doh} {
		t.Run(strings.Split(up, ":")[0], func(t *testing.T) {
			rt := startRT(t, fmt.Sprintf("racetls . %s {\n tls %s\n tls_servername %s\n conns 1\n}", up, ls.caPEM, lab.DefaultServerName))
			u := rt.upstreams[0]
			for i := range 20 {
				r, err := query(rt, fmt.Sprintf("t%d.%s.example.com.", i, u.tr.scheme()))
				if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != coreDNSAnswer {
					t.Fatalf("query %d: %v %v, want CoreDNS's template answer", i, r, err)
				}
			}
			if h := u.tally.full.Load() + u.tally.resumed.Load(); h != 1 {
				t.Errorf("%d handshakes for 20 queries on one connection, want 1", h)
			}
			// edns-tcp-keepalive is the client's connection's business: not forwarded (DoQ
			// servers close the connection over it, RFC 9250 §5.5.2).
			m := new(dns.Msg)
			m.SetQuestion("keepalive."+u.tr.scheme()+".example.com.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := rt.ServeDNS(context.Background(), rec, m); err != nil || rec.Msg.Rcode != dns.RcodeSuccess {
				t.Errorf("a query with edns-tcp-keepalive: %v %v", rec.Msg, err)
			}
			if len(m.IsEdns0().Option) != 1 {
				t.Error("the client's message was changed")
			}
			if d := u.dials.Load(); d != 1 {
				t.Errorf("%d connections before the reconnect, want 1", d)
			}
			// A lost connection is replaced by a resumed one.
			c := u.pick()
			c.fail(errClosed, "")
			waitFor(t, "a resumed reconnect", func() bool { return u.tally.resumed.Load() >= 1 && openConns(u) == 1 })
			mustNoError(t, rt, "after-reconnect."+u.tr.scheme()+".example.com.")
			// CoreDNS's DoQ server accepts 0-RTT on the resumed connection (counted), though no
			// query goes out before the handshake completes (doq.go: quic-go races otherwise).
			if u.tr.scheme() == "quic" {
				if e := testutil.ToFloat64(u.ctr.early); e != 1 {
					t.Errorf("0-RTT handshakes: %v, want 1", e)
				}
			} else if u.ctr.early != nil {
				t.Error("an early-data series for a transport without 0-RTT")
			}
			if n := testutil.ToFloat64(queryCount.WithLabelValues(rt.server, u.name, u.tr.scheme())); n != 22 {
				t.Errorf("queries_total{transport=%q} = %v, want 22", u.tr.scheme(), n)
			}
		})
	}
}

// TestTransportsMixed: one racetls races DoT, DoQ, DoH and plain DNS upstreams alike; the
// stats table shows each transport.
func TestTransportsMixed(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	doq, doh := coreDNSServers(t, ls)
	rt := startRT(t, fmt.Sprintf("racetls . tls://%s quic://%s https://%s dns://%s {\n tls %s\n tls_servername %s\n race all\n}",
		ls.ups[0].TLSAddr(), doq, doh, ls.ups[0].UDPAddr(), ls.caPEM, lab.DefaultServerName))
	for i := range 20 {
		mustNoError(t, rt, fmt.Sprintf("mix%d.example.com.", i))
	}
	table := rt.statsTable()
	for _, u := range rt.upstreams {
		if u.tally.queries.Load() != 20 {
			t.Errorf("%s asked %d times, want 20 (race all)", u.name, u.tally.queries.Load())
		}
		if !strings.Contains(table, u.name+" ") || !strings.Contains(table, " "+u.tr.scheme()+" ") {
			t.Errorf("stats table has no line for %s (%s)", u.name, u.tr.scheme())
		}
	}
	t.Logf("\n%s", table)
}

// TestUDPTruncatedRetriesTCP: a reply truncated over UDP is asked again over TCP.
func TestUDPTruncatedRetriesTCP(t *testing.T) {
	var rrs []dns.RR
	for i := range 60 {
		rr, _ := dns.NewRR(fmt.Sprintf("big.example.com. 300 IN A 192.0.2.%d", i+1))
		rrs = append(rrs, rr)
	}
	u := lab.StartTest(t, lab.Config{Records: map[string][]dns.RR{"big.example.com.": rrs}})
	rt := startRT(t, "racetls . dns://"+u.UDPAddr())
	r, err := query(rt, "big.example.com.")
	if err != nil || r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("big answer: %v, %v", r, err)
	}
	if st := u.Stats(); st.QueriesUDP == 0 || st.QueriesTCP == 0 {
		t.Errorf("lab saw %d UDP and %d TCP queries, want both", st.QueriesUDP, st.QueriesTCP)
	}
}

// TestPlainForceTCP: dns:// with force_tcp keeps pipelined TCP connections.
func TestPlainForceTCP(t *testing.T) {
	u := lab.StartTest(t, lab.Config{})
	rt := startRT(t, "racetls . dns://"+u.TCPAddr()+" {\n force_tcp\n conns 1\n}")
	for i := range 10 {
		mustNoError(t, rt, fmt.Sprintf("tcp%d.example.com.", i))
	}
	if st := u.Stats(); st.QueriesUDP != 0 || st.QueriesTCP < 10 || st.Conns != 1 {
		t.Errorf("lab: %+v; want every query over one TCP connection", st)
	}
}
