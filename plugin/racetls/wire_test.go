package racetls

import (
	"testing"

	"github.com/miekg/dns"
)

func TestSameQuestion(t *testing.T) {
	pack := func(name string, qtype uint16, resp bool) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response = resp
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	q := pack("wWw.ExAmple.com.", dns.TypeA, false)
	ql, err := questionLen(q)
	if err != nil || ql != len("www.example.com.")+1+4 {
		t.Fatalf("questionLen %d %v", ql, err)
	}
	qq := q[headerLen : headerLen+ql]
	tests := []struct {
		reply []byte
		want  bool
	}{
		{pack("www.example.com.", dns.TypeA, true), true},
		{pack("WWW.EXAMPLE.COM.", dns.TypeA, true), true},
		{pack("www.example.org.", dns.TypeA, true), false},
		{pack("www.example.com.", dns.TypeAAAA, true), false},
		{pack("wwwexample.com.", dns.TypeA, true), false},
		{pack("www.example.com.", dns.TypeA, true)[:20], false},
		// Type 65 and 97 differ only by the ASCII case bit: types compare exactly.
		{pack("www.example.com.", 97, true), false},
	}
	for i, tc := range tests {
		if got := sameQuestion(qq, tc.reply); got != tc.want {
			t.Errorf("%d: got %v want %v", i, got, tc.want)
		}
	}
	q65 := pack("a.", 65, false)
	if sameQuestion(q65[headerLen:], pack("a.", 97, true)) {
		t.Error("type 65 matched type 97")
	}

	for _, bad := range [][]byte{nil, make([]byte, 11), {0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a'}, {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}} {
		if _, err := questionLen(bad); err == nil {
			t.Errorf("questionLen(%v) accepted", bad)
		}
	}
}

func FuzzSameQuestion(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	b, _ := m.Pack()
	f.Add(b, b)
	f.Fuzz(func(t *testing.T, q, r []byte) {
		if ql, err := questionLen(q); err == nil {
			sameQuestion(q[headerLen:headerLen+ql], r)
		}
	})
}
