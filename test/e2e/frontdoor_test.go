package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/kit"

	"github.com/miekg/dns"
)

// The front door (DESIGN §6.3, plugin/pkg/frontdoor) answers warmcache's UDP hits before
// CoreDNS sees the datagram. These tests run bin/coredns twice on the same kubeadm-like
// Corefile, with `front_door on` and `off`, and require the client and /metrics to see no
// difference; then they reload it under load and read its startup log.

// fdZone is the zone behind the cache: positive, NODATA, NXDOMAIN, wildcard (for names of
// any bytes), types prometheus counts as "other", and TXT sets whose replies need 512+,
// 1232+ and 4096+ bytes.
func fdZone() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN example.org.
@       3600 IN SOA ns.example.org. admin.example.org. 1 7200 3600 1209600 300
@       3600 IN NS  ns
ns      3600 IN A   192.0.2.53
a        300 IN A   192.0.2.1
a        300 IN AAAA 2001:db8::1
mixed    300 IN A   192.0.2.2
txt      300 IN TXT "hello"
caa      300 IN CAA 0 issue "ca.example.net"
naptr    300 IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.org!" .
alias    300 IN CNAME a
*.w      300 IN A   192.0.2.9
`)
	for _, set := range []struct {
		name string
		n    int
	}{{"medium", 6}, {"large", 16}, {"huge", 45}} {
		for i := range set.n {
			fmt.Fprintf(&b, "%s 300 IN TXT \"%02d%s\"\n", set.name, i, strings.Repeat("x", 96))
		}
	}
	return b.String()
}

// fdCorefile is a kubeadm-like block (errors, health, ready, reload, loop, prometheus)
// with warmcache in front of a file zone; %s is the front_door value.
const fdCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    errors
    {{.Std}}
    reload
    loop
    warmcache {
        front_door %s
    }
    file {{.Dir}}/db.example.org example.org
}
`

