package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

func packed(t testing.TB, compress bool, edns bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.Example.org.", dns.TypeA)
	m.Response = true
	for _, s := range []string{
		"www.example.org. 300 IN CNAME web.example.org.",
		"web.example.org. 200 IN A 192.0.2.1",
	} {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	soa, _ := dns.NewRR("example.org. 60 IN SOA ns.example.org. host.example.org. 1 2 3 4 30")
	m.Ns = append(m.Ns, soa)
	if edns {
		m.SetEdns0(1232, true)
	}
	m.Compress = compress
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		compress, edns bool
	}{{false, false}, {true, false}, {true, true}, {false, true}} {
		b := packed(t, tc.compress, tc.edns)
		l, err := Walk(b, nil)
		if err != nil {
			t.Fatalf("compress %v edns %v: %v", tc.compress, tc.edns, err)
		}
		if len(l.TTLs) != 3 || l.QEnd != 12+17+4 {
			t.Errorf("layout %+v", l)
		}
		want := []uint32{300, 200, 60}
		for i, o := range l.TTLs {
			if got := binary.BigEndian.Uint32(b[o:]); got != want[i] {
				t.Errorf("TTL %d at %d = %d, want %d", i, o, got, want[i])
			}
		}
		PatchTTLs(b, l.TTLs, 7)
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		for _, rr := range append(m.Answer, m.Ns...) {
			if rr.Header().Ttl != 7 {
				t.Errorf("patched TTL %d in %s", rr.Header().Ttl, rr)
			}
		}
		if o := m.IsEdns0(); tc.edns && (o == nil || !o.Do() || o.UDPSize() != 1232) {
			t.Errorf("OPT damaged by patch: %v", o)
		}
	}
}

