package wire

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

func pack(t testing.TB, name string, qtype uint16, resp bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = resp
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSameQuestion(t *testing.T) {
	q := pack(t, "wWw.ExAmple.com.", dns.TypeA, false)
	ql, err := QuestionLen(q)
	if err != nil || ql != len("www.example.com.")+1+4 {
		t.Fatalf("QuestionLen %d %v", ql, err)
	}
	qq := q[HeaderLen : HeaderLen+ql]
	for i, tc := range []struct {
		reply []byte
		want  bool
	}{
		{pack(t, "www.example.com.", dns.TypeA, true), true},
		{pack(t, "WWW.EXAMPLE.COM.", dns.TypeA, true), true},
		{pack(t, "www.example.org.", dns.TypeA, true), false},
		{pack(t, "www.example.com.", dns.TypeAAAA, true), false},
		{pack(t, "wwwexample.com.", dns.TypeA, true), false},
		{pack(t, "www.example.com.", dns.TypeA, true)[:20], false},
		// Type 65 and 97 differ only by the ASCII case bit: types compare exactly.
		{pack(t, "www.example.com.", 97, true), false},
	} {
		if got := SameQuestion(qq, tc.reply); got != tc.want {
			t.Errorf("%d: got %v want %v", i, got, tc.want)
		}
	}
	// Label bytes fold only A-Z: '[' (0x5b) is not '{' (0x7b).
	if SameQuestion(pack(t, "a[.", dns.TypeA, false)[HeaderLen:], pack(t, "a{.", dns.TypeA, true)) {
		t.Error("a[. matched a{.")
	}
	// Label lengths compare exactly: "example" (7) against the same bytes read as 8.
	longer := pack(t, "www.example.com.", dns.TypeA, true)
	longer[HeaderLen+4] = 8
	if SameQuestion(qq, longer) {
		t.Error("a reply with another label length matched")
	}
	two := pack(t, "www.example.com.", dns.TypeA, true)
	two[5] = 2
	if SameQuestion(qq, two) {
		t.Error("a reply with two questions matched")
	}
	for _, bad := range []struct {
		msg []byte
		err error
	}{
		{nil, ErrShort},
		{make([]byte, 11), ErrShort},
		{[]byte{0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, ErrCount},
		{[]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a'}, ErrShort},
		{[]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, ErrShort},
		{[]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, ErrPointer},
	} {
		if _, err := QuestionLen(bad.msg); !errors.Is(err, bad.err) {
			t.Errorf("QuestionLen(%v) = %v, want %v", bad.msg, err, bad.err)
		}
	}
}

func TestRcode(t *testing.T) {
	var b []byte
	// NOTZONE (10) uses the RCODE's top bit; RA, AD and CD share its byte.
	for _, rcode := range []int{dns.RcodeNameError, dns.RcodeNotZone} {
		m := new(dns.Msg)
		m.SetRcode(new(dns.Msg).SetQuestion("x.", dns.TypeA), rcode)
		m.RecursionAvailable, m.AuthenticatedData, m.CheckingDisabled = true, true, true
		var err error
		if b, err = m.Pack(); err != nil {
			t.Fatal(err)
		}
		if got := Rcode(b); got != rcode {
			t.Errorf("Rcode = %d, want %d", got, rcode)
		}
	}
	if got := Rcode(b[:11]); got != -1 {
		t.Errorf("Rcode of 11 bytes = %d, want -1", got)
	}
}

// FuzzSameQuestion checks that SameQuestion never panics and that a query's question
// always matches the same bytes with the case of its letters changed.
func FuzzSameQuestion(f *testing.F) {
	b := pack(f, "example.com.", dns.TypeA, false)
	f.Add(b, b)
	f.Fuzz(func(t *testing.T, q, r []byte) {
		SameQuestion(q, r)
		ql, err := QuestionLen(q)
		if err != nil {
			return
		}
		qq := q[HeaderLen : HeaderLen+ql]
		SameQuestion(qq, r)
		upper := append([]byte(nil), q...)
		for i := HeaderLen; i < HeaderLen+ql-4; i++ {
			if c := upper[i]; c >= 'a' && c <= 'z' {
				upper[i] = c - 'a' + 'A'
			}
		}
		if !SameQuestion(qq, upper) {
			t.Fatalf("question %x does not match itself in upper case", qq)
		}
	})
}
