package conformance

import (
	"fmt"
	"strings"
)

// The zones NSD serves. conf.test holds every kind of label byte, CNAME chains in and out of
// zone, large RRsets, TTL 0 and 1 and wildcards; other.test is the target of out-of-zone CNAMEs.
const (
	zoneOrigin  = "conf.test."
	otherOrigin = "other.test."
	nsdNSID     = "6e73642d636f6e66" // "nsd-conf"
)

// label63 is a maximum-length label (RFC 1035 §2.3.4) mixing letters with bytes >= 0x80, in
// master-file syntax.
func label63() string {
	var b strings.Builder
	for i := range 63 {
		switch i % 3 {
		case 0:
			b.WriteByte('a' + byte(i%26))
		case 1:
			fmt.Fprintf(&b, "\\%03d", 0x80+i)
		default:
			b.WriteByte('Z' - byte(i%26))
		}
	}
	return b.String()
}

// maxName is a name of 255 octets in wire form (RFC 1035 §2.3.4): three 63-octet labels and
// one of 51 under conf.test.
var maxName = strings.Repeat("m", 63) + "." + strings.Repeat("N", 63) + "." + label63() + "." + strings.Repeat("x", 51) + "." + zoneOrigin

func confZone() string {
	var b strings.Builder
	b.WriteString(`$TTL 300
@               IN SOA ns.conf.test. hostmaster.conf.test. 1 3600 600 86400 60
@               IN NS ns
ns              IN A 127.0.0.1
www             IN A 192.0.2.1
www             IN AAAA 2001:db8::1
MiXeD           IN A 192.0.2.2
Dot\.In\.Label  IN A 192.0.2.3
Sp\032Ace       IN A 192.0.2.4
Nul\000Byte     IN A 192.0.2.5
High\128\255X   IN A 192.0.2.6
Caf\195\169     IN A 192.0.2.7
Semi\;Colon     IN A 192.0.2.13
Q\"uote         IN A 192.0.2.14
Pa\(re\)n       IN A 192.0.2.15
At\@Dollar\$    IN A 192.0.2.16
Back\\Slash     IN A 192.0.2.17
Tab\009Del\127  IN A 192.0.2.18
_dns._tcp       IN SRV 0 0 53 www
dash-name       IN A 192.0.2.8
under_score     IN A 192.0.2.9
St*r            IN A 192.0.2.12
ttl0          0 IN A 192.0.2.10
ttl1          1 IN A 192.0.2.11
ttl0c         0 IN CNAME www
c1              IN CNAME c2
c2              IN CNAME www
ext             IN CNAME www.other.test.
extc            IN CNAME c1.other.test.
dangle          IN CNAME nope.other.test.
*.wild          IN A 192.0.2.20
*.wild          IN TXT "wildcard"
`)
	for i := range 16 {
		fmt.Fprintf(&b, "big             IN TXT \"%02d %s\"\n", i, strings.Repeat("t", 120))
		fmt.Fprintf(&b, "*.bigwild       IN TXT \"%02d %s\"\n", i, strings.Repeat("w", 120))
	}
	for i := range 6 { // 512 < answer < 1232 bytes
		fmt.Fprintf(&b, "*.midwild       IN TXT \"%02d %s\"\n", i, strings.Repeat("m", 120))
	}
	for i := range 100 {
		fmt.Fprintf(&b, "manya           IN A 10.0.%d.%d\n", i/250, i%250+1)
	}
	fmt.Fprintf(&b, "%s IN A 192.0.2.30\n", label63())
	fmt.Fprintf(&b, "%s IN A 192.0.2.31\n", maxName)
	return b.String()
}

const otherZone = `$TTL 300
@    IN SOA ns.other.test. hostmaster.other.test. 1 3600 600 86400 60
@    IN NS ns.conf.test.
www  IN A 198.51.100.1
c1   IN CNAME www.conf.test.
`

// zoneNames are the owner names the miss/hit cases ask for, in presentation format (as
// miekg/dns prints them), with the type each asks.
var zoneNames = []struct{ name, qtype string }{
	{"www.conf.test.", "A"},
	{"www.conf.test.", "AAAA"},
	{"www.conf.test.", "MX"},  // NODATA with SOA
	{"nope.conf.test.", "A"},  // NXDOMAIN with SOA
	{"conf.test.", "SOA"},     // apex
	{"conf.test.", "NS"},      // apex NS with glue
	{"mixed.conf.test.", "A"}, // owner written MiXeD in the zone
	{`dot\.in\.label.conf.test.`, "A"},
	{`sp\032ace.conf.test.`, "A"},
	{`nul\000byte.conf.test.`, "A"},
	{`high\128\255x.conf.test.`, "A"},
	{`caf\195\169.conf.test.`, "A"},
	{`semi\;colon.conf.test.`, "A"},
	{`q\"uote.conf.test.`, "A"},
	{`pa\(re\)n.conf.test.`, "A"},
	{`at\@dollar\$.conf.test.`, "A"},
	{`back\\slash.conf.test.`, "A"},
	{`tab\009del\127.conf.test.`, "A"},
	{`nul\000byte.conf.test.`, "AAAA"}, // NODATA for an odd name
	{`nul\000nope.conf.test.`, "A"},    // NXDOMAIN for an odd name
	{"_dns._tcp.conf.test.", "SRV"},
	{"dash-name.conf.test.", "A"},
	{"under_score.conf.test.", "A"},
	{"st*r.conf.test.", "A"},
	{"c1.conf.test.", "A"},     // in-zone CNAME chain
	{"c1.conf.test.", "MX"},    // chain ending in NODATA
	{"ext.conf.test.", "A"},    // out-of-zone CNAME
	{"extc.conf.test.", "A"},   // out of zone and back in
	{"dangle.conf.test.", "A"}, // out-of-zone CNAME to a name that does not exist
	{"ttl1.conf.test.", "A"},
	{"ttl0.conf.test.", "A"},
	{"ttl0c.conf.test.", "A"},
	{"big.conf.test.", "TXT"},    // > 1232 bytes
	{"manya.conf.test.", "A"},    // > 1232 bytes
	{"a.wild.conf.test.", "A"},   // wildcard
	{"b.wild.conf.test.", "TXT"}, // wildcard
	{"b.wild.conf.test.", "MX"},  // wildcard NODATA
	{"x.y.wild.conf.test.", "A"},
	{"*.wild.conf.test.", "A"}, // the wildcard owner itself
	{"www.other.test.", "A"},
	{"c1.other.test.", "A"},
	{"outside.example.", "A"}, // not served by NSD: REFUSED, not cacheable
}

// askNames returns zoneNames plus the maximum-length label and name.
func askNames() []struct{ name, qtype string } {
	out := append([]struct{ name, qtype string }(nil), zoneNames...)
	return append(out, struct{ name, qtype string }{label63() + "." + zoneOrigin, "A"},
		struct{ name, qtype string }{maxName, "A"})
}