func TestWalkRejects(t *testing.T) {
	good := packed(t, true, false)
	loop := append([]byte(nil), good...)
	// Point the answer's owner name at itself.
	l, _ := Walk(good, nil)
	binary.BigEndian.PutUint16(loop[l.QEnd:], 0xC000|uint16(l.QEnd))
	forward := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(forward[l.QEnd:], 0xC000|uint16(len(good)-2))
	header := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(header[l.QEnd:], 0xC000|4)
	twoQ := append([]byte(nil), good...)
	twoQ[5] = 2
	reserved := append([]byte(nil), good...)
	reserved[12] = 0x40
	// A name of 256 bytes: four labels of 63 and the root.
	long := append([]byte(nil), good[:l.QEnd]...)
	long[7], long[8], long[9] = 1, 0, 0 // one answer, no authority
	for range 4 {
		long = append(long, 63)
		long = append(long, make([]byte, 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0)
	tests := map[string]struct {
		msg []byte
		err error
	}{
		"empty":          {nil, ErrShort},
		"header only":    {good[:11], ErrShort},
		"truncated":      {good[:len(good)-1], ErrShort},
		"half a pointer": {loop[:l.QEnd+1], ErrShort},
		"trailing":       {append(append([]byte(nil), good...), 0), ErrTrail},
		"self pointer":   {loop, ErrPointer},
		"forward ptr":    {forward, ErrPointer},
		"header ptr":     {header, ErrPointer},
		"two questions":  {twoQ, ErrCount},
		"reserved label": {reserved, ErrName},
		"name too long":  {long, ErrName},
	}
	for name, tc := range tests {
		if _, err := Walk(tc.msg, nil); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
}

func TestCopyCase(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		want string
	}{
		{"wWw.eXAMPLE.ORG.", true, "wWw.eXAMPLE.ORG."},
		{"WWW.EXAMPLE.ORG", true, "WWW.EXAMPLE.ORG."},
		{"www.example.net.", false, "www.Example.org."},
		{"www.example.org.extra.", false, "www.Example.org."},
		{"www.exampl.org.", false, "www.Example.org."},
		{`www.exa\109ple.org.`, false, "www.Example.org."},
		{"www..example.org.", false, "www.Example.org."},
		{"www-example.org.", false, "www.Example.org."},
	}
	for _, tc := range tests {
		b := packed(t, true, false)
		if ok := EqualName(b, HeaderLen, tc.name); ok != tc.ok {
			t.Errorf("EqualName(%q) = %v", tc.name, ok)
		}
		if ok := CopyCase(b, HeaderLen, tc.name); ok != tc.ok {
			t.Errorf("%q: ok %v", tc.name, ok)
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if m.Question[0].Name != tc.want {
			t.Errorf("%q: question now %q, want %q", tc.name, m.Question[0].Name, tc.want)
		}
	}
	root := []byte{0}
	if !CopyCase(root, 0, ".") || CopyCase(root, 0, "a.") || !EqualName(root, 0, ".") || EqualName(root, 0, "a.") || EqualName([]byte{1, 'a', 0}, 0, ".") {
		t.Errorf("root name")
	}
	// Label bytes fold only A-Z, and a dot or backslash in name is never a label byte.
	for _, tc := range []struct{ wire, name string }{
		{"a[.", "a{."},
		{`a\.b.`, "a.b."},
		{`a\\b.`, `a\b.`},
	} {
		b := pack(t, tc.wire, dns.TypeA, false)
		if EqualName(b, HeaderLen, tc.name) || CopyCase(b, HeaderLen, tc.name) {
			t.Errorf("wire name %s matched %s", tc.wire, tc.name)
		}
	}
}

// FuzzWalk checks that Walk never panics, that the offsets it reports lie inside the
// message, and that it agrees with miekg/dns on the number of records.
func FuzzWalk(f *testing.F) {
	f.Add(packed(f, true, true))
	f.Add(packed(f, false, false))
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Walk(b, nil)
		if err != nil {
			return
		}
		if l.QEnd < HeaderLen+5 || l.QEnd > len(b) {
			t.Fatalf("question end %d of %d", l.QEnd, len(b))
		}
		for _, o := range l.TTLs {
			if int(o) < l.QEnd || int(o)+4 > len(b) {
				t.Fatalf("TTL offset %d outside %d..%d", o, l.QEnd, len(b))
			}
		}
		m := new(dns.Msg)
		if m.Unpack(b) == nil {
			n := len(m.Answer) + len(m.Ns) + len(m.Extra)
			if m.IsEdns0() != nil {
				n--
			}
			if n != len(l.TTLs) {
				t.Fatalf("Walk found %d TTLs, miekg/dns %d records", len(l.TTLs), n)
			}
		}
	})
}

// FuzzPatchTTLs checks that patching every TTL of a valid message yields a message
// miekg/dns reads with that TTL on every record and nothing else changed.
func FuzzPatchTTLs(f *testing.F) {
	f.Add(packed(f, true, true), uint32(42))
	f.Add(packed(f, false, false), uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, ttl uint32) {
		before := new(dns.Msg)
		if before.Unpack(b) != nil {
			return
		}
		l, err := Walk(b, nil)
		if err != nil {
			return
		}
		b = append([]byte(nil), b...)
		PatchTTLs(b, l.TTLs, ttl)
		after := new(dns.Msg)
		if err := after.Unpack(b); err != nil {
			t.Fatalf("patched message no longer unpacks: %v", err)
		}
		for _, rr := range append(append(after.Answer, after.Ns...), after.Extra...) {
			if rr.Header().Rrtype != dns.TypeOPT && rr.Header().Ttl != ttl {
				t.Fatalf("TTL %d, want %d: %s", rr.Header().Ttl, ttl, rr)
			}
		}
		if len(after.Answer) != len(before.Answer) || after.Rcode != before.Rcode {
			t.Fatalf("patch changed the message")
		}
	})
}