// fdStart runs bin/coredns on corefile with the zone file in its directory.
func fdStart(t *testing.T, corefile string) *kit.CoreDNS {
	t.Helper()
	s := kit.Prepare(t)
	if err := os.WriteFile(filepath.Join(s.Dir, "db.example.org"), []byte(fdZone()), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Run(t, corefile)
	return s
}

// fdPair starts the same Corefile with the front door on and off.
func fdPair(t *testing.T) (on, off *kit.CoreDNS) {
	t.Helper()
	on = fdStart(t, fmt.Sprintf(fdCorefile, "on"))
	off = fdStart(t, fmt.Sprintf(fdCorefile, "off"))
	if !strings.Contains(on.Log(), ": on, ") {
		t.Fatalf("front door not on:\n%s", on.Log())
	}
	if !strings.Contains(off.Log(), ": off (front_door off)") {
		t.Fatalf("front door not off:\n%s", off.Log())
	}
	// loop's probe is answered before the listing but counted after: let it land.
	for _, s := range []*kit.CoreDNS{on, off} {
		fdSettle(t, s)
	}
	return on, off
}

// fdQuery is a query to ask: a question, header bits and EDNS.
type fdQuery struct {
	name          string
	qtype, qclass uint16
	rd, ad, cd    bool
	edns          uint16 // OPT UDP size, 0 for no OPT
	do            bool
}

func (q fdQuery) String() string {
	return fmt.Sprintf("%s %s %s rd=%v ad=%v cd=%v edns=%d do=%v", q.name, dns.Class(q.qclass), dns.Type(q.qtype),
		q.rd, q.ad, q.cd, q.edns, q.do)
}

func (q fdQuery) pack(t *testing.T, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.Id = id
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	m.RecursionDesired, m.AuthenticatedData, m.CheckingDisabled = q.rd, q.ad, q.cd
	if q.edns > 0 {
		m.SetEdns0(q.edns, q.do)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	return b
}

// fdQueries is the sequence both servers get: every question under every header and EDNS
// variant, each asked three times (a miss, then hits).
func fdQueries() []fdQuery {
	type question struct {
		name          string
		qtype, qclass uint16
	}
	in := uint16(dns.ClassINET)
	qs := []question{
		{"a.example.org.", dns.TypeA, in},
		{"A.ExAmPlE.oRg.", dns.TypeA, in}, // 0x20: a hit of the line above
		{"a.example.org.", dns.TypeAAAA, in},
		{"a.example.org.", dns.TypeTXT, in},   // NODATA
		{"a.example.org.", dns.TypeHINFO, in}, // NODATA of an "other" type
		{"nx.example.org.", dns.TypeA, in},    // NXDOMAIN
		{"NX.Example.ORG.", dns.TypeA, in},
		{"alias.example.org.", dns.TypeA, in},
		{"txt.example.org.", dns.TypeTXT, in},
		{"caa.example.org.", dns.TypeCAA, in},     // "other"
		{"naptr.example.org.", dns.TypeNAPTR, in}, // "other"
		{"medium.example.org.", dns.TypeTXT, in},  // > 512 bytes
		{"large.example.org.", dns.TypeTXT, in},   // > 1232 bytes
		{"huge.example.org.", dns.TypeTXT, in},    // > 4096 bytes
		{"example.org.", dns.TypeSOA, in},
		{"example.org.", dns.TypeNS, in},
		{"x.w.example.org.", dns.TypeA, in},
		{"*.w.example.org.", dns.TypeA, in},
		{`a\.b.w.example.org.`, dns.TypeA, in}, // escaped bytes: not plain
		{`\000\255.w.example.org.`, dns.TypeA, in},
		{`caf\195\169.w.example.org.`, dns.TypeA, in},
		{"a.example.org.", dns.TypeA, dns.ClassCHAOS},
		{"a.example.org.", dns.TypeA, dns.ClassANY},
		{"a.example.org.", dns.TypeANY, in},
	}
	variants := []fdQuery{
		{rd: true},
		{rd: true, edns: 512},
		{rd: true, edns: 1232, do: true},
		{rd: true, edns: 4096, cd: true},
		{ad: true, edns: 1232}, // no RD, AD
		{rd: true, cd: true, edns: 4096, do: true},
		{rd: true, edns: 100}, // below 512: treated as 512
	}
	var out []fdQuery
	for _, v := range variants {
		for _, q := range qs {
			v.name, v.qtype, v.qclass = q.name, q.qtype, q.qclass
			out = append(out, v, v, v)
		}
	}
	return out
}

// fdExchangeUDP sends b on c and returns the reply with b's ID, or nil after wait.
func fdExchangeUDP(t *testing.T, c net.Conn, b []byte, wait time.Duration) []byte {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(wait)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			t.Fatal(err)
		}
		if n >= 2 && len(b) >= 2 && buf[0] == b[0] && buf[1] == b[1] {
			return buf[:n]
		}
	}
}

// fdExchangeTCP sends b over a new TCP connection (RFC 1035 §4.2.2 framing).
func fdExchangeTCP(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := wire.WriteFrame(c, b); err != nil {
		t.Fatal(err)
	}
	r, err := wire.ReadFrame(c, nil)
	if err != nil {
		t.Fatalf("tcp read: %v", err)
	}
	return r
}

