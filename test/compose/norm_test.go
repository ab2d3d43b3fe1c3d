package compose

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// offsets returns the offsets of the TTL fields of every record of a wire message except OPT
// (whose TTL field carries the extended RCODE and flags), and of the serials of SOA records,
// or false if it does not parse.
func offsets(b []byte) (ttls, serials []int, ok bool) {
	if len(b) < 12 {
		return nil, nil, false
	}
	skipName := func(i int) int {
		for i < len(b) {
			l := int(b[i])
			switch {
			case l == 0:
				return i + 1
			case l&0xC0 == 0xC0:
				return i + 2
			}
			i += 1 + l
		}
		return -1
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	i := 12
	for range qd {
		if i = skipName(i); i < 0 || i+4 > len(b) {
			return nil, nil, false
		}
		i += 4
	}
	for range rrs {
		if i = skipName(i); i < 0 || i+10 > len(b) {
			return nil, nil, false
		}
		typ := binary.BigEndian.Uint16(b[i:])
		if typ != dns.TypeOPT {
			ttls = append(ttls, i+4)
		}
		rdata := i + 10
		i = rdata + int(binary.BigEndian.Uint16(b[i+8:]))
		if i > len(b) {
			return nil, nil, false
		}
		if typ == dns.TypeSOA {
			if j := skipName(rdata); j >= 0 {
				if j = skipName(j); j >= 0 && j+4 <= i {
					serials = append(serials, j)
				}
			}
		}
	}
	return ttls, serials, i == len(b)
}

// norm says what a comparison ignores besides the message ID.
type norm struct {
	ttl    bool // TTLs (after the first phase)
	sorted bool // the order of records in each section (loadbalance)
	serial bool // SOA serials (the kubernetes plugin's follow the time of the last change)
}

// normMsg returns a comparison key and a readable text of a wire message, without what n
// ignores. When sorted, the key is the text, since a reordered message compresses
// differently; otherwise it is the bytes.
func normMsg(b []byte, n norm) (key, text string) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		text = fmt.Sprintf("unparsable message (%v): %x", err, b)
		return text, text
	}
	m.Id = 0
	// Justified difference: the TTL of a negative answer. warmcache gives it RFC 2308 §5's
	// min(SOA TTL, SOA MINIMUM) (as unbound and Knot Resolver do); cache gives it the SOA's
	// TTL. Authoritative servers already send the SOA with that minimum (RFC 2308 §3), so
	// the two agree behind NSD or Knot (test/conformance); the lab's SOA (TTL 60, MINIMUM 30)
	// shows the difference. TTLs of replies with an SOA in the authority section are not compared.
	negative := false
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			negative = true
		}
	}
	if negative {
		n.ttl = true
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if n.ttl && rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = 0
			}
			if soa, ok := rr.(*dns.SOA); ok && n.serial {
				soa.Serial = 0
			}
		}
		if n.sorted {
			sort.SliceStable(sec, func(i, j int) bool { return sec[i].String() < sec[j].String() })
		}
	}
	if n.sorted && m.Truncated {
		// Which records a shuffled, truncated answer keeps is chance: compare how many.
		for i := range m.Answer {
			m.Answer[i] = &dns.NULL{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNULL, Class: dns.ClassINET}, Data: "truncated"}
		}
	}
	text = m.String()
	if n.sorted {
		return text, text
	}
	c := slices.Clone(b)
	c[0], c[1] = 0, 0
	ttls, serials, ok := offsets(c)
	if !ok {
		return hex.EncodeToString(c), text
	}
	if n.ttl {
		for _, o := range ttls {
			copy(c[o:o+4], []byte{0, 0, 0, 0})
		}
	}
	if n.serial {
		for _, o := range serials {
			copy(c[o:o+4], []byte{0, 0, 0, 0})
		}
	}
	return hex.EncodeToString(c), text
}

// rrKey names a record by everything but its TTL.
func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	return c.String()
}

// lineDiff returns the lines only in a ("- ") and only in b ("+ "), in order, by a longest
// common subsequence of lines.
func lineDiff(a, b string) string {
	x, y := strings.Split(strings.TrimRight(a, "\n"), "\n"), strings.Split(strings.TrimRight(b, "\n"), "\n")
	l := make([][]int, len(x)+1)
	for i := range l {
		l[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || l[i+1][j] >= l[i][j+1]):
			fmt.Fprintf(&out, "    - %s\n", x[i])
			i++
		default:
			fmt.Fprintf(&out, "    + %s\n", y[j])
			j++
		}
	}
	return out.String()
}

// firstDiff returns the first changed line pair of a lineDiff, for one-line summaries.
func firstDiff(d string) string {
	var minus, plus string
	for _, l := range strings.Split(d, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "- ") && minus == "":
			minus = l
		case strings.HasPrefix(l, "+ ") && plus == "":
			plus = l
		}
	}
	return strings.TrimSpace(minus + "  " + plus)
}

// multisetDiff returns the elements of a not matched in b and of b not matched in a.
func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, s := range a {
		if count[s] > 0 {
			onlyA = append(onlyA, s)
			count[s]--
		}
	}
	for _, s := range b {
		if count[s] < 0 {
			onlyB = append(onlyB, s)
			count[s]++
		}
	}
	return onlyA, onlyB
}

var (
	logPortID  = regexp.MustCompile(`:\d+ - \d+ "`)
	logDur     = regexp.MustCompile(`\b\d+(\.\d+)?(e-\d+)?s\b`)
	hexID      = regexp.MustCompile(`\b[0-9]{3,5}\b`)
	ephemPorts = regexp.MustCompile(`(127\.0\.0\.1|\[::1\]|::1):\d+`)
)

// normLog normalises a log plugin line: the client port, the message ID and the duration.
func normLog(line, dir string) string {
	line = strings.ReplaceAll(line, dir, "DIR")
	line = logPortID.ReplaceAllString(line, `:P - ID "`)
	return logDur.ReplaceAllString(line, "DUR")
}

// normNote normalises a [WARNING] or [ERROR] line: addresses, paths and numbers.
func normNote(line, dir string) string {
	line = strings.ReplaceAll(line, dir, "DIR")
	line = ephemPorts.ReplaceAllString(line, "$1:P")
	return hexID.ReplaceAllString(line, "N")
}

// byteDiff describes two encodings of the same message: where they part and whether each uses
// name compression (RFC 1035 §4.1.4).
func byteDiff(a, b []byte) string {
	i := 0
	for i < min(len(a), len(b)) && (i < 2 || a[i] == b[i]) {
		i++
	}
	return fmt.Sprintf("from offset %d; %s (%d B) vs %s (%d B)", i, compression(a), len(a), compression(b), len(b))
}

func compression(b []byte) string {
	m := new(dns.Msg)
	if m.Unpack(b) != nil {
		return "unparsable"
	}
	m.Compress = false
	if u, err := m.Pack(); err == nil && len(u) == len(b) {
		return "uncompressed"
	}
	return "compressed"
}
