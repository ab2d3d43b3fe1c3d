package racetls

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// TestComposeQuestionless: NSD answers a class it does not serve, and a query with a
// malformed OPT (RFC 6891 §6.1.1), with an error and no question section. forward takes
// that reply as final and answers FORMERR with the client's question (state.Match fails);
// racetls answers the same bytes, over every transport NSD serves, instead of waiting for
// its deadline and answering SERVFAIL.
func TestComposeQuestionless(t *testing.T) {
	nsd, _, dir := startNSD(t)
	tlsOpts := fmt.Sprintf("tls %s\n tls_servername %s", filepath.Join(dir, lab.CAFile), lab.DefaultServerName)
	blocks := map[string]string{
		"forward":           fmt.Sprintf("forward . tls://%s {\n %s\n }", nsd.TLSAddr(), tlsOpts),
		"racetls tls":       fmt.Sprintf("racetls . tls://%s {\n %s\n timeout 1s\n }", nsd.TLSAddr(), tlsOpts),
		"racetls dns":       fmt.Sprintf("racetls . dns://%s {\n timeout 1s\n }", nsd.Addr()),
		"racetls force_tcp": fmt.Sprintf("racetls . dns://%s {\n force_tcp\n timeout 1s\n }", nsd.Addr()),
	}
	addrs := map[string]string{}
	for name, b := range blocks {
		addrs[name] = serve(t, ".:0 {\n "+b+"\n}")
	}

	twoOPT := func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) }
	optInAnswer := func(m *dns.Msg) {
		m.Answer = append(m.Answer, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}})
	}
	for _, c := range []struct {
		name   string
		qclass uint16
		mangle func(*dns.Msg)
	}{
		{"class-hs", dns.ClassHESIOD, nil},
		{"class-none", dns.ClassNONE, nil},
		{"class-42", 42, nil},
		{"two-opt", dns.ClassINET, twoOPT},
		{"opt-in-answer", dns.ClassINET, optInAnswer},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := ""
			for _, fw := range []string{"forward", "racetls tls", "racetls dns", "racetls force_tcp"} {
				m := new(dns.Msg)
				m.SetQuestion("wWw.Ql.TeSt.", dns.TypeA)
				m.Question[0].Qclass = c.qclass
				m.CheckingDisabled = true
				if c.mangle != nil {
					c.mangle(m)
				}
				cl := &dns.Client{Timeout: 5 * time.Second}
				r, _, err := cl.Exchange(m, addrs[fw])
				if err != nil {
					t.Fatalf("%s: %v", fw, err)
				}
				if len(r.Question) != 1 || r.Question[0] != m.Question[0] {
					t.Errorf("%s: question %v, want the client's %v", fw, r.Question, m.Question)
				}
				r.Id = 0
				got := r.String()
				if fw == "forward" {
					want = got
					if r.Rcode != dns.RcodeFormatError {
						t.Fatalf("forward answered\n%s\nwant FORMERR: NSD no longer leaves the question out", got)
					}
					continue
				}
				if got != want {
					t.Errorf("%s answered\n%s\nforward\n%s", fw, got, want)
				}
			}
			if t.Failed() {
				t.Log(strings.TrimSpace(nsd.Log()))
			}
		})
	}
}

// startNSD starts Debian's NSD serving ql.test over plain DNS and DoT, with a certificate
// for lab.DefaultServerName from a CA of its own, whose files are in dir.
func startNSD(t *testing.T) (*kit.NSD, *lab.CA, string) {
	t.Helper()
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := ca.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	nsd := kit.StartNSD(t, kit.NSDConfig{
		Zones: []kit.NSDZone{{Origin: "ql.test.", Data: "@ 3600 IN SOA ns admin 1 3600 600 86400 60\n" +
			"@ 3600 IN NS ns\nns 3600 IN A 192.0.2.1\nwww 3600 IN A 192.0.2.2\n"}},
		TLSCert: filepath.Join(dir, lab.CertFile),
		TLSKey:  filepath.Join(dir, lab.KeyFile),
	})
	return nsd, ca, dir
}