// ttlOffsets returns the offsets of the TTL fields of every record but OPT in msg.
func ttlOffsets(msg []byte) ([]int, error) {
	if len(msg) < 12 {
		return nil, errors.New("short message")
	}
	skipName := func(off int) (int, error) {
		for {
			if off >= len(msg) {
				return 0, errors.New("name past the end")
			}
			c := int(msg[off])
			switch {
			case c == 0:
				return off + 1, nil
			case c&0xC0 == 0xC0:
				return off + 2, nil
			case c&0xC0 != 0:
				return 0, errors.New("bad label type")
			}
			off += 1 + c
		}
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(off); err != nil {
			return nil, err
		}
		off += 4
	}
	var ttls []int
	for range rrs {
		if off, err = skipName(off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, errors.New("record past the end")
		}
		if binary.BigEndian.Uint16(msg[off:]) != dns.TypeOPT {
			ttls = append(ttls, off+4)
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	}
	if off != len(msg) {
		return nil, fmt.Errorf("%d bytes past the records", len(msg)-off)
	}
	return ttls, nil
}

// sameReply reports how two replies to the same query differ: "" when they are the same
// bytes but for TTLs at most 1 s apart.
func sameReply(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("length %d vs %d", len(a), len(b))
	}
	offs, err := ttlOffsets(a)
	if err != nil {
		return "unparsable: " + err.Error()
	}
	a, b = slices.Clone(a), slices.Clone(b)
	for _, o := range offs {
		ta, tb := binary.BigEndian.Uint32(a[o:]), binary.BigEndian.Uint32(b[o:])
		if d := int64(ta) - int64(tb); d < -1 || d > 1 {
			return fmt.Sprintf("TTL at %d: %d vs %d", o, ta, tb)
		}
		binary.BigEndian.PutUint32(b[o:], ta)
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("byte %d: %#x vs %#x", i, a[i], b[i])
		}
	}
	return ""
}

func fdShow(b []byte) string {
	if b == nil {
		return "(no reply)"
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return fmt.Sprintf("%x (%v)", b, err)
	}
	return m.String()
}

// fdSeries flattens the coredns_dns_* families of a scrape into one number per series:
// counters, and histograms' counts, sums and buckets (request_duration_seconds: its count
// only, since time differs). The server label's port is replaced by PORT.
func fdSeries(t *testing.T, s *kit.CoreDNS) map[string]float64 {
	t.Helper()
	port := ":" + strconv.Itoa(s.Port)
	return s.Scrape(t).Flat("coredns_dns_", nil,
		func(_, value string) (string, bool) { return strings.ReplaceAll(value, port, ":PORT"), true },
		"coredns_dns_request_duration_seconds")
}

// fdSettle waits until the server's coredns_dns_* series stop changing: a reply reaches
// the client before prometheus counts it.
func fdSettle(t *testing.T, s *kit.CoreDNS) map[string]float64 {
	t.Helper()
	prev := fdSeries(t, s)
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		cur := fdSeries(t, s)
		if fdEqual(prev, cur) && fdRequests(cur) > 0 {
			return cur
		}
		prev = cur
	}
	return prev
}

// fdRequests sums the requests_total series of m.
func fdRequests(m map[string]float64) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "coredns_dns_requests_total{") {
			n += v
		}
	}
	return n
}

func fdEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fdDelta returns after - before for every series of either.
func fdDelta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d[k] = -v
		}
	}
	return d
}

// fdCompareSeries fails t for every series whose deltas differ.
func fdCompareSeries(t *testing.T, on, off map[string]float64) {
	t.Helper()
	keys := map[string]bool{}
	for k := range on {
		keys[k] = true
	}
	for k := range off {
		keys[k] = true
	}
	var diff []string
	for k := range keys {
		if a, b := on[k], off[k]; math.Abs(a-b) > 1e-9 {
			diff = append(diff, fmt.Sprintf("%s: on %g, off %g", k, a, b))
		}
	}
	sort.Strings(diff)
	for _, d := range diff {
		t.Error(d)
	}
}

