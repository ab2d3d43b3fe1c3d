package racetls

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// The servers below are third-party software from Debian, started on loopback in front of
// a lab upstream: every transport is checked against a server no one here wrote.

// checkAnswers sends n queries through racetls with the single upstream up and checks each
// answer against the lab's synthetic zone.
func checkAnswers(t *testing.T, ls *labSet, up string, n int) {
	t.Helper()
	rt := startRT(t, fmt.Sprintf("racetls . %s {\n tls %s\n tls_servername %s\n}", up, ls.caPEM, lab.DefaultServerName))
	for i := range n {
		name := fmt.Sprintf("r%d.%s.example.com.", i, strings.Split(up, ":")[0])
		r, err := query(rt, name)
		if err != nil {
			t.Fatalf("%s via %s: %v\n%s", name, up, err, rt.statsTable())
		}
		if len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(lab.AddrA(name)) {
			t.Fatalf("%s via %s: %v, want the lab's %s", name, up, r.Answer, lab.AddrA(name))
		}
	}
	if u := rt.upstreams[0]; u.tally.wins.Load() != uint64(n) {
		t.Errorf("%s won %d of %d", u.name, u.tally.wins.Load(), n)
	}
}

func TestUnbound(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	ub := lab.StartUnbound(t, lab.UnboundConfig{CA: ls.ca, Upstream: ls.ups[0]})
	for _, up := range []string{"tls://" + ub.TLSAddr(), "dns://" + ub.UDPAddr()} {
		t.Run(strings.Split(up, ":")[0], func(t *testing.T) { checkAnswers(t, ls, up, 10) })
	}
}

func TestKresd(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	dir := filepath.Dir(ls.caPEM)
	dot, doh := freeUDPTCPPort(t), freeUDPTCPPort(t)
	k := kit.StartKresd(t, kit.KresdConfig{
		TLSForward: []string{strings.Replace(ls.ups[0].TLSAddr(), ":", "@", 1)},
		Hostname:   lab.DefaultServerName,
		CAFile:     ls.caPEM,
		Extra: fmt.Sprintf("net.tls(%q, %q)\nnet.listen('127.0.0.1', %d, { kind = 'tls' })\nnet.listen('127.0.0.1', %d, { kind = 'doh2' })",
			filepath.Join(dir, lab.CertFile), filepath.Join(dir, lab.KeyFile), dot, doh),
	})
	for _, up := range []string{fmt.Sprintf("tls://127.0.0.1:%d", dot), fmt.Sprintf("https://127.0.0.1:%d", doh)} {
		t.Run(strings.Split(up, ":")[0], func(t *testing.T) {
			checkAnswers(t, ls, up, 10)
			if t.Failed() {
				t.Log(k.Log())
			}
		})
	}
}

func TestDnsdist(t *testing.T) {
	ls := newLabs(t, lab.Config{})
	dir := filepath.Dir(ls.caPEM)
	d := kit.StartDnsdist(t, kit.DnsdistConfig{
		Backend:    ls.ups[0].UDPAddr(),
		CertFile:   filepath.Join(dir, lab.CertFile),
		KeyFile:    filepath.Join(dir, lab.KeyFile),
		ServerName: lab.DefaultServerName,
	})
	for _, up := range []string{"tls://" + d.DoT, "https://" + d.DoH} {
		t.Run(strings.Split(up, ":")[0], func(t *testing.T) {
			checkAnswers(t, ls, up, 10)
			if t.Failed() {
				t.Log(d.Log())
			}
		})
	}
}