// FuzzCopyCase checks that CopyCase never panics and, when it succeeds, leaves a name equal
// to the original ignoring case.
func FuzzCopyCase(f *testing.F) {
	f.Add(packed(f, true, false), "WWW.example.ORG.")
	f.Add(packed(f, false, false), `a\.b.`)
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		if _, err := Walk(b, nil); err != nil {
			return
		}
		before := new(dns.Msg)
		if before.Unpack(b) != nil {
			return
		}
		if !CopyCase(b, HeaderLen, name) {
			return
		}
		after := new(dns.Msg)
		if err := after.Unpack(b); err != nil {
			t.Fatalf("unpack after CopyCase: %v", err)
		}
		if dns.CanonicalName(after.Question[0].Name) != dns.CanonicalName(before.Question[0].Name) {
			t.Fatalf("name changed: %q -> %q", before.Question[0].Name, after.Question[0].Name)
		}
	})
}

func TestWalkOPTPlacement(t *testing.T) {
	opt := func() *dns.OPT { return &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}} }
	for name, place := range map[string]func(m *dns.Msg){
		"in the answer section": func(m *dns.Msg) { m.Answer = append(m.Answer, opt()) },
		"repeated":              func(m *dns.Msg) { m.Extra = append(m.Extra, opt(), opt()) },
	} {
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeA)
		place(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Walk(b, nil); !errors.Is(err, ErrOPT) {
			t.Errorf("OPT %s: Walk = %v, want ErrOPT", name, err)
		}
	}
}

// TestWalkPointerIntoTTL: a compression pointer whose name runs through a TTL field, or past
// the pointer itself, is refused, in an owner name and in a CNAME's RDATA: patching the TTLs
// would change the name a decoder reads (the fuzzer's input made a later record's TTL the
// terminator of an earlier name). The compressed messages miekg/dns writes are accepted.
func TestWalkPointerIntoTTL(t *testing.T) {
	if _, err := Walk(packed(t, true, true), nil); err != nil {
		t.Fatalf("compressed message refused: %v", err)
	}
	// Labels of every length a pointer's two bytes could be mistaken for, in owner names and
	// in RDATA, compressed and not.
	m := new(dns.Msg)
	m.SetQuestion("a.b.example.", dns.TypeMX)
	for _, rr := range []string{"a.b.example. 60 IN MX 10 c.a.b.example.", "a.b.example. 60 IN CNAME x.y.b.example.",
		"b.example. 60 IN SOA n.b.example. h.b.example. 1 2 3 4 5", "x.y.b.example. 60 IN SRV 1 2 3 a.b.example."} {
		r, err := dns.NewRR(rr)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, r)
	}
	for _, compress := range []bool{false, true} {
		m.Compress = compress
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Walk(b, nil); err != nil {
			t.Errorf("one-letter labels, compress %v: refused: %v", compress, err)
		}
	}
	build := func(rdata bool) []byte {
		b := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0}
		b = append(b, 1, 'a', 0, 0, 1, 0, 1) // question a. A IN (offsets 12..18)
		// Answer 1 at 19: a. A IN TTL=(3,'x','y',0) rdlen 4 -> its TTL bytes read as the name "xy."
		b = append(b, 0xC0, 12, 0, 1, 0, 1, 3, 'x', 'y', 0, 0, 4, 192, 0, 2, 1)
		ttl := 19 + 2 + 4 // offset of answer 1's TTL
		if rdata {
			// Answer 2: a. CNAME IN 60, RDATA a pointer to answer 1's TTL.
			b = append(b, 0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, byte(ttl))
		} else {
			// Answer 2: owner a pointer to answer 1's TTL, A IN 60.
			b = append(b, 0xC0, byte(ttl), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2)
		}
		return b
	}
	for _, rdata := range []bool{false, true} {
		b := build(rdata)
		if err := new(dns.Msg).Unpack(b); err != nil {
			t.Fatalf("rdata %v: the crafted message must unpack for the test to mean anything: %v", rdata, err)
		}
		if _, err := Walk(b, nil); err != ErrPointer {
			t.Errorf("rdata %v: Walk = %v, want ErrPointer", rdata, err)
		}
	}
}