// TestFrontDoorEquivalence asks two servers, the same kubeadm-like Corefile with the front
// door on and off, the same queries over UDP and TCP: misses, hits, NXDOMAIN and NODATA
// hits, 0x20 case, DO/CD/AD/no RD, no EDNS and EDNS sizes 100/512/1232/4096, replies too
// big for UDP, names with escaped bytes, CH and ANY classes, AAAA and types prometheus
// counts as "other". The replies must be the same bytes (TTLs within 1 s), the deltas of
// every coredns_dns_* series the same, and the front door must have answered hits.
func TestFrontDoorEquivalence(t *testing.T) {
	kit.CheckFDs(t)
	on, off := fdPair(t)
	before := map[*kit.CoreDNS]map[string]float64{on: fdSeries(t, on), off: fdSeries(t, off)}

	uOn, err := net.Dial("udp", on.DNS)
	if err != nil {
		t.Fatal(err)
	}
	defer uOn.Close()
	uOff, err := net.Dial("udp", off.DNS)
	if err != nil {
		t.Fatal(err)
	}
	defer uOff.Close()

	qs := fdQueries()
	asked, truncated := 0, 0
	for _, network := range []string{"udp", "tcp"} {
		for i, q := range qs {
			b := q.pack(t, uint16(i+1)) // #nosec G115 -- fewer than 65535 queries
			var a, o []byte
			if network == "udp" {
				a, o = fdExchangeUDP(t, uOn, b, 3*time.Second), fdExchangeUDP(t, uOff, b, 3*time.Second)
			} else {
				a, o = fdExchangeTCP(t, on.DNS, b), fdExchangeTCP(t, off.DNS, b)
			}
			asked++
			if a == nil || o == nil {
				t.Fatalf("%s %v: no reply: on %v, off %v", network, q, a != nil, o != nil)
			}
			if d := sameReply(a, o); d != "" {
				t.Errorf("%s %v: replies differ (%s)\non:\n%s\noff:\n%s", network, q, d, fdShow(a), fdShow(o))
			}
			if a[2]&0x02 != 0 {
				truncated++
			}
		}
	}
	if truncated == 0 {
		t.Error("no reply was truncated: the big answers did not exercise the size limits")
	}

	dOn := fdDelta(before[on], fdSettle(t, on))
	dOff := fdDelta(before[off], fdSettle(t, off))
	fdCompareSeries(t, dOn, dOff)
	if total := fdRequests(dOff); total != float64(asked) {
		t.Errorf("requests_total grew by %v, want %d", total, asked)
	}

	hits := on.Metric(t, "coredns_frontdoor_hits_total", nil)
	if hits <= 0 {
		t.Errorf("coredns_frontdoor_hits_total = %v with the front door on: it answered nothing", hits)
	}
	if _, ok := off.Scrape(t)["coredns_frontdoor_hits_total"]; ok {
		if h := off.Metric(t, "coredns_frontdoor_hits_total", nil); h != 0 {
			t.Errorf("coredns_frontdoor_hits_total = %v with the front door off", h)
		}
	}
	t.Logf("%d queries each; front door hits %v, passed %v; %d truncated; %d series moved", asked, hits,
		on.Metric(t, "coredns_frontdoor_passed_total", nil), truncated, len(dOn))
	on.Stop(t)
	off.Stop(t)
}

// fdBad is a datagram that is not a plain query, built from a query of a cached name.
type fdBad struct {
	name string
	msg  []byte
}

// fdBadInputs returns malformed and unusual datagrams; q is a packed plain query (no EDNS)
// for a name the cache holds.
func fdBadInputs(t *testing.T, q []byte) []fdBad {
	t.Helper()
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(q)) }
	withOPT := func(version byte, size int) []byte {
		m := new(dns.Msg)
		if err := m.Unpack(q); err != nil {
			t.Fatal(err)
		}
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		o.SetVersion(version)
		if size > 0 {
			o.Option = append(o.Option, &dns.EDNS0_PADDING{Padding: make([]byte, size)})
		}
		m.Extra = append(m.Extra, o)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	qEnd := len(q)
	return []fdBad{
		{"empty", []byte{}},
		{"short", q[:5]},
		{"header only, no question", mod(func(b []byte) []byte { b[5] = 0; return b[:12] })},
		{"header only, QDCOUNT 1", q[:12]},
		{"QR=1", mod(func(b []byte) []byte { b[2] |= 0x80; return b })},
		{"TC=1", mod(func(b []byte) []byte { b[2] |= 0x02; return b })},
		{"RCODE 3 in a query", mod(func(b []byte) []byte { b[3] |= 0x03; return b })},
		{"opcode NOTIFY", mod(func(b []byte) []byte { b[2] = b[2]&0x87 | 4<<3; return b })},
		{"opcode UPDATE", mod(func(b []byte) []byte { b[2] = b[2]&0x87 | 5<<3; return b })},
		{"opcode 7", mod(func(b []byte) []byte { b[2] = b[2]&0x87 | 7<<3; return b })},
		{"two questions", mod(func(b []byte) []byte { b[5] = 2; return append(b, b[12:qEnd]...) })},
		{"ANCOUNT 2", mod(func(b []byte) []byte { b[7] = 2; return b })},
		{"truncated name", q[:16]},
		{"truncated type", q[:qEnd-3]},
		{"trailing bytes", append(slices.Clone(q), 0xde, 0xad, 0xbe, 0xef)},
		{"ARCOUNT 1, no record", mod(func(b []byte) []byte { b[11] = 1; return b })},
		{"label type 0x40", mod(func(b []byte) []byte { b[12] |= 0x40; return b })},
		{"label type 0x80", mod(func(b []byte) []byte { b[12] |= 0x80; return b })},
		{"pointer loop in the question", mod(func(b []byte) []byte { return append(append(b[:12], 0xC0, 12), b[qEnd-4:]...) })},
		{"OPT version 1", withOPT(1, 0)},
		{"OPT with padding, 500 bytes", withOPT(0, 440)},
		{"over 512 bytes", withOPT(0, 600)},
		{"over 512 bytes, QR=1", func() []byte { b := withOPT(0, 600); b[2] |= 0x80; return b }()},
	}
}

