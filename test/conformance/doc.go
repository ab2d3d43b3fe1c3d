// Package conformance is the differential conformance suite of issue 11 (deliverable 5):
// dnscache held against stock CoreDNS, with unbound and Knot Resolver as further references,
// all in front of one authoritative server.
//
// # Layout
//
// The authoritative is Debian's NSD (test/kit.StartNSD) serving two zones written here
// (zone_test.go): conf.test, with every kind of label byte (escaped dots, spaces, \000, bytes
// >= 0x80, ; " ( ) @ $ \, tab and DEL, mixed case, '*' inside a label, '_', '-', a 63-octet label
// and a 255-octet name), CNAME chains in and out of zone (and back), a dangling CNAME, large
// RRsets (> 1232 bytes), NODATA and NXDOMAIN with SOA, records with TTL 0 and 1 and wildcards;
// and other.test, the target of the out-of-zone CNAMEs. NSD serves plain DNS and
// DNS-over-TLS (RFC 7858) with a certificate from a throw-away CA (test/lab.NewCA).
//
// In front of it, on free loopback ports, started and stopped by the test by PID:
//   - dnscache: bin/coredns with `warmcache` and `racetls . tls://NSD%name`;
//   - stock CoreDNS: bin/coredns with `cache` and `forward . tls://NSD`;
//   - unbound: Debian's unbound forwarding "." to NSD with forward-tls-upstream;
//   - Knot Resolver: Debian's kresd (test/kit.StartKresd) with policy.TLS_FORWARD to NSD.
//
// "All over DoT" is read as: every resolver reaches the authoritative over DoT (NSD serves TLS
// itself, so no resolver talks plain DNS upstream and nothing leaves loopback), and the client
// queries each resolver over plain UDP and TCP. The client side stays plain because what is
// compared there (UDP payload size, TC, UDP against TCP, EDNS presence) exists only on UDP and
// TCP; DoT to the client is covered by test/e2e.
//
// # What is compared
//
// Per query, across the four: the header flags (QR AA TC RD RA AD CD), the RCODE (extended),
// the OPT record (presence, version, UDP size, DO, option codes), whether the question section
// comes back byte for byte as the client sent it (random 0x20 case, odd label bytes), and the
// answer, authority and additional sections as sets, with TTLs and the case of names
// normalised (RFC 4343); records served with TTL 0 are compared as their own field. Cases:
//   - misshit: every zone name, a miss and then a hit (another 0x20 case), then both again over TCP;
//   - classes: CH, HS, NONE, ANY and class 42, miss and hit;
//   - edns: EDNS version 1 and 255 (BADVERS), an unknown option, DO with payload size 0, payload
//     sizes 0, 100, 512 and 65535, no EDNS with a large answer, unknown EDNS flag bits, two OPT
//     records, an OPT in the answer or authority section, an OPT owner other than the root;
//   - bursts: concurrent requests for one fresh name that differ in one property (DO, CD, AD,
//     RD, EDNS present or absent, UDP size small enough for TC, UDP against TCP, NSID, cookie,
//     ECS), for a cacheable answer, a cacheable NXDOMAIN and an uncacheable REFUSED, in rounds
//     until warmcache reports coalesced misses (coredns_warmcache_coalesced_total). Each
//     dnscache reply must equal one of stock CoreDNS's replies to the same variant in the same
//     round, since stock CoreDNS does not coalesce.
//
// # Judging
//
// dnscache is compared with stock CoreDNS, the drop-in promise: every difference fails the
// test unless the table `justified` (conformance_test.go) covers it, with the reason. Where
// unbound or Knot Resolver differ from stock CoreDNS (they are recursive resolvers: RA set, AA
// clear, minimal responses, CNAMEs chased across zones, their own CH answers), the test logs a
// count per field with an example; those are reported, not failed.
//
// The subtests name the behaviour: misshit/<name>/<type> (the question echoed exactly for each
// kind of label byte), classes/<class>/<name>, edns/<case>, bursts/<reply kind>/<property>.
// No timing threshold is asserted; a reply not received within 1.5 s counts as "timeout",
// which is compared like any other outcome. CONFORMANCE_SEED reproduces the 0x20 case drawn;
// CONFORMANCE_DEBUG=1 logs dnscache's racetls and warmcache metrics and its log when a burst
// request got no reply.
package conformance
