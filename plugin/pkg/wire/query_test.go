package wire

import (
	"testing"

	"github.com/miekg/dns"
)

func TestParseQuery(t *testing.T) {
	pack := func(edit func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("Www.Example.ORG.", dns.TypeAAAA)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q, err := ParseQuery(pack(func(m *dns.Msg) { m.SetEdns0(1400, true); m.CheckingDisabled = true }))
	if err != nil {
		t.Fatal(err)
	}
	if !q.Plain || !q.EDNS || !q.DO || q.UDPSize != 1400 || !q.CD || !q.RD || q.Qtype != dns.TypeAAAA || q.Qclass != dns.ClassINET {
		t.Errorf("parsed %+v", q)
	}
	b := pack(nil)
	q, _ = ParseQuery(b)
	if got := string(q.AppendName(nil, b)); got != "Www.Example.ORG." {
		t.Errorf("name %q", got)
	}
	rejects := map[string][]byte{
		"response":    pack(func(m *dns.Msg) { m.Response = true }),
		"notify":      pack(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		"tc":          pack(func(m *dns.Msg) { m.Truncated = true }),
		"answer":      pack(func(m *dns.Msg) { m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: ".", Rrtype: 1, Class: 1}}} }),
		"version 1":   pack(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }),
		"option":      pack(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: 3}} }),
		"two records": pack(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) }),
		"short":       b[:20],
		"trailing":    append(append([]byte(nil), b...), 0),
		"rcode":       pack(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }),
		"ext rcode":   pack(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Rcode = dns.RcodeBadVers }),
		"no question": pack(func(m *dns.Msg) { m.Question = nil }),
		"not OPT": pack(func(m *dns.Msg) {
			m.Extra = []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeA, Class: 1}}}
		}),
		"opt trailing": append(pack(func(m *dns.Msg) { m.SetEdns0(1232, false) }), 0),
		"header":       b[:HeaderLen-1],
		// Counts that promise records the message does not hold.
		"answer count":     setByte(b, 7, 1),
		"authority count":  setByte(b, 9, 1),
		"extra count":      setByte(pack(func(m *dns.Msg) { m.SetEdns0(1232, false) }), 11, 2),
		"question count 0": setByte(b, 5, 0),
		"question count 2": setByte(b, 5, 2),
		// An OPT whose RDLENGTH promises options the message does not hold.
		"opt rdlength": setByte(pack(func(m *dns.Msg) { m.SetEdns0(1232, false) }), len(b)+10, 4),
		// A question name that starts with a pointer, followed by bytes that would read as
		// a 192-byte label.
		"compressed": append(append(append(append([]byte(nil), b[:HeaderLen]...), 0xC0, HeaderLen), make([]byte, 191)...), 0, 0, 1, 0, 1),
	}
	for name, msg := range rejects {
		if _, err := ParseQuery(msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	q, _ = ParseQuery(pack(func(m *dns.Msg) { m.Question[0].Name = `a\.b.example.` }))
	if q.Plain {
		t.Errorf("escaped dot counted as plain")
	}
}

func setByte(b []byte, i int, v byte) []byte {
	b = append([]byte(nil), b...)
	b[i] = v
	return b
}

// FuzzParseQuery: never panics, and an accepted query unpacks with miekg/dns to the same
// fields.
func FuzzParseQuery(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	b, _ := m.Pack()
	f.Add(b)
	m.SetEdns0(1232, true)
	b, _ = m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuery(b)
		if err != nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("accepted what miekg/dns rejects: %v", err)
		}
		if m.Id != q.ID || m.Question[0].Qtype != q.Qtype || m.Question[0].Qclass != q.Qclass || (m.IsEdns0() != nil) != q.EDNS {
			t.Fatalf("fields differ: %+v vs %v", q, m)
		}
		if o := m.IsEdns0(); o != nil && (o.Do() != q.DO || o.UDPSize() != q.UDPSize) {
			t.Fatalf("OPT differs: %+v vs %v", q, o)
		}
		if q.Plain {
			if name := string(q.AppendName(nil, b)); name != m.Question[0].Name {
				t.Fatalf("name %q, miekg %q", name, m.Question[0].Name)
			}
		}
	})
}