// TestFrontDoorBadInput sends malformed, truncated, oversized and unusual datagrams for a
// cached name over real UDP to both servers: each must get the same reply, or the same
// silence, with the front door on and off; never an answer from the cache it would not
// get without the door. Both must answer a plain query after.
func TestFrontDoorBadInput(t *testing.T) {
	kit.CheckFDs(t)
	on, off := fdPair(t)
	q := fdQuery{name: "a.example.org.", qtype: dns.TypeA, qclass: dns.ClassINET, rd: true}
	servers := []*kit.CoreDNS{on, off}
	conns := make([]net.Conn, 2)
	for i, s := range servers {
		c, err := net.Dial("udp", s.DNS)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		for range 2 { // cache it, then a hit
			if r := fdExchangeUDP(t, c, q.pack(t, 1), 3*time.Second); r == nil {
				t.Fatal("no answer to a plain query")
			}
		}
	}
	hits0 := on.Metric(t, "coredns_frontdoor_hits_total", nil)
	if hits0 < 1 {
		t.Fatalf("front door hits = %v after a repeated query", hits0)
	}
	answered := 0
	for _, bad := range fdBadInputs(t, q.pack(t, 0x4242)) {
		replies := make([][]byte, 2)
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() { replies[i] = fdExchangeUDP(t, conns[i], bad.msg, 700*time.Millisecond) })
		}
		wg.Wait()
		a, o := replies[0], replies[1]
		switch {
		case a == nil && o == nil:
		case a == nil || o == nil:
			t.Errorf("%s: on %s\noff %s", bad.name, fdShow(a), fdShow(o))
		default:
			answered++
			if d := sameReply(a, o); d != "" {
				t.Errorf("%s: replies differ (%s)\non:\n%s\noff:\n%s", bad.name, d, fdShow(a), fdShow(o))
			}
		}
		t.Logf("%-32s %d bytes: %s", bad.name, len(bad.msg), fdSummary(a))
	}
	if hits := on.Metric(t, "coredns_frontdoor_hits_total", nil); hits != hits0 {
		t.Errorf("the front door answered %v bad datagrams from the cache", hits-hits0)
	}
	if answered == 0 {
		t.Error("no bad datagram got a reply: the comparison saw only silence")
	}
	for i, s := range servers {
		if r := fdExchangeUDP(t, conns[i], q.pack(t, 7), 3*time.Second); r == nil {
			t.Errorf("%s: no answer after the bad input", s.DNS)
		}
	}
	if hits := on.Metric(t, "coredns_frontdoor_hits_total", nil); hits != hits0+1 {
		t.Errorf("front door hits %v after a plain query, want %v", hits, hits0+1)
	}
	on.Stop(t)
	off.Stop(t)
}

func fdSummary(b []byte) string {
	if b == nil {
		return "silence"
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return fmt.Sprintf("%d bytes, unparsable", len(b))
	}
	return fmt.Sprintf("%s, %d answers", dns.RcodeToString[m.Rcode], len(m.Answer))
}

// fdHotNames are the names the reload test keeps asking; the zone's wildcard answers them.
func fdHotNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("hot%d.w.example.org.", i)
	}
	return names
}

// fdLoad runs a paced UDP load of hot names in the background until it is done.
func fdLoad(t *testing.T, s *kit.CoreDNS, names []string, d time.Duration) <-chan *kit.Result {
	t.Helper()
	done := make(chan *kit.Result, 1)
	go func() {
		res, err := kit.Load{
			Network: "udp", Addr: s.DNS, Conns: 2, InFlight: 8, Rate: 1500, Duration: d,
			Next: func(i int) kit.Query { return kit.Query{Name: names[i%len(names)]} },
		}.Run(context.Background())
		if err != nil {
			t.Error(err)
			res = &kit.Result{}
		}
		done <- res
	}()
	return done
}

// fdLossless fails t unless every query of res was answered.
func fdLossless(t *testing.T, what string, res *kit.Result) {
	t.Helper()
	if res.Sent == 0 || res.Answered != res.Sent || res.Timeouts+res.Failed+res.Errors != 0 || res.Rcodes[dns.RcodeSuccess] != res.Answered {
		t.Errorf("%s: %v, rcodes %v, errors %v", what, res, res.Rcodes, res.Errs)
	}
	t.Logf("%s: %v", what, res)
}

// TestFrontDoorReload reloads a server with SIGUSR1 four times while a paced UDP load asks
// for cached names: no query may be lost, and the front door must still be on (the startup
// log of each instance says so) and answering after. Then a reload that puts log above
// warmcache must turn it off, say why, and lose nothing either.
func TestFrontDoorReload(t *testing.T) {
	kit.CheckFDs(t)
	corefile := fmt.Sprintf(fdCorefile, "on")
	s := fdStart(t, corefile)
	names := fdHotNames(50)
	prime := kit.Load{Network: "udp", Addr: s.DNS, Count: len(names),
		Next: func(i int) kit.Query { return kit.Query{Name: names[i]} }}
	if res, err := prime.Run(context.Background()); err != nil || res.Answered != int64(len(names)) {
		t.Fatalf("priming: %v %v", res, err)
	}
	onLine := regexp.MustCompile(`Front door of dns://\.:` + strconv.Itoa(s.Port) + `: on, `)
	hits0 := s.Metric(t, "coredns_frontdoor_hits_total", nil)

	const reloads = 4
	load := fdLoad(t, s, names, 6*time.Second)
	time.Sleep(time.Second)
	for range reloads {
		s.Reload(t, corefile)
		time.Sleep(500 * time.Millisecond)
	}
	fdLossless(t, "load across SIGUSR1 reloads", <-load)
	if n := len(onLine.FindAllString(s.Log(), -1)); n != 1+reloads {
		t.Errorf("%d startup lines say the front door is on, want %d (one per instance):\n%s", n, 1+reloads, s.Log())
	}
	hits1 := s.Metric(t, "coredns_frontdoor_hits_total", nil)
	if hits1 <= hits0 {
		t.Fatalf("front door hits %v -> %v: not answering across the reloads", hits0, hits1)
	}
	// After the last reload, every plain hit is the front door's.
	if res, err := (kit.Load{Network: "udp", Addr: s.DNS, Count: 200,
		Next: func(i int) kit.Query { return kit.Query{Name: names[i%len(names)]} }}).Run(context.Background()); err != nil || res.Answered != 200 {
		t.Fatalf("after the reloads: %v %v", res, err)
	}
	if hits2 := s.Metric(t, "coredns_frontdoor_hits_total", nil); hits2 != hits1+200 {
		t.Errorf("front door hits grew by %v for 200 cached queries after the reloads, want 200", hits2-hits1)
	}

	// log above warmcache: the front door must close, and CoreDNS's socket answer.
	withLog := strings.Replace(corefile, "    loop\n", "    loop\n    log . {\n        class denial\n    }\n", 1)
	load = fdLoad(t, s, names, 4*time.Second)
	time.Sleep(time.Second)
	s.Reload(t, withLog)
	fdLossless(t, "load across the reload that turns the front door off", <-load)
	offLine := "Front door of dns://.:" + strconv.Itoa(s.Port) + ": off (log)"
	if !strings.Contains(s.Log(), offLine) {
		t.Errorf("no %q in the log:\n%s", offLine, s.Log())
	}
	hits3 := s.Metric(t, "coredns_frontdoor_hits_total", nil)
	if res, err := (kit.Load{Network: "udp", Addr: s.DNS, Count: 200,
		Next: func(i int) kit.Query { return kit.Query{Name: names[i%len(names)]} }}).Run(context.Background()); err != nil || res.Answered != 200 {
		t.Fatalf("with the front door off: %v %v", res, err)
	}
	if hits4 := s.Metric(t, "coredns_frontdoor_hits_total", nil); hits4 != hits3 {
		t.Errorf("front door answered %v queries after a reload turned it off", hits4-hits3)
	}
	s.Stop(t)
}

// TestFrontDoorStartupLog reads the startup log of a Corefile whose blocks have a front
// door or not: on for an eligible block, off with the reason for a block with log, for two
// blocks on one port, for front_door off, and for a block whose server accepts UPDATE.
func TestFrontDoorStartupLog(t *testing.T) {
	kit.CheckFDs(t)
	s := kit.Prepare(t)
	port3, port5 := kit.FreePort(t), kit.FreePort(t)
	zone := "$ORIGIN example.com.\n@ 3600 IN SOA ns admin 1 7200 3600 1209600 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.53\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "db.example.com"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Run(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    warmcache
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.1"
    }
}
.:{{.Port2}} {
    bind 127.0.0.1
    log
    warmcache
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.2"
    }
}
example.org:%[1]d {
    bind 127.0.0.1
    warmcache
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.3"
    }
}
example.net:%[1]d {
    bind 127.0.0.1
    warmcache
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.4"
    }
}
.:%[2]d {
    bind 127.0.0.1
    warmcache {
        front_door off
    }
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.5"
    }
}
example.com:%[3]d {
    bind 127.0.0.1
    warmcache
    dynupdate {
        file {{.Dir}}/db.example.com
        allow key. * *
    }
    template IN A {
        answer "{{"{{"}} .Name {{"}}"}} 60 IN A 192.0.2.5"
    }
}
`, port3, kit.FreePort(t), port5))
	log := s.Log()
	want := []string{
		fmt.Sprintf("Front door of dns://.:%d: on, ", s.Port),
		fmt.Sprintf("Front door of dns://.:%d: off (log)", s.Port2),
		fmt.Sprintf("Front door of dns://example.org.:%d: off (another server block on port %d)", port3, port3),
		fmt.Sprintf("Front door of dns://example.net.:%d: off (another server block on port %d)", port3, port3),
		"Front door of dns://.:",
		// UPDATE: miekg/dns's default answers NOTIMP, the block's server REFUSED.
		fmt.Sprintf("Front door of dns://example.com.:%d: off (dynupdate (accepts opcode UPDATE))", port5),
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("no %q in the log", w)
		}
	}
	if n := strings.Count(log, ": off (front_door off)"); n != 1 {
		t.Errorf("%d lines say front_door off, want 1", n)
	}
	if n := strings.Count(log, "Front door of "); n != 6 {
		t.Errorf("%d front door lines, want one per block (6)", n)
	}
	if t.Failed() {
		t.Log(log)
	}
	// The blocks sharing a port still answer by zone, through CoreDNS's socket.
	for _, c := range []struct{ name, addr string }{{"x.example.org.", "192.0.2.3"}, {"x.example.net.", "192.0.2.4"}} {
		m := new(dns.Msg)
		m.SetQuestion(c.name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, "127.0.0.1:"+strconv.Itoa(port3))
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != c.addr {
			t.Errorf("%s on the shared port: %v %v", c.name, r, err)
		}
	}
	s.Stop(t)
}
